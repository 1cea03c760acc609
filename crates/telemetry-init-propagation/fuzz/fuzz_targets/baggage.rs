#![no_main]
//! Any bytes, split into repeated header values: never panics, respects the
//! limits, and format → parse is lossless.

use libfuzzer_sys::fuzz_target;
use telemetry_init_propagation::{BaggageLimits, W3cBaggage};

fuzz_target!(|data: &[u8]| {
    let limits = BaggageLimits::default();
    let (b, _report) = W3cBaggage::from_values_lossy(data.split(|&b| b == b'\n'), limits);
    assert!(b.len() <= limits.max_members);
    let (header, report) = b.to_header_with(limits);
    assert!(header.len() <= limits.max_bytes);
    assert!(http::HeaderValue::from_str(&header).is_ok());
    let (again, again_report) = W3cBaggage::from_values_lossy([header.as_bytes()], limits);
    assert!(again_report.is_clean());
    if report.is_clean() {
        assert_eq!(again, b);
    }
    let (otel, _refused) = b.to_opentelemetry();
    let _ = W3cBaggage::from_opentelemetry(&otel).to_header();
});
