//! Adaptive Dormand–Prince 5(4) with FSAL and standard or PI step-size control.
use super::{
    all_finite, check_dim, check_restore, check_step, initial_derivative, Integrator,
    IntegratorCheckpoint, StepStats, StepStatus,
};
use crate::error::{positive, FlowError, Result};
use crate::field::VectorField;

/// Step-size control of [`DormandPrince`] (error norm `err`, order $q = 4$ of the embedded estimate,
/// safety factor $0.9$, growth limited to $[0.2, 10]$, no growth right after a rejection).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepControl {
    /// $h_{\rm new} = h\cdot 0.9\,\mathrm{err}^{-1/5}$.
    Standard,
    /// The PI controller of Hairer–Wanner's DOPRI5,
    /// $h_{\rm new} = h\cdot 0.9\,\mathrm{err}_n^{-(1/5 - 0.75\beta)}\,\mathrm{err}_{n-1}^{\beta}$ with $\beta = 0.04$:
    /// smoother step sequences on mildly stiff problems.
    #[default]
    Pi,
}

/// Settings of [`DormandPrince`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DormandPrinceOptions {
    /// Relative tolerance, $> 0$.
    pub rtol: f64,
    /// Absolute tolerance, $\ge 0$ (and $> 0$ if any component can vanish).
    pub atol: f64,
    /// The step-size controller.
    #[serde(default)]
    pub control: StepControl,
    /// Initial step size; `None` chooses it automatically (Hairer–Wanner's starting-step algorithm).
    #[serde(default)]
    pub h0: Option<f64>,
    /// Largest step size; `None` for no limit.
    #[serde(default)]
    pub h_max: Option<f64>,
}

impl Default for DormandPrinceOptions {
    fn default() -> Self {
        Self {
            rtol: 1e-6,
            atol: 1e-9,
            control: StepControl::Pi,
            h0: None,
            h_max: None,
        }
    }
}

impl DormandPrinceOptions {
    /// Tolerances with the other settings at their defaults.
    pub fn with_tolerances(rtol: f64, atol: f64) -> Self {
        Self {
            rtol,
            atol,
            ..Self::default()
        }
    }
    /// Reject NaN, $\mathrm{rtol} \le 0$, $\mathrm{atol} < 0$, non-positive step sizes.
    pub fn check(&self) -> Result<()> {
        positive("relative tolerance rtol", self.rtol)?;
        if !(self.atol.is_finite() && self.atol >= 0.0) {
            return Err(FlowError::invalid(
                "absolute tolerance atol",
                "a finite value >= 0",
                self.atol,
            ));
        }
        if let Some(h) = self.h0 {
            positive("initial step h0", h)?;
        }
        if let Some(h) = self.h_max {
            if h.is_nan() || h <= 0.0 {
                return Err(FlowError::invalid("maximal step h_max", "a value > 0", h));
            }
        }
        Ok(())
    }
}

// Dormand–Prince 5(4) tableau (Hairer, Nørsett & Wanner, Table II.5.2).
const C2: f64 = 1.0 / 5.0;
const C3: f64 = 3.0 / 10.0;
const C4: f64 = 4.0 / 5.0;
const C5: f64 = 8.0 / 9.0;
const A21: f64 = 1.0 / 5.0;
const A31: f64 = 3.0 / 40.0;
const A32: f64 = 9.0 / 40.0;
const A41: f64 = 44.0 / 45.0;
const A42: f64 = -56.0 / 15.0;
const A43: f64 = 32.0 / 9.0;
const A51: f64 = 19372.0 / 6561.0;
const A52: f64 = -25360.0 / 2187.0;
const A53: f64 = 64448.0 / 6561.0;
const A54: f64 = -212.0 / 729.0;
const A61: f64 = 9017.0 / 3168.0;
const A62: f64 = -355.0 / 33.0;
const A63: f64 = 46732.0 / 5247.0;
const A64: f64 = 49.0 / 176.0;
const A65: f64 = -5103.0 / 18656.0;
const B1: f64 = 35.0 / 384.0;
const B3: f64 = 500.0 / 1113.0;
const B4: f64 = 125.0 / 192.0;
const B5: f64 = -2187.0 / 6784.0;
const B6: f64 = 11.0 / 84.0;
// Error coefficients b - b̂.
const E1: f64 = 71.0 / 57600.0;
const E3: f64 = -71.0 / 16695.0;
const E4: f64 = 71.0 / 1920.0;
const E5: f64 = -17253.0 / 339200.0;
const E6: f64 = 22.0 / 525.0;
const E7: f64 = -1.0 / 40.0;

const SAFETY: f64 = 0.9;
const FAC_MIN: f64 = 0.2;
const FAC_MAX: f64 = 10.0;
const BETA: f64 = 0.04;
const MAX_REJECTIONS: u32 = 200;

/// The explicit Dormand–Prince 5(4) pair with local extrapolation (the 5th-order solution is kept),
/// FSAL (the last stage is $f$ at the new state and the first stage of the next step), and an error norm
/// $$\mathrm{err} = \Big(\frac1n\sum_i\Big(\frac{\hat e_i}{\mathrm{atol} + \mathrm{rtol}\,\max(|y_i|, |y^{\rm new}_i|)}\Big)^2\Big)^{1/2},$$
/// accepting a step when $\mathrm{err} \le 1$.
///
/// ## References
/// J. R. Dormand, P. J. Prince, *A family of embedded Runge–Kutta formulae*, J. Comput. Appl. Math. 6 (1980) 19–26;
/// E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary Differential Equations I*, 2nd ed., Springer 1993, §II.4–II.5.
#[derive(Clone, Debug)]
pub struct DormandPrince {
    opts: DormandPrinceOptions,
    h: Option<f64>,
    err_prev: f64,
    last_rejected: bool,
    k: [Vec<f64>; 7],
    tmp: Vec<f64>,
    y_new: Vec<f64>,
    stats: StepStats,
}

impl DormandPrince {
    /// A validated integrator (see [`DormandPrinceOptions::check`]).
    pub fn new(opts: DormandPrinceOptions) -> Result<Self> {
        opts.check()?;
        Ok(Self {
            opts,
            h: opts.h0,
            err_prev: 1e-4,
            last_rejected: false,
            k: Default::default(),
            tmp: Vec::new(),
            y_new: Vec::new(),
            stats: StepStats::default(),
        })
    }
    /// The settings.
    pub fn options(&self) -> DormandPrinceOptions {
        self.opts
    }
    /// The next step size to try (`None` before the automatic choice).
    pub fn next_step_size(&self) -> Option<f64> {
        self.h
    }

    fn weighted_rms(&self, num: impl Iterator<Item = f64>, y: &[f64]) -> f64 {
        let (rtol, atol) = (self.opts.rtol, self.opts.atol);
        let n = y.len().max(1) as f64;
        let s: f64 = num
            .zip(y)
            .map(|(e, &yi)| {
                let sc = atol + rtol * yi.abs();
                (e / sc) * (e / sc)
            })
            .sum();
        (s / n).sqrt()
    }

    /// Hairer–Wanner's starting step: $h = \min(100 h_0, (0.01/\max(d_1, d_2))^{1/5})$ with
    /// $h_0 = 0.01\,d_0/d_1$ from the scaled norms of $y_0$, $f_0$ and a difference quotient of $f$.
    fn initial_step(&mut self, field: &mut dyn VectorField, t: f64, y: &[f64]) -> f64 {
        let h_max = self.opts.h_max.unwrap_or(f64::INFINITY);
        let d0 = self.weighted_rms(y.iter().copied(), y);
        let d1 = self.weighted_rms(self.k[0].iter().copied(), y);
        let mut h0 = if d0 < 1e-10 || d1 < 1e-10 {
            1e-6
        } else {
            0.01 * d0 / d1
        };
        h0 = h0.min(h_max);
        for ((p, &yi), &fi) in self.tmp.iter_mut().zip(y).zip(&self.k[0]) {
            *p = yi + h0 * fi;
        }
        self.stats.evaluations += 1;
        let (k0, rest) = self.k.split_at_mut(1);
        field.eval(t + h0, &self.tmp, &mut rest[0]);
        let diff: Vec<f64> = rest[0].iter().zip(&k0[0]).map(|(a, b)| a - b).collect();
        let d2 = self.weighted_rms(diff.into_iter(), y) / h0;
        let dmax = d1.max(d2);
        let h1 = if !dmax.is_finite() {
            h0 * 1e-3
        } else if dmax <= 1e-15 {
            (h0 * 1e-3).max(1e-6)
        } else {
            (0.01 / dmax).powf(0.2)
        };
        (100.0 * h0).min(h1).min(h_max)
    }

    fn stage(&mut self, field: &mut dyn VectorField, t: f64, y: &[f64], h: f64, s: usize) {
        let (done, rest) = self.k.split_at_mut(s);
        let k = |j: usize| &done[j];
        match s {
            1 => axpys(&mut self.tmp, y, h, &[(A21, k(0))]),
            2 => axpys(&mut self.tmp, y, h, &[(A31, k(0)), (A32, k(1))]),
            3 => axpys(
                &mut self.tmp,
                y,
                h,
                &[(A41, k(0)), (A42, k(1)), (A43, k(2))],
            ),
            4 => axpys(
                &mut self.tmp,
                y,
                h,
                &[(A51, k(0)), (A52, k(1)), (A53, k(2)), (A54, k(3))],
            ),
            5 => axpys(
                &mut self.tmp,
                y,
                h,
                &[
                    (A61, k(0)),
                    (A62, k(1)),
                    (A63, k(2)),
                    (A64, k(3)),
                    (A65, k(4)),
                ],
            ),
            _ => unreachable!("Dormand–Prince has stages 1..=5 here"),
        }
        let c = [0.0, C2, C3, C4, C5, 1.0][s];
        self.stats.evaluations += 1;
        field.eval(t + c * h, &self.tmp, &mut rest[0]);
    }
}

/// `out = y + h * Σ_j a_j k_j`.
fn axpys(out: &mut [f64], y: &[f64], h: f64, terms: &[(f64, &Vec<f64>)]) {
    for (i, o) in out.iter_mut().enumerate() {
        let mut acc = 0.0;
        for (a, k) in terms {
            acc += a * k[i];
        }
        *o = y[i] + h * acc;
    }
}

impl Integrator for DormandPrince {
    fn name(&self) -> &'static str {
        "dopri5"
    }
    fn order(&self) -> u32 {
        5
    }
    fn init(&mut self, field: &mut dyn VectorField, t: f64, y: &[f64]) -> Result<()> {
        check_dim(field, "initial state", y)?;
        let n = y.len();
        for b in self.k.iter_mut().chain([&mut self.tmp, &mut self.y_new]) {
            b.clear();
            b.resize(n, 0.0);
        }
        self.h = self.opts.h0;
        self.err_prev = 1e-4;
        self.last_rejected = false;
        self.stats = StepStats {
            evaluations: 1,
            ..Default::default()
        };
        initial_derivative(field, t, y, &mut self.k[0])
    }

    fn step(
        &mut self,
        field: &mut dyn VectorField,
        t: &mut f64,
        y: &mut Vec<f64>,
        t_end: f64,
    ) -> Result<StepStatus> {
        check_step(field, y, &self.y_new)?;
        let t0 = *t;
        let h_max = self.opts.h_max.unwrap_or(f64::INFINITY);
        let mut h = match self.h {
            Some(h) => h,
            None => self.initial_step(field, t0, y),
        };
        let mut rejections = 0;
        let mut last_nonfinite = false;
        loop {
            h = h.min(h_max);
            let remaining = t_end - t0;
            let lands = h >= remaining * (1.0 - 1e-12);
            let h_try = if lands { remaining } else { h };
            let h_min = 16.0 * f64::EPSILON * t0.abs().max(1.0);
            if h_try.is_nan() || h_try <= h_min || rejections >= MAX_REJECTIONS {
                self.h = Some(h);
                return Ok(if last_nonfinite {
                    StepStatus::NonFinite
                } else {
                    StepStatus::StepSizeUnderflow { h: h_try }
                });
            }
            for s in 1..6 {
                self.stage(field, t0, y, h_try, s);
            }
            axpys(
                &mut self.y_new,
                y,
                h_try,
                &[
                    (B1, &self.k[0]),
                    (B3, &self.k[2]),
                    (B4, &self.k[3]),
                    (B5, &self.k[4]),
                    (B6, &self.k[5]),
                ],
            );
            let t_new = if lands { t_end } else { t0 + h_try };
            self.stats.evaluations += 1;
            field.eval(t_new, &self.y_new, &mut self.k[6]);
            let err = {
                let (rtol, atol) = (self.opts.rtol, self.opts.atol);
                let k = &self.k;
                let mut s = 0.0;
                for i in 0..y.len() {
                    let e = h_try
                        * (E1 * k[0][i]
                            + E3 * k[2][i]
                            + E4 * k[3][i]
                            + E5 * k[4][i]
                            + E6 * k[5][i]
                            + E7 * k[6][i]);
                    let sc = atol + rtol * y[i].abs().max(self.y_new[i].abs());
                    s += (e / sc) * (e / sc);
                }
                (s / y.len().max(1) as f64).sqrt()
            };
            let finite = err.is_finite() && all_finite(&self.y_new) && all_finite(&self.k[6]);
            if finite && err <= 1.0 {
                // Accept.
                let h_next = match self.opts.control {
                    StepControl::Standard => {
                        let fac_max = if self.last_rejected { 1.0 } else { FAC_MAX };
                        h_try * (SAFETY * err.powf(-0.2)).clamp(FAC_MIN, fac_max)
                    }
                    StepControl::Pi => {
                        let fac11 = err.powf(0.2 - 0.75 * BETA);
                        let fac = (fac11 / self.err_prev.powf(BETA) / SAFETY)
                            .clamp(1.0 / FAC_MAX, 1.0 / FAC_MIN);
                        let hn = h_try / fac;
                        if self.last_rejected {
                            hn.min(h_try)
                        } else {
                            hn
                        }
                    }
                };
                self.err_prev = err.max(1e-4);
                self.last_rejected = false;
                // If the step was shortened to land on t_end, keep the controller's proposal for h.
                self.h = Some(if lands && h_try < h {
                    h.max(h_next)
                } else {
                    h_next
                });
                std::mem::swap(y, &mut self.y_new);
                self.k.swap(0, 6);
                *t = t_new;
                self.stats.accepted += 1;
                return Ok(StepStatus::Accepted);
            }
            // Reject.
            self.stats.rejected += 1;
            rejections += 1;
            self.last_rejected = true;
            last_nonfinite = !finite;
            h = if finite {
                h_try * (SAFETY * err.powf(-0.2)).clamp(FAC_MIN, 1.0)
            } else {
                h_try * FAC_MIN
            };
        }
    }

    fn derivative(&self) -> &[f64] {
        &self.k[0]
    }
    fn stats(&self) -> StepStats {
        self.stats
    }
    fn checkpoint(&self) -> IntegratorCheckpoint {
        IntegratorCheckpoint {
            method: self.name().into(),
            stats: self.stats,
            h: self.h,
            err_prev: Some(self.err_prev),
            last_rejected: self.last_rejected,
            rng_word_pos: None,
            seed: None,
        }
    }
    fn restore(&mut self, c: &IntegratorCheckpoint) -> Result<()> {
        check_restore(self.name(), c)?;
        if let Some(h) = c.h {
            positive("checkpointed step size", h)
                .map_err(|e| FlowError::Checkpoint(e.to_string()))?;
        }
        self.stats = c.stats;
        self.h = c.h;
        self.err_prev = c.err_prev.unwrap_or(1e-4);
        self.last_rejected = c.last_rejected;
        Ok(())
    }
}
