//! Leader election between `egressc sync` replicas with kube-lease-manager: one Lease
//! (`egressc-sync` in the controller namespace), one writer. Every replica watches (warm
//! standby); only the holder applies plans, and it checks [`Leadership::is_leader`] before
//! every write batch, so a replica that lost the Lease stops writing at once. On shutdown the
//! holder hands the Lease back ([`Release`]): kube-lease-manager releases it (holder cleared)
//! as soon as every receiver of its state is gone.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Name of the leader-election Lease.
pub const LEADER_LEASE: &str = "egressc-sync";

/// This replica's view of leadership.
#[derive(Debug)]
pub struct Leadership {
    state: watch::Receiver<bool>,
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
            _fixed: Some(sender),
            _task: None,
        }
    }

    /// Competes for the Lease `name` in `namespace` as `identity`. The holder renews it well
    /// before `duration` runs out (a third of it is the renewal margin).
    pub async fn elect(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Result<Self, LeaseManagerError> {
        let seconds = duration.as_secs().max(2);
        let grace = (seconds / 3).max(1);
        let manager = LeaseManagerBuilder::new(client, name)
            .with_namespace(namespace)
            .with_identity(identity)
            .with_duration(seconds)
            .with_grace(grace)
            .with_field_manager(format!("egressc-sync-leader-{identity}"))
            .build()
            .await?;
        let (state, task) = manager.watch().await;
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
