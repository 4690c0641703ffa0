//! Hearing the LAN: an `AF_PACKET` receive socket on the VIP's interface, filtered in the
//! kernel to ARP (IPv4 VIPs) or ICMPv6 Neighbor Solicitations and Advertisements (IPv6 VIPs), so
//! a busy gateway's data traffic never reaches user space; and the claimant's probe round
//! (docs/lease-protocol.md, "Probing"). What the frames mean is decided in `conflict`.

use std::io;
use std::mem;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

use crate::agent::announce::PacketSocket;
use crate::agent::conflict::{ProbeOutcome, ProbeSchedule, Sighting, classify, probe_outcome};
use crate::agent::frames::{ETHERTYPE_ARP, ETHERTYPE_IPV6, MacAddr, arp_probe};
use crate::agent::frames::{dad_neighbor_solicitation, solicited_node_group};

const PACKET_OUTGOING: u8 = 4;
const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
const PACKET_MR_MULTICAST: libc::c_ushort = 0;

/// A receive socket for the frames that speak about one VIP's family on one interface.
#[derive(Debug)]
pub struct LanListener {
    fd: AsyncFd<OwnedFd>,
    vip: IpAddr,
}

impl LanListener {
    /// Opens the socket on `ifindex` in the calling thread's network namespace (needs
    /// `CAP_NET_RAW`); for an IPv6 VIP it also joins the VIP's solicited-node group on the
    /// link, where DAD probes for it are sent even when this node does not have the VIP.
    pub fn open(ifindex: u32, vip: IpAddr) -> io::Result<Self> {
        let ethertype = match vip {
            IpAddr::V4(_) => ETHERTYPE_ARP,
            IpAddr::V6(_) => ETHERTYPE_IPV6,
        };
        let protocol = ethertype.to_be();
        // SAFETY: plain socket(2) call; the result is checked before it is wrapped.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                i32::from(protocol),
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let ifindex = i32::try_from(ifindex)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ifindex out of range"))?;
        if vip.is_ipv6() {
            attach_ndp_filter(&fd)?;
        }
        // SAFETY: zeroed sockaddr_ll is valid; pointer and length match.
        let bound = unsafe {
            let mut addr: libc::sockaddr_ll = mem::zeroed();
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_protocol = protocol;
            addr.sll_ifindex = ifindex;
            libc::bind(
                fd.as_raw_fd(),
                (&raw const addr).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if bound != 0 {
            return Err(io::Error::last_os_error());
        }
        if let IpAddr::V6(ip) = vip {
            join_multicast(
                &fd,
                ifindex,
                MacAddr::ipv6_multicast(solicited_node_group(ip)),
            )?;
        }
        // SAFETY: `fd` is an open descriptor owned by the AsyncFd for its whole life; OwnedFd
        // always returns that same descriptor.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(LanListener { fd, vip })
    }

    /// The next frame from another host that speaks about the VIP.
    pub async fn next(&self) -> io::Result<Sighting> {
        let mut buf = [0u8; 2048];
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| recv(fd.get_ref(), &mut buf)) {
                Ok(Ok(Some(len))) => {
                    if let Some(sighting) = buf.get(..len).and_then(|f| classify(f, self.vip)) {
                        return Ok(sighting);
                    }
                }
                Ok(Ok(None)) => {}
                Ok(Err(error)) => return Err(error),
                Err(_would_block) => {}
            }
        }
    }
}

/// One `recvfrom`: the frame's length, or `None` for a frame this host sent.
fn recv(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<Option<usize>> {
    // SAFETY: zeroed sockaddr_ll is valid; buffer and address lengths are correct.
    let mut from: libc::sockaddr_ll = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    let n = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            0,
            (&raw mut from).cast(),
            &mut len,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((from.sll_pkttype != PACKET_OUTGOING).then_some(n as usize))
}

/// A classic BPF program keeping only ICMPv6 type 135/136 without extension headers (NDP never
/// carries any): `ldh [12]; jeq 0x86dd; ldb [20]; jeq 58; ldb [54]; jeq 135 or 136`.
fn attach_ndp_filter(fd: &OwnedFd) -> io::Result<()> {
    let op = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    const LD_H_ABS: u16 = 0x28;
    const LD_B_ABS: u16 = 0x30;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    let program = [
        op(LD_H_ABS, 0, 0, 12),
        op(JEQ_K, 0, 6, u32::from(ETHERTYPE_IPV6)),
        op(LD_B_ABS, 0, 0, 20),
        op(JEQ_K, 0, 4, 58),
        op(LD_B_ABS, 0, 0, 54),
        op(JEQ_K, 1, 0, 135),
        op(JEQ_K, 0, 1, 136),
        op(RET_K, 0, 0, 0xffff),
        op(RET_K, 0, 0, 0),
    ];
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `program`, which outlives the call; the kernel copies it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&raw const fprog).cast(),
            mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes the link accept frames for `group` while the socket is open.
fn join_multicast(fd: &OwnedFd, ifindex: i32, group: MacAddr) -> io::Result<()> {
    // SAFETY: packet_mreq is plain old data; all-zero is valid.
    let mut mreq: libc::packet_mreq = unsafe { mem::zeroed() };
    mreq.mr_ifindex = ifindex;
    mreq.mr_type = PACKET_MR_MULTICAST;
    mreq.mr_alen = 6;
    mreq.mr_address[..6].copy_from_slice(&group.0);
    // SAFETY: pointer and length describe `mreq`.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            PACKET_ADD_MEMBERSHIP,
            (&raw const mreq).cast(),
            mem::size_of::<libc::packet_mreq>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The probe frame for `vip` from `mac`: an ARP probe or a DAD Neighbor Solicitation.
pub fn probe_frame(vip: IpAddr, mac: MacAddr) -> Vec<u8> {
    match vip {
        IpAddr::V4(ip) => arp_probe(mac, ip),
        IpAddr::V6(ip) => dad_neighbor_solicitation(mac, ip),
    }
}

/// One probe round for `vip` on `ifindex` from `mac`: listens first, sends the probes on
/// `schedule`, and returns as soon as another MAC answers, claims or probes — or
/// [`ProbeOutcome::Free`] when the round ends in silence.
pub async fn probe_round(
    ifindex: u32,
    mac: MacAddr,
    vip: IpAddr,
    schedule: &ProbeSchedule,
) -> io::Result<ProbeOutcome> {
    let listener = LanListener::open(ifindex, vip)?;
    let sender = PacketSocket::open(ifindex)?;
    let frame = probe_frame(vip, mac);
    let start = Instant::now();
    let end = start + schedule.round();
    let mut due = schedule.offsets().into_iter().map(|o| start + o).peekable();
    loop {
        while due.peek().is_some_and(|at| *at <= Instant::now()) {
            due.next();
            sender.send(&frame)?;
        }
        let wake = due.peek().copied().unwrap_or(end).min(end);
        if Instant::now() >= end {
            return Ok(ProbeOutcome::Free);
        }
        tokio::select! {
            heard = listener.next() => {
                let outcome = probe_outcome(&[heard?], mac);
                if outcome != ProbeOutcome::Free {
                    return Ok(outcome);
                }
            }
            () = tokio::time::sleep_until(wake) => {}
        }
    }
}
