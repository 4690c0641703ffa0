//! Checks of command-line values that end up in rendered objects, as clap value parsers: a
//! bad value is a usage error (exit 2) naming the flag, before anything is read, instead of
//! manifests the API server rejects.

use crate::validate::image::check_image_reference;
use crate::validate::syntax::{check_dns_label, check_subdomain};

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
}
