//! Compact, bounded JSON encoding of OTLP values for storage.
//!
//! Everything taken from the network is bounded here before it is stored:
//! strings are cut at [`MAX_STRING_BYTES`] (on a char boundary, marked with
//! `…`), attribute lists at [`MAX_ATTRIBUTES`] entries, nesting at
//! [`MAX_DEPTH`] levels.

use std::fmt::Write as _;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};

/// Longest stored string (attribute value, log body, name), in bytes.
pub(crate) const MAX_STRING_BYTES: usize = 16 * 1024;
/// Longest stored name or key, in bytes.
pub(crate) const MAX_NAME_BYTES: usize = 1024;
/// Most attributes stored per item; the rest are dropped.
pub(crate) const MAX_ATTRIBUTES: usize = 256;
/// Deepest nesting of arrays/maps stored; deeper values become `"…"`.
pub(crate) const MAX_DEPTH: usize = 8;

/// `s` cut to at most `max` bytes on a char boundary.
pub(crate) fn bounded(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn push_json_str(out: &mut String, s: &str, max: usize) {
    let cut = bounded(s, max);
    out.push('"');
    for c in cut.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    if cut.len() < s.len() {
        out.push('…');
    }
    out.push('"');
}

fn push_f64(out: &mut String, d: f64) {
    if d.is_finite() {
        let _ = write!(out, "{d}");
        if d.fract() == 0.0 && d.abs() < 1e15 {
            // keep it a float for readers that care
            out.push_str(".0");
        }
    } else if d.is_nan() {
        out.push_str("\"NaN\"");
    } else if d > 0.0 {
        out.push_str("\"Infinity\"");
    } else {
        out.push_str("\"-Infinity\"");
    }
}

/// Appends `v` as JSON (bytes as lower-case hex).
pub(crate) fn push_any(out: &mut String, v: Option<&AnyValue>, depth: usize) {
    let Some(value) = v.and_then(|v| v.value.as_ref()) else {
        out.push_str("null");
        return;
    };
    if depth >= MAX_DEPTH {
        out.push_str("\"…\"");
        return;
    }
    match value {
        any_value::Value::StringValue(s) => push_json_str(out, s, MAX_STRING_BYTES),
        any_value::Value::BoolValue(b) => out.push_str(if *b { "true" } else { "false" }),
        any_value::Value::IntValue(i) => {
            let _ = write!(out, "{i}");
        }
        any_value::Value::DoubleValue(d) => push_f64(out, *d),
        any_value::Value::BytesValue(b) => {
            out.push('"');
            push_hex(out, &b[..b.len().min(MAX_STRING_BYTES / 2)]);
            out.push('"');
        }
        any_value::Value::ArrayValue(a) => {
            out.push('[');
            for (i, v) in a.values.iter().take(MAX_ATTRIBUTES).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_any(out, Some(v), depth + 1);
            }
            out.push(']');
        }
        any_value::Value::KvlistValue(kv) => push_kvs(out, &kv.values, depth + 1),
        // An index into a profiles string table, meaningless without it.
        any_value::Value::StringValueStrindex(_) => out.push_str("null"),
    }
}

fn push_kvs(out: &mut String, kvs: &[KeyValue], depth: usize) {
    push_kvs_skipping(out, kvs, depth, &[]);
}

fn push_kvs_skipping(out: &mut String, kvs: &[KeyValue], depth: usize, skip: &[&str]) {
    out.push('{');
    let mut first = true;
    for kv in kvs.iter().take(MAX_ATTRIBUTES) {
        if skip.contains(&kv.key.as_str()) {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        push_json_str(out, &kv.key, MAX_NAME_BYTES);
        out.push(':');
        push_any(out, kv.value.as_ref(), depth);
    }
    out.push('}');
}

/// Attributes as a compact JSON object, `None` when there are none (stored
/// as NULL: an empty object would cost bytes on every row).
pub(crate) fn attributes_json(kvs: &[KeyValue]) -> Option<String> {
    if kvs.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(32 * kvs.len());
    push_kvs(&mut out, kvs, 0);
    Some(out)
}

/// Like [`attributes_json`] without the keys in `skip` (stored in columns).
pub(crate) fn attributes_json_skipping(kvs: &[KeyValue], skip: &[&str]) -> Option<String> {
    if kvs.iter().all(|kv| skip.contains(&kv.key.as_str())) {
        return None;
    }
    let mut out = String::with_capacity(32 * kvs.len());
    push_kvs_skipping(&mut out, kvs, 0, skip);
    Some(out)
}

/// Attributes as JSON, `"{}"` when empty (for UNIQUE keys).
pub(crate) fn attributes_json_or_empty(kvs: &[KeyValue]) -> String {
    attributes_json(kvs).unwrap_or_else(|| "{}".to_owned())
}

/// A log body: strings are stored as they are (bounded), anything else as JSON.
pub(crate) fn body_text(v: Option<&AnyValue>) -> Option<String> {
    match v.and_then(|v| v.value.as_ref()) {
        None => None,
        Some(any_value::Value::StringValue(s)) => {
            let cut = bounded(s, MAX_STRING_BYTES);
            let mut out = cut.to_owned();
            if cut.len() < s.len() {
                out.push('…');
            }
            Some(out)
        }
        Some(_) => {
            let mut out = String::new();
            push_any(&mut out, v, 0);
            Some(out)
        }
    }
}

/// A bounded owned copy of a name.
pub(crate) fn name(s: &str) -> &str {
    bounded(s, MAX_NAME_BYTES)
}

/// The string value of attribute `key`, if present and a string.
pub(crate) fn str_attr<'a>(kvs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    kvs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => Some(s.as_str()),
            _ => None,
        }
    })
}

/// The integer value of attribute `key` (an int, or a string of digits).
pub(crate) fn int_attr(kvs: &[KeyValue], key: &str) -> Option<i64> {
    kvs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::IntValue(i)) => Some(*i),
            Some(any_value::Value::StringValue(s)) => s.parse().ok(),
            _ => None,
        }
    })
}

/// Appends `bytes` as lower-case hex.
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
}

/// `bytes` as lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

/// Parses a lower- or upper-case hex id of exactly `len` bytes.
pub(crate) fn parse_hex(s: &str, len: usize) -> Option<Vec<u8>> {
    if s.len() != len * 2 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// An id worth storing: right length and not all zeros.
pub(crate) fn valid_id(bytes: &[u8], len: usize) -> bool {
    bytes.len() == len && bytes.iter().any(|b| *b != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::ArrayValue;

    fn kv(key: &str, v: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    #[test]
    fn attributes_are_valid_json() {
        let kvs = vec![
            kv("s", any_value::Value::StringValue("a\"b\n\u{1}".into())),
            kv("i", any_value::Value::IntValue(-3)),
            kv("d", any_value::Value::DoubleValue(2.0)),
            kv("n", any_value::Value::DoubleValue(f64::NAN)),
            kv("b", any_value::Value::BytesValue(vec![0xab, 1])),
            kv(
                "a",
                any_value::Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(any_value::Value::BoolValue(true)),
                    }],
                }),
            ),
        ];
        let json = attributes_json(&kvs).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["s"], "a\"b\n\u{1}");
        assert_eq!(v["i"], -3);
        assert_eq!(v["d"], 2.0);
        assert_eq!(v["n"], "NaN");
        assert_eq!(v["b"], "ab01");
        assert_eq!(v["a"][0], true);
        assert_eq!(attributes_json(&[]), None);
    }

    #[test]
    fn long_strings_and_deep_values_are_bounded() {
        let long = "é".repeat(MAX_STRING_BYTES);
        let json = attributes_json(&[kv("k", any_value::Value::StringValue(long))]).unwrap();
        assert!(json.len() < MAX_STRING_BYTES + 32);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert!(v["k"].as_str().unwrap().ends_with('…'));

        let mut deep = AnyValue {
            value: Some(any_value::Value::IntValue(1)),
        };
        for _ in 0..1000 {
            deep = AnyValue {
                value: Some(any_value::Value::ArrayValue(ArrayValue {
                    values: vec![deep],
                })),
            };
        }
        let mut out = String::new();
        push_any(&mut out, Some(&deep), 0);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(out.len() < 64, "{out}");
        assert!(v.is_array());
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex(&[0, 255, 16]), "00ff10");
        assert_eq!(parse_hex("00FF10", 3), Some(vec![0, 255, 16]));
        assert_eq!(parse_hex("00ff1", 3), None);
        assert_eq!(parse_hex("zz", 1), None);
        assert!(!valid_id(&[0; 8], 8));
        assert!(valid_id(&[0, 0, 0, 0, 0, 0, 0, 1], 8));
    }
}
