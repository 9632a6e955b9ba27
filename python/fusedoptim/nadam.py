"""NAdam (Dozat 2016): Adam with Nesterov momentum."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from . import functional as F
from ._validation import check_betas, check_nadam
from .optimizer import Optimizer, ParamsT

__all__ = ["NAdam"]


class NAdam(Optimizer):
    r"""NAdam (torch.optim.NAdam), with torch's momentum schedule
    :math:`\mu_t = \beta_1 (1 - \tfrac12 0.96^{t\psi})`, :math:`\Pi_t = \mu_1\cdots\mu_t`.

    .. math::
        p \leftarrow p - \eta \frac{1-\mu_t}{1-\Pi_t} \frac{g}{d}
          - \eta \frac{\mu_{t+1}}{1-\Pi_t\mu_{t+1}} \frac{m}{d}, \quad d = \sqrt{v/(1-\beta_2^t)} + \epsilon

    with Adam's moments. ``decoupled_weight_decay=True`` gives NAdamW. State: ``step``, ``mu_product`` (a
    float, kept in double; torch keeps it in its default dtype, float32), ``exp_avg``, ``exp_avg_sq``.
    """

    _required_state = ("exp_avg", "exp_avg_sq")
    _scalar_state = ("mu_product",)

    def __init__(
        self,
        params: ParamsT,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
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
                momentum_decay=momentum_decay,
                decoupled_weight_decay=decoupled_weight_decay,
                maximize=maximize,
            ),
        )

    def _check_group(self, group: dict[str, Any]) -> None:
        beta1, beta2 = check_betas(group["betas"])
        check_nadam(
            group["lr"],
            beta1,
            beta2,
            group["eps"],
            group["weight_decay"],
            group["momentum_decay"],
            group["decoupled_weight_decay"],
            group["maximize"],
        )

    def _check_scalar_state(self, where: str, key: str, value: float) -> float:
        # A product of momentum coefficients mu_t in [0, beta1) (1 before the first step): one outside [0, 1]
        # flips the sign of the bias correction and moves the parameters uphill.
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{where} must be in [0, 1] (a product of momentum coefficients), got {value!r}")
        return value

    def _prepare_group(self, group, indices, params, grads, grad_scale):
        states, writes = self._gather_state(group, params, {"exp_avg": np.zeros_like, "exp_avg_sq": np.zeros_like})
        kparams, precision = self._kernel_inputs(group, params, states, grad_scale)
        beta1, beta2 = group["betas"]
        step, products = F._nadam_prepare(
            kparams,
            grads,
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [float(s.get("mu_product", 1.0)) for s in states],
            [s["step"] + 1 for s in states],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            momentum_decay=group["momentum_decay"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
            maximize=group["maximize"],
            labels=indices,
            checked=True,
            precision=precision,
        )

        for p, product in zip(params, products):
            writes.set(p, "mu_product", product)
        return step, writes
