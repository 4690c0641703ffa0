//! The objects of one render as they are produced, under the output budget: the running total
//! is checked after every object, so a template set (or an input) that would produce gigabytes
//! stops at [`MAX_OUTPUT_BYTES`] instead of exhausting memory first.

use serde::Serialize;

use super::engine::Engine;
use super::error::RenderError;
use super::stream::{self, Document};

/// Largest manifest stream one render may produce. The reference bench (10,000 policies,
/// 1,000 gateways, 5,000 nodes) renders 9 MB.
pub const MAX_OUTPUT_BYTES: usize = 128 * 1024 * 1024;

/// Rendered objects so far.
pub(super) struct Objects<'e> {
    engine: &'e Engine,
    documents: Vec<Document>,
    bytes: usize,
}

impl<'e> Objects<'e> {
    /// No objects yet; room for `capacity`.
    pub(super) fn new(engine: &'e Engine, capacity: usize) -> Self {
        Objects {
            engine,
            documents: Vec::with_capacity(capacity),
            bytes: 0,
        }
    }

    /// Renders `template` for the object `kind`/`name` and adds it.
    pub(super) fn render(
        &mut self,
        template: &str,
        kind: &str,
        name: &str,
        context: impl Serialize,
    ) -> Result<(), RenderError> {
        let text = self.engine.object(template, kind, name, context)?;
        self.add(kind, name, text)
    }

    /// Adds an object rendered elsewhere.
    pub(super) fn add(&mut self, kind: &str, name: &str, text: String) -> Result<(), RenderError> {
        // `---\n` precedes every document in the stream.
        self.bytes = self.bytes.saturating_add(text.len() + 4);
        if self.bytes > MAX_OUTPUT_BYTES {
            return Err(RenderError::OutputTooLarge {
                limit: MAX_OUTPUT_BYTES,
            });
        }
        self.documents.push(Document::new(kind, name, text));
        Ok(())
    }

    /// The stream, in the stable order of [`stream::join`].
    pub(super) fn finish(self) -> String {
        stream::join(self.documents)
    }
}
