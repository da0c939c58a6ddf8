//! Scaling check of the two-level solver: `cargo run --release -p nff-solvers --example two_level_scale --
//! [PER_AXIS] [N] [TAU] [LAMBDA1] [LAMBDA2] [LOSS] [TOL_GAP]` on the sine data (d = 1 plus a bias), a PER_AXIS² grid on
//! [-3, 3]², uniform ρ₀. Prints iterations, time and the certified relative gap.
use nff_core::data::BuiltinDataset;
use nff_core::{Activation, Dataset, Loss};
use nff_solvers::{candidates, TwoLevelConfig, TwoLevelOptions, TwoLevelProgram};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let get = |i: usize, d: &str| a.get(i).cloned().unwrap_or_else(|| d.to_string());
    let per_axis: usize = get(0, "64").parse()?;
    let n: usize = get(1, "64").parse()?;
    let tau: f64 = get(2, "0").parse()?;
    let lambda1: f64 = get(3, "0.01").parse()?;
    let lambda2: f64 = get(4, "0").parse()?;
    let loss: Loss = get(5, "squared").parse()?;
    let mut data = Dataset::builtin(BuiltinDataset::Sine, n, 1, 0)?.with_bias();
    if loss == Loss::Logistic {
        for y in data.y.iter_mut() {
            *y = if *y >= 0.5 { 1.0 } else { -1.0 };
        }
    }
    let theta = candidates::grid(2, per_axis, 3.0)?;
    let rho0 = candidates::uniform_weights(theta.nrows());
    let cfg = TwoLevelConfig {
        lambda1,
        lambda2,
        tau,
    };
    let prog = TwoLevelProgram::new(&data, Activation::Tanh, loss, theta.as_ref(), &rho0, cfg)?;
    if std::env::var("NFF_IPM_TRACE").is_ok() && tau == 0.0 {
        let mut ipm = nff_solvers::TwoLevelIpm::new(&prog, faer::Par::Seq)?;
        for _ in 0..60 {
            let c = ipm.certificate();
            let st = ipm.step()?;
            println!(
                "it {:3} P={:.10e} D={:.10e} gap={:.2e} mu={:.2e} sigma={:.2e} alpha={:.3e} ridge={:.1e}",
                ipm.iterations(), c.primal, c.dual, c.gap(), st.mu, st.sigma, st.alpha, st.ridge
            );
        }
    }
    let tol_gap: f64 = get(6, "1e-8").parse()?;
    let opts = TwoLevelOptions {
        tol_gap,
        ..Default::default()
    };
    let mut sol = prog.solve(&opts)?;
    // NFF_REPEAT=R: solve R times more and report the fastest (the machine may be shared).
    let repeat: usize = std::env::var("NFF_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    for _ in 0..repeat {
        let again = prog.solve(&opts)?;
        if again.seconds < sol.seconds {
            sol = again;
        }
    }
    println!(
        "K={} N={} {cfg:?} {loss}: P={:.12e} D={:.12e} rel_gap={:.2e} it={} {:?} supp={} t={:.4}s",
        theta.nrows(),
        n,
        sol.objective,
        sol.dual_objective,
        sol.relative_gap,
        sol.iterations,
        sol.termination,
        sol.diagnostics.support_size,
        sol.seconds
    );
    Ok(())
}
