"""Where does a second thread start to pay? The measurement behind the parallel grain.

A step runs on one thread below twice ``grain`` units of work per thread (65536 by default,
``fusedoptim._core.set_parallel_grain``), a unit being one float32 element of SGD with momentum; the kernels
weigh their elements by their cost (an element of the Adam family, Adagrad, RMSprop, Adadelta or Adamax
counts 2: ``kWork`` in their headers). This script times each optimizer (float32, the class's steady-state
``opt.step``) on one array of n elements, for n from 4096 to 1M, in one interleaved run: on one thread, on two
threads with the grain set to 1 (every size split), and with the default policy on two threads. The ratio
``one thread / two threads`` above 1 means the second thread pays; the policy is right where its time is the
better of the other two::

    python benchmarks/grain.py [--optimizers sgd,adam] [--rounds 15] [--out benchmarks/results]

It writes ``grain.json`` and ``grain.md`` to ``--out`` and prints the table. Two-thread timings need both
cores: on a shared machine (steal time) they are noisy; look at the one-thread times, which set the weights.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np

import fusedoptim
from fusedoptim import _core

SIZES = [4096, 8192, 16384, 32768, 49152, 65536, 98304, 131072, 262144, 524288, 1048576]
OPTIMIZERS = {
    "sgd": (fusedoptim.SGD, {"lr": 1e-4, "momentum": 0.9}),
    "adagrad": (fusedoptim.Adagrad, {}),
    "rmsprop": (fusedoptim.RMSprop, {}),
    "adam": (fusedoptim.Adam, {"lr": 1e-4}),
    "adamw": (fusedoptim.AdamW, {"lr": 1e-4}),
    "adadelta": (fusedoptim.Adadelta, {}),
    "adamax": (fusedoptim.Adamax, {}),
    "nadam": (fusedoptim.NAdam, {}),
    "radam": (fusedoptim.RAdam, {}),
    "lion": (fusedoptim.Lion, {}),
    "lamb": (fusedoptim.LAMB, {}),
}


def _time_steps(opt, grads, target_s: float) -> float:
    """Seconds per step: as many steps as fill about target_s."""
    start = time.perf_counter()
    steps = 0
    while True:
        opt.step(grads)
        steps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= target_s:
            return elapsed / steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(str(n) for n in SIZES))
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--min-time", type=float, default=0.004, help="seconds per sample")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = parser.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    previous = _core.requested_num_threads(), _core.get_parallel_grain()
    rows = []
    try:
        for name in args.optimizers.split(","):
            cls, hyper = OPTIMIZERS[name]
            for n in sizes:
                rng = np.random.default_rng(0)
                param = rng.standard_normal(n).astype(np.float32)
                grads = [(rng.standard_normal(n) * 1e-3).astype(np.float32)]
                opt = cls([param], **hyper)
                opt.step(grads)  # the state and the steady-state plan
                one, two, policy = [], [], []
                for _ in range(args.rounds):
                    _core.set_num_threads(1)
                    one.append(_time_steps(opt, grads, args.min_time))
                    _core.set_num_threads(2)
                    _core.set_parallel_grain(1)
                    two.append(_time_steps(opt, grads, args.min_time))
                    _core.set_parallel_grain(previous[1])
                    policy.append(_time_steps(opt, grads, args.min_time))
                ratio = statistics.median(a / b for a, b in zip(one, two))
                best = statistics.median(min(a, b) / c for a, b, c in zip(one, two, policy))
                rows.append(
                    {
                        "optimizer": name,
                        "n": n,
                        "one_thread_s": statistics.median(one),
                        "two_threads_s": statistics.median(two),
                        "speedup": ratio,
                        "default_s": statistics.median(policy),
                        "default_vs_best": best,
                    }
                )
    finally:
        _core.set_num_threads(previous[0])
        _core.set_parallel_grain(previous[1])

    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "fusedoptim": fusedoptim.info(),
        "grain": previous[1],
        "command": "python benchmarks/grain.py " + " ".join(argv or []),
    }
    lines = [
        f"# Parallel grain ({meta['date']}, SIMD {fusedoptim.simd_level()}, default grain {previous[1]} "
        "units per thread)",
        "",
        "| optimizer | n | 1 thread | 2 threads (always split) | 1 thread / 2 threads | default policy, 2 threads "
        "| default vs the better of the two |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['optimizer']} | {r['n']:,} | {r['one_thread_s'] * 1e6:.1f} us | "
            f"{r['two_threads_s'] * 1e6:.1f} us | {r['speedup']:.2f}x | {r['default_s'] * 1e6:.1f} us | "
            f"{r['default_vs_best']:.2f}x |"
        )
    text = "\n".join(lines) + "\n"
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "grain.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    with open(os.path.join(args.out, "grain.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
