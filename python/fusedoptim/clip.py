"""Gradient clipping (torch.nn.utils' clip_grad_norm_, clip_grad_value_, get_total_norm), fused in C++.

Each call is one pass over all arrays: the norm is reduced in double over fixed blocks combined in a fixed
order, so it is bitwise the same for any thread count; clipping then scales or clamps every array in place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _core
from ._validation import check_bool, check_nonnegative

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm"]


def _grads_list(grads: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
    if isinstance(grads, np.ndarray):
        return [grads]  # torch accepts a single tensor too
    return [g for g in grads if g is not None]


def _norm_type(norm_type: float) -> float:
    if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float)) or not norm_type > 0:
        raise ValueError(f"Invalid norm_type: {norm_type!r} (a p-norm needs p > 0, or inf)")
    return float(norm_type)


def _total_norm(arrays: list[np.ndarray], norm_type: float, allow_16bit: bool = True) -> float:
    """The fused norm, and where its sum of powers overflowed double although every element is finite (float64
    values above ~1e154 for the 2-norm), the same norm computed scaled by the largest magnitude: inf only when
    an element is inf, NaN only when one is NaN."""
    total = float(_core.total_norm(arrays, norm_type, allow_16bit))
    if total == math.inf and norm_type != math.inf:
        largest = float(_core.total_norm(arrays, math.inf, allow_16bit))
        if math.isfinite(largest):  # a rare path: NumPy, with temporaries
            powers = sum(float(np.sum((np.abs(a.astype(np.float64)) / largest) ** norm_type)) for a in arrays)
            total = largest * powers ** (1.0 / norm_type)
    return total


def _guard_options(skip_if_nonfinite: Any, max_grad_norm: Any, norm_type: Any) -> tuple[bool, float | None, Any]:
    """A step's non-finite guard and clipping options (Optimizer.step, and the distributed wrappers before any
    collective), checked; norm_type only when the guard or clipping uses it."""
    skip = check_bool("skip_if_nonfinite", skip_if_nonfinite)
    if max_grad_norm is not None:
        max_grad_norm = check_nonnegative("max_grad_norm", "max_grad_norm", max_grad_norm)
    if skip or max_grad_norm is not None:
        norm_type = _norm_type(norm_type)
    return skip, max_grad_norm, norm_type


def _clip_coef(max_norm: float, total: float) -> float | None:
    """torch's clipping factor for a total norm, or None when it is >= 1 (nothing to scale). NaN for a NaN
    norm: torch multiplies by it."""
    coef = max_norm / (total + 1e-6)
    return None if coef >= 1.0 else coef


def get_total_norm(grads: Sequence[np.ndarray] | np.ndarray, norm_type: float = 2.0) -> float:
    r"""The p-norm of all ``grads`` together, :math:`(\sum_i \sum_j |g_{ij}|^p)^{1/p}` (max for ``inf``).

    Computed in double; NaN or inf when any element is not finite (that is how the non-finite guard finds them).
    ``None`` entries are skipped. float16 and bfloat16 arrays count as their float32 values (the clipping
    functions take float32 and float64 only).
    """
    return _total_norm(_grads_list(grads), _norm_type(norm_type))


def clip_grad_norm_(
    grads: Sequence[np.ndarray] | np.ndarray,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    r"""Scales ``grads`` in place so that their total norm is at most ``max_norm``; returns the norm before.

    As torch: :math:`c = \text{max\_norm} / (\lVert g \rVert + 10^{-6})`, and when :math:`c < 1` every gradient is
    multiplied by :math:`c`. With ``error_if_nonfinite`` a NaN or infinite norm raises (nothing is changed);
    without it such gradients are scaled by a NaN factor, as torch does (use an optimizer's
    ``step(..., skip_if_nonfinite=True)`` to skip such steps instead).
    """
    max_norm = check_nonnegative("max_norm", "max_norm", max_norm)
    norm_type = _norm_type(norm_type)
    arrays = _grads_list(grads)
    total = _total_norm(arrays, norm_type, allow_16bit=False)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients is non-finite, so it cannot be clipped. To disable "
            "this error and scale the gradients by the non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    coef = _clip_coef(max_norm, total)
    if coef is not None:
        _core.scale_(arrays, coef)
    return total


def clip_grad_value_(grads: Sequence[np.ndarray] | np.ndarray, clip_value: float) -> None:
    """Clamps every gradient to ``[-clip_value, clip_value]`` in place (NaN stays NaN)."""
    clip_value = check_nonnegative("clip_value", "clip_value", clip_value)
    _core.clamp_(_grads_list(grads), -clip_value, clip_value)
