//! W3C Baggage: bounded parsing, percent-decoding, properties, formatting, and
//! mapping to and from [`opentelemetry::baggage::Baggage`].
//!
//! Grammar (W3C Baggage):
//!
//! ```text
//! baggage-string = list-member 0*179( OWS "," OWS list-member )
//! list-member    = key OWS "=" OWS value *( OWS ";" OWS property )
//! property       = key OWS "=" OWS value / key OWS
//! key            = token                       ; RFC 7230
//! value          = *baggage-octet              ; percent-encoded UTF-8
//! baggage-octet  = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E
//! ```
//!
//! Limits: the header is at most 8192 bytes and 180 list members by default
//! ([`BaggageLimits`]). Members past a limit are dropped whole, never cut, and
//! the parser never looks past the byte limit, so work and memory are bounded
//! by the limit whatever the input size.

use std::fmt;

use opentelemetry::baggage::{Baggage, BaggageMetadata};

use crate::traceparent::trim_ows;

/// Default maximum size of a baggage header, in bytes.
///
/// ```
/// use telemetry_init_propagation::{baggage::MAX_BAGGAGE_BYTES, W3cBaggage};
///
/// let too_big = format!("k={}", "v".repeat(MAX_BAGGAGE_BYTES));
/// assert!(W3cBaggage::parse(&too_big).is_err());
/// ```
pub const MAX_BAGGAGE_BYTES: usize = 8192;
/// Default maximum number of baggage list members.
///
/// ```
/// use telemetry_init_propagation::{baggage::MAX_BAGGAGE_MEMBERS, W3cBaggage};
///
/// let many: Vec<String> = (0..=MAX_BAGGAGE_MEMBERS).map(|i| format!("k{i}=v")).collect();
/// assert!(W3cBaggage::parse(&many.join(",")).is_err());
/// ```
pub const MAX_BAGGAGE_MEMBERS: usize = 180;

/// Limits applied when parsing and formatting baggage.
///
/// ```
/// use telemetry_init_propagation::BaggageLimits;
///
/// let limits = BaggageLimits::default();
/// assert_eq!((limits.max_bytes, limits.max_members), (8192, 180));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaggageLimits {
    /// Maximum header size in bytes (all values joined with `,`).
    pub max_bytes: usize,
    /// Maximum number of list members.
    pub max_members: usize,
}

impl Default for BaggageLimits {
    fn default() -> Self {
        BaggageLimits {
            max_bytes: MAX_BAGGAGE_BYTES,
            max_members: MAX_BAGGAGE_MEMBERS,
        }
    }
}

/// The most important problem found while parsing or formatting baggage.
///
/// ```
/// use telemetry_init_propagation::{BaggageError, W3cBaggage};
///
/// assert_eq!(W3cBaggage::parse("a=1,oops"), Err(BaggageError::InvalidMembers { count: 1 }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BaggageError {
    /// The header is larger than the byte limit; members past it were dropped.
    #[error("baggage larger than {limit} bytes; trailing members dropped")]
    TooLarge {
        /// The byte limit applied.
        limit: usize,
    },
    /// More members than the member limit; the excess was dropped.
    #[error("baggage has more than {limit} members; {dropped} dropped")]
    TooManyMembers {
        /// The member limit applied.
        limit: usize,
        /// How many members were dropped.
        dropped: usize,
    },
    /// Some list members did not match the grammar and were dropped.
    #[error("{count} invalid baggage members dropped")]
    InvalidMembers {
        /// How many members were dropped.
        count: usize,
    },
}

/// What was dropped while parsing or formatting baggage.
///
/// ```
/// use telemetry_init_propagation::{BaggageError, BaggageLimits, W3cBaggage};
///
/// let (baggage, report) =
///     W3cBaggage::from_values_lossy([&b"a=1,b c=2,d=4"[..]], BaggageLimits::default());
/// assert_eq!(baggage.len(), 2);
/// assert_eq!(report.error(), Some(BaggageError::InvalidMembers { count: 1 }));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BaggageReport {
    /// Members dropped because they did not match the grammar.
    pub invalid_members: usize,
    /// Members dropped because the member limit was reached.
    pub dropped_over_count: usize,
    /// Whether members were dropped because the byte limit was reached.
    pub truncated: bool,
    /// The limits that were applied.
    pub limits: BaggageLimits,
}

impl BaggageReport {
    /// `true` when nothing was dropped.
    ///
    /// ```
    /// use telemetry_init_propagation::{BaggageLimits, W3cBaggage};
    ///
    /// let (_, report) = W3cBaggage::from_values_lossy([&b"a=1"[..]], BaggageLimits::default());
    /// assert!(report.is_clean());
    /// ```
    pub fn is_clean(&self) -> bool {
        self.invalid_members == 0 && self.dropped_over_count == 0 && !self.truncated
    }

    /// The most important problem, if any (size, then count, then grammar).
    ///
    /// ```
    /// use telemetry_init_propagation::{BaggageError, BaggageLimits, W3cBaggage};
    ///
    /// let limits = BaggageLimits { max_bytes: 8192, max_members: 1 };
    /// let (_, report) = W3cBaggage::from_values_lossy([&b"a=1,b=2"[..]], limits);
    /// assert_eq!(report.error(), Some(BaggageError::TooManyMembers { limit: 1, dropped: 1 }));
    /// ```
    pub fn error(&self) -> Option<BaggageError> {
        if self.truncated {
            Some(BaggageError::TooLarge {
                limit: self.limits.max_bytes,
            })
        } else if self.dropped_over_count > 0 {
            Some(BaggageError::TooManyMembers {
                limit: self.limits.max_members,
                dropped: self.dropped_over_count,
            })
        } else if self.invalid_members > 0 {
            Some(BaggageError::InvalidMembers {
                count: self.invalid_members,
            })
        } else {
            None
        }
    }
}

/// A baggage property: `;key=value` or `;key`. The value is percent-decoded.
///
/// ```
/// use telemetry_init_propagation::W3cBaggage;
///
/// let b = W3cBaggage::parse("k=v;ttl=30;pii").unwrap();
/// let props = &b.members()[0].properties;
/// assert_eq!((props[0].key.as_str(), props[0].value.as_deref()), ("ttl", Some("30")));
/// assert_eq!((props[1].key.as_str(), props[1].value.as_deref()), ("pii", None));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BaggageProperty {
    /// The property key (an RFC 7230 token).
    pub key: String,
    /// The decoded value, `None` for a flag property.
    pub value: Option<String>,
}

/// One baggage list member. The value is percent-decoded.
///
/// ```
/// use telemetry_init_propagation::W3cBaggage;
///
/// let b = W3cBaggage::parse("user=jane%20doe").unwrap();
/// assert_eq!(b.members()[0].value, "jane doe");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BaggageMember {
    /// The key (an RFC 7230 token, case-sensitive, not decoded).
    pub key: String,
    /// The decoded value (invalid UTF-8 replaced with U+FFFD, as the spec says).
    pub value: String,
    /// The properties, in order.
    pub properties: Vec<BaggageProperty>,
}

impl BaggageMember {
    /// A member without properties.
    ///
    /// ```
    /// use telemetry_init_propagation::BaggageMember;
    ///
    /// let m = BaggageMember::new("user", "jane doe");
    /// assert_eq!(m.to_string(), "user=jane%20doe");
    /// ```
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        BaggageMember {
            key: key.into(),
            value: value.into(),
            properties: Vec::new(),
        }
    }

    /// Whether the key is a token and every property key is a token, so the
    /// member can be formatted.
    ///
    /// ```
    /// use telemetry_init_propagation::BaggageMember;
    ///
    /// assert!(BaggageMember::new("ok", "any value").is_valid());
    /// assert!(!BaggageMember::new("not ok", "v").is_valid());
    /// ```
    pub fn is_valid(&self) -> bool {
        is_token(self.key.as_bytes()) && self.properties.iter().all(|p| is_token(p.key.as_bytes()))
    }

    /// The properties formatted as `k=v;flag` (percent-encoded), the form used
    /// for `opentelemetry`'s [`BaggageMetadata`].
    ///
    /// ```
    /// use telemetry_init_propagation::W3cBaggage;
    ///
    /// let b = W3cBaggage::parse("k=v;a=1%202;flag").unwrap();
    /// assert_eq!(b.members()[0].properties_string(), "a=1%202;flag");
    /// ```
    pub fn properties_string(&self) -> String {
        let mut out = String::new();
        for (i, p) in self.properties.iter().enumerate() {
            if i > 0 {
                out.push(';');
            }
            write_property(&mut out, p);
        }
        out
    }
}

impl fmt::Display for BaggageMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(self.key.len() + self.value.len() + 1);
        write_member(&mut out, self);
        f.write_str(&out)
    }
}

/// A parsed W3C baggage list, in header order.
///
/// ```
/// use telemetry_init_propagation::W3cBaggage;
///
/// let b = W3cBaggage::parse("user=jane%20doe;ttl=30;pii, region = eu").unwrap();
/// assert_eq!(b.get("user"), Some("jane doe"));
/// assert_eq!(b.members()[0].properties.len(), 2);
/// assert_eq!(b.to_header(), "user=jane%20doe;ttl=30;pii,region=eu");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct W3cBaggage {
    members: Vec<BaggageMember>,
}

impl W3cBaggage {
    /// An empty list.
    ///
    /// ```
    /// use telemetry_init_propagation::W3cBaggage;
    ///
    /// assert!(W3cBaggage::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a member.
    ///
    /// ```
    /// use telemetry_init_propagation::{BaggageMember, W3cBaggage};
    ///
    /// let mut b = W3cBaggage::new();
    /// b.push(BaggageMember::new("k", "v"));
    /// assert_eq!(b.to_header(), "k=v");
    /// ```
    pub fn push(&mut self, member: BaggageMember) {
        self.members.push(member);
    }

    /// The members in order.
    ///
    /// ```
    /// use telemetry_init_propagation::W3cBaggage;
    ///
    /// let b = W3cBaggage::parse("a=1,b=2").unwrap();
    /// assert_eq!(b.members().iter().map(|m| m.key.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    /// ```
    pub fn members(&self) -> &[BaggageMember] {
        &self.members
    }

    /// Number of members.
    ///
    /// ```
    /// use telemetry_init_propagation::W3cBaggage;
    ///
    /// assert_eq!(W3cBaggage::parse("a=1,b=2").unwrap().len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no members.
    ///
    /// ```
    /// use telemetry_init_propagation::W3cBaggage;
    ///
    /// assert!(W3cBaggage::parse("").unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The decoded value of the last member with this key.
    ///
    /// ```
    /// use telemetry_init_propagation::W3cBaggage;
    ///
    /// let b = W3cBaggage::parse("a=1,a=2").unwrap();
    /// assert_eq!(b.get("a"), Some("2"));
    /// ```
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members
            .iter()
            .rev()
            .find(|m| m.key == key)
            .map(|m| m.value.as_str())
    }

    /// Strict parse of one header value with the default limits: any dropped
    /// member is an error.
    ///
    /// ```
    /// use telemetry_init_propagation::W3cBaggage;
    ///
    /// assert!(W3cBaggage::parse("a=1, b = 2 ;p").is_ok());
    /// assert!(W3cBaggage::parse("a=1,b").is_err());
    /// ```
    pub fn parse(value: &str) -> Result<Self, BaggageError> {
        let (baggage, report) =
            Self::from_values_lossy([value.as_bytes()], BaggageLimits::default());
        match report.error() {
            Some(e) => Err(e),
            None => Ok(baggage),
        }
    }

    /// Parses all values of the `baggage` header (joined with `,`), keeping
    /// every valid member that fits the limits and reporting what was dropped.
    /// Never reads past `limits.max_bytes` of the joined header.
    ///
    /// ```
    /// use telemetry_init_propagation::{BaggageLimits, W3cBaggage};
    ///
    /// let (b, report) =
    ///     W3cBaggage::from_values_lossy([&b"a=1"[..], &b"b=2,bad"[..]], BaggageLimits::default());
    /// assert_eq!(b.to_header(), "a=1,b=2");
    /// assert_eq!(report.invalid_members, 1);
    /// ```
    pub fn from_values_lossy<'a, I>(values: I, limits: BaggageLimits) -> (Self, BaggageReport)
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let mut report = BaggageReport {
            limits,
            ..BaggageReport::default()
        };
        let mut members = Vec::new();
        // Position in the joined header (values joined with ',').
        let mut offset = 0usize;
        'values: for value in values {
            for raw in value.split(|&b| b == b',') {
                let end = offset.saturating_add(raw.len());
                if end > limits.max_bytes {
                    // WHY: the spec forbids propagating partial members, so
                    // the member crossing the limit and all later ones go.
                    report.truncated = true;
                    break 'values;
                }
                offset = end.saturating_add(1);
                let member = trim_ows(raw);
                if member.is_empty() {
                    continue;
                }
                if members.len() >= limits.max_members {
                    report.dropped_over_count += 1;
                    continue;
                }
                match parse_member(member) {
                    Some(m) => members.push(m),
                    None => report.invalid_members += 1,
                }
            }
        }
        (W3cBaggage { members }, report)
    }

    /// Formats the header with the default limits (members that do not fit
    /// are left out; see [`W3cBaggage::to_header_with`]).
    ///
    /// ```
    /// use telemetry_init_propagation::{BaggageMember, W3cBaggage};
    ///
    /// let mut b = W3cBaggage::new();
    /// b.push(BaggageMember::new("k", "a,b"));
    /// assert_eq!(b.to_header(), "k=a%2Cb");
    /// ```
    pub fn to_header(&self) -> String {
        self.to_header_with(BaggageLimits::default()).0
    }

    /// Formats the header, percent-encoding values. Members are added in order
    /// while they fit both limits; invalid members (bad keys) are skipped.
    ///
    /// ```
    /// use telemetry_init_propagation::{BaggageLimits, W3cBaggage};
    ///
    /// let b = W3cBaggage::parse("a=1,b=2").unwrap();
    /// let (header, report) = b.to_header_with(BaggageLimits { max_bytes: 3, max_members: 180 });
    /// assert_eq!(header, "a=1");
    /// assert!(report.truncated);
    /// ```
    pub fn to_header_with(&self, limits: BaggageLimits) -> (String, BaggageReport) {
        let mut report = BaggageReport {
            limits,
            ..BaggageReport::default()
        };
        let mut out = String::new();
        let mut count = 0usize;
        let mut scratch = String::new();
        for m in &self.members {
            if !m.is_valid() {
                report.invalid_members += 1;
                continue;
            }
            if count >= limits.max_members {
                report.dropped_over_count += 1;
                continue;
            }
            scratch.clear();
            write_member(&mut scratch, m);
            let sep = usize::from(!out.is_empty());
            if out.len() + sep + scratch.len() > limits.max_bytes {
                report.truncated = true;
                continue;
            }
            if sep == 1 {
                out.push(',');
            }
            out.push_str(&scratch);
            count += 1;
        }
        (out, report)
    }

    /// Converts to `opentelemetry`'s [`Baggage`] (last value wins for repeated
    /// keys; properties become the [`BaggageMetadata`]). Returns how many
    /// members `Baggage` refused: it holds at most 64 entries (its own limit,
    /// lower than the header's 180).
    ///
    /// ```
    /// use telemetry_init_propagation::W3cBaggage;
    ///
    /// let (otel, refused) = W3cBaggage::parse("a=1;p").unwrap().to_opentelemetry();
    /// assert_eq!(refused, 0);
    /// assert_eq!(otel.get_with_metadata("a").unwrap().1.as_str(), "p");
    /// ```
    pub fn to_opentelemetry(&self) -> (Baggage, usize) {
        let mut baggage = Baggage::new();
        let mut refused = 0;
        for m in &self.members {
            baggage.insert_with_metadata(m.key.clone(), m.value.clone(), m.properties_string());
            // `insert_with_metadata` returns `None` both on success and on
            // refusal, so check what is stored.
            if baggage.get(&m.key).map(|v| v.as_str()) != Some(m.value.as_str()) {
                refused += 1;
            }
        }
        (baggage, refused)
    }

    /// Builds a list from `opentelemetry`'s [`Baggage`] (order is that of its
    /// map, i.e. unspecified). Metadata is parsed as properties; unparseable
    /// metadata is left out.
    ///
    /// ```
    /// use opentelemetry::baggage::Baggage;
    /// use telemetry_init_propagation::W3cBaggage;
    ///
    /// let mut otel = Baggage::new();
    /// otel.insert("k", "a b");
    /// assert_eq!(W3cBaggage::from_opentelemetry(&otel).to_header(), "k=a%20b");
    /// ```
    pub fn from_opentelemetry(baggage: &Baggage) -> Self {
        let mut members = Vec::with_capacity(baggage.len());
        for (key, (value, metadata)) in baggage {
            members.push(BaggageMember {
                key: key.as_str().to_owned(),
                value: value.as_str().to_owned(),
                properties: parse_metadata(metadata),
            });
        }
        W3cBaggage { members }
    }
}

impl fmt::Display for W3cBaggage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_header())
    }
}

fn parse_metadata(metadata: &BaggageMetadata) -> Vec<BaggageProperty> {
    let raw = metadata.as_str().as_bytes();
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|&b| b == b';')
        .map(trim_ows)
        .filter(|p| !p.is_empty())
        .map(parse_property)
        .collect::<Option<Vec<_>>>()
        .unwrap_or_default()
}

/// RFC 7230 `tchar`.
#[inline]
fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_'
        | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

#[inline]
fn is_baggage_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

fn parse_member(member: &[u8]) -> Option<BaggageMember> {
    let mut parts = member.split(|&b| b == b';');
    let kv = parts.next()?;
    let eq = kv.iter().position(|&b| b == b'=')?;
    let key = trim_ows(&kv[..eq]);
    let value = trim_ows(&kv[eq + 1..]);
    if !is_token(key) || !value.iter().all(|&b| is_baggage_octet(b)) {
        return None;
    }
    let mut properties = Vec::new();
    for p in parts {
        let p = trim_ows(p);
        if p.is_empty() {
            // Tolerate "k=v;" and "k=v;;p": nothing to keep, nothing lost.
            continue;
        }
        properties.push(parse_property(p)?);
    }
    Some(BaggageMember {
        key: ascii_string(key),
        value: percent_decode(value),
        properties,
    })
}

fn parse_property(p: &[u8]) -> Option<BaggageProperty> {
    match p.iter().position(|&b| b == b'=') {
        None => is_token(p).then(|| BaggageProperty {
            key: ascii_string(p),
            value: None,
        }),
        Some(eq) => {
            let key = trim_ows(&p[..eq]);
            let value = trim_ows(&p[eq + 1..]);
            (is_token(key) && value.iter().all(|&b| is_baggage_octet(b))).then(|| BaggageProperty {
                key: ascii_string(key),
                value: Some(percent_decode(value)),
            })
        }
    }
}

/// Validated ASCII bytes to a `String` (lossy conversion never triggers).
fn ascii_string(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[inline]
fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes; a `%` not followed by two hex digits is kept literally,
/// and invalid UTF-8 becomes U+FFFD (as the spec requires).
pub(crate) fn percent_decode(input: &[u8]) -> String {
    if !input.contains(&b'%') {
        return ascii_string(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%'
            && i + 2 < input.len()
            && let (Some(hi), Some(lo)) = (hex_digit(input[i + 1]), hex_digit(input[i + 2]))
        {
            out.push((hi << 4) | lo);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Percent-encodes everything that is not a baggage-octet, and `%` itself.
pub(crate) fn percent_encode_into(out: &mut String, input: &str) {
    for &b in input.as_bytes() {
        if is_baggage_octet(b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
            out.push(char::from(HEX_UPPER[usize::from(b & 0x0f)]));
        }
    }
}

fn write_property(out: &mut String, p: &BaggageProperty) {
    out.push_str(&p.key);
    if let Some(v) = &p.value {
        out.push('=');
        percent_encode_into(out, v);
    }
}

fn write_member(out: &mut String, m: &BaggageMember) {
    out.push_str(&m.key);
    out.push('=');
    percent_encode_into(out, &m.value);
    for p in &m.properties {
        out.push(';');
        write_property(out, p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lossy(values: &[&str]) -> (W3cBaggage, BaggageReport) {
        W3cBaggage::from_values_lossy(
            values.iter().map(|v| v.as_bytes()),
            BaggageLimits::default(),
        )
    }

    #[test]
    fn parses_members_properties_and_ows() {
        let b = W3cBaggage::parse(" key1 = value1 ; p1 = x ; flag , key2=value2").unwrap();
        assert_eq!(b.len(), 2);
        let m = &b.members()[0];
        assert_eq!((m.key.as_str(), m.value.as_str()), ("key1", "value1"));
        assert_eq!(
            m.properties,
            vec![
                BaggageProperty {
                    key: "p1".into(),
                    value: Some("x".into())
                },
                BaggageProperty {
                    key: "flag".into(),
                    value: None
                },
            ]
        );
        assert_eq!(b.to_header(), "key1=value1;p1=x;flag,key2=value2");
    }

    #[test]
    fn percent_decoding() {
        let b = W3cBaggage::parse("a=%20x%2C%3B%25,b=caf%C3%A9,c=%FF,d=100%,e=%zz").unwrap();
        assert_eq!(b.get("a"), Some(" x,;%"));
        assert_eq!(b.get("b"), Some("café"));
        assert_eq!(b.get("c"), Some("\u{fffd}"));
        assert_eq!(b.get("d"), Some("100%"));
        assert_eq!(b.get("e"), Some("%zz"));
    }

    #[test]
    fn percent_encoding_round_trips() {
        let mut b = W3cBaggage::new();
        b.push(BaggageMember::new("k", "a b,c;d=\"e\\%é"));
        let header = b.to_header();
        assert_eq!(header, "k=a%20b%2Cc%3Bd=%22e%5C%25%C3%A9");
        assert_eq!(W3cBaggage::parse(&header).unwrap(), b);
    }

    #[test]
    fn empty_value_is_allowed() {
        assert_eq!(W3cBaggage::parse("k=").unwrap().get("k"), Some(""));
    }

    #[test]
    fn invalid_members_are_dropped_and_reported() {
        for bad in [
            "novalue", "=v", "k y=1", "k=a b", "k=\"q\"", "k=1;p q", "k=1;=x", "é=1",
        ] {
            let (b, report) = lossy(&[&format!("ok=1,{bad},ok2=2")]);
            assert_eq!(b.len(), 2, "{bad}");
            assert_eq!(report.invalid_members, 1, "{bad}");
            assert!(W3cBaggage::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repeated_headers_are_joined() {
        let (b, report) = lossy(&["a=1", "b=2,c=3"]);
        assert!(report.is_clean());
        assert_eq!(b.to_header(), "a=1,b=2,c=3");
    }

    #[test]
    fn member_limit_drops_excess_and_reports() {
        let header: Vec<String> = (0..200).map(|i| format!("k{i}=v")).collect();
        let (b, report) = lossy(&[&header.join(",")]);
        assert_eq!(b.len(), 180);
        assert_eq!(b.members()[179].key, "k179");
        assert_eq!(report.dropped_over_count, 20);
        assert_eq!(
            report.error(),
            Some(BaggageError::TooManyMembers {
                limit: 180,
                dropped: 20
            })
        );
    }

    #[test]
    fn byte_limit_drops_whole_members_and_reports() {
        // 100 members of 100 bytes = 10099 bytes with commas.
        let member = format!("k={}", "v".repeat(98));
        let header = vec![member.as_str(); 100].join(",");
        let (b, report) = lossy(&[&header]);
        // 81 members take 81*100 + 80 = 8180 bytes; the 82nd would end at 8280.
        assert_eq!(b.len(), 81);
        assert!(report.truncated);
        assert_eq!(report.error(), Some(BaggageError::TooLarge { limit: 8192 }));
        // Exactly at the limit is fine.
        let exact = format!("k={}", "v".repeat(8190));
        let (b, report) = lossy(&[&exact]);
        assert!(report.is_clean());
        assert_eq!(b.len(), 1);
        let (b, report) = lossy(&[&format!("{exact}v")]);
        assert!(b.is_empty() && report.truncated);
    }

    #[test]
    fn byte_limit_counts_the_joining_comma() {
        let first = format!("a={}", "v".repeat(4000));
        let second = format!("b={}", "v".repeat(4189)); // 4002 + 1 + 4191 = 8194
        let (b, report) = lossy(&[&first, &second]);
        assert_eq!(b.len(), 1);
        assert!(report.truncated);
    }

    #[test]
    fn huge_input_is_bounded() {
        let huge = "x".repeat(10_000_000);
        let (b, report) = lossy(&[&huge]);
        assert!(b.is_empty() && report.truncated);
    }

    #[test]
    fn formatting_respects_limits() {
        let mut b = W3cBaggage::new();
        for i in 0..200 {
            b.push(BaggageMember::new(format!("k{i}"), "v"));
        }
        b.push(BaggageMember::new("bad key", "v"));
        let (header, report) = b.to_header_with(BaggageLimits::default());
        assert_eq!(header.split(',').count(), 180);
        assert_eq!(report.dropped_over_count, 20);
        assert_eq!(report.invalid_members, 1);
        let (header, report) = b.to_header_with(BaggageLimits {
            max_bytes: 10,
            max_members: 180,
        });
        assert_eq!(header, "k0=v,k1=v");
        assert!(report.truncated);
    }

    #[test]
    fn opentelemetry_round_trip() {
        let b = W3cBaggage::parse("user=jane%20doe;ttl=30;pii").unwrap();
        let (otel, refused) = b.to_opentelemetry();
        assert_eq!(refused, 0);
        assert_eq!(otel.get("user").map(|v| v.as_str()), Some("jane doe"));
        assert_eq!(
            otel.get_with_metadata("user").map(|(_, m)| m.as_str()),
            Some("ttl=30;pii")
        );
        let back = W3cBaggage::from_opentelemetry(&otel);
        assert_eq!(back, b);
    }

    #[test]
    fn opentelemetry_refuses_more_than_64() {
        let header: Vec<String> = (0..70).map(|i| format!("k{i}=v")).collect();
        let b = W3cBaggage::parse(&header.join(",")).unwrap();
        let (otel, refused) = b.to_opentelemetry();
        assert_eq!(otel.len(), 64);
        assert_eq!(refused, 6);
    }
}
