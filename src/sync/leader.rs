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

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::leader_release;

/// Name of the leader-election Lease.
pub const LEADER_LEASE: &str = "egressc-sync";

/// How long to wait before building a manager again after a failed attempt.
const REBUILD_BACKOFF: Duration = Duration::from_secs(1);

/// This replica's view of leadership.
#[derive(Debug)]
pub struct Leadership {
    state: watch::Receiver<bool>,
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
    /// The holder renews well before the duration runs out (a third of it is the margin).
    async fn manager(&self) -> Result<LeaseManager, LeaseManagerError> {
        let grace = (self.seconds / 3).max(1);
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

impl Leadership {
    /// Always the leader (`--leader-elect false`: one replica, development).
    pub fn always() -> Self {
        let (sender, state) = watch::channel(true);
        Leadership {
            state,
            _fixed: Some(sender),
            _task: None,
        }
    }

    /// Competes for the Lease `name` in `namespace` as `identity`. The holder renews it well
    /// before `duration` runs out (a third of it is the renewal margin); a standby takes a
    /// released Lease at once.
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
        let manager = election.manager().await?;
        let released = leader_release::spawn(client, namespace, name);
        let (sender, state) = watch::channel(false);
        let task = tokio::spawn(supervise(election, manager, sender, released));
        Ok(Leadership {
            state,
            _fixed: None,
            _task: Some(task),
        })
    }

    /// The handle that waits for the Lease to be handed back once this `Leadership` is
    /// dropped (`None` for [`Leadership::always`], or when already taken).
    pub fn release_handle(&mut self) -> Option<Release> {
        self._task.take().map(|task| Release { task })
    }

    /// Does this replica hold the Lease now?
    pub fn is_leader(&self) -> bool {
        *self.state.borrow()
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
