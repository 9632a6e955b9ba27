"""What the benchmark runs: the optimizers and their settings, the bytes each moves, the model shapes, and the
plans of cases for ``--quick``, the default sweep and ``--full``.

A *case* is one optimizer on one set of arrays (one size, or a model's list of shapes) in one dtype with one
thread count. Every implementation ("peer", see :mod:`fusedoptim.cli.bench.peers`) of a case is timed in the same
process, interleaved round by round (:mod:`fusedoptim.cli.bench.timing`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "FULL_PEER_OPTIMIZERS",
    "OPTIMIZERS",
    "RESNET50_PARAMETERS",
    "Case",
    "OptimizerSpec",
    "Plan",
    "make_plan",
    "parse_size",
    "resnet50_shapes",
]


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer as the benchmark runs it.

    ``hyper`` are keyword arguments understood by both the fusedoptim class and the torch.optim class of the
    same name (the settings are torch's defaults, with SGD's momentum 0.9 since plain SGD has no state).
    ``bytes_per_element`` is the memory traffic the update cannot avoid, in float32 (twice that in float64):
    every array read once and every array written once, counted like STREAM counts (no write-allocate traffic;
    the optimizers write only arrays they have just read, so they cause none).
    """

    name: str
    label: str
    fused_class: str
    hyper: dict[str, Any]
    bytes_per_element: int
    traffic: str
    torch_class: str | None = None
    torch_fused: bool = False
    state: tuple[str, ...] = ()

    def bytes_for(self, dtype: np.dtype) -> int:
        return self.bytes_per_element * np.dtype(dtype).itemsize // 4


OPTIMIZERS: dict[str, OptimizerSpec] = {
    spec.name: spec
    for spec in (
        OptimizerSpec(
            "sgd",
            "SGD (momentum 0.9)",
            "SGD",
            {"lr": 1e-3, "momentum": 0.9},
            20,
            "reads p, g, b; writes p, b",
            "SGD",
            True,
            ("momentum_buffer",),
        ),
        OptimizerSpec(
            "adam",
            "Adam",
            "Adam",
            {"lr": 1e-3},
            28,
            "reads p, g, m, v; writes p, m, v",
            "Adam",
            True,
            ("exp_avg", "exp_avg_sq"),
        ),
        OptimizerSpec(
            "adamw",
            "AdamW",
            "AdamW",
            {"lr": 1e-3, "weight_decay": 1e-2},
            28,
            "reads p, g, m, v; writes p, m, v",
            "AdamW",
            True,
            ("exp_avg", "exp_avg_sq"),
        ),
        OptimizerSpec(
            "adagrad",
            "Adagrad",
            "Adagrad",
            {"lr": 1e-2},
            20,
            "reads p, g, sum; writes p, sum",
            "Adagrad",
            True,
            ("sum",),
        ),
        OptimizerSpec(
            "rmsprop",
            "RMSprop",
            "RMSprop",
            {"lr": 1e-2},
            20,
            "reads p, g, v; writes p, v",
            "RMSprop",
            False,
            ("square_avg",),
        ),
        OptimizerSpec(
            "adadelta",
            "Adadelta",
            "Adadelta",
            {"lr": 1.0},
            28,
            "reads p, g, v, a; writes p, v, a",
            "Adadelta",
            False,
            ("square_avg", "acc_delta"),
        ),
        OptimizerSpec(
            "adamax",
            "Adamax",
            "Adamax",
            {"lr": 2e-3},
            28,
            "reads p, g, m, u; writes p, m, u",
            "Adamax",
            False,
            ("exp_avg", "exp_inf"),
        ),
        OptimizerSpec(
            "nadam",
            "NAdam",
            "NAdam",
            {"lr": 2e-3},
            28,
            "reads p, g, m, v; writes p, m, v",
            "NAdam",
            False,
            ("exp_avg", "exp_avg_sq"),
        ),
        OptimizerSpec(
            "radam",
            "RAdam",
            "RAdam",
            {"lr": 1e-3},
            28,
            "reads p, g, m, v; writes p, m, v",
            "RAdam",
            False,
            ("exp_avg", "exp_avg_sq"),
        ),
        OptimizerSpec(
            "lion", "Lion", "Lion", {"lr": 1e-4}, 20, "reads p, g, m; writes p, m", None, False, ("exp_avg",)
        ),
        OptimizerSpec(
            "lamb",
            "LAMB",
            "LAMB",
            {"lr": 1e-3},
            40,
            "two passes (the trust ratio needs both norms first): reads p, g, m, v, writes m, v; "
            "then reads p, m, v, writes p",
            None,
            False,
            ("exp_avg", "exp_avg_sq"),
        ),
        OptimizerSpec(
            "asgd",
            "ASGD",
            "ASGD",
            {"lr": 1e-2, "t0": 0},  # averaging from the first step: the steady state's arithmetic
            20,
            "reads p, g, ax; writes p, ax",
            "ASGD",
            False,
            ("ax",),
        ),
        OptimizerSpec(
            "rprop",
            "Rprop",
            "Rprop",
            {"lr": 1e-2},
            28,
            "reads p, g, prev, step_size; writes p, prev, step_size",
            "Rprop",
            False,
            ("prev", "step_size"),
        ),
    )
}

# Optimizers measured against every peer (in-place NumPy, textbook NumPy, torch foreach/fused, native loop);
# the others against the reference and torch's for-loop (and torch fused where it exists).
FULL_PEER_OPTIMIZERS = ("sgd", "adam", "adamw")


def resnet50_shapes() -> list[tuple[int, ...]]:
    """The 161 parameter shapes of ResNet-50 (He et al. 2016; torchvision's ``resnet50``), in module order.

    A 7x7 stem convolution and its batch norm, then four stages of bottleneck blocks (3, 4, 6, 3 blocks of
    widths 64, 128, 256, 512, expansion 4): each block a 1x1, a 3x3 and a 1x1 convolution (no biases), each
    followed by a batch norm (weight and bias), and in each stage's first block a 1x1 projection shortcut with its
    batch norm; then the 2048 -> 1000 classifier (weight and bias). 25,557,032 values in all.
    """
    shapes: list[tuple[int, ...]] = [(64, 3, 7, 7), (64,), (64,)]
    inplanes = 64
    for width, blocks in ((64, 3), (128, 4), (256, 6), (512, 3)):
        for block in range(blocks):
            out = width * 4
            shapes += [(width, inplanes, 1, 1), (width,), (width,)]
            shapes += [(width, width, 3, 3), (width,), (width,)]
            shapes += [(out, width, 1, 1), (out,), (out,)]
            if block == 0:
                shapes += [(out, inplanes, 1, 1), (out,), (out,)]
            inplanes = out
    shapes += [(1000, 2048), (1000,)]
    return shapes


RESNET50_PARAMETERS = 25_557_032  # torchvision.models.resnet50().parameters(): 161 tensors


@dataclasses.dataclass
class Case:
    """One optimizer on one set of arrays in one dtype with one thread count."""

    suite: str  # "sweep", "resnet50", "many4096" or "latency"
    optimizer: str
    dtype: str  # "float32" or "float64"
    threads: int
    shapes: list[tuple[int, ...]]

    @property
    def total(self) -> int:
        return sum(math.prod(s) for s in self.shapes)

    @property
    def arrays(self) -> int:
        return len(self.shapes)

    @property
    def key(self) -> str:
        size = f"n={self.total}" if self.suite in ("sweep", "latency") else f"{self.arrays} arrays, {self.total}"
        return f"{self.suite} {self.optimizer} {self.dtype} {self.threads}t {size}"


@dataclasses.dataclass
class Plan:
    """Everything a run measures, and how."""

    mode: str
    cases: list[Case]
    dtypes: list[str]
    threads: list[int]
    repeats: int  # timed rounds per case (after calibration and one warm-up round)
    min_time: float  # seconds per timed sample (calls are batched until a sample lasts this long)
    max_case_time: float  # fewer rounds (never fewer than min_repeats) when a case would take longer
    min_repeats: int
    triad_elements: dict[str, int]  # per dtype: the STREAM probe's array length (each array >= 4x the LLC)
    # Per suite, the only peers to run (--quick keeps the many-array cases to the ones its targets need).
    peer_filter: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)


def parse_size(text: str) -> int:
    """``1e6``, ``1000000`` or ``2**20`` as an element count."""
    text = text.strip()
    if "**" in text:
        base, exponent = text.split("**", 1)
        return int(base) ** int(exponent)
    value = float(text)
    if value < 1 or value != int(value):
        raise ValueError(f"not a positive whole number of elements: {text!r}")
    return int(value)


SIZES = {
    "quick": [10**3, 10**5, 10**6],
    "default": [10**3, 10**4, 10**5, 10**6, 10**7],
    "full": [round(x) for x in np.geomspace(1e3, 1e8, 11)],
}
SUITES = ("sweep", "latency", "resnet50", "many4096")
QUICK_MANY_PEERS = ("fusedoptim", "fusedoptim_functional", "native", "native_per_array", "torch_fused")


def make_plan(
    mode: str,
    *,
    optimizers: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    threads: Sequence[int] | None = None,
    sizes: Sequence[int] | None = None,
    suites: Sequence[str] | None = None,
    repeats: int | None = None,
    min_time: float | None = None,
    max_case_time: float | None = None,
    max_threads: int = 2,
) -> Plan:
    """The cases of a run. ``mode`` is "quick" (CI-sized: Adam and SGD, float32, sizes 1e3, 1e5, 1e6, the latency
    case, and the many-array cases for Adam at the largest thread count against the native loop and torch
    fused only), "default" (every optimizer, both dtypes, 1e3..1e7, the many-array
    cases for SGD, Adam and AdamW) or "full" (half-decade steps up to 1e8, memory permitting). Explicit
    arguments override the mode's choices."""
    if mode not in SIZES:
        raise ValueError(f"unknown mode {mode!r}")
    quick = mode == "quick"
    if optimizers is None:
        optimizers = ["sgd", "adam"] if quick else list(OPTIMIZERS)
    unknown = [o for o in optimizers if o not in OPTIMIZERS]
    if unknown:
        raise ValueError(f"unknown optimizer(s) {', '.join(unknown)} (known: {', '.join(OPTIMIZERS)})")
    if dtypes is None:
        dtypes = ["float32"] if quick else ["float32", "float64"]
    for d in dtypes:
        if d not in ("float32", "float64"):
            raise ValueError(f"unknown dtype {d!r} (float32 or float64)")
    if threads is None:
        threads = sorted({1, max_threads})
    sizes = list(sizes) if sizes is not None else SIZES[mode]
    suites = list(suites) if suites is not None else list(SUITES)
    bad = [s for s in suites if s not in SUITES]
    if bad:
        raise ValueError(f"unknown suite(s) {', '.join(bad)} (known: {', '.join(SUITES)})")

    many_optimizers = [o for o in optimizers if o in (("adam",) if quick else FULL_PEER_OPTIMIZERS)]
    cases: list[Case] = []
    for dtype in dtypes:
        for t in threads:
            if "latency" in suites and "adam" in optimizers:
                cases.append(Case("latency", "adam", dtype, t, [(1000,)]))
            if "sweep" in suites:
                for name in optimizers:
                    for n in sizes:
                        cases.append(Case("sweep", name, dtype, t, [(n,)]))
            for name in many_optimizers:
                if quick and t != max(threads):
                    continue
                if "many4096" in suites:
                    cases.append(Case("many4096", name, dtype, t, [(4096,)] * 1000))
                if "resnet50" in suites:
                    cases.append(Case("resnet50", name, dtype, t, resnet50_shapes()))
    # STREAM's rule: each array at least 4x the last-level cache (33 MiB on the development machine): 128 MiB per
    # array for --quick, 256 MiB otherwise.
    triad = {"float32": 2**25, "float64": 2**24} if quick else {"float32": 2**26, "float64": 2**25}
    return Plan(
        mode=mode,
        cases=cases,
        dtypes=list(dtypes),
        threads=list(threads),
        repeats=repeats if repeats is not None else (5 if quick else 7),
        min_time=min_time if min_time is not None else (0.004 if quick else 0.01),
        max_case_time=max_case_time if max_case_time is not None else (4.0 if quick else 25.0),
        min_repeats=3,
        triad_elements=triad,
        peer_filter={suite: QUICK_MANY_PEERS for suite in ("resnet50", "many4096")} if quick else {},
    )
