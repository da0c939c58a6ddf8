#!/usr/bin/env python3
"""Side-by-side check of nff's two-level convex program (math.md §4.1) against cvxpy + Clarabel and
scipy's L-BFGS-B. Not part of the test suite.

Usage:
    # 1. write instances (X, y, theta, rho0, lambdas, nff's solution) with the Rust side:
    cargo test -p nff-solvers --lib -- --ignored write_comparison_instances   # -> /tmp/nff_compare/*.npz
    # 2. compare (installs cvxpy, clarabel, numpy, scipy into a venv under /tmp on first use):
    python3 benches/compare/convex_two_level.py [/tmp/nff_compare/*.npz]

The program, in the variables w = rho0 * u_tilde and rho on the simplex:
    P(w, rho) = (1/N) sum_i phi((H w)_i, y_i) + lambda1 sum_k w_k^2 / (2 rho_k)
                + lambda2 sum_k rho_k |theta_k|^2 / 2 + tau sum_k rho_k log(rho_k / rho0_k),
    H_ik = tanh(theta_k . x_i), phi squared (1/2 (yhat - y)^2) or logistic (log(1 + exp(-y yhat))).
"""
import glob
import warnings
import os
import subprocess
import sys
import time

VENV = "/tmp/nff-compare-venv"


def ensure_deps():
    """Re-exec inside a private venv that has cvxpy, clarabel, numpy and scipy."""
    try:
        import cvxpy  # noqa: F401
        import numpy  # noqa: F401
        import scipy  # noqa: F401
        return
    except ImportError:
        pass
    py = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.executable) == os.path.realpath(py):
        raise SystemExit("dependencies missing inside the venv; delete %s and retry" % VENV)
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([py, "-m", "pip", "install", "--quiet", "cvxpy", "clarabel", "numpy", "scipy"])
    os.execv(py, [py] + sys.argv)


def load(path):
    import numpy as np

    z = np.load(path)
    inst = {k: z[k] for k in z.files}
    for k in ("lambda1", "lambda2", "tau", "logistic", "nff_objective", "nff_dual", "nff_seconds"):
        inst[k] = float(inst[k])
    return inst


def objective(inst, w, rho):
    """P(w, rho) exactly as nff evaluates it."""
    import numpy as np

    X, y, theta, rho0 = inst["X"], inst["y"], inst["theta"], inst["rho0"]
    H = np.tanh(X @ theta.T)
    yhat = H @ w
    if inst["logistic"]:
        risk = np.mean(np.logaddexp(0.0, -y * yhat))
    else:
        risk = 0.5 * np.mean((yhat - y) ** 2)
    pos = rho > 0
    if np.any((~pos) & (w != 0)):
        return np.inf
    reg = inst["lambda1"] * np.sum(w[pos] ** 2 / (2 * rho[pos]))
    reg += inst["lambda2"] * np.sum(rho * np.sum(theta**2, axis=1) / 2)
    if inst["tau"] > 0:
        reg += inst["tau"] * np.sum(rho[pos] * np.log(rho[pos] / rho0[pos]))
    return risk + reg


def solve_cvxpy(inst):
    import cvxpy as cp
    import numpy as np

    X, y, theta, rho0 = inst["X"], inst["y"], inst["theta"], inst["rho0"]
    H = np.tanh(X @ theta.T)
    n, k = H.shape
    w = cp.Variable(k)
    rho = cp.Variable(k, nonneg=True)
    yhat = H @ w
    if inst["logistic"]:
        risk = cp.sum(cp.logistic(-cp.multiply(y, yhat))) / n
    else:
        risk = cp.sum_squares(yhat - y) / (2 * n)
    persp = cp.sum(cp.hstack([cp.quad_over_lin(w[i], rho[i]) for i in range(k)])) / 2
    obj = risk + inst["lambda1"] * persp + inst["lambda2"] * (np.sum(theta**2, axis=1) / 2) @ rho
    if inst["tau"] > 0:
        obj = obj + inst["tau"] * cp.sum(cp.rel_entr(rho, rho0))
    prob = cp.Problem(cp.Minimize(obj), [cp.sum(rho) == 1])
    t0 = time.perf_counter()
    prob.solve(solver=cp.CLARABEL)
    dt = time.perf_counter() - t0
    wv, rv = np.asarray(w.value), np.maximum(np.asarray(rho.value), 0.0)
    rv = rv / rv.sum()
    wv = np.where(rv > 0, wv, 0.0)  # the solver's clipped zeros: drop the weight there too
    return objective(inst, wv, rv), prob.value, dt


def solve_lbfgsb(inst):
    """L-BFGS-B on (w, eta) with rho = softmax(eta): smooth but not convex in eta (a baseline)."""
    import numpy as np
    from scipy.optimize import minimize

    X, y, theta, rho0 = inst["X"], inst["y"], inst["theta"], inst["rho0"]
    H = np.tanh(X @ theta.T)
    n, k = H.shape
    l1, l2, tau = inst["lambda1"], inst["lambda2"], inst["tau"]
    c = np.sum(theta**2, axis=1) / 2

    def f(z):
        w, eta = z[:k], z[k:]
        e = np.exp(eta - eta.max())
        rho = e / e.sum()
        yhat = H @ w
        if inst["logistic"]:
            m = -y * yhat
            risk = np.mean(np.logaddexp(0.0, m))
            r = -y / (1 + np.exp(-m)) / n
        else:
            risk = 0.5 * np.mean((yhat - y) ** 2)
            r = (yhat - y) / n
        val = risk + l1 * np.sum(w**2 / (2 * rho)) + l2 * c @ rho
        grho = -l1 * w**2 / (2 * rho**2) + l2 * c
        if tau > 0:
            val += tau * np.sum(rho * np.log(rho / rho0))
            grho += tau * (np.log(rho / rho0) + 1)
        gw = H.T @ r + l1 * w / rho
        geta = rho * (grho - rho @ grho)
        return val, np.concatenate([gw, geta])

    z0 = np.concatenate([np.zeros(k), np.log(rho0)])
    t0 = time.perf_counter()
    res = minimize(f, z0, jac=True, method="L-BFGS-B", options={"maxiter": 3000, "ftol": 1e-15, "gtol": 1e-10})
    dt = time.perf_counter() - t0
    w, eta = res.x[:k], res.x[k:]
    rho = np.exp(eta - eta.max())
    rho /= rho.sum()
    return objective(inst, w, rho), dt


def main():
    ensure_deps()
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    paths = sys.argv[1:] or sorted(glob.glob("/tmp/nff_compare/*.npz"))
    if not paths:
        raise SystemExit("no instances: run `cargo test -p nff-solvers --lib -- --ignored write_comparison_instances`")
    print(
        f"{'instance':<18} {'nff P':>18} {'nff D (bound)':>18} {'cvxpy P':>18} {'cvxpy reported':>18} "
        f"{'L-BFGS-B P':>18} {'(nff-cvx)/cvx':>13} {'t nff':>7} {'t cvx':>7} {'t lbfgs':>7}"
    )
    for path in paths:
        inst = load(path)
        p_cvx, p_cvx_rep, t_cvx = solve_cvxpy(inst)
        p_lb, t_lb = solve_lbfgsb(inst)
        p_nff = objective(inst, inst["nff_w"], inst["nff_rho"])
        name = os.path.splitext(os.path.basename(path))[0]
        print(
            f"{name:<18} {p_nff:18.12e} {inst['nff_dual']:18.12e} {p_cvx:18.12e} {p_cvx_rep:18.12e} "
            f"{p_lb:18.12e} {(p_nff - p_cvx) / abs(p_cvx):13.1e} {inst['nff_seconds']:7.4f} {t_cvx:7.3f} {t_lb:7.3f}"
        )
        # The nff dual value certifies: no feasible point (cvxpy's included) can be below it.
        if p_cvx < inst["nff_dual"] - 1e-9 * abs(p_cvx):
            print(f"  !! cvxpy objective {p_cvx} is below nff's certified lower bound {inst['nff_dual']}")


if __name__ == "__main__":
    main()
