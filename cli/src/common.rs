//! Options every command shares (`--seed`, `--threads`, `--out`, `--config`, `--quiet`), thread setup,
//! progress bars and the common part of `summary.json`.
use anyhow::{bail, Context, Result};
use clap::Args;
use faer::Par;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::de::DeserializeOwned;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Options shared by every command.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// Random seed: the same seed gives the same results, whatever the thread count.
    #[arg(long, global = false)]
    pub seed: Option<u64>,
    /// Worker threads (default: all cores). Results do not depend on it.
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
            None => cfg_get::<u64>(cfg, "seed")?.unwrap_or(0),
        };
        let threads = match common.threads {
            Some(t) => t,
            None => cfg_get::<usize>(cfg, "threads")?.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            }),
        };
        if threads == 0 {
            bail!("invalid --threads: expected a positive number, found 0");
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
        .with_context(|| format!("reading config {}", path.display()))?;
    text.parse::<toml::Table>()
        .with_context(|| format!("parsing config {} as TOML", path.display()))
}

/// A typed value from the config table (keys use the long option names, e.g. `width`, `eta`).
pub fn cfg_get<T: DeserializeOwned>(cfg: &toml::Table, key: &str) -> Result<Option<T>> {
    match cfg.get(key) {
        None => Ok(None),
        Some(v) => v
            .clone()
            .try_into()
            .map(Some)
            .with_context(|| format!("config key '{key}': unexpected value {v}")),
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

/// Check a float option is finite and within `[lo, hi]`.
pub fn check_range(name: &str, x: f64, lo: f64, hi: f64) -> Result<f64> {
    if !(x.is_finite() && x >= lo && x <= hi) {
        bail!("invalid --{name}: expected a finite value in [{lo}, {hi}], found {x}");
    }
    Ok(x)
}
