//! Helpers shared by the binary's integration tests (each test file includes this with `mod support;`).
use std::path::Path;

/// The names of the entries of `dir`, sorted: what a command left behind (no partial directories, no
/// temporary files).
pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}
