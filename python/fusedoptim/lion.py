"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms")."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from . import functional as F
from ._validation import check_betas, check_lion
from .optimizer import Optimizer, ParamsT

__all__ = ["Lion"]


class Lion(Optimizer):
    r"""Lion, as optax.lion defines it (torch has no Lion).

    .. math::
        u = \operatorname{sign}((1-\beta_1) g + \beta_1 m), \quad m \leftarrow (1-\beta_2) g + \beta_2 m, \quad
        p \leftarrow p - \eta (u + \lambda p)

    Every coordinate moves by exactly ``lr`` (plus decay), so Lion wants a learning rate 3-10x smaller than
    AdamW's and a weight decay 3-10x larger, keeping ``lr * weight_decay`` (the paper's advice).

    Example::

        opt = fusedoptim.Lion(params, lr=1e-4, betas=(0.9, 0.99), weight_decay=1e-2)
    """

    _required_state = ("exp_avg",)

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
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
                betas=betas,
                weight_decay=weight_decay,
                maximize=maximize,
            ),
        )

    def _check_group(self, group: dict[str, Any]) -> None:
        beta1, beta2 = check_betas(group["betas"])
        check_lion(group["lr"], beta1, beta2, group["weight_decay"], group["maximize"])

    def _prepare_group(self, group, indices, params, grads, grad_scale):
        states, commit = self._gather_state(group, params, {"exp_avg": np.zeros_like})
        kparams, precision = self._kernel_inputs(group, params, states, grad_scale)
        beta1, beta2 = group["betas"]
        step = F._lion_prepare(
            kparams,
            grads,
            [s["exp_avg"] for s in states],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            weight_decay=group["weight_decay"],
            maximize=group["maximize"],
            labels=indices,
            checked=True,
            precision=precision,
        )
        return step, commit
