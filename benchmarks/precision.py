"""Mixed-precision benchmark (issue 9): Adam's and SGD-with-momentum's step time and effective GB/s per precision
mode, in one interleaved run (every round times each mode once, so machine noise hits all modes alike).

    python benchmarks/precision.py [--sizes 4e6] [--optimizers adam,sgd] [--threads 1,2] [--rounds 15]
                                   [--out benchmarks/results]

Writes precision.json (every sample), precision.md and precision.png (measured against predicted speed-ups at
the largest size; needs matplotlib). Bytes per element are the arrays the fused step reads and writes (each
counted once per direction). The 16-bit parameter beside a float32 master is only written, and a
write-allocate cache reads its line before writing it, so the memory system moves 2 bytes more than the step
asks for: the `traffic` column counts them, and its prediction is the one the measured speed-ups should meet.
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

# name, parameter dtype, state_dtype, fused, rounding: bfloat16 state takes the fused loop (parallel.hpp,
# run_fused); the "staged" rows are the same steps with it turned off, to show what fusing the conversions
# gains. Stochastic rounding always stages (its rows cost the hash on top of staging).
MODES = [
    ("fp32", "float32", None, True, "nearest"),
    ("fp16 params + fp32 master", "float16", None, True, "nearest"),
    ("bf16 params + fp32 master", "bfloat16", None, True, "nearest"),
    ("bf16 params + fp32 master, stochastic", "bfloat16", None, True, "stochastic"),
    ("fp32 params + bf16 state", "float32", "bfloat16", True, "nearest"),
    ("fp32 params + bf16 state, staged", "float32", "bfloat16", False, "nearest"),
    ("fp32 params + bf16 state, stochastic", "float32", "bfloat16", True, "stochastic"),
    ("fp32 params + fp16 state", "float32", "float16", True, "nearest"),
    ("bf16 params + bf16 state", "bfloat16", "bfloat16", True, "nearest"),
    ("bf16 params + bf16 state, staged", "bfloat16", "bfloat16", False, "nearest"),
]
# optimizer name -> (class, hyperparameters, state buffers per element)
OPTIMIZERS = {
    "adam": (fusedoptim.Adam, {"lr": 1e-4}, 2),  # exp_avg, exp_avg_sq
    "sgd": (fusedoptim.SGD, {"lr": 1e-4, "momentum": 0.9}, 1),  # momentum_buffer
}


def bytes_per_element(param_dtype: str, state_dtype: str | None, slots: int) -> int:
    """What the fused step reads and writes per element, each array once per direction: the gradient (the
    parameter's dtype), the parameter or the float32 master (read and written) plus the 16-bit parameter
    (written), and each state buffer (read and written; float32 unless state_dtype)."""
    low = param_dtype != "float32"
    grad = 2 if low else 4
    param = 8 + (2 if low else 0)
    state = 2 * slots * (2 if state_dtype else 4)
    return grad + param + state


def traffic_per_element(param_dtype: str, state_dtype: str | None, slots: int) -> int:
    """bytes_per_element plus the read of the write-only 16-bit parameter's cache lines (write-allocate)."""
    return bytes_per_element(param_dtype, state_dtype, slots) + (2 if param_dtype != "float32" else 0)


def _dtype(name: str) -> np.dtype:
    return _precision.bfloat16() if name == "bfloat16" else np.dtype(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4e6", help="comma-separated element counts")
    parser.add_argument("--optimizers", default="adam,sgd", help="comma-separated: " + ",".join(OPTIMIZERS))
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-staged", action="store_true", help="leave out the staged comparison rows")
    parser.add_argument("--no-stochastic", action="store_true", help="leave out the stochastic-rounding rows")
    parser.add_argument("--steps", type=int, default=5, help="steps per timed sample")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = parser.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    thread_counts = [int(t) for t in args.threads.split(",")]
    names = [o.strip() for o in args.optimizers.split(",")]
    modes = [m for m in MODES if _precision.has_bfloat16() or "bf16" not in m[0]]
    if args.no_staged:
        modes = [m for m in modes if m[3]]
    if args.no_stochastic:
        modes = [m for m in modes if m[4] == "nearest"]
    results = []
    previous = _core.requested_num_threads()
    try:
        for n in sizes:
            rng = np.random.default_rng(0)
            base = rng.standard_normal(n).astype(np.float32)
            grad32 = (rng.standard_normal(n) * 1e-3).astype(np.float32)
            setups = []
            for opt_name in names:
                cls, hyper, slots = OPTIMIZERS[opt_name]
                for name, pdt, sdt, fused, rounding in modes:
                    param = base.astype(_dtype(pdt))
                    grad = grad32.astype(_dtype(pdt))
                    opt = cls([param], state_dtype=sdt, rounding=rounding, **hyper)
                    _core._set_fuse_mixed_precision(fused)
                    try:
                        opt.step([grad])  # creates the state and the steady-state plan (which keeps `fused`)
                    finally:
                        _core._set_fuse_mixed_precision(True)
                    setups.append(
                        (
                            opt_name,
                            name,
                            opt,
                            grad,
                            bytes_per_element(pdt, sdt, slots),
                            traffic_per_element(pdt, sdt, slots),
                        )
                    )
            for threads in thread_counts:
                _core.set_num_threads(threads)
                samples: dict[tuple[str, str], list[float]] = {(o, m): [] for o, m, *_ in setups}
                for _ in range(args.rounds):
                    for opt_name, name, opt, grad, *_ in setups:
                        start = time.perf_counter()
                        for _ in range(args.steps):
                            opt.step([grad])
                        samples[(opt_name, name)].append((time.perf_counter() - start) / args.steps)
                for opt_name, name, _opt, _grad, nbytes, traffic in setups:
                    t = statistics.median(samples[(opt_name, name)])
                    results.append(
                        {
                            "optimizer": opt_name,
                            "mode": name,
                            "n": n,
                            "threads": threads,
                            "bytes_per_element": nbytes,
                            "traffic_per_element": traffic,
                            "median_step_s": t,
                            "gb_per_s": nbytes * n / t / 1e9,
                            "samples_s": samples[(opt_name, name)],
                        }
                    )
    finally:
        _core.set_num_threads(previous)

    os.makedirs(args.out, exist_ok=True)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": platform.processor() or platform.machine(),
        "fusedoptim": fusedoptim.info(),
        "rounds": args.rounds,
        "steps_per_sample": args.steps,
        "command": "python benchmarks/precision.py " + " ".join(f"--{k} {v}" for k, v in vars(args).items()),
    }
    with open(os.path.join(args.out, "precision.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    lines = [
        f"# Mixed precision: step per mode ({meta['date']}, SIMD {fusedoptim.simd_level()})",
        "",
        "| optimizer | n | threads | mode | bytes/elem | traffic/elem | step (ms) | GB/s | speed-up vs fp32 | "
        "predicted by bytes | predicted by traffic |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for opt_name in names:
        for n in sizes:
            for threads in thread_counts:
                rows = [r for r in results if r["optimizer"] == opt_name and r["n"] == n and r["threads"] == threads]
                fp32 = next(r for r in rows if r["mode"] == "fp32")
                for r in rows:
                    lines.append(
                        f"| {opt_name} | {n:.2g} | {threads} | {r['mode']} | {r['bytes_per_element']} | "
                        f"{r['traffic_per_element']} | {r['median_step_s'] * 1e3:.2f} | {r['gb_per_s']:.1f} | "
                        f"{fp32['median_step_s'] / r['median_step_s']:.2f}x | "
                        f"{fp32['bytes_per_element'] / r['bytes_per_element']:.2f}x | "
                        f"{fp32['traffic_per_element'] / r['traffic_per_element']:.2f}x |"
                    )
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "precision.md"), "w") as f:
        f.write(text)
    print(text)
    plot = write_plot(results, names, max(sizes), thread_counts, os.path.join(args.out, "precision.png"))
    if plot:
        print("wrote", plot)
    return 0


def write_plot(results: list[dict], names: list[str], n: int, thread_counts: list[int], path: str) -> str | None:
    """Bars of each mode's measured speed-up over fp32 beside the one its memory traffic predicts, at `n`
    elements: a panel per optimizer and thread count. None without matplotlib."""
    from fusedoptim.cli.bench.report import _pyplot

    plt = _pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(
        len(names), len(thread_counts), figsize=(6.5 * len(thread_counts), 4.6 * len(names)), squeeze=False
    )
    for i, opt_name in enumerate(names):
        for j, threads in enumerate(thread_counts):
            ax = axes[i][j]
            rows = [r for r in results if r["optimizer"] == opt_name and r["n"] == n and r["threads"] == threads]
            fp32 = next(r for r in rows if r["mode"] == "fp32")
            measured = [fp32["median_step_s"] / r["median_step_s"] for r in rows]
            predicted = [fp32["traffic_per_element"] / r["traffic_per_element"] for r in rows]
            x = np.arange(len(rows))
            ax.bar(x - 0.2, measured, width=0.4, label="measured", color="C0")
            ax.bar(x + 0.2, predicted, width=0.4, label="predicted by memory traffic", color="0.75")
            ax.axhline(1.0, color="0.3", linewidth=0.8)
            ax.set_xticks(x)
            ax.set_xticklabels([r["mode"] for r in rows], rotation=40, ha="right", fontsize=7)
            ax.set_ylabel("speed-up over fp32")
            ax.set_title(f"{opt_name}, {n:.2g} elements, {threads} thread{'s' if threads > 1 else ''}", fontsize=10)
            ax.grid(True, axis="y", alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    raise SystemExit(main())
