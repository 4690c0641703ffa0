//! API errors rendered as `meta.k8s.io/v1 Status` objects, the shape kube-rs and kubectl parse.

use serde_json::{Value, json};

/// One failed API call: HTTP code, machine-readable reason and the human message.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details` of the Status (name, group, kind, causes), when the apiserver would send it.
    pub details: Option<Value>,
}

/// Names the object an error is about, for the `details` field.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub group: &'a str,
    pub plural: &'a str,
    pub name: &'a str,
}

impl Subject<'_> {
    /// `nodes "a"` or `leases.coordination.k8s.io "a"`, as the apiserver words it.
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            format!("{} \"{}\"", self.plural, self.name)
        } else {
            format!("{}.{} \"{}\"", self.plural, self.group, self.name)
        }
    }

    fn details(&self) -> Value {
        json!({"name": self.name, "group": self.group, "kind": self.plural})
    }
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub fn not_found(subject: Subject<'_>) -> Self {
        Self {
            details: Some(subject.details()),
            ..Self::new(
                404,
                "NotFound",
                format!("{} not found", subject.qualified()),
            )
        }
    }

    pub fn already_exists(subject: Subject<'_>) -> Self {
        Self {
            details: Some(subject.details()),
            ..Self::new(
                409,
                "AlreadyExists",
                format!("{} already exists", subject.qualified()),
            )
        }
    }

    /// Optimistic-concurrency failure: the caller's resourceVersion is stale.
    pub fn stale(subject: Subject<'_>) -> Self {
        let message = format!(
            "Operation cannot be fulfilled on {}: the object has been modified; please apply your changes to the latest version and try again",
            subject.qualified()
        );
        Self {
            details: Some(subject.details()),
            ..Self::new(409, "Conflict", message)
        }
    }

    /// Server-side apply conflict; `conflicts` are (manager, field path) pairs.
    pub fn apply_conflict(subject: Subject<'_>, conflicts: &[(String, String)]) -> Self {
        let lines: Vec<String> = conflicts
            .iter()
            .map(|(manager, field)| format!("conflict with \"{manager}\": {field}"))
            .collect();
        let noun = if conflicts.len() == 1 {
            "conflict"
        } else {
            "conflicts"
        };
        let message = if conflicts.len() == 1 {
            format!("Apply failed with 1 conflict: {}", lines.join(""))
        } else {
            format!(
                "Apply failed with {} {noun}: {}",
                conflicts.len(),
                lines.join("\n")
            )
        };
        let causes: Vec<Value> = conflicts
            .iter()
            .zip(&lines)
            .map(|((_, field), line)| {
                json!({"reason": "FieldManagerConflict", "message": line, "field": field})
            })
            .collect();
        let mut details = subject.details();
        details["causes"] = Value::Array(causes);
        Self {
            details: Some(details),
            ..Self::new(409, "Conflict", message)
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn invalid(subject: Subject<'_>, message: impl Into<String>) -> Self {
        let message = format!("{} is invalid: {}", subject.qualified(), message.into());
        Self {
            details: Some(subject.details()),
            ..Self::new(422, "Invalid", message)
        }
    }

    /// A watch asked for history the server no longer keeps.
    pub fn expired(requested: u64, oldest: u64) -> Self {
        Self::new(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {content_type})"
            ),
        )
    }

    /// The `Status` object sent as the response body (or inside a watch ERROR event).
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}
