//! External tools of the install tests (helm, kubectl kustomize, promtool): found by an
//! environment variable or on PATH; missing, a test skips with a reason, unless
//! EGRESSC_REQUIRE_TOOLS=1 (CI) makes that a failure.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

/// An external program.
pub struct Tool {
    path: PathBuf,
}

impl Tool {
    /// `$variable`, else `name` on PATH; `None` (after saying why) when missing and not
    /// required.
    pub fn find(variable: &str, name: &str) -> Option<Tool> {
        let path = std::env::var_os(variable).map(PathBuf::from).or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(name))
                    .find(|candidate| candidate.is_file())
            })
        });
        match path {
            Some(path) => Some(Tool { path }),
            None if std::env::var_os("EGRESSC_REQUIRE_TOOLS").is_some() => {
                panic!("{name} is required (EGRESSC_REQUIRE_TOOLS) but not found; set ${variable}")
            }
            None => {
                eprintln!("skipped: {name} not found (set ${variable} or put it on PATH)");
                None
            }
        }
    }

    /// The directory the tool is in (to put it on a PATH).
    pub fn dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default()
    }

    /// A command running the tool.
    pub fn command(&self) -> Command {
        Command::new(&self.path)
    }

    /// Runs the tool with `args` in the repository root.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", self.path.display()))
    }
}

/// Runs this build's egressc with `args` in the repository root.
pub fn egressc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_egressc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("egressc runs")
}

/// The documents `out` printed, after checking that `what` succeeded.
pub fn printed_documents(out: &Output, what: &str) -> Vec<Value> {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    documents(&out.stdout)
}

/// The documents of a YAML stream, empty ones dropped.
pub fn documents(yaml: &[u8]) -> Vec<Value> {
    let text = String::from_utf8_lossy(yaml);
    let docs: Vec<Value> =
        serde_saphyr::from_str_multiple(&text).unwrap_or_else(|e| panic!("YAML: {e}\n{text}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// Objects keyed `kind/namespace/name`; a key seen twice fails the test.
pub fn objects_by_identity(docs: Vec<Value>) -> BTreeMap<String, Value> {
    let mut objects = BTreeMap::new();
    for doc in docs {
        let key = format!(
            "{}/{}/{}",
            doc["kind"].as_str().unwrap_or_default(),
            doc["metadata"]["namespace"].as_str().unwrap_or_default(),
            doc["metadata"]["name"].as_str().unwrap_or_default()
        );
        assert!(objects.insert(key.clone(), doc).is_none(), "{key} twice");
    }
    objects
}
