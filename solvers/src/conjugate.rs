//! Convex conjugates of the losses, for the Fenchel duals of the convex programs.
//!
//! With the risk $F(\hat{\mathbf y}) = \frac1N\sum_i\phi(\hat y^i, y^i)$ the conjugate is
//! $$F^*(\mathbf p) = \sup_{\hat{\mathbf y}}\ \mathbf p^\top\hat{\mathbf y} - F(\hat{\mathbf y}) = \frac1N\sum_i\phi^*(Np^i;\,y^i),
//! \qquad \partial_i F^*(\mathbf p) = \phi^{*\prime}(Np^i; y^i),\quad \partial^2_{ii}F^* = N\phi^{*\prime\prime}(Np^i; y^i),$$
//! where $\phi^*(s; y) = \sup_{\hat y} s\hat y - \phi(\hat y, y)$. At $\mathbf p = \nabla F(\hat{\mathbf y})$ — the residual
//! $\mathbf r$ of math.md §1, $r^i = \phi'(\hat y^i, y^i)/N$ — Fenchel–Young holds with equality,
//! $F(\hat{\mathbf y}) + F^*(\mathbf r) = \mathbf r^\top\hat{\mathbf y}$, and $\nabla F^*(\mathbf r) = \hat{\mathbf y}$.
//!
//! - squared, $\phi = \frac12(\hat y - y)^2$: $\phi^*(s) = sy + \frac12 s^2$;
//! - logistic, $\phi = \log(1 + e^{-y\hat y})$, $y = \pm1$: with $\sigma = -sy$,
//!   $\phi^*(s) = \sigma\log\sigma + (1-\sigma)\log(1-\sigma)$ on $\sigma\in\[0,1\]$ ($+\infty$ elsewhere),
//!   $\phi^{*\prime}(s) = -y\log\frac{\sigma}{1-\sigma}$, $\phi^{*\prime\prime}(s) = \frac1{\sigma(1-\sigma)}$.
use nff_core::Loss;

/// $\phi^*(s; y)$, $+\infty$ outside the domain.
pub fn conj_value(loss: Loss, s: f64, y: f64) -> f64 {
    match loss {
        Loss::Squared => s * y + 0.5 * s * s,
        Loss::Logistic => {
            let sig = -s * y;
            if !(0.0..=1.0).contains(&sig) {
                return f64::INFINITY;
            }
            xlogx(sig) + xlogx(1.0 - sig)
        }
    }
}

/// $\phi^{*\prime}(s; y)$ (the prediction $\hat y$ whose loss derivative is $s$).
pub fn conj_deriv(loss: Loss, s: f64, y: f64) -> f64 {
    match loss {
        Loss::Squared => y + s,
        Loss::Logistic => {
            let sig = -s * y;
            -y * (sig.ln() - (1.0 - sig).ln())
        }
    }
}

/// $\phi^{*\prime\prime}(s; y)$.
pub fn conj_second(loss: Loss, s: f64, y: f64) -> f64 {
    match loss {
        Loss::Squared => 1.0,
        Loss::Logistic => {
            let sig = -s * y;
            1.0 / (sig * (1.0 - sig))
        }
    }
}

/// Whether $s$ is in the open interior of $\operatorname{dom}\phi^*(\cdot; y)$ (where the derivatives exist).
pub fn conj_interior(loss: Loss, s: f64, y: f64) -> bool {
    match loss {
        Loss::Squared => s.is_finite(),
        Loss::Logistic => {
            let sig = -s * y;
            sig > 0.0 && sig < 1.0
        }
    }
}

/// $F^*(\mathbf p) = \frac1N\sum_i\phi^*(Np^i; y^i)$.
pub fn risk_conjugate(loss: Loss, p: &[f64], y: &[f64]) -> f64 {
    let n = y.len() as f64;
    p.iter()
        .zip(y)
        .map(|(&pi, &yi)| conj_value(loss, n * pi, yi))
        .sum::<f64>()
        / n
}

/// $\partial_1^2\phi(\hat y, y)$ (1 for the squared loss, $\sigma(1-\sigma)$ with $\sigma = (1+e^{y\hat y})^{-1}$ for the logistic).
pub fn loss_second(loss: Loss, yhat: f64, y: f64) -> f64 {
    match loss {
        Loss::Squared => 1.0,
        Loss::Logistic => {
            let m = -y * yhat;
            let s = if m >= 0.0 {
                1.0 / (1.0 + (-m).exp())
            } else {
                let e = m.exp();
                e / (1.0 + e)
            };
            s * (1.0 - s)
        }
    }
}

/// $x\log x$ with $0\log 0 = 0$.
pub fn xlogx(x: f64) -> f64 {
    if x > 0.0 {
        x * x.ln()
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fenchel_young_equality_at_the_residual() {
        for loss in Loss::ALL {
            for &(yhat, y) in &[(0.3, 1.0), (-2.0, -1.0), (1.7, -1.0), (0.0, 1.0)] {
                let s = loss.deriv(yhat, y);
                let fy = loss.value(yhat, y) + conj_value(loss, s, y);
                assert!(
                    (fy - s * yhat).abs() < 1e-12,
                    "{loss}: {fy} vs {}",
                    s * yhat
                );
                assert!((conj_deriv(loss, s, y) - yhat).abs() < 1e-10);
                let e = 1e-6;
                let fd = (conj_deriv(loss, s + e, y) - conj_deriv(loss, s - e, y)) / (2.0 * e);
                assert!((fd - conj_second(loss, s, y)).abs() < 1e-5 * fd.abs().max(1.0));
            }
        }
    }
}
