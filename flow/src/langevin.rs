//! Noisy (Langevin) gradient descent for the two-level network of math.md §4.1.
//!
//! For $f(x) = \frac1m\sum_j u_j h(\theta_j^\top x)$ with $\theta_j$ = column $j$ of $A$ and $u = v$, noisy GD with
//! per-unit scaled step $m\eta$ and temperature $\tau$ is
//! $$\theta_j \leftarrow \theta_j + \eta\,\dot\theta_j + \sqrt{2\eta\tau}\,\xi_j,\qquad u_j \leftarrow u_j + \eta\,\dot u_j + \sqrt{2\eta\tau}\,\zeta_j,$$
//! with $(\dot\theta_j, \dot u_j) = -m\,\nabla_{(\theta_j,u_j)}J$ the velocities of §2 and $\xi_j, \zeta_j$ i.i.d. standard
//! normal: Euler–Maruyama ([`EulerMaruyama`]) on the [`WeightFlow`] of a two-level network.
//!
//! **Stationary law.** This discretizes $d\vartheta = -\nabla(mJ)\,dt + \sqrt{2\tau}\,dB$, whose invariant law is
//! $\propto e^{-mJ/\tau}$; with [`Regularizer::L2Split`](nff_core::Regularizer::L2Split) $\{a: \lambda_2, v: \lambda_1\}$,
//! $mJ = m\mathcal R + \sum_j(\frac{\lambda_1}2u_j^2 + \frac{\lambda_2}2\|\theta_j\|^2)$, and as $m\to\infty$ the particle law
//! converges to the Wasserstein gradient flow of $F(\mu) = \mathcal R + \int(\lambda_1 r_u + \lambda_2 r_\theta)\,d\mu + \tau\int\mu\log\mu$
//! and its Gibbs minimizer: $u\,|\,\theta \sim \mathcal N(-s(\theta)/\lambda_1, \tau/\lambda_1)$,
//! $\rho^*(\theta) \propto \exp\big(\frac{s(\theta)^2}{2\lambda_1\tau} - \frac{\lambda_2\|\theta\|^2}{2\tau}\big)$, $s(\theta) = \sum_i r^i h(\theta^\top x^i)$
//! (claim C12). The time discretization biases the law by $O(\eta)$ (for an Ornstein–Uhlenbeck coordinate
//! with rate $\lambda$ the stationary variance is $\frac{\tau}{\lambda}\,(1 - \eta\lambda/2)^{-1}$).
//!
//! ## References
//! C. Fang, H. Dong, T. Zhang, *Over Parameterized Two-level Neural Networks Can Learn Near Optimal
//! Feature Representations*, arXiv:1910.11508.
use crate::error::{non_negative, positive, FlowError, Result};
use crate::integrator::EulerMaruyama;
use crate::runner::RunnerBuilder;
use crate::weight_flow::WeightFlow;
use faer::Par;
use nff_core::{Arch, Network, Problem};

/// Settings of noisy GD: step $\eta$, temperature $\tau$ and the noise seed.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NoisyGd {
    /// Step size $\eta$ (time per step).
    pub eta: f64,
    /// Temperature $\tau \ge 0$ ($0$ gives plain GD).
    pub tau: f64,
    /// Seed of the noise stream `rng(seed, "noise")`.
    pub seed: u64,
}

impl NoisyGd {
    /// Reject NaN, $\eta \le 0$, $\tau < 0$.
    pub fn check(&self) -> Result<()> {
        positive("step size eta", self.eta)?;
        non_negative("temperature tau", self.tau)?;
        Ok(())
    }

    /// The Euler–Maruyama integrator of these settings.
    pub fn integrator(&self) -> Result<EulerMaruyama> {
        self.check()?;
        EulerMaruyama::new(self.eta, self.tau, self.seed)
    }

    /// A runner builder for noisy GD of the two-level network `net` on `problem`, starting at $t = 0$;
    /// add stop rules (`final_time` or `max_steps`) and recording, then `build()`.
    ///
    /// Errors unless `net` is a two-level network fitting the data, with finite parameters.
    pub fn runner(
        &self,
        problem: Problem,
        net: &Network,
        par: Par,
    ) -> Result<RunnerBuilder<WeightFlow>> {
        if net.shape().arch != Arch::TwoLevel {
            return Err(FlowError::invalid(
                "architecture for noisy GD",
                "two-level (the per-unit noise scaling of math.md §4.1)",
                net.shape().arch,
            ));
        }
        let integrator = self.integrator()?;
        let field = WeightFlow::new(problem, net.shape(), par)?;
        let y0 = field.initial_state(net)?;
        Ok(RunnerBuilder::new(field, integrator).initial_state(0.0, y0))
    }
}
