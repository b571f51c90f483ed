//! Records the git revision for `--version` and `idauth_exporter_build_info`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=IDAUTH_REVISION");
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let revision = std::env::var("IDAUTH_REVISION").ok().filter(|r| !r.is_empty()).or_else(|| {
        let out = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    });
    println!("cargo:rustc-env=IDAUTH_REVISION={}", revision.unwrap_or_else(|| "unknown".to_owned()));
}
