//! `nff`: train, integrate, solve and verify feature-space mean-field networks.
//!
//! Every command accepts `--seed`, `--threads`, `--out DIR`, `--config FILE.toml` and `--quiet`, and writes
//! `summary.json` (plus `trajectory.csv` / `state.npz` where they apply) into DIR. Errors are one line on
//! stderr with a non-zero exit status, and leave no partial output directory.
//!
//! The work is done by the library crate `nff_cli` (`src/lib.rs`); this binary only parses arguments.
use clap::{Parser, Subcommand};
use nff_cli::cmd;

/// Feature-space mean-field networks: convex formulation and neural feature flow.
#[derive(Parser, Debug)]
#[command(name = "nff", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Full-batch scaled gradient descent of a two-level net, DNN or ResNet (math.md §2).
    Train(cmd::train::TrainArgs),
    /// Integrate the neural feature flow (math.md §5): Euler (= GD), Heun, RK4, adaptive, noisy GD.
    Flow(cmd::flow::FlowArgs),
    /// Width × seed sweep with coupled labels: finite width → NFF at rate m^(-1/2); sharding and merging.
    Sweep(cmd::sweep::SweepArgs),
    /// Solve a repopulated convex program (two-level or deep) with an optimality certificate.
    Convex(cmd::convex::ConvexArgs),
    /// Write a built-in dataset to .npz and .csv.
    Data(cmd::data::DataArgs),
    /// Run the claims of math.md §6; writes claims.json, report.md, report.html and figures.
    Verify(cmd::verify::VerifyArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Train(a) => cmd::train::run(a),
        Command::Data(a) => cmd::data::run(a),
        Command::Flow(a) => cmd::flow::run(a),
        Command::Convex(a) => cmd::convex::run(a),
        Command::Sweep(a) => cmd::sweep::run(a),
        Command::Verify(a) => cmd::verify::run(a),
    };
    if let Err(e) = result {
        // One line: the chain of causes joined by ': '.
        let msg = e
            .chain()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(": ");
        eprintln!("error: {msg}");
        std::process::exit(1);
    }
}
