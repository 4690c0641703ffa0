//! kube-testserver driven by unmodified kube-rs clients: reflector, watcher recovery after
//! dropped watches and 410 Gone, server-side apply conflicts, and a kube-lease-manager handover.

use std::future::Future;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube_lease_manager::LeaseManagerBuilder;
use kube_testserver::{Options, TestServer};
use serde_json::json;

/// Upper bound for any single expected reaction; only a guard against hangs, never asserted on.
const PATIENCE: Duration = Duration::from_secs(20);

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let waited = tokio::time::timeout(PATIENCE, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting for: {what}");
}

fn node(name: &str) -> Node {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}))
        .expect("valid node")
}

#[tokio::test]
async fn reflector_follows_creates_updates_and_deletes() {
    let server = TestServer::start().await.expect("server");
    let nodes: Api<Node> = Api::all(server.client().expect("client"));
    nodes
        .create(&PostParams::default(), &node("before-start"))
        .await
        .expect("create");

    let (reader, writer) = reflector::store();
    let stream =
        reflector(writer, watcher(nodes.clone(), watcher::Config::default())).applied_objects();
    tokio::spawn(stream.for_each(|_| async {}));
    reader.wait_until_ready().await.expect("initial list");
    assert_eq!(reader.state().len(), 1);

    nodes
        .create(&PostParams::default(), &node("n1"))
        .await
        .expect("create");
    let labels =
        json!({"metadata": {"labels": {"egress-gateway.network.deckhouse.io/member": ""}}});
    nodes
        .patch("n1", &PatchParams::default(), &Patch::Merge(&labels))
        .await
        .expect("label");
    eventually("n1 labelled in the reflector", || {
        let reader = reader.clone();
        async move {
            reader.state().iter().any(|n| {
                n.metadata.name.as_deref() == Some("n1")
                    && n.metadata.labels.as_ref().is_some_and(|l| {
                        l.contains_key("egress-gateway.network.deckhouse.io/member")
                    })
            })
        }
    })
    .await;

    nodes
        .delete("before-start", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("deleted node gone from the reflector", || {
        let reader = reader.clone();
        async move { reader.state().len() == 1 }
    })
    .await;
}

#[tokio::test]
async fn streaming_list_watcher_gets_initial_events_then_changes() {
    let server = TestServer::start().await.expect("server");
    let nodes: Api<Node> = Api::all(server.client().expect("client"));
    nodes
        .create(&PostParams::default(), &node("existing"))
        .await
        .expect("create");
    let (reader, writer) = reflector::store();
    let config = watcher::Config::default().streaming_lists();
    tokio::spawn(
        reflector(writer, watcher(nodes.clone(), config))
            .applied_objects()
            .for_each(|_| async {}),
    );
    reader.wait_until_ready().await.expect("initial events end");
    assert_eq!(reader.state().len(), 1);
    nodes
        .create(&PostParams::default(), &node("later"))
        .await
        .expect("create");
    eventually("streamed watcher sees a new node", || {
        let reader = reader.clone();
        async move { reader.state().len() == 2 }
    })
    .await;
}

#[tokio::test]
async fn watcher_recovers_from_dropped_watches_and_expired_history() {
    let server = TestServer::start().await.expect("server");
    let nodes: Api<Node> = Api::all(server.client().expect("client"));
    let (reader, writer) = reflector::store();
    let stream =
        reflector(writer, watcher(nodes.clone(), watcher::Config::default())).applied_objects();
    tokio::spawn(stream.for_each(|_| async {}));
    reader.wait_until_ready().await.expect("initial list");

    server.faults().drop_watches();
    nodes
        .create(&PostParams::default(), &node("after-drop"))
        .await
        .expect("create");
    eventually("node created after a dropped watch", || {
        let reader = reader.clone();
        async move {
            reader
                .state()
                .iter()
                .any(|n| n.metadata.name.as_deref() == Some("after-drop"))
        }
    })
    .await;

    // History gone and watches dropped: resuming fails with 410, so the watcher must re-list.
    nodes
        .create(&PostParams::default(), &node("during-gap"))
        .await
        .expect("create");
    server.compact_history();
    server.faults().drop_watches();
    nodes
        .create(&PostParams::default(), &node("after-410"))
        .await
        .expect("create");
    eventually("node created after a 410 re-list", || {
        let reader = reader.clone();
        async move {
            reader
                .state()
                .iter()
                .any(|n| n.metadata.name.as_deref() == Some("after-410"))
        }
    })
    .await;
    assert_eq!(reader.state().len(), 3);
}

#[tokio::test]
async fn resuming_a_watch_from_compacted_history_yields_410_expired() {
    let server = TestServer::start_with(Options {
        history_limit: 2,
        ..Options::default()
    })
    .await
    .expect("server");
    let nodes: Api<Node> = Api::all(server.client().expect("client"));
    let start = server.resource_version().to_string();
    for i in 0..5 {
        nodes
            .create(&PostParams::default(), &node(&format!("n{i}")))
            .await
            .expect("create");
    }
    let mut events = nodes
        .watch(&WatchParams::default(), &start)
        .await
        .expect("watch")
        .boxed();
    match events.try_next().await.expect("stream item") {
        Some(WatchEvent::Error(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"))
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }

    // A version still in history resumes with exactly the later events.
    let recent = (server.resource_version() - 1).to_string();
    let mut events = nodes
        .watch(&WatchParams::default(), &recent)
        .await
        .expect("watch")
        .boxed();
    match events.try_next().await.expect("stream item") {
        Some(WatchEvent::Added(n)) => assert_eq!(n.metadata.name.as_deref(), Some("n4")),
        other => panic!("expected ADDED n4, got {other:?}"),
    }
}

#[tokio::test]
async fn server_side_apply_reports_conflicts_and_force_takes_over() {
    let server = TestServer::start().await.expect("server");
    let maps: Api<ConfigMap> = Api::namespaced(server.client().expect("client"), "default");
    let config = |value: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"mode": value}});

    maps.patch(
        "cfg",
        &PatchParams::apply("alice"),
        &Patch::Apply(config("a")),
    )
    .await
    .expect("create by apply");
    let err = maps
        .patch(
            "cfg",
            &PatchParams::apply("bob"),
            &Patch::Apply(config("b")),
        )
        .await
        .expect_err("conflict");
    match err {
        kube::Error::Api(status) => {
            assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
            assert!(
                status.message.contains("conflict with \"alice\""),
                "{}",
                status.message
            );
        }
        other => panic!("expected an API error, got {other}"),
    }
    let forced = maps
        .patch(
            "cfg",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(config("b")),
        )
        .await
        .expect("forced");
    assert_eq!(
        forced.data.and_then(|d| d.get("mode").cloned()).as_deref(),
        Some("b")
    );
    let managers: Vec<String> = forced
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(
        managers,
        vec!["bob".to_owned()],
        "alice lost her only field"
    );

    // bob stops applying the field: as sole owner, it is removed.
    let empty = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "labels": {"owner": "bob"}}});
    let pruned = maps
        .patch("cfg", &PatchParams::apply("bob"), &Patch::Apply(empty))
        .await
        .expect("apply");
    assert!(pruned.data.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn lease_moves_to_the_second_holder_when_the_first_releases_or_dies() {
    let server = TestServer::start().await.expect("server");
    let client = server.client().expect("client");
    let manager = |identity: &'static str| {
        LeaseManagerBuilder::new(client.clone(), "egressc-leader")
            .with_namespace("kube-system")
            .with_identity(identity)
            .with_duration(2)
            .with_grace(1)
            .build()
    };
    let first = manager("holder-1").await.expect("manager 1");
    assert!(
        first.changed().await.expect("acquire"),
        "holder-1 acquires the free lease"
    );

    let second = manager("holder-2").await.expect("manager 2");
    let second_turn = tokio::spawn(async move {
        let acquired = second.changed().await;
        (second, acquired)
    });
    first.release().await.expect("release");
    let (second, acquired) = tokio::time::timeout(PATIENCE, second_turn)
        .await
        .expect("handover in time")
        .expect("task");
    assert!(
        acquired.expect("changed"),
        "holder-2 acquires after holder-1 released"
    );

    // holder-2 dies without releasing; holder-3 takes over once the lease expires.
    drop(second);
    let third = manager("holder-3").await.expect("manager 3");
    let acquired = tokio::time::timeout(PATIENCE, third.changed())
        .await
        .expect("takeover in time");
    assert!(
        acquired.expect("changed"),
        "holder-3 acquires the expired lease"
    );
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client, "kube-system");
    let lease = leases.get("egressc-leader").await.expect("lease");
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("holder-3")
    );
}

/// Sends one raw HTTP/1.1 request and returns the status code (kube's client retries 503s,
/// so the outage itself is observed without it).
async fn raw_status(port: u16, method: &str, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status line")
}

#[tokio::test]
async fn http_control_endpoints_inject_and_clear_an_outage() {
    let server = TestServer::start().await.expect("server");
    let port = server.port();
    assert_eq!(raw_status(port, "GET", "/api/v1/nodes").await, 200);
    assert_eq!(
        raw_status(port, "POST", "/__testserver/outage?seconds=3600").await,
        200
    );
    assert_eq!(raw_status(port, "GET", "/api/v1/nodes").await, 503);
    assert_eq!(raw_status(port, "POST", "/__testserver/restore").await, 200);
    assert_eq!(raw_status(port, "GET", "/api/v1/nodes").await, 200);
    assert_eq!(
        raw_status(port, "POST", "/__testserver/no-such-fault").await,
        404
    );

    // kube-rs rides out a short outage by retrying.
    server.faults().outage(Duration::from_millis(300));
    let nodes: Api<Node> = Api::all(server.client().expect("client"));
    assert!(nodes.list(&Default::default()).await.is_ok());
}

#[tokio::test]
async fn lists_are_paged_with_limit_and_continue() {
    let server = TestServer::start().await.expect("server");
    let client = server.client().expect("client");
    let maps: Api<ConfigMap> = Api::namespaced(client, "default");
    for i in 0..5 {
        maps.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": format!("cm-{i}")}}))
                .expect("config map"),
        )
        .await
        .expect("created");
    }
    let mut names = Vec::new();
    let mut versions = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut params = kube::api::ListParams::default().limit(2);
        if let Some(token) = &token {
            params = params.continue_token(token);
        }
        let page = maps.list(&params).await.expect("page");
        assert!(page.items.len() <= 2, "a page holds at most `limit` items");
        names.extend(page.items.iter().filter_map(|m| m.metadata.name.clone()));
        versions.push(page.metadata.resource_version.clone());
        token = page.metadata.continue_.clone().filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    assert_eq!(names, ["cm-0", "cm-1", "cm-2", "cm-3", "cm-4"]);
    assert_eq!(versions.len(), 3);
    assert!(
        versions.iter().all(|v| *v == versions[0]),
        "every page carries the first page's resourceVersion: {versions:?}"
    );
    // Without a limit, one response holds everything.
    let all: Vec<ConfigMap> = maps.list(&Default::default()).await.expect("list").items;
    assert_eq!(all.len(), 5);
}
