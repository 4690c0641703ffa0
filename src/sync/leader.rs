//! Leader election between `egressc sync` replicas with kube-lease-manager: one Lease
//! (`egressc-sync` in the controller namespace), one writer. Every replica watches (warm
//! standby); only the holder applies plans, and it checks [`Leadership::is_leader`] before
//! every write batch, so a replica that lost the Lease stops writing at once. On shutdown the
//! holder hands the Lease back ([`Release`]): kube-lease-manager releases it (holder cleared)
//! as soon as every receiver of its state is gone.
//!
//! kube-lease-manager alone keeps reporting "leader" while its renewals fail, so a leader cut
//! off for longer than the Lease would go on writing after a standby took over. A fence task
//! reads the Lease every [`FENCE_READ_INTERVAL`] and [`Leadership::is_leader`] is true only
//! while the latest read showing this replica as the holder still covers the present
//! (`egressc_core::sync::leader_fence`): a leader that cannot see its own Lease stops writing
//! before anyone else may start.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::Api;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::sync::leader_fence;

/// How often the fence task reads the leader Lease.
pub const FENCE_READ_INTERVAL: Duration = Duration::from_millis(250);

/// Name of the leader-election Lease.
pub const LEADER_LEASE: &str = "egressc-sync";

/// This replica's view of leadership.
#[derive(Debug)]
pub struct Leadership {
    state: watch::Receiver<bool>,
    /// Until when (milliseconds after `epoch`) the latest look at the Lease lets this replica
    /// write; `None` for [`Leadership::always`].
    fence: Option<Fence>,
    /// Keeps the channel open for [`Leadership::always`].
    _fixed: Option<watch::Sender<bool>>,
    _task: Option<JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>>,
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
    /// before `duration` runs out (a third of it is the renewal margin). `client` should not
    /// retry failed requests by itself (see `sync::run`): a renewal that fails must fail.
    pub async fn elect(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Result<Self, LeaseManagerError> {
        let seconds = duration.as_secs().max(2);
        let grace = (seconds / 3).max(1);
        // The first look at the Lease may meet an API outage (a replica restarted during one):
        // wait it out like any other request would be waited out, rather than exit.
        let mut pause = Duration::from_millis(100);
        let manager = loop {
            let built = LeaseManagerBuilder::new(client.clone(), name)
                .with_namespace(namespace)
                .with_identity(identity)
                .with_duration(seconds)
                .with_grace(grace)
                .with_field_manager(format!("egressc-sync-leader-{identity}"))
                .build()
                .await;
            match built {
                Ok(manager) => break manager,
                Err(LeaseManagerError::KubeError(error)) if transient(&error) => {
                    tracing::warn!(%error, ?pause, "leader Lease not reachable; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(error) => return Err(error),
            }
        };
        let (manager_state, task) = manager.watch().await;
        let (fence, state) = Fence::spawn(
            Api::namespaced(client, namespace),
            name.to_owned(),
            identity.to_owned(),
            Duration::from_secs(seconds),
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

/// Waits for kube-lease-manager to release the Lease after the [`Leadership`] it came from
/// was dropped.
#[derive(Debug)]
pub struct Release {
    task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

impl Release {
    /// Waits at most `bound` for the release; true if the Lease was handed back.
    pub async fn wait(self, bound: Duration) -> bool {
        match tokio::time::timeout(bound, self.task).await {
            Ok(Ok(Ok(_))) => true,
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
