"""Every argument check, in one place: the optimizer classes, the functional API and the reference (the spec,
which must not depend on the implementation) all use these.

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
    "MAX_STEP",
    "check_adadelta",
    "check_adagrad",
    "check_adam",
    "check_adamax",
    "check_asgd",
    "check_beta",
    "check_betas",
    "check_bool",
    "check_int",
    "check_lamb",
    "check_lbfgs",
    "check_lion",
    "check_nadam",
    "check_nonnegative",
    "check_positive",
    "check_radam",
    "check_real",
    "check_rmsprop",
    "check_rprop",
    "check_sgd",
    "check_steps",
]

# Step numbers are below this (the kernels take them as int64, and bias corrections as double exponents).
MAX_STEP = 2**62


def check_real(name: str, value: Any) -> float:
    """A real number (not a bool) as a float; ints beyond the float range become +-inf."""
    if type(value) is float:  # the common case, without the slow ABC check
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}: {value!r}")
    try:
        return float(value)
    except OverflowError:  # an int beyond float range
        return -math.inf if value < 0 else math.inf  # numbers.Real declares < but not > (an overflow is not 0)


def check_nonnegative(label: str, name: str, value: Any, detail: str = "") -> float:
    """A finite value >= 0; ``label`` is torch's wording ("learning rate", "epsilon value"), ``name`` the
    argument's (for a TypeError), ``detail`` what the message adds in parentheses."""
    v = check_real(name, value)
    if not (v >= 0.0 and math.isfinite(v)):
        raise ValueError(f"Invalid {label}: {value}" + (f" ({detail})" if detail else ""))
    return v


def check_positive(label: str, name: str, value: Any, detail: str = "") -> float:
    """A finite value > 0 (see check_nonnegative)."""
    v = check_real(name, value)
    if not (v > 0.0 and math.isfinite(v)):
        raise ValueError(f"Invalid {label}: {value}" + (f" ({detail})" if detail else ""))
    return v


def check_int(name: str, value: Any, minimum: int) -> int:
    """An int (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}: {value!r}")
    if value < minimum:
        raise ValueError(f"Invalid {name}: {value} (expected an integer >= {minimum})")
    return int(value)


def check_beta(label: str, name: str, value: Any, *, closed: bool = False) -> float:
    """A value in [0, 1) (or [0, 1] when ``closed``)."""
    v = check_real(name, value)
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
        if not 1 <= int(t) < MAX_STEP:
            raise ValueError(f"Invalid step number: steps[{i}] = {t} (steps count from 1, below 2**62)")
        out.append(int(t))
    return out


# --- each family's hyperparameters (torch's messages) ------------------------------------------------------


def _check_adam_like(lr, beta1, beta2, eps, weight_decay) -> None:
    """The checks every Adam-family optimizer shares."""
    check_nonnegative("learning rate", "lr", lr)
    check_beta("beta parameter at index 0", "beta1", beta1)
    check_beta("beta parameter at index 1", "beta2", beta2)
    check_nonnegative("epsilon value", "eps", eps)
    check_nonnegative("weight_decay value", "weight_decay", weight_decay)


def check_betas(betas: Any) -> tuple[float, float]:
    """A pair of coefficients (each optimizer checks their range)."""
    if isinstance(betas, (str, bytes)) or not isinstance(betas, Sequence) or len(betas) != 2:
        raise TypeError(f"betas must be a pair of floats, got {betas!r}")
    return betas[0], betas[1]


def check_sgd(lr, momentum, dampening, weight_decay, nesterov, maximize) -> None:
    check_nonnegative("learning rate", "lr", lr)
    check_nonnegative("momentum value", "momentum", momentum)
    check_nonnegative("dampening value", "dampening", dampening)
    check_nonnegative("weight_decay value", "weight_decay", weight_decay)
    check_bool("nesterov", nesterov)
    check_bool("maximize", maximize)
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")


def check_adagrad(lr, lr_decay, weight_decay, eps, maximize) -> None:
    check_nonnegative("learning rate", "lr", lr)
    check_nonnegative("lr_decay value", "lr_decay", lr_decay)
    check_nonnegative("weight_decay value", "weight_decay", weight_decay)
    check_nonnegative("epsilon value", "eps", eps)
    check_bool("maximize", maximize)


def check_rmsprop(lr, alpha, eps, weight_decay, momentum, centered, maximize, eps_in_sqrt) -> None:
    check_nonnegative("learning rate", "lr", lr)
    check_beta("alpha value", "alpha", alpha, closed=True)
    check_nonnegative("epsilon value", "eps", eps)
    check_nonnegative("weight_decay value", "weight_decay", weight_decay)
    check_nonnegative("momentum value", "momentum", momentum)
    check_bool("centered", centered)
    check_bool("maximize", maximize)
    check_bool("eps_in_sqrt", eps_in_sqrt)


def check_adam(lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay) -> None:
    _check_adam_like(lr, beta1, beta2, eps, weight_decay)
    check_bool("amsgrad", amsgrad)
    check_bool("maximize", maximize)
    check_bool("decoupled_weight_decay", decoupled_weight_decay)


def check_adadelta(lr, rho, eps, weight_decay, maximize) -> None:
    check_nonnegative("learning rate", "lr", lr)
    check_beta("rho value", "rho", rho, closed=True)
    check_nonnegative("epsilon value", "eps", eps)
    check_nonnegative("weight_decay value", "weight_decay", weight_decay)
    check_bool("maximize", maximize)


def check_adamax(lr, beta1, beta2, eps, weight_decay, maximize) -> None:
    _check_adam_like(lr, beta1, beta2, eps, weight_decay)
    check_bool("maximize", maximize)


def check_nadam(lr, beta1, beta2, eps, weight_decay, momentum_decay, decoupled_weight_decay, maximize) -> None:
    _check_adam_like(lr, beta1, beta2, eps, weight_decay)
    check_nonnegative("momentum_decay value", "momentum_decay", momentum_decay)
    check_bool("decoupled_weight_decay", decoupled_weight_decay)
    check_bool("maximize", maximize)


def check_radam(lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay, maximize) -> None:
    _check_adam_like(lr, beta1, beta2, eps, weight_decay)
    check_bool("decoupled_weight_decay", decoupled_weight_decay)
    check_bool("maximize", maximize)


def check_lion(lr, beta1, beta2, weight_decay, maximize) -> None:
    check_nonnegative("learning rate", "lr", lr)
    check_beta("beta parameter at index 0", "beta1", beta1, closed=True)
    check_beta("beta parameter at index 1", "beta2", beta2, closed=True)
    check_nonnegative("weight_decay value", "weight_decay", weight_decay)
    check_bool("maximize", maximize)


def check_lamb(lr, beta1, beta2, eps, weight_decay, maximize) -> None:
    _check_adam_like(lr, beta1, beta2, eps, weight_decay)
    check_bool("maximize", maximize)


def check_asgd(lr, lambd, alpha, t0, weight_decay, maximize) -> None:
    check_nonnegative("learning rate", "lr", lr)
    check_nonnegative("lambd value", "lambd", lambd)
    check_nonnegative("alpha value", "alpha", alpha)
    check_nonnegative("t0 value", "t0", t0)
    check_nonnegative("weight_decay value", "weight_decay", weight_decay)
    check_bool("maximize", maximize)


def check_rprop(lr, etas, step_sizes, maximize) -> None:
    check_nonnegative("learning rate", "lr", lr)
    for name, pair in (("etas", etas), ("step_sizes", step_sizes)):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise TypeError(f"{name} must be a pair of floats, got {pair!r}")
    etaminus, etaplus = check_real("etas[0]", etas[0]), check_real("etas[1]", etas[1])
    if not 0.0 < etaminus < 1.0 < etaplus or not math.isfinite(etaplus):
        raise ValueError(f"Invalid eta values: {etaminus}, {etaplus}")
    low = check_nonnegative("minimal step size", "step_sizes[0]", step_sizes[0])
    high = check_nonnegative("maximal step size", "step_sizes[1]", step_sizes[1])
    if low > high:
        raise ValueError(f"Invalid step sizes: {low}, {high} (the minimum is larger than the maximum)")
    check_bool("maximize", maximize)


def check_lbfgs(lr, max_iter, max_eval, tolerance_grad, tolerance_change, history_size, line_search_fn) -> None:
    check_nonnegative("learning rate", "lr", lr)
    check_int("max_iter", max_iter, 1)
    check_int("max_eval", max_eval, 1)
    check_nonnegative("tolerance_grad", "tolerance_grad", tolerance_grad)
    check_nonnegative("tolerance_change", "tolerance_change", tolerance_change)
    check_int("history_size", history_size, 1)
    if line_search_fn is not None and not (isinstance(line_search_fn, str) and line_search_fn == "strong_wolfe"):
        raise ValueError(f"Invalid line_search_fn: {line_search_fn!r} (expected None or 'strong_wolfe')")
