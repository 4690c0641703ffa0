//! The compiler pipeline as one pure function per subcommand: input texts in, catalog and
//! diagnostics (and, once wired, manifests) out. The CLI reads files and prints; this module
//! does neither.
//!
//! `check`: load → validate. `compile`: load → validate → elect → render.

use crate::diag::Diagnostic;
use crate::elect;
use crate::load::{self, Document, Limits, Needed};
use crate::model::catalog::Catalog;
use crate::render::{RenderError, RenderOptions, Renderer};
use crate::validate::{self, Options};

/// One input stream: a display name (a path, or `<stdin>`) and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    /// Name used in diagnostics.
    pub name: String,
    /// The YAML or JSON text.
    pub text: String,
}

/// Result of checking or compiling.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Compiled {
    /// The validated objects (those without errors).
    pub catalog: Catalog,
    /// Every diagnostic of every input, in reading order.
    pub diagnostics: Vec<Diagnostic>,
    /// The rendered manifest stream (empty for `check` and when there are errors).
    pub manifests: String,
}

impl Compiled {
    /// True when any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Loads and validates: what `egressc check` runs.
pub fn check(
    inputs: &[Input],
    inventory: Option<&Input>,
    options: &Options,
    limits: &Limits,
) -> Compiled {
    let mut diagnostics = Vec::new();
    // The inventory is read first and its documents dropped before the sources are loaded:
    // the two located trees never coexist, which keeps peak memory down (the inventory of a
    // large cluster is often the largest input).
    let (nodes, report) = match inventory {
        Some(input) => {
            let docs = load_all(
                std::slice::from_ref(input),
                limits,
                Some(&validate::nodes::NEEDED),
                &mut diagnostics,
            );
            let (nodes, report) = validate::read_inventory(docs);
            (Some(nodes), report)
        }
        None => (None, validate::Report::default()),
    };
    let sources = load_all(inputs, limits, None, &mut diagnostics);
    let (catalog, mut found) = validate::validate_with_nodes(sources, nodes, options, report);
    diagnostics.append(&mut found);
    crate::diag::sort(&mut diagnostics);
    Compiled {
        catalog,
        diagnostics,
        manifests: String::new(),
    }
}

/// Loads, validates, elects and renders: what `egressc build` runs. Nothing is rendered when
/// there are errors. `render.include_node_labels` is set from whether an inventory is given.
///
/// A [`RenderError`] (a broken template override, or an object the target Cilium cannot
/// express) is returned as such: it has no source position to attach to.
pub fn compile(
    inputs: &[Input],
    inventory: Option<&Input>,
    options: &Options,
    limits: &Limits,
    renderer: &Renderer,
    render: &RenderOptions,
) -> Result<Compiled, RenderError> {
    let mut compiled = check(inputs, inventory, options, limits);
    if compiled.has_errors() {
        return Ok(compiled);
    }
    let election = elect::elect(&compiled.catalog.gateways, &compiled.catalog.nodes);
    let render = RenderOptions {
        cilium: options.cilium,
        include_node_labels: inventory.is_some(),
        ..render.clone()
    };
    compiled.manifests = renderer.render(&compiled.catalog, &election, &render)?;
    Ok(compiled)
}

fn load_all(
    inputs: &[Input],
    limits: &Limits,
    needed: Option<&Needed>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Document> {
    let mut documents = Vec::new();
    for input in inputs {
        match load::parse_stream_needed(&input.name, &input.text, limits, needed) {
            Ok(mut docs) => documents.append(&mut docs),
            Err(diagnostic) => diagnostics.push(*diagnostic),
        }
    }
    documents
}
