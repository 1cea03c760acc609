//! The SLO spec file: services, their objectives, and validation.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{SloError, Window};

/// The explicit histogram bucket boundaries (seconds) that `telemetry-init` gives
/// `http.server.request.duration` and `rpc.server.duration`, as advised by the
/// OpenTelemetry HTTP semantic conventions.
///
/// A latency objective's threshold must be one of the buckets a service exports,
/// because the SLI counts requests in the bucket `le="<threshold>"`.
pub const DEFAULT_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// The default base URL of the runbooks linked from every alert.
pub const DEFAULT_RUNBOOK_BASE_URL: &str =
    "https://github.com/telemetry-init/telemetry-init/blob/main/docs/runbooks/";

/// The shortest SLO period accepted: the slowest burn-rate alert looks back 3 days,
/// so an SLO period must be at least a week for that window to mean anything.
pub const MIN_PERIOD: Window = Window::days(7);

/// A whole SLO spec file: one or more services and their objectives.
///
/// ```
/// use telemetry_init_slo::{Kind, SloSpec};
///
/// let spec = SloSpec::from_yaml_str(r#"
/// services:
///   - name: checkout
///     objectives:
///       - name: availability
///         kind: availability
///         target: 99.9
///       - name: get-user-latency
///         route: /users/{id}
///         kind: latency
///         target: 99
///         threshold: 0.25
///         window: 28d
/// "#).unwrap();
/// let checkout = &spec.services[0];
/// assert_eq!(checkout.objectives[0].window.to_string(), "30d");
/// assert_eq!(checkout.objectives[1].kind, Kind::Latency);
/// assert_eq!(checkout.objectives[1].error_budget(), 0.01);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloSpec {
    /// Base URL that alert `runbook_url` annotations are built from: the runbook
    /// file name (e.g. `slo-error-budget-burn-page.md`) is appended to it.
    #[serde(default = "default_runbook_base_url")]
    pub runbook_base_url: String,
    /// The services and their objectives.
    pub services: Vec<Service>,
}

fn default_runbook_base_url() -> String {
    DEFAULT_RUNBOOK_BASE_URL.to_owned()
}

/// One service (matched on the `service_name` label) and its objectives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// The service name, as in the OpenTelemetry resource attribute `service.name`
    /// (the `service_name` label in Prometheus).
    pub name: String,
    /// The latency histogram's bucket boundaries in seconds, if the service
    /// changed them; [`DEFAULT_BUCKETS`] otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<Vec<f64>>,
    /// The service's objectives.
    pub objectives: Vec<Objective>,
}

impl Service {
    /// The bucket boundaries a latency threshold must be chosen from.
    pub fn buckets(&self) -> &[f64] {
        self.buckets.as_deref().unwrap_or(&DEFAULT_BUCKETS)
    }
}

/// What an objective measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The share of requests answered without a 5xx status.
    Availability,
    /// The share of requests answered within `threshold` seconds.
    Latency,
}

/// One service level objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objective {
    /// A short identifier, unique within the service: lowercase letters, digits,
    /// `-` and `_`. It becomes the `slo` label of every generated series and alert.
    pub name: String,
    /// A human description, shown in alert descriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Restrict the objective to one route template (the `http_route` label, e.g.
    /// `/users/{id}`); all routes when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// What the objective measures.
    pub kind: Kind,
    /// The target in percent of good requests, strictly between 0 and 100 (e.g. `99.9`).
    pub target: f64,
    /// For [`Kind::Latency`]: the latency in seconds a request must not exceed to be
    /// good. Must be one of the service's histogram bucket boundaries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// The SLO period the error budget is spent over (default `30d`).
    #[serde(default)]
    pub window: Window,
}

impl Objective {
    /// The error budget as a ratio: `1 - target / 100`, rounded to 12 decimals so that
    /// `99.9` gives exactly `0.001`.
    pub fn error_budget(&self) -> f64 {
        round12((100.0 - self.target) / 100.0)
    }

    /// The objective as a ratio (`target / 100`).
    pub fn objective_ratio(&self) -> f64 {
        round12(self.target / 100.0)
    }
}

pub(crate) fn round12(x: f64) -> f64 {
    (x * 1e12).round() / 1e12
}

impl SloSpec {
    /// Parses and validates a spec from YAML text.
    pub fn from_yaml_str(yaml: &str) -> Result<Self, SloError> {
        let spec: SloSpec = serde_yaml_ng::from_str(yaml).map_err(SloError::Parse)?;
        spec.validate()?;
        Ok(spec)
    }

    /// Reads, parses and validates a spec file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, SloError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| SloError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml_str(&text).map_err(|e| e.in_file(path))
    }

    /// Checks every rule a spec must follow; the first violation is returned.
    ///
    /// ```
    /// use telemetry_init_slo::SloSpec;
    ///
    /// let err = SloSpec::from_yaml_str(r#"
    /// services:
    ///   - name: api
    ///     objectives:
    ///       - { name: fast, kind: latency, target: 99, threshold: 0.3 }
    /// "#).unwrap_err();
    /// assert!(err.to_string().contains("not a histogram bucket boundary"));
    /// ```
    pub fn validate(&self) -> Result<(), SloError> {
        let top = |message: String| SloError::Invalid {
            context: "spec".to_owned(),
            message,
        };
        if self.services.is_empty() {
            return Err(top(
                "`services` is empty: declare at least one service".into()
            ));
        }
        let mut service_names = BTreeSet::new();
        for service in &self.services {
            let ctx = format!("service {:?}", service.name);
            let invalid = |message: String| SloError::Invalid {
                context: ctx.clone(),
                message,
            };
            if service.name.trim().is_empty() {
                return Err(invalid("the service name is empty".into()));
            }
            if !service_names.insert(service.name.as_str()) {
                return Err(invalid("the service is declared twice".into()));
            }
            if let Some(buckets) = &service.buckets
                && (buckets.is_empty() || buckets.windows(2).any(|w| w[0] >= w[1]))
            {
                return Err(invalid(
                    "`buckets` must be a non-empty, strictly increasing list".into(),
                ));
            }
            if service.objectives.is_empty() {
                return Err(invalid("`objectives` is empty".into()));
            }
            let mut names = BTreeSet::new();
            for objective in &service.objectives {
                validate_objective(service, objective, &mut names)?;
            }
        }
        Ok(())
    }
}

fn validate_objective<'a>(
    service: &Service,
    objective: &'a Objective,
    names: &mut BTreeSet<&'a str>,
) -> Result<(), SloError> {
    let invalid = |message: String| SloError::Invalid {
        context: format!("service {:?}, objective {:?}", service.name, objective.name),
        message,
    };
    let name = objective.name.as_str();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(invalid(
            "the name must be non-empty and use only lowercase letters, digits, `-` and `_`".into(),
        ));
    }
    if !names.insert(name) {
        return Err(invalid(
            "the objective name is used twice in this service".into(),
        ));
    }
    if !(objective.target > 0.0 && objective.target < 100.0) {
        return Err(invalid(format!(
            "target {} is outside (0, 100): write a percentage such as 99.9",
            objective.target
        )));
    }
    if objective.route.as_deref() == Some("") {
        return Err(invalid(
            "`route` is empty: omit it to cover all routes".into(),
        ));
    }
    if objective.window < MIN_PERIOD {
        return Err(invalid(format!(
            "window {} is shorter than {MIN_PERIOD}: the slowest burn-rate alert looks back 3d",
            objective.window
        )));
    }
    match (objective.kind, objective.threshold) {
        (Kind::Availability, Some(_)) => {
            return Err(invalid(
                "`threshold` only applies to `kind: latency`".into(),
            ));
        }
        (Kind::Availability, None) => {}
        (Kind::Latency, None) => {
            return Err(invalid(
                "`kind: latency` needs `threshold` (seconds, a histogram bucket boundary)".into(),
            ));
        }
        (Kind::Latency, Some(t)) => {
            let buckets = service.buckets();
            if !buckets.iter().any(|b| (b - t).abs() < 1e-9) {
                let list: Vec<String> = buckets.iter().map(|b| b.to_string()).collect();
                return Err(invalid(format!(
                    "threshold {t}s is not a histogram bucket boundary; choose one of [{}] \
                     or add it to the service's `buckets` (and to the exporter's)",
                    list.join(", ")
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(yaml: &str) -> String {
        SloSpec::from_yaml_str(yaml).unwrap_err().to_string()
    }

    #[test]
    fn defaults_apply() {
        let spec = SloSpec::from_yaml_str(
            "services: [{name: a, objectives: [{name: avail, kind: availability, target: 99.5}]}]",
        )
        .unwrap();
        assert_eq!(spec.runbook_base_url, DEFAULT_RUNBOOK_BASE_URL);
        let o = &spec.services[0].objectives[0];
        assert_eq!(o.window, Window::days(30));
        assert_eq!(o.route, None);
        assert_eq!(o.error_budget(), 0.005);
        assert_eq!(o.objective_ratio(), 0.995);
    }

    #[test]
    fn rejects_bad_targets() {
        for t in ["0", "100", "-1", "100.1", ".nan"] {
            let e = err(&format!(
                "services: [{{name: a, objectives: [{{name: x, kind: availability, target: {t}}}]}}]"
            ));
            assert!(e.contains("outside (0, 100)"), "{t}: {e}");
            assert!(e.contains("service \"a\", objective \"x\""), "{e}");
        }
    }

    #[test]
    fn latency_threshold_must_be_a_bucket() {
        let e = err(
            "services: [{name: a, objectives: [{name: x, kind: latency, target: 99, threshold: 0.2}]}]",
        );
        assert!(e.contains("not a histogram bucket boundary"), "{e}");
        SloSpec::from_yaml_str(
            "services: [{name: a, buckets: [0.2, 1], objectives: [{name: x, kind: latency, target: 99, threshold: 0.2}]}]",
        )
        .unwrap();
        let e = err("services: [{name: a, objectives: [{name: x, kind: latency, target: 99}]}]");
        assert!(e.contains("needs `threshold`"), "{e}");
        let e = err(
            "services: [{name: a, objectives: [{name: x, kind: availability, target: 99, threshold: 1}]}]",
        );
        assert!(e.contains("only applies"), "{e}");
    }

    #[test]
    fn rejects_bad_windows_and_names() {
        let e = err(
            "services: [{name: a, objectives: [{name: x, kind: availability, target: 99, window: 30x}]}]",
        );
        assert!(e.contains("unknown unit"), "{e}");
        let e = err(
            "services: [{name: a, objectives: [{name: x, kind: availability, target: 99, window: 2d}]}]",
        );
        assert!(e.contains("shorter than 7d"), "{e}");
        let e = err(
            "services: [{name: a, objectives: [{name: Bad Name, kind: availability, target: 99}]}]",
        );
        assert!(e.contains("lowercase"), "{e}");
        let e = err(
            "services: [{name: a, objectives: [{name: x, kind: availability, target: 99}, {name: x, kind: availability, target: 98}]}]",
        );
        assert!(e.contains("used twice"), "{e}");
        let e = err("services: [{name: a, objectives: [{name: x, kind: speed, target: 99}]}]");
        assert!(e.contains("unknown variant"), "{e}");
        let e = err(
            "services: [{name: a, objectives: [{name: x, kind: availability, target: 99, typo: 1}]}]",
        );
        assert!(e.contains("unknown field"), "{e}");
        assert!(err("services: []").contains("empty"));
    }
}
