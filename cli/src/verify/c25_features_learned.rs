//! C25 — features are learned (math.md §6, [P1] §4.1): on held-out data a GD-trained mean-field network
//! beats the same network with frozen hidden layers (random features) and its linearization at
//! initialization (lazy / NTK), at the same width, split and seed. The rule, fixed before it was first
//! measured, is in `docs/claims/C25.md`:
//!
//! for each task $t$, architecture $a$, baseline $b$, the ratio of mean test risks over 10 paired inner runs,
//! $\rho = \overline R_{\rm MF}/\overline R_b$, with a paired percentile bootstrap 95% interval; single-index
//! teacher: upper end $< 1$; real data: upper end $\le 1.05$; negative control (a random-features teacher on
//! the run's own frozen features): lower end $\ge 1$.
use super::two_level_support::par_map;
use super::{Claim, ClaimCtx, ClaimInfo, Outcome};
use crate::plot::{LinePlot, Series};
use anyhow::{ensure, Result};
use faer::{Mat, Par};
use nff_core::baseline::{frozen, lazy};
use nff_core::data::BuiltinDataset;
use nff_core::init::{init_network, Init};
use nff_core::network::Workspace;
use nff_core::rng::{normal, rng};
use nff_core::split::{HeldOut, SplitFractions};
use nff_core::{Activation, Arch, Dataset, Loss, Network, Params, Problem, Regularizer, Shape};
use rand::Rng as _;

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C25",
            title: "features are learned (held-out risk vs fixed features)",
            measures: "ratio of mean test risks, GD-trained mean-field network / random features (hidden layers frozen, ridge on validation) and / lazy linearization (ridge on validation), over 10 paired inner runs (split 0.6/0.2/0.2, same initial network), with a paired bootstrap 95% interval; two-level and ResNet L = 2, tanh; tasks: single-index teacher (d = 16), breast-cancer, diabetes, and a random-features-teacher negative control",
            rule: "single-index teacher: every interval's upper end < 1 (2 architectures x 2 baselines); breast-cancer and diabetes: every upper end ≤ 1.05; negative control (targets in the frozen features' span): lower end ≥ 1 for both baselines (value: the largest single-index upper end, threshold 1)",
        },
        run,
    }
}

/// The tasks of docs/claims/C25.md.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Task {
    SingleIndex,
    BreastCancer,
    Diabetes,
    Control,
}

impl Task {
    fn name(self) -> &'static str {
        match self {
            Self::SingleIndex => "single-index",
            Self::BreastCancer => "breast-cancer",
            Self::Diabetes => "diabetes",
            Self::Control => "control",
        }
    }

    fn loss(self) -> Loss {
        if self == Self::BreastCancer {
            Loss::Logistic
        } else {
            Loss::Squared
        }
    }
}

/// Sizes of one configuration.
#[derive(Clone, Copy, Debug)]
struct Config {
    n_single: usize,
    n_real: Option<usize>,
    m: usize,
    steps: usize,
}

const D_SINGLE: usize = 16;
const INNER: u64 = 10;
const ETA: f64 = 0.05;
const LAMBDA: f64 = 1e-4;
const EVERY: usize = 25;
const BOOTSTRAP: usize = 2000;

/// $x\sim\mathcal N(0, I_d)$, $w$ uniform on the sphere, $y = z + (z^2-1)/\sqrt2$ with $z = w^\top x$.
fn single_index(n: usize, seed: u64) -> Result<Dataset> {
    let mut r = rng(seed, "C25/single-index");
    let mut w: Vec<f64> = (0..D_SINGLE).map(|_| normal(&mut r)).collect();
    let norm = w.iter().map(|a| a * a).sum::<f64>().sqrt();
    w.iter_mut().for_each(|a| *a /= norm);
    let x = Mat::from_fn(n, D_SINGLE, |_, _| normal(&mut r));
    let y = (0..n)
        .map(|i| {
            let z: f64 = (0..D_SINGLE).map(|k| x[(i, k)] * w[k]).sum();
            z + (z * z - 1.0) / std::f64::consts::SQRT_2
        })
        .collect();
    Ok(Dataset::new(x, y)?)
}

/// $X/\sqrt d$ (the standardized inputs at the scale of math.md §6's synthetic data).
fn scaled(data: &Dataset) -> Result<Dataset> {
    let s = (data.d() as f64).sqrt().recip();
    Ok(Dataset::new(
        Mat::from_fn(data.n(), data.d(), |i, j| data.x[(i, j)] * s),
        data.y.clone(),
    )?)
}

/// The held-out parts of inner run `seed` of `task`: split, standardized, scaled, bias appended.
fn parts(task: Task, cfg: Config, seed: u64) -> Result<HeldOut> {
    let raw = match task {
        Task::SingleIndex | Task::Control => single_index(cfg.n_single, seed)?,
        Task::BreastCancer | Task::Diabetes => {
            let kind = if task == Task::BreastCancer {
                BuiltinDataset::BreastCancer
            } else {
                BuiltinDataset::Diabetes
            };
            let (full_n, d) = kind.full_size().expect("a real data set has a size");
            Dataset::builtin(kind, cfg.n_real.unwrap_or(full_n).min(full_n), d, 0)?
        }
    };
    let fractions = SplitFractions::new(0.6, 0.2, 0.2)?;
    let h = HeldOut::split(&raw, fractions, seed, true, task.loss() == Loss::Squared)?;
    let h = HeldOut {
        train: scaled(&h.train)?,
        val: h.val.as_ref().map(scaled).transpose()?,
        test: scaled(&h.test)?,
        ..h
    };
    Ok(h.with_bias())
}

/// Test risks of the three regimes on one inner run: (mean-field, random features, lazy).
fn inner(task: Task, arch: Arch, cfg: Config, data_seed: u64, init_seed: u64) -> Result<[f64; 3]> {
    let mut h = parts(task, cfg, data_seed)?;
    let depth = if arch == Arch::TwoLevel { 1 } else { 2 };
    let shape = Shape::new(arch, h.train.d(), cfg.m, depth)?;
    let (net0, _) = init_network(shape, &h.train, Activation::Tanh, &Init::iid(), init_seed)?;
    if task == Task::Control {
        // y = (1/m) h(X̃ A0) v*, v* ~ N(0, I): in the span of the run's own frozen features.
        let mut r = rng(init_seed, "C25/control");
        let mut teacher = net0.clone();
        let vs: Vec<f64> = (0..cfg.m).map(|_| normal(&mut r)).collect();
        let shape = teacher.shape();
        teacher.as_mut_slice()[shape.v_range()].copy_from_slice(&vs);
        let plain = Problem::new(
            h.train.clone(),
            Activation::Tanh,
            Loss::Squared,
            Regularizer::None,
        )?;
        let parts = std::iter::once(&mut h.train)
            .chain(h.val.as_mut())
            .chain(std::iter::once(&mut h.test));
        for part in parts {
            part.y = plain.on_data(part.clone())?.predict(&teacher);
        }
    }
    let val = h.val.clone().expect("the split has a validation part");
    let problem = Problem::new(
        h.train.clone(),
        Activation::Tanh,
        task.loss(),
        Regularizer::l2(LAMBDA),
    )?;
    let val_p = problem.on_data(val.clone())?;
    let test_p = problem.on_data(h.test.clone())?;
    // Mean-field: scaled GD, the state of smallest validation risk kept (early stopping).
    let mut net = net0.clone();
    let mut ws = Workspace::new(shape, problem.n());
    let mut vel = Params::zeros(shape);
    let (mut best_val, mut best): (f64, Network) = (val_p.risk(&net), net.clone());
    for step in 1..=cfg.steps {
        let j = problem.gd_step(&mut net, ETA, &mut ws, &mut vel, Par::Seq);
        ensure!(j.is_finite(), "{}: GD diverged at step {step}", task.name());
        if step % EVERY == 0 {
            let v = val_p.risk(&net);
            if v < best_val {
                (best_val, best) = (v, net.clone());
            }
        }
    }
    let r_mf = test_p.risk(&best);
    let grid: Vec<f64> = (0..=6).map(|k| 10f64.powi(k - 6)).collect();
    let (rf, _, _) = frozen::fit_output_best_ridge(&problem, &val, &net0, &grid, Par::Seq)?;
    let r_rf = test_p.risk(&rf);
    let (lz, fit, _) = lazy::fit_lazy_best_ridge(&problem, &val, &net0, &grid, Par::Seq)?;
    let yhat = lz.predict_on(&h.test, &fit, Par::Seq)?;
    let r_lazy = problem.loss.risk(&yhat, &h.test.y);
    let out = [r_mf, r_rf, r_lazy];
    ensure!(
        out.iter().all(|r| r.is_finite()),
        "{}: a test risk is not finite: {out:?}",
        task.name()
    );
    Ok(out)
}

/// Ratio of means and its paired percentile bootstrap 95% interval.
fn ratio_interval(num: &[f64], den: &[f64], seed: u64, stream: &str) -> (f64, [f64; 2]) {
    let k = num.len();
    let mean = |v: &[f64], idx: &[usize]| idx.iter().map(|&i| v[i]).sum::<f64>() / idx.len() as f64;
    let all: Vec<usize> = (0..k).collect();
    let point = mean(num, &all) / mean(den, &all);
    let mut r = rng(seed, stream);
    let mut stats: Vec<f64> = (0..BOOTSTRAP)
        .map(|_| {
            let idx: Vec<usize> = (0..k).map(|_| r.random_range(0..k)).collect();
            mean(num, &idx) / mean(den, &idx)
        })
        .collect();
    stats.sort_by(f64::total_cmp);
    let q = |p: f64| stats[((p * (BOOTSTRAP - 1) as f64).round() as usize).min(BOOTSTRAP - 1)];
    (point, [q(0.025), q(0.975)])
}

fn run(ctx: &ClaimCtx) -> Result<Outcome> {
    let cfg = ctx.size.pick(
        Config {
            n_single: 400,
            n_real: Some(300),
            m: 32,
            steps: 1500,
        },
        Config {
            n_single: 1000,
            n_real: None,
            m: 128,
            steps: 3000,
        },
    );
    let cases: Vec<(Task, Arch)> = [Task::SingleIndex, Task::BreastCancer, Task::Diabetes]
        .into_iter()
        .flat_map(|t| [(t, Arch::TwoLevel), (t, Arch::ResNet)])
        .chain([(Task::Control, Arch::TwoLevel)])
        .collect();
    let jobs: Vec<(usize, u64)> = (0..cases.len())
        .flat_map(|c| (0..INNER).map(move |k| (c, k)))
        .collect();
    let risks = par_map(jobs.len(), |j| {
        let (c, k) = jobs[j];
        let (task, arch) = cases[c];
        inner(
            task,
            arch,
            cfg,
            ctx.data_seed * 1000 + k,
            ctx.init_seed * 1000 + k,
        )
    })?;
    let boot_seed = ctx
        .data_seed
        .wrapping_mul(1_000_003)
        .wrapping_add(ctx.init_seed);
    let mut passed = true;
    let mut headline = f64::NEG_INFINITY;
    let mut lines = Vec::new();
    let mut means: Vec<(String, [f64; 3])> = Vec::new();
    for (c, &(task, arch)) in cases.iter().enumerate() {
        let rs: Vec<[f64; 3]> = jobs
            .iter()
            .zip(&risks)
            .filter(|(j, _)| j.0 == c)
            .map(|(_, r)| *r)
            .collect();
        let col = |i: usize| rs.iter().map(|r| r[i]).collect::<Vec<f64>>();
        let (mf, rf, lz) = (col(0), col(1), col(2));
        let avg = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        means.push((
            format!("{} {}", task.name(), arch.name()),
            [avg(&mf), avg(&rf), avg(&lz)],
        ));
        let mut parts = Vec::new();
        for (b, den) in [("RF", &rf), ("lazy", &lz)] {
            let stream = format!("C25/bootstrap/{}/{}/{b}", task.name(), arch.name());
            let (rho, [lo, hi]) = ratio_interval(&mf, den, boot_seed, &stream);
            let ok = match task {
                Task::SingleIndex => {
                    headline = headline.max(hi);
                    hi < 1.0
                }
                Task::BreastCancer | Task::Diabetes => hi <= 1.05,
                Task::Control => lo >= 1.0,
            };
            passed &= ok;
            parts.push(format!(
                "MF/{b} {rho:.3} [{lo:.3}, {hi:.3}]{}",
                if ok { "" } else { " ✗" }
            ));
        }
        lines.push(format!(
            "{} {}: test risk MF {:.4}, RF {:.4}, lazy {:.4}; {}",
            task.name(),
            arch.name(),
            avg(&mf),
            avg(&rf),
            avg(&lz),
            parts.join(", ")
        ));
    }
    let figure = figure(&means)?;
    Ok(Outcome {
        passed,
        value: headline,
        threshold: 1.0,
        detail: format!(
            "m = {}, {} GD steps (η = {ETA}, λ = {LAMBDA}, early stopping on validation), {INNER} paired inner runs: {}",
            cfg.m,
            cfg.steps,
            lines.join("; ")
        ),
        figure: Some(figure),
    })
}

/// Mean test risk relative to random features' for every case: MF, RF (= 1) and lazy, one x per case.
fn figure(means: &[(String, [f64; 3])]) -> Result<String> {
    let xs = |i: usize| -> Vec<(f64, f64)> {
        means
            .iter()
            .enumerate()
            .map(|(c, (_, m))| ((c + 1) as f64, m[i] / m[1]))
            .collect()
    };
    let cases: Vec<String> = means
        .iter()
        .enumerate()
        .map(|(c, (n, _))| format!("{} {n}", c + 1))
        .collect();
    LinePlot {
        title: "C25: mean test risk relative to random features (below 1: better)".into(),
        x_label: format!("case: {}", cases.join(", ")),
        y_label: "test risk / random features' test risk".into(),
        log_x: false,
        log_y: true,
        series: vec![
            Series::points("mean-field (GD, early stopping)", xs(0)).styled(0, 0),
            Series::points("lazy (linearized at init)", xs(2)).styled(2, 1),
        ],
        hlines: vec![("random features".into(), 1.0)],
    }
    .to_svg()
}
