//! The optimality certificate of trained two-level networks (math.md §4.1, claims C10, C24).
//!
//! # Scaling conventions \[derived\]
//! A width-$m$ two-level network $f(x) = \frac1m\sum_jv_jh(a_j^\top x)$ is the empirical mean-field measure
//! $\mu = \frac1m\sum_j\delta_{(a_j,v_j)}$, and its objective $J = \mathcal R + \frac{\lambda_A}{2m}\|A\|^2 + \frac{\lambda_v}{2m}\|v\|^2$
//! (`Regularizer::L2Split { a: λ_A, v: λ_v }`; `L2 { λ }` has both equal) is
//! $F(\mu) = \mathcal R + \int(\lambda_1r_u + \lambda_2r_\theta)\,d\mu$ with $r_u = u^2/2$, $r_\theta = \|\theta\|^2/2$ and
//! $$\lambda_1 = \lambda_v,\qquad\lambda_2 = \lambda_A .$$
//! The residual is nff-core's $\mathbf r$, $r^i = \phi'(\hat y^i, y^i)/N$ (no factor $m$: $\hat y$ already averages over units),
//! and $s(\theta) = \sum_ir^ih(\theta^\top x^i)$; the scaled velocity of $v_j$ is $-(s(a_j) + \lambda_1v_j)$, so at a
//! stationary point $v_j = -s(a_j)/\lambda_1$.
//!
//! For `GroupL1q { λ, q }` (q > 1) the output penalty is $\lambda|u|^q$ instead of $\lambda_1u^2/2$ and $\lambda_2 = \lambda$.
//!
//! # The certificate
//! With the *gain* $\gamma(\theta) = -\min_u[s(\theta)u + \lambda_1r_u(u)]$ — $s^2/2\lambda_1$ for the quadratic penalty,
//! $(q-1)\lambda(|s|/\lambda q)^{q/(q-1)}$ for $\lambda|u|^q$ — a global minimizer satisfies
//! $$\beta(\theta) := \gamma(\theta) - \lambda_2 r_\theta(\theta) \le c\ \ \forall\theta,\qquad = c\ \text{on the support}.$$
//! (It is the dual-feasibility/complementarity condition of the convex program of [`crate::two_level`],
//! with $b_k = \beta(\theta_k)$.) The report gives the spread of $\beta$ over the particles (0 at an optimum) and the
//! largest excess of $\beta$ on fresh samples over the particles' maximum (0 at an optimum).
use crate::error::{ensure_finite, Result, SolverError};
use faer::MatRef;
use nff_core::{Activation, Dataset, Loss, Network, Problem, Regularizer};
use serde::Serialize;

/// The output-weight penalty of a two-level objective.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum OutputPenalty {
    /// $\lambda_1u^2/2$.
    Quadratic {
        /// $\lambda_1 > 0$.
        lambda1: f64,
    },
    /// $\lambda|u|^q$, $q > 1$.
    Power {
        /// $\lambda > 0$.
        lambda: f64,
        /// $q > 1$.
        q: f64,
    },
}

impl OutputPenalty {
    /// $\gamma = -\min_u[su + \text{penalty}(u)]$.
    pub fn gain(&self, s: f64) -> f64 {
        match *self {
            Self::Quadratic { lambda1 } => s * s / (2.0 * lambda1),
            Self::Power { lambda, q } => {
                (q - 1.0) * lambda * (s.abs() / (lambda * q)).powf(q / (q - 1.0))
            }
        }
    }
    /// $\partial_u$ penalty.
    pub fn deriv(&self, u: f64) -> f64 {
        match *self {
            Self::Quadratic { lambda1 } => lambda1 * u,
            Self::Power { lambda, q } => lambda * q * u.abs().powf(q - 1.0) * u.signum(),
        }
    }
    fn validate(&self) -> Result<()> {
        let ok = match *self {
            Self::Quadratic { lambda1 } => lambda1.is_finite() && lambda1 > 0.0,
            Self::Power { lambda, q } => {
                lambda.is_finite() && lambda > 0.0 && q.is_finite() && q > 1.0
            }
        };
        if ok {
            Ok(())
        } else {
            Err(SolverError::invalid(
                "output-weight penalty",
                "a strength > 0 (and q > 1): the certificate needs a strictly convex penalty",
                format!("{self:?}"),
            ))
        }
    }
}

/// The certificate of a two-level measure.
#[derive(Clone, Debug, Serialize)]
pub struct CertificateReport {
    /// The output-weight penalty used.
    pub penalty: OutputPenalty,
    /// $\lambda_2$.
    pub lambda2: f64,
    /// $c = \max$ of $\beta$ over the particles.
    pub c: f64,
    /// $\min$ of $\beta$ over the particles.
    pub support_min: f64,
    /// $\max - \min$ of $\beta$ over the particles (0 at an optimum).
    pub support_spread: f64,
    /// $\max(0, \max_{\rm fresh}\beta - c)$ (0 at an optimum).
    pub max_violation: f64,
    /// A scale for the above: $\max$ over particles of $\gamma + \lambda_2r_\theta$ (≥ 0).
    pub scale: f64,
    /// `support_spread / scale`.
    pub relative_spread: f64,
    /// `max_violation / scale`.
    pub relative_violation: f64,
    /// $\max_j|s(\theta_j) + \text{penalty}'(u_j)|$: output-weight stationarity of the particles.
    pub output_stationarity: f64,
    /// $\beta$ at the particles.
    pub particle_values: Vec<f64>,
    /// $\beta$ at the fresh samples.
    pub fresh_values: Vec<f64>,
}

/// The certificate of a trained width-$m$ two-level network (`L2`, `L2Split` or `GroupL1q` with $q>1$),
/// tested on the rows of `fresh` ($K\times d$).
pub fn two_level_certificate(
    problem: &Problem,
    net: &Network,
    fresh: MatRef<'_, f64>,
) -> Result<CertificateReport> {
    problem.check_network(net)?;
    let s = net.shape();
    if s.depth != 1 {
        return Err(SolverError::invalid(
            "network depth",
            "a two-level network (depth 1)",
            s.depth,
        ));
    }
    let (penalty, lambda2) = match problem.reg {
        Regularizer::L2 { lambda } => (OutputPenalty::Quadratic { lambda1: lambda }, lambda),
        Regularizer::L2Split { a, v, .. } => (OutputPenalty::Quadratic { lambda1: v }, a),
        Regularizer::GroupL1q { lambda, q } => (OutputPenalty::Power { lambda, q }, lambda),
        Regularizer::None => {
            return Err(SolverError::invalid(
                "regularizer",
                "an output-weight penalty (L2, L2Split or GroupL1q with q > 1)",
                "None",
            ))
        }
    };
    let theta = net.a().transpose().to_owned();
    let masses = vec![1.0 / s.m as f64; s.m];
    measure_certificate(
        &problem.data,
        problem.activation,
        problem.loss,
        penalty,
        lambda2,
        theta.as_ref(),
        &masses,
        net.v(),
        fresh,
    )
}

/// The certificate of a weighted two-level measure $\sum_j m_j\delta_{(\theta_j, u_j)}$ (particles as rows of
/// `theta`, nonnegative masses), e.g. the solution of the convex program (`theta` = its support, `masses`
/// = $\rho$, `u` = $\bar u$).
#[allow(clippy::too_many_arguments)]
pub fn measure_certificate(
    data: &Dataset,
    activation: Activation,
    loss: Loss,
    penalty: OutputPenalty,
    lambda2: f64,
    theta: MatRef<'_, f64>,
    masses: &[f64],
    u: &[f64],
    fresh: MatRef<'_, f64>,
) -> Result<CertificateReport> {
    data.validate()?;
    penalty.validate()?;
    crate::error::ensure_nonneg("lambda2", lambda2)?;
    let (n, d) = (data.n(), data.d());
    let m = theta.nrows();
    if m == 0 || masses.len() != m || u.len() != m || theta.ncols() != d || fresh.ncols() != d {
        return Err(SolverError::shape(
            "two-level measure",
            format!("m >= 1 particles of dimension {d}, masses and u of length m, fresh samples of dimension {d}"),
            format!(
                "theta ({}, {}), masses {}, u {}, fresh ({}, {})",
                m,
                theta.ncols(),
                masses.len(),
                u.len(),
                fresh.nrows(),
                fresh.ncols()
            ),
        ));
    }
    ensure_finite("masses", masses.iter().copied())?;
    ensure_finite("output weights u", u.iter().copied())?;
    let feat = |th: MatRef<'_, f64>, k: usize, i: usize| -> f64 {
        activation.value((0..d).map(|c| data.x[(i, c)] * th[(k, c)]).sum())
    };
    let mut yhat = vec![0.0; n];
    for j in 0..m {
        for (i, y) in yhat.iter_mut().enumerate() {
            *y += masses[j] * u[j] * feat(theta, j, i);
        }
    }
    let r = loss.residual(&yhat, &data.y);
    let beta_of = |th: MatRef<'_, f64>, k: usize| -> (f64, f64, f64) {
        let s: f64 = (0..n).map(|i| r[i] * feat(th, k, i)).sum();
        let cost = lambda2 * 0.5 * (0..d).map(|c| th[(k, c)].powi(2)).sum::<f64>();
        let g = penalty.gain(s);
        (g - cost, g + cost, s)
    };
    let mut particle_values = Vec::with_capacity(m);
    let mut scale: f64 = 0.0;
    let mut output_stationarity: f64 = 0.0;
    for j in 0..m {
        let (b, sc, s) = beta_of(theta, j);
        particle_values.push(b);
        scale = scale.max(sc);
        output_stationarity = output_stationarity.max((s + penalty.deriv(u[j])).abs());
    }
    let fresh_values: Vec<f64> = (0..fresh.nrows()).map(|k| beta_of(fresh, k).0).collect();
    let c = particle_values
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let support_min = particle_values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min);
    let fmax = fresh_values
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let max_violation = (fmax - c).max(0.0);
    let sc = scale.max(f64::MIN_POSITIVE);
    Ok(CertificateReport {
        penalty,
        lambda2,
        c,
        support_min,
        support_spread: c - support_min,
        max_violation,
        scale,
        relative_spread: (c - support_min) / sc,
        relative_violation: max_violation / sc,
        output_stationarity,
        particle_values,
        fresh_values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candidates;
    use crate::testutil::{random_net, sine_data, train};
    use crate::two_level::{TwoLevelConfig, TwoLevelOptions, TwoLevelProgram};
    use faer::Mat;
    use nff_core::{Arch, Shape};

    #[test]
    fn the_convex_optimum_passes_the_certificate_and_a_random_network_fails_it() {
        let data = sine_data(8, 1, 3, false);
        let theta = candidates::grid(2, 11, 3.0).unwrap();
        let rho0 = candidates::uniform_weights(theta.nrows());
        let cfg = TwoLevelConfig {
            lambda1: 0.05,
            lambda2: 0.02,
            tau: 0.0,
        };
        let prog = TwoLevelProgram::new(
            &data,
            Activation::Tanh,
            Loss::Squared,
            theta.as_ref(),
            &rho0,
            cfg,
        )
        .unwrap();
        let sol = prog.solve(&TwoLevelOptions::default()).unwrap();
        let rmax = sol.rho.iter().copied().fold(0.0, f64::max);
        let supp: Vec<usize> = (0..sol.rho.len())
            .filter(|&k| sol.rho[k] > 1e-6 * rmax)
            .collect();
        let th = Mat::from_fn(supp.len(), 2, |i, c| theta[(supp[i], c)]);
        let masses: Vec<f64> = supp.iter().map(|&k| sol.rho[k]).collect();
        let u: Vec<f64> = supp.iter().map(|&k| sol.u_bar[k]).collect();
        let rep = measure_certificate(
            &data,
            Activation::Tanh,
            Loss::Squared,
            OutputPenalty::Quadratic { lambda1: 0.05 },
            0.02,
            th.as_ref(),
            &masses,
            &u,
            theta.as_ref(),
        )
        .unwrap();
        eprintln!(
            "convex optimum: spread {:.2e} violation {:.2e} stationarity {:.2e}",
            rep.relative_spread, rep.relative_violation, rep.output_stationarity
        );
        assert!(
            rep.relative_spread < 1e-6 && rep.relative_violation < 1e-6,
            "{rep:?}"
        );
        assert!(rep.output_stationarity < 1e-6);
        // A random (untrained) network is far from certified.
        let problem = Problem::new(
            data,
            Activation::Tanh,
            Loss::Squared,
            Regularizer::L2Split {
                a: 0.02,
                w: 0.0,
                v: 0.05,
            },
        )
        .unwrap();
        let net = random_net(Shape::new(Arch::TwoLevel, 2, 10, 1).unwrap(), 1.0, 1);
        let rep = two_level_certificate(&problem, &net, theta.as_ref()).unwrap();
        assert!(
            rep.relative_spread > 1e-2 || rep.relative_violation > 1e-2,
            "{rep:?}"
        );
    }

    #[test]
    fn trained_network_certificate_is_reported_with_the_paper_scalings() {
        let data = sine_data(8, 1, 3, false);
        let problem = Problem::new(
            data,
            Activation::Tanh,
            Loss::Squared,
            Regularizer::L2Split {
                a: 0.02,
                w: 0.0,
                v: 0.05,
            },
        )
        .unwrap();
        let mut net = random_net(Shape::new(Arch::TwoLevel, 2, 20, 1).unwrap(), 1.0, 2);
        train(&problem, &mut net, 0.1, 4000);
        let fresh = candidates::gaussian(200, 2, 1.5, 9).unwrap();
        let rep = two_level_certificate(&problem, &net, fresh.as_ref()).unwrap();
        eprintln!(
            "GD network: spread {:.2e} violation {:.2e} stationarity {:.2e}",
            rep.relative_spread, rep.relative_violation, rep.output_stationarity
        );
        // v_j = -s(a_j)/λ1 at a stationary point: the output stationarity is the scaled velocity of v.
        assert!(rep.output_stationarity < 1e-3, "{rep:?}");
        assert_eq!(rep.particle_values.len(), 20);
        assert_eq!(rep.fresh_values.len(), 200);
    }

    #[test]
    fn certificate_input_errors() {
        let data = sine_data(5, 1, 3, false);
        let problem = Problem::new(
            data.clone(),
            Activation::Tanh,
            Loss::Squared,
            Regularizer::None,
        )
        .unwrap();
        let net = random_net(Shape::new(Arch::TwoLevel, 2, 4, 1).unwrap(), 1.0, 2);
        let fresh = candidates::gaussian(5, 2, 1.0, 1).unwrap();
        assert!(two_level_certificate(&problem, &net, fresh.as_ref())
            .unwrap_err()
            .to_string()
            .contains("penalty"));
        let problem = Problem::new(
            data.clone(),
            Activation::Tanh,
            Loss::Squared,
            Regularizer::GroupL1q {
                lambda: 0.1,
                q: 1.0,
            },
        )
        .unwrap();
        assert!(two_level_certificate(&problem, &net, fresh.as_ref())
            .unwrap_err()
            .to_string()
            .contains("q > 1"));
        let deep = random_net(Shape::new(Arch::Dnn, 2, 4, 2).unwrap(), 1.0, 2);
        let problem = Problem::new(
            data,
            Activation::Tanh,
            Loss::Squared,
            Regularizer::L2 { lambda: 0.1 },
        )
        .unwrap();
        assert!(two_level_certificate(&problem, &deep, fresh.as_ref())
            .unwrap_err()
            .to_string()
            .contains("depth"));
        let bad = candidates::gaussian(5, 3, 1.0, 1).unwrap();
        assert!(two_level_certificate(&problem, &net, bad.as_ref())
            .unwrap_err()
            .to_string()
            .contains("shape"));
    }
}
