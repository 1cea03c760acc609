#![no_main]
//! The redaction parsers (`telemetry_init::redact`) on any input: names,
//! query strings, paths, URLs and free text.
//!
//! * name matching agrees with a plain reference implementation (normalise
//!   into a `String`, then `ends_with` / `==` over the key list);
//! * nothing panics; every function returns its input (borrowed) when it
//!   changes nothing, and is idempotent;
//! * after `redact_query`, every parameter whose decoded name is secret has
//!   an empty value or `REDACTED`;
//! * after `redact_url` on `scheme://userinfo@host…`, the userinfo is gone.

#[allow(dead_code, unused_imports)]
#[path = "../../src/redact.rs"]
mod redact;

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use redact::{DEFAULT_KEYS, REDACTED, Redaction};

fn normalise(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || !c.is_ascii())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn reference_is_secret(keys: &[String], name: &str) -> bool {
    let n = normalise(name);
    keys.iter().any(|k| match k.strip_prefix('=') {
        Some(exact) => n == exact,
        None => n.ends_with(k.as_str()),
    })
}

fn same<'a>(input: &str, out: &Cow<'a, str>) {
    if let Cow::Borrowed(b) = out {
        assert_eq!(*b, input);
    } else {
        assert_ne!(out.as_ref(), input, "owned but unchanged");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&op, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let text = text.as_ref();
    // Sometimes a policy with one extra key taken from the input's first line.
    let mut policy = Redaction::new();
    let mut keys: Vec<String> = DEFAULT_KEYS
        .iter()
        .map(|k| {
            let exact = k.starts_with('=');
            let n = normalise(k);
            if exact { format!("={n}") } else { n }
        })
        .collect();
    // The key is trimmed (Unicode whitespace, as `str::trim`) before it is
    // normalised; one that normalises to nothing is ignored by `with_key`,
    // so the reference must not add it either (it would match every name).
    if op & 0x80 != 0
        && let Some(extra) = text.lines().next()
    {
        let extra_key = extra.trim();
        let exact = extra_key.starts_with('=');
        let n = normalise(extra_key.trim_start_matches('='));
        if !n.is_empty() {
            policy = policy.with_key(extra);
            keys.push(if exact { format!("={n}") } else { n });
        }
    }
    match op % 5 {
        0 => {
            for name in text.split(['&', '\n']) {
                assert_eq!(
                    policy.is_secret_name(name),
                    reference_is_secret(&keys, name),
                    "{name:?}"
                );
            }
        }
        1 => {
            let out = policy.redact_query(text);
            same(text, &out);
            assert_eq!(policy.redact_query(&out), out);
            for pair in out.split(['&', ';']) {
                if let Some((k, v)) = pair.split_once('=') {
                    let decoded = redact::percent_decode_lossy(k);
                    if policy.is_secret_name(&decoded) {
                        assert!(v.is_empty() || v == REDACTED, "{pair:?} in {out:?}");
                    }
                }
            }
        }
        2 => {
            let out = policy.redact_path(text);
            same(text, &out);
            assert_eq!(policy.redact_path(&out), out);
        }
        3 => {
            let out = policy.redact_url(text);
            same(text, &out);
            assert_eq!(policy.redact_url(&out), out);
            if let Some(i) = text.find("://") {
                let auth_end = text[i + 3..]
                    .find(['/', '?', '#'])
                    .map_or(text.len(), |n| i + 3 + n);
                if let Some(at) = text[i + 3..auth_end].rfind('@') {
                    let userinfo = &text[i + 3..i + 3 + at];
                    let out_auth = &out[..out.len().min(i + 3 + REDACTED.len() + 1)];
                    assert!(
                        out_auth.ends_with(&format!("{REDACTED}@")),
                        "{userinfo:?} kept in {out:?}"
                    );
                }
            }
        }
        _ => {
            let out = policy.redact_text(text);
            same(text, &out);
            if !text.contains("://") {
                assert!(matches!(out, Cow::Borrowed(_)));
            }
            assert_eq!(policy.redact_text(&out), out);
        }
    }
});
