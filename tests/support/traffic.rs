//! The lab's pod traffic and what the external host saw (docs/arch/datapath-lab.md).
//!
//! The pod sends one UDP datagram every 10 ms (payload: a big-endian sequence number) to the
//! external host, which records (arrival time, source IP, seq) and echoes the datagram back to
//! its source, so an echo needs the source address reachable by ARP on the LAN and the
//! gateway's NAT state. A packet is **delivered** when it reached the external host from an
//! allowed source *and* its echo came back to the pod. The **blackout** is the longest stretch
//! of send time in which no sent packet was delivered; a **wrong-source** packet is one that
//! reached the external host from any other source. [`judge`] is pure.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::netns::enter;

/// Interval between two pod packets.
pub const SEND_INTERVAL: Duration = Duration::from_millis(10);
/// The external host's UDP echo port.
pub const ECHO_PORT: u16 = 7777;
/// The pod's source port.
pub const POD_PORT: u16 = 40000;

/// One datagram as the external host received it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    pub at: Instant,
    pub source: Ipv4Addr,
    pub seq: u64,
}

/// Everything recorded so far.
#[derive(Clone, Debug, Default)]
pub struct Record {
    /// Send time of seq i at index i.
    pub sent: Vec<Instant>,
    /// seq → when its echo reached the pod.
    pub echoed: BTreeMap<u64, Instant>,
    pub arrivals: Vec<Arrival>,
}

#[derive(Default)]
struct Shared {
    record: Mutex<Record>,
    stop: AtomicBool,
}

/// The running pod sender/receiver and external echo host; stops when dropped.
pub struct Traffic {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<io::Result<()>>>,
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Record> {
    shared.record.lock().unwrap_or_else(|e| e.into_inner())
}

fn in_ns<T: Send + 'static>(
    ns: &str,
    shared: &Arc<Shared>,
    setup: impl FnOnce() -> io::Result<T> + Send + 'static,
    body: impl FnOnce(T, Arc<Shared>) -> io::Result<()> + Send + 'static,
) -> io::Result<JoinHandle<io::Result<()>>> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let ns = ns.to_owned();
    let shared = shared.clone();
    let thread = std::thread::spawn(move || match enter(&ns).and_then(|()| setup()) {
        Ok(state) => {
            let _ = ready_tx.send(Ok(()));
            body(state, shared)
        }
        Err(e) => {
            let _ = ready_tx.send(Err(io::Error::new(e.kind(), e.to_string())));
            Err(e)
        }
    });
    ready_rx
        .recv()
        .map_err(|_| io::Error::other("traffic thread died"))??;
    Ok(thread)
}

fn udp(bind: SocketAddr) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind(bind)?;
    socket.set_read_timeout(Some(Duration::from_millis(20)))?;
    Ok(socket)
}

fn seq_of(payload: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(payload.get(..8)?.try_into().ok()?))
}

impl Traffic {
    /// Starts the echo host on `ext_ip` in `ext_ns`, then the pod on `pod_ip` in `pod_ns`.
    pub fn start(
        ext_ns: &str,
        ext_ip: Ipv4Addr,
        pod_ns: &str,
        pod_ip: Ipv4Addr,
    ) -> io::Result<Traffic> {
        let shared = Arc::new(Shared::default());
        let echo = in_ns(
            ext_ns,
            &shared,
            move || udp(SocketAddr::from((ext_ip, ECHO_PORT))),
            |socket, shared| {
                let mut buf = [0u8; 64];
                while !shared.stop.load(Ordering::Relaxed) {
                    let (n, from) = match socket.recv_from(&mut buf) {
                        Ok(got) => got,
                        Err(e) if is_timeout(&e) => continue,
                        Err(e) => return Err(e),
                    };
                    let at = Instant::now();
                    if let (Some(seq), SocketAddr::V4(from)) = (seq_of(&buf[..n]), from) {
                        lock(&shared).arrivals.push(Arrival {
                            at,
                            source: *from.ip(),
                            seq,
                        });
                        // Best effort: a wrong source may be unroutable from here.
                        let _ = socket.send_to(&buf[..n], from);
                    }
                }
                Ok(())
            },
        )?;
        let sender = in_ns(
            pod_ns,
            &shared,
            move || {
                let socket = udp(SocketAddr::from((pod_ip, POD_PORT)))?;
                let receiver = socket.try_clone()?;
                Ok((socket, receiver))
            },
            move |(socket, receiver), shared| {
                let listen = {
                    let shared = shared.clone();
                    std::thread::spawn(move || receive_echoes(&receiver, &shared))
                };
                let target = SocketAddr::from((ext_ip, ECHO_PORT));
                let mut next = Instant::now();
                let mut seq: u64 = 0;
                while !shared.stop.load(Ordering::Relaxed) {
                    lock(&shared).sent.push(Instant::now());
                    // Errors (no route while no gateway is programmed) are loss, not failure.
                    let _ = socket.send_to(&seq.to_be_bytes(), target);
                    seq += 1;
                    next += SEND_INTERVAL;
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    } else {
                        // Behind schedule (a stalled thread): no burst to catch up.
                        next = now;
                    }
                }
                listen
                    .join()
                    .map_err(|_| io::Error::other("echo receiver panicked"))?
            },
        )?;
        Ok(Traffic {
            shared,
            threads: vec![echo, sender],
        })
    }

    /// A copy of everything recorded so far.
    pub fn snapshot(&self) -> Record {
        lock(&self.shared).clone()
    }

    /// Have the last `count` packets sent after `since` and at least `margin` ago all been
    /// delivered (echoed)?
    pub fn flowing(&self, count: usize, margin: Duration, since: Instant) -> bool {
        let record = lock(&self.shared);
        let now = Instant::now();
        let settled: Vec<u64> = (0..record.sent.len() as u64)
            .filter(|&i| {
                let at = record.sent[i as usize];
                at >= since && at + margin <= now
            })
            .collect();
        settled.len() >= count
            && settled[settled.len() - count..]
                .iter()
                .all(|seq| record.echoed.contains_key(seq))
    }

    /// Stops both ends; everything recorded.
    pub fn stop(mut self) -> io::Result<Record> {
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            t.join()
                .map_err(|_| io::Error::other("traffic thread panicked"))??;
        }
        Ok(self.snapshot())
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn receive_echoes(socket: &UdpSocket, shared: &Shared) -> io::Result<()> {
    let mut buf = [0u8; 64];
    while !shared.stop.load(Ordering::Relaxed) {
        match socket.recv_from(&mut buf) {
            Ok((n, _)) => {
                if let Some(seq) = seq_of(&buf[..n]) {
                    lock(shared).echoed.entry(seq).or_insert_with(Instant::now);
                }
            }
            // ICMP errors (unreachable while nothing routes) surface here: loss, not failure.
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::ConnectionRefused => {}
            Err(e) if e.raw_os_error() == Some(libc::EHOSTUNREACH) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENETUNREACH) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What a pod saw in a window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Packets sent in the window.
    pub sent: usize,
    /// Of those, not delivered.
    pub lost: usize,
    /// Longest stretch of send time in the window without a delivered packet.
    pub blackout: Duration,
    /// When that stretch began.
    pub blackout_from: Option<Instant>,
    /// Longest gap between arrivals from an allowed source at the external host (forward
    /// direction only; for comparison).
    pub forward_blackout: Duration,
    /// Longest gap between two sends (a stalled sender thread inflates the blackout).
    pub sender_stall: Duration,
    /// Every arrival, over the whole recording, from a source not allowed.
    pub wrong_source: Vec<Arrival>,
}

/// Judges `record` over the packets sent in `[from, to]`; `allowed` are the right sources.
pub fn judge(record: &Record, from: Instant, to: Instant, allowed: &[Ipv4Addr]) -> Verdict {
    let mut right: BTreeMap<u64, Instant> = BTreeMap::new();
    for a in record
        .arrivals
        .iter()
        .filter(|a| allowed.contains(&a.source))
    {
        right.entry(a.seq).or_insert(a.at);
    }
    let in_window: Vec<(u64, Instant)> = record
        .sent
        .iter()
        .enumerate()
        .map(|(i, at)| (i as u64, *at))
        .filter(|(_, at)| *at >= from && *at <= to)
        .collect();
    let delivered: Vec<Instant> = in_window
        .iter()
        .filter(|(seq, _)| right.contains_key(seq) && record.echoed.contains_key(seq))
        .map(|(_, at)| *at)
        .collect();
    let (blackout, blackout_from) = longest_gap(from, &delivered, to);
    let forwarded: Vec<Instant> = right
        .values()
        .copied()
        .filter(|at| *at >= from && *at <= to)
        .collect();
    let sender_stall = in_window
        .windows(2)
        .map(|w| w[1].1.duration_since(w[0].1))
        .max()
        .unwrap_or_default();
    Verdict {
        sent: in_window.len(),
        lost: in_window.len() - delivered.len(),
        blackout,
        blackout_from,
        forward_blackout: longest_gap(from, &forwarded, to).0,
        sender_stall,
        wrong_source: record
            .arrivals
            .iter()
            .filter(|a| !allowed.contains(&a.source))
            .copied()
            .collect(),
    }
}

/// The longest gap in `from, times…, to` (times sorted), and where it starts. Consecutive
/// deliveries one send interval apart are no gap: a gap is the time beyond that interval.
fn longest_gap(from: Instant, times: &[Instant], to: Instant) -> (Duration, Option<Instant>) {
    let mut points = Vec::with_capacity(times.len() + 2);
    points.push(from);
    let mut sorted = times.to_vec();
    sorted.sort();
    points.extend(sorted);
    points.push(to);
    points
        .windows(2)
        .map(|w| {
            (
                w[1].saturating_duration_since(w[0])
                    .saturating_sub(SEND_INTERVAL),
                w[0],
            )
        })
        .max_by_key(|(gap, _)| *gap)
        .filter(|(gap, _)| !gap.is_zero())
        .map_or((Duration::ZERO, None), |(gap, at)| (gap, Some(at)))
}
