//! [`Value`]: a typed, owned view of an OTLP `AnyValue`.

use std::collections::BTreeMap;
use std::fmt;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};

/// An attribute value, log body or any other OTLP `AnyValue`, decoded.
///
/// It serializes to plain JSON (`"text"`, `42`, `true`, `[..]`, `{..}`);
/// [`Value::Bytes`] serializes as a lowercase hex string and
/// [`Value::Empty`] as `null`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A UTF-8 string.
    String(String),
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Double(f64),
    /// A homogeneous or heterogeneous array.
    Array(Vec<Value>),
    /// A key/value list (OTLP `kvlistValue`).
    Map(BTreeMap<String, Value>),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// An `AnyValue` with no value set.
    Empty,
}

impl Value {
    /// The string, if this is a [`Value::String`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is a [`Value::Int`].
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The number as `f64`, if this is a [`Value::Double`] or a [`Value::Int`].
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Double(d) => Some(*d),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The boolean, if this is a [`Value::Bool`].
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The elements, if this is a [`Value::Array`].
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The entries, if this is a [`Value::Map`].
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The bytes, if this is a [`Value::Bytes`].
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// Every string contained in this value, recursively (array elements and
    /// map values included), in order.
    pub fn strings(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_strings(&mut out);
        out
    }

    fn collect_strings<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Value::String(s) => out.push(s),
            Value::Array(a) => a.iter().for_each(|v| v.collect_strings(out)),
            Value::Map(m) => m.values().for_each(|v| v.collect_strings(out)),
            _ => {}
        }
    }
}

impl fmt::Display for Value {
    /// Strings print bare; everything else prints as its JSON form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(s) => f.write_str(s),
            other => {
                let json = serde_json::to_string(other).map_err(|_| fmt::Error)?;
                f.write_str(&json)
            }
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(d: f64) -> Self {
        Value::Double(d)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::String(s) => serializer.serialize_str(s),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(i) => serializer.serialize_i64(*i),
            Value::Double(d) => serializer.serialize_f64(*d),
            Value::Array(a) => {
                let mut seq = serializer.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Value::Map(m) => {
                let mut map = serializer.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Value::Bytes(b) => serializer.serialize_str(&hex(b)),
            Value::Empty => serializer.serialize_none(),
        }
    }
}

/// Arrays and maps nested deeper than this are not walked: the level at the
/// limit becomes [`TOO_DEEP`]. Decoders already refuse absurd depths
/// (prost at 100, serde_json at 128); this keeps every later walk (storage
/// accounting, snapshots, assertions) shallow whatever a client sends.
pub const MAX_VALUE_DEPTH: usize = 16;

/// What replaces a value nested deeper than [`MAX_VALUE_DEPTH`].
pub const TOO_DEEP: &str = "[nested deeper than 16 levels]";

impl From<&AnyValue> for Value {
    fn from(v: &AnyValue) -> Self {
        convert(v, 0)
    }
}

fn convert(v: &AnyValue, depth: usize) -> Value {
    let nested = matches!(
        &v.value,
        Some(any_value::Value::ArrayValue(_) | any_value::Value::KvlistValue(_))
    );
    if nested && depth >= MAX_VALUE_DEPTH {
        return Value::String(TOO_DEEP.to_owned());
    }
    match &v.value {
        // A string-table reference is only meaningful inside profiles.
        None | Some(any_value::Value::StringValueStrindex(_)) => Value::Empty,
        Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Value::Int(*i),
        Some(any_value::Value::DoubleValue(d)) => Value::Double(*d),
        Some(any_value::Value::ArrayValue(a)) => {
            Value::Array(a.values.iter().map(|v| convert(v, depth + 1)).collect())
        }
        Some(any_value::Value::KvlistValue(kv)) => Value::Map(map_at(&kv.values, depth + 1)),
        Some(any_value::Value::BytesValue(b)) => Value::Bytes(b.clone()),
    }
}

/// Converts OTLP key/values into a sorted map (a later duplicate key wins).
pub(crate) fn attributes_map(kvs: &[KeyValue]) -> BTreeMap<String, Value> {
    map_at(kvs, 0)
}

fn map_at(kvs: &[KeyValue], depth: usize) -> BTreeMap<String, Value> {
    kvs.iter()
        .map(|kv| {
            let value = kv
                .value
                .as_ref()
                .map(|v| convert(v, depth))
                .unwrap_or(Value::Empty);
            (kv.key.clone(), value)
        })
        .collect()
}

/// Lowercase hex encoding.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    s
}

/// Hex of an id, or `None` when it is empty or all zeroes (the OTLP "unset").
pub(crate) fn optional_id(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() || bytes.iter().all(|b| *b == 0) {
        None
    } else {
        Some(hex(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_plain_json() {
        let mut m = BTreeMap::new();
        m.insert("k".to_owned(), Value::Int(3));
        let v = Value::Array(vec![
            Value::from("a"),
            Value::Bool(true),
            Value::Double(1.5),
            Value::Map(m),
            Value::Bytes(vec![0xab, 0x01]),
            Value::Empty,
        ]);
        assert_eq!(
            serde_json::to_value(&v).unwrap(),
            serde_json::json!(["a", true, 1.5, {"k": 3}, "ab01", null])
        );
        assert_eq!(v.strings(), vec!["a"]);
    }

    #[test]
    fn ids() {
        assert_eq!(optional_id(&[0; 8]), None);
        assert_eq!(optional_id(&[]), None);
        assert_eq!(optional_id(&[0, 1]).as_deref(), Some("0001"));
    }

    #[test]
    fn nesting_is_cut_at_a_fixed_depth() {
        use opentelemetry_proto::tonic::common::v1::ArrayValue;
        let mut v = AnyValue {
            value: Some(any_value::Value::StringValue("leaf".into())),
        };
        for _ in 0..90 {
            v = AnyValue {
                value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![v] })),
            };
        }
        let mut converted = Value::from(&v);
        let mut depth = 0;
        while let Value::Array(mut items) = converted {
            depth += 1;
            converted = items.remove(0);
        }
        assert_eq!(depth, MAX_VALUE_DEPTH);
        assert_eq!(converted, Value::String(TOO_DEEP.to_owned()));
    }
}
