//! C23 — usage equalization at the convex optimum (math.md §4.1, §4.4): for the two-level program with
//! $\lambda_2 = \tau = 0$, $|\bar u|$ is constant on the support of the optimal population (balanced output
//! weights); for the deep program the **net usage** $\Phi_\ell$ of math.md §4.4 (corrected) is constant on the
//! support, while the naive outgoing usage $S^{\rm out}_\ell/\rho_\ell$ is not on a layer with incoming cost
//! (the negative control: math.md's earlier sentence).
use super::two_level_support::{sine_with_bias, solve_program};
use super::{Claim, ClaimCtx, ClaimInfo, Outcome};
use crate::plot::{LinePlot, Series};
use anyhow::{bail, Result};
use nff_core::feature::FirstLayerMap;
use nff_core::init::{init_network, Init};
use nff_core::{Activation, Arch, Loss, Problem, Regularizer, Shape};
use nff_solvers::candidates;
use nff_solvers::deep::{DeepCandidates, DeepConfig, DeepOptions, DeepPoint, DeepProgram};

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C23",
            title: "usage equalization at the convex optimum",
            measures: "largest deviation, in units of what the certified gap allows, of the net usage Φ_ℓ (math.md §4.4, corrected) from its value at the heaviest support point, over the support (mass ≥ 1% of the largest) of each layer of the deep program (L = 2, q = 2, no entropy, N = 6; λ_a = λ_w = λ_v = 0.01 and λ_a = 0) solved to a certified relative gap ≤ 1e-8, and of the two-level |ū| = |w|/ρ (λ₂ = τ = 0) from its maximum",
            rule: "deep: every support point's |Φ_k − Φ_r| ≤ a_k = √(2cG) + 2G/ε_max, the deviation the certified gap G allows along the mass move between k and the heaviest point r (c: twice the largest sampled curvature of the objective along the move, ε_max half the smaller mass); the formula for Φ is the objective's derivative along the move (central differences at a feasible non-optimal point half-way to the naive repopulation step, within 1e-6 of max|Φ|); negative control: in each deep case the naive usage (q−1)λ(S_out/ρ)^q deviates by ≥ 10 a_k at some point of a layer with incoming cost; two-level: ||ū_k| − max|ū|| ≤ √(2G/λ₁ρ_k) + 2G/(λ₁ρ_k max|ū|); value = the largest deviation/allowance (≤ 1)",
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
        points.push((sol.rho[k], (umax - u).abs() / bound));
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
    /// Relative spread of the naive outgoing usage S_out/ρ on the support (math.md's old sentence).
    usage_spread: f64,
    /// Relative spread of the net usage Φ on the support.
    net_spread: f64,
    /// Largest |Φ_k − Φ_r| / a_k over the support (a_k: the deviation the certified gap allows).
    net_ratio: f64,
    /// Largest |N_k − N_r| / a_k of the naive usage N = (q−1)λ(S_out/ρ)^q, in the same units.
    naive_ratio: f64,
    /// Whether the layer has an incoming cost (where the naive usage need not be constant).
    incoming_cost: bool,
    /// Largest mismatch, relative to max|Φ|, between the finite-difference derivative of the objective
    /// along a mass move and Φ_r − Φ_k, at a feasible non-optimal point (the formula check).
    formula_error: f64,
    /// Relative objective change of the naive repopulation step ρ ∝ ρ·S_out/ρ at fixed function.
    repop_change: f64,
    /// (mass, |Φ_k − Φ_r|/a_k, |N_k − N_r|/a_k) of the support points, for the figure.
    points: Vec<(f64, f64, f64)>,
}

struct DeepUsage {
    label: String,
    layers: Vec<DeepLayer>,
    rel_gap: f64,
}

/// Support of a layer: candidates with mass π·ρ ≥ 1e-2 of the largest.
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

/// The L = 2 program of the claim and what Φ needs.
struct DeepCase {
    prog: DeepProgram,
    map: FirstLayerMap,
    z1: faer::Mat<f64>,
    lambda_a: f64,
    lw: f64,
    lv: f64,
    q: f64,
}

impl DeepCase {
    fn u2(&self, pt: &DeepPoint, j: usize, k: usize) -> f64 {
        pt.u[0][j + k * self.prog.sizes()[0]]
    }

    /// $S^{\rm out}_1(j) = \sum_k \pi_2(k)|\tilde u_2(j,k)|$.
    fn s_out1(&self, pt: &DeepPoint) -> Vec<f64> {
        let sz = self.prog.sizes();
        let pi = &self.prog.candidates().pi;
        (0..sz[0])
            .map(|j| (0..sz[1]).map(|k| pi[1][k] * self.u2(pt, j, k).abs()).sum())
            .collect()
    }

    /// The naive usage $N_\ell(k) = (q-1)\lambda_\ell (S^{\rm out}_\ell(k)/\rho_\ell(k))^q$ (top layer:
    /// $S^{\rm out}$ is $|\tilde u_3| = |v|$) and the net usage $\Phi_\ell(k)$ of math.md §4.4 at the points `ks`
    /// of layer `l` (0-based).
    fn usages(&self, pt: &DeepPoint, l: usize, ks: &[usize]) -> Result<(Vec<f64>, Vec<f64>)> {
        let (q, sz) = (self.q, self.prog.sizes());
        let pi = &self.prog.candidates().pi;
        let s_out = self.s_out1(pt);
        let rho = &pt.rho[l];
        let mut naive = Vec::new();
        let mut net = Vec::new();
        for &k in ks {
            if l == 0 {
                // Layer 1: Φ = (q−1)λ_w (S_out/ρ)^q − r₁, r₁ = λ_a·½ min{‖a‖²: Xa = z}.
                let nv = (q - 1.0) * self.lw * (s_out[k] / rho[k]).powf(q);
                let r1 = self.lambda_a * 0.5 * self.map.cost(self.z1.col(k))?;
                naive.push(nv);
                net.push(nv - r1);
            } else {
                // Top layer: Φ = (q−1)λ_v |v/ρ|^q − λ_w[(S_in/ρ)^q + (q/ρ) Σ_j π₁(j)(S_out(j)/ρ₁(j))^{q−1}|ũ₂(j,k)|].
                let nv = (q - 1.0) * self.lv * (pt.v[k].abs() / rho[k]).powf(q);
                let s_in: f64 = (0..sz[0]).map(|i| pi[0][i] * self.u2(pt, i, k).abs()).sum();
                let cross: f64 = (0..sz[0])
                    .map(|i| {
                        pi[0][i] * (s_out[i] / pt.rho[0][i]).powf(q - 1.0) * self.u2(pt, i, k).abs()
                    })
                    .sum::<f64>()
                    / rho[k];
                naive.push(nv);
                net.push(nv - self.lw * ((s_in / rho[k]).powf(q) + q * cross));
            }
        }
        Ok((naive, net))
    }

    /// The mass move of math.md §4.4 at fixed function: mass `eps` (in units of π·ρ) moves from point `r`
    /// to point `k` of layer `l`; each point's ρ and incoming ũ (top layer: the column ũ₂(·,k)) scale by
    /// the same factor, so both consistency constraints, the total mass and the function are unchanged.
    fn moved(&self, pt: &DeepPoint, l: usize, r: usize, k: usize, eps: f64) -> DeepPoint {
        let pi = &self.prog.candidates().pi;
        let mut p = pt.clone();
        for (j, de) in [(k, eps), (r, -eps)] {
            self.scale(&mut p, l, j, 1.0 + de / (pi[l][j] * pt.rho[l][j]));
        }
        p
    }

    /// Scale point `j` of layer `l`: its ρ and its incoming ũ (top layer: the column ũ₂(·,j); layer 1 has
    /// no incoming ũ) by `factor`, which leaves the function unchanged.
    fn scale(&self, p: &mut DeepPoint, l: usize, j: usize, factor: f64) {
        p.rho[l][j] *= factor;
        if l == 1 {
            let n0 = self.prog.sizes()[0];
            for x in &mut p.u[0][j * n0..(j + 1) * n0] {
                *x *= factor;
            }
        }
    }
}

/// Solve a small L = 2 deep program (q = 2, no entropy, λ_w = λ_v = 0.01) to a certified gap and measure
/// per layer the net usage Φ against the deviation the gap allows, the naive usage (negative control),
/// and the formula for Φ against finite differences of the objective.
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
    if sol.relative_gap.is_nan() || sol.relative_gap > CERTIFIED {
        bail!(
            "{label}: the deep program is not certified: relative gap {:.1e}, expected ≤ {CERTIFIED:.0e}",
            sol.relative_gap
        );
    }
    let case = DeepCase {
        prog,
        map: FirstLayerMap::new(data.x.as_ref())?,
        z1,
        lambda_a,
        lw,
        lv,
        q,
    };
    let pi = case.prog.candidates().pi.clone();
    let pt = &sol.point;
    let base = case.prog.objective(pt)?;
    // The certified absolute gap, plus the objective's own rounding.
    let g = sol.gap.max(0.0) + 1e-14 * base.abs();
    let mut layers = Vec::new();
    #[allow(clippy::needless_range_loop)] // l indexes rho, pi and names the layer in the move
    for l in 0..2 {
        let rho = &pt.rho[l];
        let supp = support(&pi[l], rho);
        let mass = |j: usize| pi[l][j] * rho[j];
        let r = *supp
            .iter()
            .max_by(|&&a, &&b| mass(a).total_cmp(&mass(b)))
            .expect("a layer has mass");
        let (naive, phi) = case.usages(pt, l, &supp)?;
        let ri = supp
            .iter()
            .position(|&j| j == r)
            .expect("r is in the support");
        let (mut net_ratio, mut naive_ratio) = (0.0f64, 0.0f64);
        let mut points = Vec::new();
        for (i, &k) in supp.iter().enumerate() {
            if k == r {
                continue;
            }
            // f(ε) = objective after moving mass ε from r to k: convex (the objective is jointly convex and
            // the move is linear in ε), defined for |ε| < min(mass_k, mass_r).
            let e_max = 0.5 * mass(k).min(mass(r));
            let f = |e: f64| case.prog.objective(&case.moved(pt, l, r, k, e));
            let h2 = e_max / 8.0;
            let mut curv: f64 = 0.0;
            for t in [-6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0] {
                let e = t * h2;
                curv = curv.max((f(e + h2)? - 2.0 * f(e)? + f(e - h2)?) / (h2 * h2));
            }
            // a_k [derived, docs/claims/C23.md]: f(ε) ≥ f(0) − G for every feasible ε and
            // f(ε) ≤ f(0) + f'(0)ε + cε²/2 give |f'(0)| ≤ √(2cG) + 2G/ε_max, with f'(0) = Φ_r − Φ_k.
            let c = 2.0 * curv.max(0.0);
            let allow = (2.0 * c * g).sqrt() + 2.0 * g / e_max;
            net_ratio = net_ratio.max((phi[i] - phi[ri]).abs() / allow);
            naive_ratio = naive_ratio.max((naive[i] - naive[ri]).abs() / allow);
            points.push((
                mass(k),
                (phi[i] - phi[ri]).abs() / allow,
                (naive[i] - naive[ri]).abs() / allow,
            ));
        }
        // The naive repopulation step ρ ∝ ρ·(S_out/ρ) on the support, at fixed function: a feasible point
        // that is not optimal, where the formula for Φ is checked against finite differences.
        let s_out = case.s_out1(pt);
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
        let total: f64 = supp.iter().map(|&j| mass(j)).sum();
        let raw: f64 = supp.iter().zip(&usage).map(|(&j, &u)| mass(j) * u).sum();
        // The formula check's point: half-way to that step (factor 1 + ½(u·total/raw − 1) ≥ ½, the same
        // total mass): a point with a support mass near 0 (a usage near 0) would put S/ρ at 0/0.
        let mut p2 = pt.clone();
        let mut p_full = pt.clone();
        for (&j, &u) in supp.iter().zip(&usage) {
            let full = u * total / raw;
            case.scale(&mut p_full, l, j, full);
            case.scale(&mut p2, l, j, 1.0 + 0.5 * (full - 1.0));
        }
        let repop = case.prog.objective(&p_full)?;
        let (_, phi2) = case.usages(&p2, l, &supp)?;
        let scale = phi2.iter().fold(0.0f64, |a, &x| a.max(x.abs()));
        let mut formula_error: f64 = 0.0;
        let mass2 = |j: usize| pi[l][j] * p2.rho[l][j];
        for (i, &k) in supp.iter().enumerate() {
            if k == r {
                continue;
            }
            let h = 1e-4 * mass2(k).min(mass2(r));
            let f = |e: f64| case.prog.objective(&case.moved(&p2, l, r, k, e));
            let fd = (f(h)? - f(-h)?) / (2.0 * h);
            formula_error = formula_error.max((fd - (phi2[ri] - phi2[i])).abs() / scale);
        }
        layers.push(DeepLayer {
            usage_spread: rel_spread(&usage),
            net_spread: rel_spread(&phi),
            net_ratio,
            naive_ratio,
            incoming_cost: l == 1 || lambda_a > 0.0,
            formula_error,
            repop_change: (repop - base) / base,
            points,
        });
    }
    Ok(DeepUsage {
        label: label.into(),
        layers,
        rel_gap: sol.relative_gap,
    })
}

/// The relative gap a deep solve must certify for its KKT quantities to be tested.
const CERTIFIED: f64 = 1e-8;
/// The formula check's tolerance (relative to max|Φ|; central differences with step 1e-4 of the mass).
const FORMULA_TOL: f64 = 1e-6;
/// The naive usage must deviate by this many allowances somewhere on a layer with incoming cost.
const POWER: f64 = 10.0;

fn run(ctx: &ClaimCtx) -> Result<Outcome> {
    let lambda1 = 0.05;
    let tl = two_level(ctx, lambda1)?;
    let deeps = vec![
        deep(ctx, 0.01, "deep, λ_a = λ_w = λ_v = 0.01")?,
        deep(ctx, 0.0, "deep, λ_a = 0")?,
    ];
    let net_worst = deeps
        .iter()
        .flat_map(|d| d.layers.iter().map(|l| l.net_ratio))
        .fold(0.0, f64::max);
    let formula_worst = deeps
        .iter()
        .flat_map(|d| d.layers.iter().map(|l| l.formula_error))
        .fold(0.0, f64::max);
    // Negative control, per deep case: on some layer with an incoming cost the naive usage is not
    // constant — it deviates by ≥ POWER allowances.
    let control: Vec<f64> = deeps
        .iter()
        .map(|d| {
            d.layers
                .iter()
                .filter(|l| l.incoming_cost)
                .map(|l| l.naive_ratio)
                .fold(0.0, f64::max)
        })
        .collect();
    let control_fails = control.iter().all(|&c| c >= POWER);
    let value = net_worst.max(tl.worst_ratio);
    let passed = value <= 1.0 && formula_worst <= FORMULA_TOL && control_fails;
    let floor = 1e-6;
    let pos = |pts: Vec<(f64, f64)>| -> Vec<(f64, f64)> {
        pts.into_iter().map(|(x, y)| (x, y.max(floor))).collect()
    };
    // One quantity per panel: (a) the two-level |ū| deviation, (b) the deep net usage Φ (both tested
    // against their allowance), (c) the naive usage of the negative control (must exceed POWER).
    let mut phi_series = Vec::new();
    let mut naive_series = Vec::new();
    for d in &deeps {
        for (l, layer) in d.layers.iter().enumerate() {
            phi_series.push(Series::points(
                format!("{}: layer {}", d.label, l + 1),
                pos(layer.points.iter().map(|p| (p.0, p.1)).collect()),
            ));
            if layer.incoming_cost {
                naive_series.push(Series::points(
                    format!("{}: layer {}", d.label, l + 1),
                    pos(layer.points.iter().map(|p| (p.0, p.2)).collect()),
                ));
            }
        }
    }
    let panel = |title: String, y_label: String, series: Vec<Series>, hlines| LinePlot {
        title,
        x_label: "mass of the support point".into(),
        y_label,
        log_x: true,
        log_y: true,
        series,
        hlines,
    };
    let two_level_panel = panel(
        "C23 (a): two-level, ||ū_k| − max|ū|| at the support points".into(),
        format!("deviation / allowance (floored at {floor:.0e})"),
        vec![Series::points("two-level", pos(tl.points.clone()))],
        vec![("allowed (1)".into(), 1.0)],
    )
    .to_svg()?;
    let phi_panel = panel(
        "C23 (b): deep, net usage Φ: deviation from the heaviest support point".into(),
        format!("|Φ_k − Φ_max| / allowance (floored at {floor:.0e})"),
        phi_series,
        vec![("allowed (1)".into(), 1.0)],
    )
    .to_svg()?;
    let naive_panel = panel(
        "C23 (c): negative control, naive outgoing usage on layers with incoming cost".into(),
        format!("naive deviation / allowance (floored at {floor:.0e})"),
        naive_series,
        vec![(format!("control must exceed {POWER}"), POWER)],
    )
    .to_svg()?;
    let figure = crate::plot::stack(&[&two_level_panel, &phi_panel, &naive_panel]);
    let deep_detail: Vec<String> = deeps
        .iter()
        .zip(&control)
        .map(|(d, c)| {
            let per: Vec<String> = d
                .layers
                .iter()
                .enumerate()
                .map(|(l, x)| {
                    format!(
                        "layer {}: Φ deviation/allowance {:.2e} (spread {:.1e}), naive {:.2e} (spread {:.1e}{}), Φ formula vs FD {:.1e}, naive repopulation step {:+.1e}",
                        l + 1,
                        x.net_ratio,
                        x.net_spread,
                        x.naive_ratio,
                        x.usage_spread,
                        if x.incoming_cost { "" } else { ", no incoming cost" },
                        x.formula_error,
                        x.repop_change
                    )
                })
                .collect();
            format!(
                "{} (rel. gap {:.1e}, control {:.1e}): {}",
                d.label,
                d.rel_gap,
                c,
                per.join("; ")
            )
        })
        .collect();
    Ok(Outcome {
        passed,
        value,
        threshold: 1.0,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::Size;
    use faer::Par;

    /// The negative control fails where it should: on a layer with incoming cost the naive usage deviates
    /// by ≥ 10 allowances, while the net usage stays within one; on layer 1 without incoming cost the two
    /// coincide.
    #[test]
    fn c23_naive_usage_is_not_constant_where_the_net_usage_is() {
        let mut compared = 0;
        for seed in [0, 5] {
            let ctx = ClaimCtx {
                data_seed: seed,
                init_seed: seed,
                size: Size::Quick,
                par: Par::Seq,
            };
            for lambda_a in [0.01, 0.0] {
                let d = deep(&ctx, lambda_a, "test").unwrap();
                // A layer whose support is one point has nothing to compare.
                for (l, layer) in d
                    .layers
                    .iter()
                    .enumerate()
                    .filter(|(_, x)| !x.points.is_empty())
                {
                    compared += 1;
                    assert!(
                        layer.net_ratio <= 1.0,
                        "seed {seed} layer {l}: {}",
                        layer.net_ratio
                    );
                    assert!(layer.formula_error <= FORMULA_TOL, "seed {seed} layer {l}");
                    if layer.incoming_cost {
                        assert!(
                            layer.naive_ratio >= POWER,
                            "seed {seed} layer {l}: {}",
                            layer.naive_ratio
                        );
                    } else {
                        assert!(
                            (layer.naive_ratio - layer.net_ratio).abs()
                                <= 1e-9 * layer.net_ratio.max(1.0)
                        );
                    }
                }
            }
        }
        assert!(
            compared >= 6,
            "only {compared} layers had two support points"
        );
    }
}
