//! nff's own conic solver of the deep program for $q = 2$: a primal–dual interior-point method on its
//! second-order-cone form (math.md §7), with Nesterov–Todd scaling, Mehrotra's predictor–corrector and
//! normal equations solved through their block structure ([`normal`]).
//!
//! # The program
//! For $q = 2$, no entropy and the squared loss, the deep program in mass variables ([`super`]) is the
//! second-order-cone program
//! $$\min\ \tfrac1{2N}\|\hat{\mathbf y} - \mathbf y\|^2 + \sum_{\ell,j}\big(\tau_{\ell,j} + r_\ell(j)p_{\ell,j}\big)\quad\text{s.t.}\quad Ax = b,\ x_{\mathcal K}\in\mathcal K,$$
//! one rotated cone $2\tau_{\ell,j}p_{\ell,j}\ge2\lambda_{\ell-1}S^{\rm in}_{\ell,j}{}^2 + 2\lambda_\ell S^{\rm out}_{\ell,j}{}^2$ per candidate (with $\lambda_v$ and $|\hat v_j|$ in place of the
//! outgoing term on the last layer), the absolute values split $\hat U = \hat U^+ - \hat U^-$, and the equalities of
//! [`layout`]. It is the program Clarabel solves in [`super::conic`], written with one cone per mass (the two
//! perspectives of a candidate share its mass, so they share a cone: $\lambda_aS_a^2/p + \lambda_bS_b^2/p\le\tau\iff
//! \|(\sqrt{2\lambda_a}S_a, \sqrt{2\lambda_b}S_b)\|^2\le2\tau p$).
//!
//! # The method (Vandenberghe, *The CVXOPT linear and quadratic cone program solvers*, 2010, §§4–7)
//! Infeasible-start primal–dual path following on the KKT conditions
//! $Px + c + A^\top y - (z, 0) = 0$, $Ax = b$, $x_{\mathcal K}, z\in\mathcal K$, $x_{\mathcal K}\circ z = 0$ ($P = I/N$ on $\hat{\mathbf y}$). With the NT scaling
//! $W$ of $(x_{\mathcal K}, z)$ and $\lambda = Wz$, each step solves
//! $$(P + W^{-2})\Delta x + A^\top\Delta y = -r_d + W^{-1}(\lambda\backslash\xi),\quad A\Delta x = -r_p,\quad \Delta z = W^{-1}(\lambda\backslash\xi) - W^{-2}\Delta x_{\mathcal K},$$
//! by the normal equations $AH^{-1}A^\top\Delta y = AH^{-1}(\dots) + r_p$, $H = P + W^{-2}$, for the affine direction
//! ($\xi = -\lambda\circ\lambda$) and then the combined one ($\xi = \sigma\mu\mathbf e - \lambda\circ\lambda - (W^{-1}\Delta x^a)\circ(W\Delta z^a)$, $\sigma = (1 - \alpha_a)^3$), each
//! with two steps of iterative refinement against the matrix-free $AH^{-1}A^\top$. Steps go 0.99 of the way to the
//! boundary. Start: the CVXOPT point (the least-norm solution with $W = I$, shifted into the cone).
//!
//! # Stopping and certificates
//! It stops when the primal residual, the dual residual (relative to $1 + \|b\|_\infty$, $1 + \|c\|_\infty$) and the
//! relative gap $x_{\mathcal K}^\top z/\max(1, |f|)$ are all below `tol_gap`; when a step is shorter than $10^{-8}$ or
//! the residuals stop decreasing (`Stalled`); or at `max_newton` (`MaxIterations`). The driver
//! ([`DeepProgram::solve`]) then makes the point exactly feasible and certifies it with the bound of
//! [`DeepProgram::dual_bound`] at the multipliers read from $y$ (the same convention as Clarabel's, see
//! [`super::conic`]): the reported gap is that certificate, never the method's own.
pub(crate) mod cone;
pub(crate) mod layout;
pub(crate) mod normal;

use super::conic::ConicOutcome;
use super::{DeepOptions, DeepProgram, Mass};
use crate::error::{Result, SolverError};
use crate::lbfgs::Termination;
use crate::linalg::par_for;
use cone::{dot, Scaling};
use faer::Mat;
use layout::Layout;
use nff_core::Loss;
use normal::{Hinv, Normal, Static};
use std::time::Instant;

/// Fraction of the way to the boundary each step goes.
const STEP_FRACTION: f64 = 0.99;
/// At most this many refinement steps per direction ([`DeepProgram::newton_solve`]) ...
const MAX_REFINE: usize = 10;
/// ... stopping once the residual is below this, relative to the right-hand side, or stops halving.
const REFINE_TOL: f64 = 1e-15;
/// Steps shorter than this end the solve as stalled.
const MIN_STEP: f64 = 1e-8;
/// Floor of the feasibility tolerances (relative to $1 + \|b\|_\infty$, $1 + \|c\|_\infty$): below it the
/// residuals are rounding in $A^\top y$ at the multipliers' scale (measured: the dual residual stops at
/// 4e-11 on a depth-2 instance whose gap still falls). The driver makes the point exactly feasible.
const TOL_FEAS_FLOOR: f64 = 1e-9;
/// Floor of the relative-gap tolerance: below it $\mu$ is ~$10^{-13}$ and rounding in the normal equations
/// ruins the direction (measured on the depth-3, $N = 16$, 100-per-layer instance of
/// `benches/compare/convex_deep.py`: at gap $1.3\cdot10^{-10}$ the next step took the primal residual from
/// $4.5\cdot10^{-12}$ to $0.18$). The certificate the driver reports is computed independently of it.
const TOL_GAP_FLOOR: f64 = 1e-9;
/// Iterations without halving the worst scaled residual that end the solve as stalled.
const STALL_ITERATIONS: usize = 5;
/// ... counted only once the worst residual is within this factor of its tolerance (far from it, slow
/// progress is still progress; `max_newton` bounds it).
const STALL_SCORE: f64 = 1e4;

/// Why [`DeepProgram::socp_applicable`] is false, if it is.
pub(crate) fn not_applicable(prog: &DeepProgram) -> Option<String> {
    let c = &prog.cfg;
    if c.q != 2.0 {
        return Some(format!(
            "q = {} (the second-order-cone form needs q = 2)",
            c.q
        ));
    }
    if c.beta.iter().any(|&b| b != 0.0) {
        return Some("an entropy (beta > 0) needs exponential cones".into());
    }
    if prog.loss != Loss::Squared {
        return Some("the logistic loss needs exponential cones".into());
    }
    if c.lambda_v <= 0.0 || c.lambda_w.iter().any(|&l| l <= 0.0) {
        return Some(
            "a zero strength (lambda_w, lambda_v > 0 needed: otherwise that layer's weights are free \
             and the optimum need not be attained)"
                .into(),
        );
    }
    None
}

/// The residuals and objective values of an iterate.
#[derive(Clone)]
struct State {
    x: Vec<f64>,
    y: Vec<f64>,
    z: Vec<f64>,
}

impl DeepProgram {
    /// Solve the second-order-cone form with nff's primal–dual method (module docs). Errors: a program
    /// outside its scope ([`not_applicable`]), non-finite data, a normal matrix that cannot be factored.
    pub(crate) fn solve_socp(&self, opts: &DeepOptions) -> Result<ConicOutcome> {
        if let Some(why) = not_applicable(self) {
            return Err(SolverError::invalid(
                "deep program for the second-order-cone solver",
                "q = 2, no entropy, the squared loss and positive strengths",
                why,
            ));
        }
        let t0 = Instant::now();
        let lay = Layout::new(self);
        let st = Static::new(self, &lay);
        let cone = lay.cone.clone();
        let nk = cone.len;
        let nf = self.n() as f64;
        let c = lay.cost(self);
        let b = lay.b();
        let par = par_for(opts.threads, (self.n() * lay.nx) as f64);
        let const_term = self.y.iter().map(|v| v * v).sum::<f64>() / (2.0 * nf);
        let bnorm = 1.0 + b.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let cnorm = 1.0 + c.iter().fold(0.0f64, |a, v| a.max(v.abs()));

        // Start (CVXOPT): (P + I) x + Aᵀy = −c, Ax = b with H⁻¹ = I on the cone, N on ŷ; s = x_K, z = −x_K, shifted.
        let hi0 = Hinv {
            lp: vec![1.0; cone.lp],
            soc: cone
                .soc
                .iter()
                .map(|&(_, d)| {
                    let mut e = vec![0.0; d * d];
                    (0..d).for_each(|i| e[i * d + i] = 1.0);
                    e
                })
                .collect(),
            yhat: nf,
        };
        let neg_c: Vec<f64> = c.iter().map(|v| -v).collect();
        let nrm0 = Normal::new(self, &lay, &st, &hi0, opts.threads)?;
        let (x0, y0) = self.newton_solve(&lay, &nrm0, &HMap { sc: None, nf }, &neg_c, &b, par);
        let mut s = State {
            x: x0,
            y: y0,
            z: vec![0.0; nk],
        };
        for i in 0..nk {
            s.z[i] = -s.x[i];
        }
        let e = cone.identity();
        for v in [&mut s.x[..nk], &mut s.z[..]] {
            let a = -cone.min_eig(v);
            if a >= -1e-8 {
                for i in 0..nk {
                    v[i] += (1.0 + a) * e[i];
                }
            }
        }

        let trace = std::env::var_os("NFF_SOCP_TRACE").is_some();
        let tol_p = opts.tol_primal.max(TOL_FEAS_FLOOR);
        let tol_d = opts.tol_dual.max(TOL_FEAS_FLOOR);
        let tol_g = opts.tol_gap.max(TOL_GAP_FLOOR);
        let mut termination = Termination::MaxIterations;
        let mut iterations = 0;
        // The best iterate so far by its worst residual relative to its tolerance: returned when the
        // method stops short (rounding takes over once μ is small: the residuals then grow again).
        let mut best: Option<(f64, State, f64)> = None;
        let mut no_progress = 0;
        let mut last_gap = f64::INFINITY;
        let (mut t_normal, mut t_dir) = (0.0, 0.0);
        for it in 0..opts.max_newton {
            iterations = it;
            // Residuals.
            let ax = lay.apply_a(self, &s.x, par);
            let rp: Vec<f64> = ax.iter().zip(&b).map(|(a, b)| a - b).collect();
            let aty = lay.apply_at(self, &s.y, par);
            let mut rd: Vec<f64> = (0..lay.nx).map(|i| c[i] + aty[i]).collect();
            for i in 0..nk {
                rd[i] -= s.z[i];
            }
            for i in lay.yhat..lay.nx {
                rd[i] += s.x[i] / nf;
            }
            let sz = dot(&s.x[..nk], &s.z);
            let quad = s.x[lay.yhat..].iter().map(|v| v * v).sum::<f64>() / (2.0 * nf);
            let pobj = quad + dot(&c, &s.x) + const_term;
            let pres = inf_norm(&rp) / bnorm;
            let dres = inf_norm(&rd) / cnorm;
            let gap = sz / pobj.abs().max(1.0);
            last_gap = gap;
            if !(pobj.is_finite() && pres.is_finite() && dres.is_finite() && sz.is_finite()) {
                termination = Termination::NonFinite;
                break;
            }
            if trace {
                eprintln!(
                    "socp {it:3}: pobj {pobj:.12e} pres {pres:.1e} dres {dres:.1e} gap {gap:.1e}"
                );
            }
            let score = (pres / tol_p).max(dres / tol_d).max(gap / tol_g);
            let improved = best.as_ref().is_none_or(|b| score < 0.5 * b.0);
            if best.as_ref().is_none_or(|b| score < b.0) {
                best = Some((score, s.clone(), gap));
            }
            if score <= 1.0 {
                termination = Termination::Converged;
                break;
            }
            if improved {
                no_progress = 0;
            } else {
                no_progress += 1;
                if no_progress >= STALL_ITERATIONS
                    && best.as_ref().is_some_and(|b| b.0 <= STALL_SCORE)
                {
                    termination = Termination::Stalled;
                    break;
                }
            }
            let mu = sz / cone.degree();
            // Scaling and the normal matrix.
            let sc = cone.scaling(&s.x[..nk], &s.z);
            let hi = self.hinv(&lay, &sc, nf);
            let tn = Instant::now();
            let nrm = match Normal::new(self, &lay, &st, &hi, opts.threads) {
                Ok(nrm) => nrm,
                // Near the optimum a factorization can fail to rounding: the best iterate stands.
                Err(_) if it > 0 => {
                    termination = Termination::Stalled;
                    break;
                }
                Err(e) => return Err(e),
            };
            t_normal += tn.elapsed().as_secs_f64();
            if trace && nrm.ridge > 0.0 {
                eprintln!("      normal matrix regularized by {:.1e}", nrm.ridge);
            }
            let td = Instant::now();
            let lam = cone.apply_w(&sc, &s.z, false);
            let lamlam = cone.circ(&lam, &lam);
            // Affine direction: ξ = −λ∘λ.
            let xi_a: Vec<f64> = lamlam.iter().map(|v| -v).collect();
            let (dxa, _, dza) = self.direction(&lay, &nrm, &hi, &sc, &lam, &xi_a, &rd, &rp, par);
            let alpha_a = cone
                .max_step(&s.x[..nk], &dxa[..nk], 1.0)
                .min(cone.max_step(&s.z, &dza, 1.0));
            let sigma = (1.0 - alpha_a).powi(3);
            // Combined direction.
            let wdx = cone.apply_w(&sc, &dxa[..nk], true);
            let wdz = cone.apply_w(&sc, &dza, false);
            let corr = cone.circ(&wdx, &wdz);
            let xi: Vec<f64> = (0..nk)
                .map(|i| sigma * mu * e[i] - lamlam[i] - corr[i])
                .collect();
            let (dx, dy, dz) = self.direction(&lay, &nrm, &hi, &sc, &lam, &xi, &rd, &rp, par);
            let amax = cone
                .max_step(&s.x[..nk], &dx[..nk], f64::INFINITY)
                .min(cone.max_step(&s.z, &dz, f64::INFINITY));
            let alpha = (STEP_FRACTION * amax).min(1.0);
            t_dir += td.elapsed().as_secs_f64();
            if trace {
                eprintln!(
                    "      alpha_a {alpha_a:.3e} sigma {sigma:.2e} alpha {alpha:.3e} mu {mu:.2e}"
                );
            }
            if !(alpha.is_finite() && alpha > MIN_STEP) {
                termination = Termination::Stalled;
                break;
            }
            for (v, d) in s.x.iter_mut().zip(&dx) {
                *v += alpha * d;
            }
            for (v, d) in s.y.iter_mut().zip(&dy) {
                *v += alpha * d;
            }
            for (v, d) in s.z.iter_mut().zip(&dz) {
                *v += alpha * d;
            }
        }
        let (s, gap) = match (termination, best) {
            (Termination::Converged, _) | (_, None) => (s, last_gap),
            (_, Some((_, b, gap))) => (b, gap),
        };
        let solve_seconds = t0.elapsed().as_secs_f64();
        if trace {
            eprintln!("socp: {solve_seconds:.3} s, normal matrices {t_normal:.3} s, directions {t_dir:.3} s");
        }
        Ok(self.socp_outcome(&lay, &s, iterations, solve_seconds, gap, termination))
    }

    /// $H^{-1}$ for the scaling `sc`.
    fn hinv(&self, lay: &Layout, sc: &Scaling, nf: f64) -> Hinv {
        let cone = &lay.cone;
        Hinv {
            lp: sc.lp.iter().map(|w| w * w).collect(),
            soc: (0..cone.soc.len())
                .map(|ci| cone.w2_block(sc, ci))
                .collect(),
            yhat: nf,
        }
    }

    /// Solve $H\Delta x + A^\top\Delta y = r_1$, $A\Delta x = r_2$ by the normal equations
    /// $M\Delta y = AH^{-1}r_1 - r_2$, $\Delta x = H^{-1}(r_1 - A^\top\Delta y)$, then up to [`MAX_REFINE`] steps of
    /// iterative refinement on the whole system: the residuals $e_1 = r_1 - H\Delta x - A^\top\Delta y$,
    /// $e_2 = r_2 - A\Delta x$ are evaluated directly (with $H$ and $H^{-1}$ applied as products with $W^{\mp1}$,
    /// never through the formed blocks) and the correction solved by the same factorization. Refining the
    /// normal equations alone is not enough: near the optimum $H^{-1}$ spans $\mu^{\mp1}$, and the rounding in
    /// $AH^{-1}A^\top$ then reaches $A\Delta x$ — the primal residual grew from $10^{-14}$ to $10^{-7}$ as $\mu$
    /// fell to $10^{-9}$ before this refinement.
    fn newton_solve(
        &self,
        lay: &Layout,
        nrm: &Normal,
        h: &HMap<'_>,
        r1: &[f64],
        r2: &[f64],
        par: faer::Par,
    ) -> (Vec<f64>, Vec<f64>) {
        let once = |r1: &[f64], r2: &[f64]| {
            let ahr1 = lay.apply_a(self, &h.inv(lay, r1), par);
            let rhs: Vec<f64> = ahr1.iter().zip(r2).map(|(a, b)| a - b).collect();
            let dy = nrm.solve(lay, &rhs);
            let aty = lay.apply_at(self, &dy, par);
            let t: Vec<f64> = r1.iter().zip(&aty).map(|(a, b)| a - b).collect();
            (h.inv(lay, &t), dy)
        };
        let (mut dx, mut dy) = once(r1, r2);
        let scale = 1.0 + inf_norm(r1).max(inf_norm(r2));
        let mut last = f64::INFINITY;
        for _ in 0..MAX_REFINE {
            let hdx = h.mul(lay, &dx);
            let aty = lay.apply_at(self, &dy, par);
            let e1: Vec<f64> = (0..lay.nx).map(|i| r1[i] - hdx[i] - aty[i]).collect();
            let adx = lay.apply_a(self, &dx, par);
            let e2: Vec<f64> = r2.iter().zip(&adx).map(|(a, b)| a - b).collect();
            let err = inf_norm(&e1).max(inf_norm(&e2));
            if err <= REFINE_TOL * scale || err > 0.5 * last {
                break;
            }
            last = err;
            let (cx, cy) = once(&e1, &e2);
            dx.iter_mut().zip(&cx).for_each(|(a, b)| *a += b);
            dy.iter_mut().zip(&cy).for_each(|(a, b)| *a += b);
        }
        (dx, dy)
    }

    /// The Newton direction for the complementarity target `xi` (module docs).
    #[allow(clippy::too_many_arguments)]
    fn direction(
        &self,
        lay: &Layout,
        nrm: &Normal,
        hi: &Hinv,
        sc: &Scaling,
        lam: &[f64],
        xi: &[f64],
        rd: &[f64],
        rp: &[f64],
        par: faer::Par,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let cone = &lay.cone;
        let nk = cone.len;
        let q = cone.inv_circ(lam, xi);
        let wq = cone.apply_w(sc, &q, true);
        let mut r1: Vec<f64> = rd.iter().map(|v| -v).collect();
        for i in 0..nk {
            r1[i] += wq[i];
        }
        let neg_rp: Vec<f64> = rp.iter().map(|v| -v).collect();
        let h = HMap {
            sc: Some(sc),
            nf: hi.yhat,
        };
        let (dx, dy) = self.newton_solve(lay, nrm, &h, &r1, &neg_rp, par);
        // Δz from the dual equation, Δz = r_d + A^⊤Δy on the cone (P vanishes there), so the dual
        // residual falls by exactly (1 − α); the complementarity equation Δz = W⁻¹q − W⁻²Δx_K holds
        // to the accuracy of the solve (forming W⁻²Δx_K instead costs cond(W)² in rounding).
        let aty = lay.apply_at(self, &dy, par);
        let dz: Vec<f64> = (0..nk).map(|i| rd[i] + aty[i]).collect();
        (dx, dy, dz)
    }

    /// The mass point and the multipliers of the final iterate, in the conventions of [`ConicOutcome`].
    fn socp_outcome(
        &self,
        lay: &Layout,
        s: &State,
        iterations: usize,
        solve_seconds: f64,
        gap: f64,
        termination: Termination,
    ) -> ConicOutcome {
        let n = lay.n;
        let depth = lay.depth;
        let last = depth - 1;
        let x = &s.x;
        let y = &s.y;
        let p = (0..depth)
            .map(|l| {
                (0..lay.sz[l])
                    .map(|j| lay.mass_of(x, l, j).max(0.0))
                    .collect()
            })
            .collect();
        let u = (0..last)
            .map(|w| {
                let nw = lay.sz[w];
                Mat::from_fn(nw, lay.sz[w + 1], |j, k| {
                    x[lay.up[w] + j + k * nw] - x[lay.um[w] + j + k * nw]
                })
            })
            .collect();
        let v = (0..lay.sz[last])
            .map(|j| x[lay.vp + j] - x[lay.vm + j])
            .collect();
        let mu = (0..last)
            .map(|w| Mat::from_fn(n, lay.sz[w + 1], |i, k| y[lay.blk[w] + k * (n + 1) + i]))
            .collect();
        let c = (0..depth).map(|l| y[lay.mass + l]).collect();
        let r = (0..n).map(|i| -y[lay.out + i]).collect();
        // α's from the sum rows: the row w − γ·sum is γ times Clarabel's S − sum, so its dual is γ·y.
        let al = |dual: f64, lam: f64| (-dual).max(0.0) / lam;
        let mut a_in: Vec<Vec<f64>> = lay.sz.iter().map(|&nl| vec![0.0; nl]).collect();
        let mut a_out: Vec<Vec<f64>> = lay.sz.iter().map(|&nl| vec![0.0; nl]).collect();
        for w in 0..last {
            let (g, lam) = (lay.gamma[w], self.cfg.lambda_w[w]);
            for k in 0..lay.sz[w + 1] {
                a_in[w + 1][k] = al(g * y[lay.blk[w] + k * (n + 1) + n], lam);
            }
            for j in 0..lay.sz[w] {
                a_out[w][j] = al(g * y[lay.t[w] + j], lam);
            }
        }
        let a_v = (0..lay.sz[last])
            .map(|j| al(lay.gamma_v * y[lay.t[last] + j], self.cfg.lambda_v))
            .collect();
        ConicOutcome {
            mass: Mass { p, u, v },
            mu,
            c,
            r,
            alphas: Some((a_in, a_out, a_v)),
            iterations,
            solve_seconds,
            gap,
            status: clarabel::solver::SolverStatus::Unsolved,
            termination,
        }
    }
}

/// $H = P + W^{-2}$ ($W = I$ without a scaling) and its inverse, applied as products with $W^{\mp1}$.
struct HMap<'a> {
    sc: Option<&'a Scaling>,
    nf: f64,
}

impl HMap<'_> {
    fn apply(&self, lay: &Layout, v: &[f64], inverse: bool) -> Vec<f64> {
        let cone = &lay.cone;
        let nk = cone.len;
        let mut out = match self.sc {
            Some(sc) => {
                let once = cone.apply_w(sc, &v[..nk], !inverse);
                cone.apply_w(sc, &once, !inverse)
            }
            None => v[..nk].to_vec(),
        };
        let f = if inverse { self.nf } else { 1.0 / self.nf };
        out.extend(v[nk..].iter().map(|x| f * x));
        out
    }
    fn mul(&self, lay: &Layout, v: &[f64]) -> Vec<f64> {
        self.apply(lay, v, false)
    }
    fn inv(&self, lay: &Layout, v: &[f64]) -> Vec<f64> {
        self.apply(lay, v, true)
    }
}

fn inf_norm(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |a, x| a.max(x.abs()))
}

#[cfg(test)]
mod tests;
