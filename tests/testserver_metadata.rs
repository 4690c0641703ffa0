//! kube-testserver serves metadata-only objects (`PartialObjectMetadata`) to kube-rs clients
//! that ask for them (list_metadata, watch_metadata, kube-runtime's metadata_watcher), as the
//! apiserver does; whole objects to everyone else.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::watcher;
use kube_testserver::TestServer;
use serde_json::json;

/// Upper bound for one awaited event; only a guard against hangs.
const PATIENCE: Duration = Duration::from_secs(20);

fn node(name: &str) -> Node {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"group": "a"}},
        "spec": {"podCIDR": "10.0.0.0/24"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}
    }))
    .expect("valid node")
}

/// The next watcher event, within [`PATIENCE`].
async fn next<S, T>(events: &mut S) -> T
where
    S: futures::Stream<Item = Result<T, watcher::Error>> + Unpin,
{
    tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("an event in time")
        .expect("stream open")
        .expect("no watch error")
}

#[tokio::test]
async fn metadata_lists_gets_and_watches_carry_only_metadata() {
    let server = TestServer::start().await.expect("server");
    let nodes: Api<Node> = Api::all(server.client().expect("client"));
    nodes
        .create(&PostParams::default(), &node("n1"))
        .await
        .expect("create");

    let listed = nodes
        .list_metadata(&ListParams::default())
        .await
        .expect("metadata list");
    let kinds: Vec<_> = listed
        .items
        .iter()
        .map(|i| i.types.as_ref().map(|t| t.kind.clone()))
        .collect();
    assert_eq!(kinds, vec![Some("PartialObjectMetadata".to_owned())]);
    assert_eq!(
        listed.items[0]
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("group")),
        Some(&"a".to_owned())
    );
    let got = nodes.get_metadata("n1").await.expect("metadata get");
    assert_eq!(
        got.types.map(|t| t.kind),
        Some("PartialObjectMetadata".to_owned())
    );
    // Whole objects for everyone else.
    let whole = nodes.get("n1").await.expect("get");
    assert!(whole.status.is_some() && whole.spec.is_some());

    let metadata: Api<PartialObjectMeta<Node>> = Api::all(server.client().expect("client"));
    let mut events = watcher::watcher(metadata, watcher::Config::default()).boxed();
    loop {
        if let watcher::Event::InitDone = next(&mut events).await {
            break;
        }
    }
    let labels = json!({"metadata": {"labels": {"group": "b"}}});
    nodes
        .patch("n1", &PatchParams::default(), &Patch::Merge(&labels))
        .await
        .expect("patch");
    let changed = loop {
        if let watcher::Event::Apply(object) = next(&mut events).await {
            break object;
        }
    };
    assert_eq!(
        changed.types.map(|t| t.kind),
        Some("PartialObjectMetadata".to_owned())
    );
    assert_eq!(
        changed
            .metadata
            .labels
            .and_then(|l| l.get("group").cloned()),
        Some("b".to_owned())
    );
}

#[tokio::test]
async fn a_metadata_watch_sends_no_spec_or_status() {
    let server = TestServer::start().await.expect("server");
    let client = server.client().expect("client");
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .create(&PostParams::default(), &node("n1"))
        .await
        .expect("create");
    // The raw watch stream, as kube-rs asks for it, parsed as plain JSON.
    let request =
        axum::http::Request::get("/api/v1/nodes?watch=true&resourceVersion=0&timeoutSeconds=1")
            .header(
                "Accept",
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
            )
            .body(Vec::new())
            .expect("request");
    let text = client.request_text(request).await.expect("watch body");
    let first: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("one event")).expect("json");
    assert_eq!(first["type"], "ADDED");
    assert_eq!(first["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(first["object"]["metadata"]["name"], "n1");
    assert!(first["object"].get("spec").is_none(), "{first}");
    assert!(first["object"].get("status").is_none(), "{first}");
}
