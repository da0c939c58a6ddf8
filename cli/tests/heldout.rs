//! Held-out evaluation end to end (issue 15): `nff train --split` / `--test-data` on the shipped real data,
//! with `--freeze hidden` and `--regime lazy`. The held-out figures of `summary.json` are recomputed by an
//! independent numpy forward pass (math.md §2) from `state.npz` and `test.npz` alone, and the standardization
//! from the raw data and the split's indices; `--freeze hidden` must leave A and W bit-identical.
#[path = "../../tests/support/python.rs"]
mod python;
use std::path::Path;
use std::process::{Command, Output};

fn nff(dir: &Path, args: &[&str]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_nff"))
        .args(args)
        .arg("--quiet")
        .current_dir(dir)
        .output()
        .expect("run nff");
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// numpy, from the files alone: the network of `state.npz` on the points of `test.npz` (and `val.npz`),
/// its risk (1/N convention of math.md §1) and sign accuracy; and, given the raw data, the split's
/// standardization recomputed from the training indices.
const NUMPY_CHECK: &str = r#"
import json, sys
import numpy as np
out, loss, raw = sys.argv[1], sys.argv[2], sys.argv[3]
s = np.load(out + "/state.npz")
A, v = s["A"], s["v"]
depth, m = int(s["depth"]), A.shape[1]
W = s["W"] if depth > 1 else None
resnet = depth > 1 and int(s["resnet"]) == 1
def predict(X):
    Z = X @ A
    for l in range(depth - 1):
        Z = (Z if resnet else 0.0) + np.tanh(Z) @ W[l] / m
    return np.tanh(Z) @ v / m
def risk(f, y):
    if loss == "logistic":
        return float(np.mean(np.logaddexp(0.0, -y * f)))
    return float(np.mean(0.5 * (f - y) ** 2))
res = {}
for part in ["test", "val"]:
    try:
        d = np.load(out + "/" + part + ".npz")
    except FileNotFoundError:
        continue
    f = predict(d["X"])
    res[part + "_risk"] = risk(f, d["y"])
    if loss == "logistic":
        res[part + "_accuracy"] = float(np.mean(d["y"] * f > 0))
sp = json.load(open(out + "/split.json"))
if raw != "-" and sp["indices"] is not None:
    r = np.load(raw)
    X, y = r["X"], r["y"]
    tr, te = sp["indices"]["train"], sp["indices"]["test"]
    mu, sd = X[tr].mean(axis=0), X[tr].std(axis=0)
    const = X[tr].max(axis=0) == X[tr].min(axis=0)
    mu[const], sd[const] = 0.0, 1.0
    Xt = (X[te] - mu) / sd
    res["standardization_err"] = float(np.max(np.abs(Xt - np.load(out + "/test.npz")["X"])))
    res["train_err"] = float(np.max(np.abs((X[tr] - mu) / sd - s["X"])))
print(json.dumps(res))
"#;

fn numpy_check(python: &str, out: &Path, loss: &str, raw: &str) -> serde_json::Value {
    let o = Command::new(python)
        .arg("-c")
        .arg(NUMPY_CHECK)
        .arg(out)
        .arg(loss)
        .arg(raw)
        .output()
        .expect("python runs");
    assert!(
        o.status.success(),
        "numpy check failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

/// Every held-out figure of `summary.json` equals numpy's to 1e-12 relative (accuracies exactly).
fn assert_agrees(out: &Path, np: &serde_json::Value, loss: &str) -> f64 {
    let fin = &json(&out.join("summary.json"))["final"];
    let mut worst: f64 = 0.0;
    for key in ["test_risk", "val_risk"] {
        let (a, b) = (fin[key].as_f64().unwrap(), np[key].as_f64().unwrap());
        assert!(rel(a, b) <= 1e-12, "{key}: nff {a} vs numpy {b} ({out:?})");
        worst = worst.max(rel(a, b));
    }
    if loss == "logistic" {
        assert_eq!(fin["test_accuracy"], np["test_accuracy"], "{out:?}");
    } else {
        assert!(fin.get("test_accuracy").is_none());
    }
    worst
}

#[test]
fn held_out_figures_equal_an_independent_numpy_forward_pass() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    nff(
        d,
        &["data", "--data", "builtin:breast-cancer", "--out", "bc"],
    );
    nff(d, &["data", "--data", "builtin:diabetes", "--out", "dia"]);
    let split = ["--split", "0.6,0.2,0.2", "--seed", "3"];
    let runs: Vec<(&str, &str, Vec<&str>)> = vec![
        (
            "mf-bc",
            "logistic",
            vec![
                "--arch",
                "two-level",
                "--width",
                "64",
                "--data",
                "builtin:breast-cancer",
                "--loss",
                "logistic",
                "--eta",
                "1",
                "--steps",
                "40",
            ],
        ),
        (
            "rf-bc",
            "logistic",
            vec![
                "--arch",
                "two-level",
                "--width",
                "64",
                "--data",
                "builtin:breast-cancer",
                "--loss",
                "logistic",
                "--freeze",
                "hidden",
                "--ridge-grid",
                "1e-3,1e-2,1e-1",
            ],
        ),
        (
            "mf-dia",
            "squared",
            vec![
                "--arch",
                "resnet",
                "--depth",
                "3",
                "--width",
                "48",
                "--data",
                "builtin:diabetes",
                "--eta",
                "0.5",
                "--steps",
                "30",
                "--bias",
            ],
        ),
        (
            "rf-dia",
            "squared",
            vec![
                "--arch",
                "dnn",
                "--depth",
                "3",
                "--width",
                "48",
                "--data",
                "builtin:diabetes",
                "--lambda",
                "0.01",
                "--freeze",
                "hidden",
            ],
        ),
    ];
    for (name, _, args) in &runs {
        let mut a: Vec<&str> = vec!["train"];
        a.extend(args.iter().copied());
        a.extend(split);
        a.extend(["--out", name]);
        nff(d, &a);
    }
    // The same model with a separate test file: the parts of the first run as --data / --test-data.
    nff(
        d,
        &[
            "train",
            "--arch",
            "two-level",
            "--width",
            "64",
            "--data",
            "mf-bc/val.npz",
            "--test-data",
            "mf-bc/test.npz",
            "--standardize",
            "none",
            "--loss",
            "logistic",
            "--steps",
            "5",
            "--out",
            "file",
        ],
    );
    for (name, _, _) in &runs {
        let s = json(&d.join(name).join("summary.json"));
        assert!(s["final"]["test_risk"].as_f64().unwrap().is_finite());
        let traj = std::fs::read_to_string(d.join(name).join("trajectory.csv")).unwrap();
        assert!(
            traj.starts_with(
                "step,t,objective,risk,dissipation,residual_norm,test_risk,val_risk\n"
            ),
            "{traj}"
        );
    }
    let Some(python) = python::python_with_numpy("numpy check of the held-out figures") else {
        return;
    };
    let mut worst: f64 = 0.0;
    for (name, loss, args) in &runs {
        let raw = if args.contains(&"builtin:diabetes") {
            "dia/data.npz"
        } else {
            "bc/data.npz"
        };
        let raw = if args.contains(&"--bias") { "-" } else { raw };
        let raw_path = if raw == "-" {
            "-".to_string()
        } else {
            d.join(raw).to_string_lossy().to_string()
        };
        let np = numpy_check(&python, &d.join(name), loss, &raw_path);
        worst = worst.max(assert_agrees(&d.join(name), &np, loss));
        if raw != "-" {
            // Standardized with the training part's statistics (recomputed from the raw data).
            assert!(
                np["standardization_err"].as_f64().unwrap() <= 1e-12,
                "{name}: {np}"
            );
            assert!(np["train_err"].as_f64().unwrap() <= 1e-12, "{name}: {np}");
        }
    }
    let np = numpy_check(&python, &d.join("file"), "logistic", "-");
    let fin = &json(&d.join("file/summary.json"))["final"];
    let (a, b) = (
        fin["test_risk"].as_f64().unwrap(),
        np["test_risk"].as_f64().unwrap(),
    );
    assert!(rel(a, b) <= 1e-12, "--test-data: {a} vs {b}");
    assert_eq!(fin["test_accuracy"], np["test_accuracy"]);
    python::notice(&format!(
        "held-out figures: nff vs numpy, largest relative difference {worst:.2e}"
    ));
}

#[test]
fn freeze_hidden_keeps_a_and_w_bit_identical_and_trains_v() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for arch in [["two-level", "1"], ["dnn", "3"], ["resnet", "3"]] {
        let base = [
            "train",
            "--arch",
            arch[0],
            "--depth",
            arch[1],
            "--width",
            "32",
            "--data",
            "builtin:diabetes",
            "--split",
            "0.5,0.25,0.25",
            "--lambda",
            "0.01",
        ];
        let init = format!("init-{}", arch[0]);
        let rf = format!("rf-{}", arch[0]);
        nff(d, &[&base[..], &["--steps", "0", "--out", &init]].concat());
        nff(
            d,
            &[&base[..], &["--freeze", "hidden", "--out", &rf]].concat(),
        );
        let (_, a) = nff::core::io::load_state(d.join(&init).join("state.npz")).unwrap();
        let (_, b) = nff::core::io::load_state(d.join(&rf).join("state.npz")).unwrap();
        let vr = a.shape().v_range();
        let bits = |p: &[f64]| p.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&a.as_slice()[..vr.start]),
            bits(&b.as_slice()[..vr.start]),
            "{arch:?}"
        );
        assert_ne!(a.v(), b.v(), "{arch:?}: v not trained");
        let s = json(&d.join(&rf).join("summary.json"));
        assert_eq!(s["freeze"], "hidden");
        assert_eq!(s["fit"]["converged"], true);
        // v is stationary: the fit's gradient norm is at rounding level.
        assert!(s["fit"]["gradient_norm"].as_f64().unwrap() < 1e-10, "{s}");
        // A fit beats the initialization on the training risk.
        assert!(s["final"]["risk"].as_f64() < s["initial"]["risk"].as_f64());
    }
}

#[test]
fn lazy_regime_writes_the_linearization_point_and_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = [
        "train",
        "--arch",
        "resnet",
        "--depth",
        "3",
        "--width",
        "32",
        "--data",
        "builtin:breast-cancer",
        "--loss",
        "logistic",
        "--split",
        "0.6,0.2,0.2",
        "--regime",
        "lazy",
        "--ridge-grid",
        "1e-3,1e-1",
    ];
    nff(d, &[&base[..], &["--out", "lazy"]].concat());
    nff(
        d,
        &[&base[..], &["--out", "lazy2", "--threads", "1"]].concat(),
    );
    for f in [
        "state.npz",
        "init.npz",
        "test.npz",
        "val.npz",
        "trajectory.csv",
        "split.json",
    ] {
        assert_eq!(
            std::fs::read(d.join("lazy").join(f)).unwrap(),
            std::fs::read(d.join("lazy2").join(f)).unwrap(),
            "{f} differs between 2 threads and 1"
        );
    }
    let s = json(&d.join("lazy/summary.json"));
    assert_eq!(s["regime"], "lazy");
    assert_eq!(s["fit"]["converged"], true);
    let lam = s["fit"]["lambda"].as_f64().unwrap();
    let vals = s["fit"]["ridge_choice"]["val_risks"].as_array().unwrap();
    let best = vals
        .iter()
        .min_by(|a, b| a[1].as_f64().partial_cmp(&b[1].as_f64()).unwrap())
        .unwrap();
    assert_eq!(best[0].as_f64().unwrap(), lam);
    // The chosen ridge's validation risk (cross kernel) is the final one (JVP on the validation points).
    let (a, b) = (
        best[1].as_f64().unwrap(),
        s["final"]["val_risk"].as_f64().unwrap(),
    );
    assert!(rel(a, b) <= 1e-12, "{a} vs {b}");
    let acc = s["final"]["test_accuracy"].as_f64().unwrap();
    assert!(acc > 0.8, "lazy test accuracy {acc}");
}
