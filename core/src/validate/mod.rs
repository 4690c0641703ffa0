//! Validation: located documents → the typed [`Catalog`] plus every diagnostic, never failing
//! fast. Pure: no I/O. `build`, `check` and (later) `sync` share this one definition of valid.
//!
//! Objects with errors are left out of the catalog; the catalog's invariants (parsed
//! addresses, unique names, policies referring to existing gateways) hold for what remains.

pub mod documents;
pub mod gateway;
pub mod image;
pub mod inventory;
pub mod labels;
pub mod net;
pub mod nodes;
pub mod policy;
pub mod references;
pub mod suggest;
pub mod syntax;

use crate::diag::{self, Diagnostic};
use crate::load::{Document, Path};
use crate::model::catalog::{Catalog, NodeFacts};
use crate::model::cilium::CiliumVersion;
use documents::{GATEWAY_KIND, POLICY_KIND};
use references::Checked;

/// What validation depends on besides the documents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// The Cilium release compiled for.
    pub cilium: CiliumVersion,
    /// Skip documents of other kinds silently instead of reporting them.
    pub ignore_unknown_kinds: bool,
}

/// Collects diagnostics during one validation.
#[derive(Debug, Default)]
pub struct Report {
    diagnostics: Vec<Diagnostic>,
    errors: usize,
    /// `InternalIP`s of the inventory's nodes (address, node, where it is written), read with
    /// the inventory for the checks that need the sources too.
    node_addresses: Vec<(std::net::IpAddr, String, diag::Span)>,
}

impl Report {
    /// Adds a diagnostic.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.errors += usize::from(diagnostic.is_error());
        self.diagnostics.push(diagnostic);
    }

    /// Number of errors so far (checks compare before/after to tell whether an object is
    /// usable).
    pub fn errors(&self) -> usize {
        self.errors
    }

    /// The diagnostics in reading order.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        diag::sort(&mut self.diagnostics);
        self.diagnostics
    }
}

/// Validates the source documents (gateways and policies) and, when given, the node
/// inventory documents.
pub fn validate(
    sources: Vec<Document>,
    inventory: Option<Vec<Document>>,
    options: &Options,
) -> (Catalog, Vec<Diagnostic>) {
    let mut report = Report::default();
    let nodes = inventory.map(|docs| nodes::read(docs, &mut report));
    validate_with_nodes(sources, nodes, options, report)
}

/// Reads a node inventory on its own, so that a caller can drop the inventory's documents
/// (usually the largest input) before loading the sources; pass the result to
/// [`validate_with_nodes`].
pub fn read_inventory(inventory: Vec<Document>) -> (Vec<NodeFacts>, Report) {
    let mut report = Report::default();
    let nodes = nodes::read(inventory, &mut report);
    (nodes, report)
}

/// [`validate`] for an inventory already read by [`read_inventory`]; `report` holds what
/// reading it found.
pub fn validate_with_nodes(
    sources: Vec<Document>,
    nodes: Option<Vec<NodeFacts>>,
    options: &Options,
    mut report: Report,
) -> (Catalog, Vec<Diagnostic>) {
    let mut sorted = documents::sort(sources, options.ignore_unknown_kinds, &mut report);

    let mut gateways: Vec<Checked<'_>> =
        references::first_of_each_name(&sorted.gateways, GATEWAY_KIND, &mut report)
            .into_iter()
            .filter_map(|i| {
                let obj = &sorted.gateways[i];
                gateway::check(obj, options.cilium, &mut report).map(|gateway| Checked {
                    gateway,
                    doc: &obj.doc,
                })
            })
            .collect();
    references::check_shared_vips(&mut gateways, &mut report);
    references::check_label_collisions(&mut gateways, &mut report);
    if let Some(nodes) = &nodes {
        references::check_node_matches(&gateways, nodes, &mut report);
        let addresses = std::mem::take(&mut report.node_addresses);
        inventory::check_static_vips(&gateways, &addresses, &mut report);
    }
    references::check_gateway_refs(&sorted, &mut report);

    let by_name: std::collections::BTreeMap<&str, &Checked<'_>> = gateways
        .iter()
        .map(|g| (g.gateway.name.as_str(), g))
        .collect();
    let mut policies = Vec::new();
    for i in references::first_of_each_name(&sorted.policies, POLICY_KIND, &mut report) {
        let obj = &mut sorted.policies[i];
        let Some(policy) = policy::check(obj, options.cilium, &mut report) else {
            continue;
        };
        // A policy whose gateway is unknown or invalid has been reported; it cannot compile.
        let Some(target) = by_name.get(policy.gateway.as_str()) else {
            continue;
        };
        let destinations = Path::root().key("spec").key("destinationCIDRs");
        if references::check_families(
            &policy,
            &target.gateway,
            |k| obj.doc.span(&destinations.index(k)),
            &mut report,
        ) {
            policies.push(policy);
        }
    }

    let mut catalog = Catalog {
        gateways: gateways.into_iter().map(|g| g.gateway).collect(),
        policies,
        nodes: nodes.unwrap_or_default(),
    };
    catalog.gateways.sort_by(|a, b| a.name.cmp(&b.name));
    catalog.policies.sort_by(|a, b| a.name.cmp(&b.name));
    (catalog, report.into_sorted())
}
