//! The solve driver: runs the method of [`DeepOptions`] and evaluates the result independently of it.
use super::*;
use crate::error::{ensure_nonneg, Result, SolverError};
use faer::{Mat, MatRef};
use std::time::Instant;

impl DeepProgram {
    /// Solve from `start` (default: uniform masses, zero weights) and `multipliers` (default: zero) with
    /// the method of `opts` ([`DeepMethod`]). The result is evaluated independently of the method: exact
    /// objective, residuals, the certified lower bound of [`DeepProgram::dual_bound`] and KKT residuals.
    pub fn solve(
        &self,
        opts: &DeepOptions,
        start: Option<&DeepPoint>,
        multipliers: Option<&DeepMultipliers>,
    ) -> Result<DeepSolution> {
        if opts.method != DeepMethod::Auto {
            return self.solve_with(opts, start, multipliers);
        }
        let with = |method| DeepOptions { method, ..*opts };
        if socp::not_applicable(self).is_some() {
            return self.solve_with(&with(DeepMethod::Clarabel), start, multipliers);
        }
        let t0 = Instant::now();
        let so = self.solve_with(&with(DeepMethod::SecondOrderCone), start, multipliers)?;
        if so.relative_gap.is_finite() && so.relative_gap <= AUTO_CERTIFIED {
            return Ok(so);
        }
        let cl = self.solve_with(&with(DeepMethod::Clarabel), start, multipliers);
        let mut best = match cl {
            Ok(cl) if cl.relative_gap.is_finite() && !(cl.relative_gap >= so.relative_gap) => cl,
            _ => so,
        };
        best.seconds = t0.elapsed().as_secs_f64();
        Ok(best)
    }

    /// [`DeepProgram::solve`] with one engine (not [`DeepMethod::Auto`]).
    fn solve_with(
        &self,
        opts: &DeepOptions,
        start: Option<&DeepPoint>,
        multipliers: Option<&DeepMultipliers>,
    ) -> Result<DeepSolution> {
        for (name, v) in [
            ("tol_primal", opts.tol_primal),
            ("tol_dual", opts.tol_dual),
            ("tol_gap", opts.tol_gap),
            ("sigma0", opts.sigma0),
            ("eps0", opts.eps0),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(SolverError::invalid(name, "a finite value > 0", v));
            }
        }
        ensure_nonneg("eps_min", opts.eps_min)?;
        ensure_nonneg("support_tol", opts.support_tol)?;
        let t0 = Instant::now();
        let sizes = self.sizes();
        let depth = sizes.len();
        let n = self.n();
        let mass0 = match start {
            Some(pt) => {
                self.check_point(pt)?;
                self.point_to_mass(pt)
            }
            None => Mass {
                p: sizes.iter().map(|&nl| vec![1.0 / nl as f64; nl]).collect(),
                u: (0..depth - 1)
                    .map(|l| Mat::zeros(sizes[l], sizes[l + 1]))
                    .collect(),
                v: vec![0.0; sizes[depth - 1]],
            },
        };
        let mut mu: Vec<Mat<f64>> = (0..depth - 1)
            .map(|l| Mat::zeros(n, sizes[l + 1]))
            .collect();
        let mut c = vec![0.0; depth];
        if let Some(mm) = multipliers {
            self.check_multipliers(mm)?;
            for (l, m) in mm.mu.iter().enumerate() {
                mu[l] = MatRef::from_column_major_slice(m, n, sizes[l + 1]).to_owned();
            }
            if mm.c.len() == depth {
                c.clone_from(&mm.c);
            }
        }
        let mut ipm_alphas = None;
        let mut ipm_split = None;
        let mut engine_r = None;
        let mut raw: Option<Mass> = None;
        let (m, mu, c, stats) = match opts.method {
            DeepMethod::StructuredBarrier => {
                let out = self.solve_structured_ipm(opts)?;
                ipm_alphas = out.alphas.clone();
                engine_r = Some(out.r.clone());
                let stats = RunStats {
                    outer: out.stages,
                    inner: out.iterations,
                    resets: 0,
                    barrier_gap: Some(out.barrier_gap),
                    termination: out.termination,
                    eps: 0.0,
                };
                (out.mass, out.mu, out.c, stats)
            }
            DeepMethod::InteriorPoint => {
                let out = self.solve_ipm(opts, &mass0, Some((&mu, &c)));
                ipm_alphas = out.alphas.clone();
                ipm_split = Some(out.split.clone());
                let stats = RunStats {
                    outer: out.stages,
                    inner: out.newton,
                    resets: 0,
                    barrier_gap: Some(out.barrier_gap),
                    termination: out.termination,
                    eps: 0.0,
                };
                (out.mass, out.mu, out.c, stats)
            }
            DeepMethod::AugmentedLagrangian => self.solve_al(opts, &mass0, mu, c),
            DeepMethod::Auto => unreachable!("DeepProgram::solve resolves Auto"),
            DeepMethod::Clarabel | DeepMethod::SecondOrderCone => {
                let out = if opts.method == DeepMethod::Clarabel {
                    self.solve_clarabel(opts)?
                } else {
                    self.solve_socp(opts)?
                };
                ipm_alphas = out.alphas;
                engine_r = Some(out.r);
                let stats = RunStats {
                    outer: 1,
                    inner: out.iterations,
                    resets: 0,
                    barrier_gap: Some(out.gap),
                    termination: out.termination,
                    eps: 0.0,
                };
                // A conic engine's point is feasible to its tolerance only: it is made exactly feasible
                // (masses renormalized, columns corrected on their own support) before it is evaluated.
                // The bound is valid for any multipliers; the returned point still informs its α's and
                // its support classification below (`raw`), which is where they are accurate.
                raw = Some(out.mass.clone());
                let mut mass = out.mass;
                for p in mass.p.iter_mut() {
                    let tot: f64 = p.iter().sum();
                    if tot > 0.0 {
                        p.iter_mut().for_each(|x| *x /= tot);
                    }
                }
                super::ipm::correct_on_support(self, &mut mass);
                (mass, out.mu, out.c, stats)
            }
        };
        let lay = Layout::new(&sizes);
        let xc = ipm_split.unwrap_or_else(|| self.pack(&lay, &m));
        let mut g = vec![0.0; lay.len];
        self.al_value_grad(&lay, &xc, &mut g, &mu, &c, 0.0, stats.eps);
        let dual_residual = thresholded_dual_residual(&lay, &xc, &g, opts.support_tol);
        let objective = self.objective_mass(&m, 0.0);
        let (primal_residual, feature_residual) = self.residuals_mass(&m);
        let predictions = self.predict_mass(&m.v);
        let r = self.loss.residual(&predictions, &self.y);
        let mut mult = DeepMultipliers {
            mu: mu
                .iter()
                .map(|mm| {
                    let mut v = Vec::with_capacity(mm.nrows() * mm.ncols());
                    for k in 0..mm.ncols() {
                        for i in 0..mm.nrows() {
                            v.push(mm[(i, k)]);
                        }
                    }
                    v
                })
                .collect(),
            c,
            r,
        };
        // Every candidate below is a valid lower bound (the bound holds for any multipliers; a point
        // only guides the choice of α's and of the support): keep the highest.
        let mut bound = self.dual_bound_mass(&m, &mult, opts.support_tol);
        let guides: Vec<&Mass> = std::iter::once(&m).chain(raw.as_ref()).collect();
        for g in guides {
            let b1 = self.dual_bound_mass(g, &mult, opts.support_tol);
            if b1.value > bound.value {
                bound = b1;
            }
            if let Some(a) = &ipm_alphas {
                let b2 = self.dual_bound_with(g, &mult, opts.support_tol, Some(a));
                if b2.value > bound.value {
                    bound = b2;
                }
            }
            // An engine's own output multiplier r* (Clarabel, the structured barrier) can certify more
            // than the residual at the returned predictions: keep it when it does, with the r it used.
            if let Some(r) = &engine_r {
                let alt = DeepMultipliers {
                    r: r.clone(),
                    ..mult.clone()
                };
                let b3 = self.dual_bound_with(g, &alt, opts.support_tol, ipm_alphas.as_ref());
                if b3.value > bound.value {
                    bound = b3;
                    mult = alt;
                }
            }
        }
        let kkt = self.kkt_mass(&m, &mult, &bound, opts.support_tol, ipm_alphas.as_ref());
        let gap = objective - bound.value;
        Ok(DeepSolution {
            objective,
            dual_bound: bound.value,
            gap,
            relative_gap: gap / objective.abs().max(f64::MIN_POSITIVE),
            barrier_gap: stats.barrier_gap,
            primal_residual,
            feature_residual,
            dual_residual,
            kkt,
            point: self.mass_to_point(&m),
            multipliers: mult,
            predictions,
            method: opts.method,
            outer_iterations: stats.outer,
            inner_iterations: stats.inner,
            lbfgs_resets: stats.resets,
            seconds: t0.elapsed().as_secs_f64(),
            termination: stats.termination,
        })
    }
}
