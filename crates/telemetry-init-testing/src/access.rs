//! Who may talk to the receiver and to debug endpoints built on it, and how
//! much a client may send.
//!
//! Telemetry holds client addresses, user agents, paths and log fields of
//! every request the service saw: only someone on the machine itself should
//! read it, unless the operator says otherwise. The check is a pure function
//! of the peer address, so any server (the receiver's, a demo's debug route)
//! applies the same rule:
//!
//! ```
//! use std::net::IpAddr;
//! use telemetry_init_testing::access::peer_allowed;
//!
//! let local: IpAddr = "127.0.0.1".parse().unwrap();
//! let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
//! let remote: IpAddr = "192.0.2.7".parse().unwrap();
//! assert!(peer_allowed(local, false));
//! assert!(peer_allowed(mapped, false));
//! assert!(!peer_allowed(remote, false));
//! assert!(peer_allowed(remote, true)); // explicitly opened
//! ```

use std::net::IpAddr;

/// Default of [`ReceiverBuilder::max_body_bytes`](crate::ReceiverBuilder::max_body_bytes):
/// [`codec::MAX_MESSAGE_BYTES`](crate::codec::MAX_MESSAGE_BYTES), 16 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = crate::codec::MAX_MESSAGE_BYTES;

/// The answer to a refused non-loopback client.
pub const REMOTE_REFUSED: &str =
    "refused: only loopback clients are served (the receiver must be explicitly opened to others)";

/// Whether a client at `peer` may be served: loopback addresses (IPv4
/// `127.0.0.0/8`, IPv6 `::1`, and IPv4-mapped loopback `::ffff:127.x.y.z`)
/// always, anyone else only when `allow_remote`.
pub fn peer_allowed(peer: IpAddr, allow_remote: bool) -> bool {
    allow_remote || peer.to_canonical().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_unless_opened() {
        for ok in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert!(peer_allowed(ok.parse().unwrap(), false), "{ok}");
        }
        for no in [
            "0.0.0.0",
            "10.0.0.1",
            "192.0.2.7",
            "::",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!peer_allowed(no.parse().unwrap(), false), "{no}");
            assert!(peer_allowed(no.parse().unwrap(), true), "{no}");
        }
    }
}
