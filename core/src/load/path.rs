//! YAML paths such as `spec.selectors[0].podSelector`: how diagnostics name a value, and how
//! checks ask a document where a value is.

use std::fmt;

/// One step of a path: a mapping key or a sequence index.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Segment {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A path from a document's root to one of its values.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Path {
    segments: Vec<Segment>,
}

impl Path {
    /// The document root.
    pub fn root() -> Self {
        Path::default()
    }

    /// This path extended by a mapping key.
    #[must_use]
    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut next = self.clone();
        next.segments.push(Segment::Key(key.into()));
        next
    }

    /// This path extended by a sequence index.
    #[must_use]
    pub fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.segments.push(Segment::Index(index));
        next
    }

    /// This path followed by `tail`.
    #[must_use]
    pub fn join(&self, tail: &Path) -> Self {
        let mut next = self.clone();
        next.segments.extend(tail.segments.iter().cloned());
        next
    }

    /// The steps of the path.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The parent path and the last step, unless this is the root.
    pub fn split_last(&self) -> Option<(Path, &Segment)> {
        let (last, parent) = self.segments.split_last()?;
        Some((
            Path {
                segments: parent.to_vec(),
            },
            last,
        ))
    }

    /// True for the document root.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }
}

/// Keys that are plain identifiers print bare (`spec.nodeSelector`); others, such as label
/// keys with dots or slashes, print quoted in brackets (`nodeSelector["example.com/egress"]`).
impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Index(index) => write!(f, "[{index}]")?,
                Segment::Key(key) if is_plain(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                Segment::Key(key) => write!(f, "[{key:?}]")?,
            }
        }
        Ok(())
    }
}

fn is_plain(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_jsonpath_light() {
        let p = Path::root()
            .key("spec")
            .key("selectors")
            .index(0)
            .key("podSelector");
        assert_eq!(p.to_string(), "spec.selectors[0].podSelector");
        let q = Path::root()
            .key("spec")
            .key("nodeSelector")
            .key("node-role.deckhouse.io/egress");
        assert_eq!(
            q.to_string(),
            "spec.nodeSelector[\"node-role.deckhouse.io/egress\"]"
        );
        assert_eq!(Path::root().to_string(), "");
    }
}
