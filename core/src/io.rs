//! Files: numpy-readable `.npz` archives (data and network states), `.csv` data, and atomic writes.
//!
//! # Atomic writes
//! Every file is written by [`write_atomic`] / [`write_atomic_with`] (or [`NpzWriter`], which uses the
//! same mechanism): the bytes go to a temporary file `.NAME.tmp-PID-K` in the target's directory, which
//! is flushed, `fsync`ed and then renamed over the target. A reader therefore sees either the old file or
//! the complete new one, never a half-written one; on any error (or a panic in the writing closure) the
//! temporary file is removed and an existing target is left untouched.
//!
//! # `.npz` archives
//! A zip of `.npy` arrays, as `numpy.savez` writes (entries stored uncompressed; compressed archives
//! from `numpy.savez_compressed` are read too). We always write little-endian `float64` in **C order**
//! (row-major: the last index runs fastest). [`read_npz`] returns every array as `f64` in C order:
//! `float64` as is, `float32`, signed/unsigned integers and `bool` converted exactly (integers beyond
//! $2^{53}$ are rounded), Fortran-order arrays are transposed into C order. Other dtypes (complex,
//! strings, objects, records) are rejected with an error naming the dtype.
//!
//! ## Data schema
//! | key | shape | meaning |
//! |---|---|---|
//! | `X` | $(N, d)$ | inputs, one row per point (`X[i, k]` $= x^i_k$) |
//! | `y` | $(N,)$ | targets |
//!
//! Other keys are ignored when loading data, so a state file is also a data file.
//!
//! ## State schema (architecture.md)
//! | key | shape | meaning |
//! |---|---|---|
//! | `X`, `y` | $(N, d)$, $(N,)$ | the training data, as above |
//! | `A` | $(d, m)$ | first-layer weights, `A[i, j]` $= A_{ij}$ (input $i$ → unit $j$; column $j$ is $a_j$) |
//! | `W` | $(L-1, m, m)$ | middle weights, `W[l, j, k]` $= W_{l+1}[j, k]$ (unit $j$ of layer $l+1$ → unit $k$ of layer $l+2$); **omitted when $L = 1$** |
//! | `v` | $(m,)$ | output weights |
//! | `depth` | $()$ | $L \ge 1$, an integer (a numpy int array is fine) |
//! | `resnet` | $()$ | 1 for a ResNet, 0 for a standard DNN; may be omitted when $L = 1$ |
//!
//! Scalars are 0-d arrays; a 1-element array is accepted too. `depth = 1` loads as
//! [`Arch::TwoLevel`]; otherwise `resnet` selects [`Arch::ResNet`] or [`Arch::Dnn`].
//! With these arrays, the predictions are those of math.md §2, e.g. in numpy for the DNN:
//! `Z = X @ A; for l in range(L-1): Z = tanh(Z) @ W[l] / m; yhat = tanh(Z) @ v / m`
//! (ResNet: `Z = Z + tanh(Z) @ W[l] / m`).
//!
//! [`load_state`] checks everything before building anything; each error is one line naming the
//! file, the array, what was expected and what was found. Extra keys are ignored.
//!
//! # `.csv` data
//! [`save_data_csv`] writes a header `x1,...,xd,y` and one point per line, every number in Rust's
//! shortest round-trip form (`{:?}`), so reading back is bit-exact. [`load_data_csv`] reads
//! comma-separated lines with the target in the last column; blank lines and lines starting with `#`
//! (numpy's `savetxt` header) are skipped; the first remaining line is a header if none of its fields
//! is a number. Errors name the line and column.
use crate::data::Dataset;
use crate::error::{CoreError, Result};
use crate::network::{Arch, Network, Params, Shape};
use faer::{Mat, MatRef};
use npyz::{DType, TypeChar, TypeStr, WriterBuilder};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

// ------------------------------------------------------------------------------------------------
// Atomic writes
// ------------------------------------------------------------------------------------------------

/// Paths to remove if the process is interrupted: temporary files and staging directories under
/// construction. A signal handler (the `nff` binary's) calls [`cleanup::remove_all`] before exiting;
/// [`cleanup::commit_with`] makes a commit (a rename) atomic with respect to that removal.
pub mod cleanup {
    use std::path::{Path, PathBuf};
    use std::sync::{Mutex, MutexGuard};

    static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

    fn pending() -> MutexGuard<'static, Vec<PathBuf>> {
        PENDING.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remember `path` (a file or a directory) for removal on interruption.
    pub fn register(path: &Path) {
        pending().push(path.to_path_buf());
    }

    /// Forget `path` (it was committed or removed).
    pub fn unregister(path: &Path) {
        pending().retain(|p| p != path);
    }

    /// Run `f` (e.g. a rename) and forget `path`, with no removal in between.
    pub fn commit_with<T>(path: &Path, f: impl FnOnce() -> T) -> T {
        let mut g = pending();
        let out = f();
        g.retain(|p| p != path);
        out
    }

    /// Remove every registered path (best effort; retried, since a writer may still be adding files)
    /// and keep the registry locked afterwards, so nothing is committed while the process exits.
    pub fn remove_all() -> MutexGuard<'static, Vec<PathBuf>> {
        let g = pending();
        for p in g.iter() {
            for _ in 0..20 {
                let r = if p.is_dir() {
                    std::fs::remove_dir_all(p)
                } else {
                    std::fs::remove_file(p)
                };
                if r.is_ok() || !p.exists() {
                    break;
                }
            }
        }
        g
    }
}

/// An I/O error's cause in words (`No space left on device`), without the ` (os error N)` suffix of its
/// `Display`.
pub fn io_cause(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Remove the temporary files `.NAME.tmp-PID-K` of `name` left by processes that no longer exist (killed
/// with SIGKILL while writing, when no handler can clean up); those of live processes are left alone.
fn remove_stale_temporaries(dir: &Path, name: &std::ffi::OsStr) {
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().to_string();
        let Some(pid) = file
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_exists(pid) {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Whether a process with this id exists (Linux: `/proc/PID`; elsewhere assumed alive, so nothing of
/// another process is ever removed).
fn process_exists(pid: u32) -> bool {
    let proc_dir = Path::new("/proc");
    if proc_dir.join("self").exists() {
        proc_dir.join(pid.to_string()).exists()
    } else {
        true
    }
}

/// A temporary file next to its target; removed on drop unless committed.
struct TempFile {
    target: PathBuf,
    tmp: PathBuf,
    committed: bool,
}

impl TempFile {
    /// Create `.NAME.tmp-PID-K` in the target's directory (never clobbering an existing file).
    fn create(target: &Path) -> Result<(Self, File)> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = target
            .file_name()
            .ok_or_else(|| CoreError::file(target, "cannot write: the path names no file"))?;
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let pid = std::process::id();
        remove_stale_temporaries(&dir, name);
        loop {
            let k = COUNTER.fetch_add(1, Ordering::Relaxed);
            let mut tmp_name = std::ffi::OsString::from(".");
            tmp_name.push(name);
            tmp_name.push(format!(".tmp-{pid}-{k}"));
            let tmp = dir.join(tmp_name);
            match OpenOptions::new().write(true).create_new(true).open(&tmp) {
                Ok(f) => {
                    cleanup::register(&tmp);
                    let guard = Self {
                        target: target.to_path_buf(),
                        tmp,
                        committed: false,
                    };
                    return Ok((guard, f));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(CoreError::file(
                        target,
                        format!("cannot create a temporary file in {}: {e}", dir.display()),
                    ))
                }
            }
        }
    }

    /// Flush `file` to disk and rename it over the target.
    fn commit(mut self, file: File) -> Result<()> {
        file.sync_all()
            .map_err(|e| CoreError::file(&self.target, format!("cannot sync to disk: {e}")))?;
        drop(file);
        cleanup::commit_with(&self.tmp, || fs::rename(&self.tmp, &self.target))
            .map_err(|e| CoreError::file(&self.target, format!("cannot replace the file: {e}")))?;
        self.committed = true;
        // Make the rename itself durable; not every platform can open a directory, so best effort.
        if let Some(dir) = self.target.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
            cleanup::unregister(&self.tmp);
        }
    }
}

/// Write `bytes` to `path` atomically (temporary file in the same directory, fsync, rename).
///
/// On error no temporary file remains and an existing `path` is unchanged.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Write the output of `write` to `path` atomically (see the [module docs](self)).
///
/// `write` gets a buffered writer; any error it returns (any type that displays, e.g. `io::Error`,
/// `serde_json::Error`, [`CoreError`]) aborts the write: the temporary file is removed, `path` is
/// unchanged, and the error is returned as a [`CoreError::File`] naming `path`.
///
/// ```no_run
/// use std::io::Write;
/// nff_core::io::write_atomic_with("out/summary.json", |w| writeln!(w, "{{\"ok\": true}}"))?;
/// # Ok::<(), nff_core::CoreError>(())
/// ```
pub fn write_atomic_with<F, E>(path: impl AsRef<Path>, write: F) -> Result<()>
where
    F: FnOnce(&mut dyn Write) -> std::result::Result<(), E>,
    E: fmt::Display,
{
    let path = path.as_ref();
    let (tmp, file) = TempFile::create(path)?;
    let mut w = BufWriter::new(file);
    write(&mut w).map_err(|e| CoreError::file(path, format!("write failed: {e}")))?;
    let file = w
        .into_inner()
        .map_err(|e| CoreError::file(path, format!("write failed: {}", e.error())))?;
    tmp.commit(file)
}

// ------------------------------------------------------------------------------------------------
// .npz writing
// ------------------------------------------------------------------------------------------------

/// numpy's notation for a shape: `()`, `(3,)`, `(2, 4)`.
pub fn fmt_shape(shape: &[usize]) -> String {
    match shape {
        [] => "()".into(),
        [n] => format!("({n},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(|s| s.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// Writes a numpy `.npz` archive of `float64` C-order arrays, atomically: nothing appears at the
/// target path until [`NpzWriter::finish`] succeeds; dropping the writer unfinished removes the
/// temporary file.
///
/// ```no_run
/// let mut w = nff_core::io::NpzWriter::create("out.npz")?;
/// w.add("x", &[2, 3], &[1., 2., 3., 4., 5., 6.])?; // x[0] = [1, 2, 3]
/// w.add_scalar("t", 0.5)?;
/// w.finish()?;
/// # Ok::<(), nff_core::CoreError>(())
/// ```
pub struct NpzWriter {
    path: PathBuf,
    tmp: TempFile,
    zip: zip::ZipWriter<BufWriter<File>>,
    names: BTreeSet<String>,
}

impl NpzWriter {
    /// Start writing an archive that will replace `path` on [`NpzWriter::finish`].
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let (tmp, file) = TempFile::create(&path)?;
        Ok(Self {
            path,
            tmp,
            zip: zip::ZipWriter::new(BufWriter::new(file)),
            names: BTreeSet::new(),
        })
    }

    /// Add the array `name` of `shape` whose entries, in C order, are `data`.
    ///
    /// Errors if `data.len()` is not the product of `shape`, or the name is empty or already used.
    pub fn add(&mut self, name: &str, shape: &[usize], data: &[f64]) -> Result<()> {
        let len = data.len();
        self.add_blocks(name, shape, len, 4096, |start, buf| {
            buf.copy_from_slice(&data[start..start + buf.len()]);
        })
    }

    /// Add the array `name` of `shape` with `len` entries produced block by block: `fill(start, buf)` writes the
    /// C-order entries `start..start + buf.len()` into `buf` (at most `block` entries at a time). Nothing of the
    /// array's size is allocated, so writing a large state does not double its memory.
    pub fn add_blocks(
        &mut self,
        name: &str,
        shape: &[usize],
        len: usize,
        block: usize,
        mut fill: impl FnMut(usize, &mut [f64]),
    ) -> Result<()> {
        let count = shape
            .iter()
            .try_fold(1usize, |acc, &s| acc.checked_mul(s))
            .ok_or_else(|| {
                CoreError::invalid(
                    format!("shape of array '{name}'"),
                    "a size that fits in memory",
                    fmt_shape(shape),
                )
            })?;
        if count != len {
            return Err(CoreError::shape(
                format!("array '{name}' written to {}", self.path.display()),
                format!("{count} entries for shape {}", fmt_shape(shape)),
                format!("{len} entries"),
            ));
        }
        if name.is_empty() || name.contains('\0') {
            return Err(CoreError::invalid(
                "array name",
                "a non-empty name without NUL characters",
                format!("{name:?}"),
            ));
        }
        if !self.names.insert(name.to_owned()) {
            return Err(CoreError::invalid(
                format!("array names in {}", self.path.display()),
                "distinct names",
                format!("'{name}' twice"),
            ));
        }
        let io_err = |e: &dyn fmt::Display| {
            CoreError::file(&self.path, format!("cannot write array '{name}': {e}"))
        };
        // Zip entries above 4 GiB need the zip64 extension; numpy reads both.
        let large = (len as u64).saturating_mul(8) >= u64::from(u32::MAX) - (1 << 16);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(large);
        self.zip
            .start_file(npyz::npz::file_name_from_array_name(name), options)
            .map_err(|e| io_err(&e))?;
        let shape_u64: Vec<u64> = shape.iter().map(|&s| s as u64).collect();
        npyz::WriteOptions::<f64>::new()
            .dtype(DType::Plain(little_f64()))
            .shape(&shape_u64)
            .writer(&mut self.zip)
            .write_header_only()
            .map_err(|e| io_err(&e))?;
        let block = block.max(1).min(len.max(1));
        let mut vals = vec![0.0; block];
        let mut buf = Vec::with_capacity(8 * block);
        let mut start = 0;
        while start < len {
            let k = block.min(len - start);
            fill(start, &mut vals[..k]);
            buf.clear();
            for x in &vals[..k] {
                buf.extend_from_slice(&x.to_le_bytes());
            }
            self.zip.write_all(&buf).map_err(|e| io_err(&e))?;
            start += k;
        }
        Ok(())
    }

    /// Add a matrix as a 2-d array (rows, columns), written in C order (`name[i, j]` = `m[(i, j)]`).
    pub fn add_matrix(&mut self, name: &str, m: MatRef<'_, f64>) -> Result<()> {
        self.add(name, &[m.nrows(), m.ncols()], &c_order(m))
    }

    /// Add a scalar as a 0-d array.
    pub fn add_scalar(&mut self, name: &str, x: f64) -> Result<()> {
        self.add(name, &[], &[x])
    }

    /// Complete the archive and move it into place.
    pub fn finish(self) -> Result<()> {
        let Self { path, tmp, zip, .. } = self;
        let buffered = zip
            .finish()
            .map_err(|e| CoreError::file(&path, format!("cannot finish the archive: {e}")))?;
        let file = buffered
            .into_inner()
            .map_err(|e| CoreError::file(&path, format!("write failed: {}", e.error())))?;
        tmp.commit(file)
    }
}

/// `<f8`.
fn little_f64() -> TypeStr {
    "<f8".parse().expect("'<f8' is a valid numpy type string")
}

/// The entries of `m` row by row.
fn c_order(m: MatRef<'_, f64>) -> Vec<f64> {
    let mut out = Vec::with_capacity(m.nrows() * m.ncols());
    for i in 0..m.nrows() {
        for j in 0..m.ncols() {
            out.push(m[(i, j)]);
        }
    }
    out
}

/// Write the named arrays `(name, shape, C-order data)` to a `.npz` archive, atomically.
pub fn write_npz(path: impl AsRef<Path>, arrays: &[(&str, &[usize], &[f64])]) -> Result<()> {
    let mut w = NpzWriter::create(path)?;
    for &(name, shape, data) in arrays {
        w.add(name, shape, data)?;
    }
    w.finish()
}

// ------------------------------------------------------------------------------------------------
// .npz reading
// ------------------------------------------------------------------------------------------------

/// One array read from a `.npz` archive: its shape and its entries as `f64` in C order.
#[derive(Clone, Debug, PartialEq)]
pub struct NpzArray {
    /// The shape (empty for a 0-d scalar).
    pub shape: Vec<usize>,
    /// The entries in C order (`shape.iter().product()` of them).
    pub data: Vec<f64>,
}

/// The arrays of a `.npz` archive, by name, as read by [`read_npz`].
///
/// The getters check the number of dimensions and name the file, the array, the expected and the
/// found shape on error.
#[derive(Clone, Debug)]
pub struct Npz {
    path: PathBuf,
    arrays: BTreeMap<String, NpzArray>,
}

impl Npz {
    /// The file these arrays came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The array names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.arrays.keys().map(String::as_str)
    }

    /// Whether the archive has an array `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.arrays.contains_key(name)
    }

    /// All arrays by name.
    pub fn arrays(&self) -> &BTreeMap<String, NpzArray> {
        &self.arrays
    }

    /// Consume into the arrays by name.
    pub fn into_arrays(self) -> BTreeMap<String, NpzArray> {
        self.arrays
    }

    /// The array `name`; errors if it is missing, listing the arrays present.
    pub fn get(&self, name: &str) -> Result<&NpzArray> {
        self.arrays.get(name).ok_or_else(|| {
            CoreError::file(
                &self.path,
                format!("missing array '{name}'; found {}", self.list_names()),
            )
        })
    }

    /// A 2-d array as an $r \times c$ matrix (`m[(i, j)]` = `name[i, j]`).
    pub fn matrix(&self, name: &str) -> Result<Mat<f64>> {
        let a = self.get(name)?;
        match a.shape[..] {
            [r, c] => Ok(Mat::from_fn(r, c, |i, j| a.data[i * c + j])),
            _ => Err(self.shape_error(name, "a 2-d array (rows, columns)", &a.shape)),
        }
    }

    /// A 1-d array as a vector.
    pub fn vector(&self, name: &str) -> Result<Vec<f64>> {
        let a = self.get(name)?;
        match a.shape[..] {
            [_] => Ok(a.data.clone()),
            _ => Err(self.shape_error(name, "a 1-d array (n,)", &a.shape)),
        }
    }

    /// A scalar: a 0-d array, or an array with exactly one entry.
    pub fn scalar(&self, name: &str) -> Result<f64> {
        let a = self.get(name)?;
        match a.data[..] {
            [x] => Ok(x),
            _ => Err(self.shape_error(name, "a scalar, shape ()", &a.shape)),
        }
    }

    /// "arrays X, y" / "no arrays".
    fn list_names(&self) -> String {
        if self.arrays.is_empty() {
            "no arrays".into()
        } else {
            format!("arrays {}", self.names().collect::<Vec<_>>().join(", "))
        }
    }

    /// "array 'NAME' in PATH".
    fn what(&self, name: &str) -> String {
        format!("array '{name}' in {}", self.path.display())
    }

    fn shape_error(&self, name: &str, expected: impl ToString, found: &[usize]) -> CoreError {
        CoreError::shape(self.what(name), expected, fmt_shape(found))
    }

    /// Error unless every entry of `name` is finite; names the first offender by its index.
    fn ensure_finite(&self, name: &str) -> Result<()> {
        let a = self.get(name)?;
        if let Some(flat) = a.data.iter().position(|x| !x.is_finite()) {
            return Err(CoreError::invalid(
                self.what(name),
                "finite values",
                format!("{} at {name}{}", a.data[flat], index_of(flat, &a.shape)),
            ));
        }
        Ok(())
    }
}

/// The numpy index `[i, j, k]` of C-order flat index `flat` in an array of `shape`.
fn index_of(mut flat: usize, shape: &[usize]) -> String {
    let mut idx = vec![0; shape.len()];
    for (k, &s) in shape.iter().enumerate().rev() {
        if s > 0 {
            idx[k] = flat % s;
            flat /= s;
        }
    }
    let parts: Vec<String> = idx.iter().map(|i| i.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// Read every array of a `.npz` archive as `f64` in C order (see the [module docs](self) for the
/// accepted dtypes). Zip entries that are not `.npy` files are ignored, as numpy does.
pub fn read_npz(path: impl AsRef<Path>) -> Result<Npz> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| CoreError::file(path, format!("cannot open: {e}")))?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| {
        CoreError::file(
            path,
            format!("not a readable .npz (zip) archive: {}", fold(e)),
        )
    })?;
    let mut arrays = BTreeMap::new();
    for index in 0..archive.len() {
        let entry = archive.by_index(index).map_err(|e| {
            CoreError::file(path, format!("cannot read zip entry {index}: {}", fold(e)))
        })?;
        let Some(name) = npyz::npz::array_name_from_file_name(entry.name()).map(str::to_owned)
        else {
            continue;
        };
        let array = read_npy_entry(entry)
            .map_err(|message| CoreError::file(path, format!("array '{name}': {message}")))?;
        arrays.insert(name, array);
    }
    Ok(Npz {
        path: path.to_path_buf(),
        arrays,
    })
}

/// A message on one line (parsers such as npyz's header parser render multi-line diagnostics).
fn fold(message: impl fmt::Display) -> String {
    message
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Decode one `.npy` zip entry; the error is a message to be prefixed with the file and array.
///
/// The entry is read whole first: the zip reader compares the CRC-32 of what it read with the stored
/// one at the end of the entry, so a corrupted entry is reported as such (never parsed as a header or
/// returned as data).
fn read_npy_entry<R: Read>(mut entry: zip::read::ZipFile<'_, R>) -> Result<NpzArray, String> {
    // Fallible allocation of the announced size (a corrupt or hostile header must not abort the
    // process), and never more than announced.
    let announced = entry.size();
    let mut bytes = Vec::new();
    usize::try_from(announced)
        .ok()
        .and_then(|n| bytes.try_reserve_exact(n).ok())
        .ok_or_else(|| {
            format!("the entry announces {announced} bytes, more than this machine can allocate")
        })?;
    entry
        .by_ref()
        // One byte more than announced: the reader must reach the entry's end, where the CRC-32 is
        // compared (a read that stops at exactly the announced size would skip the check).
        .take(announced.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| {
            if e.to_string().to_ascii_lowercase().contains("checksum") {
                "the stored entry is corrupt: expected its CRC-32 checksum, found a mismatch"
                    .to_string()
            } else {
                format!("cannot read the entry: {}", fold(e))
            }
        })?;
    let stored_bytes = bytes.len() as u64;
    if stored_bytes > announced {
        return Err(format!(
            "the entry holds more than the {announced} bytes its header announces"
        ));
    }
    let mut reader = &bytes[..];
    let npy = npyz::NpyFile::new(&mut reader)
        .map_err(|e| format!("not a valid .npy array: {}", fold(e)))?;
    let shape: Vec<usize> = npy
        .shape()
        .iter()
        .map(|&s| usize::try_from(s))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| format!("shape {:?} too large", npy.shape()))?;
    let count = npy.len();
    let item_size = match npy.dtype() {
        DType::Plain(ts) => ts.num_bytes().unwrap_or(0) as u64,
        _ => 0,
    };
    // A header must not make us allocate more than the entry holds.
    if count.saturating_mul(item_size) > stored_bytes {
        return Err(format!(
            "header announces {count} entries of shape {}, but the entry holds only {stored_bytes} bytes",
            fmt_shape(&shape)
        ));
    }
    let order = npy.order();
    let data = read_as_f64(npy)?;
    let data = if order == npyz::Order::Fortran && shape.len() > 1 {
        fortran_to_c(&shape, &data)
    } else {
        data
    };
    Ok(NpzArray { shape, data })
}

/// Read the entries of `npy` converted to `f64`.
fn read_as_f64<R: Read>(npy: npyz::NpyFile<R>) -> Result<Vec<f64>, String> {
    fn convert<T: npyz::Deserialize, R: Read>(
        npy: npyz::NpyFile<R>,
        to_f64: impl Fn(T) -> f64,
    ) -> Result<Vec<f64>, String> {
        let reader = npy.data::<T>().map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(usize::try_from(reader.total_len()).unwrap_or(0));
        for x in reader {
            out.push(to_f64(x.map_err(|e| format!("cannot read the data: {e}"))?));
        }
        Ok(out)
    }
    let unsupported = |dtype: String| {
        format!(
            "unsupported dtype '{dtype}': expected float64 (float32, integer and bool are converted)"
        )
    };
    let ts = match npy.dtype() {
        DType::Plain(ts) => ts,
        other => return Err(unsupported(other.descr())),
    };
    #[allow(clippy::cast_precision_loss)]
    match (ts.type_char(), ts.size_field()) {
        (TypeChar::Float, 8) => convert::<f64, _>(npy, |x| x),
        (TypeChar::Float, 4) => convert::<f32, _>(npy, f64::from),
        (TypeChar::Int, 1) => convert::<i8, _>(npy, f64::from),
        (TypeChar::Int, 2) => convert::<i16, _>(npy, f64::from),
        (TypeChar::Int, 4) => convert::<i32, _>(npy, f64::from),
        (TypeChar::Int, 8) => convert::<i64, _>(npy, |x| x as f64),
        (TypeChar::Uint, 1) => convert::<u8, _>(npy, f64::from),
        (TypeChar::Uint, 2) => convert::<u16, _>(npy, f64::from),
        (TypeChar::Uint, 4) => convert::<u32, _>(npy, f64::from),
        (TypeChar::Uint, 8) => convert::<u64, _>(npy, |x| x as f64),
        (TypeChar::Bool, 1) => convert::<bool, _>(npy, |b| if b { 1.0 } else { 0.0 }),
        _ => Err(unsupported(ts.to_string())),
    }
}

/// Reorder entries stored in Fortran order (first index fastest) into C order (last index fastest).
fn fortran_to_c(shape: &[usize], fortran: &[f64]) -> Vec<f64> {
    let mut f_stride = vec![1usize; shape.len()];
    for k in 1..shape.len() {
        f_stride[k] = f_stride[k - 1] * shape[k - 1];
    }
    let mut idx = vec![0usize; shape.len()];
    let mut out = Vec::with_capacity(fortran.len());
    for _ in 0..fortran.len() {
        let f: usize = idx.iter().zip(&f_stride).map(|(i, s)| i * s).sum();
        out.push(fortran[f]);
        for k in (0..shape.len()).rev() {
            idx[k] += 1;
            if idx[k] < shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    out
}

// ------------------------------------------------------------------------------------------------
// Data files
// ------------------------------------------------------------------------------------------------

/// Write a dataset as `.npz` with `X` $(N, d)$ and `y` $(N,)$, atomically.
pub fn save_data_npz(path: impl AsRef<Path>, data: &Dataset) -> Result<()> {
    data.validate()?;
    let mut w = NpzWriter::create(path)?;
    w.add_matrix("X", data.x.as_ref())?;
    w.add("y", &[data.n()], &data.y)?;
    w.finish()
}

/// Read a dataset from a `.npz` with `X` $(N, d)$ and `y` $(N,)$ (other arrays are ignored).
pub fn load_data_npz(path: impl AsRef<Path>) -> Result<Dataset> {
    let npz = read_npz(path)?;
    require(&npz, &["X", "y"], "a data file needs X (N, d) and y (N,)")?;
    dataset_from(&npz)
}

/// `X` and `y` of `npz`, checked.
fn dataset_from(npz: &Npz) -> Result<Dataset> {
    let x = npz.matrix("X")?;
    let (n, d) = (x.nrows(), x.ncols());
    if n == 0 || d == 0 {
        return Err(npz.shape_error("X", "(N, d) with N >= 1 and d >= 1", &[n, d]));
    }
    let y = npz.get("y")?;
    if y.shape != [n] {
        return Err(npz.shape_error("y", format!("({n},): one target per row of X"), &y.shape));
    }
    npz.ensure_finite("X")?;
    npz.ensure_finite("y")?;
    Dataset::new(x, y.data.clone())
}

/// Error listing every key of `keys` missing from `npz`.
fn require(npz: &Npz, keys: &[&str], schema: &str) -> Result<()> {
    let missing: Vec<&str> = keys.iter().copied().filter(|k| !npz.contains(k)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let plural = if missing.len() > 1 { "s" } else { "" };
    Err(CoreError::file(
        npz.path(),
        format!(
            "missing array{plural} {}: {schema}; found {}",
            missing.join(", "),
            npz.list_names()
        ),
    ))
}

/// Write a dataset as `.csv`: header `x1,...,xd,y`, then one point per line, round-trip exact.
pub fn save_data_csv(path: impl AsRef<Path>, data: &Dataset) -> Result<()> {
    data.validate()?;
    write_atomic_with(path, |w| -> io::Result<()> {
        let d = data.d();
        for k in 1..=d {
            write!(w, "x{k},")?;
        }
        writeln!(w, "y")?;
        for i in 0..data.n() {
            for k in 0..d {
                write!(w, "{:?},", data.x[(i, k)])?;
            }
            writeln!(w, "{:?}", data.y[i])?;
        }
        Ok(())
    })
}

/// Read a dataset from a `.csv`: comma-separated, inputs then the target in the last column.
///
/// Blank lines and lines starting with `#` are skipped; the first remaining line is a header when
/// none of its fields is a number. Every line must have the same number of columns (at least 2).
/// Errors name the line (1-based) and column of an unparsable or non-finite value.
pub fn load_data_csv(path: impl AsRef<Path>) -> Result<Dataset> {
    let path = path.as_ref();
    let text =
        fs::read_to_string(path).map_err(|e| CoreError::file(path, format!("cannot read: {e}")))?;
    parse_data_csv(&text, path)
}

/// [`load_data_csv`] on text already read; `path` names the origin in errors.
pub fn parse_data_csv(text: &str, path: &Path) -> Result<Dataset> {
    let err =
        |line: usize, message: String| CoreError::file(path, format!("line {line}: {message}"));
    let mut width: Option<(usize, usize)> = None; // (columns, line that set it)
    let mut values: Vec<f64> = Vec::new();
    let mut rows = 0usize;
    for (line_no, raw) in text.lines().enumerate().map(|(i, l)| (i + 1, l)) {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        match width {
            None => {
                if fields.len() < 2 {
                    return Err(err(
                        line_no,
                        format!(
                            "expected at least 2 comma-separated columns (inputs, then the target), found {}",
                            fields.len()
                        ),
                    ));
                }
                width = Some((fields.len(), line_no));
                if fields.iter().all(|f| f.parse::<f64>().is_err()) {
                    continue; // a header
                }
            }
            Some((cols, first)) if fields.len() != cols => {
                return Err(err(
                    line_no,
                    format!(
                        "expected {cols} columns (as on line {first}), found {}",
                        fields.len()
                    ),
                ));
            }
            Some(_) => {}
        }
        for (col, field) in fields.iter().enumerate() {
            let x: f64 = field.parse().map_err(|_| {
                err(
                    line_no,
                    format!(
                        "column {}: expected a number, found '{}'",
                        col + 1,
                        truncate(field, 40)
                    ),
                )
            })?;
            if !x.is_finite() {
                return Err(err(
                    line_no,
                    format!(
                        "column {}: expected a finite number, found '{field}'",
                        col + 1
                    ),
                ));
            }
            values.push(x);
        }
        rows += 1;
    }
    let Some((cols, _)) = width.filter(|_| rows > 0) else {
        return Err(CoreError::file(
            path,
            "expected at least one data line (inputs, then the target), found none",
        ));
    };
    let d = cols - 1;
    let x = Mat::from_fn(rows, d, |i, k| values[i * cols + k]);
    let y = (0..rows).map(|i| values[i * cols + d]).collect();
    Dataset::new(x, y)
}

/// At most `max` characters of `s`, with an ellipsis if cut.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}...", s.chars().take(max).collect::<String>())
    }
}

// ------------------------------------------------------------------------------------------------
// State files
// ------------------------------------------------------------------------------------------------

/// Keys every state file needs (plus `W` when depth > 1, `resnet` when depth > 1).
const STATE_SCHEMA: &str =
    "a state file needs X (N, d), y (N,), A (d, m), v (m,), depth, and W (depth-1, m, m) and resnet when depth > 1";

/// Write the data and network as a state `.npz` (schema in the [module docs](self)), atomically.
///
/// Errors if the network's input dimension differs from the data's. Non-finite parameters are written
/// as they are (to inspect a diverged run), but [`load_state`] rejects them.
pub fn save_state(path: impl AsRef<Path>, data: &Dataset, net: &Network) -> Result<()> {
    write_state(path.as_ref(), data, net, None)
}

/// The model a state was trained under, stored next to its arrays so that continuing from the state
/// (`nff train --init STATE.npz`) optimizes the same objective: activation, loss, regularizer and the
/// (mean-field) scaling. Arrays, all float64 (names as ASCII codes, as `docs/convex_deep.md` does):
///
/// | key | shape | meaning |
/// |---|---|---|
/// | `activation` | $(k,)$ | ASCII codes of `tanh`, `sigmoid`, `softplus` or `relu` |
/// | `loss` | $(k,)$ | ASCII codes of `squared` or `logistic` |
/// | `reg` | $(k,)$ | ASCII codes of `none`, `l2` or `group` |
/// | `lambda` | $(3,)$ | strengths $(\lambda_A, \lambda_W, \lambda_v)$ (equal unless split L2) |
/// | `q` | $()$ | group-norm exponent (1 unless `group`) |
/// | `scaling` | $(k,)$ | ASCII codes of `mean-field` (the only scaling) |
///
/// In numpy: `bytes(s["activation"].astype("uint8")).decode()`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StateModel {
    /// Activation h.
    pub activation: crate::Activation,
    /// Loss φ.
    pub loss: crate::Loss,
    /// Regularizer (kind, strengths, exponent).
    pub regularizer: crate::Regularizer,
}

/// The keys [`StateModel`] writes.
const MODEL_KEYS: [&str; 6] = ["activation", "loss", "reg", "lambda", "q", "scaling"];

fn name_codes(name: &str) -> Vec<f64> {
    name.bytes().map(f64::from).collect()
}

/// The ASCII text stored in the 1-d array `key`; errors name the choices.
fn name_from_codes(npz: &Npz, key: &str, choices: &str) -> Result<String> {
    let codes = npz.vector(key)?;
    let bytes: Option<Vec<u8>> = codes
        .iter()
        .map(|&c| (c.fract() == 0.0 && (32.0..127.0).contains(&c)).then_some(c as u8))
        .collect();
    bytes
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            CoreError::invalid(
                npz.what(key),
                format!("the ASCII codes of one of {choices}"),
                format!("{} numbers that are not", codes.len()),
            )
        })
}

/// Write a state `.npz` with the model it was trained under ([`StateModel`]), atomically.
pub fn save_state_model(
    path: impl AsRef<Path>,
    data: &Dataset,
    net: &Network,
    model: &StateModel,
) -> Result<()> {
    write_state(path.as_ref(), data, net, Some(model))
}

/// Read a state `.npz` and, when it records one, the model it was trained under (`None` for files
/// without the [`StateModel`] arrays, e.g. written by numpy; a file with only some of them is an error).
pub fn load_state_model(path: impl AsRef<Path>) -> Result<(Dataset, Network, Option<StateModel>)> {
    let path = path.as_ref();
    let npz = read_npz(path)?;
    let (data, net) = state_from(&npz)?;
    let present: Vec<&str> = MODEL_KEYS
        .iter()
        .copied()
        .filter(|k| npz.contains(k))
        .collect();
    if present.is_empty() {
        return Ok((data, net, None));
    }
    require(
        &npz,
        &MODEL_KEYS,
        "a state file that records its model needs all of activation, loss, reg, lambda (3,), q, scaling",
    )?;
    let activation: crate::Activation =
        name_from_codes(&npz, "activation", "tanh, sigmoid, softplus, relu")?.parse()?;
    let loss: crate::Loss = name_from_codes(&npz, "loss", "squared, logistic")?.parse()?;
    let scaling = name_from_codes(&npz, "scaling", "mean-field")?;
    if scaling != "mean-field" {
        return Err(CoreError::invalid(
            npz.what("scaling"),
            "mean-field (the only scaling nff trains in)",
            scaling,
        ));
    }
    let lam = npz.get("lambda")?;
    if lam.shape != [3] {
        return Err(npz.shape_error("lambda", "(3,): (lambda_A, lambda_W, lambda_v)", &lam.shape));
    }
    let [a, w, v] = [lam.data[0], lam.data[1], lam.data[2]];
    let q = npz.scalar("q")?;
    let kind = name_from_codes(&npz, "reg", "none, l2, group")?;
    let regularizer = match kind.as_str() {
        "none" => crate::Regularizer::None,
        "l2" if a == w && w == v => crate::Regularizer::L2 { lambda: a },
        "l2" => crate::Regularizer::L2Split { a, w, v },
        "group" if a == w && w == v => crate::Regularizer::GroupL1q { lambda: a, q },
        "group" => {
            return Err(CoreError::invalid(
                npz.what("lambda"),
                "three equal strengths for reg = group",
                format!("({a}, {w}, {v})"),
            ))
        }
        other => {
            return Err(CoreError::invalid(
                npz.what("reg"),
                "one of none, l2, group",
                other,
            ))
        }
    };
    regularizer
        .validate()
        .map_err(|e| CoreError::file(path, format!("recorded regularizer: {e}")))?;
    Ok((
        data,
        net,
        Some(StateModel {
            activation,
            loss,
            regularizer,
        }),
    ))
}

fn write_state(
    path: &Path,
    data: &Dataset,
    net: &Network,
    model: Option<&StateModel>,
) -> Result<()> {
    data.validate()?;
    let s = net.shape();
    if s.d != data.d() {
        return Err(CoreError::shape(
            "network to save with its data",
            format!("A with {} rows (one per column of X)", data.d()),
            format!("A with {} rows", s.d),
        ));
    }
    let m = s.m;
    let mut w = NpzWriter::create(path)?;
    w.add_matrix("X", data.x.as_ref())?;
    w.add("y", &[data.n()], &data.y)?;
    w.add_matrix("A", net.a())?;
    if s.depth > 1 {
        // Streamed in blocks of whole rows, transposed from column-major on the fly (no copy of W).
        let rows = (1 << 16) / m + 1;
        w.add_blocks(
            "W",
            &[s.n_w(), m, m],
            s.n_w() * m * m,
            rows * m,
            |start, buf| {
                // Blocks hold whole rows and may span two layers.
                let mut pos = 0;
                while pos < buf.len() {
                    let e = start + pos;
                    let (l, i0) = (e / (m * m), (e / m) % m);
                    let nrows = ((buf.len() - pos) / m).min(m - i0);
                    let out = &mut buf[pos..pos + nrows * m];
                    for (k, col) in net.as_slice()[s.w_range(l)].chunks_exact(m).enumerate() {
                        for (ii, &x) in col[i0..i0 + nrows].iter().enumerate() {
                            out[ii * m + k] = x;
                        }
                    }
                    pos += nrows * m;
                }
            },
        )?;
    }
    w.add("v", &[m], net.v())?;
    w.add_scalar("depth", s.depth as f64)?;
    w.add_scalar("resnet", if s.arch.is_resnet() { 1.0 } else { 0.0 })?;
    if let Some(model) = model {
        use crate::Regularizer as R;
        let (kind, lambda, q) = match model.regularizer {
            R::None => ("none", [0.0; 3], 1.0),
            R::L2 { lambda } => ("l2", [lambda; 3], 1.0),
            R::L2Split { a, w, v } => ("l2", [a, w, v], 1.0),
            R::GroupL1q { lambda, q } => ("group", [lambda; 3], q),
        };
        for (key, text) in [
            ("activation", model.activation.name()),
            ("loss", model.loss.name()),
            ("reg", kind),
            ("scaling", "mean-field"),
        ] {
            let codes = name_codes(text);
            w.add(key, &[codes.len()], &codes)?;
        }
        w.add("lambda", &[3], &lambda)?;
        w.add_scalar("q", q)?;
    }
    w.finish()
}

/// Read a state `.npz` (schema in the [module docs](self)) into its data and network.
///
/// `depth = 1` gives [`Arch::TwoLevel`]; otherwise `resnet` (0/1) selects [`Arch::Dnn`] or
/// [`Arch::ResNet`]. Every array is checked (presence, shape against `X` and `A`, finiteness) before
/// anything is built; errors name the file, the array, the expected and the found value.
pub fn load_state(path: impl AsRef<Path>) -> Result<(Dataset, Network)> {
    state_from(&read_npz(path)?)
}

fn state_from(npz: &Npz) -> Result<(Dataset, Network)> {
    require(npz, &["X", "y", "A", "v", "depth"], STATE_SCHEMA)?;

    let depth_value = npz.scalar("depth")?;
    if !(depth_value.is_finite()
        && depth_value >= 1.0
        && depth_value.fract() == 0.0
        && depth_value <= 1e6)
    {
        return Err(CoreError::invalid(
            npz.what("depth"),
            "a positive integer",
            depth_value,
        ));
    }
    let depth = depth_value as usize;
    let arch = if depth == 1 {
        if npz.contains("resnet") {
            resnet_flag(npz)?;
        }
        if let Some(w) = npz.arrays.get("W") {
            return Err(CoreError::invalid(
                npz.what("W"),
                "no W when depth = 1 (a two-level network has no middle layers)",
                format!("W of shape {}", fmt_shape(&w.shape)),
            ));
        }
        Arch::TwoLevel
    } else {
        require(npz, &["W", "resnet"], STATE_SCHEMA)?;
        if resnet_flag(npz)? {
            Arch::ResNet
        } else {
            Arch::Dnn
        }
    };

    let data = dataset_from(npz)?;
    let d = data.d();
    let a = npz.get("A")?;
    let m = match a.shape[..] {
        [rows, m] if rows == d && m >= 1 => m,
        _ => {
            return Err(npz.shape_error(
                "A",
                format!("({d}, m) with m >= 1: one row per column of X"),
                &a.shape,
            ))
        }
    };
    let v = npz.get("v")?;
    if v.shape != [m] {
        return Err(npz.shape_error(
            "v",
            format!("({m},): one output weight per column of A"),
            &v.shape,
        ));
    }
    if depth > 1 {
        let w = npz.get("W")?;
        if w.shape != [depth - 1, m, m] {
            return Err(npz.shape_error(
                "W",
                format!(
                    "{} = (depth - 1, m, m) with depth = {depth}, m = {m}",
                    fmt_shape(&[depth - 1, m, m])
                ),
                &w.shape,
            ));
        }
        npz.ensure_finite("W")?;
    }
    npz.ensure_finite("A")?;
    npz.ensure_finite("v")?;

    let mut net = Params::zeros(Shape::new(arch, d, m, depth)?);
    net.a_mut()
        .copy_from(MatRef::from_row_major_slice(&a.data, d, m));
    if depth > 1 {
        let w = &npz.get("W")?.data;
        for l in 0..depth - 1 {
            let block = &w[l * m * m..(l + 1) * m * m];
            net.w_mut(l)
                .copy_from(MatRef::from_row_major_slice(block, m, m));
        }
    }
    net.v_mut().copy_from_slice(&v.data);
    Ok((data, net))
}

/// The `resnet` scalar as a bool; errors unless it is 0 or 1.
fn resnet_flag(npz: &Npz) -> Result<bool> {
    let r = npz.scalar("resnet")?;
    if r == 0.0 || r == 1.0 {
        Ok(r == 1.0)
    } else {
        Err(CoreError::invalid(npz.what("resnet"), "0 or 1", r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_print_like_numpy() {
        assert_eq!(fmt_shape(&[]), "()");
        assert_eq!(fmt_shape(&[3]), "(3,)");
        assert_eq!(fmt_shape(&[2, 4, 5]), "(2, 4, 5)");
    }

    #[test]
    fn fortran_order_is_transposed() {
        // A 2×3 array [[0, 1, 2], [3, 4, 5]] stored column by column.
        let f = [0.0, 3.0, 1.0, 4.0, 2.0, 5.0];
        assert_eq!(fortran_to_c(&[2, 3], &f), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        // 2×2×2: C value = 4i + 2j + k stored at Fortran position i + 2j + 4k.
        let mut f3 = [0.0; 8];
        for i in 0..2 {
            for j in 0..2 {
                for k in 0..2 {
                    f3[i + 2 * j + 4 * k] = (4 * i + 2 * j + k) as f64;
                }
            }
        }
        let c: Vec<f64> = (0..8).map(|x| x as f64).collect();
        assert_eq!(fortran_to_c(&[2, 2, 2], &f3), c);
    }

    #[test]
    fn index_of_names_numpy_indices() {
        assert_eq!(index_of(5, &[2, 3]), "[1, 2]");
        assert_eq!(index_of(0, &[]), "[]");
        assert_eq!(index_of(7, &[2, 2, 2]), "[1, 1, 1]");
    }
}
