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
//! refined against the whole Newton system, matrix-free ([`DeepProgram::newton_solve`]: at most [`MAX_REFINE`] steps,
//! until the residual is below [`REFINE_TOL`] relative to the right-hand side or stops halving; 1–2 steps per
//! direction on the benchmark instances). Steps go 0.99 of the way to the boundary. Start: CVXOPT's two least-squares points in norms scaled to the program ([`DeepProgram::socp_start`]).
//!
//! # Stopping and certificates
//! It stops when the primal residual, the dual residual (relative to $1 + \|b\|_\infty$, $1 + \|c\|_\infty$) and the
//! relative gap $x_{\mathcal K}^\top z/\max(1, |f|)$ are below `tol_primal`, `tol_dual` and `tol_gap`, each floored
//! ([`TOL_FEAS_FLOOR`], [`TOL_GAP_FLOOR`]: below $10^{-9}$ rounding in the normal equations, not the method, sets the
//! residuals); when a step is shorter than [`MIN_STEP`], the factorization fails after the first step, or the worst
//! scaled residual has not halved for [`STALL_ITERATIONS`] iterations once within [`STALL_SCORE`] of its tolerance
//! (`Stalled`); or at `max_newton` (`MaxIterations`). Stopped short, it returns the best iterate seen (by the
//! worst of the three scaled residuals), not the last. The driver
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

/// The iterate: $x = (x_{\mathcal K}, \hat{\mathbf y})$, the multipliers $y$ and the cone duals $z$.
#[derive(Clone)]
struct State {
    x: Vec<f64>,
    y: Vec<f64>,
    z: Vec<f64>,
}

/// Scratch of [`DeepProgram::newton_solve`]: `nx`-long `tmp`, `e1`, `cx`; `ny`-long `adx`, `e2`, `cy`.
struct RefineBufs {
    tmp: Vec<f64>,
    e1: Vec<f64>,
    cx: Vec<f64>,
    adx: Vec<f64>,
    e2: Vec<f64>,
    cy: Vec<f64>,
}

impl RefineBufs {
    fn new(lay: &Layout) -> Self {
        Self {
            tmp: vec![0.0; lay.nx],
            e1: vec![0.0; lay.nx],
            cx: vec![0.0; lay.nx],
            adx: vec![0.0; lay.ny],
            e2: vec![0.0; lay.ny],
            cy: vec![0.0; lay.ny],
        }
    }
}

/// A Newton direction $(\Delta x, \Delta y, \Delta z)$ and the scratch that computes it.
struct Direction {
    dx: Vec<f64>,
    dy: Vec<f64>,
    dz: Vec<f64>,
    /// $\lambda\backslash\xi$, $W^{-1}(\lambda\backslash\xi)$, the right-hand sides, $A^\top\Delta y$.
    q: Vec<f64>,
    wq: Vec<f64>,
    r1: Vec<f64>,
    r2: Vec<f64>,
    aty: Vec<f64>,
}

impl Direction {
    fn new(lay: &Layout) -> Self {
        let nk = lay.cone.len;
        Self {
            dx: vec![0.0; lay.nx],
            dy: vec![0.0; lay.ny],
            dz: vec![0.0; nk],
            q: vec![0.0; nk],
            wq: vec![0.0; nk],
            r1: vec![0.0; lay.nx],
            r2: vec![0.0; lay.ny],
            aty: vec![0.0; lay.nx],
        }
    }
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
        let trace = std::env::var_os("NFF_SOCP_TRACE").is_some();

        let mut rb = RefineBufs::new(&lay);
        let (mut s, mut nrm) =
            self.socp_start(&lay, &st, &c, &b, nf, opts.threads, &mut rb, par)?;
        let e = cone.identity();
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
        let (mut t_normal, mut t_dir, mut sweeps) = (0.0, 0.0, 0);
        let mut rp = vec![0.0; lay.ny];
        let mut rd = vec![0.0; lay.nx];
        let mut lam = vec![0.0; nk];
        let mut lamlam = vec![0.0; nk];
        let mut xi = vec![0.0; nk];
        let mut wdx = vec![0.0; nk];
        let mut wdz = vec![0.0; nk];
        let mut corr = vec![0.0; nk];
        let mut aff = Direction::new(&lay);
        let mut dir = Direction::new(&lay);
        let mut sc = cone.scaling(&e, &e);
        let mut hi = Hinv {
            lp: vec![],
            soc: cone.soc.iter().map(|&(_, d)| vec![0.0; d * d]).collect(),
            yhat: nf,
        };
        for it in 0..opts.max_newton {
            iterations = it;
            // Residuals.
            lay.apply_a_into(self, &s.x, &mut rp, par);
            rp.iter_mut().zip(&b).for_each(|(r, b)| *r -= b);
            lay.apply_at_into(self, &s.y, &mut rd, par);
            for i in 0..lay.nx {
                rd[i] += c[i];
            }
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
            cone.scaling_into(&s.x[..nk], &s.z, &mut sc);
            self.hinv_into(&lay, &sc, &mut hi);
            let tn = Instant::now();
            match nrm.refactor(self, &lay, &st, &hi, opts.threads) {
                Ok(()) => {}
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
            let h = HMap::Nt(&sc, nf);
            cone.apply_w_into(&sc, &s.z, false, &mut lam);
            cone.circ_into(&lam, &lam, &mut lamlam);
            // Affine direction: ξ = −λ∘λ.
            for i in 0..nk {
                xi[i] = -lamlam[i];
            }
            sweeps += self.direction(
                &lay, &nrm, &h, &sc, &lam, &xi, &rd, &rp, &mut aff, &mut rb, par,
            );
            let alpha_a = cone
                .max_step(&s.x[..nk], &aff.dx[..nk], 1.0)
                .min(cone.max_step(&s.z, &aff.dz, 1.0));
            let sigma = (1.0 - alpha_a).powi(3);
            // Combined direction.
            cone.apply_w_into(&sc, &aff.dx[..nk], true, &mut wdx);
            cone.apply_w_into(&sc, &aff.dz, false, &mut wdz);
            cone.circ_into(&wdx, &wdz, &mut corr);
            for i in 0..nk {
                xi[i] = sigma * mu * e[i] - lamlam[i] - corr[i];
            }
            sweeps += self.direction(
                &lay, &nrm, &h, &sc, &lam, &xi, &rd, &rp, &mut dir, &mut rb, par,
            );
            let amax = cone
                .max_step(&s.x[..nk], &dir.dx[..nk], f64::INFINITY)
                .min(cone.max_step(&s.z, &dir.dz, f64::INFINITY));
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
            for (v, d) in s.x.iter_mut().zip(&dir.dx) {
                *v += alpha * d;
            }
            for (v, d) in s.y.iter_mut().zip(&dir.dy) {
                *v += alpha * d;
            }
            for (v, d) in s.z.iter_mut().zip(&dir.dz) {
                *v += alpha * d;
            }
        }
        let (s, gap) = match (termination, best) {
            (Termination::Converged, _) | (_, None) => (s, last_gap),
            (_, Some((_, b, gap))) => (b, gap),
        };
        let solve_seconds = t0.elapsed().as_secs_f64();
        if trace {
            block_stats(&lay, &s);
            eprintln!(
                "socp: {solve_seconds:.3} s, normal matrices {t_normal:.3} s, directions {t_dir:.3} s, \
                 {sweeps} refinement sweeps"
            );
        }
        Ok(self.socp_outcome(&lay, &s, iterations, solve_seconds, gap, termination))
    }

    /// The starting point, and a normal matrix (its storage is reused by the iterations).
    ///
    /// CVXOPT's two least-squares problems (Vandenberghe 2010, §7.3), each in a norm scaled to the
    /// program: the primal point $\min\frac12\|D_p^{-1}x_{\mathcal K}\|^2 + \frac12\hat{\mathbf y}^\top P\hat{\mathbf y}$ s.t. $Ax = b$ and the dual point
    /// $\min\frac12\|D_zz\|^2$ over $z = c + A^\top y$ (on the cone; $\hat{\mathbf y}$ free), then each shifted into the cone along
    /// the identity of its scaled variables ($x_{\mathcal K} \mathrel{+}= (1 + a)D_p\mathbf e$ if $a = -\min\mathrm{eig}(D_p^{-1}x_{\mathcal K})\ge0$, the
    /// same for $z$ with $D_z$). $D_p$ is $1/n_\ell$ on the cone and output weights of layer $\ell$ and $1/(n_wn_{w+1})$ on the
    /// weights of layer $w$ — the scale of a uniform point ($p = 1/n_\ell$, $\hat U\sim 1/(n_wn_{w+1})$); $D_z$ is 1 on the cones and
    /// output weights and $1/\sqrt{n_wn_{w+1}}$ on the weights (chosen by iteration counts on the instances of
    /// `benches/compare/convex_deep.py`). With the unscaled start ($D = I$) the masses start at
    /// $\sim1$ each, the mass rows are violated by $\sim n_\ell$ and the method took 44, 58 and ≥100 iterations at 100, 200
    /// and 1,000 candidates per layer; with these weights 30, 30 and 41 (and 19–21 at 25–50).
    #[allow(clippy::too_many_arguments)]
    fn socp_start(
        &self,
        lay: &Layout,
        st: &Static,
        c: &[f64],
        b: &[f64],
        nf: f64,
        threads: usize,
        rb: &mut RefineBufs,
        par: faer::Par,
    ) -> Result<(State, Normal)> {
        let cone = &lay.cone;
        let nk = cone.len;
        // Per-coordinate weights: (n_w n_{w+1})^(−eu/2) on the weights, n_ℓ^(−ec) on the cones and v̂.
        let weights = |eu: f64, ec: f64| -> Vec<f64> {
            let mut d = vec![1.0; nk];
            for w in 0..lay.depth - 1 {
                let len = lay.sz[w] * lay.sz[w + 1];
                let v = (len as f64).powf(-eu / 2.0);
                d[lay.up[w]..lay.up[w] + len].fill(v);
                d[lay.um[w]..lay.um[w] + len].fill(v);
            }
            let nl = lay.sz[lay.depth - 1];
            let v = (nl as f64).powf(-ec);
            d[lay.vp..lay.vp + nl].fill(v);
            d[lay.vm..lay.vm + nl].fill(v);
            for l in 0..lay.depth {
                let v = (lay.sz[l] as f64).powf(-ec);
                let o = lay.cone_off[l];
                d[o..o + lay.sz[l] * lay.cone_dim[l]].fill(v);
            }
            d
        };
        // H⁻¹ = diag(d²) on the cone, N on ŷ, as the normal equations take it.
        let hinv_of = |d2: &[f64]| Hinv {
            lp: d2[..cone.lp].to_vec(),
            soc: cone
                .soc
                .iter()
                .map(|&(o, d)| {
                    let mut e = vec![0.0; d * d];
                    (0..d).for_each(|i| e[i * d + i] = d2[o]);
                    e
                })
                .collect(),
            yhat: nf,
        };
        let dp = weights(2.0, 1.0);
        let dz = weights(1.0, 0.0);
        let dp2: Vec<f64> = dp.iter().map(|v| v * v).collect();
        // The dual problem weighs z by D_z: H⁻¹ = D_z².
        let dz2: Vec<f64> = dz.iter().map(|v| v * v).collect();
        let mut x = vec![0.0; lay.nx];
        let mut y = vec![0.0; lay.ny];
        let mut aty = vec![0.0; lay.nx];
        // Primal: H⁻¹ = D_p², r₁ = 0, r₂ = b.
        let mut nrm = Normal::new(self, lay, st, &hinv_of(&dp2), threads)?;
        let zero = vec![0.0; lay.nx];
        let h = HMap::Diag(&dp2, nf);
        self.newton_solve(lay, &nrm, &h, &zero, b, &mut x, &mut y, &mut aty, rb, par);
        // Dual: H⁻¹ = D_z², r₁ = −c, r₂ = 0; z = c + Aᵀy on the cone.
        nrm.refactor(self, lay, st, &hinv_of(&dz2), threads)?;
        let h = HMap::Diag(&dz2, nf);
        let neg_c: Vec<f64> = c.iter().map(|v| -v).collect();
        let zero_y = vec![0.0; lay.ny];
        let mut xd = vec![0.0; lay.nx];
        self.newton_solve(
            lay, &nrm, &h, &neg_c, &zero_y, &mut xd, &mut y, &mut aty, rb, par,
        );
        let z = (0..nk).map(|i| c[i] + aty[i]).collect();
        let mut s = State { x, y, z };
        let e = cone.identity();
        for (v, d) in [(&mut s.x[..nk], &dp), (&mut s.z[..], &dz)] {
            let scaled: Vec<f64> = (0..nk).map(|i| v[i] / d[i]).collect();
            let a = -cone.min_eig(&scaled);
            if a >= -1e-8 {
                for i in 0..nk {
                    v[i] += (1.0 + a) * e[i] * d[i];
                }
            }
        }
        Ok((s, nrm))
    }

    /// $H^{-1}$ for the scaling `sc`, in the storage of `hi`.
    fn hinv_into(&self, lay: &Layout, sc: &Scaling, hi: &mut Hinv) {
        let cone = &lay.cone;
        hi.lp.clear();
        hi.lp.extend(sc.lp.iter().map(|w| w * w));
        for (ci, blk) in hi.soc.iter_mut().enumerate() {
            cone.w2_block_into(sc, ci, blk);
        }
    }

    /// Solve $H\Delta x + A^\top\Delta y = r_1$, $A\Delta x = r_2$ into `dx`, `dy` by the normal equations
    /// $M\Delta y = AH^{-1}r_1 - r_2$, $\Delta x = H^{-1}(r_1 - A^\top\Delta y)$, then up to [`MAX_REFINE`] steps of
    /// iterative refinement on the whole system: the residuals $e_1 = r_1 - H\Delta x - A^\top\Delta y$,
    /// $e_2 = r_2 - A\Delta x$ are evaluated directly (with $H$ and $H^{-1}$ applied as products with $W^{\mp1}$,
    /// never through the formed blocks) and the correction solved by the same factorization. Refining the
    /// normal equations alone is not enough: near the optimum $H^{-1}$ spans $\mu^{\mp1}$, and the rounding in
    /// $AH^{-1}A^\top$ then reaches $A\Delta x$ — the primal residual grew from $10^{-14}$ to $10^{-7}$ as $\mu$
    /// fell to $10^{-9}$ before this refinement. On return `aty` holds $A^\top\Delta y$; the value is the
    /// number of refinement steps taken.
    #[allow(clippy::too_many_arguments)]
    fn newton_solve(
        &self,
        lay: &Layout,
        nrm: &Normal,
        h: &HMap<'_>,
        r1: &[f64],
        r2: &[f64],
        dx: &mut [f64],
        dy: &mut [f64],
        aty: &mut [f64],
        rb: &mut RefineBufs,
        par: faer::Par,
    ) -> usize {
        // One solve of the normal equations: (cx, cy) for (r1, r2), with `aty` and `tmp` as scratch.
        let once = |r1: &[f64],
                    r2: &[f64],
                    cx: &mut [f64],
                    cy: &mut [f64],
                    aty: &mut [f64],
                    tmp: &mut [f64],
                    adx: &mut [f64]| {
            h.apply_into(lay, r1, true, tmp);
            lay.apply_a_into(self, tmp, adx, par);
            adx.iter_mut().zip(r2).for_each(|(a, b)| *a -= b);
            cy.copy_from_slice(&nrm.solve(lay, adx));
            lay.apply_at_into(self, cy, aty, par);
            tmp.iter_mut()
                .zip(r1.iter().zip(aty.iter()))
                .for_each(|(t, (a, b))| *t = a - b);
            h.apply_into(lay, tmp, true, cx);
        };
        let RefineBufs {
            tmp,
            e1,
            cx,
            adx,
            e2,
            cy,
        } = rb;
        once(r1, r2, dx, dy, aty, tmp, adx);
        let scale = 1.0 + inf_norm(r1).max(inf_norm(r2));
        let mut last = f64::INFINITY;
        let mut steps = 0;
        loop {
            h.apply_into(lay, dx, false, tmp);
            lay.apply_at_into(self, dy, aty, par);
            for i in 0..lay.nx {
                e1[i] = r1[i] - tmp[i] - aty[i];
            }
            lay.apply_a_into(self, dx, adx, par);
            for i in 0..lay.ny {
                e2[i] = r2[i] - adx[i];
            }
            let err = inf_norm(e1).max(inf_norm(e2));
            if steps == MAX_REFINE || err <= REFINE_TOL * scale || err > 0.5 * last {
                break;
            }
            last = err;
            steps += 1;
            once(e1, e2, cx, cy, aty, tmp, adx);
            dx.iter_mut().zip(cx.iter()).for_each(|(a, b)| *a += b);
            dy.iter_mut().zip(cy.iter()).for_each(|(a, b)| *a += b);
        }
        steps
    }

    /// The Newton direction for the complementarity target `xi` (module docs) into `d`; the value is the
    /// number of refinement steps.
    #[allow(clippy::too_many_arguments)]
    fn direction(
        &self,
        lay: &Layout,
        nrm: &Normal,
        h: &HMap<'_>,
        sc: &Scaling,
        lam: &[f64],
        xi: &[f64],
        rd: &[f64],
        rp: &[f64],
        d: &mut Direction,
        rb: &mut RefineBufs,
        par: faer::Par,
    ) -> usize {
        let cone = &lay.cone;
        let nk = cone.len;
        cone.inv_circ_into(lam, xi, &mut d.q);
        cone.apply_w_into(sc, &d.q, true, &mut d.wq);
        for i in 0..lay.nx {
            d.r1[i] = -rd[i];
        }
        for i in 0..nk {
            d.r1[i] += d.wq[i];
        }
        for i in 0..lay.ny {
            d.r2[i] = -rp[i];
        }
        let steps = self.newton_solve(
            lay, nrm, h, &d.r1, &d.r2, &mut d.dx, &mut d.dy, &mut d.aty, rb, par,
        );
        // Δz from the dual equation, Δz = r_d + A^⊤Δy on the cone (P vanishes there), so the dual
        // residual falls by exactly (1 − α); the complementarity equation Δz = W⁻¹q − W⁻²Δx_K holds
        // to the accuracy of the solve (forming W⁻²Δx_K instead costs cond(W)² in rounding).
        for i in 0..nk {
            d.dz[i] = rd[i] + d.aty[i];
        }
        steps
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

/// $H = P + W^{-2}$ and its inverse: `Nt` with the NT scaling (applied as products with $W^{\mp1}$), `Diag`
/// with $H^{-1} = \mathrm{diag}(d)$ on the cone coordinates (the start); $P = I/N$ on $\hat{\mathbf y}$ (the scalar).
enum HMap<'a> {
    Nt(&'a Scaling, f64),
    Diag(&'a [f64], f64),
}

impl HMap<'_> {
    /// $Hv$ (`inverse`: $H^{-1}v$) into `out`.
    fn apply_into(&self, lay: &Layout, v: &[f64], inverse: bool, out: &mut [f64]) {
        let cone = &lay.cone;
        let nk = cone.len;
        let nf = match *self {
            HMap::Nt(sc, nf) => {
                // H = W⁻² on the cone.
                cone.apply_w2_into(sc, &v[..nk], !inverse, &mut out[..nk]);
                nf
            }
            HMap::Diag(d, nf) => {
                for i in 0..nk {
                    out[i] = if inverse { v[i] * d[i] } else { v[i] / d[i] };
                }
                nf
            }
        };
        let f = if inverse { nf } else { 1.0 / nf };
        for i in nk..lay.nx {
            out[i] = f * v[i];
        }
    }
}

/// Trace: quantiles of |x| and |z| per block of the final iterate.
fn block_stats(lay: &Layout, s: &State) {
    let q = |mut v: Vec<f64>| -> String {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let at = |f: f64| v[((v.len() - 1) as f64 * f) as usize];
        format!(
            "{:.1e} {:.1e} {:.1e} {:.1e}",
            at(0.1),
            at(0.5),
            at(0.9),
            at(1.0)
        )
    };
    let blk = |name: &str, idx: Vec<usize>| {
        let xs = idx.iter().map(|&i| s.x[i].abs()).collect();
        let zs = idx.iter().map(|&i| s.z[i].abs()).collect();
        eprintln!("  {name:10} x [{}] z [{}]", q(xs), q(zs));
    };
    for w in 0..lay.depth - 1 {
        let len = lay.sz[w] * lay.sz[w + 1];
        blk(&format!("U+{w}"), (lay.up[w]..lay.up[w] + len).collect());
    }
    blk("v+", (lay.vp..lay.vp + lay.sz[lay.depth - 1]).collect());
    for l in 0..lay.depth {
        for c in 0..lay.cone_dim[l] {
            blk(
                &format!("cone{l}.{c}"),
                (0..lay.sz[l]).map(|j| lay.cone_at(l, j) + c).collect(),
            );
        }
    }
    let ya: Vec<f64> = s.y.iter().map(|v| v.abs()).collect();
    eprintln!("  y cons [{}]", q(ya[..lay.g0].to_vec()));
    eprintln!("  y glob [{}]", q(ya[lay.g0..].to_vec()));
}

fn inf_norm(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |a, x| a.max(x.abs()))
}

#[cfg(test)]
mod tests;
