//! Thread independence (issue 14): every output file of every command is the same bytes with
//! `--threads 1` and `--threads 2`.
//!
//! `summary.json` records how the command was run, so it is compared after removing those fields: the
//! keys `threads` (the option itself) and every key whose name contains `seconds` (wall and solve times,
//! e.g. `wall_seconds`, `solve_seconds`, `solve_seconds_all`). Every other field, and every other file
//! (`state.npz`, `trajectory.csv` with its `sigma_min` and `residual_bound` columns, `solution.npz`,
//! `results.csv`, `shard.json`, `sweep.svg`, `data.npz`, `data.csv`), must match byte for byte.
use std::path::Path;
use std::process::Command;

const NFF: &str = env!("CARGO_BIN_EXE_nff");

fn run(dir: &Path, args: &[&str], threads: &str, out: &str) {
    let o = Command::new(NFF)
        .args(args)
        .args(["--threads", threads, "--out", out, "--quiet"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{args:?} --threads {threads}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `summary.json` without the fields that say how the command was run.
fn strip_run_fields(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            map.retain(|k, _| k != "threads" && !k.contains("seconds"));
            map.values_mut().for_each(strip_run_fields);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_run_fields),
        _ => {}
    }
}

fn compare(dir: &Path, name: &str) -> Vec<String> {
    let (a, b) = (dir.join(format!("{name}-1")), dir.join(format!("{name}-2")));
    let mut files: Vec<String> = std::fs::read_dir(&a)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    files.sort();
    let mut problems = Vec::new();
    let mut files_b: Vec<String> = std::fs::read_dir(&b)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    files_b.sort();
    if files != files_b {
        problems.push(format!("{name}: files {files:?} vs {files_b:?}"));
    }
    for f in &files {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        let same = if f == "summary.json" {
            let mut x: serde_json::Value = serde_json::from_slice(&x).unwrap();
            let mut y: serde_json::Value = serde_json::from_slice(&y).unwrap();
            strip_run_fields(&mut x);
            strip_run_fields(&mut y);
            x == y
        } else {
            x == y
        };
        if !same {
            problems.push(format!("{name}: {f} differs between --threads 1 and 2"));
        }
    }
    problems
}

#[test]
fn every_output_file_is_the_same_for_one_and_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A trained DNN with group norms seeds the deep convex program.
    run(
        d,
        &[
            "train", "--arch", "dnn", "--width", "12", "--depth", "3", "--n", "10", "--reg",
            "group", "--lambda", "0.01", "--q", "2", "--eta", "0.2", "--steps", "40",
        ],
        "1",
        "dnn",
    );
    // Sizes large enough that the parallel kernels split the work (m = 300 > N = 40 gives σ_min > 0 and
    // the residual bound in the flow's trajectory).
    let commands: &[(&str, &[&str])] = &[
        (
            "train",
            &[
                "train", "--arch", "resnet", "--width", "300", "--depth", "3", "--n", "40",
                "--steps", "20",
            ],
        ),
        (
            "train-l2",
            &[
                "train",
                "--arch",
                "two-level",
                "--width",
                "512",
                "--n",
                "40",
                "--reg",
                "l2",
                "--lambda",
                "0.001",
                "--steps",
                "20",
            ],
        ),
        (
            "flow",
            &[
                "flow",
                "--arch",
                "resnet",
                "--width",
                "300",
                "--depth",
                "2",
                "--n",
                "40",
                "--integrator",
                "rk4",
                "--dt",
                "0.1",
                "--time",
                "0.5",
            ],
        ),
        (
            "flow-adaptive",
            &[
                "flow",
                "--arch",
                "dnn",
                "--width",
                "128",
                "--depth",
                "2",
                "--n",
                "20",
                "--integrator",
                "adaptive",
                "--time",
                "0.5",
            ],
        ),
        (
            "flow-lagrangian",
            &[
                "flow",
                "--arch",
                "dnn",
                "--width",
                "64",
                "--depth",
                "3",
                "--n",
                "16",
                "--init",
                "min-norm",
                "--integrator",
                "rk4",
                "--dt",
                "0.1",
                "--time",
                "0.3",
                "--lagrangian",
            ],
        ),
        (
            "flow-noisy",
            &[
                "flow",
                "--arch",
                "two-level",
                "--width",
                "256",
                "--n",
                "20",
                "--temperature",
                "0.01",
                "--dt",
                "0.05",
                "--time",
                "0.5",
            ],
        ),
        (
            "convex-two-level",
            &[
                "convex",
                "--d",
                "1",
                "--grid",
                "32",
                "--radius",
                "3",
                "--lambda1",
                "0.01",
            ],
        ),
        (
            "convex-two-level-tau",
            &[
                "convex",
                "--gaussian",
                "600",
                "--lambda1",
                "0.01",
                "--tau",
                "0.05",
            ],
        ),
        (
            "convex-deep",
            &[
                "convex",
                "--problem",
                "deep",
                "--init",
                "dnn/state.npz",
                "--fresh",
                "6",
                "--lambda",
                "0.01",
                "--q",
                "2",
            ],
        ),
        (
            "sweep",
            &[
                "sweep",
                "--arch",
                "two-level",
                "--widths",
                "8,16",
                "--seeds",
                "2",
                "--reference-width",
                "64",
                "--time",
                "0.3",
            ],
        ),
        (
            "data",
            &["data", "--data", "builtin:spirals", "--n", "64", "--d", "3"],
        ),
    ];
    let mut problems = Vec::new();
    for (name, args) in commands {
        run(d, args, "1", &format!("{name}-1"));
        run(d, args, "2", &format!("{name}-2"));
        problems.extend(compare(d, name));
    }
    // The flow trajectory does carry the σ_min and residual-bound columns being compared.
    let csv = std::fs::read_to_string(d.join("flow-1/trajectory.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    for col in ["sigma_min", "residual_bound"] {
        let i = header.iter().position(|h| *h == col).unwrap();
        let x: f64 = row[i].parse().unwrap();
        assert!(x > 0.0, "{col} = {x} in the compared flow");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
