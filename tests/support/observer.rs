//! The observer: an AF_PACKET listener in a namespace that records every ARP reply, gratuitous
//! ARP and Neighbor Advertisement for one VIP with the MAC it advertises and a monotonic
//! timestamp, plus an optional prober that asks "who has the VIP?" every 100 ms (ARP request or
//! Neighbor Solicitation) so that whoever answers is seen continuously.

use std::ffi::CString;
use std::io;
use std::mem;
use std::net::{IpAddr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use egressc::agent::frames::{
    ARP_REPLY, ARP_REQUEST, Arp, ETHERTYPE_ARP, ETHERTYPE_IPV6, ICMPV6_NEIGHBOR_ADVERTISEMENT,
    ICMPV6_NEIGHBOR_SOLICITATION, MacAddr, NDP_OPT_SOURCE_LLADDR, NDP_OPT_TARGET_LLADDR,
    icmpv6_frame,
};

use super::netns::{Host, LAN_IF, enter};

const PROBE_INTERVAL: Duration = Duration::from_millis(100);
const ETH_P_ALL: u16 = 0x0003;
const PACKET_OUTGOING: u8 = 4;

/// What kind of frame claimed the VIP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// An ARP reply to a request (sender IP is the VIP, target is someone else).
    ArpReply,
    /// A gratuitous ARP (request or reply whose sender and target IP are both the VIP).
    GratuitousArp { reply: bool },
    /// A Neighbor Advertisement for the VIP.
    NeighborAdvert {
        solicited: bool,
        override_flag: bool,
    },
}

/// One frame that said "the VIP is at `mac`".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sighting {
    pub at: Instant,
    pub mac: MacAddr,
    pub claim: Claim,
}

/// A running observer; stops when dropped.
pub struct Observer {
    stop: Arc<AtomicBool>,
    probing: Arc<AtomicBool>,
    sightings: Arc<Mutex<Vec<Sighting>>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Observer {
    /// Starts listening on `host`'s LAN port for claims on `vip`; probing starts off.
    pub fn start(host: &Host, vip: IpAddr) -> io::Result<Observer> {
        let stop = Arc::new(AtomicBool::new(false));
        let probing = Arc::new(AtomicBool::new(false));
        let sightings = Arc::new(Mutex::new(Vec::new()));
        let probe = probe_frame(host, vip);
        let (ns, own_mac) = (host.ns.name.clone(), host.mac);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let (stop, probing, sightings) = (stop.clone(), probing.clone(), sightings.clone());
            std::thread::spawn(move || -> io::Result<()> {
                let opened = enter(&ns).and_then(|()| open_listener(LAN_IF));
                let socket = match opened {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                        return Err(e);
                    }
                };
                let mut last_probe: Option<Instant> = None;
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if probing.load(Ordering::Relaxed)
                        && last_probe.is_none_or(|t| t.elapsed() >= PROBE_INTERVAL)
                    {
                        socket.send(&probe)?;
                        last_probe = Some(Instant::now());
                    }
                    if let Some(frame) = socket.recv(&mut buf)?
                        && let Some((mac, claim)) = parse_claim(frame, vip)
                        && mac != own_mac
                        && let Ok(mut v) = sightings.lock()
                    {
                        v.push(Sighting {
                            at: Instant::now(),
                            mac,
                            claim,
                        });
                    }
                }
                Ok(())
            })
        };
        ready_rx
            .recv()
            .map_err(|_| io::Error::other("observer thread died"))??;
        Ok(Observer {
            stop,
            probing,
            sightings,
            thread: Some(thread),
        })
    }

    /// Turns the 100 ms prober on or off.
    pub fn set_probing(&self, on: bool) {
        self.probing.store(on, Ordering::Relaxed);
    }

    /// Everything recorded so far, in arrival order.
    pub fn sightings(&self) -> Vec<Sighting> {
        self.sightings.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Waits up to `timeout` for a sighting of `mac` that arrives after `since`.
    pub fn wait_for(&self, mac: MacAddr, since: Instant, timeout: Duration) -> Option<Sighting> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .sightings()
                .into_iter()
                .find(|s| s.mac == mac && s.at >= since);
            if found.is_some() || Instant::now() >= deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the listener and surfaces any socket error it hit.
    pub fn stop(mut self) -> io::Result<Vec<Sighting>> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join()
                .map_err(|_| io::Error::other("observer thread panicked"))??;
        }
        Ok(self.sightings())
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Groups sightings into runs of the same MAC, in time order: `[(mac, first, last)]`. Exactly
/// one run per owner, in order, means two MACs never answered for the VIP at the same time.
pub fn ownership_runs(sightings: &[Sighting]) -> Vec<(MacAddr, Instant, Instant)> {
    let mut sorted = sightings.to_vec();
    sorted.sort_by_key(|s| s.at);
    let mut runs: Vec<(MacAddr, Instant, Instant)> = Vec::new();
    for s in sorted {
        match runs.last_mut() {
            Some((mac, _, last)) if *mac == s.mac => *last = s.at,
            _ => runs.push((s.mac, s.at, s.at)),
        }
    }
    runs
}

/// The first pair of claims by two distinct MACs less than `window` apart, if any: "never two
/// owners within one window" holds when this is `None`.
pub fn two_owners_within(sightings: &[Sighting], window: Duration) -> Option<(Sighting, Sighting)> {
    let mut sorted = sightings.to_vec();
    sorted.sort_by_key(|s| s.at);
    // In time order it suffices to compare each claim with the latest claim of another MAC.
    let mut last_by_other: Option<Sighting> = None;
    let mut prev: Option<Sighting> = None;
    for s in sorted {
        if let Some(p) = prev
            && p.mac != s.mac
        {
            last_by_other = Some(p);
        }
        if let Some(o) = last_by_other
            && o.mac != s.mac
            && s.at.duration_since(o.at) < window
        {
            return Some((o, s));
        }
        prev = Some(s);
    }
    None
}

/// The first pair of *answers to probes* (ARP replies, solicited NAs) from two distinct MACs
/// less than `window` apart: two nodes answering one probe. Unsolicited announcements are left
/// out — a graceful hand-over can put the new holder's first gratuitous ARP a few ms after the
/// old holder's last reply (release, grant and acquire are three quick API writes) without the
/// two ever holding the VIP together; [`ownership_runs`] still orders every claim.
pub fn two_answers_within(
    sightings: &[Sighting],
    window: Duration,
) -> Option<(Sighting, Sighting)> {
    let answers: Vec<Sighting> = sightings
        .iter()
        .filter(|s| {
            matches!(
                s.claim,
                Claim::ArpReply
                    | Claim::NeighborAdvert {
                        solicited: true,
                        ..
                    }
            )
        })
        .copied()
        .collect();
    two_owners_within(&answers, window)
}

/// "Who has the VIP?" from the observer: an ARP request, or a Neighbor Solicitation to the
/// VIP's solicited-node group with the observer's link-layer address.
fn probe_frame(host: &Host, vip: IpAddr) -> Vec<u8> {
    match vip {
        IpAddr::V4(vip) => Arp {
            eth_dst: MacAddr::BROADCAST,
            operation: ARP_REQUEST,
            sender_mac: host.mac,
            sender_ip: host.ip4,
            target_mac: MacAddr::ZERO,
            target_ip: vip,
        }
        .to_frame(),
        IpAddr::V6(vip) => {
            let o = vip.octets();
            let group = Ipv6Addr::from([
                0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
            ]);
            let mut ns = vec![ICMPV6_NEIGHBOR_SOLICITATION, 0, 0, 0, 0, 0, 0, 0];
            ns.extend_from_slice(&o);
            ns.extend_from_slice(&[NDP_OPT_SOURCE_LLADDR, 1]);
            ns.extend_from_slice(&host.mac.0);
            icmpv6_frame(
                MacAddr::ipv6_multicast(group),
                host.mac,
                host.ip6,
                group,
                &ns,
            )
        }
    }
}

/// If `frame` claims `vip`, the MAC it claims it for and how.
pub fn parse_claim(frame: &[u8], vip: IpAddr) -> Option<(MacAddr, Claim)> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    match (ethertype, vip) {
        (ETHERTYPE_ARP, IpAddr::V4(vip)) => {
            let arp = frame.get(14..42)?;
            let op = u16::from_be_bytes([arp[6], arp[7]]);
            let sha = MacAddr(arp[8..14].try_into().ok()?);
            let (spa, tpa) = (&arp[14..18], &arp[24..28]);
            if spa != vip.octets() {
                return None;
            }
            let gratuitous = tpa == spa;
            match (op, gratuitous) {
                (ARP_REPLY, false) => Some((sha, Claim::ArpReply)),
                (ARP_REPLY, true) => Some((sha, Claim::GratuitousArp { reply: true })),
                (ARP_REQUEST, true) => Some((sha, Claim::GratuitousArp { reply: false })),
                _ => None,
            }
        }
        (ETHERTYPE_IPV6, IpAddr::V6(vip)) => {
            let (ip6, icmp) = (frame.get(14..54)?, frame.get(54..)?);
            if ip6[6] != 58 || *icmp.first()? != ICMPV6_NEIGHBOR_ADVERTISEMENT {
                return None;
            }
            if icmp.get(8..24)? != vip.octets() {
                return None;
            }
            let flags = *icmp.get(4)?;
            let tlla = icmp.get(24..32).filter(|o| o[0] == NDP_OPT_TARGET_LLADDR);
            let mac = match tlla {
                Some(o) => MacAddr(o[2..8].try_into().ok()?),
                None => MacAddr(frame.get(6..12)?.try_into().ok()?),
            };
            Some((
                mac,
                Claim::NeighborAdvert {
                    solicited: flags & 0x40 != 0,
                    override_flag: flags & 0x20 != 0,
                },
            ))
        }
        _ => None,
    }
}

/// An AF_PACKET socket receiving every frame on one interface, with a short receive timeout.
struct Listener {
    fd: OwnedFd,
    ifindex: i32,
}

fn open_listener(ifname: &str) -> io::Result<Listener> {
    let cname = CString::new(ifname).map_err(io::Error::other)?;
    // SAFETY: valid NUL-terminated string.
    let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) } as i32;
    if ifindex == 0 {
        return Err(io::Error::last_os_error());
    }
    let proto = ETH_P_ALL.to_be();
    // SAFETY: plain socket(2); checked below.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(proto),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: zeroed sockaddr_ll is valid; pointers/lengths below are correct.
    unsafe {
        let mut addr: libc::sockaddr_ll = mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = proto;
        addr.sll_ifindex = ifindex;
        if libc::bind(
            fd.as_raw_fd(),
            (&raw const addr).cast(),
            mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: 20_000,
        };
        if libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const timeout).cast(),
            mem::size_of::<libc::timeval>() as libc::socklen_t,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(Listener { fd, ifindex })
}

impl Listener {
    /// The next incoming frame, or `None` on timeout; frames this host sent are skipped.
    fn recv<'a>(&self, buf: &'a mut [u8]) -> io::Result<Option<&'a [u8]>> {
        // SAFETY: zeroed sockaddr_ll is valid; buffer and address lengths are correct.
        let mut from: libc::sockaddr_ll = unsafe { mem::zeroed() };
        let mut len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        let n = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&raw mut from).cast(),
                &mut len,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            };
        }
        if from.sll_pkttype == PACKET_OUTGOING {
            return Ok(None);
        }
        Ok(buf.get(..n as usize))
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: zeroed sockaddr_ll is valid; pointers/lengths are correct.
        let sent = unsafe {
            let mut to: libc::sockaddr_ll = mem::zeroed();
            to.sll_family = libc::AF_PACKET as u16;
            to.sll_ifindex = self.ifindex;
            to.sll_halen = 6;
            to.sll_addr[..6].copy_from_slice(&frame[..6]);
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&raw const to).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
