//! Any text as a scenario file; a valid scenario's windows are computed without a panic.
#![no_main]

use chrono::{TimeZone, Utc};
use idauth_exporter::simulator::Scenario;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(s) = Scenario::parse(text, "fuzz.yaml")
    {
        let at = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        for p in &s.pairs {
            let v = p.view_at(at, 60.0);
            assert!((0.0..=100.0).contains(&v.rate_10m_percent));
        }
    }
});
