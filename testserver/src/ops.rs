//! The write verbs on the store: create, update (PUT), patch, server-side apply and delete, with
//! the apiserver's rules for names, resourceVersion preconditions, the status subresource,
//! generation, managedFields, finalizers, cascading deletion and CRDs.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::fieldpath::ListTypes;
use crate::managed::{self, Entry, Writer};
use crate::objects::{
    as_version, finalizers, generation_relevant, meta, meta_str, replace_status, set_meta,
};
use crate::patch::{PatchKind, json_patch, merge_patch, strategic_merge};
use crate::registry::{ResourceKey, ResourceType};
use crate::status::ApiError;
use crate::store::{ObjectRef, Store, subject};

/// The context of one write request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub rt: &'a ResourceType,
    /// The version the client used (objects are stored and returned with it).
    pub version: &'a str,
    /// Empty for cluster-scoped kinds.
    pub namespace: &'a str,
    pub manager: &'a str,
    pub now: &'a str,
}

impl Request<'_> {
    fn writer<'w>(
        &'w self,
        subresource: Option<&'w str>,
        types: &'w ListTypes,
        api_version: &'w str,
    ) -> Writer<'w> {
        Writer {
            manager: self.manager,
            subresource,
            api_version,
            now: self.now,
            types,
        }
    }
}

/// How a write changes managedFields.
enum Ownership {
    Update,
    Applied(Vec<Entry>),
}

pub(crate) fn crd_key() -> ResourceKey {
    ResourceKey {
        group: "apiextensions.k8s.io".into(),
        plural: "customresourcedefinitions".into(),
    }
}

pub(crate) fn namespaces_key() -> ResourceKey {
    ResourceKey {
        group: String::new(),
        plural: "namespaces".into(),
    }
}

fn check_subresource(
    rt: &ResourceType,
    subresource: Option<&str>,
    name: &str,
) -> Result<(), ApiError> {
    match subresource {
        None => Ok(()),
        Some("status") if rt.has_status => Ok(()),
        Some(_) => Err(ApiError::not_found(subject(rt, name))),
    }
}

impl Store {
    pub fn create(&mut self, req: Request<'_>, mut body: Value) -> Result<Arc<Value>, ApiError> {
        let rt = req.rt;
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        let name = match (meta_str(&body, "name"), meta_str(&body, "generateName")) {
            (Some(name), _) => name.to_owned(),
            (None, Some(prefix)) => format!("{prefix}{}", self.name_suffix()),
            (None, None) => {
                return Err(ApiError::invalid(
                    subject(rt, ""),
                    "metadata.name: Required value: name or generateName is required",
                ));
            }
        };
        self.check_namespace(req, &body)?;
        let key = (req.namespace.to_owned(), name.clone());
        if self.exists(&rt.key(), &key) {
            return Err(ApiError::already_exists(subject(rt, &name)));
        }
        set_meta(&mut body, "name", Value::String(name));
        if rt.namespaced {
            set_meta(
                &mut body,
                "namespace",
                Value::String(req.namespace.to_owned()),
            );
        }
        if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
            for server_owned in [
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "managedFields",
                "uid",
                "selfLink",
            ] {
                meta.remove(server_owned);
            }
        }
        // Custom resources drop status on create when status is a subresource.
        if rt.custom && rt.has_status {
            replace_status(&mut body, None);
        }
        body = as_version(rt, req.version, &body);
        self.stamp_new(&mut body, req.now);
        let types = ListTypes::new(rt.schema.clone());
        let api_version = rt.api_version(req.version);
        let mut entries = Vec::new();
        managed::record_update(
            &mut entries,
            None,
            &body,
            req.writer(None, &types, &api_version),
        );
        managed::write_entries(&mut body, &entries);
        if rt.key() == crd_key() {
            self.establish_crd(&mut body)?;
        }
        Ok(self.commit(&rt.key(), key, None, Some(body)))
    }

    /// PUT: replaces the object (or its status), honouring resourceVersion preconditions.
    pub fn replace(
        &mut self,
        req: Request<'_>,
        name: &str,
        body: Value,
        subresource: Option<&str>,
    ) -> Result<Arc<Value>, ApiError> {
        check_subresource(req.rt, subresource, name)?;
        let old = self.get(req.rt, req.namespace, name)?;
        self.write_existing(req, name, old, body, subresource, Ownership::Update)
    }

    pub fn patch(
        &mut self,
        req: Request<'_>,
        name: &str,
        kind: PatchKind,
        body: Value,
        subresource: Option<&str>,
        force: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let rt = req.rt;
        check_subresource(rt, subresource, name)?;
        if kind == PatchKind::Apply {
            return self.apply(req, name, body, subresource, force);
        }
        let old = self.get(rt, req.namespace, name)?;
        let mut new = (*old).clone();
        match kind {
            PatchKind::Merge => merge_patch(&mut new, &body),
            PatchKind::Json => {
                json_patch(&mut new, &body).map_err(|e| ApiError::new(422, "Invalid", e))?
            }
            PatchKind::Strategic if rt.custom => {
                return Err(ApiError::unsupported_media_type(
                    "application/strategic-merge-patch+json",
                ));
            }
            PatchKind::Strategic => {
                strategic_merge(&mut new, &body, &ListTypes::new(rt.schema.clone()))
            }
            PatchKind::Apply => unreachable!("handled above"),
        }
        // A patch only carries a precondition if it names a resourceVersion itself.
        if meta_str(&body, "resourceVersion").is_none()
            && let Some(rv) = meta(&old, "resourceVersion")
        {
            set_meta(&mut new, "resourceVersion", rv.clone());
        }
        self.write_existing(req, name, old, new, subresource, Ownership::Update)
    }

    fn apply(
        &mut self,
        req: Request<'_>,
        name: &str,
        body: Value,
        subresource: Option<&str>,
        force: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let rt = req.rt;
        if meta_str(&body, "name").is_some_and(|n| n != name) {
            return Err(ApiError::bad_request(
                "the name of the object does not match the name on the URL",
            ));
        }
        let types = ListTypes::new(rt.schema.clone());
        let api_version = rt.api_version(req.version);
        let writer = req.writer(subresource, &types, &api_version);
        let mut applied = body;
        // Only the part the endpoint writes is applied: status on /status, the rest elsewhere.
        if rt.has_status {
            match subresource {
                Some(_) => {
                    let status = applied.get("status").cloned();
                    applied = json!({});
                    replace_status(&mut applied, status.as_ref());
                }
                None => replace_status(&mut applied, None),
            }
        }
        let existing = self.get(rt, req.namespace, name).ok();
        let (current, mut entries) = match &existing {
            Some(obj) => ((**obj).clone(), managed::read_entries(obj)),
            None => {
                let mut fresh = json!({"metadata": {"name": name}});
                if rt.namespaced {
                    set_meta(
                        &mut fresh,
                        "namespace",
                        Value::String(req.namespace.to_owned()),
                    );
                }
                (fresh, Vec::new())
            }
        };
        let mut result = managed::apply(&mut entries, &current, &applied, force, writer)
            .map_err(|conflicts| ApiError::apply_conflict(subject(rt, name), &conflicts))?;
        set_meta(&mut result, "name", Value::String(name.to_owned()));
        match existing {
            Some(old) => {
                if let Some(rv) = meta(&old, "resourceVersion") {
                    set_meta(&mut result, "resourceVersion", rv.clone());
                }
                self.write_existing(
                    req,
                    name,
                    old,
                    result,
                    subresource,
                    Ownership::Applied(entries),
                )
            }
            None => {
                self.check_namespace(req, &result)?;
                result = as_version(rt, req.version, &result);
                self.stamp_new(&mut result, req.now);
                managed::write_entries(&mut result, &entries);
                if rt.key() == crd_key() {
                    self.establish_crd(&mut result)?;
                }
                Ok(self.commit(
                    &rt.key(),
                    (req.namespace.to_owned(), name.to_owned()),
                    None,
                    Some(result),
                ))
            }
        }
    }

    fn write_existing(
        &mut self,
        req: Request<'_>,
        name: &str,
        old: Arc<Value>,
        mut new: Value,
        subresource: Option<&str>,
        ownership: Ownership,
    ) -> Result<Arc<Value>, ApiError> {
        let rt = req.rt;
        if !new.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        if meta_str(&new, "name").is_some_and(|n| n != name) {
            return Err(ApiError::bad_request(
                "the name of the object does not match the name on the URL",
            ));
        }
        if let Some(rv) = meta_str(&new, "resourceVersion")
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::stale(subject(rt, name)));
        }
        if rt.has_status {
            if subresource == Some("status") {
                // Status writes change status only (labels and annotations included in metadata are kept from old).
                let status = new.get("status").cloned();
                new = (*old).clone();
                replace_status(&mut new, status.as_ref());
            } else {
                replace_status(&mut new, old.get("status"));
            }
        }
        new = as_version(rt, req.version, &new);
        for server_owned in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
        ] {
            match meta(&old, server_owned) {
                Some(value) => set_meta(&mut new, server_owned, value.clone()),
                None => {
                    if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                        m.remove(server_owned);
                    }
                }
            }
        }
        if generation_relevant(rt, &old) != generation_relevant(rt, &new) {
            let generation = meta(&old, "generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            set_meta(&mut new, "generation", json!(generation + 1));
        }
        let types = ListTypes::new(rt.schema.clone());
        let api_version = rt.api_version(req.version);
        let entries = match ownership {
            Ownership::Applied(entries) => entries,
            Ownership::Update => {
                let mut entries = managed::read_entries(&old);
                managed::record_update(
                    &mut entries,
                    Some(&old),
                    &new,
                    req.writer(subresource, &types, &api_version),
                );
                entries
            }
        };
        managed::write_entries(&mut new, &entries);
        if rt.key() == crd_key() {
            self.establish_crd(&mut new)?;
        }
        if new == *old {
            // No-op writes do not bump the resourceVersion or wake watchers.
            return Ok(old);
        }
        let key = (req.namespace.to_owned(), name.to_owned());
        if meta(&new, "deletionTimestamp").is_some() && finalizers(&new).is_empty() {
            self.remove(
                &ObjectRef {
                    resource: rt.key(),
                    key,
                },
                Some(old),
            );
            let mut gone = new;
            set_meta(
                &mut gone,
                "resourceVersion",
                Value::String(self.resource_version().to_string()),
            );
            return Ok(Arc::new(gone));
        }
        Ok(self.commit(&rt.key(), key, Some(old), Some(new)))
    }

    fn check_namespace(&self, req: Request<'_>, body: &Value) -> Result<(), ApiError> {
        if !req.rt.namespaced {
            return Ok(());
        }
        if meta_str(body, "namespace").is_some_and(|ns| ns != req.namespace) {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        if !self.exists(
            &namespaces_key(),
            &(String::new(), req.namespace.to_owned()),
        ) {
            let namespaces = self.registry.get(&namespaces_key()).cloned();
            return Err(match namespaces {
                Some(rt) => ApiError::not_found(subject(&rt, req.namespace)),
                None => ApiError::bad_request("namespaces are not served"),
            });
        }
        Ok(())
    }

    /// Serves the kind a CRD defines and reports it Established, as the apiextensions
    /// controller would.
    fn establish_crd(&mut self, crd: &mut Value) -> Result<(), ApiError> {
        let name = meta_str(crd, "name").unwrap_or_default().to_owned();
        let Some(rt) = crate::registry::crd_resource_type(crd) else {
            let crds = self.registry.get(&crd_key()).cloned();
            return Err(match crds {
                Some(rt) => ApiError::invalid(
                    subject(&rt, &name),
                    "spec: group, names.plural, names.kind and at least one served version are required",
                ),
                None => ApiError::bad_request("invalid CustomResourceDefinition"),
            });
        };
        let condition = |kind: &str, reason: &str| json!({"type": kind, "status": "True", "reason": reason, "message": "", "lastTransitionTime": crd.pointer("/metadata/creationTimestamp").cloned().unwrap_or(Value::Null)});
        let status = json!({
            "conditions": [condition("NamesAccepted", "NoConflicts"), condition("Established", "InitialNamesAccepted")],
            "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or(Value::Null),
            "storedVersions": [rt.preferred_version()],
        });
        replace_status(crd, Some(&status));
        self.registry.serve_crd(crd);
        Ok(())
    }
}
