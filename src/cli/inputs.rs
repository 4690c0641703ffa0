//! Input discovery and reading for the CLI: files, directories (recursive, `*.yaml`, `*.yml`,
//! `*.json`, sorted; hidden entries such as `.git` or `.github` skipped), and `-` for stdin.
//! A file that is not UTF-8 is not an I/O failure: it comes back as [`Text::Undecodable`] with
//! its diagnostic, so the other files are still checked.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::diag::Diagnostic;
use crate::load::text;
use crate::pipeline::Input;

/// One input as read: decoded text, or a file that is not UTF-8.
#[derive(Debug)]
pub enum Text {
    /// UTF-8 text, ready for the pipeline.
    Decoded(Input),
    /// Not UTF-8: the diagnostic, and the text decoded lossily (for source snippets only).
    Undecodable {
        /// The lossy text (invalid sequences replaced by U+FFFD).
        lossy: Input,
        /// E008 at the first invalid byte.
        diagnostic: Box<Diagnostic>,
    },
}

/// Display name of standard input in diagnostics.
pub const STDIN_NAME: &str = "<stdin>";
const EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

/// Reads every input named by `paths`, in order; directories expand to their sorted files,
/// leaving out `exclude` (the node inventory, which may live in the source directory).
/// At most `max_bytes + 1` bytes are read from each, so an oversized input costs bounded
/// memory and the loader reports its budget diagnostic.
pub fn read_inputs(
    paths: &[PathBuf],
    max_bytes: usize,
    exclude: Option<&Path>,
) -> Result<Vec<Text>, String> {
    let excluded = exclude.and_then(|p| fs::canonicalize(p).ok());
    let mut inputs = Vec::new();
    let mut stdin_used = false;
    for path in paths {
        if path.as_os_str() == "-" {
            if stdin_used {
                return Err("`-` (stdin) given more than once".to_owned());
            }
            stdin_used = true;
            inputs.push(read_stdin(max_bytes)?);
            continue;
        }
        let meta =
            fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if meta.is_dir() {
            let files = list_files(path)?;
            if files.is_empty() {
                return Err(format!(
                    "no *.yaml, *.yml or *.json files under {}",
                    path.display()
                ));
            }
            for file in files {
                if excluded.is_some() && fs::canonicalize(&file).ok() == excluded {
                    continue;
                }
                inputs.push(read_file(&file, max_bytes)?);
            }
        } else {
            inputs.push(read_file(path, max_bytes)?);
        }
    }
    Ok(inputs)
}

/// Reads one named file (e.g. `--nodes`), or stdin for `-`.
pub fn read_one(path: &Path, max_bytes: usize) -> Result<Text, String> {
    if path.as_os_str() == "-" {
        read_stdin(max_bytes)
    } else {
        read_file(path, max_bytes)
    }
}

/// The source files under `dir` (recursive, sorted, hidden entries skipped).
pub fn list_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    files.sort();
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let kind = entry
            .file_type()
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if kind.is_dir() {
            walk(&path, files)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e))
        {
            files.push(path);
        }
    }
    Ok(())
}

fn read_file(path: &Path, max_bytes: usize) -> Result<Text, String> {
    let file = fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let name = path.display().to_string();
    // The file's size sizes the buffer once: grown by doubling instead, a 10 MB inventory
    // would hold a 16 MB buffer (and briefly both halves while it is copied).
    let expected = file
        .metadata()
        .ok()
        .and_then(|meta| usize::try_from(meta.len()).ok())
        .unwrap_or(0);
    read_bounded(file, name, max_bytes, expected)
}

fn read_stdin(max_bytes: usize) -> Result<Text, String> {
    read_bounded(std::io::stdin().lock(), STDIN_NAME.to_owned(), max_bytes, 0)
}

/// Reads at most `max_bytes + 1` bytes; `expected` (the size, when known) pre-sizes the buffer.
fn read_bounded(
    reader: impl Read,
    name: String,
    max_bytes: usize,
    expected: usize,
) -> Result<Text, String> {
    let limit = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    // One byte more than expected lets `read_to_end` see the end without growing the buffer.
    let mut bytes = Vec::with_capacity(expected.min(max_bytes).saturating_add(1));
    reader
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {name}: {e}"))?;
    if bytes.len() > max_bytes {
        // Over budget: the loader rejects it by length; the cut may split a character.
        let text = String::from_utf8_lossy(&bytes).into_owned();
        return Ok(Text::Decoded(Input { name, text }));
    }
    Ok(match text::decode(&name, bytes) {
        Ok(text) => Text::Decoded(Input { name, text }),
        Err(undecodable) => Text::Undecodable {
            lossy: Input {
                name,
                text: undecodable.lossy,
            },
            diagnostic: undecodable.diagnostic,
        },
    })
}
