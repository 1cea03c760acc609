//! The fields of the human-readable (`TELEMETRY_LOG_FORMAT=text`) lines,
//! formatted like tracing-subscriber's default (`message key=value …`) with
//! the redaction policy applied, as the JSON lines have it.

use std::fmt;

use tracing::field::Field;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{Writer, debug_fn};

use super::json::with_formatted;
use std::sync::Arc;

use crate::redact::{REDACTED, Redaction};

fn field(
    policy: &Redaction,
    w: &mut Writer<'_>,
    field: &Field,
    value: &dyn fmt::Debug,
) -> fmt::Result {
    let name = field.name();
    if name != "message" {
        w.write_str(name.strip_prefix("r#").unwrap_or(name))?;
        w.write_char('=')?;
    }
    if policy.is_secret_name(name) {
        return w.write_str(REDACTED);
    }
    with_formatted(format_args!("{value:?}"), |text| {
        w.write_str(&policy.redact_text(text))
    })
}

/// The field formatter of the text format, redacting with `policy`.
pub(crate) fn text_fields(
    policy: Arc<Redaction>,
) -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    debug_fn(move |w: &mut Writer<'_>, f: &Field, v: &dyn fmt::Debug| field(&policy, w, f, v))
        .delimited(" ")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tracing_subscriber::layer::SubscriberExt;

    use crate::logs::Captured;

    #[test]
    fn text_lines_are_redacted() {
        let buf = Captured::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .fmt_fields(super::text_fields(
                    Arc::new(crate::redact::Redaction::new()),
                ))
                .with_writer(move || buf.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let url = "http://bob:hunter2@db:5432/x?token=t1&q=1";
            tracing::warn!(user.password = "pw1", target = %url, n = 3, "fetching {url}");
        });
        let line = out.text();
        for secret in ["pw1", "hunter2", "t1"] {
            assert!(!line.contains(secret), "{secret} in {line}");
        }
        assert!(line.contains("user.password=REDACTED"), "{line}");
        assert!(
            line.contains("fetching http://REDACTED@db:5432/x?token=REDACTED&q=1"),
            "{line}"
        );
        assert!(line.contains(" n=3"), "{line}");
    }
}
