//! The watch hub: a bounded history of change events (for resuming watches from a
//! resourceVersion) and a broadcast channel that fans live events out to every open watch.

use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

use crate::registry::ResourceKey;
use crate::status::ApiError;

/// `ADDED`, `MODIFIED` or `DELETED`, as stored; watchers may re-label per their selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One committed change.
#[derive(Debug)]
pub struct Change {
    pub resource_version: u64,
    pub resource: ResourceKey,
    pub kind: ChangeKind,
    /// The object after the change (for deletions: its last state).
    pub object: Arc<Value>,
    /// The object before the change, so selector-filtered watches can tell entries from exits.
    pub previous: Option<Arc<Value>>,
}

/// What a new watch starts from.
pub struct Subscription {
    /// Changes after the requested resourceVersion that are already committed.
    pub backlog: Vec<Arc<Change>>,
    pub live: broadcast::Receiver<Arc<Change>>,
}

/// History plus fan-out. Mutated only under the store's lock, so history and live events
/// never overlap or leave gaps.
#[derive(Debug)]
pub struct WatchHub {
    history: VecDeque<Arc<Change>>,
    limit: usize,
    /// Highest resourceVersion no longer in history; older watches get 410 Expired.
    compacted_through: u64,
    sender: broadcast::Sender<Arc<Change>>,
}

/// Live events a slow watcher may fall behind by before its watch is closed (it then resumes
/// from history like after any dropped watch).
const LIVE_BUFFER: usize = 65_536;

impl WatchHub {
    pub fn new(history_limit: usize) -> Self {
        let (sender, _) = broadcast::channel(LIVE_BUFFER);
        Self {
            history: VecDeque::new(),
            limit: history_limit.max(1),
            compacted_through: 0,
            sender,
        }
    }

    pub fn publish(&mut self, change: Change) {
        let change = Arc::new(change);
        self.history.push_back(Arc::clone(&change));
        while self.history.len() > self.limit {
            if let Some(evicted) = self.history.pop_front() {
                self.compacted_through = evicted.resource_version;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.sender.send(change);
    }

    /// Subscribes to changes with resourceVersion greater than `after`.
    pub fn subscribe_after(&self, after: u64) -> Result<Subscription, ApiError> {
        if after < self.compacted_through {
            let oldest = self
                .history
                .front()
                .map_or(self.compacted_through + 1, |c| c.resource_version);
            return Err(ApiError::expired(after, oldest));
        }
        let start = self
            .history
            .partition_point(|c| c.resource_version <= after);
        let backlog = self.history.range(start..).cloned().collect();
        Ok(Subscription {
            backlog,
            live: self.sender.subscribe(),
        })
    }

    /// Subscribes to changes from now on (the caller sends the current state itself).
    pub fn subscribe_now(&self) -> broadcast::Receiver<Arc<Change>> {
        self.sender.subscribe()
    }

    /// Forgets all history up to `through`, so older watches must re-list (fault injection).
    pub fn compact(&mut self, through: u64) {
        self.history.retain(|c| c.resource_version > through);
        self.compacted_through = self.compacted_through.max(through);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(rv: u64) -> Change {
        Change {
            resource_version: rv,
            resource: ResourceKey {
                group: String::new(),
                plural: "nodes".into(),
            },
            kind: ChangeKind::Added,
            object: Arc::new(json!({"metadata": {"name": format!("n{rv}")}})),
            previous: None,
        }
    }

    fn rvs(sub: &Subscription) -> Vec<u64> {
        sub.backlog.iter().map(|c| c.resource_version).collect()
    }

    #[test]
    fn resumes_after_the_requested_version_from_history() {
        let mut hub = WatchHub::new(10);
        for rv in 1..=5 {
            hub.publish(change(rv));
        }
        assert_eq!(
            rvs(&hub.subscribe_after(2).expect("in history")),
            vec![3, 4, 5]
        );
        assert_eq!(
            rvs(&hub.subscribe_after(5).expect("current")),
            Vec::<u64>::new()
        );
        assert_eq!(
            rvs(&hub.subscribe_after(0).expect("nothing evicted yet")),
            vec![1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn versions_older_than_the_bounded_history_expire_with_410() {
        let mut hub = WatchHub::new(3);
        for rv in 1..=6 {
            hub.publish(change(rv));
        }
        let err = hub.subscribe_after(2).err().expect("expired");
        assert_eq!((err.code, err.reason), (410, "Expired"));
        assert_eq!(
            rvs(&hub
                .subscribe_after(3)
                .expect("rv 3 is the compaction point")),
            vec![4, 5, 6]
        );
        hub.compact(5);
        assert!(hub.subscribe_after(4).is_err());
        assert_eq!(rvs(&hub.subscribe_after(5).expect("resumable")), vec![6]);
    }

    #[tokio::test]
    async fn live_subscribers_receive_published_changes() {
        let mut hub = WatchHub::new(4);
        let mut sub = hub.subscribe_after(0).expect("subscribe");
        hub.publish(change(1));
        let got = sub.live.recv().await.expect("event");
        assert_eq!(got.resource_version, 1);
    }
}
