//! The integrands of the deep program and midpoint tests of convexity (math.md §4.3, claim C14).
//!
//! The regularizers that keep the repopulated deep program convex are built from the perspective of
//! $\|\cdot\|_1^q$, $q\ge1$:
//! $$f_q(x, t) = \frac{\|x\|_1^q}{t^{q-1}}\quad(t>0),\qquad f_q(0, 0) = 0,\quad f_q(x\ne0, 0) = +\infty\ (q>1),$$
//! jointly convex in $(x, t)$ as the perspective of a convex function. Plain L2 weight decay on a middle
//! layer becomes, in the repopulated variables, $\int\!\!\int\frac{\tilde u^2}{\rho_\ell\rho_{\ell+1}}d\pi_\ell d\pi_{\ell+1}$ with the
//! integrand $x^2/(ab)$ — homogeneous of degree 0 and not constant, hence **not** convex:
//! $f(1,1,1) = 1$, $f(0,.01,.01) = 0$ and the midpoint gives $0.25/0.255\approx0.980 > 0.5$.

/// $f_q(x, t) = \|x\|_1^q/t^{q-1}$ with the conventions above (for $q = 1$ simply $\|x\|_1$).
pub fn perspective_l1q(x: &[f64], t: f64, q: f64) -> f64 {
    let s: f64 = x.iter().map(|v| v.abs()).sum();
    perspective_pow(s, t, q)
}

/// $s^q/t^{q-1}$ for $s\ge0$ (the scalar perspective of $s\mapsto s^q$), $+\infty$ for $t<0$.
pub fn perspective_pow(s: f64, t: f64, q: f64) -> f64 {
    if t < 0.0 {
        return f64::INFINITY;
    }
    if q == 1.0 {
        return s;
    }
    if t == 0.0 {
        return if s == 0.0 { 0.0 } else { f64::INFINITY };
    }
    s.powf(q) * t.powf(1.0 - q)
}

/// The plain-L2 middle-layer integrand $x^2/(ab)$ for $a, b > 0$ ($0$ at $x = 0$, $+\infty$ if $x\ne0$ and $ab = 0$).
pub fn plain_l2_integrand(x: f64, a: f64, b: f64) -> f64 {
    if a < 0.0 || b < 0.0 {
        return f64::INFINITY;
    }
    if x == 0.0 {
        return 0.0;
    }
    if a == 0.0 || b == 0.0 {
        return f64::INFINITY;
    }
    x * x / (a * b)
}

/// $f(\tfrac{p+q}2) - \tfrac12(f(p) + f(q))$: positive means the midpoint test of convexity fails.
pub fn midpoint_excess(f: impl Fn(&[f64]) -> f64, p: &[f64], q: &[f64]) -> f64 {
    let mid: Vec<f64> = p.iter().zip(q).map(|(a, b)| 0.5 * (a + b)).collect();
    f(&mid) - 0.5 * (f(p) + f(q))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_l2_counterexample_of_math_md() {
        let f = |v: &[f64]| plain_l2_integrand(v[0], v[1], v[2]);
        assert_eq!(f(&[1.0, 1.0, 1.0]), 1.0);
        assert_eq!(f(&[0.0, 0.01, 0.01]), 0.0);
        let ex = midpoint_excess(f, &[1.0, 1.0, 1.0], &[0.0, 0.01, 0.01]);
        let mid = 0.25 / (0.505 * 0.505);
        assert!((ex - (mid - 0.5)).abs() < 1e-15);
        assert!(mid > 0.98 && ex > 0.4, "midpoint {mid}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Midpoint test of the perspective integrands: no violation beyond rounding.
        #[test]
        fn perspective_integrands_pass_midpoint_tests(
            x in proptest::collection::vec(-3.0f64..3.0, 3),
            y in proptest::collection::vec(-3.0f64..3.0, 3),
            s in 1e-3f64..2.0, t in 1e-3f64..2.0,
            qi in 0usize..4,
        ) {
            let q = [1.0, 1.5, 2.0, 3.0][qi];
            let f = |v: &[f64]| perspective_l1q(&v[..3], v[3], q);
            let mut p = x.clone(); p.push(s);
            let mut r = y.clone(); r.push(t);
            let ex = midpoint_excess(f, &p, &r);
            let scale = f(&p).abs() + f(&r).abs() + 1.0;
            prop_assert!(ex <= 1e-12 * scale, "excess {ex} at q = {q}");
        }
    }

    #[test]
    fn plain_l2_fails_midpoint_tests_on_a_sweep() {
        // Segments from (x, 1, 1) to (0, s, s): degree-0 homogeneity makes the far end cheap.
        let mut violations = 0;
        let mut trials = 0;
        for &x in &[0.5, 1.0, 2.0] {
            for &sc in &[0.001, 0.01, 0.1, 0.3, 0.6, 0.9] {
                trials += 1;
                let ex = midpoint_excess(
                    |v: &[f64]| plain_l2_integrand(v[0], v[1], v[2]),
                    &[x, 1.0, 1.0],
                    &[0.0, sc, sc],
                );
                if ex > 1e-12 {
                    violations += 1;
                }
            }
        }
        assert!(violations >= trials / 2, "{violations}/{trials}");
        // The perspective integrand on the same segments: never.
        for &x in &[0.5, 1.0, 2.0] {
            for &sc in &[0.001, 0.01, 0.1, 0.3, 0.6, 0.9] {
                for q in [1.0, 2.0, 3.0] {
                    let ex = midpoint_excess(
                        |v: &[f64]| perspective_l1q(&v[..2], v[2], q),
                        &[x, -x, 1.0],
                        &[0.0, 0.0, sc],
                    );
                    assert!(ex <= 1e-12);
                }
            }
        }
    }
}
