//! The W3C `tracestate` header: validation with the current key grammar.
//!
//! Grammar (W3C Trace Context level 2, as in the official test suite at
//! commit `acab820`):
//!
//! ```text
//! list        = list-member 0*31( OWS "," OWS list-member )
//! list-member = (key "=" value) / OWS          ; empty members are allowed
//! key         = ( lcalpha / DIGIT ) 0*255( keychar )   ; 256 characters at most
//! keychar     = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"
//! value       = 0*255(chr) nblk-chr
//! nblk-chr    = %x21-2B / %x2D-3C / %x3E-7E
//! chr         = %x20 / nblk-chr
//! ```
//!
//! The older `tenant@system` split (a tenant of at most 241 and a system of at
//! most 14 characters) is gone: `@` is an ordinary key character anywhere but
//! first, so `foo@`, `foo@@bar` and a 256-character key are all valid.
//!
//! Repeated headers are one list joined with `,`. A repeated key keeps its
//! first member and drops the later ones (the spec allows either keeping or
//! dropping the copies; forwarding one copy is what the next hop can parse).
//! Any invalid member or more than 32 members invalidates the whole header.

use std::fmt;

use opentelemetry::trace::TraceState;

use crate::traceparent::trim_ows;

/// Maximum number of non-empty list members.
///
/// ```
/// use telemetry_init_propagation::{tracestate::MAX_MEMBERS, Tracestate};
///
/// let list: Vec<String> = (0..=MAX_MEMBERS).map(|i| format!("k{i}=v")).collect();
/// assert!(Tracestate::parse(&list.join(",")).is_err());
/// ```
pub const MAX_MEMBERS: usize = 32;

/// Why a `tracestate` header was dropped.
///
/// ```
/// use telemetry_init_propagation::{Tracestate, TracestateError};
///
/// assert_eq!(Tracestate::parse("a=1,b=,c=3"), Err(TracestateError::InvalidValue(1)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TracestateError {
    /// More than 32 non-empty list members.
    #[error("tracestate has more than 32 list members")]
    TooManyMembers,
    /// A list member has no `=`.
    #[error("tracestate list member {0} has no '='")]
    MissingEquals(usize),
    /// A list member key does not match the key grammar.
    #[error("tracestate list member {0} has an invalid key")]
    InvalidKey(usize),
    /// A list member value does not match the value grammar.
    #[error("tracestate list member {0} has an invalid value")]
    InvalidValue(usize),
}

/// A validated `tracestate` list, kept as its normalized header text
/// (members trimmed of OWS, empty members removed, joined with `,`; keys and
/// values byte-for-byte as received).
///
/// ```
/// use telemetry_init_propagation::Tracestate;
///
/// let ts = Tracestate::parse("foo=1 \t , \t bar@baz= 2,").unwrap().unwrap();
/// assert_eq!(ts.as_str(), "foo=1,bar@baz= 2");
/// assert_eq!(ts.get("bar@baz"), Some(" 2"));
/// assert_eq!(ts.len(), 2);
/// // A repeated key keeps its first member.
/// assert_eq!(Tracestate::parse("foo=1,foo=2").unwrap().unwrap().as_str(), "foo=1");
/// assert_eq!(Tracestate::parse(" , ").unwrap(), None);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Tracestate {
    header: Box<str>,
    members: u8,
}

impl Tracestate {
    /// Parses one `tracestate` value. `Ok(None)` means the list is empty.
    ///
    /// ```
    /// use telemetry_init_propagation::Tracestate;
    ///
    /// assert_eq!(Tracestate::parse("congo=t61rcWkgMzE").unwrap().unwrap().len(), 1);
    /// assert_eq!(Tracestate::parse("").unwrap(), None);
    /// ```
    pub fn parse(value: &str) -> Result<Option<Self>, TracestateError> {
        Self::from_values([value.as_bytes()])
    }

    /// Parses all values of the `tracestate` header as one list (the values are
    /// joined with `,`, as HTTP field semantics say).
    ///
    /// WHY this differs from the stock propagator: it reads only the first
    /// header value, trims lists longer than 32 members instead of dropping
    /// them, rejects keys that the current grammar allows, and forwards
    /// invalid members such as `foo=`.
    ///
    /// The 32-member limit counts every non-empty member as received, repeated
    /// keys included (the grammar allows 32 list members, whatever their keys),
    /// so the work is bounded by the limit, not by the header length.
    ///
    /// ```
    /// use telemetry_init_propagation::Tracestate;
    ///
    /// let ts = Tracestate::from_values([&b"foo=1"[..], &b""[..], &b"bar=2"[..]]).unwrap().unwrap();
    /// assert_eq!(ts.as_str(), "foo=1,bar=2");
    /// ```
    pub fn from_values<'a, I>(values: I) -> Result<Option<Self>, TracestateError>
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let mut out = String::new();
        let mut count = 0usize;
        let mut kept = 0u8;
        for value in values {
            for raw in value.split(|&b| b == b',') {
                let member = trim_ows(raw);
                if member.is_empty() {
                    continue;
                }
                let index = count;
                count += 1;
                if count > MAX_MEMBERS {
                    // WHY: the spec says a list with more than 32 members is
                    // invalid; the stock propagator silently keeps the first 32.
                    return Err(TracestateError::TooManyMembers);
                }
                let eq = member
                    .iter()
                    .position(|&b| b == b'=')
                    .ok_or(TracestateError::MissingEquals(index))?;
                let (key, value) = (&member[..eq], &member[eq + 1..]);
                if !is_valid_key(key) {
                    return Err(TracestateError::InvalidKey(index));
                }
                if !is_valid_value(value) {
                    return Err(TracestateError::InvalidValue(index));
                }
                // Both parts are ASCII now, so this conversion cannot fail.
                let (Ok(key), Ok(value)) = (std::str::from_utf8(key), std::str::from_utf8(value))
                else {
                    return Err(TracestateError::InvalidKey(index));
                };
                if iter_members(&out).any(|(k, _)| k == key) {
                    // WHY keep the first: the spec lets a vendor either pass
                    // the copy on or drop it, and says a list should not hold
                    // a key twice; the stock propagator drops the whole list,
                    // which loses every other vendor's entry.
                    continue;
                }
                kept += 1;
                if !out.is_empty() {
                    out.push(',');
                }
                out.push_str(key);
                out.push('=');
                out.push_str(value);
            }
        }
        if count == 0 {
            return Ok(None);
        }
        Ok(Some(Tracestate {
            header: out.into_boxed_str(),
            members: kept,
        }))
    }

    /// The normalized header text.
    ///
    /// ```
    /// use telemetry_init_propagation::Tracestate;
    ///
    /// assert_eq!(Tracestate::parse(" a=1 ,, b=2").unwrap().unwrap().as_str(), "a=1,b=2");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.header
    }

    /// Number of list members (1..=32).
    ///
    /// ```
    /// use telemetry_init_propagation::Tracestate;
    ///
    /// assert_eq!(Tracestate::parse("a=1,,b=2").unwrap().unwrap().len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        usize::from(self.members)
    }

    /// Always `false`: an empty list is represented as `None`.
    ///
    /// ```
    /// use telemetry_init_propagation::Tracestate;
    ///
    /// assert!(!Tracestate::parse("a=1").unwrap().unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.members == 0
    }

    /// The value for `key`, if present.
    ///
    /// ```
    /// use telemetry_init_propagation::Tracestate;
    ///
    /// let ts = Tracestate::parse("a=1,b=2").unwrap().unwrap();
    /// assert_eq!(ts.get("b"), Some("2"));
    /// assert_eq!(ts.get("c"), None);
    /// ```
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Iterates `(key, value)` pairs in header order.
    ///
    /// ```
    /// use telemetry_init_propagation::Tracestate;
    ///
    /// let ts = Tracestate::parse("a=1,b=2").unwrap().unwrap();
    /// assert_eq!(ts.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "2")]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        iter_members(&self.header)
    }

    /// Converts to an `opentelemetry` [`TraceState`], or `None` when that type
    /// cannot represent this list.
    ///
    /// WHY `None` can happen: `TraceState`'s own key check (0.33) still
    /// applies the older tenant/system split: it rejects valid keys with two
    /// `@` or more than 13 characters after the `@`. Callers then keep the
    /// raw header (see
    /// [`crate::Extracted::tracestate`]) so it is still forwarded.
    ///
    /// ```
    /// use telemetry_init_propagation::Tracestate;
    ///
    /// let ts = Tracestate::parse("a=1,t@vendor=2").unwrap().unwrap();
    /// assert_eq!(ts.to_trace_state().unwrap().get("t@vendor"), Some("2"));
    /// let wide = Tracestate::parse("t@vvvvvvvvvvvvvv=1").unwrap().unwrap();
    /// assert!(wide.to_trace_state().is_none());
    /// ```
    pub fn to_trace_state(&self) -> Option<TraceState> {
        TraceState::from_key_value(self.iter()).ok()
    }

    /// Builds a list from an `opentelemetry` [`TraceState`] (its `header()`),
    /// validated with our grammar; `None` if empty or invalid.
    ///
    /// ```
    /// use opentelemetry::trace::TraceState;
    /// use telemetry_init_propagation::Tracestate;
    ///
    /// let otel = TraceState::from_key_value([("a", "1")]).unwrap();
    /// assert_eq!(Tracestate::from_trace_state(&otel).unwrap().as_str(), "a=1");
    /// ```
    pub fn from_trace_state(trace_state: &TraceState) -> Option<Self> {
        let header = trace_state.header();
        Self::parse(&header).ok().flatten()
    }

    /// The header value, ready to send.
    ///
    /// ```
    /// use telemetry_init_propagation::Tracestate;
    ///
    /// let ts = Tracestate::parse("a=1").unwrap().unwrap();
    /// assert_eq!(ts.to_header_value().unwrap(), "a=1");
    /// ```
    pub fn to_header_value(&self) -> Option<http::HeaderValue> {
        http::HeaderValue::from_str(&self.header).ok()
    }
}

impl fmt::Display for Tracestate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.header)
    }
}

impl fmt::Debug for Tracestate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Tracestate").field(&&*self.header).finish()
    }
}

fn iter_members(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header
        .split(',')
        .filter(|m| !m.is_empty())
        .map(|m| m.split_once('=').unwrap_or((m, "")))
}

#[inline]
fn is_key_char(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/' | b'@')
}

/// Whether `key` is a valid `tracestate` key under the current grammar: a
/// lowercase letter or digit, then up to 255 of `a-z 0-9 _ - * / @`.
///
/// ```
/// use telemetry_init_propagation::tracestate::is_valid_key;
///
/// assert!(is_valid_key(b"congo"));
/// assert!(is_valid_key(b"0tenant@vendor"));
/// assert!(is_valid_key(b"0simple"));
/// assert!(is_valid_key(b"foo@"));
/// assert!(is_valid_key(b"foo@@bar"));
/// assert!(is_valid_key("z".repeat(256).as_bytes()));
/// assert!(!is_valid_key("z".repeat(257).as_bytes()));
/// assert!(!is_valid_key(b"@foo"));
/// assert!(!is_valid_key(b"Foo"));
/// ```
pub fn is_valid_key(key: &[u8]) -> bool {
    // WHY not the stock rule: `TraceState` 0.33 still applies the older
    // tenant/system split, so it refuses `foo@`, `foo@@bar` and 15-character
    // system ids that the current grammar (and the W3C suite) accept.
    matches!(key.first(), Some(b'a'..=b'z' | b'0'..=b'9'))
        && key.len() <= MAX_KEY_LEN
        && key.iter().all(|&b| is_key_char(b))
}

/// Longest valid `tracestate` key.
///
/// ```
/// use telemetry_init_propagation::{tracestate::MAX_KEY_LEN, Tracestate};
///
/// let key = "k".repeat(MAX_KEY_LEN);
/// assert!(Tracestate::parse(&format!("{key}=1")).unwrap().is_some());
/// assert!(Tracestate::parse(&format!("{key}k=1")).is_err());
/// ```
pub const MAX_KEY_LEN: usize = 256;

/// Whether `value` is a valid `tracestate` value: 1 to 256 printable ASCII
/// characters except `,` and `=`, not ending in a space.
///
/// ```
/// use telemetry_init_propagation::tracestate::is_valid_value;
///
/// assert!(is_valid_value(b" leading space is fine"));
/// assert!(!is_valid_value(b""));
/// assert!(!is_valid_value(b"a=b"));
/// ```
pub fn is_valid_value(value: &[u8]) -> bool {
    let nblk = |b: u8| matches!(b, 0x21..=0x2b | 0x2d..=0x3c | 0x3e..=0x7e);
    match value.last() {
        Some(&last) if nblk(last) => {
            value.len() <= 256 && value.iter().all(|&b| b == b' ' || nblk(b))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(values: &[&str]) -> Result<Option<Tracestate>, TracestateError> {
        Tracestate::from_values(values.iter().map(|v| v.as_bytes()))
    }

    fn ok(values: &[&str]) -> Tracestate {
        parse(values).unwrap().unwrap()
    }

    #[test]
    fn joins_repeated_headers_in_order() {
        let ts = ok(&["foo=1,bar=2", "rojo=1,congo=2", "baz=3"]);
        assert_eq!(ts.as_str(), "foo=1,bar=2,rojo=1,congo=2,baz=3");
        assert_eq!(ts.len(), 5);
    }

    #[test]
    fn empty_values_and_members_are_skipped() {
        assert_eq!(parse(&[""]).unwrap(), None);
        assert_eq!(parse(&[" \t , ,"]).unwrap(), None);
        assert_eq!(ok(&["foo=1", ""]).as_str(), "foo=1");
        assert_eq!(ok(&["", "foo=1"]).as_str(), "foo=1");
        assert_eq!(ok(&[",,foo=1,,"]).as_str(), "foo=1");
    }

    #[test]
    fn ows_around_members() {
        for v in [
            "foo=1 \t , \t bar=2, \t baz=3",
            "foo=1\t \t,\t \tbar=2,\t \tbaz=3",
        ] {
            assert_eq!(ok(&[v]).as_str(), "foo=1,bar=2,baz=3");
        }
        for v in [" foo=1", "\tfoo=1", "foo=1 ", "foo=1\t", "\t foo=1 \t"] {
            assert_eq!(ok(&[v]).get("foo"), Some("1"));
        }
    }

    // test_tracestate_duplicated_keys of the W3C suite: the list is kept,
    // with one copy of the repeated key (the first).
    #[test]
    fn duplicate_keys_keep_the_first_member() {
        for (values, expected) in [
            (&["foo=1,foo=1"][..], "foo=1"),
            (&["foo=1,foo=2"][..], "foo=1"),
            (&["foo=1", "foo=1"][..], "foo=1"),
            (&["foo=1", "foo=2"][..], "foo=1"),
            (&["a=1,foo=1,b=2", "foo=2,c=3"][..], "a=1,foo=1,b=2,c=3"),
        ] {
            let ts = ok(values);
            assert_eq!(ts.as_str(), expected, "{values:?}");
            assert_eq!(ts.len(), expected.split(',').count(), "{values:?}");
        }
        // A prefix is not a duplicate.
        assert_eq!(ok(&["foo=1,fo=2,foo@x=3"]).len(), 3);
        // Copies still count towards the 32-member limit of the grammar.
        let copies = vec!["foo=1"; 33].join(",");
        assert_eq!(parse(&[&copies]), Err(TracestateError::TooManyMembers));
        assert_eq!(ok(&[&vec!["foo=1"; 32].join(",")]).as_str(), "foo=1");
        // An invalid member after a duplicate still drops the whole list.
        assert_eq!(
            parse(&["foo=1,foo=2,bar="]),
            Err(TracestateError::InvalidValue(2))
        );
    }

    #[test]
    fn member_count_limit() {
        let members: Vec<String> = (1..=33).map(|i| format!("bar{i:02}={i:02}")).collect();
        let ts = ok(&[&members[..32].join(",")]);
        assert_eq!(ts.len(), 32);
        assert_eq!(ts.get("bar01"), Some("01"));
        assert_eq!(
            parse(&[&members[..30].join(","), &members[30..].join(",")]),
            Err(TracestateError::TooManyMembers)
        );
        // Empty members do not count.
        let padded = format!("{},,,, ,", members[..32].join(","));
        assert_eq!(ok(&[&padded]).len(), 32);
    }

    #[test]
    fn all_allowed_characters() {
        let key: String = ('a'..='z').chain('0'..='9').chain("_-*/".chars()).collect();
        let vendor_key = format!("{key}@a-z0-9_-*/");
        let value: String = (0x20u8..=0x7e)
            .filter(|b| *b != b',' && *b != b'=')
            .map(char::from)
            .collect();
        let ts = ok(&[&format!("{key}={value}")]);
        assert_eq!(ts.get(&key), Some(value.as_str()));
        let ts = ok(&[&format!("{vendor_key}={value}")]);
        assert_eq!(ts.get(&vendor_key), Some(value.as_str()));
    }

    #[test]
    fn illegal_keys() {
        for v in [
            "foo =1",
            "FOO=1",
            "foo.bar=1",
            "=1",
            "fo\u{e9}=1",
            "_foo=1",
            "-foo=1",
        ] {
            assert!(
                matches!(parse(&[v]), Err(TracestateError::InvalidKey(0))),
                "{v}"
            );
        }
        // A leading digit is allowed by the current grammar.
        assert_eq!(ok(&["0foo=1"]).get("0foo"), Some("1"));
    }

    // test_tracestate_key_illegal_vendor_format of the W3C suite.
    #[test]
    fn at_signs_in_keys() {
        for (v, key) in [
            ("foo@=1,bar=2", "foo@"),
            ("foo@@bar=1,bar=2", "foo@@bar"),
            ("foo@bar@baz=1,bar=2", "foo@bar@baz"),
            ("foo@0bar=1,bar=2", "foo@0bar"),
        ] {
            let ts = ok(&[v]);
            assert_eq!(ts.get(key), Some("1"), "{v}");
            assert_eq!(ts.get("bar"), Some("2"), "{v}");
        }
        // A key may not start with '@', and an invalid member drops the list.
        assert_eq!(
            parse(&["@foo=1,bar=2"]),
            Err(TracestateError::InvalidKey(0))
        );
        assert_eq!(
            parse(&["foo@Bar=1,bar=2"]),
            Err(TracestateError::InvalidKey(0))
        );
    }

    // test_tracestate_key_length_limit of the W3C suite.
    #[test]
    fn key_length_limits() {
        for key in [
            "z".repeat(256),
            format!("{}@{}", "t".repeat(241), "v".repeat(14)),
            format!("{}@v", "t".repeat(242)),
            format!("t@{}", "v".repeat(15)),
            format!("{}@", "t".repeat(255)),
        ] {
            let ts = ok(&["foo=1", &format!("{key}=1")]);
            assert_eq!(ts.get("foo"), Some("1"), "{key}");
            assert_eq!(ts.get(&key), Some("1"), "{key}");
        }
        for key in [
            "z".repeat(257),
            format!("{}@{}", "t".repeat(128), "v".repeat(128)),
        ] {
            assert_eq!(
                parse(&["foo=1", &format!("{key}=1")]),
                Err(TracestateError::InvalidKey(1)),
                "{key}"
            );
        }
    }

    #[test]
    fn illegal_values() {
        assert_eq!(
            parse(&["foo=bar=baz"]),
            Err(TracestateError::InvalidValue(0))
        );
        assert_eq!(
            parse(&["foo=,bar=3"]),
            Err(TracestateError::InvalidValue(0))
        );
        assert_eq!(parse(&["foo=a\tb"]), Err(TracestateError::InvalidValue(0)));
        assert_eq!(
            parse(&[&format!("foo={}", "v".repeat(257))]),
            Err(TracestateError::InvalidValue(0))
        );
        assert!(parse(&[&format!("foo={}", "v".repeat(256))]).is_ok());
        assert_eq!(parse(&["foo"]), Err(TracestateError::MissingEquals(0)));
    }

    #[test]
    fn non_utf8_is_rejected_not_panicking() {
        assert!(Tracestate::from_values([&b"foo=\xff"[..]]).is_err());
        assert!(Tracestate::from_values([&b"\xc3\xa9=1"[..]]).is_err());
    }

    #[test]
    fn conversion_to_opentelemetry_trace_state() {
        let ts = ok(&["foo=1,bar@baz=2"]);
        let otel = ts.to_trace_state().unwrap();
        assert_eq!(otel.header(), "foo=1,bar@baz=2");
        assert_eq!(Tracestate::from_trace_state(&otel), Some(ts));
        // Valid for the spec, not representable by TraceState 0.33.
        for key in [format!("t@{}", "v".repeat(14)), "foo@@bar".to_string()] {
            let wide = ok(&[&format!("{key}=1")]);
            assert_eq!(wide.to_trace_state(), None, "{key}");
        }
        assert_eq!(Tracestate::from_trace_state(&TraceState::NONE), None);
    }
}
