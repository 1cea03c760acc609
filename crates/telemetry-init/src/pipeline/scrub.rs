//! The redaction policy ([`crate::redact`]) applied to finished spans and
//! log records, on the export thread (never on a request's thread):
//! secret-named attributes become `REDACTED`, URLs in string values lose
//! their credentials.

use std::borrow::Cow;
use std::sync::OnceLock;

use opentelemetry::logs::{AnyValue, LogRecord as _};
use opentelemetry::trace::Status;
use opentelemetry::{Array, Key, KeyValue, StringValue, Value};
use opentelemetry_sdk::logs::{SdkLogRecord, SdkLogger};
use opentelemetry_sdk::trace::SpanData;

use super::log_record;
use crate::redact::{REDACTED, Redaction};

/// Maps and lists nested deeper than this are replaced whole: the walk
/// never recurses on a depth the data chooses.
const MAX_DEPTH: usize = 8;

fn text(p: &Redaction, s: &str) -> Option<String> {
    match p.redact_text(s) {
        Cow::Owned(o) => Some(o),
        Cow::Borrowed(_) => None,
    }
}

fn scrub_value(p: &Redaction, v: &mut Value) {
    match v {
        Value::String(s) => {
            if let Some(r) = text(p, s.as_str()) {
                *v = Value::String(r.into());
            }
        }
        Value::Array(Array::String(list)) => {
            for s in list.iter_mut() {
                if let Some(r) = text(p, s.as_str()) {
                    *s = StringValue::from(r);
                }
            }
        }
        _ => {}
    }
}

fn scrub_attributes(p: &Redaction, attrs: &mut [KeyValue]) {
    for kv in attrs {
        if p.is_secret_name(kv.key.as_str()) {
            kv.value = Value::from(REDACTED);
        } else {
            scrub_value(p, &mut kv.value);
        }
    }
}

fn scrub_cow(p: &Redaction, s: &mut Cow<'static, str>) {
    if let Some(r) = text(p, s) {
        *s = Cow::Owned(r);
    }
}

/// Redacts a finished span in place: attributes, event names and
/// attributes, the span name and the status message.
pub(crate) fn scrub_span(p: &Redaction, span: &mut SpanData) {
    scrub_cow(p, &mut span.name);
    scrub_attributes(p, &mut span.attributes);
    for e in span.events.events.iter_mut() {
        scrub_cow(p, &mut e.name);
        scrub_attributes(p, &mut e.attributes);
    }
    for l in span.links.links.iter_mut() {
        scrub_attributes(p, &mut l.attributes);
    }
    if let Status::Error { description } = &mut span.status {
        scrub_cow(p, description);
    }
}

/// `None` when `v` needs no change.
fn scrub_any(p: &Redaction, v: &AnyValue, depth: usize) -> Option<AnyValue> {
    match v {
        AnyValue::String(s) => text(p, s.as_str()).map(AnyValue::from),
        AnyValue::ListAny(items) => {
            if depth >= MAX_DEPTH {
                return Some(AnyValue::from(REDACTED));
            }
            let changed: Vec<Option<AnyValue>> =
                items.iter().map(|i| scrub_any(p, i, depth + 1)).collect();
            changed.iter().any(Option::is_some).then(|| {
                AnyValue::ListAny(Box::new(
                    changed
                        .into_iter()
                        .zip(items.iter())
                        .map(|(c, old)| c.unwrap_or_else(|| old.clone()))
                        .collect(),
                ))
            })
        }
        AnyValue::Map(map) => {
            if depth >= MAX_DEPTH {
                return Some(AnyValue::from(REDACTED));
            }
            let needs = map
                .iter()
                .any(|(k, v)| p.is_secret_name(k.as_str()) || scrub_any(p, v, depth + 1).is_some());
            needs.then(|| {
                AnyValue::Map(Box::new(
                    map.iter()
                        .map(|(k, v)| (k.clone(), scrub_kv(p, k, v, depth + 1)))
                        .collect(),
                ))
            })
        }
        _ => None,
    }
}

fn scrub_kv(p: &Redaction, k: &Key, v: &AnyValue, depth: usize) -> AnyValue {
    if p.is_secret_name(k.as_str()) {
        AnyValue::from(REDACTED)
    } else {
        scrub_any(p, v, depth).unwrap_or_else(|| v.clone())
    }
}

/// Makes the records a redacted one is rebuilt in (see `log_record`).
fn minter() -> &'static SdkLogger {
    static MINTER: OnceLock<SdkLogger> = OnceLock::new();
    MINTER.get_or_init(|| log_record::minter("telemetry-init.redact"))
}

/// Redacts a log record: the body (URLs in strings, secret-named map
/// entries) and its attributes. Leaves the record alone (no copy) when
/// nothing is secret.
pub(crate) fn scrub_log(p: &Redaction, record: &mut SdkLogRecord) {
    let body = record.body().and_then(|b| scrub_any(p, b, 0));
    let attrs_need = record
        .attributes_iter()
        .any(|(k, v)| p.is_secret_name(k.as_str()) || scrub_any(p, v, 0).is_some());
    if body.is_none() && !attrs_need {
        return;
    }
    let mut out = log_record::copy_without_attributes(record, minter(), false);
    if let Some(b) = body.or_else(|| record.body().cloned()) {
        out.set_body(b);
    }
    for (k, v) in record.attributes_iter() {
        out.add_attribute(k.clone(), scrub_kv(p, k, v, 0));
    }
    *record = out;
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::logs::Logger as _;
    use opentelemetry::logs::Severity;
    use opentelemetry::trace::{SpanContext, SpanKind, TraceFlags, TraceState};
    use opentelemetry::{SpanId, TraceId};
    use std::collections::HashMap;

    #[test]
    fn log_records_are_rebuilt_only_when_needed() {
        let p = Redaction::new();
        let mut r = minter().create_log_record();
        r.set_body("plain".into());
        r.add_attribute("user", "bob");
        let mut kept = r.clone();
        scrub_log(&p, &mut kept);
        assert_eq!(kept, r);

        let mut r = minter().create_log_record();
        r.set_body("GET http://u:p@h/x?token=t failed".into());
        r.set_severity_number(Severity::Warn);
        r.set_severity_text("WARN");
        r.set_event_name("evt");
        r.set_trace_context(TraceId::from(7), SpanId::from(9), Some(TraceFlags::SAMPLED));
        r.add_attribute("password", "hunter2");
        r.add_attribute("user", "bob");
        let mut nested = HashMap::new();
        nested.insert(Key::from("apiKey"), AnyValue::from("k"));
        nested.insert(Key::from("ok"), AnyValue::from(1i64));
        r.add_attribute("nested", AnyValue::Map(Box::new(nested)));
        let mut out = r;
        scrub_log(&p, &mut out);
        assert_eq!(
            out.body(),
            Some(&AnyValue::from(
                "GET http://REDACTED@h/x?token=REDACTED failed"
            ))
        );
        assert_eq!(out.severity_number(), Some(Severity::Warn));
        assert_eq!(out.severity_text(), Some("WARN"));
        assert_eq!(out.event_name(), Some("evt"));
        assert_eq!(out.trace_context().unwrap().span_id, SpanId::from(9));
        let attrs: HashMap<String, AnyValue> = out
            .attributes_iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        assert_eq!(attrs["password"], AnyValue::from(REDACTED));
        assert_eq!(attrs["user"], AnyValue::from("bob"));
        let AnyValue::Map(m) = &attrs["nested"] else {
            panic!("{attrs:?}")
        };
        assert_eq!(m[&Key::from("apiKey")], AnyValue::from(REDACTED));
        assert_eq!(m[&Key::from("ok")], AnyValue::from(1i64));
    }

    #[test]
    fn deep_values_are_cut_not_walked() {
        let mut v = AnyValue::from("http://u:p@h/");
        for _ in 0..100 {
            v = AnyValue::ListAny(Box::new(vec![v]));
        }
        let out = scrub_any(&Redaction::new(), &v, 0).expect("changed");
        let mut depth = 0;
        let mut cur = &out;
        while let AnyValue::ListAny(items) = cur {
            depth += 1;
            cur = &items[0];
        }
        assert_eq!(depth, MAX_DEPTH);
        assert_eq!(cur, &AnyValue::from(REDACTED));
    }

    #[test]
    fn spans_are_scrubbed_in_place() {
        let mut span = SpanData {
            span_context: SpanContext::new(
                TraceId::from(1),
                SpanId::from(2),
                TraceFlags::SAMPLED,
                false,
                TraceState::NONE,
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: "work".into(),
            start_time: std::time::SystemTime::UNIX_EPOCH,
            end_time: std::time::SystemTime::UNIX_EPOCH,
            attributes: vec![
                KeyValue::new("db.password", "pw"),
                KeyValue::new("target", "http://a:b@db:5432/x"),
                KeyValue::new("count", 3),
            ],
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: Status::error("connect http://a:b@db failed"),
            instrumentation_scope: Default::default(),
        };
        span.events.events.push(opentelemetry::trace::Event::new(
            "exception",
            std::time::SystemTime::UNIX_EPOCH,
            vec![KeyValue::new("exception.message", "GET http://h/?sig=s")],
            0,
        ));
        scrub_span(&Redaction::new(), &mut span);
        assert_eq!(span.attributes[0].value, Value::from(REDACTED));
        assert_eq!(
            span.attributes[1].value,
            Value::from("http://REDACTED@db:5432/x")
        );
        assert_eq!(span.attributes[2].value, Value::from(3));
        assert_eq!(
            span.status,
            Status::error("connect http://REDACTED@db failed")
        );
        assert_eq!(
            span.events.events[0].attributes[0].value,
            Value::from("GET http://h/?sig=REDACTED")
        );
    }
}
