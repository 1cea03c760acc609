//! Typed readers for environment values. Each one returns an [`Error`] that
//! names the variable, the value and what is accepted, so a typo in a
//! deployment manifest is a clear start-up error instead of a silent default.

use std::time::Duration;

use crate::Error;

/// Where configuration values come from: the process environment by default,
/// a closure in tests.
pub(crate) struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Env<'a> {
    pub(crate) fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { lookup }
    }

    /// The trimmed value, with empty values treated as unset (as the
    /// OpenTelemetry spec asks).
    pub(crate) fn get(&self, var: &str) -> Option<String> {
        (self.lookup)(var)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// The first of `vars` that is set, with the name it was found under.
    pub(crate) fn first(&self, vars: &[&str]) -> Option<(String, String)> {
        vars.iter()
            .find_map(|var| self.get(var).map(|v| (var.to_string(), v)))
    }

    pub(crate) fn bool(&self, var: &str) -> Result<Option<bool>, Error> {
        match self.get(var) {
            None => Ok(None),
            Some(v) => parse_bool(var, &v).map(Some),
        }
    }

    pub(crate) fn millis(&self, var: &str) -> Result<Option<Duration>, Error> {
        self.get(var).map(|v| parse_millis(var, &v)).transpose()
    }

    pub(crate) fn count(&self, var: &str) -> Result<Option<usize>, Error> {
        self.get(var).map(|v| parse_count(var, &v)).transpose()
    }
}

pub(crate) fn parse_bool(var: &str, value: &str) -> Result<bool, Error> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Error::invalid_env(
            var,
            value,
            "not a boolean",
            "true, false",
        )),
    }
}

pub(crate) fn parse_millis(var: &str, value: &str) -> Result<Duration, Error> {
    value
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| {
            Error::invalid_env(
                var,
                value,
                "not a whole number of milliseconds",
                "an integer >= 0, e.g. 5000",
            )
        })
}

pub(crate) fn parse_count(var: &str, value: &str) -> Result<usize, Error> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Error::invalid_env(
            var,
            value,
            "not a positive integer",
            "an integer >= 1, e.g. 2048",
        )),
    }
}

/// Splits a `key=value,key=value` list (`OTEL_RESOURCE_ATTRIBUTES`,
/// `OTEL_EXPORTER_OTLP_HEADERS`), percent-decoding keys and values as the
/// spec's W3C-Baggage-like format asks.
pub(crate) fn parse_kv_list(var: &str, value: &str) -> Result<Vec<(String, String)>, Error> {
    let accepted = "a comma-separated list of key=value pairs, e.g. k1=v1,k2=v2";
    let mut out = Vec::new();
    for member in value.split(',') {
        let member = member.trim();
        if member.is_empty() {
            continue;
        }
        let Some((k, v)) = member.split_once('=') else {
            return Err(Error::invalid_env(
                var,
                value,
                format!("member {member:?} has no '='"),
                accepted,
            ));
        };
        let k = percent_decode(k.trim()).ok_or_else(|| {
            Error::invalid_env(
                var,
                value,
                format!("bad percent-encoding in {k:?}"),
                accepted,
            )
        })?;
        let v = percent_decode(v.trim()).ok_or_else(|| {
            Error::invalid_env(
                var,
                value,
                format!("bad percent-encoding in {v:?}"),
                accepted,
            )
        })?;
        if k.is_empty() {
            return Err(Error::invalid_env(var, value, "empty key", accepted));
        }
        out.push((k, v));
    }
    Ok(out)
}

pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Reads a comma-separated list of names, lower-cased, e.g. `OTEL_PROPAGATORS`.
pub(crate) fn parse_name_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_list_decodes_and_rejects() {
        let got = parse_kv_list("X", "a=1, b=hello%20world ,").unwrap();
        assert_eq!(
            got,
            vec![("a".into(), "1".into()), ("b".into(), "hello world".into())]
        );
        let err = parse_kv_list("X", "a=1,broken").unwrap_err().to_string();
        assert!(err.contains("X") && err.contains("broken"), "{err}");
        assert!(parse_kv_list("X", "a=%zz").is_err());
        assert!(parse_kv_list("X", "=v").is_err());
    }

    #[test]
    fn scalars() {
        assert!(parse_bool("B", "TRUE").unwrap());
        assert!(parse_bool("B", "yes").is_err());
        assert_eq!(
            parse_millis("T", "250").unwrap(),
            Duration::from_millis(250)
        );
        assert!(parse_millis("T", "1s").is_err());
        assert!(parse_count("C", "0").is_err());
    }
}
