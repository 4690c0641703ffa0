//! The yaml-language-server modelines of the examples point at the committed JSON Schemas, and
//! every document they head validates against its schema (the editor would show no error).

use std::path::{Path, PathBuf};

use serde_json::Value;

const MODELINE: &str = "# yaml-language-server: $schema=";

fn yaml_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            yaml_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "yaml") {
            found.push(path);
        }
    }
}

#[test]
fn modelines_name_schemas_their_documents_satisfy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    yaml_files(&root.join("examples"), &mut files);
    let mut checked = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for document in text.split("\n---\n") {
            let Some(line) = document.lines().find(|l| l.starts_with(MODELINE)) else {
                continue;
            };
            let schema_path = file.parent().unwrap().join(&line[MODELINE.len()..]);
            let schema: Value = serde_json::from_str(
                &std::fs::read_to_string(&schema_path)
                    .unwrap_or_else(|e| panic!("{}: {e}", schema_path.display())),
            )
            .unwrap();
            let validator = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft7)
                .build(&schema)
                .unwrap();
            let value: Value = serde_saphyr::from_str(document).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(&value)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{}: {errors:?}", file.display());
            checked += 1;
        }
    }
    assert!(checked >= 4, "{checked} documents with a modeline");
}
