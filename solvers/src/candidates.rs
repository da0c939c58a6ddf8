//! Finite candidate sets $\{\theta_k\}_{k=1}^K$ and reference weights $\rho_0$ for the two-level program.
//!
//! A candidate $\theta\in\mathbb R^{d}$ acts on a data row $x\in\mathbb R^d$ (a bias is a constant column of
//! $X$, math.md §1, so "d ≤ 2 plus a bias" means grids in dimension ≤ 3). These generators are kept small
//! and local to nff-solvers; nff-core's `measure` module (a `GridMeasure` is planned there) may replace them.
use crate::error::{Result, SolverError};
use faer::Mat;
use nff_core::rng;

/// A regular grid on $[-R, R]^{\rm dim}$ with `per_axis` points per axis, one candidate per row
/// ($K = \text{per\_axis}^{\rm dim}$ rows, the first coordinate varying fastest). `dim` must be 1, 2 or 3.
pub fn grid(dim: usize, per_axis: usize, radius: f64) -> Result<Mat<f64>> {
    if !(1..=3).contains(&dim) {
        return Err(SolverError::invalid(
            "grid dimension",
            "1, 2 or 3 (d <= 2 plus a bias column)",
            dim,
        ));
    }
    if per_axis < 2 {
        return Err(SolverError::invalid(
            "grid points per axis",
            "at least 2",
            per_axis,
        ));
    }
    if !(radius.is_finite() && radius > 0.0) {
        return Err(SolverError::invalid(
            "grid radius",
            "a finite value > 0",
            radius,
        ));
    }
    let k = per_axis.pow(dim as u32);
    let step = 2.0 * radius / (per_axis - 1) as f64;
    Ok(Mat::from_fn(k, dim, |i, c| {
        let idx = (i / per_axis.pow(c as u32)) % per_axis;
        -radius + step * idx as f64
    }))
}

/// `k` candidates with i.i.d. $\mathcal N(0, \sigma^2)$ coordinates, drawn from stream `"candidates"` of `seed`.
pub fn gaussian(k: usize, dim: usize, sigma: f64, seed: u64) -> Result<Mat<f64>> {
    if k == 0 || dim == 0 {
        return Err(SolverError::invalid(
            "Gaussian candidate set",
            "k >= 1 candidates of dimension >= 1",
            format!("k = {k}, dim = {dim}"),
        ));
    }
    if !(sigma.is_finite() && sigma > 0.0) {
        return Err(SolverError::invalid(
            "candidate scale sigma",
            "a finite value > 0",
            sigma,
        ));
    }
    let mut r = rng::rng(seed, "candidates");
    // Row by row, so that the first rows do not depend on k.
    let mut m = Mat::zeros(k, dim);
    for i in 0..k {
        for c in 0..dim {
            m[(i, c)] = sigma * rng::normal(&mut r);
        }
    }
    Ok(m)
}

/// The uniform probability vector of length `k`.
pub fn uniform_weights(k: usize) -> Vec<f64> {
    vec![1.0 / k as f64; k]
}

/// Gaussian reference weights $\rho_0(\theta_k)\propto\exp(-\|\theta_k\|^2/2\sigma^2)$, normalized to sum to 1
/// (the natural $\rho_0$ on a grid).
pub fn gaussian_weights(theta: &Mat<f64>, sigma: f64) -> Vec<f64> {
    let mut w: Vec<f64> = (0..theta.nrows())
        .map(|i| {
            let sq: f64 = (0..theta.ncols()).map(|c| theta[(i, c)].powi(2)).sum();
            -sq / (2.0 * sigma * sigma)
        })
        .collect();
    let m = w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    for x in w.iter_mut() {
        *x = (*x - m).exp();
    }
    let s: f64 = w.iter().sum();
    for x in w.iter_mut() {
        *x /= s;
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_covers_the_box() {
        let g = grid(2, 3, 1.0).unwrap();
        assert_eq!((g.nrows(), g.ncols()), (9, 2));
        assert_eq!((g[(0, 0)], g[(0, 1)]), (-1.0, -1.0));
        assert_eq!((g[(1, 0)], g[(1, 1)]), (0.0, -1.0));
        assert_eq!((g[(8, 0)], g[(8, 1)]), (1.0, 1.0));
        assert!(grid(4, 3, 1.0).is_err());
        assert!(grid(2, 3, f64::NAN).is_err());
        let w = gaussian_weights(&g, 1.0);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert!(w[4] > w[0]);
    }
}
