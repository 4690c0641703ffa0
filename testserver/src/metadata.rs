//! Metadata-only responses (`PartialObjectMetadata`), as the apiserver serves them to clients
//! that ask with `Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1` (or
//! `…;as=PartialObjectMetadataList;…` for lists) — kube-runtime's metadata watchers do. Every
//! object is reduced to `apiVersion: meta.k8s.io/v1`, `kind: PartialObjectMetadata` and its
//! `metadata`.

use axum::http::{HeaderMap, header};
use serde_json::{Value, json};

/// The API version of metadata-only objects and lists.
pub const API_VERSION: &str = "meta.k8s.io/v1";

/// Does the client ask for metadata only?
pub fn requested(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|accept| {
            accept
                .split(';')
                .map(str::trim)
                .any(|param| param.starts_with("as=PartialObjectMetadata"))
        })
}

/// `object` as a `PartialObjectMetadata`.
pub fn partial(object: &Value) -> Value {
    json!({
        "apiVersion": API_VERSION,
        "kind": "PartialObjectMetadata",
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn only_the_metadata_accept_parameter_asks_for_metadata() {
        let mut headers = HeaderMap::new();
        assert!(!requested(&headers));
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!requested(&headers));
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1, application/json",
            ),
        );
        assert!(requested(&headers));
    }

    #[test]
    fn a_partial_object_keeps_only_the_metadata() {
        let node = json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "n1", "labels": {"a": "b"}}, "spec": {"x": 1}, "status": {}});
        assert_eq!(
            partial(&node),
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                "metadata": {"name": "n1", "labels": {"a": "b"}}})
        );
    }
}
