//! The compiler pipeline as one pure function per subcommand: input texts in, catalog and
//! diagnostics (and, once wired, manifests) out. The CLI reads files and prints; this module
//! does neither.
//!
//! Today: load → validate. Election and rendering are added to [`compile`] by their owners.

use crate::diag::Diagnostic;
use crate::load::{self, Document, Limits};
use crate::model::catalog::Catalog;
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
    /// The rendered manifest stream. Empty until election and rendering are wired into
    /// [`compile`].
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
    let sources = load_all(inputs, limits, &mut diagnostics);
    let nodes =
        inventory.map(|input| load_all(std::slice::from_ref(input), limits, &mut diagnostics));
    let (catalog, mut found) = validate::validate(sources, nodes, options);
    diagnostics.append(&mut found);
    crate::diag::sort(&mut diagnostics);
    Compiled {
        catalog,
        diagnostics,
        manifests: String::new(),
    }
}

/// Loads, validates and (once wired) elects and renders: what `egressc build` runs. Nothing
/// is rendered when there are errors.
pub fn compile(
    inputs: &[Input],
    inventory: Option<&Input>,
    options: &Options,
    limits: &Limits,
) -> Compiled {
    // Election and rendering of `compiled.catalog` into `compiled.manifests` go here.
    check(inputs, inventory, options, limits)
}

fn load_all(inputs: &[Input], limits: &Limits, diagnostics: &mut Vec<Diagnostic>) -> Vec<Document> {
    let mut documents = Vec::new();
    for input in inputs {
        match load::parse_stream(&input.name, &input.text, limits) {
            Ok(mut docs) => documents.append(&mut docs),
            Err(diagnostic) => diagnostics.push(*diagnostic),
        }
    }
    documents
}
