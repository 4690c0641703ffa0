//! Label syntax in selectors: `nodeSelector` maps, and pod selectors with `matchLabels` and
//! `matchExpressions` (operator ↔ values rules of the Kubernetes API).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::Report;
use super::suggest::did_you_mean;
use super::syntax::{check_label_key, check_label_value};
use crate::diag::{Code, Diagnostic, Span};
use crate::load::{Document, Path};

/// Cilium lets pod selector keys name the label source (`k8s:app`); the rest is a label key.
const CILIUM_SOURCES: &[&str] = &["k8s:", "any:"];
const OPERATORS: &[&str] = &["In", "NotIn", "Exists", "DoesNotExist"];

/// Checks every key and value of a label map at `path`. `cilium_keys` admits Cilium's
/// source prefixes on keys (pod selectors only).
pub fn check_map(
    doc: &Document,
    path: &Path,
    map: &BTreeMap<String, String>,
    cilium_keys: bool,
    report: &mut Report,
) {
    for (key, value) in map {
        let entry = path.key(key.clone());
        check_key(doc.key_span(&entry), key, cilium_keys, report);
        if let Err(why) = check_label_value(value) {
            report.push(
                Diagnostic::new(
                    Code::InvalidLabelValue,
                    doc.span(&entry),
                    format!("label value `{value}` of `{key}`: {why}"),
                )
                .with_hint("label values are at most 63 letters, digits, `-`, `_`, `.`, or empty"),
            );
        }
    }
}

fn check_key(span: Span, key: &str, cilium_keys: bool, report: &mut Report) {
    let bare = if cilium_keys {
        CILIUM_SOURCES
            .iter()
            .find_map(|source| key.strip_prefix(source))
            .unwrap_or(key)
    } else {
        key
    };
    if let Err(why) = check_label_key(bare) {
        report.push(
            Diagnostic::new(
                Code::InvalidLabelKey,
                span,
                format!("label key `{key}`: {why}"),
            )
            .with_hint("label keys look like `app` or `example.com/role`"),
        );
    }
}

/// Checks a pod selector at `path`; returns true when it is empty (selects every pod).
pub fn check_selector(
    doc: &Document,
    path: &Path,
    selector: &LabelSelector,
    report: &mut Report,
) -> bool {
    let labels = selector.match_labels.clone().unwrap_or_default();
    check_map(doc, &path.key("matchLabels"), &labels, true, report);
    let expressions = selector.match_expressions.as_deref().unwrap_or_default();
    for (i, expression) in expressions.iter().enumerate() {
        let at = path.key("matchExpressions").index(i);
        // Here the label key is the value of the `key` field: point at that value.
        check_key(doc.span(&at.key("key")), &expression.key, true, report);
        let values = expression.values.as_deref().unwrap_or_default();
        let operator = expression.operator.as_str();
        let problem = match operator {
            "In" | "NotIn" if values.is_empty() => {
                Some(format!("operator `{operator}` needs at least one value"))
            }
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                Some(format!("operator `{operator}` must not have values"))
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => None,
            other => {
                report.push(
                    Diagnostic::new(
                        Code::InvalidSelectorExpression,
                        doc.span(&at.key("operator")),
                        format!("unknown operator `{other}`"),
                    )
                    .with_hint(
                        did_you_mean(other, OPERATORS.iter().copied())
                            .unwrap_or_else(|| "use In, NotIn, Exists or DoesNotExist".to_owned()),
                    ),
                );
                None
            }
        };
        if let Some(problem) = problem {
            let hint = if values.is_empty() {
                "add `values: [...]`, or use `Exists`".to_owned()
            } else {
                "remove `values`".to_owned()
            };
            report.push(
                Diagnostic::new(
                    Code::InvalidSelectorExpression,
                    doc.span(&at.key("operator")),
                    problem,
                )
                .with_hint(hint),
            );
        }
        for (j, value) in values.iter().enumerate() {
            if let Err(why) = check_label_value(value) {
                report.push(Diagnostic::new(
                    Code::InvalidLabelValue,
                    doc.span(&at.key("values").index(j)),
                    format!("label value `{value}`: {why}"),
                ));
            }
        }
    }
    labels.is_empty() && expressions.is_empty()
}
