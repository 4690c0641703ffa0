//! Resource verbs over HTTP: get, list, watch, create, update, patch, apply, delete and
//! deletecollection, turning query parameters and bodies into store calls and store results
//! into JSON responses.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::App;
use crate::metadata;
use crate::objects::{as_version, meta_str};
use crate::ops::Request;
use crate::patch::PatchKind;
use crate::registry::ResourceType;
use crate::routes::{Target, error_response, json_response};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::object_key;
use crate::watch_stream::{self, WatchRequest};

/// A watch without `timeoutSeconds` ends after this long, like the apiserver's request timeout.
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

pub fn handle(
    app: &Arc<App>,
    method: Method,
    target: Target,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    match dispatch(app, method, target, query, headers, body) {
        Ok(response) => response,
        Err(error) => error_response(&error),
    }
}

fn flag(query: &HashMap<String, String>, key: &str) -> bool {
    query.get(key).is_some_and(|v| v == "true" || v == "1")
}

fn dispatch(
    app: &Arc<App>,
    method: Method,
    target: Target,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let rt = {
        let store = app
            .store
            .lock()
            .map_err(|_| ApiError::unavailable("store lock poisoned"))?;
        store
            .registry
            .lookup(&target.group, &target.version, &target.plural)
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                )
            })?
    };
    if rt.namespaced
        && target.namespace.is_none()
        && (target.name.is_some() || method == Method::POST)
    {
        return Err(ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    }
    let namespace = if rt.namespaced {
        target.namespace.clone().unwrap_or_default()
    } else {
        String::new()
    };
    let labels = LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str))?;
    let manager = field_manager(query, headers);
    let now = crate::now();
    let req = Request {
        rt: &rt,
        version: &target.version,
        namespace: &namespace,
        manager: &manager,
        now: &now,
    };
    let sub = target.subresource.as_deref();
    let dry_run = query.contains_key("dryRun");
    let metadata_only = metadata::requested(headers);

    let Some(name) = target.name.as_deref() else {
        return match method {
            Method::GET if flag(query, "watch") => {
                let request = WatchRequest {
                    rt: rt.clone(),
                    version: target.version.clone(),
                    namespace: rt.namespaced.then(|| target.namespace.clone()).flatten(),
                    labels,
                    fields,
                    resource_version: query.get("resourceVersion").cloned(),
                    bookmarks: flag(query, "allowWatchBookmarks"),
                    send_initial_events: flag(query, "sendInitialEvents"),
                    timeout: query
                        .get("timeoutSeconds")
                        .and_then(|t| t.parse::<u64>().ok())
                        .map_or(DEFAULT_WATCH_TIMEOUT, Duration::from_secs),
                    metadata_only,
                };
                let body = watch_stream::start(app, request)?;
                Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
            }
            Method::GET => list(app, &rt, &target, &labels, &fields, query, metadata_only),
            Method::POST => {
                let object = parse_json(body)?;
                let created = write(app, dry_run, |store| store.create(req, object))?;
                Ok(json_response(
                    StatusCode::CREATED,
                    &as_version(&rt, &target.version, &created),
                ))
            }
            Method::DELETE => {
                let store_namespace = rt.namespaced.then(|| target.namespace.clone()).flatten();
                let options = parse_optional_json(body)?;
                let deleted = write(app, dry_run, |store| {
                    let victims = store.list(&rt, store_namespace.as_deref(), &labels, &fields);
                    let mut deleted = Vec::new();
                    for victim in victims {
                        let name = meta_str(&victim, "name").unwrap_or_default().to_owned();
                        let ns = meta_str(&victim, "namespace")
                            .unwrap_or_default()
                            .to_owned();
                        let req = Request {
                            namespace: &ns,
                            ..req
                        };
                        deleted.push(store.delete(req, &name, &options)?);
                    }
                    Ok(deleted)
                })?;
                Ok(list_response(
                    &rt,
                    &target.version,
                    app.resource_version(),
                    &deleted,
                    None,
                    false,
                ))
            }
            _ => Err(ApiError::method_not_allowed()),
        };
    };

    match method {
        Method::GET => {
            let store = app
                .store
                .lock()
                .map_err(|_| ApiError::unavailable("store lock poisoned"))?;
            let object = store.get(&rt, &namespace, name)?;
            let object = as_version(&rt, &target.version, &object);
            if metadata_only {
                return Ok(json_response(StatusCode::OK, &metadata::partial(&object)));
            }
            Ok(json_response(StatusCode::OK, &object))
        }
        Method::PUT => {
            let object = parse_json(body)?;
            let updated = write(app, dry_run, |store| store.replace(req, name, object, sub))?;
            Ok(json_response(
                StatusCode::OK,
                &as_version(&rt, &target.version, &updated),
            ))
        }
        Method::PATCH => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let kind = PatchKind::from_content_type(content_type)
                .ok_or_else(|| ApiError::unsupported_media_type(content_type))?;
            let patch = if kind == PatchKind::Apply {
                parse_yaml_or_json(body)?
            } else {
                parse_json(body)?
            };
            if kind == PatchKind::Apply && !query.contains_key("fieldManager") {
                return Err(ApiError::bad_request(
                    "PATCH, application/apply-patch+yaml requires fieldManager to be set",
                ));
            }
            let force = flag(query, "force");
            let existed = app
                .store
                .lock()
                .map_err(|_| ApiError::unavailable("store lock poisoned"))?
                .get(&rt, &namespace, name)
                .is_ok();
            let patched = write(app, dry_run, |store| {
                store.patch(req, name, kind, patch, sub, force)
            })?;
            let code = if existed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok(json_response(
                code,
                &as_version(&rt, &target.version, &patched),
            ))
        }
        Method::DELETE => {
            let options = parse_optional_json(body)?;
            let deleted = write(app, dry_run, |store| store.delete(req, name, &options))?;
            Ok(json_response(
                StatusCode::OK,
                &as_version(&rt, &target.version, &deleted),
            ))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// Runs a write under the store lock; with `dryRun` on a copy that is then thrown away.
fn write<T>(
    app: &App,
    dry_run: bool,
    op: impl FnOnce(&mut crate::store::Store) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let mut store = app
        .store
        .lock()
        .map_err(|_| ApiError::unavailable("store lock poisoned"))?;
    if dry_run {
        let mut scratch = store.dry_run_copy();
        return op(&mut scratch);
    }
    op(&mut store)
}

fn list(
    app: &App,
    rt: &ResourceType,
    target: &Target,
    labels: &LabelSelector,
    fields: &FieldSelector,
    query: &HashMap<String, String>,
    metadata_only: bool,
) -> Result<Response, ApiError> {
    let namespace = if rt.namespaced {
        target.namespace.as_deref()
    } else {
        None
    };
    let page = Page::of(query)?;
    let (items, more, current) = {
        let store = app
            .store
            .lock()
            .map_err(|_| ApiError::unavailable("store lock poisoned"))?;
        let after = page
            .after
            .as_ref()
            .map(|(_, ns, name)| (ns.clone(), name.clone()));
        let (items, more) =
            store.list_page(rt, namespace, labels, fields, after.as_ref(), page.limit);
        (items, more, store.resource_version())
    };
    // Encoding happens after the lock is released: a list of thousands of objects would
    // otherwise stall every write meanwhile.
    let resource_version = page.after.as_ref().map_or(current, |(rv, _, _)| *rv);
    let next = more
        .then(|| items.last().map(|item| object_key(item)))
        .flatten()
        .map(|(ns, name)| format!("{resource_version}/{ns}/{name}"));
    Ok(list_response(
        rt,
        &target.version,
        resource_version,
        &items,
        next.as_deref(),
        metadata_only,
    ))
}

/// `limit` / `continue` paging, as the apiserver does it for lists: a page holds at most
/// `limit` items in key order; `continue` is an opaque token naming the list's
/// resourceVersion and the last key served. Later pages come from the current state (not a
/// snapshot), but carry the first page's resourceVersion, so a watch started from it replays
/// whatever changed in between.
struct Page {
    limit: Option<usize>,
    after: Option<(u64, String, String)>,
}

impl Page {
    fn of(query: &HashMap<String, String>) -> Result<Self, ApiError> {
        let limit = query
            .get("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0);
        let after =
            match query.get("continue").filter(|c| !c.is_empty()) {
                None => None,
                Some(token) => {
                    let mut parts = token.splitn(3, '/');
                    let parsed = match (parts.next(), parts.next(), parts.next()) {
                        (Some(rv), Some(ns), Some(name)) => rv
                            .parse::<u64>()
                            .ok()
                            .map(|rv| (rv, ns.to_owned(), name.to_owned())),
                        _ => None,
                    };
                    Some(parsed.ok_or_else(|| {
                        ApiError::new(400, "BadRequest", "continue key is not valid")
                    })?)
                }
            };
        Ok(Page { limit, after })
    }
}

/// Encodes a list without cloning items whose stored version is the requested one.
fn list_response(
    rt: &ResourceType,
    version: &str,
    resource_version: u64,
    items: &[Arc<Value>],
    next: Option<&str>,
    metadata_only: bool,
) -> Response {
    let api_version = rt.api_version(version);
    let mut list_meta = json!({"resourceVersion": resource_version.to_string()});
    if let Some(token) = next {
        list_meta["continue"] = json!(token);
    }
    let head = if metadata_only {
        json!({"kind": "PartialObjectMetadataList", "apiVersion": metadata::API_VERSION, "metadata": list_meta})
    } else {
        json!({"kind": format!("{}List", rt.kind), "apiVersion": api_version, "metadata": list_meta})
    };
    let mut out = serde_json::to_vec(&head).unwrap_or_default();
    out.pop(); // reopen the object to append "items"
    out.extend(b",\"items\":[");
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        let encoded = if metadata_only {
            serde_json::to_vec(&metadata::partial(item))
        } else if item.get("apiVersion").and_then(Value::as_str) == Some(api_version.as_str()) {
            serde_json::to_vec(&**item)
        } else {
            serde_json::to_vec(&as_version(rt, version, item))
        };
        out.extend(encoded.unwrap_or_default());
    }
    out.extend(b"]}");
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(out),
    )
        .into_response()
}

/// `fieldManager`, else the client name from the User-Agent (as the apiserver derives it).
fn field_manager(query: &HashMap<String, String>, headers: &HeaderMap) -> String {
    if let Some(manager) = query.get("fieldManager").filter(|m| !m.is_empty()) {
        return manager.clone();
    }
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .filter(|m| !m.is_empty())
        .unwrap_or("unknown")
        .to_owned()
}

fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

fn parse_optional_json(body: &Bytes) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(json!({}))
    } else {
        parse_json(body)
    }
}

fn parse_yaml_or_json(body: &Bytes) -> Result<Value, ApiError> {
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the apply body is not UTF-8"))?;
    serde_saphyr::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("the apply body is not valid YAML: {e}")))
}
