//! # nff — feature-space mean-field networks
//!
//! Facade crate re-exporting the workspace:
//! - [`core`]: data, activations, losses, measures, finite-width networks, feature-space view, .npz I/O;
//! - [`solvers`]: the repopulated convex programs and their certificates;
//! - [`flow`]: the neural feature flow, integrators and runners.
#![warn(missing_docs)]

pub use nff_core as core;
pub use nff_flow as flow;
pub use nff_solvers as solvers;
