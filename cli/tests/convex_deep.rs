//! End-to-end tests of `nff convex --problem deep`: the program and solution arrays of `solution.npz`,
//! the mapped network (checked by an independent numpy forward pass), `--program` / `--export-program`
//! round trips, `--solver`, and bad program files.
#[path = "../../tests/support/python.rs"]
mod python;
use std::path::Path;
use std::process::{Command, Output};

fn nff(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nff"))
        .args(args)
        .output()
        .expect("run nff")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn num(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} not a number in {v}"))
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

/// Train a depth-3 DNN with the group norms (λ = 0.01, q = 2) on N = 8 points of the sine data
/// (d = 2: X has full column rank, so the first-layer cost ‖a‖²/2 is the program's min-norm r₁).
fn train_depth3(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("train");
    let o = nff(&[
        "train",
        "--arch",
        "dnn",
        "--depth",
        "3",
        "--width",
        "10",
        "--init",
        "min-norm",
        "--n",
        "8",
        "--d",
        "2",
        "--reg",
        "group",
        "--lambda",
        "0.01",
        "--q",
        "2",
        "--steps",
        "300",
        "--eta",
        "0.05",
        "--seed",
        "1",
        "--quiet",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    out.join("state.npz")
}

fn solve_deep(state: &Path, out: &Path) -> serde_json::Value {
    let o = nff(&[
        "convex",
        "--problem",
        "deep",
        "--init",
        s(state),
        "--fresh",
        "6",
        "--lambda",
        "0.01",
        "--q",
        "2",
        "--threads",
        "1",
        "--quiet",
        "--out",
        s(out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    json(&out.join("summary.json"))
}

/// numpy, from the files alone: (1) the forward pass of the mapped `state.npz` (math.md §2); (2) the
/// mapped network's group-norm objective as a measure — unit j of layer ℓ weighs its mass p_ℓ(j)
/// (`state_mass*`), original weights w = W'/(m p_j), v = v'/(m p_j) (math.md §4.3, right-hand sides);
/// (3) the program's objective in mass variables from the program arrays (z, π, X, a, strengths) and the
/// solution (ρ, ũ), with r₁ from numpy's own pseudo-inverse; (4) its consistency residual; (5) the
/// uniform-width group norm of the state (every unit weighing 1/m, what `nff train` computes).
const NUMPY_CHECK: &str = r#"
import json, sys
import numpy as np
st = np.load(sys.argv[1]); f = np.load(sys.argv[2])
name = lambda k: bytes(f[k].astype(np.uint8)).decode()
assert name("activation") == "tanh" and name("loss") == "squared", (name("activation"), name("loss"))
h = np.tanh
X, y = f["X"], f["y"]
L = int(st["depth"]); q = float(f["q"]); la, lw, lv = float(f["lambda_a"]), f["lambda_w"], float(f["lambda_v"])
assert np.array_equal(st["X"], X) and np.array_equal(st["y"], y)
# (1) forward pass of the mapped state.
A, W, v = st["A"], st["W"], st["v"]; m = A.shape[1]
Z = [X @ A]
for l in range(L - 1):
    Z.append(h(Z[-1]) @ W[l] / m)
yhat = h(Z[-1]) @ v / m
risk_state = 0.5 * np.mean((yhat - y) ** 2)
# (2) the mapped network as a measure.
P = [f[f"state_mass{l+1}"] for l in range(L)]
keep = [p > 0 for p in P]
reg = la * np.sum(P[0] * np.sum(A ** 2, axis=0)) / 2
for l in range(L - 1):
    pj, pk = P[l], P[l + 1]
    w = np.zeros((m, m)); w[keep[l]] = W[l][keep[l]] / (m * pj[keep[l]][:, None])
    reg += lw[l] * (np.sum(pk * (pj @ np.abs(w)) ** q) + np.sum(pj * (np.abs(w) @ pk) ** q))
vo = np.zeros(m); vo[keep[-1]] = v[keep[-1]] / (m * P[-1][keep[-1]])
reg += lv * np.sum(P[-1] * np.abs(vo) ** q)
weighted = risk_state + reg
# The state's first layer is a's columns; its kept units are the candidates named by state_index.
idx = [f[f"state_index{l+1}"].astype(int) for l in range(L)]
assert all(np.all((ix >= 0) == k) for ix, k in zip(idx, keep))
assert np.array_equal(A[:, keep[0]], f["a"][:, idx[0][keep[0]]])
feat = max(np.abs(Z[l][:, keep[l]] - f[f"z{l+1}"][:, idx[l][keep[l]]]).max() for l in range(L))
# (3) the program objective in mass variables, from the arrays.
z = [f[f"z{l+1}"] for l in range(L)]; pi = [f[f"pi{l+1}"] for l in range(L)]
assert np.abs(z[0] - X @ f["a"]).max() <= 1e-12 * max(1, np.abs(z[0]).max())
p = [pi[l] * f[f"rho{l+1}"] for l in range(L)]
U = [pi[l][:, None] * pi[l + 1][None, :] * f[f"u{l+2}"] for l in range(L - 1)]
vh = pi[-1] * f[f"u{L+1}"]
persp = lambda S, t: np.where(S == 0, 0.0, S ** q / np.where(t > 0, t, np.nan) ** (q - 1))
yp = h(z[-1]) @ vh
obj = 0.5 * np.mean((yp - y) ** 2)
for l in range(L - 1):
    obj += lw[l] * (np.sum(persp(np.abs(U[l]).sum(axis=0), p[l + 1])) + np.sum(persp(np.abs(U[l]).sum(axis=1), p[l])))
obj += lv * np.sum(persp(np.abs(vh), p[-1]))
amin = np.linalg.pinv(X) @ z[0]
r1 = la * 0.5 * np.sum(amin ** 2, axis=0)
obj += r1 @ p[0]
obj += sum(b * np.sum(np.where(pp > 0, pp * np.log(np.where(pp > 0, pp, 1) / pw), 0)) for b, pp, pw in zip(f["beta"], p, pi) if b > 0)
# (4) consistency: sum_j U_jk h(z_j) = p_k z_k, and the masses sum to 1.
cons = max([np.abs(h(z[l]) @ U[l] - z[l + 1] * p[l + 1][None, :]).max() for l in range(L - 1)] + [abs(pp.sum() - 1) for pp in p])
# (5) the uniform-width group norm of the state.
lam = la
uni = risk_state + lam * ((A ** 2).sum() / (2 * m) + sum(np.mean(np.abs(W[l]).mean(axis=0) ** q) + np.mean(np.abs(W[l]).mean(axis=1) ** q) for l in range(L - 1)) + np.mean(np.abs(v) ** q))
print(json.dumps({
    "pred_diff": float(np.abs(yhat - f["predictions"]).max()),
    "pred_prog_diff": float(np.abs(yp - f["predictions"]).max()),
    "feature_diff": float(feat),
    "weighted": float(weighted), "program": float(obj), "consistency": float(cons),
    "r1_diff": float(np.abs(r1 - f["r1"]).max() / max(1e-300, np.abs(f["r1"]).max())),
    "risk_program": float(0.5 * np.mean((f["predictions"] - y) ** 2)),
    "uniform": float(uni), "min_mass": float(min(pp[k].min() for pp, k in zip(P, keep))),
    "max_mass": float(max(pp.max() for pp in P)), "units": int(m),
}))
"#;

/// (a) train a depth-3 DNN with the group norms, (b) solve its deep program with 6 fresh candidates per
/// layer, (c) check the mapped state with numpy: its predictions are the program's, and its group-norm
/// objective (as a measure, with the masses of `state_mass*`) is the reported objective to 1e-10 — the
/// §4.3 bijection, which holds at any feasible point, whether or not the solver certified optimality —
/// and the program objective rebuilt in numpy from the arrays of `solution.npz` is the reported one too;
/// (d) `nff train` runs from the mapped state and starts from the program's risk and from the uniform-width
/// group norm of that state (equal to the program's objective only if every mass is 1/m: a width-m
/// network whose units all weigh 1/m cannot carry unequal masses, so that equality is not asserted; the
/// test prints both).
#[test]
fn deep_solution_maps_to_a_network_numpy_reproduces() {
    let d = tempfile::tempdir().unwrap();
    let state = train_depth3(d.path());
    let out = d.path().join("cv");
    let sm = solve_deep(&state, &out);
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    files.sort();
    assert_eq!(files, ["solution.npz", "state.npz", "summary.json"]);
    let objective = num(&sm, "objective");
    for key in ["dual_bound", "relative_gap", "solve_seconds", "iterations"] {
        assert!(sm[key].is_number(), "{key} missing or not a number: {sm}");
    }
    assert!(sm["termination"].is_string(), "{sm}");
    // The default engine (auto) on this q = 2 squared-loss program is nff's own second-order-cone method.
    assert_eq!(sm["method"], "second-order-cone");
    assert_eq!(
        sm["iterations"].as_u64(),
        sm["iterations_split"]["inner"].as_u64()
    );
    // The bound is below the objective of every exactly feasible point; the returned point is feasible
    // to the solver's tolerance (primal_residual), so allow for that.
    assert!(
        num(&sm, "dual_bound") <= objective + 1e-7 * objective.abs(),
        "{sm}"
    );
    assert!(num(&sm, "primal_residual") <= 1e-7, "{sm}");
    // The network is a feasible point of its own program, so the optimum is not above its objective.
    assert!(
        objective <= num(&sm, "network_objective") * (1.0 + 1e-12),
        "{sm}"
    );
    let mapped = &sm["mapped_network"];
    let weighted = num(mapped, "objective_weighted");
    assert!(
        rel(weighted, objective) <= 1e-10,
        "Rust weighted objective {weighted} vs {objective}"
    );
    eprintln!(
        "deep program: objective {objective:.12e}, relative gap {:.2e}, termination {}, {} iterations",
        num(&sm, "relative_gap"),
        sm["termination"],
        sm["iterations"]
    );

    // (d) nff train from the mapped state: 5 steps; its starting risk is the program's.
    let tr = d.path().join("retrain");
    let o = nff(&[
        "train",
        "--init",
        s(&out.join("state.npz")),
        "--reg",
        "group",
        "--lambda",
        "0.01",
        "--q",
        "2",
        "--steps",
        "5",
        "--quiet",
        "--out",
        s(&tr),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let trs = json(&tr.join("summary.json"));
    let (j0, risk0) = (
        num(&trs["initial"], "objective"),
        num(&trs["initial"], "risk"),
    );
    assert!(rel(risk0, num(mapped, "risk")) <= 1e-12, "{trs}");
    assert!(
        rel(j0, num(mapped, "objective_uniform")) <= 1e-12,
        "{trs} vs {mapped}"
    );
    assert!(num(&trs["final"], "objective") < j0, "GD did not descend");

    let Some(python) = python::python_with_numpy("numpy check of the mapped network") else {
        return;
    };
    let o = Command::new(&python)
        .arg("-c")
        .arg(NUMPY_CHECK)
        .arg(out.join("state.npz"))
        .arg(out.join("solution.npz"))
        .output()
        .expect("python runs");
    assert!(
        o.status.success(),
        "numpy check failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
    let np: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    eprintln!("numpy: {np}");
    // (c) Predictions: equal up to the consistency residual the solver reached (its feature residual
    // bounds the mapped network's feature error per unit of mass).
    let feat_tol = 1e-12 + 100.0 * num(&sm, "feature_residual");
    assert!(num(&np, "pred_diff") <= feat_tol, "{np} {sm}");
    assert!(num(&np, "feature_diff") <= feat_tol, "{np} {sm}");
    assert!(num(&np, "pred_prog_diff") <= 1e-13, "{np}");
    assert!(
        num(&np, "consistency") <= 10.0 * num(&sm, "primal_residual") + 1e-13,
        "{np} {sm}"
    );
    assert!(num(&np, "r1_diff") <= 1e-12, "{np}");
    // The bijection: the mapped network's objective (as a measure) = the program's objective.
    assert!(
        rel(num(&np, "weighted"), objective) <= 1e-10,
        "numpy weighted objective {} vs reported {objective}",
        np["weighted"]
    );
    // The program rebuilt from the file's arrays has the reported objective.
    assert!(
        rel(num(&np, "program"), objective) <= 1e-12,
        "numpy program objective {} vs reported {objective}",
        np["program"]
    );
    // (d) nff train's starting objective is the uniform-width group norm of the state, by numpy.
    assert!(rel(j0, num(&np, "uniform")) <= 1e-12, "{j0} vs {np}");
    assert!(
        rel(risk0, num(&np, "risk_program")) <= 1e-9,
        "{risk0} vs {np}"
    );
    eprintln!(
        "program objective {objective:.10e} = mapped network as a measure {:.10e}; the same state with every unit weighing 1/{} (nff train): {j0:.10e} (masses in [{:.1e}, {:.1e}])",
        np["weighted"].as_f64().unwrap(),
        np["units"],
        np["min_mass"].as_f64().unwrap(),
        np["max_mass"].as_f64().unwrap()
    );
}

/// `--export-program` writes the program without solving; `--program` on it, and on a `solution.npz`,
/// rebuilds the identical program: the same `solution.npz`, byte for byte.
#[test]
fn program_files_round_trip_exactly() {
    let d = tempfile::tempdir().unwrap();
    let state = train_depth3(d.path());
    let out = d.path().join("cv");
    let sm = solve_deep(&state, &out);
    let prog = d.path().join("prog.npz");
    let o = nff(&[
        "convex",
        "--problem",
        "deep",
        "--init",
        s(&state),
        "--fresh",
        "6",
        "--lambda",
        "0.01",
        "--q",
        "2",
        "--quiet",
        "--export-program",
        s(&prog),
        "--out",
        s(&d.path().join("unused")),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !d.path().join("unused").exists(),
        "--export-program made an output dir"
    );
    let exported = nff::core::io::read_npz(&prog).unwrap();
    assert!(exported.contains("z3") && !exported.contains("rho1"));
    let solution = nff::core::io::read_npz(out.join("solution.npz")).unwrap();
    for name in exported.names() {
        assert_eq!(
            exported.get(name).unwrap(),
            solution.get(name).unwrap(),
            "array {name} differs between the export and solution.npz"
        );
    }
    for (label, source) in [("exported", &prog), ("solution", &out.join("solution.npz"))] {
        let again = d.path().join(format!("again-{label}"));
        let o = nff(&[
            "convex",
            "--problem",
            "deep",
            "--program",
            s(source),
            "--solver",
            "auto",
            "--threads",
            "1",
            "--quiet",
            "--out",
            s(&again),
        ]);
        assert!(o.status.success(), "{label}: {}", stderr(&o));
        assert_eq!(
            std::fs::read(again.join("solution.npz")).unwrap(),
            std::fs::read(out.join("solution.npz")).unwrap(),
            "{label}: solution.npz differs"
        );
        let sm2 = json(&again.join("summary.json"));
        assert_eq!(sm2["objective"], sm["objective"]);
        assert!(sm2["network_objective"].is_null());
    }
}

/// `--solver alm` selects the augmented Lagrangian (a tiny instance: the method is slow to converge, the
/// test checks the mapping and the outputs, not its accuracy); `--tol-gap` reaches the options.
#[test]
fn solver_and_tolerance_flags_reach_the_solver() {
    let d = tempfile::tempdir().unwrap();
    let tr = d.path().join("small");
    let o = nff(&[
        "train",
        "--arch",
        "dnn",
        "--depth",
        "2",
        "--width",
        "5",
        "--init",
        "min-norm",
        "--n",
        "5",
        "--d",
        "1",
        "--bias",
        "--reg",
        "group",
        "--lambda",
        "0.02",
        "--q",
        "2",
        "--steps",
        "100",
        "--eta",
        "0.05",
        "--quiet",
        "--out",
        s(&tr),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = d.path().join("alm");
    let o = nff(&[
        "convex",
        "--problem",
        "deep",
        "--init",
        s(&tr.join("state.npz")),
        "--fresh",
        "2",
        "--lambda",
        "0.02",
        "--q",
        "2",
        "--solver",
        "alm",
        "--tol-gap",
        "1e-6",
        "--quiet",
        "--out",
        s(&out),
    ]);
    // The method rarely certifies this instance within its iteration limit: an uncertified solve
    // still writes its outputs, and exits 3 (docs/cli.md), never 0.
    let sm = json(&out.join("summary.json"));
    let expected = if sm["termination"] == "converged" {
        0
    } else {
        3
    };
    assert_eq!(
        o.status.code(),
        Some(expected),
        "{} {}",
        sm["termination"],
        stderr(&o)
    );
    assert_eq!(sm["method"], "augmented-lagrangian");
    assert_eq!(sm["config"]["tol_gap"], 1e-6);
    assert!(sm["iterations"].as_u64().unwrap() > 0);
    assert!(num(&sm, "objective") <= num(&sm, "network_objective"));
}

/// Bad `--program` files and flags: exit 1, one line naming what was expected and what was found, and
/// no output directory.
#[test]
fn bad_program_files_fail_cleanly() {
    let d = tempfile::tempdir().unwrap();
    let state = train_depth3(d.path());
    let prog = d.path().join("prog.npz");
    let o = nff(&[
        "convex",
        "--problem",
        "deep",
        "--init",
        s(&state),
        "--fresh",
        "6",
        "--q",
        "2",
        "--quiet",
        "--export-program",
        s(&prog),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let good = nff::core::io::read_npz(&prog).unwrap().into_arrays();
    // A copy of the program with `edit` applied.
    let variant =
        |name: &str,
         edit: &dyn Fn(&mut std::collections::BTreeMap<String, nff::core::io::NpzArray>)| {
            let mut arrays = good.clone();
            edit(&mut arrays);
            let path = d.path().join(format!("{name}.npz"));
            let list: Vec<(&str, &[usize], &[f64])> = arrays
                .iter()
                .map(|(k, a)| (k.as_str(), a.shape.as_slice(), a.data.as_slice()))
                .collect();
            nff::core::io::write_npz(&path, &list).unwrap();
            path
        };
    let set = |arrays: &mut std::collections::BTreeMap<String, nff::core::io::NpzArray>,
               key: &str,
               shape: Vec<usize>,
               data: Vec<f64>| {
        arrays.insert(key.into(), nff::core::io::NpzArray { shape, data });
    };
    let missing_pi2 = variant("missing_pi2", &|a| {
        a.remove("pi2");
    });
    let short_pi2 = variant("short_pi2", &|a| {
        set(a, "pi2", vec![15], vec![1.0 / 15.0; 15]);
    });
    let bad_a = variant("bad_a", &|a| {
        set(a, "a", vec![3, 16], vec![0.1; 48]);
    });
    let bad_z2 = variant("bad_z2", &|a| {
        set(a, "z2", vec![7, 16], vec![0.1; 112]);
    });
    let bad_lambda_w = variant("bad_lambda_w", &|a| {
        set(a, "lambda_w", vec![3], vec![0.01; 3]);
    });
    let bad_activation = variant("bad_activation", &|a| {
        let codes: Vec<f64> = "swish".bytes().map(f64::from).collect();
        set(a, "activation", vec![5], codes);
    });
    let bad_z1 = variant("bad_z1", &|a| {
        let z1 = a.get_mut("z1").unwrap();
        z1.data[3] += 0.5;
    });
    let negative_pi = variant("negative_pi", &|a| {
        let pi = a.get_mut("pi3").unwrap();
        pi.data[0] = -1.0;
    });
    let bad_q = variant("bad_q", &|a| {
        set(a, "q", vec![], vec![0.5]);
    });
    let missing_file = d.path().join("nope.npz");
    let out = d.path().join("out");
    let p = |path: &Path| vec!["--program".to_string(), s(path).to_string()];
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (p(&missing_pi2), vec!["pi2", "missing"]),
        (p(&short_pi2), vec!["pi2", "(16,)", "(15,)"]),
        (p(&bad_a), vec!["'a'", "(2, 16)", "(3, 16)"]),
        (p(&bad_z2), vec!["z2", "(8, n_2)", "(7, 16)"]),
        (p(&bad_lambda_w), vec!["lambda_w", "(2,)", "(3,)"]),
        (p(&bad_activation), vec!["swish", "tanh"]),
        (p(&bad_z1), vec!["z1", "X @ a"]),
        (p(&negative_pi), vec!["layer 3", "-1"]),
        (p(&bad_q), vec!["q", "0.5"]),
        (p(&state), vec!["not a deep program file", "z1"]),
        (p(&missing_file), vec!["nope.npz"]),
        (
            [p(&prog), vec!["--lambda".into(), "0.1".into()]].concat(),
            vec!["--lambda", "--program"],
        ),
        (
            [p(&prog), vec!["--solver".into(), "simplex".into()]].concat(),
            vec!["simplex", "ipm, alm"],
        ),
        (
            [p(&prog), vec!["--tol-gap=-1".into()]].concat(),
            vec!["--tol-gap", "-1"],
        ),
        (
            vec![
                "--init".into(),
                s(&state).into(),
                "--repeat".into(),
                "0".into(),
            ],
            vec!["--repeat", "0"],
        ),
    ];
    for (extra, needles) in cases {
        let mut args: Vec<String> = ["convex", "--problem", "deep", "--quiet", "--out", s(&out)]
            .iter()
            .map(|a| a.to_string())
            .collect();
        args.extend(extra.iter().cloned());
        let o = nff(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{extra:?} should fail: {e}");
        assert_eq!(e.trim().lines().count(), 1, "{extra:?}: not one line: {e}");
        for n in needles {
            assert!(e.contains(n), "{extra:?}: '{n}' not in: {e}");
        }
        assert!(!out.exists(), "{extra:?}: output directory left behind");
        let partial = std::fs::read_dir(d.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains("partial")
            })
            .count();
        assert_eq!(partial, 0, "{extra:?}: partial directory left behind");
    }
    // The two-level problem rejects the deep-only flags.
    let o = nff(&[
        "convex",
        "--problem",
        "two-level",
        "--program",
        s(&prog),
        "--quiet",
        "--out",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--problem deep"), "{}", stderr(&o));
    assert!(!out.exists());
}
