//! End-to-end tests of the `nff` binary: outputs, exact GD from a state file, bad input.
#![allow(clippy::needless_range_loop)] // hand-written equations index like the math
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;
use support::entries;

fn nff(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nff"))
        .args(args)
        .output()
        .expect("run nff")
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn bytes(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn train_writes_summary_trajectory_and_state() {
    let d = tmp();
    let out = d.path().join("run");
    let o = nff(&[
        "train",
        "--arch",
        "dnn",
        "--width",
        "24",
        "--depth",
        "3",
        "--init",
        "min-norm",
        "--n",
        "8",
        "--steps",
        "50",
        "--eta",
        "0.1",
        "--lambda",
        "0.01",
        "--seed",
        "3",
        "--quiet",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        entries(&out),
        ["state.npz", "summary.json", "trajectory.csv"]
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["seed"], 3);
    assert_eq!(summary["config"]["steps"], 50);
    assert_eq!(summary["config"]["model"]["width"], 24);
    let j0 = summary["initial"]["objective"].as_f64().unwrap();
    let j1 = summary["final"]["objective"].as_f64().unwrap();
    assert!(j1 < j0, "GD did not decrease J: {j0} -> {j1}");
    let csv = std::fs::read_to_string(out.join("trajectory.csv")).unwrap();
    assert!(csv.starts_with("step,t,objective,risk,dissipation,residual_norm\n"));
    assert_eq!(csv.lines().last().unwrap().split(',').next().unwrap(), "50");
}

#[test]
fn same_seed_same_state_for_one_and_two_threads() {
    let d = tmp();
    let run = |threads: &str, name: &str| {
        let out = d.path().join(name);
        let o = nff(&[
            "train",
            "--arch",
            "resnet",
            "--width",
            "300",
            "--depth",
            "3",
            "--steps",
            "20",
            "--threads",
            threads,
            "--quiet",
            "--out",
            s(&out),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read(out.join("state.npz")).unwrap()
    };
    assert_eq!(run("1", "a"), run("2", "b"));
}

/// `nff train --init STATE.npz` reproduces math.md §2 exactly: two GD steps of a tiny two-level network,
/// written out by hand from the equations (no library code), agree to 1e-12.
#[test]
fn train_from_state_file_matches_hand_written_gd() {
    let d = tmp();
    // A two-level net: d = 2, m = 3, N = 2.
    let x = [[0.5, -1.0], [1.5, 0.25]];
    let y = [0.3, -0.4];
    let a = [[0.2, -0.7, 1.1], [0.9, 0.4, -0.3]];
    let v = [0.5, -1.5, 0.8];
    let state = d.path().join("state.npz");
    nff_core_write_state(&state, &x, &y, &a, &v);
    let out = d.path().join("gd");
    let (eta, lambda, m, n) = (0.1, 0.05, 3.0, 2.0);
    let o = nff(&[
        "train",
        "--init",
        s(&state),
        "--eta",
        "0.1",
        "--steps",
        "2",
        "--lambda",
        "0.05",
        "--activation",
        "tanh",
        "--quiet",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // By hand: yhat_i = (1/m) Σ_j v_j tanh(a_j·x_i), r_i = (yhat_i − y_i)/N,
    // ȧ_j = −Σ_i x_i r_i v_j (1 − tanh²) − λ a_j, v̇_j = −Σ_i r_i tanh(a_j·x_i) − λ v_j.
    let (mut a, mut v) = (a, v);
    for _ in 0..2 {
        let z = |i: usize, j: usize| x[i][0] * a[0][j] + x[i][1] * a[1][j];
        let yhat: Vec<f64> = (0..2)
            .map(|i| (0..3).map(|j| v[j] * z(i, j).tanh()).sum::<f64>() / m)
            .collect();
        let r: Vec<f64> = (0..2).map(|i| (yhat[i] - y[i]) / n).collect();
        let mut da = [[0.0; 3]; 2];
        let mut dv = [0.0; 3];
        for j in 0..3 {
            for c in 0..2 {
                da[c][j] = -(0..2)
                    .map(|i| x[i][c] * r[i] * v[j] * (1.0 - z(i, j).tanh().powi(2)))
                    .sum::<f64>()
                    - lambda * a[c][j];
            }
            dv[j] = -(0..2).map(|i| r[i] * z(i, j).tanh()).sum::<f64>() - lambda * v[j];
        }
        for j in 0..3 {
            for c in 0..2 {
                a[c][j] += eta * da[c][j];
            }
            v[j] += eta * dv[j];
        }
    }
    let (_, net) = nff::core::io::load_state(out.join("state.npz")).unwrap();
    for j in 0..3 {
        for c in 0..2 {
            assert!((net.a()[(c, j)] - a[c][j]).abs() < 1e-12);
        }
        assert!((net.v()[j] - v[j]).abs() < 1e-12);
    }
}

fn nff_core_write_state(
    path: &PathBuf,
    x: &[[f64; 2]; 2],
    y: &[f64; 2],
    a: &[[f64; 3]; 2],
    v: &[f64; 3],
) {
    let xm = faer::Mat::from_fn(2, 2, |i, j| x[i][j]);
    let am = faer::Mat::from_fn(2, 3, |i, j| a[i][j]);
    let data = nff::core::Dataset::new(xm, y.to_vec()).unwrap();
    let net =
        nff::core::Params::from_blocks(nff::core::Arch::TwoLevel, am.as_ref(), &[], v).unwrap();
    nff::core::io::save_state(path, &data, &net).unwrap();
}

/// Bad input: a one-line error naming expected and found, non-zero exit, no output directory.
#[test]
fn bad_input_fails_cleanly_without_partial_output() {
    let d = tmp();
    let out = d.path().join("out");
    let cases: Vec<(Vec<String>, &[&str])> = vec![
        (
            vec!["--activation".into(), "swish".into()],
            &["swish", "tanh"],
        ),
        (
            vec!["--data".into(), "builtin:nope".into()],
            &["nope", "sine"],
        ),
        (
            vec!["--init".into(), s(&d.path().join("missing.npz")).into()],
            &["missing.npz"],
        ),
        (vec!["--width".into(), "0".into()], &["m >= 1", "0"]),
        (vec!["--eta".into(), "nan".into()], &["eta", "NaN"]),
        (
            vec![
                "--arch".into(),
                "two-level".into(),
                "--depth".into(),
                "3".into(),
            ],
            &["depth 1", "3"],
        ),
        (vec!["--arch".into(), "cnn".into()], &["cnn", "resnet"]),
        (
            vec!["--data".into(), "foo.txt".into()],
            &[".npz", "foo.txt"],
        ),
    ];
    for (extra, needles) in cases {
        let mut args = vec![
            "train".to_string(),
            "--quiet".into(),
            "--steps".into(),
            "1".into(),
            "--out".into(),
            s(&out).into(),
        ];
        args.extend(extra.iter().cloned());
        let o = nff(&args.iter().map(|a| a.as_str()).collect::<Vec<_>>());
        assert!(!o.status.success(), "{extra:?} should fail");
        let e = stderr(&o);
        assert_eq!(e.trim().lines().count(), 1, "{extra:?}: not one line: {e}");
        for n in needles {
            assert!(e.contains(n), "{extra:?}: '{n}' not in: {e}");
        }
        assert!(!out.exists(), "{extra:?}: output directory left behind");
        assert_eq!(
            entries(d.path())
                .iter()
                .filter(|e| e.contains("partial"))
                .count(),
            0
        );
    }
}

#[test]
fn bad_state_files_are_rejected_with_shapes() {
    let d = tmp();
    let out = d.path().join("out");
    // NaN in the data.
    let bad = d.path().join("nan.npz");
    let xm = faer::Mat::from_fn(2, 2, |i, j| {
        if i == 1 && j == 1 {
            f64::NAN
        } else {
            1.0 + i as f64
        }
    });
    nff::core::io::write_npz(
        &bad,
        &[
            ("X", &[2, 2], &[1.0, 2.0, 1.0, xm[(1, 1)]]),
            ("y", &[2], &[0.0, 1.0]),
            ("A", &[2, 3], &[0.0; 6]),
            ("v", &[3], &[0.0; 3]),
            ("depth", &[], &[1.0]),
            ("resnet", &[], &[0.0]),
        ],
    )
    .unwrap();
    let o = nff(&["train", "--init", s(&bad), "--quiet", "--out", s(&out)]);
    assert!(!o.status.success());
    assert!(stderr(&o).to_lowercase().contains("nan"), "{}", stderr(&o));
    // Depth inconsistent with W.
    let bad = d.path().join("depth.npz");
    nff::core::io::write_npz(
        &bad,
        &[
            ("X", &[2, 2], &[1.0, 2.0, 1.0, 0.5]),
            ("y", &[2], &[0.0, 1.0]),
            ("A", &[2, 3], &[0.0; 6]),
            ("W", &[1, 3, 3], &[0.0; 9]),
            ("v", &[3], &[0.0; 3]),
            ("depth", &[], &[3.0]),
            ("resnet", &[], &[0.0]),
        ],
    )
    .unwrap();
    let o = nff(&["train", "--init", s(&bad), "--quiet", "--out", s(&out)]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("(2, 3, 3)") && e.contains("(1, 3, 3)"), "{e}");
    // Width flag disagreeing with the file.
    let good = d.path().join("good.npz");
    nff_core_write_state(
        &good,
        &[[0.5, -1.0], [1.5, 0.25]],
        &[0.3, -0.4],
        &[[0.2, -0.7, 1.1], [0.9, 0.4, -0.3]],
        &[0.5, -1.5, 0.8],
    );
    let o = nff(&[
        "train",
        "--init",
        s(&good),
        "--width",
        "5",
        "--quiet",
        "--out",
        s(&out),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("width 3") && stderr(&o).contains("--width 5"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
}

#[test]
fn data_command_writes_npz_and_csv() {
    let d = tmp();
    let out = d.path().join("data");
    let o = nff(&[
        "data",
        "--data",
        "builtin:spirals",
        "--n",
        "20",
        "--d",
        "2",
        "--quiet",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let a = nff::core::io::load_data_npz(out.join("data.npz")).unwrap();
    let b = nff::core::io::load_data_csv(out.join("data.csv")).unwrap();
    assert_eq!(a.y, b.y);
    assert!(a.y.iter().all(|y| *y == 1.0 || *y == -1.0));
}

#[test]
fn verify_quick_subset_writes_three_outputs_with_schema() {
    let d = tmp();
    let out = d.path().join("v");
    let o = nff(&[
        "verify",
        "--quick",
        "--only",
        "C1,C21",
        "--quiet",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let claims: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("claims.json")).unwrap()).unwrap();
    let arr = claims.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    for c in arr {
        for key in [
            "id",
            "title",
            "passed",
            "value",
            "threshold",
            "detail",
            "figure",
            "kind",
            "required_rate",
            "seeds_passed",
            "seeds_applicable",
            "pass_rate",
            "pass_rate_interval",
            "seeds",
        ] {
            assert!(c.get(key).is_some(), "missing {key} in {c}");
        }
        // Wall time is run-dependent: it is in summary.json, not in claims.json.
        assert!(c.get("seconds").is_none(), "{c}");
        let fig = c["figure"].as_str().unwrap();
        assert!(std::fs::read_to_string(out.join(fig))
            .unwrap()
            .contains("<svg"));
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let times = summary["run"]["claim_seconds"].as_array().unwrap();
    assert_eq!(times.len(), 2);
    assert!(times.iter().all(|t| t["seconds"].as_f64().unwrap() >= 0.0));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| C1 ") || md.contains("[C1]"));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains("<svg")
            && html.contains("C21")
            && !html.contains("<script")
            && !html.contains("src=\"http")
    );
    // Every claim section names the paper and math.md section it checks and links its docs page, and
    // the link resolves from the output directory.
    for (id, page, section) in [("C1", "C01.md", "§3.3"), ("C21", "C21.md", "§4.2")] {
        let sec = &html[html.find(&format!("<section id=\"{id}\"")).unwrap()..];
        let sec = &sec[..sec.find("</section>").unwrap()];
        assert!(sec.contains(&format!("math.md {section}")), "{id}: {sec}");
        let href = format!("docs/claims/{page}\"");
        let at = sec
            .find(&href)
            .unwrap_or_else(|| panic!("{id} does not link {page}"));
        let start = sec[..at].rfind("href=\"").unwrap() + 6;
        let link = &sec[start..at + href.len() - 1];
        assert!(
            out.join(link).exists(),
            "{id}: {link} does not resolve from {}",
            out.display()
        );
    }
    let o = nff(&[
        "verify",
        "--only",
        "C99",
        "--quiet",
        "--out",
        s(&d.path().join("w")),
    ]);
    assert!(!o.status.success() && stderr(&o).contains("C99"));
}

/// The same base seed gives the same `claims.json`, `report.md` and figures, byte for byte, with 1 and 2
/// threads, on a quick subset over 3 seed pairs that covers every claim group: flow (C3, C4), two-level
/// programs with parallel jobs (C9, C10, C11), the deep program (C15, C16, C23) and two exact checks
/// (C1, C21). Values are compared bit for bit (serde_json writes the shortest round-trip representation
/// of an f64).
#[test]
fn verify_outputs_do_not_depend_on_the_thread_count() {
    let d = tmp();
    let ids = "C1,C3,C4,C9,C10,C11,C15,C16,C21,C23";
    let run = |threads: &str| -> PathBuf {
        let out = d.path().join(format!("t{threads}"));
        let o = nff(&[
            "verify",
            "--quick",
            "--only",
            ids,
            "--seed",
            "3",
            "--seeds",
            "3",
            "--threads",
            threads,
            "--quiet",
            "--out",
            s(&out),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        out
    };
    let (one, two) = (run("1"), run("2"));
    let claims: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(one.join("claims.json")).unwrap()).unwrap();
    let arr = claims.as_array().unwrap();
    assert_eq!(arr.len(), 10);
    assert!(arr
        .iter()
        .all(|c| c["seeds"].as_array().unwrap().len() == 3));
    let names = entries(&one);
    assert_eq!(names, entries(&two));
    for name in names.iter().filter(|n| n.as_str() != "summary.json") {
        let (a, b) = (
            std::fs::read(one.join(name)).unwrap(),
            std::fs::read(two.join(name)).unwrap(),
        );
        assert!(a == b, "{name} differs between --threads 1 and 2");
    }
}

/// A failed claim is a finding, not an error: the exit status is 0 unless `--strict`, which exits 1
/// exactly when `claims.json` records a failure (the test holds whether C23 and C21 pass or fail).
#[test]
fn verify_exit_status_follows_strict() {
    let d = tmp();
    for (i, strict) in [false, true].into_iter().enumerate() {
        let out = d.path().join(format!("s{i}"));
        let mut args = vec![
            "verify",
            "--quick",
            "--only",
            "C23,C21",
            "--quiet",
            "--out",
            s(&out),
        ];
        if strict {
            args.push("--strict");
        }
        let o = nff(&args);
        let claims: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("claims.json")).unwrap())
                .unwrap();
        let all_passed = claims
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["passed"].as_bool().unwrap());
        assert_eq!(o.status.success(), !strict || all_passed, "{}", stderr(&o));
        if !all_passed {
            assert!(stderr(&o).contains("failed: C23"), "{}", stderr(&o));
        }
    }
}

/// `nff flow --integrator euler --dt η` is `nff train --eta η`, bit for bit.
#[test]
fn flow_euler_equals_train_bit_for_bit() {
    let d = tmp();
    let (a, b) = (d.path().join("flow"), d.path().join("train"));
    let common = [
        "--arch", "dnn", "--width", "20", "--depth", "3", "--init", "min-norm", "--n", "8",
        "--lambda", "0.01", "--seed", "5", "--quiet",
    ];
    let mut fa = vec![
        "flow",
        "--integrator",
        "euler",
        "--dt",
        "0.1",
        "--max-steps",
        "25",
        "--out",
        s(&a),
    ];
    fa.extend(common);
    let mut ta = vec!["train", "--eta", "0.1", "--steps", "25", "--out", s(&b)];
    ta.extend(common);
    let o = nff(&fa);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = nff(&ta);
    assert!(o.status.success(), "{}", stderr(&o));
    let (_, na) = nff::core::io::load_state(a.join("state.npz")).unwrap();
    let (_, nb) = nff::core::io::load_state(b.join("state.npz")).unwrap();
    assert_eq!(na.as_slice(), nb.as_slice());
}

/// Resuming from a checkpoint continues the same trajectory.
#[test]
fn flow_checkpoint_resume_matches_uninterrupted_run() {
    let d = tmp();
    let ck = d.path().join("ck.json");
    let model = [
        "--arch",
        "resnet",
        "--width",
        "16",
        "--depth",
        "2",
        "--init",
        "zero",
        "--n",
        "6",
        "--integrator",
        "rk4",
        "--dt",
        "0.1",
        "--quiet",
    ];
    let run = |extra: &[&str], out: &str| {
        let mut args = vec!["flow", "--out"];
        let p = d.path().join(out);
        args.push(s(&p));
        args.extend(model);
        args.extend(extra);
        let o = nff(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        nff::core::io::load_state(p.join("state.npz")).unwrap().1
    };
    let full = run(&["--max-steps", "40"], "full");
    run(
        &[
            "--max-steps",
            "20",
            "--checkpoint",
            s(&ck),
            "--checkpoint-every",
            "20",
        ],
        "half",
    );
    let resumed = run(&["--max-steps", "40", "--resume", s(&ck)], "resumed");
    assert_eq!(full.as_slice(), resumed.as_slice());
}

/// Two shards merged equal one unsharded sweep.
#[test]
fn sweep_shards_merge_to_the_single_run() {
    let d = tmp();
    let cfg = [
        "--widths",
        "4,8",
        "--seeds",
        "2",
        "--reference-width",
        "16",
        "--time",
        "0.2",
        "--dt",
        "0.05",
        "--n",
        "5",
        "--depth",
        "2",
        "--quiet",
    ];
    let run = |extra: &[&str], out: &str| {
        let p = d.path().join(out);
        let mut args = vec!["sweep", "--out", s(&p)];
        args.extend(cfg);
        args.extend(extra);
        let o = nff(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        p
    };
    let single = run(&[], "single");
    let s0 = run(&["--shard", "0/2"], "s0");
    let s1 = run(&["--shard", "1/2"], "s1");
    let merged = d.path().join("merged");
    let o = nff(&[
        "sweep",
        "--merge",
        s(&s0),
        s(&s1),
        "--out",
        s(&merged),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let read = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p.join("summary.json")).unwrap()).unwrap()
    };
    let (mut a, mut b) = (read(&single), read(&merged));
    assert_eq!(a["jobs"], b["jobs"]);
    assert_eq!(a["per_width"], b["per_width"]);
    // Byte for byte the single run, but for the run-dependent fields of summary.json.
    for f in ["results.csv", "sweep.svg", "shard.json"] {
        assert_eq!(bytes(&single, f), bytes(&merged, f), "{f}");
    }
    for k in ["threads", "wall_seconds", "run"] {
        a.as_object_mut().unwrap().remove(k);
        b.as_object_mut().unwrap().remove(k);
    }
    assert_eq!(a, b);
    // A missing shard, a duplicate, a shard of another configuration, a shard of another split and a
    // directory without shard.json (a failed array task) fail with one line naming the shard.
    let other = run(&["--shard", "1/2", "--seed", "5"], "other");
    let third = run(&["--shard", "1/3"], "third");
    let failed = d.path().join("failed");
    std::fs::create_dir(&failed).unwrap();
    for (dirs, expect) in [
        (vec![&s0], "shard 1/2 is missing"),
        (vec![&s0, &s1, &s1], "duplicates shard 1/2"),
        (vec![&s0, &other], "is of another configuration"),
        (vec![&s0, &third], "expected a shard k/2"),
        (vec![&s0, &failed], "holds no shard.json"),
    ] {
        let target = d.path().join("m2");
        let mut args = vec!["sweep", "--merge"];
        args.extend(dirs.iter().map(|p| s(p)));
        args.extend(["--out", s(&target)]);
        let o = nff(&args);
        let err = stderr(&o);
        assert!(!o.status.success() && err.contains(expect), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        let named = dirs.last().unwrap();
        assert!(
            expect.contains("missing") || err.contains(s(named)),
            "{err} should name {}",
            named.display()
        );
        assert!(!target.exists());
    }
    let o = nff(&[
        "sweep",
        "--shard",
        "2/2",
        "--out",
        s(&d.path().join("bad")),
        "--quiet",
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("2/2"),
        "{}",
        stderr(&o)
    );
}

/// `nff verify --shard k/n` slices merge into the outputs of one run, byte for byte; a missing,
/// duplicated or foreign slice fails with one line naming it.
#[test]
fn verify_shards_merge_to_the_single_run_byte_for_byte() {
    let d = tmp();
    let run = |extra: &[&str], out: &str| {
        let p = d.path().join(out);
        let mut args = vec![
            "verify",
            "--quick",
            "--only",
            "C1,C4,C21,C23,C15",
            "--quiet",
            "--out",
            s(&p),
        ];
        args.extend(extra);
        let o = nff(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        p
    };
    let single = run(&[], "single");
    let shards: Vec<PathBuf> = (0..3)
        .map(|k| {
            run(
                &["--shard", &format!("{k}/3"), "--threads", "1"],
                &format!("s{k}"),
            )
        })
        .collect();
    let merged = d.path().join("merged");
    let mut args = vec!["verify", "--merge"];
    // In any order.
    args.extend(shards.iter().rev().map(|p| s(p)));
    args.extend(["--out", s(&merged), "--quiet"]);
    let o = nff(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let names = entries(&single);
    assert_eq!(names, entries(&merged));
    assert!(names.contains(&"C23.svg".to_string()), "{names:?}");
    for f in names.iter().filter(|f| *f != "summary.json") {
        assert_eq!(bytes(&single, f), bytes(&merged, f), "{f}");
    }
    let other = run(&["--shard", "2/3", "--seed", "4"], "other");
    let empty = d.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for (dirs, expect, named) in [
        (vec![&shards[0], &shards[2]], "shard 1/3 is missing", None),
        (
            vec![&shards[0], &shards[1], &shards[0]],
            "duplicates shard 0/3",
            Some(&shards[0]),
        ),
        (
            vec![&shards[0], &shards[1], &other],
            "of another configuration",
            Some(&other),
        ),
        (
            vec![&shards[0], &shards[1], &empty],
            "holds no shard.json",
            Some(&empty),
        ),
    ] {
        let target = d.path().join("m2");
        let mut args = vec!["verify", "--merge"];
        args.extend(dirs.iter().map(|p| s(p)));
        args.extend(["--out", s(&target)]);
        let o = nff(&args);
        let err = stderr(&o);
        assert!(!o.status.success() && err.contains(expect), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        if let Some(n) = named {
            assert!(err.contains(s(n)), "{err}");
        }
        assert!(!target.exists());
    }
}

/// `--sbatch FILE --submit` with a stand-in `sbatch` on PATH that records each batch script and prints
/// a job id: the array script run once per task index and then the merge script give the single run's
/// outputs, and the merge depends on the array's id (afterany). Bad Slurm options fail in one line.
#[test]
fn sbatch_script_runs_the_shards_and_the_merge() {
    let d = tmp();
    let bin = d.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let jobs = d.path().join("jobs");
    std::fs::create_dir(&jobs).unwrap();
    let fake = bin.join("sbatch");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/bash\nset -e\ncd '{j}'\nn=$(( $(ls | grep -c '^args-' || true) + 41 ))\nprintf '%s\\n' \"$@\" > args-$n\ncat > script-$n\necho \"$n;fake\"\n",
            j = jobs.display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let cfg = [
        "--widths",
        "4,8",
        "--seeds",
        "2",
        "--reference-width",
        "16",
        "--time",
        "0.2",
        "--n",
        "5",
        "--depth",
        "2",
    ];
    let out = d.path().join("sw");
    let script = d.path().join("sweep.sh");
    let mut args = vec!["sweep"];
    args.extend(cfg);
    args.extend([
        "--out",
        s(&out),
        "--sbatch",
        s(&script),
        "--slurm-tasks",
        "3",
        "--slurm-cpus",
        "1",
        "--slurm-time",
        "5",
        "--submit",
        "--quiet",
    ]);
    let o = Command::new(env!("CARGO_BIN_EXE_nff"))
        .args(&args)
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "41 42\n");
    let array_args = std::fs::read_to_string(jobs.join("args-41")).unwrap();
    let merge_args = std::fs::read_to_string(jobs.join("args-42")).unwrap();
    assert!(array_args.contains("--array=0-2\n") && array_args.contains("--time=5\n"));
    assert!(array_args.contains("--cpus-per-task=1\n"), "{array_args}");
    assert!(
        merge_args.contains("--dependency=afterany:41\n"),
        "{merge_args}"
    );
    for k in 0..3 {
        let o = Command::new("bash")
            .arg(jobs.join("script-41"))
            .env("SLURM_ARRAY_TASK_ID", k.to_string())
            .output()
            .unwrap();
        assert!(o.status.success(), "task {k}: {}", stderr(&o));
    }
    let o = Command::new("bash")
        .arg(jobs.join("script-42"))
        .output()
        .unwrap();
    assert!(o.status.success(), "merge: {}", stderr(&o));
    let single = d.path().join("single");
    let mut args = vec!["sweep", "--quiet", "--out", s(&single)];
    args.extend(cfg);
    let o = nff(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["results.csv", "sweep.svg", "shard.json"] {
        assert_eq!(bytes(&single, f), bytes(&out, f), "{f}");
    }
    // One-line errors, and no script written.
    let bad = d.path().join("bad.sh");
    for (extra, expect) in [
        (
            vec!["--sbatch", s(&bad), "--slurm-mem", "4 GB"],
            "--slurm-mem '4 GB'",
        ),
        (vec!["--submit"], "expected --sbatch FILE"),
        (vec!["--sbatch", s(&bad), "--shard", "0/2"], "no --shard"),
        (vec!["--sbatch", s(&bad), "--widths", "99"], "width"),
    ] {
        let mut args = vec!["sweep"];
        args.extend(cfg);
        args.extend(extra);
        let o = nff(&args);
        let err = stderr(&o);
        assert!(!o.status.success() && err.contains(expect), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!bad.exists());
    }
    // Without sbatch on PATH, --submit fails in one line (the script stays, to be submitted later).
    let no_sbatch = d.path().join("no-sbatch");
    std::fs::create_dir(&no_sbatch).unwrap();
    for tool in ["bash", "mkdir"] {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap())
            .map(|p| p.join(tool))
            .find(|p| p.is_file())
            .unwrap();
        std::os::unix::fs::symlink(found, no_sbatch.join(tool)).unwrap();
    }
    let o = Command::new(env!("CARGO_BIN_EXE_nff"))
        .args([
            "verify",
            "--quick",
            "--only",
            "C1",
            "--sbatch",
            s(&bad),
            "--submit",
        ])
        .env("PATH", &no_sbatch)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(!o.status.success() && err.contains("sbatch"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn convex_two_level_certifies_and_rejects_bad_candidates() {
    let d = tmp();
    let out = d.path().join("cv");
    let o = nff(&[
        "convex",
        "--problem",
        "two-level",
        "--d",
        "1",
        "--bias",
        "--grid",
        "24",
        "--radius",
        "3",
        "--lambda1",
        "0.01",
        "--quiet",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let sm: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert!(sm["relative_gap"].as_f64().unwrap() <= 1e-8, "{sm}");
    let sol = nff::core::io::read_npz(out.join("solution.npz")).unwrap();
    let rho = sol.vector("rho").unwrap();
    assert!((rho.iter().sum::<f64>() - 1.0).abs() < 1e-9 && rho.iter().all(|r| *r >= 0.0));
    // rho0 not a probability vector.
    let cand = d.path().join("cand.npz");
    nff::core::io::write_npz(
        &cand,
        &[
            ("theta", &[2, 2], &[1.0, 0.0, 0.0, 1.0]),
            ("rho0", &[2], &[0.7, 0.7]),
        ],
    )
    .unwrap();
    let bad = d.path().join("bad");
    let o = nff(&[
        "convex",
        "--d",
        "1",
        "--bias",
        "--candidates",
        s(&cand),
        "--quiet",
        "--out",
        s(&bad),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("1.4") || stderr(&o).contains("sum"),
        "{}",
        stderr(&o)
    );
    assert!(!bad.exists());
    let o = nff(&[
        "convex",
        "--d",
        "1",
        "--bias",
        "--grid",
        "8",
        "--lambda1",
        "-1",
        "--quiet",
        "--out",
        s(&bad),
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("-1"),
        "{}",
        stderr(&o)
    );
}
