//! Renderers: the same diagnostics as human-readable text, a JSON list, or GitHub Actions
//! workflow commands. Renderers return strings; only the CLI writes them out.

mod codequality;
mod github;
mod human;
mod json;

use std::collections::BTreeMap;
use std::str::FromStr;

use super::Diagnostic;

pub use codequality::render_codequality;
pub use github::render_github;
pub use human::render_human;
pub use json::render_json;

/// Output format of diagnostics (`--format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// `error[E022]: …` with the source line and a caret.
    #[default]
    Human,
    /// A JSON array of objects with stable field names.
    Json,
    /// `::error file=…,line=…,col=…,title=E022::…` annotations.
    Github,
    /// A GitLab Code Quality report (JSON array of issues).
    Codequality,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "human" => Ok(Format::Human),
            "json" => Ok(Format::Json),
            "github" => Ok(Format::Github),
            "codequality" => Ok(Format::Codequality),
            other => Err(format!(
                "unknown format `{other}`; expected human, json, github or codequality"
            )),
        }
    }
}

/// The text of the inputs, by file name as it appears in spans, so that the human renderer
/// can quote the offending line. Line starts are indexed once per file: quoting stays linear
/// when one large file has tens of thousands of diagnostics.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    texts: BTreeMap<String, Indexed>,
}

#[derive(Clone, Debug)]
struct Indexed {
    text: String,
    /// Byte offset of the start of every line.
    starts: Vec<usize>,
}

impl Sources {
    /// Remembers `text` as the content of `file`.
    pub fn insert(&mut self, file: impl Into<String>, text: impl Into<String>) {
        let text = text.into();
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        self.texts.insert(file.into(), Indexed { text, starts });
    }

    /// Line `line` (1-based) of `file`, without its line ending.
    pub fn line(&self, file: &str, line: u32) -> Option<&str> {
        let index = usize::try_from(line.checked_sub(1)?).ok()?;
        let indexed = self.texts.get(file)?;
        let start = *indexed.starts.get(index)?;
        if start == indexed.text.len() && index > 0 {
            return None; // after the final line break
        }
        let end = indexed
            .starts
            .get(index + 1)
            .map_or(indexed.text.len(), |next| next - 1);
        indexed
            .text
            .get(start..end)
            .map(|l| l.trim_end_matches('\r'))
    }
}

/// Renders `diagnostics` in `format`.
pub fn render(format: Format, diagnostics: &[Diagnostic], sources: &Sources) -> String {
    match format {
        Format::Human => render_human(diagnostics, sources),
        Format::Json => render_json(diagnostics),
        Format::Github => render_github(diagnostics),
        Format::Codequality => render_codequality(diagnostics),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_found_by_number_like_str_lines() {
        let mut sources = Sources::default();
        let text = "a: 1\r\nb: 2\n\nlast";
        sources.insert("f", text);
        let ours: Vec<Option<&str>> = (1..=5).map(|n| sources.line("f", n)).collect();
        let std: Vec<Option<&str>> = (0..5)
            .map(|i| text.lines().nth(i).map(|l| l.trim_end_matches('\r')))
            .collect();
        assert_eq!(ours, std);
        sources.insert("g", "x\n");
        assert_eq!(sources.line("g", 1), Some("x"));
        assert_eq!(sources.line("g", 2), None);
        assert_eq!(sources.line("g", 0), None);
        assert_eq!(sources.line("missing", 1), None);
    }
}
