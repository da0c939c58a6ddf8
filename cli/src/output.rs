//! Output directories that appear whole or not at all.
//!
//! A command writes into a hidden sibling `.DIR.partial-PID`; [`OutputDir::commit`] renames it to `DIR`
//! at the end. If the command fails (an error, a panic, Ctrl-C before commit), the partial directory is
//! removed on drop, so no half-written output directory is ever left behind.
use anyhow::{bail, Context, Result};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// An output directory under construction.
pub struct OutputDir {
    target: PathBuf,
    partial: PathBuf,
    committed: bool,
}

impl OutputDir {
    /// Start writing the output directory `target`.
    ///
    /// An existing `target` is replaced only if it is empty or holds a previous nff output
    /// (a `summary.json` or `claims.json`); anything else is an error, so user data is never removed.
    pub fn create(target: &Path) -> Result<Self> {
        if target.exists() {
            if !target.is_dir() {
                bail!(
                    "output path {} exists and is not a directory",
                    target.display()
                );
            }
            let is_ours =
                target.join("summary.json").exists() || target.join("claims.json").exists();
            let is_empty = fs::read_dir(target)
                .with_context(|| format!("reading output directory {}", target.display()))?
                .next()
                .is_none();
            if !is_ours && !is_empty {
                bail!(
                    "output directory {} exists and does not hold nff output (expected an empty directory or one with summary.json); choose another --out",
                    target.display()
                );
            }
        }
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
        let name = target
            .file_name()
            .with_context(|| format!("output path {} has no directory name", target.display()))?
            .to_string_lossy()
            .to_string();
        remove_stale_partials(&parent, &name);
        let partial = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if partial.exists() {
            fs::remove_dir_all(&partial).ok();
        }
        // Registered before it exists, so an interruption between the two still removes it.
        nff_core::io::cleanup::register(&partial);
        fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
        Ok(Self {
            target: target.to_path_buf(),
            partial,
            committed: false,
        })
    }

    /// The path of a file inside the (partial) directory.
    pub fn path(&self, file: &str) -> PathBuf {
        self.partial.join(file)
    }

    /// Write a whole file.
    pub fn write(&self, file: &str, bytes: &[u8]) -> Result<()> {
        let p = self.path(file);
        let mut f = fs::File::create(&p).with_context(|| format!("creating {}", p.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("writing {}", p.display()))?;
        Ok(())
    }

    /// Write a value as pretty JSON.
    pub fn write_json<T: serde::Serialize>(&self, file: &str, value: &T) -> Result<()> {
        let s = serde_json::to_string_pretty(value)?;
        self.write(file, s.as_bytes())
    }

    /// The directory this becomes on commit.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Print the results line on stdout (unless quiet), then move the finished directory into place. The
    /// line comes first so that a failed write to stdout (a full disk) is an error that leaves nothing
    /// behind, like every other error.
    pub fn say_and_commit(self, quiet: bool, line: &str) -> Result<PathBuf> {
        crate::common::say(quiet, line)?;
        self.commit()
    }

    /// Move the finished directory into place.
    pub fn commit(mut self) -> Result<PathBuf> {
        if self.target.exists() {
            fs::remove_dir_all(&self.target)
                .with_context(|| format!("replacing previous output {}", self.target.display()))?;
        }
        nff_core::io::cleanup::commit_with(&self.partial, || {
            fs::rename(&self.partial, &self.target)
        })
        .with_context(|| {
            format!(
                "moving {} to {}",
                self.partial.display(),
                self.target.display()
            )
        })?;
        self.committed = true;
        Ok(self.target.clone())
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        if !self.committed {
            fs::remove_dir_all(&self.partial).ok();
            nff_core::io::cleanup::unregister(&self.partial);
        }
    }
}

/// Remove the staging directories `.NAME.partial-PID` of processes that no longer exist (a run killed
/// with SIGKILL, which no handler can clean up after); those of live processes are left alone.
fn remove_stale_partials(parent: &Path, name: &str) {
    let prefix = format!(".{name}.partial-");
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().to_string();
        let Some(pid) = file
            .strip_prefix(&prefix)
            .and_then(|p| p.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        if pid <= 0 || pid as u32 == std::process::id() {
            continue;
        }
        // kill(pid, 0) probes for the process without signalling it; ESRCH: there is none.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            fs::remove_dir_all(e.path()).ok();
        }
    }
}
