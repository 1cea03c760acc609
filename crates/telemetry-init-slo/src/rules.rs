//! Generation of Prometheus/Mimir recording and alerting rules from an [`SloSpec`].

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::spec::round12;
use crate::{Kind, Objective, Service, SloError, SloSpec, Window};

/// The histogram the HTTP SLIs are computed from (OTel `http.server.request.duration`,
/// after the OTel → Prometheus name mapping).
pub const HTTP_DURATION_METRIC: &str = "http_server_request_duration_seconds";

/// The windows an error ratio is recorded over: every short and long window used by
/// [`BURN_RATE_ALERTS`]. Each gives a series `slo:sli_error:ratio_rate<window>`.
pub const SLI_WINDOWS: [Window; 7] = [
    Window::minutes(5),
    Window::minutes(30),
    Window::hours(1),
    Window::hours(2),
    Window::hours(6),
    Window::days(1),
    Window::days(3),
];

/// How urgent a burn-rate alert is; becomes the `severity` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Wake someone up: the budget is going fast.
    Page,
    /// Open a ticket: the budget will run out before the period ends if nothing changes.
    Ticket,
}

impl Severity {
    /// The `severity` label value.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        }
    }

    /// The alert name used for this severity.
    pub fn alert_name(self) -> &'static str {
        match self {
            Severity::Page => "SLOErrorBudgetBurnPage",
            Severity::Ticket => "SLOErrorBudgetBurnTicket",
        }
    }

    /// The runbook file (under `docs/runbooks/`) the alert links to.
    pub fn runbook(self) -> &'static str {
        match self {
            Severity::Page => "slo-error-budget-burn-page.md",
            Severity::Ticket => "slo-error-budget-burn-ticket.md",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One multiwindow burn-rate alert condition (Google SRE workbook, "Alerting on SLOs",
/// recommended parameters).
///
/// The alert fires when the error ratio exceeds `factor × error_budget` over both the
/// long window (is the burn significant?) and the short window (is it still going on?
/// this is what makes the alert reset quickly after recovery).
///
/// The factor is derived from the share of the whole period's budget that may be
/// consumed within the long window before the alert fires:
///
/// ```text
/// factor = budget_consumed × period / long_window
/// ```
///
/// so for a 30d period the four conditions give the workbook's 14.4, 6, 3 and 1, and
/// for a 28d period 13.44, 5.6, 2.8 and 0.933: the same budget fraction is consumed
/// before each alert fires whatever the period.
///
/// ```
/// use telemetry_init_slo::{BURN_RATE_ALERTS, Window};
///
/// let factors: Vec<f64> = BURN_RATE_ALERTS.iter().map(|a| a.factor(Window::days(30))).collect();
/// assert_eq!(factors, [14.4, 6.0, 3.0, 1.0]);
/// assert_eq!(BURN_RATE_ALERTS[0].factor(Window::days(28)), 13.44);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnRateAlert {
    /// Page or ticket.
    pub severity: Severity,
    /// The long window.
    pub long: Window,
    /// The short window (1/12 of the long one).
    pub short: Window,
    /// The share of the period's error budget consumed within `long` at the threshold.
    pub budget_consumed: f64,
}

impl BurnRateAlert {
    /// The burn-rate factor for an SLO period: `budget_consumed × period / long`.
    pub fn factor(&self, period: Window) -> f64 {
        round12(self.budget_consumed * period.seconds() as f64 / self.long.seconds() as f64)
    }
}

/// The four multiwindow multi-burn-rate conditions, fastest first.
pub const BURN_RATE_ALERTS: [BurnRateAlert; 4] = [
    BurnRateAlert {
        severity: Severity::Page,
        long: Window::hours(1),
        short: Window::minutes(5),
        budget_consumed: 0.02,
    },
    BurnRateAlert {
        severity: Severity::Page,
        long: Window::hours(6),
        short: Window::minutes(30),
        budget_consumed: 0.05,
    },
    BurnRateAlert {
        severity: Severity::Ticket,
        long: Window::days(1),
        short: Window::hours(2),
        budget_consumed: 0.10,
    },
    BurnRateAlert {
        severity: Severity::Ticket,
        long: Window::days(3),
        short: Window::hours(6),
        budget_consumed: 0.10,
    },
];

/// A Prometheus rule file: the format loaded by Prometheus (`rule_files`), the Mimir
/// and Loki rulers, and `promtool check rules`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleFile {
    /// The rule groups, in order.
    pub groups: Vec<RuleGroup>,
}

/// A group of rules evaluated together, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleGroup {
    /// The group name, unique within the file.
    pub name: String,
    /// The rules.
    pub rules: Vec<Rule>,
}

/// A recording rule (`record`) or an alerting rule (`alert`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    /// The recorded series name, for a recording rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// The alert name, for an alerting rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// The PromQL expression.
    pub expr: String,
    /// Labels added to the result.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Alert annotations (templated with Go templates by the rule evaluator).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl RuleFile {
    /// Renders the file as YAML.
    pub fn to_yaml(&self) -> Result<String, SloError> {
        serde_yaml_ng::to_string(self).map_err(SloError::Render)
    }

    /// Every PromQL expression in the file, in order.
    pub fn exprs(&self) -> impl Iterator<Item = &str> {
        self.groups
            .iter()
            .flat_map(|g| g.rules.iter().map(|r| r.expr.as_str()))
    }
}

/// Generates the rule file for every objective of a spec.
///
/// Per objective there are two groups:
///
/// * `slo-<service>-<objective>-recordings`: `slo:sli_error:ratio_rate<W>` for every
///   window in [`SLI_WINDOWS`], `slo:sli_error:ratio_period` over the SLO period,
///   `slo:objective:ratio`, `slo:error_budget:ratio`, `slo:period:days` and
///   `slo:error_budget_remaining:ratio` (1 = untouched, 0 = spent, negative = overspent).
///   Every series is labelled `service_name` and `slo`.
/// * `slo-<service>-<objective>-alerts`: one rule per [`BURN_RATE_ALERTS`] entry, named
///   `SLOErrorBudgetBurnPage` or `SLOErrorBudgetBurnTicket`, labelled `service_name`,
///   `slo`, `severity`, `long_window` and `short_window`, annotated `summary`, `description` and `runbook_url`.
///
/// ```
/// use telemetry_init_slo::{generate, SloSpec};
///
/// let spec = SloSpec::from_yaml_str(
///     "services: [{name: api, objectives: [{name: availability, kind: availability, target: 99.9}]}]",
/// ).unwrap();
/// let rules = generate(&spec);
/// let yaml = rules.to_yaml().unwrap();
/// assert!(yaml.contains("record: slo:sli_error:ratio_rate5m"));
/// assert!(yaml.contains("alert: SLOErrorBudgetBurnPage"));
/// assert!(rules.exprs().any(|e| e.contains("> (14.4 * 0.001)")));
/// ```
pub fn generate(spec: &SloSpec) -> RuleFile {
    let mut groups = Vec::new();
    for service in &spec.services {
        for objective in &service.objectives {
            groups.push(recordings(service, objective));
            groups.push(alerts(spec, service, objective));
        }
    }
    RuleFile { groups }
}

/// Formats a number for PromQL and prose: at most 12 decimals, no trailing zeros.
pub fn fmt_num(x: f64) -> String {
    let s = format!("{x:.12}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

fn slo_labels(service: &Service, objective: &Objective) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("service_name".to_owned(), service.name.clone()),
        ("slo".to_owned(), objective.name.clone()),
    ])
}

/// The label matchers selecting the objective's requests, plus `extra`.
fn matchers(service: &Service, objective: &Objective, extra: Option<&str>) -> String {
    let mut m = vec![format!("service_name=\"{}\"", escape(&service.name))];
    if let Some(route) = &objective.route {
        m.push(format!("http_route=\"{}\"", escape(route)));
    }
    if let Some(extra) = extra {
        m.push(extra.to_owned());
    }
    format!("{{{}}}", m.join(","))
}

/// The error-ratio expression of an objective over `range` (a PromQL duration).
///
/// Availability: 5xx responses / all responses. The `or 0 * total` term makes the
/// ratio 0 instead of absent while there is traffic but no 5xx series exists yet.
///
/// Latency: 1 − requests in the `le="<threshold>"` bucket / all requests. Integer
/// thresholds match both `le="1"` and `le="1.0"` (Prometheus 3 normalises to the latter).
pub fn error_ratio_expr(service: &Service, objective: &Objective, range: &str) -> String {
    let total = format!(
        "sum by (service_name) (rate({HTTP_DURATION_METRIC}_count{}[{range}]))",
        matchers(service, objective, None)
    );
    match objective.kind {
        Kind::Availability => {
            let errors = format!(
                "sum by (service_name) (rate({HTTP_DURATION_METRIC}_count{}[{range}]))",
                matchers(
                    service,
                    objective,
                    Some("http_response_status_code=~\"5..\"")
                )
            );
            format!("(\n  {errors}\n  or\n  0 * {total}\n)\n/\n{total}")
        }
        Kind::Latency => {
            let t = objective.threshold.unwrap_or_default();
            let le = if t.fract() == 0.0 {
                format!("le=~\"{}(\\\\.0)?\"", fmt_num(t))
            } else {
                format!("le=\"{}\"", fmt_num(t))
            };
            let good = format!(
                "sum by (service_name) (rate({HTTP_DURATION_METRIC}_bucket{}[{range}]))",
                matchers(service, objective, Some(&le))
            );
            format!("1 - (\n  {good}\n  /\n  {total}\n)")
        }
    }
}

fn recording(record: String, expr: String, labels: &BTreeMap<String, String>) -> Rule {
    Rule {
        record: Some(record),
        alert: None,
        expr,
        labels: labels.clone(),
        annotations: BTreeMap::new(),
    }
}

fn recordings(service: &Service, objective: &Objective) -> RuleGroup {
    let labels = slo_labels(service, objective);
    let mut rules: Vec<Rule> = SLI_WINDOWS
        .iter()
        .map(|w| {
            recording(
                format!("slo:sli_error:ratio_rate{w}"),
                error_ratio_expr(service, objective, &w.to_string()),
                &labels,
            )
        })
        .collect();
    let period = objective.window;
    rules.push(recording(
        "slo:sli_error:ratio_period".into(),
        error_ratio_expr(service, objective, &period.to_string()),
        &labels,
    ));
    rules.push(recording(
        "slo:objective:ratio".into(),
        format!("vector({})", fmt_num(objective.objective_ratio())),
        &labels,
    ));
    rules.push(recording(
        "slo:error_budget:ratio".into(),
        format!("vector({})", fmt_num(objective.error_budget())),
        &labels,
    ));
    rules.push(recording(
        "slo:period:days".into(),
        format!("vector({})", fmt_num(period.seconds() as f64 / 86_400.0)),
        &labels,
    ));
    rules.push(recording(
        "slo:error_budget_remaining:ratio".into(),
        format!(
            "1 - (\n  slo:sli_error:ratio_period{sel}\n  /\n  {budget}\n)",
            sel = series_selector(service, objective),
            budget = fmt_num(objective.error_budget())
        ),
        &labels,
    ));
    RuleGroup {
        name: format!("slo-{}-{}-recordings", service.name, objective.name),
        rules,
    }
}

fn series_selector(service: &Service, objective: &Objective) -> String {
    format!(
        "{{service_name=\"{}\",slo=\"{}\"}}",
        escape(&service.name),
        escape(&objective.name)
    )
}

fn hours_text(hours: f64) -> String {
    if hours >= 48.0 {
        format!("{}d", fmt_num((hours / 24.0 * 10.0).round() / 10.0))
    } else {
        format!("{}h", fmt_num((hours * 10.0).round() / 10.0))
    }
}

fn alerts(spec: &SloSpec, service: &Service, objective: &Objective) -> RuleGroup {
    let sel = series_selector(service, objective);
    let budget = fmt_num(objective.error_budget());
    let budget_pct = fmt_num(objective.error_budget() * 100.0);
    let period = objective.window;
    let scope = match &objective.route {
        Some(route) => format!("requests to {route}"),
        None => "all requests".to_owned(),
    };
    let what = match objective.kind {
        Kind::Availability => format!(
            "{}% of {scope} answered without a 5xx",
            fmt_num(objective.target)
        ),
        Kind::Latency => format!(
            "{}% of {scope} answered within {}s",
            fmt_num(objective.target),
            fmt_num(objective.threshold.unwrap_or_default())
        ),
    };
    let description_prefix = objective
        .description
        .as_ref()
        .map(|d| format!("{d} "))
        .unwrap_or_default();
    let rules = BURN_RATE_ALERTS
        .iter()
        .map(|a| {
            let factor = a.factor(period);
            let f = fmt_num(factor);
            let exhaustion = hours_text(period.seconds() as f64 / 3_600.0 / factor);
            let expr = format!(
                "slo:sli_error:ratio_rate{long}{sel} > ({f} * {budget})\nand\nslo:sli_error:ratio_rate{short}{sel} > ({f} * {budget})",
                long = a.long,
                short = a.short,
            );
            let mut labels = slo_labels(service, objective);
            labels.extend([
                ("severity".to_owned(), a.severity.label().to_owned()),
                ("long_window".to_owned(), a.long.to_string()),
                ("short_window".to_owned(), a.short.to_string()),
            ]);
            let annotations = BTreeMap::from([
                (
                    "summary".to_owned(),
                    format!(
                        "{}: SLO {} is burning its error budget {f}x too fast ({}/{} windows)",
                        service.name, objective.name, a.long, a.short
                    ),
                ),
                (
                    "description".to_owned(),
                    format!(
                        "{description_prefix}Objective: {what}, over {period}. The error ratio \
                         was {{{{ $value | humanizePercentage }}}} over the last {long} and is \
                         still above {f}x the {budget_pct}% error budget over the last {short}. \
                         {consumed}% of the {period} budget is spent every {long} at this rate; \
                         the whole budget lasts {exhaustion}.",
                        long = a.long,
                        short = a.short,
                        consumed = fmt_num(a.budget_consumed * 100.0),
                    ),
                ),
                (
                    "runbook_url".to_owned(),
                    format!("{}{}", spec.runbook_base_url, a.severity.runbook()),
                ),
            ]);
            Rule {
                record: None,
                alert: Some(a.severity.alert_name().to_owned()),
                expr,
                labels,
                annotations,
            }
        })
        .collect();
    RuleGroup {
        name: format!("slo-{}-{}-alerts", service.name, objective.name),
        rules,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
services:
  - name: demo
    objectives:
      - name: availability
        kind: availability
        target: 99.9
      - name: users-latency
        route: /users/{id}
        kind: latency
        target: 99
        threshold: 0.25
      - name: slow-ok
        kind: latency
        target: 95
        threshold: 1
        window: 28d
"#;

    fn rules() -> RuleFile {
        generate(&SloSpec::from_yaml_str(SPEC).unwrap())
    }

    #[test]
    fn factors_for_30d_and_28d() {
        let f30: Vec<_> = BURN_RATE_ALERTS
            .iter()
            .map(|a| a.factor(Window::days(30)))
            .collect();
        assert_eq!(f30, [14.4, 6.0, 3.0, 1.0]);
        let f28: Vec<_> = BURN_RATE_ALERTS
            .iter()
            .map(|a| fmt_num(a.factor(Window::days(28))))
            .collect();
        assert_eq!(f28, ["13.44", "5.6", "2.8", "0.933333333333"]);
        // The same budget share is consumed before each alert fires, whatever the period.
        for a in BURN_RATE_ALERTS {
            for days in [7, 28, 30, 90] {
                let p = Window::days(days);
                let consumed = a.factor(p) * a.long.seconds() as f64 / p.seconds() as f64;
                assert!((consumed - a.budget_consumed).abs() < 1e-9);
            }
            assert_eq!(a.long.seconds(), a.short.seconds() * 12);
        }
    }

    #[test]
    fn groups_and_rule_names() {
        let r = rules();
        let names: Vec<_> = r.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "slo-demo-availability-recordings",
                "slo-demo-availability-alerts",
                "slo-demo-users-latency-recordings",
                "slo-demo-users-latency-alerts",
                "slo-demo-slow-ok-recordings",
                "slo-demo-slow-ok-alerts",
            ]
        );
        let records: Vec<_> = r.groups[0]
            .rules
            .iter()
            .map(|r| r.record.clone().unwrap())
            .collect();
        assert_eq!(
            records,
            [
                "slo:sli_error:ratio_rate5m",
                "slo:sli_error:ratio_rate30m",
                "slo:sli_error:ratio_rate1h",
                "slo:sli_error:ratio_rate2h",
                "slo:sli_error:ratio_rate6h",
                "slo:sli_error:ratio_rate1d",
                "slo:sli_error:ratio_rate3d",
                "slo:sli_error:ratio_period",
                "slo:objective:ratio",
                "slo:error_budget:ratio",
                "slo:period:days",
                "slo:error_budget_remaining:ratio",
            ]
        );
        for rule in &r.groups[0].rules {
            assert_eq!(rule.labels["service_name"], "demo");
            assert_eq!(rule.labels["slo"], "availability");
        }
    }

    #[test]
    fn availability_expr() {
        let r = rules();
        let e = &r.groups[0].rules[0].expr;
        assert_eq!(
            e,
            "(\n  sum by (service_name) (rate(http_server_request_duration_seconds_count{service_name=\"demo\",http_response_status_code=~\"5..\"}[5m]))\n  or\n  0 * sum by (service_name) (rate(http_server_request_duration_seconds_count{service_name=\"demo\"}[5m]))\n)\n/\nsum by (service_name) (rate(http_server_request_duration_seconds_count{service_name=\"demo\"}[5m]))"
        );
        assert!(r.groups[0].rules[7].expr.contains("[30d]"));
        assert_eq!(r.groups[0].rules[8].expr, "vector(0.999)");
        assert_eq!(r.groups[0].rules[9].expr, "vector(0.001)");
        assert_eq!(r.groups[0].rules[10].expr, "vector(30)");
    }

    #[test]
    fn latency_expr_uses_the_bucket_and_route() {
        let r = rules();
        let e = &r.groups[2].rules[2].expr;
        assert!(e.starts_with("1 - (\n"), "{e}");
        assert!(e.contains("http_server_request_duration_seconds_bucket{service_name=\"demo\",http_route=\"/users/{id}\",le=\"0.25\"}[1h]"), "{e}");
        assert!(e.contains("http_server_request_duration_seconds_count{service_name=\"demo\",http_route=\"/users/{id}\"}[1h]"), "{e}");
        // Integer thresholds match both spellings of `le`.
        let e = &r.groups[4].rules[0].expr;
        assert!(e.contains(r#"le=~"1(\\.0)?""#), "{e}");
    }

    #[test]
    fn alerts_follow_the_workbook() {
        let r = rules();
        let alerts = &r.groups[1].rules;
        assert_eq!(alerts.len(), 4);
        let expected = [
            ("SLOErrorBudgetBurnPage", "page", "1h", "5m", "14.4"),
            ("SLOErrorBudgetBurnPage", "page", "6h", "30m", "6"),
            ("SLOErrorBudgetBurnTicket", "ticket", "1d", "2h", "3"),
            ("SLOErrorBudgetBurnTicket", "ticket", "3d", "6h", "1"),
        ];
        for (rule, (name, sev, long, short, f)) in alerts.iter().zip(expected) {
            assert_eq!(rule.alert.as_deref(), Some(name));
            assert_eq!(rule.labels["severity"], sev);
            assert_eq!(rule.labels["slo"], "availability");
            assert_eq!(rule.labels["service_name"], "demo");
            assert_eq!(rule.labels["long_window"], long);
            assert_eq!(rule.labels["short_window"], short);
            assert_eq!(
                rule.expr,
                format!(
                    "slo:sli_error:ratio_rate{long}{{service_name=\"demo\",slo=\"availability\"}} > ({f} * 0.001)\nand\nslo:sli_error:ratio_rate{short}{{service_name=\"demo\",slo=\"availability\"}} > ({f} * 0.001)"
                )
            );
            assert!(
                rule.annotations["runbook_url"]
                    .ends_with(&format!("docs/runbooks/slo-error-budget-burn-{sev}.md"))
            );
            assert!(rule.annotations["summary"].contains(&format!("{f}x")));
            assert!(rule.annotations["description"].contains("{{ $value | humanizePercentage }}"));
        }
        assert!(alerts[0].annotations["description"].contains("the whole budget lasts 2.1d"));
        // 28d period: factors scale.
        assert!(r.groups[5].rules[0].expr.contains("> (13.44 * 0.05)"));
    }

    #[test]
    fn yaml_round_trips() {
        let yaml = rules().to_yaml().unwrap();
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).unwrap();
        let groups = v["groups"].as_sequence().unwrap();
        assert_eq!(groups.len(), 6);
        let first = &groups[0]["rules"][0];
        assert_eq!(first["record"].as_str(), Some("slo:sli_error:ratio_rate5m"));
        assert_eq!(
            first["expr"].as_str(),
            Some(rules().groups[0].rules[0].expr.as_str())
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let spec = SloSpec::from_yaml_str(
            r#"services: [{name: 'we"ird', objectives: [{name: a, route: '/a\b', kind: availability, target: 99}]}]"#,
        )
        .unwrap();
        let r = generate(&spec);
        assert!(
            r.groups[0].rules[0]
                .expr
                .contains(r#"service_name="we\"ird",http_route="/a\\b""#)
        );
    }

    #[test]
    fn numbers_format_cleanly() {
        assert_eq!(fmt_num(0.001), "0.001");
        assert_eq!(fmt_num(1.0), "1");
        assert_eq!(fmt_num(14.399999999999999), "14.4");
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(hours_text(50.0), "2.1d");
        assert_eq!(hours_text(30.0), "30h");
    }
}
