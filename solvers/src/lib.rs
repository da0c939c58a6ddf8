//! # nff-solvers
//!
//! The repopulated convex programs of math.md §4 and their optimality certificates.
#![warn(missing_docs)]

pub mod candidates;
pub mod certificate;
pub mod conjugate;
pub mod convexity;
pub mod deep;
pub mod deep_ipm;
pub mod error;
pub mod kkt;
pub mod lbfgs;
pub mod linalg;
#[cfg(test)]
mod testutil;
pub mod two_level;

pub use error::{Result, SolverError};
pub use lbfgs::{LbfgsOptions, LbfgsReport, Termination};
pub use two_level::{
    minimize_over_simplex, TwoLevelConfig, TwoLevelDiagnostics, TwoLevelKkt, TwoLevelOptions,
    TwoLevelProgram, TwoLevelSolution,
};
