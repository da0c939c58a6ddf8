//! `nff sweep` and `nff verify` as Slurm job arrays on a real single-node Slurm.
//!
//! With `NFF_SLURM_TEST=1` (set by `.ci/run`) this test starts munged, slurmctld and slurmd on this host
//! with every file under a temporary directory (Debian's `slurm-wlm` and `munge` packages), submits the
//! scripts that `--sbatch … --submit` writes, waits for the jobs, and compares the merged outputs with
//! single runs byte for byte; it also makes one array task fail and checks that Slurm cancels the merge
//! job and that `--merge` by hand names the missing shard. It stops every daemon it started, by PID,
//! also when it fails. If Slurm cannot start, it fails with one line saying why. Without the variable it
//! prints a notice and passes, so `cargo test --workspace` runs on a machine without Slurm.
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const NFF: &str = env!("CARGO_BIN_EXE_nff");

#[path = "../../tests/support/python.rs"]
mod python;
use python::notice;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(empty)")
        .trim()
        .to_string()
}

/// The last line of a log mentioning an error, else its last line.
fn log_reason(path: &Path) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let line = s
        .lines()
        .rev()
        .find(|l| l.contains("error") || l.contains("fatal"))
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| last_line(&s));
    format!("{}: {line}", path.display())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

/// `cmd` on PATH, or in /usr/sbin or /sbin (the daemons' home, not always on a PATH).
fn which(cmd: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
}

/// munged, slurmctld and slurmd, started in the foreground as children of this process.
struct Cluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
    daemons: Vec<(&'static str, Child)>,
}

impl Cluster {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// A Slurm client command (or nff) with this cluster's `SLURM_CONF`.
    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf).stdin(Stdio::null());
        c
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        self.cmd(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {program}: {e}"))
    }

    fn spawn(&mut self, name: &'static str, program: &str, args: &[&str]) -> Result<(), String> {
        let log = std::fs::File::create(self.path(&format!("{name}.console")))
            .map_err(|e| format!("creating the console log of {name}: {e}"))?;
        let child = self
            .cmd(program)
            .args(args)
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {program}: {e}"))?;
        self.daemons.push((name, child));
        Ok(())
    }

    /// Fail if a daemon has exited.
    fn alive(&mut self) -> Result<(), String> {
        for (name, child) in &mut self.daemons {
            if let Ok(Some(status)) = child.try_wait() {
                let log = self.dir.path().join(format!("{name}.console"));
                return Err(format!("{name} exited ({status}); {}", log_reason(&log)));
            }
        }
        Ok(())
    }

    /// Poll `f` once a second until it returns true, a daemon dies or `secs` pass.
    fn wait_for(
        &mut self,
        what: &str,
        secs: u64,
        mut f: impl FnMut(&Self) -> bool,
    ) -> Result<(), String> {
        let t0 = Instant::now();
        loop {
            self.alive()?;
            if f(self) {
                return Ok(());
            }
            if t0.elapsed() > Duration::from_secs(secs) {
                return Err(format!("{what} within {secs} s"));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn start() -> Result<Self, String> {
        let mut found = Vec::new();
        for cmd in [
            "munged",
            "slurmctld",
            "slurmd",
            "sbatch",
            "squeue",
            "scontrol",
        ] {
            match which(cmd) {
                Some(p) => found.push(p.display().to_string()),
                None => {
                    return Err(format!(
                        "{cmd} is not installed: expected Debian's slurm-wlm and munge (apt-get install -y slurm-wlm munge)"
                    ))
                }
            }
        }
        let (munged, slurmctld, slurmd) = (&found[0], &found[1], &found[2]);
        let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
        let d = dir.path().to_path_buf();
        let mut cluster = Cluster {
            dir,
            conf: d.join("slurm.conf"),
            daemons: Vec::new(),
        };
        let io = |r: std::io::Result<()>, what: &str| r.map_err(|e| format!("{what}: {e}"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            io(
                std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)),
                "chmod the temporary directory",
            )?;
            let mut key = vec![0u8; 1024];
            io(
                std::fs::File::open("/dev/urandom")
                    .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut key)),
                "reading /dev/urandom",
            )?;
            io(std::fs::write(d.join("munge.key"), &key), "munge key")?;
            io(
                std::fs::set_permissions(
                    d.join("munge.key"),
                    std::fs::Permissions::from_mode(0o400),
                ),
                "chmod the munge key",
            )?;
        }
        for sub in ["state", "spool"] {
            io(std::fs::create_dir(d.join(sub)), "creating state dirs")?;
        }
        let host = Command::new("hostname")
            .arg("-s")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .map_err(|e| format!("hostname -s: {e}"))?;
        if host.is_empty() {
            return Err("hostname -s printed nothing: expected this host's name".into());
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (ctld_port, d_port) = (free_port(), free_port());
        let p = |f: &str| d.join(f).display().to_string();
        let conf = format!(
            "ClusterName=nfftest\n\
             SlurmctldHost={host}(127.0.0.1)\n\
             SlurmUser=root\nSlurmdUser=root\n\
             SlurmctldPort={ctld_port}\nSlurmdPort={d_port}\n\
             AuthType=auth/munge\nCredType=cred/munge\nAuthInfo=socket={sock}\n\
             StateSaveLocation={state}\nSlurmdSpoolDir={spool}\n\
             SlurmctldPidFile={cpid}\nSlurmdPidFile={dpid}\n\
             SlurmctldLogFile={clog}\nSlurmdLogFile={dlog}\n\
             ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
             SelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n\
             SchedulerType=sched/backfill\n\
             JobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\n\
             MpiDefault=none\nSwitchType=switch/none\nMailProg=/bin/true\n\
             ReturnToService=2\nMinJobAge=600\n\
             NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1000 State=UNKNOWN\n\
             PartitionName=nfftest Nodes={host} Default=YES MaxTime=INFINITE State=UP\n",
            sock = p("munge.sock"),
            state = p("state"),
            spool = p("spool"),
            cpid = p("slurmctld.pid"),
            dpid = p("slurmd.pid"),
            clog = p("slurmctld.log"),
            dlog = p("slurmd.log"),
        );
        io(std::fs::write(&cluster.conf, conf), "writing slurm.conf")?;
        let conf_s = cluster.conf.display().to_string();
        cluster.spawn(
            "munged",
            munged,
            &[
                "--foreground",
                "--force",
                &format!("--key-file={}", p("munge.key")),
                &format!("--socket={}", p("munge.sock")),
                &format!("--pid-file={}", p("munged.pid")),
                &format!("--log-file={}", p("munged.log")),
                &format!("--seed-file={}", p("munged.seed")),
            ],
        )?;
        cluster.wait_for("munged to open its socket", 20, |c| {
            c.path("munge.sock").exists()
        })?;
        cluster.spawn("slurmctld", slurmctld, &["-D", "-f", &conf_s])?;
        cluster
            .wait_for("slurmctld to answer `scontrol ping`", 30, |c| {
                text(&c.run("scontrol", &["ping"])).contains("UP")
            })
            .map_err(|e| format!("{e}; {}", log_reason(&d.join("slurmctld.log"))))?;
        cluster.spawn("slurmd", slurmd, &["-D", "-f", &conf_s, "-N", &host])?;
        cluster
            .wait_for(&format!("node {host} to be idle"), 60, |c| {
                text(&c.run("sinfo", &["-h", "-N", "-o", "%T"])).trim() == "idle"
            })
            .map_err(|e| {
                let state = text(&cluster.run("sinfo", &["-h", "-N", "-o", "%T %E"]));
                format!(
                    "{e} (sinfo: {}); {}",
                    last_line(&state),
                    log_reason(&d.join("slurmd.log"))
                )
            })?;
        Ok(cluster)
    }

    /// Job ids in the queue.
    fn queue(&self) -> String {
        text(&self.run("squeue", &["-h", "-o", "%i %T %r"]))
    }

    fn job_state(&self, id: &str) -> String {
        let o = text(&self.run("scontrol", &["show", "job", id]));
        o.split_whitespace()
            .find_map(|w| w.strip_prefix("JobState="))
            .unwrap_or("unknown")
            .to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Cancel what is still queued or running (only our own controller answers to this SLURM_CONF),
        // then stop the daemons in reverse order: SIGTERM, and SIGKILL after 10 s.
        if self.daemons.iter().any(|(n, _)| *n == "slurmctld") {
            let ids: Vec<String> = self
                .queue()
                .lines()
                .filter_map(|l| l.split_whitespace().next().map(str::to_string))
                .collect();
            if !ids.is_empty() {
                let mut c = self.cmd("scancel");
                c.args(&ids).output().ok();
                let t0 = Instant::now();
                while !self.queue().trim().is_empty() && t0.elapsed() < Duration::from_secs(15) {
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
        while let Some((_, mut child)) = self.daemons.pop() {
            Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .output()
                .ok();
            let t0 = Instant::now();
            while child.try_wait().ok().flatten().is_none() {
                if t0.elapsed() > Duration::from_secs(10) {
                    child.kill().ok();
                    child.wait().ok();
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

/// `summary.json` without the fields that depend on how a run was made.
fn summary_without_run(dir: &Path) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    for k in ["threads", "wall_seconds", "run"] {
        v.as_object_mut().unwrap().remove(k);
    }
    v
}

fn same_bytes(a: &Path, b: &Path, file: &str) {
    let (x, y) = (
        std::fs::read(a.join(file)).unwrap(),
        std::fs::read(b.join(file)).unwrap(),
    );
    assert!(
        x == y,
        "{file} differs between {} and {}",
        a.display(),
        b.display()
    );
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Submit with `nff … --sbatch FILE --submit`; returns (array id, merge id).
fn submit(c: &Cluster, args: &[&str]) -> (String, String) {
    let o = c.run(NFF, args);
    assert!(o.status.success(), "submitting: {}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let ids: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        ids.len(),
        2,
        "expected 'ARRAY MERGE' on stdout, found '{out}'"
    );
    (ids[0].to_string(), ids[1].to_string())
}

#[test]
fn sweep_and_verify_run_as_slurm_job_arrays() {
    if std::env::var("NFF_SLURM_TEST").as_deref() != Ok("1") {
        notice(
            "notice: the Slurm test did not run: set NFF_SLURM_TEST=1 on a machine with Debian's slurm-wlm and munge (as .ci/run does) to run it",
        );
        return;
    }
    let t0 = Instant::now();
    let mut cluster = match Cluster::start() {
        Ok(c) => c,
        Err(why) => panic!("Slurm did not start: {why}"),
    };
    let up = t0.elapsed();
    let d = cluster.path("work");
    std::fs::create_dir(&d).unwrap();
    let p = |f: &str| d.join(f).display().to_string();
    let sweep_opts = [
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
    ];
    let verify_opts = ["--quick", "--only", "C1,C4,C7,C10,C15,C21,C23"];
    let slurm_opts = [
        "--slurm-tasks",
        "4",
        "--slurm-cpus",
        "1",
        "--slurm-mem",
        "200M",
        "--slurm-time",
        "10",
        "--slurm-partition",
        "nfftest",
        "--submit",
        "--quiet",
    ];
    let with = |cmd: &str, opts: &[&str], more: &[&str]| -> Vec<String> {
        [cmd]
            .iter()
            .chain(opts)
            .chain(more)
            .map(|s| s.to_string())
            .collect()
    };

    // Submit the three arrays at once: a sweep, a verify, and a sweep whose task 2 cannot write its
    // output (its shard directory exists and holds a file that is not nff output).
    let t1 = Instant::now();
    let sweep_script = p("sweep.sh");
    let sweep_out = p("sweep");
    let mut a = with("sweep", &sweep_opts, &slurm_opts);
    a.extend(["--sbatch".into(), sweep_script.clone()]);
    a.extend(["--out".into(), sweep_out.clone()]);
    let (sweep_array, sweep_merge) = submit(&cluster, &strs(&a));
    let verify_out = p("verify");
    let mut a = with("verify", &verify_opts, &slurm_opts);
    a.extend(["--sbatch".into(), p("verify.sh")]);
    a.extend(["--out".into(), verify_out.clone()]);
    let (verify_array, verify_merge) = submit(&cluster, &strs(&a));
    std::fs::create_dir_all(d.join("fail.slurm/shard-2")).unwrap();
    std::fs::write(d.join("fail.slurm/shard-2/keep.txt"), "not nff output").unwrap();
    let mut a = with("sweep", &sweep_opts, &slurm_opts);
    a.extend(["--sbatch".into(), p("fail.sh"), "--out".into(), p("fail")]);
    let (fail_array, fail_merge) = submit(&cluster, &strs(&a));

    // The single runs, here, meanwhile (with the default thread count; the tasks run on 1 thread).
    for (cmd, opts, out) in [
        ("sweep", &sweep_opts[..], "sweep-single"),
        ("verify", &verify_opts[..], "verify-single"),
    ] {
        let mut a = with(cmd, opts, &["--quiet", "--out"]);
        a.push(p(out));
        let o = Command::new(NFF).args(&a).output().unwrap();
        assert!(o.status.success(), "{cmd}: {}", text(&o));
    }

    let waited = cluster.wait_for("every job to leave the queue", 600, |c| {
        c.queue().trim().is_empty()
    });
    if let Err(e) = waited {
        panic!("Slurm jobs did not finish: {e}; queue: {}", cluster.queue());
    }
    let ran = t1.elapsed();
    for (id, what) in [
        (&sweep_array, "sweep array"),
        (&sweep_merge, "sweep merge"),
        (&verify_array, "verify array"),
        (&verify_merge, "verify merge"),
    ] {
        let state = cluster.job_state(id);
        let log = if what.starts_with("sweep") {
            d.join("sweep.slurm/merge.out")
        } else {
            d.join("verify.slurm/merge.out")
        };
        assert_eq!(state, "COMPLETED", "{what} job {id}: {}", log_reason(&log));
    }

    // The merged sweep: byte for byte the single run's results.csv and sweep.svg; summary.json equal
    // but for threads, wall_seconds and run.
    let (single, merged) = (d.join("sweep-single"), PathBuf::from(&sweep_out));
    assert_eq!(files(&single), files(&merged));
    for f in ["results.csv", "sweep.svg", "shard.json"] {
        same_bytes(&single, &merged, f);
    }
    assert_eq!(summary_without_run(&single), summary_without_run(&merged));
    let shard_dirs: Vec<String> = (0..4)
        .map(|k| format!("{sweep_out}.slurm/shard-{k}"))
        .collect();
    for s in &shard_dirs {
        assert!(Path::new(s).join("shard.json").is_file(), "{s}");
    }

    // The merged verify: every file but summary.json byte for byte the single run's.
    let (single, merged) = (d.join("verify-single"), PathBuf::from(&verify_out));
    let names = files(&single);
    assert_eq!(names, files(&merged));
    assert!(names.contains(&"C23.svg".to_string()), "{names:?}");
    for f in names.iter().filter(|f| *f != "summary.json") {
        same_bytes(&single, &merged, f);
    }
    assert_eq!(summary_without_run(&single), summary_without_run(&merged));

    // The failed task: the merge job ran after it (afterany) and failed with one line naming the
    // shard; merging by hand says the same and writes nothing.
    let merge_state = cluster.job_state(&fail_merge);
    assert_eq!(merge_state, "FAILED", "merge job {fail_merge}");
    let merge_log = std::fs::read_to_string(d.join("fail.slurm/merge.out")).unwrap();
    let merge_err: Vec<&str> = merge_log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        merge_err.len() == 1 && merge_err[0].contains("shard-2"),
        "merge job {fail_merge} log: {merge_log}"
    );
    assert!(!d.join("fail").exists(), "the failed merge left its output");
    let task_log = std::fs::read_to_string(d.join("fail.slurm/shard-2.out")).unwrap();
    assert!(
        task_log.contains("does not hold nff output"),
        "task 2 of array {fail_array}: {task_log}"
    );
    let dirs: Vec<String> = (0..4)
        .map(|k| p(&format!("fail.slurm/shard-{k}")))
        .collect();
    let mut a: Vec<&str> = vec!["sweep", "--merge"];
    a.extend(dirs.iter().map(String::as_str));
    let merged_by_hand = p("fail-by-hand");
    a.extend(["--out", &merged_by_hand]);
    let o = Command::new(NFF).args(&a).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("shard-2") && err.contains("no shard.json"),
        "{err}"
    );
    assert!(!Path::new(&merged_by_hand).exists());

    notice(&format!(
        "slurm test: Slurm up in {:.1} s; three arrays of 4 tasks and their merges done in {:.1} s; total {:.1} s",
        up.as_secs_f64(),
        ran.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    ));
}
