//! Announcing a VIP that has just been added: gratuitous ARP (request and reply) or an
//! unsolicited Neighbor Advertisement, sent at once and then in a short burst, as MetalLB does
//! (every 1.1 s for 5 s by default), so routers and peers switch their neighbour entry to the
//! new node's MAC without waiting for their entry to time out.
//!
//! Frames go out through an `AF_PACKET` socket bound to nothing (send-only, protocol 0), so the
//! agent needs `CAP_NET_RAW` and nothing is received. The schedule is pure; sending is a thin
//! shell. The burst stops as soon as the caller says the VIP is no longer held, so a node that
//! lost its Lease never announces again.

use std::io;
use std::mem;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::agent::frames::{
    MacAddr, gratuitous_arp_reply, gratuitous_arp_request, unsolicited_neighbor_advertisement,
};

/// When announcements are repeated after the VIP is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BurstSchedule {
    /// Time between rounds; zero sends a single round.
    pub interval: Duration,
    /// Rounds start while their offset is below this.
    pub duration: Duration,
}

impl Default for BurstSchedule {
    /// Every 1.1 s for 5 s (rounds at 0, 1.1, 2.2, 3.3 and 4.4 s), like MetalLB.
    fn default() -> Self {
        BurstSchedule {
            interval: Duration::from_millis(1100),
            duration: Duration::from_secs(5),
        }
    }
}

impl BurstSchedule {
    /// Offsets from the moment the VIP was added at which a round is sent; always starts at 0.
    pub fn offsets(&self) -> Vec<Duration> {
        let mut out = vec![Duration::ZERO];
        if self.interval.is_zero() {
            return out;
        }
        let mut next = self.interval;
        while next < self.duration {
            out.push(next);
            next += self.interval;
        }
        out
    }
}

/// The frames of one announcement round: for IPv4 the gratuitous ARP request and reply (peers
/// differ in which form they honour), for IPv6 one unsolicited NA with the override flag.
pub fn announcement_frames(vip: IpAddr, mac: MacAddr) -> Vec<Vec<u8>> {
    match vip {
        IpAddr::V4(ip) => vec![
            gratuitous_arp_request(mac, ip),
            gratuitous_arp_reply(mac, ip),
        ],
        IpAddr::V6(ip) => vec![unsolicited_neighbor_advertisement(mac, ip)],
    }
}

/// A send-only raw Ethernet socket on one interface.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
}

impl PacketSocket {
    /// Opens the socket in the calling thread's network namespace (needs `CAP_NET_RAW`).
    pub fn open(ifindex: u32) -> io::Result<Self> {
        // SAFETY: plain socket(2) call; the result is checked before it is wrapped.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a freshly created descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(PacketSocket { fd, ifindex })
    }

    /// Sends one complete Ethernet frame (destination MAC and EtherType are taken from it).
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        if frame.len() < 14 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "frame shorter than an Ethernet header",
            ));
        }
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        // Already in network byte order in the frame; keep the bytes as they are.
        addr.sll_protocol = u16::from_ne_bytes([frame[12], frame[13]]);
        addr.sll_ifindex = i32::try_from(self.ifindex)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ifindex out of range"))?;
        addr.sll_halen = 6;
        addr.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: the buffer and address pointers are valid for the lengths given.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&raw const addr).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Where announcement frames go: a [`PacketSocket`], or a recorder in tests.
pub trait FrameSink {
    /// Sends one complete Ethernet frame.
    fn send(&self, frame: &[u8]) -> io::Result<()>;
}

impl FrameSink for PacketSocket {
    fn send(&self, frame: &[u8]) -> io::Result<()> {
        PacketSocket::send(self, frame)
    }
}

/// Sends `frames` once per round of `schedule`, checking `still_held` before every round, and
/// returns how many rounds went out. The first round is sent immediately.
pub async fn announce_burst(
    socket: &impl FrameSink,
    frames: &[Vec<u8>],
    schedule: BurstSchedule,
    mut still_held: impl FnMut() -> bool,
) -> io::Result<usize> {
    let start = tokio::time::Instant::now();
    let mut rounds = 0;
    for offset in schedule.offsets() {
        tokio::time::sleep_until(start + offset).await;
        if !still_held() {
            break;
        }
        for frame in frames {
            socket.send(frame)?;
        }
        rounds += 1;
    }
    Ok(rounds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_burst_matches_metallb() {
        let ms: Vec<u128> = BurstSchedule::default()
            .offsets()
            .iter()
            .map(Duration::as_millis)
            .collect();
        assert_eq!(ms, vec![0, 1100, 2200, 3300, 4400]);
    }

    #[test]
    fn zero_interval_sends_once_and_short_duration_only_the_first_round() {
        let once = BurstSchedule {
            interval: Duration::ZERO,
            duration: Duration::from_secs(5),
        };
        assert_eq!(once.offsets(), vec![Duration::ZERO]);
        let short = BurstSchedule {
            interval: Duration::from_secs(2),
            duration: Duration::from_secs(1),
        };
        assert_eq!(short.offsets(), vec![Duration::ZERO]);
    }

    #[test]
    fn ipv4_rounds_carry_request_and_reply_ipv6_one_na() {
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let v4 = announcement_frames(IpAddr::from([198, 51, 100, 1]), mac);
        assert_eq!(v4.len(), 2);
        assert_eq!((v4[0][21], v4[1][21]), (1, 2)); // ARP opcodes: request, reply
        let v6 = announcement_frames("2001:db8::1".parse().unwrap_or(IpAddr::from([0; 16])), mac);
        assert_eq!(v6.len(), 1);
        assert_eq!(v6[0][54], 136); // ICMPv6 type: NA
    }

    /// Records frames with the (paused, virtual) tokio time they were sent at.
    #[derive(Default)]
    struct Recorder(
        std::sync::Mutex<Vec<(Duration, Vec<u8>)>>,
        Option<tokio::time::Instant>,
    );

    impl FrameSink for Recorder {
        fn send(&self, frame: &[u8]) -> io::Result<()> {
            let at = self.1.map(|s| s.elapsed()).unwrap_or_default();
            if let Ok(mut v) = self.0.lock() {
                v.push((at, frame.to_vec()));
            }
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn burst_sends_every_round_on_schedule() -> io::Result<()> {
        let sink = Recorder(Default::default(), Some(tokio::time::Instant::now()));
        let frames = vec![vec![1u8; 14], vec![2u8; 14]];
        let rounds = announce_burst(&sink, &frames, BurstSchedule::default(), || true).await?;
        assert_eq!(rounds, 5);
        let sent = sink.0.into_inner().unwrap_or_default();
        let times: Vec<u128> = sent.iter().map(|(t, _)| t.as_millis()).collect();
        assert_eq!(
            times,
            vec![0, 0, 1100, 1100, 2200, 2200, 3300, 3300, 4400, 4400]
        );
        assert!(
            sent.chunks(2)
                .all(|r| r[0].1 == frames[0] && r[1].1 == frames[1])
        );
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn burst_stops_when_the_vip_is_no_longer_held() -> io::Result<()> {
        let sink = Recorder::default();
        let mut checks = 0;
        let rounds = announce_burst(&sink, &[vec![0u8; 14]], BurstSchedule::default(), || {
            checks += 1;
            checks <= 2
        })
        .await?;
        assert_eq!(rounds, 2);
        assert_eq!(sink.0.into_inner().map(|v| v.len()).unwrap_or(0), 2);
        Ok(())
    }
}
