//! The cone $\mathcal K = \mathbb R^{n_+}_{\ge0}\times\mathcal Q^{m_1}\times\dots\times\mathcal Q^{m_r}$ of the primal–dual method: Jordan algebra,
//! Nesterov–Todd scaling and step lengths.
//!
//! $\mathcal Q^m = \{(u_0, \mathbf u_1)\in\mathbb R\times\mathbb R^{m-1}: u_0\ge\|\mathbf u_1\|\}$, with $J = \mathrm{diag}(1, -1, \dots, -1)$, identity
//! $\mathbf e = (1, 0, \dots, 0)$, product $a\circ b = (a^\top b,\ a_0\mathbf b_1 + b_0\mathbf a_1)$ and degree 1 per cone (each
//! nonnegative coordinate has degree 1 too; its product is the entrywise one).
//!
//! **NT scaling** (Nesterov & Todd 1997; the formulas of ECOS, Domahidi et al. 2013, §5): for $s, z\in\mathrm{int}\,\mathcal Q$ let
//! $\bar s = s/\sqrt{s^\top Js}$, $\bar z = z/\sqrt{z^\top Jz}$, $\gamma = \sqrt{(1 + \bar z^\top\bar s)/2}$, $\bar w = (\bar s + J\bar z)/(2\gamma)$ (so
//! $\bar w^\top J\bar w = 1$) and $\eta = (s^\top Js/z^\top Jz)^{1/4}$. Then $W = \eta\bar W$ with
//! $$\bar W = \begin{bmatrix}\bar w_0 & \bar{\mathbf w}_1^\top\\ \bar{\mathbf w}_1 & I + \bar{\mathbf w}_1\bar{\mathbf w}_1^\top/(1 + \bar w_0)\end{bmatrix},\qquad
//!   W^2 = \eta^2(2\bar w\bar w^\top - J),\qquad W^{-1} = \eta^{-1}J\bar WJ,$$
//! is symmetric positive definite and satisfies $W^{-1}s = Wz =: \lambda$ (tested). On the nonnegative
//! coordinates $W = \mathrm{diag}(\sqrt{s/z})$.

/// The cone: `lp` nonnegative coordinates first, then the second-order cones of the given dimensions.
#[derive(Clone, Debug)]
pub(crate) struct Cone {
    pub lp: usize,
    /// (offset, dimension) of each second-order cone.
    pub soc: Vec<(usize, usize)>,
    pub len: usize,
}

/// The NT scaling of a pair $(s, z)$.
#[derive(Clone, Debug)]
pub(crate) struct Scaling {
    /// $\sqrt{s_i/z_i}$ on the nonnegative coordinates.
    pub lp: Vec<f64>,
    /// $(\eta, \bar w)$ per second-order cone ($\bar w$ stored in the cone's slots of `wbar`).
    pub eta: Vec<f64>,
    pub wbar: Vec<f64>,
}

impl Cone {
    pub fn new(lp: usize, dims: &[usize]) -> Self {
        let mut off = lp;
        let soc = dims
            .iter()
            .map(|&m| {
                let o = off;
                off += m;
                (o, m)
            })
            .collect();
        Self { lp, soc, len: off }
    }

    /// The degree $\nu$ (complementarity $s^\top z = \nu\mu$ on the central path).
    pub fn degree(&self) -> f64 {
        (self.lp + self.soc.len()) as f64
    }

    /// The identity $\mathbf e$.
    pub fn identity(&self) -> Vec<f64> {
        let mut e = vec![0.0; self.len];
        e[..self.lp].fill(1.0);
        for &(o, _) in &self.soc {
            e[o] = 1.0;
        }
        e
    }

    /// The smallest "eigenvalue" $\min(\min_i x_i, \min_{\rm cones}(x_0 - \|\mathbf x_1\|))$: $x\in\mathrm{int}\,\mathcal K$ iff it is $> 0$.
    pub fn min_eig(&self, x: &[f64]) -> f64 {
        let mut m = x[..self.lp].iter().copied().fold(f64::INFINITY, f64::min);
        for &(o, d) in &self.soc {
            m = m.min(x[o] - norm(&x[o + 1..o + d]));
        }
        m
    }

    #[cfg(test)]
    /// $a\circ b$.
    pub fn circ(&self, a: &[f64], b: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.len];
        self.circ_into(a, b, &mut out);
        out
    }

    /// $a\circ b$ into `out`.
    pub fn circ_into(&self, a: &[f64], b: &[f64], out: &mut [f64]) {
        for i in 0..self.lp {
            out[i] = a[i] * b[i];
        }
        for &(o, d) in &self.soc {
            out[o] = dot(&a[o..o + d], &b[o..o + d]);
            for i in o + 1..o + d {
                out[i] = a[o] * b[i] + b[o] * a[i];
            }
        }
    }

    /// $\lambda\backslash v$: the $u$ with $\lambda\circ u = v$ ($\lambda\in\mathrm{int}\,\mathcal K$):
    /// $u_0 = (\lambda_0v_0 - \boldsymbol\lambda_1^\top\mathbf v_1)/(\lambda_0^2 - \|\boldsymbol\lambda_1\|^2)$, $\mathbf u_1 = (\mathbf v_1 - u_0\boldsymbol\lambda_1)/\lambda_0$.
    #[cfg(test)]
    pub fn inv_circ(&self, lam: &[f64], v: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.len];
        self.inv_circ_into(lam, v, &mut out);
        out
    }

    /// [`Cone::inv_circ`] into `out`.
    pub fn inv_circ_into(&self, lam: &[f64], v: &[f64], out: &mut [f64]) {
        for i in 0..self.lp {
            out[i] = v[i] / lam[i];
        }
        for &(o, d) in &self.soc {
            let l1 = &lam[o + 1..o + d];
            let det = (lam[o] - norm(l1)) * (lam[o] + norm(l1));
            let u0 = (lam[o] * v[o] - dot(l1, &v[o + 1..o + d])) / det;
            out[o] = u0;
            for i in o + 1..o + d {
                out[i] = (v[i] - u0 * lam[i]) / lam[o];
            }
        }
    }

    /// The NT scaling of $(s, z)$, both interior.
    pub fn scaling(&self, s: &[f64], z: &[f64]) -> Scaling {
        let mut sc = Scaling {
            lp: vec![],
            eta: vec![],
            wbar: vec![],
        };
        self.scaling_into(s, z, &mut sc);
        sc
    }

    /// [`Cone::scaling`] in the storage of `sc`.
    pub fn scaling_into(&self, s: &[f64], z: &[f64], sc: &mut Scaling) {
        sc.lp.clear();
        sc.lp.extend((0..self.lp).map(|i| (s[i] / z[i]).sqrt()));
        sc.eta.clear();
        sc.wbar.resize(self.len, 0.0);
        for &(o, d) in &self.soc {
            let (sv, zv) = (&s[o..o + d], &z[o..o + d]);
            let sj = jnorm2(sv);
            let zj = jnorm2(zv);
            let (sn, zn) = (sj.sqrt(), zj.sqrt());
            let mut sz = sv[0] * zv[0];
            for i in 1..d {
                sz += sv[i] * zv[i];
            }
            let g = ((1.0 + sz / (sn * zn)) / 2.0).sqrt();
            sc.wbar[o] = (sv[0] / sn + zv[0] / zn) / (2.0 * g);
            for i in 1..d {
                sc.wbar[o + i] = (sv[i] / sn - zv[i] / zn) / (2.0 * g);
            }
            sc.eta.push((sj / zj).sqrt().sqrt());
        }
    }

    #[cfg(test)]
    /// $W v$ (`inverse`: $W^{-1}v$).
    pub fn apply_w(&self, sc: &Scaling, v: &[f64], inverse: bool) -> Vec<f64> {
        let mut out = vec![0.0; self.len];
        self.apply_w_into(sc, v, inverse, &mut out);
        out
    }

    /// $W v$ (`inverse`: $W^{-1}v$) into `out`.
    pub fn apply_w_into(&self, sc: &Scaling, v: &[f64], inverse: bool, out: &mut [f64]) {
        for i in 0..self.lp {
            out[i] = if inverse {
                v[i] / sc.lp[i]
            } else {
                v[i] * sc.lp[i]
            };
        }
        for (c, &(o, d)) in self.soc.iter().enumerate() {
            w_cone(sc, c, o, d, &v[o..o + d], inverse, &mut out[o..o + d]);
        }
    }

    /// $W^2v$ (`inverse`: $W^{-2}v$) into `out`, applied as two products with $W^{\pm1}$ per cone (never
    /// through the formed block, whose small eigenvalues the rounding of $2\bar w\bar w^\top - J$ would lose).
    pub fn apply_w2_into(&self, sc: &Scaling, v: &[f64], inverse: bool, out: &mut [f64]) {
        for i in 0..self.lp {
            let w = sc.lp[i];
            // Two products, as on the cones (the same bits as applying W twice).
            out[i] = if inverse { v[i] / w / w } else { v[i] * w * w };
        }
        let mut tmp = [0.0; 8];
        for (c, &(o, d)) in self.soc.iter().enumerate() {
            w_cone(sc, c, o, d, &v[o..o + d], inverse, &mut tmp[..d]);
            let t = tmp;
            w_cone(sc, c, o, d, &t[..d], inverse, &mut out[o..o + d]);
        }
    }

    #[cfg(test)]
    /// The dense block $W^2 = \eta^2(2\bar w\bar w^\top - J)$ of second-order cone `c` (row-major $m\times m$).
    pub fn w2_block(&self, sc: &Scaling, c: usize) -> Vec<f64> {
        let d = self.soc[c].1;
        let mut out = vec![0.0; d * d];
        self.w2_block_into(sc, c, &mut out);
        out
    }

    /// [`Cone::w2_block`] into `out` (length $m^2$).
    pub fn w2_block_into(&self, sc: &Scaling, c: usize, out: &mut [f64]) {
        let (o, d) = self.soc[c];
        let w = &sc.wbar[o..o + d];
        let e2 = sc.eta[c] * sc.eta[c];
        for i in 0..d {
            for j in 0..d {
                out[i * d + j] = e2 * 2.0 * w[i] * w[j];
            }
            out[i * d + i] += if i == 0 { -e2 } else { e2 };
        }
    }

    /// The largest $\alpha\le\alpha_{\max}$ with $x + \alpha\,dx\in\mathcal K$ ($x$ interior).
    pub fn max_step(&self, x: &[f64], dx: &[f64], alpha_max: f64) -> f64 {
        let mut a = alpha_max;
        for i in 0..self.lp {
            if dx[i] < 0.0 {
                a = a.min(-x[i] / dx[i]);
            }
        }
        for &(o, d) in &self.soc {
            a = a.min(soc_step(&x[o..o + d], &dx[o..o + d]));
        }
        a.max(0.0)
    }
}

/// $W v$ or $W^{-1}v$ on second-order cone `c` (at offset `o`, dimension `d`): $\bar Wv = (\bar w_0v_0 + \bar{\mathbf w}_1^\top\mathbf v_1,\
/// \mathbf v_1 + (v_0 + \bar{\mathbf w}_1^\top\mathbf v_1/(1 + \bar w_0))\bar{\mathbf w}_1)$; $\bar W^{-1} = J\bar WJ$ flips the signs of $\bar{\mathbf w}_1$.
fn w_cone(sc: &Scaling, c: usize, o: usize, d: usize, v: &[f64], inverse: bool, out: &mut [f64]) {
    let w = &sc.wbar[o..o + d];
    let sgn = if inverse { -1.0 } else { 1.0 };
    let f = if inverse { 1.0 / sc.eta[c] } else { sc.eta[c] };
    let w1v1 = sgn * dot(&w[1..], &v[1..d]);
    out[0] = f * (w[0] * v[0] + w1v1);
    let a = v[0] + w1v1 / (1.0 + w[0]);
    for i in 1..d {
        out[i] = f * (v[i] + sgn * a * w[i]);
    }
}

/// The first $\alpha>0$ at which $x + \alpha d$ leaves $\mathcal Q$: the smallest positive root of
/// $f(\alpha) = (x_0 + \alpha d_0)^2 - \|\mathbf x_1 + \alpha\mathbf d_1\|^2 = a\alpha^2 + 2b\alpha + c$ ($c>0$), or $\infty$.
fn soc_step(x: &[f64], d: &[f64]) -> f64 {
    let a = jnorm2(d);
    let mut b = x[0] * d[0];
    for i in 1..x.len() {
        b -= x[i] * d[i];
    }
    let c = jnorm2(x).max(0.0);
    let disc = b * b - a * c;
    if a.abs() <= 1e-300 {
        // Linear: c + 2bα = 0.
        return if b < 0.0 {
            -c / (2.0 * b)
        } else {
            f64::INFINITY
        };
    }
    if disc < 0.0 {
        return f64::INFINITY;
    }
    // Roots r1 = t/a, r2 = c/t with t = −(b + sign(b)√disc) (no cancellation).
    let t = -(b + b.signum() * disc.sqrt());
    let mut best = f64::INFINITY;
    for r in [t / a, if t != 0.0 { c / t } else { f64::INFINITY }] {
        if r > 0.0 && r < best {
            best = r;
        }
    }
    best
}

/// $v^\top Jv = v_0^2 - \|\mathbf v_1\|^2$, computed as $(v_0 - \|\mathbf v_1\|)(v_0 + \|\mathbf v_1\|)$.
fn jnorm2(v: &[f64]) -> f64 {
    let n1 = norm(&v[1..]);
    (v[0] - n1) * (v[0] + n1)
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A random interior point of a cone of 3 nonnegative coordinates and cones of dims 3 and 4.
    fn interior(cone: &Cone, rng: &mut ChaCha8Rng) -> Vec<f64> {
        let mut x: Vec<f64> = (0..cone.len).map(|_| rng.random_range(-1.0..1.0)).collect();
        for v in x.iter_mut().take(cone.lp) {
            *v = v.abs() + 0.1;
        }
        for &(o, d) in &cone.soc {
            x[o] = norm(&x[o + 1..o + d]) + rng.random_range(0.05..1.0);
        }
        x
    }

    #[test]
    fn nt_scaling_maps_s_and_z_to_the_same_point() {
        let cone = Cone::new(3, &[3, 4]);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..20 {
            let s = interior(&cone, &mut rng);
            let z = interior(&cone, &mut rng);
            let sc = cone.scaling(&s, &z);
            let l1 = cone.apply_w(&sc, &z, false);
            let l2 = cone.apply_w(&sc, &s, true);
            for (a, b) in l1.iter().zip(&l2) {
                assert!((a - b).abs() <= 1e-12 * (1.0 + a.abs()), "{a} vs {b}");
            }
            // W⁻¹ W = I and W² from the block formula equals W applied twice.
            let v: Vec<f64> = (0..cone.len).map(|_| rng.random_range(-1.0..1.0)).collect();
            let back = cone.apply_w(&sc, &cone.apply_w(&sc, &v, false), true);
            for (a, b) in back.iter().zip(&v) {
                assert!((a - b).abs() <= 1e-12);
            }
            let ww = cone.apply_w(&sc, &cone.apply_w(&sc, &v, false), false);
            for (c, &(o, d)) in cone.soc.iter().enumerate() {
                let w2 = cone.w2_block(&sc, c);
                for i in 0..d {
                    let r: f64 = (0..d).map(|j| w2[i * d + j] * v[o + j]).sum();
                    assert!((r - ww[o + i]).abs() <= 1e-11 * (1.0 + r.abs()));
                }
            }
        }
    }

    #[test]
    fn inverse_product_inverts_the_jordan_product() {
        let cone = Cone::new(2, &[3, 5]);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let lam = interior(&cone, &mut rng);
        let u: Vec<f64> = (0..cone.len).map(|_| rng.random_range(-1.0..1.0)).collect();
        let v = cone.circ(&lam, &u);
        let back = cone.inv_circ(&lam, &v);
        for (a, b) in back.iter().zip(&u) {
            assert!((a - b).abs() <= 1e-12, "{a} vs {b}");
        }
    }

    #[test]
    fn max_step_lands_on_the_boundary() {
        let cone = Cone::new(2, &[3, 4]);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for _ in 0..50 {
            let x = interior(&cone, &mut rng);
            let dx: Vec<f64> = (0..cone.len).map(|_| rng.random_range(-3.0..3.0)).collect();
            let a = cone.max_step(&x, &dx, 1e6);
            let at = |t: f64| -> f64 {
                let y: Vec<f64> = x.iter().zip(&dx).map(|(p, q)| p + t * q).collect();
                cone.min_eig(&y)
            };
            assert!(at(0.999 * a) > -1e-12, "inside before the step");
            if a < 1e6 {
                assert!(at(1.001 * a) < 0.0, "outside after the step (alpha {a})");
            }
        }
    }
}
