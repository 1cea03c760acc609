//! OpenTelemetry → Prometheus name translation, following the OpenTelemetry
//! specification "Prometheus and OpenMetrics Compatibility" document
//! (metric-name sanitisation, unit suffixes, `_total` for monotonic sums,
//! `_ratio` for gauges with unit `1`, label-name sanitisation).

use metrics::Unit;

/// The metric kind as seen by the exposition: the instrument of the one
/// metric vocabulary (`telemetry_init_semconv::metric`).
pub(crate) use telemetry_init_semconv::metric::Instrument as Kind;

/// Maps a `metrics::Unit` to its UCUM-style OpenTelemetry unit string.
///
/// `Unit::Count` maps to no unit: OpenTelemetry writes counts as annotations
/// such as `{request}`, which add no Prometheus suffix.
pub(crate) fn otel_unit(unit: Unit) -> Option<&'static str> {
    Some(match unit {
        Unit::Count => return None,
        Unit::Percent => "%",
        Unit::Seconds => "s",
        Unit::Milliseconds => "ms",
        Unit::Microseconds => "us",
        Unit::Nanoseconds => "ns",
        Unit::Tebibytes => "TiBy",
        Unit::Gibibytes => "GiBy",
        Unit::Mebibytes => "MiBy",
        Unit::Kibibytes => "KiBy",
        Unit::Bytes => "By",
        Unit::TerabitsPerSecond => "Tbit/s",
        Unit::GigabitsPerSecond => "Gbit/s",
        Unit::MegabitsPerSecond => "Mbit/s",
        Unit::KilobitsPerSecond => "kbit/s",
        Unit::BitsPerSecond => "bit/s",
        Unit::CountPerSecond => "{count}/s",
    })
}

fn main_unit_word(u: &str) -> Option<&'static str> {
    Some(match u {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tebibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "bit" => "bits",
        "kbit" => "kilobits",
        "Mbit" => "megabits",
        "Gbit" => "gigabits",
        "Tbit" => "terabits",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        _ => return None,
    })
}

fn per_unit_word(u: &str) -> Option<&'static str> {
    Some(match u {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

/// Removes `{...}` annotations from a UCUM unit.
fn strip_annotations(u: &str) -> String {
    let mut out = String::with_capacity(u.len());
    let mut depth = 0usize;
    for c in u.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The Prometheus unit suffix (without leading `_`) for an OpenTelemetry
/// unit, or `None` when the unit adds no suffix.
pub(crate) fn unit_suffix(unit: &str, kind: Kind) -> Option<String> {
    let unit = strip_annotations(unit);
    let unit = unit.trim();
    if unit.is_empty() {
        return None;
    }
    if unit == "1" {
        return (kind == Kind::Gauge).then(|| "ratio".to_string());
    }
    let word = |u: &str, per: bool| -> String {
        let mapped = if per {
            per_unit_word(u)
        } else {
            main_unit_word(u)
        };
        mapped
            .map(str::to_string)
            .unwrap_or_else(|| sanitize_metric_name(u))
    };
    let suffix = match unit.split_once('/') {
        Some((main, per)) => {
            let main = main.trim();
            let per = per.trim();
            match (main.is_empty(), per.is_empty()) {
                (true, true) => return None,
                (true, false) => format!("per_{}", word(per, true)),
                (false, true) => word(main, false),
                (false, false) => format!("{}_per_{}", word(main, false), word(per, true)),
            }
        }
        None => word(unit, false),
    };
    let suffix = suffix.trim_matches('_').to_string();
    (!suffix.is_empty()).then_some(suffix)
}

/// Replaces characters outside `[a-zA-Z0-9_:]` with `_`, collapses runs of
/// `_`, and prefixes a leading digit with `_`.
pub(crate) fn sanitize_metric_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    for c in name.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            c
        } else {
            '_'
        };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// Sanitises a label name: invalid characters become `_`, a leading digit
/// gets a `key_` prefix, and names reserved by Prometheus (`__…`) get a
/// `key` prefix.
pub(crate) fn sanitize_label_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() {
        return "key_".to_string();
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    } else if out.starts_with("__") {
        out.insert_str(0, "key");
    }
    out
}

/// Escapes a label value for both text formats.
pub(crate) fn escape_label_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Escapes `# HELP` text (backslash and newline; OpenMetrics also escapes `"`).
pub(crate) fn escape_help(v: &str, openmetrics: bool) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if openmetrics => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// Names of one metric family in the two text formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PromNames {
    /// Family name used in `# TYPE`/`# HELP` (OpenMetrics: without `_total`).
    pub(crate) family: String,
    /// Sample name (counters: with `_total`).
    pub(crate) sample: String,
    /// OpenMetrics `# UNIT` value, when the family name ends with it.
    pub(crate) unit: Option<String>,
}

/// Computes the Prometheus names of an OpenTelemetry metric.
pub(crate) fn prometheus_names(otel_name: &str, unit: Option<&str>, kind: Kind) -> PromNames {
    let mut base = sanitize_metric_name(otel_name);
    if kind == Kind::Counter && base.ends_with("_total") {
        base.truncate(base.len() - "_total".len());
    }
    let suffix = unit.and_then(|u| unit_suffix(u, kind));
    if let Some(s) = &suffix {
        let tokens: Vec<&str> = base.split('_').collect();
        let stoks: Vec<&str> = s.split('_').collect();
        let already = tokens.len() >= stoks.len() && tokens[tokens.len() - stoks.len()..] == stoks;
        if !already {
            base.push('_');
            base.push_str(s);
        }
    }
    let sample = if kind == Kind::Counter {
        format!("{base}_total")
    } else {
        base.clone()
    };
    PromNames {
        family: base,
        sample,
        unit: suffix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semconv_names() {
        let n = prometheus_names("http.server.request.duration", Some("s"), Kind::Histogram);
        assert_eq!(n.family, "http_server_request_duration_seconds");
        assert_eq!(n.sample, "http_server_request_duration_seconds");
        assert_eq!(n.unit.as_deref(), Some("seconds"));

        let n = prometheus_names(
            "http.server.active_requests",
            Some("{request}"),
            Kind::Gauge,
        );
        assert_eq!(n.sample, "http_server_active_requests");
        assert_eq!(n.unit, None);

        let n = prometheus_names(
            "otel.sdk.exporter.span.exported",
            Some("{span}"),
            Kind::Counter,
        );
        assert_eq!(n.family, "otel_sdk_exporter_span_exported");
        assert_eq!(n.sample, "otel_sdk_exporter_span_exported_total");

        let n = prometheus_names("http.server.request.body.size", Some("By"), Kind::Histogram);
        assert_eq!(n.sample, "http_server_request_body_size_bytes");

        let n = prometheus_names("requests_total", None, Kind::Counter);
        assert_eq!(n.family, "requests");
        assert_eq!(n.sample, "requests_total");

        let n = prometheus_names("latency_seconds", Some("s"), Kind::Histogram);
        assert_eq!(n.sample, "latency_seconds");

        let n = prometheus_names("cpu.utilization", Some("1"), Kind::Gauge);
        assert_eq!(n.sample, "cpu_utilization_ratio");
        let n = prometheus_names("cpu.things", Some("1"), Kind::Counter);
        assert_eq!(n.sample, "cpu_things_total");

        let n = prometheus_names("net.io", Some("By/s"), Kind::Gauge);
        assert_eq!(n.sample, "net_io_bytes_per_second");
        let n = prometheus_names("x", Some("{count}/s"), Kind::Gauge);
        assert_eq!(n.sample, "x_per_second");
        let n = prometheus_names("9lives..x-y", None, Kind::Gauge);
        assert_eq!(n.sample, "_9lives_x_y");
    }

    #[test]
    fn label_names() {
        assert_eq!(
            sanitize_label_name("http.request.method"),
            "http_request_method"
        );
        assert_eq!(sanitize_label_name("2xx"), "key_2xx");
        assert_eq!(sanitize_label_name("__name"), "key__name");
        let mut s = String::new();
        escape_label_value("a\"b\\c\nd", &mut s);
        assert_eq!(s, "a\\\"b\\\\c\\nd");
    }
}
