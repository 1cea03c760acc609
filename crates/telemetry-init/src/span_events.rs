//! `tracing` events inside a span, copied onto the exported span as span
//! events; an event carrying an error value becomes an `exception` event.
//!
//! Which events: those at or above `TELEMETRY_SPAN_EVENTS_LEVEL`
//! ([`Builder::span_events_level`](crate::Builder::span_events_level);
//! `warn` by default) that the export filter lets through. The event is
//! attached to the closest enclosing span that is exported (the request's
//! SERVER span when the handler opened no span of its own). The event is
//! still exported once as a log record; the span event is a copy, so a
//! trace viewer shows what went wrong where it happened.
//!
//! An event with a field recorded as an error value
//! (`error!(error = &err as &dyn std::error::Error, "…")`) becomes an event
//! named `exception` with the semantic-convention attributes
//! `exception.type` (the error's type name as its `Debug` output starts,
//! the convention of Rust error reporters, since a `dyn Error` does not
//! know its type name), `exception.message` (its `Display`, then its
//! `source()` chain joined by `": "`) and `exception.stacktrace` only when
//! the event carries one as a field of that name: stable Rust offers no way
//! to take a backtrace out of a `dyn Error`. Other fields (and `message`)
//! are kept as attributes.
//!
//! Bounds: the number of events per span is the SDK's
//! `OTEL_SPAN_EVENT_COUNT_LIMIT` (extra events are dropped and counted in
//! the span's dropped-events count), the attributes per event
//! `OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT`; every string is cut to
//! `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT` (or 16 KiB when none is set) while it is formatted, so a huge `Debug` output is never
//! built. Secret-named attributes and URLs in values are redacted on export
//! like every span attribute (see [`crate::redact`]).
//!
//! Cost: one level comparison for an exported event below the level, and
//! nothing for a request without events: span events share the log
//! bridge's layer and filter ([`EventExport`]).

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::{KeyValue, StringValue, Value};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::logs::DispatchSlot;

/// The longest string (bytes) kept in a span event when no attribute value
/// length limit is configured.
pub(crate) const MAX_VALUE_BYTES: usize = 16 * 1024;

/// How many `source()` levels `exception.message` follows.
const MAX_SOURCES: usize = 8;

/// Copies events into span events; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct SpanEvents {
    pub(crate) dispatch: DispatchSlot,
    /// Events at or above this level are copied.
    pub(crate) level: LevelFilter,
    /// Longest string value, in characters (`None`: [`MAX_VALUE_BYTES`] bytes).
    pub(crate) value_length: Option<usize>,
}

impl SpanEvents {
    fn on_event<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if *event.metadata().level() > self.level {
            return;
        }
        let span = match event.parent() {
            Some(id) => ctx.span(id),
            None if event.is_contextual() => ctx.lookup_current(),
            None => None,
        };
        let Some(span) = span else { return };
        let Some(dispatch) = self.dispatch.get() else {
            return;
        };
        // The closest span OpenTelemetry knows (spans the export filter
        // left out have no OpenTelemetry span to carry the event).
        let Some(cx) = span
            .scope()
            .find_map(|s| tracing_opentelemetry::get_otel_context(&s.id(), &dispatch))
        else {
            return;
        };
        let otel_span = cx.span();
        if !otel_span.is_recording() {
            return;
        }
        let mut v = EventVisitor::new(self.value_length, event.fields().count());
        event.record(&mut v);
        let meta = event.metadata();
        let (name, attributes) = v.finish(meta.level().as_str(), meta.target());
        otel_span.add_event(name, attributes);
    }
}

/// The exported side of events, behind the export filter: log records
/// (the OpenTelemetry log bridge) and span events.
///
/// One layer for both, not two: every per-layer-filtered layer costs a
/// span lookup on each span callback (enter, exit, close) of every span,
/// even when it only wants events; sharing the bridge's filter keeps a
/// request without events exactly as cheap as before span events existed.
pub(crate) struct EventExport {
    /// The log bridge; its `Layer` implementation has `on_event` only (its
    /// span callbacks are behind an off-by-default feature), which is all
    /// this forwards.
    pub(crate) logs: Option<LogBridge>,
    pub(crate) span_events: Option<SpanEvents>,
}

/// The OpenTelemetry log bridge over the SDK's provider.
pub(crate) type LogBridge = opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge<
    opentelemetry_sdk::logs::SdkLoggerProvider,
    opentelemetry_sdk::logs::SdkLogger,
>;

impl<S> Layer<S> for EventExport
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if let Some(logs) = &self.logs {
            logs.on_event(event, ctx.clone());
        }
        if let Some(span_events) = &self.span_events {
            span_events.on_event(event, &ctx);
        }
    }
}

/// A string that stops growing at its bound: formatting into it fails
/// once full, which ends the `Display`/`Debug` call early.
struct Bounded {
    text: String,
    max_chars: usize,
    max_bytes: usize,
    chars: usize,
}

impl Bounded {
    fn new(value_length: Option<usize>) -> Self {
        Self {
            text: String::new(),
            max_chars: value_length.unwrap_or(usize::MAX),
            max_bytes: if value_length.is_some() {
                usize::MAX
            } else {
                MAX_VALUE_BYTES
            },
            chars: 0,
        }
    }

    fn format(value_length: Option<usize>, args: fmt::Arguments<'_>) -> String {
        let mut b = Self::new(value_length);
        let _ = b.write_fmt(args);
        b.text
    }
}

impl fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if self.chars >= self.max_chars || self.text.len() + c.len_utf8() > self.max_bytes {
                // Whole characters only; the rest is dropped.
                return Err(fmt::Error);
            }
            self.text.push(c);
            self.chars += 1;
        }
        Ok(())
    }
}

/// What an event's fields become.
struct EventVisitor {
    value_length: Option<usize>,
    message: Option<String>,
    exception: Option<(String, String)>,
    stacktrace: Option<String>,
    attributes: Vec<KeyValue>,
}

impl EventVisitor {
    fn new(value_length: Option<usize>, fields: usize) -> Self {
        Self {
            value_length,
            message: None,
            exception: None,
            stacktrace: None,
            attributes: Vec::with_capacity(fields + 2),
        }
    }

    fn string(&self, s: &str) -> String {
        Bounded::format(self.value_length, format_args!("{s}"))
    }

    fn push(&mut self, field: &Field, value: Value) {
        let name = field.name();
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.attributes.push(KeyValue::new(name, value));
    }

    fn push_string(&mut self, field: &Field, text: String) {
        match field.name() {
            "message" => self.message = Some(text),
            "exception.stacktrace" => self.stacktrace = Some(text),
            _ => self.push(field, Value::String(StringValue::from(text))),
        }
    }

    /// The event's name and attributes: `exception` when an error value was
    /// recorded, else the message (or the callsite's name without one).
    fn finish(
        mut self,
        level: &'static str,
        target: &'static str,
    ) -> (Cow<'static, str>, Vec<KeyValue>) {
        let mut attributes = Vec::with_capacity(self.attributes.len() + 6);
        attributes.push(KeyValue::new("level", level));
        attributes.push(KeyValue::new("target", target));
        let name = match self.exception.take() {
            Some((ty, message)) => {
                attributes.push(KeyValue::new("exception.type", ty));
                attributes.push(KeyValue::new("exception.message", message));
                if let Some(st) = self.stacktrace.take() {
                    attributes.push(KeyValue::new("exception.stacktrace", st));
                }
                if let Some(m) = self.message.take() {
                    attributes.push(KeyValue::new("message", m));
                }
                Cow::Borrowed("exception")
            }
            None => {
                if let Some(st) = self.stacktrace.take() {
                    attributes.push(KeyValue::new("exception.stacktrace", st));
                }
                Cow::Owned(self.message.take().unwrap_or_default())
            }
        };
        attributes.append(&mut self.attributes);
        (name, attributes)
    }
}

/// The type name at the start of a `Debug` output: `Timeout` of
/// `Timeout { after: 3s }`, `Io` of `Io(Os { .. })`.
fn type_from_debug(debug: &str) -> &str {
    let end = debug
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(debug.len());
    &debug[..end]
}

impl Visit for EventVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        let text = self.string(value);
        self.push_string(field, text);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        // OTLP has no unsigned integer: past i64::MAX the value is text.
        match i64::try_from(value) {
            Ok(v) => self.push(field, Value::I64(v)),
            Err(_) => self.push(field, Value::String(value.to_string().into())),
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, Value::F64(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::Bool(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut message = Bounded::new(self.value_length);
        let mut full = write!(message, "{value}").is_ok();
        let mut source = value.source();
        let mut depth = 0;
        while let (Some(s), true) = (source, full) {
            if depth == MAX_SOURCES {
                break;
            }
            full = write!(message, ": {s}").is_ok();
            source = s.source();
            depth += 1;
        }
        let debug = Bounded::format(Some(128), format_args!("{value:?}"));
        let ty = type_from_debug(&debug);
        let ty = if ty.is_empty() { "Error" } else { ty }.to_owned();
        // The first error value of an event is the exception; the field
        // itself keeps the message too, as the log record has it.
        self.push(field, Value::String(message.text.clone().into()));
        if self.exception.is_none() {
            self.exception = Some((ty, message.text));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = Bounded::format(self.value_length, format_args!("{value:?}"));
        self.push_string(field, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_formatting_stops_at_the_limit() {
        assert_eq!(Bounded::format(Some(3), format_args!("{}", "éééé")), "ééé");
        assert_eq!(Bounded::format(Some(10), format_args!("{}", "ab")), "ab");
        let long = "x".repeat(MAX_VALUE_BYTES * 2);
        assert_eq!(
            Bounded::format(None, format_args!("{long}")).len(),
            MAX_VALUE_BYTES
        );
    }

    #[test]
    fn type_names_come_from_debug() {
        assert_eq!(type_from_debug("Timeout { after: 3s }"), "Timeout");
        assert_eq!(type_from_debug("Io(Os { code: 2 })"), "Io");
        assert_eq!(type_from_debug("my::Error"), "my::Error");
        assert_eq!(type_from_debug("\"text\""), "");
    }
}
