//! Shared machinery of the two-level claims (C8–C13, C23, C24, math.md §4.1).
//!
//! - data: the default `sine` data with a constant bias column, so that a unit is $\theta = (a, b)$
//!   and $h(\theta^\top x) = \tanh(ax + b)$ (d ≤ 2 plus bias, as §7 recommends for two-level programs);
//! - the problem: squared loss, tanh, `Regularizer::L2Split { a: λ₂, w: 0, v: λ₁ }`, i.e.
//!   $J = \mathcal R + \frac{\lambda_2}{2m}\|A\|^2 + \frac{\lambda_1}{2m}\|v\|^2$ (nff-solvers' `certificate` conventions);
//! - runs: plain GD ([`gd`], explicit Euler of nff-flow's [`WeightFlow`]) and noisy GD ([`langevin`],
//!   nff-flow's [`EulerMaruyama`], the integrator behind [`nff_flow::NoisyGd`]), stepped here so that a
//!   claim can look at the particles while they move;
//! - the certificate function $\beta(\theta) = s(\theta)^2/2\lambda_1 - \lambda_2\|\theta\|^2/2$,
//!   $s(\theta) = \sum_i r^i h(\theta^\top x^i)$;
//! - [`par_map`]: independent jobs on the rayon pool, results in index order (thread-count independent).
//!
//! Runs are small (N ≤ 40, m ≤ a few hundred), so every GEMM runs with `Par::Seq` and parallelism
//! goes over independent jobs.
use anyhow::{bail, ensure, Result};
use faer::{Mat, MatRef, Par};
use nff_core::init::{init_network, Init};
use nff_core::network::Workspace;
use nff_core::{Activation, Arch, Dataset, Loss, Network, Params, Problem, Regularizer, Shape};
use nff_flow::{EulerMaruyama, FixedStep, Integrator, StepStatus, WeightFlow};
use nff_solvers::{TwoLevelConfig, TwoLevelOptions, TwoLevelProgram, TwoLevelSolution};
use rayon::prelude::*;

/// The `sine` data of math.md §6 ($N$ points, $x\sim\mathcal N(0, I_d/d)$, $y = \sin 3x_1 + \frac12$) with a
/// bias column appended ($X$ is $N\times(d+1)$).
pub fn sine_with_bias(n: usize, d: usize, seed: u64) -> Result<Dataset> {
    Ok(super::sine(n, d, seed)?.with_bias())
}

/// The repopulated program of math.md §4.1 with $\tau = 0$ for the same model as [`problem`] (tanh, squared
/// loss) on candidates `theta` with reference weights `rho0`, and its certified solution (default options).
pub fn solve_program(
    data: &Dataset,
    theta: MatRef<'_, f64>,
    rho0: &[f64],
    lambda1: f64,
    lambda2: f64,
) -> Result<(TwoLevelProgram, TwoLevelSolution)> {
    let prog = TwoLevelProgram::new(
        data,
        Activation::Tanh,
        Loss::Squared,
        theta,
        rho0,
        TwoLevelConfig {
            lambda1,
            lambda2,
            tau: 0.0,
        },
    )?;
    let sol = prog.solve(&TwoLevelOptions::default())?;
    Ok((prog, sol))
}

/// The two-level problem of math.md §4.1: tanh, squared loss,
/// $J = \mathcal R + \frac{\lambda_2}{2m}\|A\|^2 + \frac{\lambda_1}{2m}\|v\|^2$.
pub fn problem(data: &Dataset, lambda1: f64, lambda2: f64) -> Result<Problem> {
    Ok(Problem::new(
        data.clone(),
        Activation::Tanh,
        Loss::Squared,
        Regularizer::L2Split {
            a: lambda2,
            w: 0.0,
            v: lambda1,
        },
    )?)
}

/// A width-`m` two-level network with i.i.d. $a_j\sim\mathcal N(0,\sigma_a^2 I)$, $v_j\sim\mathcal N(0,\sigma_v^2)$.
pub fn iid_network(
    problem: &Problem,
    m: usize,
    sigma_a: f64,
    sigma_v: f64,
    seed: u64,
) -> Result<Network> {
    let shape = Shape::new(Arch::TwoLevel, problem.data.d(), m, 1)?;
    let init = Init::Iid {
        sigma_a,
        mu_w: 0.0,
        sigma_w: 1.0,
        sigma_v,
    };
    let (net, _) = init_network(shape, &problem.data, problem.activation, &init, seed)?;
    Ok(net)
}

fn ensure_accepted(status: StepStatus, what: &str) -> Result<()> {
    if !matches!(status, StepStatus::Accepted) {
        bail!("{what}: step not accepted ({status:?})");
    }
    Ok(())
}

/// `steps` steps of scaled GD with step `eta` (explicit Euler on the [`WeightFlow`]).
pub fn gd(problem: &Problem, net: &Network, eta: f64, steps: usize) -> Result<Network> {
    let mut field = WeightFlow::new(problem.clone(), net.shape(), Par::Seq)?;
    let mut y = field.initial_state(net)?;
    let mut euler = FixedStep::euler(eta)?;
    let mut t = 0.0;
    euler.init(&mut field, t, &y)?;
    for _ in 0..steps {
        let status = euler.step(&mut field, &mut t, &mut y, f64::INFINITY)?;
        ensure_accepted(status, "GD")?;
    }
    Ok(Params::from_vec(net.shape(), y)?)
}

/// `steps` steps of noisy GD at temperature `tau` (Euler–Maruyama on the [`WeightFlow`], noise stream
/// `rng(seed, "noise")`); `observe(k, state)` is called after every `every`-th step ($k$ = steps done).
#[allow(clippy::too_many_arguments)]
pub fn langevin(
    problem: &Problem,
    net: &Network,
    eta: f64,
    tau: f64,
    steps: usize,
    seed: u64,
    every: usize,
    mut observe: impl FnMut(usize, &[f64]) -> Result<()>,
) -> Result<Network> {
    let mut field = WeightFlow::new(problem.clone(), net.shape(), Par::Seq)?;
    let mut y = field.initial_state(net)?;
    let mut em = EulerMaruyama::new(eta, tau, seed)?;
    let mut t = 0.0;
    em.init(&mut field, t, &y)?;
    for k in 1..=steps {
        let status = em.step(&mut field, &mut t, &mut y, f64::INFINITY)?;
        ensure_accepted(status, "noisy GD")?;
        if every > 0 && k % every == 0 {
            observe(k, &y)?;
        }
    }
    Ok(Params::from_vec(net.shape(), y)?)
}

/// The residual $\mathbf r$ ($r^i = (\hat y^i - y^i)/N$ for the squared loss) and the objective $J$.
pub fn residual(problem: &Problem, net: &Network) -> (Vec<f64>, f64) {
    let mut ws = Workspace::new(net.shape(), problem.n());
    let risk = problem.forward_into(net, &mut ws, Par::Seq);
    (ws.r.clone(), risk + problem.reg.value(net))
}

/// $s(\theta_k) = \sum_i r^i h(\theta_k^\top x^i)$ for the rows $\theta_k$ of `theta` ($K\times d$).
pub fn s_values(problem: &Problem, r: &[f64], theta: MatRef<'_, f64>) -> Vec<f64> {
    let x = &problem.data.x;
    let d = x.ncols();
    (0..theta.nrows())
        .map(|k| {
            (0..x.nrows())
                .map(|i| {
                    let z: f64 = (0..d).map(|c| x[(i, c)] * theta[(k, c)]).sum();
                    r[i] * problem.activation.value(z)
                })
                .sum()
        })
        .collect()
}

/// $\|\theta_k\|^2/2$ for the rows of `theta`.
pub fn half_sq_norms(theta: MatRef<'_, f64>) -> Vec<f64> {
    (0..theta.nrows())
        .map(|k| {
            0.5 * (0..theta.ncols())
                .map(|c| theta[(k, c)].powi(2))
                .sum::<f64>()
        })
        .collect()
}

/// The particles $\theta_j$ of a two-level network as the rows of an $m\times d$ matrix.
pub fn particles(net: &Network) -> Mat<f64> {
    net.a().transpose().to_owned()
}

/// Run `n` independent jobs on the rayon pool and return their results in index order (so results do
/// not depend on the number of threads as long as each job derives its own random streams).
pub fn par_map<T: Send>(n: usize, f: impl Fn(usize) -> Result<T> + Sync + Send) -> Result<Vec<T>> {
    (0..n).into_par_iter().map(f).collect()
}

/// At most `max` of `points`, evenly strided (a deterministic thinning for figures).
pub fn thin<T: Clone>(points: &[T], max: usize) -> Vec<T> {
    if points.len() <= max || max == 0 {
        return points.to_vec();
    }
    let stride = points.len().div_ceil(max);
    points.iter().step_by(stride).cloned().collect()
}

/// Fresh test points for certificates: `k` samples $\theta\sim\mathcal N(0, \sigma^2 I)$ (stream `tag` of `seed`)
/// plus the `per_axis`² tensor grid on $[-R, R]^2$ ($d = 2$: slope and bias).
pub fn fresh_thetas(
    k: usize,
    sigma: f64,
    per_axis: usize,
    radius: f64,
    seed: u64,
    tag: &str,
) -> Result<Mat<f64>> {
    let grid = nff_solvers::candidates::grid(2, per_axis, radius)?;
    let mut r = nff_core::rng::rng(seed, tag);
    let g = grid.nrows();
    let mut out = Mat::zeros(k + g, 2);
    for i in 0..k {
        for c in 0..2 {
            out[(i, c)] = sigma * nff_core::rng::normal(&mut r);
        }
    }
    for i in 0..g {
        for c in 0..2 {
            out[(k + i, c)] = grid[(i, c)];
        }
    }
    Ok(out)
}

/// The §4.1 certificate of a trained two-level network (quadratic penalties, τ = 0), from nff-solvers'
/// [`two_level_certificate`](nff_solvers::certificate::two_level_certificate), plus the duality gap it
/// certifies [derived in nff-solvers' `two_level` docs]: with the network's own residual $\mathbf r$,
/// $$G = J - D(\mathbf r) = \tfrac1m\sum_j\tfrac{\lambda_1}2\big(u_j + s_j/\lambda_1\big)^2 + \Big(\sup_\theta\beta(\theta) - \tfrac1m\sum_j\beta(\theta_j)\Big) \ \ge\ J - J^\star,$$
/// with the sup taken over the particles and the fresh points (so $G$ is exact up to how well they cover the sup).
pub struct CertificateSummary {
    /// $J$.
    pub objective: f64,
    /// $(\max - \min)$ of β over the particles / scale (0 at an optimum).
    pub rel_spread: f64,
    /// $\max(0, \max_{\rm fresh}\beta - c)$ / scale (0 at an optimum).
    pub rel_violation: f64,
    /// $G/J$.
    pub rel_gap: f64,
    /// $c = \max$ of β over the particles.
    pub c: f64,
    /// $(\lambda_2 r_\theta, s^2/2\lambda_1)$ of the particles.
    pub particles: Vec<(f64, f64)>,
    /// $(\lambda_2 r_\theta, s^2/2\lambda_1)$ of the fresh points.
    pub fresh: Vec<(f64, f64)>,
}

impl CertificateSummary {
    /// C10's certificate defect: the larger of the relative spread and the relative violation.
    pub fn defect(&self) -> f64 {
        self.rel_spread.max(self.rel_violation)
    }
}

/// The common setup of the certificate claims C10 and C24: the `sine` data ($N = 10$, $d = 1$ + bias) of
/// `data_seed`, $\lambda_1 = \lambda_2 = 0.1$, GD step $\eta = 0.5$, and fresh test points for the certificate
/// (Gaussian $\mathcal N(0, 9I)$ samples, 5 000 quick / 20 000 full, plus a 41² / 81² grid on $[-4, 4]^2$, stream `tag`).
pub struct CertificateSetup {
    /// The data.
    pub data: Dataset,
    /// The problem of [`problem`].
    pub pb: Problem,
    /// Fresh θ's ($K\times 2$).
    pub fresh: Mat<f64>,
    /// $\lambda_1$.
    pub lambda1: f64,
    /// $\lambda_2$.
    pub lambda2: f64,
    /// GD step.
    pub eta: f64,
}

/// [`CertificateSetup`] for a claim.
pub fn certificate_setup(
    ctx: &super::ClaimCtx,
    data_seed: u64,
    tag: &str,
) -> Result<CertificateSetup> {
    let data = sine_with_bias(10, 1, data_seed)?;
    let (lambda1, lambda2, eta) = (0.1, 0.1, 0.5);
    let pb = problem(&data, lambda1, lambda2)?;
    let fresh = fresh_thetas(
        ctx.size.pick(5000, 20_000),
        3.0,
        ctx.size.pick(41, 81),
        4.0,
        ctx.init_seed,
        tag,
    )?;
    Ok(CertificateSetup {
        data,
        pb,
        fresh,
        lambda1,
        lambda2,
        eta,
    })
}

/// Solve the small SPD system $A\mathbf x = \mathbf b$ by Cholesky (used by C9's ridge and C11's refit); errors if
/// $A$ is not numerically positive definite.
pub fn solve_spd(a: &Mat<f64>, b: &[f64]) -> Result<Vec<f64>> {
    let n = b.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = a[(i, j)] - (0..j).map(|p| l[i][p] * l[j][p]).sum::<f64>();
            if i == j {
                ensure!(s > 0.0, "linear system not positive definite");
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    let mut z = vec![0.0; n];
    for i in 0..n {
        z[i] = (b[i] - (0..i).map(|p| l[i][p] * z[p]).sum::<f64>()) / l[i][i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        x[i] = (z[i] - (i + 1..n).map(|p| l[p][i] * x[p]).sum::<f64>()) / l[i][i];
    }
    Ok(x)
}

/// [`CertificateSummary`] of `net` for the problem of [`problem`] with strengths λ₁, λ₂.
pub fn certificate(
    pb: &Problem,
    net: &Network,
    fresh: MatRef<'_, f64>,
    lambda1: f64,
    lambda2: f64,
) -> Result<CertificateSummary> {
    let rep = nff_solvers::certificate::two_level_certificate(pb, net, fresh)?;
    let (r, objective) = residual(pb, net);
    let th = particles(net);
    let s = s_values(pb, &r, th.as_ref());
    let m = net.shape().m as f64;
    let stat: f64 = s
        .iter()
        .zip(net.v())
        .map(|(sj, uj)| 0.5 * lambda1 * (uj + sj / lambda1).powi(2))
        .sum::<f64>()
        / m;
    let sup = rep.fresh_values.iter().copied().fold(rep.c, f64::max);
    let mean_beta = rep.particle_values.iter().sum::<f64>() / m;
    let gap = stat + sup - mean_beta;
    let pair = |theta: MatRef<'_, f64>, beta: &[f64]| -> Vec<(f64, f64)> {
        half_sq_norms(theta)
            .iter()
            .zip(beta)
            .map(|(h, b)| (lambda2 * h, b + lambda2 * h))
            .collect()
    };
    Ok(CertificateSummary {
        objective,
        rel_spread: rep.relative_spread,
        rel_violation: rep.relative_violation,
        rel_gap: gap / objective,
        c: rep.c,
        particles: pair(th.as_ref(), &rep.particle_values),
        fresh: pair(fresh, &rep.fresh_values),
    })
}
