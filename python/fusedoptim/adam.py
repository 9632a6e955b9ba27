"""Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from . import functional as F
from ._validation import check_adam, check_betas
from .optimizer import Optimizer, ParamsT

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam (torch.optim.Adam), with AMSGrad and optional decoupled weight decay.

    .. math::
        g \leftarrow \pm g + \lambda p, \quad m \leftarrow \beta_1 m + (1-\beta_1) g, \quad
        v \leftarrow \beta_2 v + (1-\beta_2) g^2,

    .. math::
        p \leftarrow p - \frac{\eta}{1-\beta_1^t}\,\frac{m}{\sqrt{\hat v}/\sqrt{1-\beta_2^t} + \epsilon},
        \quad \hat v = \max(\hat v, v) \text{ (amsgrad) or } v

    ``decoupled_weight_decay=True`` replaces the L2 term by :math:`p \leftarrow p(1-\eta\lambda)` (AdamW).
    State: ``step``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (amsgrad).

    Example::

        opt = fusedoptim.Adam([w, b], lr=1e-3)
        for x, y in batches:
            gw, gb = grad(w, b, x, y)
            opt.step([gw, gb])
    """

    _required_state = ("exp_avg", "exp_avg_sq")
    _optional_state = ("max_exp_avg_sq",)

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        state_dtype: Any = None,
        rounding: Literal["nearest", "stochastic"] = "nearest",
        rounding_seed: int = 0,
        decoupled_weight_decay: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(
            params, {**defaults, "state_dtype": state_dtype, "rounding": rounding, "rounding_seed": rounding_seed}
        )

    def _check_group(self, group: dict[str, Any]) -> None:
        beta1, beta2 = check_betas(group["betas"])
        check_adam(
            group["lr"],
            beta1,
            beta2,
            group["eps"],
            group["weight_decay"],
            group["amsgrad"],
            group["maximize"],
            group["decoupled_weight_decay"],
        )

    def _prepare_group(self, group, indices, params, grads, grad_scale):
        buffers = {"exp_avg": np.zeros_like, "exp_avg_sq": np.zeros_like}
        if group["amsgrad"]:
            buffers["max_exp_avg_sq"] = np.zeros_like
        states, commit = self._gather_state(group, params, buffers)
        kparams, precision = self._kernel_inputs(group, params, states, grad_scale)
        beta1, beta2 = group["betas"]
        step = F._adam_prepare(
            kparams,
            grads,
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [s["max_exp_avg_sq"] for s in states] if group["amsgrad"] else None,
            [s["step"] + 1 for s in states],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            amsgrad=group["amsgrad"],
            maximize=group["maximize"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
            labels=indices,
            checked=True,
            precision=precision,
        )
        return step, commit


class AdamW(Adam):
    r"""AdamW (torch.optim.AdamW): :class:`Adam` with decoupled weight decay
    :math:`p \leftarrow p(1 - \eta\lambda)`, ``weight_decay`` 1e-2 by default."""

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        state_dtype: Any = None,
        rounding: Literal["nearest", "stochastic"] = "nearest",
        rounding_seed: int = 0,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
            state_dtype=state_dtype,
            rounding=rounding,
            rounding_seed=rounding_seed,
        )
