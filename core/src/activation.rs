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
            Self::Tanh => tanh(z),
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
                let t = tanh(z);
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
                let t = tanh(z);
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
                let t = tanh(z);
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

/// $\tanh z$ to a few ulps (relative error ≤ 1e-15, tested against the C library), written without
/// calls or branches so that loops over it vectorize: libm's `tanh` is a call per entry and was the
/// largest cost of a forward pass after the products.
///
/// With $a = \min(|z|, 22)$ ($\tanh 22 = 1$ in f64) and $u = e^{2a} - 1$: $\tanh z = \operatorname{sign}(z)\,u/(u + 2)$.
/// $e^{x} - 1$ for $x = 2a \in [0, 44]$: $x = k\ln 2 + r$ with $k = \operatorname{round}(x/\ln 2)$, $|r| \le \ln 2/2$
/// (two-part $\ln 2$, exact for $k \le 64$); $e^r - 1 = p(r)$, the Taylor polynomial of degree 13 (remainder
/// $< r^{14}/14! \le 10^{-17}|r|$); $e^x - 1 = 2^k p(r) + (2^k - 1)$, exact in its scalings, and just $p(r)$ for
/// $k = 0$, so small $z$ keep full relative accuracy. NaN stays NaN; $\pm\infty \mapsto \pm1$.
#[inline]
pub fn tanh(z: f64) -> f64 {
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    // Adding 1.5·2^52 rounds to an integer, which then sits in the low mantissa bits.
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let a = z.abs();
    #[allow(clippy::manual_clamp)] // NaN must propagate
    let x = 2.0 * if a > 22.0 { 22.0 } else { a };
    let kr = x * LOG2E + ROUND;
    let k = kr - ROUND;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // p(r) = r + r²/2! + … + r¹³/13!  (Horner)
    let mut p = 1.0 / 6_227_020_800.0;
    p = p * r + 1.0 / 479_001_600.0;
    p = p * r + 1.0 / 39_916_800.0;
    p = p * r + 1.0 / 3_628_800.0;
    p = p * r + 1.0 / 362_880.0;
    p = p * r + 1.0 / 40_320.0;
    p = p * r + 1.0 / 5_040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p *= r;
    // 2^k from the integer in kr's mantissa (0 ≤ k ≤ 64).
    let kbits = kr.to_bits().wrapping_sub(ROUND.to_bits());
    let scale = f64::from_bits(kbits.wrapping_add(1023) << 52);
    let u = scale * p + (scale - 1.0);
    (u / (u + 2.0)).copysign(z)
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

    /// The branch-free tanh agrees with the C library's to 1e-15 relative, over small, medium and
    /// saturated arguments, keeps signs and zeros, and propagates NaN.
    #[test]
    fn fast_tanh_matches_libm() {
        let mut worst: f64 = 0.0;
        let mut z = 1e-300f64;
        while z < 1e3 {
            for x in [z, -z, z * 1.37, -z * 0.71] {
                let (a, b) = (tanh(x), x.tanh());
                worst = worst.max((a - b).abs() / b.abs());
            }
            z *= 1.0007;
        }
        for i in 0..200_000 {
            let x = -25.0 + i as f64 * 2.5e-4;
            let (a, b) = (tanh(x), x.tanh());
            if b != 0.0 {
                worst = worst.max((a - b).abs() / b.abs());
            }
        }
        assert!(worst <= 1e-15, "worst relative error {worst:e}");
        assert_eq!(tanh(0.0).to_bits(), 0.0f64.to_bits());
        assert_eq!(tanh(-0.0).to_bits(), (-0.0f64).to_bits());
        assert_eq!(tanh(f64::INFINITY), 1.0);
        assert_eq!(tanh(f64::NEG_INFINITY), -1.0);
        assert!(tanh(f64::NAN).is_nan());
        assert_eq!(tanh(30.0), 1.0);
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
