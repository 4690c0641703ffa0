//! The test controller: plays the controller's side of docs/lease-protocol.md directly against
//! one VIP Lease (create, grant, withdraw, take over a holder observed dead), and installs what
//! the agents watch (namespace, EgressGateway CRD and object). Async; run it on the api runtime.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use egressc::agent::lease_object::{self, VipLease};
use egressc::controller::{
    GATEWAY_ANNOTATION, GRANT_ANNOTATION, READY_ANNOTATION, TAKEOVER_ANNOTATION, VIP_ANNOTATION,
    lease_name,
};
use egressc::model::api::{
    EgressGateway, EgressGatewaySpec, SourceIpMode, SourceIpSpec, VirtualIpAddressSpec,
};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::{CustomResourceExt, Resource};

/// The namespace of the VIP Leases in these tests.
pub const NAMESPACE: &str = "egressc-system";
/// The protocol's lease duration `D`.
pub const LEASE_DURATION: Duration = Duration::from_secs(3);

/// One gateway's Lease, seen from the controller's side.
#[derive(Clone)]
pub struct VipControl {
    leases: Api<Lease>,
    name: String,
}

fn ignore_exists<T>(result: kube::Result<T>) -> kube::Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(error) => Err(error),
    }
}

/// Creates the namespace, the EgressGateway CRD, the gateway and its Lease (no grant).
pub async fn install(
    client: kube::Client,
    gateway: &str,
    vip: IpAddr,
    interfaces: &[&str],
) -> kube::Result<VipControl> {
    let pp = PostParams::default();
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(NAMESPACE.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    ignore_exists(
        Api::<Namespace>::all(client.clone())
            .create(&pp, &namespace)
            .await,
    )?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    ignore_exists(crds.create(&pp, &EgressGateway::crd()).await)?;
    let gateways: Api<EgressGateway> = Api::all(client.clone());
    let spec = EgressGatewaySpec {
        node_selector: BTreeMap::new(),
        source_ip: SourceIpSpec {
            mode: SourceIpMode::VirtualIPAddress,
            virtual_ip_address: Some(VirtualIpAddressSpec {
                ip: vip.to_string(),
                interfaces: interfaces.iter().map(|s| s.to_string()).collect(),
            }),
            primary_ip_from_egress_gateway_node_interface: None,
        },
    };
    // The CRD may take a moment to be served.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match gateways
            .create(&pp, &EgressGateway::new(gateway, spec.clone()))
            .await
        {
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(error) => return Err(error),
        }
    }
    let leases: Api<Lease> = Api::namespaced(client, NAMESPACE);
    let name = lease_name(gateway);
    let mut lease = Lease {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(NAMESPACE.into()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_owned(),
                "egressc".to_owned(),
            )])),
            annotations: Some(BTreeMap::from([
                (GATEWAY_ANNOTATION.to_owned(), gateway.to_owned()),
                (VIP_ANNOTATION.to_owned(), vip.to_string()),
            ])),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            lease_duration_seconds: Some(3),
            ..Default::default()
        }),
    };
    lease.meta_mut().resource_version = None;
    leases.create(&pp, &lease).await?;
    Ok(VipControl { leases, name })
}

impl VipControl {
    /// A handle on `gateway`'s Lease as the real controller creates it (nothing is written).
    pub fn attach(client: kube::Client, gateway: &str) -> VipControl {
        VipControl {
            leases: Api::namespaced(client, NAMESPACE),
            name: lease_name(gateway),
        }
    }

    /// The Lease now.
    pub async fn read(&self) -> kube::Result<VipLease> {
        let lease = self.leases.get(&self.name).await?;
        lease_object::read(&lease).ok_or_else(|| {
            kube::Error::Api(kube::core::Status::failure("not a VIP Lease", "Invalid").boxed())
        })
    }

    /// A conditional read-modify-write, retried on conflict.
    async fn update(&self, change: impl Fn(&mut Lease)) -> kube::Result<()> {
        loop {
            let mut lease = self.leases.get(&self.name).await?;
            change(&mut lease);
            match self
                .leases
                .replace(&self.name, &PostParams::default(), &lease)
                .await
            {
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                other => return other.map(drop),
            }
        }
    }

    /// Controller rule 2: `vip-grant = node`; with `takeover` also clears holder and ready
    /// and marks the takeover (the next holder probes before its bring-up).
    pub async fn grant(&self, node: &str, takeover: bool) -> kube::Result<()> {
        self.update(|lease| {
            let old_holder = lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.clone())
                .unwrap_or_default();
            let annotations = lease
                .metadata
                .annotations
                .get_or_insert_with(Default::default);
            annotations.insert(GRANT_ANNOTATION.into(), node.into());
            if takeover {
                annotations.insert(READY_ANNOTATION.into(), String::new());
                annotations.insert(TAKEOVER_ANNOTATION.into(), old_holder);
                lease
                    .spec
                    .get_or_insert_with(Default::default)
                    .holder_identity = Some(String::new());
            }
        })
        .await
    }

    /// Sets an annotation the protocol does not read: a write that only moves the Lease's
    /// resourceVersion (a holder writing with the old one then conflicts).
    pub async fn touch(&self, value: &str) -> kube::Result<()> {
        self.update(|lease| {
            lease
                .metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert("test.egressc.io/touched".into(), value.into());
        })
        .await
    }

    /// Controller rule 3: `vip-grant = ""`.
    pub async fn withdraw(&self) -> kube::Result<()> {
        self.update(|lease| {
            let annotations = lease
                .metadata
                .annotations
                .get_or_insert_with(Default::default);
            annotations.insert(GRANT_ANNOTATION.into(), String::new());
        })
        .await
    }

    /// Polls every 20 ms until `done` holds; the Lease then, or `None` after `timeout`.
    pub async fn wait(
        &self,
        timeout: Duration,
        done: impl Fn(&VipLease) -> bool,
    ) -> Option<VipLease> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(lease) = self.read().await
                && done(&lease)
            {
                return Some(lease);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Waits until `grant == holder == ready == node`.
    pub async fn wait_ready(&self, node: &str, timeout: Duration) -> Option<VipLease> {
        let me = Some(node.to_owned());
        self.wait(timeout, |l| {
            l.view.grant == me && l.view.holder == me && l.view.ready == me
        })
        .await
    }

    /// Watches the holder like the controller does (observed change of holder or renewTime on
    /// this clock), and once the holder has not changed for `D`, grants `to` with a takeover.
    /// Returns when the takeover was written, or `None` after `timeout`.
    pub async fn take_over_when_dead(&self, to: &str, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        let mut last: Option<(Option<String>, Option<String>)> = None;
        let mut last_change = Instant::now();
        while Instant::now() < deadline {
            if let Ok(lease) = self.leases.get(&self.name).await {
                let spec = lease.spec.clone().unwrap_or_default();
                let seen = (
                    spec.holder_identity.clone(),
                    spec.renew_time.map(|t| t.0.to_string()),
                );
                if last.as_ref() != Some(&seen) {
                    last = Some(seen);
                    last_change = Instant::now();
                } else if last_change.elapsed() >= LEASE_DURATION {
                    self.grant(to, true).await.ok()?;
                    return Some(Instant::now());
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

/// The protocol fields of a VIP Lease as first seen at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseChange {
    pub at: Instant,
    pub grant: Option<String>,
    pub holder: Option<String>,
    pub ready: Option<String>,
}

impl VipControl {
    /// Polls the Lease every 10 ms until `stop` is set; every change of grant, holder or
    /// ready, in order (for phase timings).
    pub async fn record_changes(
        self,
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> Vec<LeaseChange> {
        let mut changes: Vec<LeaseChange> = Vec::new();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(lease) = self.read().await {
                let seen = LeaseChange {
                    at: Instant::now(),
                    grant: lease.view.grant,
                    holder: lease.view.holder,
                    ready: lease.view.ready,
                };
                let same = changes.last().is_some_and(|last| {
                    (&last.grant, &last.holder, &last.ready)
                        == (&seen.grant, &seen.holder, &seen.ready)
                });
                if !same {
                    changes.push(seen);
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        changes
    }
}
