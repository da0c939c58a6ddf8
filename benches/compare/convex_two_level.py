#!/usr/bin/env python3
"""Side-by-side timing of nff's two-level convex program (math.md §4.1) against cvxpy + Clarabel and scipy's
L-BFGS-B, on the same instance, with the same thread count. Not part of the test suite.

Usage (from the repository root):
    cargo build --release -p nff-cli
    python3 benches/compare/convex_two_level.py [--threads 1] [--k-per-axis 64] [--n 64] [--nff target/release/nff]

On first use it creates a venv in benches/compare/.venv and pip-installs cvxpy, clarabel, numpy, scipy into it.
The thread count is applied to every tool: OMP/OPENBLAS/MKL/RAYON_NUM_THREADS for numpy, scipy and Clarabel,
`nff --threads` for nff (default 1: the comparison machine's cores are shared).

The instance (the K = 4096, N = 64 instance of issue 4): x_i ~ N(0, 1), y_i = sin(3 x_i) + 1/2 (seeded), X = [x, 1]
(a bias column, d = 2), candidates theta on the 64 x 64 grid of [-3, 3]^2 (K = 4096), uniform rho0, tanh, squared loss,
H_ik = tanh(theta_k . x_i). The program, in w = rho0 * u_tilde and rho on the simplex:
    P(w, rho) = (1/2N) |H w - y|^2 + lambda1 sum_k w_k^2 / (2 rho_k) + lambda2 sum_k rho_k |theta_k|^2 / 2
                + tau sum_k rho_k log(rho_k / rho0_k).
Cases (--cases): tau = 0 (lambda1 = 0.01, lambda2 = 0: the `nff convex` defaults), tau = 0 with lambda2 = 0.01,
tau = 0.01 and tau = 0.1 (lambda1 = 0.01, lambda2 = 0).

Every tool's answer is certified the same way, by this script: the primal value P at its (w, rho) (put on the
simplex) and the Fenchel dual D(p) = -F*(p) - g*(H^T p) at p = r(Hw) (and at nff's own dual point for nff), with
F*(p) = p.y + N/2 |p|^2 and g*(s) = max_k b_k (tau = 0) or tau log sum_k rho0_k exp(b_k / tau), b_k = s_k^2/2lambda1 - lambda2|theta_k|^2/2.
The script checks that all objectives agree with nff's to 1e-6 relative and prints time ratios.

The formulations:
- nff: `nff convex --data data.npz --candidates cand.npz --tol-gap 1e-8 --repeat R` (dual interior point for tau = 0,
  dual Newton for tau > 0); times: the fastest of the R in-process solves (`solve_seconds`, warm like the Python
  solvers' repeats) and the whole process wall time divided by R (start-up and I/O included).
- cvxpy + Clarabel: variables w, rho >= 0, v; the perspective as vectorized rotated cones w_k^2 <= 2 v_k rho_k
  (cp.SOC(v + rho, [v - rho, sqrt2 w])), objective sum_squares/2N + lambda1 sum v + lambda2 c.rho (+ tau sum rel_entr(rho, rho0)),
  sum rho = 1; Clarabel defaults (gap tolerances 1e-8). Times: Clarabel's own solve time and cvxpy's total (with canonicalization).
- L-BFGS-B (scipy, smooth convex reformulations; times exclude building H):
  * tau = 0: rho eliminated in closed form, g(w) = min_rho lambda1 sum w^2/2rho + a.rho
    = max_nu sum_k |w_k| sqrt(2 lambda1 (a_k + nu)) - nu (a 1-D concave maximization solved by bisection; C^1 and
    convex in |w|), and w = u - v with u, v >= 0 as bounds: min (1/2N)|H(u - v) - y|^2 + g(u + v). For lambda2 = 0
    this is the squared-L1 problem of claim C9, g = lambda1/2 (sum|w|)^2.
  * tau > 0: the smooth convex dual in p (N variables), Phi(p) = F*(p) + tau log sum rho0 exp(b(p)/tau), recovering
    rho = softmax(log rho0 + b/tau), w = -rho s / lambda1. (The primal in (w, eta) with rho = softmax(eta) is smooth
    but not convex in eta and did not reach 1e-6 in 10^4 iterations even at K = 100; it is not run.)
Each tool's answer is certified by this script (Program.certify): feasible (w, rho), P exact, D at r(Hw).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VENV = os.path.join(HERE, ".venv")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


# --cases name -> (lambda1, lambda2, tau)
CASES = {"tau=0": (0.01, 0.0, 0.0), "tau=0/l2=0.01": (0.01, 0.01, 0.0), "tau=0.01": (0.01, 0.0, 0.01),
         "tau=0.1": (0.01, 0.0, 0.1)}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--k-per-axis", type=int, default=64)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nff", default=os.path.join(ROOT, "target", "release", "nff"),
                    help="the nff binary (default target/release/nff; CARGO_TARGET_DIR is honoured)")
    ap.add_argument("--repeat", type=int, default=3, help="timing repetitions (the minimum is reported)")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--cases", default=",".join(CASES),
                    help=f"comma-separated cases to run, among {', '.join(CASES)} (default: all)")
    return ap.parse_args()


def ensure_deps(threads):
    """Set the thread count for every library, then re-exec inside benches/compare/.venv with the dependencies."""
    changed = False
    for v in THREAD_VARS:
        if os.environ.get(v) != str(threads):
            os.environ[v] = str(threads)
            changed = True
    py = os.path.join(VENV, "bin", "python")
    in_venv = os.path.realpath(sys.prefix) == os.path.realpath(VENV)
    if not in_venv:
        if not os.path.exists(py):
            subprocess.check_call([sys.executable, "-m", "venv", VENV])
        try:
            subprocess.check_call([py, "-c", "import cvxpy, clarabel, numpy, scipy"], stderr=subprocess.DEVNULL)
        except subprocess.CalledProcessError:
            subprocess.check_call([py, "-m", "pip", "install", "--quiet", "cvxpy", "clarabel", "numpy", "scipy"])
        os.execve(py, [py] + sys.argv, os.environ)
    if changed:  # thread variables must be set before numpy is imported
        os.execve(sys.executable, [sys.executable] + sys.argv, os.environ)


def instance(k_per_axis, n, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    X = np.column_stack([x, np.ones(n)])
    y = np.sin(3 * x) + 0.5
    g = np.linspace(-3.0, 3.0, k_per_axis)
    # First coordinate varying fastest, like nff's candidates::grid.
    theta = np.array([(g[i % k_per_axis], g[i // k_per_axis]) for i in range(k_per_axis**2)])
    rho0 = np.full(len(theta), 1.0 / len(theta))
    return X, y, theta, rho0


class Program:
    def __init__(self, X, y, theta, rho0, lambda1, lambda2, tau):
        import numpy as np

        self.X, self.y, self.theta, self.rho0 = X, y, theta, rho0
        self.l1, self.l2, self.tau = lambda1, lambda2, tau
        self.H = np.tanh(X @ theta.T)
        self.a = lambda2 * np.sum(theta**2, axis=1) / 2
        self.n, self.k = self.H.shape

    def primal(self, w, rho):
        import numpy as np

        rho = np.maximum(rho, 0.0)
        rho = rho / rho.sum()
        pos = rho > 0
        if np.any((~pos) & (w != 0)):
            return np.inf
        r = self.H @ w - self.y
        val = 0.5 * np.mean(r**2) + self.l1 * np.sum(w[pos] ** 2 / (2 * rho[pos])) + self.a @ rho
        if self.tau > 0:
            val += self.tau * np.sum(rho[pos] * np.log(rho[pos] / self.rho0[pos]))
        return val

    def dual(self, p):
        import numpy as np

        s = self.H.T @ p
        b = s**2 / (2 * self.l1) - self.a
        fstar = p @ self.y + self.n / 2 * p @ p
        if self.tau == 0:
            g = b.max()
        else:
            e = np.log(self.rho0) + b / self.tau
            m = e.max()
            g = self.tau * (m + np.log(np.sum(np.exp(e - m))))
        return -fstar - g

    def certify(self, w, rho, p_extra=None):
        """(P, D, relative gap) for a solver's answer, made feasible and certified the same way for every tool:
        rho clipped at 0 and normalized, and the better of two primal points, the solver's w (zeroed where
        rho = 0) and w = -rho s / lambda1 with s = H^T r(Hw) (the optimality relation of the dual); D at the
        residual r(Hw) and optionally at another dual point. Every candidate is feasible, so P - D >= 0."""
        import numpy as np

        rho = np.maximum(np.asarray(rho, dtype=float), 0.0)
        rho = rho / rho.sum()
        w = np.where(rho > 0, w, 0.0)
        p = (self.H @ w - self.y) / self.n
        P = min(self.primal(w, rho), self.primal(-rho * (self.H.T @ p) / self.l1, rho))
        D = self.dual(p)
        if p_extra is not None:
            D = max(D, self.dual(p_extra))
        return P, D, (P - D) / abs(P)


def run_nff(prog, args, tmp, tol_gap):
    import numpy as np

    data, cand = os.path.join(tmp, "data.npz"), os.path.join(tmp, "cand.npz")
    np.savez(data, X=prog.X, y=prog.y)
    np.savez(cand, theta=prog.theta, rho0=prog.rho0)
    out = os.path.join(tmp, "out")
    cmd = [args.nff, "convex", "--problem", "two-level", "--data", data, "--candidates", cand,
           "--lambda1", repr(prog.l1), "--lambda2", repr(prog.l2), "--tau", repr(prog.tau),
           "--tol-gap", repr(tol_gap), "--threads", str(args.threads), "--seed", str(args.seed),
           "--repeat", str(args.repeat), "--out", out, "--quiet"]
    # Like the Python solvers, nff repeats the solve inside one (warm) process and reports the fastest
    # solve (`--repeat`); the process wall time includes start-up, I/O and all repeats.
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    with open(os.path.join(out, "summary.json")) as f:
        summ = json.load(f)
    sol = np.load(os.path.join(out, "solution.npz"))
    P, D, rel = prog.certify(sol["w"], sol["rho"])
    return {
        "P": P, "D": max(D, summ["dual_objective"]), "rel_gap": (P - max(D, summ["dual_objective"])) / abs(P),
        "nff_reported_rel_gap": summ["relative_gap"], "iterations": summ["iterations"],
        "method": summ["method"], "t_solve": summ["solve_seconds"], "t_total": wall / args.repeat,
    }


def run_clarabel(prog, args):
    import cvxpy as cp
    import numpy as np

    best = None
    for _ in range(args.repeat):
        w = cp.Variable(prog.k)
        rho = cp.Variable(prog.k, nonneg=True)
        v = cp.Variable(prog.k)
        obj = cp.sum_squares(prog.H @ w - prog.y) / (2 * prog.n) + prog.l1 * cp.sum(v) + prog.a @ rho
        if prog.tau > 0:
            obj = obj + prog.tau * cp.sum(cp.rel_entr(rho, prog.rho0))
        cons = [cp.sum(rho) == 1, cp.SOC(v + rho, cp.vstack([v - rho, np.sqrt(2) * w]), axis=0)]
        problem = cp.Problem(cp.Minimize(obj), cons)
        t0 = time.perf_counter()
        problem.solve(solver=cp.CLARABEL)
        total = time.perf_counter() - t0
        solve = problem.solver_stats.solve_time
        if best is None or total < best[2]:
            best = (np.asarray(w.value), np.asarray(rho.value), total, solve, problem.solver_stats.num_iters,
                    problem.status)
    wv, rv, total, solve, iters, status = best
    P, D, rel = prog.certify(wv, rv)
    return {"P": P, "D": D, "rel_gap": rel, "iterations": iters, "status": status, "t_solve": solve,
            "t_total": total}


def reduced_regularizer(prog, m):
    """g(w) = min_{rho in simplex} sum lambda1 w_k^2/2rho_k + a_k rho_k for tau = 0, as a function of m = |w| >= 0:
    g = max_{nu >= -min a} sum_k m_k sqrt(2 lambda1 (a_k + nu)) - nu (minimizing each rho_k for fixed nu), concave in nu
    with derivative sum_k rho_k(nu) - 1, rho_k(nu) = m_k sqrt(lambda1 / 2(a_k + nu)). Returns (g, dg/dm, rho):
    by Danskin dg/dm_k = sqrt(2 lambda1 (a_k + nu*)); if sum rho(-min a) < 1 the rest of the mass sits on the cheapest
    candidate. nu* by bisection (monotone), so g is C^1 and convex in m: L-BFGS-B applies."""
    import numpy as np

    a, l1 = prog.a, prog.l1
    amin = a.min()
    i0 = int(np.argmin(a))

    def rho_of(nu):
        return m * np.sqrt(l1 / (2 * np.maximum(a + nu, 1e-300)))

    if not np.any(a):  # lambda2 = 0: nu* = lambda1 (sum m)^2 / 2, g = lambda1/2 (sum m)^2
        s1 = m.sum()
        rho = m / s1 if s1 > 0 else np.full(len(m), 1.0 / len(m))
        return 0.5 * l1 * s1 * s1, np.full(len(m), l1 * s1), rho
    lo = -amin
    cheap = a == amin
    if m[cheap].sum() == 0 and rho_of(lo)[~cheap].sum() <= 1:
        rho = rho_of(lo)
        rho[cheap] = 0.0
        rho[i0] += 1 - rho.sum()
        grad = np.sqrt(2 * l1 * (a - amin))
        return m @ grad + amin, grad, rho
    hi = max(l1 * m.sum() ** 2 / 2 - amin, lo + 1e-300)  # sum rho(hi) <= 1
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if rho_of(mid).sum() > 1:
            lo = mid
        else:
            hi = mid
    nu = hi
    grad = np.sqrt(2 * l1 * (a + nu))
    return m @ grad - nu, grad, rho_of(nu)


def lbfgs_tau0(prog, args):
    """tau = 0: min (1/2N)|H(u - v) - y|^2 + g(u + v) over u, v >= 0 (bounds), g the reduced regularizer above
    (for lambda2 = 0, g = lambda1/2 (sum|w|)^2: the squared-L1 problem of claim C9)."""
    import numpy as np
    from scipy.optimize import minimize

    H, y, n, k = prog.H, prog.y, prog.n, prog.k

    def f(z):
        u, v = z[:k], z[k:]
        r = H @ (u - v) - y
        g, dg, _ = reduced_regularizer(prog, u + v)
        gr = H.T @ r / n
        return 0.5 * r @ r / n + g, np.concatenate([gr + dg, -gr + dg])

    best = None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        z, nit = np.zeros(2 * k), 0
        # L-BFGS-B can stop early (line-search failure, or its relative-reduction test) far from the optimum:
        # restart from its point (fresh memory) while that still lowers the objective (all restarts are timed).
        for _ in range(20):
            res = minimize(f, z, jac=True, method="L-BFGS-B", bounds=[(0, None)] * (2 * k),
                           options={"maxiter": 100000, "maxfun": 200000, "ftol": 1e-16, "gtol": 1e-12})
            nit += res.nit
            improved = f(z)[0] - res.fun > 1e-15 * abs(res.fun)
            z = res.x
            if not improved:
                break
        res.nit = nit
        dt = time.perf_counter() - t0
        if best is None or dt < best[1]:
            best = (res, dt)
    res, dt = best
    w = res.x[:k] - res.x[k:]
    _, _, rho = reduced_regularizer(prog, np.abs(w))
    P, D, rel = prog.certify(w, rho)
    return {"P": P, "D": D, "rel_gap": rel, "iterations": int(res.nit), "t_solve": dt, "t_total": dt,
            "formulation": "primal split w = u - v, u, v >= 0, rho eliminated in closed form"}


def lbfgs_dual(prog, args):
    """tau > 0: min_p Phi(p) = F*(p) + tau log sum rho0 exp(b(p)/tau) (smooth, convex, N variables)."""
    import numpy as np
    from scipy.optimize import minimize

    H, y, n, l1, tau = prog.H, prog.y, prog.n, prog.l1, prog.tau
    logr0 = np.log(prog.rho0)

    def f(p):
        s = H.T @ p
        e = logr0 + (s**2 / (2 * l1) - prog.a) / tau
        m = e.max()
        z = np.exp(e - m)
        zs = z.sum()
        rho = z / zs
        val = p @ y + n / 2 * p @ p + tau * (m + np.log(zs))
        return val, y + n * p + H @ (rho * s / l1)

    best = None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        res = minimize(f, -y / n, jac=True, method="L-BFGS-B",
                       options={"maxiter": 100000, "maxfun": 200000, "ftol": 1e-16, "gtol": 1e-13})
        dt = time.perf_counter() - t0
        if best is None or dt < best[1]:
            best = (res, dt)
    res, dt = best
    p = res.x
    s = H.T @ p
    e = logr0 + (s**2 / (2 * l1) - prog.a) / tau
    rho = np.exp(e - e.max())
    rho /= rho.sum()
    w = -rho * s / l1
    P, D, rel = prog.certify(w, rho, p_extra=p)
    return {"P": P, "D": D, "rel_gap": rel, "iterations": int(res.nit), "t_solve": dt, "t_total": dt,
            "formulation": "dual in p (smooth, convex)"}


def main():
    args = parse_args()
    ensure_deps(args.threads)
    import warnings

    import numpy as np

    warnings.filterwarnings("ignore", category=RuntimeWarning)
    if not os.path.exists(args.nff):
        alt = os.path.join(os.environ.get("CARGO_TARGET_DIR", ""), "release", "nff")
        if os.environ.get("CARGO_TARGET_DIR") and os.path.exists(alt):
            args.nff = alt
        else:
            raise SystemExit(f"nff binary not found at {args.nff}: run `cargo build --release -p nff-cli` or pass --nff")
    X, y, theta, rho0 = instance(args.k_per_axis, args.n, args.seed)
    names = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in names if c not in CASES]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}: choose among {list(CASES)}")
    cases = [(c, *CASES[c]) for c in names]
    print(f"K = {len(theta)}, N = {args.n}, threads = {args.threads}, best of {args.repeat}; "
          f"times in seconds; rel gap = certified (P - D)/|P| computed by this script")
    results = []
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for name, l1, l2, tau in cases:
            prog = Program(X, y, theta, rho0, l1, l2, tau)
            rows = [("nff", run_nff(prog, args, tmp, 1e-8)), ("cvxpy+Clarabel", run_clarabel(prog, args))]
            rows.append(("L-BFGS-B", lbfgs_tau0(prog, args) if tau == 0 else lbfgs_dual(prog, args)))
            ref = rows[0][1]
            print(f"\n[{name}] lambda1 = {l1}, lambda2 = {l2}, tau = {tau}")
            print(f"  {'solver':<16} {'P':>20} {'rel gap':>9} {'(P-P_nff)/P':>12} {'iters':>6} "
                  f"{'t solve':>9} {'t total':>9} {'solve/nff':>10} {'total/nff':>10}")
            for label, r in rows:
                dp = (r["P"] - ref["P"]) / abs(ref["P"])
                r["rel_diff_vs_nff"] = dp
                r["ratio_solve"] = r["t_solve"] / ref["t_solve"]
                r["ratio_total"] = r["t_total"] / ref["t_total"]
                print(f"  {label:<16} {r['P']:20.14e} {r['rel_gap']:9.1e} {dp:12.1e} {r['iterations']:>6} "
                      f"{r['t_solve']:9.4f} {r['t_total']:9.4f} {r['ratio_solve']:10.1f} {r['ratio_total']:10.1f}")
                if "formulation" in r:
                    print(f"  {'':<16} ({r['formulation']})")
            agree = all(abs(r["rel_diff_vs_nff"]) <= 1e-6 for _, r in rows)
            certified = ref["rel_gap"] <= 1e-8
            # nff's certified lower bound: no feasible point can be below it.
            below = [lbl for lbl, r in rows if r["P"] < ref["D"] - 1e-12 * abs(ref["D"])]
            print(f"  objectives agree to 1e-6: {agree}; nff certified <= 1e-8: "
                  f"{certified}; below nff's lower bound: {below or 'none'}")
            ok &= agree and certified and not below
            results.append({"case": name, "lambda1": l1, "lambda2": l2, "tau": tau,
                            "rows": {lbl: r for lbl, r in rows}})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"k": len(theta), "n": args.n, "threads": args.threads, "results": results}, f, indent=1,
                      default=float)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
