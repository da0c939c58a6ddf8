//! KKT conditions of the deep program at a gradient-descent stationary point (math.md §4.4, claim C17).
//!
//! A width-$m$ DNN trained with `Regularizer::GroupL1q { λ, q }` is the point $p = 1/m$, $\hat U = W/m^2$,
//! $\hat v = v/m$ of the program in mass variables ([`crate::deep`]). Its backward features
//! $G_\ell = m\,\partial J/\partial Z_\ell$ (from `Problem::velocities_into`) are the consistency multipliers and its residual
//! $\mathbf r$ the output multiplier:
//! $$\boldsymbol\mu_{\ell}(k) := G_\ell(:,k)\ (\ell\ge2),\qquad \mathbf r^* := \mathbf r .$$
//! Indeed $m^2\partial J/\partial W_{jk} = h(\mathbf z_j)^\top G_{\ell+1}(k) + \lambda q\,[s_k^{q-1} + t_j^{q-1}]\operatorname{sign}W_{jk}$ with the column/row
//! means $s_k, t_j$ of $|W|$ — exactly the weight stationarity of the program, so its residual is the
//! scaled velocity $\dot W$ (and likewise for $v$). The density condition is *not* implied by GD stationarity
//! (GD never moves mass between units): on the support its spread measures how far the particles are from
//! sharing one value of the first variation, and off the support (fresh candidates, with the best-response
//! multipliers of [`crate::deep::DeepProgram::dual_bound`]) a violation shows a cheaper feature GD cannot see.
use crate::deep::{DeepKkt, DeepMultipliers, DeepProgram};
use crate::error::Result;
use faer::Par;
use nff_core::network::Workspace;
use nff_core::{Network, Params, Problem};
use serde::Serialize;

/// The KKT check of a trained network.
#[derive(Clone, Debug, Serialize)]
pub struct GdKktReport {
    /// The network's objective $J$.
    pub objective: f64,
    /// The program's objective at the network's point (equal to $J$: claim C15).
    pub program_objective: f64,
    /// $\sqrt{\frac1m\|\dot A\|^2 + \frac1{m^2}\sum\|\dot W\|^2 + \frac1m\|\dot v\|^2}$ (0 at a stationary point).
    pub velocity_norm: f64,
    /// KKT residuals (weights and output on the support, density on and off the support).
    pub kkt: DeepKkt,
    /// The certified lower bound on the program's optimum from these multipliers.
    pub dual_bound: f64,
    /// Multipliers: $G_\ell$ on the particles (best responses on fresh candidates are internal to the bound).
    pub multipliers: DeepMultipliers,
}

/// Check the KKT conditions of §4.4 at `net` (a DNN or two-level network with a `GroupL1q` regularizer),
/// with `fresh` extra candidates per layer drawn from `seed` ([`crate::deep::DeepCandidates::from_network`]).
pub fn gd_kkt(problem: &Problem, net: &Network, fresh: usize, seed: u64) -> Result<GdKktReport> {
    let (prog, point) = DeepProgram::from_network(problem, net, fresh, seed)?;
    let s = net.shape();
    let n = problem.n();
    let mut ws = Workspace::new(s, n);
    let mut vel = Params::zeros(s);
    let objective = problem.velocities_into(net, &mut ws, &mut vel, Par::Seq);
    let sizes = prog.sizes();
    let mu = (1..s.depth)
        .map(|l| {
            let mut col = vec![0.0; n * sizes[l]];
            col[..n * s.m].copy_from_slice(&ws.g[l]);
            col
        })
        .collect();
    let mult = DeepMultipliers {
        mu,
        c: vec![0.0; s.depth],
        r: ws.r.clone(),
    };
    let program_objective = prog.objective(&point)?;
    let bound = prog.dual_bound(&point, &mult, 0.0)?;
    let kkt = prog.kkt(&point, &mult, 0.0)?;
    Ok(GdKktReport {
        objective,
        program_objective,
        velocity_norm: vel.scaled_sq_norm().sqrt(),
        kkt,
        dual_bound: bound.value,
        multipliers: mult,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{random_net, sine_data, train};
    use nff_core::{Activation, Arch, Loss, Regularizer, Shape};

    #[test]
    fn c17_multipliers_are_the_backward_features() {
        for (depth, q) in [(2, 2.0), (3, 1.5)] {
            let problem = Problem::new(
                sine_data(6, 1, 5, false),
                Activation::Tanh,
                Loss::Squared,
                Regularizer::GroupL1q { lambda: 0.01, q },
            )
            .unwrap();
            let shape = Shape::new(Arch::Dnn, 2, 5, depth).unwrap();
            let mut net = random_net(shape, 1.0, 4);
            train(&problem, &mut net, 0.05, 500);
            let rep = gd_kkt(&problem, &net, 4, 2).unwrap();
            // With μ := G the program's weight stationarity residual is exactly the scaled velocity Ẇ.
            let vel = problem.velocities(&net);
            let wmax = (0..depth - 1)
                .flat_map(|l| {
                    vel.w(l)
                        .col_iter()
                        .flat_map(|c| c.iter().copied().collect::<Vec<_>>())
                        .collect::<Vec<_>>()
                })
                .map(f64::abs)
                .fold(0.0, f64::max);
            let vmax = vel.v().iter().map(|x| x.abs()).fold(0.0, f64::max);
            assert!(
                (rep.kkt.weight - wmax).abs() <= 1e-10 * (1.0 + wmax),
                "{} vs {wmax}",
                rep.kkt.weight
            );
            assert!(
                (rep.kkt.output - vmax).abs() <= 1e-10 * (1.0 + vmax),
                "{} vs {vmax}",
                rep.kkt.output
            );
            assert!((rep.program_objective - rep.objective).abs() <= 1e-12 * rep.objective);
            assert!(rep.dual_bound <= rep.objective);
            assert_eq!(rep.kkt.density_spread.len(), depth);
        }
    }
}
