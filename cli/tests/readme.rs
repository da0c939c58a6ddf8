//! The README's promises, checked: every ```sh block of README.md runs as written (in a fresh directory,
//! with the freshly built `nff` first on the PATH), and `.ci/run` runs the README's test command.
//!
//! The set-up block is a ```text block (its commands are `cargo …`, run by CI itself, not here).
#[path = "../../tests/support/python.rs"]
mod python;

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn readme() -> String {
    std::fs::read_to_string(repo_root().join("README.md")).expect("README.md is readable")
}

/// The fenced blocks of `text` whose info string is exactly `lang`, in order.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        match &mut current {
            None if trimmed.starts_with("```") && trimmed[3..].trim() == lang => {
                current = Some(String::new());
            }
            Some(_) if trimmed.starts_with("```") => out.push(current.take().unwrap()),
            Some(body) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    assert!(current.is_none(), "README.md has an unclosed ``` block");
    out
}

#[test]
fn block_parser_sees_what_is_there() {
    let text = "a\n```sh\nx 1\ny\n```\n```text\nz\n```\n```sh\nw\n```\n";
    assert_eq!(blocks(text, "sh"), ["x 1\ny\n", "w\n"]);
    assert_eq!(blocks(text, "text"), ["z\n"]);
}

#[test]
fn readme_examples_run_as_written() {
    let text = readme();
    let examples = blocks(&text, "sh");
    assert!(
        examples.len() >= 4,
        "README.md should hold its examples in ```sh blocks; found {}",
        examples.len()
    );
    let python = python::python_with_numpy("the README's python3 example");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_nff")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let dir = tempfile::tempdir().unwrap();
    for block in &examples {
        assert!(
            !block.lines().any(|l| l.trim_start().starts_with("cargo ")),
            "an example block runs cargo (set-up commands belong in the ```text block):\n{block}"
        );
        let script: String = block
            .lines()
            .filter(|l| python.is_some() || !l.trim_start().starts_with("python3 "))
            .map(|l| format!("{l}\n"))
            .collect();
        // Blocks share one directory, in order, as a reader who runs them one after another does.
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(dir.path())
            .env("PATH", &path)
            .env("NFF_PYTHON", python.as_deref().unwrap_or("python3"))
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "README example failed ({}):\n{block}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Every `--out DIR` the block names exists afterwards; with `--sbatch FILE` (the jobs write
        // `--out` later, on the cluster) the script does.
        for line in block.lines().filter(|l| l.trim_start().starts_with("nff ")) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let flag = if words.contains(&"--sbatch") {
                "--sbatch"
            } else {
                "--out"
            };
            {
                if let Some(i) = words.iter().position(|w| *w == flag) {
                    let target = dir.path().join(words[i + 1]);
                    assert!(
                        target.exists(),
                        "`{line}` did not create {}",
                        target.display()
                    );
                }
            }
        }
    }
}

#[test]
fn ci_runs_the_readme_test_command() {
    let text = readme();
    let setup = blocks(&text, "text");
    let test_command = setup
        .iter()
        .flat_map(|b| b.lines())
        .find(|l| l.starts_with("cargo test"))
        .expect("the README's set-up block names a `cargo test` command");
    let ci = std::fs::read_to_string(repo_root().join(".ci/run")).expect(".ci/run is readable");
    assert!(
        ci.lines().any(|l| l.trim() == test_command.trim()),
        ".ci/run does not run the README's test command `{test_command}`"
    );
    let main_command = setup
        .iter()
        .flat_map(|b| b.lines())
        .find(|l| l.starts_with("cargo run"))
        .expect("the README's set-up block names a `cargo run` command");
    // One build serves both: the same profile for the run and the tests.
    assert_eq!(
        main_command.contains("--release"),
        test_command.contains("--release"),
        "the README's two commands build in different profiles: `{main_command}` / `{test_command}`"
    );
}
