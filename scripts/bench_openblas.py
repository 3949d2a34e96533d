#!/usr/bin/env python3
"""Reference figures for `whittle bench linalg --compare`: the same operations on the same matrices
with numpy/scipy (OpenBLAS + LAPACK), single precision. Factorizations call scipy.linalg, whose
float32 paths run LAPACK's s-routines; numpy.linalg would silently compute in float64.

Install: apt-get install -y python3-numpy python3-scipy libopenblas0-pthread
Run with Debian's /usr/bin/python3, and do not import torch first (it drops OpenBLAS to one thread).
Writes {"gemm":[{"n":N,"seconds":S,"gflops":X}...], "svd":[...], "svd_rank64":[...], "cpqr":[...],
"cpqr_q":[...], "cholesky":[...], "svd_values":{"N":[σ...]}, "svd_values_exact":{"N":[σ...]}} like
Whittle's --json (svd_values: LAPACK's float32 result; svd_values_exact: the same matrix in float64).
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
    p.add_argument("--sizes", type=int, nargs="*", default=[1024, 2048])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
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
