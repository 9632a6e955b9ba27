"""Rprop, resilient backpropagation (Riedmiller & Braun 1993)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from . import functional as F
from ._validation import check_rprop
from .optimizer import Optimizer, ParamsT

__all__ = ["Rprop"]


class Rprop(Optimizer):
    r"""Rprop (torch.optim.Rprop): a step size per element, grown by ``etaplus`` while the gradient keeps its
    sign and shrunk by ``etaminus`` when it flips; the update uses only the gradient's sign.

    .. math::
        f = \begin{cases} \eta_+ & g\,g_{prev} > 0 \\ \eta_- & g\,g_{prev} < 0 \\ 1 & \text{else}\end{cases},
        \quad s \leftarrow \operatorname{clip}(s f, s_{min}, s_{max}), \quad
        g \leftarrow 0 \text{ where } f = \eta_-, \quad p \leftarrow p - \operatorname{sign}(g)\, s, \quad
        g_{prev} \leftarrow g

    As in torch, ``lr`` is only each step size's initial value (changing it later changes nothing), a NaN
    gradient leaves its element unchanged (torch's sign of NaN is 0; use ``skip_if_nonfinite=True`` to skip such
    steps), and it is a full-batch method: with mini-batches the signs flip from noise. State: ``step``,
    ``prev``, ``step_size``.

    Example::

        opt = fusedoptim.Rprop(params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50))
    """

    _required_state = ("prev", "step_size")

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
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
                etas=etas,
                step_sizes=step_sizes,
                maximize=maximize,
            ),
        )

    def _check_group(self, group: dict[str, Any]) -> None:
        check_rprop(group["lr"], group["etas"], group["step_sizes"], group["maximize"])

    def _prepare_group(self, group, indices, params, grads, grad_scale):
        lr = group["lr"]
        states, writes = self._gather_state(
            group, params, {"prev": np.zeros_like, "step_size": lambda p: np.full_like(p, lr)}
        )
        kparams, precision = self._kernel_inputs(group, params, states, grad_scale)
        (etaminus, etaplus), (step_size_min, step_size_max) = group["etas"], group["step_sizes"]
        step = F._rprop_prepare(
            kparams,
            grads,
            [s["prev"] for s in states],
            [s["step_size"] for s in states],
            etaminus=etaminus,
            etaplus=etaplus,
            step_size_min=step_size_min,
            step_size_max=step_size_max,
            maximize=group["maximize"],
            labels=indices,
            checked=True,
            precision=precision,
        )
        return step, writes
