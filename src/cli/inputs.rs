//! Input discovery and reading for the CLI: files, directories (recursive, `*.yaml`, `*.yml`,
//! `*.json`, sorted; hidden entries such as `.git` or `.github` skipped), and `-` for stdin.
//! A file that is not UTF-8 is not an I/O failure: it comes back as [`Text::Undecodable`] with
//! its diagnostic, so the other files are still checked; neither is a file over the byte
//! budget ([`Text::TooLarge`]), which is not kept in memory at all.
//!
//! Only regular files are read: directory walks skip anything else (FIFOs, sockets, devices),
//! and such a file named on the command line is refused without blocking (see [`files`]).

use std::fs;
use std::path::{Path, PathBuf};

use super::files::{self, Bounded};
use crate::diag::Diagnostic;
use crate::load::{self, text};
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
    /// More bytes than the budget: E002 only; the text was dropped as soon as it overflowed.
    TooLarge {
        /// The name as shown in diagnostics.
        name: String,
        /// E002.
        diagnostic: Box<Diagnostic>,
    },
}

/// Display name of standard input in diagnostics.
pub const STDIN_NAME: &str = "<stdin>";
const EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

/// Reads every input named by `paths`, in order; directories expand to their sorted files,
/// leaving out `exclude` (the node inventory, which may live in the source directory).
/// A file over `max_bytes` is not read (its size says so) and a stream stops being read one
/// byte past it: either way it comes back as [`Text::TooLarge`].
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
        let is_source = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e));
        if kind.is_dir() {
            walk(&path, files)?;
        } else if is_source && (kind.is_file() || kind.is_symlink() && files::is_regular(&path)) {
            // Links are followed to regular files only (not to directories: no loops); FIFOs,
            // sockets and devices are skipped, a FIFO would block the run for ever.
            files.push(path);
        }
    }
    Ok(())
}

fn read_file(path: &Path, max_bytes: usize) -> Result<Text, String> {
    let regular = files::open_regular(path)?;
    let name = path.display().to_string();
    if regular.len > u64::try_from(max_bytes).unwrap_or(u64::MAX) {
        // Its size says enough: not one byte is read.
        let diagnostic = load::too_large(&name, Some(regular.len), max_bytes);
        return Ok(Text::TooLarge { name, diagnostic });
    }
    read_text(regular.file, name, max_bytes, Some(regular.len))
}

fn read_stdin(max_bytes: usize) -> Result<Text, String> {
    read_text(
        std::io::stdin().lock(),
        STDIN_NAME.to_owned(),
        max_bytes,
        None,
    )
}

/// Reads and decodes at most `max_bytes`; `expected` is the size when known.
fn read_text(
    reader: impl std::io::Read,
    name: String,
    max_bytes: usize,
    expected: Option<u64>,
) -> Result<Text, String> {
    let bytes = match files::read_bounded(reader, max_bytes, expected) {
        Ok(Bounded::Whole(bytes)) => bytes,
        Ok(Bounded::TooLarge) => {
            let diagnostic = load::too_large(&name, None, max_bytes);
            return Ok(Text::TooLarge { name, diagnostic });
        }
        Err(e) => return Err(format!("cannot read {name}: {e}")),
    };
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
