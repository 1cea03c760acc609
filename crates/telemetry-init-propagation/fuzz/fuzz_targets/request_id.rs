#![no_main]
//! Any bytes: sanitize accepts exactly 1..=128 visible ASCII characters and
//! returns them unchanged.

use libfuzzer_sys::fuzz_target;
use telemetry_init_propagation::RequestId;

fuzz_target!(|data: &[u8]| {
    let expected = !data.is_empty() && data.len() <= 128 && data.iter().all(u8::is_ascii_graphic);
    match RequestId::sanitize_bytes(data) {
        Some(id) => {
            assert!(expected);
            assert_eq!(id.as_str().as_bytes(), data);
            assert_eq!(RequestId::sanitize(&id.to_header_value()), Some(id));
        }
        None => assert!(!expected),
    }
    if let Ok(v) = http::HeaderValue::from_bytes(data) {
        assert_eq!(RequestId::sanitize(&v).is_some(), expected);
    }
});
