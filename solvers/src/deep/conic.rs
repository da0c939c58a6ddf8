//! The deep program as a conic program (math.md §7), solved by Clarabel: an independent engine and a
//! test oracle for the program's own interior-point method.
//!
//! # The conic form (mass variables of [`crate::deep`])
//! Variables, per layer $\ell$ and weight layer $\ell\to\ell+1$:
//! masses $p_\ell\ge0$; weights $\hat U_\ell = \hat U^+_\ell - \hat U^-_\ell$, $\hat U^\pm\ge0$; output weights
//! $\hat v = \hat v^+ - \hat v^-$, $\hat v^\pm\ge0$; predictions $\hat{\mathbf y}\in\mathbb R^N$; and for $q>1$ the column sums
//! $S_{\ell,k}$, row sums $T_{\ell,j}$, output magnitudes $V_j$ and one epigraph $t$ per perspective.
//! Equalities (Clarabel's zero cone):
//! $$\textstyle\sum_jp_\ell(j) = 1,\qquad \sum_j(\hat U^+ - \hat U^-)_{jk}\,h(\mathbf z_{\ell,j}) - p_{\ell+1}(k)\,\mathbf z_{\ell+1,k} = 0,$$
//! $$\textstyle S_{\ell,k} - \sum_j(\hat U^+ + \hat U^-)_{jk} = 0,\quad T_{\ell,j} - \sum_k(\hat U^+ + \hat U^-)_{jk} = 0,\quad
//!   V_j - (\hat v^+ + \hat v^-)_j = 0,\quad \hat{\mathbf y} - H_L(\hat v^+ - \hat v^-) = 0 .$$
//! Perspectives, for $q>1$ and $\lambda>0$: $S^q/p^{q-1}\le t\iff(t, p, S)\in\mathcal K_{1/q}$, Clarabel's power cone
//! $\{(x, y, z): x^{1/q}y^{1-1/q}\ge|z|\}$, with $\lambda t$ in the objective (likewise $(t, p_\ell(j), T_{\ell,j})$ and
//! $(t, p_L(j), V_j)$); for $q = 2$ the rotated second-order cone $S^2\le tp\iff(t + p, t - p, 2S)\in\mathcal Q^3$ instead (a
//! symmetric cone; the same program). For $q = 1$ the penalties are linear: $2\lambda_\ell\sum(\hat U^+ + \hat U^-)$ and $\lambda_v\sum(\hat v^+ + \hat v^-)$,
//! and nothing is lifted. Entropy ($\beta_\ell>0$): $p\log(p/\pi)\le e\iff(-e, p, \pi)\in K_{\exp} = \{(x, y, z): ye^{x/y}\le z\}$,
//! with $\beta_\ell e$ in the objective. Feature costs $r_\ell(j)p_\ell(j)$ are linear. Loss: squared,
//! $\frac1{2N}\|\hat{\mathbf y} - \mathbf y\|^2$ through Clarabel's quadratic term $P = I/N$ on $\hat{\mathbf y}$ (the constant
//! $\|\mathbf y\|^2/2N$ dropped); logistic, $\frac1N\sum_i s_i$ with the softplus epigraph
//! $\log(1 + e^{-y_i\hat y_i})\le s_i\iff a_i + b_i\le1,\ (-y_i\hat y_i - s_i, 1, a_i)\in K_{\exp},\ (-s_i, 1, b_i)\in K_{\exp}$.
//!
//! # Multipliers
//! Clarabel solves $\min\frac12x^\top Px + c^\top x$ s.t. $Ax + s = b$, $s\in\mathcal K$, with dual $z\in\mathcal K^*$ and
//! $Px + c + A^\top z = 0$. The consistency and mass rows above are written with $A$ = the constraint's own
//! coefficients, so their duals are the multipliers of the Lagrangian $f + \sum_k\boldsymbol\mu_k^\top e_k + \sum_\ell c_\ell(\sum_jp_\ell(j) - 1)$,
//! the convention of [`crate::deep::DeepMultipliers`] and of the dense interior point: stationarity in
//! $\hat U^\pm_{jk}$ reads $\pm h_j^\top\boldsymbol\mu_k - w_{S,k} - w_{T,j} = z^{\ge0}\ge0$, with $w$ the duals of the sum rows, so
//! $|h_j^\top\boldsymbol\mu_k|\le\lambda(\alpha^{\rm in}_k + \alpha^{\rm out}_j)$ for $\alpha^{\rm in}_k = -w_{S,k}/\lambda$, $\alpha^{\rm out}_j = -w_{T,j}/\lambda$ (and
//! $\alpha^v_j = -w_{V,j}/\lambda_v$): the coverage constraints of the certified bound hold without repair, up to
//! Clarabel's dual residual (the bound repairs whatever remains). The output multiplier is
//! $\mathbf r^* = -$(dual of the prediction rows); the driver certifies with it or with the residual at the
//! returned predictions, whichever bound is higher.
//!
//! # Limits (measured, see the tests)
//! Zero strengths are refused: with $\lambda_\ell = 0$ or $\lambda_v = 0$ that layer's weights are free, the optimal
//! set is unbounded and the certified bound is $-\infty$ (Clarabel itself reports `Solved`). On the
//! ill-conditioned feature matrices of low-dimensional data ($H_\ell$ with singular values down to $10^{-12}$ at
//! $N = 16$, $d = 1$) Clarabel closes the gap but its primal residual stalls (relative $10^{-10}$ at $N = 6$,
//! $10^{-8}$ at $N = 16$), and it ends `AlmostSolved` (→ [`Termination::Stalled`]): the point is still
//! returned and evaluated, but its objective is only as good as its primal residual.
use super::{Alphas, DeepOptions, DeepProgram, Mass};
use crate::error::{Result, SolverError};
use crate::lbfgs::Termination;
use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettings, DefaultSolver, IPSolver, SolverStatus, SupportedConeT,
    SupportedConeT::{ExponentialConeT, NonnegativeConeT, PowerConeT, SecondOrderConeT, ZeroConeT},
};
use faer::Mat;
use nff_core::Loss;

/// What the Clarabel solve returns (mass variables and multipliers).
pub(crate) struct ConicOutcome {
    pub mass: Mass,
    /// Consistency multipliers $\boldsymbol\mu_{\ell+1}$ ($N\times n_{\ell+1}$), convention of `DeepMultipliers::mu`.
    pub mu: Vec<Mat<f64>>,
    /// Mass multipliers $c_\ell$.
    pub c: Vec<f64>,
    /// Output multiplier $\mathbf r^*$ (minus the dual of the prediction rows).
    pub r: Vec<f64>,
    /// $\alpha$'s from the duals of the sum rows (`None` for $q = 1$).
    pub alphas: Option<Alphas>,
    /// Clarabel's iterations.
    pub iterations: usize,
    /// Clarabel's own solve time, seconds (setup excluded; read by the timing test).
    #[cfg_attr(not(test), allow(dead_code))]
    pub solve_seconds: f64,
    /// Clarabel's own duality gap $|f_{\rm primal} - f_{\rm dual}|$ of its (scaled) problem.
    pub gap: f64,
    /// Clarabel's status.
    #[cfg_attr(not(test), allow(dead_code))]
    pub status: SolverStatus,
    /// The status mapped to a [`Termination`].
    pub termination: Termination,
}

/// Column (variable) offsets of the conic form.
struct Cols {
    p: Vec<usize>,
    up: Vec<usize>,
    um: Vec<usize>,
    vp: usize,
    vm: usize,
    /// Lifted sums (only for $q>1$): $S_\ell$ (n_{l+1}), $T_\ell$ (n_l), $V$ (n_L).
    s: Vec<usize>,
    t: Vec<usize>,
    vv: usize,
    y: usize,
    len: usize,
}

/// Accumulates the rows of $A$, $b$ and the cone list, one cone block at a time.
struct Rows {
    i: Vec<usize>,
    j: Vec<usize>,
    v: Vec<f64>,
    b: Vec<f64>,
    cones: Vec<SupportedConeT<f64>>,
}

impl Rows {
    /// A new row with right-hand side `rhs`; returns its index.
    fn row(&mut self, rhs: f64) -> usize {
        self.b.push(rhs);
        self.b.len() - 1
    }
    fn put(&mut self, r: usize, c: usize, a: f64) {
        if a != 0.0 {
            self.i.push(r);
            self.j.push(c);
            self.v.push(a);
        }
    }
    /// Close the rows added since the previous cone as `cone` (merging consecutive zero and
    /// nonnegative cones).
    fn cone(&mut self, cone: SupportedConeT<f64>) {
        match (self.cones.last_mut(), &cone) {
            (Some(ZeroConeT(a)), ZeroConeT(b)) => *a += b,
            (Some(NonnegativeConeT(a)), NonnegativeConeT(b)) => *a += b,
            _ => self.cones.push(cone),
        }
    }
}

/// Append a variable with linear cost `c`; returns its column.
fn new_col(cost: &mut Vec<f64>, c: f64) -> usize {
    cost.push(c);
    cost.len() - 1
}

/// Clarabel's status as a [`Termination`]; `Err` for infeasibility certificates (no point to evaluate).
pub(super) fn map_status(status: SolverStatus) -> Result<Termination> {
    use SolverStatus as S;
    match status {
        S::Solved => Ok(Termination::Converged),
        // Reduced accuracy or no progress: the point is returned and evaluated, but not converged.
        S::AlmostSolved | S::InsufficientProgress => Ok(Termination::Stalled),
        S::MaxIterations | S::MaxTime => Ok(Termination::MaxIterations),
        S::NumericalError => Ok(Termination::NonFinite),
        S::PrimalInfeasible
        | S::DualInfeasible
        | S::AlmostPrimalInfeasible
        | S::AlmostDualInfeasible => Err(SolverError::invalid(
            "deep program for Clarabel",
            "a feasible, bounded program",
            format!("status {status:?} (a certificate, not a solution point)"),
        )),
        S::Unsolved | S::CallbackTerminated => Err(SolverError::numerical(
            "Clarabel solve of the deep program",
            format!("status {status:?}: no solution point to evaluate"),
        )),
    }
}

/// Clarabel's primal-feasibility tolerance is floored here: on these programs its primal residual
/// stalls at $10^{-10}$–$10^{-9}$ (relative, $N\le10$) once the gap has closed (module docs, Limits), so a
/// tighter value only turns `Solved` into `AlmostSolved` (measured on 32 small programs).
const CLARABEL_TOL_FEAS_FLOOR: f64 = 1e-9;

/// Clarabel's settings from [`DeepOptions`] (see [`DeepProgram::solve_clarabel`]). Iterative refinement
/// runs up to 50 steps toward $10^{-16}$ (default: 10 steps, $10^{-13}$, stop ratio 5): more programs reach
/// `Solved`, and at $N = 16$ the primal residual is 3–8× lower, for 3–6× the time per iteration.
pub(super) fn clarabel_settings(opts: &DeepOptions) -> DefaultSettings<f64> {
    DefaultSettings {
        verbose: false,
        max_iter: u32::try_from(opts.max_newton).unwrap_or(u32::MAX),
        tol_gap_abs: opts.tol_gap,
        tol_gap_rel: opts.tol_gap,
        tol_feas: opts.tol_primal.max(CLARABEL_TOL_FEAS_FLOOR),
        iterative_refinement_reltol: 1e-16,
        iterative_refinement_abstol: 1e-16,
        iterative_refinement_max_iter: 50,
        iterative_refinement_stop_ratio: 1.0,
        ..DefaultSettings::default()
    }
}

impl DeepProgram {
    /// Solve the conic form of the module docs with Clarabel (cold start: Clarabel has no warm start).
    /// Tolerances: `tol_gap` → Clarabel's relative and absolute gap tolerances, `tol_primal` → its
    /// feasibility tolerance (floored at `CLARABEL_TOL_FEAS_FLOOR`), `max_newton` → its iteration limit.
    /// Errors: non-finite data, a Clarabel setup error, an infeasibility certificate, or a returned point
    /// with non-finite entries.
    pub(super) fn solve_clarabel(&self, opts: &DeepOptions) -> Result<ConicOutcome> {
        self.solve_clarabel_with(clarabel_settings(opts))
    }

    /// [`DeepProgram::solve_clarabel`] with Clarabel's settings given.
    pub(super) fn solve_clarabel_with(
        &self,
        settings: DefaultSettings<f64>,
    ) -> Result<ConicOutcome> {
        let cfg = &self.cfg;
        if cfg.lambda_v == 0.0 || cfg.lambda_w.contains(&0.0) {
            return Err(SolverError::invalid(
                "strengths for the Clarabel engine",
                "lambda_w and lambda_v > 0 (a zero strength leaves that layer's weights free: the \
                 optimal set is unbounded and no certified bound exists)",
                format!("lambda_w = {:?}, lambda_v = {}", cfg.lambda_w, cfg.lambda_v),
            ));
        }
        let q = self.cfg.q;
        let lifted = q > 1.0;
        let sizes = self.sizes();
        let depth = sizes.len();
        let n = self.n();
        let nf = n as f64;
        let last = depth - 1;

        // Columns.
        let mut off = 0;
        let mut take = |k: usize| {
            let o = off;
            off += k;
            o
        };
        let p: Vec<usize> = sizes.iter().map(|&nl| take(nl)).collect();
        let (mut up, mut um) = (Vec::new(), Vec::new());
        for l in 0..depth - 1 {
            up.push(take(sizes[l] * sizes[l + 1]));
            um.push(take(sizes[l] * sizes[l + 1]));
        }
        let vp = take(sizes[last]);
        let vm = take(sizes[last]);
        let (mut s, mut t) = (Vec::new(), Vec::new());
        let mut vv = 0;
        if lifted {
            for l in 0..depth - 1 {
                s.push(take(sizes[l + 1]));
                t.push(take(sizes[l]));
            }
            vv = take(sizes[last]);
        }
        let y = take(n);
        let cols = Cols {
            p,
            up,
            um,
            vp,
            vm,
            s,
            t,
            vv,
            y,
            len: off,
        };
        // Further columns (epigraphs, entropy and logistic auxiliaries) are appended by `new_col`.
        let mut cost = vec![0.0; cols.len];

        let mut rows = Rows {
            i: Vec::new(),
            j: Vec::new(),
            v: Vec::new(),
            b: Vec::new(),
            cones: Vec::new(),
        };

        // Zero cone: mass, consistency, sums, predictions.
        let r_mass: Vec<usize> = (0..depth).map(|_| rows.row(1.0)).collect();
        for l in 0..depth {
            for j in 0..sizes[l] {
                rows.put(r_mass[l], cols.p[l] + j, 1.0);
            }
        }
        let mut r_cons = Vec::new();
        for l in 0..depth - 1 {
            let (nl, nk) = (sizes[l], sizes[l + 1]);
            let r0 = rows.b.len();
            r_cons.push(r0);
            for _ in 0..n * nk {
                rows.row(0.0);
            }
            let h = &self.h[l];
            let z = &self.cand.z[l + 1];
            for k in 0..nk {
                for j in 0..nl {
                    for i in 0..n {
                        let a = h[(i, j)];
                        rows.put(r0 + k * n + i, cols.up[l] + j + k * nl, a);
                        rows.put(r0 + k * n + i, cols.um[l] + j + k * nl, -a);
                    }
                }
                for i in 0..n {
                    rows.put(r0 + k * n + i, cols.p[l + 1] + k, -z[(i, k)]);
                }
            }
        }
        let (mut r_s, mut r_t) = (Vec::new(), Vec::new());
        let mut r_v = 0;
        if lifted {
            for l in 0..depth - 1 {
                let (nl, nk) = (sizes[l], sizes[l + 1]);
                let rs0 = rows.b.len();
                for _ in 0..nk {
                    rows.row(0.0);
                }
                let rt0 = rows.b.len();
                for _ in 0..nl {
                    rows.row(0.0);
                }
                for k in 0..nk {
                    rows.put(rs0 + k, cols.s[l] + k, 1.0);
                    for j in 0..nl {
                        for c in [cols.up[l], cols.um[l]] {
                            rows.put(rs0 + k, c + j + k * nl, -1.0);
                            rows.put(rt0 + j, c + j + k * nl, -1.0);
                        }
                    }
                }
                for j in 0..nl {
                    rows.put(rt0 + j, cols.t[l] + j, 1.0);
                }
                r_s.push(rs0);
                r_t.push(rt0);
            }
            r_v = rows.b.len();
            for j in 0..sizes[last] {
                let r = rows.row(0.0);
                rows.put(r, cols.vv + j, 1.0);
                rows.put(r, cols.vp + j, -1.0);
                rows.put(r, cols.vm + j, -1.0);
            }
        }
        let r_y = rows.b.len();
        {
            let hl = &self.h[last];
            for i in 0..n {
                let r = rows.row(0.0);
                rows.put(r, cols.y + i, 1.0);
                for j in 0..sizes[last] {
                    rows.put(r, cols.vp + j, -hl[(i, j)]);
                    rows.put(r, cols.vm + j, hl[(i, j)]);
                }
            }
        }
        rows.cone(ZeroConeT(rows.b.len()));

        // Nonnegative cone: p, U±, v± (s = x ≥ 0: A = −I, b = 0).
        let nn0 = rows.b.len();
        for c in 0..cols.vm + sizes[last] {
            let r = rows.row(0.0);
            rows.put(r, c, -1.0);
        }
        // Linear costs: feature costs, and for q = 1 the penalties.
        for l in 0..depth {
            for j in 0..sizes[l] {
                cost[cols.p[l] + j] = self.cost[l][j];
            }
        }
        if !lifted {
            for l in 0..depth - 1 {
                let lam = self.lambda_layer(l);
                let cnt = sizes[l] * sizes[l + 1];
                for c in [cols.up[l], cols.um[l]] {
                    cost[c..c + cnt].fill(2.0 * lam);
                }
            }
            for c in [cols.vp, cols.vm] {
                cost[c..c + sizes[last]].fill(self.cfg.lambda_v);
            }
        }
        // Logistic: a_i + b_i ≤ 1 rows (nonnegative) come with the auxiliaries.
        let mut logistic = Vec::new();
        if self.loss == Loss::Logistic {
            for i in 0..n {
                let si = new_col(&mut cost, 1.0 / nf);
                let ai = new_col(&mut cost, 0.0);
                let bi = new_col(&mut cost, 0.0);
                let r = rows.row(1.0);
                rows.put(r, ai, 1.0);
                rows.put(r, bi, 1.0);
                logistic.push((i, si, ai, bi));
            }
        }
        rows.cone(NonnegativeConeT(rows.b.len() - nn0));

        // Power cones (t, p, S) ∈ K_{1/q}.
        if lifted {
            let alpha = 1.0 / q;
            let pow = |rows: &mut Rows, cost: &mut Vec<f64>, lam: f64, pc: usize, sc: usize| {
                if lam > 0.0 {
                    let tc = new_col(cost, lam);
                    if q == 2.0 {
                        // (t + p, t - p, 2S) in the second-order cone.
                        let r = rows.row(0.0);
                        rows.put(r, tc, -1.0);
                        rows.put(r, pc, -1.0);
                        let r = rows.row(0.0);
                        rows.put(r, tc, -1.0);
                        rows.put(r, pc, 1.0);
                        let r = rows.row(0.0);
                        rows.put(r, sc, -2.0);
                        rows.cone(SecondOrderConeT(3));
                    } else {
                        for c in [tc, pc, sc] {
                            let r = rows.row(0.0);
                            rows.put(r, c, -1.0);
                        }
                        rows.cone(PowerConeT(alpha));
                    }
                }
            };
            for l in 0..depth - 1 {
                let lam = self.lambda_layer(l);
                for k in 0..sizes[l + 1] {
                    pow(&mut rows, &mut cost, lam, cols.p[l + 1] + k, cols.s[l] + k);
                }
                for j in 0..sizes[l] {
                    pow(&mut rows, &mut cost, lam, cols.p[l] + j, cols.t[l] + j);
                }
            }
            for j in 0..sizes[last] {
                let lv = self.cfg.lambda_v;
                pow(&mut rows, &mut cost, lv, cols.p[last] + j, cols.vv + j);
            }
        }

        // Exponential cones: entropy (−e, p, π), softplus epigraphs.
        for l in 0..depth {
            let beta = self.cfg.beta[l];
            if beta > 0.0 {
                for j in 0..sizes[l] {
                    let e = new_col(&mut cost, beta);
                    let r0 = rows.row(0.0);
                    rows.put(r0, e, 1.0);
                    let r1 = rows.row(0.0);
                    rows.put(r1, cols.p[l] + j, -1.0);
                    rows.row(self.cand.pi[l][j]);
                    rows.cone(ExponentialConeT());
                }
            }
        }
        for &(i, si, ai, bi) in &logistic {
            // (−y ŷ − s, 1, a): s0 = b − Ax = −y ŷ − s.
            let r0 = rows.row(0.0);
            rows.put(r0, cols.y + i, self.y[i]);
            rows.put(r0, si, 1.0);
            rows.row(1.0);
            let r2 = rows.row(0.0);
            rows.put(r2, ai, -1.0);
            rows.cone(ExponentialConeT());
            // (−s, 1, b).
            let r0 = rows.row(0.0);
            rows.put(r0, si, 1.0);
            rows.row(1.0);
            let r2 = rows.row(0.0);
            rows.put(r2, bi, -1.0);
            rows.cone(ExponentialConeT());
        }

        // Quadratic term (squared loss) and its linear part.
        let mut pi_ = Vec::new();
        let mut pj = Vec::new();
        let mut pv = Vec::new();
        if self.loss == Loss::Squared {
            for i in 0..n {
                pi_.push(cols.y + i);
                pj.push(cols.y + i);
                pv.push(1.0 / nf);
                cost[cols.y + i] = -self.y[i] / nf;
            }
        }
        let finite = rows.v.iter().chain(&rows.b).chain(&cost).chain(&pv);
        if let Some(x) = finite.copied().find(|x| !x.is_finite()) {
            return Err(SolverError::invalid(
                "conic form of the deep program",
                "finite data",
                x,
            ));
        }
        let m = rows.b.len();
        let len = cost.len();
        let a_mat = CscMatrix::new_from_triplets(m, len, rows.i, rows.j, rows.v);
        let p_mat = CscMatrix::new_from_triplets(len, len, pi_, pj, pv);
        let mut solver = DefaultSolver::new(&p_mat, &cost, &a_mat, &rows.b, &rows.cones, settings)
            .map_err(|e| SolverError::numerical("Clarabel setup of the deep program", e))?;
        solver.solve();
        let sol = &solver.solution;
        let termination = map_status(sol.status)?;
        if let Some(bad) = sol
            .x
            .iter()
            .chain(&sol.z)
            .chain(&sol.s)
            .find(|v| !v.is_finite())
        {
            return Err(SolverError::numerical(
                "Clarabel solve of the deep program",
                format!("status {:?} with a non-finite entry {bad}", sol.status),
            ));
        }
        let x = &sol.x;
        let z = &sol.z;
        // Back to mass variables and multipliers. The masses are read from the slacks of their
        // nonnegativity rows, which Clarabel keeps inside the cone (x itself can be -1e-13, where the
        // exact objective is +inf); they differ from x by the residual of those rows.
        let pm = (0..depth)
            .map(|l| {
                (0..sizes[l])
                    .map(|j| sol.s[nn0 + cols.p[l] + j].max(0.0))
                    .collect()
            })
            .collect();
        let u = (0..depth - 1)
            .map(|l| {
                let nl = sizes[l];
                Mat::from_fn(nl, sizes[l + 1], |j, k| {
                    x[cols.up[l] + j + k * nl] - x[cols.um[l] + j + k * nl]
                })
            })
            .collect();
        let v = (0..sizes[last])
            .map(|j| x[cols.vp + j] - x[cols.vm + j])
            .collect();
        let mu = (0..depth - 1)
            .map(|l| Mat::from_fn(n, sizes[l + 1], |i, k| z[r_cons[l] + k * n + i]))
            .collect();
        let c = r_mass.iter().map(|&r| z[r]).collect();
        // Output multiplier: the dual of the row ŷ − H v̂ = 0 is −r*.
        let r_star = (0..n).map(|i| -z[r_y + i]).collect();
        let alphas = lifted.then(|| {
            let al = |w: f64, lam: f64| if lam > 0.0 { (-w).max(0.0) / lam } else { 0.0 };
            let mut a_in: Vec<Vec<f64>> = sizes.iter().map(|&nl| vec![0.0; nl]).collect();
            let mut a_out: Vec<Vec<f64>> = sizes.iter().map(|&nl| vec![0.0; nl]).collect();
            for l in 0..depth - 1 {
                let lam = self.lambda_layer(l);
                for k in 0..sizes[l + 1] {
                    a_in[l + 1][k] = al(z[r_s[l] + k], lam);
                }
                for j in 0..sizes[l] {
                    a_out[l][j] = al(z[r_t[l] + j], lam);
                }
            }
            let a_v = (0..sizes[last])
                .map(|j| al(z[r_v + j], self.cfg.lambda_v))
                .collect();
            (a_in, a_out, a_v)
        });
        Ok(ConicOutcome {
            mass: Mass { p: pm, u, v },
            mu,
            c,
            r: r_star,
            alphas,
            iterations: sol.iterations as usize,
            solve_seconds: sol.solve_time,
            gap: (sol.obj_val - sol.obj_val_dual).abs(),
            status: sol.status,
            termination,
        })
    }
}
