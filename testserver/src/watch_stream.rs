//! Streams one watch request: the starting state (synthetic ADDED events, or history after the
//! requested resourceVersion), then live changes filtered and re-labelled for the watcher's
//! namespace and selectors, BOOKMARKs, and the end on timeout or dropped watches.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::App;
use crate::objects::{as_version, meta_str};
use crate::registry::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::watch::{Change, ChangeKind};

/// What a watch asks for.
#[derive(Debug, Clone)]
pub struct WatchRequest {
    pub rt: ResourceType,
    pub version: String,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// `None` or `"0"`: start from the current state; otherwise resume after this version.
    pub resource_version: Option<String>,
    pub bookmarks: bool,
    pub send_initial_events: bool,
    pub timeout: Duration,
    /// Send `PartialObjectMetadata` instead of whole objects (the client's Accept header).
    pub metadata_only: bool,
}

/// How often an idle watch with bookmarks enabled gets one (the apiserver sends about one a minute).
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(30);
/// Events buffered per watch between the watch task and the HTTP body.
const BODY_BUFFER: usize = 256;

impl WatchRequest {
    fn selects(&self, object: &Value) -> bool {
        let in_namespace = self
            .namespace
            .as_deref()
            .is_none_or(|ns| meta_str(object, "namespace") == Some(ns));
        in_namespace && self.labels.matches(object) && self.fields.matches(object)
    }

    /// The event type this watcher sees for a change, if any: an object moving into the
    /// selection is ADDED, one moving out is DELETED.
    fn view(&self, change: &Change) -> Option<&'static str> {
        if change.resource != self.rt.key() {
            return None;
        }
        let now = self.selects(&change.object);
        match change.kind {
            ChangeKind::Added => now.then_some("ADDED"),
            ChangeKind::Deleted => now.then_some("DELETED"),
            ChangeKind::Modified => {
                let before = change.previous.as_deref().is_some_and(|p| self.selects(p));
                match (before, now) {
                    (true, true) => Some("MODIFIED"),
                    (false, true) => Some("ADDED"),
                    (true, false) => Some("DELETED"),
                    (false, false) => None,
                }
            }
        }
    }

    fn line(&self, kind: &str, object: &Value) -> Bytes {
        let stored_version = object.get("apiVersion").and_then(Value::as_str);
        let object = if self.metadata_only && kind != "BOOKMARK" {
            serde_json::to_vec(&crate::metadata::partial(object))
        } else if stored_version == Some(self.rt.api_version(&self.version).as_str()) {
            serde_json::to_vec(object)
        } else {
            serde_json::to_vec(&as_version(&self.rt, &self.version, object))
        };
        let mut line = format!("{{\"type\":\"{kind}\",\"object\":").into_bytes();
        line.extend(object.unwrap_or_default());
        line.extend(b"}\n");
        Bytes::from(line)
    }

    fn bookmark(&self, resource_version: u64, initial_events_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": resource_version.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({"kind": self.rt.kind, "apiVersion": self.rt.api_version(&self.version), "metadata": metadata});
        self.line("BOOKMARK", &object)
    }
}

fn error_line(error: &ApiError) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": "ERROR", "object": error.to_status()}))
        .unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// Starts a watch and returns the streaming body.
pub fn start(app: &Arc<App>, request: WatchRequest) -> Result<Body, ApiError> {
    let mut first: Vec<Bytes> = Vec::new();
    let (live, current) =
        {
            let store = app
                .store
                .lock()
                .map_err(|_| ApiError::unavailable("store lock poisoned"))?;
            let current = store.resource_version();
            let from_now = matches!(request.resource_version.as_deref(), None | Some("" | "0"))
                || request.send_initial_events;
            if from_now {
                let objects = store.list(
                    &request.rt,
                    request.namespace.as_deref(),
                    &request.labels,
                    &request.fields,
                );
                first.extend(objects.iter().map(|o| request.line("ADDED", o)));
                if request.send_initial_events && request.bookmarks {
                    first.push(request.bookmark(current, true));
                }
                (Some(store.hub.subscribe_now()), current)
            } else {
                let after = request
                    .resource_version
                    .as_deref()
                    .and_then(|rv| rv.parse::<u64>().ok())
                    .ok_or_else(|| {
                        ApiError::bad_request("resourceVersion must be an unsigned integer")
                    })?;
                match store.hub.subscribe_after(after) {
                    Ok(sub) => {
                        first.extend(sub.backlog.iter().filter_map(|c| {
                            request.view(c).map(|kind| request.line(kind, &c.object))
                        }));
                        (Some(sub.live), current)
                    }
                    Err(expired) => {
                        first.push(error_line(&expired));
                        (None, current)
                    }
                }
            }
        };
    let (sender, receiver) = mpsc::channel::<Bytes>(BODY_BUFFER);
    let drops = app.faults.watch_drops();
    tokio::spawn(async move {
        for line in first {
            if sender.send(line).await.is_err() {
                return;
            }
        }
        if let Some(live) = live {
            pump(request, current, live, drops, sender).await;
        }
    });
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|line| (Ok::<Bytes, std::io::Error>(line), receiver))
    });
    Ok(Body::from_stream(stream))
}

async fn pump(
    request: WatchRequest,
    start_version: u64,
    mut live: broadcast::Receiver<Arc<Change>>,
    mut drops: tokio::sync::watch::Receiver<u64>,
    sender: mpsc::Sender<Bytes>,
) {
    drops.mark_unchanged();
    let deadline = tokio::time::sleep(request.timeout);
    tokio::pin!(deadline);
    let mut bookmarks = tokio::time::interval(BOOKMARK_INTERVAL);
    bookmarks.tick().await;
    // Every change up to the start version was already sent (or filtered out).
    let mut last_seen = start_version;
    loop {
        let line = tokio::select! {
            () = &mut deadline => return,
            () = sender.closed() => return,
            _ = drops.changed() => return,
            _ = bookmarks.tick(), if request.bookmarks => request.bookmark(last_seen, false),
            received = live.recv() => match received {
                Ok(change) => {
                    last_seen = change.resource_version;
                    match request.view(&change) {
                        Some(kind) => request.line(kind, &change.object),
                        None => continue,
                    }
                }
                // A watcher too slow for the live buffer is closed; it resumes from history.
                Err(_) => return,
            },
        };
        if sender.send(line).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn change(kind: ChangeKind, before: Option<&str>, after: &str) -> Change {
        let node =
            |role: &str| Arc::new(json!({"metadata": {"name": "n", "labels": {"role": role}}}));
        Change {
            resource_version: 7,
            resource: crate::registry::ResourceKey {
                group: String::new(),
                plural: "nodes".into(),
            },
            kind,
            object: node(after),
            previous: before.map(node),
        }
    }

    #[test]
    fn selector_watches_see_entries_as_added_and_exits_as_deleted() {
        let rt = Registry::with_builtins()
            .lookup("", "v1", "nodes")
            .cloned()
            .expect("nodes");
        let request = WatchRequest {
            rt,
            version: "v1".into(),
            namespace: None,
            labels: LabelSelector::parse("role=egress").expect("selector"),
            fields: FieldSelector::default(),
            resource_version: None,
            bookmarks: false,
            send_initial_events: false,
            timeout: Duration::from_secs(1),
            metadata_only: false,
        };
        let view = |c: Change| request.view(&c);
        assert_eq!(
            view(change(ChangeKind::Modified, Some("egress"), "egress")),
            Some("MODIFIED")
        );
        assert_eq!(
            view(change(ChangeKind::Modified, Some("web"), "egress")),
            Some("ADDED")
        );
        assert_eq!(
            view(change(ChangeKind::Modified, Some("egress"), "web")),
            Some("DELETED")
        );
        assert_eq!(view(change(ChangeKind::Modified, Some("web"), "web")), None);
        assert_eq!(view(change(ChangeKind::Added, None, "web")), None);
        assert_eq!(
            view(change(ChangeKind::Deleted, None, "egress")),
            Some("DELETED")
        );
    }
}
