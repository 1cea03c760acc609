#![no_main]
//! Any bytes: parsing never panics, whatever is accepted re-formats to a
//! canonical value that parses back to the same ids and flags, and only the
//! defined flag bits (sampled, random) are ever kept or sent on.

use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use opentelemetry::Context;
use telemetry_init_propagation::traceparent::KNOWN_FLAGS;
use telemetry_init_propagation::{Traceparent, extract_from_values, inject_context};

fuzz_target!(|data: &[u8]| {
    if let Ok(tp) = Traceparent::parse_bytes(data) {
        assert_eq!(tp.flags.to_u8() & !KNOWN_FLAGS, 0);
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
    // Whatever was extracted goes out with defined flags only.
    let mut out = HeaderMap::new();
    inject_context(&e.into_context(&Context::new()), &mut out);
    if let Some(v) = out.get("traceparent") {
        let tp = Traceparent::parse_bytes(v.as_bytes()).expect("we send what we parse");
        assert_eq!(tp.flags.to_u8() & !KNOWN_FLAGS, 0);
    }
});
