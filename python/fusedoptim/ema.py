"""Weight averaging: a fused, in-place exponential moving average of parameters."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import _core
from ._validation import check_beta

__all__ = ["ema_", "EMA"]


def ema_(averages: Sequence[np.ndarray], params: Sequence[np.ndarray], decay: float) -> None:
    r""":math:`\bar p \leftarrow \delta \bar p + (1-\delta) p` in place, computed as torch's EMA does,
    ``lerp(average, param, 1 - decay)``, in one fused pass over all arrays."""
    decay = check_beta("decay", "decay", decay, closed=True)
    _core.ema_(averages, params, 1.0 - decay)


class EMA:
    """Keeps an exponential moving average of ``params`` (copies, same dtypes and shapes).

    Example::

        ema = fusedoptim.EMA([w, b], decay=0.999)
        for batch in batches:
            opt.step(grads(w, b, batch))
            ema.update()
        ema.copy_to([w, b])  # evaluate with the averaged weights
    """

    def __init__(self, params: Sequence[np.ndarray], decay: float = 0.999) -> None:
        self.decay = check_beta("decay", "decay", decay, closed=True)
        self.params = list(params)
        self.averages = [np.array(p, copy=True, order="C") for p in self.params]
        self.num_updates = 0

    def update(self) -> None:
        """Moves the averages towards the current parameters."""
        ema_(self.averages, self.params, self.decay)
        self.num_updates += 1

    def copy_to(self, params: Sequence[np.ndarray]) -> None:
        """Writes the averages into ``params`` (in place)."""
        for p, a in zip(params, self.averages, strict=True):
            np.copyto(p, a)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "num_updates": self.num_updates, "averages": [a.copy() for a in self.averages]}

    def load_state_dict(self, state_dict: dict) -> None:
        averages = state_dict["averages"]
        if len(averages) != len(self.averages) or any(a.shape != b.shape for a, b in zip(averages, self.averages)):
            raise ValueError("EMA state_dict does not match the averaged parameters (count or shapes differ)")
        decay = check_beta("decay", "decay", state_dict["decay"], closed=True)
        for a, saved in zip(self.averages, averages):
            np.copyto(a, saved)
        self.decay, self.num_updates = decay, int(state_dict["num_updates"])
