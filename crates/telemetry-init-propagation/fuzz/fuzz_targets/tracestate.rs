#![no_main]
//! Any bytes, split into repeated header values: never panics; an accepted
//! list has at most 32 members, no repeated key, only keys and values of the
//! grammar, and its normalized form is stable.

use libfuzzer_sys::fuzz_target;
use telemetry_init_propagation::Tracestate;
use telemetry_init_propagation::tracestate::{is_valid_key, is_valid_value};

fuzz_target!(|data: &[u8]| {
    let values = data.split(|&b| b == b'\n');
    if let Ok(Some(ts)) = Tracestate::from_values(values) {
        assert!(ts.len() <= 32);
        assert_eq!(ts.iter().count(), ts.len());
        let mut keys: Vec<&str> = Vec::new();
        for (k, v) in ts.iter() {
            assert!(is_valid_key(k.as_bytes()), "{k:?}");
            assert!(is_valid_value(v.as_bytes()), "{v:?}");
            assert!(!keys.contains(&k), "repeated key {k:?}");
            keys.push(k);
        }
        assert_eq!(Tracestate::parse(ts.as_str()), Ok(Some(ts.clone())));
        assert!(ts.to_header_value().is_some());
        let _ = ts.to_trace_state();
    }
});
