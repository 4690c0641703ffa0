//! Leader election between `egressc sync` replicas with kube-lease-manager: one Lease
//! (`egressc-sync` in the controller namespace), one writer. Every replica watches (warm
//! standby); only the holder applies plans, and it checks [`Leadership::is_leader`] before
//! every write batch, so a replica that lost the Lease stops writing at once. On shutdown the
//! holder hands the Lease back ([`Release`]): kube-lease-manager releases it (holder cleared)
//! as soon as every receiver of its state is gone.
//!
//! A standby's kube-lease-manager sleeps until the holder's Lease would expire and has no way
//! to be woken, so a released Lease would sit free for up to its whole duration. A watch on
//! the Lease ([`super::leader_release`]) reports a cleared holder; the supervisor here then
//! replaces the sleeping manager with a fresh one, which reads the free Lease and takes it.
//!
//! kube-lease-manager alone keeps reporting "leader" while its renewals fail, so a leader cut
//! off for longer than the Lease would go on writing after a standby took over. A fence task
//! reads the Lease every [`FENCE_READ_INTERVAL`] and [`Leadership::is_leader`] is true only
//! while the latest read showing this replica as the holder still covers the present
//! (`egressc_core::sync::leader_fence`): a leader that cannot see its own Lease stops writing
//! before anyone else may start. The fence reads rather than listening to the release watch on
//! the same Lease: a watch event tells what the Lease was at some earlier moment the event does
//! not carry, and a quiet watch cannot be told from a stalled one, while a read's send time
//! bounds what it saw (the fence's argument needs that bound). Only the leader reads, 4 GETs/s
//! of one object.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;

use kube::Client;
use kube::api::Api;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::leader_release;
use crate::sync::leader_fence;

/// How often the fence task reads the leader Lease.
pub const FENCE_READ_INTERVAL: Duration = Duration::from_millis(250);

/// Name of the leader-election Lease.
pub const LEADER_LEASE: &str = "egressc-sync";

/// How long to wait before building a manager again after a failed attempt.
const REBUILD_BACKOFF: Duration = Duration::from_secs(1);

/// This replica's view of leadership.
#[derive(Debug)]
pub struct Leadership {
    state: watch::Receiver<bool>,
    /// Until when the latest look at the Lease lets this replica write; `None` for
    /// [`Leadership::always`].
    fence: Option<Fence>,
    /// Keeps the channel open for [`Leadership::always`].
    _fixed: Option<watch::Sender<bool>>,
    _task: Option<JoinHandle<Result<(), LeaseManagerError>>>,
}

/// What it takes to build a manager again.
#[derive(Clone)]
struct Election {
    client: Client,
    namespace: String,
    name: String,
    identity: String,
    seconds: u64,
}

impl Election {
    /// The holder renews well before the duration runs out: two fifths of it are the margin
    /// (3 s into a 5 s Lease), so a renewal that takes a second still lands before the fence
    /// (`leader_fence::margin`) would stop this replica's writes.
    async fn manager(&self) -> Result<LeaseManager, LeaseManagerError> {
        let grace = renewal_margin_seconds(self.seconds);
        LeaseManagerBuilder::new(self.client.clone(), &self.name)
            .with_namespace(&self.namespace)
            .with_identity(&self.identity)
            .with_duration(self.seconds)
            .with_grace(grace)
            .with_field_manager(format!("egressc-sync-leader-{}", self.identity))
            .build()
            .await
    }
}

/// Seconds before the end of a `seconds`-long Lease at which its holder renews it: two
/// fifths rounded up, at least one, always less than the Lease (kube-lease-manager requires
/// both).
fn renewal_margin_seconds(seconds: u64) -> u64 {
    (seconds * 2)
        .div_ceil(5)
        .max(1)
        .min(seconds.saturating_sub(1).max(1))
}

impl Leadership {
    /// Always the leader (`--leader-elect false`: one replica, development).
    pub fn always() -> Self {
        let (sender, state) = watch::channel(true);
        Leadership {
            state,
            fence: None,
            _fixed: Some(sender),
            _task: None,
        }
    }

    /// Competes for the Lease `name` in `namespace` as `identity`. The holder renews it well
    /// before `duration` runs out (two fifths of it are the renewal margin); a standby takes a
    /// released Lease at once. `client` should not retry failed requests by itself (see
    /// `sync::run`): a renewal that fails must fail.
    pub async fn elect(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Result<Self, LeaseManagerError> {
        let election = Election {
            client: client.clone(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            identity: identity.to_owned(),
            seconds: duration.as_secs().max(2),
        };
        // The first look at the Lease may meet an API outage (a replica restarted during one):
        // wait it out like any other request would be waited out, rather than exit.
        let mut pause = Duration::from_millis(100);
        let manager = loop {
            match election.manager().await {
                Ok(manager) => break manager,
                Err(LeaseManagerError::KubeError(error)) if transient(&error) => {
                    tracing::warn!(%error, ?pause, "leader Lease not reachable; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(error) => return Err(error),
            }
        };
        let released = leader_release::spawn(client.clone(), namespace, name);
        let (sender, manager_state) = watch::channel(false);
        let lease_duration = Duration::from_secs(election.seconds);
        let task = tokio::spawn(supervise(election, manager, sender, released));
        let (fence, state) = Fence::spawn(
            Api::namespaced(client, namespace),
            name.to_owned(),
            identity.to_owned(),
            lease_duration,
            manager_state,
        );
        Ok(Leadership {
            state,
            fence: Some(fence),
            _fixed: None,
            _task: Some(task),
        })
    }

    /// The handle that waits for the Lease to be handed back once this `Leadership` is
    /// dropped (`None` for [`Leadership::always`], or when already taken).
    pub fn release_handle(&mut self) -> Option<Release> {
        self._task.take().map(|task| Release { task })
    }

    /// Does this replica hold the Lease now, as kube-lease-manager says and as a recent read
    /// of the Lease confirms?
    pub fn is_leader(&self) -> bool {
        *self.state.borrow() && self.fence.as_ref().is_none_or(Fence::holds)
    }

    /// Waits until leadership changes (never returns for [`Leadership::always`]).
    pub async fn changed(&mut self) {
        if self.state.changed().await.is_err() {
            // The election task ended: nothing will change any more.
            std::future::pending::<()>().await;
        }
    }
}

/// Forwards the manager's state to `out` until every receiver of `out` is gone (then the
/// manager releases the Lease and this returns its result). While not leading, a report of
/// a released Lease replaces the manager: a fresh one reads the Lease instead of sleeping
/// out the old holder's term.
async fn supervise(
    election: Election,
    mut manager: LeaseManager,
    out: watch::Sender<bool>,
    mut released: mpsc::Receiver<()>,
) -> Result<(), LeaseManagerError> {
    loop {
        let (mut inner, mut task) = manager.watch().await;
        loop {
            tokio::select! {
                biased;
                () = out.closed() => {
                    // The loop is gone: dropping the last receiver makes the manager release.
                    drop(inner);
                    return match task.await {
                        Ok(result) => result.map(drop),
                        Err(error) => Err(LeaseManagerError::InconsistentState(error.to_string())),
                    };
                }
                changed = inner.changed() => {
                    if changed.is_err() {
                        // The manager ended by itself (its channel failed): report it.
                        let result = (&mut task).await;
                        out.send_replace(false);
                        return match result {
                            Ok(result) => result.map(drop),
                            Err(error) => Err(LeaseManagerError::InconsistentState(error.to_string())),
                        };
                    }
                    let leading = *inner.borrow_and_update();
                    out.send_replace(leading);
                }
                Some(()) = released.recv(), if !*out.borrow() => break,
            }
        }
        // Not the holder (as far as this replica has heard): the sleeping manager holds
        // nothing worth releasing. A fresh one reads the Lease as it is now.
        task.abort();
        let _ = task.await;
        tracing::info!("leader Lease released by its holder; competing for it now");
        manager = loop {
            match election.manager().await {
                Ok(manager) => break manager,
                Err(error) => {
                    tracing::warn!(%error, "cannot restart leader election; retrying");
                    tokio::select! {
                        () = out.closed() => return Ok(()),
                        () = tokio::time::sleep(REBUILD_BACKOFF) => {}
                    }
                }
            }
        };
        while released.try_recv().is_ok() {}
    }
}

/// Waits for kube-lease-manager to release the Lease after the [`Leadership`] it came from
/// was dropped.
#[derive(Debug)]
pub struct Release {
    task: JoinHandle<Result<(), LeaseManagerError>>,
}

impl Release {
    /// Waits at most `bound` for the release; true if the Lease was handed back.
    pub async fn wait(self, bound: Duration) -> bool {
        match tokio::time::timeout(bound, self.task).await {
            Ok(Ok(Ok(()))) => true,
            Ok(Ok(Err(error))) => {
                tracing::warn!(%error, "leader Lease not released");
                false
            }
            Ok(Err(_)) | Err(_) => {
                tracing::warn!(?bound, "leader Lease release did not finish in time");
                false
            }
        }
    }
}

/// An error that says nothing about the request itself: the API was unreachable or overloaded.
fn transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => matches!(status.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// The shell of `leader_fence`: reads the leader Lease, publishes until when this replica may
/// write, and turns kube-lease-manager's state into the effective one (manager says leader and
/// the fence holds), so that the loop also hears of a lapse.
#[derive(Debug)]
struct Fence {
    epoch: Instant,
    /// Milliseconds after `epoch` until which writes are allowed (0: not allowed).
    until_ms: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Fence {
    fn spawn(
        leases: Api<Lease>,
        name: String,
        identity: String,
        duration: Duration,
        mut manager: watch::Receiver<bool>,
    ) -> (Self, watch::Receiver<bool>) {
        let epoch = Instant::now();
        let until_ms = Arc::new(AtomicU64::new(0));
        let published = until_ms.clone();
        let (effective, state) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(FENCE_READ_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    changed = manager.changed() => {
                        if changed.is_err() {
                            // The election task ended: nobody leads here any more.
                            effective.send_replace(false);
                            std::future::pending::<()>().await;
                        }
                    }
                }
                // A standby has nothing to fence and spares the API the reads. A new leader
                // reads at once, so that it starts writing without waiting for a tick.
                if *manager.borrow() {
                    look(&leases, &name, &identity, duration, epoch, &published).await;
                } else {
                    published.store(0, Ordering::Release);
                }
                let holds = *manager.borrow() && holds(epoch, &published);
                effective.send_if_modified(|current| std::mem::replace(current, holds) != holds);
            }
        });
        let fence = Fence {
            epoch,
            until_ms,
            task,
        };
        (fence, state)
    }

    fn holds(&self) -> bool {
        holds(self.epoch, &self.until_ms)
    }
}

/// One read of the Lease, published as the new end of the fence.
async fn look(
    leases: &Api<Lease>,
    name: &str,
    identity: &str,
    duration: Duration,
    epoch: Instant,
    until_ms: &AtomicU64,
) {
    let sent = Instant::now();
    let sent_wall = Timestamp::now();
    // A read slower than two intervals is as good as a failed one.
    let Ok(Ok(lease)) = tokio::time::timeout(FENCE_READ_INTERVAL * 2, leases.get(name)).await
    else {
        return;
    };
    match leader_fence::valid_for(&lease, identity, duration, sent_wall) {
        Some(left) => {
            let until = (sent + left).duration_since(epoch).as_millis();
            until_ms.fetch_max(u64::try_from(until).unwrap_or(u64::MAX), Ordering::AcqRel);
        }
        // Someone else holds it, or it lapsed: stop at once.
        None => until_ms.store(0, Ordering::Release),
    }
}

fn holds(epoch: Instant, until_ms: &AtomicU64) -> bool {
    let now = Instant::now().duration_since(epoch).as_millis();
    u128::from(until_ms.load(Ordering::Acquire)) > now
}

impl Drop for Fence {
    fn drop(&mut self) {
        // Also drops the task's receiver of the manager's state, the last one: the manager
        // then releases the Lease (see `Release`).
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::renewal_margin_seconds;
    use crate::sync::leader_fence;
    use std::time::Duration;

    #[test]
    fn the_renewal_margin_is_valid_for_kube_lease_manager() {
        for seconds in 2..=120 {
            let grace = renewal_margin_seconds(seconds);
            assert!(grace >= 1 && grace < seconds, "{seconds} s: grace {grace}");
        }
        assert_eq!(renewal_margin_seconds(5), 2);
        assert_eq!(renewal_margin_seconds(15), 6);
    }

    #[test]
    fn a_renewal_one_second_slow_still_lands_before_the_fence_from_five_seconds_on() {
        for seconds in 5..=120 {
            let lease = Duration::from_secs(seconds);
            let renewed_by = lease - Duration::from_secs(renewal_margin_seconds(seconds))
                + Duration::from_secs(1);
            let fence_stops_writes_at = lease - leader_fence::margin(lease);
            assert!(
                renewed_by < fence_stops_writes_at,
                "{seconds} s: renewed by {renewed_by:?}, fence at {fence_stops_writes_at:?}"
            );
        }
    }
}
