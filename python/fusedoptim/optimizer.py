"""The optimizer base class: parameter groups, per-parameter state, state_dict, and the step protocol.

A step prepares every group first (the C++ side validates all arrays without writing any), then runs them all,
then commits new state and step counts: an error anywhere leaves parameters, state and counters as they were.
"""

from __future__ import annotations

import math
import numbers
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any, ClassVar, cast

import numpy as np

from . import _core, _precision
from . import clip as _clip
from ._validation import MAX_STEP, check_nonnegative
from .arena import ParamArena

__all__ = ["Optimizer", "ParamState"]

ParamsT = Iterable[np.ndarray] | Iterable[dict[str, Any]] | Mapping[str, np.ndarray] | ParamArena
_ARENA_KEY = "\0arena"  # internal names of arenas' flat parameters: never a user's name


class ParamState(MutableMapping):
    """Per-parameter state, keyed by the parameter array itself (as torch keys by tensor) or by its index in
    parameter order (as in state_dict). Iterating yields the indices of the parameters that have state.

    Entries follow their array, so editing ``param_groups`` never hands one parameter another's state.
    """

    def __init__(self, optimizer: Optimizer) -> None:
        self._optimizer = optimizer
        self._data: dict[int, dict[str, Any]] = {}  # id(param) -> state
        self._owners: dict[int, np.ndarray] = {}  # keeps each param with state alive, so its id is not reused

    def _id(self, key: Any) -> int:
        if isinstance(key, np.ndarray):
            if not any(p is key for p in self._optimizer._params()):
                raise KeyError("array is not a parameter of this optimizer")
            return id(key)
        if isinstance(key, numbers.Integral) and not isinstance(key, bool):
            params = self._optimizer._params()
            if not 0 <= int(key) < len(params):
                raise KeyError(key)
            return id(params[key])
        raise KeyError(key)

    def _get(self, p: np.ndarray) -> dict[str, Any] | None:
        return self._data.get(id(p))

    def _setdefault(self, p: np.ndarray) -> dict[str, Any]:
        self._owners[id(p)] = p
        return self._data.setdefault(id(p), {})

    def _replace(self, entries: list[tuple[np.ndarray, dict[str, Any]]]) -> None:
        self._optimizer._plan = None
        self._data = {id(p): s for p, s in entries}
        self._owners = {id(p): p for p, _ in entries}

    def __getitem__(self, key: Any) -> dict[str, Any]:
        return self._data[self._id(key)]

    def __setitem__(self, key: Any, value: dict[str, Any]) -> None:
        with self._optimizer._step_lock:  # not under a running step
            i = self._id(key)
            self._optimizer._plan = None
            self._owners[i] = next(p for p in self._optimizer._params() if id(p) == i)
            self._data[i] = value

    def __delitem__(self, key: Any) -> None:
        with self._optimizer._step_lock:
            i = self._id(key)
            self._optimizer._plan = None
            del self._data[i]
            self._owners.pop(i, None)

    def __iter__(self) -> Iterator[int]:
        return (i for i, p in enumerate(self._optimizer._params()) if id(p) in self._data)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"ParamState({dict(self.items())!r})"


class _Writes:
    """The state changes of one step (new buffers, step counts, per-parameter scalars), handed to the C++ run,
    which stores them right after the kernels with no Python code in between: a KeyboardInterrupt (or any
    signal handler's exception) lands before the step or after all of it, never between the kernels and the
    state that records them. A parameter without state gets its entry in the same way."""

    def __init__(self, state: ParamState) -> None:
        self._state = state
        self.items: list[tuple[dict[Any, Any], Any, Any]] = []
        self._new: dict[int, dict[str, Any]] = {}

    def set(self, p: np.ndarray, key: str, value: Any) -> None:
        entry = self._state._get(p)
        if entry is None:
            entry = self._new.get(id(p))
            if entry is None:
                entry = self._new[id(p)] = {}
                self.items.append((self._state._data, id(p), entry))
                self.items.append((self._state._owners, id(p), p))
        self.items.append((entry, key, value))


class Optimizer:
    """Base class of fusedoptim's optimizers (the shape of :class:`torch.optim.Optimizer`).

    Mixed precision (every family but LAMB): float16 or bfloat16 (ml_dtypes) parameters are updated through a
    float32 master copy kept in their state (``master_param``), rounded into the 16-bit array after every step;
    their gradients have their dtype. ``state_dtype`` ("bfloat16" or "float16", a constructor keyword or a group
    key) stores the state buffers in 16 bits (arithmetic stays float32). ``step(..., grad_scale=s)`` unscales
    gradients inside the kernel (see :class:`fusedoptim.GradScaler`). ``rounding="stochastic"`` (with
    ``rounding_seed``, an int) rounds the bfloat16 parameters and state stochastically instead of to nearest:
    reproducibly, from the seed, the parameter's index, its step count and the element's index, so every
    parameter keeps a ``step`` count (SGD's too).

    Subclasses define ``_check_group`` (hyperparameters, called at construction and at every step, so edited
    ``param_groups`` are checked too), ``_prepare_group`` (returns the prepared C++ step and its state changes,
    a ``_Writes``, which the run stores) and the state keys they own.

    Threads: steps of one optimizer must not overlap (a second concurrent step raises RuntimeError); the other
    methods that read or change the optimizer as a whole (``add_param_group``, ``state_dict``,
    ``load_state_dict``, and assignments to ``state``) wait for a running step to finish.
    """

    _required_state: ClassVar[tuple[str, ...]] = ()
    _optional_state: ClassVar[tuple[str, ...]] = ()
    _scalar_state: ClassVar[tuple[str, ...]] = ()  # per-parameter floats (NAdam's mu_product)
    _counts_steps: ClassVar[bool] = True

    # Capabilities, declared by each family; tools that take any optimizer (fusedoptim.distributed) read these
    # rather than class names.
    #: An element's update reads only that element and per-step scalars, so a slice of the parameters can be
    #: stepped on its own (ZeroRedundancyOptimizer's shards).
    elementwise: ClassVar[bool] = True
    #: The update reduces over each whole array (LAMB's trust ratio): arrays cannot be split or concatenated.
    per_array_reductions: ClassVar[bool] = False
    #: Takes float16/bfloat16 parameters (with float32 masters) and a ``state_dtype``.
    mixed_precision: ClassVar[bool] = True

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        # Mixed-precision keys at their defaults stay out of the groups (torch's layout; older checkpoints load
        # alike): no state_dtype keeps the state in the default dtype, no rounding rounds to nearest, no
        # rounding_seed is seed 0.
        for key, default in (("state_dtype", None), ("rounding", "nearest"), ("rounding_seed", 0)):
            value = self.defaults.get(key, default)
            if key in self.defaults and type(value) is type(default) and value == default:
                del self.defaults[key]
        self.param_groups: list[dict[str, Any]] = []
        self.state = ParamState(self)
        if isinstance(params, (np.ndarray, set, frozenset)):
            raise TypeError(
                "params must be a list of numpy arrays or of parameter-group dicts, got " + type(params).__name__
            )
        self._checked_groups: dict[int, list[tuple[str, Any]]] = {}
        self._plan: _core.StepPlan | None = None  # the steady state's step (see _make_plan)
        # Kernels run without the GIL: two overlapping steps of one optimizer would race on its state.
        self._step_lock = threading.Lock()
        self._arenas: dict[str, ParamArena] = {}  # internal name of an arena's flat parameter -> arena
        self.skipped_steps = 0  # steps skipped by the non-finite guard
        self.last_grad_norm: float | None = None  # the norm found by the last guarded or clipped step
        if isinstance(params, (Mapping, ParamArena)):
            groups: list[Any] = [{"params": params}]
        else:
            groups = list(params)
        if len(groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # --- groups and parameters ------------------------------------------------------------------------------

    def _params(self) -> list[np.ndarray]:
        return [p for group in self.param_groups for p in group["params"]]

    def parameters(self) -> list[np.ndarray]:
        """Every parameter in parameter order (group by group), as the optimizer steps them: an arena is its one
        flat buffer."""
        return self._params()

    def parameter_names(self) -> list[str] | None:
        """The parameters' names in parameter order when they were given by name, else None."""
        return self._names()

    @property
    def arenas(self) -> tuple[ParamArena, ...]:
        """The arenas this optimizer steps (each as one flat parameter), in the order they were added."""
        return tuple(self._arenas.values())

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Adds a group; its keys override the defaults. Its arrays must be new to this optimizer."""
        with self._step_lock:
            self._add_param_group(param_group)

    def _add_param_group(self, param_group: dict[str, Any]) -> None:
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        if "param_names" in param_group:
            raise ValueError(
                "a parameter group's 'param_names' is kept by the optimizer; give named parameters as "
                "a dict {name: array} in 'params' instead"
            )
        params = param_group.get("params")
        names: list[str] | None = None
        if isinstance(params, ParamArena):
            # The arena is one parameter inside (its flat buffer); state dicts show it name by name.
            key = _ARENA_KEY + str(len(self._arenas))
            self._arenas[key] = params
            params, names = {key: params.flat_params}, None
        if isinstance(params, np.ndarray):
            params = [params]
        elif isinstance(params, Mapping):
            names = list(params.keys())
            if not all(isinstance(n, str) for n in names):
                raise TypeError("named parameters must be a dict from str names to numpy arrays")
            params = list(params.values())
        elif isinstance(params, (set, frozenset)) or params is None:
            raise TypeError("a parameter group's 'params' must be a list of numpy arrays or a dict of named arrays")
        params = list(params)
        if self.param_groups and (names is None) != (self._names() is None):
            raise ValueError("either every parameter group is given by name (a dict) or none is")
        if names is not None:
            taken = set(self._names() or [])
            duplicates = [n for n in names if n in taken]
            if duplicates:
                raise ValueError(f"parameter names appear in more than one group: {duplicates}")
        start = len(self._params())
        for j, p in enumerate(params):
            _check_param(f"params[{start + j}]", p)
        _check_disjoint(self._params() + params)
        group = dict(self.defaults)
        group.update(param_group)
        group["params"] = params
        if names is not None:
            group["param_names"] = names
        self._check_group(group)
        self._check_precision(group)
        self._plan = None
        self.param_groups.append(group)

    def _names_given(self) -> bool:
        """Whether the parameters were given by name (decided by the first group, which every group follows)."""
        return bool(self.param_groups) and "param_names" in self.param_groups[0]

    def _names(self) -> list[str] | None:
        """The parameters' names in parameter order, when they were given by name."""
        if not self.param_groups or "param_names" not in self.param_groups[0]:
            return None
        return [n for group in self.param_groups for n in group["param_names"]]

    # --- the step -------------------------------------------------------------------------------------------

    def step(
        self,
        grads: Sequence[np.ndarray | None] | Mapping[str, np.ndarray | None],
        *,
        skip_if_nonfinite: bool = False,
        max_grad_norm: float | None = None,
        norm_type: float = 2.0,
        grad_scale: float = 1.0,
    ) -> bool:
        """Updates every parameter in place from ``grads``: one gradient per parameter, in parameter order
        (flattened over groups), or a dict by name for named parameters; ``None`` (or a missing name) leaves
        that parameter and its state untouched.

        ``skip_if_nonfinite``: when any gradient holds inf or NaN, change nothing (parameters, state, step
        counts) and return False; ``skipped_steps`` counts such steps. ``max_grad_norm``: first scale the
        gradients in place so their total ``norm_type``-norm is at most this (``clip_grad_norm_``). Asked
        together, both use one fused pass over the gradients; the norm is kept in ``last_grad_norm``.
        ``grad_scale``: multiply every gradient by this as the kernel reads it (unscaling a loss-scaled
        gradient, see :class:`fusedoptim.GradScaler`); the caller's gradients are not changed, and the guard and
        clipping see them as given. Returns True when the step was applied. Every array is checked before
        anything is written.
        """
        if self._step_lock.locked():
            raise RuntimeError(
                f"{type(self).__name__}.step() is already running in another thread; steps of one optimizer "
                "must not overlap (use one optimizer per thread, or a lock)"
            )
        # `with` on the lock itself (C code, entered and left with no check for signals in between) rather than
        # acquire() and try/finally: a KeyboardInterrupt can then never leave the lock held. Two steps racing
        # past the check above run one after the other.
        with self._step_lock:
            plan = self._plan
            # The steady state, kept short: every Python operation here costs as much as a small kernel.
            if (
                plan is not None
                and skip_if_nonfinite is False
                and max_grad_norm is None
                and grad_scale == 1.0
                and plan.step(self.param_groups, grads)
            ):
                return True
            return self._step(grads, skip_if_nonfinite, max_grad_norm, norm_type, grad_scale)

    def _step(
        self,
        grads: Any,
        skip_if_nonfinite: bool,
        max_grad_norm: float | None,
        norm_type: float,
        grad_scale: float = 1.0,
    ) -> bool:
        if isinstance(grads, ParamArena):
            grads = grads.grads
        if isinstance(grads, Mapping):
            grads = self._grads_by_name(grads)
        if isinstance(grads, np.ndarray) or not isinstance(grads, Sequence):
            raise TypeError(
                f"grads must be a list with one gradient (or None) per parameter, got {type(grads).__name__}"
            )
        grads = list(grads)  # no user code (a custom sequence) may run between preparing and running
        count = sum(len(group["params"]) for group in self.param_groups)
        if len(grads) != count:
            raise ValueError(f"Expected {count} gradients (one per parameter, in parameter order), got {len(grads)}")
        skip_if_nonfinite, max_grad_norm, norm_type = _clip._guard_options(skip_if_nonfinite, max_grad_norm, norm_type)
        grad_scale = check_nonnegative("grad_scale", "grad_scale", grad_scale)
        plan = self._plan
        if plan is not None and plan.bind(self.param_groups, grads, grad_scale):
            apply, clip = self._guard_and_clip(grads, skip_if_nonfinite, max_grad_norm, norm_type)
            if not apply:
                return False
            plan.run(clip)
            return True
        self._plan = None
        prepared, writes = [], []
        start = 0
        for group in self.param_groups:
            self._check_group_if_changed(group)
            indices, params, group_grads = [], [], []
            for j, p in enumerate(group["params"]):
                g = grads[start + j]
                if g is not None:
                    indices.append(start + j)
                    params.append(p)
                    group_grads.append(g)
            start += len(group["params"])
            if params:
                step, group_writes = self._prepare_group(group, indices, params, group_grads, grad_scale)
                prepared.append(step)
                writes.extend(group_writes.items)
        apply, clip = self._guard_and_clip(grads, skip_if_nonfinite, max_grad_norm, norm_type)
        if not apply:
            return False
        # Clipping, the kernels and the new state in one call: an interrupt lands before all of it or after.
        _core.run_steps(prepared, clip, writes)
        if prepared and len(prepared) == sum(1 for g in self.param_groups if g["params"]):
            if all(g is not None for g in grads):
                self._plan = _make_plan(self, prepared)
        return True

    def _guard_and_clip(
        self, grads: list[Any], skip_if_nonfinite: bool, max_grad_norm: float | None, norm_type: float
    ) -> tuple[bool, Any]:
        """The non-finite guard and gradient clipping, after every array was checked: (False, None) to skip the
        step, else (True, the prepared clipping or None). Nothing is written here: the clipping runs with the
        step (run_steps / StepPlan.run), after the step's last check."""
        if not (skip_if_nonfinite or max_grad_norm is not None):
            return True, None
        present = [g for g in grads if g is not None]
        if max_grad_norm is not None and any(_precision.is_16bit(g.dtype) for g in present):
            raise TypeError(
                "max_grad_norm: clipping float16/bfloat16 gradients is not supported; clip "
                "after unscaling in float32, or use skip_if_nonfinite alone"
            )
        # 16-bit gradients are read as their float32 values, in the same kernel.
        total = _clip._total_norm(present, norm_type)  # norm_type checked with the other options
        self.last_grad_norm = total
        if skip_if_nonfinite and not math.isfinite(total):
            self.skipped_steps += 1
            return False, None
        coef = _clip._clip_coef(max_grad_norm, total) if max_grad_norm is not None else None
        return True, (None if coef is None else _core.prepare_scale(present, coef))

    def _check_group_if_changed(self, group: dict[str, Any]) -> None:
        """Hyperparameters are checked again only when a group has changed since it was last checked, and so are
        its parameters (each as the constructor checks it, and their precision) when its params list changed."""
        params = group["params"]
        members = tuple((id(p), getattr(p, "dtype", None)) for p in params) if isinstance(params, list) else None
        snapshot = [(k, _frozen(v)) for k, v in group.items() if k != "params"] + [("params", members)]
        known = self._checked_groups.get(id(group))
        if known != snapshot:
            if not isinstance(params, list):
                raise TypeError(f"param_groups' 'params' must stay a list, got {type(params).__name__}")
            names = group.get("param_names")
            if (names is not None) != self._names_given() or (names is not None and len(names) != len(params)):
                # An unnamed parameter's state would be left out of state_dict() without a word.
                raise ValueError(
                    "a parameter group's 'params' and 'param_names' must stay in step (one name per parameter, "
                    f"and names in every group or in none): {0 if names is None else len(names)} names for "
                    f"{len(params)} params; use add_param_group with a dict of named arrays to add parameters"
                )
            if known is None or known[-1] != snapshot[-1]:  # the arrays changed, not only hyperparameters
                for p in params:
                    _check_param("a parameter of param_groups", p)
            self._check_group(group)
            self._check_precision(group)
            self._checked_groups[id(group)] = snapshot

    def _grads_by_name(self, grads: Mapping[str, np.ndarray | None]) -> list[np.ndarray | None]:
        names = self._names()
        if names is None:
            raise TypeError("grads can be a dict only when the parameters were given by name")
        arena_names = {n for arena in self._arenas.values() for n in arena.names}
        unknown = sorted(set(grads) - set(names) - arena_names)
        if unknown:
            raise ValueError(f"grads has names that are not parameters of this optimizer: {unknown}")
        out = []
        for n in names:
            arena = self._arenas.get(n)
            if arena is None:
                out.append(grads.get(n))
                continue
            given = [grads.get(a) for a in arena.names]
            if all(g is None for g in given):
                out.append(None)
            elif all(g is arena.grads[a] for g, a in zip(given, arena.names)):
                out.append(arena.flat_grads)  # the whole arena in one array
            else:
                raise ValueError(
                    "an arena is stepped as one array: pass its own gradient views (arena.grads), all of them"
                )
        return out

    def _gather_state(
        self,
        group: Mapping[str, Any],
        params: list[np.ndarray],
        buffers: Mapping[str, Callable[[np.ndarray], np.ndarray]],
    ) -> tuple[list[dict[str, Any]], _Writes]:
        """Each stepped parameter's state with every buffer in ``buffers`` present (missing ones made by its
        factory), and the state changes the run stores: the new buffers and the advanced step counts."""
        views = []
        writes = _Writes(self.state)
        counting = self._counting()
        dtypes: dict[np.dtype, np.dtype] = {}  # parameter dtype -> state dtype, for this group
        for p in params:
            entry = self.state._get(p)
            view = dict(entry) if entry is not None else {}
            view.setdefault("step", 0)
            base = p
            low = _precision.is_16bit(p.dtype)
            if low:
                # The float32 master the kernel updates; p receives it rounded after every step.
                if view.get("master_param") is None:
                    view["master_param"] = p.astype(np.float32)
                    writes.set(p, "master_param", view["master_param"])
                base = view["master_param"]
            dtype = dtypes.get(p.dtype)
            if dtype is None:
                dtype = dtypes[p.dtype] = self._state_dtype_for(group, p)
            for key, make in buffers.items():
                if view.get(key) is None:
                    array = make(base)
                    view[key] = array if array.dtype == dtype else array.astype(dtype)
                    writes.set(p, key, view[key])
            if counting:
                step = int(view["step"]) + 1  # an int, as the steady state needs
                if entry is not None:
                    writes.items.append((entry, "step", step))  # the common case, without set()'s lookups
                else:
                    writes.set(p, "step", step)
            views.append(view)
        return views, writes

    def _check_group(self, group: dict[str, Any]) -> None:
        raise NotImplementedError

    # --- mixed precision ------------------------------------------------------------------------------------

    def _counting(self) -> bool:
        """Whether steps are counted: always for the families whose update uses the count, and for every
        family once a group rounds stochastically (the count keys the random bits)."""
        return self._counts_steps or any(g.get("rounding") == "stochastic" for g in self.param_groups)

    def _check_precision(self, group: dict[str, Any]) -> None:
        """16-bit parameters and ``state_dtype``: supported by this family, and state_dtype only over float32."""
        state_dtype = _precision.state_dtype(group.get("state_dtype"))
        low = [p for p in group["params"] if _precision.is_16bit(p.dtype)]
        if (low or state_dtype is not None) and not self.mixed_precision:
            raise TypeError(
                f"{type(self).__name__} does not support mixed precision (float16/bfloat16 parameters or a "
                "state_dtype): its trust ratio needs norms over the whole update, computed in a separate pass"
            )
        if state_dtype is not None and any(p.dtype == np.float64 for p in group["params"]):
            raise TypeError(
                f"state_dtype={group['state_dtype']!r} needs float32 or 16-bit parameters (the update "
                "computes in float32); this group has float64 parameters"
            )
        rounding = group.get("rounding", "nearest")
        if not isinstance(rounding, str) or rounding not in ("nearest", "stochastic"):
            raise ValueError(f"Invalid rounding: {rounding!r} (expected 'nearest' or 'stochastic')")
        seed = group.get("rounding_seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) < 2**64:
            raise ValueError(f"Invalid rounding_seed: {seed!r} (expected an int in [0, 2**64))")
        if rounding == "stochastic":
            # Stochastic rounding is for bfloat16 only: anything else in the group would silently round to nearest.
            float16 = np.dtype(np.float16)
            for p in group["params"]:
                if p.dtype == float16:
                    raise TypeError(
                        "rounding='stochastic' is for bfloat16; this group has float16 parameters "
                        "(float16 rounds to nearest: use bfloat16, or rounding='nearest')"
                    )
            if state_dtype == float16:
                raise TypeError("rounding='stochastic' is for bfloat16; this group has state_dtype='float16'")
            bf16 = _precision._loaded_bfloat16()
            if state_dtype is None and not any(p.dtype == bf16 for p in group["params"]):
                raise ValueError(
                    "rounding='stochastic' has nothing to round: this group has no bfloat16 "
                    "parameters and no state_dtype='bfloat16'"
                )
        if state_dtype is not None and not isinstance(group["state_dtype"], str):
            # Kept by name (a dtype given here would not survive state_dict, fusedoptim.save or a comparison).
            group["state_dtype"] = str(state_dtype)

    @staticmethod
    def _state_dtype_for(group: Mapping[str, Any], p: np.ndarray) -> np.dtype:
        """The dtype of p's state buffers: the group's state_dtype, else float32 for 16-bit p, else p's."""
        state_dtype = _precision.state_dtype(group.get("state_dtype"))
        if state_dtype is not None:
            return state_dtype
        return _precision.FLOAT32 if _precision.is_16bit(p.dtype) else p.dtype

    def _new_state_array(self, group: Mapping[str, Any], p: np.ndarray, fill: float) -> np.ndarray:
        """A state buffer of p filled with ``fill`` (rounded to float32 first for 16-bit p, as _gather_state)."""
        base = _precision.FLOAT32 if _precision.is_16bit(p.dtype) else p.dtype
        return np.full(p.shape, fill, dtype=base).astype(self._state_dtype_for(group, p))

    def _kernel_inputs(
        self, group: Mapping[str, Any], params: list[np.ndarray], states: list[dict[str, Any]], grad_scale: float
    ) -> tuple[list[np.ndarray], _core.Precision | None]:
        """The arrays the kernel updates as parameters (the float32 masters of 16-bit ones, from ``states``) and
        its ``precision`` argument: None for a plain step, else the 16-bit parameters to write (or None), the
        gradient scale and the stochastic rounding's seed and step numbers."""
        models = [p if _precision.is_16bit(p.dtype) else None for p in params]
        has_models = any(m is not None for m in models)
        if not has_models and group.get("state_dtype") is None and grad_scale == 1.0:
            return params, None
        kernel_params = [s["master_param"] if m is not None else p for p, m, s in zip(params, models, states)]
        seed, steps = None, []
        if group.get("rounding") == "stochastic":
            seed, steps = int(group.get("rounding_seed", 0)), [int(s["step"]) + 1 for s in states]
        return kernel_params, _core.Precision(models if has_models else None, grad_scale, seed, steps)

    def _prepare_group(
        self,
        group: dict[str, Any],
        indices: list[int],
        params: list[np.ndarray],
        grads: list[np.ndarray],
        grad_scale: float,
    ) -> tuple[_core.PreparedStep, _Writes]:
        """The group's prepared C++ step over ``params`` (global indices ``indices``, for messages) with
        ``grads`` read times ``grad_scale``, and the state changes its run stores."""
        raise NotImplementedError

    # --- state_dict -----------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """torch's layout: ``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}``, with names
        instead of indices when the parameters were given by name.

        Arrays are copies, so the snapshot does not change as training goes on.
        """
        with self._step_lock:
            return self._state_dict()

    def _state_dict(self) -> dict[str, Any]:
        names = self._names()
        keys: list[Any] = names if names is not None else list(range(len(self._params())))
        groups, start = [], 0
        for group in self.param_groups:
            saved = {k: v for k, v in group.items() if k not in ("params", "param_names")}
            saved["params"] = keys[start : start + len(group["params"])]
            start += len(group["params"])
            groups.append(saved)
        state = {}
        for key, p in zip(keys, self._params()):
            entry = self.state._get(p)
            if entry:
                state[key] = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in entry.items()}
        return self._expand_arenas({"state": state, "param_groups": groups})

    def _expand_arenas(self, sd: dict[str, Any]) -> dict[str, Any]:
        """State dict of the arenas name by name: each array state sliced, scalars (step) repeated."""
        if not self._arenas:
            return sd
        state: dict[Any, Any] = {}
        for key, entry in sd["state"].items():
            arena = self._arenas.get(key)
            if arena is None:
                state[key] = entry
                continue
            for name, sl in arena.slices.items():
                state[name] = {
                    k: (v[sl].reshape(arena.shapes[name]).copy() if isinstance(v, np.ndarray) else v)
                    for k, v in entry.items()
                }
        for group in sd["param_groups"]:
            group["params"] = [
                n for key in group["params"] for n in (self._arenas[key].names if key in self._arenas else [key])
            ]
        return {"state": state, "param_groups": sd["param_groups"]}

    def _internalize_arenas(self, sd: Mapping[str, Any]) -> Mapping[str, Any]:
        """The inverse of _expand_arenas: each arena's names folded back into its one flat entry."""
        if not self._arenas or not isinstance(sd, Mapping) or not isinstance(sd.get("state"), Mapping):
            return sd
        state = dict(sd["state"])
        groups = [dict(g) if isinstance(g, Mapping) else g for g in sd.get("param_groups", [])]
        for key, arena in self._arenas.items():
            entries = [state.pop(n, None) for n in arena.names]
            for group in groups:
                if isinstance(group, dict) and isinstance(group.get("params"), Sequence):  # each Mapping, copied
                    listed = [n for n in group["params"] if n in arena.slices]
                    if listed:
                        rest = [n for n in group["params"] if n not in arena.slices]
                        group["params"] = rest + [key]
            present = [e for e in entries if e is not None]
            if not present:
                continue
            if len(present) != len(entries):
                raise ValueError(f"state_dict has state for only some of the arena's arrays ({arena.names})")
            merged: dict[str, Any] = {}
            for k in present[0]:
                values = [e.get(k) for e in present]
                if all(isinstance(v, np.ndarray) for v in values):
                    merged[k] = np.concatenate([np.asarray(v).reshape(-1) for v in values])
                elif all(v == values[0] for v in values):
                    merged[k] = values[0]
                else:
                    raise ValueError(f"the arena's arrays must share one {k!r} (they are stepped together): {values}")
            state[key] = merged
        return {**sd, "state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> None:
        """Loads a :meth:`state_dict`; checks all of it first and changes nothing if any part does not fit.

        Named parameters are matched by name: with ``strict`` a name missing from either side is an error;
        without it, saved names that are not parameters are ignored and parameters absent from the file keep
        their state.
        """
        with self._step_lock:
            self._load_state_dict(state_dict, strict)

    def _load_state_dict(self, state_dict: Mapping[str, Any], strict: bool) -> None:
        if not isinstance(state_dict, Mapping) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("state_dict must be a mapping with keys 'state' and 'param_groups'")
        state_dict = self._internalize_arenas(state_dict)
        saved_groups = state_dict["param_groups"]
        if not isinstance(saved_groups, Sequence) or len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        index_map: dict[Any, int] = {}
        new_groups = []
        start = 0
        names = self._names()
        if names is not None:
            saved_names = [n for saved in saved_groups if isinstance(saved, Mapping) for n in saved.get("params", [])]
            missing = sorted(set(names) - set(saved_names))
            unexpected = sorted(set(saved_names) - set(names))
            if strict and (missing or unexpected):
                raise ValueError(
                    f"state_dict does not match the parameters by name: missing {missing}, unexpected {unexpected}"
                )
            index_map = {n: i for i, n in enumerate(names)}
        for g, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if not isinstance(saved, Mapping) or not isinstance(saved.get("params"), Sequence):
                raise ValueError(f"loaded parameter group {g} must be a mapping with a 'params' list")
            if names is not None:
                pass  # matched by name above
            elif len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"loaded state dict contains a parameter group ({g}) that doesn't match the size of "
                    f"optimizer's group ({len(saved['params'])} != {len(group['params'])})"
                )
            if names is None:
                for j, saved_id in enumerate(saved["params"]):
                    index_map[saved_id] = start + j
            start += len(group["params"])
            # Keys the saved group lacks (an older checkpoint, a torch state_dict) take the defaults, as in torch.
            # 'param_names' (torch saves it for named parameters) is the optimizer's own: never taken from a file.
            new_group = {**self.defaults, **{k: v for k, v in saved.items() if k not in ("params", "param_names")}}
            if isinstance(new_group.get("betas"), list):
                new_group["betas"] = tuple(new_group["betas"])
            new_group["params"] = group["params"]
            if "param_names" in group:
                new_group["param_names"] = group["param_names"]
            self._check_group(new_group)
            self._check_precision(new_group)
            new_groups.append(new_group)

        saved_state = state_dict["state"]
        if not isinstance(saved_state, Mapping):
            raise ValueError("state_dict['state'] must be a mapping from parameter index to state")
        params = self._params()
        new_state: list[tuple[np.ndarray, dict[str, Any]]] = []
        allowed = set(self._required_state) | set(self._optional_state) | set(self._scalar_state)
        if self._counts_steps or any(g.get("rounding") == "stochastic" for g in new_groups):
            allowed.add("step")  # SGD counts steps for stochastic rounding; a missing count starts at 0
        group_of = {id(p): g for g, group in zip(new_groups, self.param_groups) for p in group["params"]}
        loaded: set[int] = set()
        for saved_id, entry in saved_state.items():
            if saved_id not in index_map:
                if names is not None and not strict:
                    continue
                raise ValueError(f"state_dict has state for parameter {saved_id!r}, which is in no parameter group")
            loaded.add(index_map[saved_id])
            i = index_map[saved_id]
            p = params[i]
            if not isinstance(entry, Mapping):
                raise ValueError(f"state of parameter {saved_id!r} must be a mapping, got {type(entry).__name__}")
            unknown = set(entry) - allowed - ({"master_param"} if _precision.is_16bit(p.dtype) else set())
            if unknown:
                raise ValueError(
                    f"state of parameter {saved_id!r} has unexpected keys {sorted(unknown)} for "
                    f"{type(self).__name__} (expected {sorted(allowed)})"
                )
            missing = [k for k in self._required_state + self._scalar_state if k not in entry]
            if self._counts_steps and "step" not in entry:
                missing.insert(0, "step")
            if missing:
                raise ValueError(f"state of parameter {saved_id!r} is missing {missing}")
            state: dict[str, Any] = {}
            for key, value in entry.items():
                where = f"state[{saved_id!r}][{key!r}]"
                if key == "step":
                    state[key] = _as_step(where, value)
                elif key in self._scalar_state:
                    state[key] = self._check_scalar_state(where, key, _as_scalar(where, value))
                elif value is None:
                    state[key] = None
                elif key == "master_param":
                    state[key] = _as_master(where, value, p)
                else:
                    state[key] = _as_state_array(where, value, p, self._state_dtype_for(group_of[id(p)], p))
            new_state.append((p, state))

        if names is not None and not strict:  # parameters absent from the file keep their state
            for i, p in enumerate(params):
                entry = self.state._get(p)
                if i not in loaded and entry is not None:
                    new_state.append((p, entry))
        for group, new_group in zip(self.param_groups, new_groups):
            group.clear()
            group.update(new_group)
        self.state._replace(new_state)  # also drops the plan

    def _check_scalar_state(self, where: str, key: str, value: float) -> float:
        """A loaded per-parameter scalar (``_scalar_state``), range-checked by the family."""
        return value

    def __reduce_ex__(self, protocol: Any) -> Any:
        # Copies would update copies of the arrays, or (arenas) lose the views into the flat buffers; and the
        # step lock cannot be pickled. The state travels as a state_dict instead.
        raise TypeError(
            f"{type(self).__name__} cannot be pickled or copied (it updates your arrays in place): save "
            "opt.state_dict() (or fusedoptim.save) and load it into an optimizer built over the new arrays"
        )

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k not in ("params", "param_names")):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


_IMMUTABLE = (int, float, str, bytes, type(None), np.generic)


def _unchanging(value: Any) -> bool:
    """Whether a hyperparameter value cannot change without being replaced (so `is` tells it is unchanged)."""
    if isinstance(value, tuple):
        return all(_unchanging(v) for v in value)
    return isinstance(value, _IMMUTABLE)


def _make_plan(optimizer: Optimizer, prepared: list[Any]) -> _core.StepPlan | None:
    """The optimizer's steady state, made after a full step in which every parameter had a gradient: a
    ``_core.StepPlan`` re-runs that step's prepared kernels with new gradients and step numbers, checking the
    gradients as strictly as a full step does but not again the parameters and state.

    It applies only while nothing it relies on changed, which it checks at every step (see StepPlan in
    cpp/bindings/buffers.hpp): the same group dicts holding the same parameters, every hyperparameter the same
    object (an edit, e.g. by a scheduler, makes that step a full one, which checks the new value), the same
    state arrays in the same state entries, and a gradient for every parameter. ParamState edits and
    load_state_dict drop the plan. None when a hyperparameter is mutable (a list of betas can change in place).
    """
    groups = []
    for group in optimizer.param_groups:
        if not all(_unchanging(v) for k, v in group.items() if k not in ("params", "param_names")):
            return None
        groups.append(_core.GroupSnapshot(group, group["params"], tuple(group["params"]), tuple(group.values())))
    params = optimizer._params()
    # The plan records which arrays each state dict holds itself (in C++: one call, not a snapshot per array).
    states = [state for state in map(optimizer.state._get, params) if state]
    counters: list[dict[str, Any]] = []
    if optimizer._counting():
        for p in params:
            entry = optimizer.state._get(p)
            assert entry is not None  # the step just stored every parameter's count (_gather_state)
            counters.append(entry)
    return _core.StepPlan(prepared, groups, states, counters)


def _frozen(value: Any) -> Any:
    """A value for comparing group snapshots: a list edited in place, or 0 in place of False, must differ."""
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(_frozen(v) for v in value))
    return (type(value), value)


def _check_param(where: str, p: Any) -> None:
    if not isinstance(p, np.ndarray):
        raise TypeError(f"optimizer can only optimize numpy arrays, but {where} is a {type(p).__name__}")
    if isinstance(p, np.ma.MaskedArray):
        # The kernels would update masked elements too: refuse rather than ignore the mask silently.
        raise TypeError(f"{where} is a masked array; pass its data (p.data) if every element should be updated")
    if p.dtype not in (np.dtype(np.float32), np.dtype(np.float64)) and not _precision.is_16bit(p.dtype):
        raise TypeError(
            "optimizer can only optimize float32, float64, float16 or bfloat16 arrays (native byte order), but "
            f"{where} has dtype {p.dtype}"
        )
    if not p.flags.c_contiguous:
        raise ValueError(f"{where} is not C-contiguous; fusedoptim updates arrays in place and never copies them")
    if not p.flags.writeable:
        raise ValueError(f"{where} is read-only; fusedoptim updates it in place")


def _check_disjoint(params: list[np.ndarray]) -> None:
    intervals = []
    for i, p in enumerate(params):
        if p.size:
            begin = p.__array_interface__["data"][0]
            intervals.append((begin, begin + p.nbytes, i))
    intervals.sort()
    for (_b0, e0, i0), (b1, _e1, i1) in zip(intervals, intervals[1:]):
        if b1 < e0:
            i, j = sorted((i0, i1))
            if params[i] is params[j]:
                raise ValueError(f"some parameters appear more than once (params[{i}] is params[{j}])")
            raise ValueError(f"params[{i}] and params[{j}] share memory; each parameter must be its own array")


def _as_step(where: str, value: Any) -> int:
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    # The next step's number must be a valid one (check_steps): a larger count would make every later step raise.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= int(value) < MAX_STEP - 1:
        raise ValueError(f"{where} must be a non-negative integer step count below 2**62 - 1, got {value!r}")
    return int(value)


def _as_scalar(where: str, value: Any) -> float:
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    # np.isfinite sees the value as given (numpy's stubs do not take numbers.Real).
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(cast(float, value)):
        raise ValueError(f"{where} must be a finite float, got {value!r}")
    return float(value)


def _as_state_array(where: str, value: Any, p: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{where} must be a numpy array, got {type(value).__name__}")
    if value.shape != p.shape:
        raise ValueError(f"{where} has shape {value.shape} but its parameter has shape {p.shape}")
    if value.dtype.kind != "f" and not _precision.is_16bit(value.dtype):
        raise TypeError(f"{where} has dtype {value.dtype}; optimizer state must be floating point")
    # A private, C-contiguous copy in the state's dtype: the parameter's (torch casts state to it too), or the
    # group's state_dtype (rounded to nearest even), or float32 for a 16-bit parameter.
    return np.array(value, dtype=dtype, order="C", copy=True)


def _as_master(where: str, value: Any, p: np.ndarray) -> np.ndarray:
    """A 16-bit parameter's float32 master, loaded exactly: any other dtype is refused rather than rounded."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{where} must be a numpy array, got {type(value).__name__}")
    if value.shape != p.shape:
        raise ValueError(f"{where} has shape {value.shape} but its parameter has shape {p.shape}")
    if value.dtype != np.float32:
        raise TypeError(f"{where} has dtype {value.dtype}; master weights are float32")
    return np.array(value, dtype=np.float32, order="C", copy=True)
