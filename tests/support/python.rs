//! Shared by the test crates that call Python (included with `#[path = …] mod python;`): find an
//! interpreter with numpy, or skip with a notice the test harness does not swallow.
#![allow(dead_code)]
use std::io::Write as _;

/// A line on the real stderr: `eprintln!` inside a test is captured and shown only on failure, so a
/// skip notice written with it would be invisible in a normal `cargo test`.
pub fn notice(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

/// Whether a missing numpy is a failure rather than a skip: `NFF_REQUIRE_NUMPY` set to anything but
/// `0` or empty, or `CI` set.
pub fn numpy_required() -> bool {
    let required = std::env::var("NFF_REQUIRE_NUMPY").is_ok_and(|v| !v.is_empty() && v != "0");
    required || std::env::var_os("CI").is_some()
}

/// The Python interpreter (`$NFF_PYTHON`, default `python3`) when it imports numpy, or `None` after a
/// visible notice that `what` was skipped. When numpy is required — `NFF_REQUIRE_NUMPY=1` (set by
/// `.ci/run`, which installs numpy) or `CI` set — a missing numpy fails the test instead of skipping it.
pub fn python_with_numpy(what: &str) -> Option<String> {
    let python = std::env::var("NFF_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&python)
        .args(["-c", "import numpy"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Some(python);
    }
    if numpy_required() {
        panic!("{what}: `{python} -c 'import numpy'` failed, but numpy is required here (NFF_REQUIRE_NUMPY=1 or CI set; `python3 -m pip install numpy`)");
    }
    notice(&format!(
        "notice: {what} skipped: `{python}` cannot import numpy (set NFF_PYTHON or `python3 -m pip install numpy`)"
    ));
    None
}
