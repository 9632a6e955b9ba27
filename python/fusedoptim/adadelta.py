"""Adadelta (Zeiler 2012)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from . import functional as F
from ._validation import check_adadelta
from .optimizer import Optimizer, ParamsT

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    r"""Adadelta (torch.optim.Adadelta).

    .. math::
        g \leftarrow \pm g + \lambda p, \quad v \leftarrow \rho v + (1-\rho) g^2, \quad
        \delta = \frac{\sqrt{a + \epsilon}}{\sqrt{v + \epsilon}} g, \quad
        a \leftarrow \rho a + (1-\rho) \delta^2, \quad p \leftarrow p - \eta \delta

    State: ``step``, ``square_avg``, ``acc_delta``.
    """

    _required_state = ("square_avg", "acc_delta")

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        *,
        maximize: bool = False,
        state_dtype: Any = None,
        rounding: Literal["nearest", "stochastic"] = "nearest",
        rounding_seed: int = 0,
    ) -> None:
        super().__init__(
            params,
            dict(
                state_dtype=state_dtype,
                rounding=rounding,
                rounding_seed=rounding_seed,
                lr=lr,
                rho=rho,
                eps=eps,
                weight_decay=weight_decay,
                maximize=maximize,
            ),
        )

    def _check_group(self, group: dict[str, Any]) -> None:
        check_adadelta(group["lr"], group["rho"], group["eps"], group["weight_decay"], group["maximize"])

    def _prepare_group(self, group, indices, params, grads, grad_scale):
        states, commit = self._gather_state(group, params, {"square_avg": np.zeros_like, "acc_delta": np.zeros_like})
        kparams, precision = self._kernel_inputs(group, params, states, grad_scale)
        step = F._adadelta_prepare(
            kparams,
            grads,
            [s["square_avg"] for s in states],
            [s["acc_delta"] for s in states],
            lr=group["lr"],
            rho=group["rho"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            maximize=group["maximize"],
            labels=indices,
            checked=True,
            precision=precision,
        )
        return step, commit
