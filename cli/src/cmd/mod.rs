//! One module per `nff` command.
pub mod data;
pub mod train;
pub mod verify;
