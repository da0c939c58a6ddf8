//! The `nff` binary on a table of hostile inputs (issue 14): sizes that cannot fit, corrupted and
//! truncated files, checkpoints of other models, unknown config keys, ill-posed solves, diverging flows,
//! absurd limits, a full stdout, bad arguments.
//!
//! Every row runs in a fresh directory holding the fixtures it names, with `--out o --quiet`, and asserts:
//! the expected exit status (1 for bad input, 3 for a run that wrote its outputs but did not reach its
//! stop rule or tolerance); exactly one line on stderr, containing the row's expected words; no panic
//! text; no `o` directory when the status is 1 (and a `summary.json` whose `termination` is the expected
//! one when it is 3); no staging directory (`.o.partial-*`) and no temporary file (`*.tmp*`) left behind;
//! and that the run ends within a time limit (an ill-posed input must not hang).
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

mod support;
use support::entries;

const NFF: &str = env!("CARGO_BIN_EXE_nff");

/// How long one row may run.
const LIMIT: Duration = Duration::from_secs(60);

/// What a row expects.
enum Expect {
    /// Exit 1, one line containing every one of these words, nothing left behind.
    Error(&'static [&'static str]),
    /// Exit 3 with one line, `o/summary.json` present and its termination one of these.
    NotReached(&'static [&'static str]),
}

struct Row {
    name: &'static str,
    args: &'static [&'static str],
    /// Fixture files copied into the run directory first.
    files: &'static [&'static str],
    expect: Expect,
    /// Send stdout to /dev/full.
    full_stdout: bool,
}

const fn row(
    name: &'static str,
    args: &'static [&'static str],
    files: &'static [&'static str],
    expect: Expect,
) -> Row {
    Row {
        name,
        args,
        files,
        expect,
        full_stdout: false,
    }
}

use Expect::{Error, NotReached};

const MEM: &[&str] = &["not enough memory", "needs about", "available"];
const STEPS: &[&str] = &["too many steps", "expected at most"];
const FULL: &[&str] = &["cannot write", "stdout", "No space left on device"];
const OTHER_RUN: &[&str] = &["written by another run", "expected", "found"];

/// The flow whose checkpoint `ck_ok.json` is (see `fixtures`), resumed with one more option (one the
/// checkpointed run did not give) that changes its trajectory.
macro_rules! ck_flow {
    ($($extra:expr),*) => {
        &["flow", "--arch", "two-level", "--width", "6", "--n", "8", "--d", "2", "--integrator", "euler",
          "--time", "1", "--resume", "ck_ok.json" $(, $extra)*]
    };
}

#[rustfmt::skip]
const ROWS: &[Row] = &[
    // --- sizes that cannot fit: refused by the estimate before anything is allocated
    row("huge width", &["train", "--width", "1000000000000"], &[], Error(MEM)),
    row("large width", &["train", "--width", "100000000"], &[], Error(MEM)),
    row("huge n", &["train", "--n", "10000000000"], &[], Error(MEM)),
    row("huge depth", &["train", "--arch", "dnn", "--depth", "1000000000", "--width", "4"], &[], Error(MEM)),
    row("deep and wide", &["train", "--arch", "resnet", "--depth", "100000", "--width", "1000"], &[], Error(MEM)),
    row("flow width", &["flow", "--width", "100000000", "--time", "1"], &[], Error(MEM)),
    row("flow lagrangian width", &["flow", "--width", "30000000", "--n", "64", "--lagrangian", "--time", "1"], &[], Error(MEM)),
    row("convex grid", &["convex", "--grid", "100000000", "--d", "3"], &[], Error(MEM)),
    row("convex gaussian", &["convex", "--gaussian", "10000000000"], &[], Error(MEM)),
    row("deep fresh", &["convex", "--problem", "deep", "--init", "dnn.npz", "--fresh", "1000000000"], &["dnn.npz"], Error(MEM)),
    row("sweep reference width", &["sweep", "--reference-width", "100000000000"], &[], Error(MEM)),
    row("data n", &["data", "--n", "100000000000"], &[], Error(MEM)),
    // --- corrupted, truncated and empty files
    row("npz crc", &["train", "--data", "crc.npz"], &["crc.npz"], Error(&["CRC-32", "crc.npz"])),
    row("state crc", &["train", "--init", "crc_state.npz"], &["crc_state.npz"], Error(&["CRC-32", "crc_state.npz"])),
    row("candidates crc", &["convex", "--candidates", "crc.npz"], &["crc.npz"], Error(&["CRC-32"])),
    row("npz truncated", &["train", "--data", "trunc.npz"], &["trunc.npz"], Error(&["not a readable .npz"])),
    row("npz empty", &["train", "--data", "empty.npz"], &["empty.npz"], Error(&["not a readable .npz"])),
    row("state truncated", &["flow", "--init", "trunc_state.npz", "--time", "1"], &["trunc_state.npz"], Error(&["not a readable .npz"])),
    row("csv empty", &["train", "--data", "empty.csv"], &["empty.csv"], Error(&["expected at least one data line"])),
    row("csv truncated", &["train", "--data", "trunc.csv"], &["trunc.csv"], Error(&["trunc.csv", "expected"])),
    row("checkpoint truncated", &["flow", "--arch", "two-level", "--width", "6", "--n", "8", "--d", "2", "--integrator", "euler", "--time", "1", "--resume", "ck.json"], &["ck.json"], Error(&["ck.json"])),
    row("checkpoint not json", &["flow", "--width", "6", "--time", "1", "--resume", "good.npz"], &["good.npz"], Error(&["good.npz"])),
    // --- resume with a checkpoint of another model: refused, naming what differs
    row("resume as it was", ck_flow!("--max-steps", "0"), &["ck_ok.json"], NotReached(&["final-time", "max-steps"])),
    row("resume other arch", &["flow", "--arch", "dnn", "--depth", "1", "--width", "6", "--n", "8", "--d", "2", "--integrator", "euler", "--time", "1", "--resume", "ck_ok.json"], &["ck_ok.json"], Error(&["written by another run", "arch"])),
    row("resume other seed", ck_flow!("--seed", "7"), &["ck_ok.json"], Error(OTHER_RUN)),
    row("resume other activation", ck_flow!("--activation", "relu"), &["ck_ok.json"], Error(&["written by another run", "activation", "relu"])),
    row("resume other lambda", ck_flow!("--lambda", "0.1"), &["ck_ok.json"], Error(&["written by another run", "regularizer"])),
    row("resume other loss", &["flow", "--arch", "two-level", "--width", "6", "--data", "builtin:parity", "--n", "8", "--d", "2", "--integrator", "euler", "--time", "1", "--loss", "logistic", "--resume", "ck_ok.json"], &["ck_ok.json"], Error(OTHER_RUN)),
    row("resume other data", ck_flow!("--data", "builtin:teacher"), &["ck_ok.json"], Error(OTHER_RUN)),
    row("resume other bias", ck_flow!("--bias"), &["ck_ok.json"], Error(OTHER_RUN)),
    row("resume other integrator", ck_flow!("--dt", "0.1"), &["ck_ok.json"], Error(&["written by another run", "integrator"])),
    row("resume other lagrangian", ck_flow!("--lagrangian"), &["ck_ok.json"], Error(&["written by another run", "lagrangian"])),
    // --- a state file's recorded model: a flag that disagrees names both values
    row("init other activation", &["train", "--init", "relu_l2.npz", "--activation", "tanh", "--steps", "2"], &["relu_l2.npz"], Error(&["--activation", "relu", "tanh", "state file"])),
    row("init other lambda", &["train", "--init", "relu_l2.npz", "--lambda", "0.5", "--steps", "2"], &["relu_l2.npz"], Error(&["regularizer", "--lambda 0.001", "--lambda 0.5"])),
    row("init other reg", &["train", "--init", "relu_l2.npz", "--reg", "group", "--steps", "2"], &["relu_l2.npz"], Error(&["regularizer", "l2", "group"])),
    row("init other loss", &["flow", "--init", "relu_l2.npz", "--loss", "logistic", "--time", "1"], &["relu_l2.npz"], Error(&["--loss", "squared", "logistic"])),
    row("init other width", &["train", "--init", "relu_l2.npz", "--width", "7"], &["relu_l2.npz"], Error(&["--width", "7"])),
    row("deep init other activation", &["convex", "--problem", "deep", "--init", "dnn.npz", "--activation", "relu"], &["dnn.npz"], Error(&["--activation", "tanh", "relu"])),
    // --- configs: unknown keys and tables, syntax errors (one line)
    row("config misspelt key", &["train", "--config", "misspelt.toml"], &["misspelt.toml"], Error(&["unknown key 'widht'", "expected", "width"])),
    row("config table", &["train", "--config", "table.toml"], &["table.toml"], Error(&["unknown table [train]"])),
    row("config syntax", &["train", "--config", "syntax.toml"], &["syntax.toml"], Error(&["syntax error at line 2"])),
    row("config wrong type", &["train", "--config", "wrongtype.toml"], &["wrongtype.toml"], Error(&["config key 'width'", "expected"])),
    row("config missing", &["train", "--config", "nope.toml"], &[], Error(&["cannot read config nope.toml"])),
    row("config key of another command", &["data", "--config", "flowkeys.toml"], &["flowkeys.toml"], Error(&["unknown key 'integrator'"])),
    // --- two-level convex with a tiny λ₁: refused below the floor, never "converged" with garbage
    row("lambda1 1e-9", &["convex", "--grid", "16", "--lambda1", "1e-9"], &[], Error(&["invalid --lambda1", "1e-8", "1e-9"])),
    row("lambda1 1e-300", &["convex", "--grid", "16", "--lambda1", "1e-300"], &[], Error(&["invalid --lambda1", "1e-300"])),
    row("lambda1 1e-5 uncertified", &["convex", "--grid", "16", "--d", "1", "--lambda1", "1e-5"], &[], NotReached(&["stalled", "line-search-failed", "max-iterations", "uncertified", "non-finite"])),
    row("lambda2 negative", &["convex", "--grid", "16", "--lambda2", "-1"], &[], Error(&["invalid --lambda2"])),
    // --- flows that diverge or never step: a termination in summary.json and exit 3
    row("euler large dt", &["flow", "--arch", "two-level", "--width", "8", "--n", "8", "--integrator", "euler", "--dt", "100", "--time", "1000"], &[], NotReached(&["diverged", "non-finite"])),
    row("rk4 large dt", &["flow", "--arch", "resnet", "--width", "16", "--n", "8", "--integrator", "rk4", "--dt", "30", "--time", "3000"], &[], NotReached(&["diverged", "non-finite"])),
    row("train large eta", &["train", "--arch", "two-level", "--width", "8", "--n", "8", "--eta", "100", "--steps", "50"], &[], NotReached(&["diverged", "non-finite"])),
    row("adaptive never steps", &["flow", "--width", "8", "--n", "8", "--integrator", "adaptive", "--rtol", "1e-300", "--atol", "1e-300", "--time", "1"], &[], Error(&["invalid --rtol", "1e-14"])),
    row("adaptive short of time", &["flow", "--arch", "two-level", "--width", "4", "--n", "4", "--integrator", "adaptive", "--time", "1e300", "--max-steps", "50"], &[], NotReached(&["max-steps"])),
    row("stationary not reached", &["flow", "--arch", "two-level", "--width", "4", "--n", "4", "--until-stationary", "1e-300", "--max-steps", "20"], &[], NotReached(&["max-steps"])),
    row("flow no stop rule", &["flow", "--width", "8"], &[], Error(&["no stop rule"])),
    // --- held-out evaluation and real data (issue 15)
    row("test data other d", &["train", "--test-data", "good.npz", "--steps", "2"], &["good.npz"], Error(&["test data", "d = 3", "d = 2"])),
    row("test labels not pm1", &["train", "--loss", "logistic", "--data", "builtin:parity", "--n", "8", "--d", "2", "--test-data", "good.npz", "--steps", "2"], &["good.npz"], Error(&["--test-data good.npz", "logistic", "expected labels in {-1, +1}", "found"])),
    row("split sum", &["train", "--split", "0.5,0.2,0.2"], &[], Error(&["--split", "sum to 1", "0.5,0.2,0.2"])),
    row("split empty part", &["train", "--n", "8", "--split", "0.9,0.05,0.05"], &[], Error(&["split", "expected at least one point", "part empty"])),
    row("split no test", &["train", "--split", "0.8,0.2,0"], &[], Error(&["--split", "expected a test fraction > 0", "0.8,0.2,0"])),
    row("split not numbers", &["train", "--split", "0.6;0.4"], &[], Error(&["--split", "TRAIN,VAL,TEST", "0.6;0.4"])),
    row("split and test data", &["train", "--split", "0.6,0.2,0.2", "--test-data", "good.npz"], &["good.npz"], Error(&["either --split or --test-data", "both"])),
    row("test data builtin", &["train", "--test-data", "builtin:sine"], &[], Error(&["--test-data", "expected a .npz or .csv", "builtin:sine"])),
    row("unknown builtin", &["train", "--data", "builtin:iris"], &[], Error(&["unknown built-in dataset 'iris'", "breast-cancer", "diabetes"])),
    row("real data n", &["train", "--data", "builtin:diabetes", "--n", "5000"], &[], Error(&["builtin:diabetes", "N <= 442", "N = 5000"])),
    row("real data d", &["data", "--data", "builtin:breast-cancer", "--d", "5"], &[], Error(&["builtin:breast-cancer", "d = 30", "d = 5"])),
    row("ridge grid without val", &["train", "--freeze", "hidden", "--split", "0.8,0,0.2", "--ridge-grid", "0.1"], &[], Error(&["--ridge-grid", "validation part"])),
    row("ridge grid bad", &["train", "--freeze", "hidden", "--split", "0.6,0.2,0.2", "--ridge-grid", "0.1,-1"], &[], Error(&["--ridge-grid", ">= 0", "-1"])),
    row("ridge grid mean-field", &["train", "--ridge-grid", "0.1"], &[], Error(&["--ridge-grid", "--freeze hidden or --regime lazy"])),
    row("freeze and lazy", &["train", "--freeze", "hidden", "--regime", "lazy"], &[], Error(&["two different baselines", "found both"])),
    row("freeze unknown", &["train", "--freeze", "all"], &[], Error(&["unknown --freeze 'all'", "hidden"])),
    row("lazy split ridge", &["train", "--regime", "lazy", "--lambda-v", "0.1"], &[], Error(&["--regime lazy", "--lambda-a / --lambda-v"])),
    row("freeze logistic no ridge", &["train", "--loss", "logistic", "--data", "builtin:parity", "--n", "8", "--d", "2", "--freeze", "hidden"], &[], Error(&["--freeze hidden", "lambda > 0", "found 0"])),
    row("standardize alone", &["train", "--standardize", "inputs"], &[], Error(&["--standardize", "--split or --test-data"])),
    // --- values and limits
    row("negative eta", &["train", "--eta", "-0.1"], &[], Error(&["invalid --eta", "found -0.1"])),
    row("nan eta", &["train", "--eta", "NaN"], &[], Error(&["invalid --eta"])),
    row("threads 100000", &["train", "--threads", "100000"], &[], Error(&["invalid --threads", "100000"])),
    row("threads 0", &["data", "--threads", "0"], &[], Error(&["invalid --threads"])),
    row("train time 1e300", &["train", "--time", "1e300"], &[], Error(STEPS)),
    row("train steps 1e11", &["train", "--steps", "100000000000"], &[], Error(STEPS)),
    row("flow time 1e300", &["flow", "--time", "1e300"], &[], Error(STEPS)),
    row("flow dt 1e-300", &["flow", "--dt", "1e-300", "--time", "1"], &[], Error(STEPS)),
    row("flow max steps", &["flow", "--max-steps", "1000000000000"], &[], Error(STEPS)),
    row("sweep dt 1e-300", &["sweep", "--dt", "1e-300"], &[], Error(STEPS)),
    // --- the argument parser: one line, exit 1
    row("unknown option", &["train", "--widht", "3"], &[], Error(&["--widht", "expected"])),
    row("not a number", &["train", "--width", "abc"], &[], Error(&["--width", "abc"])),
    row("negative count", &["train", "--width", "-3"], &[], Error(&["--width", "-3"])),
    row("unknown value", &["flow", "--integrator", "leapfrog", "--time", "1"], &[], Error(&["unknown integrator 'leapfrog'", "euler"])),
    row("unknown command", &["frobnicate"], &[], Error(&["frobnicate"])),
    row("out is a file", &["data", "--out", "crc.npz"], &["crc.npz"], Error(&["crc.npz", "not a directory"])),
    // --- a full disk on stdout: an error, and the output directory is not left behind
    Row { name: "stdout full (data)", args: &["data", "--n", "4"], files: &[], expect: Error(FULL), full_stdout: true },
    Row { name: "stdout full (train)", args: &["train", "--width", "4", "--n", "4", "--steps", "3"], files: &[], expect: Error(FULL), full_stdout: true },
    Row { name: "stdout full (help)", args: &["--help"], files: &[], expect: Error(&["cannot write to stdout"]), full_stdout: true },
];

/// The fixture directory, made once: data and state files (good, corrupted, truncated), checkpoints,
/// configs.
#[rustfmt::skip]
fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("nff-hostile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let run = |args: &[&str]| {
            let o = Command::new(NFF).args(args).arg("--quiet").current_dir(&dir).output().unwrap();
            assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        };
        run(&["data", "--data", "builtin:sine", "--n", "8", "--d", "2", "--out", "d"]);
        run(&["train", "--arch", "dnn", "--width", "6", "--depth", "2", "--n", "6", "--reg", "group", "--lambda", "0.01", "--steps", "10", "--out", "s"]);
        run(&["train", "--arch", "two-level", "--width", "6", "--n", "8", "--activation", "relu", "--reg", "l2", "--lambda", "0.001", "--steps", "5", "--out", "r"]);
        run(&["flow", "--arch", "two-level", "--width", "6", "--n", "8", "--d", "2", "--integrator", "euler", "--time", "1", "--checkpoint", "ck_ok.json", "--checkpoint-every", "3", "--out", "f"]);
        let read = |p: &str| std::fs::read(dir.join(p)).unwrap();
        let write = |p: &str, b: &[u8]| std::fs::write(dir.join(p), b).unwrap();
        let data = read("d/data.csv");
        let npz = read("d/data.npz");
        let state = read("r/state.npz");
        write("good.npz", &npz);
        write("dnn.npz", &read("s/state.npz"));
        write("relu_l2.npz", &state);
        write("crc.npz", &flip_in_first_array(&npz));
        write("crc_state.npz", &flip_in_first_array(&state));
        write("trunc.npz", &npz[..npz.len() / 2]);
        write("trunc_state.npz", &state[..state.len() - 30]);
        write("empty.npz", b"");
        write("empty.csv", b"");
        // The last line cut in the middle, after its last comma: a ragged row.
        let cut = data.len() - 1 - data.iter().rev().skip(1).position(|&b| b == b',').unwrap();
        write("trunc.csv", &data[..cut]);
        let ck = read("ck_ok.json");
        write("ck.json", &ck[..ck.len() / 2]);
        write("misspelt.toml", b"widht = 3\n");
        write("table.toml", b"[train]\nwidth = 3\n");
        write("syntax.toml", b"width = 3\neta = = 0.1\n");
        write("wrongtype.toml", b"width = \"wide\"\n");
        write("flowkeys.toml", b"n = 4\nintegrator = \"rk4\"\n");
        dir
    })
}

/// Flip one bit inside the data of the first stored `.npy` entry (after its header): the zip entry's
/// CRC-32 no longer matches.
fn flip_in_first_array(npz: &[u8]) -> Vec<u8> {
    let at = npz.windows(6).position(|w| w == b"\x93NUMPY").unwrap();
    let header_len = u16::from_le_bytes([npz[at + 8], npz[at + 9]]) as usize;
    let mut b = npz.to_vec();
    b[at + 10 + header_len + 3] ^= 0x10;
    b
}

/// Run one row; returns a description of what went wrong, if anything.
fn check(row: &Row) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    for f in row.files {
        std::fs::copy(fixtures().join(f), dir.path().join(f)).unwrap();
    }
    let mut cmd = Command::new(NFF);
    cmd.args(row.args)
        .current_dir(dir.path())
        .stderr(Stdio::piped());
    if row.args[0] != "--help" && !row.args.contains(&"--out") {
        cmd.args(["--out", "o"]);
    }
    if row.full_stdout {
        // Progress and results go to a full device: the results line fails to be written.
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        cmd.stdout(full);
    } else {
        cmd.arg("--quiet").stdout(Stdio::null());
    }
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > LIMIT {
            child.kill().ok();
            child.wait().ok();
            return Err(format!("did not end within {LIMIT:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    let lines: Vec<&str> = err.lines().collect();
    let code = status.code();
    let mut problems = Vec::new();
    let (want_code, words): (i32, &[&str]) = match row.expect {
        Error(w) => (1, w),
        NotReached(_) => (3, &[][..]),
    };
    if code != Some(want_code) {
        problems.push(format!("exit status {code:?}, expected {want_code}"));
    }
    if lines.len() != 1 {
        problems.push(format!("{} lines on stderr, expected 1", lines.len()));
    }
    for bad in [
        "panicked",
        "RUST_BACKTRACE",
        "internal error",
        "stack backtrace",
    ] {
        if err.contains(bad) {
            problems.push(format!("stderr shows '{bad}'"));
        }
    }
    for w in words {
        if !err.contains(w) {
            problems.push(format!("stderr lacks '{w}'"));
        }
    }
    if let NotReached(terms) = row.expect {
        if !["did not reach", "not certified"]
            .iter()
            .any(|w| err.contains(w))
        {
            problems.push("stderr says neither 'did not reach' nor 'not certified'".into());
        }
        match std::fs::read_to_string(dir.path().join("o/summary.json")) {
            Ok(s) => {
                let v: serde_json::Value = serde_json::from_str(&s).unwrap();
                let t = v["termination"]
                    .as_str()
                    .or(v["final"]["termination"].as_str())
                    .unwrap_or("");
                if !terms.contains(&t) {
                    problems.push(format!("termination '{t}', expected one of {terms:?}"));
                }
                if t == "converged" {
                    problems.push("reported converged".into());
                }
            }
            Err(e) => problems.push(format!("no o/summary.json: {e}")),
        }
    }
    let mut allowed: Vec<String> = row.files.iter().map(|f| f.to_string()).collect();
    if want_code == 3 {
        allowed.push("o".into());
    }
    for e in entries(dir.path()) {
        if !allowed.contains(&e) {
            problems.push(format!("left behind: {e}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}; stderr: {}",
            problems.join("; "),
            err.trim_end()
        ))
    }
}

/// Runs every row of `rows` (two at a time) and fails listing each row that went wrong.
fn run_rows(rows: &[&Row]) {
    fixtures();
    let failures: Vec<String> = std::thread::scope(|s| {
        let chunks: Vec<Vec<&&Row>> = (0..2)
            .map(|k| rows.iter().skip(k).step_by(2).collect())
            .collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .into_iter()
                        .filter_map(|r| {
                            check(r)
                                .err()
                                .map(|e| format!("[{}] {:?}: {e}", r.name, r.args))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} hostile inputs misbehaved:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
fn hostile_inputs_fail_in_one_line_and_leave_nothing_behind() {
    let rows: Vec<&Row> = ROWS.iter().collect();
    assert!(
        rows.len() >= 50,
        "the table covers every category of issue 14"
    );
    run_rows(&rows);
}

/// A full stderr (a full disk) is no panic: an error still exits 1 and leaves nothing behind, a success
/// still exits 0, a run that did not reach its stop rule still exits 3.
#[test]
fn a_full_stderr_changes_no_exit_status() {
    let cases: &[(&[&str], i32)] = &[
        (&["train", "--eta", "-1"], 1),
        (&["train", "--width", "100000000"], 1),
        (&["train", "--width", "4", "--n", "4", "--steps", "3"], 0),
        (
            &[
                "train",
                "--arch",
                "two-level",
                "--width",
                "8",
                "--n",
                "8",
                "--eta",
                "100",
                "--steps",
                "50",
            ],
            3,
        ),
        (&["frobnicate"], 1),
    ];
    for (args, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let status = Command::new(NFF)
            .args(*args)
            .args(["--out", "o", "--quiet"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(full)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(*want), "{args:?}");
        let left = entries(dir.path());
        let expected: &[&str] = if *want == 1 { &[] } else { &["o"] };
        assert_eq!(left, expected, "{args:?}");
    }
}
