//! What can go wrong while rendering, as data. Template errors carry the template name and line
//! so that a broken `--templates` override points at the offending line.

use thiserror::Error;

use crate::diag::Code;

/// A rendering failure.
#[derive(Debug, Error)]
pub enum RenderError {
    /// A template failed to compile or render.
    #[error("template `{name}`{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Template {
        /// The template the error occurred in (an included template when the error is there).
        name: String,
        /// 1-based line in that template, when known.
        line: Option<usize>,
        /// What went wrong.
        message: String,
        /// The underlying minijinja error.
        #[source]
        source: minijinja::Error,
    },
    /// An override names a template the renderer does not use.
    #[error("unknown template `{name}`{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownTemplate {
        /// The name given.
        name: String,
        /// The most similar built-in name, if any is close.
        suggestion: Option<String>,
    },
    /// A policy refers to a gateway the catalog does not have (validation normally prevents this).
    #[error("policy `{policy}` refers to unknown EgressGateway `{gateway}`")]
    UnknownGateway {
        /// The policy.
        policy: String,
        /// The missing gateway.
        gateway: String,
    },
    /// The target Cilium version cannot express what the input asks for.
    #[error("{object}: {detail} is not supported by Cilium 1.{minor}")]
    UnsupportedByCilium {
        /// The object that cannot be rendered, e.g. `EgressGatewayPolicy/web`.
        object: String,
        /// What it needs.
        detail: String,
        /// The targeted Cilium minor version.
        minor: u8,
    },
    /// An option value is out of range.
    #[error("invalid render option: {0}")]
    InvalidOption(String),
    /// A template rendered something that is not one valid object of the kind it must render
    /// (broken YAML, a duplicate key, another kind or name, a field Cilium does not have).
    #[error(
        "template `{template}` rendered an invalid {object}: line {line} of its output: {message}"
    )]
    InvalidOutput {
        /// The template.
        template: String,
        /// What it was rendering, e.g. `CiliumEgressGatewayPolicy/web`.
        object: String,
        /// 1-based line in the rendered text.
        line: u32,
        /// What is wrong there.
        message: String,
    },
    /// One rendered object is larger than [`MAX_OBJECT_BYTES`](super::MAX_OBJECT_BYTES).
    #[error(
        "template `{template}` rendered more than {limit} bytes for {object} (the API server \
         stores objects of at most about 1.5 MiB)"
    )]
    ObjectTooLarge {
        /// The template.
        template: String,
        /// What it was rendering.
        object: String,
        /// The budget in bytes.
        limit: usize,
    },
    /// The whole stream is larger than [`MAX_OUTPUT_BYTES`](super::MAX_OUTPUT_BYTES).
    #[error("the rendered manifests exceed the output budget of {limit} bytes")]
    OutputTooLarge {
        /// The budget in bytes.
        limit: usize,
    },
}

impl RenderError {
    /// The diagnostic code of a failure caused by templates or by the size of the output;
    /// `None` for the others (input the target Cilium cannot express, internal errors).
    pub fn code(&self) -> Option<Code> {
        match self {
            RenderError::Template { .. }
            | RenderError::UnknownTemplate { .. }
            | RenderError::ObjectTooLarge { .. } => Some(Code::TemplateError),
            RenderError::InvalidOutput { .. } => Some(Code::TemplateOutputInvalid),
            RenderError::OutputTooLarge { .. } => Some(Code::OutputTooLarge),
            RenderError::UnknownGateway { .. }
            | RenderError::UnsupportedByCilium { .. }
            | RenderError::InvalidOption(_) => None,
        }
    }

    /// Wraps a minijinja error; `fallback_name` is used when the error carries no template name.
    pub(crate) fn template(fallback_name: &str, source: minijinja::Error) -> Self {
        let message = match (source.kind(), source.detail()) {
            (minijinja::ErrorKind::OutOfFuel, _) => format!(
                "the template does more work than a render may ({} units of fuel: instructions \
                 and data); look for loops that never end or values that grow without bound",
                super::engine::TEMPLATE_FUEL
            ),
            (kind, Some(detail)) => format!("{kind}: {detail}"),
            (kind, None) => kind.to_string(),
        };
        RenderError::Template {
            name: source.name().unwrap_or(fallback_name).to_string(),
            line: source.line(),
            message,
            source,
        }
    }
}
