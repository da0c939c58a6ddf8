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
use crate::network::{Params, ParamsRef};

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
    /// The ℓ₁,q group norms of §4.3 with strength λ ≥ 0 and exponent q ≥ 1. Spelled `group` in files, as
    /// `--reg group` on the command line (`group-l1q` is read too).
    #[serde(rename = "group", alias = "group-l1q")]
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
    ///
    /// Summed in the same order as the fused passes of [`crate::network`] (per-block sums of squares in
    /// fixed tiles, combined in index order), so [`Problem::velocities_into`](crate::Problem::velocities_into)
    /// returns exactly `risk + value`.
    pub fn value(&self, net: &Params) -> f64 {
        if *self == Self::None {
            return 0.0;
        }
        let s = net.shape();
        let mut scratch = RegScratch::default();
        let mut acc = self.omega_start(net.view());
        // Top layer first and ‖W‖² summed as the backward pass sums it: the objective the velocities and
        // GD steps report equals this value bit for bit.
        for l in (0..s.n_w()).rev() {
            let w = &net.as_slice()[s.w_range(l)];
            let (_, group) = self.prepare_w(w, s.m, &mut scratch);
            let sq = crate::network::w_sq_norm(w, s.m);
            acc += self.omega_w_term(s.m, sq, group);
        }
        self.omega_finish(acc)
    }

    /// The part of $\Omega$ from $A$ and $v$, before the middle layers are added (see [`Regularizer::value`]).
    ///
    /// L2: $\frac1m(\lambda_A\|A\|^2 + \lambda_v\|v\|^2)$; group: $\frac1{2m}\|A\|^2 + \frac1m\sum_j|v_j|^q$
    /// (the common factor, ½ or λ, is applied by [`Regularizer::omega_finish`]).
    pub(crate) fn omega_start(&self, net: ParamsRef<'_>) -> f64 {
        let s = net.shape();
        let m = s.m as f64;
        let a = &net.as_slice()[s.a_range()];
        match *self {
            Self::None => 0.0,
            Self::L2 { .. } | Self::L2Split { .. } => {
                let (la, _, lv) = self.l2_strengths().unwrap_or_default();
                (la * sum_sq(a) + lv * sum_sq(net.v())) / m
            }
            Self::GroupL1q { q, .. } => {
                sum_sq(a) / (2.0 * m) + net.v().iter().map(|x| x.abs().powf(q)).sum::<f64>() / m
            }
        }
    }

    /// The term of one middle layer: L2 $\lambda_W\|W\|^2/m^2$ from `w_sq` $=\|W\|^2$; group
    /// $R^{\rm in}+R^{\rm out}$ from `group` $= \sum_k s_k^q + \sum_j t_j^q$ (returned by [`Regularizer::prepare_w`]).
    pub(crate) fn omega_w_term(&self, m: usize, w_sq: f64, group: f64) -> f64 {
        let m = m as f64;
        match *self {
            Self::None => 0.0,
            Self::L2 { .. } | Self::L2Split { .. } => {
                let (_, lw, _) = self.l2_strengths().unwrap_or_default();
                lw * w_sq / (m * m)
            }
            Self::GroupL1q { .. } => group / m,
        }
    }

    /// $\Omega$ from the accumulated terms: ½·acc for L2, λ·acc for the group norms.
    pub(crate) fn omega_finish(&self, acc: f64) -> f64 {
        match *self {
            Self::None => 0.0,
            Self::L2 { .. } | Self::L2Split { .. } => 0.5 * acc,
            Self::GroupL1q { lambda, .. } => lambda * acc,
        }
    }

    /// Prepare the velocity of one middle-layer block $W$ ($m\times m$, column-major) for one evaluation.
    ///
    /// For the group norms this computes the usage means $s_k, t_j$ (see [`abs_means`]) and
    /// $s_k^{q-1}, t_j^{q-1}$ into `scratch` (no allocation) and returns
    /// $\sum_k s_k^q + \sum_j t_j^q$ as the second value; for L2 nothing needs preparing.
    pub(crate) fn prepare_w<'a>(
        &self,
        w: &[f64],
        m: usize,
        scratch: &'a mut RegScratch,
    ) -> (WVelocity<'a>, f64) {
        match *self {
            Self::None => (WVelocity::Zero, 0.0),
            Self::L2 { .. } | Self::L2Split { .. } => {
                let (_, lw, _) = self.l2_strengths().unwrap_or_default();
                (WVelocity::L2 { lambda: lw }, 0.0)
            }
            Self::GroupL1q { lambda, q } => {
                scratch.resize(m);
                let RegScratch { col, row, cq, rq } = scratch;
                abs_means_into(w, m, col, row);
                let group = col.iter().chain(row.iter()).map(|c| c.powf(q)).sum::<f64>();
                for (o, c) in cq.iter_mut().zip(col.iter()) {
                    *o = pow_qm1(*c, q);
                }
                for (o, r) in rq.iter_mut().zip(row.iter()) {
                    *o = pow_qm1(*r, q);
                }
                (
                    WVelocity::Group {
                        coef: -lambda * q,
                        cq,
                        rq,
                    },
                    group,
                )
            }
        }
    }

    /// The regularizer's velocity on $A$ (`v_block` false) or $v$ (`v_block` true), added to what `out`
    /// holds: `out[i] = r(x[i]) + out[i]`, with $r = -m\,\partial\Omega$ of the entry.
    ///
    /// L2: $r(x) = -\lambda x$; group: $-\lambda x$ on $A$ and $-\lambda q|x|^{q-1}\operatorname{sign}(x)$ on $v$.
    pub(crate) fn add_vec_velocity(&self, v_block: bool, x: &[f64], out: &mut [f64]) {
        let lin = |lam: f64, out: &mut [f64]| {
            for (o, &t) in out.iter_mut().zip(x) {
                *o += -lam * t;
            }
        };
        match *self {
            Self::None => {}
            Self::L2 { .. } | Self::L2Split { .. } => {
                let (la, _, lv) = self.l2_strengths().unwrap_or_default();
                lin(if v_block { lv } else { la }, out);
            }
            Self::GroupL1q { lambda, q } => {
                if v_block {
                    // m ∂/∂v_j (1/m)|v_j|^q = q |v_j|^{q-1} sign(v_j)
                    for (o, &t) in out.iter_mut().zip(x) {
                        *o += -lambda * q * pow_qm1(t.abs(), q) * sign0(t);
                    }
                } else {
                    lin(lambda, out);
                }
            }
        }
    }

    /// Write the regularizer's part of the velocity, $-(m\,\partial_A\Omega, m^2\partial_W\Omega, m\,\partial_v\Omega)$,
    /// into **every** entry of `vel`; returns $\Omega(\theta)$. (Allocates a little for the group norms;
    /// the hot path, [`Problem::velocities_into`](crate::Problem::velocities_into), fuses this with the data part.)
    pub fn velocity_into(&self, net: &Params, vel: &mut Params) -> f64 {
        let s = net.shape();
        vel.as_mut_slice().fill(0.0);
        let mut scratch = RegScratch::default();
        let ar = s.a_range();
        self.add_vec_velocity(
            false,
            &net.as_slice()[ar.clone()],
            &mut vel.as_mut_slice()[ar],
        );
        for l in 0..s.n_w() {
            let w = &net.as_slice()[s.w_range(l)];
            let (wv, _) = self.prepare_w(w, s.m, &mut scratch);
            let out = &mut vel.as_mut_slice()[s.w_range(l)];
            for (k, (oc, wc)) in out
                .chunks_exact_mut(s.m)
                .zip(w.chunks_exact(s.m))
                .enumerate()
            {
                wv.add_seg(k, 0, wc, oc);
            }
        }
        let vr = s.v_range();
        self.add_vec_velocity(
            true,
            &net.as_slice()[vr.clone()],
            &mut vel.as_mut_slice()[vr],
        );
        self.value(net)
    }
}

/// Buffers for the group-norm velocity of one middle layer (usage means and their powers), kept in the
/// [`Workspace`](crate::network::Workspace) so that evaluations do not allocate.
#[derive(Clone, Debug, Default)]
pub struct RegScratch {
    col: Vec<f64>,
    row: Vec<f64>,
    cq: Vec<f64>,
    rq: Vec<f64>,
}

impl RegScratch {
    /// Buffers for width `m`.
    pub fn new(m: usize) -> Self {
        let mut s = Self::default();
        s.resize(m);
        s
    }
    fn resize(&mut self, m: usize) {
        for b in [&mut self.col, &mut self.row, &mut self.cq, &mut self.rq] {
            b.resize(m, 0.0);
        }
    }
}

/// The regularizer's velocity on one middle-layer block, prepared by [`Regularizer::prepare_w`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum WVelocity<'a> {
    /// No regularization.
    Zero,
    /// $r(W_{jk}) = -\lambda W_{jk}$.
    L2 { lambda: f64 },
    /// $r(W_{jk}) = -\lambda q\,(s_k^{q-1} + t_j^{q-1})\operatorname{sign}(W_{jk})$ with `coef` $= -\lambda q$,
    /// `cq[k]` $= s_k^{q-1}$, `rq[j]` $= t_j^{q-1}$:
    /// $m^2\partial_{W_{jk}}\big[\frac1m\sum_k s_k^q + \frac1m\sum_j t_j^q\big] = q(s_k^{q-1} + t_j^{q-1})\operatorname{sign}(W_{jk})$.
    Group {
        coef: f64,
        cq: &'a [f64],
        rq: &'a [f64],
    },
}

impl WVelocity<'_> {
    /// Rows `j0..j0 + w.len()` of column `k` of $W$ are `w`: `out[i] = r(W_{j0+i,k}) + out[i]`.
    #[inline]
    pub(crate) fn add_seg(&self, k: usize, j0: usize, w: &[f64], out: &mut [f64]) {
        match *self {
            Self::Zero => {}
            Self::L2 { lambda } => {
                for (o, &x) in out.iter_mut().zip(w) {
                    *o += -lambda * x;
                }
            }
            Self::Group { coef, cq, rq } => {
                let ck = cq[k];
                for ((o, &x), &r) in out.iter_mut().zip(w).zip(&rq[j0..]) {
                    *o += coef * (ck + r) * sign0(x);
                }
            }
        }
    }
}

/// $\sum_i x_i^2$ in eight interleaved partial sums combined in a fixed order: vectorizes, and the
/// result depends only on `x` (never on threads).
#[inline]
pub(crate) fn sum_sq(x: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut it = x.chunks_exact(8);
    for c in &mut it {
        for i in 0..8 {
            acc[i] += c[i] * c[i];
        }
    }
    let tail: f64 = it.remainder().iter().map(|t| t * t).sum();
    combine8(&acc, tail)
}

/// The fixed combination of eight partial sums and a tail used by [`sum_sq`].
#[inline]
pub(crate) fn combine8(acc: &[f64; 8], tail: f64) -> f64 {
    (((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))) + tail
}

/// For an $m\times m$ column-major $W$: column means $s_k = \frac1m\sum_j|W_{jk}|$ (incoming usage of unit $k$)
/// and row means $t_j = \frac1m\sum_k|W_{jk}|$ (outgoing usage of unit $j$).
pub fn abs_means(w: &[f64], m: usize) -> (Vec<f64>, Vec<f64>) {
    let mut col = vec![0.0; m];
    let mut row = vec![0.0; m];
    abs_means_into(w, m, &mut col, &mut row);
    (col, row)
}

/// [`abs_means`] into given buffers of length $m$ (overwritten).
pub fn abs_means_into(w: &[f64], m: usize, col: &mut [f64], row: &mut [f64]) {
    let inv = 1.0 / m as f64;
    row.fill(0.0);
    for (c, wc) in col.iter_mut().zip(w.chunks_exact(m)) {
        let mut acc = 0.0;
        for (r, &x) in row.iter_mut().zip(wc) {
            let a = x.abs() * inv;
            acc += a;
            *r += a;
        }
        *c = acc;
    }
}

/// $x^{q-1}$ with $0^0 = 1$ (the q = 1 case), for $x \ge 0$.
fn pow_qm1(x: f64, q: f64) -> f64 {
    if q == 1.0 {
        1.0
    } else {
        x.powf(q - 1.0)
    }
}

/// sign with sign(0) = 0 (the minimum-norm subgradient of $|x|$ at the kink).
pub fn sign0(x: f64) -> f64 {
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
