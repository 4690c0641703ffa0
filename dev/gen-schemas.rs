//! Regenerates `schemas/` (CRDs and editor JSON Schemas) from the `model::api` types:
//! `cargo run --example gen-schemas`.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    std::fs::create_dir_all(&dir)?;
    for file in egressc::crds::schema_files() {
        std::fs::write(dir.join(&file.name), &file.content)?;
        println!("wrote schemas/{}", file.name);
    }
    Ok(())
}
