//! # nff-flow
//!
//! The neural feature flow (NFF) of math.md §5 and the machinery to integrate it: vector fields,
//! integrators, one driver with stop rules, observers, recording and checkpoints, noisy GD and
//! width sweeps.
//!
//! ## A guided tour
//!
//! 1. **Vector fields** ([`field`]). Everything integrates a [`VectorField`] $\dot y = f(t, y)$ on a flat
//!    `&[f64]` state.
//!    - [`WeightFlow`]: the state is the network's [`Params`](nff_core::Params) buffer and $f$ the scaled
//!      velocities of math.md §2, $\dot\theta = (-m\partial_AJ, -m^2\partial_WJ, -m\partial_vJ)$ — the finite-width
//!      gradient flow, i.e. the NFF with $m$ sampled labels.
//!    - [`FeatureFlow`]: the Lagrangian NFF, state $(\theta, Z_1, \dots, Z_L)$ with the features integrated
//!      by the chain rule instead of recomputed; its [consistency drift](FeatureFlow::consistency_drift)
//!      measures how far a discretization leaves the invariant consistency constraint (claim C3).
//!    - [`LinearField`]: $\dot y = My$, the conformance-test problem.
//! 2. **Integrators** ([`integrator`]): step-by-step state machines behind one object-safe trait
//!    [`Integrator`] — [`FixedStep`] Euler (with $dt = \eta$ it *is* [`Problem::gd_step`](nff_core::Problem::gd_step),
//!    bit for bit), Heun and RK4; adaptive [`DormandPrince`] 5(4) with FSAL, PI or standard control and
//!    step statistics; [`EulerMaruyama`] for noisy GD. [`IntegratorSpec`] is the serializable choice.
//! 3. **The runner** ([`runner`]): [`Runner::builder`] → stop rules (final time, stationarity of the
//!    scaled velocity, a step limit) → recording ([`Row`]s of $t$, $J$, risk, dissipation $-dJ/dt$,
//!    $\|\mathbf r\|$, $\|H^\top\mathbf r\|$, $\sigma_{\min}(H/\sqrt m)$ and the residual bound of §5, drift), snapshots,
//!    [`Observer`]s and [`Checkpoint`]s → [`Runner::run`] → a [`RunReport`] with a [`TerminationReason`].
//!    Resuming from a checkpoint continues the same trajectory bit for bit.
//! 4. **Noisy GD** ([`langevin`]): [`NoisyGd`] for the two-level network of §4.1, whose stationary law is
//!    the Gibbs law there.
//! 5. **Width sweeps** ([`sweep`]): finite width → NFF at rate $m^{-1/2}$ (claim C5), run in parallel,
//!    independent of the thread count, shardable ([`run_shard`], [`merge_shards`]).
//!
//! ## Example: GD to stationarity, recording the optimality bound
//! ```
//! use nff_core::{Activation, Arch, Dataset, Loss, Params, Problem, Regularizer, Shape};
//! use nff_flow::{FixedStep, ObserverMode, Runner, WeightFlow};
//! let x = faer::mat![[1.0, 0.5], [-0.3, 1.0], [0.2, -1.0]];
//! let data = Dataset::new(x, vec![0.3, -0.2, 0.1]).unwrap();
//! let problem = Problem::new(data, Activation::Tanh, Loss::Squared, Regularizer::None).unwrap();
//! let shape = Shape::new(Arch::ResNet, 2, 16, 2).unwrap();
//! let mut net = Params::zeros(shape); // W = 0, v = 0
//! let mut r = nff_core::rng::rng(1, "init");
//! for j in 0..16 { for i in 0..2 { net.a_mut()[(i, j)] = nff_core::rng::normal(&mut r); } }
//! let field = WeightFlow::new(problem, shape, faer::Par::Seq).unwrap();
//! let y0 = field.initial_state(&net).unwrap();
//! let report = Runner::builder(field, FixedStep::euler(0.5).unwrap())
//!     .initial_state(0.0, y0)
//!     .max_steps(200)
//!     .record(ObserverMode::Every(50))
//!     .build().unwrap()
//!     .run().unwrap();
//! let last = report.trajectory.last().unwrap().diagnostics.as_ref().unwrap();
//! assert!(last.bound.bound_holds);
//! ```
//!
//! ## Conventions
//! Parallelism is explicit: fields take a faer [`Par`](faer::Par) for their GEMMs; sweeps parallelize over
//! jobs with rayon and use `Par::Seq` inside. Bad input never panics: constructors and builders validate
//! and return [`FlowError`]; numerical trouble during a run ends it with a [`TerminationReason`].
//!
//! ## References
//! C. Fang, J. D. Lee, P. Yang, T. Zhang, *Modeling from Features: a Mean-field Framework for
//! Over-parameterized Deep Neural Networks*, COLT 2021 (arXiv:2007.01452);
//! C. Fang, H. Dong, T. Zhang, *Over Parameterized Two-level Neural Networks Can Learn Near Optimal
//! Feature Representations*, arXiv:1910.11508.
#![warn(missing_docs)]

pub mod error;
pub mod feature_flow;
pub mod field;
pub mod integrator;
pub mod langevin;
pub mod runner;
pub mod sweep;
pub mod weight_flow;

pub use error::{FlowError, Result};
pub use feature_flow::{FeatureFlow, FeatureLayout};
pub use field::{Diagnostics, LinearField, ResidualBound, VectorField};
pub use integrator::{
    DormandPrince, DormandPrinceOptions, EulerMaruyama, FixedMethod, FixedStep, Integrator,
    IntegratorCheckpoint, IntegratorSpec, StepControl, StepStats, StepStatus,
};
pub use langevin::NoisyGd;
pub use runner::{
    Checkpoint, Observer, ObserverAction, ObserverMode, Row, RunReport, Runner, RunnerBuilder,
    Snapshot, StepInfo, TerminationReason,
};
pub use sweep::{
    block, data_fingerprint, effective_width, log_log_slope, merge_shards, reference_network,
    run_shard, run_sweep, truncate, JobResult, Samples, Shard, ShardReport, SweepConfig, SweepInit,
    SweepReport, WidthSummary,
};
pub use weight_flow::WeightFlow;
