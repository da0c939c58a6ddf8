//! `nff data`: write a built-in dataset (or convert a data file) to `.npz` and `.csv`.
use crate::common::{pick, CommonArgs, Ctx};
use crate::output::OutputDir;
use crate::setup::{DataOpts, LoadedData};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Options of `nff data`.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    #[command(flatten)]
    /// The data.
    pub data: DataOpts,
    #[command(flatten)]
    /// Shared options.
    pub common: CommonArgs,
}

/// Run `nff data`: writes `data.npz` (`X`, `y`), `data.csv` and `summary.json` into `--out`.
pub fn run(args: &DataArgs) -> Result<()> {
    let cfg = crate::common::read_config_for::<DataArgs>(args.common.config.as_deref())?;
    let ctx = Ctx::new(&args.common, &cfg)?;
    let LoadedData { data, spec, bias } = args.data.load(&cfg, ctx.seed)?;
    let out_path: PathBuf = pick(
        args.common.out.clone(),
        &cfg,
        "out",
        PathBuf::from(crate::defaults::data::OUT),
    )?;
    let out = OutputDir::create(&out_path)?;
    nff_core::io::save_data_npz(out.path("data.npz"), &data)?;
    nff_core::io::save_data_csv(out.path("data.csv"), &data)?;
    let mut summary = ctx.summary_header("data");
    summary["config"] =
        serde_json::json!({"data": spec, "n": data.n(), "d": data.d(), "bias": bias});
    out.write_json("summary.json", &summary)?;
    let line = format!(
        "wrote {} points (d = {}) to {}",
        data.n(),
        data.d(),
        out.target().display()
    );
    out.say_and_commit(args.common.quiet, &line)?;
    Ok(())
}
