//! Signals and kills (issue 14): `nff train`, `flow`, `convex` and `data` stopped by SIGINT, SIGTERM or
//! SIGHUP at several moments leave no `--out` directory, no staging directory and no temporary file, and
//! exit with 128 + the signal number; a `flow` killed with SIGKILL and resumed from its last checkpoint
//! writes the same `state.npz` and `trajectory.csv` bytes as an uninterrupted run.
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::entries;

const NFF: &str = env!("CARGO_BIN_EXE_nff");

/// Start `nff` with the default disposition of the three signals. A shell without job control starts
/// background commands with SIGINT ignored (`cargo test … &` in a script), and the child inherits that
/// until nff installs its handlers — a signal in that window would be ignored and the test would measure
/// how it was launched, not nff.
fn spawn(dir: &Path, args: &[&str]) -> Child {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(NFF);
    // SAFETY: between fork and exec only `signal`, which is async-signal-safe, is called.
    unsafe {
        cmd.pre_exec(|| {
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::signal(sig, libc::SIG_DFL);
            }
            Ok(())
        });
    }
    cmd.args(args)
        .args(["--quiet", "--threads", "1"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The exit status, or `None` (after killing it) if the child did not exit within `limit`.
fn try_wait_for(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if start.elapsed() > limit {
            child.kill().ok();
            child.wait().ok();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn wait(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    try_wait_for(child, limit)
        .unwrap_or_else(|| panic!("nff did not exit within {limit:?} of the signal"))
}

/// Long jobs: each runs for minutes unless stopped (tiny models, many steps or repeats), and `data`
/// spends its time writing large files, so a signal lands in the middle of a write.
const JOBS: &[&[&str]] = &[
    &[
        "train",
        "--arch",
        "resnet",
        "--width",
        "16",
        "--n",
        "8",
        "--steps",
        "100000000",
        "--out",
        "o",
    ],
    &[
        "flow",
        "--width",
        "16",
        "--n",
        "8",
        "--integrator",
        "rk4",
        "--dt",
        "0.001",
        "--time",
        "90000",
        "--checkpoint",
        "ck.json",
        "--checkpoint-every",
        "2000",
        "--out",
        "o",
    ],
    &[
        "convex",
        "--d",
        "1",
        "--grid",
        "64",
        "--lambda1",
        "0.01",
        "--repeat",
        "1000000",
        "--out",
        "o",
    ],
    &["data", "--n", "3000000", "--d", "4", "--out", "o"],
];

/// Every job, every signal, several moments (from start-up to deep inside the run): nothing but the
/// last complete checkpoint is left, and the status is 128 + signo (or death by the signal itself when
/// it arrived before the handler was installed, which also leaves nothing).
#[test]
fn signals_leave_nothing_behind_and_exit_128_plus_signo() {
    let mut failures = Vec::new();
    let moments = [0.0, 0.03, 0.15, 0.6];
    let mut case = 0usize;
    for job in JOBS {
        for (k, &delay) in moments.iter().enumerate() {
            // Rotate the three signals over the moments so that each job sees each signal.
            let sig = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP][(k + case) % 3];
            case += 1;
            let dir = tempfile::tempdir().unwrap();
            let mut child = spawn(dir.path(), job);
            std::thread::sleep(Duration::from_secs_f64(delay));
            unsafe { libc::kill(child.id() as libc::pid_t, sig) };
            let Some(status) = try_wait_for(&mut child, Duration::from_secs(20)) else {
                let mut err = String::new();
                std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).ok();
                failures.push(format!(
                    "{} after {delay} s with signal {sig}: did not exit within 20 s, stderr {err:?}",
                    job.join(" ")
                ));
                continue;
            };
            use std::os::unix::process::ExitStatusExt;
            let ok_status = status.code() == Some(128 + sig) || status.signal() == Some(sig);
            let left: Vec<String> = entries(dir.path())
                .into_iter()
                .filter(|e| e != "ck.json")
                .collect();
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            if !ok_status || !left.is_empty() || err.contains("panicked") {
                failures.push(format!(
                    "{} after {delay} s with signal {sig}: status {status:?}, left {left:?}, stderr {err:?}",
                    job[0]
                ));
            }
            // A checkpoint that exists is a complete one (it is replaced by rename, never half-written).
            let ck = dir.path().join("ck.json");
            if ck.exists() {
                let text = std::fs::read_to_string(&ck).unwrap();
                if serde_json::from_str::<serde_json::Value>(&text).is_err() {
                    failures.push(format!(
                        "{}: the checkpoint left is not complete JSON",
                        job[0]
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A second SIGINT while the first is being handled exits at once, and still with 130.
#[test]
fn second_sigint_exits() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn(dir.path(), JOBS[0]);
    std::thread::sleep(Duration::from_millis(200));
    let pid = child.id() as libc::pid_t;
    unsafe {
        libc::kill(pid, libc::SIGINT);
        libc::kill(pid, libc::SIGINT);
    }
    let status = wait(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(130), "{status:?}");
}

/// `flow` with checkpoints killed by SIGKILL (no handler runs: its staging directory stays until the
/// next run into the same `--out` removes it), resumed from its last checkpoint: the same state.npz and
/// trajectory.csv bytes as the run that was never interrupted.
#[test]
fn flow_killed_and_resumed_matches_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base: &[&str] = &[
        "flow",
        "--arch",
        "resnet",
        "--width",
        "12",
        "--depth",
        "2",
        "--n",
        "8",
        "--integrator",
        "rk4",
        "--dt",
        "0.0005",
        "--time",
        "150",
        "--record-every",
        "500",
        "--checkpoint",
        "ck.json",
        "--checkpoint-every",
        "5000",
    ];
    let run = |extra: &[&str]| {
        let o = Command::new(NFF)
            .args(base)
            .args(extra)
            .args(["--quiet", "--threads", "1"])
            .current_dir(d)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    // The uninterrupted run (its own checkpoint file, so the killed run starts from nothing).
    let start = Instant::now();
    run(&["--out", "whole"]);
    let whole_seconds = start.elapsed().as_secs_f64();
    std::fs::rename(d.join("ck.json"), d.join("ck-whole.json")).unwrap();

    // The killed run: SIGKILL once a few checkpoints exist, well before the end.
    let mut child = Command::new(NFF)
        .args(base)
        .args(["--out", "o", "--quiet", "--threads", "1"])
        .current_dir(d)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ck = d.join("ck.json");
    let t0 = Instant::now();
    while !ck.exists() && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_secs_f64(0.3 * whole_seconds));
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the run ended before it was killed: make it longer"
    );
    assert!(ck.exists(), "no checkpoint before the kill");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&ck).unwrap()).unwrap();
    let step = saved["step"].as_u64().unwrap();
    assert!(
        step > 0 && step < 300_000,
        "checkpoint at step {step} of 300000"
    );
    assert!(!d.join("o").exists(), "a killed run committed its output");

    run(&["--resume", "ck.json", "--out", "o"]);
    for file in ["state.npz", "trajectory.csv"] {
        let a = std::fs::read(d.join("whole").join(file)).unwrap();
        let b = std::fs::read(d.join("o").join(file)).unwrap();
        assert!(
            a == b,
            "{file} of the resumed run differs from the uninterrupted one"
        );
    }
    // The resumed run removed the killed run's staging directory.
    let left: Vec<String> = entries(d)
        .into_iter()
        .filter(|e| e.contains("partial") || e.contains(".tmp"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
