#!/usr/bin/env python3
"""Reference figures for `whittle bench linalg --compare`: the same operations on the same matrices
with numpy/scipy (OpenBLAS + LAPACK), single precision. Factorizations call scipy.linalg, whose
float32 paths run LAPACK's s-routines; numpy.linalg would silently compute in float64.

Install: apt-get install -y python3-numpy python3-scipy libopenblas0-pthread
Run with Debian's /usr/bin/python3, and do not import torch first (it drops OpenBLAS to one thread).
Writes {"gemm":[{"n":N,"seconds":S,"gflops":X}...], "svd":[...], "svd_rank64":[...], "cpqr":[...],
"cpqr_q":[...], "cholesky":[...], "svd_values":{"N":[σ...]}, "svd_values_exact":{"N":[σ...]}} like
Whittle's --json (svd_values: LAPACK's float32 result; svd_values_exact: the same matrix in float64).

With --decompose: reference figures for `whittle bench decompose --compare`, size n (default 1024), float32:
  id            Z = max(X·W, 0), X = uniform(16n, n/4, seed), W = uniform(n/4, n, seed+1) (untimed); k = n/2:
                scipy.linalg.qr(Z, pivoting=True, mode='r') + solve_triangular(R11, R12). (Z itself is not
                bit-identical to Whittle's: the float32 products X·W sum in a different order.)
  id_interp_decomp_float64   scipy.linalg.interpolative.interp_decomp(Z in float64, k, rand=False): that library
                works in double only, so this is not a like-for-like figure (shown as "reference only").
  cur           W = uniform(n, 4n, seed), r = n/4: full SVD of S = W (gesdd), the CURing reference DEIM written in
                numpy on U_s and V_s, C = W[:, J], R = W[I, :], U = pinv(C)·W·pinv(R).
  cur_randomized_svd  the same with the randomized SVD below instead of the full SVD (Whittle's DeimCur uses that).
  whitened_svd  W = uniform(n, n, seed), G = XᵀX for X = uniform(4n, n, seed+2) (untimed), rank n/4: cholesky(G),
                svd(W·L), L_c = U_c·Σ_c^½, R_c = Σ_c^½·V_cᵀ·L⁻¹ by solve_triangular.
"""
import argparse, json, statistics, time

import numpy as np
import scipy.linalg as sl


def uniform(rows, cols, seed):
    """Bit-identical to Whittle's BenchmarkMatrices.Uniform (lowbias32 hash of the flat index)."""
    k = np.arange(rows * cols, dtype=np.uint64).astype(np.uint32)
    with np.errstate(over="ignore"):
        h = (k * np.uint32(0x9E3779B1)) ^ np.uint32((seed * 0x85EBCA77) & 0xFFFFFFFF)
        h ^= h >> np.uint32(16)
        h *= np.uint32(0x7FEB352D)
        h ^= h >> np.uint32(15)
        h *= np.uint32(0x846CA68B)
        h ^= h >> np.uint32(16)
    v = (h >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24) - np.float32(0.5)
    return v.reshape(rows, cols)


def spd(n, seed):
    x = uniform(n, n, seed)
    return (x.T @ x) / np.float32(n) + np.eye(n, dtype=np.float32)


def randomized_svd(a, rank, oversample=10, power_iterations=2, seed=0):
    """Halko-Martinsson-Tropp range finder with QR re-orthonormalisation, as Whittle's TruncatedSvd."""
    rng = np.random.default_rng(seed)
    omega = rng.standard_normal((a.shape[1], rank + oversample)).astype(np.float32)
    q, _ = sl.qr(a @ omega, mode="economic", check_finite=False)
    for _ in range(power_iterations):
        q, _ = sl.qr(a.T @ q, mode="economic", check_finite=False)
        q, _ = sl.qr(a @ q, mode="economic", check_finite=False)
    u, s, vt = sl.svd(q.T @ a, full_matrices=False, check_finite=False)
    return (q @ u)[:, :rank], s[:rank], vt[:rank]


def activations(n, seed):
    x = uniform(16 * n, max(1, n // 4), seed)
    w = uniform(max(1, n // 4), n, seed + 1)
    return np.maximum(x @ w, np.float32(0))


def id_cpqr(z, k):
    r, piv = sl.qr(z, pivoting=True, mode="r", check_finite=False)
    t = sl.solve_triangular(r[:k, :k], r[:k, k:], check_finite=False)
    return piv[:k], t


def deim_reference(u):
    """The CURing code's DEIM: largest |entry| of column i among rows not yet picked, then deflate the remaining
    columns with that single row (as Whittle's DeimVariant.Reference)."""
    u = np.array(u, copy=True)
    n, r = u.shape
    picked = np.zeros(n, dtype=bool)
    p = []
    for i in range(r):
        col = np.abs(u[:, i])
        col[picked] = -1
        pi = int(np.argmax(col))
        p.append(pi)
        picked[pi] = True
        if i + 1 < r:
            a = u[pi, : i + 1]
            v = u[:, : i + 1] @ (a / (a @ a))
            u[:, i + 1 :] -= np.outer(v, u[pi, i + 1 :])
    return np.array(p)


def cur_deim(w, r, randomized=False):
    if randomized:
        us, _, vts = randomized_svd(w, r)
    else:
        us, _, vts = sl.svd(w, full_matrices=False, check_finite=False)
    rows = deim_reference(us[:, :r])
    cols = deim_reference(vts[:r].T)
    c, rr = w[:, cols], w[rows, :]
    core = sl.pinv(c, check_finite=False) @ w @ sl.pinv(rr, check_finite=False)
    return rows, cols, core


def whitened_svd(w, g, k):
    l = sl.cholesky(g, lower=True, check_finite=False)
    u, s, vt = sl.svd(w @ l, full_matrices=False, check_finite=False)
    root = np.sqrt(s[:k])
    left = u[:, :k] * root
    right = sl.solve_triangular(l, (root[:, None] * vt[:k]).T, trans="T", lower=True, check_finite=False).T
    return left, right


def decompose(args):
    import scipy.linalg.interpolative as sli

    out = {"id": [], "id_interp_decomp_float64": [], "cur": [], "cur_randomized_svd": [], "whitened_svd": []}
    for n in args.sizes or [1024]:
        z = activations(n, args.seed)
        k = n // 2
        med, best = measure(lambda: id_cpqr(z, k), args.repeats)
        out["id"].append({"n": n, "seconds": med, "min_seconds": best})
        z64 = z.astype(np.float64)
        med, best = measure(lambda: sli.interp_decomp(z64, k, rand=False), args.repeats)
        out["id_interp_decomp_float64"].append({"n": n, "seconds": med, "min_seconds": best})
        w = uniform(n, 4 * n, args.seed)
        r = max(1, n // 4)
        med, best = measure(lambda: cur_deim(w, r), args.repeats)
        out["cur"].append({"n": n, "seconds": med, "min_seconds": best})
        med, best = measure(lambda: cur_deim(w, r, randomized=True), args.repeats)
        out["cur_randomized_svd"].append({"n": n, "seconds": med, "min_seconds": best})
        w = uniform(n, n, args.seed)
        x = uniform(4 * n, n, args.seed + 2)
        g = x.T @ x
        med, best = measure(lambda: whitened_svd(w, g, n // 4), args.repeats)
        out["whitened_svd"].append({"n": n, "seconds": med, "min_seconds": best})
        print(f"n = {n}: " + ", ".join(f"{key} {v[-1]['seconds']:.4f} s" for key, v in out.items()))
    return out


def measure(run, repeats):
    run()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", required=True)
    p.add_argument("--gemm-sizes", type=int, nargs="*", default=[1024, 2048, 4096])
    p.add_argument("--sizes", type=int, nargs="*", default=None, help="default: 1024 2048 (--decompose: 1024)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--decompose", action="store_true", help="time the decompositions of `whittle bench decompose` instead")
    args = p.parse_args()
    if args.decompose:
        with open(args.json, "w") as f:
            json.dump(decompose(args), f, indent=1)
        print(f"wrote {args.json}")
        return
    args.sizes = args.sizes if args.sizes is not None else [1024, 2048]
    out = {"gemm": [], "svd": [], "svd_numpy_float64": [], "svd_rank64": [], "cpqr": [], "cpqr_q": [], "cholesky": [], "svd_values": {},
           "svd_values_exact": {}}

    for n in args.gemm_sizes:
        a, b = uniform(n, n, args.seed), uniform(n, n, args.seed + 1)
        med, best = measure(lambda: a @ b, args.repeats)
        out["gemm"].append({"n": n, "seconds": med, "min_seconds": best, "gflops": 2.0 * n ** 3 / med / 1e9})
    for n in args.sizes:
        a = uniform(n, n, args.seed)
        med, best = measure(lambda: sl.svd(a, full_matrices=False, check_finite=False), args.repeats)
        out["svd"].append({"n": n, "seconds": med, "min_seconds": best})
        out["svd_values"][str(n)] = sl.svd(a, compute_uv=False, check_finite=False).astype(float).tolist()
        # numpy.linalg computes float32 input in float64 (dgesdd): timed for reference, not compared.
        med, best = measure(lambda: np.linalg.svd(a, full_matrices=False), args.repeats)
        out["svd_numpy_float64"].append({"n": n, "seconds": med, "min_seconds": best})
        # The same float32 matrix factored in float64: "exact" singular values to judge both float32 results.
        out["svd_values_exact"][str(n)] = np.linalg.svd(a.astype(np.float64), compute_uv=False).tolist()
        med, best = measure(lambda: randomized_svd(a, 64), args.repeats)
        out["svd_rank64"].append({"n": n, "seconds": med, "min_seconds": best})
        med, best = measure(lambda: sl.qr(a, pivoting=True, mode="r", check_finite=False), args.repeats)
        out["cpqr"].append({"n": n, "seconds": med, "min_seconds": best})
        med, best = measure(lambda: sl.qr(a, pivoting=True, mode="economic", check_finite=False), args.repeats)
        out["cpqr_q"].append({"n": n, "seconds": med, "min_seconds": best})
        s = spd(n, args.seed)
        med, best = measure(lambda: sl.cholesky(s, lower=True, check_finite=False), args.repeats)
        out["cholesky"].append({"n": n, "seconds": med, "min_seconds": best, "gflops": n ** 3 / 3 / med / 1e9})
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
