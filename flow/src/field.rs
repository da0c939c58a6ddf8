//! Vector fields $\dot y = f(t, y)$ on a flat state, and the figures a recorder reads from them.
//!
//! The integrators of [`crate::integrator`] only see the [`VectorField`] trait: a dimension, an
//! evaluation `f(t, y) → dy` into a caller-owned buffer, and a counter. Network flows
//! ([`WeightFlow`](crate::WeightFlow), [`FeatureFlow`](crate::FeatureFlow)) additionally measure
//! velocities in the metric of the scaled gradient flow and report [`Diagnostics`] for the recorder.
use crate::error::{FlowError, Result};
use faer::diag::Diag;
use faer::linalg::svd::{self, ComputeSvdVectors};
use faer::{MatRef, Par};

/// The right-hand side of an ODE $\dot y = f(t, y)$ on a flat state $y \in \mathbb R^{\rm dim}$.
///
/// `eval` takes `&mut self` so that a field can keep its workspaces and evaluate without allocating.
/// It is infallible: a non-finite result is detected by the integrator, which then ends the run.
pub trait VectorField {
    /// The dimension of the state.
    fn dim(&self) -> usize;
    /// Write $f(t, y)$ into `dy` (both of length [`VectorField::dim`]).
    fn eval(&mut self, t: f64, y: &[f64], dy: &mut [f64]);
    /// How many times [`VectorField::eval`] has run.
    fn evaluations(&self) -> u64;
    /// The squared norm in which stationarity is measured, applied to a velocity $\dot y = f(t, y)$.
    ///
    /// Plain ODEs: $\|\dot y\|^2$. Network flows: the scaled norm $\|\dot\theta\|^2_{\rm scaled}$ of the
    /// parameter part, which is the dissipation rate $-dJ/dt$ (math.md §2, energy identity).
    fn velocity_sq_norm(&self, dy: &[f64]) -> f64 {
        dy.iter().map(|x| x * x).sum()
    }
    /// Figures of merit at the state `y` (objective, residual, the optimality bound, drift) for the
    /// recorder; `None` for fields that are not networks. May evaluate the network (not counted).
    fn diagnostics(&mut self, _t: f64, _y: &[f64]) -> Result<Option<Diagnostics>> {
        Ok(None)
    }
}

/// What a network flow reports at a recorded step (all on the training data).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Diagnostics {
    /// The objective $J = \mathcal R + \Omega$.
    pub objective: f64,
    /// The risk $\mathcal R(\hat{\mathbf y})$.
    pub risk: f64,
    /// The residual bound of math.md §5; see [`ResidualBound`].
    #[serde(flatten)]
    pub bound: ResidualBound,
    /// Consistency drift of the Lagrangian flow (only [`FeatureFlow`](crate::FeatureFlow)):
    /// $\max_\ell \|Z_\ell^{\rm int} - Z_\ell(\theta)\|_F / \|Z_\ell(\theta)\|_F$.
    pub drift: Option<f64>,
}

/// The global-optimality mechanism of math.md §5, measured at one state.
///
/// With $H = h(Z_L) \in \mathbb R^{N\times m}$ and $N \le m$, $HH^\top \succeq \sigma_{\min}(H)^2 I_N$, hence
/// $\|H^\top\mathbf r\| \ge \sigma_{\min}(H)\,\|\mathbf r\|$. In the normalization $\sigma_{\min}(H/\sqrt m) = \sigma_{\min}(H)/\sqrt m$
/// that stays $O(1)$ as $m$ grows, the inequality checked is
/// $$\|\mathbf r\| \;\le\; \frac{\|H^\top\mathbf r\|}{\sqrt m\;\sigma_{\min}(H/\sqrt m)} .$$
/// Since $\dot v = -H^\top\mathbf r - \lambda_v v$, at an unregularized stationary point $H^\top\mathbf r = 0$ and, with
/// $\sigma_{\min}$ bounded away from 0, $\mathbf r = 0$: a global minimum.
///
/// (math.md writes the bound as $\|H^\top\mathbf r\|/\sigma_{\min}(H/\sqrt m)$, which is weaker by the factor $\sqrt m$.)
/// If $N > m$, $H^\top$ has a kernel and no such bound exists: `sigma_min` is 0 and `bound` is `None`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResidualBound {
    /// $\|\mathbf r\|$.
    pub residual_norm: f64,
    /// $\|H^\top\mathbf r\|$.
    pub htr_norm: f64,
    /// $\sigma_{\min}(H/\sqrt m)$, the smallest of the $N$ singular values (0 when $N > m$).
    pub sigma_min: f64,
    /// $\|H^\top\mathbf r\| / (\sqrt m\,\sigma_{\min}(H/\sqrt m))$; `None` when $\sigma_{\min} = 0$.
    pub bound: Option<f64>,
    /// Whether $\|\mathbf r\| \le$ `bound` $\cdot(1 + 10^{-8})$ (the slack absorbs rounding in the SVD and
    /// the products); `true` when there is no bound to check.
    pub bound_holds: bool,
}

impl ResidualBound {
    /// Measure the bound for $H$ ($N\times m$, column-major view) and the residual $\mathbf r$ ($N$).
    ///
    /// $\|H^\top\mathbf r\|$ is accumulated column by column in index order; the singular values come from
    /// faer's SVD of the $N\times m$ matrix $H/\sqrt m$, run sequentially (`par` is accepted for the
    /// caller's symmetry but not used: the result must not depend on the thread count).
    pub fn measure(h: MatRef<'_, f64>, r: &[f64], par: Par) -> Result<Self> {
        let (n, m) = (h.nrows(), h.ncols());
        if r.len() != n {
            return Err(FlowError::shape(
                "residual",
                format!("{n} entries (rows of H)"),
                r.len(),
            ));
        }
        let residual_norm = r.iter().map(|x| x * x).sum::<f64>().sqrt();
        let mut htr_sq = 0.0;
        for k in 0..m {
            let col = h.col(k);
            let mut dot = 0.0;
            for (i, &ri) in r.iter().enumerate() {
                dot += col[i] * ri;
            }
            htr_sq += dot * dot;
        }
        let htr_norm = htr_sq.sqrt();
        let sigma_min = if n > m || n == 0 {
            0.0
        } else {
            let scaled = h * faer::Scale(1.0 / (m as f64).sqrt());
            // Sequential whatever `par`: faer's parallel SVD rounds differently with the thread count,
            // and the recorded trajectory must not depend on it (the N × m SVD is cheap next to a step).
            let _ = par;
            let sv = singular_values(scaled.as_ref(), Par::Seq)?;
            sv.iter().copied().fold(f64::INFINITY, f64::min).max(0.0)
        };
        let (bound, bound_holds) = if sigma_min > 0.0 {
            let b = htr_norm / ((m as f64).sqrt() * sigma_min);
            (Some(b), residual_norm <= b * (1.0 + 1e-8))
        } else {
            (None, true)
        };
        Ok(Self {
            residual_norm,
            htr_norm,
            sigma_min,
            bound,
            bound_holds,
        })
    }
}

/// Singular values of `a` with an explicit `par` (faer's `MatRef::singular_values` uses the global setting).
fn singular_values(a: MatRef<'_, f64>, par: Par) -> Result<Vec<f64>> {
    let (nr, nc) = (a.nrows(), a.ncols());
    let mut s = Diag::<f64>::zeros(nr.min(nc));
    let req = svd::svd_scratch::<f64>(
        nr,
        nc,
        ComputeSvdVectors::No,
        ComputeSvdVectors::No,
        par,
        Default::default(),
    );
    let mut buf = faer::dyn_stack::MemBuffer::new(req);
    svd::svd(
        a,
        s.as_mut(),
        None,
        None,
        par,
        faer::dyn_stack::MemStack::new(&mut buf),
        Default::default(),
    )
    .map_err(|e| FlowError::Numerical {
        what: "singular values of H/sqrt(m)".into(),
        message: format!("{e:?}"),
    })?;
    Ok(s.column_vector().iter().copied().collect())
}

/// A linear field $\dot y = M y$ with a constant $n\times n$ matrix $M$ (column-major): the test problem
/// of the integrator conformance suite, whose exact flow is $e^{tM}y_0$.
#[derive(Clone, Debug)]
pub struct LinearField {
    n: usize,
    m: Vec<f64>,
    evaluations: u64,
}

impl LinearField {
    /// $\dot y = My$ for a column-major $n\times n$ matrix `m`; errors unless `m.len() == n²` and finite.
    pub fn new(n: usize, m: Vec<f64>) -> Result<Self> {
        if m.len() != n * n || n == 0 {
            return Err(FlowError::shape(
                "linear field matrix",
                format!("{n}x{n} = {} entries, n >= 1", n * n),
                m.len(),
            ));
        }
        if let Some(x) = m.iter().find(|x| !x.is_finite()) {
            return Err(FlowError::invalid(
                "linear field matrix",
                "finite entries",
                x,
            ));
        }
        Ok(Self {
            n,
            m,
            evaluations: 0,
        })
    }
}

impl VectorField for LinearField {
    fn dim(&self) -> usize {
        self.n
    }
    fn eval(&mut self, _t: f64, y: &[f64], dy: &mut [f64]) {
        self.evaluations += 1;
        dy.fill(0.0);
        for (j, &yj) in y.iter().enumerate() {
            for (i, d) in dy.iter_mut().enumerate() {
                *d += self.m[i + j * self.n] * yj;
            }
        }
    }
    fn evaluations(&self) -> u64 {
        self.evaluations
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::Mat;

    #[test]
    fn residual_bound_holds_and_is_tight_on_a_singular_vector() {
        // H = sqrt(m) * [I_2 | 0] scaled: singular values of H/sqrt(m) are (2, 0.5).
        let m = 4;
        let mut h = Mat::<f64>::zeros(2, m);
        h[(0, 0)] = 2.0 * 2.0;
        h[(1, 1)] = 0.5 * 2.0;
        let r = [0.0, 3.0];
        let b = ResidualBound::measure(h.as_ref(), &r, Par::Seq).unwrap();
        assert!((b.sigma_min - 0.5).abs() < 1e-14);
        assert!((b.bound.unwrap() - 3.0).abs() < 1e-13, "{b:?}");
        assert!(b.bound_holds);
        // N > m: no bound.
        let h = Mat::<f64>::zeros(3, 2);
        let b = ResidualBound::measure(h.as_ref(), &[1.0, 0.0, 0.0], Par::Seq).unwrap();
        assert_eq!(b.bound, None);
        assert!(b.bound_holds);
        assert!(ResidualBound::measure(h.as_ref(), &[1.0], Par::Seq).is_err());
    }

    #[test]
    fn linear_field_rejects_bad_matrices() {
        assert!(LinearField::new(2, vec![0.0; 3]).is_err());
        assert!(LinearField::new(1, vec![f64::NAN]).is_err());
        let mut f = LinearField::new(2, vec![0.0, 1.0, -1.0, 0.0]).unwrap();
        let mut dy = [0.0; 2];
        f.eval(0.0, &[1.0, 0.0], &mut dy);
        assert_eq!(dy, [0.0, 1.0]);
        assert_eq!(f.evaluations(), 1);
    }
}
