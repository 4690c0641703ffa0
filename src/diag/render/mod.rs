//! Renderers: the same diagnostics as human-readable text, a JSON list, or GitHub Actions
//! workflow commands. Renderers return strings; only the CLI writes them out.

mod github;
mod human;
mod json;

use std::collections::BTreeMap;
use std::str::FromStr;

use super::Diagnostic;

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
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "human" => Ok(Format::Human),
            "json" => Ok(Format::Json),
            "github" => Ok(Format::Github),
            other => Err(format!(
                "unknown format `{other}`; expected human, json or github"
            )),
        }
    }
}

/// The text of the inputs, by file name as it appears in spans, so that the human renderer
/// can quote the offending line.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    texts: BTreeMap<String, String>,
}

impl Sources {
    /// Remembers `text` as the content of `file`.
    pub fn insert(&mut self, file: impl Into<String>, text: impl Into<String>) {
        self.texts.insert(file.into(), text.into());
    }

    /// Line `line` (1-based) of `file`, without its line ending.
    pub fn line(&self, file: &str, line: u32) -> Option<&str> {
        let index = usize::try_from(line.checked_sub(1)?).ok()?;
        self.texts
            .get(file)?
            .lines()
            .nth(index)
            .map(|l| l.trim_end_matches('\r'))
    }
}

/// Renders `diagnostics` in `format`.
pub fn render(format: Format, diagnostics: &[Diagnostic], sources: &Sources) -> String {
    match format {
        Format::Human => render_human(diagnostics, sources),
        Format::Json => render_json(diagnostics),
        Format::Github => render_github(diagnostics),
    }
}
