"""Interleaved timing: every peer of a case is sampled once per round, rounds repeat, medians are reported.

Machines are noisy (other processes, frequency changes, a neighbour's memory traffic), and noise comes in
bursts: a burst hits all the peers of a round alike, so ratios are computed per round (peer time / fusedoptim
time in the same round) and their median reported, next to each peer's median time.

A sample is ``number`` back-to-back calls timed together (``number`` chosen so a sample lasts ``min_time``),
so the per-call time of fast steps is not dominated by the timer; the first calls of each peer (state
allocation, torch's lazy set-up) happen during calibration and one untimed warm-up round. The order of the
peers rotates from round to round, so no peer always follows the same other one (each OpenMP runtime's idle
threads spin for a while after a parallel region and compete with whoever runs next). The garbage collector is
off while a sample runs, as in :mod:`timeit`.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import time
from collections.abc import Callable, Sequence

__all__ = ["Timed", "measure", "paired_ratio"]


@dataclasses.dataclass
class Timed:
    """One peer's samples (seconds per call), in round order."""

    number: int
    samples: list[float] = dataclasses.field(default_factory=list)

    @property
    def median(self) -> float:
        return _median(self.samples)


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    k = len(ordered)
    if k == 0:
        return math.nan
    return ordered[k // 2] if k % 2 else 0.5 * (ordered[k // 2 - 1] + ordered[k // 2])


def _sample(step: Callable[[], object], number: int) -> float:
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            step()
        return time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()


def _calibrate(step: Callable[[], object], min_time: float, max_number: int) -> tuple[int, float]:
    """Calls per sample so that a sample lasts at least ``min_time``, and the estimated seconds per call."""
    step()  # the first call allocates state
    number = 1
    while True:
        elapsed = _sample(step, number)
        if elapsed >= min_time or number >= max_number:
            return number, elapsed / number
        grow = 2 if elapsed <= 0 else min(10.0, max(2.0, 1.2 * min_time / elapsed))
        number = min(max_number, math.ceil(number * grow))


def measure(
    steps: dict[str, Callable[[], object]],
    *,
    repeats: int,
    min_time: float,
    max_case_time: float,
    min_repeats: int = 3,
    max_number: int = 100_000,
    between_rounds: Callable[[], object] | None = None,
    on_error: Callable[[str, BaseException], None] | None = None,
) -> dict[str, Timed]:
    """Times every step in ``steps`` round-robin (see the module docstring).

    ``repeats`` timed rounds follow one warm-up round, reduced (to no fewer than ``min_repeats``, and without the
    warm-up round) when a case would take more than ``max_case_time`` seconds. ``between_rounds`` runs after each round, outside the
    timing (the workspace's parameter reset). A step that raises is dropped and reported to ``on_error``.
    """
    timed: dict[str, Timed] = {}
    estimate: dict[str, float] = {}
    for name, step in steps.items():
        try:
            number, per_call = _calibrate(step, min_time, max_number)
        except Exception as e:
            if on_error is not None:
                on_error(name, e)
            continue
        timed[name] = Timed(number)
        estimate[name] = number * per_call
    if not timed:
        return timed
    round_time = sum(estimate.values())
    rounds = repeats
    if (rounds + 1) * round_time > max_case_time:
        rounds = max(min_repeats, int(max_case_time / round_time) - 1)
    # An untimed warm-up round, unless the case is long: calibration has already run every peer several times.
    first = -1 if (rounds + 1) * round_time <= max_case_time else 0
    names = list(timed)
    for r in range(first, rounds):  # round -1 is the warm-up
        shift = r % len(names) if r >= 0 else 0
        for name in names[shift:] + names[:shift]:
            t = timed[name]
            elapsed = _sample(steps[name], t.number)
            if r >= 0:
                t.samples.append(elapsed / t.number)
        if between_rounds is not None:
            between_rounds()
    return timed


def paired_ratio(numerator: Timed, denominator: Timed) -> float:
    """The median over rounds of numerator / denominator, each pair taken from the same round."""
    pairs = [a / b for a, b in zip(numerator.samples, denominator.samples) if b > 0]
    return _median(pairs)
