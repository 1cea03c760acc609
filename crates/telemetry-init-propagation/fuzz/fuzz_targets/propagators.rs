#![no_main]
//! Any text as an `OTEL_PROPAGATORS` value: never panics; an accepted set
//! prints back to a value that parses to the same set; a refusal names the
//! offending entry (at most 64 characters of it) in its message.

use libfuzzer_sys::fuzz_target;
use telemetry_init_propagation::Propagators;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Propagators::parse(&text) {
        Ok(set) => {
            assert_eq!(Propagators::parse(&set.to_string()), Ok(set));
            assert_eq!(Propagators::from_bits(set.bits()), set);
        }
        Err(e) => {
            assert!(!e.name().is_empty());
            assert!(e.name().chars().count() <= 64);
            assert!(e.to_string().contains(&format!("{:?}", e.name())));
        }
    }
});
