//! Any text as a --web.config.file: settings or an error, never a panic.
#![no_main]

use std::path::Path;

use idauth_exporter::web::auth::WebConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = WebConfig::parse(text, "fuzz.yml", Path::new("/nonexistent"));
    }
});
