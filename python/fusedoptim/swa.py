r"""Stochastic weight averaging (SWA) and exponential moving averages of parameters, in place: the NumPy
counterpart of torch.optim.swa_utils (``AveragedModel`` and its averaging functions; :class:`SWALR` is
:class:`fusedoptim.lr_scheduler.SWALR`).

SWA (Izmailov et al. 2018, https://arxiv.org/abs/1803.05407) evaluates with the equal-weight average of the
weights seen late in training, :math:`\bar p_n = \frac1n \sum_{k=1}^{n} p_k`, kept as a running average:

.. math:: \bar p_1 = p_1, \qquad \bar p_{n+1} = \operatorname{lerp}\!\left(\bar p_n, p_{n+1}, \tfrac{1}{n+1}\right)
    = \bar p_n + \frac{p_{n+1} - \bar p_n}{n + 1}

:class:`AveragedParams` applies it (or an EMA, or your own rule) to all arrays in one fused C++ pass, with the
kernel of :func:`fusedoptim.ema_` (torch's ``lerp``, rounded once per operation like every fusedoptim kernel).

>>> import numpy as np, fusedoptim
>>> w = np.zeros(2, dtype=np.float32)
>>> averaged = fusedoptim.AveragedParams([w])
>>> for value in (1.0, 2.0, 6.0):
...     w[...] = value  # a training step
...     averaged.update()
>>> averaged.averaged[0], averaged.n_averaged
(array([3., 3.], dtype=float32), 3)
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from . import _core
from ._validation import check_beta, check_bool, check_int
from .arena import ParamArena
from .ema import EMA
from .lr_scheduler import SWALR

__all__ = [
    "SWALR",
    "AveragedParams",
    "get_ema_avg_fn",
    "get_ema_multi_avg_fn",
    "get_swa_avg_fn",
    "get_swa_multi_avg_fn",
]

# What AveragedParams averages: a list of arrays, a dict of named arrays, or a ParamArena.
Arrays = Iterable[np.ndarray] | Mapping[str, np.ndarray] | ParamArena
# torch's signatures: (average, current value, number of models averaged so far).
AvgFn = Callable[[np.ndarray, np.ndarray, int], np.ndarray]
MultiAvgFn = Callable[[list[np.ndarray], list[np.ndarray], int], None]


# --- averaging functions (torch.optim.swa_utils' names and signatures) ------------------------------------------


def get_ema_multi_avg_fn(decay: float = 0.999) -> MultiAvgFn:
    r"""An in-place EMA of lists of arrays, as torch's ``get_ema_multi_avg_fn``:
    :math:`\bar p \leftarrow \operatorname{lerp}(\bar p, p, 1 - \delta)`, one fused pass over all arrays
    (:func:`fusedoptim.ema_`).

    Parameters
    ----------
    decay
        :math:`\delta`, in [0, 1]. Default 0.999.

    Returns
    -------
    ``ema_update(ema_param_list, current_param_list, num_averaged)``, which updates ``ema_param_list`` (a list of
    float32/float64 arrays) in place and ignores ``num_averaged``.
    """
    decay = check_beta("decay", "decay", decay, closed=True)
    weight = 1.0 - decay

    def ema_update(ema_param_list: Sequence[np.ndarray], current_param_list: Sequence[np.ndarray], _: Any) -> None:
        _core.ema_(ema_param_list, current_param_list, weight)

    return ema_update


def get_swa_multi_avg_fn() -> MultiAvgFn:
    r"""An in-place equal-weight running average of lists of arrays, as torch's ``get_swa_multi_avg_fn``:
    :math:`\bar p \leftarrow \operatorname{lerp}(\bar p, p, 1/(n + 1))`, one fused pass over all arrays.

    Returns
    -------
    ``swa_update(averaged_param_list, current_param_list, num_averaged)``: ``num_averaged`` (an int >= 0) is
    :math:`n`, the number of values averaged so far; the weight :math:`1/(n+1)` is computed in double and rounded
    once to the arrays' dtype.
    """

    def swa_update(
        averaged_param_list: Sequence[np.ndarray], current_param_list: Sequence[np.ndarray], num_averaged: int
    ) -> None:
        n = check_int("num_averaged", num_averaged, 0)
        _core.ema_(averaged_param_list, current_param_list, 1 / (n + 1))

    return swa_update


def get_ema_avg_fn(decay: float = 0.999) -> AvgFn:
    r"""torch's ``get_ema_avg_fn``, for one array: returns ``decay * ema_param + (1 - decay) * current_param``
    (a new array of the arrays' dtype; NumPy operations, not fused).

    torch's formula in torch's order, so an :class:`AveragedParams` built with it equals torch's
    ``AveragedModel(model, avg_fn=get_ema_avg_fn(decay))`` on the CPU bit for bit. :func:`get_ema_multi_avg_fn`
    (fused, in place) computes the same average as a lerp, which rounds differently.
    """
    decay = check_beta("decay", "decay", decay, closed=True)

    def ema_update(ema_param: np.ndarray, current_param: np.ndarray, num_averaged: Any) -> np.ndarray:
        return decay * ema_param + (1 - decay) * current_param

    return ema_update


def get_swa_avg_fn() -> AvgFn:
    r"""torch's ``get_swa_avg_fn``, for one array: returns ``averaged_param + (current_param - averaged_param) /
    (num_averaged + 1)`` (a new array of the arrays' dtype; NumPy operations, not fused).

    This is the rule torch's ``AveragedModel`` uses by default on the CPU (its fused ``_foreach_lerp_`` form runs on
    accelerators only), so ``AveragedParams(params, avg_fn=get_swa_avg_fn())`` equals it bit for bit; the default
    of :class:`AveragedParams` is the fused lerp of :func:`get_swa_multi_avg_fn`, which rounds differently.
    """

    def swa_update(averaged_param: np.ndarray, current_param: np.ndarray, num_averaged: int) -> np.ndarray:
        n = check_int("num_averaged", num_averaged, 0)
        return averaged_param + (current_param - averaged_param) / (n + 1)

    return swa_update


# --- the averaged copies ----------------------------------------------------------------------------------------


def _averaged_copy(label: str, array: Any) -> np.ndarray:
    """A C-contiguous copy of ``array``, which must be what EMA averages: EMA's checks, with EMA's messages (the
    entry named by ``label`` instead of EMA's ``params[0]``)."""
    try:
        return EMA([array]).averages[0]
    except (TypeError, ValueError) as e:
        message = str(e)
        if message.startswith("params[0]"):
            message = label + message[len("params[0]") :]
        raise type(e)(message) from None


class _Part:
    """One set of averaged arrays (the parameters, or the buffers) and their averages, in the kernel's order.

    ``sources``/``targets`` are what the kernel reads and writes (for a ParamArena: its flat buffer and a flat
    average); ``views`` are the averages one per entry (for an arena: named views into the flat average), in the
    order of ``names`` (None for a list)."""

    def __init__(self, what: str, arrays: Arrays) -> None:
        self.what = what
        if isinstance(arrays, ParamArena):
            self.names: list[str] | None = arrays.names
            flat = _averaged_copy(f"{what}.flat_params", arrays.flat_params)
            self.sources = [arrays.flat_params]
            self.targets = [flat]
            self.views = [flat[arrays.slices[n]].reshape(arrays.shapes[n]) for n in arrays.names]
            self.source_labels = [f"{what}.flat_params"]
        else:
            if isinstance(arrays, Mapping):
                self.names = list(arrays)
                for name in self.names:
                    if not isinstance(name, str):
                        raise TypeError(f"{what} names must be str, got {name!r}")
                items = list(arrays.values())
            elif isinstance(arrays, (str, bytes, np.ndarray)) or not isinstance(arrays, Iterable):
                raise TypeError(
                    f"{what} must be a list of numpy arrays, a dict of named arrays or a ParamArena, got "
                    f"{type(arrays).__name__}"
                )
            else:
                self.names = None
                items = list(arrays)
            if not items:
                raise ValueError(f"AveragedParams got an empty {what} list")
            self.source_labels = self.labels_for(range(len(items)))
            self.targets = [_averaged_copy(label, a) for label, a in zip(self.source_labels, items, strict=True)]
            self.sources = items
            self.views = self.targets

    def labels_for(self, indices: Iterable[int]) -> list[str]:
        if self.names is None:
            return [f"{self.what}[{i}]" for i in indices]
        return [f"{self.what}[{self.names[i]!r}]" for i in indices]

    def public(self) -> list[np.ndarray] | dict[str, np.ndarray]:
        """The averages as the arrays were given: a list, or a dict by name."""
        if self.names is None:
            return list(self.views)
        return dict(zip(self.names, self.views, strict=True))

    def check_sources(self) -> None:
        """NumPy lets an array change its shape or dtype in place (``a.shape = ...``): refused before any write."""
        for label, source, target in zip(self.source_labels, self.sources, self.targets, strict=True):
            if source.shape != target.shape or source.dtype != target.dtype:
                raise ValueError(
                    f"{label} is now {source.dtype}{list(source.shape)} but its average is "
                    f"{target.dtype}{list(target.shape)}; an averaged array must keep its shape and dtype"
                )

    def entries(self, arrays: Any, where: str) -> list[Any]:
        """``arrays`` (a list, a dict by name, or a ParamArena) as one entry per view, in order; the structure is
        checked (count or names), not the entries."""
        if isinstance(arrays, ParamArena):
            arrays = arrays.params
        if self.names is None:
            if isinstance(arrays, Mapping) or not isinstance(arrays, (list, tuple)):
                raise ValueError(f"{where} must be a list of {len(self.views)} arrays (the {self.what} were a list)")
            if len(arrays) != len(self.views):
                raise ValueError(f"Expected {len(self.views)} {where} (one per average), got {len(arrays)}")
            return list(arrays)
        if not isinstance(arrays, Mapping):
            raise ValueError(
                f"{where} must be a dict of arrays named {self.names} (the {self.what} were named), got "
                f"{type(arrays).__name__}"
            )
        missing = [n for n in self.names if n not in arrays]
        unexpected = [n for n in arrays if n not in self.names]
        if missing or unexpected:
            raise ValueError(
                f"{where} do not match the averaged {self.what}: missing {missing}, unexpected {unexpected}"
            )
        return [arrays[n] for n in self.names]

    def check_targets(self, arrays: Any, where: str) -> list[np.ndarray]:
        """Arrays the averages can be written into (EMA.copy_to's rules): writeable, same shape, dtype castable."""
        targets = self.entries(arrays, where)
        for label, target, average in zip(self.labels_for(range(len(targets))), targets, self.views, strict=True):
            label = where + label[len(self.what) :]
            if not isinstance(target, np.ndarray) or target.shape != average.shape or not target.flags.writeable:
                raise ValueError(f"{label} must be a writeable numpy.ndarray of shape {average.shape}")
            if not np.can_cast(average.dtype, target.dtype, casting="same_kind"):
                raise TypeError(f"{label} has dtype {target.dtype}; the average is {average.dtype}")
        return targets

    def check_saved(self, saved: Any, where: str) -> list[np.ndarray]:
        """Saved averages (from :meth:`saved`): one array per view, of the view's exact dtype and shape."""
        entries = self.entries(saved, where)
        for label, entry, average in zip(self.labels_for(range(len(entries))), entries, self.views, strict=True):
            label = where + label[len(self.what) :]
            if (
                not isinstance(entry, np.ndarray)
                or isinstance(entry, np.ma.MaskedArray)
                or entry.dtype != average.dtype
                or entry.shape != average.shape
            ):
                got = (
                    f"{entry.dtype} array of shape {entry.shape}"
                    if isinstance(entry, np.ndarray)
                    else type(entry).__name__
                )
                raise ValueError(
                    f"Invalid {label}: expected a {average.dtype} array of shape {average.shape}, got {got}"
                )
        return entries

    def saved(self) -> list[np.ndarray] | dict[str, np.ndarray]:
        if self.names is None:
            return [a.copy() for a in self.views]
        return {n: a.copy() for n, a in zip(self.names, self.views, strict=True)}


def _held(arrays: Any, part: _Part) -> Arrays:
    if isinstance(arrays, ParamArena):
        return arrays
    if part.names is None:
        return list(part.sources)
    return dict(zip(part.names, part.sources, strict=True))


class AveragedParams:
    r"""Keeps a running average of parameters (stochastic weight averaging by default, an EMA or your own rule
    with an averaging function), updated in place: torch.optim.swa_utils.AveragedModel for NumPy arrays.

    The first :meth:`update` copies the parameters into the averages; each later one averages, with
    :math:`n` = ``n_averaged`` the number of values averaged so far:

    .. math:: \bar p \leftarrow \operatorname{lerp}\!\left(\bar p, p, \tfrac{1}{n+1}\right)
        = \bar p + \frac{p - \bar p}{n + 1}

    by default, as one fused pass over all arrays (the kernel of :func:`fusedoptim.ema_`, with the weight
    :math:`1/(n+1)` computed in double and rounded once to the arrays' dtype: torch's
    ``get_swa_multi_avg_fn``). torch's ``AveragedModel`` on the CPU uses the division form instead
    (``get_swa_avg_fn``): the two agree to rounding; pass ``avg_fn=get_swa_avg_fn()`` for torch's CPU values bit
    for bit.

    Parameters
    ----------
    params
        The arrays to average: a list of float32/float64 C-contiguous arrays, a dict of named ones, or a
        :class:`fusedoptim.ParamArena` (averaged as its one flat buffer). Refused as :class:`fusedoptim.EMA`
        refuses them (float16/bfloat16 parameters: average the optimizer's float32 masters). They are held, not
        copied: :meth:`update` reads their current values.
    avg_fn
        ``avg_fn(average, param, n_averaged) -> new average``, called once per array (for an arena: once, on the
        flat arrays); the results are written into the averages once all have been computed and checked. E.g.
        :func:`get_ema_avg_fn`, :func:`get_swa_avg_fn`.
    multi_avg_fn
        ``multi_avg_fn(averages, params, n_averaged)``, updating the list ``averages`` in place; called once per
        dtype (as torch groups by device and dtype), in the order the dtypes first appear. E.g.
        :func:`get_ema_multi_avg_fn` (fused). At most one of ``avg_fn`` and ``multi_avg_fn``.
    use_buffers
        If True, the ``buffers`` are averaged with the parameters (in the same pass); if False (default), their
        copies in ``averaged_buffers`` follow the buffers' current values at each :meth:`update` (torch's rule).
    buffers
        Keyword only: non-trainable arrays of the model (e.g. batch-norm running statistics), given and checked
        like ``params``. Default None.

    Attributes
    ----------
    averaged
        The averages, as ``params`` were given: a list, or a dict by name (for an arena: views into one flat
        array). Edit them in place only; the container is a new one at each access.
    averaged_buffers
        The buffers' copies, likewise (None without ``buffers``).
    n_averaged
        The number of updates so far (an int).

    Example::

        averaged = fusedoptim.AveragedParams(arena)          # or [w, b], or {"w": w, "b": b}
        swa_schedule = fusedoptim.lr_scheduler.SWALR(opt, swa_lr=0.05)
        for epoch in range(epochs):
            train_one_epoch(opt)
            if epoch >= swa_start:
                averaged.update()
                swa_schedule.step()
        averaged.copy_to(eval_arena)                         # evaluate with the averaged weights

    ``fusedoptim.save(path, ..., extra={"swa": averaged.state_dict()})`` stores the state with a checkpoint, and
    ``averaged.load_state_dict(fusedoptim.load(path, ...)["swa"])`` restores it.
    """

    def __init__(
        self,
        params: Arrays,
        avg_fn: AvgFn | None = None,
        multi_avg_fn: MultiAvgFn | None = None,
        use_buffers: bool = False,
        *,
        buffers: Arrays | None = None,
    ) -> None:
        if avg_fn is not None and multi_avg_fn is not None:
            raise ValueError("Only one of avg_fn and multi_avg_fn should be provided")
        for name, function in (("avg_fn", avg_fn), ("multi_avg_fn", multi_avg_fn)):
            if function is not None and not callable(function):
                raise TypeError(f"{name} should be a function, but got {type(function).__name__}")
        self.use_buffers = check_bool("use_buffers", use_buffers)
        self._params = _Part("params", params)
        self._buffers = None if buffers is None else _Part("buffers", buffers)
        # The arrays averaged, as given (a list or dict of their own, so that later edits to the caller's
        # container do not change what copy_to() writes into).
        self.params = _held(params, self._params)
        self.buffers = None if self._buffers is None else _held(buffers, self._buffers)
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.n_averaged = 0

        # What update() averages, in one list (the buffers too with use_buffers), and what it copies.
        self._averaged_parts = [self._params] + ([self._buffers] if self._buffers is not None and use_buffers else [])
        self._sources = [s for part in self._averaged_parts for s in part.sources]
        self._targets = [t for part in self._averaged_parts for t in part.targets]
        self._synced = [] if self._buffers is None or use_buffers else [self._buffers]

    @property
    def averaged(self) -> list[np.ndarray] | dict[str, np.ndarray]:
        return self._params.public()

    @property
    def averaged_buffers(self) -> list[np.ndarray] | dict[str, np.ndarray] | None:
        return None if self._buffers is None else self._buffers.public()

    def update(self) -> None:
        """Averages the parameters' current values in (torch's ``update_parameters``): the first call copies them,
        later ones apply the averaging rule; then ``n_averaged`` grows by one.

        Every array is checked first (shapes and dtypes unchanged; an ``avg_fn``'s results, before any is
        written): on error nothing changes. An exception raised inside a ``multi_avg_fn`` leaves what it wrote.
        """
        for part in self._averaged_parts + self._synced:
            part.check_sources()
        n = self.n_averaged
        sources, targets = self._sources, self._targets
        if n == 0:
            for target, source in zip(targets, sources, strict=True):
                np.copyto(target, source)
        elif self.multi_avg_fn is not None:
            groups: dict[np.dtype, tuple[list[np.ndarray], list[np.ndarray]]] = {}
            for target, source in zip(targets, sources, strict=True):
                group = groups.setdefault(target.dtype, ([], []))
                group[0].append(target)
                group[1].append(source)
            for group_targets, group_sources in groups.values():
                self.multi_avg_fn(group_targets, group_sources, n)
        elif self.avg_fn is not None:
            results = [
                np.asarray(self.avg_fn(target, source, n)) for target, source in zip(targets, sources, strict=True)
            ]
            labels = [label for part in self._averaged_parts for label in part.source_labels]
            for label, target, result in zip(labels, targets, results, strict=True):
                if result.shape != target.shape:
                    raise ValueError(
                        f"avg_fn returned an array of shape {result.shape} for {label} of shape {target.shape}"
                    )
                if not np.can_cast(result.dtype, target.dtype, casting="same_kind"):
                    raise TypeError(
                        f"avg_fn returned an array of dtype {result.dtype} for {label} of dtype {target.dtype}"
                    )
            for target, result in zip(targets, results, strict=True):
                np.copyto(target, result)
        else:
            _core.ema_(targets, sources, 1 / (n + 1))
        for part in self._synced:
            for target, source in zip(part.targets, part.sources, strict=True):
                np.copyto(target, source)
        self.n_averaged = n + 1

    def copy_to(self, params: Arrays | None = None, buffers: Arrays | None = None) -> None:
        """Writes the averages into arrays, in place: with no arguments into the averaged parameters (and the
        buffers' copies into the buffers); otherwise into ``params`` and/or ``buffers``, structured as the
        originals (a list, a dict by name, or a ParamArena).

        Every target is checked first (writeable, same shape, a dtype the average casts to): an error writes
        nothing.
        """
        if params is None and buffers is None:
            params, buffers = self.params, self.buffers
        writes: list[tuple[list[np.ndarray], list[np.ndarray]]] = []
        if params is not None:
            writes.append((self._params.check_targets(params, "params"), self._params.views))
        if buffers is not None:
            if self._buffers is None:
                raise ValueError("This AveragedParams has no buffers to copy")
            writes.append((self._buffers.check_targets(buffers, "buffers"), self._buffers.views))
        for targets, averages in writes:
            for target, average in zip(targets, averages, strict=True):
                np.copyto(target, average)

    def state_dict(self) -> dict[str, Any]:
        """``{"n_averaged": int, "averages": [...] or {name: ...}}`` (and ``"buffers"`` with buffers): copies.

        The averaging functions are not saved (as torch). The values are arrays and ints, which
        :func:`fusedoptim.save` stores (pass the state dict in ``extra``).
        """
        state: dict[str, Any] = {"n_averaged": self.n_averaged, "averages": self._params.saved()}
        if self._buffers is not None:
            state["buffers"] = self._buffers.saved()
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restores :meth:`state_dict`: exactly its keys, an int ``n_averaged`` >= 0, and one array per average of
        the average's dtype and shape (by position, or by name). Everything is checked first: on error nothing
        changes."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a mapping, got {type(state_dict).__name__}")
        expected = {"n_averaged", "averages"} | ({"buffers"} if self._buffers is not None else set())
        if set(state_dict) != expected:
            raise ValueError(
                f"AveragedParams state_dict keys must be {sorted(expected)}: missing {sorted(expected - set(state_dict))},"
                f" unexpected {sorted(set(state_dict) - expected, key=repr)}"
            )
        n = state_dict["n_averaged"]
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral) or n < 0:
            raise ValueError(f"Invalid state_dict['n_averaged']: {n!r} (expected an int >= 0)")
        loads = [(self._params.views, self._params.check_saved(state_dict["averages"], "state_dict['averages']"))]
        if self._buffers is not None:
            loads.append(
                (self._buffers.views, self._buffers.check_saved(state_dict["buffers"], "state_dict['buffers']"))
            )
        for averages, saved in loads:
            for average, value in zip(averages, saved, strict=True):
                np.copyto(average, value)
        self.n_averaged = int(n)
