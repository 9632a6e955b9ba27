"""RMSprop (Hinton, Lecture 6e of "Neural Networks for Machine Learning")."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from . import functional as F
from ._validation import check_rmsprop
from .optimizer import Optimizer, ParamsT

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop (torch.optim.RMSprop).

    .. math::
        g \leftarrow \pm g + \lambda p, \quad v \leftarrow \alpha v + (1-\alpha) g^2, \quad
        d = \sqrt{v - \bar g^2} + \epsilon \ \ (\bar g = 0 \text{ unless centered})

    then :math:`b \leftarrow \mu b + g/d,\ p \leftarrow p - \eta b` with momentum, else
    :math:`p \leftarrow p - \eta g/d`. ``eps_in_sqrt=True`` puts eps inside the root,
    :math:`d = \sqrt{v - \bar g^2 + \epsilon}` (optax and Keras; with ``alpha=beta`` it is the seed's
    adaptive-learning-rate rule)::

        opt = fusedoptim.RMSprop(params, lr=0.01, alpha=0.9, eps=1e-8, eps_in_sqrt=True)

    State: ``step``, ``square_avg``, ``grad_avg`` (centered), ``momentum_buffer`` (momentum != 0).
    """

    _required_state = ("square_avg",)
    _optional_state = ("grad_avg", "momentum_buffer")

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        *,
        maximize: bool = False,
        state_dtype: Any = None,
        rounding: Literal["nearest", "stochastic"] = "nearest",
        rounding_seed: int = 0,
        eps_in_sqrt: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
            eps_in_sqrt=eps_in_sqrt,
        )
        super().__init__(
            params, {**defaults, "state_dtype": state_dtype, "rounding": rounding, "rounding_seed": rounding_seed}
        )

    def _check_group(self, group: dict[str, Any]) -> None:
        check_rmsprop(
            group["lr"],
            group["alpha"],
            group["eps"],
            group["weight_decay"],
            group["momentum"],
            group["centered"],
            group["maximize"],
            group["eps_in_sqrt"],
        )

    def _prepare_group(self, group, indices, params, grads, grad_scale):
        buffers = {"square_avg": np.zeros_like}
        if group["centered"]:
            buffers["grad_avg"] = np.zeros_like
        if group["momentum"] != 0:
            buffers["momentum_buffer"] = np.zeros_like
        states, commit = self._gather_state(group, params, buffers)
        kparams, precision = self._kernel_inputs(group, params, states, grad_scale)
        step = F._rmsprop_prepare(
            kparams,
            grads,
            [s["square_avg"] for s in states],
            [s["grad_avg"] for s in states] if group["centered"] else None,
            [s["momentum_buffer"] for s in states] if group["momentum"] != 0 else None,
            lr=group["lr"],
            alpha=group["alpha"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            momentum=group["momentum"],
            centered=group["centered"],
            maximize=group["maximize"],
            eps_in_sqrt=group["eps_in_sqrt"],
            labels=indices,
            checked=True,
            precision=precision,
        )
        return step, commit
