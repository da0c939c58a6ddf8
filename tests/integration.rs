//! Integration tests of the facade crate `nff`: the three libraries used together, as a user would.
use nff::core::data::BuiltinDataset;
use nff::core::feature::FeatureNet;
use nff::core::init::{init_network, Init};
use nff::core::{Activation, Arch, Dataset, Loss, Problem, Regularizer, Shape};
use nff::flow::{FixedStep, ObserverMode, Runner, TerminationReason, WeightFlow};

/// Train a ResNet from the zero start by RK4 to stationarity, save and reload the state, and check the
/// global-optimality mechanism of math.md §5 on the reloaded network: the risk is ~0 and σ_min(H/√m)
/// stays away from 0.
#[test]
fn resnet_flow_to_stationarity_survives_a_state_round_trip() {
    let data = Dataset::builtin(BuiltinDataset::Sine, 8, 3, 11).unwrap();
    let shape = Shape::new(Arch::ResNet, 3, 128, 2).unwrap();
    let (net, _) = init_network(shape, &data, Activation::Tanh, &Init::zero(), 11).unwrap();
    let problem = Problem::new(
        data.clone(),
        Activation::Tanh,
        Loss::Squared,
        Regularizer::None,
    )
    .unwrap();
    let field = WeightFlow::new(problem.clone(), shape, faer::Par::Seq).unwrap();
    let y0 = field.initial_state(&net).unwrap();
    let mut runner = Runner::builder(field, FixedStep::rk4(0.5).unwrap())
        .initial_state(0.0, y0)
        .stationary(1e-22)
        .max_steps(20_000)
        .record(ObserverMode::Every(200))
        .build()
        .unwrap();
    let report = runner.run().unwrap();
    assert_eq!(report.termination, TerminationReason::Stationary);
    let trained = runner.field().network(&report.state).unwrap();
    for row in &report.trajectory {
        let d = row.diagnostics.as_ref().unwrap();
        assert!(
            d.bound.bound_holds,
            "residual bound violated at t = {}",
            row.t
        );
        assert!(
            d.bound.sigma_min > 1e-3,
            "sigma_min collapsed: {}",
            d.bound.sigma_min
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.npz");
    nff::core::io::save_state(&path, &data, &trained).unwrap();
    let (data2, net2) = nff::core::io::load_state(&path).unwrap();
    assert_eq!(net2.as_slice(), trained.as_slice());
    let problem2 = Problem::new(data2, Activation::Tanh, Loss::Squared, Regularizer::None).unwrap();
    assert!(
        problem2.risk(&net2) < 1e-18,
        "risk {}",
        problem2.risk(&net2)
    );
    let fnet = FeatureNet::from_problem(&problem2, &net2).unwrap();
    let deg = fnet.degeneracy(Activation::Tanh).unwrap();
    assert!(deg.sigma_min() > 1e-3);
    assert_eq!(deg.numerical_rank(1e-8), 8);
}

/// The feature-space view of a min-norm DNN converts back to the same network and predictions.
#[test]
fn feature_view_round_trip_through_the_facade() {
    let data = Dataset::builtin(BuiltinDataset::Teacher, 10, 4, 2).unwrap();
    let shape = Shape::new(Arch::Dnn, 4, 48, 3).unwrap();
    let (net, report) =
        init_network(shape, &data, Activation::Sigmoid, &Init::min_norm(), 2).unwrap();
    assert!(report.max_consistency_residual() < 1e-10);
    let fnet = FeatureNet::from_network(&data, Activation::Sigmoid, &net).unwrap();
    let back = fnet.to_network(&data).unwrap();
    let problem =
        Problem::new(data, Activation::Sigmoid, Loss::Squared, Regularizer::None).unwrap();
    let (p1, p2) = (problem.predict(&net), problem.predict(&back));
    for (a, b) in p1.iter().zip(&p2) {
        assert!((a - b).abs() < 1e-12);
    }
    let pf = fnet.predict(Activation::Sigmoid);
    for (a, b) in p1.iter().zip(&pf) {
        assert!((a - b).abs() < 1e-12);
    }
}
