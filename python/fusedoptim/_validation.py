"""Hyperparameter checks shared by the optimizer classes and the functional API.

Messages follow torch.optim ("Invalid learning rate: -0.1") and name the argument and its value. Values that
are NaN or infinite are rejected too: they would silently turn every parameter into NaN.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "check_bool",
    "check_nonnegative",
    "check_beta",
    "check_steps",
    "MAX_STEP",
]

# Step numbers are below this (the kernels take them as int64, and bias corrections as double exponents).
MAX_STEP = 2**62


def _real(name: str, value: Any) -> float:
    if type(value) is float:  # the common case, without the slow ABC check
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}: {value!r}")
    try:
        return float(value)
    except OverflowError:  # an int beyond float range
        return math.inf if value > 0 else -math.inf


def check_nonnegative(label: str, name: str, value: Any) -> float:
    """A finite value >= 0; ``label`` is torch's wording ("learning rate", "epsilon value")."""
    v = _real(name, value)
    if not (0.0 <= v and math.isfinite(v)):
        raise ValueError(f"Invalid {label}: {value}")
    return v


def check_beta(label: str, name: str, value: Any, *, closed: bool = False) -> float:
    """A value in [0, 1) (or [0, 1] when ``closed``)."""
    v = _real(name, value)
    if not (0.0 <= v < 1.0 or (closed and v == 1.0)):
        raise ValueError(f"Invalid {label}: {value}")
    return v


def check_bool(name: str, value: Any) -> bool:
    if value is True or value is False:
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}: {value!r}")
    return value


def check_steps(steps: Any) -> list[int]:
    """Step numbers of an update, one per parameter, each >= 1."""
    if not isinstance(steps, Sequence):
        raise TypeError(f"steps must be a list of ints, got {type(steps).__name__}")
    out = []
    for i, t in enumerate(steps):
        if type(t) is int and 1 <= t < MAX_STEP:
            out.append(t)
            continue
        if isinstance(t, bool) or not isinstance(t, numbers.Integral):
            raise TypeError(f"steps[{i}] must be an int, got {type(t).__name__}: {t!r}")
        if not 1 <= t < MAX_STEP:
            raise ValueError(f"Invalid step number: steps[{i}] = {t} (steps count from 1, below 2**62)")
        out.append(int(t))
    return out
