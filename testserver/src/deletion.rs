//! DELETE: preconditions, finalizers (mark with deletionTimestamp, remove once they are gone),
//! and cascades — ownerReference garbage collection, namespace contents and CRD instances.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::objects::{finalizers, meta, meta_str, set_meta};
use crate::ops::{Request, crd_key, namespaces_key};
use crate::status::ApiError;
use crate::store::{ObjectRef, Store, subject};

impl Store {
    /// DELETE: marks the object for deletion while finalizers remain, else removes it and
    /// cascades to dependents (unless orphaned), namespace contents and CRD instances.
    pub fn delete(
        &mut self,
        req: Request<'_>,
        name: &str,
        options: &Value,
    ) -> Result<Arc<Value>, ApiError> {
        let rt = req.rt;
        let old = self.get(rt, req.namespace, name)?;
        if let Some(uid) = options
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            && Some(uid) != meta_str(&old, "uid")
        {
            return Err(ApiError::stale(subject(rt, name)));
        }
        if let Some(rv) = options
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::stale(subject(rt, name)));
        }
        let orphan = options.get("propagationPolicy").and_then(Value::as_str) == Some("Orphan");
        Ok(self.delete_ref(
            &ObjectRef {
                resource: rt.key(),
                key: (req.namespace.to_owned(), name.to_owned()),
            },
            req.now,
            orphan,
        ))
    }

    fn delete_ref(&mut self, reference: &ObjectRef, now: &str, orphan: bool) -> Arc<Value> {
        let Some(old) = self.object(reference) else {
            return Arc::new(Value::Null);
        };
        if !finalizers(&old).is_empty() {
            if meta(&old, "deletionTimestamp").is_some() {
                return old;
            }
            let mut marked = (*old).clone();
            set_meta(
                &mut marked,
                "deletionTimestamp",
                Value::String(now.to_owned()),
            );
            set_meta(&mut marked, "deletionGracePeriodSeconds", json!(0));
            return self.commit(
                &reference.resource,
                reference.key.clone(),
                Some(old),
                Some(marked),
            );
        }
        // Dependents are looked up before removal: removing the owner drops its index entry.
        let mut pending: Vec<ObjectRef> = Vec::new();
        if !orphan && let Some(uid) = meta_str(&old, "uid") {
            pending.extend(self.dependents_of(uid));
        }
        let gone = self.remove(reference, Some(old));
        if reference.resource == namespaces_key() {
            pending.extend(self.refs_in_namespace(&reference.key.1));
        }
        if reference.resource == crd_key()
            && let Some(rt) = crate::registry::crd_resource_type(&gone)
        {
            let key = rt.key();
            for object_key in self.keys_of(&key) {
                let instance = ObjectRef {
                    resource: key.clone(),
                    key: object_key,
                };
                let previous = self.object(&instance);
                self.remove(&instance, previous);
            }
            self.drop_kind(&key);
            self.registry.forget_crd(&key);
        }
        for dependent in pending {
            self.delete_ref(&dependent, now, false);
        }
        gone
    }
}
