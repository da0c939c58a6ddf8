//! The bijection between width-$m$ networks and points of the program (math.md §4.3, C15).
use super::*;
use crate::error::{Result, SolverError};
use faer::{Mat, MatRef};
use nff_core::{Arch, Network};

impl DeepProgram {
    /// The point of a width-$m$ network whose particles are the first $m$ candidates of every layer
    /// (as built by [`DeepCandidates::from_network`]): $\rho_\ell(j) = 1/(m\pi_\ell(j))$ on particles, 0 elsewhere,
    /// $\tilde u_{\ell+1}(j,k) = W_\ell\[j,k\]\rho_\ell(j)\rho_{\ell+1}(k)$, $\tilde u_{L+1}(j) = v_j\rho_L(j)$.
    pub fn point_from_network(&self, net: &Network) -> Result<DeepPoint> {
        let s = net.shape();
        if s.depth != self.depth() || self.cand.n_particles.iter().any(|&p| p != s.m) {
            return Err(SolverError::shape(
                "network vs candidates",
                format!(
                    "depth {} with {:?} particles per layer",
                    self.depth(),
                    self.cand.n_particles
                ),
                format!("depth {} and width {}", s.depth, s.m),
            ));
        }
        let m = s.m;
        let sizes = self.sizes();
        let mut mass = Mass {
            p: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            u: (0..sizes.len() - 1)
                .map(|l| Mat::zeros(sizes[l], sizes[l + 1]))
                .collect(),
            v: vec![0.0; sizes[sizes.len() - 1]],
        };
        let inv = 1.0 / m as f64;
        for p in mass.p.iter_mut() {
            for x in p.iter_mut().take(m) {
                *x = inv;
            }
        }
        for l in 0..sizes.len() - 1 {
            let w = net.w(l);
            for k in 0..m {
                for j in 0..m {
                    mass.u[l][(j, k)] = w[(j, k)] * inv * inv;
                }
            }
        }
        for (j, &vj) in net.v().iter().enumerate() {
            mass.v[j] = vj * inv;
        }
        Ok(self.mass_to_point(&mass))
    }

    /// Map a point back to a network (§4.3): keep the features with $\rho > 0$, set
    /// $w = \tilde u/(\rho_\ell\rho_{\ell+1})$, $v = \tilde u_{L+1}/\rho_L$, and absorb the masses into a uniform-width network
    /// (zero units pad the narrower layers). Its predictions equal the program's up to the consistency
    /// residual. Errors if a layer has no mass, or (q = 1 relaxation) a weight touches a massless feature.
    pub fn to_network(&self, pt: &DeepPoint) -> Result<MappedNetwork> {
        self.check_point(pt)?;
        let mass = self.point_to_mass(pt);
        let depth = self.depth();
        let index: Vec<Vec<usize>> = mass
            .p
            .iter()
            .map(|p| (0..p.len()).filter(|&j| p[j] > 0.0).collect())
            .collect();
        if let Some(l) = index.iter().position(|ix| ix.is_empty()) {
            return Err(SolverError::invalid(
                format!("density of layer {}", l + 1),
                "some candidate with positive mass",
                "all zero",
            ));
        }
        // Weights touching massless features must vanish.
        for (l, u) in mass.u.iter().enumerate() {
            for k in 0..u.ncols() {
                for j in 0..u.nrows() {
                    if u[(j, k)] != 0.0 && (mass.p[l][j] <= 0.0 || mass.p[l + 1][k] <= 0.0) {
                        return Err(SolverError::invalid(
                            format!("weight ({j}, {k}) of layer {}", l + 1),
                            "zero where a density vanishes (finite objective with q > 1)",
                            u[(j, k)],
                        ));
                    }
                }
            }
        }
        let m = index.iter().map(|ix| ix.len()).max().unwrap_or(1);
        let d = self.x.ncols();
        let mut a = Mat::<f64>::zeros(d, m);
        for (slot, &j) in index[0].iter().enumerate() {
            for i in 0..d {
                a[(i, slot)] = self.cand.a[(i, j)];
            }
        }
        let mf = m as f64;
        let mut ws = Vec::new();
        let mut w_orig = Vec::new();
        for l in 0..depth - 1 {
            let mut w = Mat::<f64>::zeros(m, m);
            let mut wo = Mat::<f64>::zeros(index[l].len(), index[l + 1].len());
            for (sk, &k) in index[l + 1].iter().enumerate() {
                for (sj, &j) in index[l].iter().enumerate() {
                    let uh = mass.u[l][(j, k)];
                    // w_jk = Û/(p_j p_k) (original weight); absorbed: m p_j w_jk = m Û/p_k.
                    wo[(sj, sk)] = uh / (mass.p[l][j] * mass.p[l + 1][k]);
                    w[(sj, sk)] = mf * uh / mass.p[l + 1][k];
                }
            }
            ws.push(w);
            w_orig.push(wo);
        }
        let mut v = vec![0.0; m];
        let mut vo = Vec::new();
        for (sj, &j) in index[depth - 1].iter().enumerate() {
            vo.push(mass.v[j] / mass.p[depth - 1][j]);
            v[sj] = mf * mass.v[j];
        }
        let arch = if depth == 1 {
            Arch::TwoLevel
        } else {
            Arch::Dnn
        };
        let wrefs: Vec<MatRef<'_, f64>> = ws.iter().map(|w| w.as_ref()).collect();
        let net = Network::from_blocks(arch, a.as_ref(), &wrefs, &v)?;
        let masses = index
            .iter()
            .enumerate()
            .map(|(l, ix)| ix.iter().map(|&j| mass.p[l][j]).collect())
            .collect();
        Ok(MappedNetwork {
            net,
            masses,
            index,
            w_original: w_orig,
            v_original: vo,
        })
    }
}
