//! Input budgets: deliberate limits that admit real inputs (tens of thousands of objects) and
//! reject YAML bombs fast. Each exceeded budget maps to its own diagnostic code.

use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{
    Budget, DefaultMessageFormatter, Error, MessageFormatter, NonFiniteFloatPolicy, Options,
};

use super::Pos;
use crate::diag::{Code, Diagnostic, Span};

/// The budgets of one input stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of text (default 192 MiB): with the text held once, one value the scanner
    /// builds by doubling (at most 2 × 128 MiB while it grows) stays under 512 MiB resident.
    pub max_bytes: usize,
    /// Documents (default 100,000).
    pub max_documents: usize,
    /// Nesting of sequences and mappings (default 64; real manifests need < 15).
    pub max_depth: usize,
    /// Alias uses (default 10,000); anchors are bounded by the same number.
    pub max_aliases: usize,
    /// Events replayed by alias expansion (default 20,000). Measured on a release build, a
    /// billion-laughs bomb is stopped after this many events: at 1,000,000 it cost 0.65 s and
    /// 200 MB, at 100,000 0.17 s and 24 MB; real inputs replay a few hundred.
    pub max_alias_replay: usize,
    /// YAML nodes (default 20,000,000: 100,000 documents of 200 nodes each).
    pub max_nodes: usize,
    /// Total bytes of scalar text (default 128 MiB).
    pub max_scalar_bytes: usize,
    /// Bytes of one scalar (default 8 MiB): no Kubernetes object holds a larger value (etcd
    /// stores up to 1.5 MiB per object). E060 ([`super::scalar_cap`]).
    pub max_single_scalar_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 192 * 1024 * 1024,
            max_documents: 100_000,
            max_depth: 64,
            max_aliases: 10_000,
            max_alias_replay: 20_000,
            max_nodes: 20_000_000,
            max_scalar_bytes: 128 * 1024 * 1024,
            max_single_scalar_bytes: 8 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// These limits with some replaced, from `name=value` pairs separated by commas, e.g.
    /// `max_nodes=1000,max_depth=8` (the field names of this struct).
    pub fn with_overrides(mut self, spec: &str) -> Result<Limits, String> {
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` is not `name=value`"))?;
            let value: usize = value
                .trim()
                .parse()
                .map_err(|_| format!("`{value}` is not a count"))?;
            let field = match name.trim() {
                "max_bytes" => &mut self.max_bytes,
                "max_documents" => &mut self.max_documents,
                "max_depth" => &mut self.max_depth,
                "max_aliases" => &mut self.max_aliases,
                "max_alias_replay" => &mut self.max_alias_replay,
                "max_nodes" => &mut self.max_nodes,
                "max_scalar_bytes" => &mut self.max_scalar_bytes,
                "max_single_scalar_bytes" => &mut self.max_single_scalar_bytes,
                other => return Err(format!("unknown budget `{other}`")),
            };
            *field = value;
        }
        Ok(self)
    }

    /// serde-saphyr options enforcing these limits.
    pub fn options(&self) -> Options {
        let mut budget = Budget::default();
        budget.max_reader_input_bytes = Some(self.max_bytes);
        budget.max_documents = self.max_documents;
        budget.max_depth = self.max_depth;
        budget.max_aliases = self.max_aliases;
        budget.max_anchors = self.max_aliases;
        budget.max_nodes = self.max_nodes;
        // Every node is at most two events (start and end), plus document events.
        budget.max_events = self
            .max_nodes
            .saturating_mul(2)
            .saturating_add(self.max_documents.saturating_mul(2));
        budget.max_total_scalar_bytes = self.max_scalar_bytes;
        budget.max_recorded_anchor_events = self.max_alias_replay;
        let mut options = Options::default();
        options.budget = Some(budget);
        options.alias_limits.max_total_replayed_events = self.max_alias_replay;
        options.with_snippet = false;
        // Comments are skipped by the scanner, never collected: a 100 MB comment would
        // otherwise be copied into a string (and over its growth, twice) before any budget
        // could see it. egressc reads no comment.
        options.emit_comments = false;
        // `.nan`/`.inf` become floats like any other number: a field that wants a string then
        // reports a located type error, and fields egressc ignores (a Node's status) stay
        // harmless, instead of the whole file failing as a syntax error.
        options.non_finite_float_policy = NonFiniteFloatPolicy::PassThrough;
        options
    }
}

/// Turns a serde-saphyr error into a diagnostic: budget breaches get their own codes,
/// everything else is a syntax error at the parser's position.
pub(super) fn diagnose(file: &str, error: &Error, limits: &Limits) -> Diagnostic {
    let span = span_of(file, error);
    let (code, message, hint) = classify(original(error), limits);
    Diagnostic::new(code, span, message).with_hint_opt(hint)
}

/// For a duplicate-key error: `Some(key)` (the key when the parser names it).
pub(super) fn duplicate_key(error: &Error) -> Option<Option<&str>> {
    match original(error) {
        Error::DuplicateMappingKey { key, .. } => Some(key.as_deref()),
        _ => None,
    }
}

/// The error under alias and snippet wrappers.
fn original(mut error: &Error) -> &Error {
    while let Error::AliasError { error: inner, .. } | Error::WithSnippet { error: inner, .. } =
        error
    {
        error = inner;
    }
    error
}

fn span_of(file: &str, error: &Error) -> Span {
    let Some(location) = error.location() else {
        return Span::file(file);
    };
    let pos = Pos {
        line: u32::try_from(location.line()).unwrap_or(u32::MAX).max(1),
        col: u32::try_from(location.column()).unwrap_or(u32::MAX).max(1),
        len: 1,
    };
    Span {
        file: file.to_owned(),
        line: pos.line,
        col: pos.col,
        len: pos.len,
        path: None,
    }
}

fn classify(error: &Error, limits: &Limits) -> (Code, String, Option<String>) {
    let split = Some("split the input into several files".to_owned());
    match error {
        Error::Budget { breach, .. } => match breach {
            BudgetBreach::Documents { .. } => (
                Code::TooManyDocuments,
                format!("more than {} documents in one stream", limits.max_documents),
                split,
            ),
            BudgetBreach::Depth { .. } => (
                Code::NestingTooDeep,
                format!("nesting deeper than {} levels", limits.max_depth),
                Some("no egressc input nests this deep; check the indentation".to_owned()),
            ),
            BudgetBreach::Aliases { .. }
            | BudgetBreach::Anchors { .. }
            | BudgetBreach::AliasAnchorRatio { .. }
            | BudgetBreach::RecordedAnchorEvents { .. }
            | BudgetBreach::RecordedAnchorBytes { .. }
            | BudgetBreach::MergeKeys { .. } => alias_budget(limits),
            BudgetBreach::Nodes { .. } | BudgetBreach::Events { .. } => (
                Code::TooManyNodes,
                format!("more than {} YAML nodes in one stream", limits.max_nodes),
                split,
            ),
            BudgetBreach::ScalarBytes { .. } => (
                Code::ScalarBudget,
                format!(
                    "more than {} bytes of scalar text in one stream",
                    limits.max_scalar_bytes
                ),
                split,
            ),
            BudgetBreach::InputBytes { .. } => (
                Code::InputTooLarge,
                format!("input larger than {} bytes", limits.max_bytes),
                split,
            ),
            other => (
                Code::TooManyNodes,
                format!("input exceeds a parser budget ({other:?})"),
                split,
            ),
        },
        Error::AliasReplayLimitExceeded { .. }
        | Error::AliasExpansionLimitExceeded { .. }
        | Error::AliasReplayStackDepthExceeded { .. } => alias_budget(limits),
        // The parser's own message names its configuration knob; say what the user can do.
        Error::DuplicateMappingKey { key, .. } => (
            Code::YamlSyntax,
            match key {
                Some(key) => format!("duplicate mapping key `{key}`"),
                None => "duplicate mapping key".to_owned(),
            },
            Some("each key may appear once per mapping; merge the two entries".to_owned()),
        ),
        // The scanner's own guard against runaway flow nesting (`[[[[…`) fires before the
        // depth budget can see the nodes; to the user it is the same problem.
        Error::ExternalMessage { msg, .. } if msg == "recursion limit exceeded" => (
            Code::NestingTooDeep,
            format!("nesting deeper than {} levels", limits.max_depth),
            Some("no egressc input nests this deep; check the brackets".to_owned()),
        ),
        Error::RecursiveReferencesRequireWeakTypes { .. } => (
            Code::YamlSyntax,
            "an alias is used inside the anchored value it refers to (a cycle)".to_owned(),
            Some("an alias may only refer to a value that is already complete".to_owned()),
        ),
        other => (Code::YamlSyntax, message_of(other), None),
    }
}

fn alias_budget(limits: &Limits) -> (Code, String, Option<String>) {
    (
        Code::AliasBudget,
        format!(
            "YAML aliases expand beyond the budget ({} aliases, {} replayed events)",
            limits.max_aliases, limits.max_alias_replay
        ),
        Some("write the values out instead of using anchors and aliases".to_owned()),
    )
}

/// The parser's message without its location suffix (the span carries the location).
fn message_of(error: &Error) -> String {
    let message = DefaultMessageFormatter.format_message(error).into_owned();
    match message.find(" at line ") {
        Some(cut) => message[..cut].to_owned(),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::parse_stream;

    fn code_of(text: &str, limits: &Limits) -> Code {
        let d = parse_stream("b.yaml", text, limits).expect_err("must breach");
        d.code
    }

    #[test]
    fn billion_laughs_is_rejected_as_alias_budget() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..10 {
            let prev = (b'a' + level - 1) as char;
            let this = (b'a' + level) as char;
            bomb.push_str(&format!(
                "{this}: &{this} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        assert_eq!(code_of(&bomb, &Limits::default()), Code::AliasBudget);
    }

    #[test]
    fn each_budget_has_its_code() {
        let small = Limits {
            max_bytes: 100,
            max_documents: 3,
            max_depth: 4,
            max_scalar_bytes: 40,
            ..Limits::default()
        };
        assert_eq!(code_of(&"#".repeat(101), &small), Code::InputTooLarge);
        assert_eq!(
            code_of("a: 1\n---\nb: 1\n---\nc: 1\n---\nd: 1\n", &small),
            Code::TooManyDocuments
        );
        assert_eq!(code_of("a: [[[[[1]]]]]\n", &small), Code::NestingTooDeep);
        let brackets = format!("a: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(code_of(&brackets, &Limits::default()), Code::NestingTooDeep);
        let few_nodes = Limits {
            max_nodes: 50,
            ..Limits::default()
        };
        assert_eq!(
            code_of(&format!("[{}]", "1,".repeat(60)), &few_nodes),
            Code::TooManyNodes
        );
        assert_eq!(
            code_of(&format!("a: {}\n", "x".repeat(60)), &small),
            Code::ScalarBudget
        );
    }

    #[test]
    fn overrides_replace_named_budgets_only() {
        let limits = Limits::default()
            .with_overrides("max_nodes=1000, max_depth=8")
            .expect("valid");
        assert_eq!(limits.max_nodes, 1000);
        assert_eq!(limits.max_depth, 8);
        assert_eq!(limits.max_bytes, Limits::default().max_bytes);
        assert!(Limits::default().with_overrides("max_nodes").is_err());
        assert!(Limits::default().with_overrides("max_nodes=x").is_err());
        assert!(Limits::default().with_overrides("nodes=1").is_err());
    }

    #[test]
    fn defaults_admit_many_documents() {
        let doc = "apiVersion: v1\nkind: Node\nmetadata:\n  name: n\n  labels: {a: b}\n---\n";
        let text = doc.repeat(5_000);
        let docs = parse_stream("big.yaml", &text, &Limits::default()).expect("within budget");
        assert_eq!(docs.len(), 5_000);
    }
}
