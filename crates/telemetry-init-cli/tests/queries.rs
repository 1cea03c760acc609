//! Static checks of every PromQL query the project ships: the Grafana dashboards
//! (`dashboards/*.json`) and the Prometheus rule files (`dashboards/rules/*.yml`).
//!
//! * every expression parses (the `promql-parser` crate, Prometheus 3 grammar);
//! * every metric name is one the crate emits (the metric contract), one of Alloy's own
//!   metrics, or a recording rule defined in `dashboards/rules/`;
//! * label matchers on contract metrics only use the contract's labels;
//! * dashboard hygiene: unique uids and panel ids, titles, descriptions, units, known
//!   data sources, and `rate()` ranges written as `$__rate_interval`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use promql_parser::parser::{self, Expr};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Sample names of the telemetry-init metric contract and the labels each may carry
/// (besides `service_name`, on every series, and the resource labels Mimir promotes): every
/// metric telemetry-init records, read from the one list of metric names
/// (`telemetry_init_semconv::metric`) and named the way the recorder names them in the
/// scrape.
fn contract() -> BTreeMap<String, Vec<String>> {
    use telemetry_init::metrics::semconv::metric::{self, Instrument, Source};
    let mut m = BTreeMap::new();
    for entry in metric::ALL
        .iter()
        .filter(|e| e.source != Source::Application)
    {
        let p = telemetry_init::metrics::prometheus_names(entry);
        let mut labels = p.labels.clone();
        if entry.instrument == Instrument::Histogram {
            labels.push("le".to_owned());
        }
        for sample in p.samples {
            m.insert(sample, labels.clone());
        }
    }
    m
}

#[test]
fn the_contract_is_the_recorded_metrics() {
    // Spot checks that the derivation gives the names dashboards are written with.
    let c = contract();
    assert!(c["http_server_request_duration_seconds_bucket"].contains(&"http_route".to_owned()));
    assert!(c["rpc_server_duration_seconds_count"].contains(&"rpc_grpc_status_code".to_owned()));
    assert_eq!(
        c["otel_sdk_processor_span_queue_size"],
        ["otel_component_type"]
    );
    assert!(c.contains_key("otel_sdk_exporter_metric_data_point_exported_total"));
    // Only what telemetry-init records: not the body-size metrics it merely knows.
    assert!(!c.keys().any(|k| k.contains("body_size")));
    // The SLO rules are generated from the same histogram.
    assert!(c.contains_key(&format!(
        "{}_bucket",
        telemetry_init_slo::HTTP_DURATION_METRIC
    )));
}

/// Labels every series may have: the promoted resource attributes and target labels.
const COMMON_LABELS: &[&str] = &[
    "service_name",
    "service_namespace",
    "service_instance_id",
    "deployment_environment_name",
    "job",
    "instance",
];

/// Grafana Alloy's own metrics used by the pipeline dashboard (prometheus.exporter.self).
const ALLOY_METRICS: &[&str] = &[
    "otelcol_receiver_accepted_spans_total",
    "otelcol_receiver_accepted_log_records_total",
    "otelcol_receiver_accepted_metric_points_total",
    "otelcol_receiver_refused_spans_total",
    "otelcol_receiver_refused_log_records_total",
    "otelcol_receiver_refused_metric_points_total",
    "otelcol_exporter_sent_spans_total",
    "otelcol_exporter_sent_log_records_total",
    "otelcol_exporter_sent_metric_points_total",
    "otelcol_exporter_send_failed_spans_total",
    "otelcol_exporter_send_failed_log_records_total",
    "otelcol_exporter_send_failed_metric_points_total",
    "otelcol_exporter_queue_size",
    "otelcol_exporter_queue_capacity",
    "otelcol_processor_batch_batch_send_size_bucket",
    "prometheus_remote_storage_samples_total",
    "prometheus_remote_storage_samples_failed_total",
    "alloy_component_controller_running_components",
];

/// A PromQL expression and where it came from.
#[derive(Debug, Clone)]
struct Query {
    origin: String,
    expr: String,
}

fn rule_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("dashboards/rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no rule files under dashboards/rules");
    v
}

fn dashboards() -> Vec<(PathBuf, Value)> {
    let mut v: Vec<(PathBuf, Value)> = std::fs::read_dir(repo().join("dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let json = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", p.display()));
            (p, json)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(v.len() >= 3, "expected the three dashboards");
    v
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// (record names, every expr) of all rule files.
fn rules() -> (BTreeSet<String>, Vec<Query>) {
    let mut records = BTreeSet::new();
    let mut queries = Vec::new();
    for path in rule_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        for group in doc["groups"].as_sequence().expect("groups") {
            for rule in group["rules"].as_sequence().expect("rules") {
                let id = rule["record"]
                    .as_str()
                    .or_else(|| rule["alert"].as_str())
                    .unwrap_or("?");
                if let Some(r) = rule["record"].as_str() {
                    records.insert(r.to_owned());
                }
                queries.push(Query {
                    origin: format!("{} {}", name(&path), id),
                    expr: rule["expr"].as_str().expect("expr").to_owned(),
                });
            }
        }
    }
    (records, queries)
}

fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(p);
        for inner in p["panels"].as_array().into_iter().flatten() {
            out.push(inner);
        }
    }
    out
}

fn is_prometheus(ds: &Value) -> bool {
    ds["type"] == "prometheus"
}

/// PromQL of every dashboard target and every Prometheus template variable, raw.
fn dashboard_queries() -> Vec<Query> {
    let mut out = Vec::new();
    for (path, d) in dashboards() {
        for p in panels(&d) {
            for t in p["targets"].as_array().into_iter().flatten() {
                let ds = if t["datasource"].is_object() {
                    &t["datasource"]
                } else {
                    &p["datasource"]
                };
                if is_prometheus(ds) {
                    out.push(Query {
                        origin: format!("{} panel {:?} {}", name(&path), p["title"], t["refId"]),
                        expr: t["expr"].as_str().expect("expr").to_owned(),
                    });
                }
            }
        }
        for v in d["templating"]["list"].as_array().into_iter().flatten() {
            if v["type"] == "query" && is_prometheus(&v["datasource"]) {
                let q = v["query"]["query"].as_str().or_else(|| v["query"].as_str());
                out.push(Query {
                    origin: format!("{} variable {}", name(&path), v["name"]),
                    expr: q.expect("variable query").to_owned(),
                });
            }
        }
    }
    out
}

/// Grafana variables replaced by values that keep the expression valid PromQL.
/// `label_values(selector, label)` is reduced to its selector.
fn substitute(expr: &str) -> String {
    let mut e = expr.trim().to_owned();
    if let Some(inner) = e
        .strip_prefix("label_values(")
        .and_then(|s| s.strip_suffix(')'))
    {
        e = match inner.rfind(',') {
            Some(i) => inner[..i].to_owned(),
            None => inner.to_owned(),
        };
    }
    for (var, value) in [
        ("$__rate_interval", "5m"),
        ("$__interval", "1m"),
        ("$__range", "1h"),
        ("${service}", "demo"),
        ("$service", "demo"),
        ("$route", ".*"),
        ("$slo", "availability"),
    ] {
        e = e.replace(var, value);
    }
    assert!(!e.contains('$'), "unsubstituted variable in {e}");
    e
}

fn visit<'a>(e: &'a Expr, f: &mut impl FnMut(&'a promql_parser::parser::VectorSelector)) {
    match e {
        Expr::Aggregate(a) => {
            visit(&a.expr, f);
            if let Some(p) = &a.param {
                visit(p, f);
            }
        }
        Expr::Unary(u) => visit(&u.expr, f),
        Expr::Binary(b) => {
            visit(&b.lhs, f);
            visit(&b.rhs, f);
        }
        Expr::Paren(p) => visit(&p.expr, f),
        Expr::Subquery(s) => visit(&s.expr, f),
        Expr::VectorSelector(v) => f(v),
        Expr::MatrixSelector(m) => f(&m.vs),
        Expr::Call(c) => {
            for a in &c.args.args {
                visit(a, f);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

fn all_queries() -> (BTreeSet<String>, Vec<Query>) {
    let (records, mut queries) = rules();
    queries.extend(dashboard_queries());
    (records, queries)
}

#[test]
fn every_promql_query_parses() {
    let (_, queries) = all_queries();
    assert!(queries.len() > 50, "found only {} queries", queries.len());
    let mut failures = Vec::new();
    for q in &queries {
        if let Err(e) = parser::parse(&substitute(&q.expr)) {
            failures.push(format!("{}: {e}\n    {}", q.origin, q.expr));
        }
    }
    assert!(
        failures.is_empty(),
        "PromQL parse errors:\n{}",
        failures.join("\n")
    );
}

#[test]
fn parser_rejects_broken_queries() {
    // The check above can fail: malformed expressions are reported.
    for bad in [
        "sum(rate(http_server_request_duration_seconds_count[5m]) by",
        "rate(http_server_request_duration_seconds_count[$__rate_interval])",
        "histogram_quantile(0.95, sum by (le) (rate(x_bucket{a=\"b\"}[5m]))",
    ] {
        assert!(parser::parse(bad).is_err(), "{bad} parsed");
    }
}

#[test]
fn every_metric_is_in_the_contract_alloy_or_a_recording_rule() {
    let (records, queries) = all_queries();
    let contract = contract();
    let mut failures = Vec::new();
    for q in &queries {
        let ast = parser::parse(&substitute(&q.expr)).unwrap();
        visit(&ast, &mut |vs| {
            let Some(metric) = vs.name.as_deref() else {
                failures.push(format!("{}: selector without a metric name", q.origin));
                return;
            };
            if let Some(labels) = contract.get(metric) {
                for m in &vs.matchers.matchers {
                    if !labels.contains(&m.name) && !COMMON_LABELS.contains(&m.name.as_str()) {
                        failures.push(format!(
                            "{}: label {:?} is not in the contract of {metric}",
                            q.origin, m.name
                        ));
                    }
                }
            } else if !records.contains(metric) && !ALLOY_METRICS.contains(&metric) {
                failures.push(format!("{}: unknown metric {metric}", q.origin));
            }
        });
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn dashboards_are_well_formed() {
    const DATASOURCES: &[&str] = &["mimir", "loki", "tempo", "mimir-alertmanager"];
    let mut uids = BTreeSet::new();
    let mut failures = Vec::new();
    for (path, d) in dashboards() {
        let file = name(&path);
        let uid = d["uid"].as_str().unwrap_or_default().to_owned();
        if uid.is_empty() || !uids.insert(uid.clone()) {
            failures.push(format!("{file}: missing or duplicate uid {uid:?}"));
        }
        if d["schemaVersion"].as_u64().unwrap_or(0) < 39 {
            failures.push(format!("{file}: schemaVersion below 39"));
        }
        let mut ids = BTreeSet::new();
        for p in panels(&d) {
            let title = p["title"].as_str().unwrap_or_default();
            if !ids.insert(p["id"].as_u64().unwrap_or(0)) {
                failures.push(format!("{file}: duplicate panel id {}", p["id"]));
            }
            if title.is_empty() {
                failures.push(format!("{file}: panel {} has no title", p["id"]));
            }
            if p["type"] == "row" {
                continue;
            }
            if p["description"].as_str().unwrap_or_default().is_empty() {
                failures.push(format!("{file}: panel {title:?} has no description"));
            }
            if p["fieldConfig"]["defaults"]["unit"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
            {
                failures.push(format!("{file}: panel {title:?} has no unit"));
            }
            let ds = p["datasource"]["uid"].as_str().unwrap_or_default();
            if !DATASOURCES.contains(&ds) {
                failures.push(format!("{file}: panel {title:?} uses data source {ds:?}"));
            }
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().unwrap_or_default();
                // Ranges in dashboard queries must follow the scrape interval.
                if is_prometheus(&p["datasource"]) {
                    for range in expr.split('[').skip(1) {
                        let r = range.split(']').next().unwrap_or_default();
                        if r != "$__rate_interval" {
                            failures.push(format!(
                                "{file}: panel {title:?}: range [{r}] should be [$__rate_interval]"
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn slo_dashboard_uses_the_generated_rules() {
    let (records, _) = rules();
    let text = std::fs::read_to_string(repo().join("dashboards/slo.json")).unwrap();
    for r in [
        "slo:sli_error:ratio_rate5m",
        "slo:sli_error:ratio_rate3d",
        "slo:error_budget_remaining:ratio",
        "slo:error_budget:ratio",
        "slo:objective:ratio",
    ] {
        assert!(records.contains(r), "rules do not record {r}");
        assert!(text.contains(r), "slo.json does not use {r}");
    }
}
