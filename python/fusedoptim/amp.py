"""Dynamic loss scaling for float16 gradients (torch.amp.GradScaler's semantics).

float16 gradients underflow below 6e-8 (and lose precision below 6e-5): multiplying the loss by a large scale
keeps them representable. :meth:`GradScaler.step` hands the optimizer the scaled gradients with
``grad_scale = 1/scale``, so the fused kernel unscales each gradient as it reads it (the caller's gradients are
not changed), after the optimizer's fused non-finite guard: a step whose gradients hold inf or NaN changes
nothing, and :meth:`update` then lowers the scale; after ``growth_interval`` good steps in a row it raises it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._validation import check_bool

__all__ = ["GradScaler"]


class GradScaler:
    """Loss scaling (torch.amp.GradScaler).

    Example::

        scaler = fusedoptim.GradScaler()
        for x, y in batches:
            grads = backward(model, x, y, loss_scale=scaler.scale)   # gradients of loss * scale, in float16
            scaler.step(opt, grads)                                   # unscaled inside the fused step
            scaler.update()

    ``scale(loss)`` multiplies a loss (a number or an array) by the current scale.
    """

    def __init__(
        self,
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
    ) -> None:
        self._check(init_scale, growth_factor, backoff_factor, growth_interval)
        check_bool("enabled", enabled)
        self._scale = float(init_scale)
        self.growth_factor = float(growth_factor)
        self.backoff_factor = float(backoff_factor)
        self.growth_interval = int(growth_interval)
        self.enabled = enabled
        self._growth_tracker = 0
        self._found_inf: bool | None = None  # None: no step since the last update()

    @staticmethod
    def _check(init_scale: Any, growth_factor: Any, backoff_factor: Any, growth_interval: Any) -> None:
        for name, value in (
            ("init_scale", init_scale),
            ("growth_factor", growth_factor),
            ("backoff_factor", backoff_factor),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
                raise TypeError(f"{name} must be a real number, got {value!r}")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"Invalid {name}: {value}")
        if not growth_factor > 1.0:
            raise ValueError(f"Invalid growth_factor: {growth_factor} (must be > 1)")
        if not backoff_factor < 1.0:
            raise ValueError(f"Invalid backoff_factor: {backoff_factor} (must be < 1)")
        if (
            isinstance(growth_interval, bool)
            or not isinstance(growth_interval, (int, np.integer))
            or growth_interval < 1
        ):
            raise ValueError(f"Invalid growth_interval: {growth_interval!r} (a positive int)")

    def get_scale(self) -> float:
        """The current scale (1.0 when disabled)."""
        return self._scale if self.enabled else 1.0

    def scale(self, loss: Any) -> Any:
        """``loss`` times the current scale."""
        return loss * self.get_scale() if self.enabled else loss

    def step(
        self, optimizer: Any, grads: Sequence[np.ndarray | None] | Mapping[str, np.ndarray | None], **kwargs: Any
    ) -> bool:
        """One optimizer step from gradients of the scaled loss: skipped (nothing changes) when any holds inf or
        NaN, else applied with the gradients unscaled inside the kernel. Returns True when applied."""
        if not self.enabled:
            return optimizer.step(grads, **kwargs)
        if "grad_scale" in kwargs or "skip_if_nonfinite" in kwargs:
            raise TypeError("GradScaler.step sets grad_scale and skip_if_nonfinite itself")
        if kwargs.get("max_grad_norm") is not None:
            # The optimizer would clip the scaled gradients, by a threshold meant for unscaled ones.
            raise TypeError(
                "GradScaler.step does not clip: max_grad_norm would apply to the scaled gradients; "
                "unscale them (multiply by 1 / scaler.get_scale()) and clip before a plain "
                "optimizer step instead"
            )
        skipped_before = optimizer.skipped_steps
        applied = optimizer.step(grads, skip_if_nonfinite=True, grad_scale=1.0 / self._scale, **kwargs)
        found_inf = not applied and optimizer.skipped_steps > skipped_before
        self._found_inf = bool(found_inf or self._found_inf)
        return applied

    def update(self, new_scale: float | None = None) -> None:
        """After the step(s) of an iteration: back off if any step found inf/NaN, else count a good step and
        grow the scale after ``growth_interval`` of them. ``new_scale`` sets the scale instead."""
        if not self.enabled:
            return
        if new_scale is not None:
            self._check(new_scale, self.growth_factor, self.backoff_factor, self.growth_interval)
            self._scale = float(new_scale)
        elif self._found_inf:
            # Kept where the unscaling factor 1/scale is finite (it is inf at 0, and below ~5.6e-309).
            if math.isfinite(1.0 / max(self._scale * self.backoff_factor, 5e-324)):
                self._scale *= self.backoff_factor
            self._growth_tracker = 0
        elif self._found_inf is not None:
            self._growth_tracker += 1
            if self._growth_tracker == self.growth_interval:
                # As torch: a scale that would overflow keeps its last finite value (an inf scale would make
                # every later gradient inf, and every step skipped).
                if math.isfinite(self._scale * self.growth_factor):
                    self._scale *= self.growth_factor
                self._growth_tracker = 0
        self._found_inf = None

    def state_dict(self) -> dict[str, Any]:
        """torch's keys: scale, growth_factor, backoff_factor, growth_interval, _growth_tracker."""
        if not self.enabled:
            return {}
        return {
            "scale": self._scale,
            "growth_factor": self.growth_factor,
            "backoff_factor": self.backoff_factor,
            "growth_interval": self.growth_interval,
            "_growth_tracker": self._growth_tracker,
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restores :meth:`state_dict` (checked first: on error nothing changes)."""
        if not self.enabled:
            return
        if not isinstance(state_dict, Mapping) or not state_dict:
            raise ValueError("GradScaler state_dict must be a non-empty mapping (saved from an enabled scaler)")
        keys = {"scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker"}
        if set(state_dict) != keys:
            raise ValueError(f"GradScaler state_dict must have the keys {sorted(keys)}, got {sorted(state_dict)}")
        self._check(
            state_dict["scale"],
            state_dict["growth_factor"],
            state_dict["backoff_factor"],
            state_dict["growth_interval"],
        )
        tracker = state_dict["_growth_tracker"]
        if isinstance(tracker, bool) or not isinstance(tracker, (int, np.integer)) or tracker < 0:
            raise ValueError(f"Invalid _growth_tracker: {tracker!r}")
        self._scale = float(state_dict["scale"])
        self.growth_factor = float(state_dict["growth_factor"])
        self.backoff_factor = float(state_dict["backoff_factor"])
        self.growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(tracker)
