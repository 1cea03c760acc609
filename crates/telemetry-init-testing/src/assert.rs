//! Assertions over received telemetry. Each returns an [`AssertionError`]
//! that lists exactly what is missing or wrong, so it reads well both in a
//! test failure and in a CLI's output.
//!
//! ```
//! use telemetry_init_testing::assert;
//!
//! // Nothing received: propagation cannot be shown, and the error says why.
//! let err = assert::trace_propagated(&[], "frontend", "backend").unwrap_err();
//! assert!(err.to_string().contains("no CLIENT span from service `frontend`"));
//! // …while an empty set holds no secret.
//! assert!(assert::no_secrets(&[], &[]).is_ok());
//! ```

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

use crate::model::{ReceivedLog, ReceivedMetric, ReceivedSpan, SpanKind};
use crate::value::Value;

/// Most problems listed in one error; the rest are counted.
const MAX_PROBLEMS: usize = 20;

/// A failed assertion: its name and every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionError {
    /// Name of the assertion, e.g. `"trace_propagated"`.
    pub assertion: &'static str,
    /// One human-readable sentence per problem.
    pub problems: Vec<String>,
}

impl AssertionError {
    fn new(assertion: &'static str, problems: Vec<String>) -> Self {
        AssertionError {
            assertion,
            problems,
        }
    }
}

impl fmt::Display for AssertionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed ({} problem{}):",
            self.assertion,
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for p in self.problems.iter().take(MAX_PROBLEMS) {
            write!(f, "\n  - {p}")?;
        }
        if self.problems.len() > MAX_PROBLEMS {
            write!(f, "\n  … and {} more", self.problems.len() - MAX_PROBLEMS)?;
        }
        Ok(())
    }
}

impl std::error::Error for AssertionError {}

fn result(assertion: &'static str, problems: Vec<String>) -> Result<(), AssertionError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(AssertionError::new(assertion, problems))
    }
}

fn describe_span(s: &ReceivedSpan) -> String {
    format!(
        "{} span `{}` (trace {}, span {})",
        s.kind, s.name, s.trace_id, s.span_id
    )
}

fn services(spans: &[ReceivedSpan]) -> Vec<String> {
    let set: BTreeSet<String> = spans
        .iter()
        .map(|s| s.service_name().unwrap_or("<no service.name>").to_owned())
        .collect();
    set.into_iter().collect()
}

fn list<T: AsRef<str>>(items: &[T], max: usize) -> String {
    let mut out: Vec<String> = items
        .iter()
        .take(max)
        .map(|s| s.as_ref().to_owned())
        .collect();
    if items.len() > max {
        out.push(format!("… {} more", items.len() - max));
    }
    format!("[{}]", out.join(", "))
}

/// Checks that trace context crossed from `upstream_service` to
/// `downstream_service`: some downstream `SERVER` span must have, as parent,
/// an upstream `CLIENT` span of the same trace id. Services are matched on
/// the `service.name` resource attribute.
///
/// On failure the error names the missing spans, or for each downstream
/// `SERVER` span why it is not linked (new trace started, different trace id,
/// parent that is not an upstream `CLIENT` span).
pub fn trace_propagated(
    spans: &[ReceivedSpan],
    upstream_service: &str,
    downstream_service: &str,
) -> Result<(), AssertionError> {
    const NAME: &str = "trace_propagated";
    let clients: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.service_name() == Some(upstream_service) && s.kind == SpanKind::Client)
        .collect();
    let servers: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.service_name() == Some(downstream_service) && s.kind == SpanKind::Server)
        .collect();
    let mut problems = Vec::new();
    let kinds_of = |service: &str| -> String {
        let kinds: BTreeSet<String> = spans
            .iter()
            .filter(|s| s.service_name() == Some(service))
            .map(|s| s.kind.to_string())
            .collect();
        if kinds.is_empty() {
            format!("no span at all from `{service}`")
        } else {
            format!(
                "`{service}` sent only {} spans",
                kinds.into_iter().collect::<Vec<_>>().join("/")
            )
        }
    };
    if clients.is_empty() {
        problems.push(format!(
            "no CLIENT span from service `{upstream_service}` was received ({}; services seen: {})",
            kinds_of(upstream_service),
            list(&services(spans), 10)
        ));
    }
    if servers.is_empty() {
        problems.push(format!(
            "no SERVER span from service `{downstream_service}` was received ({}; services seen: {})",
            kinds_of(downstream_service),
            list(&services(spans), 10)
        ));
    }
    if !problems.is_empty() {
        return result(NAME, problems);
    }
    let by_id: HashMap<(&str, &str), &ReceivedSpan> = clients
        .iter()
        .map(|s| ((s.trace_id.as_str(), s.span_id.as_str()), *s))
        .collect();
    let client_traces: HashSet<&str> = clients.iter().map(|s| s.trace_id.as_str()).collect();
    let all_by_id: HashMap<(&str, &str), &ReceivedSpan> = spans
        .iter()
        .map(|s| ((s.trace_id.as_str(), s.span_id.as_str()), s))
        .collect();
    for server in &servers {
        let Some(parent) = server.parent_span_id.as_deref() else {
            problems.push(format!(
                "{} of `{downstream_service}` has no parent: it started a new trace, so the trace context from `{upstream_service}` was not propagated",
                describe_span(server)
            ));
            continue;
        };
        if by_id.contains_key(&(server.trace_id.as_str(), parent)) {
            return Ok(());
        }
        if !client_traces.contains(server.trace_id.as_str()) {
            let traces: Vec<&str> = client_traces.iter().copied().collect();
            problems.push(format!(
                "{} of `{downstream_service}` is in a trace with no `{upstream_service}` CLIENT span (upstream CLIENT spans are in traces {})",
                describe_span(server),
                list(&traces, 5)
            ));
        } else {
            let what = match all_by_id.get(&(server.trace_id.as_str(), parent)) {
                Some(p) => format!(
                    "{} of service `{}`",
                    describe_span(p),
                    p.service_name().unwrap_or("<no service.name>")
                ),
                None => "a span that was not received".to_owned(),
            };
            problems.push(format!(
                "{} of `{downstream_service}` has parent {parent}, which is {what}, not a CLIENT span of `{upstream_service}`",
                describe_span(server)
            ));
        }
    }
    result(NAME, problems)
}

fn describe_log(l: &ReceivedLog) -> String {
    let body = match &l.body {
        Some(b) => {
            let text = b.to_string();
            if text.chars().count() > 60 {
                format!("{}…", text.chars().take(60).collect::<String>())
            } else {
                text
            }
        }
        None => "<no body>".to_owned(),
    };
    format!(
        "log record `{body}` (service `{}`)",
        l.service_name().unwrap_or("<no service.name>")
    )
}

fn reference_problems(logs: &[ReceivedLog], spans: &[ReceivedSpan]) -> Vec<String> {
    let span_ids: HashSet<(&str, &str)> = spans
        .iter()
        .map(|s| (s.trace_id.as_str(), s.span_id.as_str()))
        .collect();
    let traces: HashSet<&str> = spans.iter().map(|s| s.trace_id.as_str()).collect();
    let mut problems = Vec::new();
    for l in logs {
        match (&l.trace_id, &l.span_id) {
            (Some(t), Some(s)) => {
                if !span_ids.contains(&(t.as_str(), s.as_str())) {
                    if traces.contains(t.as_str()) {
                        problems.push(format!(
                            "{} refers to span {s} of trace {t}, but no such span was received in that trace",
                            describe_log(l)
                        ));
                    } else {
                        problems.push(format!(
                            "{} refers to trace {t} (span {s}), but no span of that trace was received",
                            describe_log(l)
                        ));
                    }
                }
            }
            (Some(t), None) => problems.push(format!(
                "{} has trace id {t} but no span id",
                describe_log(l)
            )),
            (None, Some(s)) => problems.push(format!(
                "{} has span id {s} but no trace id",
                describe_log(l)
            )),
            (None, None) => {}
        }
    }
    problems
}

/// Checks only the references: every log record that carries a trace id also
/// carries a span id, and that span was received in that trace.
pub fn logs_reference_received_spans(
    logs: &[ReceivedLog],
    spans: &[ReceivedSpan],
) -> Result<(), AssertionError> {
    result(
        "logs_reference_received_spans",
        reference_problems(logs, spans),
    )
}

/// Checks log/trace correlation:
///
/// * every record carrying a trace id carries a span id too, and refers to a
///   received span (as [`logs_reference_received_spans`]);
/// * every record emitted inside a span carries ids: a record with no trace
///   id whose time (or observed time) lies within a received span of the same
///   `service.name` is reported as uncorrelated.
///
/// The second rule is a time-window heuristic: a service that logs from
/// background tasks while it serves spans should use
/// [`logs_reference_received_spans`] instead.
pub fn logs_correlated(logs: &[ReceivedLog], spans: &[ReceivedSpan]) -> Result<(), AssertionError> {
    let mut problems = reference_problems(logs, spans);
    for l in logs.iter().filter(|l| l.trace_id.is_none()) {
        let t = l.effective_time_unix_nanos();
        if t == 0 {
            continue;
        }
        let inside = spans.iter().find(|s| {
            s.service_name() == l.service_name() && s.start_unix_nanos <= t && t <= s.end_unix_nanos
        });
        if let Some(s) = inside {
            problems.push(format!(
                "{} was emitted during {} but carries no trace id or span id",
                describe_log(l),
                describe_span(s)
            ));
        }
    }
    result("logs_correlated", problems)
}

fn is_templated(segment: &str) -> bool {
    segment.starts_with('{') || segment.starts_with(':') || segment.starts_with('*')
}

fn looks_like_id(segment: &str) -> bool {
    if segment.is_empty() || is_templated(segment) {
        return false;
    }
    if segment.chars().all(|c| c.is_ascii_digit()) {
        return true;
    }
    let mut run = 0;
    for c in segment.chars() {
        if c.is_ascii_digit() {
            run += 1;
            if run >= 4 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    let hexish = segment.chars().filter(|c| *c != '-').collect::<String>();
    hexish.len() >= 12
        && hexish.chars().all(|c| c.is_ascii_hexdigit())
        && hexish.chars().any(|c| c.is_ascii_digit())
}

/// Whether a label value looks like a raw request path (or URL) carrying ids
/// or a query string, rather than a route template such as `/users/{id}`.
pub fn looks_like_raw_path(value: &str) -> bool {
    let path = match value.find("://") {
        Some(i) => match value[i + 3..].find('/') {
            Some(j) => &value[i + 3 + j..],
            None => return false,
        },
        None => value,
    };
    if !path.starts_with('/') {
        return false;
    }
    if path.contains('?') {
        return true;
    }
    path.split('/').any(looks_like_id)
}

/// Checks SLO metrics: every name in `required_names` was received with at
/// least one data point, and their labels are bounded: no label key outside
/// `allowed_label_keys`, and no label value that looks like a raw path with
/// ids (see [`looks_like_raw_path`]).
pub fn slo_metrics_present(
    metrics: &[ReceivedMetric],
    required_names: &[&str],
    allowed_label_keys: &[&str],
) -> Result<(), AssertionError> {
    let mut problems: Vec<String> = Vec::new();
    let mut seen_problems = HashSet::new();
    let received: Vec<String> = metrics
        .iter()
        .map(|m| m.name.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let allowed: HashSet<&str> = allowed_label_keys.iter().copied().collect();
    for name in required_names {
        let found: Vec<&ReceivedMetric> = metrics.iter().filter(|m| m.name == *name).collect();
        if found.is_empty() {
            problems.push(format!(
                "metric `{name}` was not received (received: {})",
                list(&received, 30)
            ));
            continue;
        }
        if found.iter().all(|m| m.points.is_empty()) {
            problems.push(format!(
                "metric `{name}` was received without any data point"
            ));
        }
        for m in &found {
            for p in &m.points {
                for (k, v) in &p.attributes {
                    let problem = if !allowed.contains(k.as_str()) {
                        Some(format!(
                            "metric `{name}` has label `{k}` (e.g. `{v}`), which is not in the allowlist {}",
                            list(allowed_label_keys, 30)
                        ))
                    } else if v.as_str().is_some_and(looks_like_raw_path) {
                        Some(format!(
                            "metric `{name}` label `{k}` has value `{v}`, which looks like a raw path with ids (unbounded cardinality); use a route template"
                        ))
                    } else {
                        None
                    };
                    if let Some(problem) = problem {
                        // One problem per metric and label key is enough.
                        if seen_problems.insert((name.to_string(), k.clone())) {
                            problems.push(problem);
                        }
                    }
                }
            }
        }
    }
    result("slo_metrics_present", problems)
}

/// Whether a value is a redaction placeholder (`REDACTED`, `[REDACTED]`, `***`…).
fn is_redacted(v: &str) -> bool {
    let t = v
        .trim()
        // `(http://h/?token=REDACTED)`: the URL's closing parenthesis.
        .trim_matches(|c| matches!(c, '[' | ']' | '<' | '>' | '(' | ')' | '"' | '\''));
    t.eq_ignore_ascii_case("redacted") || (t.len() >= 3 && t.chars().all(|c| c == '*'))
}

fn mask(v: &str) -> String {
    let shown: String = v.chars().take(3).collect();
    format!("{shown}… ({} chars)", v.chars().count())
}

fn token_after(s: &str, start: usize) -> &str {
    let rest = &s[start..];
    let end = rest
        // `?` ends a path parameter (`/a;jsessionid=REDACTED?q=1`).
        .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | '&' | '#' | '?'))
        .unwrap_or(rest.len());
    &rest[..end]
}

fn looks_like_base64_credential(t: &str) -> bool {
    t.len() >= 8
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
        && t.chars()
            .any(|c| c.is_ascii_digit() || c.is_ascii_uppercase() || c == '=')
}

const SECRET_PARAMS: &[&str] = &[
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "auth",
    "password",
    "passwd",
    "pwd",
    "api_key",
    "apikey",
    "api-key",
    "secret",
    "client_secret",
    "signature",
    "sig",
    "session",
    "sessionid",
    "session_id",
    "jsessionid",
    "phpsessid",
    "sid",
    "connect.sid",
    "csrftoken",
];

/// Why a string looks like it holds a credential, if it does.
pub fn find_secret(s: &str) -> Option<String> {
    let lower = s.to_ascii_lowercase();
    for (scheme, label) in [("bearer ", "Bearer"), ("basic ", "Basic")] {
        let mut from = 0;
        while let Some(i) = lower[from..].find(scheme) {
            let at = from + i;
            from = at + scheme.len();
            let boundary = at == 0 || !lower.as_bytes()[at - 1].is_ascii_alphanumeric();
            if !boundary {
                continue;
            }
            let token = token_after(s, at + scheme.len());
            if token.is_empty() || is_redacted(token) {
                continue;
            }
            if label == "Basic" && !looks_like_base64_credential(token) {
                continue;
            }
            return Some(format!(
                "an unredacted `{label}` credential (`{label} {}`)",
                mask(token)
            ));
        }
    }
    for param in SECRET_PARAMS {
        let needle = format!("{param}=");
        let mut from = 0;
        while let Some(i) = lower[from..].find(&needle) {
            let at = from + i;
            from = at + needle.len();
            let boundary = at == 0
                || matches!(
                    lower.as_bytes()[at - 1],
                    b'?' | b'&' | b';' | b' ' | b'"' | b'\'' | b'\t' | b','
                );
            if !boundary {
                continue;
            }
            let value = token_after(s, at + needle.len());
            if value.is_empty() || is_redacted(value) {
                continue;
            }
            return Some(format!(
                "parameter `{param}=` with an unredacted value (`{}`)",
                mask(value)
            ));
        }
    }
    for word in s.split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '=' | ':')) {
        let parts: Vec<&str> = word.split('.').collect();
        if word.starts_with("eyJ")
            && word.len() >= 20
            && parts.len() == 3
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            })
        {
            return Some(format!("a JSON Web Token (`{}`)", mask(word)));
        }
    }
    if (lower.contains("; path=") || lower.contains("; httponly") || lower.contains("; secure"))
        && s.contains('=')
    {
        let value = s.split(';').next().unwrap_or("");
        let v = value.split_once('=').map(|(_, v)| v).unwrap_or("");
        if !v.is_empty() && !is_redacted(v) {
            return Some(format!("a Set-Cookie-looking string (`{}`)", mask(value)));
        }
    }
    None
}

const SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "x-auth-token",
];

/// Attribute keys (last dotted segment) that hold a credential themselves.
const SENSITIVE_KEYS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "client_secret",
    "api_key",
    "apikey",
    "access_token",
    "refresh_token",
    "id_token",
    "private_key",
];

/// Whether an attribute key names a credential-carrying header
/// (`http.request.header.authorization`, `…cookie`, `set-cookie`…) or a
/// credential (`db.password`, `client_secret`, `api_key`…).
pub fn is_sensitive_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    let last = lower.rsplit('.').next().unwrap_or(&lower);
    let dashed = last.replace('_', "-");
    let underscored = last.replace('-', "_");
    SENSITIVE_HEADERS.contains(&last)
        || SENSITIVE_HEADERS.contains(&dashed.as_str())
        || SENSITIVE_KEYS.contains(&underscored.as_str())
}

fn check_attrs<'a>(
    problems: &mut Vec<String>,
    location: &dyn Fn() -> String,
    attrs: impl Iterator<Item = (&'a String, &'a Value)>,
) {
    for (k, v) in attrs {
        let strings = v.strings();
        let all_redacted = !strings.is_empty() && strings.iter().all(|s| is_redacted(s));
        if is_sensitive_key(k) && !all_redacted {
            problems.push(format!(
                "{} has attribute `{k}`, which names a credential (header or secret) and must not be recorded (or must be `REDACTED`)",
                location()
            ));
            continue;
        }
        for s in strings {
            if let Some(why) = find_secret(s) {
                problems.push(format!("{} attribute `{k}` contains {why}", location()));
                break;
            }
        }
    }
}

/// Checks that no span or log record leaks a credential: no attribute (span,
/// event, resource or log record), span name, status message or log body
/// containing a `Bearer ` / `Basic ` credential, a Set-Cookie-looking string,
/// or a parameter such as `token=`, `password=`, `api_key=`, `secret=` whose
/// value is not `REDACTED`; and no attribute keyed like a credential header
/// (`http.request.header.authorization`, `…cookie`…) unless its value is
/// `REDACTED`. Messages show only the first characters of a leaked value.
pub fn no_secrets(spans: &[ReceivedSpan], logs: &[ReceivedLog]) -> Result<(), AssertionError> {
    let mut problems = Vec::new();
    let mut resources_checked: HashSet<String> = HashSet::new();
    let mut check_resource =
        |problems: &mut Vec<String>, resource: &std::collections::BTreeMap<String, Value>| {
            let key = format!("{resource:?}");
            if resources_checked.insert(key) {
                let service = resource
                    .get("service.name")
                    .and_then(Value::as_str)
                    .unwrap_or("<no service.name>")
                    .to_owned();
                check_attrs(
                    problems,
                    &|| format!("resource of service `{service}`"),
                    resource.iter(),
                );
            }
        };
    for s in spans {
        let loc = || describe_span(s);
        for (what, text) in [("name", &s.name), ("status message", &s.status_message)] {
            if let Some(why) = find_secret(text) {
                problems.push(format!("{} {what} contains {why}", loc()));
            }
        }
        check_attrs(&mut problems, &loc, s.attributes.iter());
        for e in &s.events {
            let eloc = || format!("event `{}` of {}", e.name, describe_span(s));
            check_attrs(&mut problems, &eloc, e.attributes.iter());
        }
        check_resource(&mut problems, &s.resource);
    }
    for (i, l) in logs.iter().enumerate() {
        // Never quote a body that holds a secret in the message.
        let body_leaks = l
            .body
            .as_ref()
            .is_some_and(|b| b.strings().iter().any(|t| find_secret(t).is_some()));
        let loc = || {
            if body_leaks {
                format!(
                    "log record #{i} (service `{}`, severity {} {:?}, time {})",
                    l.service_name().unwrap_or("<no service.name>"),
                    l.severity_number,
                    l.severity_text,
                    l.effective_time_unix_nanos()
                )
            } else {
                describe_log(l)
            }
        };
        if let Some(body) = &l.body {
            for text in body.strings() {
                if let Some(why) = find_secret(text) {
                    problems.push(format!("{} body contains {why}", loc()));
                    break;
                }
            }
        }
        check_attrs(&mut problems, &loc, l.attributes.iter());
        check_resource(&mut problems, &l.resource);
    }
    result("no_secrets", problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_found() {
        assert!(find_secret("Authorization: Bearer abc.def").is_some());
        assert!(find_secret("Bearer REDACTED").is_none());
        assert!(find_secret("Basic dXNlcjpwYXNz").is_some());
        assert!(find_secret("Basic authentication failed").is_none());
        assert!(find_secret("/login?user=a&password=hunter2").is_some());
        assert!(find_secret("/login?user=a&password=REDACTED").is_none());
        assert!(find_secret("https://x/?api_key=123&b=2").is_some());
        assert!(find_secret("mytoken=1").is_none());
        assert!(find_secret("sessionid=abc123; Path=/; HttpOnly").is_some());
        assert!(find_secret("GET /users/{id}").is_none());
        assert!(find_secret("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl").is_some());
        assert!(find_secret("version 1.2.3").is_none());
        // The leaked value is masked in the message.
        let why = find_secret("token=supersecretvalue").unwrap();
        assert!(!why.contains("supersecretvalue"), "{why}");
    }

    #[test]
    fn sensitive_keys() {
        assert!(is_sensitive_key("http.request.header.authorization"));
        assert!(is_sensitive_key("http.request.header.cookie"));
        assert!(is_sensitive_key("http.response.header.set-cookie"));
        assert!(!is_sensitive_key("http.request.header.user-agent"));
        assert!(is_sensitive_key("db.password"));
        assert!(is_sensitive_key("x.api-key"));
        assert!(!is_sensitive_key("llm.usage.prompt_tokens"));
        assert!(!is_sensitive_key("password.reset.requested"));
    }

    #[test]
    fn raw_paths() {
        assert!(looks_like_raw_path("/users/12345"));
        assert!(looks_like_raw_path(
            "/orders/3f2b6a1c-9d4e-4a7b-8c2d-0e1f2a3b4c5d"
        ));
        assert!(looks_like_raw_path("/search?q=x"));
        assert!(looks_like_raw_path("http://host/users/7"));
        assert!(!looks_like_raw_path("/users/{id}"));
        assert!(!looks_like_raw_path("/users/:id"));
        assert!(!looks_like_raw_path("/api/v1/items"));
        assert!(!looks_like_raw_path("GET"));
    }
}
