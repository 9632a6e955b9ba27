"""The executable specification: every update in plain NumPy, with the signatures of
:mod:`fusedoptim.functional`.

Written for reading, not speed: each line is one of torch.optim's tensor operations, in torch's order and in the
parameter's dtype, with per-step scalars computed in Python floats (double). The fused kernels perform the same
operations in the same order, element by element, so they agree with this module to the last bit (the tests
check that). It validates hyperparameters like the functional API, but not the arrays.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._validation import (
    check_adadelta,
    check_adagrad,
    check_adam,
    check_adamax,
    check_asgd,
    check_lamb,
    check_lion,
    check_nadam,
    check_radam,
    check_rmsprop,
    check_rprop,
    check_sgd,
    check_steps,
)

__all__ = [
    "adadelta_",
    "adagrad_",
    "adam_",
    "adamax_",
    "adamw_",
    "asgd_",
    "lamb_",
    "lion_",
    "mixed_precision_",
    "nadam_",
    "radam_",
    "rmsprop_",
    "round_bfloat16_stochastic",
    "rprop_",
    "sgd_",
    "stochastic_key",
]

Arrays = Sequence[np.ndarray]
OptionalArrays = Arrays | None  # None when the options do not need them (functional's docstrings say which)
# SGD's momentum buffers: a list whose None entries (buffers not created yet) are created and stored back.
MomentumBuffers = list[np.ndarray | None] | None


def _python_floats(function):
    """Hyperparameters as Python floats, so per-step scalars are computed in double whatever the caller passed
    (a NumPy float32 scalar would otherwise make ``1 - beta1**t`` float32 arithmetic)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        kwargs = {k: float(v) if isinstance(v, (np.floating, np.integer)) else v for k, v in kwargs.items()}
        return function(*args, **kwargs)

    return wrapper


def _scalar(x: np.ndarray, value: float) -> np.floating[Any]:
    """A per-step scalar rounded to the array's dtype, as torch rounds a Python scalar for a float32 tensor."""
    return x.dtype.type(value)


def _lerp(start: np.ndarray, end: np.ndarray, weight: np.floating[Any]) -> np.ndarray:
    """torch.lerp: the formula is picked by the weight so that both ends are exact."""
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (weight.dtype.type(1) - weight)


@_python_floats
def sgd_(
    params: Arrays,
    grads: Arrays,
    momentum_buffers: MomentumBuffers = None,
    *,
    lr: float = 1e-3,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    maximize: bool = False,
) -> None:
    check_sgd(lr, momentum, dampening, weight_decay, nesterov, maximize)
    for i, (p, g) in enumerate(zip(params, grads)):
        g = -g if maximize else g
        if weight_decay != 0:
            g = g + _scalar(p, weight_decay) * p
        if momentum != 0:
            assert momentum_buffers is not None
            b = momentum_buffers[i]
            if b is None:
                b = np.copy(g)  # torch: the first buffer is the gradient itself (an array even for 0-d params)
                momentum_buffers[i] = b
            else:
                b[...] = b * _scalar(p, momentum) + _scalar(p, 1 - dampening) * g
            g = g + _scalar(p, momentum) * b if nesterov else b
        p[...] = p + _scalar(p, -lr) * g


@_python_floats
def adagrad_(
    params: Arrays,
    grads: Arrays,
    state_sums: Arrays,
    steps: Sequence[int],
    *,
    lr: float = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    eps: float = 1e-10,
    maximize: bool = False,
) -> None:
    check_adagrad(lr, lr_decay, weight_decay, eps, maximize)
    for p, g, s, t in zip(params, grads, state_sums, check_steps(steps)):
        g = -g if maximize else g
        if weight_decay != 0:
            g = g + _scalar(p, weight_decay) * p
        clr = lr / (1 + (t - 1) * lr_decay)
        s[...] = s + g * g
        p[...] = p + (_scalar(p, -clr) * g) / (np.sqrt(s) + _scalar(p, eps))


@_python_floats
def rmsprop_(
    params: Arrays,
    grads: Arrays,
    square_avgs: Arrays,
    grad_avgs: OptionalArrays = None,
    momentum_buffers: OptionalArrays = None,
    *,
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    maximize: bool = False,
    eps_in_sqrt: bool = False,
) -> None:
    check_rmsprop(lr, alpha, eps, weight_decay, momentum, centered, maximize, eps_in_sqrt)
    for i, (p, g, v) in enumerate(zip(params, grads, square_avgs)):
        g = -g if maximize else g
        if weight_decay != 0:
            g = g + _scalar(p, weight_decay) * p
        v[...] = v * _scalar(p, alpha) + (_scalar(p, 1 - alpha) * g) * g
        var = v
        if centered:
            assert grad_avgs is not None
            ga = grad_avgs[i]
            ga[...] = _lerp(ga, g, _scalar(p, 1 - alpha))
            var = v - ga * ga
        avg = np.sqrt(var + _scalar(p, eps)) if eps_in_sqrt else np.sqrt(var) + _scalar(p, eps)
        if momentum != 0:
            assert momentum_buffers is not None
            b = momentum_buffers[i]
            b[...] = b * _scalar(p, momentum) + g / avg
            p[...] = p + _scalar(p, -lr) * b
        else:
            p[...] = p + (_scalar(p, -lr) * g) / avg


@_python_floats
def adam_(
    params: Arrays,
    grads: Arrays,
    exp_avgs: Arrays,
    exp_avg_sqs: Arrays,
    max_exp_avg_sqs: OptionalArrays,
    steps: Sequence[int],
    *,
    lr: float = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    maximize: bool = False,
    decoupled_weight_decay: bool = False,
) -> None:
    check_adam(lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay)
    for i, (p, g, m, v, t) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs, check_steps(steps))):
        g = -g if maximize else g
        if weight_decay != 0 and not decoupled_weight_decay:
            g = g + _scalar(p, weight_decay) * p
        param = p * _scalar(p, 1 - lr * weight_decay) if weight_decay != 0 and decoupled_weight_decay else p
        m[...] = _lerp(m, g, _scalar(p, 1 - beta1))
        v[...] = v * _scalar(p, beta2) + (_scalar(p, 1 - beta2) * g) * g
        bias_correction1 = 1 - beta1**t
        bias_correction2 = 1 - beta2**t
        if amsgrad:
            assert max_exp_avg_sqs is not None
            vmax = max_exp_avg_sqs[i]
            vmax[...] = np.maximum(vmax, v)
            v_used = vmax
        else:
            v_used = v
        denom = np.sqrt(v_used) * _scalar(p, 1 / math.sqrt(bias_correction2)) + _scalar(p, eps)
        p[...] = param + (_scalar(p, -(lr / bias_correction1)) * m) / denom


@_python_floats
def adamw_(
    params: Arrays,
    grads: Arrays,
    exp_avgs: Arrays,
    exp_avg_sqs: Arrays,
    max_exp_avg_sqs: OptionalArrays,
    steps: Sequence[int],
    *,
    lr: float = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    maximize: bool = False,
) -> None:
    adam_(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        max_exp_avg_sqs,
        steps,
        lr=lr,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        weight_decay=weight_decay,
        amsgrad=amsgrad,
        maximize=maximize,
        decoupled_weight_decay=True,
    )


@_python_floats
def adadelta_(
    params: Arrays,
    grads: Arrays,
    square_avgs: Arrays,
    acc_deltas: Arrays,
    *,
    lr: float = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> None:
    check_adadelta(lr, rho, eps, weight_decay, maximize)
    for p, g, v, acc in zip(params, grads, square_avgs, acc_deltas):
        g = -g if maximize else g
        if weight_decay != 0:
            g = g + _scalar(p, weight_decay) * p
        v[...] = v * _scalar(p, rho) + (_scalar(p, 1 - rho) * g) * g
        delta = np.sqrt((acc + _scalar(p, eps)) / (v + _scalar(p, eps))) * g
        acc[...] = acc * _scalar(p, rho) + (_scalar(p, 1 - rho) * delta) * delta
        p[...] = p + _scalar(p, -lr) * delta


@_python_floats
def adamax_(
    params: Arrays,
    grads: Arrays,
    exp_avgs: Arrays,
    exp_infs: Arrays,
    steps: Sequence[int],
    *,
    lr: float = 2e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> None:
    check_adamax(lr, beta1, beta2, eps, weight_decay, maximize)
    for p, g, m, u, t in zip(params, grads, exp_avgs, exp_infs, check_steps(steps)):
        g = -g if maximize else g
        if weight_decay != 0:
            g = g + _scalar(p, weight_decay) * p
        m[...] = _lerp(m, g, _scalar(p, 1 - beta1))
        u[...] = np.maximum(u * _scalar(p, beta2), np.abs(g) + _scalar(p, eps))
        clr = lr / (1 - beta1**t)
        p[...] = p + (_scalar(p, -clr) * m) / u


def _nadam_mu(beta1: float, momentum_decay: float, t: int) -> float:
    return beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))


@_python_floats
def nadam_(
    params: Arrays,
    grads: Arrays,
    exp_avgs: Arrays,
    exp_avg_sqs: Arrays,
    mu_products: list[float],
    steps: Sequence[int],
    *,
    lr: float = 2e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum_decay: float = 4e-3,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
) -> None:
    check_nadam(lr, beta1, beta2, eps, weight_decay, momentum_decay, decoupled_weight_decay, maximize)
    for i, (p, g, m, v, t) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs, check_steps(steps))):
        g = -g if maximize else g
        param = p
        if weight_decay != 0:
            if decoupled_weight_decay:
                param = p * _scalar(p, 1 - lr * weight_decay)
            else:
                g = g + _scalar(p, weight_decay) * p
        mu = _nadam_mu(beta1, momentum_decay, t)
        mu_next = _nadam_mu(beta1, momentum_decay, t + 1)
        mu_products[i] *= mu
        mu_product_next = mu_products[i] * mu_next
        m[...] = _lerp(m, g, _scalar(p, 1 - beta1))
        v[...] = v * _scalar(p, beta2) + (_scalar(p, 1 - beta2) * g) * g
        denom = np.sqrt(v * _scalar(p, 1 / (1 - beta2**t))) + _scalar(p, eps)
        grad_coeff = _scalar(p, -lr * (1 - mu) / (1 - mu_products[i]))
        avg_scale = _scalar(p, (-lr * mu_next) / (1 - mu_product_next))
        p[...] = param + (grad_coeff * g + avg_scale * m) / denom


@_python_floats
def radam_(
    params: Arrays,
    grads: Arrays,
    exp_avgs: Arrays,
    exp_avg_sqs: Arrays,
    steps: Sequence[int],
    *,
    lr: float = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
) -> None:
    check_radam(lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay, maximize)
    for p, g, m, v, t in zip(params, grads, exp_avgs, exp_avg_sqs, check_steps(steps)):
        g = -g if maximize else g
        param = p
        if weight_decay != 0:
            if decoupled_weight_decay:
                param = p * _scalar(p, 1 - lr * weight_decay)
            else:
                g = g + _scalar(p, weight_decay) * p
        m[...] = _lerp(m, g, _scalar(p, 1 - beta1))
        v[...] = v * _scalar(p, beta2) + (_scalar(p, 1 - beta2) * g) * g
        bias_correction1 = 1 - beta1**t
        bias_correction2 = 1 - beta2**t
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * t * beta2**t / bias_correction2
        step = m * _scalar(p, lr / bias_correction1)
        if rho_t > 5.0:
            rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            adaptive = _scalar(p, math.sqrt(bias_correction2)) / (np.sqrt(v) + _scalar(p, eps))
            step = (step * adaptive) * _scalar(p, rect)
        p[...] = param - step


@_python_floats
def lion_(
    params: Arrays,
    grads: Arrays,
    exp_avgs: Arrays,
    *,
    lr: float = 1e-4,
    beta1: float = 0.9,
    beta2: float = 0.99,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> None:
    """Transcribed from the paper's Algorithm 2 in optax's arithmetic (scale_by_lion, add_decayed_weights,
    scale_by_learning_rate)."""
    check_lion(lr, beta1, beta2, weight_decay, maximize)
    for p, g, m in zip(params, grads, exp_avgs):
        g = -g if maximize else g
        update = np.sign(_scalar(p, 1 - beta1) * g + _scalar(p, beta1) * m)
        m[...] = _scalar(p, 1 - beta2) * g + _scalar(p, beta2) * m
        if weight_decay != 0:
            update = update + _scalar(p, weight_decay) * p
        p[...] = p + _scalar(p, -lr) * update


@_python_floats
def lamb_(
    params: Arrays,
    grads: Arrays,
    exp_avgs: Arrays,
    exp_avg_sqs: Arrays,
    steps: Sequence[int],
    *,
    lr: float = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> None:
    """Transcribed from the paper's Algorithm 2 (with Adam's bias correction) in optax's arithmetic
    (scale_by_adam, add_decayed_weights, scale_by_trust_ratio, scale_by_learning_rate); the norms in double."""
    check_lamb(lr, beta1, beta2, eps, weight_decay, maximize)
    for p, g, m, v, t in zip(params, grads, exp_avgs, exp_avg_sqs, check_steps(steps)):
        g = -g if maximize else g
        m[...] = _scalar(p, 1 - beta1) * g + _scalar(p, beta1) * m
        v[...] = _scalar(p, 1 - beta2) * (g * g) + _scalar(p, beta2) * v
        update = (m * _scalar(p, 1 / (1 - beta1**t))) / (np.sqrt(v * _scalar(p, 1 / (1 - beta2**t))) + _scalar(p, eps))
        if weight_decay != 0:
            update = update + _scalar(p, weight_decay) * p
        p_norm = float(np.sqrt(np.sum(p.astype(np.float64) ** 2)))
        u_norm = float(np.sqrt(np.sum(update.astype(np.float64) ** 2)))
        trust_ratio = 1.0 if p_norm == 0.0 or u_norm == 0.0 else p_norm / u_norm
        p[...] = p + _scalar(p, -lr) * (update * _scalar(p, trust_ratio))


def _lowbias32(x: np.ndarray) -> np.ndarray:
    """C. Wellons' 32-bit integer hash, on uint32 arrays (wrapping arithmetic)."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


def _splitmix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


def stochastic_key(seed: int, index: int, step: int, slot: int) -> int:
    """The 32-bit key of buffer ``slot`` (0 the parameter, 2, 3, ... the state buffers in the update's argument
    order) of parameter ``index`` (its position in the optimizer) at step number ``step``."""
    h = _splitmix64(seed)
    for value in (index, step, slot):
        h = _splitmix64(h ^ (value & 0xFFFFFFFFFFFFFFFF))
    return h & 0xFFFFFFFF


def round_bfloat16_stochastic(values: np.ndarray, key: int) -> np.ndarray:
    """float32 ``values`` rounded to bfloat16 stochastically: element i (in C order) adds the top 16 bits of
    ``lowbias32(key + i * 0x9E3779B9)`` below the 16 bits it keeps and truncates, so it rounds up in magnitude
    with probability equal to the fraction of an ulp it lies above the value below. NaN becomes the quiet NaN
    0x7FC0 with its sign, as in round to nearest."""
    from ._precision import bfloat16

    bits = np.ascontiguousarray(values, dtype=np.float32).reshape(-1).view(np.uint32)
    index = np.arange(bits.size, dtype=np.uint64).astype(np.uint32)  # the kernels' index, modulo 2^32
    with np.errstate(over="ignore"):
        random = _lowbias32(np.uint32(key) + index * np.uint32(0x9E3779B9)) >> np.uint32(16)
    rounded = ((bits + random) >> np.uint32(16)).astype(np.uint16)
    nan = ((bits >> np.uint32(16)) & np.uint32(0x8000) | np.uint32(0x7FC0)).astype(np.uint16)
    out = np.where(np.isnan(values.reshape(-1)), nan, rounded)
    return out.view(bfloat16()).reshape(values.shape)


def mixed_precision_(
    update,
    params: Sequence[np.ndarray],
    masters: Sequence[np.ndarray],
    grads: Arrays,
    states: dict,
    *,
    grad_scale: float = 1.0,
    state_dtype=None,
    rounding: str = "nearest",
    seed: int = 0,
    indices: Sequence[int] | None = None,
    steps: Sequence[int] | None = None,
) -> None:
    """Mixed precision around any update of this module, ``update(masters, grads, states)``: what the kernels do
    for 16-bit parameters (float32 masters), 16-bit state and a gradient scale, element by element.

    Gradients are read in the master's dtype and multiplied by ``grad_scale`` (a gradient already in the master's
    dtype, with no scale, is used as it is, as in a plain step); state arrays (the lists of arrays
    in ``states``; other lists, such as NAdam's mu_products, are passed as they are) are widened to float32,
    updated, and rounded back to their dtype (``state_dtype`` for buffers the update creates); then each 16-bit
    parameter becomes its master rounded to nearest even. ``params[i] is masters[i]`` for a plain parameter.

    ``rounding="stochastic"`` rounds every bfloat16 result with :func:`round_bfloat16_stochastic` instead (float16
    ones still to nearest), keyed by :func:`stochastic_key` from ``seed``, the parameter's index in the optimizer
    (``indices``, by default its position here), its step number this step (``steps``, required) and the buffer:
    slot 0 for the parameter, 2 + k for the k-th list of arrays in ``states`` (give them in the update's order).
    """
    stochastic = rounding == "stochastic"
    if rounding not in ("nearest", "stochastic"):
        raise ValueError(f"Invalid rounding: {rounding!r} (expected 'nearest' or 'stochastic')")
    if stochastic and (steps is None or len(steps) != len(params)):
        raise ValueError("rounding='stochastic' needs steps, one step number per parameter")
    indices = list(range(len(params))) if indices is None else list(indices)

    def to_dtype(values: np.ndarray, dtype: np.dtype, i: int, slot: int) -> np.ndarray:
        if values.dtype == dtype:
            return values
        if stochastic and dtype.itemsize == 2 and dtype != np.float16:
            assert steps is not None  # rounding='stochastic' without steps was refused above
            return round_bfloat16_stochastic(values, stochastic_key(seed, indices[i], steps[i], slot))
        return values.astype(dtype)

    wide_grads = [
        g if g.dtype == m.dtype and grad_scale == 1.0 else g.astype(m.dtype) * m.dtype.type(grad_scale)
        for g, m in zip(grads, masters)
    ]
    widened = {}
    for key, values in states.items():
        if isinstance(values, list) and all(v is None or isinstance(v, np.ndarray) for v in values):
            widened[key] = [None if v is None else v.astype(np.float32) if v.dtype.itemsize == 2 else v for v in values]
        else:
            widened[key] = values
    update(masters, wide_grads, widened)
    slot = 1
    for key, values in states.items():
        if widened[key] is values:
            continue
        slot += 1
        for i, (old, new) in enumerate(zip(values, widened[key])):
            if new is None:
                continue
            dtype = old.dtype if old is not None else (np.dtype(state_dtype) if state_dtype is not None else new.dtype)
            values[i] = to_dtype(new, dtype, i, slot)
    for i, (p, m) in enumerate(zip(params, masters)):
        if p is not m:
            p[...] = to_dtype(m, p.dtype, i, 0)


@_python_floats
def asgd_(
    params: Arrays,
    grads: Arrays,
    axs: Arrays,
    etas: list[float],
    mus: list[float],
    steps: Sequence[int],
    *,
    lr: float = 1e-2,
    lambd: float = 1e-4,
    alpha: float = 0.75,
    t0: float = 1e6,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> None:
    """torch's _single_tensor_asgd; eta and mu are float32 values, as torch keeps them (0-d float32 tensors)."""
    check_asgd(lr, lambd, alpha, t0, weight_decay, maximize)
    for i, (p, g, ax, t) in enumerate(zip(params, grads, axs, check_steps(steps))):
        g = -g if maximize else g
        if weight_decay != 0:
            g = g + _scalar(p, weight_decay) * p
        p[...] = p * _scalar(p, 1 - lambd * etas[i])
        p[...] = p + _scalar(p, -etas[i]) * g
        if mus[i] != 1:
            ax[...] = ax + (p - ax) * _scalar(p, mus[i])
        else:
            ax[...] = p
        try:
            power = (1 + lambd * lr * t) ** alpha
        except OverflowError:  # the kernel's pow gives inf (and eta 0); torch raises here
            power = math.inf
        with np.errstate(over="ignore"):  # beyond float32's range: inf, as the kernel
            etas[i] = float(np.float32(lr / power))
            mus[i] = float(np.float32(1 / max(1, t - t0)))


@_python_floats
def rprop_(
    params: Arrays,
    grads: Arrays,
    prevs: Arrays,
    step_sizes: Arrays,
    *,
    etaminus: float = 0.5,
    etaplus: float = 1.2,
    step_size_min: float = 1e-6,
    step_size_max: float = 50.0,
    maximize: bool = False,
) -> None:
    """torch's _single_tensor_rprop; its masked assignments of the sign as np.where, in the same order. Signs are
    torch's: +0 for a zero of either sign and for NaN (NumPy's sign is NaN there), so a NaN gradient leaves its
    element unchanged, as in torch."""
    check_rprop(1.0, (etaminus, etaplus), (step_size_min, step_size_max), maximize)
    for p, g, prev, size in zip(params, grads, prevs, step_sizes):
        g = -g if maximize else g
        s = g * prev
        f = np.where(s > 0, _scalar(p, etaplus), np.where(s < 0, _scalar(p, etaminus), _scalar(p, 1)))
        scaled = size * f
        low = np.where(scaled < _scalar(p, step_size_min), _scalar(p, step_size_min), scaled)
        size[...] = np.where(low > _scalar(p, step_size_max), _scalar(p, step_size_max), low)
        g = np.where(f == _scalar(p, etaminus), _scalar(p, 0), g)
        torch_sign = np.where(g > 0, _scalar(p, 1), np.where(g < 0, _scalar(p, -1), _scalar(p, 0)))
        p[...] = p - torch_sign * size
        prev[...] = g
