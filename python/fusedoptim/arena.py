"""ParamArena: named parameters and gradients as views into two contiguous buffers."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

__all__ = ["ParamArena"]


class _Views(Mapping):
    """An arena's named views, fixed: a view replaced by another array would not be what the optimizer steps
    (it steps the flat buffer), so replacing one is refused; write into the views in place instead."""

    def __init__(self, views: dict[str, np.ndarray], what: str) -> None:
        self._views = views
        self._what = what

    def __getitem__(self, name: str) -> np.ndarray:
        return self._views[name]

    def __setitem__(self, name: str, value: object) -> None:
        raise TypeError(
            f"arena.{self._what}[{name!r}] is a view into the arena's flat buffer and cannot be replaced; write into "
            f"it in place (arena.{self._what}[{name!r}][...] = value, or out=arena.{self._what}[{name!r}])"
        )

    def __delitem__(self, name: str) -> None:
        raise TypeError(f"arena.{self._what}[{name!r}] cannot be removed: an arena's arrays are fixed")

    def __iter__(self) -> Iterator[str]:
        return iter(self._views)

    def __len__(self) -> int:
        return len(self._views)

    def __repr__(self) -> str:
        return f"{{{', '.join(f'{n!r}: array{tuple(v.shape)}' for n, v in self._views.items())}}}"


class ParamArena:
    """Allocates parameters and their gradients as views into one flat parameter buffer and one flat gradient
    buffer, in the order given.

    User code keeps named arrays (``arena.params["w"]``, ``arena.grads["w"]``: write gradients into these
    views in place, e.g. ``np.matmul(x.T, d, out=arena.grads["w"])``); an optimizer given the arena steps it as
    one array of ``arena.size`` elements, and clipping or an all-reduce can work on ``arena.flat_grads``.
    State dicts and checkpoints still show one entry per name.

    Example::

        arena = fusedoptim.ParamArena({"w1": (784, 512), "b1": (512,), "w2": (512, 10), "b2": (10,)})
        arena.params["w1"][...] = init(784, 512)
        opt = fusedoptim.Adam(arena, lr=1e-3)
        ...                     # fill arena.grads[...] in place
        opt.step(arena.grads)   # one fused call over arena.flat_params
    """

    def __init__(self, shapes: Mapping[str, Sequence[int] | int], dtype: np.typing.DTypeLike = np.float32) -> None:
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"ParamArena needs float32 or float64, got {dtype}")
        if not isinstance(shapes, Mapping) or not shapes:
            raise ValueError("ParamArena needs a non-empty dict of name -> shape")
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.slices: dict[str, slice] = {}
        offset = 0
        for name, shape in shapes.items():
            if not isinstance(name, str):
                raise TypeError(f"ParamArena names must be str, got {name!r}")
            shape = (shape,) if isinstance(shape, int) else tuple(int(s) for s in shape)
            if any(s < 0 for s in shape):
                raise ValueError(f"Invalid shape for {name!r}: {shape}")
            size = math.prod(shape)
            self.shapes[name] = shape
            self.slices[name] = slice(offset, offset + size)
            offset += size
        self.size = offset
        self.flat_params = np.zeros(offset, dtype)
        self.flat_grads = np.zeros(offset, dtype)
        self.params = _Views({n: self.flat_params[s].reshape(self.shapes[n]) for n, s in self.slices.items()}, "params")
        self.grads = _Views({n: self.flat_grads[s].reshape(self.shapes[n]) for n, s in self.slices.items()}, "grads")

    @property
    def names(self) -> list[str]:
        return list(self.shapes)

    @property
    def dtype(self) -> np.dtype:
        return self.flat_params.dtype

    def zero_grad(self) -> None:
        self.flat_grads.fill(0)

    def __len__(self) -> int:
        return len(self.shapes)

    def __iter__(self) -> Iterator[str]:
        return iter(self.shapes)

    def __repr__(self) -> str:
        return f"ParamArena({len(self)} arrays, {self.size} {self.dtype} values)"
