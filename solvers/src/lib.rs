//! # nff-solvers
//!
//! The repopulated convex programs of math.md §4 on finite candidate sets, solved to certified accuracy,
//! and the optimality checks that connect them to trained finite networks.
//!
//! A guided tour (equations and claim ids refer to `docs/math.md`):
//! - [`two_level`]: the two-level program of §4.1 in the variables $(w = \rho_0\tilde u, \rho)$. Its **Fenchel dual**
//!   $D(\mathbf p) = -F^*(\mathbf p) - g^*(H^\top\mathbf p)$ lives in $\mathbb R^N$ and is solved by Newton's method ($\tau>0$) or a
//!   primal–dual interior-point method ($\tau = 0$); the primal is recovered from the dual and every solve
//!   reports the duality gap $P - D\ge0$ (relative gaps ~1e-12 in the tests), KKT residuals and the §4.1
//!   diagnostics (L2→L1 identity, importance law, balance — C9, C23). Objectives in repopulated and
//!   original variables for the convexity tests of C8.
//! - [`certificate`]: the certificate $s^2/2\lambda_1\le\lambda_2r_\theta + c$ (equality on the support) of trained
//!   two-level networks, with the finite-width scalings written out (C10, C24).
//! - [`deep`]: the deep program of §4.2–4.4 with the discretization written out, the bijection with finite
//!   networks (C15: objectives agree to machine precision), a **certified Lagrangian lower bound** from any
//!   multipliers, KKT residuals, and the solvers (default: the conic form solved by Clarabel; also a dense
//!   lifted interior point, an experimental structured barrier method;
//!   optional: an augmented Lagrangian with projected L-BFGS). C16: its optimum lower-bounds GD.
//! - [`kkt`]: the KKT conditions of §4.4 at a gradient-descent stationary point, with the backward features
//!   $G_\ell$ as multipliers (C17).
//! - [`convexity`]: the integrands of §4.3 and midpoint tests (C14).
//! - helpers: [`candidates`] (grids and Gaussian samples of $\theta$, reference weights), [`conjugate`]
//!   (loss conjugates), [`lbfgs`] (projected L-BFGS; argmin's `Vec<f64>` backend needs `argmin-math/vec`,
//!   which is not a workspace dependency), [`linalg`] (scaled Cholesky solves).
//!
//! ```no_run
//! use nff_core::{Activation, Dataset, Loss};
//! use nff_solvers::{candidates, TwoLevelConfig, TwoLevelOptions, TwoLevelProgram};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let x = faer::Mat::from_fn(6, 2, |i, c| if c == 1 { 1.0 } else { i as f64 / 3.0 - 1.0 });
//! let data = Dataset::new(x, vec![0.1, 0.5, 0.9, 0.7, 0.2, -0.3])?;
//! let theta = candidates::grid(2, 15, 3.0)?; // θ = (slope, bias) on a 15 × 15 grid
//! let rho0 = candidates::gaussian_weights(&theta, 2.0);
//! let cfg = TwoLevelConfig { lambda1: 0.05, lambda2: 0.01, tau: 0.0 };
//! let prog = TwoLevelProgram::new(&data, Activation::Tanh, Loss::Squared, theta.as_ref(), &rho0, cfg)?;
//! let sol = prog.solve(&TwoLevelOptions::default())?;
//! assert!(sol.relative_gap <= 1e-8);
//! # Ok(()) }
//! ```
//!
//! ## References
//! - C. Fang, Y. Gu, W. Zhang, T. Zhang, *Convex Formulation of Overparameterized Deep Neural Networks*,
//!   IEEE Trans. Inf. Theory 68(8):5340–5352, 2022.
//! - C. Fang, H. Dong, T. Zhang, *Over Parameterized Two-level Neural Networks Can Learn Near Optimal
//!   Feature Representations*, arXiv:1910.11508.
//! - S. Boyd, L. Vandenberghe, *Convex Optimization*, 2004 (§10.3 infeasible-start Newton, §11 barrier methods).
#![warn(missing_docs)]
// Dense numerical kernels index several arrays with one loop variable; iterator chains would obscure them.
#![allow(clippy::needless_range_loop)]
// `!(x > 0.0)` is deliberate: it also rejects NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod candidates;
pub mod certificate;
pub mod conjugate;
pub mod convexity;
pub mod deep;

pub mod error;
pub mod kkt;
pub mod lbfgs;
pub mod linalg;
#[cfg(test)]
mod testutil;
pub mod two_level;

pub use certificate::{
    measure_certificate, two_level_certificate, CertificateReport, OutputPenalty,
};
pub use deep::{
    DeepCandidates, DeepConfig, DeepKkt, DeepMethod, DeepMultipliers, DeepOptions, DeepPoint,
    DeepProgram, DeepSolution, DualBound, MappedNetwork,
};
pub use error::{Result, SolverError};
pub use kkt::{gd_kkt, GdKktReport};
pub use lbfgs::{LbfgsOptions, LbfgsReport, Termination};
pub use two_level::{
    minimize_over_simplex, IpmCertificate, IpmStep, TwoLevelConfig, TwoLevelDiagnostics,
    TwoLevelIpm, TwoLevelKkt, TwoLevelOptions, TwoLevelProgram, TwoLevelSolution,
};
