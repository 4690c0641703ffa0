//! Fault-free inspection for test harnesses: the stored objects of a kind and a feed of every
//! committed change, read in-process. Neither goes through the HTTP layer, so outages, latency
//! and dropped watches do not blind the harness that injects them, and the feed sees every
//! intermediate state (a poller could miss one that lasts less than its period).

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::TestServer;
use crate::registry::ResourceKey;
use crate::watch::Change;

/// Every change committed after [`TestServer::changes`] was called, in resourceVersion order.
#[derive(Debug)]
pub struct ChangeFeed {
    live: broadcast::Receiver<Arc<Change>>,
}

/// Why [`ChangeFeed::next`] has no change to give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedError {
    /// The reader fell this many changes behind the live buffer; they are lost to it.
    Lagged(u64),
    /// The server is gone.
    Closed,
}

impl ChangeFeed {
    /// The next committed change.
    pub async fn next(&mut self) -> Result<Arc<Change>, FeedError> {
        self.live.recv().await.map_err(|error| match error {
            broadcast::error::RecvError::Lagged(missed) => FeedError::Lagged(missed),
            broadcast::error::RecvError::Closed => FeedError::Closed,
        })
    }
}

impl TestServer {
    /// Follows every change committed from now on, whatever faults are injected.
    pub fn changes(&self) -> ChangeFeed {
        let store = self
            .app
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ChangeFeed {
            live: store.hub.subscribe_now(),
        }
    }

    /// Every stored object of a kind (`group` empty for the core group, `plural` as in URLs),
    /// in namespace/name order, whatever faults are injected.
    pub fn stored(&self, group: &str, plural: &str) -> Vec<Arc<serde_json::Value>> {
        let key = ResourceKey {
            group: group.to_owned(),
            plural: plural.to_owned(),
        };
        let store = self
            .app
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        store.objects_of(&key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn the_feed_and_the_snapshot_see_through_an_outage() {
        let server = TestServer::start().await.expect("server");
        // Without kube's default retries, which would wait out the outage.
        let mut config = server.client_config();
        config.default_retry = false;
        let client = kube::Client::try_from(config).expect("client");
        let mut feed = server.changes();
        server.faults().outage(std::time::Duration::from_secs(3600));
        let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
            kube::Api::all(client.clone());
        let created = namespaces
            .create(
                &Default::default(),
                &serde_json::from_value(json!({"metadata": {"name": "during-outage"}}))
                    .expect("namespace"),
            )
            .await;
        assert!(created.is_err(), "the API is down");
        server.faults().restore();
        namespaces
            .create(
                &Default::default(),
                &serde_json::from_value(json!({"metadata": {"name": "after"}})).expect("namespace"),
            )
            .await
            .expect("created after the outage");
        server.faults().outage(std::time::Duration::from_secs(3600));
        let change = feed.next().await.expect("a change");
        assert_eq!(change.kind, crate::ChangeKind::Added);
        assert_eq!(change.object["metadata"]["name"], "after");
        let names: Vec<String> = server
            .stored("", "namespaces")
            .iter()
            .filter_map(|ns| ns["metadata"]["name"].as_str().map(str::to_owned))
            .collect();
        assert!(names.contains(&"after".to_owned()), "{names:?}");
        assert!(!names.contains(&"during-outage".to_owned()), "{names:?}");
    }
}
