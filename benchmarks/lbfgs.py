"""LBFGS's per-iteration overhead on a 1e6-parameter problem: its fused flat-vector passes against plain NumPy loops
doing the same algebra (issue 20's goal: within 1.5x of the plain loops).

One steady-state iteration of ``fusedoptim.LBFGS`` without line search, its history full with ``m`` pairs, is this
algebra over the n parameters (split into ``--arrays`` arrays): max |g| (the tolerance test); y = g - prev,
s = t d, y.s, y.y, prev = g (the history update); the two-loop recursion (2m dot products and 2m axpys, and q = -g,
r = H_diag q, g.d); p += t d and max |d| (the update and the lack-of-progress test). The peers, timed interleaved
in one process (one sample each per round, the order rotating; medians over rounds):

* ``fused``: the optimizer's own kernel calls for that iteration (``_core.flat_grad_stats``, ``flat_history``,
  ``lbfgs._two_loop``, ``flat_step``): 2m + 4 passes over memory.
* ``LBFGS.step``: a real ``opt.step(closure)`` of 5 iterations on a diagonal quadratic (restored to the same
  state before each sample), minus 5 closure calls (timed alone in the same round), per iteration: the fused
  passes plus everything the class does in Python.
* ``numpy``: what a careful NumPy user writes for the same algebra on flat vectors: the gradients gathered into
  one preallocated vector (``np.concatenate(..., out=)``, as torch's ``_gather_flat_grad``), ufuncs with ``out=``
  into preallocated temporaries, ``np.dot`` (BLAS) for the dot products, and ``p += t d`` per array.
* ``numpy, flat``: the same with parameters and gradients already one flat vector each (no gather, one update
  call): the most favourable plain-NumPy baseline.

Ratios are fusedoptim's time over the baseline's, the median of per-round ratios (below 1: fusedoptim faster)::

    python benchmarks/lbfgs.py [--n 1e6] [--arrays 4] [--history 5,20] [--dtypes float32,float64]
                               [--threads N] [--rounds 9] [--out benchmarks/results]

``--threads`` sets fusedoptim's threads and, before NumPy loads, OpenBLAS's (``OPENBLAS_NUM_THREADS``: NumPy's
``np.dot``), so both sides use the same cores. It writes ``lbfgs.json`` and ``lbfgs.md`` to ``--out`` and prints
the table.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=float, default=1e6, help="parameters in all")
    parser.add_argument("--arrays", type=int, default=4, help="parameter arrays the n values are split into")
    parser.add_argument("--history", default="5,20", help="history pairs m (comma-separated)")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--threads", type=int, default=0, help="threads for both sides (0: the defaults)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    return parser.parse_args(argv)


ARGS = _parse(sys.argv[1:] if __name__ == "__main__" else [])
if ARGS.threads > 0:  # before NumPy (and its OpenBLAS) loads
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(ARGS.threads))

import numpy as np  # noqa: E402

import fusedoptim  # noqa: E402
from fusedoptim import _core  # noqa: E402
from fusedoptim.lbfgs import _Flat, _Layout, _two_loop  # noqa: E402

ITERATIONS_PER_STEP = 5


class Case:
    """The arrays of one (dtype, m) case: parameters, a gradient, the history and the flat vectors, shared by the
    fused and NumPy peers (each works on the same memory)."""

    def __init__(self, n: int, arrays: int, m: int, dtype: type) -> None:
        rng = np.random.default_rng(0)
        sizes = [n // arrays + (1 if k < n % arrays else 0) for k in range(arrays)]
        self.params = [rng.standard_normal(size).astype(dtype) for size in sizes]
        self.grads = [rng.standard_normal(size).astype(dtype) for size in sizes]
        self.layout = _Layout(self.params)

        def flat(scale: float = 1.0) -> _Flat:
            return _Flat((scale * rng.standard_normal(n)).astype(dtype), self.layout)

        self.d, self.prev, self.y, self.s = flat(), flat(), flat(), flat()
        self.old_dirs = [flat() for _ in range(m)]
        self.old_stps = [flat() for _ in range(m)]
        self.ro = [float(r) for r in rng.uniform(0.5, 1.5, m) / n]
        self.t, self.H_diag = 1e-3, 0.7
        # the NumPy peers' vectors and temporaries
        self.flat_grad = np.empty(n, dtype=dtype)
        self.q = np.empty(n, dtype=dtype)
        self.tmp = np.empty(n, dtype=dtype)
        self.flat_params = np.concatenate(self.params)
        self.flat_grads = np.concatenate(self.grads)
        self.tmp_views = _Flat(self.tmp, self.layout).views

    def fused(self) -> None:
        """One iteration's kernel calls, as LBFGS._lbfgs_step makes them (history full, fixed step)."""
        max_abs, _, _ = _core.flat_grad_stats(self.params, self.grads)
        ys, yy = _core.flat_history(self.y.views, self.grads, self.prev.views, None, self.d.views, self.s.views, self.t)
        gtd = _two_loop(self.d, self.grads, self.old_dirs, self.old_stps, self.ro, self.H_diag)
        d_max = _core.flat_step(self.params, self.d.views, -self.t)  # -t: the parameters stay bounded
        self.result = (max_abs, ys, yy, gtd, d_max)

    def numpy(self, flat: bool) -> None:
        """The same algebra with NumPy ufuncs (out=) and np.dot on flat vectors."""
        if flat:
            g = self.flat_grads
        else:
            g = np.concatenate(self.grads, out=self.flat_grad)  # torch's _gather_flat_grad
        max_abs = np.abs(g, out=self.tmp).max()
        y, s, d, prev, q, tmp = self.y.array, self.s.array, self.d.array, self.prev.array, self.q, self.tmp
        np.subtract(g, prev, out=y)
        np.multiply(d, self.t, out=s)
        ys, yy = np.dot(y, s), np.dot(y, y)
        np.copyto(prev, g)
        m = len(self.old_dirs)
        al = [0.0] * m
        np.negative(g, out=q)
        for i in range(m - 1, -1, -1):
            al[i] = float(np.dot(self.old_stps[i].array, q)) * self.ro[i]
            np.multiply(self.old_dirs[i].array, -al[i], out=tmp)
            np.add(q, tmp, out=q)
        np.multiply(q, self.H_diag, out=q)
        for i in range(m):
            be_i = float(np.dot(self.old_dirs[i].array, q)) * self.ro[i]
            np.multiply(self.old_stps[i].array, al[i] - be_i, out=tmp)
            np.add(q, tmp, out=q)
        np.copyto(d, q)  # torch's d = r (here the fused peer's d, so both keep it bounded alike)
        gtd = np.dot(g, d)
        if flat:
            np.multiply(d, -self.t, out=tmp)
            np.add(self.flat_params, tmp, out=self.flat_params)
        else:
            for p, dv, tv in zip(self.params, self.d.views, self.tmp_views, strict=True):
                np.multiply(dv, -self.t, out=tv)
                np.add(p, tv, out=p)
        d_max = np.abs(d, out=tmp).max()
        self.result = (max_abs, ys, yy, gtd, d_max)


class StepCase:
    """A real LBFGS.step of ITERATIONS_PER_STEP iterations on f(p) = sum c p^2 / 2 (gradient c p, one pass),
    its history filled first; each sample restores the parameters and the state first (not timed)."""

    def __init__(self, n: int, arrays: int, m: int, dtype: type) -> None:
        rng = np.random.default_rng(1)
        sizes = [n // arrays + (1 if k < n % arrays else 0) for k in range(arrays)]
        self.params = [rng.standard_normal(size).astype(dtype) for size in sizes]
        self.curvature = [rng.uniform(1, 10, size).astype(dtype) for size in sizes]
        self.grads = [np.empty_like(p) for p in self.params]
        # no tolerance stops it early: every step runs its iterations
        self.opt = fusedoptim.LBFGS(self.params, history_size=m, max_iter=m + 2, tolerance_grad=0, tolerance_change=0)
        self.opt.step(self.closure)
        self.opt.param_groups[0].update(max_iter=ITERATIONS_PER_STEP, max_eval=10 * ITERATIONS_PER_STEP)
        self.saved = self.opt.state_dict()
        self.saved_params = [p.copy() for p in self.params]
        assert len(self.saved["state"][0]["old_dirs"]) == m

    def closure(self) -> tuple[float, list[np.ndarray]]:
        for c, p, g in zip(self.curvature, self.params, self.grads, strict=True):
            np.multiply(c, p, out=g)
        return 0.0, self.grads

    def restore(self) -> None:
        self.opt.load_state_dict(self.saved)
        for p, v in zip(self.params, self.saved_params, strict=True):
            np.copyto(p, v)

    def step(self) -> None:
        self.opt.step(self.closure)


def _time(function: Callable[[], None], before: Callable[[], None] | None = None) -> float:
    if before is not None:
        before()
    gc.disable()
    try:
        start = time.perf_counter()
        function()
        return time.perf_counter() - start
    finally:
        gc.enable()


def _machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "numpy": np.__version__,
        "fusedoptim": fusedoptim.info(),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
    }


def main() -> int:
    args = ARGS
    n = int(args.n)
    previous_threads = _core.requested_num_threads()
    if args.threads > 0:
        _core.set_num_threads(args.threads)
    rows = []
    try:
        for dtype_name in args.dtypes.split(","):
            dtype = np.dtype(dtype_name).type
            for m in [int(x) for x in args.history.split(",")]:
                case = Case(n, args.arrays, m, dtype)
                step_case = StepCase(n, args.arrays, m, dtype)
                peers: dict[str, tuple[Callable[[], None], Callable[[], None] | None]] = {
                    "fused": (case.fused, None),
                    "numpy": (lambda case=case: case.numpy(False), None),
                    "numpy, flat": (lambda case=case: case.numpy(True), None),
                    "LBFGS.step": (step_case.step, step_case.restore),
                    "closure": (step_case.closure, None),
                }
                for function, before in peers.values():  # warm-up: page faults, BLAS threads, lazy set-up
                    _time(function, before)
                samples: dict[str, list[float]] = {name: [] for name in peers}
                names = list(peers)
                for r in range(args.rounds):
                    for name in names[r % len(names) :] + names[: r % len(names)]:
                        samples[name].append(_time(*peers[name]))
                # per iteration: the step's time minus its closure calls, over its iterations
                samples["LBFGS.step"] = [
                    (s - ITERATIONS_PER_STEP * c) / ITERATIONS_PER_STEP
                    for s, c in zip(samples["LBFGS.step"], samples["closure"], strict=True)
                ]
                row: dict[str, Any] = {
                    "dtype": dtype_name,
                    "n": n,
                    "arrays": args.arrays,
                    "m": m,
                    "passes": 2 * m + 4,
                    "samples_s": samples,
                    "median_s": {k: statistics.median(v) for k, v in samples.items()},
                }
                for ours in ("fused", "LBFGS.step"):
                    for base in ("numpy", "numpy, flat"):
                        row[f"{ours} / {base}"] = statistics.median(
                            a / b for a, b in zip(samples[ours], samples[base], strict=True)
                        )
                rows.append(row)
                print(
                    f"{dtype_name} m={m}: " + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in row["median_s"].items()),
                    flush=True,
                )
                del case, step_case
                gc.collect()
    finally:
        _core.set_num_threads(previous_threads)

    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": _machine(),
        "threads": _core.get_num_threads() if args.threads == 0 else args.threads,
        "iterations_per_step": ITERATIONS_PER_STEP,
        "command": "python benchmarks/lbfgs.py " + " ".join(sys.argv[1:]),
    }
    lines = [
        f"# LBFGS: one iteration's flat-vector algebra ({meta['date']}, {meta['machine']['cpu']}, "
        f"{meta['threads']} threads, SIMD {fusedoptim.simd_level()})",
        "",
        f"`{meta['command']}`: n = {n:,} parameters in {args.arrays} arrays, the history full with m pairs; "
        "medians over rounds (ratios: the median of per-round ratios; below 1, fusedoptim is faster).",
        "",
        "| dtype | m | fused | LBFGS.step (per iteration, closure excluded) | numpy | numpy, flat "
        "| fused / numpy | fused / numpy, flat | LBFGS.step / numpy | LBFGS.step / numpy, flat |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r["median_s"]
        lines.append(
            f"| {r['dtype']} | {r['m']} | {t['fused'] * 1e3:.2f} ms | {t['LBFGS.step'] * 1e3:.2f} ms | "
            f"{t['numpy'] * 1e3:.2f} ms | {t['numpy, flat'] * 1e3:.2f} ms | {r['fused / numpy']:.2f} | "
            f"{r['fused / numpy, flat']:.2f} | {r['LBFGS.step / numpy']:.2f} | {r['LBFGS.step / numpy, flat']:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "lbfgs.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    with open(os.path.join(args.out, "lbfgs.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
