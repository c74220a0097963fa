//! The architecture's rules that a compiler does not check: the core and report crates depend on no HTTP,
//! async-runtime, metrics or command-line crate, and no file cites design documents from outside
//! the repository.

use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Crates the core must never depend on: it runs in the CLI, a bench or a test as well.
const FORBIDDEN_IN_CORE: [&str; 8] =
    ["axum", "tokio", "hyper", "hyper-util", "tower", "tower-http", "prometheus", "clap"];

fn dependency_names(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_dependencies = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        if in_dependencies && !line.is_empty() && !line.starts_with('#') {
            if let Some((name, _)) = line.split_once('=') {
                names.push(name.trim().to_string());
            }
        }
    }
    names
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn the_core_and_report_crates_depend_on_no_http_runtime_metrics_or_cli_crate() {
    for krate in ["crates/core", "crates/report"] {
        assert_free_of_doors(krate);
    }
}

fn assert_free_of_doors(krate: &str) {
    let manifest = std::fs::read_to_string(Path::new(ROOT).join(krate).join("Cargo.toml")).expect("manifest");
    let names = dependency_names(&manifest);
    assert!(names.iter().any(|name| name == "serde"), "the manifest of {krate} was not read: {names:?}");
    for forbidden in FORBIDDEN_IN_CORE {
        assert!(!names.iter().any(|name| name == forbidden), "{krate} depends on {forbidden}");
    }
    let mut files = Vec::new();
    rust_files(&Path::new(ROOT).join(krate).join("src"), &mut files);
    for file in files {
        let source = std::fs::read_to_string(&file).expect("readable source");
        for forbidden in FORBIDDEN_IN_CORE {
            let path = format!("{}::", forbidden.replace('-', "_"));
            assert!(!source.contains(&path), "{} names {path}", file.display());
        }
    }
}

#[test]
fn no_source_cites_design_documents_outside_the_repository() {
    let mut files = Vec::new();
    for dir in ["src", "crates", "tests", "benches"] {
        rust_files(&Path::new(ROOT).join(dir), &mut files);
    }
    assert!(files.len() > 20, "the sources were not found");
    // Spelled in parts, so that this file does not cite the path it forbids.
    let outside = ["..", "shared", "design"].join("/");
    for file in files {
        let source = std::fs::read_to_string(&file).expect("readable source");
        assert!(!source.contains(&outside), "{} cites {outside}", file.display());
    }
}
