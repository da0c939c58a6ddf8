//! # nff-core
//!
//! The foundation of nff: everything about a *finite* network and its feature-space view.
//!
//! A guided tour (equations refer to `docs/math.md`, the project's reference formulation):
//! - [`data`]: datasets $(X, y)$, built-in generators (`sine`, `teacher`, `spirals`, `parity`), the real data
//!   sets `breast-cancer` and `diabetes`, `.npz`/`.csv` I/O;
//! - [`split`]: seeded train / validation / test splits, standardization, held-out risk and accuracy;
//! - [`baseline`]: the fixed-feature baselines — random features (output layer only, exact ridge fit) and
//!   the lazy / NTK linearization at initialization;
//! - [`activation`], [`loss`]: $h, h', h''$ and $\phi$ with the residual $r = \partial_1\phi / N$;
//! - [`network`]: two-level nets, DNNs and ResNets in mean-field scaling (§2) — `forward`, `objective`
//!   and `velocities`, the scaled negative gradients $(-m\partial_A J, -m^2\partial_W J, -m\partial_v J)$;
//! - [`regularizer`]: L2 weight decay and the $\ell_{1,q}$ group norms of §4.3;
//! - [`init`]: i.i.d., zero and min-norm (§3.3) initializations;
//! - [`measure`], [`feature`]: empirical measures over $\mathbb R^N$ and the feature-space view (§3.2);
//! - [`io`]: `.npz` (numpy-readable) state and data files, written atomically.
#![warn(missing_docs)]

pub mod activation;
pub mod baseline;
pub mod data;
pub mod error;
pub mod feature;
pub mod init;
pub mod io;
pub mod loss;
pub mod measure;
pub mod network;
pub mod regularizer;
pub mod rng;
pub mod split;

pub use activation::Activation;
pub use data::Dataset;
pub use error::{CoreError, Result};
pub use loss::Loss;
pub use network::{Arch, Network, Params, ParamsRef, Problem, Shape};
pub use regularizer::Regularizer;
