//! Probability measures with finitely many atoms.
//!
//! - [`EmpiricalMeasure`]: weighted atoms in $\mathbb R^N$ — the law $p_\ell$ of a layer's features
//!   (math.md §3.2). A width-$m$ network gives the uniform measure $p_\ell = \frac1m\sum_j\delta_{\mathbf z_{\ell,j}}$;
//!   reweighting gives the repopulated densities $\rho_\ell$ of §4 on a finite candidate set.
//! - [`GridMeasure`]: a reference measure $\rho_0$ over low-dimensional parameters $\theta \in \mathbb R^d$
//!   (§4.1, §7: the two-level convex program on a grid, $d \le 2$ plus a bias coordinate).
//!
//! Both store probability weights: finite, non-negative, summing to one (checked to `1e-12` with a
//! compensated sum, so the check does not depend on the number of atoms).
use crate::error::{CoreError, Result};
use crate::rng::{normal, Rng};
use faer::linalg::matmul::matmul;
use faer::{Accum, Col, ColRef, Mat, MatMut, MatRef, Par, RowRef};
use rayon::prelude::*;

/// Tolerance on $|\sum_j w_j - 1|$ for probability weights.
pub const WEIGHT_SUM_TOL: f64 = 1e-12;

/// Neumaier's compensated sum: exact to a few ulps whatever the number of terms.
pub(crate) fn compensated_sum(values: impl IntoIterator<Item = f64>) -> f64 {
    let (mut s, mut c) = (0.0_f64, 0.0_f64);
    for x in values {
        let t = s + x;
        if s.abs() >= x.abs() {
            c += (s - t) + x;
        } else {
            c += (x - t) + s;
        }
        s = t;
    }
    s + c
}

/// Check that `w` has `len` finite, non-negative entries. Names the first bad entry.
fn check_nonnegative(what: &str, w: &[f64], len: usize) -> Result<()> {
    if w.len() != len {
        return Err(CoreError::shape(
            format!("weights of {what}"),
            format!("{len} weights (one per atom)"),
            format!("{} weights", w.len()),
        ));
    }
    for (i, &x) in w.iter().enumerate() {
        if !x.is_finite() || x < 0.0 {
            return Err(CoreError::invalid(
                format!("weight {i} of {what}"),
                "a finite non-negative number",
                x,
            ));
        }
    }
    Ok(())
}

/// Check that `w` is a probability vector of length `len`.
fn check_probability(what: &str, w: &[f64], len: usize) -> Result<()> {
    check_nonnegative(what, w, len)?;
    let sum = compensated_sum(w.iter().copied());
    if (sum - 1.0).abs() > WEIGHT_SUM_TOL {
        return Err(CoreError::invalid(
            format!("weights of {what}"),
            format!("a sum of 1 within {WEIGHT_SUM_TOL:e}"),
            format!("sum {sum}"),
        ));
    }
    Ok(())
}

/// `w / sum(w)` after checking `w` is finite, non-negative, with a positive sum.
fn normalized(what: &str, w: &[f64], len: usize) -> Result<Vec<f64>> {
    check_nonnegative(what, w, len)?;
    let sum = compensated_sum(w.iter().copied());
    if !(sum > 0.0 && sum.is_finite()) {
        return Err(CoreError::invalid(
            format!("weights of {what}"),
            "a positive finite total mass",
            format!("sum {sum}"),
        ));
    }
    Ok(w.iter().map(|x| x / sum).collect())
}

fn check_finite_mat(what: &str, m: MatRef<'_, f64>) -> Result<()> {
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            let x = m[(i, j)];
            if !x.is_finite() {
                return Err(CoreError::invalid(
                    what,
                    "finite values",
                    format!("{x} at ({i}, {j})"),
                ));
            }
        }
    }
    Ok(())
}

/// Weighted across-atom spread of the columns of `z`:
/// $\sqrt{\sum_k w_k\|\mathbf z_k - \bar{\mathbf z}\|^2 / N}$ with $\bar{\mathbf z} = \sum_k w_k\mathbf z_k$;
/// uniform weights $1/m$ when `w` is `None`.
pub(crate) fn weighted_spread(z: MatRef<'_, f64>, w: Option<&[f64]>) -> f64 {
    let (n, m) = (z.nrows(), z.ncols());
    if n == 0 || m == 0 {
        return 0.0;
    }
    let uniform = 1.0 / m as f64;
    let wk = |k: usize| w.map_or(uniform, |w| w[k]);
    let mut mean = vec![0.0; n];
    for k in 0..m {
        let c = wk(k);
        for (i, mi) in mean.iter_mut().enumerate() {
            *mi += c * z[(i, k)];
        }
    }
    let mut acc = 0.0;
    for k in 0..m {
        let mut sq = 0.0;
        for (i, mi) in mean.iter().enumerate() {
            let d = z[(i, k)] - mi;
            sq += d * d;
        }
        acc += wk(k) * sq;
    }
    (acc / n as f64).sqrt()
}

/// $\min_{j<k}\|\mathbf z_j - \mathbf z_k\|$ over the columns of `z`; $+\infty$ for fewer than two columns.
///
/// Computed directly from differences (not from a Gram matrix, whose cancellation would hide the
/// near-coincident particles this is meant to detect). $O(m^2N)$ work, parallel over $j$; the minimum
/// does not depend on the order of the reduction.
pub(crate) fn min_pairwise_distance_of(z: MatRef<'_, f64>) -> f64 {
    let (n, m) = (z.nrows(), z.ncols());
    if m < 2 {
        return f64::INFINITY;
    }
    // Copy to a contiguous column-major buffer so that the inner loop runs over slices.
    let mut buf = Vec::with_capacity(n * m);
    for k in 0..m {
        buf.extend((0..n).map(|i| z[(i, k)]));
    }
    let buf = &buf;
    let min_sq = (0..m - 1)
        .into_par_iter()
        .map(|j| {
            let zj = &buf[j * n..(j + 1) * n];
            let mut best = f64::INFINITY;
            for k in j + 1..m {
                let zk = &buf[k * n..(k + 1) * n];
                let d: f64 = zj.iter().zip(zk).map(|(a, b)| (a - b) * (a - b)).sum();
                best = best.min(d);
            }
            best
        })
        .reduce(|| f64::INFINITY, f64::min);
    min_sq.sqrt()
}

/// A probability measure with finitely many weighted atoms in $\mathbb R^N$:
/// $p = \sum_{j=1}^m w_j\,\delta_{\mathbf z_j}$, atoms stored one per column of an $N\times m$ matrix.
///
/// In the feature-space view (math.md §3.2) layer $\ell$ of a width-$m$ network is the uniform
/// measure on the columns of $Z_\ell$. Invariant: $m \ge 1$, finite atoms, weights finite,
/// non-negative, summing to 1 (within [`WEIGHT_SUM_TOL`]).
///
/// ```
/// use faer::Mat;
/// use nff_core::measure::EmpiricalMeasure;
/// let atoms = Mat::from_fn(2, 3, |i, j| (i + j) as f64);
/// let p = EmpiricalMeasure::uniform(atoms).unwrap();
/// let mean = p.mean();
/// assert!((mean[0] - 1.0).abs() < 1e-15 && (mean[1] - 2.0).abs() < 1e-15);
/// assert!((p.integrate(|z| z[0]) - 1.0).abs() < 1e-15);
/// ```
#[derive(Clone, Debug)]
pub struct EmpiricalMeasure {
    atoms: Mat<f64>,
    weights: Vec<f64>,
}

impl EmpiricalMeasure {
    fn check_atoms(atoms: MatRef<'_, f64>) -> Result<()> {
        if atoms.ncols() == 0 {
            return Err(CoreError::invalid(
                "empirical measure",
                "at least one atom",
                "m = 0",
            ));
        }
        if atoms.nrows() == 0 {
            return Err(CoreError::invalid(
                "atoms of an empirical measure",
                "dimension N >= 1",
                "N = 0",
            ));
        }
        check_finite_mat("atoms of an empirical measure", atoms)
    }

    /// The uniform measure $\frac1m\sum_j\delta_{\mathbf z_j}$ on the columns of `atoms` ($N\times m$).
    ///
    /// Errors if $m = 0$, $N = 0$ or an atom is not finite.
    pub fn uniform(atoms: Mat<f64>) -> Result<Self> {
        Self::check_atoms(atoms.as_ref())?;
        let m = atoms.ncols();
        Ok(Self {
            atoms,
            weights: vec![1.0 / m as f64; m],
        })
    }

    /// $\sum_j w_j\delta_{\mathbf z_j}$ with validated probability weights: one per column of `atoms`,
    /// finite, non-negative, summing to 1 within [`WEIGHT_SUM_TOL`]. The error names the bad value.
    pub fn new(atoms: Mat<f64>, weights: Vec<f64>) -> Result<Self> {
        Self::check_atoms(atoms.as_ref())?;
        check_probability("an empirical measure", &weights, atoms.ncols())?;
        Ok(Self { atoms, weights })
    }

    /// Dimension $N$ of the space the atoms live in.
    pub fn dim(&self) -> usize {
        self.atoms.nrows()
    }
    /// Number of atoms $m$.
    pub fn len(&self) -> usize {
        self.atoms.ncols()
    }
    /// Never true (a measure has at least one atom); for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The atoms, one per column ($N\times m$).
    pub fn atoms(&self) -> MatRef<'_, f64> {
        self.atoms.as_ref()
    }
    /// The atoms, mutably (moving atoms keeps the weights valid).
    pub fn atoms_mut(&mut self) -> MatMut<'_, f64> {
        self.atoms.as_mut()
    }
    /// Atom $j$.
    pub fn atom(&self, j: usize) -> ColRef<'_, f64> {
        self.atoms.col(j)
    }
    /// The probability weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }
    /// Consume into `(atoms, weights)`.
    pub fn into_parts(self) -> (Mat<f64>, Vec<f64>) {
        (self.atoms, self.weights)
    }
    /// Whether every weight is $1/m$ up to a relative `1e-12`.
    pub fn is_uniform(&self) -> bool {
        let m = self.len() as f64;
        self.weights.iter().all(|&w| (w * m - 1.0).abs() <= 1e-12)
    }

    /// $\int f\,dp = \sum_j w_j f(\mathbf z_j)$, summed in atom order.
    pub fn integrate<F: FnMut(ColRef<'_, f64>) -> f64>(&self, mut f: F) -> f64 {
        self.weights
            .iter()
            .enumerate()
            .map(|(j, &w)| w * f(self.atoms.col(j)))
            .sum()
    }

    /// The mean $\int\mathbf z\,dp = \sum_j w_j\mathbf z_j \in \mathbb R^N$.
    pub fn mean(&self) -> Col<f64> {
        let w = MatRef::from_column_major_slice(&self.weights, self.len(), 1);
        let mut out = Mat::<f64>::zeros(self.dim(), 1);
        matmul(
            out.as_mut(),
            Accum::Replace,
            self.atoms.as_ref(),
            w,
            1.0,
            Par::Seq,
        );
        Col::from_fn(self.dim(), |i| out[(i, 0)])
    }

    /// The push-forward $f_\# p = \sum_j w_j\delta_{f(\mathbf z_j)}$ (same weights, mapped atoms).
    ///
    /// Every image must have the same length $N' \ge 1$ and be finite; the error names the atom.
    pub fn push_forward<F: FnMut(ColRef<'_, f64>) -> Col<f64>>(&self, mut f: F) -> Result<Self> {
        let images: Vec<Col<f64>> = (0..self.len()).map(|j| f(self.atoms.col(j))).collect();
        let dim = images[0].nrows();
        if let Some((j, c)) = images.iter().enumerate().find(|(_, c)| c.nrows() != dim) {
            return Err(CoreError::shape(
                format!("image of atom {j} under a push-forward"),
                format!("length {dim} (the image of atom 0)"),
                format!("length {}", c.nrows()),
            ));
        }
        let atoms = Mat::from_fn(dim, images.len(), |i, j| images[j][i]);
        Self::check_atoms(atoms.as_ref())?;
        Ok(Self {
            atoms,
            weights: self.weights.clone(),
        })
    }

    /// Replace the weights by `new_weights / sum(new_weights)` (importance reweighting).
    ///
    /// `new_weights` needs one finite non-negative entry per atom and a positive sum; on error the
    /// measure is unchanged.
    pub fn reweight(&mut self, new_weights: &[f64]) -> Result<()> {
        self.weights = normalized("a reweighted measure", new_weights, self.len())?;
        Ok(())
    }

    /// Kish's effective sample size $(\sum_j w_j)^2/\sum_j w_j^2$: $m$ for uniform weights, 1 for a point mass.
    pub fn effective_sample_size(&self) -> f64 {
        let s = self.mass();
        s * s / self.weights.iter().map(|w| w * w).sum::<f64>()
    }

    /// Total mass $\sum_j w_j$ (1 up to rounding; a cheap sanity figure after edits).
    pub fn mass(&self) -> f64 {
        compensated_sum(self.weights.iter().copied())
    }

    /// Across-atom spread $\sqrt{\sum_k w_k\|\mathbf z_k - \bar{\mathbf z}\|^2/N}$ (root mean square per data
    /// point). For a uniform layer measure it is the degeneracy statistic of math.md §3.1.
    pub fn spread(&self) -> f64 {
        weighted_spread(self.atoms.as_ref(), Some(&self.weights))
    }

    /// Minimum distance between two distinct atoms (claim C20); $+\infty$ with one atom.
    pub fn min_pairwise_distance(&self) -> f64 {
        min_pairwise_distance_of(self.atoms.as_ref())
    }
}

/// A probability measure $\rho_0 = \sum_k w_k\delta_{\theta_k}$ on a low-dimensional parameter space
/// $\theta\in\mathbb R^d$: the reference measure of the two-level repopulation (math.md §4.1).
///
/// Points are the rows of a $K\times d$ matrix. Invariant: $K \ge 1$, finite points, probability weights.
///
/// ```
/// use nff_core::measure::GridMeasure;
/// // 5 × 5 grid on [-1, 1]², plus a bias coordinate equal to 1: points in ℝ³.
/// let rho0 = GridMeasure::uniform_grid(2, 1.0, 5, Some(1.0)).unwrap();
/// assert_eq!((rho0.len(), rho0.dim()), (25, 3));
/// assert!((rho0.integrate(|t| t[2]) - 1.0).abs() < 1e-14);
/// ```
#[derive(Clone, Debug)]
pub struct GridMeasure {
    points: Mat<f64>,
    weights: Vec<f64>,
}

impl GridMeasure {
    /// A validated measure: `points` is $K\times d$ with $K, d \ge 1$ and finite entries; `weights`
    /// are $K$ probability weights (finite, non-negative, sum 1 within [`WEIGHT_SUM_TOL`]).
    pub fn new(points: Mat<f64>, weights: Vec<f64>) -> Result<Self> {
        if points.nrows() == 0 {
            return Err(CoreError::invalid(
                "grid measure",
                "at least one point",
                "K = 0",
            ));
        }
        if points.ncols() == 0 {
            return Err(CoreError::invalid(
                "points of a grid measure",
                "dimension d >= 1",
                "d = 0",
            ));
        }
        check_finite_mat("points of a grid measure", points.as_ref())?;
        check_probability("a grid measure", &weights, points.nrows())?;
        Ok(Self { points, weights })
    }

    /// The tensor grid on $[-r, r]^d$ with `n_per_axis` equispaced nodes per axis (endpoints included;
    /// one node means the origin), the first coordinate varying fastest, plus an optional constant
    /// coordinate `bias` appended to every point (dimension $d+1$). Needs $d \in \{1, 2\}$, $r > 0$ finite.
    fn tensor_grid(d: usize, r: f64, n_per_axis: usize, bias: Option<f64>) -> Result<Mat<f64>> {
        if !(1..=2).contains(&d) {
            return Err(CoreError::invalid(
                "grid dimension d",
                "d = 1 or d = 2 (use gaussian_samples in higher dimension)",
                d,
            ));
        }
        if !(r.is_finite() && r > 0.0) {
            return Err(CoreError::invalid("grid half-width r", "a finite r > 0", r));
        }
        if n_per_axis == 0 {
            return Err(CoreError::invalid(
                "grid measure",
                "at least one point (n_per_axis >= 1)",
                "K = 0 (n_per_axis = 0)",
            ));
        }
        if let Some(b) = bias {
            if !b.is_finite() {
                return Err(CoreError::invalid(
                    "grid bias coordinate",
                    "a finite value",
                    b,
                ));
            }
        }
        let node = |i: usize| {
            if n_per_axis == 1 {
                0.0
            } else {
                -r + 2.0 * r * i as f64 / (n_per_axis - 1) as f64
            }
        };
        let k = n_per_axis.pow(d as u32);
        let cols = d + usize::from(bias.is_some());
        Ok(Mat::from_fn(k, cols, |p, c| {
            if c < d {
                node((p / n_per_axis.pow(c as u32)) % n_per_axis)
            } else {
                bias.unwrap_or(0.0)
            }
        }))
    }

    /// Uniform probability weights $1/K$ on the tensor grid of `n_per_axis`$^d$ nodes on $[-r, r]^d$,
    /// $d \le 2$, with an optional constant bias coordinate appended. Errors for $K = 0$, $d > 2$, bad $r$.
    pub fn uniform_grid(d: usize, r: f64, n_per_axis: usize, bias: Option<f64>) -> Result<Self> {
        let points = Self::tensor_grid(d, r, n_per_axis, bias)?;
        let k = points.nrows();
        Ok(Self {
            points,
            weights: vec![1.0 / k as f64; k],
        })
    }

    /// The same grid with Gaussian weights $w_k \propto \exp(-\|\theta_k\|^2/(2\sigma^2))$ over the grid
    /// coordinates (the bias coordinate is not weighted): a quadrature of $\mathcal N(0,\sigma^2 I_d)$
    /// truncated to $[-r, r]^d$. Needs $\sigma > 0$ finite.
    pub fn gaussian_grid(
        d: usize,
        r: f64,
        n_per_axis: usize,
        sigma: f64,
        bias: Option<f64>,
    ) -> Result<Self> {
        if !(sigma.is_finite() && sigma > 0.0) {
            return Err(CoreError::invalid(
                "Gaussian grid scale sigma",
                "a finite sigma > 0",
                sigma,
            ));
        }
        let points = Self::tensor_grid(d, r, n_per_axis, bias)?;
        let raw: Vec<f64> = (0..points.nrows())
            .map(|k| {
                let sq: f64 = (0..d).map(|c| points[(k, c)] * points[(k, c)]).sum();
                (-sq / (2.0 * sigma * sigma)).exp()
            })
            .collect();
        let weights = normalized("a Gaussian grid", &raw, points.nrows())?;
        Ok(Self { points, weights })
    }

    /// `k` i.i.d. samples $\theta_k\sim\mathcal N(0,\sigma^2 I_d)$ with uniform weights $1/k$ (any $d$),
    /// plus an optional constant bias coordinate. Samples are drawn point by point from `rng`, so the
    /// first $k$ points agree for any larger $k'$ drawn from the same stream.
    pub fn gaussian_samples(
        d: usize,
        k: usize,
        sigma: f64,
        bias: Option<f64>,
        rng: &mut Rng,
    ) -> Result<Self> {
        if d == 0 {
            return Err(CoreError::invalid("parameter dimension d", "d >= 1", d));
        }
        if k == 0 {
            return Err(CoreError::invalid(
                "grid measure",
                "at least one point",
                "K = 0",
            ));
        }
        if !(sigma.is_finite() && sigma >= 0.0) {
            return Err(CoreError::invalid(
                "Gaussian sample scale sigma",
                "a finite sigma >= 0",
                sigma,
            ));
        }
        if let Some(b) = bias {
            if !b.is_finite() {
                return Err(CoreError::invalid(
                    "grid bias coordinate",
                    "a finite value",
                    b,
                ));
            }
        }
        let cols = d + usize::from(bias.is_some());
        let mut points = Mat::zeros(k, cols);
        for p in 0..k {
            for c in 0..d {
                points[(p, c)] = sigma * normal(rng);
            }
            if let Some(b) = bias {
                points[(p, d)] = b;
            }
        }
        Ok(Self {
            points,
            weights: vec![1.0 / k as f64; k],
        })
    }

    /// Number of points $K$.
    pub fn len(&self) -> usize {
        self.points.nrows()
    }
    /// Never true (a grid measure has at least one point).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Dimension of the points (including the bias coordinate if any).
    pub fn dim(&self) -> usize {
        self.points.ncols()
    }
    /// The points, one per row ($K\times d$).
    pub fn points(&self) -> MatRef<'_, f64> {
        self.points.as_ref()
    }
    /// Point $k$.
    pub fn point(&self, k: usize) -> RowRef<'_, f64> {
        self.points.row(k)
    }
    /// The probability weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }
    /// Total mass (1 up to rounding).
    pub fn mass(&self) -> f64 {
        compensated_sum(self.weights.iter().copied())
    }
    /// Kish's effective sample size $1/\sum_k w_k^2$.
    pub fn effective_sample_size(&self) -> f64 {
        let s = self.mass();
        s * s / self.weights.iter().map(|w| w * w).sum::<f64>()
    }
    /// $\int f\,d\rho_0 = \sum_k w_k f(\theta_k)$, summed in point order.
    pub fn integrate<F: FnMut(RowRef<'_, f64>) -> f64>(&self, mut f: F) -> f64 {
        self.weights
            .iter()
            .enumerate()
            .map(|(k, &w)| w * f(self.points.row(k)))
            .sum()
    }
    /// Replace the weights by `new_weights / sum(new_weights)`; on error the measure is unchanged.
    pub fn reweight(&mut self, new_weights: &[f64]) -> Result<()> {
        self.weights = normalized("a reweighted grid measure", new_weights, self.len())?;
        Ok(())
    }

    /// The first-layer feature law: the push-forward of $\rho_0$ by $\theta\mapsto X\theta$ (math.md §3.2),
    /// an [`EmpiricalMeasure`] on $\mathbb R^N$ with atoms $X\theta_k$ and the same weights.
    /// `x` is $N\times d$ with $d$ = [`GridMeasure::dim`] (bias column included).
    pub fn features(&self, x: MatRef<'_, f64>) -> Result<EmpiricalMeasure> {
        if x.ncols() != self.dim() {
            return Err(CoreError::shape(
                "inputs X for grid features",
                format!("{} columns (the grid's dimension)", self.dim()),
                format!("{} columns", x.ncols()),
            ));
        }
        let mut atoms = Mat::zeros(x.nrows(), self.len());
        matmul(
            atoms.as_mut(),
            Accum::Replace,
            x,
            self.points.transpose(),
            1.0,
            Par::Seq,
        );
        EmpiricalMeasure::check_atoms(atoms.as_ref())?;
        Ok(EmpiricalMeasure {
            atoms,
            weights: self.weights.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::rng;

    fn atoms(n: usize, m: usize) -> Mat<f64> {
        Mat::from_fn(n, m, |i, j| (i as f64 + 1.0) * (j as f64) - 0.5 * i as f64)
    }

    #[test]
    fn uniform_integrates_means() {
        let p = EmpiricalMeasure::uniform(atoms(3, 4)).unwrap();
        assert_eq!((p.dim(), p.len()), (3, 4));
        assert!(p.is_uniform());
        let mean = p.mean();
        for i in 0..3 {
            let direct: f64 = (0..4).map(|j| p.atoms()[(i, j)]).sum::<f64>() / 4.0;
            assert!((mean[i] - direct).abs() < 1e-14);
            assert!((p.integrate(|z| z[i]) - direct).abs() < 1e-14);
        }
        assert!((p.mass() - 1.0).abs() < 1e-15);
        assert!((p.effective_sample_size() - 4.0).abs() < 1e-12);
    }

    #[test]
    fn validation_names_the_bad_value() {
        let e = EmpiricalMeasure::new(atoms(2, 3), vec![0.5, 1.0, -0.5])
            .unwrap_err()
            .to_string();
        assert!(e.contains("weight 2") && e.contains("-0.5"), "{e}");
        let e = EmpiricalMeasure::new(atoms(2, 3), vec![0.3, 0.3, 0.3])
            .unwrap_err()
            .to_string();
        assert!(e.contains("sum 0.8999"), "{e}");
        let e = EmpiricalMeasure::new(atoms(2, 3), vec![0.5, f64::NAN, 0.5])
            .unwrap_err()
            .to_string();
        assert!(e.contains("NaN"), "{e}");
        let e = EmpiricalMeasure::new(atoms(2, 3), vec![0.5, 0.5])
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 weights") && e.contains("2 weights"), "{e}");
        let e = EmpiricalMeasure::uniform(Mat::zeros(2, 0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("m = 0"), "{e}");
        let mut bad = atoms(2, 2);
        bad[(1, 1)] = f64::INFINITY;
        let e = EmpiricalMeasure::uniform(bad).unwrap_err().to_string();
        assert!(e.contains("inf at (1, 1)"), "{e}");
    }

    #[test]
    fn many_uniform_weights_pass_validation() {
        // 1/m summed m times drifts by ~m ulps in naive summation; the compensated check must accept it.
        let m = 100_003;
        let p = EmpiricalMeasure::new(Mat::zeros(1, m), vec![1.0 / m as f64; m]);
        assert!(p.is_ok());
    }

    #[test]
    fn reweight_normalizes_and_keeps_state_on_error() {
        let mut p = EmpiricalMeasure::uniform(atoms(2, 4)).unwrap();
        p.reweight(&[1.0, 1.0, 2.0, 0.0]).unwrap();
        assert_eq!(p.weights(), &[0.25, 0.25, 0.5, 0.0]);
        assert!((p.effective_sample_size() - 1.0 / (0.0625 * 2.0 + 0.25)).abs() < 1e-12);
        let e = p.reweight(&[0.0; 4]).unwrap_err().to_string();
        assert!(e.contains("positive"), "{e}");
        let e = p.reweight(&[1.0, -2.0, 0.0, 0.0]).unwrap_err().to_string();
        assert!(e.contains("-2"), "{e}");
        assert_eq!(p.weights(), &[0.25, 0.25, 0.5, 0.0]);
        assert!(!p.is_uniform());
        // A point mass has effective sample size 1.
        p.reweight(&[0.0, 3.0, 0.0, 0.0]).unwrap();
        assert!((p.effective_sample_size() - 1.0).abs() < 1e-15);
    }

    #[test]
    fn push_forward_maps_atoms_and_keeps_weights() {
        let p = EmpiricalMeasure::new(atoms(2, 3), vec![0.2, 0.3, 0.5]).unwrap();
        let q = p
            .push_forward(|z| Col::from_fn(3, |i| z[i % 2] * 2.0 + i as f64))
            .unwrap();
        assert_eq!((q.dim(), q.len()), (3, 3));
        assert_eq!(q.weights(), p.weights());
        let lhs = q.integrate(|z| z[2]);
        let rhs = p.integrate(|z| 2.0 * z[0] + 2.0);
        assert!((lhs - rhs).abs() < 1e-14);
        let mut calls = 0;
        let e = p
            .push_forward(|_| {
                calls += 1;
                Col::zeros(if calls == 2 { 1 } else { 2 })
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("atom 1"), "{e}");
    }

    #[test]
    fn spread_and_min_distance() {
        // Atoms 0, 1, 3 on the line: mean 4/3, distances 1, 2, 3.
        let p = EmpiricalMeasure::uniform(Mat::from_fn(1, 3, |_, j| [0.0, 1.0, 3.0][j])).unwrap();
        let mean = 4.0 / 3.0;
        let var = ((0.0 - mean) * (0.0 - mean)
            + (1.0 - mean) * (1.0 - mean)
            + (3.0 - mean) * (3.0 - mean))
            / 3.0;
        assert!((p.spread() - f64::sqrt(var)).abs() < 1e-14);
        assert!((p.min_pairwise_distance() - 1.0).abs() < 1e-15);
        let single = EmpiricalMeasure::uniform(Mat::zeros(2, 1)).unwrap();
        assert_eq!(single.spread(), 0.0);
        assert_eq!(single.min_pairwise_distance(), f64::INFINITY);
    }

    #[test]
    fn grid_builders() {
        let g = GridMeasure::uniform_grid(1, 2.0, 5, None).unwrap();
        let nodes: Vec<f64> = (0..5).map(|k| g.point(k)[0]).collect();
        assert_eq!(nodes, vec![-2.0, -1.0, 0.0, 1.0, 2.0]);
        let g = GridMeasure::uniform_grid(2, 1.0, 3, Some(0.5)).unwrap();
        assert_eq!((g.len(), g.dim()), (9, 3));
        assert_eq!(
            (g.point(1)[0], g.point(1)[1], g.point(1)[2]),
            (0.0, -1.0, 0.5)
        );
        assert_eq!((g.point(3)[0], g.point(3)[1]), (-1.0, 0.0));
        assert!(g.integrate(|t| t[0]).abs() < 1e-15);
        assert!((g.mass() - 1.0).abs() < 1e-15);

        let gg = GridMeasure::gaussian_grid(2, 3.0, 31, 1.0, None).unwrap();
        // Second moment of each coordinate ≈ σ² = 1 (the truncation at 3σ costs ~3%).
        let m2 = gg.integrate(|t| t[0] * t[0]);
        assert!((m2 - 1.0).abs() < 0.05, "{m2}");
        assert!(gg.effective_sample_size() < gg.len() as f64);

        let mut r = rng(3, "test/grid");
        let gs = GridMeasure::gaussian_samples(4, 2000, 2.0, Some(1.0), &mut r).unwrap();
        assert_eq!((gs.len(), gs.dim()), (2000, 5));
        let var = gs.integrate(|t| t[3] * t[3]);
        assert!((var - 4.0).abs() < 0.5, "{var}");
        let mut r2 = rng(3, "test/grid");
        let prefix = GridMeasure::gaussian_samples(4, 10, 2.0, Some(1.0), &mut r2).unwrap();
        assert_eq!(prefix.point(9)[2], gs.point(9)[2]);
    }

    #[test]
    fn grid_validation() {
        let e = GridMeasure::uniform_grid(2, 1.0, 0, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("K = 0"), "{e}");
        let e = GridMeasure::uniform_grid(3, 1.0, 4, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("found 3"), "{e}");
        let e = GridMeasure::uniform_grid(1, -1.0, 4, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("-1"), "{e}");
        let e = GridMeasure::new(Mat::zeros(0, 2), vec![])
            .unwrap_err()
            .to_string();
        assert!(e.contains("K = 0"), "{e}");
        let e = GridMeasure::new(Mat::zeros(2, 1), vec![0.7, 0.7])
            .unwrap_err()
            .to_string();
        assert!(e.contains("sum 1.4"), "{e}");
        let e = GridMeasure::gaussian_grid(1, 1.0, 3, 0.0, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("sigma"), "{e}");
        let mut r = rng(0, "x");
        assert!(GridMeasure::gaussian_samples(2, 0, 1.0, None, &mut r).is_err());
    }

    #[test]
    fn grid_features_push_forward() {
        let g = GridMeasure::uniform_grid(1, 1.0, 3, Some(1.0)).unwrap();
        let x = Mat::from_fn(4, 2, |i, j| if j == 0 { i as f64 } else { 1.0 });
        let p = g.features(x.as_ref()).unwrap();
        assert_eq!((p.dim(), p.len()), (4, 3));
        // θ = (-1, 1): z_i = -i + 1.
        assert_eq!(p.atom(0)[3], -2.0);
        assert!(g.features(Mat::<f64>::zeros(4, 3).as_ref()).is_err());
    }
}
