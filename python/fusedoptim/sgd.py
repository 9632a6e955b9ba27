"""SGD: gradient descent, stochastic gradient descent, momentum and Nesterov momentum."""

from __future__ import annotations

from typing import Any, Literal

from . import _precision
from . import functional as F
from ._validation import check_sgd
from .optimizer import Optimizer, ParamsT

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum (torch.optim.SGD).

    .. math::
        g \leftarrow \pm g + \lambda p, \quad
        b \leftarrow \mu b + (1 - \tau) g, \quad
        g \leftarrow g + \mu b \text{ (Nesterov) or } b, \quad
        p \leftarrow p - \eta g

    As in torch the first momentum buffer is the gradient itself. ``momentum_init="zeros"`` starts it at zero
    instead; with ``dampening=momentum`` that is the EMA form :math:`v \leftarrow \beta v + (1-\beta) g,\
    p \leftarrow p - \eta v` (the seed's momentum rule)::

        opt = fusedoptim.SGD(params, lr=0.01, momentum=0.9, dampening=0.9, momentum_init="zeros")

    State: ``momentum_buffer`` (when momentum != 0).
    """

    _optional_state = ("momentum_buffer",)
    _counts_steps = False

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        state_dtype: Any = None,
        rounding: Literal["nearest", "stochastic"] = "nearest",
        rounding_seed: int = 0,
        momentum_init: Literal["grad", "zeros"] = "grad",
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
            momentum_init=momentum_init,
        )
        super().__init__(
            params, {**defaults, "state_dtype": state_dtype, "rounding": rounding, "rounding_seed": rounding_seed}
        )

    def _check_group(self, group: dict[str, Any]) -> None:
        check_sgd(
            group["lr"],
            group["momentum"],
            group["dampening"],
            group["weight_decay"],
            group["nesterov"],
            group["maximize"],
        )
        if group["momentum_init"] not in ("grad", "zeros"):
            raise ValueError(f"Invalid momentum_init: {group['momentum_init']!r} (expected 'grad' or 'zeros')")

    def _prepare_group(self, group, indices, params, grads, grad_scale):
        states, writes = self._gather_state(group, params, {})
        kparams, precision = self._kernel_inputs(group, params, states, grad_scale)
        buffers = None
        if group["momentum"] != 0:
            buffers = [(self.state._get(p) or {}).get("momentum_buffer") for p in params]
            if group["momentum_init"] == "zeros":
                buffers = [self._new_state_array(group, p, 0.0) if b is None else b for p, b in zip(params, buffers)]
        step, buffers = F._sgd_prepare(
            kparams,
            grads,
            buffers,
            lr=group["lr"],
            momentum=group["momentum"],
            dampening=group["dampening"],
            weight_decay=group["weight_decay"],
            nesterov=group["nesterov"],
            maximize=group["maximize"],
            labels=indices,
            checked=True,
            precision=precision,
            state_dtype=_precision.state_dtype(group.get("state_dtype")),
        )

        if buffers is not None:
            for p, b in zip(params, buffers):
                writes.set(p, "momentum_buffer", b)
        return step, writes
