//! Shared test fixtures.
use faer::{Mat, Par};
use nff_core::network::Workspace;
use nff_core::{rng, Dataset, Network, Params, Problem};

/// math.md §6 defaults: $x\sim\mathcal N(0, I/d)$ plus a bias column, $y = \sin(3x_1) + \frac12$
/// (logistic: the sign of $\sin(3x_1)$).
pub(crate) fn sine_data(n: usize, d: usize, seed: u64, logistic: bool) -> Dataset {
    let mut r = rng::rng(seed, "data");
    let sd = 1.0 / (d as f64).sqrt();
    let mut x = Mat::zeros(n, d + 1);
    let mut y = vec![0.0; n];
    for i in 0..n {
        for c in 0..d {
            x[(i, c)] = sd * rng::normal(&mut r);
        }
        x[(i, d)] = 1.0;
        let t = (3.0 * x[(i, 0)]).sin();
        y[i] = if logistic {
            if t >= 0.0 {
                1.0
            } else {
                -1.0
            }
        } else {
            t + 0.5
        };
    }
    Dataset::new(x, y).unwrap()
}

/// A network of `shape` with i.i.d. $\mathcal N(0,\sigma^2)$ parameters.
pub(crate) fn random_net(shape: nff_core::Shape, sigma: f64, seed: u64) -> Network {
    let mut r = rng::rng(seed, "net");
    Params::from_vec(
        shape,
        (0..shape.len())
            .map(|_| sigma * rng::normal(&mut r))
            .collect(),
    )
    .unwrap()
}

/// `steps` steps of scaled GD with step `eta`; returns the final objective.
pub(crate) fn train(problem: &Problem, net: &mut Network, eta: f64, steps: usize) -> f64 {
    let mut ws = Workspace::new(net.shape(), problem.n());
    let mut vel = Params::zeros(net.shape());
    for _ in 0..steps {
        problem.gd_step(net, eta, &mut ws, &mut vel, Par::Seq);
    }
    problem.objective(net)
}

/// The fixture of the deep-program tests: the sine data ($n$ points, $d = 1$ plus a bias), tanh, the squared
/// or logistic loss and `GroupL1q { lambda: 0.02, q }`, and a width-$m$ network of `depth` layers (two-level
/// for depth 1) from i.i.d. $\mathcal N(0,1)$ parameters after 300 GD steps of $\eta = 0.05$. Returns the
/// problem, the network and its final objective.
#[allow(clippy::too_many_arguments)]
pub(crate) fn trained_group_net(
    n: usize,
    depth: usize,
    m: usize,
    q: f64,
    logistic: bool,
    data_seed: u64,
    net_seed: u64,
) -> (Problem, Network, f64) {
    trained_group_net_d(n, 1, depth, m, q, logistic, data_seed, net_seed)
}

/// [`trained_group_net`] on `d`-dimensional sine data (with $d = 1$ the first-layer features $h(X\mathbf a)$
/// have singular values down to $10^{-12}$, and depth-3 programs on them are ill-posed in floating point).
#[allow(clippy::too_many_arguments)]
pub(crate) fn trained_group_net_d(
    n: usize,
    d: usize,
    depth: usize,
    m: usize,
    q: f64,
    logistic: bool,
    data_seed: u64,
    net_seed: u64,
) -> (Problem, Network, f64) {
    use nff_core::{Activation, Arch, Loss, Regularizer, Shape};
    let loss = if logistic {
        Loss::Logistic
    } else {
        Loss::Squared
    };
    let problem = Problem::new(
        sine_data(n, d, data_seed, logistic),
        Activation::Tanh,
        loss,
        Regularizer::GroupL1q { lambda: 0.02, q },
    )
    .unwrap();
    let arch = if depth == 1 {
        Arch::TwoLevel
    } else {
        Arch::Dnn
    };
    let mut net = random_net(Shape::new(arch, d + 1, m, depth).unwrap(), 1.0, net_seed);
    let j = train(&problem, &mut net, 0.05, 300);
    (problem, net, j)
}
