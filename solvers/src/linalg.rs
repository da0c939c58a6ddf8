//! Small dense linear-algebra helpers on top of faer (Newton systems, pseudo-inverses).
use faer::linalg::solvers::Solve;
use faer::{Mat, MatRef, Side};

/// Solve $Ax = b$ for a symmetric positive (semi)definite $A$ by Cholesky; if the factorization fails,
/// retry with a ridge $\delta\,\mathrm{tr}(A)/n$, $\delta = 10^{-14}, 10^{-12}, \dots$ Returns the solution and
/// the ridge used (0 if none), or `None` if even $\delta = 1$ fails (non-finite entries).
pub fn solve_spd(a: &Mat<f64>, b: &[f64]) -> Option<(Vec<f64>, f64)> {
    let n = a.nrows();
    let rhs = Mat::from_fn(n, 1, |i, _| b[i]);
    let trace = (0..n).map(|i| a[(i, i)].abs()).sum::<f64>() / n.max(1) as f64;
    let mut ridge = 0.0;
    for attempt in 0..8 {
        let mut m = a.clone();
        if attempt > 0 {
            ridge = trace.max(1e-300) * 10f64.powi(-16 + 2 * attempt);
            for i in 0..n {
                m[(i, i)] += ridge;
            }
        }
        if let Ok(llt) = m.llt(Side::Lower) {
            let x = llt.solve(&rhs);
            let v: Vec<f64> = (0..n).map(|i| x[(i, 0)]).collect();
            if v.iter().all(|t| t.is_finite()) {
                return Some((v, ridge));
            }
        }
    }
    None
}

/// The Moore–Penrose pseudo-inverse (by SVD; faer's default singular-value cutoff).
pub fn pinv(a: MatRef<'_, f64>) -> Option<Mat<f64>> {
    a.thin_svd().ok().map(|s| s.pseudoinverse())
}

/// $y = A x$ for a column-major $A$ (small, sequential).
pub fn matvec(a: MatRef<'_, f64>, x: &[f64], y: &mut [f64]) {
    debug_assert_eq!(a.ncols(), x.len());
    debug_assert_eq!(a.nrows(), y.len());
    y.fill(0.0);
    for (j, &xj) in x.iter().enumerate() {
        if xj != 0.0 {
            for (i, yi) in y.iter_mut().enumerate() {
                *yi += a[(i, j)] * xj;
            }
        }
    }
}

/// $y = A^\top x$ (small, sequential).
pub fn matvec_t(a: MatRef<'_, f64>, x: &[f64], y: &mut [f64]) {
    debug_assert_eq!(a.nrows(), x.len());
    debug_assert_eq!(a.ncols(), y.len());
    for (j, yj) in y.iter_mut().enumerate() {
        let mut acc = 0.0;
        for (i, &xi) in x.iter().enumerate() {
            acc += a[(i, j)] * xi;
        }
        *yj = acc;
    }
}
