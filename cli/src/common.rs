//! Options every command shares (`--seed`, `--threads`, `--out`, `--config`, `--quiet`), thread setup,
//! progress bars and the common part of `summary.json`.
use anyhow::{bail, Result};
use clap::Args;
use faer::Par;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::de::DeserializeOwned;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub use nff_core::io::io_cause;

/// `--threads` may be at most this many per core (more only slows a run down).
pub const MAX_THREADS_PER_CORE: usize = 4;

/// Options shared by every command.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// Random seed: the same seed gives the same results, whatever the thread count.
    #[arg(long, global = false)]
    pub seed: Option<u64>,
    /// Worker threads. Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Output directory (written whole at the end, or not at all).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A TOML file with the same keys as the long options (command-line flags win).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// The resolved run context.
pub struct Ctx {
    /// Seed.
    pub seed: u64,
    /// Threads.
    pub threads: usize,
    /// faer parallelism for big kernels.
    pub par: Par,
    /// Show progress.
    pub progress: bool,
    /// Wall-clock start.
    pub start: Instant,
}

impl Ctx {
    /// Resolve the shared options (the config file's `seed`/`threads` count if the flags are absent).
    pub fn new(common: &CommonArgs, cfg: &toml::Table) -> Result<Self> {
        let seed = match common.seed {
            Some(s) => s,
            None => cfg_get::<u64>(cfg, "seed")?.unwrap_or(crate::defaults::SEED),
        };
        let threads = match common.threads {
            Some(t) => t,
            None => cfg_get::<usize>(cfg, "threads")?.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            }),
        };
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let max_threads = MAX_THREADS_PER_CORE * cores;
        if threads == 0 || threads > max_threads {
            bail!("invalid --threads: expected 1 to {max_threads} ({MAX_THREADS_PER_CORE} per core, {cores} cores), found {threads}");
        }
        // The global pool may already exist (tests call commands in-process); that is fine.
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .ok();
        let par = if threads > 1 {
            Par::rayon(threads)
        } else {
            Par::Seq
        };
        Ok(Self {
            seed,
            threads,
            par,
            progress: !common.quiet && std::io::stderr().is_terminal(),
            start: Instant::now(),
        })
    }

    /// A progress bar of `len` steps (hidden when quiet or not on a terminal).
    pub fn bar(&self, len: u64, what: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        pb.set_style(
            ProgressStyle::with_template(
                "{msg:>10} [{elapsed_precise}] {wide_bar} {pos}/{len} ({eta}) {prefix}",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        pb.set_message(what.to_string());
        // A ticker thread redraws the bar twice a second, so its clock keeps running while one long
        // step (a claim of `verify`, a solve) holds the main thread. Only on a terminal: a hidden bar
        // (quiet, or stderr not a terminal) returned above starts no thread and writes nothing.
        pb.enable_steady_tick(std::time::Duration::from_millis(500));
        pb
    }

    /// Seconds since the command started.
    pub fn seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// The common fields of `summary.json`.
    pub fn summary_header(&self, command: &str) -> serde_json::Value {
        serde_json::json!({
            "command": command,
            "version": env!("CARGO_PKG_VERSION"),
            "seed": self.seed,
            "threads": self.threads,
            "wall_seconds": self.seconds(),
        })
    }
}

/// Read an optional TOML config file into a table (empty without one).
pub fn read_config(path: Option<&Path>) -> Result<toml::Table> {
    let Some(path) = path else {
        return Ok(toml::Table::new());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read config {}: {}", path.display(), io_cause(&e)))?;
    text.parse::<toml::Table>().map_err(|e| {
        let at = e
            .span()
            .map(|r| {
                let before = &text[..r.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!(" at line {line}, column {col}")
            })
            .unwrap_or_default();
        anyhow::anyhow!(
            "config {}: expected TOML `key = value` lines, found a syntax error{at}: {}",
            path.display(),
            e.message().split_whitespace().collect::<Vec<_>>().join(" ")
        )
    })
}

/// Read the config of a command whose options are `A`, rejecting unknown keys and tables.
pub fn read_config_for<A: clap::Args>(path: Option<&Path>) -> Result<toml::Table> {
    let cfg = read_config(path)?;
    check_config_keys(&cfg, path, &known_keys::<A>())?;
    Ok(cfg)
}

/// A typed value from the config table (keys use the long option names, e.g. `width`, `eta`).
pub fn cfg_get<T: DeserializeOwned>(cfg: &toml::Table, key: &str) -> Result<Option<T>> {
    match cfg.get(key) {
        None => Ok(None),
        Some(v) => v.clone().try_into().map(Some).map_err(|_| {
            anyhow::anyhow!(
                "config key '{key}': expected a {}, found {v}",
                std::any::type_name::<T>()
                    .rsplit("::")
                    .next()
                    .unwrap_or("value")
            )
        }),
    }
}

/// Resolve one option: the flag, else the config key, else the default.
pub fn pick<T: DeserializeOwned>(
    flag: Option<T>,
    cfg: &toml::Table,
    key: &str,
    default: T,
) -> Result<T> {
    Ok(match flag {
        Some(v) => v,
        None => cfg_get(cfg, key)?.unwrap_or(default),
    })
}

/// Check a float option is finite and within `[lo, hi]` (`lo = f64::MIN_POSITIVE` reads as "> 0").
pub fn check_range(name: &str, x: f64, lo: f64, hi: f64) -> Result<f64> {
    if !(x.is_finite() && x >= lo && x <= hi) {
        let want = match (lo == f64::MIN_POSITIVE, hi == f64::INFINITY) {
            (true, true) => "a finite value > 0".to_string(),
            (false, true) => format!("a finite value >= {}", fmt_num(lo)),
            (true, false) => format!("a value in (0, {}]", fmt_num(hi)),
            (false, false) => format!("a value in [{}, {}]", fmt_num(lo), fmt_num(hi)),
        };
        bail!(
            "invalid --{}: expected {want}, found {}",
            name.replace('_', "-"),
            fmt_num(x)
        );
    }
    Ok(x)
}

/// A number for a message: Rust's shortest form when it is short, else 4 significant digits in
/// scientific notation (`1e-300`, `2.5e301`, never a 330-digit decimal).
pub fn fmt_num(x: f64) -> String {
    let short = format!("{x}");
    if short.len() <= 10 && (x == 0.0 || x.abs() >= 1e-4) {
        short
    } else {
        let e = format!("{x:.3e}");
        // 1.000e5 → 1e5
        match e.split_once('e') {
            Some((m, exp)) => {
                let m = m.trim_end_matches('0').trim_end_matches('.');
                format!("{m}e{exp}")
            }
            None => e,
        }
    }
}

/// Write one line to stderr; a failure to write (a closed or full stderr) is ignored, never a panic.
pub fn say_err(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Write the results summary to stdout (unless quiet); a failed write is an error, not a panic.
pub fn say(quiet: bool, line: &str) -> Result<()> {
    use std::io::Write;
    if quiet {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|_| out.flush())
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot write the results summary to stdout: {}",
                io_cause(&e)
            )
        })
}

/// An error as one line: the chain of causes joined by ': ', newlines folded, Debug-style I/O text
/// (`Os { code: 28, kind: StorageFull, message: "No space left on device" }`) reduced to its message.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let s = c.to_string();
        let s = match (s.find("Os {"), s.find("message: \"")) {
            (Some(i), Some(j)) => {
                let rest = &s[j + 10..];
                let msg = rest.split('"').next().unwrap_or("");
                let head = s[..i].trim_end_matches(['(', ' ']).trim_end_matches("Io");
                format!("{}{msg}", head.trim_end_matches('('))
            }
            _ => s,
        };
        let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
        // anyhow repeats a cause already contained in its context; skip exact repeats.
        if parts.last().is_some_and(|p| p.ends_with(&s)) {
            continue;
        }
        parts.push(s);
    }
    parts.join(": ")
}

/// A run that wrote its outputs but whose result is not a success (non-finite, not converged, short
/// of its requested time or tolerance): exit status 3 (docs/cli.md).
#[derive(Debug)]
pub struct NotConverged(pub String);

impl std::fmt::Display for NotConverged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotConverged {}

/// The config keys a command accepts: the long names of its options (underscores for dashes), except
/// `config` itself. One source: the clap definition of the command's arguments.
pub fn known_keys<A: clap::Args>() -> Vec<String> {
    let cmd = A::augment_args(clap::Command::new("keys"));
    let mut keys: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|l| *l != "config" && *l != "help")
        .map(|l| l.replace('-', "_"))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Reject keys of `cfg` that are not among `known` (a misspelt key or a table such as `[train]` would
/// otherwise be silently ignored).
pub fn check_config_keys(cfg: &toml::Table, path: Option<&Path>, known: &[String]) -> Result<()> {
    for (k, v) in cfg {
        if !known.iter().any(|x| x == k) {
            let what = if v.is_table() { "table" } else { "key" };
            let shown = if v.is_table() {
                format!("[{k}]")
            } else {
                format!("'{k}'")
            };
            bail!(
                "config {}: unknown {what} {shown}: expected top-level keys among {}",
                path.map(|p| p.display().to_string()).unwrap_or_default(),
                known.join(", ")
            );
        }
    }
    Ok(())
}

/// The most steps a run may take (`--steps`, `--time`/`--dt`, `--max-steps`): more would run for hours
/// without a word. A larger request is an error naming the count it gives.
pub const MAX_STEPS: u64 = 100_000_000;

/// Check a step count against [`MAX_STEPS`]; `how` says where the count came from
/// (`--time 1e300 / --dt 0.05`).
pub fn check_steps(how: &str, steps: f64) -> Result<u64> {
    if !(steps.is_finite() && steps >= 0.0 && steps <= MAX_STEPS as f64) {
        bail!(
            "too many steps: {how} gives {} steps: expected at most {}",
            fmt_num(steps.ceil()),
            fmt_num(MAX_STEPS as f64)
        );
    }
    Ok(steps as u64)
}

/// Bytes of memory this process may still allocate: the smallest of the kernel's `MemAvailable`, the
/// cgroup's `memory.max − memory.current` and the address-space limit (`ulimit -v`); `None` when none
/// of them can be read.
pub fn available_memory() -> Option<f64> {
    let mut best: Option<f64> = None;
    let mut take = |x: f64| best = Some(best.map_or(x, |b: f64| b.min(x)));
    if let Ok(s) = std::fs::read_to_string("/proc/meminfo") {
        if let Some(kb) = s
            .lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|r| r.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        {
            take(kb * 1024.0);
        }
    }
    let read_num = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
    };
    if let (Some(max), Some(cur)) = (
        read_num("/sys/fs/cgroup/memory.max"),
        read_num("/sys/fs/cgroup/memory.current"),
    ) {
        take((max - cur).max(0.0));
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) } == 0
        && lim.rlim_cur != libc::RLIM_INFINITY
    {
        take(lim.rlim_cur as f64);
    }
    best
}

/// A byte count for a message: `1.6e17 bytes (160 PB)`.
pub fn fmt_bytes(bytes: f64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut x = bytes;
    let mut u = 0;
    while x >= 1000.0 && u + 1 < units.len() {
        x /= 1000.0;
        u += 1;
    }
    let human = if u + 1 == units.len() && x >= 1000.0 {
        format!("{} EB", fmt_num((x).round()))
    } else {
        format!("{x:.1} {}", units[u])
    };
    format!("{} bytes ({human})", fmt_num(bytes.round()))
}

/// Refuse a run whose estimated memory need (`floats` f64 numbers, computed in f64 so that no size can
/// overflow) exceeds what the machine has, *before* anything is allocated. `asked` names the sizes
/// (`--width 1e8, --depth 3, N = 16`), `parts` what the estimate counts.
pub fn check_memory(asked: &str, parts: &str, floats: f64) -> Result<()> {
    let bytes = 8.0 * floats;
    let limit = available_memory();
    let too_big = match limit {
        Some(avail) => bytes.is_nan() || bytes > avail,
        // Nothing to compare with: still refuse what no machine has (2^60 bytes).
        None => bytes.is_nan() || bytes > 2f64.powi(60),
    };
    if too_big {
        let have = limit.map_or("this machine's memory".into(), |a| {
            format!("the {} available", fmt_bytes(a))
        });
        bail!(
            "not enough memory: {asked} needs about {} ({parts}): expected at most {have}",
            fmt_bytes(bytes)
        );
    }
    Ok(())
}
