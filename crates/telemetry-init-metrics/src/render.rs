//! Prometheus text (0.0.4) and OpenMetrics 1.0 exposition.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::naming::{self, Kind};
use crate::registry::{Cell, Registry, Series};

/// Content type of the Prometheus text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of the OpenMetrics 1.0 text exposition format.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 (with exemplars and `# EOF`).
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` header value of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => PROMETHEUS_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }

    /// Chooses the format from an HTTP `Accept` header: OpenMetrics when
    /// `application/openmetrics-text` is acceptable (q > 0) with a quality at
    /// least as high as any `text/plain` or wildcard entry; the Prometheus
    /// text format otherwise (also for a missing header).
    ///
    /// ```
    /// use telemetry_init_metrics::Format;
    /// // What Prometheus 2.x/3.x sends:
    /// let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    /// assert_eq!(Format::from_accept(Some(prom)), Format::OpenMetrics);
    /// assert_eq!(Format::from_accept(Some("text/plain")), Format::Prometheus);
    /// assert_eq!(Format::from_accept(None), Format::Prometheus);
    /// ```
    pub fn from_accept(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Prometheus;
        };
        let mut best_om = 0.0f64;
        let mut best_text = 0.0f64;
        for part in accept.split(',') {
            let mut params = part.split(';');
            let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
            let mut q = 1.0f64;
            for p in params {
                if let Some((k, v)) = p.split_once('=')
                    && k.trim().eq_ignore_ascii_case("q")
                {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
            match media.as_str() {
                "application/openmetrics-text" => best_om = best_om.max(q),
                "text/plain" | "text/*" | "*/*" => best_text = best_text.max(q),
                _ => {}
            }
        }
        if best_om > 0.0 && best_om >= best_text {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }
}

fn fmt_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v}");
    }
}

/// `le` values: `0.25`, `1` (Prometheus, Go style) or `1.0` (OpenMetrics
/// canonical form).
fn fmt_le(out: &mut String, v: f64, om: bool) {
    if om {
        let _ = write!(out, "{v:?}");
    } else {
        fmt_value(out, v);
    }
}

fn open_labels(out: &mut String, name: &str, suffix: &str, labels: &str) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() {
        out.push('{');
        out.push_str(labels);
        out.push('}');
    }
    out.push(' ');
}

pub(crate) fn render(reg: &Registry, format: Format) -> String {
    let om = format == Format::OpenMetrics;
    let mut families: Vec<_> = reg
        .families()
        .into_iter()
        .map(|f| {
            let d = reg.description(f.name());
            let names = naming::prometheus_names(f.name(), d.unit.as_deref(), f.kind());
            (names, d, f)
        })
        .collect();
    families.sort_by(|a, b| (&a.0.sample, a.2.name()).cmp(&(&b.0.sample, b.2.name())));

    let mut out = String::with_capacity(4096);
    let mut previous: Option<String> = None;
    for (names, desc, family) in families {
        // Two OpenTelemetry names can translate to one Prometheus name
        // (`a.b` and `a_b`); a second family of that name would make the
        // whole scrape invalid, so only the first (by OpenTelemetry name)
        // is exposed. OTLP keeps both.
        if previous.as_deref() == Some(names.sample.as_str()) {
            continue;
        }
        let mut series: Vec<Arc<Series>> = Vec::new();
        family.for_each_series(|s| series.push(s.clone()));
        if series.is_empty() {
            continue;
        }
        series.sort_by(|a, b| a.prom_labels().cmp(b.prom_labels()));
        previous = Some(names.sample.clone());

        let type_name = if om { &names.family } else { &names.sample };
        let help = desc.help.as_deref().unwrap_or(family.name());
        let _ = writeln!(out, "# HELP {type_name} {}", naming::escape_help(help, om));
        let _ = writeln!(out, "# TYPE {type_name} {}", family.kind().as_str());
        if om && let Some(unit) = &names.unit {
            let _ = writeln!(out, "# UNIT {type_name} {unit}");
        }

        let sample = &names.sample;
        for s in &series {
            match (s.cell(), family.kind()) {
                (Cell::Counter(c), Kind::Counter) => {
                    open_labels(&mut out, sample, "", s.prom_labels());
                    let _ = writeln!(out, "{}", c.get());
                }
                (Cell::Gauge(g), Kind::Gauge) => {
                    open_labels(&mut out, sample, "", s.prom_labels());
                    fmt_value(&mut out, g.get());
                    out.push('\n');
                }
                (Cell::Histogram(h), Kind::Histogram) => {
                    let snap = h.snapshot();
                    let bounds = h.bounds();
                    let mut cumulative = 0u64;
                    for (i, count) in snap.counts.iter().enumerate() {
                        cumulative += count;
                        out.push_str(sample);
                        out.push_str("_bucket{");
                        if !s.prom_labels().is_empty() {
                            out.push_str(s.prom_labels());
                            out.push(',');
                        }
                        out.push_str("le=\"");
                        match bounds.get(i) {
                            Some(b) => fmt_le(&mut out, *b, om),
                            None => out.push_str("+Inf"),
                        }
                        let _ = write!(out, "\"}} {cumulative}");
                        if om && let Some(e) = snap.exemplars.get(i).copied().flatten() {
                            let _ = write!(
                                out,
                                " # {{trace_id=\"{:032x}\",span_id=\"{:016x}\"}} ",
                                e.trace_id, e.span_id
                            );
                            fmt_value(&mut out, e.value);
                            let _ = write!(
                                out,
                                " {}.{:03}",
                                e.timestamp_nanos / 1_000_000_000,
                                (e.timestamp_nanos % 1_000_000_000) / 1_000_000
                            );
                        }
                        out.push('\n');
                    }
                    open_labels(&mut out, sample, "_sum", s.prom_labels());
                    fmt_value(&mut out, snap.sum);
                    out.push('\n');
                    open_labels(&mut out, sample, "_count", s.prom_labels());
                    let _ = writeln!(out, "{cumulative}");
                }
                _ => {}
            }
        }
    }
    if om {
        out.push_str("# EOF\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text; version=1.0.0")),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text;q=0.2, text/plain;q=0.9")),
            Format::Prometheus
        );
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text;q=0")),
            Format::Prometheus
        );
        assert_eq!(Format::from_accept(Some("*/*")), Format::Prometheus);
        assert_eq!(Format::from_accept(Some("")), Format::Prometheus);
    }

    #[test]
    fn value_formatting() {
        let mut s = String::new();
        fmt_value(&mut s, 1.0);
        s.push(' ');
        fmt_value(&mut s, 0.25);
        s.push(' ');
        fmt_value(&mut s, f64::NAN);
        s.push(' ');
        fmt_value(&mut s, f64::NEG_INFINITY);
        s.push(' ');
        fmt_le(&mut s, 1.0, true);
        s.push(' ');
        fmt_le(&mut s, 0.005, true);
        assert_eq!(s, "1 0.25 NaN -Inf 1.0 0.005");
    }
}
