//! Request ids (`x-request-id`): sanitizing incoming values and generating
//! new ones.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderValue;

/// Maximum accepted length of an incoming request id.
///
/// ```
/// use telemetry_init_propagation::{request_id::MAX_REQUEST_ID_LEN, RequestId};
///
/// assert!(RequestId::sanitize_bytes("a".repeat(MAX_REQUEST_ID_LEN + 1).as_bytes()).is_none());
/// ```
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// A request id: 1 to 128 visible ASCII characters. Cheap to clone (shared).
///
/// ```
/// use http::HeaderValue;
/// use telemetry_init_propagation::RequestId;
///
/// let id = RequestId::sanitize(&HeaderValue::from_static("req-42")).unwrap();
/// assert_eq!(id.as_str(), "req-42");
/// assert!(RequestId::sanitize(&HeaderValue::from_static("has space")).is_none());
///
/// let fresh = RequestId::generate();
/// assert_eq!(fresh.as_str().len(), 32);
/// assert_ne!(fresh, RequestId::generate());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// Accepts an incoming header value if it is 1 to 128 visible ASCII
    /// characters (`!` to `~`), else `None` (the caller generates one).
    ///
    /// WHY so strict: the id is echoed into logs and response headers, so
    /// anything that could break a log line or smuggle data is refused rather
    /// than escaped.
    ///
    /// ```
    /// use http::HeaderValue;
    /// use telemetry_init_propagation::RequestId;
    ///
    /// assert!(RequestId::sanitize(&HeaderValue::from_static("4f1c-9a")).is_some());
    /// assert!(RequestId::sanitize(&HeaderValue::from_static("")).is_none());
    /// ```
    pub fn sanitize(value: &HeaderValue) -> Option<Self> {
        Self::sanitize_bytes(value.as_bytes())
    }

    /// Like [`RequestId::sanitize`], for raw bytes.
    ///
    /// ```
    /// use telemetry_init_propagation::RequestId;
    ///
    /// assert!(RequestId::sanitize_bytes(b"abc").is_some());
    /// assert!(RequestId::sanitize_bytes(b"a\nb").is_none());
    /// ```
    pub fn sanitize_bytes(value: &[u8]) -> Option<Self> {
        if value.is_empty()
            || value.len() > MAX_REQUEST_ID_LEN
            || !value.iter().all(|b| b.is_ascii_graphic())
        {
            return None;
        }
        std::str::from_utf8(value)
            .ok()
            .map(|s| RequestId(Arc::from(s)))
    }

    /// A new id: 32 lowercase hex digits (128 random bits) from a per-thread
    /// SplitMix64 generator seeded from the process's random hasher keys. No
    /// system call per id.
    ///
    /// ```
    /// use telemetry_init_propagation::RequestId;
    ///
    /// let id = RequestId::generate();
    /// assert!(id.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
    /// ```
    pub fn generate() -> Self {
        let hi = next_random();
        let lo = next_random();
        let mut buf = [0u8; 32];
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let v = (u128::from(hi) << 64) | u128::from(lo);
        for (i, slot) in buf.iter_mut().enumerate() {
            let shift = 124 - 4 * i;
            *slot = HEX[((v >> shift) & 0xf) as usize];
        }
        // Hex digits are always valid UTF-8.
        RequestId(Arc::from(std::str::from_utf8(&buf).unwrap_or("0")))
    }

    /// The id as text.
    ///
    /// ```
    /// use telemetry_init_propagation::RequestId;
    ///
    /// assert_eq!(RequestId::sanitize_bytes(b"abc").unwrap().as_str(), "abc");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a header value.
    ///
    /// ```
    /// use telemetry_init_propagation::RequestId;
    ///
    /// assert_eq!(RequestId::sanitize_bytes(b"abc").unwrap().to_header_value(), "abc");
    /// ```
    pub fn to_header_value(&self) -> HeaderValue {
        // Only visible ASCII is ever stored, so this cannot fail.
        HeaderValue::from_str(&self.0).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
    }
}

/// Free-function form of [`RequestId::sanitize`].
///
/// ```
/// use http::HeaderValue;
///
/// assert!(telemetry_init_propagation::sanitize(&HeaderValue::from_static("abc")).is_some());
/// ```
pub fn sanitize(value: &HeaderValue) -> Option<RequestId> {
    RequestId::sanitize(value)
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RequestId").field(&&*self.0).finish()
    }
}

impl AsRef<str> for RequestId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

static THREAD_COUNTER: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    // RandomState carries OS-random keys; mixing in a process-wide counter
    // makes every thread's stream distinct even if keys were reused.
    let mut h = RandomState::new().build_hasher();
    h.write_u64(THREAD_COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

fn next_random() -> u64 {
    STATE.with(|s| {
        let x = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(x);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn accepts_visible_ascii_up_to_128() {
        let max = "a".repeat(128);
        assert_eq!(
            RequestId::sanitize_bytes(max.as_bytes()).unwrap().as_str(),
            max
        );
        assert!(RequestId::sanitize_bytes(b"!~").is_some());
    }

    #[test]
    fn rejects_empty_long_space_control_and_non_ascii() {
        assert!(RequestId::sanitize_bytes(b"").is_none());
        assert!(RequestId::sanitize_bytes("a".repeat(129).as_bytes()).is_none());
        assert!(RequestId::sanitize_bytes(b"a b").is_none());
        assert!(RequestId::sanitize_bytes(b"a\tb").is_none());
        assert!(RequestId::sanitize_bytes(b"a\x7f").is_none());
        assert!(RequestId::sanitize_bytes("é".as_bytes()).is_none());
        assert!(sanitize(&HeaderValue::from_bytes(b"\xff").unwrap()).is_none());
    }

    #[test]
    fn generated_ids_are_hex_and_unique() {
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let id = RequestId::generate();
            assert_eq!(id.as_str().len(), 32);
            assert!(id.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn generated_ids_are_unique_across_threads() {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| (0..1000).map(|_| RequestId::generate()).collect::<Vec<_>>())
            })
            .collect();
        let mut seen = HashSet::new();
        for h in handles {
            for id in h.join().unwrap() {
                assert!(seen.insert(id));
            }
        }
        assert_eq!(seen.len(), 4000);
    }

    #[test]
    fn generated_ids_sanitize_to_themselves() {
        let id = RequestId::generate();
        assert_eq!(RequestId::sanitize(&id.to_header_value()), Some(id));
    }
}
