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
            measures: "log-log slope, between the two largest widths, of min over training of λ_t = min over unit pairs of ‖z_L,j − z_L,k‖/‖z_1,j − z_1,k‖ (the lower Lipschitz constant of the map Z_1 → Z_L) along unregularized GD of a ResNet (L = 3, tanh, N = 8, d = 3, zero start, η = 0.2, t ≤ 100)",
            rule: "λ > 0 at every recorded time and width, and λ levels off as m grows: slope ≥ -0.15. λ is a minimum over m(m−1)/2 pairs, so it falls towards the map's infimum as particles fill the support (a pre-asymptotic fall at small m is expected of any map); a folding map, or merging particles, keep it falling like a power of m",
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

fn train(ctx: &ClaimCtx, m: usize, t_final: f64) -> Result<Trained> {
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
        every: 25,
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
    let widths: Vec<usize> = ctx.size.pick(vec![32, 128, 512], vec![64, 256, 1024]);
    let t_final = 100.0;
    let runs: Vec<Trained> = widths
        .par_iter()
        .map(|&m| train(ctx, m, t_final))
        .collect::<Result<_>>()?;
    let over_time = |f: fn(&Probe) -> f64| -> Vec<f64> {
        runs.iter()
            .map(|r| r.probes.iter().map(f).fold(f64::INFINITY, f64::min))
            .collect()
    };
    let lam_min = over_time(|p| p.1);
    let ratio_min = over_time(|p| p.2);
    let lam_end: Vec<f64> = runs
        .iter()
        .map(|r| r.probes.last().map_or(f64::NAN, |x| x.1))
        .collect();
    let risks: Vec<f64> = runs.iter().map(|r| r.risk).collect();
    // The largest trained network's final map, sampled by its first m' units: how λ falls as one fixed
    // map is sampled more densely (the extreme-value effect the rule allows for at small m).
    let largest = runs.last().ok_or_else(|| anyhow!("no widths"))?;
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
    let k = widths.len();
    ensure!(k >= 2, "need at least two widths");
    let slope =
        (lam_min[k - 1] / lam_min[k - 2]).ln() / (widths[k - 1] as f64 / widths[k - 2] as f64).ln();
    let (slope_all, _) = loglog_fit(
        &widths.iter().map(|&m| m as f64).collect::<Vec<_>>(),
        &lam_min,
    );
    let positive = lam_min.iter().all(|&l| l.is_finite() && l > 0.0);
    let threshold = -0.15;
    let passed = positive && slope >= threshold;
    let mut series = Vec::new();
    for (m, r) in widths.iter().zip(&runs) {
        series.push(Series::line(
            format!("λ_t (pairwise), m = {m}"),
            r.probes
                .iter()
                .filter(|p| p.0 > 0.0)
                .map(|p| (p.0, p.1))
                .collect(),
        ));
    }
    for (m, r) in widths.iter().zip(&runs) {
        series.push(Series::line(
            format!("min-distance ratio, m = {m}"),
            r.probes
                .iter()
                .filter(|p| p.0 > 0.0)
                .map(|p| (p.0, p.2))
                .collect(),
        ));
    }
    let figure = LinePlot {
        title: format!("C20: injectivity of Z_1 → Z_L along the ResNet flow (GD η = {ETA}, N = 8)"),
        x_label: "time t".into(),
        y_label: "ratio (1 at the zero start)".into(),
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
            "widths {widths:?}, t ≤ {t_final}: min_t λ_t {} — slope {slope:.3} between the two largest widths ({slope_all:.3} over all); λ at the end {}; the largest network's final map sampled by its first {widths:?} units: λ {}; min_t of the min-distance ratio {}; final risk {}",
            fixed(&lam_min, 4),
            fixed(&lam_end, 4),
            fixed(&lam_sub, 4),
            fixed(&ratio_min, 4),
            super::flow_support::sci(&risks, 2)
        ),
        figure: Some(figure),
    })
}
