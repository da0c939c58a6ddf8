//! C20 — the label→feature maps of the ResNet stay injective along training (math.md §5, condition
//! (iii) of the global-convergence theorem). For the ResNet, unit $k$ of every layer is the same unit
//! moved along the skip connections, so training defines a map $\Phi_t:\mathbf z_{1,k}(t)\mapsto\mathbf z_{L,k}(t)$ (and $\mathbf z_1 = Xa$
//! is injective in the label $a$ when $X$ has full column rank). Injective with a Lipschitz inverse means
//! $$\lambda_t = \min_{j\ne k}\frac{\|\mathbf z_{L,j}(t)-\mathbf z_{L,k}(t)\|}{\|\mathbf z_{1,j}(t)-\mathbf z_{1,k}(t)\|}$$
//! bounded below, uniformly in $m$ (more particles probe the map more finely, so a map that folds shows
//! $\lambda \to 0$ as $m$ grows). Also reported: the ratio of minimum particle distances
//! $\min_{j\ne k}\|\mathbf z_{L,j}-\mathbf z_{L,k}\| / \min_{j\ne k}\|\mathbf z_{1,j}-\mathbf z_{1,k}\|$.
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
            measures: "log-log slope against m (geometric mean over seeds) of the min over training of min_{j≠k}‖z_L,j − z_L,k‖ / min_{j≠k}‖z_1,j − z_1,k‖, along unregularized GD of a ResNet (L = 3, tanh, N = 8, d = 3, zero start, η = 0.2, t ≤ 100 quick / 300 full); also λ = min over pairs of ‖z_L,j − z_L,k‖/‖z_1,j − z_1,k‖, the map's lower Lipschitz constant on the particles",
            rule: "λ > 0 at every recorded time, width and seed (no particles merge), and the min-distance ratio bounded below uniformly in m: slope ≥ -0.15 (a map that folds, or merging particles, make it fall like a power of m as the particles fill the support)",
        },
        run,
    }
}

/// One probe: (t, λ_t, ratio of minimum distances).
type Probe = (f64, f64, f64);

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
        let (lambda, ratio) = injectivity(self.ws.z(0), self.ws.z(self.shape.depth - 1));
        if let Ok(mut out) = self.out.lock() {
            out.push((info.t, lambda, ratio));
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

/// A width's run: probes along training, final risk, final $Z_1$ and $Z_L$.
struct Trained {
    probes: Vec<Probe>,
    risk: f64,
    z1: Mat<f64>,
    zl: Mat<f64>,
}

fn train(problem: &Problem, m: usize, seed: u64, t_final: f64) -> Result<Trained> {
    let net = network(&problem.data, Arch::ResNet, m, 3, &Init::zero(), seed)?;
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
    let mut probes = std::mem::take(&mut *out.lock().map_err(|_| anyhow!("probe lock poisoned"))?);
    probes.push((report.t, lambda, ratio));
    Ok(Trained {
        probes,
        risk,
        z1,
        zl,
    })
}

fn run(ctx: &ClaimCtx) -> Result<Outcome> {
    let data = sine(8, 3, ctx.seed)?;
    let problem = tanh_problem(&data)?;
    let widths: Vec<usize> = ctx.size.pick(vec![16, 64, 256], vec![32, 128, 512]);
    let n_seeds = ctx.size.pick(3, 4) as u64;
    let t_final = ctx.size.pick(100.0, 300.0);
    let jobs: Vec<(usize, u64)> = widths
        .iter()
        .flat_map(|&m| (0..n_seeds).map(move |k| (m, ctx.seed * 1000 + k)))
        .collect();
    let runs: Vec<Trained> = jobs
        .par_iter()
        .map(|&(m, seed)| train(&problem, m, seed, t_final))
        .collect::<Result<_>>()?;
    let min_over_time = |r: &Trained, f: fn(&Probe) -> f64| -> f64 {
        r.probes.iter().map(f).fold(f64::INFINITY, f64::min)
    };
    // Per width: the geometric mean over seeds of min_t λ_t (and of the min-distance ratio).
    let per_width = |f: &dyn Fn(&Trained) -> f64| -> Vec<f64> {
        widths
            .iter()
            .map(|&m| {
                let v: Vec<f64> = jobs
                    .iter()
                    .zip(&runs)
                    .filter(|(j, _)| j.0 == m)
                    .map(|(_, r)| f(r).ln())
                    .collect();
                (v.iter().sum::<f64>() / v.len() as f64).exp()
            })
            .collect()
    };
    let lam_min = per_width(&|r| min_over_time(r, |p| p.1));
    let ratio_min = per_width(&|r| min_over_time(r, |p| p.2));
    let lam_end = per_width(&|r| r.probes.last().map_or(f64::NAN, |x| x.1));
    let all_lam: Vec<f64> = runs.iter().map(|r| min_over_time(r, |p| p.1)).collect();
    let risks = per_width(&|r| r.risk);
    // The largest network of the first seed, its final map sampled by its first m' units: how λ falls
    // as one fixed map is sampled more densely (the extreme-value effect).
    let largest = jobs
        .iter()
        .zip(&runs)
        .find(|(j, _)| j.0 == widths[widths.len() - 1])
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("no runs"))?;
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
    let xs: Vec<f64> = widths.iter().map(|&m| m as f64).collect();
    let (slope_lambda, c_lambda) = loglog_fit(&xs, &lam_min);
    let (slope, _) = loglog_fit(&xs, &ratio_min);
    let positive = all_lam.iter().all(|&l| l.is_finite() && l > 0.0);
    let threshold = -0.15;
    let passed = positive && slope >= threshold;
    let pts =
        |v: &[f64]| -> Vec<(f64, f64)> { xs.iter().copied().zip(v.iter().copied()).collect() };
    let per_run_ratio: Vec<(f64, f64)> = jobs
        .iter()
        .zip(&runs)
        .map(|(j, r)| (j.0 as f64, min_over_time(r, |p| p.2)))
        .collect();
    let per_run_lambda: Vec<(f64, f64)> = jobs
        .iter()
        .zip(&all_lam)
        .map(|(j, &l)| (j.0 as f64, l))
        .collect();
    let series = vec![
        Series::line_points(
            format!("min-distance ratio (min over t, geo. mean), slope {slope:.2}"),
            pts(&ratio_min),
        ),
        Series::points("min-distance ratio per run", per_run_ratio),
        Series::line_points(
            format!("λ = min pairwise ratio (min over t, geo. mean), slope {slope_lambda:.2}"),
            pts(&lam_min),
        ),
        Series::points("λ per run", per_run_lambda),
        Series::line_points("λ of one final map, subsampled to m units", pts(&lam_sub)),
        Series::line(
            "m^(-1/2) through the λ fit's start",
            xs.iter()
                .map(|&m| {
                    (
                        m,
                        (c_lambda + slope_lambda * xs[0].ln()).exp() * (m / xs[0]).powf(-0.5),
                    )
                })
                .collect(),
        ),
    ];
    let figure = LinePlot {
        title: format!(
            "C20: injectivity of Z_1 → Z_L over ResNet training (GD η = {ETA}, t ≤ {t_final}) vs width"
        ),
        x_label: "width m".into(),
        y_label: "ratio in Z_L relative to Z_1 (1 at the start)".into(),
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
            "widths {widths:?}, {n_seeds} seeds, t ≤ {t_final}: min over t of min-distance ratio (geometric mean over seeds) {} — slope {slope:.3}; min over t of λ {} — slope {slope_lambda:.3} (per run {}); λ at the end {}; the first seed's largest network's final map sampled by its first {widths:?} units: λ {}; final risk {}",
            fixed(&ratio_min, 4),
            fixed(&lam_min, 4),
            fixed(&all_lam, 3),
            fixed(&lam_end, 4),
            fixed(&lam_sub, 4),
            super::flow_support::sci(&risks, 2)
        ),
        figure: Some(figure),
    })
}
