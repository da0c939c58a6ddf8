//! C21 — the first-layer L2 cost is a linear functional of the feature law:
//! $\min\{\|a\|^2 : Xa = \mathbf z\} = \mathbf z^\top(XX^\top)^+\mathbf z$ (math.md §3.2).
use super::{sine, Claim, ClaimCtx, ClaimInfo, Outcome};
use crate::plot::{LinePlot, Series};
use anyhow::Result;
use faer::Mat;
use nff_core::feature::first_layer_cost;
use nff_core::rng::{normal, rng};

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C21",
            title: "first-layer cost is linear in the feature law",
            measures: "max relative gap between z^T (X X^T)^+ z and an independent minimum-norm solve ‖a*‖² (normal equations of the d×d Gram X^T X), plus the minimality margin over random other solutions",
            rule: "relative gap ≤ 1e-10 and no other solution of Xa = z has a smaller norm (min margin ≥ 0)",
        },
        run,
    }
}

fn run(ctx: &ClaimCtx) -> Result<Outcome> {
    // d > N, so Xa = z has a whole affine space of solutions: N = 6 points in d = 10 dimensions.
    let (n, d) = (6, 10);
    let data = sine(n, d, ctx.data_seed)?;
    let x = &data.x;
    let trials = ctx.size.pick(200, 2000);
    let mut r = rng(ctx.init_seed, "C21");
    let mut worst_gap: f64 = 0.0;
    let mut worst_margin = f64::INFINITY;
    let mut pts = Vec::new();
    // Independent reference: a* = Xᵀ u with (X Xᵀ) u = z solved by Gaussian elimination (N×N).
    let gram = Mat::from_fn(n, n, |i, j| {
        (0..d).map(|k| x[(i, k)] * x[(j, k)]).sum::<f64>()
    });
    for _ in 0..trials {
        let a: Vec<f64> = (0..d).map(|_| normal(&mut r)).collect();
        let z = Mat::from_fn(n, 1, |i, _| (0..d).map(|k| x[(i, k)] * a[k]).sum::<f64>());
        let cost = first_layer_cost(z.col(0), x.as_ref())?;
        let u = solve_dense(&gram, &(0..n).map(|i| z[(i, 0)]).collect::<Vec<_>>())?;
        let astar: Vec<f64> = (0..d)
            .map(|k| (0..n).map(|i| x[(i, k)] * u[i]).sum())
            .collect();
        let ref_cost: f64 = astar.iter().map(|t| t * t).sum();
        worst_gap = worst_gap.max((cost - ref_cost).abs() / ref_cost);
        // Any other solution a* + (null-space direction) is longer.
        let other: f64 = a.iter().map(|t| t * t).sum();
        worst_margin = worst_margin.min(other - cost);
        if pts.len() < 400 {
            pts.push((ref_cost, cost));
        }
    }
    let threshold = 1e-10;
    let passed = worst_gap <= threshold && worst_margin >= -1e-12;
    let lo = pts.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let hi = pts.iter().map(|p| p.0).fold(0.0, f64::max);
    let figure = LinePlot {
        title: "C21: z^T (XX^T)^+ z against the minimum-norm ‖a‖² (N = 6, d = 10)".into(),
        x_label: "‖a*‖² (normal-equations solve)".into(),
        y_label: "z^T (XX^T)^+ z".into(),
        series: vec![
            Series::points("random z = Xa", pts),
            Series::line("identity", vec![(lo, lo), (hi, hi)]),
        ],
        ..Default::default()
    }
    .to_svg()?;
    Ok(Outcome {
        passed,
        value: worst_gap,
        threshold,
        detail: format!("{trials} random features: max relative gap {worst_gap:.2e}; min (‖a‖² − cost) over the generating solutions {worst_margin:.3e}"),
        figure: Some(figure),
    })
}

/// Gaussian elimination with partial pivoting (an implementation independent of the code under test).
#[allow(clippy::needless_range_loop)] // row operations index like the textbook algorithm
fn solve_dense(a: &Mat<f64>, b: &[f64]) -> Result<Vec<f64>> {
    let n = b.len();
    let mut m: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| a[(i, j)]).chain([b[i]]).collect())
        .collect();
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| m[i][c].abs().total_cmp(&m[j][c].abs()))
            .unwrap_or(c);
        m.swap(c, p);
        anyhow::ensure!(m[c][c].abs() > 1e-300, "singular Gram matrix");
        for i in c + 1..n {
            let f = m[i][c] / m[c][c];
            for j in c..=n {
                m[i][j] -= f * m[c][j];
            }
        }
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|j| m[i][j] * x[j]).sum();
        x[i] = (m[i][n] - s) / m[i][i];
    }
    Ok(x)
}
