//! C2 — with i.i.d. middle weights the standard DNN degenerates: the across-unit spread of $Z_2$
//! decays like $m^{-1/2}$ (math.md §3.1).
use super::stats::loglog_fit;
use super::{sine, Claim, ClaimCtx, ClaimInfo, Outcome};
use crate::plot::{LinePlot, Series};
use anyhow::Result;
use nff_core::feature::feature_spread;
use nff_core::init::{init_network, Init};
use nff_core::network::Workspace;
use nff_core::{Activation, Arch, Loss, Problem, Regularizer, Shape};

pub fn claim() -> Claim {
    Claim {
        info: ClaimInfo {
            id: "C2",
            title: "i.i.d. middle layers degenerate",
            measures: "log-log slope of the across-unit spread of Z_2 against the width m (i.i.d. N(0,1) weights, mean over seeds)",
            rule: "slope in [-0.6, -0.4] (law of large numbers: spread ∝ m^(-1/2))",
        },
        run,
    }
}

fn run(ctx: &ClaimCtx) -> Result<Outcome> {
    let data = sine(10, 3, ctx.data_seed)?;
    let widths: Vec<usize> = ctx.size.pick(
        vec![64, 256, 1024, 4096],
        vec![64, 128, 256, 512, 1024, 2048, 4096, 8192],
    );
    let seeds = ctx.size.pick(4, 8) as u64;
    let problem = Problem::new(
        data.clone(),
        Activation::Tanh,
        Loss::Squared,
        Regularizer::None,
    )?;
    let mut spreads = Vec::new();
    let mut spread_z1 = Vec::new();
    for &m in &widths {
        let shape = Shape::new(Arch::Dnn, data.d(), m, 2)?;
        let (mut s2, mut s1) = (0.0, 0.0);
        for s in 0..seeds {
            let (net, _) = init_network(
                shape,
                &data,
                Activation::Tanh,
                &Init::iid(),
                ctx.init_seed * 1000 + s,
            )?;
            let mut ws = Workspace::new(shape, data.n());
            problem.forward_into(&net, &mut ws, ctx.par);
            s1 += feature_spread(ws.z(0));
            s2 += feature_spread(ws.z(1));
        }
        spreads.push(s2 / seeds as f64);
        spread_z1.push(s1 / seeds as f64);
    }
    let x: Vec<f64> = widths.iter().map(|&m| m as f64).collect();
    let (slope, c) = loglog_fit(&x, &spreads);
    let passed = (-0.6..=-0.4).contains(&slope);
    let fit: Vec<(f64, f64)> = x.iter().map(|&m| (m, (c + slope * m.ln()).exp())).collect();
    let figure = LinePlot {
        title: format!("C2: spread of Z_2 under i.i.d. weights, slope {slope:.3}"),
        x_label: "width m".into(),
        y_label: "across-unit spread".into(),
        log_x: true,
        log_y: true,
        series: vec![
            Series::line_points(
                "spread of Z_2",
                x.iter().copied().zip(spreads.iter().copied()).collect(),
            ),
            Series::line(format!("fit slope {slope:.3}"), fit),
            Series::line_points(
                "spread of Z_1 (no collapse)",
                x.iter().copied().zip(spread_z1.iter().copied()).collect(),
            ),
        ],
        hlines: vec![],
    }
    .to_svg()?;
    Ok(Outcome {
        passed,
        value: slope,
        threshold: -0.5,
        detail: format!(
            "widths {widths:?}, {seeds} seeds: spread(Z_2) {:?}; spread(Z_1) stays {:.3}..{:.3}",
            spreads
                .iter()
                .map(|r| format!("{r:.4}"))
                .collect::<Vec<_>>(),
            spread_z1.iter().copied().fold(f64::INFINITY, f64::min),
            spread_z1.iter().copied().fold(0.0, f64::max)
        ),
        figure: Some(figure),
    })
}
