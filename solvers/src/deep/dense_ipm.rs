//! The interior-point solver of the deep program (the default method of [`crate::deep`]).
//!
//! **Lifting.** In mass variables, introduce the column sums $S_{\ell,k} = \sum_j(\hat U^+ + \hat U^-)_{jk}$, row sums
//! $T_{\ell,j} = \sum_k(\hat U^+ + \hat U^-)_{jk}$, output magnitudes $V_j = \hat v^+_j + \hat v^-_j$ and predictions
//! $\hat{\mathbf y} = H_L(\hat v^+ - \hat v^-)$ as variables tied by linear equalities. Every nonlinear term then
//! depends on one variable (risk in $\hat y_i$, barrier) or on the few variables of one feature — its mass
//! $p_{\ell,j}$ and the sums $S, T, V$ whose perspectives involve $p_{\ell,j}$ — so the Hessian is block diagonal
//! with blocks of size ≤ 3. (For $q = 1$ the perspectives are linear and nothing is lifted.)
//!
//! **Barrier method.** $\min f(x) - \mu\sum_{i\in\mathcal B}\log x_i$ s.t. $Ax = b$ over the nonnegative variables
//! $\mathcal B = \{p, \hat U^\pm, \hat v^\pm\}$, by infeasible-start Newton (Boyd & Vandenberghe §10.3): the KKT system
//! $\begin{bmatrix}H & A^\top\\ A & 0\end{bmatrix}\begin{bmatrix}\Delta x\\ \nu^+\end{bmatrix} = -\begin{bmatrix}\nabla f_\mu\\ Ax - b\end{bmatrix}$ is solved through the
//! dense normal equations $AH^{-1}A^\top\nu^+ = (Ax - b) - AH^{-1}\nabla f_\mu$ (size = number of constraints), with a
//! backtracking line search on the KKT residual norm that keeps $x_{\mathcal B} > 0$ and $S, T, V > 0$. After each
//! centering $\mu\leftarrow\mu/10$, until $|\mathcal B|\mu$ (the barrier's duality gap) is below the tolerance. The
//! multipliers $\nu$ of the consistency rows are the $\boldsymbol\mu$ of [`crate::deep::DeepMultipliers`].
use super::{Alphas, DeepOptions, DeepProgram, Mass};
use crate::conjugate::{loss_second, xlogx};
use crate::lbfgs::Termination;
use crate::linalg::SpdFactor;
use faer::Mat;

/// Variable and constraint offsets of the lifted problem.
struct Lifted {
    sizes: Vec<usize>,
    n: usize,
    lifted: bool,
    p: Vec<usize>,
    up: Vec<usize>,
    um: Vec<usize>,
    vp: usize,
    vm: usize,
    nb: usize,
    s: Vec<usize>,
    t: Vec<usize>,
    vv: usize,
    y: usize,
    len: usize,
    r_cons: Vec<usize>,
    r_s: Vec<usize>,
    r_t: Vec<usize>,
    r_v: usize,
    r_y: usize,
    m: usize,
}

impl Lifted {
    fn new(sizes: &[usize], n: usize, lifted: bool) -> Self {
        let depth = sizes.len();
        let mut off = 0;
        let mut p = Vec::new();
        for &nl in sizes {
            p.push(off);
            off += nl;
        }
        let (mut up, mut um) = (Vec::new(), Vec::new());
        for l in 0..depth - 1 {
            up.push(off);
            off += sizes[l] * sizes[l + 1];
            um.push(off);
            off += sizes[l] * sizes[l + 1];
        }
        let vp = off;
        off += sizes[depth - 1];
        let vm = off;
        off += sizes[depth - 1];
        let nb = off;
        let (mut s, mut t) = (Vec::new(), Vec::new());
        let mut vv = off;
        if lifted {
            for l in 0..depth - 1 {
                s.push(off);
                off += sizes[l + 1];
                t.push(off);
                off += sizes[l];
            }
            vv = off;
            off += sizes[depth - 1];
        }
        let y = off;
        off += n;
        let len = off;
        // Constraint rows: mass (depth), consistency, S, T, V, yhat.
        let mut r = depth;
        let mut r_cons = Vec::new();
        for l in 0..depth - 1 {
            r_cons.push(r);
            r += n * sizes[l + 1];
        }
        let (mut r_s, mut r_t) = (Vec::new(), Vec::new());
        let mut r_v = r;
        if lifted {
            for l in 0..depth - 1 {
                r_s.push(r);
                r += sizes[l + 1];
                r_t.push(r);
                r += sizes[l];
            }
            r_v = r;
            r += sizes[depth - 1];
        }
        let r_y = r;
        r += n;
        Self {
            sizes: sizes.to_vec(),
            n,
            lifted,
            p,
            up,
            um,
            vp,
            vm,
            nb,
            s,
            t,
            vv,
            y,
            len,
            r_cons,
            r_s,
            r_t,
            r_v,
            r_y,
            m: r,
        }
    }
}

/// What the interior-point solve returns (mass variables and multipliers).
pub(crate) struct IpmOutcome {
    pub mass: Mass,
    pub mu: Vec<Mat<f64>>,
    pub c: Vec<f64>,
    pub newton: usize,
    pub stages: usize,
    pub barrier_gap: f64,
    pub termination: Termination,
    /// $\alpha = q(S/p)^{q-1}$ from the lifted sums (`None` for $q = 1$).
    pub alphas: Option<Alphas>,
    /// The split barrier variables $(p, \hat U^\pm, \hat v^\pm)$ in the layout of the augmented Lagrangian.
    pub split: Vec<f64>,
}

/// The Hessian of $f_\mu$: a diagonal plus small dense blocks (one per feature).
struct Hess {
    diag: Vec<f64>,
    in_block: Vec<bool>,
    blocks: Vec<(Vec<usize>, Vec<f64>)>,
}

impl Hess {
    /// Replace each block by its inverse (small dense Gauss–Jordan); `None` if a block is singular.
    fn invert(&mut self) -> Option<()> {
        for (_, b) in self.blocks.iter_mut() {
            let s = (b.len() as f64).sqrt() as usize;
            *b = invert_small(b, s)?;
        }
        for (i, d) in self.diag.iter_mut().enumerate() {
            if !self.in_block[i] {
                if !(*d > 0.0) {
                    return None;
                }
                *d = 1.0 / *d;
            }
        }
        Some(())
    }
    /// $y = H^{-1}x$ (after `invert`).
    fn apply_inv(&self, x: &[f64], y: &mut [f64]) {
        for i in 0..x.len() {
            if !self.in_block[i] {
                y[i] = self.diag[i] * x[i];
            }
        }
        for (idx, b) in &self.blocks {
            let s = idx.len();
            for a in 0..s {
                y[idx[a]] = (0..s).map(|c| b[a * s + c] * x[idx[c]]).sum();
            }
        }
    }
}

fn invert_small(a: &[f64], s: usize) -> Option<Vec<f64>> {
    let mut m = a.to_vec();
    let mut inv = vec![0.0; s * s];
    for i in 0..s {
        inv[i * s + i] = 1.0;
    }
    for col in 0..s {
        let piv =
            (col..s).max_by(|&i, &j| m[i * s + col].abs().total_cmp(&m[j * s + col].abs()))?;
        if !(m[piv * s + col].abs() > 0.0) {
            return None;
        }
        for c in 0..s {
            m.swap(col * s + c, piv * s + c);
            inv.swap(col * s + c, piv * s + c);
        }
        let d = m[col * s + col];
        for c in 0..s {
            m[col * s + c] /= d;
            inv[col * s + c] /= d;
        }
        for r in 0..s {
            if r != col {
                let f = m[r * s + col];
                if f != 0.0 {
                    for c in 0..s {
                        m[r * s + c] -= f * m[col * s + c];
                        inv[r * s + c] -= f * inv[col * s + c];
                    }
                }
            }
        }
    }
    inv.iter().all(|v| v.is_finite()).then_some(inv)
}

/// $P = S^qp^{1-q}$ with gradient $(P_S, P_p)$ and Hessian $(P_{SS}, P_{Sp}, P_{pp})$ for $S, p > 0$, $q>1$.
fn persp2(s: f64, p: f64, q: f64) -> (f64, f64, f64, f64, f64, f64) {
    let r = s / p;
    let rq1 = r.powf(q - 1.0);
    let c = q * (q - 1.0);
    (
        s * rq1,
        q * rq1,
        (1.0 - q) * rq1 * r,
        c * rq1 / (r * p),
        -c * rq1 / p,
        c * rq1 * r / p,
    )
}

impl DeepProgram {
    /// Sparse columns of the constraint matrix $A$ and the right-hand side $b$.
    fn lifted_constraints(&self, lay: &Lifted) -> (Vec<Vec<(usize, f64)>>, Vec<f64>) {
        let n = lay.n;
        let depth = lay.sizes.len();
        let mut cols: Vec<Vec<(usize, f64)>> = vec![Vec::new(); lay.len];
        let mut b = vec![0.0; lay.m];
        for l in 0..depth {
            b[l] = 1.0;
            for j in 0..lay.sizes[l] {
                let col = &mut cols[lay.p[l] + j];
                col.push((l, 1.0));
                if l >= 1 {
                    let z = &self.cand.z[l];
                    for i in 0..n {
                        col.push((lay.r_cons[l - 1] + j * n + i, -z[(i, j)]));
                    }
                }
            }
        }
        for l in 0..depth - 1 {
            let (nl, nk) = (lay.sizes[l], lay.sizes[l + 1]);
            let h = &self.h[l];
            for k in 0..nk {
                for j in 0..nl {
                    for (off, sign) in [(lay.up[l], 1.0), (lay.um[l], -1.0)] {
                        let col = &mut cols[off + j + k * nl];
                        for i in 0..n {
                            col.push((lay.r_cons[l] + k * n + i, sign * h[(i, j)]));
                        }
                        if lay.lifted {
                            col.push((lay.r_s[l] + k, -1.0));
                            col.push((lay.r_t[l] + j, -1.0));
                        }
                    }
                }
            }
            if lay.lifted {
                for k in 0..nk {
                    cols[lay.s[l] + k].push((lay.r_s[l] + k, 1.0));
                }
                for j in 0..nl {
                    cols[lay.t[l] + j].push((lay.r_t[l] + j, 1.0));
                }
            }
        }
        let last = depth - 1;
        let hl = &self.h[last];
        for j in 0..lay.sizes[last] {
            for (off, sign) in [(lay.vp, 1.0), (lay.vm, -1.0)] {
                let col = &mut cols[off + j];
                if lay.lifted {
                    col.push((lay.r_v + j, -1.0));
                }
                for i in 0..n {
                    col.push((lay.r_y + i, -sign * hl[(i, j)]));
                }
            }
            if lay.lifted {
                cols[lay.vv + j].push((lay.r_v + j, 1.0));
            }
        }
        for i in 0..n {
            cols[lay.y + i].push((lay.r_y + i, 1.0));
        }
        (cols, b)
    }

    /// $f_\mu(x)$, its gradient and Hessian; `None` outside the domain.
    fn lifted_eval(
        &self,
        lay: &Lifted,
        x: &[f64],
        mu: f64,
        want_hess: bool,
    ) -> Option<(f64, Vec<f64>, Hess)> {
        let q = self.cfg.q;
        let depth = lay.sizes.len();
        if x[..lay.nb].iter().any(|&v| !(v > 0.0)) {
            return None;
        }
        if lay.lifted && x[lay.nb..lay.y].iter().any(|&v| !(v > 0.0)) {
            return None;
        }
        let mut f = 0.0;
        let mut g = vec![0.0; lay.len];
        let mut diag = vec![0.0; lay.len];
        let mut in_block = vec![false; lay.len];
        let mut blocks = Vec::new();
        // Barrier.
        for i in 0..lay.nb {
            f -= mu * x[i].ln();
            g[i] -= mu / x[i];
            diag[i] += mu / (x[i] * x[i]);
        }
        // Risk in ŷ.
        let nf = lay.n as f64;
        for i in 0..lay.n {
            let (yh, yi) = (x[lay.y + i], self.y[i]);
            f += self.loss.value(yh, yi) / nf;
            g[lay.y + i] += self.loss.deriv(yh, yi) / nf;
            diag[lay.y + i] += loss_second(self.loss, yh, yi) / nf;
        }
        // q = 1: linear penalties on U± and v±.
        if !lay.lifted {
            for l in 0..depth - 1 {
                let lam = self.lambda_layer(l);
                let cnt = lay.sizes[l] * lay.sizes[l + 1];
                for off in [lay.up[l], lay.um[l]] {
                    for i in off..off + cnt {
                        f += 2.0 * lam * x[i];
                        g[i] += 2.0 * lam;
                    }
                }
            }
            for off in [lay.vp, lay.vm] {
                for i in off..off + lay.sizes[depth - 1] {
                    f += self.cfg.lambda_v * x[i];
                    g[i] += self.cfg.lambda_v;
                }
            }
        }
        // Feature blocks: p with its S (in), T (out) or V (output).
        for l in 0..depth {
            let beta = self.cfg.beta[l];
            for j in 0..lay.sizes[l] {
                let ip = lay.p[l] + j;
                let p = x[ip];
                f += self.cost[l][j] * p;
                g[ip] += self.cost[l][j];
                let mut hpp = 0.0;
                if beta > 0.0 {
                    let lpi = self.cand.pi[l][j].ln();
                    f += beta * (xlogx(p) - p * lpi);
                    g[ip] += beta * (p.ln() + 1.0 - lpi);
                    hpp += beta / p;
                }
                if !lay.lifted {
                    diag[ip] += hpp;
                    continue;
                }
                let mut members = vec![ip];
                let mut terms: Vec<(usize, f64)> = Vec::new();
                if l >= 1 {
                    terms.push((lay.s[l - 1] + j, self.lambda_layer(l - 1)));
                }
                if l + 1 < depth {
                    terms.push((lay.t[l] + j, self.lambda_layer(l)));
                } else {
                    terms.push((lay.vv + j, self.cfg.lambda_v));
                }
                members.extend(terms.iter().map(|t| t.0));
                let sz = members.len();
                let mut blk = vec![0.0; sz * sz];
                blk[0] = diag[ip] + hpp;
                for (a, &(iv, lam)) in terms.iter().enumerate() {
                    let (pv, ps, pp, pss, psp, ppp) = persp2(x[iv], p, q);
                    f += lam * pv;
                    g[iv] += lam * ps;
                    g[ip] += lam * pp;
                    let a1 = a + 1;
                    blk[a1 * sz + a1] += lam * pss;
                    blk[a1 * sz] += lam * psp;
                    blk[a1] += lam * psp;
                    blk[0] += lam * ppp;
                }
                if want_hess {
                    for &mi in &members {
                        in_block[mi] = true;
                    }
                    blocks.push((members, blk));
                }
            }
        }
        if !f.is_finite() {
            return None;
        }
        Some((
            f,
            g,
            Hess {
                diag,
                in_block,
                blocks,
            },
        ))
    }

    /// The barrier method of the module docs from a mass point (projected into the interior) and optional
    /// multipliers.
    pub(crate) fn solve_ipm(
        &self,
        opts: &DeepOptions,
        start: &Mass,
        mult0: Option<(&[Mat<f64>], &[f64])>,
    ) -> IpmOutcome {
        let sizes = self.sizes();
        let depth = sizes.len();
        let n = self.n();
        let lay = Lifted::new(&sizes, n, self.cfg.q > 1.0);
        let (cols, b) = self.lifted_constraints(&lay);
        // Interior starting point.
        let mut x = vec![0.0; lay.len];
        for l in 0..depth {
            let floor = 1e-2 / sizes[l] as f64;
            for j in 0..sizes[l] {
                x[lay.p[l] + j] = start.p[l][j].max(floor);
            }
        }
        for l in 0..depth - 1 {
            let (nl, nk) = (sizes[l], sizes[l + 1]);
            let u = &start.u[l];
            let mean = (0..nk)
                .flat_map(|k| (0..nl).map(move |j| (j, k)))
                .map(|(j, k)| u[(j, k)].abs())
                .sum::<f64>()
                / (nl * nk) as f64;
            let delta = 0.1 * mean.max(1.0 / (nl * nk) as f64);
            for k in 0..nk {
                for j in 0..nl {
                    x[lay.up[l] + j + k * nl] = u[(j, k)].max(0.0) + delta;
                    x[lay.um[l] + j + k * nl] = (-u[(j, k)]).max(0.0) + delta;
                }
            }
        }
        {
            let nv = sizes[depth - 1];
            let mean = start.v.iter().map(|v| v.abs()).sum::<f64>() / nv as f64;
            let delta = 0.1 * mean.max(1.0 / nv as f64);
            for j in 0..nv {
                x[lay.vp + j] = start.v[j].max(0.0) + delta;
                x[lay.vm + j] = (-start.v[j]).max(0.0) + delta;
            }
        }
        // Lifted variables consistent with their definitions (S, T, V, ŷ).
        if lay.lifted {
            for l in 0..depth - 1 {
                let (nl, nk) = (sizes[l], sizes[l + 1]);
                for k in 0..nk {
                    for j in 0..nl {
                        let a = x[lay.up[l] + j + k * nl] + x[lay.um[l] + j + k * nl];
                        x[lay.s[l] + k] += a;
                        x[lay.t[l] + j] += a;
                    }
                }
            }
            for j in 0..sizes[depth - 1] {
                x[lay.vv + j] = x[lay.vp + j] + x[lay.vm + j];
            }
        }
        {
            let hl = &self.h[depth - 1];
            for i in 0..n {
                x[lay.y + i] = (0..sizes[depth - 1])
                    .map(|j| hl[(i, j)] * (x[lay.vp + j] - x[lay.vm + j]))
                    .sum();
            }
        }
        let mut nu = vec![0.0; lay.m];
        if let Some((mu, c)) = mult0 {
            for (l, m) in mu.iter().enumerate() {
                for k in 0..sizes[l + 1] {
                    for i in 0..n {
                        nu[lay.r_cons[l] + k * n + i] = m[(i, k)];
                    }
                }
            }
            let nc = depth.min(c.len());
            nu[..nc].copy_from_slice(&c[..nc]);
        }
        let f0 = self
            .lifted_eval(&lay, &x, 0.0, false)
            .map(|t| t.0)
            .unwrap_or(1.0);
        let nbf = lay.nb as f64;
        let mut mu = f0.abs().max(1e-2) / nbf;
        let apply_a = |v: &[f64], out: &mut [f64]| {
            out.fill(0.0);
            for (i, col) in cols.iter().enumerate() {
                if v[i] != 0.0 {
                    for &(r, a) in col {
                        out[r] += a * v[i];
                    }
                }
            }
        };
        let apply_at = |w: &[f64], out: &mut [f64]| {
            for (i, col) in cols.iter().enumerate() {
                out[i] = col.iter().map(|&(r, a)| a * w[r]).sum();
            }
        };
        let residual = |x: &[f64], nu: &[f64], g: &[f64]| -> (f64, f64, Vec<f64>, Vec<f64>) {
            let mut rd = vec![0.0; lay.len];
            apply_at(nu, &mut rd);
            for i in 0..lay.len {
                rd[i] += g[i];
            }
            let mut rp = vec![0.0; lay.m];
            apply_a(x, &mut rp);
            for r in 0..lay.m {
                rp[r] -= b[r];
            }
            let nd = rd.iter().map(|v| v * v).sum::<f64>();
            let np = rp.iter().map(|v| v * v).sum::<f64>();
            (nd, np, rd, rp)
        };
        let mut newton = 0;
        let mut stages = 0;
        let mut termination = Termination::MaxIterations;
        let mut stalled = false;
        'outer: loop {
            stages += 1;
            let tol_center = opts.tol_dual.max((1e3 * mu).min(1e-2));
            let mut steps_here = 0;
            let mut history: Vec<f64> = Vec::new();
            loop {
                if newton >= opts.max_newton {
                    break 'outer;
                }
                let Some((_, g, mut hess)) = self.lifted_eval(&lay, &x, mu, true) else {
                    termination = Termination::NonFinite;
                    break 'outer;
                };
                let (nd, np, _, rp) = residual(&x, &nu, &g);
                let rnorm = (nd + np).sqrt();
                let (nd_inf, np_inf) = {
                    let mut rd = vec![0.0; lay.len];
                    apply_at(&nu, &mut rd);
                    let d = rd
                        .iter()
                        .zip(&g)
                        .map(|(a, b)| (a + b).abs())
                        .fold(0.0, f64::max);
                    (d, rp.iter().map(|v| v.abs()).fold(0.0, f64::max))
                };
                if nd_inf <= tol_center && np_inf <= opts.tol_primal && steps_here > 0 {
                    break;
                }
                // Stagnation at the roundoff floor of this μ: less than 2× progress in 8 steps.
                history.push(rnorm);
                if history.len() > 12 && rnorm > 0.5 * history[history.len() - 13] && np_inf <= 1e-6
                {
                    stalled = true;
                    break;
                }
                if hess.invert().is_none() {
                    termination = Termination::NonFinite;
                    break 'outer;
                }
                // Normal equations M ν⁺ = (Ax − b) − A H⁻¹ g.
                let mut hg = vec![0.0; lay.len];
                hess.apply_inv(&g, &mut hg);
                let mut rhs = vec![0.0; lay.m];
                apply_a(&hg, &mut rhs);
                for r in 0..lay.m {
                    rhs[r] = rp[r] - rhs[r];
                }
                let mut mm = Mat::<f64>::zeros(lay.m, lay.m);
                for (i, col) in cols.iter().enumerate() {
                    if hess.in_block[i] {
                        continue;
                    }
                    let w = hess.diag[i];
                    for &(r1, a1) in col {
                        for &(r2, a2) in col {
                            mm[(r1, r2)] += w * a1 * a2;
                        }
                    }
                }
                for (idx, binv) in &hess.blocks {
                    let s = idx.len();
                    for a in 0..s {
                        for c in 0..s {
                            let w = binv[a * s + c];
                            if w == 0.0 {
                                continue;
                            }
                            for &(r1, a1) in &cols[idx[a]] {
                                for &(r2, a2) in &cols[idx[c]] {
                                    mm[(r1, r2)] += w * a1 * a2;
                                }
                            }
                        }
                    }
                }
                let Some(factor) = SpdFactor::new(&mm) else {
                    termination = Termination::NonFinite;
                    break 'outer;
                };
                // ν from the factor, refined against the operator A H⁻¹ Aᵀ applied through vectors (so that
                // A Δx = −(Ax − b) holds to rounding, which keeps the iterates feasible).
                let mut nu_new = factor.solve(&rhs);
                let mut atn = vec![0.0; lay.len];
                let mut w = vec![0.0; lay.len];
                let mut dx = vec![0.0; lay.len];
                let mut op = vec![0.0; lay.m];
                for _ in 0..3 {
                    apply_at(&nu_new, &mut atn);
                    for i in 0..lay.len {
                        w[i] = g[i] + atn[i];
                    }
                    hess.apply_inv(&w, &mut dx);
                    apply_a(&dx, &mut op);
                    // op = A H⁻¹ (g + Aᵀν) should equal rp.
                    let res: Vec<f64> = (0..lay.m).map(|r| rp[r] - op[r]).collect();
                    let rmax = res.iter().map(|v| v.abs()).fold(0.0, f64::max);
                    if rmax <= 1e-15 {
                        break;
                    }
                    let d = factor.solve(&res);
                    for r in 0..lay.m {
                        nu_new[r] += d[r];
                    }
                }
                apply_at(&nu_new, &mut atn);
                for i in 0..lay.len {
                    w[i] = g[i] + atn[i];
                }
                hess.apply_inv(&w, &mut dx);
                for v in dx.iter_mut() {
                    *v = -*v;
                }
                let dnu: Vec<f64> = nu_new.iter().zip(&nu).map(|(a, b)| a - b).collect();
                // Step: fraction to the boundary, then backtracking on the residual norm.
                let mut t: f64 = 1.0;
                let positive_end = if lay.lifted { lay.y } else { lay.nb };
                for i in 0..positive_end {
                    if dx[i] < 0.0 {
                        t = t.min(-0.99 * x[i] / dx[i]);
                    }
                }
                newton += 1;
                steps_here += 1;
                let mut moved = false;
                for _ in 0..60 {
                    let xn: Vec<f64> = x.iter().zip(&dx).map(|(a, d)| a + t * d).collect();
                    let nun: Vec<f64> = nu.iter().zip(&dnu).map(|(a, d)| a + t * d).collect();
                    if let Some((_, gn, _)) = self.lifted_eval(&lay, &xn, mu, false) {
                        let (ndn, npn, _, _) = residual(&xn, &nun, &gn);
                        if (ndn + npn).sqrt() <= (1.0 - 0.01 * t) * rnorm {
                            x = xn;
                            nu = nun;
                            moved = true;
                            break;
                        }
                    }
                    t *= 0.5;
                }
                if !moved {
                    // Roundoff floor of the residual: accept the point as centered.
                    if nd_inf <= 1e3 * tol_center && np_inf <= 1e3 * opts.tol_primal {
                        break;
                    }
                    termination = Termination::LineSearchFailed;
                    break 'outer;
                }
            }
            let fval = self
                .lifted_eval(&lay, &x, 0.0, false)
                .map(|t| t.0)
                .unwrap_or(f64::INFINITY);
            if nbf * mu <= opts.tol_gap * fval.abs().max(1e-300) {
                termination = Termination::Converged;
                break;
            }
            if stalled {
                termination = Termination::Stalled;
                break;
            }
            mu *= 0.1;
        }
        // Back to mass variables and multipliers.
        let p = (0..depth)
            .map(|l| x[lay.p[l]..lay.p[l] + sizes[l]].to_vec())
            .collect();
        let u = (0..depth - 1)
            .map(|l| {
                let nl = sizes[l];
                Mat::from_fn(nl, sizes[l + 1], |j, k| {
                    x[lay.up[l] + j + k * nl] - x[lay.um[l] + j + k * nl]
                })
            })
            .collect();
        let v = (0..sizes[depth - 1])
            .map(|j| x[lay.vp + j] - x[lay.vm + j])
            .collect();
        let mus = (0..depth - 1)
            .map(|l| Mat::from_fn(n, sizes[l + 1], |i, k| nu[lay.r_cons[l] + k * n + i]))
            .collect();
        let alphas = lay.lifted.then(|| {
            let q = self.cfg.q;
            let al = |s: f64, p: f64| q * (s / p).powf(q - 1.0);
            let mut a_in: Vec<Vec<f64>> = sizes.iter().map(|&nl| vec![0.0; nl]).collect();
            let mut a_out: Vec<Vec<f64>> = sizes.iter().map(|&nl| vec![0.0; nl]).collect();
            for l in 0..depth - 1 {
                for k in 0..sizes[l + 1] {
                    a_in[l + 1][k] = al(x[lay.s[l] + k], x[lay.p[l + 1] + k]);
                }
                for j in 0..sizes[l] {
                    a_out[l][j] = al(x[lay.t[l] + j], x[lay.p[l] + j]);
                }
            }
            let a_v = (0..sizes[depth - 1])
                .map(|j| al(x[lay.vv + j], x[lay.p[depth - 1] + j]))
                .collect();
            (a_in, a_out, a_v)
        });
        IpmOutcome {
            split: x[..lay.nb].to_vec(),
            alphas,
            mass: Mass { p, u, v },
            mu: mus,
            c: nu[..depth].to_vec(),
            newton,
            stages,
            barrier_gap: nbf * mu,
            termination,
        }
    }
}
