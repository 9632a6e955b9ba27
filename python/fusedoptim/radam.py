"""RAdam (Liu et al. 2020): Adam with a rectified adaptive learning rate."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from . import functional as F
from ._validation import check_betas, check_radam
from .optimizer import Optimizer, ParamsT

__all__ = ["RAdam"]


class RAdam(Optimizer):
    r"""RAdam (torch.optim.RAdam).

    With :math:`\rho_\infty = 2/(1-\beta_2) - 1` and :math:`\rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)`:
    when :math:`\rho_t > 5`,
    :math:`p \leftarrow p - \eta \frac{m}{1-\beta_1^t} \frac{\sqrt{1-\beta_2^t}}{\sqrt v + \epsilon} r_t`
    (:math:`r_t` the variance rectification), otherwise :math:`p \leftarrow p - \eta \frac{m}{1-\beta_1^t}`;
    moments as in Adam. ``decoupled_weight_decay=True`` gives RAdamW. State: ``step``, ``exp_avg``,
    ``exp_avg_sq``.
    """

    _required_state = ("exp_avg", "exp_avg_sq")

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
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
                decoupled_weight_decay=decoupled_weight_decay,
                maximize=maximize,
            ),
        )

    def _check_group(self, group: dict[str, Any]) -> None:
        beta1, beta2 = check_betas(group["betas"])
        check_radam(
            group["lr"],
            beta1,
            beta2,
            group["eps"],
            group["weight_decay"],
            group["decoupled_weight_decay"],
            group["maximize"],
        )

    def _prepare_group(self, group, indices, params, grads, grad_scale):
        states, commit = self._gather_state(group, params, {"exp_avg": np.zeros_like, "exp_avg_sq": np.zeros_like})
        kparams, precision = self._kernel_inputs(group, params, states, grad_scale)
        beta1, beta2 = group["betas"]
        step = F._radam_prepare(
            kparams,
            grads,
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [s["step"] + 1 for s in states],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
            maximize=group["maximize"],
            labels=indices,
            checked=True,
            precision=precision,
        )
        return step, commit
