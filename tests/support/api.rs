//! Small helpers over the test API server shared by the seeded test clusters
//! (`support/fleet.rs`, `soak/world.rs`): APIs of egressc's and Cilium's custom resources, and
//! readiness as kubelet and the node lifecycle controller write it (the `Ready` condition of a
//! Node or a Pod, by merge patch of the status).

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::json;

/// The CRDs a test cluster needs, as YAML texts: egressc's own, and the CiliumNode and CEGP
/// (Cilium 1.19) fixtures.
pub fn crd_texts() -> std::io::Result<Vec<String>> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut texts = vec![egressc::crds::render_crds()];
    for fixture in [
        "ciliumnodes.crd.yaml",
        "ciliumegressgatewaypolicies.v1.19.0.yaml",
    ] {
        texts.push(std::fs::read_to_string(format!(
            "{root}/tests/fixtures/{fixture}"
        ))?);
    }
    Ok(texts)
}

pub fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// A cluster-wide API of a `cilium.io/v2` or `network.deckhouse.io/v1alpha1` kind.
pub fn dynamic(client: &Client, group: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let version = if group == "cilium.io" {
        "v2"
    } else {
        "v1alpha1"
    };
    Api::all_with(client.clone(), &resource(group, version, kind, plural))
}

/// Sets the `Ready` condition of `name` (a Node or a Pod) to `ready`.
pub async fn set_ready<K>(api: &Api<K>, name: &str, ready: bool) -> kube::Result<()>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let status = if ready { "True" } else { "False" };
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"conditions": [{"type": "Ready", "status": status}]}})),
    )
    .await
    .map(drop)
}
