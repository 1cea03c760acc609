//! Driving traffic: requests carrying a fresh [`SmokeContext`] each, and the
//! check of their answers (2xx, `X-Request-ID` echoed).

use std::time::Duration;

use super::context::SmokeContext;
use super::report::Check;

/// One request sent and what came back.
#[derive(Debug, Clone)]
pub(super) struct Sent {
    /// The injected context.
    pub ctx: SmokeContext,
    /// Path and query requested.
    pub path: String,
    /// The HTTP status, if an answer came.
    pub status: Option<u16>,
    /// The request id the answer echoed.
    pub echoed_request_id: Option<String>,
    /// Why no answer came.
    pub error: Option<String>,
}

/// The HTTP client of the smoke tests: plain HTTP, no proxy, bounded.
pub(super) fn client() -> Result<reqwest::Client, String> {
    client_with_headers(&[])
}

/// Like [`client`], sending `headers` (each `Name: value`, e.g. a tenant's
/// `X-Scope-OrgID: team-a` or an `Authorization`) on every request.
pub(super) fn client_with_headers(headers: &[String]) -> Result<reqwest::Client, String> {
    let mut map = reqwest::header::HeaderMap::new();
    for h in headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| format!("invalid header {h:?}: expected `Name: value`"))?;
        let name = reqwest::header::HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|e| format!("invalid header name in {h:?}: {e}"))?;
        let mut value = reqwest::header::HeaderValue::from_str(value.trim())
            .map_err(|e| format!("invalid header value for `{name}`: {e}"))?;
        value.set_sensitive(true);
        map.append(name, value);
    }
    reqwest::Client::builder()
        .default_headers(map)
        .timeout(Duration::from_secs(15))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// Joins a base URL and a path (`path` starts with `/`).
pub(super) fn join(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}

/// Sends `GET base+path` with `ctx`'s headers and optional extra headers.
pub(super) async fn send(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    ctx: SmokeContext,
    extra_headers: &[(&str, String)],
) -> Sent {
    let mut req = ctx.apply(client.get(join(base, path)));
    for (k, v) in extra_headers {
        req = req.header(*k, v);
    }
    match req.send().await {
        Ok(res) => {
            let echoed = res
                .headers()
                .get(super::context::request_id_header())
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let status = res.status().as_u16();
            // Drain the body so the connection is reusable.
            let _ = res.bytes().await;
            Sent {
                ctx,
                path: path.to_owned(),
                status: Some(status),
                echoed_request_id: echoed,
                error: None,
            }
        }
        Err(e) => Sent {
            ctx,
            path: path.to_owned(),
            status: None,
            echoed_request_id: None,
            error: Some(error_chain(&e)),
        },
    }
}

/// An error with its sources, on one line.
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// Checks that every answer is 2xx and echoes the request's id (under
/// [`super::context::request_id_header`]; the check keeps its name).
pub(super) fn check_responses(base: &str, sent: &[Sent]) -> Check {
    let mut problems = Vec::new();
    for s in sent {
        let what = format!("GET {}", join(base, &s.path));
        match (s.status, &s.error) {
            (None, err) => problems.push(format!(
                "{what} got no answer: {}",
                err.as_deref().unwrap_or("unknown error")
            )),
            (Some(code), _) => {
                if !(200..300).contains(&code) {
                    problems.push(format!("{what} answered {code}, expected a 2xx status"));
                }
                let header = super::context::request_id_header_name();
                match &s.echoed_request_id {
                    None => problems.push(format!(
                        "{what} did not echo the {header} header (sent `{}`)",
                        s.ctx.request_id
                    )),
                    Some(r) if *r != s.ctx.request_id => problems.push(format!(
                        "{what} echoed {header} `{r}`, but `{}` was sent",
                        s.ctx.request_id
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    Check::from_problems(
        "responses: 2xx with X-Request-ID echoed",
        problems,
        format!(
            "{} requests with a fresh traceparent, tracestate, baggage and X-Request-ID",
            sent.len()
        ),
    )
}
