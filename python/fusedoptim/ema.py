"""Weight averaging: a fused, in-place exponential moving average of parameters."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import _core
from ._validation import check_beta

__all__ = ["EMA", "ema_"]


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
        for i, p in enumerate(self.params):  # what update() takes, checked now rather than at the first update
            if not isinstance(p, np.ndarray) or isinstance(p, np.ma.MaskedArray):
                raise TypeError(f"params[{i}] must be a numpy.ndarray, got {type(p).__name__}")
            if p.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
                raise TypeError(
                    f"params[{i}] has dtype {p.dtype}; EMA averages float32 and float64 arrays (of "
                    "16-bit parameters, average the optimizer's float32 masters)"
                )
            if not p.flags.c_contiguous:
                raise ValueError(f"params[{i}] is not C-contiguous (strides {p.strides})")
        self.averages = [np.array(p, copy=True, order="C") for p in self.params]
        self.num_updates = 0

    def update(self) -> None:
        """Moves the averages towards the current parameters."""
        ema_(self.averages, self.params, self.decay)
        self.num_updates += 1

    def copy_to(self, params: Sequence[np.ndarray]) -> None:
        """Writes the averages into ``params`` (in place); checks every target first, so an error writes nothing."""
        params = list(params)
        if len(params) != len(self.averages):
            raise ValueError(f"Expected {len(self.averages)} params (one per average), got {len(params)}")
        for i, (p, a) in enumerate(zip(params, self.averages)):
            if not isinstance(p, np.ndarray) or p.shape != a.shape or not p.flags.writeable:
                raise ValueError(f"params[{i}] must be a writeable numpy.ndarray of shape {a.shape}")
            if not np.can_cast(a.dtype, p.dtype, casting="same_kind"):
                raise TypeError(f"params[{i}] has dtype {p.dtype}; the average is {a.dtype}")
        for p, a in zip(params, self.averages):
            np.copyto(p, a)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "num_updates": self.num_updates, "averages": [a.copy() for a in self.averages]}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restores :meth:`state_dict`: everything is checked first, so an error changes nothing."""
        averages = state_dict["averages"]
        if len(averages) != len(self.averages) or any(np.shape(a) != b.shape for a, b in zip(averages, self.averages)):
            raise ValueError("EMA state_dict does not match the averaged parameters (count or shapes differ)")
        decay = check_beta("decay", "decay", state_dict["decay"], closed=True)
        num_updates = state_dict["num_updates"]
        if isinstance(num_updates, bool) or not isinstance(num_updates, (int, np.integer)) or num_updates < 0:
            raise ValueError(f"Invalid num_updates: {num_updates!r} (a non-negative int)")
        for i, (a, saved) in enumerate(zip(self.averages, averages)):
            saved = np.asarray(saved)
            if not np.can_cast(saved.dtype, a.dtype, casting="same_kind"):
                raise TypeError(f"averages[{i}] has dtype {saved.dtype}; the average is {a.dtype}")
        for a, saved in zip(self.averages, averages):
            np.copyto(a, saved)
        self.decay, self.num_updates = decay, int(num_updates)
