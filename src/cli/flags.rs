//! Checks of command-line values that end up in rendered objects, as clap value parsers: a
//! bad value is a usage error (exit 2) naming the flag, before anything is read, instead of
//! manifests the API server rejects.

use std::time::Duration;

use super::daemon::parse_duration;
use crate::validate::image::check_image_reference;
use crate::validate::syntax::{
    check_dns_label, check_label_key, check_label_value, check_subdomain,
};

/// A namespace: a DNS-1123 label.
pub fn namespace(value: &str) -> Result<String, String> {
    check_dns_label(value)
        .map(|()| value.to_owned())
        .map_err(|why| {
            format!("a namespace must be a DNS-1123 label (e.g. `egressc-system`): it {why}")
        })
}

/// A container image reference.
pub fn image(value: &str) -> Result<String, String> {
    check_image_reference(value)
        .map(|()| value.to_owned())
        .map_err(|why| format!("not an image reference (e.g. `ghcr.io/org/egressc:1.0`): it {why}"))
}

/// A PriorityClass name (a DNS-1123 subdomain), or empty for none.
pub fn priority_class(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Ok(String::new());
    }
    check_subdomain(value)
        .map(|()| value.to_owned())
        .map_err(|why| format!("a PriorityClass name must be a DNS-1123 subdomain: it {why}"))
}

/// A Node name (a DNS-1123 subdomain).
pub fn node_name(value: &str) -> Result<String, String> {
    check_subdomain(value)
        .map(|()| value.to_owned())
        .map_err(|why| format!("a Node name must be a DNS-1123 subdomain: it {why}"))
}

/// A Lease holder identity: 1–128 characters without spaces or controls (it is also the
/// reporting instance of Events, which the API server caps at 128).
pub fn identity(value: &str) -> Result<String, String> {
    if value.is_empty() || value.len() > 128 {
        return Err("an identity must be 1–128 characters".to_owned());
    }
    if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("an identity must not contain spaces or control characters".to_owned());
    }
    Ok(value.to_owned())
}

/// A duration longer than zero (`500ms`, `2s`, `1m`).
pub fn positive_duration(value: &str) -> Result<Duration, String> {
    let duration = parse_duration(value)?;
    if duration.is_zero() {
        return Err(format!("`{value}` must be longer than zero"));
    }
    Ok(duration)
}

/// A URL path (`/hello`): starts with `/`, no spaces, controls, `?` or `#`.
pub fn url_path(value: &str) -> Result<String, String> {
    let bad = |c: char| c.is_control() || c.is_whitespace() || c == '?' || c == '#';
    if !value.starts_with('/') || value.chars().any(bad) {
        return Err(format!(
            "`{value}` is not a URL path like `/hello` (starts with `/`; no spaces, `?` or `#`)"
        ));
    }
    Ok(value.to_owned())
}

/// A label selector as the API server takes it: comma-separated requirements `key`, `!key`,
/// `key=value`, `key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`, with keys and
/// values checked like labels.
pub fn label_selector(value: &str) -> Result<String, String> {
    let explain = |why: String| format!("not a label selector (e.g. `k8s-app=cilium`): {why}");
    if value.trim().is_empty() {
        return Err(explain("it is empty".to_owned()));
    }
    for requirement in split_requirements(value).map_err(explain)? {
        check_requirement(requirement.trim()).map_err(explain)?;
    }
    Ok(value.to_owned())
}

/// The requirements of a selector: split at commas outside parentheses.
fn split_requirements(selector: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in selector.char_indices() {
        match c {
            '(' if depth == 0 => depth = 1,
            '(' => return Err("nested `(`".to_owned()),
            ')' if depth == 1 => depth = 0,
            ')' => return Err("`)` without `(`".to_owned()),
            ',' if depth == 0 => {
                parts.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("`(` without `)`".to_owned());
    }
    parts.push(&selector[start..]);
    Ok(parts)
}

fn check_requirement(requirement: &str) -> Result<(), String> {
    let key = |key: &str| {
        check_label_key(key.trim()).map_err(|why| format!("the key `{}`: {why}", key.trim()))
    };
    let value = |value: &str| {
        check_label_value(value.trim())
            .map_err(|why| format!("the value `{}`: {why}", value.trim()))
    };
    if requirement.is_empty() {
        return Err("an empty requirement (two commas, or a comma at an end)".to_owned());
    }
    if let Some(rest) = requirement.strip_prefix('!') {
        return key(rest);
    }
    for op in ["!=", "==", "="] {
        if let Some((k, v)) = requirement.split_once(op) {
            return key(k).and_then(|()| value(v));
        }
    }
    for op in [" notin ", " in "] {
        if let Some((k, set)) = requirement.split_once(op) {
            key(k)?;
            let set = set.trim();
            let inner = set
                .strip_prefix('(')
                .and_then(|s| s.strip_suffix(')'))
                .ok_or_else(|| format!("`{set}` is not a set like `(a,b)`"))?;
            return inner.split(',').try_for_each(value);
        }
    }
    key(requirement)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_objects_need_are_checked() {
        assert!(namespace("egressc-system").is_ok());
        for bad in ["Bad_NS", "", "a.b", "-a", &"a".repeat(64)] {
            assert!(namespace(bad).is_err(), "{bad}");
        }
        assert!(image("egressc:1").is_ok());
        assert!(image("").is_err());
        assert!(priority_class("").is_ok());
        assert!(priority_class("system-node-critical").is_ok());
        assert!(priority_class("Bad Class").is_err());
    }

    #[test]
    fn selectors_follow_the_api_server_grammar() {
        for good in [
            "k8s-app=cilium",
            "app.kubernetes.io/name=egressc,app.kubernetes.io/component=vip-agent",
            "a==b, c!=d",
            "a",
            "!a",
            "tier in (web, db),env notin (prod)",
            "a=",
        ] {
            assert_eq!(label_selector(good).as_deref(), Ok(good), "{good}");
        }
        for bad in [
            "", "a=b,", "a b=c", "-bad!=x", "a=b c", "a in b", "a in (b", "a=(b)", "a=b)",
        ] {
            assert!(label_selector(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_names_and_paths() {
        assert_eq!(positive_duration("1ms"), Ok(Duration::from_millis(1)));
        assert!(positive_duration("0s").is_err());
        assert!(positive_duration("5").is_err());
        assert!(node_name("worker-1.example").is_ok());
        assert!(node_name("Worker_1").is_err());
        assert!(identity("sync-7d9f-abc").is_ok());
        for bad in ["", "a b", "a\u{1b}", &"a".repeat(129)] {
            assert!(identity(bad).is_err(), "{bad:?}");
        }
        assert!(url_path("/hello").is_ok());
        for bad in ["hello", "/a b", "/a?b", ""] {
            assert!(url_path(bad).is_err(), "{bad}");
        }
    }
}
