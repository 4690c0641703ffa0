//! The floor for `egressc build`: the least any YAML-in/YAML-out tool built on the same parser
//! must do with the same files. Reads every file named (directories: their `*.yaml`, sorted),
//! parses each document into a generic value (`serde_json::Value` through serde-saphyr) and
//! writes every document back as YAML with serde-saphyr — no validation, election or
//! templates. It parses under the same budgets as egressc (`Limits::default()`), so both do
//! the same work in the parser.
//!
//! ```text
//! cargo run --release --example floor -- DIR/sources DIR/nodes.yaml -o /dev/null
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("floor: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut paths = Vec::new();
    let mut output: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "-o" {
            output = Some(args.next().ok_or("`-o` needs a file")?.into());
        } else {
            paths.push(PathBuf::from(arg));
        }
    }
    if paths.is_empty() {
        return Err("usage: floor PATH... [-o FILE]".to_owned());
    }
    let options = egressc::load::Limits::default().options();
    let mut out = String::new();
    for file in files(&paths)? {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let documents: Vec<serde_json::Value> =
            serde_saphyr::from_str_multiple_with_options(&text, options.clone())
                .map_err(|e| format!("{}: {e}", file.display()))?;
        for document in &documents {
            out.push_str("---\n");
            let yaml = serde_saphyr::to_string(document)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            out.push_str(&yaml);
        }
    }
    match output {
        Some(path) => {
            std::fs::write(&path, out).map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(|e| format!("cannot write to stdout: {e}"))
        }
    }
}

/// Files named directly, and the sorted `*.yaml` files of directories named.
fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml") && is_file(p))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn is_file(path: &Path) -> bool {
    path.metadata().is_ok_and(|m| m.is_file())
}
