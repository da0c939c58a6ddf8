//! Shared machinery of the deep-program claims C14–C17 (math.md §4.2–4.4).
//!
//! - data and problem: the `sine` data of math.md §6 with a bias column ($X$ is $N\times(d+1)$ with full
//!   column rank when $d+1\le N$, which the first-layer term of the bijection needs), tanh, squared loss and
//!   the $\ell_{1,q}$ group norms `Regularizer::GroupL1q` (the regularizers of §4.3);
//! - [`random_network_point`]: random points of a deep program that are networks *with non-uniform masses*:
//!   masses $p_\ell$ (some candidates massless), original weights $w$ that satisfy the consistency constraints
//!   exactly, mapped to the repopulated variables $\tilde u = w\rho_\ell\rho_{\ell+1}$ — feasible points of the program;
//! - [`random_domain_point`]: points of the objective's domain that ignore the constraints;
//! - [`ProxGd`]: scaled gradient descent (math.md §2) in which the kink of $|W_{jk}|$ inside the group norm is
//!   handled by soft-thresholding (proximal GD), accelerated with restarts and finished by Newton steps on
//!   the active face. Plain fixed-step GD cannot reach a stationary point of the non-smooth $J$ when the
//!   optimum has zero weights (the zero entries chatter); the fixed points of the proximal map are exactly
//!   the stationary points $0\in\partial J$;
//! - [`par_map`] (thread-count independent), [`stacked`] (two figures in one SVG, one above the other).
use anyhow::{bail, ensure, Result};
use faer::{Mat, Par};
use nff_core::init::{init_network, Init};
use nff_core::network::Workspace;
use nff_core::regularizer::abs_means;
use nff_core::rng::{normal, Rng};
use nff_core::{Activation, Arch, Dataset, Loss, Network, Params, Problem, Regularizer, Shape};
use nff_solvers::{DeepPoint, DeepProgram};
use rand::Rng as _;
use rayon::prelude::*;

/// The `sine` data ($N$ points, $x\sim\mathcal N(0, I_d/d)$, $y = \sin 3x_1 + \frac12$) with a bias column.
pub fn deep_data(n: usize, d: usize, seed: u64) -> Result<Dataset> {
    Ok(super::sine(n, d, seed)?.with_bias())
}

/// tanh, squared loss, `GroupL1q { lambda, q }`.
pub fn group_problem(data: &Dataset, lambda: f64, q: f64) -> Result<Problem> {
    Ok(Problem::new(
        data.clone(),
        Activation::Tanh,
        Loss::Squared,
        Regularizer::GroupL1q { lambda, q },
    )?)
}

/// A width-`m`, depth-`depth` DNN (two-level for depth 1) from the min-norm start of math.md §3.3.
pub fn min_norm_dnn(problem: &Problem, m: usize, depth: usize, seed: u64) -> Result<Network> {
    let arch = if depth == 1 {
        Arch::TwoLevel
    } else {
        Arch::Dnn
    };
    let shape = Shape::new(arch, problem.data.d(), m, depth)?;
    let (net, _) = init_network(
        shape,
        &problem.data,
        problem.activation,
        &Init::min_norm(),
        seed,
    )?;
    Ok(net)
}

/// `steps` steps of plain scaled GD with step `eta` (math.md §2); `observe(k, net)` after every `every`-th step.
pub fn plain_gd(
    problem: &Problem,
    net: &mut Network,
    eta: f64,
    steps: usize,
    every: usize,
    mut observe: impl FnMut(usize, &Network) -> Result<()>,
) -> Result<f64> {
    let mut ws = Workspace::new(net.shape(), problem.n());
    let mut vel = Params::zeros(net.shape());
    for k in 1..=steps {
        problem.gd_step(net, eta, &mut ws, &mut vel, Par::Seq);
        if every > 0 && k % every == 0 {
            observe(k, net)?;
        }
    }
    ensure!(
        net.as_slice().iter().all(|x| x.is_finite()),
        "GD diverged (η = {eta})"
    );
    Ok(problem.objective(net))
}

/// Scaled GD with the $\ell_1$ kink of the group norm handled by soft-thresholding.
///
/// One step from $\theta$ with step $\eta$: $A$ and $v$ move along their velocities (their penalties are
/// differentiable: $\frac\lambda{2m}\|A\|^2$ and $\frac\lambda m\sum|v_j|^q$, $q>1$); each middle weight takes the step of its
/// data velocity $D_{jk} = -(h(Z_\ell)^\top G_{\ell+1})_{jk}$ and is then soft-thresholded by $\eta g_{jk}$,
/// $g_{jk} = \lambda q(s_k^{q-1} + t_j^{q-1})$ ($s, t$ the column/row means of $|W|$ at $\theta$):
/// $W'_{jk} = \operatorname{sign}(y)\,(|y| - \eta g_{jk})_+$, $y = W_{jk} + \eta D_{jk}$. Where $W_{jk}$ keeps its sign this is exactly the
/// GD step. A fixed point satisfies $D_{jk} = g_{jk}\operatorname{sign}W_{jk}$ where $W_{jk}\ne0$ and $|D_{jk}|\le g_{jk}$ where $W_{jk} = 0$,
/// $\dot A = 0$, $\dot v = 0$: exactly $0\in\partial J$ (math.md §4.4's weight condition with $\boldsymbol\mu = G$).
///
/// The iteration is accelerated (Nesterov momentum with function restart) and backtracks the step when a
/// plain step does not decrease $J$; stationarity is always measured with the plain map at the base step:
/// $s(\theta) = \|\mathrm{prox}_\eta(\theta) - \theta\|_\infty/\eta$ (0 exactly at a stationary point).
pub struct ProxGd {
    problem: Problem,
    lambda: f64,
    q: f64,
    /// Base step $\eta$.
    pub eta: f64,
    ws: Workspace,
    vel: Params,
}

impl ProxGd {
    /// For a `GroupL1q` problem with $q>1$ and networks of `shape`.
    pub fn new(problem: &Problem, shape: Shape, eta: f64) -> Result<Self> {
        let (lambda, q) = match problem.reg {
            Regularizer::GroupL1q { lambda, q } if q > 1.0 => (lambda, q),
            other => bail!("proximal GD needs GroupL1q with q > 1, found {other:?}"),
        };
        Ok(Self {
            problem: problem.clone(),
            lambda,
            q,
            eta,
            ws: Workspace::new(shape, problem.n()),
            vel: Params::zeros(shape),
        })
    }

    /// The proximal step from `x` with step `eta`; returns the new point.
    pub fn step(&mut self, x: &Network, eta: f64) -> Network {
        self.problem
            .velocities_into(x, &mut self.ws, &mut self.vel, Par::Seq);
        let s = x.shape();
        let m = s.m;
        let mut out = x.clone();
        out.axpy(eta, &self.vel);
        let (lambda, q) = (self.lambda, self.q);
        for l in 0..s.n_w() {
            let r = s.w_range(l);
            let w = &x.as_slice()[r.clone()];
            let (col, row) = abs_means(w, m);
            let cq: Vec<f64> = col.iter().map(|c| c.powf(q - 1.0)).collect();
            let rq: Vec<f64> = row.iter().map(|c| c.powf(q - 1.0)).collect();
            let vw = &self.vel.as_slice()[r.clone()];
            let o = &mut out.as_mut_slice()[r];
            #[allow(clippy::needless_range_loop)] // (j, k) index W like the math
            for k in 0..m {
                for j in 0..m {
                    let i = j + k * m;
                    let g = lambda * q * (cq[k] + rq[j]);
                    // The velocity holds -g·sign(W) (sign(0) = 0); put it back to get the data part.
                    let data = vw[i] + g * nff_core::regularizer::sign0(w[i]);
                    let y = w[i] + eta * data;
                    o[i] = y.signum() * (y.abs() - eta * g).max(0.0);
                }
            }
        }
        out
    }

    /// $s(\theta) = \|\mathrm{prox}_\eta(\theta) - \theta\|_\infty/\eta$ at the base step.
    pub fn stationarity(&mut self, x: &Network) -> f64 {
        let eta = self.eta;
        let y = self.step(x, eta);
        y.as_slice()
            .iter()
            .zip(x.as_slice())
            .map(|(a, b)| (a - b).abs() / eta)
            .fold(0.0, f64::max)
    }

    /// Run from `start` until $s(\theta)\le$ `tol` or `max_steps`; `observe(k, θ, s)` at steps
    /// $0, $ `every`, $2\cdot$`every`, … and at the end. At an observation with $s\le$ [`POLISH_BELOW`] a Newton
    /// polish on the active face ([`ProxGd::polish`]) is tried and kept if it lowers $s$ without raising $J$.
    pub fn run(
        &mut self,
        start: &Network,
        tol: f64,
        max_steps: usize,
        every: usize,
        mut observe: impl FnMut(usize, &Network, f64) -> Result<()>,
    ) -> Result<ProxRun> {
        let mut x = start.clone();
        let mut prev = x.clone();
        let mut jx = self.objective(&x);
        let mut t: f64 = 1.0;
        let mut eta = self.eta;
        let mut stat = self.stationarity(&x);
        observe(0, &x, stat)?;
        let mut k = 0;
        let mut polished = 0;
        let mut before_polish = f64::NAN;
        let (mut next_polish, mut wait) = (0, every);
        while k < max_steps && stat > tol {
            k += 1;
            let tn = 0.5 * (1.0 + (1.0 + 4.0 * t * t).sqrt());
            let beta = (t - 1.0) / tn;
            let mut y = x.clone();
            for (a, (b, c)) in y
                .as_mut_slice()
                .iter_mut()
                .zip(x.as_slice().iter().zip(prev.as_slice()))
            {
                *a = b + beta * (b - c);
            }
            let mut xn = self.step(&y, eta);
            let mut jn = self.objective(&xn);
            // J equal up to rounding counts as no increase.
            let slack = 1e-15 * jx.abs();
            if jn.is_nan() || jn > jx + slack {
                // Restart: a plain step from x, halving the step until J does not increase.
                t = 1.0;
                loop {
                    xn = self.step(&x, eta);
                    jn = self.objective(&xn);
                    if jn <= jx + slack {
                        break;
                    }
                    eta *= 0.5;
                    if eta < 1e-6 * self.eta {
                        // No descent at any step: stop here; the stationarity decides.
                        stat = self.stationarity(&x);
                        observe(k, &x, stat)?;
                        return Ok(ProxRun {
                            net: x,
                            stationarity: stat,
                            steps: k,
                            polished,
                            before_polish,
                        });
                    }
                }
            } else {
                t = tn;
            }
            prev = std::mem::replace(&mut x, xn);
            jx = jn;
            if every > 0 && k % every == 0 {
                stat = self.stationarity(&x);
                if stat <= POLISH_BELOW && stat > tol && k >= next_polish {
                    let y = self.polish(&x, 30);
                    let (sy, jy) = (self.stationarity(&y), self.objective(&y));
                    if sy < stat && jy <= jx + 1e-12 * jx.abs() {
                        if polished == 0 {
                            before_polish = stat;
                        }
                        polished += 1;
                        x = y;
                        prev = x.clone();
                        jx = jy;
                        t = 1.0;
                        stat = sy;
                        wait = every;
                    } else {
                        // Not near a stationary point of this face yet: try again later, less often.
                        wait = (2 * wait).min(8 * every);
                    }
                    next_polish = k + wait;
                }
                observe(k, &x, stat)?;
            }
        }
        stat = self.stationarity(&x);
        if every == 0 || k % every != 0 {
            observe(k, &x, stat)?;
        }
        Ok(ProxRun {
            net: x,
            stationarity: stat,
            steps: k,
            polished,
            before_polish,
        })
    }

    /// Newton's method for $\nabla J = 0$ on the active face, after one proximal step (which identifies it):
    /// the free variables are $A$, $v$ and the nonzero middle weights, whose signs are kept, so $J$ is smooth
    /// there; zero weights stay 0. The Jacobian of the scaled gradient $-\dot\theta$ is formed by central
    /// differences and the step solved by Gaussian elimination, damped to keep every free weight's sign and
    /// to decrease $\|\nabla J\|$ on the free variables. At most `iters` steps.
    pub fn polish(&mut self, start: &Network, iters: usize) -> Network {
        let s = start.shape();
        let w_ranges: Vec<std::ops::Range<usize>> = (0..s.n_w()).map(|l| s.w_range(l)).collect();
        let is_w = |i: usize| w_ranges.iter().any(|r| r.contains(&i));
        // One proximal step first: zero weights that violate |D| ≤ g leave 0 (and join the free set), weights
        // on their way to 0 reach it.
        let eta = self.eta;
        let mut x = self.step(start, eta);
        for _ in 0..iters {
            let free: Vec<usize> = (0..s.len())
                .filter(|&i| !is_w(i) || x.as_slice()[i] != 0.0)
                .collect();
            let g0 = self.neg_velocity(&x);
            let rhs: Vec<f64> = free.iter().map(|&i| -g0[i]).collect();
            if rhs.iter().fold(0.0f64, |a, b| a.max(b.abs())) <= 1e-15 {
                break;
            }
            let nf = free.len();
            let mut jac = vec![0.0; nf * nf];
            for (c, &i) in free.iter().enumerate() {
                let xi = x.as_slice()[i];
                let mut h = 1e-6 * xi.abs().max(1e-2);
                if is_w(i) {
                    h = h.min(0.25 * xi.abs());
                }
                let mut xp = x.clone();
                xp.as_mut_slice()[i] = xi + h;
                let gp = self.neg_velocity(&xp);
                xp.as_mut_slice()[i] = xi - h;
                let gm = self.neg_velocity(&xp);
                for (r, &ir) in free.iter().enumerate() {
                    jac[r * nf + c] = (gp[ir] - gm[ir]) / (2.0 * h);
                }
            }
            let Some(delta) = gauss_solve(jac, rhs.clone(), nf) else {
                break;
            };
            // Damped: stay on the face (no weight reaches 0) and decrease ‖∇J‖ on the free variables.
            let mut t: f64 = 1.0;
            for (c, &i) in free.iter().enumerate() {
                let old = x.as_slice()[i];
                if is_w(i) && old * delta[c] < 0.0 {
                    t = t.min(0.5 * old.abs() / delta[c].abs());
                }
            }
            let merit = |g: &[f64]| free.iter().map(|&i| g[i] * g[i]).sum::<f64>();
            let m0 = merit(&g0);
            let mut accepted = false;
            for _ in 0..30 {
                let mut y = x.clone();
                for (c, &i) in free.iter().enumerate() {
                    y.as_mut_slice()[i] += t * delta[c];
                }
                if merit(&self.neg_velocity(&y)) < m0 {
                    x = y;
                    accepted = true;
                    break;
                }
                t *= 0.5;
            }
            if !accepted {
                break;
            }
        }
        x
    }

    /// $J$ (reusing the workspace).
    fn objective(&mut self, x: &Network) -> f64 {
        self.problem.objective_with(x, &mut self.ws, Par::Seq)
    }

    /// $-\dot\theta$ (the scaled gradient, with sign(0) = 0 at zero weights).
    fn neg_velocity(&mut self, x: &Network) -> Vec<f64> {
        self.problem
            .velocities_into(x, &mut self.ws, &mut self.vel, Par::Seq);
        self.vel.as_slice().iter().map(|v| -v).collect()
    }
}

/// Below this stationarity [`ProxGd::run`] tries a Newton polish.
pub const POLISH_BELOW: f64 = 1e-5;

/// The result of [`ProxGd::run`].
pub struct ProxRun {
    /// The final point.
    pub net: Network,
    /// Its stationarity $s(\theta)$.
    pub stationarity: f64,
    /// Proximal-GD steps taken.
    pub steps: usize,
    /// Accepted Newton polishes.
    pub polished: usize,
    /// $s(\theta)$ just before the first accepted polish (NaN if none).
    pub before_polish: f64,
}

/// Solve the dense `n × n` system (row-major `a`) by Gaussian elimination with partial pivoting; `None` if
/// singular. Written out (no hidden parallel kernel: results do not depend on the thread count).
fn gauss_solve(mut a: Vec<f64>, mut b: Vec<f64>, n: usize) -> Option<Vec<f64>> {
    let scale = a.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for c in 0..n {
        let p = (c..n).max_by(|&i, &j| a[i * n + c].abs().total_cmp(&a[j * n + c].abs()))?;
        if a[p * n + c].abs() <= 1e-14 * scale {
            return None;
        }
        if p != c {
            for j in 0..n {
                a.swap(p * n + j, c * n + j);
            }
            b.swap(p, c);
        }
        for i in c + 1..n {
            let f = a[i * n + c] / a[c * n + c];
            if f != 0.0 {
                for j in c..n {
                    a[i * n + j] -= f * a[c * n + j];
                }
                b[i] -= f * b[c];
            }
        }
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|j| a[i * n + j] * x[j]).sum();
        x[i] = (b[i] - s) / a[i * n + i];
    }
    Some(x)
}

/// A point of `prog` that is a network with masses: per layer a support of candidates with random masses
/// (log-uniform over three decades, normalized; `zero_frac` of the candidates massless but at least
/// `N + 1` kept in layers that feed another layer), original weights
/// $w_{\cdot k} = (H_SD_p)^+\mathbf z_k + \text{null-space part}$ so that $\sum_jp_jw_{jk}h(\mathbf z_j) = \mathbf z_k$ exactly, output weights
/// $v_j\sim\mathcal N(0, 1)$, all mapped to $\rho = p/\pi$, $\tilde u = w\rho_\ell\rho_{\ell+1}$, $\tilde u_{L+1} = v\rho_L$.
pub fn random_network_point(prog: &DeepProgram, r: &mut Rng, zero_frac: f64) -> Result<DeepPoint> {
    let cand = prog.candidates();
    let sizes = prog.sizes();
    let depth = sizes.len();
    let n = cand.z[0].nrows();
    let act = prog.activation();
    let mut masses: Vec<Vec<f64>> = Vec::with_capacity(depth);
    for (l, &nl) in sizes.iter().enumerate() {
        let min_support = if l + 1 < depth { n + 1 } else { 1 };
        ensure!(
            nl >= min_support,
            "layer {} has {nl} candidates, fewer than the {min_support} a spanning support needs",
            l + 1
        );
        let mut p: Vec<f64> = (0..nl)
            .map(|_| 10f64.powf(-3.0 * r.random::<f64>()))
            .collect();
        let mut order: Vec<usize> = (0..nl).collect();
        // A random subset of at most nl - min_support candidates is massless.
        for i in (1..nl).rev() {
            order.swap(i, r.random_range(0..=i));
        }
        let zeros = (((nl as f64) * zero_frac) as usize).min(nl - min_support);
        for &j in order.iter().take(zeros) {
            p[j] = 0.0;
        }
        let total: f64 = p.iter().sum();
        masses.push(p.iter().map(|x| x / total).collect());
    }
    let mut u = Vec::with_capacity(depth - 1);
    for l in 0..depth - 1 {
        let (nl, nk) = (sizes[l], sizes[l + 1]);
        let support: Vec<usize> = (0..nl).filter(|&j| masses[l][j] > 0.0).collect();
        // B = H_S D_p (N × |S|), Gram B Bᵀ (N × N).
        let b = Mat::from_fn(n, support.len(), |i, c| {
            let j = support[c];
            act.value(cand.z[l][(i, j)]) * masses[l][j]
        });
        // B⁺ by the SVD (the Gram BBᵀ would square the condition number, which the masses make large).
        let ns = support.len();
        let bp = b
            .thin_svd()
            .map_err(|e| anyhow::anyhow!("SVD of layer {}: {e:?}", l + 1))?
            .pseudoinverse();
        let mut block = vec![0.0; nl * nk];
        for k in 0..nk {
            if masses[l + 1][k] == 0.0 {
                continue;
            }
            // w = ξ + B⁺(z − Bξ): the min-norm solution plus the null-space part of ξ (explicit loops: no
            // hidden parallel GEMM, so the result does not depend on the thread count).
            let xi: Vec<f64> = (0..ns).map(|_| normal(r)).collect();
            let mut w = xi.clone();
            // Two passes: the second (iterative refinement) removes the rounding error of the first, which the
            // masses' spread amplifies, so the point is consistent to rounding.
            for _ in 0..2 {
                let rhs: Vec<f64> = (0..n)
                    .map(|i| cand.z[l + 1][(i, k)] - (0..ns).map(|c| b[(i, c)] * w[c]).sum::<f64>())
                    .collect();
                for (c, wc) in w.iter_mut().enumerate() {
                    *wc += (0..n).map(|i| bp[(c, i)] * rhs[i]).sum::<f64>();
                }
            }
            for (c, &j) in support.iter().enumerate() {
                let wjk = w[c];
                let rho_j = masses[l][j] / cand.pi[l][j];
                let rho_k = masses[l + 1][k] / cand.pi[l + 1][k];
                block[j + k * nl] = wjk * rho_j * rho_k;
            }
        }
        u.push(block);
    }
    let last = depth - 1;
    let v = (0..sizes[last])
        .map(|j| {
            let p = masses[last][j];
            if p > 0.0 {
                normal(r) * p / cand.pi[last][j]
            } else {
                0.0
            }
        })
        .collect();
    let rho = masses
        .iter()
        .zip(&cand.pi)
        .map(|(p, pi)| p.iter().zip(pi).map(|(a, b)| a / b).collect())
        .collect();
    Ok(DeepPoint { rho, u, v })
}

/// A point of the objective's domain that ignores the constraints: densities $\rho\ge0$ (a fraction
/// `zero_frac` zero, the rest log-uniform over three decades), weights $\mathcal N(0, 9)$ between candidates
/// that both have density (so the $q>1$ objective is finite), output weights $\mathcal N(0, 4)$ on supported features.
pub fn random_domain_point(prog: &DeepProgram, r: &mut Rng, zero_frac: f64) -> DeepPoint {
    let sizes = prog.sizes();
    let depth = sizes.len();
    let rho: Vec<Vec<f64>> = sizes
        .iter()
        .map(|&nl| {
            (0..nl)
                .map(|_| {
                    if r.random::<f64>() < zero_frac {
                        0.0
                    } else {
                        10f64.powf(1.0 - 3.0 * r.random::<f64>())
                    }
                })
                .collect()
        })
        .collect();
    let u = (0..depth - 1)
        .map(|l| {
            let mut u = vec![0.0; sizes[l] * sizes[l + 1]];
            for k in 0..sizes[l + 1] {
                for j in 0..sizes[l] {
                    if rho[l][j] > 0.0 && rho[l + 1][k] > 0.0 {
                        u[j + k * sizes[l]] = 3.0 * normal(r);
                    }
                }
            }
            u
        })
        .collect();
    let v = (0..sizes[depth - 1])
        .map(|j| {
            if rho[depth - 1][j] > 0.0 {
                2.0 * normal(r)
            } else {
                0.0
            }
        })
        .collect();
    DeepPoint { rho, u, v }
}

/// Run `n` independent jobs on the rayon pool; results in index order (thread-count independent as long
/// as each job derives its own random streams).
pub fn par_map<T: Send>(n: usize, f: impl Fn(usize) -> Result<T> + Sync + Send) -> Result<Vec<T>> {
    (0..n).into_par_iter().map(f).collect()
}

/// Two SVG figures in one, the first above the second ([`crate::plot::stacked`]).
pub fn stacked(top: &str, bottom: &str) -> String {
    crate::plot::stacked(top, bottom)
}
