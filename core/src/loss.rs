//! Losses $\phi(\hat y, y)$, the risk $\mathcal R(\hat{\mathbf y}) = \frac1N\sum_i\phi(\hat y^i, y^i)$ and
//! the residual $r^i = \frac1N\partial_1\phi(\hat y^i, y^i)$ (math.md §1).
use crate::error::CoreError;
use std::fmt;
use std::str::FromStr;

/// A convex, $C^1$ loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loss {
    /// $\frac12(\hat y - y)^2$.
    Squared,
    /// $\log(1 + e^{-y\hat y})$ with labels $y \in \{-1, +1\}$.
    Logistic,
}

impl Loss {
    /// All losses.
    pub const ALL: [Loss; 2] = [Self::Squared, Self::Logistic];

    /// The name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Squared => "squared",
            Self::Logistic => "logistic",
        }
    }

    /// $\phi(\hat y, y)$.
    #[inline]
    pub fn value(self, yhat: f64, y: f64) -> f64 {
        match self {
            Self::Squared => 0.5 * (yhat - y) * (yhat - y),
            Self::Logistic => {
                let m = -y * yhat;
                m.max(0.0) + (-m.abs()).exp().ln_1p()
            }
        }
    }

    /// $\partial_1\phi(\hat y, y)$.
    #[inline]
    pub fn deriv(self, yhat: f64, y: f64) -> f64 {
        match self {
            Self::Squared => yhat - y,
            Self::Logistic => {
                // d/dyhat log(1+exp(-y yhat)) = -y sigmoid(-y yhat)
                let m = -y * yhat;
                let s = if m >= 0.0 {
                    1.0 / (1.0 + (-m).exp())
                } else {
                    let e = m.exp();
                    e / (1.0 + e)
                };
                -y * s
            }
        }
    }

    /// $\partial_1^2\phi(\hat y, y)$: 1 for the squared loss, $\sigma(-y\hat y)\,\sigma(y\hat y)$ for the
    /// logistic loss with $y = \pm1$ (Newton steps of the exact output fits, [`crate::baseline`]).
    #[inline]
    pub fn second_deriv(self, yhat: f64, y: f64) -> f64 {
        match self {
            Self::Squared => 1.0,
            Self::Logistic => {
                let s = -self.deriv(yhat, y) * y; // sigma(-y yhat)
                s * (1.0 - s) * y * y
            }
        }
    }

    /// The risk $\frac1N\sum_i \phi(\hat y^i, y^i)$.
    pub fn risk(self, yhat: &[f64], y: &[f64]) -> f64 {
        debug_assert_eq!(yhat.len(), y.len());
        let n = y.len() as f64;
        yhat.iter()
            .zip(y)
            .map(|(&a, &b)| self.value(a, b))
            .sum::<f64>()
            / n
    }

    /// Write the residual $r^i = \frac1N\partial_1\phi(\hat y^i, y^i)$ into `r`.
    pub fn residual_into(self, yhat: &[f64], y: &[f64], r: &mut [f64]) {
        debug_assert_eq!(yhat.len(), y.len());
        debug_assert_eq!(r.len(), y.len());
        let n = y.len() as f64;
        for ((ri, &a), &b) in r.iter_mut().zip(yhat).zip(y) {
            *ri = self.deriv(a, b) / n;
        }
    }

    /// The residual as a new vector.
    pub fn residual(self, yhat: &[f64], y: &[f64]) -> Vec<f64> {
        let mut r = vec![0.0; y.len()];
        self.residual_into(yhat, y, &mut r);
        r
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Loss {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| CoreError::Unknown {
                kind: "loss",
                name: s.to_string(),
                expected: "squared, logistic".into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn derivative_matches_finite_difference(a in -5.0f64..5.0, y in -2.0f64..2.0, k in 0usize..2) {
            let l = Loss::ALL[k];
            let y = if l == Loss::Logistic { y.signum() } else { y };
            let e = 1e-6;
            let fd = (l.value(a + e, y) - l.value(a - e, y)) / (2.0 * e);
            prop_assert!((fd - l.deriv(a, y)).abs() < 1e-7);
        }

        #[test]
        fn second_derivative_matches_finite_difference(a in -5.0f64..5.0, y in -2.0f64..2.0, k in 0usize..2) {
            let l = Loss::ALL[k];
            let y = if l == Loss::Logistic { y.signum() } else { y };
            let e = 1e-5;
            let fd = (l.deriv(a + e, y) - l.deriv(a - e, y)) / (2.0 * e);
            prop_assert!((fd - l.second_deriv(a, y)).abs() < 1e-8);
        }

        #[test]
        fn losses_are_convex_along_segments(a in -5.0f64..5.0, b in -5.0f64..5.0, t in 0.0f64..1.0, k in 0usize..2) {
            let l = Loss::ALL[k];
            let mid = l.value(t * a + (1.0 - t) * b, 1.0);
            prop_assert!(mid <= t * l.value(a, 1.0) + (1.0 - t) * l.value(b, 1.0) + 1e-12);
        }
    }

    #[test]
    fn logistic_is_stable_far_out() {
        assert!(Loss::Logistic.value(1000.0, 1.0) < 1e-300);
        assert_eq!(Loss::Logistic.value(-1000.0, 1.0), 1000.0);
    }
}
