//! Width sweeps: thread-count independence, sharding, the m^{-1/2} rate.
mod common;

use common::sine_data;
use nff_core::{Activation, Arch, Loss, Regularizer};
use nff_core::{Params, Problem, Shape};
use nff_flow::{
    block, effective_width, merge_shards, reference_network, run_shard, run_sweep, IntegratorSpec,
    Samples, Shard, SweepConfig, SweepInit,
};

fn config(
    widths: Vec<usize>,
    seeds: Vec<u64>,
    reference_width: usize,
    t: f64,
    dt: f64,
) -> SweepConfig {
    SweepConfig {
        arch: Arch::ResNet,
        depth: 2,
        activation: Activation::Tanh,
        loss: Loss::Squared,
        reg: Regularizer::None,
        t_final: t,
        integrator: IntegratorSpec::Euler { dt },
        widths,
        seeds,
        reference_width,
        init: SweepInit::default(),
        samples: Samples::Blocks,
    }
}

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn sweep_does_not_depend_on_the_thread_count_and_shards_merge_exactly() {
    let data = sine_data(6, 2, 1, 1.0, true);
    let cfg = config(vec![4, 8, 16], vec![1, 2, 3], 64, 1.0, 0.1);
    let one = in_pool(1, || run_sweep(&cfg, &data).unwrap());
    let two = in_pool(2, || run_sweep(&cfg, &data).unwrap());
    assert_eq!(one, two);
    assert_eq!(one.jobs.len(), 9);
    assert!(one
        .jobs
        .iter()
        .all(|j| j.yhat_error > 0.0 && j.feature_error > 0.0));
    // Three shards, run in different pools, merged in any order.
    let shards: Vec<_> = (0..3)
        .map(|k| {
            in_pool(1 + k % 2, || {
                run_shard(&cfg, &data, Shard::new(k, 3).unwrap()).unwrap()
            })
        })
        .collect();
    let merged = merge_shards(&[shards[2].clone(), shards[0].clone(), shards[1].clone()]).unwrap();
    assert_eq!(merged, one);
    // Missing or duplicated shards, or other data, do not merge.
    assert!(merge_shards(&shards[..2]).is_err());
    assert!(merge_shards(&[
        shards[0].clone(),
        shards[0].clone(),
        shards[1].clone(),
        shards[2].clone()
    ])
    .is_err());
    let other = run_shard(
        &cfg,
        &sine_data(6, 2, 2, 1.0, true),
        Shard::new(2, 3).unwrap(),
    )
    .unwrap();
    assert!(merge_shards(&[shards[0].clone(), shards[1].clone(), other]).is_err());
    // JSON round trip of a shard report.
    let json = serde_json::to_string(&shards[1]).unwrap();
    assert_eq!(
        serde_json::from_str::<nff_flow::ShardReport>(&json).unwrap(),
        shards[1]
    );
}

/// Every block of a job is an independent width-m network coupled to the reference: its recorded
/// errors are those of integrating that block by hand, the first block is the `first`-only sweep, and
/// each width has seeds × M/m samples.
#[test]
fn blocks_are_the_coupled_sub_networks_of_the_reference() {
    let data = sine_data(6, 2, 3, 1.0, true);
    let cfg = config(vec![4, 8], vec![5, 6], 16, 0.5, 0.1);
    let r = run_sweep(&cfg, &data).unwrap();
    assert_eq!(r.per_width[0].samples, 2 * 4);
    assert_eq!(r.per_width[1].samples, 2 * 2);
    assert_eq!(r.per_width[1].effective_width, effective_width(8, 16));
    assert_eq!(effective_width(8, 16), 16.0);
    let mut first = cfg.clone();
    first.samples = Samples::First;
    let f = run_sweep(&first, &data).unwrap();
    for (jb, jf) in r.jobs.iter().zip(&f.jobs) {
        assert_eq!(jf.yhat_errors.len(), 1);
        assert_eq!(jb.yhat_errors[0], jf.yhat_errors[0]);
        assert_eq!(jb.feature_errors[0], jf.feature_errors[0]);
    }
    // Block 2 of width 4, seed 6, by hand: Euler steps of GD with η = dt on units 8..12.
    let problem = Problem::new(data.clone(), cfg.activation, cfg.loss, cfg.reg).unwrap();
    let shape = Shape::new(cfg.arch, data.d(), 16, cfg.depth).unwrap();
    let integrate_by_gd = |mut net: Params| {
        let mut ws = nff_core::network::Workspace::new(net.shape(), data.n());
        let mut vel = Params::zeros(net.shape());
        for _ in 0..5 {
            problem.gd_step(&mut net, 0.1, &mut ws, &mut vel, faer::Par::Seq);
        }
        problem.forward_into(&net, &mut ws, faer::Par::Seq);
        ws.yhat.clone()
    };
    let reference = reference_network(shape, SweepInit::default(), 6);
    let y_ref = integrate_by_gd(reference.clone());
    let y_blk = integrate_by_gd(block(&reference, 8, 4).unwrap());
    let e: f64 = y_blk
        .iter()
        .zip(&y_ref)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        .sqrt();
    let job = &r.jobs[2]; // seed index 1, width index 0
    assert_eq!((job.seed, job.width), (6, 4));
    assert!(
        (job.yhat_errors[2] - e).abs() <= 1e-12 * e.max(1e-300),
        "{} vs {e}",
        job.yhat_errors[2]
    );
    assert!(block(&reference, 14, 4).is_err());
}

#[test]
fn the_full_width_network_is_the_reference() {
    let data = sine_data(5, 2, 1, 1.0, true);
    let cfg = config(vec![32], vec![4], 32, 1.0, 0.1);
    let r = run_sweep(&cfg, &data).unwrap();
    assert_eq!(r.jobs[0].yhat_error, 0.0);
    assert_eq!(r.jobs[0].feature_error, 0.0);
}

#[test]
fn invalid_sweeps_are_errors() {
    let data = sine_data(5, 2, 1, 1.0, true);
    let ok = config(vec![4, 8], vec![1], 16, 1.0, 0.1);
    assert!(run_sweep(&ok, &data).is_ok());
    let mut c = ok.clone();
    c.widths = vec![];
    assert!(run_sweep(&c, &data).is_err());
    let mut c = ok.clone();
    c.widths = vec![32];
    assert!(run_sweep(&c, &data).is_err());
    let mut c = ok.clone();
    c.seeds = vec![];
    assert!(run_sweep(&c, &data).is_err());
    let mut c = ok.clone();
    c.t_final = f64::NAN;
    assert!(run_sweep(&c, &data).is_err());
    let mut c = ok.clone();
    c.integrator = IntegratorSpec::Euler { dt: -0.1 };
    assert!(run_sweep(&c, &data).is_err());
    let mut c = ok.clone();
    c.integrator = IntegratorSpec::EulerMaruyama {
        dt: 0.1,
        tau: 0.1,
        seed: 0,
    };
    assert!(run_sweep(&c, &data).is_err());
    let mut c = ok.clone();
    c.arch = Arch::TwoLevel;
    assert!(run_sweep(&c, &data).is_err()); // depth 2
    c.depth = 1;
    assert!(run_sweep(&c, &data).is_ok());
    assert!(run_shard(&ok, &data, Shard { index: 3, count: 2 }).is_err());
}

/// Claim C5 at test scale: widths 16..128, 6 seeds × all blocks, reference M = 1024.
#[test]
fn finite_width_error_decays_like_one_over_sqrt_m() {
    let data = sine_data(8, 3, 1, 1.0, true);
    let cfg = config(vec![16, 32, 64, 128], (0..6).collect(), 1024, 2.0, 0.1);
    let t0 = std::time::Instant::now();
    let r = run_sweep(&cfg, &data).unwrap();
    eprintln!(
        "sweep in {:.1}s: {:#?} slopes {:?} {:?} (against m: {:?})",
        t0.elapsed().as_secs_f64(),
        r.per_width,
        r.slope_yhat,
        r.slope_feature,
        r.slope_yhat_raw
    );
    let slope = r.slope_yhat.unwrap();
    assert!(
        (-0.65..=-0.35).contains(&slope),
        "slope of the prediction error {slope}"
    );
    let fslope = r.slope_feature.unwrap();
    assert!(
        (-0.65..=-0.35).contains(&fslope),
        "slope of the feature error {fslope}"
    );
}
