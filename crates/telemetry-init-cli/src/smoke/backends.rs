//! Reading the backends' documented JSON answers: Tempo's trace by id,
//! Loki's `query_range` and Prometheus' (or Mimir's) `query` and
//! `query_exemplars`. Pure functions, so they are tested without a server.

use serde_json::Value;

/// One span of a Tempo trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TempoSpan {
    /// Lowercase hex.
    pub trace_id: String,
    /// Lowercase hex.
    pub span_id: String,
    /// Lowercase hex; `None` for a root span.
    pub parent_span_id: Option<String>,
    /// `SERVER`, `CLIENT`, `INTERNAL`, `PRODUCER`, `CONSUMER` or `UNSPECIFIED`.
    pub kind: String,
    /// Span name.
    pub name: String,
    /// `service.name` of the span's resource.
    pub service: Option<String>,
}

/// Decodes an OTLP/JSON id: hex (OTLP/JSON spec) or base64 (protobuf JSON
/// mapping, what Tempo's API returns) of `bytes` bytes. Empty is `None`.
pub(super) fn decode_id(s: &str, bytes: usize) -> Option<String> {
    if s.is_empty() {
        return None;
    }
    if s.len() == bytes * 2 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        return Some(s.to_ascii_lowercase());
    }
    let raw = base64_decode(s)?;
    if raw.len() != bytes {
        return None;
    }
    Some(raw.iter().map(|b| format!("{b:02x}")).collect())
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    Some(out)
}

fn kind_name(v: &Value) -> String {
    let n = match v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => {
            let s = s.trim_start_matches("SPAN_KIND_");
            return if s.is_empty() {
                "UNSPECIFIED".into()
            } else {
                s.to_ascii_uppercase()
            };
        }
        _ => 0,
    };
    match n {
        1 => "INTERNAL",
        2 => "SERVER",
        3 => "CLIENT",
        4 => "PRODUCER",
        5 => "CONSUMER",
        _ => "UNSPECIFIED",
    }
    .into()
}

fn service_of(resource: &Value) -> Option<String> {
    resource["attributes"].as_array()?.iter().find_map(|kv| {
        (kv["key"] == "service.name")
            .then(|| kv["value"]["stringValue"].as_str().map(str::to_owned))
            .flatten()
    })
}

fn array<'a>(v: &'a Value, keys: &[&str]) -> &'a [Value] {
    keys.iter()
        .find_map(|k| v[*k].as_array())
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The spans of a Tempo trace-by-id answer: `{"batches":[…]}` (`/api/traces/{id}`),
/// `{"trace":{"resourceSpans":[…]}}` (`/api/v2/traces/{id}`) or a plain
/// `{"resourceSpans":[…]}`; scopes as `scopeSpans` or the older
/// `instrumentationLibrarySpans`.
pub(super) fn tempo_spans(body: &Value) -> Result<Vec<TempoSpan>, String> {
    const NOT_TEMPO: &str =
        "the answer has neither `batches` nor `trace.resourceSpans` (not a Tempo trace)";
    let batches: &[Value] = if let Some(trace) = body.get("trace") {
        // v2: `{"trace":{}}` is an empty trace, not an error.
        ["resourceSpans", "batches"]
            .iter()
            .find_map(|k| trace[*k].as_array())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    } else if let Some(b) = ["batches", "resourceSpans"]
        .iter()
        .find_map(|k| body[*k].as_array())
    {
        b
    } else if body.as_object().is_some_and(|o| o.is_empty()) {
        &[]
    } else {
        return Err(NOT_TEMPO.to_owned());
    };
    let mut spans = Vec::new();
    for batch in batches {
        let service = service_of(&batch["resource"]);
        for scope in array(batch, &["scopeSpans", "instrumentationLibrarySpans"]) {
            for s in array(scope, &["spans"]) {
                let id = |key: &str, n| s[key].as_str().and_then(|v| decode_id(v, n));
                let (Some(trace_id), Some(span_id)) = (id("traceId", 16), id("spanId", 8)) else {
                    return Err(format!(
                        "a span has an unreadable traceId/spanId: {}",
                        truncate(&s.to_string(), 200)
                    ));
                };
                spans.push(TempoSpan {
                    trace_id,
                    span_id,
                    parent_span_id: id("parentSpanId", 8),
                    kind: kind_name(&s["kind"]),
                    name: s["name"].as_str().unwrap_or("").to_owned(),
                    service: service.clone(),
                });
            }
        }
    }
    Ok(spans)
}

/// Cuts `s` to `max` characters (with an ellipsis).
pub(super) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

fn check_status(body: &Value, api: &str) -> Result<(), String> {
    match body["status"].as_str() {
        Some("success") => Ok(()),
        Some(other) => Err(format!(
            "{api} answered status `{other}`: {}",
            body["error"].as_str().unwrap_or("no error message")
        )),
        None => Err(format!(
            "{api} answer has no `status` field: {}",
            truncate(&body.to_string(), 200)
        )),
    }
}

/// A JSON array's items; anything else reads as empty.
fn items(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// The `data.result` of a successful Loki or Prometheus query answer whose
/// `resultType` is `expected` (`hint` explains a mismatch).
fn query_result<'a>(
    body: &'a Value,
    api: &str,
    expected: &str,
    hint: &str,
) -> Result<&'a [Value], String> {
    check_status(body, api)?;
    let data = &body["data"];
    if let Some(t) = data["resultType"].as_str()
        && t != expected
    {
        return Err(format!(
            "{api} answered resultType `{t}`, expected `{expected}`{hint}"
        ));
    }
    Ok(items(&data["result"]))
}

/// One Loki log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LokiLine {
    /// The stream's labels (with structured metadata merged in, as Loki
    /// returns them by default).
    pub labels: serde_json::Map<String, Value>,
    /// The log line.
    pub line: String,
}

/// The lines of a Loki `query_range` answer (`resultType` `streams`).
pub(super) fn loki_lines(body: &Value) -> Result<Vec<LokiLine>, String> {
    let result = query_result(
        body,
        "Loki",
        "streams",
        " (a log query, not a metric query)",
    )?;
    let mut out = Vec::new();
    for stream in result {
        let labels = stream["stream"].as_object().cloned().unwrap_or_default();
        for v in items(&stream["values"]) {
            out.push(LokiLine {
                labels: labels.clone(),
                line: v[1].as_str().unwrap_or("").to_owned(),
            });
        }
    }
    Ok(out)
}

/// One series of a Prometheus instant-vector answer.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Sample {
    /// Series labels (including `__name__`).
    pub labels: serde_json::Map<String, Value>,
    /// The value (`NaN` if unreadable).
    pub value: f64,
}

/// The series of a Prometheus `/api/v1/query` answer (`vector`).
pub(super) fn prom_vector(body: &Value) -> Result<Vec<Sample>, String> {
    Ok(query_result(body, "Prometheus", "vector", "")?
        .iter()
        .map(|r| Sample {
            labels: r["metric"].as_object().cloned().unwrap_or_default(),
            value: r["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN),
        })
        .collect())
}

/// The `trace_id` labels of every exemplar in a `/api/v1/query_exemplars` answer.
pub(super) fn exemplar_trace_ids(body: &Value) -> Result<Vec<String>, String> {
    check_status(body, "Prometheus exemplars API")?;
    let mut out = Vec::new();
    for series in items(&body["data"]) {
        for e in items(&series["exemplars"]) {
            let labels = &e["labels"];
            if let Some(t) = labels["trace_id"].as_str().or(labels["traceID"].as_str()) {
                out.push(t.to_ascii_lowercase());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_in_hex_and_base64() {
        assert_eq!(
            decode_id("AAAAAAAAAAAAAAAAAAAAAQ==", 16).as_deref(),
            Some("00000000000000000000000000000001")
        );
        assert_eq!(
            decode_id("4BF92F3577B34DA6A3CE929D0E0E4736", 16).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(
            decode_id("APBnqrwOv0w=", 8).as_deref(),
            Some("00f067aabc0ebf4c")
        );
        assert_eq!(decode_id("", 8), None);
        assert_eq!(decode_id("not an id!", 8), None);
    }

    #[test]
    fn tempo_v1_and_v2_shapes() {
        let batch = json!({
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "demo"}}]},
            "scopeSpans": [{"spans": [{
                "traceId": "S/kvNXezTaajzpKdDg5HNg==", "spanId": "APBnqrwOv0w=",
                "parentSpanId": "AAAAAAAAAAE=", "kind": "SPAN_KIND_SERVER", "name": "GET /chain"
            }]}]
        });
        let v1 = tempo_spans(&json!({"batches": [batch]})).unwrap();
        let v2 = tempo_spans(&json!({"trace": {"resourceSpans": [batch]}, "status": "complete"}))
            .unwrap();
        assert_eq!(v1, v2);
        assert_eq!(
            v1[0],
            TempoSpan {
                trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                span_id: "00f067aabc0ebf4c".into(),
                parent_span_id: Some("0000000000000001".into()),
                kind: "SERVER".into(),
                name: "GET /chain".into(),
                service: Some("demo".into()),
            }
        );
        let old = json!({"batches": [{"instrumentationLibrarySpans": [{"spans": [
            {"traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": "00f067aabc0ebf4c", "kind": 3}
        ]}]}]});
        let s = tempo_spans(&old).unwrap();
        assert_eq!(s[0].kind, "CLIENT");
        assert_eq!(s[0].parent_span_id, None);
        assert!(
            tempo_spans(&json!({"traces": []}))
                .unwrap_err()
                .contains("batches")
        );
        assert!(
            tempo_spans(&json!({"trace": {}, "status": "COMPLETE"}))
                .unwrap()
                .is_empty()
        );
        assert!(tempo_spans(&json!({})).unwrap().is_empty());
    }

    #[test]
    fn loki_and_prometheus() {
        let loki = json!({"status": "success", "data": {"resultType": "streams", "result": [
            {"stream": {"service_name": "demo", "trace_id": "abc"}, "values": [["1700000000000000000", "hello"]]}
        ]}});
        let lines = loki_lines(&loki).unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].line, "hello");
        assert_eq!(lines[0].labels["trace_id"], "abc");
        let empty = json!({"status": "success", "data": {"resultType": "streams", "result": []}});
        assert!(loki_lines(&empty).unwrap().is_empty());
        let err = json!({"status": "error", "error": "parse error"});
        assert!(loki_lines(&err).unwrap_err().contains("parse error"));

        let prom = json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"__name__": "x", "http_route": "/chain"}, "value": [1700000000.1, "3"]}
        ]}});
        let v = prom_vector(&prom).unwrap();
        assert_eq!(v[0].value, 3.0);
        assert_eq!(v[0].labels["http_route"], "/chain");
        let ex = json!({"status": "success", "data": [{"seriesLabels": {}, "exemplars": [
            {"labels": {"trace_id": "ABC"}, "value": "0.1", "timestamp": 1.0}
        ]}]});
        assert_eq!(exemplar_trace_ids(&ex).unwrap(), vec!["abc".to_owned()]);
    }
}
