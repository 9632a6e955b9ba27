"""The fixed cost of a step around its kernels: the steady-state plan, a full step (after a hyperparameter edit,
as a per-step scheduler makes) and a clipped step, on shapes where that cost shows (many small arrays).

Adam, float32, one thread, best of ``--rounds`` rounds of ``--steps`` steps each::

    python benchmarks/step_overhead.py [--rounds 7] [--steps 1000] [--out benchmarks]

Writes ``step_overhead_latest.json`` and ``step_overhead_latest.md`` to ``--out``. To compare two builds, run the
script in each one's environment, alternately, on the same machine (the README and the issue notes quote such
pairs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

import fusedoptim

CASES = {"1 x 1000": (1, 1000), "161 x 100": (161, 100), "10 x 1e5": (10, 100_000)}
MODES = ("plan", "full", "clip")


def measure(arrays: int, size: int, mode: str, rounds: int, steps: int) -> float:
    params = [np.zeros(size, np.float32) for _ in range(arrays)]
    grads = [np.ones_like(p) for p in params]
    opt = fusedoptim.Adam(params, lr=1e-3)
    opt.step(grads)
    opt.step(grads)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(steps):
            if mode == "full":
                opt.param_groups[0]["lr"] = float(1e-3 + i * 1e-12)  # a new object: the plan is dropped
            if mode == "clip":
                opt.step(grads, max_grad_norm=1e9)
            else:
                opt.step(grads)
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--out", default="benchmarks")
    args = parser.parse_args(argv)
    fusedoptim.set_num_threads(1)
    results = {
        f"{name} {mode}": measure(*shape, mode, args.rounds, args.steps)
        for name, shape in CASES.items()
        for mode in MODES
    }
    lines = [
        "# Step overhead: Adam, float32, 1 thread (best of "
        f"{args.rounds} rounds of {args.steps} steps; fusedoptim {fusedoptim.__version__})",
        "",
        "| arrays x elements | steady state (plan) | full step (lr edited) | clipped step |",
        "|---|---|---|---|",
    ]
    for name in CASES:
        cells = " | ".join(f"{results[f'{name} {mode}'] * 1e6:.2f} us" for mode in MODES)
        lines.append(f"| {name} | {cells} |")
    table = "\n".join(lines)
    print(table)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "step_overhead_latest.md"), "w", encoding="utf-8") as f:
        f.write(table + "\n")
    with open(os.path.join(args.out, "step_overhead_latest.json"), "w", encoding="utf-8") as f:
        json.dump({"seconds": results, "rounds": args.rounds, "steps": args.steps}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
