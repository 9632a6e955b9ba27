"""LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning")."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import functional as F
from ._validation import check_betas, check_lamb
from .arena import ParamArena
from .optimizer import Optimizer, ParamsT

__all__ = ["LAMB"]


class LAMB(Optimizer):
    r"""LAMB, as optax.lamb defines it (torch has no LAMB): Adam's direction, layer-wise trust ratio.

    .. math::
        u = \frac{m/(1-\beta_1^t)}{\sqrt{v/(1-\beta_2^t)} + \epsilon} + \lambda p, \quad
        p \leftarrow p - \eta\, \frac{\lVert p \rVert}{\lVert u \rVert}\, u

    with :math:`m, v` Adam's moments (plain EMAs) and the norms taken per parameter array (ratio 1 when either
    is 0). The norms are computed in double in a fixed order: results do not depend on the thread count.
    State: ``step``, ``exp_avg``, ``exp_avg_sq``.
    """

    elementwise = False
    per_array_reductions = True  # the trust ratio ||p|| / ||u|| of each whole array
    mixed_precision = False  # its trust ratio needs a second pass over the update: float32/float64 only

    _required_state = ("exp_avg", "exp_avg_sq")

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize))

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if isinstance(param_group.get("params"), ParamArena):
            raise TypeError(
                "LAMB's trust ratio is per array, so it cannot step an arena as one array: pass arena.params"
            )
        super().add_param_group(param_group)

    def _check_group(self, group: dict[str, Any]) -> None:
        beta1, beta2 = check_betas(group["betas"])
        check_lamb(group["lr"], beta1, beta2, group["eps"], group["weight_decay"], group["maximize"])

    def _prepare_group(self, group, indices, params, grads, grad_scale):
        states, commit = self._gather_state(group, params, {"exp_avg": np.zeros_like, "exp_avg_sq": np.zeros_like})
        beta1, beta2 = group["betas"]
        step = F._lamb_prepare(
            params,
            grads,
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [s["step"] + 1 for s in states],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            maximize=group["maximize"],
            labels=indices,
            checked=True,
            grad_scale=grad_scale,
        )
        return step, commit
