//! Watches the leader Lease and reports when its holder is cleared (a leader handing it back
//! on shutdown) or the Lease is deleted, so that a standby competes at once instead of
//! waiting out the old holder's term ([`super::leader`]).

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use tokio::sync::mpsc;

/// The Lease carries no holder.
fn is_free(lease: &Lease) -> bool {
    lease
        .spec
        .as_ref()
        .and_then(|spec| spec.holder_identity.as_deref())
        .is_none_or(str::is_empty)
}

/// Starts the watch on Lease `name` in `namespace`; one message per observed free Lease
/// (coalesced: a full channel means a report is already pending).
pub fn spawn(client: Client, namespace: &str, name: &str) -> mpsc::Receiver<()> {
    let (sender, receiver) = mpsc::channel(1);
    let api: Api<Lease> = Api::namespaced(client, namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    tokio::spawn(async move {
        let mut backoff = std::time::Duration::from_millis(100);
        loop {
            let mut stream = watcher::watcher(api.clone(), config.clone()).boxed();
            while let Some(item) = stream.next().await {
                let free = match item {
                    Ok(Event::Apply(lease) | Event::InitApply(lease)) => is_free(&lease),
                    Ok(Event::Delete(_)) => true,
                    Ok(Event::Init | Event::InitDone) => false,
                    Err(error) => {
                        tracing::debug!(%error, "leader Lease watch failed; restarting");
                        break;
                    }
                };
                if free {
                    match sender.try_send(()) {
                        Ok(()) | Err(mpsc::error::TrySendError::Full(())) => {}
                        Err(mpsc::error::TrySendError::Closed(())) => return,
                    }
                }
                backoff = std::time::Duration::from_millis(100);
            }
            if sender.is_closed() {
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
        }
    });
    receiver
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>) -> Lease {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "egressc-sync"},
            "spec": {"holderIdentity": holder}
        }))
        .expect("lease")
    }

    #[test]
    fn a_lease_without_a_holder_is_free() {
        assert!(is_free(&lease(None)));
        assert!(is_free(&lease(Some(""))));
        assert!(!is_free(&lease(Some("replica-a"))));
        assert!(is_free(&Lease::default()));
    }
}
