"""Adamax (Kingma & Ba 2015, section 7.1): Adam with the infinity norm."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from . import functional as F
from ._validation import check_adamax, check_betas
from .optimizer import Optimizer, ParamsT

__all__ = ["Adamax"]


class Adamax(Optimizer):
    r"""Adamax (torch.optim.Adamax).

    .. math::
        g \leftarrow \pm g + \lambda p, \quad m \leftarrow \operatorname{lerp}(m, g, 1-\beta_1), \quad
        u \leftarrow \max(\beta_2 u, |g| + \epsilon), \quad p \leftarrow p - \frac{\eta}{1-\beta_1^t}\frac{m}{u}

    State: ``step``, ``exp_avg``, ``exp_inf``.
    """

    _required_state = ("exp_avg", "exp_inf")

    def __init__(
        self,
        params: ParamsT,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
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
                eps=eps,
                weight_decay=weight_decay,
                maximize=maximize,
            ),
        )

    def _check_group(self, group: dict[str, Any]) -> None:
        beta1, beta2 = check_betas(group["betas"])
        check_adamax(group["lr"], beta1, beta2, group["eps"], group["weight_decay"], group["maximize"])

    def _prepare_group(self, group, indices, params, grads, grad_scale):
        states, commit = self._gather_state(group, params, {"exp_avg": np.zeros_like, "exp_inf": np.zeros_like})
        kparams, precision = self._kernel_inputs(group, params, states, grad_scale)
        beta1, beta2 = group["betas"]
        step = F._adamax_prepare(
            kparams,
            grads,
            [s["exp_avg"] for s in states],
            [s["exp_inf"] for s in states],
            [s["step"] + 1 for s in states],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            maximize=group["maximize"],
            labels=indices,
            checked=True,
            precision=precision,
        )
        return step, commit
