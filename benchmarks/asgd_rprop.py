"""ASGD and Rprop (issue 20) against a plain native loop of the same arithmetic and against torch.

For each size, in one process and interleaved round by round on the same arrays (float32):

* ``fusedoptim``: ``opt.step(grads)`` of the class (its steady-state plan);
* ``native loop``: the same element arithmetic written as one plain loop, compiled at run time with
  ``-O3 -march=native`` and OpenMP (:func:`fusedoptim.cli.bench.native.compile_library`, the suite's own build):
  the bandwidth-floor proxy at large sizes;
* ``torch for-loop`` and ``torch foreach``: ``torch.optim.ASGD`` / ``Rprop`` (torch has no fused CPU kernel for
  either), when torch is installed.

Targets (issue 20): within 1.10x of the native loop at 1e7 elements, and faster than torch's fastest at every
size. Run::

    python benchmarks/asgd_rprop.py [--sizes 1e4,1e5,1e6,1e7] [--threads 2] [--rounds 7] [--out benchmarks]

It writes ``asgd_rprop_latest.json`` and ``asgd_rprop_latest.md`` to ``--out`` and prints the table.
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
from fusedoptim import _core
from fusedoptim.cli.bench.native import NativeUnavailable, compile_library

SOURCE = r"""
#include <cstdint>
extern "C" void asgd(float* __restrict p, const float* __restrict g, float* __restrict ax, int64_t n, float decay,
                     float neg_eta, float mu, int threads) {
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        const float q = p[i] * decay + neg_eta * g[i];
        p[i] = q;
        ax[i] = ax[i] + (q - ax[i]) * mu;
    }
}
extern "C" void rprop(float* __restrict p, const float* __restrict g, float* __restrict prev,
                      float* __restrict size, int64_t n, float em, float ep, float lo, float hi, int threads) {
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        float gi = g[i];
        const float s = gi * prev[i];
        const float f = s > 0.0f ? ep : (s < 0.0f ? em : 1.0f);
        float z = size[i] * f;
        z = z < lo ? lo : z;
        z = z > hi ? hi : z;
        size[i] = z;
        gi = f == em ? 0.0f : gi;
        const float sg = gi > 0.0f ? 1.0f : (gi < 0.0f ? -1.0f : 0.0f);
        p[i] = p[i] - sg * z;
        prev[i] = gi;
    }
}
"""

BYTES = {"ASGD": 20, "Rprop": 28}  # float32 bytes per element: ASGD reads p, g, ax, writes p, ax; Rprop adds 2


def _best(step, rounds: int, repeat: int) -> list[float]:
    """Per round, the mean time of ``repeat`` calls (after one warm-up call)."""
    step()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeat):
            step()
        times.append((time.perf_counter() - start) / repeat)
    return times


def _peers(name: str, n: int, threads: int, lib: ctypes.CDLL, torch):
    rng = np.random.default_rng(0)
    params = rng.standard_normal(n).astype(np.float32)
    grads = rng.standard_normal(n).astype(np.float32)
    peers = {}

    p = params.copy()
    opt = fusedoptim.ASGD([p], lr=1e-2, t0=0) if name == "ASGD" else fusedoptim.Rprop([p], lr=1e-2)
    peers["fusedoptim"] = lambda: opt.step([grads])

    q, a, b = params.copy(), np.zeros(n, np.float32), np.full(n, 1e-2, np.float32)
    ptr = lambda x: x.ctypes.data_as(ctypes.c_void_p)
    if name == "ASGD":
        peers["native loop"] = lambda: lib.asgd(
            ptr(q), ptr(grads), ptr(a), n, ctypes.c_float(0.9999), ctypes.c_float(-1e-2), ctypes.c_float(0.5), threads
        )
    else:
        peers["native loop"] = lambda: lib.rprop(
            ptr(q),
            ptr(grads),
            ptr(a),
            ptr(b),
            n,
            ctypes.c_float(0.5),
            ctypes.c_float(1.2),
            ctypes.c_float(1e-6),
            ctypes.c_float(50.0),
            threads,
        )
    if torch is not None:
        cls = getattr(torch.optim, name)
        for label, foreach in (("torch for-loop", False), ("torch foreach", True)):
            t = torch.nn.Parameter(torch.from_numpy(params.copy()))
            t.grad = torch.from_numpy(grads.copy())
            kwargs = {"lr": 1e-2, "t0": 0} if name == "ASGD" else {"lr": 1e-2}
            topt = cls([t], foreach=foreach, **kwargs)
            peers[label] = topt.step
    return peers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1e4,1e5,1e6,1e7")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", default="benchmarks")
    args = parser.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    _core.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as directory:
        try:
            library, _, _ = compile_library(SOURCE, directory, "asgd_rprop")
        except NativeUnavailable as e:
            sys.exit(str(e))
        lib = ctypes.CDLL(library)
        lib.asgd.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int64] + [ctypes.c_float] * 3 + [ctypes.c_int]
        lib.rprop.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int64] + [ctypes.c_float] * 4 + [ctypes.c_int]
        rows = []
        for name in ("ASGD", "Rprop"):
            for n in sizes:
                peers = _peers(name, n, args.threads, lib, torch)
                repeat = max(1, int(2e7 // max(n, 1)) // 20)
                times: dict[str, list[float]] = {k: [] for k in peers}
                for _ in range(args.rounds):  # interleaved: every peer once per round
                    for label, step in peers.items():
                        times[label].append(min(_best(step, 1, repeat)))
                best = {k: min(v) for k, v in times.items()}
                rows.append({"optimizer": name, "n": n, "seconds": best})
    torch_labels = [k for k in ("torch for-loop", "torch foreach") if any(k in r["seconds"] for r in rows)]
    lines = [
        f"# ASGD and Rprop: fusedoptim against a native loop and torch ({platform.processor() or platform.machine()}, "
        f"{args.threads} threads, float32, best of {args.rounds} interleaved rounds)",
        "",
        "Command: `python benchmarks/asgd_rprop.py " + " ".join(argv if argv is not None else sys.argv[1:]) + "`",
        "",
        "| optimizer | n | fusedoptim | GB/s | native loop / fusedoptim | "
        + " | ".join(f"{k} / fusedoptim" for k in torch_labels)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(torch_labels),
    ]
    for r in rows:
        s = r["seconds"]
        f = s["fusedoptim"]
        gbs = BYTES[r["optimizer"]] * r["n"] / f / 1e9
        cells = [f"{s[k] / f:.2f}x" for k in torch_labels if k in s]
        lines.append(
            f"| {r['optimizer']} | {r['n']:.0e} | {f * 1e6:.1f} us | {gbs:.1f} | "
            f"{s['native loop'] / f:.2f}x | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        "Ratios above 1 mean fusedoptim is faster. The native loop does the same arithmetic with "
        "`-O3 -march=native`; torch has no fused CPU ASGD or Rprop.",
    ]
    table = "\n".join(lines)
    print(table)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "asgd_rprop_latest.md"), "w", encoding="utf-8") as f:
        f.write(table + "\n")
    with open(os.path.join(args.out, "asgd_rprop_latest.json"), "w", encoding="utf-8") as f:
        json.dump(
            {
                "threads": args.threads,
                "rounds": args.rounds,
                "fusedoptim": fusedoptim.__version__,
                "simd": fusedoptim.simd_level(),
                "rows": rows,
            },
            f,
            indent=1,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
