"""Mixed-precision benchmark (issue 9): Adam's step time and effective GB/s per precision mode, in one
interleaved run (every round times each mode once, so machine noise hits all modes alike).

    python benchmarks/precision.py [--sizes 4e6] [--threads 1,2] [--rounds 15] [--out benchmarks/results]

Writes precision.json (every sample) and precision.md. Bytes per element are the arrays the fused step reads
and writes (each counted once per direction): the 16-bit parameter is only written; with write-allocate caches
writing it costs a read of its line too, which the table's `bytes` column does not count.
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
from fusedoptim import _core, _precision

# name, parameter dtype, state_dtype, bytes per element (read + written)
MODES = [
    ("fp32", "float32", None, 4 + 4 + 8 + 4 + 8),            # p, g, m, v read; p, m, v written: 28
    ("fp16 params + fp32 master", "float16", None, 2 + 4 + 8 + 4 + 8 + 2),  # g16, master, m, v; master, m, v, p16: 28
    ("bf16 params + fp32 master", "bfloat16", None, 2 + 4 + 8 + 4 + 8 + 2),
    ("fp32 params + bf16 state", "float32", "bfloat16", 4 + 4 + 4 + 4 + 4),  # p, g, m16, v16; p, m16, v16: 20
    ("bf16 params + bf16 state", "bfloat16", "bfloat16", 2 + 4 + 4 + 4 + 4 + 2),  # 20
]


def _dtype(name: str) -> np.dtype:
    return _precision.bfloat16() if name == "bfloat16" else np.dtype(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4e6", help="comma-separated element counts")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=5, help="steps per timed sample")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    thread_counts = [int(t) for t in args.threads.split(",")]
    modes = [m for m in MODES if _precision.BFLOAT16 is not None or "bf16" not in m[0]]
    results = []
    previous = _core.requested_num_threads()
    try:
        for n in sizes:
            rng = np.random.default_rng(0)
            base = rng.standard_normal(n).astype(np.float32)
            grad32 = (rng.standard_normal(n) * 1e-3).astype(np.float32)
            setups = []
            for name, pdt, sdt, nbytes in modes:
                param = base.astype(_dtype(pdt))
                grad = grad32.astype(_dtype(pdt))
                opt = fusedoptim.Adam([param], lr=1e-4, state_dtype=sdt)
                opt.step([grad])  # creates the state (and the plan, for fp32)
                setups.append((name, opt, grad, nbytes))
            for threads in thread_counts:
                _core.set_num_threads(threads)
                samples: dict[str, list[float]] = {name: [] for name, *_ in setups}
                for _ in range(args.rounds):
                    for name, opt, grad, _nbytes in setups:
                        start = time.perf_counter()
                        for _ in range(args.steps):
                            opt.step([grad])
                        samples[name].append((time.perf_counter() - start) / args.steps)
                for name, _opt, _grad, nbytes in setups:
                    t = statistics.median(samples[name])
                    results.append({"mode": name, "n": n, "threads": threads, "bytes_per_element": nbytes,
                                    "median_step_s": t, "gb_per_s": nbytes * n / t / 1e9,
                                    "samples_s": samples[name]})
    finally:
        _core.set_num_threads(previous)

    os.makedirs(args.out, exist_ok=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.processor() or platform.machine(),
            "fusedoptim": fusedoptim.info(), "rounds": args.rounds, "steps_per_sample": args.steps,
            "command": "python benchmarks/precision.py " + " ".join(f"--{k} {v}" for k, v in vars(args).items())}
    with open(os.path.join(args.out, "precision.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    lines = [f"# Mixed precision: Adam step per mode ({meta['date']}, SIMD {fusedoptim.simd_level()})", "",
             "| n | threads | mode | bytes/elem | step (ms) | GB/s | speed-up vs fp32 | predicted (28/bytes) |",
             "|---|---|---|---|---|---|---|---|"]
    for n in sizes:
        for threads in thread_counts:
            rows = [r for r in results if r["n"] == n and r["threads"] == threads]
            fp32 = next(r for r in rows if r["mode"] == "fp32")["median_step_s"]
            for r in rows:
                lines.append(f"| {n:.0e} | {threads} | {r['mode']} | {r['bytes_per_element']} | "
                             f"{r['median_step_s'] * 1e3:.2f} | {r['gb_per_s']:.1f} | "
                             f"{fp32 / r['median_step_s']:.2f}x | {28 / r['bytes_per_element']:.2f}x |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "precision.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
