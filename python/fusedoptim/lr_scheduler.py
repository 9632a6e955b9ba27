r"""Learning-rate schedulers with torch.optim.lr_scheduler's names, arguments, defaults and semantics (torch 2.13).

A scheduler adjusts ``group["lr"]`` in an optimizer's ``param_groups`` (any object whose ``param_groups`` is a
list of dicts holding ``"lr"``: every fusedoptim optimizer, or your own). Call ``scheduler.step()`` once per epoch
(or per batch for :class:`CyclicLR` and :class:`OneCycleLR`), after ``optimizer.step(grads)``:

>>> import numpy as np, fusedoptim
>>> from fusedoptim.lr_scheduler import StepLR
>>> w = np.zeros(3)
>>> opt = fusedoptim.SGD([w], lr=0.1)
>>> scheduler = StepLR(opt, step_size=2, gamma=0.5)
>>> lrs = []
>>> for epoch in range(5):
...     opt.step([np.ones(3)])
...     lrs.append(scheduler.get_last_lr()[0])
...     scheduler.step()
>>> lrs
[0.1, 0.1, 0.05, 0.05, 0.025]

The learning rates are torch's to the last bit: where torch updates a rate recursively from the current
``group["lr"]`` ("chainable" form, so that several schedulers can act on one optimizer) the same recursion is
used here with the same floating-point operations in the same order, and where torch uses a closed form (and for
``step(epoch)``, torch's deprecated explicit-epoch form) the same closed form is used.

Differences from torch, by design: no warnings are emitted (torch warns when ``scheduler.step()`` precedes
``optimizer.step()`` and when an epoch is passed to ``step``), and arguments torch accepts but cannot use (a
step size of 0, a negative gamma, ...) are rejected at construction instead of failing or producing negative
rates later.
"""

from __future__ import annotations

import copy
import math
import numbers
import reprlib
import types
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import Any, ClassVar, Literal, Protocol, SupportsFloat, cast

from ._validation import check_int, check_nonnegative, check_positive, check_real

__all__ = [
    "SWALR",
    "ChainedScheduler",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "MultiplicativeLR",
    "OneCycleLR",
    "PolynomialLR",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
]


class OptimizerLike(Protocol):
    """What a scheduler needs of an optimizer: ``param_groups``, a list of dicts each holding ``"lr"``."""

    param_groups: list[dict[str, Any]]


LambdaT = Callable[[int], float]

# Keys torch's scheduler state dicts carry for its own bookkeeping (flags that are only ever True inside a
# call); loading a torch state dict ignores them, and "optimizer" is never loaded.
_IGNORED_ON_LOAD = frozenset({"optimizer", "_get_lr_called_within_step", "_is_initial"})


# --- argument checks -------------------------------------------------------------------------------------------


def _check_optimizer(optimizer: Any) -> None:
    groups = getattr(optimizer, "param_groups", None)
    if (
        isinstance(groups, (str, bytes))
        or not isinstance(groups, Sequence)
        or len(groups) == 0
        or not all(isinstance(group, MutableMapping) and "lr" in group for group in groups)
    ):
        raise TypeError(
            f"{type(optimizer).__name__} is not an Optimizer: a scheduler needs an object whose param_groups is a "
            "list of dicts holding 'lr'"
        )


def _check_last_epoch(last_epoch: Any) -> None:
    check_int("last_epoch", last_epoch, -1)


def _per_group(name: str, optimizer: OptimizerLike, value: Any) -> list[Any]:
    """``value`` for each parameter group: a list or tuple with one entry per group, or one value for all."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(optimizer.param_groups):
            raise ValueError(
                f"{name} must have the same length as optimizer.param_groups. "
                f"{name} has {len(value)} values, param_groups has {len(optimizer.param_groups)}."
            )
        return list(value)
    return [value] * len(optimizer.param_groups)


def _group_values(optimizer: OptimizerLike, key: str) -> list[Any]:
    return [group[key] for group in optimizer.param_groups]


def _current_lrs(optimizer: OptimizerLike) -> list[float]:
    return [float(group["lr"]) for group in optimizer.param_groups]


def _momentum_key(optimizer: OptimizerLike) -> str:
    """The hyperparameter that momentum cycling drives: beta1 of ``betas`` (Adam) or ``momentum`` (SGD, RMSprop)."""
    groups = optimizer.param_groups
    if all("betas" in group for group in groups):
        return "betas"
    if all("momentum" in group for group in groups):
        return "momentum"
    raise ValueError("optimizer must support momentum or beta1 with `cycle_momentum` option enabled")


def _set_momentum(group: dict[str, Any], use_beta1: bool, momentum: float) -> None:
    if use_beta1:
        group["betas"] = (momentum, *group["betas"][1:])
    else:
        group["momentum"] = momentum


def _save_callables(functions: Sequence[Any]) -> list[dict[str, Any] | None]:
    """torch's rule: a plain function or lambda is not saved (None); a callable object saves its ``__dict__``."""
    return [
        None if isinstance(fn, types.FunctionType) or fn is None else copy.deepcopy(dict(getattr(fn, "__dict__", {})))
        for fn in functions
    ]


def _restore_callables(functions: Sequence[Any], saved: Sequence[Mapping[str, Any] | None]) -> None:
    for fn, attributes in zip(functions, saved, strict=True):
        if attributes is not None:
            fn.__dict__.update(copy.deepcopy(dict(attributes)))


def _check_state_dict(state_dict: Any) -> None:
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a mapping, got {type(state_dict).__name__}")


# --- state dict checks -----------------------------------------------------------------------------------------
# A state dict is data, often read from a file: load_state_dict checks each entry as the constructor checks the
# argument it comes from (and rates against the optimizer: one per group) before it sets anything. A check takes
# the scheduler and the value and returns the value to set (a copy), or raises ValueError saying what it expected.

StateCheck = Callable[[Any, Any], Any]

# Long lists and strings in error messages are shortened ("[0.1, 0.1, 0.1, 0.1, 0.1, 0.1, ...]").
_short = reprlib.Repr()
_short.maxstring = _short.maxother = 80


def _state_int(minimum: int) -> StateCheck:
    def check(scheduler: Any, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            raise ValueError(f"expected an int >= {minimum}")
        return int(value)

    return check


def _state_real(
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
    infinite: bool = False,
) -> StateCheck:
    """A real number in [low, high] (an end excluded with low_open / high_open), finite unless ``infinite``."""
    if low > -math.inf and high < math.inf:
        where = f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low > -math.inf:
        where = f" {'>' if low_open else '>='} {low:g}"
    else:
        where = ""
    expected = f"expected a {'' if infinite else 'finite '}real number{where}"

    def check(scheduler: Any, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(expected)
        v = float(value)
        if math.isnan(v) or (math.isinf(v) and not infinite):
            raise ValueError(expected)
        if v < low or (low_open and v == low) or v > high or (high_open and v == high):
            raise ValueError(expected)
        # ints stay ints (torch's state dicts compare equal to ours), NumPy scalars become floats
        return value if type(value) in (int, float) else v

    return check


def _state_bool(scheduler: Any, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected True or False")
    return value


def _state_choice(*choices: str) -> StateCheck:
    def check(scheduler: Any, value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"expected one of {', '.join(map(repr, choices))}")
        return value

    return check


def _state_optional(element: StateCheck) -> StateCheck:
    def check(scheduler: Any, value: Any) -> Any:
        return None if value is None else element(scheduler, value)

    return check


def _state_per_group(element: StateCheck, what: str) -> StateCheck:
    """A list with one ``element`` per parameter group of the scheduler's optimizer."""

    def check(scheduler: Any, value: Any) -> list[Any]:
        groups = len(scheduler.optimizer.param_groups)
        if not isinstance(value, (list, tuple)) or len(value) != groups:
            raise ValueError(f"expected a list of {groups} {what}, one per parameter group")
        checked = []
        for i, v in enumerate(value):
            try:
                checked.append(element(scheduler, v))
            except ValueError as e:
                raise ValueError(f"entry {i} is {v!r}: {e}") from None
        return checked

    return check


_RATES = _state_per_group(_state_real(0.0), "finite rates >= 0")
# The rates last set may be negative: torch's linear OneCycleLR extrapolates past min_lr on its last step.
_SET_RATES = _state_per_group(_state_real(), "finite rates")
_MOMENTA = _state_per_group(_state_real(), "finite momentum values")


def _state_int_list(scheduler: Any, value: Any) -> list[int]:
    """SequentialLR's milestones: one int per wrapped scheduler after the first."""
    expected = len(scheduler._schedulers) - 1
    if (
        not isinstance(value, (list, tuple))
        or len(value) != expected
        or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in value)
    ):
        raise ValueError(f"expected a list of {expected} int milestones (one fewer than the schedulers)")
    return [int(v) for v in value]


def _state_milestone_counts(scheduler: Any, value: Any) -> Counter[int]:
    """MultiStepLR's milestones: a Counter (a plain dict once it has been through a checkpoint's manifest)."""
    if not isinstance(value, Mapping) or not all(
        not isinstance(k, bool)
        and isinstance(k, numbers.Integral)
        and not isinstance(n, bool)
        and isinstance(n, numbers.Integral)
        and int(n) >= 1
        for k, n in value.items()
    ):
        raise ValueError("expected a Counter of milestone epochs (int epoch -> int count >= 1)")
    return Counter({int(k): int(n) for k, n in value.items()})


def _state_attributes(function: Any, value: Any) -> dict[str, Any] | None:
    """A saved function (see _save_callables): None, or the attribute dict of a callable object. Only the
    object's own attributes may be restored: the saved dict comes from the same kind of object."""
    if value is None:
        return None
    if function is None or isinstance(function, types.FunctionType) or not hasattr(function, "__dict__"):
        raise ValueError(
            "expected None: this scheduler's function is a plain function, a lambda or none, which has no saved "
            "attributes"
        )
    if not isinstance(value, Mapping):
        raise ValueError(f"expected None or the attribute dict of the {type(function).__name__} object")
    unknown = [key for key in value if not isinstance(key, str) or key not in vars(function)]
    if unknown:
        raise ValueError(f"{type(function).__name__} object has no attribute {unknown[0]!r}")
    return copy.deepcopy(dict(value))


_PHASE_KEYS = {
    "end_step": None,
    "start_lr": ("initial_lr", "max_lr", "min_lr"),
    "end_lr": ("initial_lr", "max_lr", "min_lr"),
    "start_momentum": ("max_momentum", "base_momentum"),
    "end_momentum": ("max_momentum", "base_momentum"),
}


def _state_phases(scheduler: Any, value: Any) -> list[dict[str, Any]]:
    """OneCycleLR's phases: the step each ends at and the group keys (never other group entries) it reads."""
    expected = (
        "expected 2 or 3 phases, each a dict of a finite 'end_step' and the group keys 'start_lr', 'end_lr' (of "
        "'initial_lr', 'max_lr', 'min_lr'), 'start_momentum', 'end_momentum' (of 'max_momentum', 'base_momentum')"
    )
    if not isinstance(value, (list, tuple)) or len(value) not in (2, 3):
        raise ValueError(expected)
    phases = []
    for phase in value:
        if not isinstance(phase, Mapping) or set(phase) != set(_PHASE_KEYS):
            raise ValueError(expected)
        for key, choices in _PHASE_KEYS.items():
            entry = phase[key]
            if choices is None:
                if isinstance(entry, bool) or not isinstance(entry, numbers.Real) or not math.isfinite(entry):
                    raise ValueError(expected)
            elif entry not in choices:
                raise ValueError(expected)
        phases.append({key: phase[key] for key in _PHASE_KEYS})
    return phases


def _check_momentum_state(scheduler: Any, state: Mapping[str, Any], where: str, bounds: Sequence[str]) -> None:
    """A cycled momentum needs its bounds, and beta1 (``use_beta1``) exactly when the optimizer has ``betas``."""
    if not state["cycle_momentum"]:
        return
    missing = [key for key in ("use_beta1", *bounds) if key not in state]
    if missing:
        raise ValueError(
            f"Invalid {where}['cycle_momentum']: True (this {type(scheduler).__name__} does not cycle the momentum, "
            f"and the state has no {missing})"
        )
    uses_beta1 = _momentum_key(scheduler.optimizer) == "betas"
    if state["use_beta1"] != uses_beta1:
        raise ValueError(
            f"Invalid {where}['use_beta1']: {state['use_beta1']} (the optimizer's momentum is "
            f"{'beta1 of betas' if uses_beta1 else 'momentum'})"
        )


# --- the base class --------------------------------------------------------------------------------------------


class LRScheduler:
    r"""Base class of the schedulers (torch.optim.lr_scheduler.LRScheduler).

    At construction with ``last_epoch=-1`` each parameter group gets ``group["initial_lr"] = group["lr"]`` (unless
    it already has one, e.g. from another scheduler), ``base_lrs`` are the groups' ``initial_lr`` and the scheduler
    takes its initial step to epoch 0. With ``last_epoch >= 0`` (resuming) every group must already hold
    ``initial_lr`` and the initial step goes to epoch ``last_epoch + 1``.

    :meth:`step` advances ``last_epoch`` by one and writes :meth:`get_lr`'s rates into the groups; ``step(epoch)``
    jumps to ``epoch`` and uses the scheduler's closed form where it has one (torch's deprecated form, kept for
    compatibility, without the warning). A new scheduler implements :meth:`get_lr`.

    Parameters
    ----------
    optimizer
        The optimizer whose ``param_groups`` this scheduler adjusts.
    last_epoch
        Index of the last epoch seen; ``-1`` (default) starts a schedule, other values resume one.

    Notes
    -----
    Constructing a scheduler overwrites the groups' ``lr``: when restoring a checkpoint, construct the scheduler
    before calling the optimizer's ``load_state_dict``.
    """

    # Entries of __dict__ that are not state: the optimizer, and a flag that is only True inside construction.
    _not_saved: ClassVar[frozenset[str]] = frozenset({"optimizer", "_is_initial"})
    # True during the initial step taken at construction; the chainable forms leave the rates as they are then.
    _is_initial: bool = False
    # How load_state_dict checks each entry this class saves (see _state_check); subclasses add their own.
    _state_checks: ClassVar[Mapping[str, StateCheck]] = {
        "last_epoch": _state_int(-1),
        "_step_count": _state_int(0),
        "base_lrs": _RATES,
        "_last_lr": _SET_RATES,
    }

    optimizer: OptimizerLike
    last_epoch: int
    base_lrs: list[float]
    _step_count: int
    _last_lr: list[float]

    def __init__(self, optimizer: OptimizerLike, last_epoch: int = -1) -> None:
        _check_optimizer(optimizer)
        _check_last_epoch(last_epoch)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param 'initial_lr' is not specified in param_groups[{i}] when resuming scheduler with "
                        f"last_epoch >= 0 (last_epoch={last_epoch}); construct the scheduler with last_epoch=-1, "
                        "or load the optimizer's state dict from a run that had one"
                    )
        self.base_lrs = _group_values(optimizer, "initial_lr")
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        """Resets the step count and takes the construction-time step (``_is_initial`` set while it runs)."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        """The rates for epoch ``last_epoch`` (already advanced), one per group; :meth:`step` calls this.

        To read the current rates use :meth:`get_last_lr`: for some schedulers this method reads the groups'
        current rates (the chainable forms) or changes their momentum, so it is meant to be called once per step.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement get_lr")

    def _closed_form_lr(self) -> list[float] | None:
        """The rates at ``last_epoch`` from ``base_lrs`` alone, used by ``step(epoch)``; None if there is none."""
        return None

    def step(self, epoch: int | None = None) -> None:
        """Advances the schedule by one epoch (or sets it to ``epoch``) and updates the groups' ``lr``.

        Parameters
        ----------
        epoch
            Optional. Jumps to this epoch instead of advancing by one, using the closed form where the scheduler
            has one (torch's deprecated explicit-epoch form; prefer ``step()``).
        """
        self._step_count += 1
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None = None) -> None:
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            closed = self._closed_form_lr()
            values = closed if closed is not None else self.get_lr()
        self._write_lrs(values)

    def _write_lrs(self, values: Sequence[SupportsFloat]) -> None:
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            group["lr"] = float(lr)
        self._last_lr = _current_lrs(self.optimizer)

    def get_last_lr(self) -> list[float]:
        """The learning rates this scheduler last set, one float per parameter group (a new list)."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's state: every attribute except the optimizer (copies, so later steps don't change it).

        The keys are torch's attribute names, so a torch scheduler's state dict loads here too.
        """
        return {key: copy.deepcopy(value) for key, value in vars(self).items() if key not in self._not_saved}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restores a :meth:`state_dict`; the next :meth:`step` continues the saved schedule.

        Load the optimizer's state dict too (it holds the current rates and ``initial_lr``). A torch scheduler's
        state dict loads too (its flags ``_get_lr_called_within_step`` and ``_is_initial`` are ignored).

        Raises
        ------
        TypeError
            If ``state_dict`` is not a mapping.
        ValueError
            Naming the entry and its value, if an entry is not one this scheduler's :meth:`state_dict` has (so
            no entry can shadow a method such as ``step``), or its value is not of the type and range the
            constructor accepts (one finite rate per parameter group for ``base_lrs`` and ``_last_lr``). Every
            entry is checked before any is set: on error the scheduler is unchanged.
        """
        self._apply_state(self._check_state(state_dict))

    @classmethod
    def _state_check(cls, key: str) -> StateCheck | None:
        for klass in cls.__mro__:
            checks = klass.__dict__.get("_state_checks")
            if checks is not None and key in checks:
                return cast(StateCheck, checks[key])
        return None

    def _check_state(self, state_dict: Any, where: str = "state_dict") -> dict[str, Any]:
        """The entries of ``state_dict`` to set, checked and copied; ``where`` names it in error messages.

        Changes nothing (fusedoptim.load calls it before it loads the optimizer). A key is known if this
        scheduler's own state dict has it; an attribute a subclass outside this module adds, which has no check,
        is copied as it is.
        """
        _check_state_dict(state_dict)
        known = {key for key in vars(self) if key not in self._not_saved}
        state: dict[str, Any] = {}
        for key, value in state_dict.items():
            if key in _IGNORED_ON_LOAD:
                continue
            if key not in known:
                raise ValueError(
                    f"Invalid {where}[{key!r}]: {_short.repr(value)} ({type(self).__name__} has no state named "
                    f"{key!r}; its state is {sorted(known)})"
                )
            check = self._state_check(key)
            try:
                state[key] = copy.deepcopy(value) if check is None else check(self, value)
            except ValueError as e:
                raise ValueError(f"Invalid {where}[{key!r}]: {_short.repr(value)} ({e})") from None
        self._check_state_together({**vars(self), **state}, where)
        return state

    def _check_state_together(self, state: Mapping[str, Any], where: str) -> None:
        """Checks that involve several entries, on the state as it would be after loading."""

    def _apply_state(self, state: Mapping[str, Any]) -> None:
        """Sets the entries :meth:`_check_state` returned; cannot fail."""
        self.__dict__.update(state)


# --- schedules of one factor per epoch -------------------------------------------------------------------------


class _LambdaScheduler(LRScheduler):
    """Shared by LambdaLR and MultiplicativeLR: one function of the epoch per group, saved torch's way."""

    lr_lambdas: list[LambdaT]

    def __init__(self, optimizer: OptimizerLike, lr_lambda: LambdaT | Sequence[LambdaT], last_epoch: int) -> None:
        _check_optimizer(optimizer)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != len(optimizer.param_groups):
                raise ValueError(f"Expected {len(optimizer.param_groups)} lr_lambdas, but got {len(lr_lambda)}")
            lambdas = list(lr_lambda)
        else:
            lambdas = [lr_lambda] * len(optimizer.param_groups)
        for fn in lambdas:
            if not callable(fn):
                raise TypeError(f"lr_lambda should be a function, but got {type(fn).__name__}")
        self.lr_lambdas = lambdas
        super().__init__(optimizer, last_epoch)

    def state_dict(self) -> dict[str, Any]:
        """As :meth:`LRScheduler.state_dict`; ``lr_lambdas`` holds None for a function or lambda (not saved) and
        the attribute dict of a callable object."""
        state = {
            key: copy.deepcopy(value)
            for key, value in vars(self).items()
            if key not in self._not_saved and key != "lr_lambdas"
        }
        state["lr_lambdas"] = _save_callables(self.lr_lambdas)
        return state

    def _check_lambdas(self, value: Any) -> list[dict[str, Any] | None]:
        if not isinstance(value, (list, tuple)) or len(value) != len(self.lr_lambdas):
            raise ValueError(
                f"expected a list of {len(self.lr_lambdas)} entries, one per function: None for a function or "
                "lambda, the attribute dict of a callable object"
            )
        checked = []
        for i, (function, attributes) in enumerate(zip(self.lr_lambdas, value, strict=True)):
            try:
                checked.append(_state_attributes(function, attributes))
            except ValueError as e:
                raise ValueError(f"entry {i}: {e}") from None
        return checked

    _state_checks: ClassVar[Mapping[str, StateCheck]] = {"lr_lambdas": _check_lambdas}

    def _apply_state(self, state: Mapping[str, Any]) -> None:
        """As :meth:`LRScheduler._apply_state`; the functions stay this scheduler's own, and a callable object's
        saved attributes are restored into it."""
        state = dict(state)
        saved = state.pop("lr_lambdas", [None] * len(self.lr_lambdas))
        super()._apply_state(state)
        _restore_callables(self.lr_lambdas, saved)


class LambdaLR(_LambdaScheduler):
    r"""Each group's rate is its initial rate times a function of the epoch.

    .. math:: \eta_t = \eta_\text{initial} \cdot \lambda(t)

    Parameters
    ----------
    optimizer
        The optimizer.
    lr_lambda
        A function of the epoch ``t`` (an int), or a list with one function per parameter group.
    last_epoch
        Index of the last epoch (-1 starts the schedule).

    Notes
    -----
    ``state_dict()`` does not save functions or lambdas, only the attributes of callable objects.

    Examples
    --------
    >>> scheduler = LambdaLR(opt, lr_lambda=lambda epoch: 0.95**epoch)  # doctest: +SKIP
    """

    def __init__(self, optimizer: OptimizerLike, lr_lambda: LambdaT | Sequence[LambdaT], last_epoch: int = -1) -> None:
        super().__init__(optimizer, lr_lambda, last_epoch)

    def get_lr(self) -> list[float]:
        return [base_lr * fn(self.last_epoch) for fn, base_lr in zip(self.lr_lambdas, self.base_lrs, strict=True)]


class MultiplicativeLR(_LambdaScheduler):
    r"""Each group's rate is multiplied at every step by a function of the epoch.

    .. math:: \eta_t = \eta_{t-1} \cdot \lambda(t) \quad (t \ge 1)

    The rate at construction is left as it is.

    Parameters
    ----------
    optimizer
        The optimizer.
    lr_lambda
        A function of the epoch giving the factor, or a list with one function per parameter group.
    last_epoch
        Index of the last epoch (-1 starts the schedule).
    """

    def __init__(self, optimizer: OptimizerLike, lr_lambda: LambdaT | Sequence[LambdaT], last_epoch: int = -1) -> None:
        super().__init__(optimizer, lr_lambda, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return _group_values(self.optimizer, "lr")
        return [
            group["lr"] * fn(self.last_epoch)
            for fn, group in zip(self.lr_lambdas, self.optimizer.param_groups, strict=True)
        ]


class StepLR(LRScheduler):
    r"""Decays each group's rate by ``gamma`` every ``step_size`` epochs.

    .. math::
        \eta_t = \begin{cases} \gamma\,\eta_{t-1} & t > 0,\ t \bmod \text{step\_size} = 0 \\
        \eta_{t-1} & \text{otherwise} \end{cases}
        \qquad \text{(closed form } \eta_t = \eta_\text{initial}\,\gamma^{\lfloor t / \text{step\_size} \rfloor})

    Chainable: the decay multiplies the current rate, so it combines with changes made by other schedulers.

    Parameters
    ----------
    optimizer
        The optimizer.
    step_size
        Period of the decay, in epochs (a positive int).
    gamma
        Multiplicative factor of the decay (>= 0). Default 0.1.
    last_epoch
        Index of the last epoch (-1 starts the schedule).
    """

    _state_checks: ClassVar[Mapping[str, StateCheck]] = {
        "step_size": _state_int(1),
        "gamma": _state_real(0.0),
    }

    def __init__(self, optimizer: OptimizerLike, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        check_int("step_size", step_size, 1)
        check_nonnegative("gamma", "gamma", gamma)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return _group_values(self.optimizer, "lr")
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    r"""Decays each group's rate by ``gamma`` at each milestone epoch.

    .. math:: \eta_t = \gamma^{m(t)}\,\eta_{t-1}

    where :math:`m(t)` is the number of times ``t`` appears in ``milestones`` (a repeated milestone decays
    more than once). Chainable.

    Parameters
    ----------
    optimizer
        The optimizer.
    milestones
        Epoch indices (increasing).
    gamma
        Multiplicative factor of the decay (>= 0). Default 0.1.
    last_epoch
        Index of the last epoch (-1 starts the schedule).
    """

    _state_checks: ClassVar[Mapping[str, StateCheck]] = {
        "milestones": _state_milestone_counts,
        "gamma": _state_real(0.0),
    }

    def __init__(
        self, optimizer: OptimizerLike, milestones: Iterable[int], gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        milestones = list(milestones)
        for i, milestone in enumerate(milestones):
            if isinstance(milestone, bool) or not isinstance(milestone, numbers.Integral):
                raise TypeError(f"milestones[{i}] must be an int, got {type(milestone).__name__}: {milestone!r}")
        check_nonnegative("gamma", "gamma", gamma)
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch not in self.milestones:
            return _group_values(self.optimizer, "lr")
        return [group["lr"] * self.gamma ** self.milestones[self.last_epoch] for group in self.optimizer.param_groups]

    def _closed_form_lr(self) -> list[float]:
        milestones = sorted(self.milestones.elements())
        return [base_lr * self.gamma ** bisect_right(milestones, self.last_epoch) for base_lr in self.base_lrs]


class ConstantLR(LRScheduler):
    r"""Multiplies each group's rate by ``factor`` until epoch ``total_iters``, then restores it.

    .. math::
        \eta_0 = \text{factor}\cdot\eta, \qquad
        \eta_{T} = \eta_{T-1} \cdot \frac{1}{\text{factor}} \ (T = \text{total\_iters}), \qquad
        \eta_t = \eta_{t-1} \text{ otherwise}

    Chainable.

    Parameters
    ----------
    optimizer
        The optimizer.
    factor
        The factor applied until the milestone, in [0, 1]. Default 1/3.
    total_iters
        The number of epochs the factor applies. Default 5.
    last_epoch
        Index of the last epoch (-1 starts the schedule).
    """

    _state_checks: ClassVar[Mapping[str, StateCheck]] = {
        "factor": _state_real(0.0, 1.0),
        "total_iters": _state_int(0),
    }

    def __init__(
        self, optimizer: OptimizerLike, factor: float = 1.0 / 3, total_iters: int = 5, last_epoch: int = -1
    ) -> None:
        check_real("factor", factor)
        if factor > 1.0 or factor < 0:
            raise ValueError(
                f"Invalid factor: {factor} (constant multiplicative factor expected to be between 0 and 1)"
            )
        check_int("total_iters", total_iters, 0)
        self.factor = factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [group["lr"] * self.factor for group in self.optimizer.param_groups]
        if self.last_epoch != self.total_iters:
            return _group_values(self.optimizer, "lr")
        # torch multiplies by the reciprocal (not a division): the same rounding as torch.
        return [group["lr"] * (1.0 / self.factor) for group in self.optimizer.param_groups]

    def _closed_form_lr(self) -> list[float]:
        return [
            base_lr * (self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor))
            for base_lr in self.base_lrs
        ]


class LinearLR(LRScheduler):
    r"""Scales each group's rate by a factor going linearly from ``start_factor`` to ``end_factor`` over
    ``total_iters`` epochs.

    .. math::
        f_t = s + (e - s)\frac{\min(t, T)}{T}, \qquad \eta_t = \eta_\text{initial} f_t

    applied recursively (chainable) as :math:`\eta_0 = s\,\eta` and, for :math:`1 \le t \le T`,

    .. math:: \eta_t = \eta_{t-1}\left(1 + \frac{e - s}{T s + (t - 1)(e - s)}\right)

    Parameters
    ----------
    optimizer
        The optimizer.
    start_factor
        The factor at epoch 0, in (0, 1]. Default 1/3.
    end_factor
        The factor from epoch ``total_iters`` on, in [0, 1]. Default 1.
    total_iters
        The number of epochs the factor changes over. Default 5.
    last_epoch
        Index of the last epoch (-1 starts the schedule).
    """

    _state_checks: ClassVar[Mapping[str, StateCheck]] = {
        "start_factor": _state_real(0.0, 1.0, low_open=True),
        "end_factor": _state_real(0.0, 1.0),
        "total_iters": _state_int(0),
    }

    def __init__(
        self,
        optimizer: OptimizerLike,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        check_real("start_factor", start_factor)
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError(
                f"Invalid start_factor: {start_factor} (starting multiplicative factor expected to be greater than 0 "
                "and less or equal to 1)"
            )
        check_real("end_factor", end_factor)
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError(
                f"Invalid end_factor: {end_factor} (ending multiplicative factor expected to be between 0 and 1)"
            )
        check_int("total_iters", total_iters, 0)
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [group["lr"] * self.start_factor for group in self.optimizer.param_groups]
        if self._is_initial or self.last_epoch > self.total_iters:
            return _group_values(self.optimizer, "lr")
        change = self.end_factor - self.start_factor
        # The ratio f_t / f_{t-1} written over the common denominator T * f_{t-1}.
        ratio = 1.0 + change / (self.total_iters * self.start_factor + (self.last_epoch - 1) * change)
        return [group["lr"] * ratio for group in self.optimizer.param_groups]

    def _closed_form_lr(self) -> list[float]:
        return [
            base_lr
            * (
                self.start_factor
                + (self.end_factor - self.start_factor) * min(self.total_iters, self.last_epoch) / self.total_iters
            )
            for base_lr in self.base_lrs
        ]


class ExponentialLR(LRScheduler):
    r"""Decays each group's rate by ``gamma`` every epoch.

    .. math:: \eta_t = \gamma\,\eta_{t-1} \qquad \text{(closed form } \eta_t = \eta_\text{initial}\gamma^t)

    Chainable; the rate at construction is left as it is.

    Parameters
    ----------
    optimizer
        The optimizer.
    gamma
        Multiplicative factor of the decay (>= 0).
    last_epoch
        Index of the last epoch (-1 starts the schedule).
    """

    _state_checks: ClassVar[Mapping[str, StateCheck]] = {"gamma": _state_real(0.0)}

    def __init__(self, optimizer: OptimizerLike, gamma: float, last_epoch: int = -1) -> None:
        check_nonnegative("gamma", "gamma", gamma)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        # When resuming, the construction-time step must not decay once more.
        if self._is_initial:
            return _group_values(self.optimizer, "lr")
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma**self.last_epoch for base_lr in self.base_lrs]


class PolynomialLR(LRScheduler):
    r"""Decays each group's rate polynomially to 0 over ``total_iters`` epochs.

    .. math:: \eta_t = \eta_\text{initial}\left(1 - \frac{\min(t, T)}{T}\right)^p

    applied recursively (chainable): for :math:`1 \le t \le T`,

    .. math:: \eta_t = \eta_{t-1}\left(\frac{1 - t/T}{1 - (t-1)/T}\right)^p

    Parameters
    ----------
    optimizer
        The optimizer.
    total_iters
        The number of epochs of the decay. Default 5.
    power
        The power :math:`p` of the polynomial (>= 0). Default 1.
    last_epoch
        Index of the last epoch (-1 starts the schedule).
    """

    _state_checks: ClassVar[Mapping[str, StateCheck]] = {
        "total_iters": _state_int(1),
        "power": _state_real(0.0),
    }

    def __init__(
        self, optimizer: OptimizerLike, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1
    ) -> None:
        check_int("total_iters", total_iters, 1)
        check_nonnegative("power", "power", power)
        self.total_iters = total_iters
        self.power = power
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial or self.last_epoch > self.total_iters:
            return _group_values(self.optimizer, "lr")
        decay_factor = (
            (1.0 - self.last_epoch / self.total_iters) / (1.0 - (self.last_epoch - 1) / self.total_iters)
        ) ** self.power
        return [group["lr"] * decay_factor for group in self.optimizer.param_groups]

    def _closed_form_lr(self) -> list[float]:
        return [
            base_lr * (1.0 - min(self.total_iters, self.last_epoch) / self.total_iters) ** self.power
            for base_lr in self.base_lrs
        ]


class CosineAnnealingLR(LRScheduler):
    r"""Anneals each group's rate along a cosine from its initial rate to ``eta_min`` over ``T_max`` epochs.

    The closed form (SGDR, Loshchilov & Hutter 2017, https://arxiv.org/abs/1608.03983, without restarts) is

    .. math::
        \eta_t = \eta_\text{min} + \tfrac12(\eta_\text{initial} - \eta_\text{min})
        \left(1 + \cos\frac{t\pi}{T_\text{max}}\right)

    and, as torch, the rate is updated recursively (chainable):

    .. math::
        \eta_t = \eta_\text{min} + (\eta_{t-1} - \eta_\text{min})
        \frac{1 + \cos(t\pi / T_\text{max})}{1 + \cos((t-1)\pi / T_\text{max})}

    except where the denominator vanishes (:math:`t - 1 - T_\text{max}` a multiple of :math:`2T_\text{max}`),
    where the rate climbs by :math:`(\eta_\text{initial} - \eta_\text{min})(1 - \cos(\pi/T_\text{max}))/2`.
    Past ``T_max`` the rate rises again (the cosine continues); it does not restart.

    Parameters
    ----------
    optimizer
        The optimizer.
    T_max
        Half-period of the cosine, in epochs (a positive int).
    eta_min
        Minimum rate (>= 0). Default 0.
    last_epoch
        Index of the last epoch (-1 starts the schedule).
    """

    _state_checks: ClassVar[Mapping[str, StateCheck]] = {
        "T_max": _state_int(1),
        "eta_min": _state_real(0.0),
    }

    def __init__(self, optimizer: OptimizerLike, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        check_int("T_max", T_max, 1)
        check_nonnegative("eta_min", "eta_min", eta_min)
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return _group_values(self.optimizer, "lr")
        if self._step_count == 1 and self.last_epoch > 0:
            return [
                self.eta_min + (base_lr - self.eta_min) * (1 + math.cos((self.last_epoch) * math.pi / self.T_max)) / 2
                for base_lr in self.base_lrs
            ]
        if (self.last_epoch - 1 - self.T_max) % (2 * self.T_max) == 0:
            return [
                group["lr"] + (base_lr - self.eta_min) * (1 - math.cos(math.pi / self.T_max)) / 2
                for base_lr, group in zip(self.base_lrs, self.optimizer.param_groups, strict=True)
            ]
        return [
            (1 + math.cos(math.pi * self.last_epoch / self.T_max))
            / (1 + math.cos(math.pi * (self.last_epoch - 1) / self.T_max))
            * (group["lr"] - self.eta_min)
            + self.eta_min
            for group in self.optimizer.param_groups
        ]

    def _closed_form_lr(self) -> list[float]:
        return [
            self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
            for base_lr in self.base_lrs
        ]


# --- compositions ----------------------------------------------------------------------------------------------


def _check_composable(kind: str, schedulers: Sequence[Any], optimizer: Any) -> None:
    for i, scheduler in enumerate(schedulers):
        if not hasattr(scheduler, "optimizer"):
            raise TypeError(f"{kind} at index {i} should have `optimizer` as its attribute.")
        if isinstance(scheduler, ReduceLROnPlateau):
            raise ValueError(
                f"{kind} does not support `ReduceLROnPlateau` scheduler as it requires additional kwargs to be "
                f"specified when calling `step`, but got one at index {i} in the given schedulers sequence."
            )
        if scheduler.optimizer is not optimizer:
            raise ValueError(
                f"{kind} expects all schedulers to belong to the same optimizer, but got scheduler "
                f"{type(scheduler).__name__} at index {i} with a different optimizer."
            )


class _CompositeStateMixin:
    """State dicts of a composition: the wrapped schedulers' state dicts under ``_schedulers``."""

    _schedulers: list[LRScheduler]
    _not_saved: ClassVar[frozenset[str]]

    def state_dict(self) -> dict[str, Any]:
        """As :meth:`LRScheduler.state_dict`, with each wrapped scheduler's state dict in ``_schedulers``."""
        state = {
            key: copy.deepcopy(value)
            for key, value in vars(self).items()
            if key not in self._not_saved and key != "_schedulers"
        }
        state["_schedulers"] = [scheduler.state_dict() for scheduler in self._schedulers]
        return state

    def _check_state(self, state_dict: Any, where: str = "state_dict") -> dict[str, Any]:
        """As :meth:`LRScheduler._check_state`, the wrapped schedulers' state dicts (all required) included."""
        _check_state_dict(state_dict)
        saved = state_dict.get("_schedulers")
        if not isinstance(saved, (list, tuple)) or len(saved) != len(self._schedulers):
            raise ValueError(
                f"Invalid {where}['_schedulers']: {_short.repr(saved)} (expected a list of {len(self._schedulers)} "
                "state dicts, one per wrapped scheduler)"
            )
        inner = [
            # A scheduler from outside this module checks its state only when it loads it (after ours are set).
            scheduler._check_state(state, f"{where}['_schedulers'][{i}]")
            if isinstance(scheduler, LRScheduler)
            else copy.deepcopy(state)
            for i, (scheduler, state) in enumerate(zip(self._schedulers, saved, strict=True))
        ]
        own = {key: value for key, value in state_dict.items() if key != "_schedulers"}
        state = LRScheduler._check_state(cast(LRScheduler, self), own, where)
        state["_schedulers"] = inner
        return state

    def _apply_state(self, state: Mapping[str, Any]) -> None:
        state = dict(state)
        inner = state.pop("_schedulers")
        LRScheduler._apply_state(cast(LRScheduler, self), state)
        for scheduler, scheduler_state in zip(self._schedulers, inner, strict=True):
            if isinstance(scheduler, LRScheduler):
                scheduler._apply_state(scheduler_state)
            else:
                scheduler.load_state_dict(scheduler_state)


class SequentialLR(_CompositeStateMixin, LRScheduler):
    r"""Runs schedulers one after another, switching at the milestone epochs.

    Scheduler ``i`` drives the rates for epochs in :math:`[m_{i-1}, m_i)` (with :math:`m_{-1} = 0`). At construction
    the groups' rates are reset to ``initial_lr``, the construction-time steps of all wrapped schedulers are undone
    and the first scheduler takes its initial step; at milestone :math:`m_{i-1}` scheduler ``i`` starts at its
    epoch 0, in its closed form where it has one (torch's ``_update_lr(0)``).

    Parameters
    ----------
    optimizer
        The optimizer (all schedulers must wrap this same object).
    schedulers
        The schedulers, in order; not :class:`ReduceLROnPlateau`.
    milestones
        The epochs at which the next scheduler takes over; one fewer than ``schedulers``.
    last_epoch
        Index of the last epoch (-1 starts the schedule).

    Examples
    --------
    Linear warm-up for 5 epochs, then cosine annealing:

    >>> warmup = LinearLR(opt, start_factor=0.1, total_iters=5)  # doctest: +SKIP
    >>> cosine = CosineAnnealingLR(opt, T_max=95)  # doctest: +SKIP
    >>> scheduler = SequentialLR(opt, [warmup, cosine], milestones=[5])  # doctest: +SKIP
    """

    _state_checks: ClassVar[Mapping[str, StateCheck]] = {"_milestones": _state_int_list}

    def __init__(
        self,
        optimizer: OptimizerLike,
        schedulers: Sequence[LRScheduler],
        milestones: Sequence[int],
        last_epoch: int = -1,
    ) -> None:
        _check_optimizer(optimizer)
        _check_last_epoch(last_epoch)
        if len(schedulers) < 1:
            raise ValueError("SequentialLR expects at least one scheduler, but got no scheduler.")
        _check_composable("SequentialLR", schedulers, optimizer)
        milestones = list(milestones)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                "Sequential Schedulers expects number of schedulers provided to be one more than the number of "
                f"milestone points, but got number of schedulers {len(schedulers)} and the number of milestones to "
                f"be equal to {len(milestones)}"
            )
        for i, milestone in enumerate(milestones):
            if isinstance(milestone, bool) or not isinstance(milestone, numbers.Integral):
                raise TypeError(f"milestones[{i}] must be an int, got {type(milestone).__name__}: {milestone!r}")
        self._schedulers = list(schedulers)
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer

        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        self._undo_initial_steps(self)
        first = self._schedulers[bisect_right(self._milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    @staticmethod
    def _undo_initial_steps(scheduler: Any) -> None:
        """Moves every wrapped scheduler (recursively through compositions) back one epoch."""
        if hasattr(scheduler, "_schedulers"):
            for inner in scheduler._schedulers:
                SequentialLR._undo_initial_steps(inner)
        elif hasattr(scheduler, "last_epoch"):
            scheduler.last_epoch -= 1

    def step(self) -> None:  # type: ignore[override]
        """Steps the scheduler whose interval the next epoch falls in (starting it at a milestone)."""
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()


class ChainedScheduler(_CompositeStateMixin, LRScheduler):
    r"""Steps several chainable schedulers together: one :meth:`step` steps each of them, in order.

    With chainable schedulers the effects multiply, e.g. ``ConstantLR`` then ``ExponentialLR`` gives
    :math:`\eta_t = \eta\,\gamma^t \cdot \text{factor}` for :math:`t < T`.

    Parameters
    ----------
    schedulers
        The schedulers; not :class:`ReduceLROnPlateau`; all on the same optimizer.
    optimizer
        The optimizer (default: the first scheduler's).
    """

    def __init__(self, schedulers: Sequence[LRScheduler], optimizer: OptimizerLike | None = None) -> None:
        if len(schedulers) < 1:
            raise ValueError("ChainedScheduler expects at least one scheduler to be chained, but got no scheduler.")
        if optimizer is None:
            if not hasattr(schedulers[0], "optimizer"):
                raise TypeError("ChainedScheduler at index 0 should have `optimizer` as its attribute.")
            optimizer = schedulers[0].optimizer
        _check_optimizer(optimizer)
        _check_composable("ChainedScheduler", schedulers, optimizer)
        self._schedulers = list(schedulers)
        self.optimizer = optimizer
        self._last_lr = _current_lrs(self.optimizer)

    def step(self) -> None:  # type: ignore[override]
        """Steps every wrapped scheduler once, in order."""
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = _current_lrs(self.optimizer)


# --- a schedule driven by a metric -----------------------------------------------------------------------------


class ReduceLROnPlateau(LRScheduler):
    r"""Reduces the rates by ``factor`` when a metric has stopped improving for more than ``patience`` epochs.

    A value :math:`a` improves on the best so far, :math:`b`, when (``mode``, ``threshold_mode``):

    ========== ========================== ====================
    mode       ``rel``                    ``abs``
    ========== ========================== ====================
    ``min``    :math:`a < b(1 - \theta)`  :math:`a < b - \theta`
    ``max``    :math:`a > b(1 + \theta)`  :math:`a > b + \theta`
    ========== ========================== ====================

    After ``patience + 1`` epochs in a row without improvement each rate becomes
    :math:`\max(\eta\cdot\text{factor}, \text{min\_lr})` (unchanged when that lowers it by ``eps`` or less), then
    ``cooldown`` epochs pass during which bad epochs are not counted. The rates at construction are left as they
    are, and ``initial_lr`` is not written (as torch).

    Parameters
    ----------
    optimizer
        The optimizer.
    mode
        ``"min"`` (default: the metric should decrease) or ``"max"``.
    factor
        Factor of the reduction, in [0, 1). Default 0.1.
    patience
        Epochs without improvement tolerated before a reduction. Default 10.
    threshold
        :math:`\theta`, the margin a new value must beat the best by. Default 1e-4.
    threshold_mode
        ``"rel"`` (default) or ``"abs"``.
    cooldown
        Epochs after a reduction before bad epochs count again. Default 0.
    min_lr
        Lower bound of the rates: one value, or a list with one per group. Default 0.
    eps
        Reductions smaller than this are skipped. Default 1e-8.

    Examples
    --------
    >>> scheduler = ReduceLROnPlateau(opt, mode="min", patience=3)  # doctest: +SKIP
    >>> for epoch in range(100):  # doctest: +SKIP
    ...     train_one_epoch()
    ...     scheduler.step(validation_loss())
    """

    _state_checks: ClassVar[Mapping[str, StateCheck]] = {
        "factor": _state_real(0.0, 1.0, high_open=True),
        "min_lrs": _RATES,
        "default_min_lr": _state_optional(_state_real(0.0)),
        "patience": _state_int(0),
        "cooldown": _state_int(0),
        "cooldown_counter": _state_int(0),
        "num_bad_epochs": _state_int(0),
        "eps": _state_real(0.0),
        "best": _state_real(infinite=True),  # starts at +-inf (mode_worse)
        "mode": _state_choice("min", "max"),
        "mode_worse": _state_real(infinite=True),  # recomputed from mode on load, as torch does
        "threshold": _state_real(0.0),
        "threshold_mode": _state_choice("rel", "abs"),
    }

    def __init__(
        self,
        optimizer: OptimizerLike,
        mode: Literal["min", "max"] = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: Literal["rel", "abs"] = "rel",
        cooldown: int = 0,
        min_lr: Sequence[float] | float = 0,
        eps: float = 1e-8,
    ) -> None:
        check_real("factor", factor)
        if not 0.0 <= factor < 1.0:
            raise ValueError(f"Invalid factor: {factor} (factor should be >= 0 and < 1.0)")
        self.factor = factor
        _check_optimizer(optimizer)
        self.optimizer = optimizer

        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != len(optimizer.param_groups):
                raise ValueError(f"expected {len(optimizer.param_groups)} min_lrs, got {len(min_lr)}")
            for i, value in enumerate(min_lr):
                check_nonnegative(f"min_lr[{i}]", f"min_lr[{i}]", value)
            self.default_min_lr: float | None = None
            self.min_lrs = list(min_lr)
        else:
            check_nonnegative("min_lr", "min_lr", min_lr)
            self.default_min_lr = cast(float, min_lr)
            self.min_lrs = [self.default_min_lr] * len(optimizer.param_groups)

        check_int("patience", patience, 0)
        check_int("cooldown", cooldown, 0)
        check_nonnegative("eps", "eps", eps)
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = _current_lrs(self.optimizer)
        self._init_is_better(mode=mode, threshold=threshold, threshold_mode=threshold_mode)
        self._reset()

    def _reset(self) -> None:
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def step(self, metrics: SupportsFloat, epoch: int | None = None) -> None:  # type: ignore[override]
        """Records this epoch's metric and reduces the rates if it has plateaued.

        Parameters
        ----------
        metrics
            The monitored value (anything ``float()`` accepts, e.g. a 0-d array).
        epoch
            Optional epoch number to record instead of ``last_epoch + 1``.
        """
        current = float(metrics)
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch

        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1

        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during the cooldown do not count

        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0

        self._last_lr = _current_lrs(self.optimizer)

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(
                    f"The number of param groups in the `optimizer` ({len(groups)}) differs from when "
                    f"`ReduceLROnPlateau` was initialized ({len(self.min_lrs)}), usually due to a new param group "
                    "being added to the optimizer. Please modify the `min_lrs` field to match the length of the "
                    "`optimizer` param groups."
                )
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs, strict=True):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = float(new_lr)

    @property
    def in_cooldown(self) -> bool:
        """Whether the scheduler is in the cooldown after a reduction."""
        return self.cooldown_counter > 0

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min" and self.threshold_mode == "abs":
            return a < best - self.threshold
        if self.mode == "max" and self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def _init_is_better(self, mode: str, threshold: float, threshold_mode: str) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode {mode!r} is unknown! (expected 'min' or 'max')")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold mode {threshold_mode!r} is unknown! (expected 'rel' or 'abs')")
        check_nonnegative("threshold", "threshold", threshold)
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode

    def _apply_state(self, state: Mapping[str, Any]) -> None:
        super()._apply_state(state)
        self._init_is_better(mode=self.mode, threshold=self.threshold, threshold_mode=self.threshold_mode)


# --- per-batch cycles ------------------------------------------------------------------------------------------


def _cycled_momentum(
    optimizer: OptimizerLike, base_momentum: Any, max_momentum: Any
) -> tuple[bool, list[float], list[float]]:
    """Checks the optimizer has a momentum to cycle; returns whether it is beta1, and the per-group bounds."""
    use_beta1 = _momentum_key(optimizer) == "betas"
    base_momentums = _per_group("base_momentum", optimizer, base_momentum)
    max_momentums = _per_group("max_momentum", optimizer, max_momentum)
    for name, values in (("base_momentum", base_momentums), ("max_momentum", max_momentums)):
        for value in values:
            check_real(name, value)
    return use_beta1, base_momentums, max_momentums


def _start_cycled_momentum(
    optimizer: OptimizerLike, use_beta1: bool, base_momentums: list[float], max_momentums: list[float]
) -> None:
    """A new cycle starts at ``max_momentum``; the groups record both bounds, as in torch."""
    for max_m, base_m, group in zip(max_momentums, base_momentums, optimizer.param_groups, strict=True):
        _set_momentum(group, use_beta1, max_m)
        group["max_momentum"] = max_m
        group["base_momentum"] = base_m


class CyclicLR(LRScheduler):
    r"""Cycles each group's rate between ``base_lr`` and ``max_lr`` (cyclical learning rates, Smith 2017,
    https://arxiv.org/abs/1506.01186); meant to be stepped after every batch.

    With :math:`S = \text{step\_size\_up} + \text{step\_size\_down}`, :math:`r = \text{step\_size\_up}/S` and
    :math:`t` the number of steps so far,

    .. math::
        c = \lfloor 1 + t/S \rfloor, \quad x = 1 + t/S - c, \quad
        h = \begin{cases} x / r & x \le r \\ (x - 1)/(r - 1) & x > r \end{cases}, \quad
        \eta_t = \eta_\text{base} + (\eta_\text{max} - \eta_\text{base})\,h\,s

    where the amplitude scale :math:`s` is ``scale_fn(c)`` (``scale_mode="cycle"``) or ``scale_fn(t)``
    (``"iterations"``); the built-in policies are ``"triangular"`` (:math:`s = 1`), ``"triangular2"``
    (:math:`s = 2^{1-c}`, halving every cycle) and ``"exp_range"`` (:math:`s = \gamma^t`).

    With ``cycle_momentum`` the momentum (``momentum``, or beta1 of ``betas``) cycles inversely,
    :math:`\mu_t = \mu_\text{max} - (\mu_\text{max} - \mu_\text{base})\,h\,s`; the optimizer's groups must have a
    ``momentum`` or ``betas``.

    Parameters
    ----------
    optimizer
        The optimizer. At construction (``last_epoch=-1``) its rates are set to ``base_lr``.
    base_lr, max_lr
        Lower and upper rate of the cycle: one value, or a list with one per group.
    step_size_up
        Steps in the increasing half of a cycle (> 0). Default 2000.
    step_size_down
        Steps in the decreasing half (>= 0); ``None`` (default) means ``step_size_up``.
    mode
        ``"triangular"`` (default), ``"triangular2"`` or ``"exp_range"``; ignored when ``scale_fn`` is given.
    gamma
        :math:`\gamma` of ``"exp_range"`` (>= 0). Default 1.
    scale_fn
        A custom amplitude scale, with :math:`0 \le s(x) \le 1`; it replaces ``mode``. Not saved by
        ``state_dict()`` unless it is a callable object (then its attributes are).
    scale_mode
        ``"cycle"`` (default) or ``"iterations"``: the argument of ``scale_fn`` (the built-in modes set it).
    cycle_momentum
        Whether to cycle the momentum too. Default True.
    base_momentum, max_momentum
        Momentum bounds (one value, or one per group). Default 0.8 and 0.9.
    last_epoch
        Index of the last batch (-1 starts the schedule).
    """

    def __init__(
        self,
        optimizer: OptimizerLike,
        base_lr: float | Sequence[float],
        max_lr: float | Sequence[float],
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: Literal["triangular", "triangular2", "exp_range"] = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[float], float] | None = None,
        scale_mode: Literal["cycle", "iterations"] = "cycle",
        cycle_momentum: bool = True,
        base_momentum: float | Sequence[float] = 0.8,
        max_momentum: float | Sequence[float] = 0.9,
        last_epoch: int = -1,
    ) -> None:
        _check_optimizer(optimizer)
        _check_last_epoch(last_epoch)
        base_lrs = _per_group("base_lr", optimizer, base_lr)
        max_lrs = _per_group("max_lr", optimizer, max_lr)
        for name, values in (("base_lr", base_lrs), ("max_lr", max_lrs)):
            for value in values:
                check_nonnegative(name, name, value)
        check_positive("step_size_up", "step_size_up", step_size_up)
        if step_size_down is not None:
            check_nonnegative("step_size_down", "step_size_down", step_size_down)
        if mode not in ("triangular", "triangular2", "exp_range") and scale_fn is None:
            raise ValueError(
                f"Invalid mode: {mode!r} (mode is invalid and scale_fn is None; expected 'triangular', "
                "'triangular2' or 'exp_range')"
            )
        if scale_fn is not None and not callable(scale_fn):
            raise TypeError(f"scale_fn should be a function, but got {type(scale_fn).__name__}")
        if scale_mode not in ("cycle", "iterations"):
            raise ValueError(f"Invalid scale_mode: {scale_mode!r} (expected 'cycle' or 'iterations')")
        check_nonnegative("gamma", "gamma", gamma)
        if not isinstance(cycle_momentum, bool):
            raise TypeError(f"cycle_momentum must be a bool, got {type(cycle_momentum).__name__}: {cycle_momentum!r}")
        if cycle_momentum:
            self.use_beta1, self.base_momentums, self.max_momentums = _cycled_momentum(
                optimizer, base_momentum, max_momentum
            )

        # Everything is checked: from here on the groups change.
        self.optimizer = optimizer
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups, strict=True):
                group["lr"] = float(lr)
        self.max_lrs = max_lrs
        up = float(step_size_up)
        down = float(step_size_down) if step_size_down is not None else up
        self.total_size = up + down
        self.step_ratio = up / self.total_size
        self.mode = mode
        self.gamma = gamma
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode
        self._init_scale_mode()
        self.cycle_momentum = cycle_momentum
        if cycle_momentum and last_epoch == -1:
            _start_cycled_momentum(optimizer, self.use_beta1, self.base_momentums, self.max_momentums)

        super().__init__(optimizer, last_epoch)
        # As torch: the construction-time step used the groups' initial_lr as base rates, the later ones base_lr.
        self.base_lrs = base_lrs

    def _init_scale_mode(self) -> None:
        # The built-in policies fix their argument: the cycle number, or the step number for "exp_range".
        if self._scale_fn_custom is None:
            self.scale_mode = "iterations" if self.mode == "exp_range" else "cycle"

    def scale_fn(self, x: float) -> float:
        """The amplitude scale :math:`s(x)` of the current policy."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return float(1 / (2.0 ** (x - 1)))
        return float(self.gamma**x)

    def get_lr(self) -> list[float]:
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        if x <= self.step_ratio:
            scale_factor = x / self.step_ratio
        else:
            scale_factor = (x - 1) / (self.step_ratio - 1)
        scale_x = cycle if self.scale_mode == "cycle" else self.last_epoch

        # scale_fn is called once per value, as torch does, in case a custom one keeps state.
        lrs = []
        for base_lr, max_lr in zip(self.base_lrs, self.max_lrs, strict=True):
            base_height = (max_lr - base_lr) * scale_factor
            lrs.append(base_lr + base_height * self.scale_fn(scale_x))

        if self.cycle_momentum:
            for group, base_m, max_m in zip(
                self.optimizer.param_groups, self.base_momentums, self.max_momentums, strict=True
            ):
                base_height = (max_m - base_m) * scale_factor
                _set_momentum(group, self.use_beta1, max_m - base_height * self.scale_fn(scale_x))
        return lrs

    def state_dict(self) -> dict[str, Any]:
        """As :meth:`LRScheduler.state_dict`; ``_scale_fn_custom`` is None for a function or lambda (not saved)
        and the attribute dict of a callable object."""
        state = {
            key: copy.deepcopy(value)
            for key, value in vars(self).items()
            if key not in self._not_saved and key != "_scale_fn_custom"
        }
        state["_scale_fn_custom"] = _save_callables([self._scale_fn_custom])[0]
        return state

    def _check_mode(self, value: Any) -> str:
        # Any name goes with a custom scale_fn (which replaces the mode), as in the constructor.
        if not isinstance(value, str) or (
            self._scale_fn_custom is None and value not in ("triangular", "triangular2", "exp_range")
        ):
            raise ValueError("expected 'triangular', 'triangular2' or 'exp_range'")
        return value

    def _check_scale_fn(self, value: Any) -> dict[str, Any] | None:
        return _state_attributes(self._scale_fn_custom, value)

    _state_checks: ClassVar[Mapping[str, StateCheck]] = {
        "max_lrs": _RATES,
        "total_size": _state_real(0.0, low_open=True),
        "step_ratio": _state_real(0.0, 1.0, low_open=True),
        "mode": _check_mode,
        "gamma": _state_real(0.0),
        "_scale_fn_custom": _check_scale_fn,
        "scale_mode": _state_choice("cycle", "iterations"),
        "cycle_momentum": _state_bool,
        "use_beta1": _state_bool,
        "base_momentums": _MOMENTA,
        "max_momentums": _MOMENTA,
    }

    def _check_state_together(self, state: Mapping[str, Any], where: str) -> None:
        _check_momentum_state(self, state, where, ("base_momentums", "max_momentums"))

    def _apply_state(self, state: Mapping[str, Any]) -> None:
        """As :meth:`LRScheduler._apply_state`; ``scale_fn`` stays this scheduler's own, and a callable object's
        saved attributes are restored into it."""
        state = dict(state)
        saved = state.pop("_scale_fn_custom", None)
        super()._apply_state(state)
        if saved is not None:
            _restore_callables([self._scale_fn_custom], [saved])
        self._init_scale_mode()


class CosineAnnealingWarmRestarts(LRScheduler):
    r"""Cosine annealing with warm restarts (SGDR, Loshchilov & Hutter 2017, https://arxiv.org/abs/1608.03983).

    .. math::
        \eta_t = \eta_\text{min} + \tfrac12(\eta_\text{initial} - \eta_\text{min})
        \left(1 + \cos\frac{T_\text{cur}\,\pi}{T_i}\right)

    :math:`T_\text{cur}` counts the epochs since the last restart and :math:`T_i` is the length of the current
    run: :math:`T_0`, then multiplied by :math:`T_\text{mult}` at each restart. ``step(epoch)`` accepts fractional
    epochs (e.g. ``epoch + batch / batches_per_epoch``, stepping every batch) and computes :math:`T_\text{cur}`
    and :math:`T_i` in closed form:

    .. math::
        n = \left\lfloor \log_{T_\text{mult}}\!\left(\frac{t}{T_0}(T_\text{mult} - 1) + 1\right) \right\rfloor,
        \quad T_\text{cur} = t - T_0 \frac{T_\text{mult}^n - 1}{T_\text{mult} - 1}, \quad
        T_i = T_0 T_\text{mult}^n

    (:math:`T_\text{cur} = t \bmod T_0` when :math:`T_\text{mult} = 1`).

    Parameters
    ----------
    optimizer
        The optimizer.
    T_0
        Epochs until the first restart (a positive int).
    T_mult
        Factor by which :math:`T_i` grows after a restart (an int >= 1). Default 1.
    eta_min
        Minimum rate (>= 0). Default 0.
    last_epoch
        Index of the last epoch (-1 starts the schedule).

    Examples
    --------
    >>> scheduler = CosineAnnealingWarmRestarts(opt, T_0=10, T_mult=2)  # doctest: +SKIP
    >>> for epoch in range(70):  # doctest: +SKIP
    ...     for i in range(batches):
    ...         opt.step(grads(i))
    ...         scheduler.step(epoch + i / batches)
    """

    _state_checks: ClassVar[Mapping[str, StateCheck]] = {
        "T_0": _state_int(1),
        "T_i": _state_int(1),
        "T_mult": _state_int(1),
        "eta_min": _state_real(0.0),
        "T_cur": _state_real(),
    }

    def __init__(
        self, optimizer: OptimizerLike, T_0: int, T_mult: int = 1, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        if isinstance(T_0, bool) or not isinstance(T_0, int) or T_0 <= 0:
            raise ValueError(f"Expected positive integer T_0, but got {T_0}")
        if isinstance(T_mult, bool) or not isinstance(T_mult, int) or T_mult < 1:
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult}")
        if isinstance(eta_min, bool) or not isinstance(eta_min, (float, int)):
            raise ValueError(f"Expected float or int eta_min, but got {eta_min} of type {type(eta_min)}")
        check_nonnegative("eta_min", "eta_min", eta_min)
        _check_last_epoch(last_epoch)
        self.T_0 = T_0
        self.T_i = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_cur: float = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [
            self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
            for base_lr in self.base_lrs
        ]

    def step(self, epoch: float | None = None) -> None:
        """Advances by one epoch, or jumps to ``epoch`` (which may be fractional, to step every batch).

        Calls with and without ``epoch`` can be interleaved. Like torch, this does not count ``_step_count``.
        """
        if epoch is None and self.last_epoch < 0:
            epoch = 0

        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            check_real("epoch", epoch)
            if epoch < 0:
                raise ValueError(f"Expected non-negative epoch, but got {epoch}")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    n = int(math.log((epoch / self.T_0 * (self.T_mult - 1) + 1), self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult ** (n)
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        self._write_lrs(self.get_lr())


class OneCycleLR(LRScheduler):
    r"""The 1cycle policy (Smith & Topin 2018, https://arxiv.org/abs/1708.07120); meant to be stepped after
    every batch, ``total_steps`` times in all.

    The rate goes from :math:`\eta_\text{max}/\text{div\_factor}` (``initial_lr``) up to ``max_lr`` over the first
    ``pct_start`` of the steps, then down to :math:`\text{initial\_lr}/\text{final\_div\_factor}` (``min_lr``).
    Within a phase from step :math:`a` to :math:`b`, from value :math:`u` to :math:`v`, with
    :math:`p = (t - a)/(b - a)`:

    .. math::
        \text{cos:}\ \ v + \frac{u - v}{2}(1 + \cos \pi p), \qquad \text{linear:}\ \ (v - u)\,p + u

    Phases end at :math:`\text{pct\_start}\cdot N - 1` and :math:`N - 1`; with ``three_phase`` they end at
    :math:`\text{pct\_start}\cdot N - 1`, :math:`2\,\text{pct\_start}\cdot N - 2` and :math:`N - 1` (up, back down
    to ``initial_lr``, then down to ``min_lr``). With ``cycle_momentum`` the momentum (``momentum``, or beta1 of
    ``betas``) moves inversely between ``max_momentum`` and ``base_momentum``. The groups get ``initial_lr``,
    ``max_lr`` and ``min_lr`` (and ``max_momentum``, ``base_momentum``) keys, as in torch.

    Parameters
    ----------
    optimizer
        The optimizer.
    max_lr
        Peak rate: one value, or a list with one per group.
    total_steps
        Steps in the cycle; or give ``epochs`` and ``steps_per_epoch`` (``total_steps`` takes precedence).
    epochs, steps_per_epoch
        The cycle has ``epochs * steps_per_epoch`` steps when ``total_steps`` is None.
    pct_start
        Fraction of the cycle spent increasing the rate (a float in [0, 1]). Default 0.3.
    anneal_strategy
        ``"cos"`` (default) or ``"linear"``.
    cycle_momentum
        Whether to cycle the momentum. Default True.
    base_momentum, max_momentum
        Momentum bounds (one value, or one per group). Default 0.85 and 0.95.
    div_factor
        ``initial_lr = max_lr / div_factor`` (> 0). Default 25.
    final_div_factor
        ``min_lr = initial_lr / final_div_factor`` (> 0). Default 1e4.
    three_phase
        Use the three-phase schedule of the paper instead of fastai's two phases. Default False.
    last_epoch
        Index of the last batch (-1 starts the schedule).

    Raises
    ------
    ValueError
        From :meth:`step` once it is called more than ``total_steps`` times.
    """

    _state_checks: ClassVar[Mapping[str, StateCheck]] = {
        "total_steps": _state_int(1),
        "_anneal_func_type": _state_choice("cos", "linear"),
        "_schedule_phases": _state_phases,
        "cycle_momentum": _state_bool,
        "use_beta1": _state_bool,
    }

    def _check_state_together(self, state: Mapping[str, Any], where: str) -> None:
        # The momentum bounds live in the optimizer's groups (max_momentum, base_momentum), not here.
        _check_momentum_state(self, state, where, ())

    def __init__(
        self,
        optimizer: OptimizerLike,
        max_lr: float | Sequence[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: Literal["cos", "linear"] = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | Sequence[float] = 0.85,
        max_momentum: float | Sequence[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        _check_optimizer(optimizer)
        _check_last_epoch(last_epoch)
        self.optimizer = optimizer

        def positive_int(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and value > 0

        if total_steps is not None:
            if not positive_int(total_steps):
                raise ValueError(f"Expected positive integer total_steps, but got {total_steps}")
            self.total_steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            if not positive_int(epochs):
                raise ValueError(f"Expected positive integer epochs, but got {epochs}")
            if not positive_int(steps_per_epoch):
                raise ValueError(f"Expected positive integer steps_per_epoch, but got {steps_per_epoch}")
            self.total_steps = epochs * steps_per_epoch
        else:
            raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")

        if not isinstance(pct_start, float) or pct_start < 0 or pct_start > 1:
            raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
        self._anneal_func_type = anneal_strategy
        check_positive("div_factor", "div_factor", div_factor)
        check_positive("final_div_factor", "final_div_factor", final_div_factor)
        if not isinstance(three_phase, bool):
            raise TypeError(f"three_phase must be a bool, got {type(three_phase).__name__}: {three_phase!r}")

        # Each phase: the step it ends at, and the group keys holding its start and end values.
        up_end = float(pct_start * self.total_steps) - 1
        if three_phase:
            self._schedule_phases = [
                _phase(up_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                _phase(
                    float(2 * pct_start * self.total_steps) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"
                ),
                _phase(self.total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            self._schedule_phases = [
                _phase(up_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                _phase(self.total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]

        max_lrs = _per_group("max_lr", optimizer, max_lr)
        for value in max_lrs:
            check_nonnegative("max_lr", "max_lr", value)
        if not isinstance(cycle_momentum, bool):
            raise TypeError(f"cycle_momentum must be a bool, got {type(cycle_momentum).__name__}: {cycle_momentum!r}")
        if cycle_momentum:
            self.use_beta1, base_momentums, max_momentums = _cycled_momentum(optimizer, base_momentum, max_momentum)

        # Everything is checked: from here on the groups change.
        if last_epoch == -1:
            for group, group_max_lr in zip(optimizer.param_groups, max_lrs, strict=True):
                group["initial_lr"] = group_max_lr / div_factor
                group["max_lr"] = group_max_lr
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum and last_epoch == -1:
            _start_cycled_momentum(optimizer, self.use_beta1, base_momentums, max_momentums)

        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _anneal(strategy: str, start: float, end: float, pct: float) -> float:
        if strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        step_num = self.last_epoch
        if step_num > self.total_steps:
            raise ValueError(
                f"Tried to step {step_num} times. The specified number of total steps is {self.total_steps}"
            )
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            last = len(self._schedule_phases) - 1
            for i, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if step_num <= end_step or i == last:
                    pct = (step_num - start_step) / (end_step - start_step)
                    strategy = self._anneal_func_type
                    lrs.append(self._anneal(strategy, group[phase["start_lr"]], group[phase["end_lr"]], pct))
                    if self.cycle_momentum:
                        momentum = self._anneal(
                            strategy, group[phase["start_momentum"]], group[phase["end_momentum"]], pct
                        )
                        _set_momentum(group, self.use_beta1, momentum)
                    break
                start_step = phase["end_step"]
        return lrs


def _phase(end_step: float, start_lr: str, end_lr: str, start_momentum: str, end_momentum: str) -> dict[str, Any]:
    return {
        "end_step": end_step,
        "start_lr": start_lr,
        "end_lr": end_lr,
        "start_momentum": start_momentum,
        "end_momentum": end_momentum,
    }


# --- stochastic weight averaging -------------------------------------------------------------------------------


class SWALR(LRScheduler):
    r"""Anneals each group's rate to a fixed ``swa_lr`` over ``anneal_epochs`` epochs, then holds it there
    (torch.optim.swa_utils.SWALR); the schedule of stochastic weight averaging (Izmailov et al. 2018,
    https://arxiv.org/abs/1803.05407), used with :class:`fusedoptim.AveragedParams`.

    With :math:`T` = ``anneal_epochs``, :math:`s` the number of :meth:`step` calls so far (:math:`\max(s, 1)` when
    :math:`T = 0`) and the annealing function :math:`a(x) = x` (``"linear"``) or :math:`(1 - \cos \pi x)/2`
    (``"cos"``),

    .. math::
        \alpha_s = a\!\left(\min\!\left(1, \max\!\left(0, \frac{s}{\max(1, T)}\right)\right)\right), \qquad
        \eta_s = \alpha_s\,\eta_\text{swa} + (1 - \alpha_s)\,\eta_\text{start}

    applied recursively (chainable), as torch: :math:`\eta_\text{start}` is recovered from the group's current
    rate and the previous step's :math:`\alpha_{s-1}` as :math:`(\eta - \alpha_{s-1}\eta_\text{swa}) /
    (1 - \alpha_{s-1})` (:math:`\eta_\text{swa}` once :math:`\alpha_{s-1} = 1`). With the rate left alone between
    steps, the rate goes from the one at construction to ``swa_lr`` in :math:`T` steps and stays there; with
    :math:`T = 0` it is ``swa_lr`` from construction on. The schedule follows the step count, also for
    ``step(epoch)`` (torch's deprecated form: SWALR has no closed form).

    Parameters
    ----------
    optimizer
        The optimizer. Each group gets an ``swa_lr`` key (as in torch), which the schedule reads.
    swa_lr
        The rate to anneal to (>= 0): one value, or a list with one per group.
    anneal_epochs
        Steps of the annealing phase (an int >= 0). Default 10.
    anneal_strategy
        ``"cos"`` (default) or ``"linear"``.
    last_epoch
        Index of the last epoch (-1 starts the schedule).

    Examples
    --------
    Train with a cosine schedule, then average the weights of the last epochs at a constant rate:

    >>> schedule = CosineAnnealingLR(opt, T_max=100)  # doctest: +SKIP
    >>> swa_schedule = SWALR(opt, swa_lr=0.05, anneal_epochs=5)  # doctest: +SKIP
    >>> averaged = fusedoptim.AveragedParams(params)  # doctest: +SKIP
    >>> for epoch in range(100):  # doctest: +SKIP
    ...     train_one_epoch()
    ...     if epoch >= 75:
    ...         averaged.update()
    ...         swa_schedule.step()
    ...     else:
    ...         schedule.step()
    """

    _state_checks: ClassVar[Mapping[str, StateCheck]] = {
        "anneal_epochs": _state_int(0),
        "_anneal_strategy": _state_choice("cos", "linear"),
    }

    anneal_epochs: int
    _anneal_strategy: str

    def __init__(
        self,
        optimizer: OptimizerLike,
        swa_lr: float | Sequence[float],
        anneal_epochs: int = 10,
        anneal_strategy: Literal["cos", "linear"] = "cos",
        last_epoch: int = -1,
    ) -> None:
        _check_optimizer(optimizer)
        _check_last_epoch(last_epoch)
        # Stored as floats: a NumPy float32 swa_lr would otherwise make the schedule's arithmetic float32.
        swa_lrs = [check_nonnegative("swa_lr", "swa_lr", value) for value in _per_group("swa_lr", optimizer, swa_lr)]
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
        if isinstance(anneal_epochs, bool) or not isinstance(anneal_epochs, numbers.Integral) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")

        # Everything is checked: from here on the groups change.
        for value, group in zip(swa_lrs, optimizer.param_groups, strict=True):
            group["swa_lr"] = value
        self._anneal_strategy = anneal_strategy
        self.anneal_epochs = int(anneal_epochs)
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _linear_anneal(t: float) -> float:
        return t

    @staticmethod
    def _cosine_anneal(t: float) -> float:
        return (1 - math.cos(math.pi * t)) / 2

    def anneal_func(self, t: float) -> float:
        """The annealing function :math:`a(t)` of ``anneal_strategy``, for :math:`t \\in [0, 1]`."""
        return self._cosine_anneal(t) if self._anneal_strategy == "cos" else self._linear_anneal(t)

    @staticmethod
    def _get_initial_lr(lr: float, swa_lr: float, alpha: float) -> float:
        """The rate the annealing started from, recovered from the current rate (torch's formula)."""
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self) -> list[float]:
        # torch's expressions, in torch's order (ints where torch has ints): the same rounding as torch.
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_t = max(0, min(1, (step - 1) / max(1, self.anneal_epochs)))
        prev_alpha = self.anneal_func(prev_t)
        prev_lrs = [
            self._get_initial_lr(group["lr"], group["swa_lr"], prev_alpha) for group in self.optimizer.param_groups
        ]
        t = max(0, min(1, step / max(1, self.anneal_epochs)))
        alpha = self.anneal_func(t)
        return [
            group["swa_lr"] * alpha + lr * (1 - alpha)
            for group, lr in zip(self.optimizer.param_groups, prev_lrs, strict=True)
        ]
