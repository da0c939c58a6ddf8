//! C23 — usage equalization at the convex optimum (math.md §4.1, §4.4): for the two-level program with
//! $\lambda_2 = \tau = 0$, $|\bar u|$ is constant on the support of the optimal population (balanced output
//! weights); for the deep program the outgoing usage $S^{\rm out}_\ell/\rho_\ell$ is constant on the support.
use super::two_level_support::{sine_with_bias, solve_program};
use super::{Claim, ClaimCtx, ClaimInfo, Outcome};
use crate::plot::{LinePlot, Series};
use anyhow::Result;
use nff_core::feature::FirstLayerMap;
use nff_core::init::{init_network, Init};
use nff_core::{Activation, Arch, Loss, Problem, Regularizer, Shape};
use nff_solvers::candidates;
use nff_solvers::deep::{DeepCandidates, DeepConfig, DeepOptions, DeepProgram};

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C23",
            title: "usage equalization at the convex optimum",
            measures: "largest relative spread (max − min)/max of the outgoing usage S_out/ρ over the support (mass ≥ 1% of the largest) of each layer of the solved deep program (L = 2, q = 2, no entropy; λ_a = λ_w = λ_v = 0.01 and λ_a = 0); the two-level balance of |ū| = |w|/ρ (λ₂ = τ = 0) is checked alongside",
            rule: "deep: every layer's usage spread ≤ 1e-2 (the deep interior-point solves stall at relative gaps ~1e-4–1e-3, so KKT quantities are accurate to ~1e-3); two-level: every support point's |ū| within the deviation the certified duality gap G allows, ||ū_k| − max|ū|| ≤ √(2G/λ₁ρ_k) + 2G/(λ₁ρ_k max|ū|)",
        },
        run,
    }
}

struct TwoLevelBalance {
    spread: f64,
    worst_ratio: f64,
    support: usize,
    points: Vec<(f64, f64)>,
    rel_gap: f64,
}

/// Solve the two-level program with λ₂ = τ = 0 and measure the balance of |ū| on the support.
fn two_level(ctx: &ClaimCtx, lambda1: f64) -> Result<TwoLevelBalance> {
    let data = sine_with_bias(10, 1, ctx.data_seed)?;
    let per_axis = ctx.size.pick(21, 41);
    let theta = candidates::grid(2, per_axis, 4.0)?;
    let rho0 = candidates::gaussian_weights(&theta, 2.0);
    let (prog, sol) = solve_program(&data, theta.as_ref(), &rho0, lambda1, 0.0)?;
    // The certificate decomposition at p = r (the residual of the returned point): the gap G bounds
    // Σ ρ_k (λ₁/2)(ū_k + s_k/λ₁)² and Σ ρ_k (max b − b_k) separately.
    let g = sol.gap.max(0.0);
    let rmax = sol.rho.iter().copied().fold(0.0, f64::max);
    let supp: Vec<usize> = (0..prog.k())
        .filter(|&k| sol.rho[k] > 1e-6 * rmax)
        .collect();
    let ub: Vec<f64> = supp.iter().map(|&k| sol.u_bar[k].abs()).collect();
    let umax = ub.iter().copied().fold(0.0, f64::max);
    let umin = ub.iter().copied().fold(f64::INFINITY, f64::min);
    let mut worst_ratio: f64 = 0.0;
    let mut points = Vec::new();
    for (&k, &u) in supp.iter().zip(&ub) {
        let bound = (2.0 * g / (lambda1 * sol.rho[k])).sqrt()
            + (2.0 * g / (lambda1 * sol.rho[k] * umax))
            // rounding of |ū| itself
            + 1e-12 * umax;
        worst_ratio = worst_ratio.max((umax - u).abs() / bound);
        points.push((sol.rho[k], u));
    }
    Ok(TwoLevelBalance {
        spread: (umax - umin) / umax,
        worst_ratio,
        support: supp.len(),
        points,
        rel_gap: sol.relative_gap,
    })
}

struct DeepLayer {
    /// Relative spread of the outgoing usage S_out/ρ on the support (the literal statement).
    usage_spread: f64,
    /// Relative spread of the "net usage" (the derived optimality condition) on the support.
    net_spread: f64,
    /// Relative objective change of the §4.4 repopulation step ρ ∝ ρ·usage at fixed function.
    repop_change: f64,
    /// (mass, usage) of the support points.
    points: Vec<(f64, f64)>,
}

struct DeepUsage {
    label: String,
    layers: Vec<DeepLayer>,
    rel_gap: f64,
}

/// Support of a layer: candidates with mass π·ρ ≥ 1e-2 of the largest (an interior-point iterate keeps a
/// residual mass ~1e-3 of the largest on unused candidates when it stalls).
fn support(pi: &[f64], rho: &[f64]) -> Vec<usize> {
    let pmax = pi.iter().zip(rho).map(|(a, b)| a * b).fold(0.0, f64::max);
    (0..rho.len())
        .filter(|&j| pi[j] * rho[j] >= 1e-2 * pmax)
        .collect()
}

fn rel_spread(v: &[f64]) -> f64 {
    let (lo, hi) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    (hi - lo) / hi.abs().max(lo.abs()).max(f64::MIN_POSITIVE)
}

/// Solve a small L = 2 deep program (q = 2, no entropy, λ_w = λ_v = 0.01) and measure, per layer, the
/// outgoing usage (layer 1: S_out(j)/ρ₁(j) = Σ_k π₂(k)|ũ₂(j,k)|/ρ₁(j); layer 2: |ũ₃(j)|/ρ₂(j) = |v_j|), the
/// net usage of the derived optimality condition, and the effect of the §4.4 repopulation step.
fn deep(ctx: &ClaimCtx, lambda_a: f64, label: &str) -> Result<DeepUsage> {
    let data = super::sine(6, 2, ctx.data_seed)?;
    let (lw, lv, q) = (0.01, 0.01, 2.0);
    let problem = Problem::new(
        data.clone(),
        Activation::Tanh,
        Loss::Squared,
        Regularizer::GroupL1q { lambda: lw, q },
    )?;
    let m = 8;
    let shape = Shape::new(Arch::Dnn, data.d(), m, 2)?;
    let (net, _) = init_network(
        shape,
        &data,
        Activation::Tanh,
        &Init::min_norm(),
        ctx.init_seed,
    )?;
    let fresh = ctx.size.pick(8, 16);
    let cand = DeepCandidates::from_network(&problem, &net, fresh, ctx.init_seed)?;
    let z1 = cand.z[0].clone();
    let cfg = DeepConfig {
        lambda_a,
        lambda_w: vec![lw],
        lambda_v: lv,
        q,
        beta: vec![0.0, 0.0],
    };
    let prog = DeepProgram::new(&data, Activation::Tanh, Loss::Squared, cand, cfg)?;
    let sol = prog.solve(&DeepOptions::default(), None, None)?;
    let sz = prog.sizes();
    let pi = prog.candidates().pi.clone();
    let pt = &sol.point;
    let u2 = |j: usize, k: usize| pt.u[0][j + k * sz[0]];
    let s_out: Vec<f64> = (0..sz[0])
        .map(|j| (0..sz[1]).map(|k| pi[1][k] * u2(j, k).abs()).sum())
        .collect();
    let base = prog.objective(pt)?;
    let map = FirstLayerMap::new(data.x.as_ref())?;
    let mut layers = Vec::new();
    for l in 0..2 {
        let rho = &pt.rho[l];
        let supp = support(&pi[l], rho);
        let usage: Vec<f64> = supp
            .iter()
            .map(|&j| {
                if l == 0 {
                    s_out[j] / rho[j]
                } else {
                    pt.v[j].abs() / rho[j]
                }
            })
            .collect();
        // Derived condition (first-order optimality of moving mass between support points at fixed
        // function): layer 1: (q−1)λ_w (S_out/ρ)^q − r₁ constant; layer 2:
        // (q−1)λ_v|v|^q − λ_w[(S_in/ρ)^q + (q/ρ) Σ_j π₁(j)(S_out(j)/ρ₁(j))^{q−1}|ũ₂(j,k)|] constant.
        let mut net = Vec::new();
        for (&j, &us) in supp.iter().zip(&usage) {
            let e = if l == 0 {
                let r1 = lambda_a * 0.5 * map.cost(z1.col(j))?;
                (q - 1.0) * lw * us.powf(q) - r1
            } else {
                let s_in: f64 = (0..sz[0]).map(|i| pi[0][i] * u2(i, j).abs()).sum();
                let cross: f64 = (0..sz[0])
                    .map(|i| pi[0][i] * (s_out[i] / pt.rho[0][i]).powf(q - 1.0) * u2(i, j).abs())
                    .sum::<f64>()
                    / rho[j];
                (q - 1.0) * lv * us.powf(q) - lw * ((s_in / rho[j]).powf(q) + q * cross)
            };
            net.push(e);
        }
        // The §4.4 repopulation step on the support: ρ'_j ∝ ρ_j·usage_j (same total mass), with the
        // incoming weights rescaled (layer 2: ũ₂(·,k) ∝ ρ₂(k)) so that the network function is unchanged.
        let mass: f64 = supp.iter().map(|&j| pi[l][j] * rho[j]).sum();
        let raw: f64 = supp
            .iter()
            .zip(&usage)
            .map(|(&j, &us)| pi[l][j] * rho[j] * us)
            .sum();
        let mut p2 = pt.clone();
        for (&j, &us) in supp.iter().zip(&usage) {
            let factor = us * mass / raw;
            p2.rho[l][j] = rho[j] * factor;
            if l == 1 {
                for i in 0..sz[0] {
                    p2.u[0][i + j * sz[0]] *= factor;
                }
            }
        }
        let repop = prog.objective(&p2)?;
        layers.push(DeepLayer {
            usage_spread: rel_spread(&usage),
            net_spread: rel_spread(&net),
            repop_change: (repop - base) / base,
            points: supp
                .iter()
                .zip(&usage)
                .map(|(&j, &us)| (pi[l][j] * rho[j], us))
                .collect(),
        });
    }
    Ok(DeepUsage {
        label: label.into(),
        layers,
        rel_gap: sol.relative_gap,
    })
}

fn run(ctx: &ClaimCtx) -> Result<Outcome> {
    let lambda1 = 0.05;
    let tl = two_level(ctx, lambda1)?;
    let deeps = vec![
        deep(ctx, 0.01, "deep, λ_a = λ_w = λ_v = 0.01")?,
        deep(ctx, 0.0, "deep, λ_a = 0")?,
    ];
    let deep_tol = 1e-2;
    let deep_worst = deeps
        .iter()
        .flat_map(|d| d.layers.iter().map(|l| l.usage_spread))
        .fold(0.0, f64::max);
    let passed = tl.worst_ratio <= 1.0 && deep_worst <= deep_tol;
    let mut series = vec![Series::points(
        format!("two-level |ū| on the support (spread {:.1e})", tl.spread),
        tl.points.clone(),
    )];
    for d in &deeps {
        for (l, layer) in d.layers.iter().enumerate() {
            series.push(Series::points(
                format!(
                    "{}: layer {} S_out/ρ (spread {:.1e})",
                    d.label,
                    l + 1,
                    layer.usage_spread
                ),
                layer.points.clone(),
            ));
        }
    }
    let figure = LinePlot {
        title: "C23: usage on the support of the convex optimum (flat = equalized)".into(),
        x_label: "mass of the support point".into(),
        y_label: "usage |ū| (two-level) / S_out/ρ (deep)".into(),
        log_x: true,
        log_y: true,
        series,
        hlines: vec![],
    }
    .to_svg()?;
    let deep_detail: Vec<String> = deeps
        .iter()
        .map(|d| {
            let per: Vec<String> = d
                .layers
                .iter()
                .enumerate()
                .map(|(l, x)| {
                    format!(
                        "layer {}: usage spread {:.2e}, net-usage spread {:.1e}, repopulation step ρ ∝ ρ·usage changes the objective by {:+.1e}",
                        l + 1,
                        x.usage_spread,
                        x.net_spread,
                        x.repop_change
                    )
                })
                .collect();
            format!("{} (rel. gap {:.1e}): {}", d.label, d.rel_gap, per.join("; "))
        })
        .collect();
    Ok(Outcome {
        passed,
        value: deep_worst,
        threshold: deep_tol,
        detail: format!(
            "two-level (λ₁ = {lambda1}, λ₂ = τ = 0, rel. gap {:.1e}): |ū| spread {:.2e} over {} support points, worst deviation / gap-implied bound {:.2e}; {}",
            tl.rel_gap,
            tl.spread,
            tl.support,
            tl.worst_ratio,
            deep_detail.join(" | ")
        ),
        figure: Some(figure),
    })
}
