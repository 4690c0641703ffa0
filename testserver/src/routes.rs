//! HTTP routing: the axum router, fault gating (latency, outage), the `/__testserver/*`
//! control endpoints, discovery paths, and parsing of resource URLs into a [`Target`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

use crate::App;
use crate::RequestRecord;
use crate::discovery;
use crate::openapi;
use crate::registry::Registry;
use crate::resources;
use crate::status::ApiError;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/__testserver/{action}", post(control))
        .fallback(api)
        .with_state(app)
}

pub fn json_response(code: StatusCode, value: &Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

pub fn error_response(error: &ApiError) -> Response {
    let code = StatusCode::from_u16(error.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &error.to_status())
}

/// `POST /__testserver/outage?seconds=3`, `/restore`, `/drop-watches`, `/latency?ms=50`,
/// `/compact` (forget watch history so resuming watches get 410).
async fn control(
    State(app): State<Arc<App>>,
    Path(action): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let number = |key: &str| {
        query
            .get(key)
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    match action.as_str() {
        "outage" => app
            .faults
            .outage(Duration::from_secs_f64(number("seconds").unwrap_or(3.0))),
        "restore" => app.faults.restore(),
        "drop-watches" => app.faults.drop_watches(),
        "latency" => app.faults.set_latency(Duration::from_secs_f64(
            number("ms").unwrap_or(0.0) / 1000.0,
        )),
        "compact" => app.compact_history(),
        _ => return (StatusCode::NOT_FOUND, "unknown control action\n").into_response(),
    }
    (StatusCode::OK, "ok\n").into_response()
}

/// A parsed resource URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub plural: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

async fn api(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !app.requests.enabled() {
        return serve(&app, method, &uri, &headers, body).await;
    }
    let arrived = std::time::Instant::now();
    let response = serve(&app, method.clone(), &uri, &headers, body).await;
    app.requests.push(RequestRecord {
        arrived,
        handled: arrived.elapsed(),
        method,
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        status: response.status().as_u16(),
    });
    response
}

async fn serve(
    app: &Arc<App>,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let latency = app.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if app.faults.in_outage() {
        return error_response(&ApiError::unavailable("kube-testserver: injected outage"));
    }
    let query: HashMap<String, String> = uri
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    if method == Method::GET
        && let Some(document) = discovery_document(app, &segments)
    {
        return match document {
            Some(value) => json_response(StatusCode::OK, &value),
            None => error_response(&ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )),
        };
    }
    let target = {
        let Ok(store) = app.store.lock() else {
            return error_response(&ApiError::unavailable("store lock poisoned"));
        };
        parse_target(&store.registry, &segments)
    };
    match target {
        Some(target) => resources::handle(app, method, target, &query, headers, &body),
        None => error_response(&ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )),
    }
}

/// Discovery paths: `Some(Some(doc))` to serve, `Some(None)` for a discovery 404, `None` when
/// the path is not a discovery path.
fn discovery_document(app: &App, segments: &[&str]) -> Option<Option<Value>> {
    let store = app.store.lock().ok()?;
    let registry = &store.registry;
    Some(match segments {
        ["version"] => Some(discovery::version()),
        ["api"] => Some(discovery::core_versions(&app.address)),
        ["api", version] => discovery::resource_list(registry, "", version),
        ["apis"] => Some(discovery::group_list(registry)),
        ["apis", group] => discovery::group(registry, group),
        ["apis", group, version] => discovery::resource_list(registry, group, version),
        ["healthz" | "readyz" | "livez"] => Some(Value::String("ok".into())),
        ["openapi", "v3"] => Some(openapi::index(registry)),
        ["openapi", "v3", "api", version] => openapi::group_version(registry, "", version),
        ["openapi", "v3", "apis", group, version] => {
            openapi::group_version(registry, group, version)
        }
        ["openapi", ..] => None,
        _ => return None,
    })
}

/// Splits `/api/v1/...` or `/apis/<group>/<version>/...` into group, version, namespace,
/// resource, name and subresource.
pub fn parse_target(registry: &Registry, segments: &[&str]) -> Option<Target> {
    let (group, version, rest) = match segments {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let namespaced_plural = |plural: &str| {
        registry
            .lookup(group, version, plural)
            .is_some_and(|rt| rt.namespaced)
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, ..] if namespaced_plural(plural) => {
            (Some((*ns).to_owned()), &rest[2..])
        }
        _ => (None, rest),
    };
    let (plural, name, subresource) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(*name), None),
        [plural, name, sub] => (*plural, Some(*name), Some(*sub)),
        _ => return None,
    };
    registry.lookup(group, version, plural)?;
    Some(Target {
        group: group.to_owned(),
        version: version.to_owned(),
        namespace,
        plural: plural.to_owned(),
        name: name.map(str::to_owned),
        subresource: subresource.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(path: &str) -> Option<Target> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        parse_target(&Registry::with_builtins(), &segments)
    }

    #[test]
    fn resource_urls_split_into_targets() {
        let t = parse("/api/v1/namespaces/ns1/pods/p/status").expect("pod status");
        assert_eq!(
            (
                t.namespace.as_deref(),
                t.plural.as_str(),
                t.name.as_deref(),
                t.subresource.as_deref()
            ),
            (Some("ns1"), "pods", Some("p"), Some("status"))
        );
        let t = parse("/api/v1/namespaces/ns1").expect("namespace object");
        assert_eq!(
            (t.namespace, t.plural.as_str(), t.name.as_deref()),
            (None, "namespaces", Some("ns1"))
        );
        let t = parse("/api/v1/namespaces/ns1/status").expect("namespace status");
        assert_eq!(t.subresource.as_deref(), Some("status"));
        let t =
            parse("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases").expect("leases");
        assert_eq!(
            (t.group.as_str(), t.namespace.as_deref(), t.name),
            ("coordination.k8s.io", Some("kube-system"), None)
        );
        let t = parse("/api/v1/pods").expect("all-namespace list");
        assert_eq!(t.namespace, None);
        assert!(parse("/apis/cilium.io/v2/ciliumnodes").is_none());
        assert!(parse("/api/v1/nodes/a/b/c").is_none());
    }
}
