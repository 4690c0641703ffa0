//! Label selectors (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`) and field selectors.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::status::ApiError;

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed `labelSelector`; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let bad = |why: &str| {
            ApiError::bad_request(format!(
                "unable to parse requirement: {why} in labelSelector {text:?}"
            ))
        };
        let mut requirements = Vec::new();
        for term in split_terms(text) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            let requirement = if let Some(key) = term.strip_prefix('!') {
                Requirement::NotExists(valid_key(key.trim()).ok_or_else(|| bad("invalid key"))?)
            } else if let Some((key, value)) = term.split_once("!=") {
                Requirement::NotEquals(
                    valid_key(key.trim()).ok_or_else(|| bad("invalid key"))?,
                    value.trim().to_owned(),
                )
            } else if let Some((key, value)) =
                term.split_once("==").or_else(|| term.split_once('='))
            {
                Requirement::Equals(
                    valid_key(key.trim()).ok_or_else(|| bad("invalid key"))?,
                    value.trim().to_owned(),
                )
            } else if let Some((key, values)) = set_term(term, " notin ") {
                Requirement::NotIn(
                    valid_key(key).ok_or_else(|| bad("invalid key"))?,
                    values.ok_or_else(|| bad("bad value set"))?,
                )
            } else if let Some((key, values)) = set_term(term, " in ") {
                Requirement::In(
                    valid_key(key).ok_or_else(|| bad("invalid key"))?,
                    values.ok_or_else(|| bad("bad value set"))?,
                )
            } else {
                Requirement::Exists(valid_key(term).ok_or_else(|| bad("invalid key"))?)
            };
            requirements.push(requirement);
        }
        Ok(Self { requirements })
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.requirements.iter().all(|req| match req {
            Requirement::Equals(k, v) => label(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => label(k) != Some(v.as_str()),
            Requirement::In(k, set) => label(k).is_some_and(|v| set.contains(v)),
            Requirement::NotIn(k, set) => label(k).is_none_or(|v| !set.contains(v)),
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::NotExists(k) => label(k).is_none(),
        })
    }
}

/// Splits on commas that are not inside an `in (...)` value set.
fn split_terms(text: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&text[start..]);
    terms
}

/// Parses `key in (a, b)`; the outer option says whether the operator matched at all.
fn set_term<'a>(term: &'a str, operator: &str) -> Option<(&'a str, Option<BTreeSet<String>>)> {
    let (key, rest) = term.split_once(operator)?;
    let values = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .map(|inner| inner.split(',').map(|v| v.trim().to_owned()).collect());
    Some((key.trim(), values))
}

fn valid_key(key: &str) -> Option<String> {
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    ok.then(|| key.to_owned())
}

/// A parsed `fieldSelector`: `path=value`, `path==value`, `path!=value` over dotted JSON paths.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector {
    terms: Vec<(Vec<String>, String, bool)>,
}

impl FieldSelector {
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let mut terms = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (path, value, equal) = if let Some((p, v)) = term.split_once("!=") {
                (p, v, false)
            } else if let Some((p, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (p, v, true)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{text}'; can't understand '{term}'"
                )));
            };
            let path = path.trim().split('.').map(str::to_owned).collect();
            terms.push((path, value.trim().to_owned(), equal));
        }
        Ok(Self { terms })
    }

    /// The `metadata.name` the selector pins, which lets a lookup skip the scan.
    pub fn pinned_name(&self) -> Option<&str> {
        self.terms
            .iter()
            .find(|(path, _, equal)| {
                *equal && path.len() == 2 && path[0] == "metadata" && path[1] == "name"
            })
            .map(|(_, value, _)| value.as_str())
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.terms.iter().all(|(path, value, equal)| {
            let mut node = Some(object);
            for segment in path {
                node = node.and_then(|n| n.get(segment));
            }
            let actual = match node {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(labels: Value) -> Value {
        json!({"metadata": {"name": "n1", "labels": labels}, "spec": {"nodeName": "w1"}})
    }

    #[test]
    fn label_operators_follow_apiserver_semantics() {
        let obj = node(json!({"role": "egress", "zone": "a", "active-for-gw": ""}));
        let cases = [
            ("role=egress", true),
            ("role==egress", true),
            ("role!=egress", false),
            ("missing!=x", true),
            ("zone in (a, b)", true),
            ("zone notin (a,b)", false),
            ("missing notin (a)", true),
            ("missing in (a)", false),
            ("active-for-gw", true),
            ("!active-for-gw", false),
            ("!missing", true),
            ("role=egress,zone in (b,c)", false),
            ("role=egress,zone in (b,a),!missing", true),
            ("", true),
        ];
        for (selector, expected) in cases {
            let parsed = LabelSelector::parse(selector).expect(selector);
            assert_eq!(parsed.matches(&obj), expected, "{selector}");
        }
    }

    #[test]
    fn malformed_label_selectors_are_bad_requests() {
        for selector in ["a in (b", "=x", "!", "bad key=x"] {
            let err = LabelSelector::parse(selector).expect_err(selector);
            assert_eq!(err.code, 400, "{selector}");
        }
    }

    #[test]
    fn field_selectors_compare_dotted_paths() {
        let obj = node(json!({}));
        let matches = |s: &str| FieldSelector::parse(s).expect(s).matches(&obj);
        assert!(matches("metadata.name=n1"));
        assert!(matches("metadata.name==n1,spec.nodeName=w1"));
        assert!(!matches("spec.nodeName!=w1"));
        assert!(matches("metadata.namespace="));
        assert!(!matches("metadata.name=n2"));
        assert_eq!(
            FieldSelector::parse("metadata.name=n1")
                .expect("ok")
                .pinned_name(),
            Some("n1")
        );
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}
