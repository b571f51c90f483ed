//! Any text as a configuration file: a config or an error with a place, never a panic.
#![no_main]

use std::path::Path;

use idauth_exporter::config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let env = |name: &str| (name == "SMILE_ID_API_KEY").then(|| "k".to_owned());
        let _ = config::parse(text, "fuzz.yaml", Path::new("/nonexistent"), &env);
    }
});
