//! The W3C `traceparent` header: exact parsing and formatting.
//!
//! Grammar (W3C Trace Context, levels 1 and 2):
//!
//! ```text
//! version-format = version "-" trace-id "-" parent-id "-" trace-flags
//! version        = 2HEXDIGLC      ; "ff" is forbidden
//! trace-id       = 32HEXDIGLC     ; not all zeroes
//! parent-id      = 16HEXDIGLC     ; not all zeroes
//! trace-flags    = 2HEXDIGLC
//! ```
//!
//! Version `00` is exactly 55 characters. A higher (future) version may be
//! longer, but then the 56th character must be `-` (extra fields follow).

use std::fmt;

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

/// Length of a version-`00` `traceparent` value.
///
/// ```
/// assert_eq!(
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".len(),
///     telemetry_init_propagation::traceparent::TRACEPARENT_LEN,
/// );
/// ```
pub const TRACEPARENT_LEN: usize = 55;

/// The "random trace-id" flag defined by W3C Trace Context level 2.
///
/// `opentelemetry::trace::TraceFlags` has no constant for it, and the stock
/// `TraceContextPropagator` masks it away (it keeps only the sampled bit).
///
/// ```
/// use telemetry_init_propagation::{traceparent::FLAG_RANDOM, Traceparent};
///
/// let tp = Traceparent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02").unwrap();
/// assert_eq!(tp.flags.to_u8() & FLAG_RANDOM, FLAG_RANDOM);
/// ```
pub const FLAG_RANDOM: u8 = 0x02;

/// The trace-flags bits this version of the spec defines: sampled (`0x01`)
/// and random (`0x02`). Every other bit is cleared on the way in and on the
/// way out.
///
/// WHY: the processing model says unknown flags are set to 0 on outgoing
/// requests; forwarding them would let any caller set bits that a later
/// version may give a meaning (and B3's "debug" bit `0x04` would leak into
/// `traceparent` as a reserved bit).
///
/// ```
/// use telemetry_init_propagation::{traceparent::KNOWN_FLAGS, Traceparent};
///
/// let tp = Traceparent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff").unwrap();
/// assert_eq!(tp.flags.to_u8(), KNOWN_FLAGS);
/// assert!(tp.to_string().ends_with("-03"));
/// ```
pub const KNOWN_FLAGS: u8 = 0x01 | FLAG_RANDOM;

/// Why a `traceparent` value was rejected.
///
/// Any error means: ignore the incoming value and start a new trace.
///
/// ```
/// use telemetry_init_propagation::{Traceparent, TraceparentError};
///
/// let e = Traceparent::parse("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap_err();
/// assert_eq!(e, TraceparentError::Version);
/// assert_eq!(e.to_string(), "traceparent version is invalid");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceparentError {
    /// No `traceparent` header was present.
    #[error("no traceparent header")]
    Missing,
    /// More than one `traceparent` header was present; the spec gives no way
    /// to choose, so the trace restarts.
    #[error("traceparent header repeated")]
    Repeated,
    /// The value is shorter than 55 characters, or a version-`00` value is not
    /// exactly 55 characters.
    #[error("traceparent has the wrong length")]
    Length,
    /// The version is not two lowercase hex digits, or is the forbidden `ff`.
    #[error("traceparent version is invalid")]
    Version,
    /// A `-` delimiter is missing or misplaced (this is also how fields that are
    /// too long or too short show up).
    #[error("traceparent field delimiter is missing")]
    Delimiter,
    /// The trace-id is not 32 lowercase hex digits.
    #[error("traceparent trace-id is not 32 lowercase hex digits")]
    TraceId,
    /// The trace-id is all zeroes.
    #[error("traceparent trace-id is all zeroes")]
    ZeroTraceId,
    /// The parent-id is not 16 lowercase hex digits.
    #[error("traceparent parent-id is not 16 lowercase hex digits")]
    ParentId,
    /// The parent-id is all zeroes.
    #[error("traceparent parent-id is all zeroes")]
    ZeroParentId,
    /// The trace-flags are not 2 lowercase hex digits.
    #[error("traceparent trace-flags are not 2 lowercase hex digits")]
    Flags,
}

/// A parsed `traceparent`.
///
/// ```
/// use telemetry_init_propagation::Traceparent;
///
/// let tp = Traceparent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03").unwrap();
/// assert_eq!(tp.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert_eq!(tp.flags.to_u8(), 0x03); // the random flag (0x02) is kept
/// assert_eq!(tp.to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Traceparent {
    /// The version the value was received with. Always formatted back as `00`.
    pub version: u8,
    /// The trace-id (never all zeroes).
    pub trace_id: TraceId,
    /// The caller's span id (never all zeroes).
    pub parent_id: SpanId,
    /// The trace flags: only the defined bits ([`KNOWN_FLAGS`]) are kept.
    pub flags: TraceFlags,
}

impl Traceparent {
    /// Parses one `traceparent` value. Leading and trailing optional white
    /// space (space, tab) is ignored; everything else must match exactly.
    ///
    /// ```
    /// use telemetry_init_propagation::{Traceparent, TraceparentError};
    ///
    /// assert!(Traceparent::parse(" 00-12345678901234567890123456789012-1234567890123456-01\t").is_ok());
    /// assert_eq!(
    ///     Traceparent::parse("00-12345678901234567890123456789012-1234567890123456-001"),
    ///     Err(TraceparentError::Length),
    /// );
    /// ```
    pub fn parse(value: &str) -> Result<Self, TraceparentError> {
        Self::parse_bytes(value.as_bytes())
    }

    /// Parses one `traceparent` value given as raw header bytes (header values
    /// may contain non-UTF-8 octets; those simply fail to parse).
    ///
    /// ```
    /// use telemetry_init_propagation::Traceparent;
    ///
    /// assert!(Traceparent::parse_bytes(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_ok());
    /// assert!(Traceparent::parse_bytes(b"\xff\xfe").is_err());
    /// ```
    pub fn parse_bytes(value: &[u8]) -> Result<Self, TraceparentError> {
        let v = trim_ows(value);
        if v.len() < TRACEPARENT_LEN {
            return Err(TraceparentError::Length);
        }
        let version = hex_byte(v[0], v[1]).ok_or(TraceparentError::Version)?;
        // WHY: 0xff is reserved as invalid by the spec; the stock propagator
        // also rejects it, but it accepts versions with 3+ digits.
        if version == 0xff {
            return Err(TraceparentError::Version);
        }
        if v[2] != b'-' {
            // e.g. "000-…" (version too long) or "0-…" (too short).
            return Err(TraceparentError::Delimiter);
        }
        if version == 0 && v.len() != TRACEPARENT_LEN {
            // WHY: version 00 has exactly four fields; anything after the flags
            // (even "-future-stuff") makes it invalid. The stock propagator
            // checks field counts after splitting on '-', so it accepted
            // wrong-length fields in some layouts.
            return Err(TraceparentError::Length);
        }
        if v.len() > TRACEPARENT_LEN && v[TRACEPARENT_LEN] != b'-' {
            // Future versions may append fields, but only after a '-'.
            return Err(TraceparentError::Delimiter);
        }
        if v[35] != b'-' || v[52] != b'-' {
            return Err(TraceparentError::Delimiter);
        }
        let trace_id = parse_hex_u128(&v[3..35]).ok_or(TraceparentError::TraceId)?;
        if trace_id == 0 {
            return Err(TraceparentError::ZeroTraceId);
        }
        let parent_id = parse_hex_u64(&v[36..52]).ok_or(TraceparentError::ParentId)?;
        if parent_id == 0 {
            return Err(TraceparentError::ZeroParentId);
        }
        // WHY mask for every version: only the bits whose meaning we know
        // (sampled, random) may be re-emitted; the spec says unknown flags are
        // set to 0 on outgoing requests.
        let flags = hex_byte(v[53], v[54]).ok_or(TraceparentError::Flags)? & KNOWN_FLAGS;
        Ok(Traceparent {
            version,
            trace_id: TraceId::from(trace_id),
            parent_id: SpanId::from(parent_id),
            flags: TraceFlags::new(flags),
        })
    }

    /// Parses the `traceparent` header from all of its values. Zero values is
    /// [`TraceparentError::Missing`]; more than one is
    /// [`TraceparentError::Repeated`] (the spec has no rule to choose one).
    ///
    /// ```
    /// use telemetry_init_propagation::{Traceparent, TraceparentError};
    ///
    /// let v: &[u8] = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    /// assert!(Traceparent::from_values([v]).is_ok());
    /// assert_eq!(Traceparent::from_values([v, v]), Err(TraceparentError::Repeated));
    /// ```
    pub fn from_values<'a, I>(values: I) -> Result<Self, TraceparentError>
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let mut it = values.into_iter();
        let first = it.next().ok_or(TraceparentError::Missing)?;
        if it.next().is_some() {
            return Err(TraceparentError::Repeated);
        }
        Self::parse_bytes(first)
    }

    /// The `traceparent` of a span context, or `None` when the context is
    /// invalid (all-zero ids). Flag bits other than [`KNOWN_FLAGS`] are
    /// cleared.
    ///
    /// ```
    /// use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    /// use telemetry_init_propagation::Traceparent;
    ///
    /// let sc = SpanContext::new(
    ///     TraceId::from(1u128), SpanId::from(2u64), TraceFlags::new(0x03), false, TraceState::NONE,
    /// );
    /// let tp = Traceparent::from_span_context(&sc).unwrap();
    /// assert_eq!(tp.to_string(), "00-00000000000000000000000000000001-0000000000000002-03");
    /// ```
    pub fn from_span_context(span_context: &SpanContext) -> Option<Self> {
        if !span_context.is_valid() {
            return None;
        }
        Some(Traceparent {
            version: 0,
            trace_id: span_context.trace_id(),
            parent_id: span_context.span_id(),
            // WHY: the stock propagator writes `flags & SAMPLED`, clearing the
            // level-2 random flag; we keep both defined bits, and only those.
            flags: TraceFlags::new(span_context.trace_flags().to_u8() & KNOWN_FLAGS),
        })
    }

    /// A remote [`SpanContext`] for this parent with the given trace state.
    ///
    /// ```
    /// use opentelemetry::trace::TraceState;
    /// use telemetry_init_propagation::Traceparent;
    ///
    /// let tp = Traceparent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    /// let sc = tp.to_span_context(TraceState::NONE);
    /// assert!(sc.is_remote() && sc.is_sampled());
    /// ```
    pub fn to_span_context(&self, trace_state: TraceState) -> SpanContext {
        SpanContext::new(self.trace_id, self.parent_id, self.flags, true, trace_state)
    }

    /// Writes the version-`00` form into a fixed buffer (no allocation).
    ///
    /// ```
    /// use telemetry_init_propagation::Traceparent;
    ///
    /// let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    /// assert_eq!(&Traceparent::parse(text).unwrap().encode()[..], text.as_bytes());
    /// ```
    pub fn encode(&self) -> [u8; TRACEPARENT_LEN] {
        let mut out = [b'-'; TRACEPARENT_LEN];
        out[0] = b'0';
        out[1] = b'0';
        write_hex(&mut out[3..35], &self.trace_id.to_bytes());
        write_hex(&mut out[36..52], &self.parent_id.to_bytes());
        write_hex(&mut out[53..55], &[self.flags.to_u8()]);
        out
    }

    /// The version-`00` form as an [`http::HeaderValue`].
    ///
    /// ```
    /// use telemetry_init_propagation::Traceparent;
    ///
    /// let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    /// assert_eq!(Traceparent::parse(text).unwrap().to_header_value(), text);
    /// ```
    pub fn to_header_value(&self) -> http::HeaderValue {
        let buf = self.encode();
        // The buffer is ASCII hex digits and '-', always a valid header value.
        http::HeaderValue::from_bytes(&buf).unwrap_or_else(|_| http::HeaderValue::from_static(""))
    }
}

impl fmt::Display for Traceparent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let buf = self.encode();
        // ASCII only, so this cannot fail.
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl std::str::FromStr for Traceparent {
    type Err = TraceparentError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Trims HTTP optional white space (SP / HTAB) from both ends.
pub(crate) fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Value of one lowercase hex digit. WHY lowercase only: the spec's HEXDIGLC;
/// the stock propagator also accepts uppercase.
#[inline]
fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

#[inline]
fn hex_byte(hi: u8, lo: u8) -> Option<u8> {
    Some((hex_val(hi)? << 4) | hex_val(lo)?)
}

fn parse_hex_u128(digits: &[u8]) -> Option<u128> {
    digits
        .iter()
        .try_fold(0u128, |acc, &b| Some((acc << 4) | u128::from(hex_val(b)?)))
}

fn parse_hex_u64(digits: &[u8]) -> Option<u64> {
    digits
        .iter()
        .try_fold(0u64, |acc, &b| Some((acc << 4) | u64::from(hex_val(b)?)))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_hex(out: &mut [u8], bytes: &[u8]) {
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0x0f)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: &str = "12345678901234567890123456789012";
    const VALID: &str = "00-12345678901234567890123456789012-1234567890123456-01";

    fn err(v: &str) -> TraceparentError {
        Traceparent::parse(v).expect_err(v)
    }

    #[test]
    fn valid_version_00() {
        let tp = Traceparent::parse(VALID).unwrap();
        assert_eq!(tp.version, 0);
        assert_eq!(tp.trace_id.to_string(), TID);
        assert_eq!(tp.parent_id.to_string(), "1234567890123456");
        assert_eq!(tp.flags, TraceFlags::SAMPLED);
        assert_eq!(tp.to_string(), VALID);
    }

    #[test]
    fn only_defined_flag_bits_are_kept() {
        for flags in 0u8..=0xff {
            let v = format!("00-{TID}-1234567890123456-{flags:02x}");
            let tp = Traceparent::parse(&v).unwrap();
            assert_eq!(tp.flags.to_u8(), flags & 0x03, "{v}");
            assert_eq!(
                tp.to_string(),
                format!("00-{TID}-1234567890123456-{:02x}", flags & 0x03)
            );
        }
        // The random flag alone survives (W3C level 2).
        let tp = Traceparent::parse(&format!("00-{TID}-1234567890123456-02")).unwrap();
        assert_eq!(tp.flags.to_u8(), FLAG_RANDOM);
        // Reserved bits set by local code are cleared on the way out too.
        let sc = SpanContext::new(
            TraceId::from(1u128),
            SpanId::from(1u64),
            TraceFlags::new(0xfe),
            false,
            TraceState::NONE,
        );
        assert!(
            Traceparent::from_span_context(&sc)
                .unwrap()
                .to_string()
                .ends_with("-02")
        );
    }

    #[test]
    fn ows_is_trimmed() {
        for v in [
            format!(" {VALID}"),
            format!("\t{VALID}"),
            format!("{VALID} "),
            format!("{VALID}\t"),
            format!("\t {VALID} \t"),
        ] {
            assert_eq!(Traceparent::parse(&v).unwrap().to_string(), VALID);
        }
    }

    #[test]
    fn version_00_must_be_exactly_55() {
        assert_eq!(err(&format!("{VALID}.")), TraceparentError::Length);
        assert_eq!(
            err(&format!("{VALID}-what-the-future-will-be-like")),
            TraceparentError::Length
        );
    }

    #[test]
    fn future_version_is_accepted_with_extra_fields() {
        let base = format!("cc-{TID}-1234567890123456-01");
        let tp = Traceparent::parse(&base).unwrap();
        assert_eq!(tp.version, 0xcc);
        assert_eq!(tp.trace_id.to_string(), TID);
        // It is re-emitted as version 00.
        assert_eq!(tp.to_string(), VALID);
        let extended = format!("{base}-what-the-future-will-be-like");
        assert_eq!(
            Traceparent::parse(&extended).unwrap().trace_id.to_string(),
            TID
        );
        assert_eq!(
            err(&format!("{base}.what-the-future-will-be-like")),
            TraceparentError::Delimiter
        );
    }

    #[test]
    fn future_version_keeps_only_known_flags() {
        let tp = Traceparent::parse(&format!("cc-{TID}-1234567890123456-ff")).unwrap();
        assert_eq!(tp.flags.to_u8(), 0x03);
    }

    #[test]
    fn version_ff_is_invalid() {
        assert_eq!(
            err(&format!("ff-{TID}-1234567890123456-01")),
            TraceparentError::Version
        );
    }

    #[test]
    fn version_illegal_characters_and_lengths() {
        assert_eq!(
            err(&format!(".0-{TID}-1234567890123456-01")),
            TraceparentError::Version
        );
        assert_eq!(
            err(&format!("0.-{TID}-1234567890123456-01")),
            TraceparentError::Version
        );
        assert_eq!(
            err(&format!("000-{TID}-1234567890123456-01")),
            TraceparentError::Delimiter
        );
        assert_eq!(
            err(&format!("0000-{TID}-1234567890123456-01")),
            TraceparentError::Delimiter
        );
        assert_eq!(
            err(&format!("0-{TID}-1234567890123456-01")),
            TraceparentError::Length
        );
        assert_eq!(
            err(&format!("0A-{TID}-1234567890123456-01")),
            TraceparentError::Version
        );
    }

    #[test]
    fn trace_id_rules() {
        assert_eq!(
            err("00-00000000000000000000000000000000-1234567890123456-01"),
            TraceparentError::ZeroTraceId
        );
        assert_eq!(
            err("00-.2345678901234567890123456789012-1234567890123456-01"),
            TraceparentError::TraceId
        );
        assert_eq!(
            err("00-1234567890123456789012345678901.-1234567890123456-01"),
            TraceparentError::TraceId
        );
        assert_eq!(
            err("00-123456789012345678901234567890123-1234567890123456-01"),
            TraceparentError::Length
        );
        assert_eq!(
            err("00-1234567890123456789012345678901-1234567890123456-01"),
            TraceparentError::Length
        );
        // Uppercase hex is not HEXDIGLC.
        assert_eq!(
            err("00-1234567890123456789012345678901A-1234567890123456-01"),
            TraceparentError::TraceId
        );
        // Same length, delimiter shifted: trace-id too long, parent-id too short.
        assert_eq!(
            err("00-123456789012345678901234567890123-123456789012345-01"),
            TraceparentError::Delimiter
        );
    }

    #[test]
    fn parent_id_rules() {
        assert_eq!(
            err(&format!("00-{TID}-0000000000000000-01")),
            TraceparentError::ZeroParentId
        );
        assert_eq!(
            err(&format!("00-{TID}-.234567890123456-01")),
            TraceparentError::ParentId
        );
        assert_eq!(
            err(&format!("00-{TID}-123456789012345.-01")),
            TraceparentError::ParentId
        );
        assert_eq!(
            err(&format!("00-{TID}-12345678901234567-01")),
            TraceparentError::Length
        );
        assert_eq!(
            err(&format!("00-{TID}-123456789012345-01")),
            TraceparentError::Length
        );
        // Same total length: parent-id one too long, flags one too short.
        assert_eq!(
            err(&format!("00-{TID}-12345678901234567-1")),
            TraceparentError::Delimiter
        );
    }

    #[test]
    fn flags_rules() {
        assert_eq!(
            err(&format!("00-{TID}-1234567890123456-.0")),
            TraceparentError::Flags
        );
        assert_eq!(
            err(&format!("00-{TID}-1234567890123456-0.")),
            TraceparentError::Flags
        );
        assert_eq!(
            err(&format!("00-{TID}-1234567890123456-001")),
            TraceparentError::Length
        );
        assert_eq!(
            err(&format!("00-{TID}-1234567890123456-1")),
            TraceparentError::Length
        );
    }

    #[test]
    fn non_utf8_and_empty() {
        assert_eq!(
            Traceparent::parse_bytes(&[0xff; 55]),
            Err(TraceparentError::Version)
        );
        assert_eq!(err(""), TraceparentError::Length);
    }

    #[test]
    fn repeated_and_missing_values() {
        let a = VALID.as_bytes();
        assert_eq!(
            Traceparent::from_values([a, a]),
            Err(TraceparentError::Repeated)
        );
        assert_eq!(
            Traceparent::from_values(std::iter::empty::<&[u8]>()),
            Err(TraceparentError::Missing)
        );
        assert!(Traceparent::from_values([a]).is_ok());
    }

    #[test]
    fn span_context_round_trip() {
        let tp = Traceparent::parse(&format!("00-{TID}-1234567890123456-02")).unwrap();
        let sc = tp.to_span_context(TraceState::NONE);
        assert!(sc.is_remote());
        assert!(!sc.is_sampled());
        assert_eq!(Traceparent::from_span_context(&sc).unwrap(), tp);
        assert_eq!(
            Traceparent::from_span_context(&SpanContext::empty_context()),
            None
        );
        assert_eq!(tp.to_header_value(), tp.to_string().as_str());
    }
}
