"""Adagrad (Duchi, Hazan & Singer 2011)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from . import functional as F
from ._validation import check_adagrad, check_nonnegative
from .optimizer import Optimizer, ParamsT

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad (torch.optim.Adagrad).

    .. math::
        g \leftarrow \pm g + \lambda p, \quad \tilde\eta = \frac{\eta}{1 + (t-1)\,\text{lr\_decay}}, \quad
        s \leftarrow s + g^2, \quad p \leftarrow p - \tilde\eta \frac{g}{\sqrt{s} + \epsilon}

    ``s`` starts at ``initial_accumulator_value``. State: ``step``, ``sum``.
    """

    _required_state = ("sum",)

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
        state_dtype: Any = None,
        rounding: Literal["nearest", "stochastic"] = "nearest",
        rounding_seed: int = 0,
    ) -> None:
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            maximize=maximize,
        )
        super().__init__(
            params, {**defaults, "state_dtype": state_dtype, "rounding": rounding, "rounding_seed": rounding_seed}
        )

    def _add_param_group(self, param_group: dict[str, Any]) -> None:
        super()._add_param_group(param_group)
        # As torch does, the state exists from the start: step 0 and the accumulator at its initial value.
        group = self.param_groups[-1]
        for p in group["params"]:
            state = self.state._setdefault(p)
            state.setdefault("step", 0)
            state.setdefault("sum", self._new_state_array(group, p, group["initial_accumulator_value"]))

    def _check_group(self, group: dict[str, Any]) -> None:
        check_adagrad(group["lr"], group["lr_decay"], group["weight_decay"], group["eps"], group["maximize"])
        check_nonnegative(
            "initial_accumulator_value value", "initial_accumulator_value", group["initial_accumulator_value"]
        )

    def _prepare_group(self, group, indices, params, grads, grad_scale):
        initial = group["initial_accumulator_value"]
        states, commit = self._gather_state(group, params, {"sum": lambda p: np.full_like(p, initial)})
        kparams, precision = self._kernel_inputs(group, params, states, grad_scale)
        step = F._adagrad_prepare(
            kparams,
            grads,
            [s["sum"] for s in states],
            [s["step"] + 1 for s in states],
            lr=group["lr"],
            lr_decay=group["lr_decay"],
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=group["maximize"],
            labels=indices,
            checked=True,
            precision=precision,
        )
        return step, commit
