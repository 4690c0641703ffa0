//! Renderers: the same diagnostics as human-readable text, a JSON list, or GitHub Actions
//! workflow commands. Renderers return strings; only the CLI writes them out.

mod codequality;
mod github;
mod human;
mod json;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
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
/// can quote the offending line. Texts are borrowed, not copied (an input may be hundreds of
/// megabytes). Line starts are indexed once per file — every line ([`Sources::insert`]) or only
/// the lines diagnostics name ([`Sources::insert_lines`], memory bounded by the diagnostics,
/// not by the number of lines) — so quoting stays linear with tens of thousands of diagnostics.
#[derive(Clone, Debug, Default)]
pub struct Sources<'a> {
    texts: BTreeMap<String, Indexed<'a>>,
}

#[derive(Clone, Debug)]
struct Indexed<'a> {
    text: Cow<'a, str>,
    /// Byte offset of the start of each indexed line, by 0-based line index.
    starts: LineStarts,
}

#[derive(Clone, Debug)]
enum LineStarts {
    /// Every line.
    All(Vec<usize>),
    /// The lines asked for.
    Some(BTreeMap<usize, usize>),
}

impl<'a> Sources<'a> {
    /// Remembers `text` as the content of `file`, indexing every line.
    pub fn insert(&mut self, file: impl Into<String>, text: impl Into<Cow<'a, str>>) {
        let text = text.into();
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        self.texts.insert(
            file.into(),
            Indexed {
                text,
                starts: LineStarts::All(starts),
            },
        );
    }

    /// Remembers `text` as the content of `file`, indexing only `lines` (1-based): what a
    /// report quotes. One pass over the text; memory in proportion to `lines`.
    pub fn insert_lines(
        &mut self,
        file: impl Into<String>,
        text: impl Into<Cow<'a, str>>,
        lines: &BTreeSet<u32>,
    ) {
        let text = text.into();
        let wanted: BTreeSet<usize> = lines
            .iter()
            .filter_map(|&line| usize::try_from(line.checked_sub(1)?).ok())
            .collect();
        let last = wanted.last().copied().unwrap_or(0);
        let mut starts = BTreeMap::new();
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1));
        for (index, start) in line_starts.enumerate().take(last.saturating_add(1)) {
            if wanted.contains(&index) {
                starts.insert(index, start);
            }
        }
        self.texts.insert(
            file.into(),
            Indexed {
                text,
                starts: LineStarts::Some(starts),
            },
        );
    }

    /// Line `line` (1-based) of `file`, without its line ending (`None` if not indexed).
    pub fn line(&self, file: &str, line: u32) -> Option<&str> {
        let index = usize::try_from(line.checked_sub(1)?).ok()?;
        let indexed = self.texts.get(file)?;
        let text = indexed.text.as_ref();
        let start = match &indexed.starts {
            LineStarts::All(starts) => *starts.get(index)?,
            LineStarts::Some(starts) => *starts.get(&index)?,
        };
        if start == text.len() && index > 0 {
            return None; // after the final line break
        }
        let end = text[start..].find('\n').map_or(text.len(), |at| start + at);
        text.get(start..end).map(|l| l.trim_end_matches('\r'))
    }
}

/// `text` with control characters escaped (`\n`, `\u{1b}`, `\u{9b}`), so a value or file
/// name quoted from the input stays on one line and cannot drive the terminal. Every format
/// passes what it quotes through this (JSON escapes through its own string syntax).
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
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

    #[test]
    fn only_the_lines_asked_for_are_indexed() {
        let text = "a\nb\r\nc\n";
        let mut sources = Sources::default();
        sources.insert_lines("f", text, &BTreeSet::from([2, 4, 9]));
        assert_eq!(sources.line("f", 2), Some("b"));
        assert_eq!(sources.line("f", 1), None, "not asked for");
        assert_eq!(sources.line("f", 4), None, "after the final line break");
        assert_eq!(sources.line("f", 9), None);
    }
}
