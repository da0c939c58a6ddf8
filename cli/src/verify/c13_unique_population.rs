//! C13 — a unique population (math.md §4.1): noisy GD is the Wasserstein gradient flow of the strictly
//! convex (in $\mu$) free energy $F(\mu) = \mathcal R + \int(\lambda_1r_u + \lambda_2r_\theta)\,d\mu + \tau\int\mu\log\mu$, so runs from
//! different initial laws forget them and end in the same (Gibbs) population.
//!
//! Two clouds of $m$ particles $(a, b, u)$ start from clearly different laws and run noisy GD with independent
//! noise; the maximum mean discrepancy between them (Gaussian kernel, unbiased estimator) is recorded over
//! time, and at the end a permutation test asks whether the two clouds are distinguishable. A third cloud
//! from the first law with other seeds gives the same-law baseline.
//!
//! Power check (part of the claim): a fourth cloud from the first law runs a **different problem** — the
//! same data and $\lambda$'s with noise $\tau' = 3\tau$, whose Gibbs law is wider ($\mathrm{Var}(u|\theta) = \tau'/\lambda_1$) — for the
//! same time at the same $m$; the same permutation test must reject it against the first cloud. A test
//! that cannot tell two different stationary populations apart would "confirm" uniqueness for any dynamics.
use super::two_level_support::{iid_network, langevin, par_map, problem, sine_with_bias};
use super::{Claim, ClaimCtx, ClaimInfo, Outcome};
use crate::plot::{LinePlot, Series};
use anyhow::Result;
use faer::Mat;
use nff_core::rng::{normal, rng};
use nff_core::{Arch, Network, Params};
use rand::seq::SliceRandom;

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C13",
            title: "unique population",
            measures: "permutation-test p-value of MMD² (Gaussian kernel, bandwidth 1, on (a, b, u)) between the final particle clouds of noisy GD started from two different initial laws",
            rule: "final p ≥ 0.01 (the clouds are not distinguishable: same law), while at the same m the same test gives p < 0.01 between the initial laws (t = 0) and between the final cloud and that of a different problem (τ' = 3τ, same data, λ's, t and m): the test has power against a different population",
        },
        run,
    }
}

/// Particles as rows (a, b, u).
fn cloud(net: &Network) -> Vec<[f64; 3]> {
    (0..net.shape().m)
        .map(|j| [net.a()[(0, j)], net.a()[(1, j)], net.v()[j]])
        .collect()
}

fn kern(x: &[f64; 3], y: &[f64; 3]) -> f64 {
    let d2: f64 = (0..3).map(|c| (x[c] - y[c]).powi(2)).sum();
    (-d2 / 2.0).exp()
}

/// Unbiased MMD² from a pooled kernel matrix and a split (`first[i]` = belongs to the first sample).
fn mmd2(k: &Mat<f64>, first: &[bool]) -> f64 {
    let n = first.len();
    let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        for j in 0..n {
            if i == j {
                continue;
            }
            match (first[i], first[j]) {
                (true, true) => sxx += k[(i, j)],
                (false, false) => syy += k[(i, j)],
                _ => sxy += k[(i, j)],
            }
        }
    }
    let nx = first.iter().filter(|&&f| f).count() as f64;
    let ny = n as f64 - nx;
    sxx / (nx * (nx - 1.0)) + syy / (ny * (ny - 1.0)) - sxy / (nx * ny)
}

fn pooled_kernel(x: &[[f64; 3]], y: &[[f64; 3]]) -> (Mat<f64>, Vec<bool>) {
    let pts: Vec<&[f64; 3]> = x.iter().chain(y.iter()).collect();
    let n = pts.len();
    let k = Mat::from_fn(n, n, |i, j| kern(pts[i], pts[j]));
    let first = (0..n).map(|i| i < x.len()).collect();
    (k, first)
}

/// MMD² and its permutation p-value with `perms` random relabelings.
fn perm_test(x: &[[f64; 3]], y: &[[f64; 3]], perms: usize, seed: u64, tag: &str) -> (f64, f64) {
    let (k, first) = pooled_kernel(x, y);
    let obs = mmd2(&k, &first);
    let mut r = rng(seed, tag);
    let mut lab = first.clone();
    let mut ge = 0usize;
    for _ in 0..perms {
        lab.shuffle(&mut r);
        if mmd2(&k, &lab) >= obs {
            ge += 1;
        }
    }
    (obs, (ge + 1) as f64 / (perms + 1) as f64)
}

fn run(ctx: &ClaimCtx) -> Result<Outcome> {
    Ok(evaluate(ctx)?.0)
}

/// The three permutation-test p-values the rule reads.
#[derive(Clone, Copy, Debug)]
pub struct PValues {
    /// Law A vs law B at t = 0 (must reject).
    pub start: f64,
    /// Law A vs law B at the end (must not reject).
    pub end: f64,
    /// Law A at the end vs the different problem (τ' = 3τ) at the end (must reject).
    pub other_problem: f64,
}

/// Measurement, rule and figure; also returns the p-values (for the tests of the power check).
fn evaluate(ctx: &ClaimCtx) -> Result<(Outcome, PValues)> {
    let data = sine_with_bias(10, 1, ctx.data_seed)?;
    let (lambda1, lambda2, tau, eta) = (0.2, 0.05, 0.05, 0.1);
    let pb = problem(&data, lambda1, lambda2)?;
    let m = ctx.size.pick(128, 256);
    let steps = ctx.size.pick(4000, 10_000); // t = 400 / 1000: 20–50 relaxation times 1/λ₂
    let every = steps / 20;
    let perms = ctx.size.pick(200, 500);
    // Law A: θ ~ N(0, 0.1² I), u = 0. Law B: θ ~ (1.5, −1.5) + N(0, 0.3² I), u ~ N(1, 0.3²).
    let law_a = |seed: u64| iid_network(&pb, m, 0.1, 0.0, seed);
    let law_b = |seed: u64| -> Result<Network> {
        let mut r = rng(seed, "C13/law-b");
        let a = Mat::from_fn(2, m, |i, _| {
            (if i == 0 { 1.5 } else { -1.5 }) + 0.3 * normal(&mut r)
        });
        let v: Vec<f64> = (0..m).map(|_| 1.0 + 0.3 * normal(&mut r)).collect();
        Ok(Params::from_blocks(Arch::TwoLevel, a.as_ref(), &[], &v)?)
    };
    // Clouds: A, B and A' (same law, other seeds) run τ; A'' (law A, other seeds) runs the other problem.
    let tau_other = 3.0 * tau;
    let starts: Vec<Network> = vec![
        law_a(ctx.init_seed.wrapping_mul(3))?,
        law_b(ctx.init_seed.wrapping_mul(3).wrapping_add(1))?,
        law_a(ctx.init_seed.wrapping_mul(3).wrapping_add(2))?,
        law_a(ctx.init_seed.wrapping_mul(3).wrapping_add(3))?,
    ];
    let taus = [tau, tau, tau, tau_other];
    // Each run records its cloud every `every` steps.
    let traj = par_map(starts.len(), |i| -> Result<Vec<Vec<[f64; 3]>>> {
        let mut snaps = vec![cloud(&starts[i])];
        langevin(
            &pb,
            &starts[i],
            eta,
            taus[i],
            steps,
            ctx.init_seed.wrapping_mul(7).wrapping_add(i as u64),
            every,
            |_, y| {
                snaps.push(cloud(&Params::from_vec(starts[i].shape(), y.to_vec())?));
                Ok(())
            },
        )?;
        Ok(snaps)
    })?;
    let times: Vec<f64> = (0..traj[0].len())
        .map(|k| (k * every) as f64 * eta)
        .collect();
    let curve = |i: usize, j: usize| -> Vec<(f64, f64)> {
        times
            .iter()
            .enumerate()
            .map(|(k, &t)| {
                let (km, first) = pooled_kernel(&traj[i][k], &traj[j][k]);
                (t, mmd2(&km, &first))
            })
            .collect()
    };
    let ab = curve(0, 1);
    let aa = curve(0, 2);
    let last = times.len() - 1;
    let (mmd0, p0) = perm_test(&traj[0][0], &traj[1][0], perms, ctx.init_seed, "C13/perm0");
    let (mmd_end, p_end) = perm_test(
        &traj[0][last],
        &traj[1][last],
        perms,
        ctx.init_seed,
        "C13/perm1",
    );
    let (mmd_base, p_base) = perm_test(
        &traj[0][last],
        &traj[2][last],
        perms,
        ctx.init_seed,
        "C13/perm2",
    );
    let (mmd_other, p_other) = perm_test(
        &traj[0][last],
        &traj[3][last],
        perms,
        ctx.init_seed,
        "C13/perm3",
    );
    let other = curve(0, 3);
    let alpha = 0.01;
    let pv = PValues {
        start: p0,
        end: p_end,
        other_problem: p_other,
    };
    let passed = pv.end >= alpha && pv.start < alpha && pv.other_problem < alpha;
    // |MMD²| on a log axis (the unbiased estimate can be slightly negative near 0).
    let abs = |c: &[(f64, f64)]| -> Vec<(f64, f64)> {
        c.iter()
            .map(|&(t, v)| (t.max(eta), v.abs().max(1e-7)))
            .collect()
    };
    let figure = LinePlot {
        title: format!(
            "C13: noisy GD from two initial laws (m = {m}, τ = {tau}); final p = {p_end:.2}"
        ),
        x_label: "t".into(),
        y_label: "|MMD²| between clouds".into(),
        log_x: false,
        log_y: true,
        series: vec![
            Series::line_points("law A vs law B", abs(&ab)),
            Series::line_points("law A vs law A (other seeds)", abs(&aa)),
            Series::line_points(
                format!("power check: law A vs law A run with τ' = {tau_other}"),
                abs(&other),
            ),
        ],
        hlines: vec![],
    }
    .to_svg()?;
    let outcome = Outcome {
        passed,
        value: pv.end,
        threshold: alpha,
        detail: format!(
            "m = {m}, η = {eta}, t = {}; MMD²(A, B): t = 0 {mmd0:.3e} (p = {p0:.3}), end {mmd_end:.2e} (p = {p_end:.3}); same-law baseline at the end {mmd_base:.2e} (p = {p_base:.3}); power check against the problem with τ' = {tau_other}: {mmd_other:.2e} (p = {p_other:.3}, must be < {alpha}); {perms} permutations",
            steps as f64 * eta
        ),
        figure: Some(figure),
    };
    Ok((outcome, pv))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::Size;
    use faer::Par;

    /// The power check: at the quick size the test rejects the population of a different problem
    /// (τ' = 3τ) and the initial laws, on three seeds.
    #[test]
    fn c13_test_rejects_a_different_problem() {
        for seed in [0, 1, 2] {
            let ctx = ClaimCtx {
                data_seed: seed,
                init_seed: seed,
                size: Size::Quick,
                par: Par::Seq,
            };
            let (_, pv) = evaluate(&ctx).unwrap();
            eprintln!("C13 seed {seed}: {pv:?}");
            assert!(pv.other_problem < 0.01, "seed {seed}: {pv:?}");
            assert!(pv.start < 0.01, "seed {seed}: {pv:?}");
        }
    }
}
