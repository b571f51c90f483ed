//! Any bytes as a provider answer: parsed or classified, never a panic, rates in range.
#![no_main]

use idauth_exporter::smileid::{classify_failure, parse_status_body};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(o) = parse_status_body(data) {
        for r in [o.rate_10m, o.rate_1h].into_iter().flatten() {
            assert!((0.0..=1.0).contains(&r.as_f64()), "{r:?}");
        }
    }
    for status in [200, 302, 400, 401, 429, 500] {
        let _ = classify_failure(status, data).reason();
    }
});
