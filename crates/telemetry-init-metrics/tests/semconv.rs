//! The one vocabulary of metrics (`telemetry_init_semconv::metric`) is what
//! the recorder serves (help texts, units, Prometheus names, on the scrape
//! and over OTLP) and what the tables of `docs/metrics.md` list, exactly.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::{
    InMemoryMetricExporterBuilder, PeriodicReader, SdkMeterProvider, Temporality,
};
use telemetry_init_metrics::semconv::metric::{self, Instrument, Metric};
use telemetry_init_metrics::{MetricsConfig, TelemetryRecorder, prometheus_names};

/// Records one value of `m` with its attributes, undescribed: whatever unit
/// and help the output shows come from the recorder's own knowledge.
fn record(m: &Metric) {
    let labels: Vec<metrics::Label> = m
        .attributes
        .iter()
        .map(|a| metrics::Label::new(*a, "x"))
        .collect();
    match m.instrument {
        Instrument::Counter => metrics::counter!(m.name, labels).increment(2),
        Instrument::Gauge => metrics::gauge!(m.name, labels).set(3.0),
        Instrument::Histogram => metrics::histogram!(m.name, labels).record(0.2),
    }
}

#[test]
fn the_recorder_serves_every_entry_with_its_names_unit_and_help() {
    let exporter = InMemoryMetricExporterBuilder::new()
        .with_temporality(Temporality::Cumulative)
        .build();
    let reader = PeriodicReader::builder(exporter.clone())
        .with_interval(Duration::from_secs(3600))
        .build();
    let provider = SdkMeterProvider::builder().with_reader(reader).build();
    let r = TelemetryRecorder::new(MetricsConfig::new().otel_meter(provider.meter("t"))).unwrap();
    metrics::with_local_recorder(&r, || metric::ALL.iter().for_each(record));

    let prometheus = r.handle().render_prometheus();
    let openmetrics = r.handle().render_openmetrics();
    provider.force_flush().unwrap();
    let pushed = exporter.get_finished_metrics().unwrap().pop().unwrap();
    let pushed: BTreeMap<String, (String, String)> = pushed
        .scope_metrics()
        .flat_map(|s| s.metrics())
        .map(|m| {
            let unit = m.unit().to_string();
            (m.name().to_string(), (unit, m.description().to_string()))
        })
        .collect();

    for m in metric::ALL {
        let p = prometheus_names(m);
        // OpenMetrics: family name, help, type.
        let help = format!("# HELP {} {}\n", p.family, m.help);
        assert!(
            openmetrics.contains(&help),
            "{help:?} not in\n{openmetrics}"
        );
        let ty = format!("# TYPE {} {}\n", p.family, m.instrument.as_str());
        assert!(openmetrics.contains(&ty), "{ty:?} not in\n{openmetrics}");
        // Prometheus text: every sample name, with every label.
        for sample in &p.samples {
            let line = prometheus
                .lines()
                .find(|l| {
                    l.strip_prefix(sample.as_str())
                        .is_some_and(|r| r.starts_with('{'))
                })
                .unwrap_or_else(|| panic!("no {sample} sample in\n{prometheus}"));
            for label in &p.labels {
                assert!(
                    line.contains(&format!("{label}=\"x\"")),
                    "{label} in {line}"
                );
            }
        }
        // OTLP: unit and description.
        assert_eq!(
            pushed.get(m.name),
            Some(&(m.unit.to_string(), m.help.to_string())),
            "{}",
            m.name
        );
    }
}

/// One row of a metric table of `docs/metrics.md`.
#[derive(Debug)]
struct Row {
    line: usize,
    name: String,
    prometheus: String,
    instrument: String,
    unit: String,
    labels: String,
}

fn backticked(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

/// The rows of every table of the page whose first column is
/// "OpenTelemetry name".
fn doc_rows(text: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for (i, line) in text.lines().enumerate() {
        if !line.starts_with('|') {
            in_table = false;
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if cells[0] == "OpenTelemetry name" {
            in_table = true;
            continue;
        }
        if !in_table || cells[0].starts_with("---") {
            continue;
        }
        let one = |c: &str| -> String {
            let b = backticked(c);
            assert_eq!(b.len(), 1, "line {}: one name per cell: {c:?}", i + 1);
            b[0].to_string()
        };
        rows.push(Row {
            line: i + 1,
            name: one(cells[0]),
            prometheus: one(cells[1]),
            instrument: cells[2].to_string(),
            unit: one(cells[3]),
            labels: cells[4].to_string(),
        });
    }
    rows
}

/// What is wrong with the metric tables of `text`: a row that is not an
/// entry, disagrees with it, or repeats one; an entry without a row.
fn check_page(text: &str) -> Vec<String> {
    let rows = doc_rows(text);
    let mut failures = Vec::new();
    let mut seen = BTreeMap::new();
    for row in &rows {
        if let Some(first) = seen.insert(row.name.clone(), row.line) {
            failures.push(format!(
                "line {}: {} is listed twice (line {first})",
                row.line, row.name
            ));
        }
        let Some(m) = metric::find(&row.name) else {
            failures.push(format!(
                "line {}: {} is not in semconv::metric",
                row.line, row.name
            ));
            continue;
        };
        let p = prometheus_names(m);
        let expected = match m.instrument {
            Instrument::Histogram => format!("{}_{{bucket,sum,count}}", p.family),
            Instrument::Counter | Instrument::Gauge => p.samples[0].clone(),
        };
        if row.prometheus != expected {
            failures.push(format!(
                "line {}: Prometheus `{}`, the recorder serves `{expected}`",
                row.line, row.prometheus
            ));
        }
        if row.instrument != m.instrument.as_str() {
            failures.push(format!(
                "line {}: type {}, the entry is a {}",
                row.line,
                row.instrument,
                m.instrument.as_str()
            ));
        }
        if row.unit != m.unit {
            failures.push(format!(
                "line {}: unit `{}`, the entry's is `{}`",
                row.line, row.unit, m.unit
            ));
        }
        let labels = backticked(&row.labels);
        for a in m.attributes {
            if !labels.contains(a) {
                failures.push(format!(
                    "line {}: label `{a}` of {} is missing",
                    row.line, m.name
                ));
            }
        }
    }
    for m in metric::ALL {
        if !seen.contains_key(m.name) {
            failures.push(format!("{} is in no table", m.name));
        }
    }
    failures
}

#[test]
fn docs_metrics_tables_list_exactly_the_entries() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/metrics.md");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(doc_rows(&text).len(), metric::ALL.len());
    let failures = check_page(&text);
    assert!(
        failures.is_empty(),
        "docs/metrics.md:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_docs_check_finds_wrong_rows() {
    // The check above can fail: each kind of mismatch is reported.
    let page = "intro\n\
        | OpenTelemetry name | Prometheus | Type | Unit | Labels |\n\
        |---|---|---|---|---|\n\
        | `rpc.server.duration` | `rpc_server_duration_seconds_{bucket,sum,count}` | histogram | `ms` | `rpc.system`, `rpc.service`, `rpc.grpc.status_code` |\n\
        | `http.server.active_requests` | `http_server_active_requests_total` | counter | `{request}` | `http.request.method`, `http.route` |\n\
        | `jobs.done` | `jobs_done_total` | counter | `1` | |\n\
        | `rpc.server.duration` | `rpc_server_duration_seconds_{bucket,sum,count}` | histogram | `s` | `rpc.system`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code` |\n\
        \n\
        | Other table | x |\n\
        | `otel.sdk.exporter.span.exported` | x |\n";
    let failures = check_page(page);
    let expect = [
        "line 4: unit `ms`, the entry's is `s`",
        "line 4: label `rpc.method` of rpc.server.duration is missing",
        "line 5: Prometheus `http_server_active_requests_total`, the recorder serves `http_server_active_requests`",
        "line 5: type counter, the entry is a gauge",
        "line 6: jobs.done is not in semconv::metric",
        "line 7: rpc.server.duration is listed twice (line 4)",
        "otel.sdk.exporter.span.exported is in no table",
    ];
    for e in expect {
        assert!(
            failures.iter().any(|f| f == e),
            "{e:?} not in {failures:#?}"
        );
    }
    // Every entry but the two listed is missing; nothing else is reported.
    assert_eq!(failures.len(), 6 + metric::ALL.len() - 2);
}
