//! The GitLab Code Quality renderer (`--format codequality`): a JSON array of issues
//! (`description`, `check_name`, `fingerprint`, `severity`, `location.path`,
//! `location.lines.begin`) that a job publishes with `artifacts:reports:codequality`, so merge
//! requests show egressc's findings inline.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::diag::{Diagnostic, Severity};

/// Renders all diagnostics as one Code Quality report, followed by a newline.
pub fn render_codequality(diagnostics: &[Diagnostic]) -> String {
    let issues: Vec<Value> = diagnostics.iter().map(issue).collect();
    let mut text = serde_json::to_string_pretty(&issues).unwrap_or_else(|_| "[]".to_owned());
    text.push('\n');
    text
}

fn issue(d: &Diagnostic) -> Value {
    let mut description = format!("{}: {}", d.code.as_str(), d.message);
    if let Some(hint) = &d.hint {
        description.push_str(&format!(" (help: {hint})"));
    }
    json!({
        "description": description,
        "check_name": d.code.as_str(),
        "fingerprint": fingerprint(d),
        "severity": match d.severity() {
            Severity::Error => "major",
            Severity::Warning => "minor",
        },
        "location": {
            "path": d.span.file,
            "lines": {"begin": d.span.line},
        },
    })
}

/// Stable across runs and across unrelated edits of the file (GitLab matches issues between
/// the base and the head of a merge request by it): code, file, YAML path and message, not
/// the line.
fn fingerprint(d: &Diagnostic) -> String {
    let mut hash = Sha256::new();
    for part in [
        d.code.as_str(),
        d.span.file.as_str(),
        d.span.path.as_deref().unwrap_or_default(),
        d.message.as_str(),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{Code, Span};

    fn at(line: u32) -> Diagnostic {
        Diagnostic::new(
            Code::UnknownGateway,
            Span {
                line,
                path: Some("spec.egressGatewayName".into()),
                ..Span::file("egress/p.yaml")
            },
            "unknown",
        )
        .with_hint("did you mean `gw`?")
    }

    #[test]
    fn issues_carry_gitlab_s_fields() {
        let parsed: Value = serde_json::from_str(&render_codequality(&[at(8)])).unwrap();
        let issue = &parsed[0];
        assert_eq!(issue["check_name"], "E022");
        assert_eq!(issue["severity"], "major");
        assert_eq!(issue["location"]["path"], "egress/p.yaml");
        assert_eq!(issue["location"]["lines"]["begin"], 8);
        assert!(
            issue["description"]
                .as_str()
                .unwrap()
                .contains("did you mean")
        );
        assert_eq!(issue["fingerprint"].as_str().unwrap().len(), 32);
    }

    #[test]
    fn the_fingerprint_ignores_the_line_but_not_the_finding() {
        assert_eq!(fingerprint(&at(8)), fingerprint(&at(80)));
        let mut other = at(8);
        other.message = "another".into();
        assert_ne!(fingerprint(&at(8)), fingerprint(&other));
    }
}
