//! Assembling rendered objects into one YAML stream in a stable order: by kind, in the order a
//! plain `kubectl apply -f` needs (Namespace first, workloads after their RBAC), then by name.

/// Kinds in apply order.
const KIND_ORDER: &[&str] = &[
    "CustomResourceDefinition",
    "Namespace",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "DaemonSet",
    "Deployment",
    "PodDisruptionBudget",
    "ServiceMonitor",
    "PodMonitor",
    "PrometheusRule",
    "CiliumEgressGatewayPolicy",
    "Node",
];

/// One rendered object.
#[derive(Debug)]
pub struct Document {
    kind_rank: usize,
    name: String,
    text: String,
}

impl Document {
    /// A rendered object of `kind` called `name`; `text` ends with a newline.
    pub fn new(kind: &str, name: &str, text: String) -> Self {
        Document {
            kind_rank: KIND_ORDER
                .iter()
                .position(|k| *k == kind)
                .unwrap_or(KIND_ORDER.len()),
            name: name.to_string(),
            text,
        }
    }
}

/// The documents sorted by kind, then name (then text, so that even duplicate names give the
/// same bytes whatever the input order), each preceded by `---`.
pub fn join(mut documents: Vec<Document>) -> String {
    documents.sort_by(|a, b| (a.kind_rank, &a.name, &a.text).cmp(&(b.kind_rank, &b.name, &b.text)));
    let len = documents.iter().map(|d| d.text.len() + 4).sum();
    let mut out = String::with_capacity(len);
    for document in documents {
        out.push_str("---\n");
        out.push_str(&document.text);
    }
    out
}
