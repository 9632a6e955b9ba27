"""What speed-up can fewer bytes buy on this machine? The memory floor of each precision mode, measured.

Issue 9 expects the low-byte modes (bfloat16 state: Adam 28 -> 20 bytes per element, SGD with momentum
20 -> 16) to be faster by their byte ratio. This script compiles (``-O3 -march=native``, OpenMP, the benchmark suite's native-loop flags) loops that
move exactly each mode's bytes (the same arrays, dtypes, reads and writes as the fused step) with almost no
arithmetic: one add per array, the 16-bit state incremented as raw integers. They are what the memory system
alone allows. In the same interleaved run it times fusedoptim's steps in the same modes on arrays of the same
size, so the table shows three ratios against float32: the byte count's prediction, the floor loops' (what
this machine's memory delivers for that byte mix), and fusedoptim's, with this CPU's default for software
prefetching in the mixed-precision loops and, in two more columns, with it off and on (the measurement behind
the default, cpp/bindings/settings.hpp)::

    python benchmarks/byte_floor.py [--n 1.6e7] [--threads 2] [--rounds 9] [--out benchmarks/results]

It writes ``byte_floor.json`` and ``byte_floor.md`` to ``--out`` and prints the table.
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
from fusedoptim import _precision
from fusedoptim.cli.bench.native import NativeUnavailable, compile_library

# S: the state element type (float or uint16_t), K: state buffers (1 SGD-momentum, 2 Adam).
SOURCE = r"""
#include <cstdint>
template <class S, int K>
static void touch(float* __restrict p, const float* __restrict g, S* __restrict a, S* __restrict b, int64_t n,
                  int threads) {
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        const float gi = g[i];
        a[i] = a[i] + S(1);
        if constexpr (K == 2) b[i] = b[i] + S(1);
        p[i] = p[i] + gi;
    }
}
extern "C" void sgd_f32(float* p, const float* g, float* a, int64_t n, int t) { touch<float, 1>(p, g, a, a, n, t); }
extern "C" void sgd_u16(float* p, const float* g, uint16_t* a, int64_t n, int t) { touch<uint16_t, 1>(p, g, a, a, n, t); }
extern "C" void adam_f32(float* p, const float* g, float* a, float* b, int64_t n, int t) { touch<float, 2>(p, g, a, b, n, t); }
extern "C" void adam_u16(float* p, const float* g, uint16_t* a, uint16_t* b, int64_t n, int t) { touch<uint16_t, 2>(p, g, a, b, n, t); }
"""

# optimizer -> (fusedoptim class, hyperparameters, state buffers)
OPTIMIZERS = {"sgd": (fusedoptim.SGD, {"lr": 1e-4, "momentum": 0.9}, 1), "adam": (fusedoptim.Adam, {"lr": 1e-4}, 2)}


def _compile(directory: str) -> ctypes.CDLL:
    try:
        library, _, _ = compile_library(SOURCE, directory, "bytes")
    except NativeUnavailable as e:
        sys.exit(str(e))
    lib = ctypes.CDLL(library)
    ptr = ctypes.c_void_p
    for name, k in [("sgd_f32", 1), ("sgd_u16", 1), ("adam_f32", 2), ("adam_u16", 2)]:
        fn = getattr(lib, name)
        fn.argtypes = [ptr] * (2 + k) + [ctypes.c_int64, ctypes.c_int]
        fn.restype = None
    return lib


def _sample(fn, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t0) / steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=float, default=1.6e7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=3, help="steps per timed sample")
    parser.add_argument("--optimizers", default="sgd,adam")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = parser.parse_args(argv)
    if not _precision.has_bfloat16():
        sys.exit("needs ml_dtypes for the bfloat16 state (pip install fusedoptim[bf16])")
    n = int(args.n)
    names = [o.strip() for o in args.optimizers.split(",")]
    previous = fusedoptim._core.requested_num_threads()
    fusedoptim.set_num_threads(args.threads)
    try:
        with tempfile.TemporaryDirectory() as directory:
            lib = _compile(directory)
            rows = _run(args, n, names, lib)
    finally:
        fusedoptim.set_num_threads(previous)
    result = {
        "n": n,
        "threads": args.threads,
        "rounds": args.rounds,
        "machine": platform.processor() or platform.machine(),
        "fusedoptim": fusedoptim.info(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": "python benchmarks/byte_floor.py " + " ".join(argv or sys.argv[1:]),
        "rows": rows,
    }
    lines = [
        f"# Bytes and speed: float32 vs bfloat16 state, n={n:.3g}, {args.threads} threads, median of "
        f"{args.rounds} interleaved rounds ({result['date']}, SIMD {fusedoptim.simd_level()})",
        "",
        "| optimizer | bytes/elem fp32 -> bf16 state | predicted by bytes | floor loop fp32 | floor loop bf16 "
        f"| floor speed-up | fusedoptim fp32 | fusedoptim bf16 state | fusedoptim speed-up (prefetch "
        f"{'on' if fusedoptim._core.prefetch() else 'off'}, this CPU's default) | prefetch off | prefetch on |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['optimizer']} | {r['bytes_f32']} -> {r['bytes_bf16']} | {r['predicted']:.2f}x | "
            f"{r['floor_f32_ms']:.2f} ms | {r['floor_bf16_ms']:.2f} ms | {r['floor_speedup']:.2f}x | "
            f"{r['fused_f32_ms']:.2f} ms | {r['fused_bf16_ms']:.2f} ms | {r['fused_speedup']:.2f}x | "
            f"{r['speedup_prefetch_off']:.2f}x | {r['speedup_prefetch_on']:.2f}x |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "byte_floor.json"), "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(args.out, "byte_floor.md"), "w") as f:
        f.write(table)
    return 0


def _run(args, n: int, names: list[str], lib: ctypes.CDLL) -> list[dict]:
    rng = np.random.default_rng(0)
    base = rng.standard_normal(n).astype(np.float32)
    grad = (rng.standard_normal(n) * 1e-3).astype(np.float32)
    peers: dict[tuple[str, str], object] = {}
    keep = []  # the arrays the floor loops point at
    for name in names:
        cls, hyper, k = OPTIMIZERS[name]
        for state in ("f32", "bf16"):
            p = base.copy()
            buffers = [np.zeros(n, np.float32 if state == "f32" else np.uint16) for _ in range(k)]
            keep.append((p, buffers))
            fn = getattr(lib, f"{name}_{'f32' if state == 'f32' else 'u16'}")
            pointers = [p.ctypes.data, grad.ctypes.data] + [b.ctypes.data for b in buffers]
            peers[(name, "floor " + state)] = lambda fn=fn, pointers=pointers: fn(*pointers, n, args.threads)
            param = base.copy()
            keep.append((param, []))
            opt = cls([param], state_dtype=None if state == "f32" else "bfloat16", **hyper)
            grads = [grad]
            opt.step(grads)  # the state and the steady-state plan
            peers[(name, "fused " + state)] = lambda opt=opt, grads=grads: opt.step(grads)
        default = fusedoptim._core.prefetch()
        for prefetch in (False, True):  # the plan keeps the setting it was built with
            fusedoptim._core._set_prefetch(prefetch)
            try:
                param = base.copy()
                keep.append((param, []))
                opt = cls([param], state_dtype="bfloat16", **hyper)
                grads = [grad]
                opt.step(grads)
            finally:
                fusedoptim._core._set_prefetch(default)
            peers[(name, f"fused bf16 prefetch {'on' if prefetch else 'off'}")] = lambda opt=opt, grads=grads: opt.step(
                grads
            )
    times: dict[tuple[str, str], list[float]] = {key: [] for key in peers}
    for fn in peers.values():
        fn()  # warm-up: first touch of every page
    for _ in range(args.rounds):  # interleaved: every round times each peer once
        for key, fn in peers.items():
            times[key].append(_sample(fn, args.steps))
    median = {key: float(np.median(t)) for key, t in times.items()}
    rows = []
    for name in names:
        k = OPTIMIZERS[name][2]
        bytes_f32, bytes_bf16 = 12 + 8 * k, 12 + 4 * k
        rows.append(
            {
                "optimizer": name,
                "bytes_f32": bytes_f32,
                "bytes_bf16": bytes_bf16,
                "predicted": bytes_f32 / bytes_bf16,
                "floor_f32_ms": median[(name, "floor f32")] * 1e3,
                "floor_bf16_ms": median[(name, "floor bf16")] * 1e3,
                "floor_speedup": median[(name, "floor f32")] / median[(name, "floor bf16")],
                "fused_f32_ms": median[(name, "fused f32")] * 1e3,
                "fused_bf16_ms": median[(name, "fused bf16")] * 1e3,
                "fused_speedup": median[(name, "fused f32")] / median[(name, "fused bf16")],
                "prefetch_default": fusedoptim._core.prefetch(),
                "speedup_prefetch_off": median[(name, "fused f32")] / median[(name, "fused bf16 prefetch off")],
                "speedup_prefetch_on": median[(name, "fused f32")] / median[(name, "fused bf16 prefetch on")],
                "samples_s": {" ".join(key): t for key, t in times.items() if key[0] == name},
            }
        )
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
