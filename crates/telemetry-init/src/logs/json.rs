//! The JSON line format.
//!
//! Written by hand rather than with tracing-subscriber's `Json` because that
//! one cannot add the OpenTelemetry ids, and splicing them into its output
//! (as some crates do) re-parses every line. This writes each line once,
//! straight into the formatter's buffer, with no intermediate allocation.

use std::fmt::{self, Write};
use std::sync::Arc;

use arrayvec::ArrayString;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::correlation::{DispatchSlot, ids_of, request_id_of};
use crate::redact::Redaction;

/// `{"timestamp","level","target","message",…fields,"service","trace_id","span_id","request_id"}`.
#[derive(Debug, Clone)]
pub(crate) struct JsonFormat {
    /// The service name, already JSON-escaped and quoted.
    service: Arc<str>,
    /// The policy of the telemetry this format belongs to.
    policy: Arc<Redaction>,
    /// The dispatcher this format's subscriber became (trace ids lookup).
    dispatch: DispatchSlot,
}

impl JsonFormat {
    pub(crate) fn new(service: &str, policy: Arc<Redaction>, dispatch: DispatchSlot) -> Self {
        let mut quoted = String::new();
        let _ = write_json_str(&mut quoted, service);
        Self {
            service: quoted.into(),
            policy,
            dispatch,
        }
    }
}

impl<S, N> FormatEvent<S, N> for JsonFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        w.write_str("{\"timestamp\":\"")?;
        write_timestamp(&mut w, std::time::SystemTime::now())?;
        w.write_str("\",\"level\":\"")?;
        w.write_str(level_str(*meta.level()))?;
        w.write_str("\",\"target\":")?;
        write_json_str(&mut w, meta.target())?;

        let mut fields = FieldWriter {
            w: &mut w,
            result: Ok(()),
            policy: &self.policy,
        };
        event.record(&mut fields);
        fields.result?;

        w.write_str(",\"service\":")?;
        w.write_str(&self.service)?;

        let span = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = span {
            if let Some(ids) = ids_of(&span, &self.dispatch) {
                w.write_str(ids.json_fields())?;
            }
            if let Some(rid) = request_id_of(&span) {
                w.write_str(",\"request_id\":")?;
                write_json_str(&mut w, &rid)?;
            }
        }
        w.write_str("}\n")
    }
}

/// RFC 3339 UTC with microseconds. The date-and-seconds part changes once a
/// second, so it is formatted once per second per thread and reused.
fn write_timestamp(w: &mut impl Write, now: std::time::SystemTime) -> fmt::Result {
    use std::cell::RefCell;
    thread_local! {
        static SECOND: RefCell<(u64, ArrayString<19>)> = const { RefCell::new((u64::MAX, ArrayString::new_const())) };
    }
    let since = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with(|cell| {
        let mut c = cell.borrow_mut();
        if c.0 != secs {
            let whole = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
            let text = humantime::format_rfc3339_seconds(whole).to_string();
            c.1.clear();
            let _ = c.1.try_push_str(text.get(..19).unwrap_or_default());
            c.0 = secs;
        }
        w.write_str(&c.1)
    })?;
    // `.micros` and the `Z`, zero-padded, in one write.
    let micros = since.subsec_micros();
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(micros);
    let mut frac = ArrayString::<8>::new();
    let _ = frac.try_push('.');
    for _ in digits.len()..6 {
        let _ = frac.try_push('0');
    }
    let _ = frac.try_push_str(digits);
    let _ = frac.try_push('Z');
    w.write_str(&frac)
}

fn level_str(level: Level) -> &'static str {
    match level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        Level::ERROR => "ERROR",
    }
}

struct FieldWriter<'a, 'w> {
    w: &'a mut Writer<'w>,
    result: fmt::Result,
    policy: &'a Redaction,
}

impl FieldWriter<'_, '_> {
    fn key(&mut self, field: &Field) -> fmt::Result {
        let name = field.name();
        // `r#type` style raw identifiers arrive with their prefix.
        let name = name.strip_prefix("r#").unwrap_or(name);
        // `,"name":` in one write when the name needs no escaping (always,
        // in practice): every write is a virtual call into the line buffer.
        if let Some(quoted) = quoted(",\"", name, "\":") {
            return self.w.write_str(&quoted);
        }
        self.w.write_char(',')?;
        write_json_str(self.w, name)?;
        self.w.write_char(':')
    }

    fn put(&mut self, field: &Field, f: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            // A secret-named field keeps its name, never its value.
            self.result = if self.policy.is_secret_name(field.name()) {
                self.key(field)
                    .and_then(|()| write_json_str(self.w, crate::redact::REDACTED))
            } else {
                self.key(field).and_then(|()| f(self.w))
            };
        }
    }

    /// A formatted value, with URLs redacted (see [`with_formatted`]).
    fn put_formatted(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        let policy = self.policy;
        self.put(field, |w| {
            with_formatted(value, |text| write_json_str(w, &policy.redact_text(text)))
        });
    }
}

/// Formats `value` into a per-thread buffer and hands the text to `f`, so
/// it can be redacted before it is escaped, without an allocation per field
/// once the buffer has grown. A `Debug` impl that logs (re-entrancy) gets a
/// fresh buffer instead of a panic.
pub(crate) fn with_formatted<R>(value: fmt::Arguments<'_>, f: impl FnOnce(&str) -> R) -> R {
    use std::cell::RefCell;
    thread_local! {
        static BUF: RefCell<String> = const { RefCell::new(String::new()) };
    }
    /// Buffers past this are released after use rather than kept per thread.
    const KEEP: usize = 16 * 1024;
    BUF.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            let _ = buf.write_fmt(value);
            let r = f(buf.as_str());
            if buf.capacity() > KEEP {
                *buf = String::new();
            }
            r
        }
        Err(_) => f(&value.to_string()),
    })
}

impl Visit for FieldWriter<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let policy = self.policy;
        self.put(field, |w| write_json_str(w, &policy.redact_text(value)));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, |w| w.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, |w| w.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            // ryu: the shortest exact form, without core::fmt's float path.
            self.put(field, |w| {
                w.write_str(ryu::Buffer::new().format_finite(value))
            });
        } else {
            self.put(field, |w| write!(w, "\"{value}\""));
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put_formatted(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put_formatted(field, format_args!("{value:?}"));
    }
}

/// Writes `s` as a quoted JSON string.
pub(crate) fn write_json_str(w: &mut impl Write, s: &str) -> fmt::Result {
    // Most values are short and need no escaping: one write instead of three.
    if let Some(quoted) = quoted("\"", s, "\"") {
        return w.write_str(&quoted);
    }
    w.write_char('"')?;
    JsonEscaper(w).write_str(s)?;
    w.write_char('"')
}

/// Whether a byte must be escaped in a JSON string (control characters,
/// `"`, `\\`, and DEL, which we escape too). A table: one load per byte
/// instead of a chain of comparisons.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[0x7f] = true;
    t
};

fn needs_escape(s: &str) -> bool {
    s.bytes().any(|b| NEEDS_ESCAPE[b as usize])
}

/// `prefix` + `s` + `suffix` on the stack, for a short `s` that needs no
/// escaping, so that it reaches the line buffer in one write.
///
/// WHY `ArrayString`: a zeroed `[u8; N]` turned back into `&str` cost a
/// memset and a UTF-8 validation per piece, as much as the copy itself;
/// `ArrayString` keeps the buffer uninitialised and knows it holds `str`s.
fn quoted(prefix: &str, s: &str, suffix: &str) -> Option<ArrayString<QUOTED_CAP>> {
    if prefix.len() + s.len() + suffix.len() > QUOTED_CAP || needs_escape(s) {
        return None;
    }
    let mut q = ArrayString::new();
    q.try_push_str(prefix).ok()?;
    q.try_push_str(s).ok()?;
    q.try_push_str(suffix).ok()?;
    Some(q)
}

/// The longest piece [`quoted`] puts together.
const QUOTED_CAP: usize = 128;

/// Escapes everything written through it, so `Debug`/`Display` output is
/// streamed into the line without an intermediate `String`.
struct JsonEscaper<'a, W: Write>(&'a mut W);

impl<W: Write> Write for JsonEscaper<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if !NEEDS_ESCAPE[b as usize] {
                continue;
            }
            let esc: Option<&str> = match b {
                b'"' => Some("\\\""),
                b'\\' => Some("\\\\"),
                b'\n' => Some("\\n"),
                b'\r' => Some("\\r"),
                b'\t' => Some("\\t"),
                _ => None,
            };
            self.0.write_str(&s[start..i])?;
            match esc {
                Some(e) => self.0.write_str(e)?,
                None => write!(self.0, "\\u{b:04x}")?,
            }
            start = i + 1;
        }
        self.0.write_str(&s[start..])
    }
}

/// Formats no span fields. The fmt layer otherwise renders every span's
/// fields into a string when the span is created (with ANSI colours by
/// default), which the JSON lines never print: pure cost on every request.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct NoSpanFields;

impl<'w> FormatFields<'w> for NoSpanFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        _writer: Writer<'w>,
        _fields: R,
    ) -> fmt::Result {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_micros() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_micros(1_795_306_435_000_042);
        let mut s = String::new();
        write_timestamp(&mut s, t).unwrap();
        assert_eq!(s, humantime::format_rfc3339_micros(t).to_string());
        let mut s2 = String::new();
        write_timestamp(&mut s2, t + std::time::Duration::from_micros(5)).unwrap();
        assert!(s2.ends_with(".000047Z"), "{s2}");
    }

    #[test]
    fn escapes_control_and_quotes() {
        let mut s = String::new();
        write_json_str(&mut s, "a\"b\\c\nd\u{1}é").unwrap();
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v, "a\"b\\c\nd\u{1}é");
    }

    proptest::proptest! {
        /// Both paths (one write for short clean strings, the escaper for
        /// the rest) give a JSON string that parses back to the input, and
        /// the one-write path gives what the escaper gives.
        #[test]
        fn json_strings_parse_back(s in "(\\PC|[\"\\\\\u{0}-\u{1f}\u{7f}]){0,200}") {
            let mut out = String::new();
            write_json_str(&mut out, &s).unwrap();
            let back: String = serde_json::from_str(&out).unwrap();
            proptest::prop_assert_eq!(&back, &s);
            let mut slow = String::from("\"");
            JsonEscaper(&mut slow).write_str(&s).unwrap();
            slow.push('"');
            proptest::prop_assert_eq!(out, slow);
        }
    }

    #[test]
    fn keys_are_written_in_one_piece_and_escaped_when_needed() {
        let short = quoted(",\"", "http.route", "\":").unwrap();
        assert_eq!(short.as_str(), ",\"http.route\":");
        assert!(quoted("\"", "a\"b", "\"").is_none());
        let long = "x".repeat(QUOTED_CAP - 1);
        assert!(quoted("\"", &long, "\"").is_none());
        // An exact fit is one piece.
        assert_eq!(quoted("\"", &long[1..], "\"").unwrap().len(), QUOTED_CAP);
    }

    #[test]
    fn secret_fields_and_urls_are_redacted() {
        use std::sync::Arc;
        use tracing_subscriber::layer::SubscriberExt;

        #[derive(Debug)]
        struct Failure;
        impl std::fmt::Display for Failure {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("error sending request for url (http://u:pw3@h/?api_key=k3)")
            }
        }
        impl std::error::Error for Failure {}

        let buf = crate::logs::Captured::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .fmt_fields(NoSpanFields)
                .event_format(JsonFormat::new(
                    "svc",
                    Arc::new(Redaction::new()),
                    DispatchSlot::default(),
                ))
                .with_writer(move || buf.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let url = "http://bob:hunter2@db/x;jsessionid=s1?q=1";
            let err: &(dyn std::error::Error + 'static) = &Failure;
            tracing::warn!(
                password = "pw1",
                refreshToken = %"tok2",
                target = url,
                error = err,
                n = 3,
                "fetching {url}"
            );
        });
        let line = out.text();
        for secret in ["pw1", "tok2", "hunter2", "s1", "pw3", "k3"] {
            assert!(!line.contains(secret), "{secret} in {line}");
        }
        let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(v["password"], "REDACTED");
        assert_eq!(v["refreshToken"], "REDACTED");
        assert_eq!(v["target"], "http://REDACTED@db/x;jsessionid=REDACTED?q=1");
        assert_eq!(
            v["message"],
            "fetching http://REDACTED@db/x;jsessionid=REDACTED?q=1"
        );
        assert_eq!(
            v["error"],
            "error sending request for url (http://REDACTED@h/?api_key=REDACTED)"
        );
        assert_eq!(v["n"], 3);
    }
}
