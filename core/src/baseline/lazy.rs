//! The lazy / NTK regime: the network linearized at its initialization $\theta_0$,
//! $$f_{\rm lin}(x;\theta_0+\delta) = f(x;\theta_0) + \nabla_\theta f(x;\theta_0)\cdot\delta \qquad\text{[derived]},$$
//! trained on the same loss with a ridge on the displacement,
//! $$J_{\rm lin}(\delta) = \mathcal R\big(\hat{\mathbf y}_0 + J\delta\big) + \tfrac\lambda2\|\delta\|^2_{M^{-1}},\qquad
//! \|\delta\|^2_{M^{-1}} = \tfrac1m\|\delta A\|^2 + \tfrac1{m^2}\textstyle\sum_\ell\|\delta W_\ell\|^2 + \tfrac1m\|\delta v\|^2,$$
//! where $J = \partial\hat{\mathbf y}/\partial\theta$ at $\theta_0$ on the training points and $M$ the scaled-GD
//! metric of math.md §2. Its scaled velocity (what GD with step $\eta$ adds, as for the network) is
//! $\dot\delta = -MJ^\top\mathbf r - \lambda\delta$ with $\mathbf r$ the residual of $f_{\rm lin}$, which is the
//! network's backward pass at $\theta_0$ fed with that residual ([`Linearized::velocities`]).
//!
//! **Exact solution.** $J_{\rm lin}$ is convex; its minimizer is $\delta = MJ^\top\mathbf c$ with $\mathbf c$ the
//! solution of [`kernel_ridge`](super::kernel_ridge) for the neural tangent kernel $K = \Theta = JMJ^\top$ and
//! offset $\hat{\mathbf y}_0$ — the limit of GD on $J_{\rm lin}$ (for $\lambda = 0$ and the squared loss, from
//! $\delta = 0$: the minimum-norm interpolant). Because each point's prediction depends only on its own row of
//! every $Z_\ell$, the per-point backward features are the backward pass with $\mathbf r = \mathbf 1$,
//! $G_\ell^{(1)}$, and
//! $$\Theta = (XX^\top)\odot\tfrac1m G_1^{(1)}G_1^{(1)\top} + \sum_{\ell=1}^{L-1}\tfrac1m H_\ell H_\ell^\top\odot\tfrac1m G_{\ell+1}^{(1)}G_{\ell+1}^{(1)\top} + \tfrac1m H_LH_L^\top,$$
//! $H_\ell = h(Z_\ell)$, for the DNN and the ResNet alike ([`tangent_kernel`]; between two data sets it gives
//! the cross kernel).
use super::{choose_ridge, kernel_ridge, KernelFit, RidgeChoice};
use crate::data::Dataset;
use crate::error::Result;
use crate::network::{Network, Params, Problem, Workspace};
use crate::Regularizer;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};

/// faer's product, then the `vzeroupper` the hot path uses after every product.
fn mm(
    dst: MatMut<'_, f64>,
    accum: Accum,
    a: MatRef<'_, f64>,
    b: MatRef<'_, f64>,
    alpha: f64,
    par: Par,
) {
    matmul(dst, accum, a, b, alpha, par);
    crate::network::clear_upper();
}

/// The network linearized at $\theta_0$ on one data set: predictions, velocities and the pull-back
/// $MJ^\top$ (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Linearized {
    problem: Problem,
    theta0: Network,
    ws: Workspace,
    yhat0: Vec<f64>,
}

impl Linearized {
    /// Linearize `theta0` on `problem`'s data (activation and loss of `problem`; its regularizer is not used:
    /// the ridge is the `lambda` of each call). One forward pass.
    pub fn new(problem: &Problem, theta0: &Network, par: Par) -> Result<Self> {
        problem.check_network(theta0)?;
        let problem = Problem {
            reg: Regularizer::None,
            ..problem.clone()
        };
        let mut ws = Workspace::new(theta0.shape(), problem.n());
        problem.forward_into(theta0, &mut ws, par);
        let yhat0 = ws.yhat.clone();
        Ok(Self {
            problem,
            theta0: theta0.clone(),
            ws,
            yhat0,
        })
    }

    /// $\hat{\mathbf y}_0 = f(X;\theta_0)$.
    pub fn yhat0(&self) -> &[f64] {
        &self.yhat0
    }

    /// The data the model is linearized on.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }

    /// $J\delta$, the forward-mode derivative (JVP) at $\theta_0$:
    /// $\dot Z_1 = X\,\delta A$, $\dot Z_{\ell+1} = [\dot Z_\ell]_{\rm Res} + \frac1m\big((h'(Z_\ell)\odot\dot Z_\ell)W_\ell + h(Z_\ell)\,\delta W_\ell\big)$,
    /// $J\delta = \frac1m\big((h'(Z_L)\odot\dot Z_L)v + h(Z_L)\,\delta v\big)$.
    pub fn jvp(&self, delta: &Params, par: Par) -> Vec<f64> {
        let s = self.theta0.shape();
        assert_eq!(
            delta.shape(),
            s,
            "displacement shape differs from the network's"
        );
        let (n, m) = (self.problem.n(), s.m);
        let inv_m = 1.0 / m as f64;
        let view = |b: &[f64]| MatRef::from_column_major_slice(b, n, m).to_owned();
        let mut zdot = Mat::zeros(n, m);
        mm(
            zdot.as_mut(),
            Accum::Replace,
            self.problem.data.x.as_ref(),
            delta.a(),
            1.0,
            par,
        );
        for l in 0..s.n_w() {
            let t = Mat::from_fn(n, m, |i, k| self.ws.dz[l][k * n + i] * zdot[(i, k)]);
            let mut next = if s.arch.is_resnet() {
                zdot.clone()
            } else {
                Mat::zeros(n, m)
            };
            mm(
                next.as_mut(),
                Accum::Add,
                t.as_ref(),
                self.theta0.w(l),
                inv_m,
                par,
            );
            mm(
                next.as_mut(),
                Accum::Add,
                view(&self.ws.hz[l]).as_ref(),
                delta.w(l),
                inv_m,
                par,
            );
            zdot = next;
        }
        let top = s.depth - 1;
        let t = Mat::from_fn(n, m, |i, k| self.ws.dz[top][k * n + i] * zdot[(i, k)]);
        let mut out = Mat::zeros(n, 1);
        let col = |v: &[f64]| MatRef::from_column_major_slice(v, m, 1).to_owned();
        mm(
            out.as_mut(),
            Accum::Replace,
            t.as_ref(),
            col(self.theta0.v()).as_ref(),
            inv_m,
            par,
        );
        mm(
            out.as_mut(),
            Accum::Add,
            view(&self.ws.hz[top]).as_ref(),
            col(delta.v()).as_ref(),
            inv_m,
            par,
        );
        (0..n).map(|i| out[(i, 0)]).collect()
    }

    /// $f_{\rm lin}(X;\theta_0+\delta) = \hat{\mathbf y}_0 + J\delta$.
    pub fn predict(&self, delta: &Params, par: Par) -> Vec<f64> {
        self.yhat0
            .iter()
            .zip(self.jvp(delta, par))
            .map(|(a, b)| a + b)
            .collect()
    }

    /// $J_{\rm lin}(\delta)$ with ridge `lambda` on the displacement.
    pub fn objective(&self, delta: &Params, lambda: f64, par: Par) -> f64 {
        let f = self.predict(delta, par);
        self.problem.loss.risk(&f, &self.problem.data.y) + 0.5 * lambda * delta.scaled_sq_norm()
    }

    /// $MJ^\top\mathbf r$ (the backward pass at $\theta_0$ fed with the residual `r`, negated).
    pub fn pullback(&mut self, r: &[f64], par: Par) -> Params {
        assert_eq!(r.len(), self.problem.n(), "one residual per point");
        self.ws.r.copy_from_slice(r);
        let mut vel = Params::zeros(self.theta0.shape());
        self.problem
            .backward_into(&self.theta0, &mut self.ws, &mut vel, par);
        for x in vel.as_mut_slice() {
            *x = -*x;
        }
        vel
    }

    /// The scaled velocity $\dot\delta = -MJ^\top\mathbf r - \lambda\delta$ of $J_{\rm lin}$ at `delta`, and
    /// $J_{\rm lin}(\delta)$. At $\delta = 0$, $\lambda = 0$ it is the network's velocity at $\theta_0$
    /// without a regularizer.
    pub fn velocities(&mut self, delta: &Params, lambda: f64, par: Par) -> (f64, Params) {
        let f = self.predict(delta, par);
        let (loss, y) = (self.problem.loss, &self.problem.data.y);
        let r = loss.residual(&f, y);
        let objective = loss.risk(&f, y) + 0.5 * lambda * delta.scaled_sq_norm();
        let mut vel = self.pullback(&r, par);
        for (v, d) in vel.as_mut_slice().iter_mut().zip(delta.as_slice()) {
            *v = -*v - lambda * d;
        }
        (objective, vel)
    }

    /// The factors of the tangent kernel on this data: $X$, $H_\ell$ and $G^{(1)}_\ell$ (backward pass with
    /// $\mathbf r = \mathbf 1$).
    pub fn kernel_factors(&mut self, par: Par) -> KernelFactors {
        let s = self.theta0.shape();
        let n = self.problem.n();
        let _ = self.pullback(&vec![1.0; n], par);
        let mat = |b: &[f64]| MatRef::from_column_major_slice(b, n, s.m).to_owned();
        KernelFactors {
            x: self.problem.data.x.clone(),
            h: self.ws.hz.iter().map(|b| mat(b)).collect(),
            g: self.ws.g.iter().map(|b| mat(b)).collect(),
            m: s.m,
        }
    }
}

/// What the tangent kernel of one data set is built from (see [`Linearized::kernel_factors`]).
#[derive(Clone, Debug)]
pub struct KernelFactors {
    x: Mat<f64>,
    h: Vec<Mat<f64>>,
    g: Vec<Mat<f64>>,
    m: usize,
}

/// $\Theta(a, b) = J_a M J_b^\top$ between the points of two factor sets (formula in the [module docs](self)).
pub fn tangent_kernel(a: &KernelFactors, b: &KernelFactors, par: Par) -> Mat<f64> {
    let (na, nb) = (a.x.nrows(), b.x.nrows());
    let inv_m = 1.0 / a.m as f64;
    let gram = |p: &Mat<f64>, q: &Mat<f64>, alpha: f64| {
        let mut out = Mat::zeros(na, nb);
        mm(
            out.as_mut(),
            Accum::Replace,
            p.as_ref(),
            q.transpose(),
            alpha,
            par,
        );
        out
    };
    let depth = a.h.len();
    let xx = gram(&a.x, &b.x, 1.0);
    let g1 = gram(&a.g[0], &b.g[0], inv_m);
    let mut theta = Mat::from_fn(na, nb, |i, j| xx[(i, j)] * g1[(i, j)]);
    for l in 0..depth - 1 {
        let hh = gram(&a.h[l], &b.h[l], inv_m);
        let gg = gram(&a.g[l + 1], &b.g[l + 1], inv_m);
        for j in 0..nb {
            for i in 0..na {
                theta[(i, j)] += hh[(i, j)] * gg[(i, j)];
            }
        }
    }
    let hl = gram(&a.h[depth - 1], &b.h[depth - 1], inv_m);
    for j in 0..nb {
        for i in 0..na {
            theta[(i, j)] += hl[(i, j)];
        }
    }
    theta
}

/// A fitted lazy model: the displacement $\delta$ from $\theta_0$ and the kernel fit behind it.
#[derive(Clone, Debug)]
pub struct LazyFit {
    /// $\delta = MJ^\top\mathbf c$; the lazy model's parameters are $\theta_0 + \delta$.
    pub delta: Params,
    /// The exact kernel fit ($\mathbf c$, training predictions, objective, Newton steps).
    pub fit: KernelFit,
}

/// The lazy model of one network on its training data: the linearization, its factors and $\Theta$.
#[derive(Clone, Debug)]
pub struct Lazy {
    lin: Linearized,
    factors: KernelFactors,
    theta: Mat<f64>,
}

impl Lazy {
    /// Linearize `theta0` on `problem`'s data and build the $N\times N$ tangent kernel.
    pub fn new(problem: &Problem, theta0: &Network, par: Par) -> Result<Self> {
        let mut lin = Linearized::new(problem, theta0, par)?;
        let factors = lin.kernel_factors(par);
        let theta = tangent_kernel(&factors, &factors, par);
        Ok(Self {
            lin,
            factors,
            theta,
        })
    }

    /// The tangent kernel $\Theta$ on the training points.
    pub fn kernel(&self) -> MatRef<'_, f64> {
        self.theta.as_ref()
    }

    /// The linearization on the training points.
    pub fn linearized(&mut self) -> &mut Linearized {
        &mut self.lin
    }

    /// The exact minimizer of $J_{\rm lin}$ with ridge `lambda`.
    pub fn fit(&mut self, lambda: f64, par: Par) -> Result<LazyFit> {
        let p = self.lin.problem();
        let fit = kernel_ridge(
            self.theta.as_ref(),
            &self.lin.yhat0,
            &p.data.y,
            p.loss,
            lambda,
        )?;
        let delta = self.lin.pullback(&fit.c, par);
        Ok(LazyFit { delta, fit })
    }

    /// The lazy model's predictions on other points, $f(X';\theta_0) + J'\delta$ (a JVP there).
    pub fn predict_on(&self, data: &Dataset, fit: &LazyFit, par: Par) -> Result<Vec<f64>> {
        let other = self.lin.problem.on_data(data.clone())?;
        Ok(Linearized::new(&other, &self.lin.theta0, par)?.predict(&fit.delta, par))
    }

    /// The same predictions through the cross kernel, $f(X';\theta_0) + \Theta(X', X)\mathbf c$, for every
    /// coefficient vector in `cs` (one linearization of `data` for all of them: what a ridge grid needs).
    pub fn predict_on_kernel(
        &self,
        data: &Dataset,
        cs: &[&[f64]],
        par: Par,
    ) -> Result<Vec<Vec<f64>>> {
        let other = self.lin.problem.on_data(data.clone())?;
        let mut lin = Linearized::new(&other, &self.lin.theta0, par)?;
        let cross = tangent_kernel(&lin.kernel_factors(par), &self.factors, par);
        Ok(cs
            .iter()
            .map(|c| {
                (0..data.n())
                    .map(|i| lin.yhat0[i] + (0..c.len()).map(|j| cross[(i, j)] * c[j]).sum::<f64>())
                    .collect()
            })
            .collect())
    }
}

/// The lazy model of `theta0` on `problem` with ridge `lambda`, solved exactly.
pub fn fit_lazy(problem: &Problem, theta0: &Network, lambda: f64, par: Par) -> Result<LazyFit> {
    Lazy::new(problem, theta0, par)?.fit(lambda, par)
}

/// The lazy model with the ridge chosen on a validation part (risk of the linearized model's predictions
/// on `val`), fitted on `problem`'s data. Returns the model (to predict elsewhere), the fit and the choice.
pub fn fit_lazy_best_ridge(
    problem: &Problem,
    val: &Dataset,
    theta0: &Network,
    grid: &[f64],
    par: Par,
) -> Result<(Lazy, LazyFit, RidgeChoice)> {
    let mut lazy = Lazy::new(problem, theta0, par)?;
    let (loss, y) = (problem.loss, &problem.data.y);
    let val_problem = problem.on_data(val.clone())?;
    let mut fits = Vec::new();
    for &l in grid {
        fits.push(kernel_ridge(
            lazy.theta.as_ref(),
            &lazy.lin.yhat0,
            y,
            loss,
            l,
        )?);
    }
    let cs: Vec<&[f64]> = fits.iter().map(|f| f.c.as_slice()).collect();
    let preds = lazy.predict_on_kernel(val, &cs, par)?;
    let mut k = 0;
    let choice = choose_ridge(grid, |_| {
        let r = loss.risk(&preds[k], &val_problem.data.y);
        k += 1;
        Ok(r)
    })?;
    let fit = lazy.fit(choice.lambda, par)?;
    Ok((lazy, fit, choice))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::BuiltinDataset;
    use crate::init::{init_network, Init};
    use crate::rng::{normal_vec, rng};
    use crate::{Activation, Arch, Loss, Shape};

    fn setup(arch: Arch, depth: usize, loss: Loss, n: usize) -> (Problem, Network) {
        let kind = if loss == Loss::Logistic {
            BuiltinDataset::Spirals
        } else {
            BuiltinDataset::Sine
        };
        let data = Dataset::builtin(kind, n, 3, 4).unwrap();
        let shape = Shape::new(arch, 3, 16, depth).unwrap();
        let (net, _) = init_network(shape, &data, Activation::Tanh, &Init::iid(), 3).unwrap();
        let p = Problem::new(data, Activation::Tanh, loss, Regularizer::None).unwrap();
        (p, net)
    }

    const CASES: [(Arch, usize); 3] = [(Arch::TwoLevel, 1), (Arch::Dnn, 3), (Arch::ResNet, 3)];

    fn random_params(net: &Network, seed: u64, scale: f64) -> Params {
        let mut r = rng(seed, "test-direction");
        Params::from_vec(net.shape(), normal_vec(&mut r, net.shape().len(), scale)).unwrap()
    }

    fn max_abs(v: &[f64]) -> f64 {
        v.iter().fold(0.0f64, |a, x| a.max(x.abs()))
    }

    #[test]
    fn linearization_at_theta0_is_the_network() {
        for (arch, depth) in CASES {
            let (p, net) = setup(arch, depth, Loss::Squared, 7);
            let mut lin = Linearized::new(&p, &net, Par::Seq).unwrap();
            let zero = Params::zeros(net.shape());
            assert_eq!(lin.predict(&zero, Par::Seq), p.predict(&net), "{arch}");
            let (j, vel) = lin.velocities(&zero, 0.0, Par::Seq);
            assert_eq!(j, p.objective(&net), "{arch}");
            let want = p.velocities(&net);
            let diff: Vec<f64> = vel
                .as_slice()
                .iter()
                .zip(want.as_slice())
                .map(|(a, b)| a - b)
                .collect();
            assert!(
                max_abs(&diff) <= 1e-15 * max_abs(want.as_slice()),
                "{arch}: {}",
                max_abs(&diff)
            );
        }
    }

    #[test]
    fn jvp_is_the_directional_derivative_of_the_network() {
        for (arch, depth) in CASES {
            let (p, net) = setup(arch, depth, Loss::Squared, 6);
            let lin = Linearized::new(&p, &net, Par::Seq).unwrap();
            let u = random_params(&net, 1, 1.0);
            let eps = 1e-5;
            let (mut plus, mut minus) = (net.clone(), net.clone());
            plus.axpy(eps, &u);
            minus.axpy(-eps, &u);
            let (fp, fm) = (p.predict(&plus), p.predict(&minus));
            let jv = lin.jvp(&u, Par::Seq);
            for i in 0..p.n() {
                let fd = (fp[i] - fm[i]) / (2.0 * eps);
                assert!(
                    (fd - jv[i]).abs() <= 1e-7 * (1.0 + fd.abs()),
                    "{arch}: {fd} vs {}",
                    jv[i]
                );
            }
            // Linear in delta, exactly up to rounding.
            let two = random_params(&net, 2, 1.0);
            let mut sum = u.clone();
            sum.axpy(1.0, &two);
            let (a, b, c) = (
                lin.jvp(&u, Par::Seq),
                lin.jvp(&two, Par::Seq),
                lin.jvp(&sum, Par::Seq),
            );
            for i in 0..p.n() {
                assert!((a[i] + b[i] - c[i]).abs() <= 1e-13 * (1.0 + c[i].abs()));
            }
        }
    }

    #[test]
    fn linearized_gradient_matches_finite_differences() {
        for (arch, depth) in CASES {
            for loss in [Loss::Squared, Loss::Logistic] {
                let (p, net) = setup(arch, depth, loss, 6);
                let mut lin = Linearized::new(&p, &net, Par::Seq).unwrap();
                let delta = random_params(&net, 3, 0.3);
                let u = random_params(&net, 4, 1.0);
                let lambda = 0.05;
                let (_, vel) = lin.velocities(&delta, lambda, Par::Seq);
                // dJ/de along u = grad . u = -(M^-1 vel) . u.
                let (wa, ww) = net.shape().metric();
                let s = net.shape();
                let mut pred = 0.0;
                for (idx, (v, d)) in vel.as_slice().iter().zip(u.as_slice()).enumerate() {
                    let in_w = idx >= s.a_range().end && idx < s.v_range().start;
                    pred -= if in_w { ww } else { wa } * v * d;
                }
                let eps = 1e-5;
                let (mut dp, mut dm) = (delta.clone(), delta.clone());
                dp.axpy(eps, &u);
                dm.axpy(-eps, &u);
                let fd = (lin.objective(&dp, lambda, Par::Seq)
                    - lin.objective(&dm, lambda, Par::Seq))
                    / (2.0 * eps);
                assert!(
                    (fd - pred).abs() <= 1e-7 * (1.0 + fd.abs()),
                    "{arch} {loss}: {fd} vs {pred}"
                );
            }
        }
    }

    #[test]
    fn tangent_kernel_is_j_m_jt() {
        for (arch, depth) in CASES {
            let (p, net) = setup(arch, depth, Loss::Squared, 6);
            let mut lazy = Lazy::new(&p, &net, Par::Seq).unwrap();
            let c: Vec<f64> = (0..6).map(|i| (i as f64 * 0.7).cos()).collect();
            let theta = lazy.kernel().to_owned();
            let lin = lazy.linearized();
            let pulled = lin.pullback(&c, Par::Seq);
            let via_jvp = lin.jvp(&pulled, Par::Seq);
            for i in 0..6 {
                let tc: f64 = (0..6).map(|j| theta[(i, j)] * c[j]).sum();
                assert!(
                    (tc - via_jvp[i]).abs() <= 1e-12 * (1.0 + tc.abs()),
                    "{arch}: {tc} vs {}",
                    via_jvp[i]
                );
                assert!(
                    (theta[(i, (i + 1) % 6)] - theta[((i + 1) % 6, i)]).abs()
                        <= 1e-13 * theta[(i, i)]
                );
            }
        }
    }

    #[test]
    fn lazy_fit_is_where_gd_on_the_linearization_converges() {
        for (arch, depth) in CASES {
            let (p, net) = setup(arch, depth, Loss::Squared, 6);
            let lambda = 0.2;
            let mut lazy = Lazy::new(&p, &net, Par::Seq).unwrap();
            let fit = lazy.fit(lambda, Par::Seq).unwrap();
            assert!(fit.fit.converged);
            let lin = lazy.linearized();
            // The exact fit is stationary and predicts what the kernel fit says.
            let (_, vel) = lin.velocities(&fit.delta, lambda, Par::Seq);
            assert!(
                vel.scaled_sq_norm() < 1e-24,
                "{arch}: {}",
                vel.scaled_sq_norm()
            );
            let pred = lin.predict(&fit.delta, Par::Seq);
            for (p, y) in pred.iter().zip(&fit.fit.yhat) {
                assert!((p - y).abs() < 1e-12);
            }
            // GD from delta = 0 converges to it.
            let mut delta = Params::zeros(net.shape());
            for _ in 0..3000 {
                let (_, v) = lin.velocities(&delta, lambda, Par::Seq);
                delta.axpy(0.5, &v);
            }
            let gd = lin.predict(&delta, Par::Seq);
            for i in 0..6 {
                assert!(
                    (gd[i] - pred[i]).abs() < 1e-8,
                    "{arch}: {} vs {}",
                    gd[i],
                    pred[i]
                );
            }
        }
    }

    #[test]
    fn cross_kernel_predictions_equal_the_jvp_on_other_points() {
        for (arch, depth) in CASES {
            let (p, net) = setup(arch, depth, Loss::Squared, 6);
            let other = Dataset::builtin(BuiltinDataset::Sine, 5, 3, 11).unwrap();
            let (lazy, fit, choice) =
                fit_lazy_best_ridge(&p, &other, &net, &[1e-3, 0.1, 10.0], Par::Seq).unwrap();
            let a = lazy.predict_on(&other, &fit, Par::Seq).unwrap();
            let b = &lazy
                .predict_on_kernel(&other, &[&fit.fit.c], Par::Seq)
                .unwrap()[0];
            for i in 0..5 {
                assert!(
                    (a[i] - b[i]).abs() <= 1e-12 * (1.0 + a[i].abs()),
                    "{arch}: {} vs {}",
                    a[i],
                    b[i]
                );
            }
            let risk = Loss::Squared.risk(&a, &other.y);
            let best = choice
                .val_risks
                .iter()
                .fold(f64::INFINITY, |m, &(_, v)| m.min(v));
            assert!((risk - best).abs() <= 1e-12 * (1.0 + best));
        }
    }
}
