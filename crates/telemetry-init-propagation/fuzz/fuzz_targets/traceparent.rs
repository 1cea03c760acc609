#![no_main]
//! Any bytes: parsing never panics, and whatever is accepted re-formats to a
//! canonical value that parses back to the same ids and flags.

use libfuzzer_sys::fuzz_target;
use telemetry_init_propagation::{Traceparent, extract_from_values};

fuzz_target!(|data: &[u8]| {
    if let Ok(tp) = Traceparent::parse_bytes(data) {
        let text = tp.to_string();
        assert_eq!(text.len(), 55);
        let again = Traceparent::parse(&text).expect("canonical form parses");
        assert_eq!(
            (again.trace_id, again.parent_id, again.flags),
            (tp.trace_id, tp.parent_id, tp.flags)
        );
    }
    // Split the input into several header values, as repeated headers.
    let values: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let e = extract_from_values(values.iter().copied(), values.iter().copied(), []);
    assert!(e.span_context.is_some() != e.traceparent_error.is_some());
});
