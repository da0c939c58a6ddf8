//! C20 — the label→feature maps of the ResNet stay injective along training (math.md §5, condition
//! (iii) of the global-convergence theorem). For the ResNet, unit $k$ of every layer is the same unit
//! moved along the skip connections, so training defines a map $\Phi_t:\mathbf z_{1,k}(t)\mapsto\mathbf z_{L,k}(t)$ (and $\mathbf z_1 = Xa$
//! is injective in the label $a$ when $X$ has full column rank). Injective with a Lipschitz inverse means
//! $$\lambda_t = \min_{j\ne k}\frac{\|\mathbf z_{L,j}(t)-\mathbf z_{L,k}(t)\|}{\|\mathbf z_{1,j}(t)-\mathbf z_{1,k}(t)\|}$$
//! bounded below, uniformly in $m$ (more particles probe the map more finely, so a map that folds shows
//! $\lambda \to 0$ as $m$ grows). But a min over all $\sim m^2$ pairs is an extreme-value statistic that falls with
//! $m$ even for a bi-Lipschitz map, so the measured value tracks a **fixed set of labels** instead: the
//! first $m_0$ units, which have the same labels (first-layer weights) at every width (nff-core's coupled
//! labels, checked here). On that fixed set the chord ratio
//! $$\mu(m) = \min_t\min_{j\ne k < m_0}\frac{\|\mathbf z_{L,j}-\mathbf z_{L,k}\|}{\|\mathbf z_{1,j}-\mathbf z_{1,k}\|}$$
//! converges as $m\to\infty$ (math.md §5, finite width → NFF, at $m^{-1/2}$) to the limit map's value on those
//! labels: bounded below if the limit map is injective on them (slope → 0), $\propto m^{-1/2}$ if two of them
//! merge (slope −1/2). See docs/claims/C20.md. Also reported: λ over all pairs and the ratio of minimum
//! particle distances $\min_{j\ne k}\|\mathbf z_{L,j}-\mathbf z_{L,k}\| / \min_{j\ne k}\|\mathbf z_{1,j}-\mathbf z_{1,k}\|$.
use super::flow_support::{fixed, network, tanh_problem};
use super::stats::loglog_fit;
use super::{sine, Claim, ClaimCtx, ClaimInfo, Outcome};
use crate::plot::{LinePlot, Series};
use anyhow::{anyhow, ensure, Result};
use faer::{Mat, MatRef, Par};
use nff_core::feature::min_pairwise_distance;
use nff_core::init::Init;
use nff_core::network::Workspace;
use nff_core::{Arch, Params, Problem, Shape};
use nff_flow::{
    FixedStep, Observer, ObserverAction, ObserverMode, Runner, StepInfo, TerminationReason,
    WeightFlow,
};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C20",
            title: "label→feature maps stay injective (ResNet)",
            measures: "(a) log-log slope against m (geometric mean over seeds) of μ(m) = min over training of min over pairs j≠k of a FIXED set of m₀ = 16 labels (the first 16 units, the same labels at every width) of ‖z_L,j − z_L,k‖/‖z_1,j − z_1,k‖; (b) log-log slope against m of ν(m) = min over training of the 5th percentile over particles k of nn_L(k)/nn_1(k), each particle's nearest-neighbour distance in Z_L over that in Z_1 (local, scale-free); along unregularized GD of a ResNet (L = 3, tanh, N = 8, d = 3, zero start, η = 0.2, t ≤ 100 quick / 300 full); negative control: (b) for a DNN from the i.i.d. degenerate start (μ_W = 0, σ = 1), trained the same way; value = the ResNet's slope of (a)",
            rule: "(a) μ > 0 at every width and seed, and slope ≥ −1/4: μ(m) → the limit map's value on the fixed labels at rate m^(-1/2), so an injective limit map gives slope → 0 and two merging labels give μ ∝ m^(-1/2), slope −1/2; −1/4 is the midpoint (set before measuring); (b) the ResNet's slope of ν ≥ −0.1 (a bi-Lipschitz map keeps nearest-neighbour ratios within [1/L, L] at every m; a map that folds sends ν → 0 as particles probe it more finely) while the folding control's slope is < −0.1 (the statistic sees folding)",
        },
        run,
    }
}

/// One probe: (t, λ_t, ratio of minimum distances, μ_t on the fixed set, ν_t the local statistic).
type Probe = (f64, f64, f64, f64, f64);

/// The size of the fixed set of labels (the first `M0` units of every width).
const M0: usize = 16;

/// $\lambda$ and the ratio of minimum distances of the columns of $Z_1$, $Z_L$ ($N\times m$).
fn injectivity(z1: MatRef<'_, f64>, zl: MatRef<'_, f64>) -> (f64, f64) {
    let m = z1.ncols();
    let mut lambda = f64::INFINITY;
    for j in 0..m {
        for k in j + 1..m {
            let (mut d1, mut dl) = (0.0, 0.0);
            for i in 0..z1.nrows() {
                let a = z1[(i, j)] - z1[(i, k)];
                let b = zl[(i, j)] - zl[(i, k)];
                d1 += a * a;
                dl += b * b;
            }
            lambda = lambda.min((dl / d1).sqrt());
        }
    }
    (
        lambda,
        min_pairwise_distance(zl) / min_pairwise_distance(z1),
    )
}

/// Nearest-neighbour distance of every column of `z` (among the other columns).
fn nearest_neighbour(z: MatRef<'_, f64>) -> Vec<f64> {
    let m = z.ncols();
    let mut nn = vec![f64::INFINITY; m];
    for j in 0..m {
        for k in j + 1..m {
            let d: f64 = (0..z.nrows())
                .map(|i| (z[(i, j)] - z[(i, k)]).powi(2))
                .sum::<f64>()
                .sqrt();
            nn[j] = nn[j].min(d);
            nn[k] = nn[k].min(d);
        }
    }
    nn
}

/// The local statistic ν of (b): the 5th percentile (nearest rank, ⌈0.05 m⌉-th smallest) over particles
/// of nn_L(k)/nn_1(k).
fn local_ratio(z1: MatRef<'_, f64>, zl: MatRef<'_, f64>) -> f64 {
    let (a, b) = (nearest_neighbour(z1), nearest_neighbour(zl));
    let mut r: Vec<f64> = a.iter().zip(&b).map(|(d1, dl)| dl / d1).collect();
    r.sort_by(f64::total_cmp);
    let rank = (0.05 * r.len() as f64).ceil().max(1.0) as usize;
    r[rank - 1]
}

struct InjectivityProbe {
    problem: Problem,
    shape: Shape,
    ws: Workspace,
    every: u64,
    out: Arc<Mutex<Vec<Probe>>>,
}

impl InjectivityProbe {
    fn probe(&mut self, info: &StepInfo<'_>) -> nff_flow::Result<ObserverAction> {
        let net = Params::from_vec(self.shape, info.state.to_vec())?;
        self.problem.forward_into(&net, &mut self.ws, Par::Seq);
        let (z1, zl) = (self.ws.z(0), self.ws.z(self.shape.depth - 1));
        let (lambda, ratio) = injectivity(z1, zl);
        let (mu, _) = injectivity(z1.subcols(0, M0), zl.subcols(0, M0));
        let nu = local_ratio(z1, zl);
        if let Ok(mut out) = self.out.lock() {
            out.push((info.t, lambda, ratio, mu, nu));
        }
        Ok(ObserverAction::Continue)
    }
}

impl Observer for InjectivityProbe {
    fn mode(&self) -> ObserverMode {
        ObserverMode::Every(self.every)
    }
    fn on_start(&mut self, info: &StepInfo<'_>) -> nff_flow::Result<ObserverAction> {
        self.probe(info)
    }
    fn on_step(&mut self, info: &StepInfo<'_>) -> nff_flow::Result<ObserverAction> {
        self.probe(info)
    }
}

/// GD step: the flow's stiffest rate stays below 2/η (checked: a diverging run ends with an error).
const ETA: f64 = 0.2;

/// A width's run: probes along training, final risk, final $Z_1$ and $Z_L$, the fixed set's initial
/// labels (the first $m_0$ columns of $A(0)$).
struct Trained {
    probes: Vec<Probe>,
    risk: f64,
    z1: Mat<f64>,
    zl: Mat<f64>,
    labels: Mat<f64>,
}

/// Which network is trained: the ResNet of the claim, or the folding control (a DNN from the i.i.d.
/// degenerate start).
#[derive(Clone, Copy, PartialEq)]
enum Model {
    ResNet,
    FoldingDnn,
}

fn train(problem: &Problem, model: Model, m: usize, seed: u64, t_final: f64) -> Result<Trained> {
    ensure!(m >= M0, "width {m} below the fixed set's size {M0}");
    let net = match model {
        Model::ResNet => network(&problem.data, Arch::ResNet, m, 3, &Init::zero(), seed)?,
        Model::FoldingDnn => network(&problem.data, Arch::Dnn, m, 3, &Init::iid(), seed)?,
    };
    let labels = net.a().subcols(0, M0).to_owned();
    let shape = net.shape();
    let field = WeightFlow::new(problem.clone(), shape, Par::Seq)?;
    let y0 = field.initial_state(&net)?;
    let out = Arc::new(Mutex::new(Vec::new()));
    let probe = InjectivityProbe {
        ws: Workspace::new(shape, problem.n()),
        problem: problem.clone(),
        shape,
        every: 10,
        out: Arc::clone(&out),
    };
    let mut runner = Runner::builder(field, FixedStep::euler(ETA)?)
        .initial_state(0.0, y0)
        .final_time(t_final)
        .observer(probe)
        .build()?;
    let report = runner.run()?;
    ensure!(
        report.termination == TerminationReason::FinalTime,
        "width {m}: the run stopped at t = {} ({:?})",
        report.t,
        report.termination
    );
    // The final state (the probe fires on its own schedule).
    let fin = Params::from_vec(shape, report.state)?;
    let mut ws = Workspace::new(shape, problem.n());
    let risk = problem.forward_into(&fin, &mut ws, Par::Seq);
    let (z1, zl) = (ws.z(0).to_owned(), ws.z(shape.depth - 1).to_owned());
    let (lambda, ratio) = injectivity(z1.as_ref(), zl.as_ref());
    let (mu, _) = injectivity(z1.as_ref().subcols(0, M0), zl.as_ref().subcols(0, M0));
    let nu = local_ratio(z1.as_ref(), zl.as_ref());
    let mut probes = std::mem::take(&mut *out.lock().map_err(|_| anyhow!("probe lock poisoned"))?);
    probes.push((report.t, lambda, ratio, mu, nu));
    Ok(Trained {
        probes,
        risk,
        z1,
        zl,
        labels,
    })
}

fn run(ctx: &ClaimCtx) -> Result<Outcome> {
    let data = sine(8, 3, ctx.data_seed)?;
    let problem = tanh_problem(&data)?;
    let widths: Vec<usize> = ctx.size.pick(vec![32, 128, 512], vec![64, 256, 1024]);
    let n_seeds = ctx.size.pick(2, 3) as u64;
    let t_final = ctx.size.pick(100.0, 300.0);
    let jobs: Vec<(usize, u64)> = widths
        .iter()
        .flat_map(|&m| (0..n_seeds).map(move |k| (m, ctx.init_seed * 1000 + k)))
        .collect();
    let all: Vec<(Model, usize, u64)> = [Model::ResNet, Model::FoldingDnn]
        .iter()
        .flat_map(|&model| jobs.iter().map(move |&(m, s)| (model, m, s)))
        .collect();
    let mut trained: Vec<Trained> = all
        .par_iter()
        .map(|&(model, m, seed)| train(&problem, model, m, seed, t_final))
        .collect::<Result<_>>()?;
    let control: Vec<Trained> = trained.split_off(jobs.len());
    let runs = trained;
    let largest_m = widths[widths.len() - 1];
    // The run of (width, seed).
    let find = |m: usize, seed: u64| -> Result<&Trained> {
        jobs.iter()
            .zip(&runs)
            .find(|(j, _)| j.0 == m && j.1 == seed)
            .map(|(_, r)| r)
            .ok_or_else(|| anyhow!("no run for width {m}, seed {seed}"))
    };
    let seeds: Vec<u64> = (0..n_seeds).map(|k| ctx.init_seed * 1000 + k).collect();
    // The premise: the fixed set has the same labels at every width (bit for bit).
    let mut shared = true;
    for &seed in &seeds {
        let base = &find(widths[0], seed)?.labels;
        for &m in &widths[1..] {
            shared &= find(m, seed)?.labels == *base;
        }
    }
    let min_over_time = |r: &Trained, f: fn(&Probe) -> f64| -> f64 {
        r.probes.iter().map(f).fold(f64::INFINITY, f64::min)
    };
    // Per width: the geometric mean over seeds of `f` of a set of runs (the ResNet's or the control's).
    let per_width_of = |set: &[Trained], f: &dyn Fn(&Trained) -> f64| -> Vec<f64> {
        widths
            .iter()
            .map(|&m| {
                let v: Vec<f64> = jobs
                    .iter()
                    .zip(set)
                    .filter(|(j, _)| j.0 == m)
                    .map(|(_, r)| f(r).ln())
                    .collect();
                (v.iter().sum::<f64>() / v.len() as f64).exp()
            })
            .collect()
    };
    let per_width = |f: &dyn Fn(&Trained) -> f64| per_width_of(&runs, f);
    let mu_min = per_width(&|r| min_over_time(r, |p| p.3));
    let nu_min = per_width(&|r| min_over_time(r, |p| p.4));
    let nu_control = per_width_of(&control, &|r| min_over_time(r, |p| p.4));
    let lam_min = per_width(&|r| min_over_time(r, |p| p.1));
    let ratio_min = per_width(&|r| min_over_time(r, |p| p.2));
    let risks = per_width(&|r| r.risk);
    let all_mu: Vec<f64> = runs.iter().map(|r| min_over_time(r, |p| p.3)).collect();
    let xs: Vec<f64> = widths.iter().map(|&m| m as f64).collect();
    // Per seed: μ against m and its slope.
    let mut seed_slopes = Vec::new();
    for &seed in &seeds {
        let v: Vec<f64> = widths
            .iter()
            .map(|&m| find(m, seed).map(|r| min_over_time(r, |p| p.3)))
            .collect::<Result<_>>()?;
        seed_slopes.push(loglog_fit(&xs, &v).0);
    }
    // The fixed set follows a common limit: max_j ‖z_L,j(T) at width m − at the largest width‖, mean over
    // seeds, for every width below the largest.
    let mut conv = Vec::new();
    for &m in &widths[..widths.len() - 1] {
        let mut acc = 0.0;
        for &seed in &seeds {
            let (a, b) = (&find(m, seed)?.zl, &find(largest_m, seed)?.zl);
            let worst = (0..M0)
                .map(|j| {
                    (0..a.nrows())
                        .map(|i| (a[(i, j)] - b[(i, j)]).powi(2))
                        .sum::<f64>()
                        .sqrt()
                })
                .fold(0.0, f64::max);
            acc += worst;
        }
        conv.push(acc / n_seeds as f64);
    }
    // The largest network of the first seed, its final map sampled by its first m' units: how the
    // all-pairs λ falls as one fixed map is sampled more densely (the extreme-value effect).
    let largest = find(largest_m, seeds[0])?;
    let lam_sub: Vec<f64> = widths
        .iter()
        .map(|&m| {
            injectivity(
                largest.z1.as_ref().subcols(0, m),
                largest.zl.as_ref().subcols(0, m),
            )
            .0
        })
        .collect();
    let (slope, c_mu) = loglog_fit(&xs, &mu_min);
    let (slope_lambda, _) = loglog_fit(&xs, &lam_min);
    let (slope_ratio, _) = loglog_fit(&xs, &ratio_min);
    let (slope_nu, _) = loglog_fit(&xs, &nu_min);
    let (slope_nu_control, _) = loglog_fit(&xs, &nu_control);
    let positive = all_mu.iter().all(|&l| l.is_finite() && l > 0.0);
    let threshold = -0.25;
    let local_tol = -0.1;
    let passed = shared
        && positive
        && slope >= threshold
        && slope_nu >= local_tol
        && slope_nu_control < local_tol;
    let pts =
        |v: &[f64]| -> Vec<(f64, f64)> { xs.iter().copied().zip(v.iter().copied()).collect() };
    let per_run_mu: Vec<(f64, f64)> = jobs
        .iter()
        .zip(&all_mu)
        .map(|(j, &l)| (j.0 as f64, l))
        .collect();
    let mu0 = (c_mu + slope * xs[0].ln()).exp();
    let series = vec![
        Series::line_points(
            format!("μ: fixed {M0} labels (min over t, geo. mean), slope {slope:.2}"),
            pts(&mu_min),
        ),
        Series::points("μ per run", per_run_mu),
        Series::line(
            "m^(-1/2) from μ's fit at the smallest m (merging labels)",
            xs.iter()
                .map(|&m| (m, mu0 * (m / xs[0]).powf(-0.5)))
                .collect(),
        ),
        Series::line_points(
            format!("(b) ν: 5th percentile of nn_L/nn_1 (min over t), slope {slope_nu:.2}"),
            pts(&nu_min),
        ),
        Series::line_points(
            format!("(b) control: ν of a DNN from the i.i.d. start, slope {slope_nu_control:.2}"),
            pts(&nu_control),
        ),
        Series::line_points(
            format!("secondary: λ over all pairs (geo. mean), slope {slope_lambda:.2}"),
            pts(&lam_min),
        ),
        Series::line_points(
            format!("secondary: min-distance ratio, all pairs, slope {slope_ratio:.2}"),
            pts(&ratio_min),
        ),
        Series::line_points(
            "secondary: λ of one final map, first m units",
            pts(&lam_sub),
        ),
    ];
    let figure = LinePlot {
        title: format!(
            "C20: Z_1 → Z_L chord ratios over ResNet training (GD η = {ETA}, t ≤ {t_final}) vs width"
        ),
        x_label: "width m".into(),
        y_label: "chord ratio in Z_L relative to Z_1 (1 at the start)".into(),
        log_x: true,
        log_y: true,
        series,
        hlines: vec![],
    }
    .to_svg()?;
    Ok(Outcome {
        passed,
        value: slope,
        threshold,
        detail: format!(
            "widths {widths:?}, {n_seeds} seeds, t ≤ {t_final}; fixed set = first {M0} units, labels shared across widths (bit for bit): {shared}. μ (min over t and over the fixed pairs, geometric mean over seeds) {} — slope {slope:.3} (per seed {}; per run {}). (b) local: ν {} — slope {slope_nu:.3}; folding control (DNN, i.i.d. start) ν {} — slope {slope_nu_control:.3}. The fixed set's final z_L vs width {largest_m}: mean max distance {} for widths {:?}. Secondary, all pairs: λ {} — slope {slope_lambda:.3}; min-distance ratio {} — slope {slope_ratio:.3}; the first seed's width-{largest_m} final map on its first {widths:?} units: λ {}. Final risk {}",
            fixed(&mu_min, 4),
            fixed(&seed_slopes, 3),
            fixed(&all_mu, 3),
            fixed(&nu_min, 4),
            super::flow_support::sci(&nu_control, 2),
            super::flow_support::sci(&conv, 2),
            &widths[..widths.len() - 1],
            fixed(&lam_min, 4),
            fixed(&ratio_min, 4),
            fixed(&lam_sub, 4),
            super::flow_support::sci(&risks, 2)
        ),
        figure: Some(figure),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The negative control of (b) fails where it should: the local statistic ν of a DNN from the i.i.d.
    /// degenerate start (a folding map) falls with m, slope < −0.1.
    #[test]
    fn c20_local_statistic_flags_a_folding_map() {
        let data = sine(8, 3, 0).unwrap();
        let problem = tanh_problem(&data).unwrap();
        let widths = [32usize, 128, 512];
        let nu: Vec<f64> = widths
            .iter()
            .map(|&m| {
                let r = train(&problem, Model::FoldingDnn, m, 0, 20.0).unwrap();
                r.probes.iter().map(|p| p.4).fold(f64::INFINITY, f64::min)
            })
            .collect();
        let xs: Vec<f64> = widths.iter().map(|&m| m as f64).collect();
        let (slope, _) = loglog_fit(&xs, &nu);
        assert!(slope < -0.1, "folding control slope {slope}, ν {nu:?}");
    }
}
