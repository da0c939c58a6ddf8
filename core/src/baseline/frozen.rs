//! Random features: the hidden layers frozen at their initial values, only the output weights $v$ trained.
//!
//! With $H = h(Z_L) \in \mathbb R^{N\times m}$ at the frozen $A, W_\ell$, the predictions are
//! $\hat{\mathbf y} = \frac1m Hv$ and the training problem in $v$ is
//! $$\min_v\ \mathcal R\big(\tfrac1m Hv\big) + \frac{\lambda_v}{2m}\|v\|^2 \qquad\text{[derived]}$$
//! (the $v$ term of math.md §2's L2 regularizer; the terms of $A$, $W$ are constants). It is convex, and
//! strictly so for $\lambda_v > 0$; its minimizer is $v = H^\top\mathbf c$ with $\mathbf c$ the solution of
//! [`kernel_ridge`](super::kernel_ridge) for $K = \frac1m HH^\top$, $\mathbf b = 0$ (the
//! [parent module](super) derives it). For $\lambda_v = 0$ and the squared loss this is the minimum-norm
//! least-squares $v$, the limit of GD from $v = 0$. $A$ and every $W_\ell$ are copied bit for bit.
use super::{choose_ridge, kernel_ridge, KernelFit, RidgeChoice};
use crate::data::Dataset;
use crate::error::{CoreError, Result};
use crate::network::{Network, Problem, Workspace};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};

/// The frozen features of a network on the training data: $H = h(Z_L)$ and $K = \frac1m HH^\top$.
#[derive(Clone, Debug)]
pub struct FrozenFeatures {
    h: Mat<f64>,
    k: Mat<f64>,
}

impl FrozenFeatures {
    /// $H$ and $K$ of `net` on `problem`'s data (one forward pass and one $N\times N$ Gram product).
    pub fn new(problem: &Problem, net: &Network, par: Par) -> Result<Self> {
        problem.check_network(net)?;
        let s = net.shape();
        let n = problem.n();
        let mut ws = Workspace::new(s, n);
        problem.forward_into(net, &mut ws, par);
        let h = MatRef::from_column_major_slice(&ws.hz[s.depth - 1], n, s.m).to_owned();
        let mut k = Mat::zeros(n, n);
        matmul(
            k.as_mut(),
            Accum::Replace,
            h.as_ref(),
            h.transpose(),
            1.0 / s.m as f64,
            par,
        );
        crate::network::clear_upper();
        Ok(Self { h, k })
    }

    /// The kernel $K = \frac1m HH^\top$.
    pub fn kernel(&self) -> MatRef<'_, f64> {
        self.k.as_ref()
    }

    /// The exact output fit with ridge $\lambda_v$ on `problem`'s targets.
    pub fn fit(&self, problem: &Problem, lambda_v: f64) -> Result<KernelFit> {
        let zeros = vec![0.0; problem.n()];
        kernel_ridge(
            self.k.as_ref(),
            &zeros,
            &problem.data.y,
            problem.loss,
            lambda_v,
        )
    }

    /// `net` with $v = H^\top\mathbf c$ of `fit`; $A$ and $W$ unchanged, bit for bit.
    pub fn network(&self, net: &Network, fit: &KernelFit) -> Network {
        let mut out = net.clone();
        let n = self.h.nrows();
        for (j, vj) in out.v_mut().iter_mut().enumerate() {
            *vj = (0..n).map(|i| self.h[(i, j)] * fit.c[i]).sum();
        }
        out
    }
}

/// The ridge $\lambda_v$ of a regularizer, as the output fit reads it: the $v$ part of L2 (0 for none).
pub fn output_ridge(reg: crate::Regularizer) -> Result<f64> {
    use crate::Regularizer::*;
    match reg {
        None => Ok(0.0),
        L2 { lambda } => Ok(lambda),
        L2Split { v, .. } => Ok(v),
        GroupL1q { .. } => Err(CoreError::invalid(
            "regularizer of the random-features fit",
            "l2 (a ridge on v)",
            "the group norms",
        )),
    }
}

/// Random features: `net` with its output layer fitted exactly with ridge `lambda_v` on `problem`
/// (hidden layers frozen), and the fit.
pub fn fit_output(
    problem: &Problem,
    net: &Network,
    lambda_v: f64,
    par: Par,
) -> Result<(Network, KernelFit)> {
    let ff = FrozenFeatures::new(problem, net, par)?;
    let fit = ff.fit(problem, lambda_v)?;
    Ok((ff.network(net, &fit), fit))
}

/// Random features with the ridge chosen on a validation part: every $\lambda_v$ of `grid` is fitted on
/// `problem`'s (training) data and scored by the risk on `val`; returns the network of the chosen one.
pub fn fit_output_best_ridge(
    problem: &Problem,
    val: &Dataset,
    net: &Network,
    grid: &[f64],
    par: Par,
) -> Result<(Network, KernelFit, RidgeChoice)> {
    let ff = FrozenFeatures::new(problem, net, par)?;
    let val_problem = problem.on_data(val.clone())?;
    val_problem.check_network(net)?;
    let choice = choose_ridge(grid, |l| {
        let fit = ff.fit(problem, l)?;
        Ok(val_problem.risk(&ff.network(net, &fit)))
    })?;
    let fit = ff.fit(problem, choice.lambda)?;
    Ok((ff.network(net, &fit), fit, choice))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::BuiltinDataset;
    use crate::init::{init_network, Init};
    use crate::{Activation, Arch, Loss, Regularizer, Shape};

    fn setup(arch: Arch, depth: usize, loss: Loss) -> (Problem, Network) {
        let kind = if loss == Loss::Logistic {
            BuiltinDataset::Spirals
        } else {
            BuiltinDataset::Sine
        };
        let data = Dataset::builtin(kind, 12, 3, 2).unwrap();
        let shape = Shape::new(arch, 3, 24, depth).unwrap();
        let (net, _) = init_network(shape, &data, Activation::Tanh, &Init::iid(), 5).unwrap();
        let p = Problem::new(data, Activation::Tanh, loss, Regularizer::l2(0.01)).unwrap();
        (p, net)
    }

    #[test]
    fn frozen_fit_keeps_hidden_weights_and_is_stationary_in_v() {
        for (arch, depth) in [(Arch::TwoLevel, 1), (Arch::Dnn, 3), (Arch::ResNet, 3)] {
            for loss in [Loss::Squared, Loss::Logistic] {
                let (p, net) = setup(arch, depth, loss);
                let (fitted, fit) = fit_output(&p, &net, 0.01, Par::Seq).unwrap();
                assert!(fit.converged, "{arch} {loss}: {fit:?}");
                let vr = net.shape().v_range();
                // A and W bit-identical; v changed.
                assert_eq!(&fitted.as_slice()[..vr.start], &net.as_slice()[..vr.start]);
                assert_ne!(fitted.v(), net.v());
                // The v-velocity of the full problem (its L2 has lambda_v = 0.01) vanishes.
                let vel = p.velocities(&fitted);
                let vmax = vel.v().iter().fold(0.0f64, |a, x| a.max(x.abs()));
                let scale = fitted.v().iter().fold(0.0f64, |a, x| a.max(x.abs()));
                assert!(
                    vmax <= 1e-11 * (1.0 + scale),
                    "{arch} {loss}: |v_dot| = {vmax}"
                );
                // The fit's risk is the network's.
                assert!((p.risk(&fitted) - fit.risk).abs() <= 1e-12 * (1.0 + fit.risk));
            }
        }
    }

    #[test]
    fn best_ridge_is_chosen_on_the_validation_part() {
        let (p, net) = setup(Arch::TwoLevel, 1, Loss::Squared);
        let val = Dataset::builtin(BuiltinDataset::Sine, 10, 3, 9).unwrap();
        let grid = [1e-4, 1e-2, 1.0];
        let (fitted, fit, choice) = fit_output_best_ridge(&p, &val, &net, &grid, Par::Seq).unwrap();
        let vp = p.on_data(val.clone()).unwrap();
        let best = choice
            .val_risks
            .iter()
            .fold(f64::INFINITY, |a, &(_, v)| a.min(v));
        assert_eq!(vp.risk(&fitted), best);
        assert_eq!(fit.lambda, choice.lambda);
    }
}
