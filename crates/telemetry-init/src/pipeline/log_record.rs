//! Making `SdkLogRecord`s outside the logging path: the SDK lets a
//! processor add attributes to a record but not change or remove them, so
//! the limits and the redaction both rebuild a record that needs it, and
//! the SDK's only constructor for one is a logger.

use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry_sdk::logs::{SdkLogRecord, SdkLogger, SdkLoggerProvider};

/// A logger whose only use is to create empty records; its provider has no
/// processor, so nothing it makes is ever emitted through it.
pub(crate) fn minter(scope: &'static str) -> SdkLogger {
    SdkLoggerProvider::builder().build().logger(scope)
}

/// A record with everything of `from` but its attributes (and its body,
/// when `with_body` is false): name, target, both timestamps, severity and
/// trace context, in a fresh record made by `minter`.
pub(crate) fn copy_without_attributes(
    from: &SdkLogRecord,
    minter: &SdkLogger,
    with_body: bool,
) -> SdkLogRecord {
    let mut out = minter.create_log_record();
    if let Some(n) = from.event_name() {
        out.set_event_name(n);
    }
    if let Some(t) = from.target() {
        out.set_target(t.clone());
    }
    if let Some(t) = from.timestamp() {
        out.set_timestamp(t);
    }
    if let Some(t) = from.observed_timestamp() {
        out.set_observed_timestamp(t);
    }
    if let Some(s) = from.severity_text() {
        out.set_severity_text(s);
    }
    if let Some(s) = from.severity_number() {
        out.set_severity_number(s);
    }
    if let Some(cx) = from.trace_context() {
        out.set_trace_context(cx.trace_id, cx.span_id, cx.trace_flags);
    }
    if with_body && let Some(b) = from.body() {
        out.set_body(b.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::logs::Severity;
    use opentelemetry::trace::TraceFlags;
    use opentelemetry::{SpanId, TraceId};
    use std::time::{Duration, SystemTime};

    #[test]
    fn everything_but_the_attributes_is_copied() {
        let m = minter("test");
        let mut r = m.create_log_record();
        r.set_event_name("checkout.failed");
        r.set_target("demo::checkout");
        r.set_timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(7));
        r.set_observed_timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(8));
        r.set_severity_text("WARN");
        r.set_severity_number(Severity::Warn);
        r.set_trace_context(TraceId::from(3), SpanId::from(4), Some(TraceFlags::SAMPLED));
        r.set_body("body".into());
        r.add_attribute("k", "v");

        let with = copy_without_attributes(&r, &m, true);
        let mut expected = r.clone();
        // Equal once the attribute is added back: nothing else differs.
        let mut with_attr = with.clone();
        with_attr.add_attribute("k", "v");
        assert_eq!(with_attr, expected);
        assert_eq!(with.attributes_iter().count(), 0);

        let without = copy_without_attributes(&r, &m, false);
        assert_eq!(without.body(), None);
        expected = with;
        assert_eq!(without.event_name(), expected.event_name());
        assert_eq!(without.trace_context(), expected.trace_context());
    }
}
