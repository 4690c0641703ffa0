//! Fault-injection soak of `egressc sync` (short form; the long form is `scripts/soak.sh`):
//! two real replicas against kube-testserver, 24 nodes, 6 gateways (2 VIP), 12 policies, three
//! rounds of 10 s of seeded random faults. Every committed change and every simulated agent
//! tick is checked; after each round every gateway with an eligible node must be labelled on
//! one within the bound. The seed is printed; `SOAK_SEED=N` replays its fault schedule.

#[path = "soak/mod.rs"]
mod soak;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_survives_random_faults_without_violations() {
    let config = soak::Config::from_env(30, 10, 24);
    let report = soak::run(&config).await;
    let summary = report.summary(&config);
    eprint!("{summary}");
    assert!(
        report.violations.is_empty(),
        "{summary}\nreplay: SOAK_SEED={} cargo test --test sync_soak -- --nocapture\n{}",
        config.seed,
        report.logs
    );
    assert!(report.rounds >= 1 && report.faults.values().sum::<u64>() > 0);
}

/// The checker is not blind: two Nodes labelled for one gateway and a foreign label removed
/// are each reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_reports_what_it_must() {
    use k8s_openapi::api::core::v1::Node;
    use kube::api::{Api, Patch, PatchParams, PostParams};
    use serde_json::json;
    use soak::world::FOREIGN_LABEL;

    let server = kube_testserver::TestServer::start().await.expect("server");
    let findings = soak::checker::spawn(
        server.changes(),
        Default::default(),
        Default::default(),
        std::time::Instant::now(),
    );
    let client = server.client().expect("client");
    let nodes: Api<Node> = Api::all(client.clone());
    let active = "egress-gateway.network.deckhouse.io/active-for-gw-0";
    for name in ["a", "b"] {
        let node = json!({"metadata": {"name": name,
            "labels": {FOREIGN_LABEL: "harness", active: ""}}});
        nodes
            .create(
                &PostParams::default(),
                &serde_json::from_value(node).expect("node"),
            )
            .await
            .expect("node created");
    }
    nodes
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {FOREIGN_LABEL: null}}})),
        )
        .await
        .expect("label removed");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let violations = findings.lock().expect("findings").violations.clone();
    assert!(
        violations
            .iter()
            .any(|v| v.contains("gw-0 labelled on 2 nodes")),
        "{violations:?}"
    );
    assert!(
        violations
            .iter()
            .any(|v| v.contains("Node a: foreign label")),
        "{violations:?}"
    );
}
