//! `--sbatch FILE` of `nff sweep` and `nff verify`: a ready Slurm script that submits a job array over
//! the shards with the command's own options, then a merge job that depends on the whole array
//! (`--dependency=afterany`); `--submit` runs it and prints the two job ids.
//!
//! The file is a bash script that calls `sbatch --parsable` twice, each time with the batch script on
//! standard input (a quoted here-document, so nothing in it is expanded at submission):
//! - the array: task k runs `nff CMD <the same options> --shard k/n --out OUT.slurm/shard-k`;
//! - the merge: `nff CMD --merge OUT.slurm/shard-0 … --out OUT`, run once every task has ended
//!   (`afterany`), so a failed task makes the merge job itself fail with the merge's one-line error
//!   naming the shard (in `merge.out`), and the job's state says FAILED.
//!
//! Every path in it is absolute and the jobs run in the directory the script was written from
//! (`--chdir`), so relative paths in the options or a config file mean what they meant here.
use anyhow::{bail, Context, Result};
use clap::Args;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// `--slurm-tasks` when not given.
pub const DEFAULT_TASKS: usize = 4;
/// `--slurm-cpus` when not given.
pub const DEFAULT_CPUS: usize = 2;

/// The Slurm options shared by `nff sweep` and `nff verify`.
#[derive(Args, Debug, Clone, Default)]
pub struct SlurmArgs {
    /// Write a Slurm script to FILE instead of running: a job array over the shards with these options,
    /// then a merge job depending on it (afterany). Submit it with `bash FILE`.
    #[arg(long, value_name = "FILE")]
    pub sbatch: Option<PathBuf>,
    /// With --sbatch: also submit the script and print the two job ids (array, merge) on stdout.
    #[arg(long)]
    pub submit: bool,
    /// With --sbatch: number of array tasks, i.e. shards.
    #[arg(long, value_name = "N")]
    pub slurm_tasks: Option<usize>,
    /// With --sbatch: CPUs per array task (sbatch --cpus-per-task), also each task's --threads unless
    /// --threads is given.
    #[arg(long, value_name = "N")]
    pub slurm_cpus: Option<usize>,
    /// With --sbatch: memory per task (sbatch --mem), e.g. 4G or 500M.
    #[arg(long, value_name = "SIZE")]
    pub slurm_mem: Option<String>,
    /// With --sbatch: time limit per task (sbatch --time), e.g. 30, 1:00:00 or 1-12.
    #[arg(long, value_name = "TIME")]
    pub slurm_time: Option<String>,
    /// With --sbatch: partition (sbatch --partition).
    #[arg(long, value_name = "NAME")]
    pub slurm_partition: Option<String>,
}

/// The options of ours that a job must not inherit: (name, takes a value).
const OWN_OPTIONS: &[(&str, bool)] = &[
    ("--sbatch", true),
    ("--submit", false),
    ("--slurm-tasks", true),
    ("--slurm-cpus", true),
    ("--slurm-mem", true),
    ("--slurm-time", true),
    ("--slurm-partition", true),
    ("--shard", true),
    ("--out", true),
    ("--quiet", false),
    ("--strict", false),
];

impl SlurmArgs {
    /// Error if a Slurm option is given without `--sbatch`.
    pub fn check(&self) -> Result<()> {
        if self.sbatch.is_some() {
            return Ok(());
        }
        let given = [
            (self.submit, "--submit"),
            (self.slurm_tasks.is_some(), "--slurm-tasks"),
            (self.slurm_cpus.is_some(), "--slurm-cpus"),
            (self.slurm_mem.is_some(), "--slurm-mem"),
            (self.slurm_time.is_some(), "--slurm-time"),
            (self.slurm_partition.is_some(), "--slurm-partition"),
        ];
        if let Some((_, name)) = given.iter().find(|(g, _)| *g) {
            bail!("{name} applies to a Slurm script: expected --sbatch FILE with it, found none");
        }
        Ok(())
    }
}

/// What the script runs.
pub struct Plan<'a> {
    /// `sweep` or `verify`.
    pub command: &'a str,
    /// The merged output directory (as resolved from `--out`, the config or the default).
    pub out: &'a Path,
    /// Whether `--threads` (or the config key) was given; if not, each task gets `--threads CPUS`.
    pub threads_given: bool,
    /// Flags of the merge job (e.g. `--strict` of `nff verify`).
    pub merge_flags: Vec<String>,
    /// Progress messages on stderr.
    pub quiet: bool,
}

/// The command line after the subcommand, without our own options (see [`OWN_OPTIONS`]).
pub fn job_args(argv: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        let name = a.split_once('=').map_or(a.as_str(), |(n, _)| n);
        match OWN_OPTIONS.iter().find(|(o, _)| *o == name) {
            Some((_, takes_value)) => {
                if *takes_value && !a.contains('=') {
                    it.next();
                }
            }
            None => out.push(a.clone()),
        }
    }
    out
}

/// Single-quote for bash.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("reading the current directory")?
        .join(p))
}

fn check_value(name: &str, v: &str, ok: impl Fn(char) -> bool, expected: &str) -> Result<()> {
    if v.is_empty() || !v.chars().all(ok) || !v.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        bail!("invalid --{name} '{v}': expected {expected}");
    }
    Ok(())
}

/// The `sbatch` resource options of an array task.
fn resources(s: &SlurmArgs, cpus: usize) -> Result<Vec<String>> {
    let mut v = vec![format!("--cpus-per-task={cpus}")];
    if let Some(m) = &s.slurm_mem {
        let digits = m.trim_end_matches(['K', 'M', 'G', 'T']);
        if digits.is_empty()
            || !digits.chars().all(|c| c.is_ascii_digit())
            || m.len() > digits.len() + 1
        {
            bail!("invalid --slurm-mem '{m}': expected a size such as 4G, 500M or 2048");
        }
        v.push(format!("--mem={m}"));
    }
    if let Some(t) = &s.slurm_time {
        check_value(
            "slurm-time",
            t,
            |c| c.is_ascii_digit() || c == ':' || c == '-',
            "a Slurm time such as 30, 1:00:00 or 1-12:00:00",
        )?;
        v.push(format!("--time={t}"));
    }
    if let Some(p) = &s.slurm_partition {
        check_value(
            "slurm-partition",
            p,
            |c| c.is_ascii_alphanumeric() || "_-.,".contains(c),
            "a partition name (letters, digits, _ - . ,)",
        )?;
        v.push(format!("--partition={p}"));
    }
    Ok(v)
}

/// The script text (pure, for tests): `nff` is the binary, `cwd` the jobs' working directory, `args`
/// the options the array tasks share.
pub fn script(
    plan: &Plan<'_>,
    s: &SlurmArgs,
    nff: &Path,
    cwd: &Path,
    args: &[String],
) -> Result<String> {
    let tasks = s.slurm_tasks.unwrap_or(DEFAULT_TASKS);
    let cpus = s.slurm_cpus.unwrap_or(DEFAULT_CPUS);
    if tasks == 0 {
        bail!("invalid --slurm-tasks: expected at least 1, found 0");
    }
    if cpus == 0 {
        bail!("invalid --slurm-cpus: expected at least 1, found 0");
    }
    let out = absolute(plan.out)?;
    let name = out
        .file_name()
        .with_context(|| format!("output path {} has no directory name", out.display()))?
        .to_string_lossy()
        .to_string();
    let dir = out.with_file_name(format!("{name}.slurm"));
    for p in [&dir, &cwd.to_path_buf()] {
        let t = p.to_string_lossy();
        if t.contains(['%', '\\', '\n']) {
            bail!(
                "path '{t}' cannot be given to sbatch: expected one without %, \\ or a newline (sbatch expands them)"
            );
        }
    }
    let mut res = resources(s, cpus)?;
    let q = |p: &Path| sh_quote(&p.to_string_lossy());
    let cmd = plan.command;
    let shard_dir = |k: &str| format!("{}{k}", sh_quote(&format!("{}/shard-", dir.display())));

    let mut task = format!("exec {} {}", q(nff), sh_quote(cmd));
    for a in args {
        write!(task, " {}", sh_quote(a))?;
    }
    if !plan.threads_given {
        write!(task, " --threads {cpus}")?;
    }
    write!(
        task,
        " --quiet --shard \"$SLURM_ARRAY_TASK_ID/{tasks}\" --out {}",
        shard_dir("\"$SLURM_ARRAY_TASK_ID\"")
    )?;
    let mut merge = format!("exec {} {} --merge", q(nff), sh_quote(cmd));
    for k in 0..tasks {
        write!(merge, " {}", shard_dir(&k.to_string()))?;
    }
    write!(merge, " --out {} --quiet", q(&out))?;
    for f in &plan.merge_flags {
        write!(merge, " {}", sh_quote(f))?;
    }

    let mut sh = String::new();
    let version = env!("CARGO_PKG_VERSION");
    writeln!(sh, "#!/bin/bash")?;
    writeln!(sh, "# nff {cmd} on Slurm (written by nff {version}).")?;
    writeln!(
        sh,
        "# Submits a job array of {tasks} tasks, task k running `nff {cmd} --shard k/{tasks}` into\n\
         # {}/shard-k, then a merge job that runs once every task has ended (afterany) and joins\n\
         # the shards into {} (the same files as one unsharded run).",
        dir.display(),
        out.display()
    )?;
    writeln!(
        sh,
        "# Submit: bash {} (prints the job ids: array merge). Logs: shard-<k>.out, merge.out there.",
        s.sbatch
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    )?;
    writeln!(
        sh,
        "# If a task fails, the merge job fails with one line naming the shard (merge.out)."
    )?;
    writeln!(sh, "set -euo pipefail")?;
    writeln!(sh, "mkdir -p {}", q(&dir))?;
    let mut array_opts = vec![
        format!("--job-name=nff-{cmd}"),
        format!("--array=0-{}", tasks - 1),
    ];
    array_opts.append(&mut res.clone());
    array_opts.push(format!("--chdir={}", cwd.display()));
    array_opts.push(format!("--output={}/shard-%a.out", dir.display()));
    res[0] = "--cpus-per-task=1".into();
    let mut merge_opts = vec![
        format!("--job-name=nff-{cmd}-merge"),
        "--dependency=afterany:$array".to_string(),
    ];
    merge_opts.append(&mut res);
    merge_opts.push(format!("--chdir={}", cwd.display()));
    merge_opts.push(format!("--output={}/merge.out", dir.display()));
    let submit = |sh: &mut String, var: &str, opts: &[String], tag: &str, body: &str| {
        let _ = writeln!(sh, "{var}=$(sbatch --parsable \\");
        for o in opts {
            // `$array` is expanded at submission; everything else is quoted.
            let o = match o.strip_suffix("$array") {
                Some(head) => format!("{}\"$array\"", sh_quote(head)),
                None => sh_quote(o),
            };
            let _ = writeln!(sh, "  {o} \\");
        }
        let _ = writeln!(
            sh,
            "  <<'{tag}'\n#!/bin/bash\nset -euo pipefail\n{body}\n{tag}\n)\n{var}=${{{var}%%;*}}"
        );
    };
    submit(&mut sh, "array", &array_opts, "NFF_ARRAY_TASK", &task);
    submit(&mut sh, "merge", &merge_opts, "NFF_MERGE", &merge);
    writeln!(sh, "echo \"$array $merge\"")?;
    Ok(sh)
}

/// Write the script of `--sbatch FILE` and, with `--submit`, submit it. Returns false (and does
/// nothing) without `--sbatch`.
pub fn handle(s: &SlurmArgs, plan: &Plan<'_>) -> Result<bool> {
    s.check()?;
    let Some(file) = &s.sbatch else {
        return Ok(false);
    };
    let argv: Vec<String> = std::env::args_os()
        .skip(2)
        .map(|a| {
            a.into_string().map_err(|a| {
                anyhow::anyhow!("argument {a:?} is not UTF-8: expected text for a Slurm script")
            })
        })
        .collect::<Result<_>>()?;
    let nff = std::env::current_exe().context("locating the nff binary")?;
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let text = script(plan, s, &nff, &cwd, &job_args(&argv))?;
    write_executable(file, &text)?;
    if !s.submit {
        if !plan.quiet {
            eprintln!(
                "Slurm script written to {}; submit it with: bash {}",
                file.display(),
                file.display()
            );
        }
        return Ok(true);
    }
    let (array, merge) = submit(file)?;
    println!("{array} {merge}");
    if !plan.quiet {
        eprintln!(
            "submitted array job {array} ({} tasks) and merge job {merge} (afterany:{array}); the merged output will be {}",
            s.slurm_tasks.unwrap_or(DEFAULT_TASKS),
            absolute(plan.out)?.display()
        );
    }
    Ok(true)
}

/// Write `text` to `file` (through a temporary sibling and a rename) with mode 0755.
fn write_executable(file: &Path, text: &str) -> Result<()> {
    let name = file
        .file_name()
        .with_context(|| format!("--sbatch {}: expected a file name", file.display()))?;
    if file.is_dir() {
        bail!(
            "--sbatch {}: expected a file path, found a directory",
            file.display()
        );
    }
    let tmp = file.with_file_name(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", tmp.display()))?;
    }
    std::fs::rename(&tmp, file).map_err(|e| {
        std::fs::remove_file(&tmp).ok();
        anyhow::anyhow!("writing {}: {e}", file.display())
    })
}

/// Run `bash FILE`; its stdout is two job ids.
fn submit(file: &Path) -> Result<(u64, u64)> {
    let o = std::process::Command::new("bash")
        .arg(file)
        .stdin(std::process::Stdio::null())
        .output()
        .context("running bash to submit the Slurm script")?;
    let stdout = String::from_utf8_lossy(&o.stdout);
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message");
        bail!(
            "submitting {} failed ({}): {}",
            file.display(),
            o.status,
            last.trim()
        );
    }
    let ids: Vec<u64> = stdout
        .split_whitespace()
        .map(|w| w.parse())
        .collect::<std::result::Result<_, _>>()
        .unwrap_or_default();
    match ids[..] {
        [a, m] => Ok((a, m)),
        _ => bail!(
            "submitting {}: expected two job ids from sbatch --parsable, found '{}'",
            file.display(),
            stdout.trim()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn job_args_drop_our_options_in_both_spellings() {
        let argv = v(&[
            "--widths",
            "8,16",
            "--sbatch",
            "f.sh",
            "--slurm-tasks=3",
            "--submit",
            "--out",
            "o",
            "--shard=1/2",
            "--quiet",
            "--seeds",
            "2",
            "--strict",
            "--slurm-mem",
            "1G",
        ]);
        assert_eq!(job_args(&argv), v(&["--widths", "8,16", "--seeds", "2"]));
    }

    #[test]
    fn quoting_survives_bash() {
        let s = "it's $HOME \"x\" `y`";
        let o = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("printf %s {}", sh_quote(s)))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(o.stdout).unwrap(), s);
    }

    #[test]
    fn bad_resources_are_one_line_errors() {
        let plan = Plan {
            command: "sweep",
            out: Path::new("/tmp/o"),
            threads_given: false,
            merge_flags: vec![],
            quiet: true,
        };
        let run = |s: SlurmArgs| {
            script(&plan, &s, Path::new("/bin/nff"), Path::new("/tmp"), &[])
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        let e = run(SlurmArgs {
            slurm_mem: Some("4 GB".into()),
            ..Default::default()
        });
        assert!(e.contains("--slurm-mem '4 GB'") && !e.contains('\n'), "{e}");
        let e = run(SlurmArgs {
            slurm_time: Some("1h".into()),
            ..Default::default()
        });
        assert!(e.contains("--slurm-time '1h'"), "{e}");
        let e = run(SlurmArgs {
            slurm_partition: Some("a b".into()),
            ..Default::default()
        });
        assert!(e.contains("--slurm-partition 'a b'"), "{e}");
        let e = run(SlurmArgs {
            slurm_tasks: Some(0),
            ..Default::default()
        });
        assert!(e.contains("--slurm-tasks"), "{e}");
        assert!(SlurmArgs {
            submit: true,
            ..Default::default()
        }
        .check()
        .unwrap_err()
        .to_string()
        .contains("--sbatch"));
    }
}
