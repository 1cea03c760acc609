//! The smoke report: one line per check (✓ / ✗ / –) with what was missing,
//! as text for people or as JSON for machines.

use std::fmt::Write as _;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    /// The property holds.
    Pass,
    /// The property does not hold; `problems` say what is missing.
    Fail,
    /// The property could not be observed in this setup (never a failure).
    Skip,
}

impl Status {
    fn symbol(self) -> &'static str {
        match self {
            Status::Pass => "✓",
            Status::Fail => "✗",
            Status::Skip => "–",
        }
    }

    fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

/// One checked property.
#[derive(Debug, Clone)]
pub(super) struct Check {
    /// Short name, e.g. `"tempo: trace received"`.
    pub name: String,
    /// Outcome.
    pub status: Status,
    /// What was found (on success) or why it was skipped.
    pub detail: String,
    /// One sentence per missing or wrong thing (on failure).
    pub problems: Vec<String>,
}

impl Check {
    /// A passed check.
    pub(super) fn pass(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status: Status::Pass,
            detail: detail.into(),
            problems: Vec::new(),
        }
    }

    /// A failed check with its problems (at least one).
    pub(super) fn fail(name: impl Into<String>, problems: Vec<String>) -> Check {
        let mut problems = problems;
        if problems.is_empty() {
            problems.push("failed".to_owned());
        }
        Check {
            name: name.into(),
            status: Status::Fail,
            detail: String::new(),
            problems,
        }
    }

    /// A check that could not be made here, with the reason.
    pub(super) fn skip(name: impl Into<String>, why: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status: Status::Skip,
            detail: why.into(),
            problems: Vec::new(),
        }
    }

    /// Pass with `detail` when `problems` is empty, fail otherwise.
    pub(super) fn from_problems(
        name: impl Into<String>,
        problems: Vec<String>,
        detail: impl Into<String>,
    ) -> Check {
        if problems.is_empty() {
            Check::pass(name, detail)
        } else {
            Check::fail(name, problems)
        }
    }
}

/// Every check of one smoke run, plus facts worth printing (trace ids…).
#[derive(Debug, Clone, Default)]
pub(super) struct Report {
    /// `"live"` or `"run"`.
    pub mode: String,
    /// Key facts, in order (e.g. `("trace_id", "4bf9…")`).
    pub facts: Vec<(String, String)>,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
    /// Extra diagnostics printed after a failure (e.g. the service's stderr).
    pub diagnostics: Vec<String>,
}

impl Report {
    /// An empty report for `mode`.
    pub(super) fn new(mode: &str) -> Report {
        Report {
            mode: mode.to_owned(),
            ..Report::default()
        }
    }

    /// Records a fact.
    pub(super) fn fact(&mut self, key: &str, value: impl Into<String>) {
        self.facts.push((key.to_owned(), value.into()));
    }

    /// Adds a check.
    pub(super) fn push(&mut self, check: Check) {
        self.checks.push(check);
    }

    /// Whether no check failed.
    pub(super) fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Fail)
    }

    fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// The human-readable report.
    pub(super) fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "telemetry-init smoke {}", self.mode);
        for (k, v) in &self.facts {
            let _ = writeln!(out, "  {k}: {v}");
        }
        out.push('\n');
        for c in &self.checks {
            let _ = write!(out, "{} {}", c.status.symbol(), c.name);
            if !c.detail.is_empty() {
                let _ = write!(out, ": {}", c.detail);
            }
            out.push('\n');
            for p in &c.problems {
                let _ = writeln!(out, "    - {p}");
            }
        }
        if !self.passed() {
            for d in &self.diagnostics {
                let _ = writeln!(out, "\n{d}");
            }
        }
        let _ = writeln!(
            out,
            "\n{}: {} passed, {} failed, {} skipped",
            if self.passed() { "PASS" } else { "FAIL" },
            self.count(Status::Pass),
            self.count(Status::Fail),
            self.count(Status::Skip)
        );
        out
    }

    /// The machine-readable report.
    pub(super) fn to_json(&self) -> serde_json::Value {
        let facts: serde_json::Map<String, serde_json::Value> = self
            .facts
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        serde_json::json!({
            "mode": self.mode,
            "passed": self.passed(),
            "facts": facts,
            "checks": self.checks.iter().map(|c| serde_json::json!({
                "name": c.name,
                "status": c.status.word(),
                "detail": c.detail,
                "problems": c.problems,
            })).collect::<Vec<_>>(),
            "diagnostics": if self.passed() { Vec::new() } else { self.diagnostics.clone() },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_name_the_problem() {
        let mut r = Report::new("live");
        r.fact("trace_id", "abc");
        r.push(Check::pass("collector ready", "200"));
        r.push(Check::fail(
            "loki: logs of the trace",
            vec!["no stream matched".into()],
        ));
        r.push(Check::skip("exemplars", "not asked"));
        assert!(!r.passed());
        let text = r.render_text();
        assert!(text.contains("✓ collector ready: 200"), "{text}");
        assert!(text.contains("✗ loki: logs of the trace\n    - no stream matched"));
        assert!(
            text.contains("FAIL: 1 passed, 1 failed, 1 skipped"),
            "{text}"
        );
        let json = r.to_json();
        assert_eq!(json["passed"], false);
        assert_eq!(json["checks"][1]["status"], "fail");
        assert_eq!(json["checks"][1]["problems"][0], "no stream matched");
        assert_eq!(json["facts"]["trace_id"], "abc");
    }
}
