//! `nff`: train, integrate, solve and verify feature-space mean-field networks.
//!
//! Every command accepts `--seed`, `--threads`, `--out DIR`, `--config FILE.toml` and `--quiet`, and writes
//! `summary.json` (plus `trajectory.csv` / `state.npz` where they apply) into DIR. Errors are one line on
//! stderr with a non-zero exit status, and leave no partial output directory.
//!
//! The work is done by the library crate `nff_cli` (`src/lib.rs`); this binary only parses arguments.
use clap::{Parser, Subcommand};
use nff_cli::{cmd, common, signals};

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

/// The exit statuses of `nff` (docs/cli.md).
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// An error: bad input, a failed read or write; one line on stderr, nothing left behind.
    pub const ERROR: i32 = 1;
    /// The run finished and wrote its outputs, but the result is not a success: non-finite, not
    /// converged, or the requested time / tolerance was not reached (`termination` in summary.json).
    pub const NOT_CONVERGED: i32 = 3;
    /// An internal error (a bug): reported as one line, outputs removed.
    pub const INTERNAL: i32 = 70;
}

/// The parser, with negative numbers accepted as option values (`--eta -0.1` reaches the range check)
/// and every option's default shown in `--help` (`[default: …]`, from the constants the commands use:
/// `nff_cli::defaults`).
fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command().mut_subcommands(|s| {
        let name = s.get_name().to_string();
        s.mut_args(|a| {
            if !a.get_action().takes_values() {
                return a;
            }
            let a = a.allow_negative_numbers(true);
            match (a.get_long(), a.get_help()) {
                (Some(long), Some(help)) => {
                    let text = nff_cli::defaults::annotate(&name, long, &help.to_string());
                    a.help(text)
                }
                _ => a,
            }
        })
    })
}

/// A clap error as one line: clap's first line, its tips, and what was expected.
fn clap_one_line(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let rendered = e.render().to_string();
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error:")
        .trim()
        .to_string();
    let mut msg = first;
    if let Some(ContextValue::Strings(valid)) = e.get(ContextKind::ValidValue) {
        msg += &format!(": expected one of {}", valid.join(", "));
    } else if let Some(ContextValue::Strings(valid)) = e.get(ContextKind::ValidSubcommand) {
        msg += &format!(": expected one of {}", valid.join(", "));
    }
    for tip in lines.filter(|l| l.starts_with("tip:")) {
        msg += &format!(" ({})", tip.trim_start_matches("tip:").trim());
    }
    match e.kind() {
        ErrorKind::UnknownArgument => msg += "; expected an option listed by --help",
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            msg = "no command given: expected one of train, flow, sweep, convex, data, verify (see nff --help)".into()
        }
        _ => {}
    }
    msg
}

fn main() {
    std::process::exit(real_main());
}

fn real_main() -> i32 {
    use clap::FromArgMatches;
    let parsed = command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    if e.print().is_err() {
                        common::say_err("error: cannot write to stdout");
                        return exit::ERROR;
                    }
                    exit::OK
                }
                _ => {
                    common::say_err(&format!("error: {}", clap_one_line(&e)));
                    exit::ERROR
                }
            };
        }
    };
    // A panic is a bug: report it as one line (the unwinding removes partial outputs) and exit 70.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        common::say_err(&format!(
            "error: internal error (a bug, please report it): {}{at}",
            what.replace('\n', " ")
        ));
    }));
    signals::install();
    let result = std::panic::catch_unwind(|| match &cli.command {
        Command::Train(a) => cmd::train::run(a),
        Command::Data(a) => cmd::data::run(a),
        Command::Flow(a) => cmd::flow::run(a),
        Command::Convex(a) => cmd::convex::run(a),
        Command::Sweep(a) => cmd::sweep::run(a),
        Command::Verify(a) => cmd::verify::run(a),
    });
    match result {
        Err(_) => exit::INTERNAL,
        Ok(Ok(())) => exit::OK,
        Ok(Err(e)) => {
            if let Some(nc) = e.downcast_ref::<common::NotConverged>() {
                common::say_err(&format!("error: {nc}"));
                return exit::NOT_CONVERGED;
            }
            common::say_err(&format!("error: {}", common::one_line(&e)));
            exit::ERROR
        }
    }
}
