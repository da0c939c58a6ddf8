#!/usr/bin/env python3
"""Side by side: one velocity evaluation and one GD step (math.md §2) in nff, numpy and PyTorch (CPU, f64).

Not part of the test suite. On first use it creates a venv at benches/compare/.venv and installs numpy and
torch into it (torch from the CPU wheel index https://download.pytorch.org/whl/cpu, falling back to PyPI).

    python3 benches/compare/gd_step.py                       # DNN, m = 2048, N = 64, L = 4, 2 threads
    python3 benches/compare/gd_step.py --arch resnet --width 1024 --threads 1
    python3 benches/compare/gd_step.py --skip-torch

What it does, all in one run:
 1. builds the nff side (`cargo build --release --example gd_compare`; honours CARGO_TARGET_DIR) and writes
    an i.i.d. initial state .npz with it (schema: X, y, A, W (L-1, m, m), v, depth, resnet);
 2. runs nff, numpy and torch on that file, each in its own process with the same thread count
    (RAYON_NUM_THREADS / OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS / torch.set_num_threads);
    numpy runs with OPENBLAS_CORETYPE unset so OpenBLAS picks the machine's fastest kernel;
 3. each tool times `--reps` velocity evaluations at the state and `--steps` consecutive GD steps from it
    (median per evaluation / step, after one warm-up), and writes its velocity, objectives and final state;
    the tools take turns for `--rounds` rounds (default 5) and each keeps its fastest round, so that a slow
    spell of a shared machine does not land on one tool only; each tool's fastest single step over all
    rounds is printed too (noise only adds time, so it is the steadiest estimate of a step's cost);
 4. checks numpy's and torch's results agree with nff's to 1e-10 (max abs difference relative to the
    array's max abs value) and prints the times and the ratios tool / nff.

Model: tanh, squared loss (1/N) sum (yhat - y)^2 / 2, L2 regularizer
lambda/2 (|A|^2/m + sum_l |W_l|^2/m^2 + |v|^2/m); GD theta <- theta + eta * velocity (velocities are the
scaled negative gradients -m dJ/dA, -m^2 dJ/dW, -m dJ/dv).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VENV = os.path.join(HERE, ".venv")
TOL = 1e-10


# --------------------------------------------------------------------------------------------------
# environment
# --------------------------------------------------------------------------------------------------
def ensure_deps(need_torch):
    """Re-exec inside benches/compare/.venv with numpy (and torch) installed."""
    try:
        import numpy  # noqa: F401

        if need_torch:
            import torch  # noqa: F401
        return
    except ImportError:
        pass
    py = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.executable) == os.path.realpath(py) and os.environ.get("NFF_COMPARE_REEXEC"):
        raise SystemExit("dependencies missing inside %s; delete it and retry" % VENV)
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
    pip = [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.check_call(pip + ["numpy"])
    if need_torch:
        try:
            subprocess.check_call(pip + ["torch", "--index-url", "https://download.pytorch.org/whl/cpu"])
        except subprocess.CalledProcessError:
            print("CPU wheel index unreachable; installing torch from PyPI", file=sys.stderr)
            subprocess.check_call(pip + ["torch"])
    env = dict(os.environ, NFF_COMPARE_REEXEC="1")
    os.execve(py, [py] + sys.argv, env)


def thread_env(threads, tool):
    env = dict(os.environ)
    for k in ("RAYON_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(threads)
    if tool == "numpy":
        env.pop("OPENBLAS_CORETYPE", None)
    return env


def nff_binary():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    subprocess.check_call(
        ["cargo", "build", "--release", "--quiet", "--example", "gd_compare"], cwd=ROOT
    )
    return os.path.join(target, "release", "examples", "gd_compare")


# --------------------------------------------------------------------------------------------------
# the numpy and torch implementations (run in worker processes)
# --------------------------------------------------------------------------------------------------
def load_state(path):
    import numpy as np

    z = np.load(path)
    s = {k: z[k] for k in z.files}
    depth = int(s["depth"])
    resnet = bool(float(s.get("resnet", 0.0)))
    W = s["W"] if depth > 1 else np.zeros((0,) + (s["A"].shape[1],) * 2)
    return s["X"], s["y"], s["A"], W, s["v"], resnet


def numpy_forward(X, y, A, W, v, resnet):
    import numpy as np

    m = A.shape[1]
    Z = X @ A
    H, D = [], []
    for l in range(W.shape[0] + 1):
        h = np.tanh(Z)
        H.append(h)
        D.append(1.0 - h * h)
        if l < W.shape[0]:
            Zn = h @ W[l]
            Zn *= 1.0 / m
            if resnet:
                Zn += Z
            Z = Zn
    yhat = H[-1] @ v * (1.0 / m)
    e = yhat - y
    return H, D, e


def objective(e, A, W, v, lam, m):
    risk = 0.5 * float((e * e).sum()) / e.shape[0]
    reg = float((A * A).sum() + (v * v).sum()) / m + sum(float((w * w).sum()) for w in W) / m**2
    return risk + 0.5 * lam * reg


def numpy_velocities(X, y, A, W, v, lam, resnet):
    import numpy as np

    m = A.shape[1]
    H, D, e = numpy_forward(X, y, A, W, v, resnet)
    r = e / X.shape[0]
    G = D[-1] * np.outer(r, v)
    dW = np.empty_like(W)
    for l in reversed(range(W.shape[0])):
        np.matmul(H[l].T, G, out=dW[l])
        dW[l] *= -1.0
        dW[l] -= lam * W[l]
        Gl = G @ W[l].T
        Gl *= 1.0 / m
        Gl *= D[l]
        if resnet:
            Gl += G
        G = Gl
    dA = -(X.T @ G) - lam * A
    dv = -(H[-1].T @ r) - lam * v
    return objective(e, A, W, v, lam, m), dA, dW, dv


def numpy_gd_step(X, y, A, W, v, eta, lam, resnet):
    """One GD step in place; one m x m temporary (reused) for the W updates. Returns J before the step."""
    import numpy as np

    m = A.shape[1]
    H, D, e = numpy_forward(X, y, A, W, v, resnet)
    J = objective(e, A, W, v, lam, m)
    r = e / X.shape[0]
    G = D[-1] * np.outer(r, v)
    P = np.empty((m, m)) if W.shape[0] else None
    for l in reversed(range(W.shape[0])):
        Gl = G @ W[l].T  # uses the old W_l
        Gl *= 1.0 / m
        Gl *= D[l]
        if resnet:
            Gl += G
        np.matmul(H[l].T, G, out=P)
        P *= -eta
        W[l] *= 1.0 - eta * lam
        W[l] += P
        G = Gl
    dA = -(X.T @ G) - lam * A
    dv = -(H[-1].T @ r) - lam * v
    A += eta * dA
    v += eta * dv
    return J


def torch_velocities(T, X, y, A, W, v, lam, resnet):
    m = A.shape[1]
    H, D, e = torch_forward(T, X, y, A, W, v, resnet)
    r = e / X.shape[0]
    G = D[-1] * T.outer(r, v)
    dW = T.empty_like(W)
    for l in reversed(range(W.shape[0])):
        T.addmm(W[l], H[l].T, G, beta=-lam, alpha=-1.0, out=dW[l])
        G = T.addcmul(G if resnet else T.zeros_like(G), D[l], G @ W[l].T, value=1.0 / m)
    dA = -(X.T @ G) - lam * A
    dv = -(H[-1].T @ r) - lam * v
    return torch_objective(e, A, W, v, lam, m), dA, dW, dv


def torch_forward(T, X, y, A, W, v, resnet):
    m = A.shape[1]
    Z = X @ A
    H, D = [], []
    for l in range(W.shape[0] + 1):
        h = T.tanh(Z)
        H.append(h)
        D.append(1.0 - h * h)
        if l < W.shape[0]:
            Z = T.addmm(Z, h, W[l], beta=1.0 if resnet else 0.0, alpha=1.0 / m)
    yhat = T.mv(H[-1], v) * (1.0 / m)
    return H, D, yhat - y


def torch_objective(e, A, W, v, lam, m):
    risk = 0.5 * float((e * e).sum()) / e.shape[0]
    reg = float((A * A).sum() + (v * v).sum()) / m + float((W * W).sum()) / m**2
    return risk + 0.5 * lam * reg


def torch_gd_step(T, X, y, A, W, v, eta, lam, resnet):
    """One GD step in place; the W update is one fused addmm_ (W <- (1 - eta lam) W - eta H^T G)."""
    m = A.shape[1]
    H, D, e = torch_forward(T, X, y, A, W, v, resnet)
    J = torch_objective(e, A, W, v, lam, m)
    r = e / X.shape[0]
    G = D[-1] * T.outer(r, v)
    for l in reversed(range(W.shape[0])):
        Gl = T.addcmul(G if resnet else T.zeros_like(G), D[l], G @ W[l].T, value=1.0 / m)
        W[l].addmm_(H[l].T, G, beta=1.0 - eta * lam, alpha=-eta)
        G = Gl
    dA = -(X.T @ G) - lam * A
    dv = -(H[-1].T @ r) - lam * v
    A.add_(dA, alpha=eta)
    v.add_(dv, alpha=eta)
    return J


def median(t):
    t = sorted(t)
    return t[len(t) // 2]


def worker(args):
    """Time one tool on the state; write vel.npz, objectives.npz, final.npz into args.out."""
    import numpy as np

    X, y, A, W, v, resnet = load_state(args.state)
    os.makedirs(args.out, exist_ok=True)
    lam, eta = args.lam, args.eta
    if args.worker == "numpy":
        vel = lambda: numpy_velocities(X, y, A, W, v, lam, resnet)  # noqa: E731
        arrays = (A.copy(), W.copy(), v.copy())
        step = lambda a, w, vv: numpy_gd_step(X, y, a, w, vv, eta, lam, resnet)  # noqa: E731
        to_np = lambda t: t  # noqa: E731
        copy = lambda t: t.copy()  # noqa: E731
        info = {"numpy": np.__version__}
        try:
            cfg = np.show_config(mode="dicts")
            info["blas"] = cfg["Build Dependencies"]["blas"].get("name", "?")
        except Exception:  # noqa: BLE001
            pass
    else:
        import torch as T

        T.set_num_threads(args.threads)
        tX, ty, tA, tW, tv = (T.from_numpy(np.ascontiguousarray(a)) for a in (X, y, A, W, v))
        vel = lambda: torch_velocities(T, tX, ty, tA, tW, tv, lam, resnet)  # noqa: E731
        arrays = (tA.clone(), tW.clone(), tv.clone())
        step = lambda a, w, vv: torch_gd_step(T, tX, ty, a, w, vv, eta, lam, resnet)  # noqa: E731
        to_np = lambda t: t.numpy()  # noqa: E731
        copy = lambda t: t.clone()  # noqa: E731
        info = {"torch": T.__version__, "threads_torch": T.get_num_threads()}

    out = vel()  # warm-up
    tv_ = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        out = vel()
        tv_.append(time.perf_counter() - t0)
    J, dA, dW, dv = out
    np.savez(os.path.join(args.out, "vel.npz"), A=to_np(dA), W=to_np(dW), v=to_np(dv), J=np.float64(J))
    del out, dA, dW, dv

    step(*(copy(a) for a in arrays))  # warm-up on a copy
    a, w, vv = arrays
    ts, js = [], []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        js.append(step(a, w, vv))
        ts.append(time.perf_counter() - t0)
    np.savez(os.path.join(args.out, "final.npz"), A=to_np(a), W=to_np(w), v=to_np(vv))
    np.savez(os.path.join(args.out, "objectives.npz"), J=np.array(js))
    info.update(tool=args.worker, threads=args.threads, velocities_s=median(tv_), gd_step_s=median(ts),
                gd_step_min_s=min(ts))
    print(json.dumps(info))


# --------------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------------
def max_rel(a, b):
    import numpy as np

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return float("inf")
    scale = max(float(np.abs(b).max()) if b.size else 0.0, 1e-300)
    return float(np.abs(a - b).max()) / scale if b.size else 0.0


def compare(tool_dir, nff_dir):
    import numpy as np

    errs = {}
    for name, keys in (("vel.npz", ("A", "W", "v", "J")), ("final.npz", ("A", "W", "v")), ("objectives.npz", ("J",))):
        t, n = np.load(os.path.join(tool_dir, name)), np.load(os.path.join(nff_dir, name))
        for k in keys:
            errs["%s:%s" % (name.split(".")[0], k)] = max_rel(t[k], n[k])
    return errs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="dnn", choices=["dnn", "resnet"])
    ap.add_argument("--width", type=int, default=2048)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--d", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=7)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=5,
                    help="run the tools in turn this many times and keep each tool's fastest round")
    ap.add_argument("--eta", type=float, default=0.05)
    ap.add_argument("--lambda", dest="lam", type=float, default=1e-3)
    ap.add_argument("--workdir", default=os.path.join(HERE, ".work"))
    ap.add_argument("--skip-torch", action="store_true")
    ap.add_argument("--worker", choices=["numpy", "torch"], help=argparse.SUPPRESS)
    ap.add_argument("--state", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    ensure_deps(not args.skip_torch)

    work = args.workdir
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    exe = nff_binary()
    state = os.path.join(work, "state.npz")
    subprocess.check_call(
        [exe, "--make", "--state", state, "--arch", args.arch, "--width", str(args.width),
         "--depth", str(args.depth), "--n", str(args.n), "--d", str(args.d), "--seed", str(args.seed)]
    )
    common = ["--state", state, "--steps", str(args.steps), "--reps", str(args.reps),
              "--eta", repr(args.eta), "--lambda", repr(args.lam), "--threads", str(args.threads)]
    tools = ["numpy"] + ([] if args.skip_torch else ["torch"])

    def run(tool):
        if tool == "nff":
            cmd = [exe] + common + ["--out", os.path.join(work, "nff")]
        else:
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", tool, "--out", os.path.join(work, tool)]
            cmd += common
        out = subprocess.check_output(cmd, env=thread_env(args.threads, tool), text=True)
        return json.loads(out.strip().splitlines()[-1])

    # The tools take turns, round after round, so a slow spell of a shared machine hits them all alike;
    # each tool's fastest round (by GD step) is reported.
    # Besides that round's median step, each tool's fastest single step over all rounds is kept: noise on a
    # shared machine only ever adds time, so the minimum is the steadiest estimate of a step's own cost.
    results, fastest = {}, {}
    for _ in range(max(args.rounds, 1)):
        for tool in ["nff"] + tools:
            r = run(tool)
            if tool not in results or r["gd_step_s"] < results[tool]["gd_step_s"]:
                results[tool] = r
            fastest[tool] = min(fastest.get(tool, float("inf")), r["gd_step_min_s"])

    nffr = results["nff"]
    flops = nffr["gemm_flops"]
    print("\n%s, m = %d, N = %d, L = %d, d = %d, %d thread(s), eta = %g, lambda = %g, best of %d rounds"
          % (args.arch, args.width, args.n, args.depth, args.d, args.threads, args.eta, args.lam,
             max(args.rounds, 1)))
    print("%-8s %14s %14s %12s %12s %14s %14s %10s" % (
        "tool", "velocities ms", "GD step ms", "GD GFLOP/s", "step / nff", "fastest step", "fastest / nff",
        "max rel err"))
    ok = True
    for tool in ["nff"] + tools:
        r = results[tool]
        if tool == "nff":
            err = "-"
        else:
            errs = compare(os.path.join(work, tool), os.path.join(work, "nff"))
            worst = max(errs.values())
            ok &= worst <= TOL
            err = "%.1e" % worst
            if worst > TOL:
                print("  %s disagrees with nff: %s" % (tool, errs))
        print("%-8s %14.2f %14.2f %12.1f %11.2fx %14.2f %13.2fx %10s" % (
            tool, 1e3 * r["velocities_s"], 1e3 * r["gd_step_s"], flops / r["gd_step_s"] / 1e9,
            r["gd_step_s"] / nffr["gd_step_s"], 1e3 * fastest[tool], fastest[tool] / fastest["nff"], err))
    for tool in tools:
        extra = {k: v for k, v in results[tool].items() if k in ("numpy", "blas", "torch", "threads_torch")}
        print("  %s: %s" % (tool, extra))
    print("agreement with nff to %g: %s" % (TOL, "yes" if ok else "NO"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
