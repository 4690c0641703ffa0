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
