//! Records what `--version` and `idauth_exporter_build_info` tell, as Prometheus' own
//! exporters do: the git revision and branch, the build date and the Rust toolchain.

use std::process::Command;

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    for var in ["IDAUTH_REVISION", "IDAUTH_BRANCH", "SOURCE_DATE_EPOCH"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let given = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
    let revision = given("IDAUTH_REVISION").or_else(|| output("git", &["rev-parse", "--short=12", "HEAD"]));
    let branch = given("IDAUTH_BRANCH").or_else(|| output("git", &["rev-parse", "--abbrev-ref", "HEAD"]));
    // SOURCE_DATE_EPOCH makes the build reproducible (reproducible-builds.org).
    let date = given("SOURCE_DATE_EPOCH")
        .map(|epoch| output("date", &["-u", "-d", &format!("@{epoch}"), "+%Y%m%d-%H:%M:%S"]))
        .unwrap_or_else(|| output("date", &["-u", "+%Y%m%d-%H:%M:%S"]));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let rust_version = output(&rustc, &["--version"]).and_then(|v| v.split_whitespace().nth(1).map(str::to_owned));
    let unknown = || "unknown".to_owned();
    println!("cargo:rustc-env=IDAUTH_REVISION={}", revision.unwrap_or_else(unknown));
    println!("cargo:rustc-env=IDAUTH_BRANCH={}", branch.unwrap_or_else(unknown));
    println!("cargo:rustc-env=IDAUTH_BUILD_DATE={}", date.unwrap_or_else(unknown));
    println!("cargo:rustc-env=IDAUTH_RUST_VERSION={}", rust_version.unwrap_or_else(unknown));
    let target = |var: &str| std::env::var(var).unwrap_or_else(|_| unknown());
    println!("cargo:rustc-env=IDAUTH_PLATFORM={}/{}", target("CARGO_CFG_TARGET_OS"), target("CARGO_CFG_TARGET_ARCH"));
}
