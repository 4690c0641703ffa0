//! What can go wrong while rendering, as data. Template errors carry the template name and line
//! so that a broken `--templates` override points at the offending line.

use thiserror::Error;

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
}

impl RenderError {
    /// Wraps a minijinja error; `fallback_name` is used when the error carries no template name.
    pub(crate) fn template(fallback_name: &str, source: minijinja::Error) -> Self {
        let message = match source.detail() {
            Some(detail) => format!("{}: {detail}", source.kind()),
            None => source.kind().to_string(),
        };
        RenderError::Template {
            name: source.name().unwrap_or(fallback_name).to_string(),
            line: source.line(),
            message,
            source,
        }
    }
}
