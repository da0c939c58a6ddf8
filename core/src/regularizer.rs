//! Regularizers $\Omega$ of the finite-width objective $J = \mathcal R + \Omega$ (math.md §2, §4.3).
//!
//! - [`Regularizer::L2`]: $\frac\lambda2\big(\frac1m\|A\|^2 + \frac1{m^2}\sum_\ell\|W_\ell\|^2 + \frac1m\|v\|^2\big)$,
//!   per-unit and per-pair averages. Its scaled velocity is simply $-\lambda\theta$.
//! - [`Regularizer::GroupL1q`]: the $\ell_{1,q}$ group norms that keep the repopulated program convex (§4.3):
//!   $$\Omega = \lambda\Big[\tfrac1{2m}\|A\|^2 + \sum_\ell\big(R^{\rm in}(W_\ell) + R^{\rm out}(W_\ell)\big) + \tfrac1m\sum_j|v_j|^q\Big],$$
//!   $$R^{\rm in}(W) = \tfrac1m\sum_k\Big(\tfrac1m\sum_j|W_{jk}|\Big)^q,\qquad R^{\rm out}(W) = \tfrac1m\sum_j\Big(\tfrac1m\sum_k|W_{jk}|\Big)^q.$$
//!   The first-layer term is the L2 cost $r_1(\mathbf z) = \|a\|^2/2$, a linear functional of the feature law (§3.2).
//!
//! **The kink of $|\cdot|$ at 0.** $\Omega$ is not differentiable where an entry is exactly 0 (for $q = 1$,
//! and for $v$ when $q < 2$). There the velocity uses $\operatorname{sign}(0) = 0$, which for an isolated zero
//! entry is the minimum-norm element of the subdifferential of $|\cdot|$; it is the choice that keeps an
//! exactly-zero weight at zero when the data gradient vanishes. Away from zeros the velocity is the exact
//! scaled gradient (checked against finite differences in the tests).
use crate::error::{CoreError, Result};
use crate::network::Params;

/// A regularizer of the finite-width objective.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Regularizer {
    /// No regularization.
    None,
    /// L2 weight decay with strength λ ≥ 0.
    L2 {
        /// λ.
        lambda: f64,
    },
    /// L2 with a strength per block: $\frac12\big(\frac{\lambda_A}m\|A\|^2 + \frac{\lambda_W}{m^2}\sum_\ell\|W_\ell\|^2 + \frac{\lambda_v}m\|v\|^2\big)$.
    /// For the two-level network of §4.1 this is $\lambda_2 r_\theta + \lambda_1 r_u$ with $\lambda_A = \lambda_2$, $\lambda_v = \lambda_1$.
    L2Split {
        /// $\lambda_A$ (first layer; $\lambda_2$ of §4.1).
        a: f64,
        /// $\lambda_W$ (middle layers).
        w: f64,
        /// $\lambda_v$ (output weights; $\lambda_1$ of §4.1).
        v: f64,
    },
    /// The ℓ₁,q group norms of §4.3 with strength λ ≥ 0 and exponent q ≥ 1.
    GroupL1q {
        /// λ.
        lambda: f64,
        /// q ≥ 1.
        q: f64,
    },
}

impl Regularizer {
    /// L2 with λ, or none for λ = 0.
    pub fn l2(lambda: f64) -> Self {
        if lambda == 0.0 {
            Self::None
        } else {
            Self::L2 { lambda }
        }
    }

    /// Check λ ≥ 0 finite and q ≥ 1.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Self::None => Ok(()),
            Self::L2 { lambda } | Self::GroupL1q { lambda, .. }
                if !(lambda >= 0.0 && lambda.is_finite()) =>
            {
                Err(CoreError::invalid(
                    "regularization strength lambda",
                    "a finite value >= 0",
                    lambda,
                ))
            }
            Self::L2Split { a, w, v } if ![a, w, v].iter().all(|x| *x >= 0.0 && x.is_finite()) => {
                Err(CoreError::invalid(
                    "L2 strengths (a, w, v)",
                    "finite values >= 0",
                    format!("({a}, {w}, {v})"),
                ))
            }
            Self::GroupL1q { q, .. } if !(q >= 1.0 && q.is_finite()) => Err(CoreError::invalid(
                "group-norm exponent q",
                "a finite value >= 1",
                q,
            )),
            _ => Ok(()),
        }
    }

    /// The strength λ (0 for none; for [`Regularizer::L2Split`] the largest of the three).
    pub fn lambda(&self) -> f64 {
        match *self {
            Self::None => 0.0,
            Self::L2 { lambda } | Self::GroupL1q { lambda, .. } => lambda,
            Self::L2Split { a, w, v } => a.max(w).max(v),
        }
    }

    /// Per-block L2 strengths $(\lambda_A, \lambda_W, \lambda_v)$ if this is an L2 regularizer.
    fn l2_strengths(&self) -> Option<(f64, f64, f64)> {
        match *self {
            Self::L2 { lambda } => Some((lambda, lambda, lambda)),
            Self::L2Split { a, w, v } => Some((a, w, v)),
            _ => None,
        }
    }

    /// $\Omega(\theta)$.
    pub fn value(&self, net: &Params) -> f64 {
        let s = net.shape();
        let m = s.m as f64;
        let sq = |x: &[f64]| x.iter().map(|t| t * t).sum::<f64>();
        match *self {
            Self::None => 0.0,
            Self::L2 { .. } | Self::L2Split { .. } => {
                let (la, lw, lv) = self.l2_strengths().unwrap_or_default();
                let mut acc = (la * sq(&net.as_slice()[s.a_range()]) + lv * sq(net.v())) / m;
                for l in 0..s.n_w() {
                    acc += lw * sq(&net.as_slice()[s.w_range(l)]) / (m * m);
                }
                0.5 * acc
            }
            Self::GroupL1q { lambda, q } => {
                let mut acc = sq(&net.as_slice()[s.a_range()]) / (2.0 * m);
                for l in 0..s.n_w() {
                    let (col, row) = abs_means(&net.as_slice()[s.w_range(l)], s.m);
                    acc += col.iter().chain(&row).map(|c| c.powf(q)).sum::<f64>() / m;
                }
                acc += net.v().iter().map(|x| x.abs().powf(q)).sum::<f64>() / m;
                lambda * acc
            }
        }
    }

    /// Write the regularizer's part of the velocity, $-(m\,\partial_A\Omega, m^2\partial_W\Omega, m\,\partial_v\Omega)$,
    /// into **every** entry of `vel`; returns $\Omega(\theta)$.
    pub fn velocity_into(&self, net: &Params, vel: &mut Params) -> f64 {
        let s = net.shape();
        match *self {
            Self::None => {
                vel.as_mut_slice().fill(0.0);
                0.0
            }
            Self::L2 { .. } | Self::L2Split { .. } => {
                let (la, lw, lv) = self.l2_strengths().unwrap_or_default();
                let blocks = std::iter::once((s.a_range(), la))
                    .chain((0..s.n_w()).map(|l| (s.w_range(l), lw)))
                    .chain(std::iter::once((s.v_range(), lv)));
                for (r, lam) in blocks {
                    for (v, &x) in vel.as_mut_slice()[r.clone()]
                        .iter_mut()
                        .zip(&net.as_slice()[r])
                    {
                        *v = -lam * x;
                    }
                }
                self.value(net)
            }
            Self::GroupL1q { lambda, q } => {
                let ar = s.a_range();
                for (v, &x) in vel.as_mut_slice()[ar.clone()]
                    .iter_mut()
                    .zip(&net.as_slice()[ar])
                {
                    *v = -lambda * x;
                }
                // m² ∂/∂W_jk [ (1/m)Σ_k s_k^q + (1/m)Σ_j t_j^q ] = q (s_k^{q-1} + t_j^{q-1}) sign(W_jk)
                for l in 0..s.n_w() {
                    let w = &net.as_slice()[s.w_range(l)];
                    let (col, row) = abs_means(w, s.m);
                    let cq: Vec<f64> = col.iter().map(|c| pow_qm1(*c, q)).collect();
                    let rq: Vec<f64> = row.iter().map(|r| pow_qm1(*r, q)).collect();
                    let out = &mut vel.as_mut_slice()[s.w_range(l)];
                    for k in 0..s.m {
                        for j in 0..s.m {
                            let x = w[j + k * s.m];
                            out[j + k * s.m] = -lambda * q * (cq[k] + rq[j]) * sign0(x);
                        }
                    }
                }
                // m ∂/∂v_j (1/m)|v_j|^q = q |v_j|^{q-1} sign(v_j)
                let vr = s.v_range();
                for (v, &x) in vel.as_mut_slice()[vr.clone()]
                    .iter_mut()
                    .zip(&net.as_slice()[vr])
                {
                    *v = -lambda * q * pow_qm1(x.abs(), q) * sign0(x);
                }
                self.value(net)
            }
        }
    }
}

/// For an $m\times m$ column-major $W$: column means $s_k = \frac1m\sum_j|W_{jk}|$ (incoming usage of unit $k$)
/// and row means $t_j = \frac1m\sum_k|W_{jk}|$ (outgoing usage of unit $j$).
pub fn abs_means(w: &[f64], m: usize) -> (Vec<f64>, Vec<f64>) {
    let mut col = vec![0.0; m];
    let mut row = vec![0.0; m];
    let inv = 1.0 / m as f64;
    for k in 0..m {
        for j in 0..m {
            let a = w[j + k * m].abs() * inv;
            col[k] += a;
            row[j] += a;
        }
    }
    (col, row)
}

/// $x^{q-1}$ with $0^0 = 1$ (the q = 1 case), for $x \ge 0$.
fn pow_qm1(x: f64, q: f64) -> f64 {
    if q == 1.0 {
        1.0
    } else {
        x.powf(q - 1.0)
    }
}

/// sign with sign(0) = 0.
fn sign0(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_bad_value() {
        let e = Regularizer::L2 { lambda: -1.0 }
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("-1") && e.contains(">= 0"), "{e}");
        let e = Regularizer::GroupL1q {
            lambda: 1.0,
            q: 0.5,
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("0.5") && e.contains(">= 1"), "{e}");
        assert!(Regularizer::L2 { lambda: f64::NAN }.validate().is_err());
    }
}
