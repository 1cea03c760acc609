//! `telemetry-init dev`'s retention flags: `--max-age`, `--max-rows` and
//! `--max-size`, each `LIMIT` for every signal or `SIGNAL=LIMIT` for one.
//!
//! ```text
//! telemetry-init dev --max-age 3d --max-size spans=500MiB --max-rows logs=1000000
//! ```

use std::time::Duration;

use telemetry_init_viewer::{RetentionConfig, RetentionPolicy};

/// The signals a flag may name, as the store calls them.
const SIGNALS: &str = "spans, logs, metrics, events";

/// Applies every flag, in order, on top of the viewer's defaults.
pub(crate) fn config(
    max_age: &[String],
    max_rows: &[String],
    max_size: &[String],
) -> Result<RetentionConfig, String> {
    let mut config = RetentionConfig::default();
    for flag in max_age {
        let (signals, value) = split("--max-age", flag)?;
        let age = humantime::parse_duration(value)
            .map_err(|e| format!("--max-age {flag:?}: {e} (expected e.g. 7d, 24h, 30m)"))?;
        if age < Duration::from_secs(1) {
            return Err(format!("--max-age {flag:?}: at least 1s"));
        }
        for p in policies(&mut config, signals) {
            p.max_age = Some(age);
        }
    }
    for flag in max_rows {
        let (signals, value) = split("--max-rows", flag)?;
        let rows: u64 = value
            .replace('_', "")
            .parse()
            .map_err(|_| format!("--max-rows {flag:?}: not a whole number of rows"))?;
        for p in policies(&mut config, signals) {
            p.max_rows = Some(rows);
        }
    }
    for flag in max_size {
        let (signals, value) = split("--max-size", flag)?;
        let bytes = parse_size(value).ok_or_else(|| {
            format!("--max-size {flag:?}: expected a size like 500MiB, 2GB or 1048576 (bytes)")
        })?;
        for p in policies(&mut config, signals) {
            p.max_bytes = Some(bytes);
        }
    }
    Ok(config)
}

/// Which signals a flag names, and its value: `LIMIT` is every signal.
fn split<'a>(flag: &str, arg: &'a str) -> Result<(&'a str, &'a str), String> {
    match arg.split_once('=') {
        None => Ok(("all", arg.trim())),
        Some((signal, value)) => {
            let signal = signal.trim();
            if matches!(signal, "spans" | "logs" | "metrics" | "events") {
                Ok((signal, value.trim()))
            } else {
                Err(format!(
                    "{flag} {arg:?}: unknown signal {signal:?} (expected {SIGNALS})"
                ))
            }
        }
    }
}

fn policies<'a>(config: &'a mut RetentionConfig, signal: &str) -> Vec<&'a mut RetentionPolicy> {
    let RetentionConfig {
        spans,
        logs,
        metric_points,
        events,
    } = config;
    match signal {
        "spans" => vec![spans],
        "logs" => vec![logs],
        "metrics" => vec![metric_points],
        "events" => vec![events],
        _ => vec![spans, logs, metric_points, events],
    }
}

/// `1048576`, `500KB`, `500KiB`, `2MB`, `2MiB`, `1GB`, `1GiB`, `1TB` (case
/// does not matter; decimal and binary units as written).
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: f64 = number.replace('_', "").parse().ok()?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "kib" => 1024.0,
        "mb" | "m" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "gb" | "g" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tb" | "t" => 1e12,
        "tib" => 1024.0_f64.powi(4),
        _ => return None,
    };
    let bytes = number * factor;
    (bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// One line per signal for the start-up message.
pub(crate) fn describe(config: &RetentionConfig) -> String {
    let one = |name: &str, p: &RetentionPolicy| {
        let mut parts = Vec::new();
        if let Some(age) = p.max_age {
            parts.push(format!(
                "{}",
                humantime::format_duration(Duration::from_secs(age.as_secs()))
            ));
        }
        if let Some(rows) = p.max_rows {
            parts.push(format!("{rows} rows"));
        }
        if let Some(bytes) = p.max_bytes {
            parts.push(format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0)));
        }
        if parts.is_empty() {
            parts.push("unlimited".into());
        }
        format!("{name} {}", parts.join(", "))
    };
    [
        one("spans", &config.spans),
        one("logs", &config.logs),
        one("metrics", &config.metric_points),
        one("events", &config.events),
    ]
    .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn flags_apply_to_every_signal_or_to_the_one_named() {
        let c = config(
            &s(&["3d", "logs=12h"]),
            &s(&["spans=1_000"]),
            &s(&["500MiB", "events=2GB"]),
        )
        .unwrap();
        assert_eq!(c.spans.max_age, Some(Duration::from_secs(3 * 86_400)));
        assert_eq!(c.logs.max_age, Some(Duration::from_secs(12 * 3600)));
        assert_eq!(c.spans.max_rows, Some(1000));
        // Untouched: the default row limit.
        assert_eq!(c.logs.max_rows, RetentionConfig::default().logs.max_rows);
        assert_eq!(c.metric_points.max_bytes, Some(500 << 20));
        assert_eq!(c.events.max_bytes, Some(2_000_000_000));
    }

    #[test]
    fn bad_flags_are_clear_errors() {
        let e = config(&s(&["traces=1d"]), &[], &[]).unwrap_err();
        assert!(e.contains("unknown signal \"traces\""), "{e}");
        assert!(e.contains("spans, logs, metrics, events"), "{e}");
        let e = config(&s(&["forever"]), &[], &[]).unwrap_err();
        assert!(e.starts_with("--max-age \"forever\""), "{e}");
        let e = config(&[], &s(&["-5"]), &[]).unwrap_err();
        assert!(e.contains("whole number"), "{e}");
        let e = config(&[], &[], &s(&["12 parsecs"])).unwrap_err();
        assert!(e.contains("500MiB"), "{e}");
        assert!(config(&[], &[], &s(&["0"])).is_err(), "zero bytes");
        assert!(config(&s(&["0s"]), &[], &[]).is_err(), "zero age");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("1.5KiB"), Some(1536));
        assert_eq!(parse_size("2 mb"), Some(2_000_000));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("MiB"), None);
        assert_eq!(parse_size("1e400"), None);
    }

    #[test]
    fn the_start_up_line_names_every_limit() {
        let c = config(&s(&["1d"]), &[], &s(&["spans=10MiB"])).unwrap();
        let d = describe(&c);
        assert!(
            d.starts_with("spans 1day, 2000000 rows, 10.0 MiB; logs 1day"),
            "{d}"
        );
    }
}
