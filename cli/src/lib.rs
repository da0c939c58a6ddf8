//! The library behind the `nff` command-line tool: the commands, and the claims of math.md §6 as
//! functions a Rust program can call without the binary.
//!
//! The binary (`src/main.rs`) only parses arguments and calls [`cmd`]. To run a claim yourself:
//!
//! ```no_run
//! use nff_cli::verify::{find, run_claim, Size, VerifyConfig};
//! let claim = find("C21").unwrap();
//! let ctx = VerifyConfig { seed: 0, seeds: 5, size: Size::Quick, par: faer::Par::Seq };
//! let (result, _figure) = run_claim(&claim, &ctx);
//! assert!(result.passed);
//! ```
//!
//! The facade crate `nff` does not re-export this crate: `nff-cli` depends on clap and plotters, which a
//! library user of the facade should not pay for, and `nff-cli`'s tests depend on `nff`, so a re-export
//! would make the two crates depend on each other. Depend on `nff-cli` directly to run claims.
pub mod cmd;
pub mod common;
pub mod defaults;
pub mod heldout;
pub mod output;
pub mod plot;
pub mod setup;
pub mod shards;
pub mod signals;
pub mod slurm;
pub mod verify;
