//! Fixed-step explicit Runge–Kutta methods: Euler, Heun, RK4.
use super::{
    all_finite, check_dim, check_restore, check_step, fixed_step_size, initial_derivative,
    par_fill, Integrator, IntegratorCheckpoint, StepStats, StepStatus,
};
use crate::error::{positive, Result};
use crate::field::VectorField;

/// Which fixed-step scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FixedMethod {
    /// $y_{n+1} = y_n + h f(t_n, y_n)$.
    Euler,
    /// $k_1 = f(t_n, y_n)$, $k_2 = f(t_n + h, y_n + hk_1)$, $y_{n+1} = y_n + \frac h2(k_1 + k_2)$.
    Heun,
    /// The classical fourth-order Runge–Kutta method.
    Rk4,
}

/// A fixed-step explicit method with step `dt` (the last step is shortened to land on the end time).
///
/// **Euler is gradient descent.** On a [`WeightFlow`](crate::WeightFlow), explicit Euler with `dt` $=\eta$
/// computes $\theta_{n+1,i} = \theta_{n,i} + \eta\,\dot\theta_{n,i}$ entry by entry, the same floating-point
/// operations as `Params::axpy` inside [`Problem::gd_step`](nff_core::Problem::gd_step): the trajectories
/// agree bit for bit.
#[derive(Clone, Debug)]
pub struct FixedStep {
    method: FixedMethod,
    dt: f64,
    f: Vec<f64>,
    k2: Vec<f64>,
    k3: Vec<f64>,
    k4: Vec<f64>,
    tmp: Vec<f64>,
    y_new: Vec<f64>,
    stats: StepStats,
}

impl FixedStep {
    /// A fixed-step integrator; errors unless `dt` is finite and $> 0$.
    pub fn new(method: FixedMethod, dt: f64) -> Result<Self> {
        positive("step size dt", dt)?;
        Ok(Self {
            method,
            dt,
            f: Vec::new(),
            k2: Vec::new(),
            k3: Vec::new(),
            k4: Vec::new(),
            tmp: Vec::new(),
            y_new: Vec::new(),
            stats: StepStats::default(),
        })
    }
    /// Explicit Euler (order 1).
    pub fn euler(dt: f64) -> Result<Self> {
        Self::new(FixedMethod::Euler, dt)
    }
    /// Heun's method (order 2).
    pub fn heun(dt: f64) -> Result<Self> {
        Self::new(FixedMethod::Heun, dt)
    }
    /// Classical RK4 (order 4).
    pub fn rk4(dt: f64) -> Result<Self> {
        Self::new(FixedMethod::Rk4, dt)
    }
    /// The step size.
    pub fn dt(&self) -> f64 {
        self.dt
    }
    /// The scheme.
    pub fn method(&self) -> FixedMethod {
        self.method
    }

    fn eval(&mut self, field: &mut dyn VectorField, t: f64, which: Stage) {
        self.stats.evaluations += 1;
        let (src, dst) = match which {
            Stage::K2FromTmp => (&self.tmp, &mut self.k2),
            Stage::K3FromTmp => (&self.tmp, &mut self.k3),
            Stage::K4FromTmp => (&self.tmp, &mut self.k4),
            Stage::K2FromNew => (&self.y_new, &mut self.k2),
        };
        field.eval(t, src, dst);
    }
}

#[derive(Clone, Copy)]
enum Stage {
    K2FromTmp,
    K3FromTmp,
    K4FromTmp,
    K2FromNew,
}

impl Integrator for FixedStep {
    fn name(&self) -> &'static str {
        match self.method {
            FixedMethod::Euler => "euler",
            FixedMethod::Heun => "heun",
            FixedMethod::Rk4 => "rk4",
        }
    }
    fn order(&self) -> u32 {
        match self.method {
            FixedMethod::Euler => 1,
            FixedMethod::Heun => 2,
            FixedMethod::Rk4 => 4,
        }
    }
    fn init(&mut self, field: &mut dyn VectorField, t: f64, y: &[f64]) -> Result<()> {
        check_dim(field, "initial state", y)?;
        let n = y.len();
        for b in [
            &mut self.f,
            &mut self.k2,
            &mut self.k3,
            &mut self.k4,
            &mut self.tmp,
            &mut self.y_new,
        ] {
            b.clear();
            b.resize(n, 0.0);
        }
        self.stats = StepStats {
            evaluations: 1,
            ..Default::default()
        };
        initial_derivative(field, t, y, &mut self.f)
    }

    fn step(
        &mut self,
        field: &mut dyn VectorField,
        t: &mut f64,
        y: &mut Vec<f64>,
        t_end: f64,
    ) -> Result<StepStatus> {
        check_step(field, y, &self.y_new)?;
        let (h, t_new) = fixed_step_size(self.dt, *t, t_end);
        let t0 = *t;
        let yc: &[f64] = y;
        // y + c k into `out` (a stage state), chunk by chunk.
        let stage = |out: &mut Vec<f64>, c: f64, k: &[f64]| {
            par_fill(out, |o, out| {
                let r = o..o + out.len();
                for ((p, &yi), &ki) in out.iter_mut().zip(&yc[r.clone()]).zip(&k[r]) {
                    *p = yi + c * ki;
                }
            })
        };
        let finite = match self.method {
            FixedMethod::Euler => stage(&mut self.y_new, h, &self.f),
            FixedMethod::Heun => {
                stage(&mut self.tmp, h, &self.f);
                self.eval(field, t0 + h, Stage::K2FromTmp);
                let (h2, k1, k2) = (0.5 * h, &self.f, &self.k2);
                par_fill(&mut self.y_new, |o, out| {
                    let r = o..o + out.len();
                    let ks = k1[r.clone()].iter().zip(&k2[r.clone()]);
                    for ((yn, &yi), (&k1, &k2)) in out.iter_mut().zip(&yc[r]).zip(ks) {
                        *yn = yi + h2 * (k1 + k2);
                    }
                })
            }
            FixedMethod::Rk4 => {
                let h2 = 0.5 * h;
                stage(&mut self.tmp, h2, &self.f);
                self.eval(field, t0 + h2, Stage::K2FromTmp);
                stage(&mut self.tmp, h2, &self.k2);
                self.eval(field, t0 + h2, Stage::K3FromTmp);
                stage(&mut self.tmp, h, &self.k3);
                self.eval(field, t0 + h, Stage::K4FromTmp);
                let h6 = h / 6.0;
                let (k1, k2, k3, k4) = (&self.f, &self.k2, &self.k3, &self.k4);
                par_fill(&mut self.y_new, |o, out| {
                    let r = o..o + out.len();
                    let k12 = k1[r.clone()].iter().zip(&k2[r.clone()]);
                    let k34 = k3[r.clone()].iter().zip(&k4[r.clone()]);
                    for (((yn, &yi), (&a, &b)), (&c, &d)) in
                        out.iter_mut().zip(&yc[r]).zip(k12).zip(k34)
                    {
                        *yn = yi + h6 * (a + 2.0 * b + 2.0 * c + d);
                    }
                })
            }
        };
        if !finite {
            return Ok(StepStatus::NonFinite);
        }
        // f at the new state into k2 (free now), then swap into place.
        self.eval(field, t_new, Stage::K2FromNew);
        if !all_finite(&self.k2) {
            return Ok(StepStatus::NonFinite);
        }
        std::mem::swap(y, &mut self.y_new);
        std::mem::swap(&mut self.f, &mut self.k2);
        *t = t_new;
        self.stats.accepted += 1;
        Ok(StepStatus::Accepted)
    }

    fn derivative(&self) -> &[f64] {
        &self.f
    }
    fn stats(&self) -> StepStats {
        self.stats
    }
    fn checkpoint(&self) -> IntegratorCheckpoint {
        IntegratorCheckpoint {
            method: self.name().into(),
            stats: self.stats,
            ..Default::default()
        }
    }
    fn restore(&mut self, c: &IntegratorCheckpoint) -> Result<()> {
        check_restore(self.name(), c)?;
        self.stats = c.stats;
        Ok(())
    }
}
