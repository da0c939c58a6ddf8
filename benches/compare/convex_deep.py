#!/usr/bin/env python3
"""Side-by-side: nff's deep convex program (math.md §4.2-4.4) against cvxpy + Clarabel on the same program, for
several candidate counts per layer. Not part of the test suite.

Usage (from the repository root):
    python3 -m pip install numpy cvxpy clarabel
    cargo build --release -p nff-cli
    python3 benches/compare/convex_deep.py [--candidates 25,50,100] [--threads 1] [--solver auto] [--clarabel-tol 1e-10]
        [--nff target/release/nff]

The thread count is applied to every tool: OMP/OPENBLAS/MKL/RAYON_NUM_THREADS for numpy and Clarabel,
`nff --threads` for nff (default 1: the comparison machine's cores are shared).

One run, for each n in --candidates:
 (i)  the instance, built by nff: `nff train` of a depth-3 tanh DNN of width n/2 (i.i.d. init, N = 16 sine points,
      d = 4 (with d = 2 the first-layer features h(Xa) are nearly rank 2: nff's interior point hits its iteration
      limit on seed 0), 300 GD steps of eta = 0.05 with the group norms lambda = 0.01, q = 2), then `nff convex --problem deep
      --init STATE --fresh (n - n/2) --export-program PROG.npz`: its n/2 particles plus fresh candidates per layer,
      uniform pi (the instance of benches/deep_convex.rs, built through the CLI; docs/convex_deep.md has the file format);
 (ii) nff: `nff convex --problem deep --program PROG.npz --solver S` (--solver, default auto: nff's second-order-cone
      interior point where it applies, Clarabel otherwise); time = its
      `solve_seconds` (in-process, the fastest of --repeat), objective = `objective`;
 (iii) cvxpy + Clarabel: the same program built from the arrays of PROG.npz, in the mass variables of
      solvers/src/deep/mod.rs: p_l >= 0 (n_l), U_l (n_l x n_(l+1)), vhat (n_L),
         sum_j p_l(j) = 1,   h(Z_l) U_l = Z_(l+1) diag(p_(l+1)),   yhat = h(Z_L) vhat,
         min R(yhat) + sum_l lambda_l [sum_k Sin_k^q / p_(l+1),k^(q-1) + sum_j Sout_j^q / p_l,j^(q-1)]
             + lambda_v sum_j |vhat_j|^q / p_L,j^(q-1) + r1 . p_1 + sum_l beta_l sum_j rel_entr(p_l(j), pi_l(j)),
      Sin = column sums of |U|, Sout = row sums, r1(j) = lambda_a |pinv(X) z_1j|^2 / 2 computed here (checked against
      the file's r1). Each perspective S^q/p^(q-1) <= t is one cone: for q = 2 the rotated second-order cone
      S^2 <= t p (what cp.quad_over_lin(S, p) canonicalizes to, written vectorized as cp.SOC(t + p, [2S, t - p])),
      for other q the power cone cp.PowCone3D(t, p, S, 1/q) (t^(1/q) p^(1-1/q) >= |S|); S >= sum |U| (cp.abs), the
      entropy cp.rel_entr (an exponential cone). Solved with solver=cp.CLARABEL, at its default tolerances or, with
      --clarabel-tol T, with tol_gap_abs = tol_gap_rel = tol_feas = T (and tol_ktratio = T/100) so that its objective can be
      compared with nff's at 1e-7 relative (at the defaults, 1e-8, it differs by up to 4e-7);
      times: Clarabel's own `solver_stats.solve_time`, cvxpy's compile time (`problem.compilation_time`) separately;
 (iv) both objectives side by side, each also re-evaluated by this script at the tool's point (the same numpy
      evaluator for both), with their relative difference, the tool's primal residual (constraints, evaluated here),
      nff's certified lower bound (`dual_bound`) and termination, and the time ratio.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
LAMBDA, Q, DEPTH, N_POINTS, D = 0.01, 2.0, 3, 16, 4


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--candidates", default="25,50,100", help="candidates per layer, comma-separated")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--solver", default="auto", help="nff's deep solver: auto, socp, clarabel, ipm, alm or structured")
    ap.add_argument("--clarabel-tol", type=float, default=None,
                    help="Clarabel's tol_gap_abs = tol_gap_rel = tol_feas (default: Clarabel's own, 1e-8)")
    ap.add_argument("--repeat", type=int, default=1, help="timing repetitions (the fastest is reported)")
    ap.add_argument("--nff", default=os.path.join(ROOT, "target", "release", "nff"),
                    help="the nff binary (default target/release/nff; CARGO_TARGET_DIR is honoured)")
    ap.add_argument("--json", help="also write the results here")
    return ap.parse_args()


def set_threads(threads):
    """Thread variables must be set before numpy is imported: re-exec once with them."""
    changed = False
    for v in THREAD_VARS:
        if os.environ.get(v) != str(threads):
            os.environ[v] = str(threads)
            changed = True
    if changed:
        os.execve(sys.executable, [sys.executable] + sys.argv, os.environ)
    try:
        import cvxpy  # noqa: F401
        import numpy  # noqa: F401
        import clarabel  # noqa: F401
    except ImportError as e:
        raise SystemExit(f"{e}: install the comparison's dependencies with `python3 -m pip install numpy cvxpy clarabel`")


def run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {out.stderr.strip()}")
    return out


class Program:
    """The deep program of a program/solution .npz (docs/convex_deep.md)."""

    def __init__(self, path):
        import numpy as np

        f = np.load(path)
        name = lambda k: bytes(f[k].astype(np.uint8)).decode()
        self.activation, self.loss = name("activation"), name("loss")
        self.h = {"tanh": np.tanh, "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
                  "softplus": lambda x: np.logaddexp(0, x), "relu": lambda x: np.maximum(x, 0)}[self.activation]
        self.X, self.y = f["X"], f["y"]
        self.L = sum(1 for k in f.files if k.startswith("z") and k[1:].isdigit())
        self.z = [f[f"z{l+1}"] for l in range(self.L)]
        self.pi = [f[f"pi{l+1}"] for l in range(self.L)]
        self.H = [self.h(z) for z in self.z]
        self.la, self.lw, self.lv = float(f["lambda_a"]), f["lambda_w"], float(f["lambda_v"])
        self.q, self.beta = float(f["q"]), f["beta"]
        amin = np.linalg.pinv(self.X) @ self.z[0]
        self.r1 = self.la * 0.5 * np.sum(amin**2, axis=0)
        self.r1_diff = float(np.abs(self.r1 - f["r1"]).max() / max(np.abs(f["r1"]).max(), 1e-300))
        self.sizes = [z.shape[1] for z in self.z]
        self.n = len(self.y)

    def risk(self, yhat):
        import numpy as np

        if self.loss == "squared":
            return 0.5 * np.mean((yhat - self.y) ** 2)
        return np.mean(np.logaddexp(0, -self.y * yhat))

    def objective(self, p, U, vh):
        """The exact objective in mass variables (+inf off the domain), p clipped at 0."""
        import numpy as np

        q = self.q
        p = [np.maximum(x, 0.0) for x in p]

        def persp(S, t):
            with np.errstate(divide="ignore", invalid="ignore"):
                val = np.where(S == 0, 0.0, S**q / t ** (q - 1))
            return np.sum(np.where((t <= 0) & (S != 0), np.inf, val))

        val = self.risk(self.H[-1] @ vh)
        for l in range(self.L - 1):
            A = np.abs(U[l])
            val += self.lw[l] * (persp(A.sum(axis=0), p[l + 1]) + persp(A.sum(axis=1), p[l]))
        val += self.lv * persp(np.abs(vh), p[-1])
        val += self.r1 @ p[0]
        for b, pp, pw in zip(self.beta, p, self.pi):
            if b > 0:
                pos = pp > 0
                val += b * np.sum(pp[pos] * np.log(pp[pos] / pw[pos]))
        return float(val)

    def residual(self, p, U):
        """Max violation of the mass and consistency constraints (mass units) and of p >= 0."""
        import numpy as np

        r = max(abs(x.sum() - 1) for x in p)
        r = max(r, max(float(-x.min()) for x in p), 0.0)
        for l in range(self.L - 1):
            r = max(r, float(np.abs(self.H[l] @ U[l] - self.z[l + 1] * p[l + 1][None, :]).max()))
        return r

    def from_solution(self, path):
        """nff's point (density form) in mass variables."""
        import numpy as np

        f = np.load(path)
        p = [self.pi[l] * f[f"rho{l+1}"] for l in range(self.L)]
        U = [self.pi[l][:, None] * self.pi[l + 1][None, :] * f[f"u{l+2}"] for l in range(self.L - 1)]
        vh = self.pi[-1] * f[f"u{self.L+1}"]
        return p, U, vh


def build_instance(args, tmp, n):
    width = n // 2
    train = os.path.join(tmp, f"train{n}")
    run([args.nff, "train", "--arch", "dnn", "--depth", str(DEPTH), "--width", str(width), "--init", "iid",
         "--n", str(N_POINTS), "--d", str(D), "--reg", "group", "--lambda", repr(LAMBDA), "--q", repr(Q),
         "--steps", "300", "--eta", "0.05", "--seed", str(args.seed), "--threads", str(args.threads), "--quiet",
         "--out", train])
    prog = os.path.join(tmp, f"prog{n}.npz")
    run([args.nff, "convex", "--problem", "deep", "--init", os.path.join(train, "state.npz"), "--fresh",
         str(n - width), "--lambda", repr(LAMBDA), "--q", repr(Q), "--seed", str(args.seed), "--quiet",
         "--export-program", prog])
    return prog


def run_nff(args, tmp, prog_path, program):
    out = os.path.join(tmp, f"nff{program.sizes[0]}")
    t0 = time.perf_counter()
    run([args.nff, "convex", "--problem", "deep", "--program", prog_path, "--solver", args.solver, "--threads",
         str(args.threads), "--repeat", str(args.repeat), "--quiet", "--out", out])
    wall = time.perf_counter() - t0
    with open(os.path.join(out, "summary.json")) as f:
        s = json.load(f)
    p, U, vh = program.from_solution(os.path.join(out, "solution.npz"))
    return {"objective": s["objective"], "evaluated": program.objective(p, U, vh),
            "residual": program.residual(p, U), "t_solve": s["solve_seconds"], "t_compile": None,
            "t_total": wall / args.repeat, "iterations": s["iterations"], "status": s["termination"],
            "relative_gap": s["relative_gap"], "dual_bound": s["dual_bound"], "method": s["method"]}


def run_clarabel(args, program):
    import cvxpy as cp
    import numpy as np

    best = None
    for _ in range(args.repeat):
        L, q, sizes = program.L, program.q, program.sizes
        p = [cp.Variable(nl, nonneg=True) for nl in sizes]
        U = [cp.Variable((sizes[l], sizes[l + 1])) for l in range(L - 1)]
        vh = cp.Variable(sizes[-1])
        cons = [cp.sum(x) == 1 for x in p]
        for l in range(L - 1):
            cons.append(program.H[l] @ U[l] == program.z[l + 1] @ cp.diag(p[l + 1]))

        def perspective(S, t, lam):
            """lam * sum_k S_k^q / t_k^(q-1), S >= 0 affine, t >= 0: epigraph variables and one cone each."""
            e = cp.Variable(S.shape[0])
            if q == 2.0:
                cons.append(cp.SOC(e + t, cp.vstack([2 * S, e - t]), axis=0))
            elif q == 1.0:
                return lam * cp.sum(S)
            else:
                cons.append(cp.PowCone3D(e, t, S, 1.0 / q))
            return lam * cp.sum(e)

        yhat = program.H[-1] @ vh
        if program.loss == "squared":
            obj = cp.sum_squares(yhat - program.y) / (2 * program.n)
        else:
            obj = cp.sum(cp.logistic(-cp.multiply(program.y, yhat))) / program.n
        for l in range(L - 1):
            s_in, s_out = cp.Variable(sizes[l + 1]), cp.Variable(sizes[l])
            cons += [s_in >= cp.sum(cp.abs(U[l]), axis=0), s_out >= cp.sum(cp.abs(U[l]), axis=1)]
            obj = obj + perspective(s_in, p[l + 1], program.lw[l]) + perspective(s_out, p[l], program.lw[l])
        s_v = cp.Variable(sizes[-1])
        cons.append(s_v >= cp.abs(vh))
        obj = obj + perspective(s_v, p[-1], program.lv) + program.r1 @ p[0]
        for l in range(L):
            if program.beta[l] > 0:
                obj = obj + program.beta[l] * cp.sum(cp.rel_entr(p[l], program.pi[l]))
        problem = cp.Problem(cp.Minimize(obj), cons)
        t0 = time.perf_counter()
        tol = {} if args.clarabel_tol is None else {
            "tol_gap_abs": args.clarabel_tol, "tol_gap_rel": args.clarabel_tol, "tol_feas": args.clarabel_tol,
            "tol_ktratio": args.clarabel_tol / 100, "max_iter": 400}
        problem.solve(solver=cp.CLARABEL, **tol)
        total = time.perf_counter() - t0
        stats = problem.solver_stats
        point = ([np.asarray(x.value) for x in p], [np.asarray(x.value) for x in U], np.asarray(vh.value))
        row = {"objective": float(problem.value), "evaluated": program.objective(*point),
               "residual": program.residual(point[0], point[1]), "t_solve": stats.solve_time,
               "t_compile": problem.compilation_time, "t_total": total, "iterations": stats.num_iters,
               "status": problem.status}
        if best is None or row["t_solve"] < best["t_solve"]:
            best = row
    return best


def main():
    args = parse_args()
    set_threads(args.threads)
    import numpy as np  # noqa: F401

    if not os.path.exists(args.nff):
        alt = os.path.join(os.environ.get("CARGO_TARGET_DIR", ""), "release", "nff")
        if os.environ.get("CARGO_TARGET_DIR") and os.path.exists(alt):
            args.nff = alt
        else:
            raise SystemExit(f"nff binary not found at {args.nff}: run `cargo build --release -p nff-cli` or pass --nff")
    sizes = [int(c) for c in args.candidates.split(",") if c.strip()]
    print(f"deep program: depth {DEPTH}, N = {N_POINTS}, d = {D}, lambda = {LAMBDA}, q = {Q}, tanh, squared loss; "
          f"threads = {args.threads}, best of {args.repeat}; times in seconds; Clarabel tolerances: "
          f"{'defaults' if args.clarabel_tol is None else args.clarabel_tol}")
    print("  P = the tool's reported objective; P_eval = the same program evaluated by this script at the tool's point;"
          " resid = max constraint violation (mass units)")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            prog_path = build_instance(args, tmp, n)
            program = Program(prog_path)
            rows = [(f"nff {args.solver}", run_nff(args, tmp, prog_path, program)),
                    ("cvxpy+Clarabel", run_clarabel(args, program))]
            ref = rows[0][1]
            print(f"\n[n = {n} candidates per layer: {program.sizes}; r1 rebuilt here vs file: {program.r1_diff:.1e}]")
            print(f"  {'solver':<15} {'P':>20} {'P_eval':>20} {'(P-P_nff)/|P_nff|':>18} {'resid':>8} {'iters':>6} "
                  f"{'t solve':>9} {'t compile':>9} {'t total':>9} {'solve/nff':>9}  status")
            for label, r in rows:
                r["rel_diff_vs_nff"] = (r["evaluated"] - ref["evaluated"]) / abs(ref["evaluated"])
                r["ratio_solve"] = r["t_solve"] / ref["t_solve"]
                comp = "" if r["t_compile"] is None else f"{r['t_compile']:9.3f}"
                print(f"  {label:<15} {r['objective']:20.13e} {r['evaluated']:20.13e} {r['rel_diff_vs_nff']:18.2e} "
                      f"{r['residual']:8.1e} {r['iterations']:>6} {r['t_solve']:9.3f} {comp:>9} {r['t_total']:9.3f} "
                      f"{r['ratio_solve']:9.3f}  {r['status']}")
            below = [lbl for lbl, r in rows if r["evaluated"] < ref["dual_bound"] - 1e-9 * abs(ref["dual_bound"])]
            print(f"  nff: {ref['method']}, termination {ref['status']}, certified relative gap {ref['relative_gap']:.2e} "
                  f"(lower bound {ref['dual_bound']:.13e}); below nff's lower bound: {below or 'none'}")
            results.append({"n": n, "sizes": program.sizes, "rows": {lbl: r for lbl, r in rows}})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "n_points": N_POINTS, "depth": DEPTH, "lambda": LAMBDA, "q": Q,
                       "results": results}, f, indent=1, default=float)


if __name__ == "__main__":
    main()
