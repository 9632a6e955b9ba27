"""ASGD, averaged stochastic gradient descent (Polyak & Juditsky 1992, "Acceleration of Stochastic
Approximation by Averaging")."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from . import functional as F
from ._validation import check_asgd
from .optimizer import Optimizer, ParamsT

__all__ = ["ASGD"]


class ASGD(Optimizer):
    r"""ASGD (torch.optim.ASGD): SGD with a decaying step :math:`\eta_t` and a running average of the iterates.

    .. math::
        g \leftarrow \pm g + \lambda_{wd} p, \quad
        p \leftarrow p (1 - \lambda \eta) - \eta g, \quad
        a \leftarrow a + \mu (p - a) \ (a \leftarrow p \text{ while } \mu = 1)

    then :math:`\eta \leftarrow \text{lr} / (1 + \lambda\, \text{lr}\, t)^\alpha` and
    :math:`\mu \leftarrow 1 / \max(1, t - t_0)` for the next step (:math:`t` the step count). The average
    ``ax`` (state) is what ASGD converges in: copy it into the parameters to evaluate. State: ``step``, ``eta``
    and ``mu`` (Python floats holding float32 values: torch keeps them as float32 0-d tensors, and so steps
    equal torch's bit for bit) and ``ax``.

    Example::

        opt = fusedoptim.ASGD(params, lr=1e-2, t0=1000)   # average from step 1000 on
    """

    _required_state = ("ax",)
    _scalar_state = ("eta", "mu")

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
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
                lambd=lambd,
                alpha=alpha,
                t0=t0,
                weight_decay=weight_decay,
                maximize=maximize,
            ),
        )

    def _check_group(self, group: dict[str, Any]) -> None:
        check_asgd(group["lr"], group["lambd"], group["alpha"], group["t0"], group["weight_decay"], group["maximize"])

    def _check_scalar_state(self, where: str, key: str, value: float) -> float:
        # eta is a step size (>= 0), mu an averaging weight 1 / max(1, t - t0) in (0, 1].
        if key == "eta" and not (value >= 0.0 and math.isfinite(value)):
            raise ValueError(f"{where} must be a finite step size >= 0, got {value!r}")
        if key == "mu" and not 0.0 < value <= 1.0:
            raise ValueError(f"{where} must be in (0, 1] (an averaging weight), got {value!r}")
        return value

    def _prepare_group(self, group, indices, params, grads, grad_scale):
        states, writes = self._gather_state(group, params, {"ax": np.zeros_like})
        kparams, precision = self._kernel_inputs(group, params, states, grad_scale)
        # Before its first step a parameter has torch's initial scalars: eta = the group's lr (as float32), mu = 1.
        with np.errstate(over="ignore"):  # an lr beyond float32's range is inf there
            lr32 = float(np.float32(group["lr"]))
        etas = [float(s.get("eta", lr32)) for s in states]
        mus = [float(s.get("mu", 1.0)) for s in states]
        step, next_etas, next_mus = F._asgd_prepare(
            kparams,
            grads,
            [s["ax"] for s in states],
            etas,
            mus,
            [s["step"] + 1 for s in states],
            lr=group["lr"],
            lambd=group["lambd"],
            alpha=group["alpha"],
            t0=group["t0"],
            weight_decay=group["weight_decay"],
            maximize=group["maximize"],
            labels=indices,
            checked=True,
            precision=precision,
        )
        for p, eta, mu in zip(params, next_etas, next_mus):
            writes.set(p, "eta", eta)
            writes.set(p, "mu", mu)
        return step, writes
