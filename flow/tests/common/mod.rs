//! Shared fixtures: linear ODEs with known flows, small datasets and networks.
#![allow(dead_code)]
use faer::Mat;
use nff_core::rng::{normal, rng};
use nff_core::{Activation, Arch, Dataset, Loss, Params, Problem, Regularizer, Shape};
use nff_flow::LinearField;

/// A linear test ODE ẏ = My with its exact flow.
pub struct LinearOde {
    pub name: &'static str,
    pub m: Vec<f64>,
    pub n: usize,
    pub y0: Vec<f64>,
    /// exp(tM) y0.
    pub exact: fn(f64) -> Vec<f64>,
}

impl LinearOde {
    pub fn field(&self) -> LinearField {
        LinearField::new(self.n, self.m.clone()).unwrap()
    }
}

/// 2x2 rotation with decay: M = [[-a, -w], [w, -a]], exp(tM) = e^{-at} R(wt).
fn rot_decay(a: f64, w: f64) -> [f64; 4] {
    [-a, w, -w, -a] // column-major
}
fn rot_decay_flow(a: f64, w: f64, t: f64, y: [f64; 2]) -> [f64; 2] {
    let e = (-a * t).exp();
    let (s, c) = (w * t).sin_cos();
    [e * (c * y[0] - s * y[1]), e * (s * y[0] + c * y[1])]
}

const A1: f64 = 0.3;
const W1: f64 = 2.0;
const A2: f64 = 0.1;
const W2: f64 = 0.7;

/// Householder reflection Q = I - 2uuᵀ/|u|², u = (1, 2, -1, 1): symmetric and orthogonal.
fn householder() -> [[f64; 4]; 4] {
    let u = [1.0, 2.0, -1.0, 1.0];
    let nn: f64 = u.iter().map(|x| x * x).sum();
    let mut q = [[0.0; 4]; 4];
    for i in 0..4 {
        for j in 0..4 {
            q[i][j] = f64::from(u8::from(i == j)) - 2.0 * u[i] * u[j] / nn;
        }
    }
    q
}

fn mul4(q: &[[f64; 4]; 4], y: [f64; 4]) -> [f64; 4] {
    let mut out = [0.0; 4];
    for i in 0..4 {
        for j in 0..4 {
            out[i] += q[i][j] * y[j];
        }
    }
    out
}

fn flow2(t: f64) -> Vec<f64> {
    rot_decay_flow(A1, W1, t, [1.0, 0.5]).to_vec()
}

const Y0_4: [f64; 4] = [1.0, -0.5, 0.25, 2.0];

fn flow4(t: f64) -> Vec<f64> {
    // M = Q B Qᵀ with B = diag(block(A1, W1), block(A2, W2)); Q symmetric.
    let q = householder();
    let z = mul4(&q, Y0_4);
    let b1 = rot_decay_flow(A1, W1, t, [z[0], z[1]]);
    let b2 = rot_decay_flow(A2, W2, t, [z[2], z[3]]);
    mul4(&q, [b1[0], b1[1], b2[0], b2[1]]).to_vec()
}

fn matrix4() -> Vec<f64> {
    let q = householder();
    let b1 = rot_decay(A1, W1);
    let b2 = rot_decay(A2, W2);
    let mut b = [[0.0; 4]; 4];
    b[0][0] = b1[0];
    b[1][0] = b1[1];
    b[0][1] = b1[2];
    b[1][1] = b1[3];
    b[2][2] = b2[0];
    b[3][2] = b2[1];
    b[2][3] = b2[2];
    b[3][3] = b2[3];
    let mut m = vec![0.0; 16];
    for i in 0..4 {
        for j in 0..4 {
            let mut s = 0.0;
            for k in 0..4 {
                for l in 0..4 {
                    s += q[i][k] * b[k][l] * q[l][j];
                }
            }
            m[i + 4 * j] = s;
        }
    }
    m
}

/// The linear conformance problems.
pub fn linear_odes() -> Vec<LinearOde> {
    vec![
        LinearOde {
            name: "rotation-decay 2x2",
            m: rot_decay(A1, W1).to_vec(),
            n: 2,
            y0: vec![1.0, 0.5],
            exact: flow2,
        },
        LinearOde {
            name: "two coupled rotation-decays 4x4",
            m: matrix4(),
            n: 4,
            y0: Y0_4.to_vec(),
            exact: flow4,
        },
    ]
}

pub fn dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

pub fn norm(a: &[f64]) -> f64 {
    a.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// math.md §6 default data: x ~ N(0, I/d) (row by row), y = sin(3 x_1) + 1/2, optionally with a bias column.
pub fn sine_data(n: usize, d: usize, seed: u64, x_scale: f64, bias: bool) -> Dataset {
    let mut r = rng(seed, "data");
    let cols = d + usize::from(bias);
    let mut x = Mat::<f64>::zeros(n, cols);
    let s = x_scale / (d as f64).sqrt();
    let mut y = vec![0.0; n];
    for i in 0..n {
        for j in 0..d {
            x[(i, j)] = s * normal(&mut r);
        }
        if bias {
            x[(i, d)] = 1.0;
        }
        y[i] = (3.0 * x[(i, 0)]).sin() + 0.5;
    }
    Dataset::new(x, y).unwrap()
}

pub fn problem(data: Dataset, reg: Regularizer) -> Problem {
    Problem::new(data, Activation::Tanh, Loss::Squared, reg).unwrap()
}

/// A iid N(0, 1) column by column; W iid N(0, w_sigma²); v iid N(0, v_sigma²).
pub fn random_net(shape: Shape, seed: u64, w_sigma: f64, v_sigma: f64) -> Params {
    let mut r = rng(seed, "init");
    let mut net = Params::zeros(shape);
    for j in 0..shape.m {
        for i in 0..shape.d {
            net.a_mut()[(i, j)] = normal(&mut r);
        }
    }
    for l in 0..shape.n_w() {
        for j in 0..shape.m {
            for i in 0..shape.m {
                net.w_mut(l)[(i, j)] = w_sigma * normal(&mut r);
            }
        }
    }
    for v in net.v_mut() {
        *v = v_sigma * normal(&mut r);
    }
    net
}

pub fn shape(arch: Arch, d: usize, m: usize, depth: usize) -> Shape {
    Shape::new(arch, d, m, depth).unwrap()
}

pub fn bits(x: &[f64]) -> Vec<u64> {
    x.iter().map(|v| v.to_bits()).collect()
}
