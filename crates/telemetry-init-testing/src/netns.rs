//! A non-loopback client for tests: a network namespace of the test's own,
//! joined to this one by a veth pair, removed on drop.
//!
//! Loopback-only surfaces (the receiver, a demo's `/debug/telemetry`) must
//! be shown refusing a client that is *not* on loopback. Such a client must
//! not be this machine's real interfaces, so the test makes its own little
//! network: `ip netns add`, a veth pair with a private `/30`, and sockets
//! opened from inside the namespace. A server bound to `0.0.0.0` in the
//! test's namespace is reached at [`RemotePeer::host_ip`] and sees the peer
//! [`RemotePeer::peer_ip`].
//!
//! Needs Linux, the `ip` command (Debian `iproute2`) and `CAP_NET_ADMIN`
//! (root, as CI runs). [`RemotePeer::create`] returns an error saying which
//! of these is missing rather than skipping.
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! use telemetry_init_testing::netns::RemotePeer;
//!
//! let peer = RemotePeer::create()?;
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await?;
//! let port = listener.local_addr()?.port();
//! let _stream = peer.connect((peer.host_ip(), port).into()).await?;
//! let (_, seen) = listener.accept().await?;
//! assert_eq!(seen.ip(), peer.peer_ip());
//! # Ok(()) }
//! ```

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A network namespace with a veth pair to the current one; see the
/// [module docs](self).
#[derive(Debug)]
pub struct RemotePeer {
    name: String,
    host_ip: Ipv4Addr,
    peer_ip: Ipv4Addr,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip").args(args).output().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("running `ip` (Debian package iproute2): {e}"),
        )
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "`ip {}` failed (creating a network namespace needs CAP_NET_ADMIN, e.g. root): {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

impl RemotePeer {
    /// Creates the namespace `ti-<pid>-<n>`, a veth pair, and the addresses
    /// `10.213.x.y/30` on both ends.
    pub fn create() -> io::Result<Self> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // Unique per process and per peer; a /30 needs 4 addresses.
        let slot = (pid.wrapping_mul(64) + n) % (1 << 14);
        let base = u32::from(Ipv4Addr::new(10, 213, 0, 0)) + slot * 4;
        let host_ip = Ipv4Addr::from(base + 1);
        let peer_ip = Ipv4Addr::from(base + 2);
        let name = format!("ti-{pid}-{n}");
        // Interface names are at most 15 bytes.
        let (host_if, peer_if) = (format!("tih{slot}"), format!("tip{slot}"));
        let peer = Self {
            name,
            host_ip,
            peer_ip,
        };
        ip(&["netns", "add", &peer.name])?;
        // From here on, Drop removes the namespace and with it the pair.
        let host_cidr = format!("{host_ip}/30");
        let peer_cidr = format!("{peer_ip}/30");
        let _ = ip(&["link", "del", &host_if]); // a leftover of a killed run
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &peer_if,
        ])?;
        ip(&["link", "set", &peer_if, "netns", &peer.name])?;
        ip(&["addr", "add", &host_cidr, "dev", &host_if])?;
        ip(&["link", "set", &host_if, "up"])?;
        let ns = |args: &[&str]| {
            let mut all = vec!["-n", peer.name.as_str()];
            all.extend_from_slice(args);
            ip(&all)
        };
        ns(&["addr", "add", &peer_cidr, "dev", &peer_if])?;
        ns(&["link", "set", &peer_if, "up"])?;
        ns(&["link", "set", "lo", "up"])?;
        Ok(peer)
    }

    /// This namespace's end of the pair: where the peer reaches servers
    /// bound to `0.0.0.0` (or to this address).
    pub fn host_ip(&self) -> IpAddr {
        self.host_ip.into()
    }

    /// The peer's address, as servers here see it.
    pub fn peer_ip(&self) -> IpAddr {
        self.peer_ip.into()
    }

    /// Opens a TCP connection to `addr` from inside the namespace: the
    /// socket is created on a short-lived thread that joined it (a socket
    /// keeps the namespace it was made in; the thread ends, so no pooled
    /// thread is left in the wrong namespace).
    pub async fn connect(&self, addr: SocketAddr) -> io::Result<tokio::net::TcpStream> {
        let path = format!("/var/run/netns/{}", self.name);
        let connect = move || -> io::Result<std::net::TcpStream> {
            let ns = std::fs::File::open(&path)?;
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| io::Error::other(format!("setns {path}: {e}")))?;
            std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(5))
        };
        let std = tokio::task::spawn_blocking(move || {
            std::thread::spawn(connect)
                .join()
                .map_err(|_| io::Error::other("the connecting thread panicked"))?
        })
        .await
        .map_err(io::Error::other)??;
        std.set_nonblocking(true)?;
        tokio::net::TcpStream::from_std(std)
    }
}

impl Drop for RemotePeer {
    fn drop(&mut self) {
        // Deleting the namespace deletes the veth pair.
        let _ = ip(&["netns", "del", &self.name]);
    }
}
