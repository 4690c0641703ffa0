//! The container image's build inputs (no container engine here, so the image itself is not
//! built): `.dockerignore` keeps `target/` and `.git` out of the context but every file the
//! release build reads in; the Dockerfile strips the binary, labels the image, caches the
//! dependency layer, and documents the one default image reference the binary renders.

use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Whether `.dockerignore` excludes `path`: a pattern excludes itself and everything below it;
/// `**/name` matches `name` at any depth. (The subset of Docker's syntax the file uses.)
fn ignored(patterns: &[String], path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    patterns.iter().any(|pattern| {
        let (anywhere, pattern) = match pattern.strip_prefix("**/") {
            Some(rest) => (true, rest),
            None => (false, pattern.as_str()),
        };
        let wanted: Vec<&str> = pattern.split('/').collect();
        let starts: Vec<usize> = if anywhere {
            (0..parts.len()).collect()
        } else {
            vec![0]
        };
        starts.into_iter().any(|start| {
            parts.len() >= start + wanted.len()
                && wanted.iter().zip(&parts[start..]).all(|(w, p)| {
                    w == p || (w.starts_with('*') && p.ends_with(w.trim_start_matches('*')))
                })
        })
    })
}

fn patterns() -> Vec<String> {
    read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_build_context_has_what_the_build_reads_and_nothing_heavy() {
    let patterns = patterns();
    for excluded in [
        "target/release/egressc",
        ".git/HEAD",
        "fuzz/target/x",
        "testserver/target/debug/x",
        "tests/snapshots/x.snap.new",
    ] {
        assert!(
            ignored(&patterns, excluded),
            "{excluded} goes into the context"
        );
    }
    let mut needed = vec![
        "Cargo.toml".to_string(),
        "Cargo.lock".to_string(),
        "src/main.rs".to_string(),
        "testserver/Cargo.toml".to_string(),
        "testserver/src/lib.rs".to_string(),
        "benches/elect.rs".to_string(),
        "dev/gen-schemas.rs".to_string(),
        "core/Cargo.toml".to_string(),
        "core/src/lib.rs".to_string(),
    ];
    // Every file the sources embed (outside test code), relative to the repository root.
    for (file, macro_prefix) in [
        ("core/src/render/templates.rs", "include_str!(\"../../../"),
        ("src/cli/install_values.rs", "include_str!(\"../../"),
    ] {
        let text = read(file);
        for (start, _) in text.match_indices(macro_prefix) {
            let path = &text[start + macro_prefix.len()..];
            let path = &path[..path.find('"').unwrap()];
            if !path.starts_with("charts/") {
                needed.push(path.to_string());
            }
        }
    }
    assert!(needed.len() > 15, "{needed:?}");
    for path in &needed {
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(path).exists(),
            "{path} is not in the repository"
        );
        assert!(
            !ignored(&patterns, path),
            "{path} is left out of the context"
        );
    }
}

#[test]
fn the_dockerfile_strips_labels_caches_and_offers_the_krm_image() {
    let dockerfile = read("Dockerfile");
    for needed in [
        "CARGO_PROFILE_RELEASE_STRIP=symbols",
        "CARGO_PROFILE_RELEASE_DEBUG=false",
        "cargo chef cook --release --locked",
        "org.opencontainers.image.title",
        "org.opencontainers.image.version",
        "org.opencontainers.image.licenses=\"Apache-2.0\"",
        "FROM runtime AS krm",
        "ENTRYPOINT [\"/usr/local/bin/egressc\", \"krm\"]",
    ] {
        assert!(dockerfile.contains(needed), "Dockerfile lacks {needed}");
    }
    // The dependency layer comes before the sources.
    let cook = dockerfile.find("cargo chef cook").unwrap();
    let sources = dockerfile.rfind("COPY . .").unwrap();
    assert!(cook < sources);
    // The default target is the runtime image, not the KRM function.
    assert_eq!(dockerfile.trim_end().lines().last(), Some("FROM runtime"));
    // The documented tag is the default every manifest renders.
    let default = egressc::render::default_image();
    assert!(
        dockerfile.contains(&format!("docker build -t {default} .")),
        "Dockerfile must document `docker build -t {default} .`"
    );
}
