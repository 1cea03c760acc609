//! Attribute limits on what is exported, as the OpenTelemetry SDK
//! specification defines them, and the size estimate the queues count.
//!
//! Applied when a span ends or a log record is emitted, before it is
//! queued, so the queue holds only what will be sent. The common case (no
//! value over the limit) is one walk over the attributes that reads
//! lengths; only a value over the limit is copied, cut, and the original
//! freed.
//!
//! Spec rules: a string value longer than the limit (counting characters)
//! is cut to the limit; arrays are cut element by element; byte arrays to
//! the limit in bytes; other values are untouched. Counts are the SDK's job
//! for spans (`SpanLimits`); for log records the bridge has no limit, so
//! attributes over the count are dropped here.

use std::mem::size_of;

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _};
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_sdk::logs::{SdkLogRecord, SdkLogger};
use opentelemetry_sdk::trace::SpanData;

use super::log_record;
use crate::config::LogLimits;

/// `s` cut to at most `max` characters; `None` when it already fits.
/// Never allocates; counts characters only when the byte length is over.
fn cut(s: &str, max: usize) -> Option<&str> {
    if s.len() <= max {
        return None;
    }
    s.char_indices().nth(max).map(|(i, _)| &s[..i])
}

fn limit_string(s: &mut StringValue, max: usize) -> bool {
    match cut(s.as_str(), max) {
        Some(short) => {
            *s = StringValue::from(short.to_owned());
            true
        }
        None => false,
    }
}

fn limit_value(v: &mut Value, max: usize) {
    match v {
        Value::String(s) => {
            limit_string(s, max);
        }
        Value::Array(Array::String(items)) => {
            for s in items {
                limit_string(s, max);
            }
        }
        _ => {}
    }
}

fn kvs_size(kvs: &[KeyValue]) -> usize {
    kvs.iter()
        .map(|kv| size_of::<KeyValue>() + kv.key.as_str().len() + value_size(&kv.value))
        .sum()
}

fn value_size(v: &Value) -> usize {
    match v {
        Value::String(s) => s.as_str().len(),
        Value::Array(Array::String(items)) => items
            .iter()
            .map(|s| size_of::<StringValue>() + s.as_str().len())
            .sum(),
        Value::Array(Array::I64(a)) => a.len() * 8,
        Value::Array(Array::F64(a)) => a.len() * 8,
        Value::Array(Array::Bool(a)) => a.len(),
        _ => 0,
    }
}

/// Applies the attribute value length limit to a span, its events and its
/// links, and returns its approximate size (see [`span_size`]).
pub(crate) fn limit_span(span: &mut SpanData, max_len: Option<usize>) -> usize {
    if let Some(max) = max_len {
        let events = span.events.events.iter_mut().map(|e| &mut e.attributes);
        let links = span.links.links.iter_mut().map(|l| &mut l.attributes);
        for kvs in std::iter::once(&mut span.attributes)
            .chain(events)
            .chain(links)
        {
            for kv in kvs.iter_mut() {
                limit_value(&mut kv.value, max);
            }
        }
    }
    span_size(span)
}

/// A span's approximate size in memory, for the queue's byte budget. It
/// is never below its OTLP encoding (every value is counted with at least
/// the bytes of its fixed-size struct, more than a protobuf tag and length).
pub(crate) fn span_size(span: &SpanData) -> usize {
    let mut size = size_of::<SpanData>() + span.name.len() + kvs_size(&span.attributes);
    for e in span.events.events.iter() {
        size += size_of::<opentelemetry::trace::Event>() + e.name.len() + kvs_size(&e.attributes);
    }
    for l in span.links.links.iter() {
        size += size_of::<opentelemetry::trace::Link>() + kvs_size(&l.attributes);
    }
    if let opentelemetry::trace::Status::Error { description } = &span.status {
        size += description.len();
    }
    size
}

fn any_size(v: &AnyValue) -> usize {
    size_of::<AnyValue>()
        + match v {
            AnyValue::String(s) => s.as_str().len(),
            AnyValue::Bytes(b) => b.len(),
            AnyValue::ListAny(items) => items.iter().map(any_size).sum(),
            AnyValue::Map(m) => m.iter().map(|(k, v)| k.as_str().len() + any_size(v)).sum(),
            _ => 0,
        }
}

/// Whether `v` has a string (or bytes) over `max`, at any depth.
fn any_over(v: &AnyValue, max: usize) -> bool {
    match v {
        AnyValue::String(s) => cut(s.as_str(), max).is_some(),
        AnyValue::Bytes(b) => b.len() > max,
        AnyValue::ListAny(items) => items.iter().any(|v| any_over(v, max)),
        AnyValue::Map(m) => m.values().any(|v| any_over(v, max)),
        _ => false,
    }
}

fn any_limited(v: &AnyValue, max: usize) -> AnyValue {
    match v {
        AnyValue::String(s) => match cut(s.as_str(), max) {
            Some(short) => AnyValue::String(short.to_owned().into()),
            None => v.clone(),
        },
        AnyValue::Bytes(b) if b.len() > max => AnyValue::Bytes(Box::new(b[..max].to_vec())),
        AnyValue::ListAny(items) => AnyValue::ListAny(Box::new(
            items.iter().map(|v| any_limited(v, max)).collect(),
        )),
        AnyValue::Map(m) => AnyValue::Map(Box::new(
            m.iter()
                .map(|(k, v)| (k.clone(), any_limited(v, max)))
                .collect(),
        )),
        other => other.clone(),
    }
}

/// The log record to queue: `record` itself when it is within `limits`
/// (taken, an empty record left in its place), else a copy with the
/// attributes over the count left out and long values cut (`record` left
/// as it was). Returns it with its approximate size in memory.
///
/// WHY taken, not cloned: the SDK hands each processor `&mut` to a record
/// it drops right after, and ours is the provider's only processor (see
/// `build.rs`), so a clone only copied the body and every attribute
/// string once more on the request thread.
pub(crate) fn limit_log(
    record: &mut SdkLogRecord,
    limits: &LogLimits,
    minter: &SdkLogger,
) -> (SdkLogRecord, usize) {
    let max_count = limits.attributes as usize;
    let max_len = limits.attribute_value_length;
    let mut size = size_of::<SdkLogRecord>() + record.body().map_or(0, any_size);
    let mut count = 0;
    let mut over = false;
    for (k, v) in record.attributes_iter() {
        count += 1;
        size += k.as_str().len() + any_size(v);
        over |= max_len.is_some_and(|max| any_over(v, max));
    }
    if count <= max_count && !over {
        return (std::mem::replace(record, minter.create_log_record()), size);
    }
    let mut out = log_record::copy_without_attributes(record, minter, true);
    let mut size = size_of::<SdkLogRecord>() + record.body().map_or(0, any_size);
    for (k, v) in record.attributes_iter().take(max_count) {
        let v = match max_len {
            Some(max) => any_limited(v, max),
            None => v.clone(),
        };
        size += k.as_str().len() + any_size(&v);
        out.add_attribute(k.clone(), v);
    }
    (out, size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::InstrumentationScope;
    use opentelemetry::trace::{
        SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use std::borrow::Cow;
    use std::time::SystemTime;

    fn span(attributes: Vec<KeyValue>) -> SpanData {
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(1),
                SpanId::from(1),
                TraceFlags::SAMPLED,
                false,
                TraceState::NONE,
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Server,
            name: Cow::Borrowed("s"),
            start_time: SystemTime::UNIX_EPOCH,
            end_time: SystemTime::UNIX_EPOCH,
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("t").build(),
        }
    }

    #[test]
    fn strings_are_cut_by_characters_arrays_element_wise() {
        let mut s = span(vec![
            KeyValue::new("short", "abc"),
            KeyValue::new("long", "é".repeat(10)),
            KeyValue::new("n", 123_456_789_i64),
            KeyValue::new(
                "list",
                Value::Array(Array::String(vec!["123456".into(), "12".into()])),
            ),
        ]);
        let before = limit_span(&mut s.clone(), None);
        let after = limit_span(&mut s, Some(4));
        assert!(after < before);
        assert_eq!(s.attributes[0].value, Value::from("abc"));
        assert_eq!(s.attributes[1].value, Value::from("éééé"));
        assert_eq!(s.attributes[2].value, Value::I64(123_456_789));
        assert_eq!(
            s.attributes[3].value,
            Value::Array(Array::String(vec!["1234".into(), "12".into()]))
        );
    }

    #[test]
    fn log_records_over_the_limits_are_rebuilt() {
        let minter = log_record::minter("test");
        let mut r = minter.create_log_record();
        r.set_body("body".into());
        r.set_severity_text("INFO");
        r.set_trace_context(TraceId::from(7), SpanId::from(9), Some(TraceFlags::SAMPLED));
        for i in 0..5 {
            r.add_attribute(format!("k{i}"), "x".repeat(100));
        }
        r.add_attribute("bytes", AnyValue::Bytes(Box::new(vec![1; 100])));
        let limits = LogLimits {
            attributes: 128,
            attribute_value_length: None,
        };
        let original = r.clone();
        let mut taken = r.clone();
        let (same, size) = limit_log(&mut taken, &limits, &minter);
        assert_eq!(same, original, "within the limits: unchanged");
        assert_eq!(taken, minter.create_log_record(), "taken, not cloned");
        assert!(size > 500);

        let limits = LogLimits {
            attributes: 3,
            attribute_value_length: Some(10),
        };
        let mut kept = r.clone();
        let (cut, small) = limit_log(&mut kept, &limits, &minter);
        assert_eq!(kept, r, "over the limits: the record is copied, not taken");
        assert!(small < size);
        let attrs: Vec<_> = cut.attributes_iter().collect();
        assert_eq!(attrs.len(), 3);
        assert_eq!(attrs[0].1, AnyValue::String("x".repeat(10).into()));
        assert_eq!(cut.body(), r.body());
        assert_eq!(cut.severity_text(), Some("INFO"));
        assert_eq!(cut.trace_context(), r.trace_context());

        let limits = LogLimits {
            attributes: 128,
            attribute_value_length: Some(10),
        };
        let (cut, _) = limit_log(&mut r.clone(), &limits, &minter);
        let bytes = cut
            .attributes_iter()
            .find(|(k, _)| k.as_str() == "bytes")
            .unwrap();
        assert_eq!(bytes.1, AnyValue::Bytes(Box::new(vec![1; 10])));
    }
}
