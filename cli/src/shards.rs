//! Shards of `nff sweep` and `nff verify`: parsing `--shard k/n` (or the Slurm array variables), the
//! configuration fingerprint each shard records, and the checks `--merge` runs before joining shards.
//!
//! A merge takes a list of shard directories. Each must hold a `shard.json` recording which shard it is
//! and the fingerprint of its configuration; the merge fails with one line naming the directory when one
//! has no `shard.json` (a missing shard, or an array task that failed: a failed run leaves no output
//! directory), is of another configuration, is of a split into another number of shards, or duplicates
//! another; and it names the shard index no directory holds.
use anyhow::{bail, Context, Result};
use nff_flow::Shard;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// Parse `k/n` (0-based k).
pub fn parse_shard(s: &str) -> Result<Shard> {
    let (k, n) = s
        .split_once('/')
        .with_context(|| format!("invalid --shard '{s}': expected k/n, e.g. 0/4"))?;
    let k: usize = k
        .trim()
        .parse()
        .with_context(|| format!("invalid --shard '{s}': expected k/n with integers"))?;
    let n: usize = n
        .trim()
        .parse()
        .with_context(|| format!("invalid --shard '{s}': expected k/n with integers"))?;
    Ok(Shard::new(k, n)?)
}

/// The shard of a Slurm array task: `SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN` of
/// `SLURM_ARRAY_TASK_COUNT`, or `None` outside an array.
pub fn shard_from_env() -> Result<Option<Shard>> {
    match (
        std::env::var("SLURM_ARRAY_TASK_ID"),
        std::env::var("SLURM_ARRAY_TASK_COUNT"),
    ) {
        (Ok(id), Ok(count)) => {
            let k: usize = id
                .parse()
                .with_context(|| format!("SLURM_ARRAY_TASK_ID '{id}' is not an integer"))?;
            let n: usize = count
                .parse()
                .with_context(|| format!("SLURM_ARRAY_TASK_COUNT '{count}' is not an integer"))?;
            let min: usize = std::env::var("SLURM_ARRAY_TASK_MIN")
                .ok()
                .and_then(|m| m.parse().ok())
                .unwrap_or(0);
            Ok(Some(Shard::new(k.saturating_sub(min), n)?))
        }
        _ => Ok(None),
    }
}

/// The shard from `--shard` (or the config key `shard`), else from the Slurm array variables.
pub fn resolve(flag: Option<String>, cfg: &toml::Table) -> Result<Option<Shard>> {
    match flag.or(crate::common::cfg_get(cfg, "shard")?) {
        Some(s) => Ok(Some(parse_shard(&s)?)),
        None => shard_from_env(),
    }
}

/// The fingerprint of a configuration: FNV-1a (64 bit, hex) of its canonical JSON text, which includes
/// the nff version, so shards written by another version do not merge either.
pub fn fingerprint<T: serde::Serialize>(config: &T) -> Result<String> {
    let text = serde_json::to_string(config)?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    Ok(format!("{h:016x}"))
}

/// Read and parse `DIR/shard.json`; the error names the directory.
pub fn read<T: DeserializeOwned>(dir: &Path, what: &str) -> Result<T> {
    let p = dir.join("shard.json");
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if dir.is_dir() && e.kind() == std::io::ErrorKind::NotFound => bail!(
            "shard directory {} holds no shard.json: expected the output of one `{what} --shard k/n` run (a missing shard, or an array task that failed)",
            dir.display()
        ),
        Err(_) if !dir.exists() => bail!(
            "shard directory {} does not exist: expected the output of one `{what} --shard k/n` run (a missing shard, or an array task that failed)",
            dir.display()
        ),
        Err(e) => bail!("shard {}: reading {}: {e}", dir.display(), p.display()),
    };
    serde_json::from_str(&text).with_context(|| {
        format!(
            "shard {}: {} is not a shard of `{what}`",
            dir.display(),
            p.display()
        )
    })
}

/// What the merge checks of each shard: its directory, which shard it is, and its fingerprint.
pub struct Entry<'a> {
    /// The directory given to `--merge`.
    pub dir: &'a Path,
    /// Which shard it holds.
    pub shard: Shard,
    /// Its configuration fingerprint.
    pub fingerprint: &'a str,
}

/// Check that the shards are exactly `0/n, …, (n-1)/n` of one configuration (in any order); the error
/// names the offending directory, or the shard no directory holds.
pub fn check_complete(entries: &[Entry<'_>]) -> Result<()> {
    let Some(first) = entries.first() else {
        bail!("--merge: expected at least one shard directory, found none");
    };
    let n = first.shard.count;
    let mut owner: Vec<Option<&Path>> = vec![None; n];
    for e in entries {
        if e.fingerprint != first.fingerprint {
            bail!(
                "shard {} ({}/{}) is of another configuration: fingerprint {}, expected {} as in {}",
                e.dir.display(),
                e.shard.index,
                e.shard.count,
                e.fingerprint,
                first.fingerprint,
                first.dir.display()
            );
        }
        if e.shard.count != n {
            bail!(
                "shard {} is shard {}/{}: expected a shard k/{n} like {}",
                e.dir.display(),
                e.shard.index,
                e.shard.count,
                first.dir.display()
            );
        }
        let slot = &mut owner[e.shard.index];
        if let Some(prev) = slot {
            bail!(
                "shard {} duplicates shard {}/{n} of {}",
                e.dir.display(),
                e.shard.index,
                prev.display()
            );
        }
        *slot = Some(e.dir);
    }
    if let Some(k) = owner.iter().position(|o| o.is_none()) {
        bail!(
            "shard {k}/{n} is missing: none of the {} directories given holds it",
            entries.len()
        );
    }
    Ok(())
}

/// The directories as given, for `summary.json`.
pub fn dir_strings(dirs: &[PathBuf]) -> Vec<String> {
    dirs.iter().map(|d| d.display().to_string()).collect()
}
