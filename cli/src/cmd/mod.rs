//! One module per `nff` command.
pub mod convex;
pub mod data;
pub mod flow;
pub mod sweep;
pub mod train;
pub mod train_exact;
pub mod verify;
