//! Network namespaces for tests: creation with unique names, removal on drop (also on panic),
//! running code inside one, and the LAN topology of the failover tests.
//!
//! Code runs inside a namespace on a dedicated thread that calls `setns(CLONE_NEWNET)`: a thread
//! that did so stays in that namespace, and sockets (netlink, AF_PACKET, UDP) created on it
//! belong to it. Tokio runtimes are created on that thread, so rtnetlink's socket lands there
//! too. This keeps the tests single-process (no helper binary, no `ip netns exec`).
//! Topology is built with `ip`, which is fine for test support.

use std::fs::File;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use egressc::agent::frames::MacAddr;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Why namespace tests cannot run here, if they cannot.
pub fn unavailable() -> Option<String> {
    static REASON: OnceLock<Option<String>> = OnceLock::new();
    REASON
        .get_or_init(|| {
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } != 0 {
                return Some("not running as root".into());
            }
            match Command::new("ip").arg("-V").output() {
                Ok(o) if o.status.success() => {}
                _ => return Some("the `ip` command (iproute2) is missing".into()),
            }
            match Netns::new("probe") {
                Ok(_) => None,
                Err(e) => Some(format!("cannot create a network namespace: {e}")),
            }
        })
        .clone()
}

/// Returns early from a test when namespaces are unavailable, saying why; with
/// `EGRESSC_REQUIRE_NETNS=1` that is a failure instead. For tests returning `io::Result<()>`.
#[macro_export]
macro_rules! require_netns {
    () => {
        if let Some(why) = $crate::support::netns::unavailable() {
            if std::env::var("EGRESSC_REQUIRE_NETNS").as_deref() == Ok("1") {
                panic!("EGRESSC_REQUIRE_NETNS=1 but netns tests cannot run: {why}");
            }
            eprintln!("skipping netns test: {why}");
            return Ok(());
        }
    };
}

/// Runs `ip args…`, returning stdout; fails with stderr.
pub fn ip(args: &[&str]) -> io::Result<String> {
    let out = Command::new("ip").args(args).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A network namespace, deleted when dropped.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates `egc<pid>-<n>-<role>`.
    pub fn new(role: &str) -> io::Result<Netns> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("egc{}-{n}-{role}", std::process::id());
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Runs `ip -n <ns> args…`.
    pub fn ip(&self, args: &[&str]) -> io::Result<String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// Runs `f` on a thread that has entered this namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        std::thread::scope(|s| {
            s.spawn(|| {
                enter(&self.name)?;
                Ok(f())
            })
            .join()
            .map_err(|_| io::Error::other("thread inside the namespace panicked"))?
        })
    }

    /// Runs the future made by `f` on a current-thread tokio runtime inside this namespace.
    pub fn block_on<F: Future>(&self, f: impl FnOnce() -> F + Send) -> io::Result<F::Output>
    where
        F::Output: Send,
    {
        self.run(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            Ok(rt.block_on(f()))
        })?
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace also deletes its interfaces and their veth peers.
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Moves the calling thread into the named network namespace.
pub fn enter(name: &str) -> io::Result<()> {
    let file = File::open(format!("/run/netns/{name}"))?;
    // SAFETY: setns on a valid namespace fd; affects only the calling thread.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A host on the test LAN: its namespace and the addresses of its `eth0`.
#[derive(Debug)]
pub struct Host {
    pub ns: Netns,
    pub mac: MacAddr,
    pub ip4: Ipv4Addr,
    pub ip6: Ipv6Addr,
}

/// Interface name of every host's LAN port.
pub const LAN_IF: &str = "eth0";

/// Two gateway nodes and an observer on one bridge (in its own namespace):
/// 198.51.100.0/24 and 2001:db8::/64, node A .1/::1, node B .2/::2, observer .10/::a.
#[derive(Debug)]
pub struct Lan {
    pub a: Host,
    pub b: Host,
    pub observer: Host,
    pub lan: Netns,
}

impl Lan {
    pub fn new() -> io::Result<Lan> {
        let lan = Netns::new("lan")?;
        // No multicast snooping: NDP multicast must reach every port without MLD state.
        lan.ip(&[
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        lan.ip(&["link", "set", "br0", "up"])?;
        let a = Host::attach(&lan, "a", 1)?;
        let b = Host::attach(&lan, "b", 2)?;
        let observer = Host::attach(&lan, "o", 10)?;
        Ok(Lan {
            a,
            b,
            observer,
            lan,
        })
    }
}

impl Host {
    fn attach(lan: &Netns, role: &str, n: u8) -> io::Result<Host> {
        let ns = Netns::new(role)?;
        let mac = MacAddr([0x02, 0, 0, 0, 0, n]);
        let ip4 = Ipv4Addr::new(198, 51, 100, n);
        let ip6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(n));
        // Bridge-side port name; a bare "a" would be read by `ip` as the `address` keyword.
        let port = format!("port-{role}");
        lan.ip(&[
            "link", "add", &port, "type", "veth", "peer", "name", LAN_IF, "netns", &ns.name,
        ])?;
        lan.ip(&["link", "set", &port, "master", "br0", "up"])?;
        ns.ip(&["link", "set", LAN_IF, "address", &mac.to_string(), "up"])?;
        ns.ip(&["addr", "add", &format!("{ip4}/24"), "dev", LAN_IF])?;
        ns.ip(&["addr", "add", &format!("{ip6}/64"), "dev", LAN_IF, "nodad"])?;
        Ok(Host { ns, mac, ip4, ip6 })
    }

    /// The MAC this host's kernel has for `ip` in its neighbour cache, if any.
    pub fn neighbour_mac(&self, ip: &str) -> io::Result<Option<String>> {
        let out = self.ns.ip(&["neigh", "show", ip, "dev", LAN_IF])?;
        let mut words = out.split_whitespace();
        while let Some(w) = words.next() {
            if w == "lladdr" {
                return Ok(words.next().map(str::to_string));
            }
        }
        Ok(None)
    }
}
