#![no_main]
//! Any bytes, split into repeated header values: never panics; an accepted
//! list has at most 32 members and its normalized form is stable.

use libfuzzer_sys::fuzz_target;
use telemetry_init_propagation::Tracestate;

fuzz_target!(|data: &[u8]| {
    let values = data.split(|&b| b == b'\n');
    if let Ok(Some(ts)) = Tracestate::from_values(values) {
        assert!(ts.len() <= 32);
        assert_eq!(Tracestate::parse(ts.as_str()), Ok(Some(ts.clone())));
        assert!(ts.to_header_value().is_some());
        let _ = ts.to_trace_state();
    }
});
