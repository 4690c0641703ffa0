//! An optional log of the API requests the server handled: arrival instant, method, path,
//! status and time spent in the handler. Benchmarks use it to time a client's reaction at the
//! server (when a request arrived) instead of at a watcher of their own, which would add the
//! watch delivery to every number. Off by default; when off, nothing is recorded.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::Method;

/// One handled API request.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// When the handler started (after the HTTP request was read).
    pub arrived: Instant,
    /// How long the handler took to produce the response head (for a list: building and
    /// serializing the whole list; for a watch: only setting up the stream).
    pub handled: Duration,
    pub method: Method,
    /// The URL path, without the query.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    pub status: u16,
}

/// The log; a no-op unless enabled.
#[derive(Debug, Default)]
pub struct RequestLog {
    records: Option<Mutex<Vec<RequestRecord>>>,
}

impl RequestLog {
    pub fn new(enabled: bool) -> Self {
        Self {
            records: enabled.then(|| Mutex::new(Vec::new())),
        }
    }

    pub fn enabled(&self) -> bool {
        self.records.is_some()
    }

    pub fn push(&self, record: RequestRecord) {
        if let Some(records) = &self.records
            && let Ok(mut records) = records.lock()
        {
            records.push(record);
        }
    }

    /// Records from position `from` on (positions count from the server's start), in the
    /// order their handlers finished.
    pub fn since(&self, from: usize) -> Vec<RequestRecord> {
        self.records
            .as_ref()
            .and_then(|records| records.lock().ok())
            .map(|records| records.get(from..).map(<[_]>::to_vec).unwrap_or_default())
            .unwrap_or_default()
    }

    /// How many records there are.
    pub fn len(&self) -> usize {
        self.records
            .as_ref()
            .and_then(|records| records.lock().ok())
            .map_or(0, |records| records.len())
    }
}
