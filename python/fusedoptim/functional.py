"""The in-place functional API: one fused C++ pass over lists of arrays.

Each function updates ``params`` and the state lists in place, in one call to the C++ kernel per dtype, and
returns nothing. Everything is checked before any array is written: on error nothing has changed. The formulas
are in each function's docstring and, executable, in :mod:`fusedoptim.reference`, which has the same signatures.

``steps`` are the step numbers of *this* update, counting from 1 (the optimizer classes keep the counters);
unlike torch's functional API, they are not incremented here.

The private ``_core`` calls below pass arguments by position: pybind11 matches keywords by a linear search of
names on every call, which costs more than a small step's arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from . import _core
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
    "nadam_",
    "radam_",
    "rmsprop_",
    "rprop_",
    "sgd_",
]

Arrays = Sequence[np.ndarray]
OptionalArrays = Arrays | None  # None when the options do not need them (the docstrings say which)
# SGD's momentum buffers: a list whose None entries (buffers not created yet) are created and stored back.
MomentumBuffers = list[np.ndarray | None] | None


# --- SGD ---------------------------------------------------------------------------------------------------


def _sgd_prepare(
    params,
    grads,
    momentum_buffers,
    *,
    lr,
    momentum,
    dampening,
    weight_decay,
    nesterov,
    maximize,
    labels=None,
    checked=False,
    precision=None,
    state_dtype=None,
):
    if not checked:  # an optimizer checks its groups itself, once per change
        check_sgd(lr, momentum, dampening, weight_decay, nesterov, maximize)
    if not isinstance(params, (list, tuple)):
        raise TypeError(f"params must be a list or tuple of numpy arrays, got {type(params).__name__}")
    first_steps: list[bool] = []
    if momentum != 0:
        if momentum_buffers is None or not isinstance(momentum_buffers, list):
            raise TypeError(
                "momentum_buffers must be a list (with None for buffers not created yet) when momentum != 0"
            )
        if len(momentum_buffers) != len(params):
            raise ValueError(
                f"Expected {len(params)} momentum_buffers (one per parameter), got {len(momentum_buffers)}"
            )
        first_steps = [b is None for b in momentum_buffers]
        buffers = [
            np.zeros(p.shape, state_dtype or p.dtype) if b is None else b for p, b in zip(params, momentum_buffers)
        ]
    else:
        buffers = None
    step = _core.sgd_prepare(
        params,
        grads,
        buffers,
        first_steps,
        _core.SGDHyper(lr, momentum, dampening, weight_decay, nesterov, maximize),
        labels,
        precision,
    )
    return step, buffers


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
    r"""SGD (torch.optim.SGD), in place.

    .. math::
        g \leftarrow \pm g + \lambda p, \quad
        b \leftarrow \mu b + (1 - \tau) g \ (b_1 = g), \quad
        g \leftarrow g + \mu b \ \text{(Nesterov) or } b, \quad
        p \leftarrow p - \eta g

    ``momentum_buffers`` (needed when ``momentum != 0``) is a list whose ``None`` entries are buffers not
    created yet: they are created here, set to the gradient as torch does, and stored back into the list.
    Pass zeroed buffers instead to start from zero (with ``dampening=momentum`` this is the EMA form
    :math:`v \leftarrow \beta v + (1-\beta) g`).
    """
    step, buffers = _sgd_prepare(
        params,
        grads,
        momentum_buffers,
        lr=lr,
        momentum=momentum,
        dampening=dampening,
        weight_decay=weight_decay,
        nesterov=nesterov,
        maximize=maximize,
    )
    step.run()
    if buffers is not None and momentum_buffers is not None:
        momentum_buffers[:] = buffers


# --- Adagrad -----------------------------------------------------------------------------------------------


def _adagrad_prepare(
    params,
    grads,
    state_sums,
    steps,
    *,
    lr,
    lr_decay,
    weight_decay,
    eps,
    maximize,
    labels=None,
    checked=False,
    precision=None,
):
    if not checked:  # an optimizer checks its groups itself, once per change
        check_adagrad(lr, lr_decay, weight_decay, eps, maximize)
    return _core.adagrad_prepare(
        params,
        grads,
        state_sums,
        check_steps(steps),
        _core.AdagradHyper(lr, lr_decay, weight_decay, eps, maximize),
        labels,
        precision,
    )


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
    r"""Adagrad (torch.optim.Adagrad), in place.

    .. math::
        g \leftarrow \pm g + \lambda p, \quad \tilde\eta = \frac{\eta}{1 + (t-1)\,\text{lr\_decay}}, \quad
        s \leftarrow s + g^2, \quad p \leftarrow p - \tilde\eta \frac{g}{\sqrt{s} + \epsilon}
    """
    _adagrad_prepare(
        params,
        grads,
        state_sums,
        steps,
        lr=lr,
        lr_decay=lr_decay,
        weight_decay=weight_decay,
        eps=eps,
        maximize=maximize,
    ).run()


# --- RMSprop -----------------------------------------------------------------------------------------------


def _rmsprop_prepare(
    params,
    grads,
    square_avgs,
    grad_avgs,
    momentum_buffers,
    *,
    lr,
    alpha,
    eps,
    weight_decay,
    momentum,
    centered,
    maximize,
    eps_in_sqrt,
    labels=None,
    checked=False,
    precision=None,
):
    if not checked:  # an optimizer checks its groups itself, once per change
        check_rmsprop(lr, alpha, eps, weight_decay, momentum, centered, maximize, eps_in_sqrt)
    if centered and grad_avgs is None:
        raise TypeError("grad_avgs must be a list of arrays when centered=True")
    if momentum != 0 and momentum_buffers is None:
        raise TypeError("momentum_buffers must be a list of arrays when momentum != 0")
    return _core.rmsprop_prepare(
        params,
        grads,
        square_avgs,
        grad_avgs,
        momentum_buffers,
        _core.RMSpropHyper(lr, alpha, eps, weight_decay, momentum, centered, maximize, eps_in_sqrt),
        labels,
        precision,
    )


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
    r"""RMSprop (torch.optim.RMSprop), in place.

    .. math::
        g \leftarrow \pm g + \lambda p, \quad v \leftarrow \alpha v + (1-\alpha) g^2, \quad
        \bar g \leftarrow \operatorname{lerp}(\bar g, g, 1-\alpha) \text{ (centered)}, \quad
        d = \sqrt{v - \bar g^2} + \epsilon

    then :math:`b \leftarrow \mu b + g/d,\ p \leftarrow p - \eta b` with momentum, else
    :math:`p \leftarrow p - \eta g / d`. ``eps_in_sqrt=True`` uses :math:`d = \sqrt{v - \bar g^2 + \epsilon}`
    (optax, Keras, and the seed's adaptive rule). ``grad_avgs`` is needed when centered, ``momentum_buffers``
    when ``momentum != 0``; both start at zero.
    """
    _rmsprop_prepare(
        params,
        grads,
        square_avgs,
        grad_avgs,
        momentum_buffers,
        lr=lr,
        alpha=alpha,
        eps=eps,
        weight_decay=weight_decay,
        momentum=momentum,
        centered=centered,
        maximize=maximize,
        eps_in_sqrt=eps_in_sqrt,
    ).run()


# --- Adam and AdamW ----------------------------------------------------------------------------------------


def _adam_prepare(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    max_exp_avg_sqs,
    steps,
    *,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    amsgrad,
    maximize,
    decoupled_weight_decay,
    labels=None,
    checked=False,
    precision=None,
):
    if not checked:  # an optimizer checks its groups itself, once per change
        check_adam(lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay)
    if amsgrad and max_exp_avg_sqs is None:
        raise TypeError("max_exp_avg_sqs must be a list of arrays when amsgrad=True")
    return _core.adam_prepare(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        max_exp_avg_sqs,
        check_steps(steps),
        _core.AdamHyper(lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay),
        labels,
        precision,
    )


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
    r"""Adam (torch.optim.Adam; Kingma & Ba 2015), in place.

    .. math::
        g \leftarrow \pm g + \lambda p \text{ (or } p \leftarrow p(1 - \eta\lambda) \text{ when decoupled)}, \quad
        m \leftarrow \operatorname{lerp}(m, g, 1-\beta_1), \quad v \leftarrow \beta_2 v + (1-\beta_2) g^2,

    .. math::
        p \leftarrow p - \frac{\eta}{1-\beta_1^t}\,\frac{m}{\sqrt{\hat v}/\sqrt{1-\beta_2^t} + \epsilon},
        \quad \hat v = \max(v_{\max}, v) \text{ (amsgrad) or } v

    ``max_exp_avg_sqs`` is needed (and may be None otherwise) when ``amsgrad``.
    """
    _adam_prepare(
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
        decoupled_weight_decay=decoupled_weight_decay,
    ).run()


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
    r"""AdamW (torch.optim.AdamW; Loshchilov & Hutter 2019): :func:`adam_` with decoupled weight decay
    :math:`p \leftarrow p (1 - \eta\lambda)`, ``weight_decay`` 1e-2 by default."""
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


# --- Adadelta ----------------------------------------------------------------------------------------------


def _adadelta_prepare(
    params,
    grads,
    square_avgs,
    acc_deltas,
    *,
    lr,
    rho,
    eps,
    weight_decay,
    maximize,
    labels=None,
    checked=False,
    precision=None,
):
    if not checked:  # an optimizer checks its groups itself, once per change
        check_adadelta(lr, rho, eps, weight_decay, maximize)
    return _core.adadelta_prepare(
        params,
        grads,
        square_avgs,
        acc_deltas,
        _core.AdadeltaHyper(lr, rho, eps, weight_decay, maximize),
        labels,
        precision,
    )


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
    r"""Adadelta (torch.optim.Adadelta; Zeiler 2012), in place.

    .. math::
        g \leftarrow \pm g + \lambda p, \quad v \leftarrow \rho v + (1-\rho) g^2, \quad
        \delta = \frac{\sqrt{a + \epsilon}}{\sqrt{v + \epsilon}} g, \quad
        a \leftarrow \rho a + (1-\rho) \delta^2, \quad p \leftarrow p - \eta \delta
    """
    _adadelta_prepare(
        params, grads, square_avgs, acc_deltas, lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize
    ).run()


# --- Adamax ------------------------------------------------------------------------------------------------


def _adamax_prepare(
    params,
    grads,
    exp_avgs,
    exp_infs,
    steps,
    *,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    maximize,
    labels=None,
    checked=False,
    precision=None,
):
    if not checked:  # an optimizer checks its groups itself, once per change
        check_adamax(lr, beta1, beta2, eps, weight_decay, maximize)
    return _core.adamax_prepare(
        params,
        grads,
        exp_avgs,
        exp_infs,
        check_steps(steps),
        _core.AdamaxHyper(lr, beta1, beta2, eps, weight_decay, maximize),
        labels,
        precision,
    )


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
    r"""Adamax (torch.optim.Adamax; Kingma & Ba 2015, section 7.1), in place.

    .. math::
        m \leftarrow \operatorname{lerp}(m, g, 1-\beta_1), \quad u \leftarrow \max(\beta_2 u, |g| + \epsilon),
        \quad p \leftarrow p - \frac{\eta}{1-\beta_1^t} \frac{m}{u}
    """
    _adamax_prepare(
        params,
        grads,
        exp_avgs,
        exp_infs,
        steps,
        lr=lr,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        weight_decay=weight_decay,
        maximize=maximize,
    ).run()


# --- NAdam -------------------------------------------------------------------------------------------------


def _nadam_prepare(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    mu_products,
    steps,
    *,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    momentum_decay,
    decoupled_weight_decay,
    maximize,
    labels=None,
    checked=False,
    precision=None,
):
    """Returns the prepared step and the updated momentum products (to store once the step has run)."""
    if not checked:  # an optimizer checks its groups itself, once per change
        check_nadam(lr, beta1, beta2, eps, weight_decay, momentum_decay, decoupled_weight_decay, maximize)
    if not isinstance(mu_products, list):
        raise TypeError(f"mu_products must be a list of floats, got {type(mu_products).__name__}")
    for i, mu in enumerate(mu_products):  # a NaN or inf product would reach the parameters unnoticed
        if isinstance(mu, bool) or not isinstance(mu, (int, float, np.floating, np.integer)):
            raise TypeError(f"mu_products[{i}] must be a real number, got {mu!r}")
        if not math.isfinite(mu):
            raise ValueError(f"Invalid mu_products[{i}]: {mu}")
    return _core.nadam_prepare(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        mu_products,
        check_steps(steps),
        _core.NAdamHyper(lr, beta1, beta2, eps, weight_decay, momentum_decay, decoupled_weight_decay, maximize),
        labels,
        precision,
    )


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
    r"""NAdam (torch.optim.NAdam; Dozat 2016), in place, with torch's momentum schedule
    :math:`\mu_t = \beta_1 (1 - \tfrac12 0.96^{t\psi})` and :math:`\Pi_t = \mu_1 \cdots \mu_t`.

    .. math::
        m \leftarrow \operatorname{lerp}(m, g, 1-\beta_1), \quad v \leftarrow \beta_2 v + (1-\beta_2) g^2, \quad
        d = \sqrt{v / (1-\beta_2^t)} + \epsilon,

    .. math::
        p \leftarrow p - \eta \frac{1-\mu_t}{1-\Pi_t} \frac{g}{d}
          - \eta \frac{\mu_{t+1}}{1-\Pi_t \mu_{t+1}} \frac{m}{d}

    ``mu_products`` holds each parameter's :math:`\Pi_{t-1}` (1.0 before the first step) and is updated in place
    to :math:`\Pi_t`.
    """
    step, products = _nadam_prepare(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        mu_products,
        steps,
        lr=lr,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        weight_decay=weight_decay,
        momentum_decay=momentum_decay,
        decoupled_weight_decay=decoupled_weight_decay,
        maximize=maximize,
    )
    step.run()
    mu_products[:] = products


# --- RAdam -------------------------------------------------------------------------------------------------


def _radam_prepare(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    steps,
    *,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    decoupled_weight_decay,
    maximize,
    labels=None,
    checked=False,
    precision=None,
):
    if not checked:  # an optimizer checks its groups itself, once per change
        check_radam(lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay, maximize)
    return _core.radam_prepare(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        check_steps(steps),
        _core.RAdamHyper(lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay, maximize),
        labels,
        precision,
    )


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
    r"""RAdam (torch.optim.RAdam; Liu et al. 2020), in place.

    With :math:`\rho_\infty = 2/(1-\beta_2) - 1` and :math:`\rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)`:
    when :math:`\rho_t > 5`,
    :math:`p \leftarrow p - \eta \frac{m}{1-\beta_1^t} \frac{\sqrt{1-\beta_2^t}}{\sqrt v + \epsilon} r_t` with
    :math:`r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}}`, otherwise
    :math:`p \leftarrow p - \eta \frac{m}{1-\beta_1^t}` (moments as in Adam).
    """
    _radam_prepare(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        steps,
        lr=lr,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        weight_decay=weight_decay,
        decoupled_weight_decay=decoupled_weight_decay,
        maximize=maximize,
    ).run()


# --- Lion --------------------------------------------------------------------------------------------------


def _lion_prepare(
    params, grads, exp_avgs, *, lr, beta1, beta2, weight_decay, maximize, labels=None, checked=False, precision=None
):
    if not checked:  # an optimizer checks its groups itself, once per change
        check_lion(lr, beta1, beta2, weight_decay, maximize)
    return _core.lion_prepare(
        params, grads, exp_avgs, _core.LionHyper(lr, beta1, beta2, weight_decay, maximize), labels, precision
    )


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
    r"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"; optax.lion), in place.

    .. math::
        u = \operatorname{sign}((1-\beta_1) g + \beta_1 m), \quad m \leftarrow (1-\beta_2) g + \beta_2 m, \quad
        p \leftarrow p - \eta (u + \lambda p)
    """
    _lion_prepare(
        params, grads, exp_avgs, lr=lr, beta1=beta1, beta2=beta2, weight_decay=weight_decay, maximize=maximize
    ).run()


# --- LAMB --------------------------------------------------------------------------------------------------


def _lamb_prepare(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    steps,
    *,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    maximize,
    labels=None,
    checked=False,
    grad_scale=1.0,
):
    if not checked:  # an optimizer checks its groups itself, once per change
        check_lamb(lr, beta1, beta2, eps, weight_decay, maximize)
    return _core.lamb_prepare(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        check_steps(steps),
        _core.LAMBHyper(lr, beta1, beta2, eps, weight_decay, maximize),
        labels,
        grad_scale,
    )


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
    r"""LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning"; optax.lamb), in place.

    .. math::
        m \leftarrow (1-\beta_1) g + \beta_1 m, \quad v \leftarrow (1-\beta_2) g^2 + \beta_2 v, \quad
        u = \frac{m/(1-\beta_1^t)}{\sqrt{v/(1-\beta_2^t)} + \epsilon} + \lambda p, \quad
        p \leftarrow p - \eta\, \frac{\lVert p \rVert}{\lVert u \rVert}\, u

    per parameter array (the trust ratio is 1 when either norm is 0). The norms are computed in double, in a
    fixed order, so the result does not depend on the thread count.
    """
    _lamb_prepare(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        steps,
        lr=lr,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        weight_decay=weight_decay,
        maximize=maximize,
    ).run()


# --- ASGD --------------------------------------------------------------------------------------------------


def _asgd_prepare(
    params,
    grads,
    axs,
    etas,
    mus,
    steps,
    *,
    lr,
    lambd,
    alpha,
    t0,
    weight_decay,
    maximize,
    labels=None,
    checked=False,
    precision=None,
):
    if not checked:  # an optimizer checks its groups itself, once per change
        check_asgd(lr, lambd, alpha, t0, weight_decay, maximize)
    return _core.asgd_prepare(
        params,
        grads,
        axs,
        etas,
        mus,
        check_steps(steps),
        _core.ASGDHyper(lr, lambd, alpha, t0, weight_decay, maximize),
        labels,
        precision,
    )


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
    r"""ASGD (torch.optim.ASGD), in place.

    .. math::
        g \leftarrow \pm g + \lambda_{wd} p, \quad p \leftarrow p (1 - \lambda \eta) - \eta g, \quad
        a \leftarrow a + \mu (p - a) \ (a \leftarrow p \text{ while } \mu = 1)

    ``etas`` and ``mus`` (lists of floats: ``lr`` and 1 before a parameter's first step) are replaced in place
    by the values for the next step, :math:`\text{lr} / (1 + \lambda\,\text{lr}\,t)^\alpha` and
    :math:`1 / \max(1, t - t_0)`, rounded to float32 as torch keeps them.
    """
    step, next_etas, next_mus = _asgd_prepare(
        params,
        grads,
        axs,
        etas,
        mus,
        steps,
        lr=lr,
        lambd=lambd,
        alpha=alpha,
        t0=t0,
        weight_decay=weight_decay,
        maximize=maximize,
    )
    step.run()
    etas[:] = next_etas
    mus[:] = next_mus


# --- Rprop -------------------------------------------------------------------------------------------------


def _rprop_prepare(
    params,
    grads,
    prevs,
    step_sizes,
    *,
    etaminus,
    etaplus,
    step_size_min,
    step_size_max,
    maximize,
    labels=None,
    checked=False,
    precision=None,
):
    if not checked:  # an optimizer checks its groups itself, once per change
        check_rprop(1.0, (etaminus, etaplus), (step_size_min, step_size_max), maximize)
    return _core.rprop_prepare(
        params,
        grads,
        prevs,
        step_sizes,
        _core.RpropHyper(etaminus, etaplus, step_size_min, step_size_max, maximize),
        labels,
        precision,
    )


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
    r"""Rprop (torch.optim.Rprop), in place.

    .. math::
        f = \eta_+ \text{ if } g\,g_{prev} > 0,\ \eta_- \text{ if } < 0,\ 1 \text{ else}; \quad
        s \leftarrow \operatorname{clip}(s f, s_{min}, s_{max}); \quad g \leftarrow 0 \text{ where } f = \eta_-;
        \quad p \leftarrow p - \operatorname{sign}(g)\, s; \quad g_{prev} \leftarrow g

    ``prevs`` start at zero and ``step_sizes`` at the learning rate (torch's initial state).
    """
    _rprop_prepare(
        params,
        grads,
        prevs,
        step_sizes,
        etaminus=etaminus,
        etaplus=etaplus,
        step_size_min=step_size_min,
        step_size_max=step_size_max,
        maximize=maximize,
    ).run()
