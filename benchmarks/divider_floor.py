"""How far can Adam on a cache-resident array go? The divider floor, measured.

Issue 5 asks Adam at n=1e6 (float32, 2 threads) to be 2x faster than torch's ``fused=True``. At that size the
arrays live in the last-level cache and the update is bound by the core, chiefly by its divider: the square
root and the division every element needs. This script compiles (``-O3 -march=native``, OpenMP) four variants
of one plain Adam loop and times them in the same process as fusedoptim and torch fused, on the same arrays:

* ``torch arithmetic``: sqrt and two divisions (``sqrt(v) / sqrt(bc2) + eps``, then ``m / denom``), as torch;
* ``fusedoptim arithmetic``: sqrt and one division (the reciprocal of sqrt(bc2) multiplied), fusedoptim's form;
* ``no sqrt``: one division, no square root (not Adam: a lower bound);
* ``no sqrt, no division``: neither (not Adam: what loads, stores and the other arithmetic cost alone).

The last line's time bounds every correct Adam kernel from below, so ``torch fused / that`` is the largest
ratio any implementation could show against torch fused on this machine. Run::

    python benchmarks/divider_floor.py [--n 1000000] [--threads 2] [--out benchmarks/results]

It writes ``divider_floor.json`` and ``divider_floor.md`` to ``--out`` and prints the table.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

import fusedoptim
from fusedoptim.cli.bench.native import NativeUnavailable, compile_library

SOURCE = r"""
#include <cmath>
#include <cstdint>
template <int V>
static void adam(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v,
                 int64_t n, float w, float b2, float omb2, float nss, float bc2, float eps, int threads) {
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        const float gi = g[i];
        const float mi = m[i] + w * (gi - m[i]);
        const float vi = v[i] * b2 + (omb2 * gi) * gi;
        m[i] = mi;
        v[i] = vi;
        if constexpr (V == 0) p[i] = p[i] + (nss * mi) / (std::sqrt(vi) / bc2 + eps);
        if constexpr (V == 1) p[i] = p[i] + (nss * mi) / (std::sqrt(vi) * bc2 + eps);
        if constexpr (V == 2) p[i] = p[i] + (nss * mi) / (vi * bc2 + eps);
        if constexpr (V == 3) p[i] = p[i] + (nss * mi) * (vi * bc2 + eps);
    }
}
#define EXPORT(V)                                                                                              \
    extern "C" void adam_##V(float* p, const float* g, float* m, float* v, int64_t n, float w, float b2,       \
                             float omb2, float nss, float bc2, float eps, int threads) {                       \
        adam<V>(p, g, m, v, n, w, b2, omb2, nss, bc2, eps, threads);                                           \
    }
EXPORT(0)
EXPORT(1)
EXPORT(2)
EXPORT(3)
"""

VARIANTS = [
    ("torch arithmetic (sqrt, 2 divisions)", 0),
    ("fusedoptim arithmetic (sqrt, 1 division)", 1),
    ("no sqrt (1 division; not Adam)", 2),
    ("no sqrt, no division (not Adam)", 3),
]


def _compile(directory: str) -> ctypes.CDLL:
    try:
        library, _, _ = compile_library(SOURCE, directory, "floor")
    except NativeUnavailable as e:
        sys.exit(str(e))
    lib = ctypes.CDLL(library)
    f32, ptr = ctypes.c_float, ctypes.c_void_p
    for _, v in VARIANTS:
        fn = getattr(lib, f"adam_{v}")
        fn.argtypes = [ptr, ptr, ptr, ptr, ctypes.c_int64] + [f32] * 6 + [ctypes.c_int]
        fn.restype = None
    return lib


def _median_time(fn, rounds: int, min_time: float) -> float:
    fn()
    calls = 1
    while True:  # batch calls so one sample lasts at least min_time
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        if time.perf_counter() - t0 >= min_time:
            break
        calls *= 2
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - t0) / calls)
    return float(np.median(samples))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=float, default=1e6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--min-time", type=float, default=0.02)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = parser.parse_args(argv)
    n = int(args.n)
    rng = np.random.default_rng(0)
    p = rng.standard_normal(n).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    m, v = np.zeros_like(p), np.zeros_like(p)
    pointers = [a.ctypes.data for a in (p, g, m, v)]
    previous = fusedoptim._core.requested_num_threads()
    fusedoptim.set_num_threads(args.threads)
    try:
        return _run(args, n, rng, p, g, m, v, pointers)
    finally:
        fusedoptim.set_num_threads(previous)


def _run(args, n, rng, p, g, m, v, pointers) -> int:
    peers = {}
    with tempfile.TemporaryDirectory() as directory:
        lib = _compile(directory)
        for name, variant in VARIANTS:
            fn = getattr(lib, f"adam_{variant}")
            peers[name] = lambda fn=fn: fn(*pointers, n, 0.1, 0.999, 0.001, -1e-3, 1.0, 1e-8, args.threads)
        opt = fusedoptim.Adam([p], lr=1e-3)
        grads = [g]
        peers["fusedoptim.Adam step"] = lambda: opt.step(grads)
        try:
            import torch

            torch.set_num_threads(args.threads)  # a script's own process: not restored
            tp = torch.from_numpy(p)
            tp.grad = torch.from_numpy(g)
            topt = torch.optim.Adam([tp], lr=1e-3, fused=True)
            peers["torch Adam fused=True"] = topt.step
        except ImportError:
            print("torch is not installed: no torch fused column", file=sys.stderr)
        # Interleave: every round times each peer once, so drift in the machine's speed hits all alike.
        times = {name: [] for name in peers}
        for _ in range(args.rounds):
            for name, fn in peers.items():
                times[name].append(_median_time(fn, 1, args.min_time))
                if not np.isfinite(p).all():  # keep the arrays in range over many steps
                    p[...] = rng.standard_normal(n).astype(np.float32)
    median = {name: float(np.median(t)) for name, t in times.items()}
    floor = median[VARIANTS[-1][0]]
    torch_fused = median.get("torch Adam fused=True")
    rows = []
    for name, t in median.items():
        rows.append(
            {
                "peer": name,
                "time_us": t * 1e6,
                "ns_per_element": t / n * 1e9,
                "vs_floor": t / floor,
                "torch_fused_over_this": (torch_fused / t) if torch_fused else None,
            }
        )
    result = {
        "n": n,
        "threads": args.threads,
        "machine": platform.processor() or platform.machine(),
        "fusedoptim": fusedoptim.info() if hasattr(fusedoptim, "info") else None,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(sys.argv),
        "rows": rows,
    }
    lines = [
        f"Adam float32, n={n}, {args.threads} threads, median of {args.rounds} interleaved rounds "
        f"({result['date']}; `{result['command']}`)",
        "",
        "| peer | time (us) | ns/element | time / no-divider floor | torch fused / time |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = f"{r['torch_fused_over_this']:.2f}" if r["torch_fused_over_this"] else "-"
        lines.append(
            f"| {r['peer']} | {r['time_us']:.1f} | {r['ns_per_element']:.3f} | {r['vs_floor']:.2f} | {ratio} |"
        )
    table = "\n".join(lines)
    print(table)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "divider_floor.json"), "w") as f:
        json.dump(result, f, indent=2, default=str)
    with open(os.path.join(args.out, "divider_floor.md"), "w") as f:
        f.write(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
