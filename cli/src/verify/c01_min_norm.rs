//! C1 — the min-norm initialization of math.md §3.3 is exactly consistent at every finite width,
//! with $O(1)$ weights.
use super::{sine, Claim, ClaimCtx, ClaimInfo, Outcome};
use crate::plot::{LinePlot, Series};
use anyhow::Result;
use nff_core::init::{init_feature_net, Init};
use nff_core::{Activation, Arch, Shape};

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C1",
            title: "min-norm initialization is exactly consistent",
            measures: "max over widths and layers of the consistency residual max_k ‖(1/m)Σ_j W_jk h(z_j) − z_k‖ against the drawn target features",
            rule: "residual ≤ 1e-10 (exact up to rounding), and mean |W| at the largest width within a factor 2 of the smallest width's (O(1) weights)",
        },
        run,
    }
}

fn run(ctx: &ClaimCtx) -> Result<Outcome> {
    let n = 12;
    let data = sine(n, 3, ctx.data_seed)?;
    let widths: Vec<usize> = ctx.size.pick(
        vec![48, 96, 192, 384],
        vec![48, 96, 192, 384, 768, 1536, 3072],
    );
    let mut residuals = Vec::new();
    let mut mean_w = Vec::new();
    for &m in &widths {
        let shape = Shape::new(Arch::Dnn, data.d(), m, 3)?;
        let (fnet, report) = init_feature_net(
            shape,
            &data,
            Activation::Tanh,
            &Init::min_norm(),
            ctx.init_seed,
        )?;
        let res = fnet.consistency_residual(Activation::Tanh);
        residuals.push(res.iter().copied().fold(0.0, f64::max));
        let mut acc = 0.0;
        let mut cnt = 0.0;
        for l in 0..shape.n_w() {
            let w = fnet.w(l);
            for k in 0..m {
                for j in 0..m {
                    acc += w[(j, k)].abs();
                }
            }
            cnt += (m * m) as f64;
        }
        mean_w.push(acc / cnt);
        anyhow::ensure!(
            report.max_ridge() == 0.0 || report.max_ridge() < 1e-8,
            "min-norm needed a large ridge {}",
            report.max_ridge()
        );
    }
    let worst = residuals.iter().copied().fold(0.0, f64::max);
    let ratio = mean_w.last().unwrap() / mean_w[0];
    let threshold = 1e-10;
    let passed = worst <= threshold && (0.5..=2.0).contains(&ratio);
    let pts = |v: &[f64]| {
        widths
            .iter()
            .zip(v)
            .map(|(&m, &r)| (m as f64, r.max(1e-18)))
            .collect()
    };
    // One quantity per panel: the residual (the identity tested) and the weights' scale (the bounded ratio).
    let residual_panel = LinePlot {
        title: "C1 (a): max consistency residual of the min-norm start (DNN, L = 3, N = 12)".into(),
        x_label: "width m".into(),
        y_label: "max consistency residual".into(),
        log_x: true,
        log_y: true,
        series: vec![Series::line_points(
            "max consistency residual",
            pts(&residuals),
        )],
        hlines: vec![("threshold 1e-10".into(), threshold)],
    }
    .to_svg()?;
    let scale_panel = LinePlot {
        title: "C1 (b): mean |W| of the min-norm start: bounded in m".into(),
        x_label: "width m".into(),
        y_label: "mean |W_jk|".into(),
        log_x: true,
        log_y: true,
        series: vec![Series::line_points("mean |W|", pts(&mean_w))],
        hlines: vec![
            ("2 × the smallest width's".into(), 2.0 * mean_w[0]),
            ("0.5 × the smallest width's".into(), 0.5 * mean_w[0]),
        ],
    }
    .to_svg()?;
    let figure = crate::plot::stacked(&residual_panel, &scale_panel);
    Ok(Outcome {
        passed,
        value: worst,
        threshold,
        detail: format!(
            "widths {widths:?}: residuals {:?}; mean |W| {:?} (ratio largest/smallest {ratio:.3})",
            residuals
                .iter()
                .map(|r| format!("{r:.1e}"))
                .collect::<Vec<_>>(),
            mean_w.iter().map(|r| format!("{r:.3}")).collect::<Vec<_>>()
        ),
        figure: Some(figure),
    })
}
