//! Datasets $\{(x^i, y^i)\}_{i=1}^N$ stacked as $X \in \mathbb R^{N\times d}$, $y \in \mathbb R^N$ (math.md §1).
//!
//! # Where data come from
//! A [`DataSpec`] is what the command line's `--data` argument names:
//! - `builtin:NAME` — a generated [`BuiltinDataset`] (`sine`, `teacher`, `spirals`, `parity`) with
//!   $N$ points in dimension $d$ drawn from the seeded stream `rng(seed, "data")`, or one of the real
//!   data sets compiled into nff (`breast-cancer`, `diabetes`; see [`real`] and `core/data/README.md`);
//! - a path ending in `.npz` — arrays `X` $(N, d)$ and `y` $(N,)$ (a state file works too: its other
//!   arrays are ignored), see [`crate::io`];
//! - a path ending in `.csv` — one point per line, inputs then the target in the last column, see
//!   [`crate::io::load_data_csv`].
//!
//! [`Dataset::load`] reads any of them. With `bias = true` a **constant-1 column is appended** to $X$,
//! which then has $d+1$ columns: the first-layer weights $A$ must have $d+1$ rows, and the last row
//! acts as the bias of the first layer (math.md §1: "a bias is a constant column of $X$").
//!
//! # Built-in generators
//! Inputs are drawn point by point (all coordinates of point 1, then of point 2, ...), so the first
//! $N'$ points of a dataset with $N > N'$ points equal the dataset with $N'$ points (same seed and $d$).
//!
//! | name | inputs | targets |
//! |---|---|---|
//! | `sine` | $x \sim \mathcal N(0, I_d/d)$ | $y = \sin(3x_1) + \frac12$ |
//! | `teacher` | $x \sim \mathcal N(0, I_d/d)$ | predictions of a random ResNet: tanh, width 64, depth 3, $A, W_\ell, v$ entries i.i.d. $\mathcal N(0,1)$, mean-field scaling of math.md §2 |
//! | `spirals` | two interleaved spirals in $(x_1, x_2)$, radius $\le 1$; coordinates $3..d$ are $\mathcal N(0, 0.05^2)$ noise; needs $d \ge 2$ | $\pm1$: $+1$ on one arm, $-1$ on the other, alternating |
//! | `parity` | $x$ uniform on $\{-1,+1\}^d/\sqrt d$ | $y = \prod_k \operatorname{sign}(x_k) \in \{-1,+1\}$ |
//!
//! The teacher's weights come from their own stream `rng(seed, "data-teacher")`, so the teacher
//! function depends on (seed, $d$) only, not on $N$: a larger dataset of the same seed extends a smaller one.
//! In mean-field scaling the teacher's outputs are $O(m^{-1/2})$, i.e. of size about $0.1$.
use crate::activation::Activation;
use crate::error::{CoreError, Result};
use crate::loss::Loss;
use crate::network::{Arch, Params, Problem};
use crate::regularizer::Regularizer;
use crate::rng::{normal, normal_mat, normal_vec, rng, Rng};
use faer::Mat;
use rand::Rng as _;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

mod real;

/// A dataset: inputs $X$ (one row per point) and scalar targets $y$.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Inputs, $N \times d$.
    pub x: Mat<f64>,
    /// Targets, length $N$.
    pub y: Vec<f64>,
}

impl Dataset {
    /// A validated dataset: $N \ge 1$, $d \ge 1$, `y.len() == N`, all entries finite.
    pub fn new(x: Mat<f64>, y: Vec<f64>) -> crate::Result<Self> {
        let d = Self { x, y };
        d.validate()?;
        Ok(d)
    }

    /// Number of points $N$.
    pub fn n(&self) -> usize {
        self.y.len()
    }

    /// Input dimension $d$.
    pub fn d(&self) -> usize {
        self.x.ncols()
    }

    /// Check shapes and finiteness; the error names what was expected and what was found.
    pub fn validate(&self) -> crate::Result<()> {
        use crate::error::{ensure_finite, CoreError};
        if self.y.is_empty() {
            return Err(CoreError::invalid("dataset", "at least one point", "N = 0"));
        }
        if self.x.ncols() == 0 {
            return Err(CoreError::invalid(
                "dataset inputs X",
                "at least one column",
                "d = 0",
            ));
        }
        if self.x.nrows() != self.y.len() {
            return Err(CoreError::shape(
                "dataset",
                format!("X with {} rows (one per target)", self.y.len()),
                format!("X with {} rows", self.x.nrows()),
            ));
        }
        ensure_finite("dataset targets y", self.y.iter().copied())?;
        ensure_finite(
            "dataset inputs X",
            (0..self.x.ncols())
                .flat_map(|j| (0..self.x.nrows()).map(move |i| (i, j)))
                .map(|(i, j)| self.x[(i, j)]),
        )
    }

    /// The same data with a constant-1 column appended to $X$ ($d \to d+1$): the bias of the first layer.
    pub fn with_bias(self) -> Self {
        let (n, d) = (self.x.nrows(), self.x.ncols());
        let x = Mat::from_fn(n, d + 1, |i, j| if j < d { self.x[(i, j)] } else { 1.0 });
        Self { x, y: self.y }
    }

    /// A built-in dataset with `n` points in dimension `d` (see the [module docs](self) for the laws).
    ///
    /// Same `(kind, n, d, seed)` → same data, bit for bit.
    pub fn builtin(kind: BuiltinDataset, n: usize, d: usize, seed: u64) -> Result<Self> {
        kind.generate(n, d, seed)
    }

    /// Load the data a [`DataSpec`] names.
    ///
    /// `n`, `d` and `seed` apply to built-ins only (a file has its own $N$ and $d$). With `bias = true`
    /// a constant-1 column is appended to $X$ in every case, so $X$ has $d+1$ columns.
    pub fn load(spec: &DataSpec, n: usize, d: usize, seed: u64, bias: bool) -> Result<Self> {
        let data = match spec {
            DataSpec::Builtin(kind) => kind.generate(n, d, seed)?,
            DataSpec::Npz(path) => crate::io::load_data_npz(path)?,
            DataSpec::Csv(path) => crate::io::load_data_csv(path)?,
        };
        Ok(if bias { data.with_bias() } else { data })
    }
}

/// Width $m$ of the random ResNet behind the `teacher` dataset.
pub const TEACHER_WIDTH: usize = 64;
/// Depth $L$ of the random ResNet behind the `teacher` dataset.
pub const TEACHER_DEPTH: usize = 3;
/// Standard deviation of the extra coordinates ($x_3..x_d$) of the `spirals` dataset.
pub const SPIRALS_NOISE: f64 = 0.05;

/// The built-in datasets, selected by name: the generators `sine`, `teacher`, `spirals`, `parity` and
/// the real data sets `breast-cancer`, `diabetes` (module [`real`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BuiltinDataset {
    /// $x \sim \mathcal N(0, I_d/d)$, $y = \sin(3x_1) + \frac12$.
    Sine,
    /// $x \sim \mathcal N(0, I_d/d)$, $y$ = predictions of a random wide tanh ResNet
    /// (width [`TEACHER_WIDTH`], depth [`TEACHER_DEPTH`], all weights $\mathcal N(0,1)$).
    Teacher,
    /// Two interleaved spirals in $(x_1, x_2)$, labels $\pm1$; needs $d \ge 2$.
    Spirals,
    /// $x$ uniform on $\{-1,+1\}^d/\sqrt d$, $y = \prod_k \operatorname{sign}(x_k)$.
    Parity,
    /// Breast Cancer Wisconsin (Diagnostic): 569 points, $d = 30$, $y = +1$ malignant, $-1$ benign.
    BreastCancer,
    /// The diabetes data of Efron et al. (2004): 442 points, $d = 10$ raw inputs, $y$ in 25..346.
    Diabetes,
}

impl BuiltinDataset {
    /// All built-ins, in the order of their names.
    pub const ALL: [BuiltinDataset; 6] = [
        Self::Sine,
        Self::Teacher,
        Self::Spirals,
        Self::Parity,
        Self::BreastCancer,
        Self::Diabetes,
    ];

    /// The name used on the command line (`builtin:NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sine => "sine",
            Self::Teacher => "teacher",
            Self::Spirals => "spirals",
            Self::Parity => "parity",
            Self::BreastCancer => "breast-cancer",
            Self::Diabetes => "diabetes",
        }
    }

    /// For a real data set, its full size $(N, d)$; `None` for a generator (any $N$, $d$).
    pub fn full_size(self) -> Option<(usize, usize)> {
        real::full_size(self)
    }

    /// Whether this is a real data set (fixed points, no seed) rather than a generator.
    pub fn is_real(self) -> bool {
        self.full_size().is_some()
    }

    /// Whether the targets are labels in $\{-1, +1\}$ (suitable for the logistic loss).
    pub fn has_pm1_labels(self) -> bool {
        matches!(self, Self::Spirals | Self::Parity | Self::BreastCancer)
    }

    /// The smallest input dimension this generator accepts.
    pub fn min_dim(self) -> usize {
        match self {
            Self::Spirals => 2,
            _ => 1,
        }
    }

    /// Generate `n` points in dimension `d` from `rng(seed, "data")` (see the [module docs](self)).
    ///
    /// A real data set ignores `seed`, takes its first `n` points (`n` at most its size) and needs `d`
    /// equal to its dimension; anything else is an error naming the data set's size.
    pub fn generate(self, n: usize, d: usize, seed: u64) -> Result<Dataset> {
        if self.is_real() {
            return real::load(self, n, d);
        }
        if n == 0 {
            return Err(CoreError::invalid(
                format!("number of points N of builtin:{}", self.name()),
                "N >= 1",
                "N = 0",
            ));
        }
        let min_d = self.min_dim();
        if d < min_d {
            return Err(CoreError::invalid(
                format!("input dimension d of builtin:{}", self.name()),
                format!("d >= {min_d}"),
                format!("d = {d}"),
            ));
        }
        let mut r = rng(seed, "data");
        let (x, y) = match self {
            Self::Sine => {
                let x = gaussian_inputs(&mut r, n, d);
                let y = (0..n).map(|i| (3.0 * x[(i, 0)]).sin() + 0.5).collect();
                (x, y)
            }
            Self::Teacher => {
                let x = gaussian_inputs(&mut r, n, d);
                let y = teacher_targets(&x, seed)?;
                (x, y)
            }
            Self::Spirals => spirals(&mut r, n, d),
            Self::Parity => parity(&mut r, n, d),
            Self::BreastCancer | Self::Diabetes => unreachable!("handled above"),
        };
        Dataset::new(x, y)
    }
}

impl fmt::Display for BuiltinDataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BuiltinDataset {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| CoreError::Unknown {
                kind: "built-in dataset",
                name: s.into(),
                expected: builtin_names(),
            })
    }
}

/// "sine, teacher, spirals, parity, breast-cancer, diabetes".
pub fn builtin_names() -> String {
    BuiltinDataset::ALL
        .iter()
        .map(|b| b.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rows drawn one point at a time: $x^i \sim \mathcal N(0, I_d/d)$.
fn gaussian_inputs(r: &mut Rng, n: usize, d: usize) -> Mat<f64> {
    let sigma = 1.0 / (d as f64).sqrt();
    let mut x = Mat::zeros(n, d);
    for i in 0..n {
        for k in 0..d {
            x[(i, k)] = sigma * normal(r);
        }
    }
    x
}

/// $\hat y$ of the random teacher ResNet (weights from `rng(seed, "data-teacher")`) on the rows of `x`.
fn teacher_targets(x: &Mat<f64>, seed: u64) -> Result<Vec<f64>> {
    let (d, m) = (x.ncols(), TEACHER_WIDTH);
    let mut r = rng(seed, "data-teacher");
    let a = normal_mat(&mut r, d, m, 1.0);
    let w: Vec<Mat<f64>> = (1..TEACHER_DEPTH)
        .map(|_| normal_mat(&mut r, m, m, 1.0))
        .collect();
    let v = normal_vec(&mut r, m, 1.0);
    let w_refs: Vec<_> = w.iter().map(|wl| wl.as_ref()).collect();
    let net = Params::from_blocks(Arch::ResNet, a.as_ref(), &w_refs, &v)?;
    let problem = Problem::new(
        Dataset::new(x.clone(), vec![0.0; x.nrows()])?,
        Activation::Tanh,
        Loss::Squared,
        Regularizer::None,
    )?;
    Ok(problem.predict(&net))
}

/// Two interleaved spirals: arm $c \in \{0, 1\}$ (point $i$ has $c = i \bmod 2$, label $+1$ for $c = 0$,
/// $-1$ for $c = 1$) at $t \sim U[0,1)$: radius $0.1 + 0.9t$, angle $3\pi t + c\pi$ (1.5 turns per arm).
fn spirals(r: &mut Rng, n: usize, d: usize) -> (Mat<f64>, Vec<f64>) {
    let mut x = Mat::zeros(n, d);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let arm = (i % 2) as f64;
        let t: f64 = r.random();
        let radius = 0.1 + 0.9 * t;
        let angle = 3.0 * std::f64::consts::PI * t + arm * std::f64::consts::PI;
        x[(i, 0)] = radius * angle.cos();
        x[(i, 1)] = radius * angle.sin();
        for k in 2..d {
            x[(i, k)] = SPIRALS_NOISE * normal(r);
        }
        y.push(if i % 2 == 0 { 1.0 } else { -1.0 });
    }
    (x, y)
}

/// Sign patterns: $x^i_k = \pm 1/\sqrt d$ with fair signs, $y^i = \prod_k \operatorname{sign}(x^i_k)$.
fn parity(r: &mut Rng, n: usize, d: usize) -> (Mat<f64>, Vec<f64>) {
    let scale = 1.0 / (d as f64).sqrt();
    let mut x = Mat::zeros(n, d);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let mut label = 1.0;
        for k in 0..d {
            if r.random::<bool>() {
                x[(i, k)] = scale;
            } else {
                x[(i, k)] = -scale;
                label = -label;
            }
        }
        y.push(label);
    }
    (x, y)
}

/// What the command line's `--data` names: a built-in generator or a data file.
///
/// Parsed from `builtin:NAME`, or a path ending in `.npz` or `.csv` (extension case-insensitive);
/// anything else is an error. [`fmt::Display`] gives back the same text, and serde (de)serializes
/// it as that string, so configs can store it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSpec {
    /// `builtin:NAME`.
    Builtin(BuiltinDataset),
    /// A `.npz` file with `X` $(N, d)$ and `y` $(N,)$.
    Npz(PathBuf),
    /// A `.csv` file, inputs then target on each line.
    Csv(PathBuf),
}

impl DataSpec {
    /// The file this spec names, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Builtin(_) => None,
            Self::Npz(p) | Self::Csv(p) => Some(p),
        }
    }
}

impl FromStr for DataSpec {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self> {
        if let Some(name) = s.strip_prefix("builtin:") {
            return Ok(Self::Builtin(name.parse()?));
        }
        let ext = Path::new(s)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let has_stem = Path::new(s).file_stem().is_some_and(|st| !st.is_empty());
        match ext.as_deref() {
            Some("npz") if has_stem => Ok(Self::Npz(PathBuf::from(s))),
            Some("csv") if has_stem => Ok(Self::Csv(PathBuf::from(s))),
            _ => {
                let hint = if BuiltinDataset::from_str(s).is_ok() {
                    format!(" (did you mean 'builtin:{s}'?)")
                } else {
                    String::new()
                };
                Err(CoreError::invalid(
                    "data specification",
                    format!(
                        "'builtin:NAME' with NAME one of {}, or a path ending in .npz or .csv",
                        builtin_names()
                    ),
                    format!("'{s}'{hint}"),
                ))
            }
        }
    }
}

impl fmt::Display for DataSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Builtin(b) => write!(f, "builtin:{b}"),
            Self::Npz(p) | Self::Csv(p) => write!(f, "{}", p.display()),
        }
    }
}

impl serde::Serialize for DataSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for DataSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_lists_valid_names() {
        for b in BuiltinDataset::ALL {
            assert_eq!(b.name().parse::<BuiltinDataset>().unwrap(), b);
        }
        let e = "circles".parse::<BuiltinDataset>().unwrap_err().to_string();
        assert!(e.contains("circles"), "{e}");
        assert!(
            e.contains("sine, teacher, spirals, parity, breast-cancer, diabetes"),
            "{e}"
        );
    }

    #[test]
    fn data_spec_parses_and_displays() {
        for s in [
            "builtin:sine",
            "builtin:parity",
            "a/b.npz",
            "x.CSV",
            "d.csv",
        ] {
            let spec: DataSpec = s.parse().unwrap();
            assert_eq!(spec.to_string(), s);
        }
        assert!(matches!(
            "x.NPZ".parse::<DataSpec>().unwrap(),
            DataSpec::Npz(_)
        ));
        let e = "builtin:nope".parse::<DataSpec>().unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains("spirals"), "{e}");
        for bad in ["data.txt", "sine", "", ".npz", "dir/"] {
            let e = bad.parse::<DataSpec>().unwrap_err().to_string();
            assert!(e.contains(".npz or .csv"), "{bad}: {e}");
            assert!(e.contains(&format!("'{bad}'")), "{bad}: {e}");
        }
        let e = "sine".parse::<DataSpec>().unwrap_err().to_string();
        assert!(e.contains("did you mean 'builtin:sine'"), "{e}");
    }

    #[test]
    fn bias_appends_a_constant_column() {
        let data = Dataset::builtin(BuiltinDataset::Sine, 5, 3, 1).unwrap();
        let b = data.clone().with_bias();
        assert_eq!((b.n(), b.d()), (5, 4));
        for i in 0..5 {
            assert_eq!(b.x[(i, 3)], 1.0);
            for k in 0..3 {
                assert_eq!(b.x[(i, k)], data.x[(i, k)]);
            }
        }
    }

    #[test]
    fn generators_reject_bad_sizes() {
        let e = Dataset::builtin(BuiltinDataset::Spirals, 4, 1, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("d >= 2") && e.contains("d = 1"), "{e}");
        let e = Dataset::builtin(BuiltinDataset::Sine, 0, 2, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("N >= 1") && e.contains("N = 0"), "{e}");
    }

    #[test]
    fn real_data_sets_load_with_their_sizes_and_labels() {
        let bc = Dataset::builtin(BuiltinDataset::BreastCancer, 569, 30, 0).unwrap();
        assert_eq!((bc.n(), bc.d()), (569, 30));
        assert_eq!(bc.y.iter().filter(|&&y| y == 1.0).count(), 212);
        assert_eq!(bc.y.iter().filter(|&&y| y == -1.0).count(), 357);
        // First line of the file: 17.99,10.38,...,0.1189,0 (scikit-learn's 0 = malignant).
        assert_eq!((bc.x[(0, 0)], bc.x[(0, 29)], bc.y[0]), (17.99, 0.1189, 1.0));
        let dia = Dataset::builtin(BuiltinDataset::Diabetes, 442, 10, 7).unwrap();
        assert_eq!((dia.n(), dia.d()), (442, 10));
        assert_eq!(
            (dia.x[(0, 0)], dia.x[(0, 9)], dia.y[0]),
            (59.0, 87.0, 151.0)
        );
        let lo = dia.y.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = dia.y.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!((lo, hi), (25.0, 346.0));
        // --n takes the first points; the seed does not matter.
        let head = Dataset::builtin(BuiltinDataset::Diabetes, 5, 10, 1).unwrap();
        assert_eq!(head.y, dia.y[..5].to_vec());
        assert!(BuiltinDataset::BreastCancer.has_pm1_labels());
        assert!(!BuiltinDataset::Diabetes.has_pm1_labels());
    }

    #[test]
    fn real_data_sets_reject_other_sizes() {
        let e = Dataset::builtin(BuiltinDataset::Diabetes, 5000, 10, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("N <= 442") && e.contains("N = 5000"), "{e}");
        let e = Dataset::builtin(BuiltinDataset::BreastCancer, 10, 3, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("d = 30") && e.contains("d = 3"), "{e}");
    }
}
