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
use faer::{MatRef, Par};
use nff_core::feature::min_pairwise_distance;
use nff_core::init::Init;
use nff_core::network::Workspace;
use nff_core::{Arch, Params, Problem, Shape};
use nff_flow::{
    DormandPrince, DormandPrinceOptions, Observer, ObserverAction, ObserverMode, Runner, StepInfo,
    TerminationReason, WeightFlow,
};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C20",
            title: "label→feature maps stay injective (ResNet)",
            measures: "min over training times and widths of λ_t = min over unit pairs of ‖z_L,j − z_L,k‖/‖z_1,j − z_1,k‖ (lower Lipschitz constant of the map Z_1 → Z_L) for the unregularized ResNet flow (L = 3, tanh, N = 8, d = 3, zero start, adaptive Dormand–Prince to t = 300)",
            rule: "λ ≥ 0.1 at every recorded time and width (bounded below), and the per-width minima do not decay with m: log-log slope of min_t λ against m ≥ -0.15 (a folding map would give λ → 0 as the particles fill the support)",
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

fn train(ctx: &ClaimCtx, m: usize, t_final: f64) -> Result<(Vec<Probe>, f64)> {
    let data = sine(8, 3, ctx.seed)?;
    let problem = tanh_problem(&data)?;
    let net = network(&data, Arch::ResNet, m, 3, &Init::zero(), ctx.seed)?;
    let shape = net.shape();
    let field = WeightFlow::new(problem.clone(), shape, Par::Seq)?;
    let y0 = field.initial_state(&net)?;
    let out = Arc::new(Mutex::new(Vec::new()));
    let probe = InjectivityProbe {
        ws: Workspace::new(shape, problem.n()),
        problem: problem.clone(),
        shape,
        every: 15,
        out: Arc::clone(&out),
    };
    let dp = DormandPrince::new(DormandPrinceOptions::with_tolerances(1e-7, 1e-10))?;
    let mut runner = Runner::builder(field, dp)
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
    let (lambda, ratio) = injectivity(ws.z(0), ws.z(shape.depth - 1));
    let mut probes = std::mem::take(&mut *out.lock().map_err(|_| anyhow!("probe lock poisoned"))?);
    probes.push((report.t, lambda, ratio));
    Ok((probes, risk))
}

fn run(ctx: &ClaimCtx) -> Result<Outcome> {
    let widths: Vec<usize> = ctx.size.pick(vec![32, 128], vec![32, 128, 512]);
    let t_final = 300.0;
    let runs: Vec<(Vec<Probe>, f64)> = widths
        .par_iter()
        .map(|&m| train(ctx, m, t_final))
        .collect::<Result<_>>()?;
    let lam_min: Vec<f64> = runs
        .iter()
        .map(|(p, _)| p.iter().map(|x| x.1).fold(f64::INFINITY, f64::min))
        .collect();
    let ratio_min: Vec<f64> = runs
        .iter()
        .map(|(p, _)| p.iter().map(|x| x.2).fold(f64::INFINITY, f64::min))
        .collect();
    let lam_end: Vec<f64> = runs
        .iter()
        .map(|(p, _)| p.last().map_or(f64::NAN, |x| x.1))
        .collect();
    let risks: Vec<f64> = runs.iter().map(|r| r.1).collect();
    let xs: Vec<f64> = widths.iter().map(|&m| m as f64).collect();
    let (slope, _) = loglog_fit(&xs, &lam_min);
    let worst = lam_min.iter().copied().fold(f64::INFINITY, f64::min);
    let threshold = 0.1;
    let passed = worst >= threshold && slope >= -0.15;
    let mut series = Vec::new();
    for (m, (probes, _)) in widths.iter().zip(&runs) {
        series.push(Series::line(
            format!("λ_t (pairwise), m = {m}"),
            probes
                .iter()
                .filter(|p| p.0 > 0.0)
                .map(|p| (p.0, p.1))
                .collect(),
        ));
        series.push(Series::line(
            format!("min-distance ratio, m = {m}"),
            probes
                .iter()
                .filter(|p| p.0 > 0.0)
                .map(|p| (p.0, p.2))
                .collect(),
        ));
    }
    let figure = LinePlot {
        title: "C20: injectivity of Z_1 → Z_L along the ResNet flow".into(),
        x_label: "time t".into(),
        y_label: "ratio".into(),
        log_x: true,
        log_y: true,
        series,
        hlines: vec![("floor 0.1".into(), threshold)],
    }
    .to_svg()?;
    Ok(Outcome {
        passed,
        value: worst,
        threshold,
        detail: format!(
            "widths {widths:?}, t ≤ {t_final}: min_t λ_t {} (slope {slope:.3} against m), λ at the end {}; min_t of min-distance ratio {}; final risk {}",
            fixed(&lam_min, 4),
            fixed(&lam_end, 4),
            fixed(&ratio_min, 4),
            super::flow_support::sci(&risks, 2)
        ),
        figure: Some(figure),
    })
}
