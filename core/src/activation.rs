//! Activation functions $h$ with $h'$ and $h''$, applied entrywise.
use crate::error::CoreError;
use std::fmt;
use std::str::FromStr;

/// An activation function.
///
/// ReLU is not differentiable at 0: there $h'(0) = 0$ and $h'' = 0$ everywhere (a subgradient choice),
/// so statements that need smoothness (math.md §1) should use the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// $\tanh z$.
    Tanh,
    /// $1/(1+e^{-z})$.
    Sigmoid,
    /// $\log(1+e^z)$, computed stably.
    Softplus,
    /// $\max(z, 0)$.
    Relu,
}

impl Activation {
    /// All activations, in the order of their names.
    pub const ALL: [Activation; 4] = [Self::Tanh, Self::Sigmoid, Self::Softplus, Self::Relu];

    /// The name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tanh => "tanh",
            Self::Sigmoid => "sigmoid",
            Self::Softplus => "softplus",
            Self::Relu => "relu",
        }
    }

    /// $h(z)$.
    #[inline]
    pub fn value(self, z: f64) -> f64 {
        match self {
            Self::Tanh => z.tanh(),
            Self::Sigmoid => sigmoid(z),
            Self::Softplus => softplus(z),
            Self::Relu => z.max(0.0),
        }
    }

    /// $h'(z)$.
    #[inline]
    pub fn deriv(self, z: f64) -> f64 {
        match self {
            Self::Tanh => {
                let t = z.tanh();
                1.0 - t * t
            }
            Self::Sigmoid => {
                let s = sigmoid(z);
                s * (1.0 - s)
            }
            Self::Softplus => sigmoid(z),
            Self::Relu => {
                if z > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }

    /// $h''(z)$.
    #[inline]
    pub fn second(self, z: f64) -> f64 {
        match self {
            Self::Tanh => {
                let t = z.tanh();
                -2.0 * t * (1.0 - t * t)
            }
            Self::Sigmoid => {
                let s = sigmoid(z);
                s * (1.0 - s) * (1.0 - 2.0 * s)
            }
            Self::Softplus => {
                let s = sigmoid(z);
                s * (1.0 - s)
            }
            Self::Relu => 0.0,
        }
    }

    /// $(h(z), h'(z))$ in one pass (the hot path needs both).
    #[inline]
    pub fn value_deriv(self, z: f64) -> (f64, f64) {
        match self {
            Self::Tanh => {
                let t = z.tanh();
                (t, 1.0 - t * t)
            }
            Self::Sigmoid => {
                let s = sigmoid(z);
                (s, s * (1.0 - s))
            }
            Self::Softplus => (softplus(z), sigmoid(z)),
            Self::Relu => {
                if z > 0.0 {
                    (z, 1.0)
                } else {
                    (0.0, 0.0)
                }
            }
        }
    }

    /// $\sup|h|$ if finite (used in importance-sampling bounds).
    pub fn sup_abs(self) -> Option<f64> {
        match self {
            Self::Tanh | Self::Sigmoid => Some(1.0),
            Self::Softplus | Self::Relu => None,
        }
    }
}

#[inline]
fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

#[inline]
fn softplus(z: f64) -> f64 {
    // log(1 + e^z) = max(z, 0) + log1p(e^{-|z|})
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Activation {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| CoreError::Unknown {
                kind: "activation",
                name: s.to_string(),
                expected: "tanh, sigmoid, softplus, relu".into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn derivatives_match_finite_differences(z in -4.0f64..4.0, k in 0usize..3) {
            let h = [Activation::Tanh, Activation::Sigmoid, Activation::Softplus][k];
            let e = 1e-5;
            let d1 = (h.value(z + e) - h.value(z - e)) / (2.0 * e);
            let d2 = (h.deriv(z + e) - h.deriv(z - e)) / (2.0 * e);
            prop_assert!((d1 - h.deriv(z)).abs() < 1e-8);
            prop_assert!((d2 - h.second(z)).abs() < 1e-8);
            let (v, d) = h.value_deriv(z);
            prop_assert_eq!(v, h.value(z));
            prop_assert_eq!(d, h.deriv(z));
        }
    }

    #[test]
    fn softplus_is_stable_far_out() {
        assert_eq!(Activation::Softplus.value(800.0), 800.0);
        assert!(Activation::Softplus.value(-800.0) >= 0.0);
        assert!(Activation::Softplus.value(-800.0) < 1e-300);
    }

    #[test]
    fn names_round_trip_and_unknown_is_an_error() {
        for a in Activation::ALL {
            assert_eq!(a.name().parse::<Activation>().unwrap(), a);
        }
        let e = "swish".parse::<Activation>().unwrap_err().to_string();
        assert!(e.contains("swish") && e.contains("tanh"), "{e}");
    }
}
