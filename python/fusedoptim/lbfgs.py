"""L-BFGS (torch.optim.LBFGS): a quasi-Newton method with a limited history, optionally with a strong-Wolfe line
search. The algorithm is torch's, operation by operation; its flat-vector algebra runs in fused C++ passes over
the parameter arrays (cpp/include/fusedoptim/kernels/flat.hpp) instead of on concatenated copies."""

from __future__ import annotations

import math
import numbers
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from . import _core
from ._validation import check_int, check_lbfgs
from .arena import ParamArena
from .optimizer import Optimizer, ParamsT, ParamState

__all__ = ["LBFGS"]

Grads = Sequence[np.ndarray | None] | Mapping[str, np.ndarray | None]
Closure = Callable[[], tuple[Any, Grads]]

# The state keys a step after the first leaves (torch's), besides "func_evals" and "n_iter".
_HISTORY_KEYS = ("d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad", "prev_loss")
_STATE_KEYS = ("func_evals", "n_iter", *_HISTORY_KEYS)
# Flat buffers kept for reuse between steps besides those the state holds: the history pairs a step retires (up
# to min(max_iter, history_size), which it holds until it ends anyway: keeping them adds nothing to the peak)
# and these few more (the line search's gradients and x_init, the step's snapshot).
_MORE_SPARES = 6
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class _Layout:
    """Where each parameter lies in the flat vectors: parameter order, end to end (torch's _gather_flat_grad)."""

    __slots__ = ("bounds", "dtype", "key", "n")

    def __init__(self, params: list[np.ndarray]) -> None:
        self.key = tuple((id(p), p.shape) for p in params)
        self.dtype = params[0].dtype
        self.bounds: list[tuple[int, int, tuple[int, ...]]] = []
        start = 0
        for p in params:
            self.bounds.append((start, start + p.size, p.shape))
            start += p.size
        self.n = start


def _address(a: np.ndarray) -> int:
    return int(a.__array_interface__["data"][0])


class _Flat:
    """One of the optimizer's flat vectors, and its views split to the parameters' shapes (made when first
    needed): the kernels take the views in calls that also take the parameters or their gradients, and the whole
    array in the others."""

    __slots__ = ("_address", "_layout", "_views", "array", "whole")

    def __init__(self, array: np.ndarray, layout: _Layout) -> None:
        self.array = array
        self.whole = [array]
        self._layout = layout
        self._views: list[np.ndarray] | None = None
        self._address = _address(array)

    @property
    def views(self) -> list[np.ndarray]:
        if self._views is None:
            self._views = [self.array[a:b].reshape(shape) for a, b, shape in self._layout.bounds]
        return self._views

    def fits(self, layout: _Layout) -> bool:
        """Whether the array still is what the views were made from (NumPy lets Python resize an array or change
        its dtype behind a reference) and the layout is the same."""
        a = self.array
        return (
            self._layout is layout
            and a.dtype == layout.dtype
            and a.shape == (layout.n,)
            and a.flags.c_contiguous
            and _address(a) == self._address
        )


class _Grad:
    """A gradient as the kernels take it (the closure's arrays, or the views of a flat copy) and its max |g|."""

    __slots__ = ("arrays", "flat", "max_abs")

    def __init__(self, arrays: list[np.ndarray], max_abs: float, flat: _Flat | None = None) -> None:
        self.arrays = arrays
        self.max_abs = max_abs
        self.flat = flat


class _State(ParamState):
    """ParamState refusing changes from inside LBFGS.step's closure (the step holds the optimizer's lock there)."""

    def __setitem__(self, key: Any, value: dict[str, Any]) -> None:
        _not_in_closure(self._optimizer, "opt.state[...] = ...")
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        _not_in_closure(self._optimizer, "del opt.state[...]")
        super().__delitem__(key)


def _not_in_closure(optimizer: Any, what: str) -> None:
    if getattr(optimizer, "_closure_thread", None) == threading.get_ident():
        raise RuntimeError(f"{what} called from inside LBFGS.step()'s closure, while the step is running")


class LBFGS(Optimizer):
    r"""L-BFGS (torch.optim.LBFGS, after minFunc), with torch's arguments, defaults and algorithm.

    Each ``step(closure)`` runs up to ``max_iter`` iterations of

    .. math::
        d = -H g, \quad p \leftarrow p + t\, d

    where :math:`H g` is the two-loop recursion (Nocedal and Wright, Algorithm 7.4) over the last
    ``history_size`` pairs :math:`s = t\,d`, :math:`y = g_{new} - g_{old}` with :math:`y^\top s > 10^{-10}`,
    :math:`H_0 = y^\top s / y^\top y` of the newest pair; :math:`t` is ``lr`` (on the very first iteration
    :math:`\min(1, 1/\lVert g \rVert_1)\,` ``lr``), or, with ``line_search_fn="strong_wolfe"``, the step that
    torch's strong-Wolfe line search finds (:math:`c_1 = 10^{-4}, c_2 = 0.9`, cubic interpolation, at most
    ``max_eval`` evaluations in a step). A step stops early when :math:`\max |g| \le` ``tolerance_grad``, when
    :math:`g^\top d > -` ``tolerance_change``, when :math:`\max |t\, d|` or the change of the loss is below
    ``tolerance_change``, or after ``max_eval`` evaluations.

    NumPy has no autograd, so the closure computes both: ``closure()`` evaluates the model at the parameters'
    current values and returns ``(loss, grads)``, ``grads`` one gradient per parameter in parameter order (a
    list), or a dict by name when the parameters were given by name; a missing (None) gradient counts as zeros,
    as torch's ``p.grad is None`` does. ``step`` returns the loss of its first evaluation, as returned.

    >>> import numpy as np, fusedoptim
    >>> w = np.zeros(2)
    >>> def closure():  # f(w) = |w - (1, 2)|^2
    ...     r = w - np.array([1.0, 2.0])
    ...     return float(r @ r), [2 * r]
    >>> opt = fusedoptim.LBFGS([w], line_search_fn="strong_wolfe")
    >>> opt.step(closure)
    5.0
    >>> np.round(w, 6)
    array([1., 2.])

    The flat vectors torch keeps (``d``, ``prev_flat_grad``, the history ``old_dirs`` and ``old_stps``) are
    1-D arrays of the parameters' dtype; every pass over them (the history update, each step of the two-loop
    recursion, the gradient's norms and :math:`g^\top d`, the update of the parameters) is one fused C++ call
    over the parameter arrays, its dot products and sums reduced in double in a fixed order, so results are the
    same for any thread count and SIMD level. Scalars (:math:`t`, :math:`\rho`, ``H_diag``) are Python floats.

    Differences from torch: there is one parameter group, of float32 or float64 arrays, all of one dtype (torch
    also refuses groups; its flat vectors need one dtype). A ``history_size`` lowered below the length of the
    history drops the oldest pairs (torch would keep them all). A ``max_iter`` below 1 is refused.

    A step is all or nothing: if the closure raises, or returns something that is not a real loss and one
    gradient of each parameter's dtype and shape, the parameters are put back as they were when the step began
    and the state is unchanged. That costs memory: the history pairs a step retires stay untouched until it
    ends, so with a full history a step holds up to ``min(max_iter, history_size)`` pairs more than
    ``history_size`` (they are then kept for the next step's new pairs, so this is also the memory between
    steps), besides ``d``, ``prev_flat_grad`` and a few vectors of the step (the snapshot of the parameters, the
    line search's gradients and starting point). A non-finite loss or gradient is not an error, as in torch: the
    tests compare with NaN as False, and the iterations go on until a limit stops them.

    State (torch's keys, in the first parameter's entry): ``func_evals``, ``n_iter`` and after the first
    iteration ``d``, ``t``, ``old_dirs``, ``old_stps``, ``ro``, ``H_diag``, ``prev_flat_grad``, ``prev_loss``.
    ``state_dict()`` holds copies; the arrays in ``opt.state`` are the optimizer's working buffers, reused by
    later steps. torch's scratch list ``al`` is not kept (a state_dict holding it loads; it is ignored).
    """

    elementwise = False  # the direction depends on every element (dot products over all parameters)
    mixed_precision = False
    _counts_steps = False
    _required_state = ()
    _optional_state = ()

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
    ) -> None:
        if max_eval is None:
            max_eval = check_int("max_iter", max_iter, 1) * 5 // 4
        self._closure_thread: int | None = None
        self._layout: _Layout | None = None
        self._spares: list[_Flat] = []  # flat buffers no state refers to, ready for reuse
        self._flats: dict[int, _Flat] = {}  # id(array) -> _Flat of the state's arrays (their views, made once)
        defaults = dict(
            lr=lr,
            max_iter=max_iter,
            max_eval=max_eval,
            tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change,
            history_size=history_size,
            line_search_fn=line_search_fn,
        )
        super().__init__(params, defaults)
        self.state = _State(self)

    # --- groups and checks ----------------------------------------------------------------------------------

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        _not_in_closure(self, "add_param_group")
        if self.param_groups:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        if isinstance(param_group, dict) and isinstance(param_group.get("params"), ParamArena):
            raise TypeError(
                "LBFGS keeps its state over all parameters together, not per array: pass the arena's "
                "named views (arena.params) rather than the arena"
            )
        super().add_param_group(param_group)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_lbfgs(
            group["lr"],
            group["max_iter"],
            group["max_eval"],
            group["tolerance_grad"],
            group["tolerance_change"],
            group["history_size"],
            group["line_search_fn"],
        )
        params = group["params"]
        if not params:
            raise ValueError("LBFGS got an empty parameter list")
        for i, p in enumerate(params):
            if p.dtype not in _FLOATS:
                raise TypeError(f"LBFGS updates float32 and float64 arrays, but params[{i}] has dtype {p.dtype}")
            if p.dtype != params[0].dtype:
                raise TypeError(
                    f"LBFGS needs every parameter in one dtype (its flat vectors have the parameters' "
                    f"dtype): params[0] has dtype {params[0].dtype}, params[{i}] {p.dtype}"
                )

    # --- the step -------------------------------------------------------------------------------------------

    def step(self, closure: Closure) -> Any:  # type: ignore[override]
        """Runs up to ``max_iter`` L-BFGS iterations, calling ``closure()`` (which returns ``(loss, grads)`` at the
        parameters' current values) at each evaluation; returns the loss of the first evaluation, as the closure
        returned it."""
        if not callable(closure):
            raise TypeError(
                "LBFGS.step takes a closure: a function of no arguments returning (loss, grads) at the parameters' "
                f"current values; got {type(closure).__name__}"
            )
        if self._step_lock.locked():
            if self._closure_thread == threading.get_ident():
                raise RuntimeError("LBFGS.step() called from inside its own closure")
            raise RuntimeError(
                "LBFGS.step() is already running in another thread; steps of one optimizer must not "
                "overlap (use one optimizer per thread, or a lock)"
            )
        with self._step_lock:
            self._closure_thread = threading.get_ident()
            try:
                return self._lbfgs_step(closure)
            finally:
                self._closure_thread = None

    def _evaluate(self, closure: Closure, params: list[np.ndarray]) -> tuple[Any, float, list[np.ndarray]]:
        """Calls the closure: (the loss as returned, as a float, one gradient per parameter). The gradients' dtypes
        and shapes are checked by the first kernel that reads them, before anything is written."""
        result = closure()
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise TypeError(
                "LBFGS's closure must return (loss, grads), the loss at the parameters' current values and one "
                f"gradient per parameter; got {type(result).__name__}"
            )
        loss, grads = result
        value = _loss_value(loss)
        if isinstance(grads, Mapping):
            grads = self._grads_by_name(grads)
        elif isinstance(grads, np.ndarray) or not isinstance(grads, Sequence):
            raise TypeError(
                f"LBFGS's closure must return grads as a list with one gradient per parameter, got {type(grads).__name__}"
            )
        grads = list(grads)
        if len(grads) != len(params):
            raise ValueError(
                f"Expected {len(params)} gradients from the closure (one per parameter, in parameter order), got "
                f"{len(grads)}"
            )
        # torch's _gather_flat_grad: a parameter without a gradient contributes zeros.
        return loss, value, [np.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]

    def _layout_of(self, params: list[np.ndarray]) -> _Layout:
        key = tuple((id(p), p.shape) for p in params)
        if self._layout is None or self._layout.key != key or self._layout.dtype != params[0].dtype:
            self._layout = _Layout(params)
            self._spares.clear()
            self._flats.clear()
        return self._layout

    def _flat_of(self, array: np.ndarray, layout: _Layout) -> _Flat:
        """The _Flat of a state array (checked by _committed), made once and kept while the array stays as it was."""
        flat = self._flats.get(id(array))
        if flat is None or flat.array is not array or not flat.fits(layout):
            flat = self._flats[id(array)] = _Flat(array, layout)
        return flat

    def _committed(self, entry: dict[str, Any], layout: _Layout) -> dict[str, Any]:
        """The state a step starts from (read, never written, by the step), checked: ValueError or TypeError
        naming the key if it could not have come from a step (an edited opt.state)."""
        out: dict[str, Any] = {"func_evals": 0, "n_iter": 0}
        for key in ("func_evals", "n_iter"):
            if key in entry:
                out[key] = _as_count(f"state[{key!r}]", entry[key])
        if out["n_iter"] == 0 and not all(k in entry for k in _HISTORY_KEYS):
            return out  # the first iteration starts afresh and reads none of it
        missing = [k for k in _HISTORY_KEYS if k not in entry]
        if missing:
            raise ValueError(f"LBFGS state has n_iter={out['n_iter']} but lacks {missing}")
        for key in ("d", "prev_flat_grad"):
            out[key] = self._flat_of(_check_vector(f"state[{key!r}]", entry[key], layout), layout)
        for key in ("t", "H_diag", "prev_loss"):
            out[key] = _as_real(f"state[{key!r}]", entry[key])
        lists = {}
        for key in ("old_dirs", "old_stps", "ro"):
            value = entry[key]
            if not isinstance(value, list):
                raise TypeError(f"state[{key!r}] must be a list, got {type(value).__name__}")
            lists[key] = value
        if not len(lists["old_dirs"]) == len(lists["old_stps"]) == len(lists["ro"]):
            raise ValueError(
                "state['old_dirs'], state['old_stps'] and state['ro'] must have one entry per pair, got "
                f"{len(lists['old_dirs'])}, {len(lists['old_stps'])} and {len(lists['ro'])}"
            )
        for key in ("old_dirs", "old_stps"):
            out[key] = [
                self._flat_of(_check_vector(f"state[{key!r}][{i}]", a, layout), layout)
                for i, a in enumerate(lists[key])
            ]
        out["ro"] = [_as_real(f"state['ro'][{i}]", r) for i, r in enumerate(lists["ro"])]
        return out

    def _lbfgs_step(self, closure: Closure) -> Any:
        group = self.param_groups[0]
        self._check_group_if_changed(group)
        params: list[np.ndarray] = group["params"]
        lr = float(group["lr"])
        max_iter = int(group["max_iter"])
        max_eval = int(group["max_eval"])
        tolerance_grad = float(group["tolerance_grad"])
        tolerance_change = float(group["tolerance_change"])
        line_search_fn = group["line_search_fn"]
        history_size = int(group["history_size"])

        layout = self._layout_of(params)
        spare_limit = 2 * min(max_iter, history_size) + _MORE_SPARES
        dtype = layout.dtype.type
        # As torch, the state lives in the first parameter's entry.
        entry = self.state._get(params[0]) or {}
        committed = self._committed(entry, layout)
        # An array the state holds is never also a spare (a state edited with an array a step had recycled).
        held = {id(a) for a in _arrays(entry)}
        self._spares = [f for f in self._spares if id(f.array) not in held]

        # Buffers this step took (nothing the committed state holds is written: undoing a step only restores the
        # parameters), and the committed history pairs it dropped (recycled only once the step is kept).
        working: list[_Flat] = []

        def take() -> _Flat:
            while self._spares:
                flat = self._spares.pop()
                if flat.fits(layout):
                    working.append(flat)
                    return flat
            flat = _Flat(np.empty(layout.n, dtype=layout.dtype), layout)
            working.append(flat)
            return flat

        def release(flat: _Flat) -> None:
            if any(flat is w for w in working) and not any(flat is s for s in self._spares):
                self._spares.append(flat)

        snapshot: _Flat | None = None  # the parameters when the step began, once the step is about to move them
        try:
            orig_loss, loss, grads = self._evaluate(closure, params)
            current_evals = 1
            func_evals = committed["func_evals"] + 1
            state_n_iter = committed["n_iter"]
            copy = take() if line_search_fn is not None else None  # the line search keeps gradients across calls
            max_abs, sum_abs, _ = _core.flat_grad_stats(params, grads, None if copy is None else copy.views)
            g = _Grad(grads if copy is None else copy.views, max_abs, copy)
            opt_cond = dtype(max_abs) <= dtype(tolerance_grad)

            if opt_cond:  # optimal condition: only the evaluation is counted
                new_entry = dict(entry)
                new_entry.update(func_evals=func_evals, n_iter=state_n_iter)
                self._commit(params[0], new_entry, entry, working, spare_limit)
                return orig_loss

            d: _Flat | None = committed.get("d")
            t: float = committed.get("t", 0.0)
            old_dirs: list[_Flat] = list(committed.get("old_dirs", []))
            old_stps: list[_Flat] = list(committed.get("old_stps", []))
            ro: list[float] = list(committed.get("ro", []))
            H_diag: float = committed.get("H_diag", 1.0)
            prev_flat_grad: _Flat | None = committed.get("prev_flat_grad")
            prev_loss: float = committed.get("prev_loss", 0.0)

            def working_or_new(flat: _Flat | None) -> _Flat:
                return flat if flat is not None and any(flat is w for w in working) else take()

            x: _Flat | None = None  # the line search's x_init
            n_iter = 0
            while n_iter < max_iter:
                n_iter += 1
                state_n_iter += 1

                # compute gradient descent direction
                if state_n_iter == 1:
                    d = working_or_new(None)
                    old_dirs, old_stps, ro, H_diag = [], [], [], 1.0
                    prev_flat_grad = working_or_new(None)
                    _core.flat_grad_stats(params, g.arrays, prev_flat_grad.views)  # prev_flat_grad = flat_grad.clone()
                    gtd = _core.flat_axpy_dot(d.views, g.arrays, g.arrays, None)  # d = flat_grad.neg(); g.d
                else:
                    assert d is not None and prev_flat_grad is not None
                    # y = flat_grad - prev_flat_grad, s = d * t, prev_flat_grad = flat_grad, in one pass
                    y, s = take(), take()
                    prev = working_or_new(prev_flat_grad)
                    ys, yy = _core.flat_history(
                        y.views,
                        g.arrays,
                        prev.views,
                        None if prev is prev_flat_grad else prev_flat_grad.views,
                        d.views,
                        s.views,
                        t,
                    )
                    prev_flat_grad = prev
                    if ys > 1e-10:
                        # updating memory (torch pops one pair when the history is full; a history_size lowered
                        # since drops as many as needed)
                        while len(old_dirs) >= history_size:
                            release(old_dirs.pop(0))
                            release(old_stps.pop(0))
                            ro.pop(0)
                        old_dirs.append(y)
                        old_stps.append(s)
                        ro.append(1.0 / ys)
                        H_diag = ys / yy  # update scale of initial Hessian approximation
                    else:
                        release(y)
                        release(s)
                    new_d = working_or_new(d)
                    gtd = _two_loop(new_d, g.arrays, old_dirs, old_stps, ro, H_diag)
                    d = new_d
                prev_loss = loss

                # compute step length
                if state_n_iter == 1:
                    t = min(1.0, 1.0 / sum_abs) * lr if sum_abs != 0 else lr
                else:
                    t = lr

                # directional derivative is below tolerance
                if gtd > -tolerance_change:
                    break

                ls_func_evals = 0
                if line_search_fn is not None:
                    # x_init: the first iteration's copy is also the step's snapshot, the later ones share a buffer
                    if snapshot is None:
                        snapshot = x = take()
                    elif x is None or x is snapshot:
                        x = take()
                    search = _LineSearch(self, closure, params, d, x, take, release)
                    loss, g, t, ls_func_evals = search.run(t, loss, g, gtd, tolerance_change, max_eval - current_evals)
                    d_max = _core.flat_step(params, d.views, t, None, x.views)  # self._add_grad(t, d) from x_init
                    opt_cond = dtype(g.max_abs) <= dtype(tolerance_grad)
                else:
                    # no line search, simply move with fixed-step
                    if snapshot is None:
                        snapshot = take()
                        d_max = _core.flat_step(params, d.views, t, snapshot.views)
                    else:
                        d_max = _core.flat_step(params, d.views, t)
                    if n_iter != max_iter:
                        # re-evaluate function only if not in last iteration (torch: no use in a stochastic setting)
                        _, loss, grads = self._evaluate(closure, params)
                        max_abs, _, _ = _core.flat_grad_stats(params, grads)
                        g = _Grad(grads, max_abs)
                        opt_cond = dtype(max_abs) <= dtype(tolerance_grad)
                        ls_func_evals = 1

                # update func eval
                current_evals += ls_func_evals
                func_evals += ls_func_evals

                # check conditions
                if n_iter == max_iter:
                    break
                if current_evals >= max_eval:
                    break
                if opt_cond:  # optimal condition
                    break
                # lack of progress: max |d * t| (rounded in the parameters' dtype as torch's d.mul(t))
                with np.errstate(all="ignore"):
                    no_progress = abs(dtype(d_max) * dtype(t)) <= dtype(tolerance_change)
                if no_progress:
                    break
                if abs(loss - prev_loss) < tolerance_change:
                    break

            assert d is not None and prev_flat_grad is not None
            new_entry = {
                "func_evals": func_evals,
                "n_iter": state_n_iter,
                "d": d.array,
                "t": float(t),
                "old_dirs": [f.array for f in old_dirs],
                "old_stps": [f.array for f in old_stps],
                "ro": list(ro),
                "H_diag": float(H_diag),
                "prev_flat_grad": prev_flat_grad.array,
                "prev_loss": float(prev_loss),
            }
        except BaseException:
            if snapshot is not None:
                for p, v in zip(params, snapshot.views, strict=True):
                    np.copyto(p, v)
            for flat in working:
                release(flat)
            del self._spares[spare_limit:]
            raise
        self._commit(params[0], new_entry, entry, working, spare_limit)
        return orig_loss

    def _commit(
        self,
        p0: np.ndarray,
        new_entry: dict[str, Any],
        old_entry: dict[str, Any],
        working: list[_Flat],
        spare_limit: int,
    ) -> None:
        """Stores the step's state (one assignment) and recycles the buffers no state refers to any more."""
        self.state._replace([(p0, new_entry)])
        kept = {id(a) for a in _arrays(new_entry)}
        layout = self._layout
        assert layout is not None
        candidates = [f for f in working] + [self._flats[id(a)] for a in _arrays(old_entry) if id(a) in self._flats]
        for flat in candidates:
            a = flat.array
            if id(a) in kept or any(flat is s for s in self._spares):
                continue
            # only arrays the optimizer owns (an edited state may hold views of the caller's memory)
            if a.base is None and flat.fits(layout) and a.flags.writeable:
                self._spares.append(flat)
        del self._spares[spare_limit:]
        self._flats = {id(a): self._flats[id(a)] for a in _arrays(new_entry) if id(a) in self._flats}
        for flat in working:
            if id(flat.array) in kept:
                self._flats[id(flat.array)] = flat

    # --- state_dict -----------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        _not_in_closure(self, "state_dict")
        return super().state_dict()

    def _state_dict(self) -> dict[str, Any]:
        sd = super()._state_dict()
        for entry in sd["state"].values():
            for key in ("old_dirs", "old_stps", "ro"):
                if key in entry:
                    entry[key] = [v.copy() if isinstance(v, np.ndarray) else v for v in entry[key]]
        return sd

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> None:
        _not_in_closure(self, "load_state_dict")
        super().load_state_dict(state_dict, strict)

    def _load_state_dict(self, state_dict: Mapping[str, Any], strict: bool) -> None:
        if not isinstance(state_dict, Mapping) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("state_dict must be a mapping with keys 'state' and 'param_groups'")
        saved_groups = state_dict["param_groups"]
        if not isinstance(saved_groups, Sequence) or len(saved_groups) != 1:
            raise ValueError("loaded state dict has a different number of parameter groups")
        saved = saved_groups[0]
        group = self.param_groups[0]
        if not isinstance(saved, Mapping) or not isinstance(saved.get("params"), Sequence):
            raise ValueError("loaded parameter group 0 must be a mapping with a 'params' list")
        names = self._names()
        keys: list[Any] = names if names is not None else list(range(len(group["params"])))
        if list(saved["params"]) != keys:
            raise ValueError(
                f"loaded state dict's parameters {list(saved['params'])} do not match the optimizer's {keys}"
            )
        new_group = {**self.defaults, **{k: v for k, v in saved.items() if k not in ("params", "param_names")}}
        new_group["params"] = group["params"]
        if "param_names" in group:
            new_group["param_names"] = group["param_names"]
        self._check_group(new_group)
        saved_state = state_dict["state"]
        if not isinstance(saved_state, Mapping):
            raise ValueError("state_dict['state'] must be a mapping from parameter index to state")
        unknown = [k for k in saved_state if k != keys[0]]
        if unknown:
            raise ValueError(
                f"LBFGS keeps its state in the first parameter's entry ({keys[0]!r}); the state_dict has "
                f"state for {unknown}"
            )
        layout = _Layout(group["params"])
        new_state: list[tuple[np.ndarray, dict[str, Any]]] = []
        if keys[0] in saved_state:
            new_state.append(
                (group["params"][0], _load_entry(saved_state[keys[0]], layout, int(new_group["history_size"])))
            )
        group.clear()
        group.update(new_group)
        self.state._replace(new_state)
        self._flats.clear()


class _LineSearch:
    """torch's _strong_wolfe (after minFunc's lswolfe), on the optimizer's flat buffers. Each evaluation sets
    p = x + t d (x the parameters when the iteration began; the first evaluation also takes that copy), calls the
    closure and copies its gradient into a buffer of the search (the closure may reuse its arrays), with
    max |g| and g.d from the same pass. torch restores p = x after each evaluation; here the next evaluation, and
    the step after the search, write p from x instead, with the same result."""

    def __init__(
        self,
        optimizer: LBFGS,
        closure: Closure,
        params: list[np.ndarray],
        d: _Flat,
        x: _Flat,
        take: Callable[[], _Flat],
        release: Callable[[_Flat], None],
    ) -> None:
        self.optimizer = optimizer
        self.closure = closure
        self.params = params
        self.d = d
        self.x = x
        self.take = take
        self.release = release
        self.taken: list[_Flat] = []
        self.copied = False
        self.d_max = 0.0

    def evaluate(self, t: float, live: list[_Grad]) -> tuple[float, _Grad, float]:
        """obj_func(x, t, d): (loss, gradient, g.d) at x + t d. Buffers of earlier evaluations that no ``live``
        gradient uses go back to the pool first."""
        in_use = [g.flat for g in live]
        for flat in list(self.taken):
            if not any(flat is f for f in in_use):
                self.taken.remove(flat)
                self.release(flat)
        if not self.copied:
            self.d_max = _core.flat_step(self.params, self.d.views, t, self.x.views)
            self.copied = True
        else:
            _core.flat_step(self.params, self.d.views, t, None, self.x.views)
        _, loss, grads = self.optimizer._evaluate(self.closure, self.params)
        flat = self.take()
        self.taken.append(flat)
        max_abs, _, gtd = _core.flat_grad_stats(self.params, grads, flat.views, self.d.views)
        return loss, _Grad(flat.views, max_abs, flat), gtd

    def run(
        self,
        t: float,
        f: float,
        g: _Grad,
        gtd: float,
        tolerance_change: float,
        max_ls: int,
        c1: float = 1e-4,
        c2: float = 0.9,
    ) -> tuple[float, _Grad, float, int]:
        f_new, g_new, gtd_new = self.evaluate(t, [g])
        d_norm = self.d_max  # d.abs().max(), from the first evaluation's pass
        ls_func_evals = 1

        # bracket an interval containing a point satisfying the Wolfe criteria
        t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
        done = False
        ls_iter = 0
        bracket: list[float] = []
        bracket_f: list[float] = []
        bracket_g: list[_Grad] = []
        bracket_gtd: list[float] = []
        while ls_iter < max_ls:
            # check conditions
            if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
                bracket, bracket_f = [t_prev, t], [f_prev, f_new]
                bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
                break
            if abs(gtd_new) <= -c2 * gtd:
                bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
                done = True
                break
            if gtd_new >= 0:
                bracket, bracket_f = [t_prev, t], [f_prev, f_new]
                bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
                break
            # interpolate
            min_step = t + 0.01 * (t - t_prev)
            max_step = t * 10
            tmp = t
            t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
            # next step
            t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new, gtd_new
            f_new, g_new, gtd_new = self.evaluate(t, [g, g_prev])
            ls_func_evals += 1
            ls_iter += 1

        # reached max number of iterations?
        if ls_iter == max_ls:
            bracket, bracket_f, bracket_g = [0.0, t], [f, f_new], [g, g_new]

        # zoom phase: we now have a point satisfying the criteria, or a bracket around it; refine the bracket
        # until we find the exact point satisfying the criteria
        insuf_progress = False
        low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
        while not done and ls_iter < max_ls:
            # line-search bracket is so small
            if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
                break
            # compute new trial value
            t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1])
            # test that we are making sufficient progress: if t is too close to a boundary, and we made
            # insufficient progress last time or t is at a boundary, evaluate 0.1 * the bracket's length away from
            # the nearest boundary point
            eps = 0.1 * (max(bracket) - min(bracket))
            if min(max(bracket) - t, t - min(bracket)) < eps:
                # interpolation close to boundary
                if insuf_progress or t >= max(bracket) or t <= min(bracket):
                    # evaluate at 0.1 away from boundary
                    if abs(t - max(bracket)) < abs(t - min(bracket)):
                        t = max(bracket) - eps
                    else:
                        t = min(bracket) + eps
                    insuf_progress = False
                else:
                    insuf_progress = True
            else:
                insuf_progress = False

            # Evaluate new point
            f_new, g_new, gtd_new = self.evaluate(t, [g, *bracket_g])
            ls_func_evals += 1
            ls_iter += 1

            if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
                # Armijo condition not satisfied or not lower than lowest point
                bracket[high_pos], bracket_f[high_pos] = t, f_new
                bracket_g[high_pos], bracket_gtd[high_pos] = g_new, gtd_new
                low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
            else:
                if abs(gtd_new) <= -c2 * gtd:
                    # Wolfe conditions satisfied
                    done = True
                elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                    # old high becomes new low
                    bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                    bracket_g[high_pos], bracket_gtd[high_pos] = bracket_g[low_pos], bracket_gtd[low_pos]
                # new point becomes new low
                bracket[low_pos], bracket_f[low_pos] = t, f_new
                bracket_g[low_pos], bracket_gtd[low_pos] = g_new, gtd_new

        # return stuff
        t, f_new, g_new = bracket[low_pos], bracket_f[low_pos], bracket_g[low_pos]
        for flat in self.taken:
            if flat is not g_new.flat:
                self.release(flat)
        if g.flat is not None and g.flat is not g_new.flat:
            self.release(g.flat)
        return f_new, g_new, t, ls_func_evals


def _two_loop(
    d: _Flat, g: list[np.ndarray], old_dirs: list[_Flat], old_stps: list[_Flat], ro: list[float], H_diag: float
) -> float:
    """torch's two-loop recursion, into ``d``: q = -g; q -= al_i y_i (newest pair first, al_i = ro_i s_i.q);
    d = r = H_diag q; r += (al_i - be_i) s_i (oldest first, be_i = ro_i y_i.r). Each axpy is one pass fused with
    the dot product that reads its result (the last with g.d, which it returns): 2 m + 1 passes for m pairs."""
    num_old = len(old_dirs)
    if num_old == 0:
        return _core.flat_axpy_dot(d.views, g, g, None, H_diag)
    al = [0.0] * num_old
    dot = _core.flat_axpy_dot(d.views, g, old_stps[-1].views, None)
    for i in range(num_old - 1, -1, -1):
        al[i] = dot * ro[i]
        if i > 0:
            dot = _core.flat_axpy_dot(d.whole, old_dirs[i].whole, old_stps[i - 1].whole, -al[i])
        else:
            dot = _core.flat_axpy_dot(d.whole, old_dirs[0].whole, old_dirs[0].whole, -al[0], H_diag)
    for i in range(num_old - 1):
        be_i = dot * ro[i]
        dot = _core.flat_axpy_dot(d.whole, old_stps[i].whole, old_dirs[i + 1].whole, al[i] - be_i)
    be_i = dot * ro[-1]
    return _core.flat_axpy_dot(d.views, old_stps[-1].views, g, al[-1] - be_i)


def _divide(a: float, b: float) -> float:
    """a / b with IEEE semantics (torch divides tensors: no ZeroDivisionError)."""
    try:
        return a / b
    except ZeroDivisionError:
        return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1.0, b)


def _cubic_interpolate(
    x1: float, f1: float, g1: float, x2: float, f2: float, g2: float, bounds: tuple[float, float] | None = None
) -> float:
    """torch's _cubic_interpolate (from minFunc's polyinterp): the minimiser of the cubic through two points with
    their values and derivatives, clamped to ``bounds`` (default: between the points); their midpoint when the
    cubic has no minimum."""
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * _divide(f1 - f2, x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square >= 0:
        d2 = math.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * _divide(g2 + d2 - d1, g2 - g1 + 2 * d2)
        else:
            min_pos = x1 - (x1 - x2) * _divide(g1 + d2 - d1, g1 - g2 + 2 * d2)
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def _loss_value(loss: Any) -> float:
    """float(loss), as torch takes it, for a real number or a one-element real array."""
    if isinstance(loss, np.ndarray) and loss.size == 1 and loss.dtype.kind in "fiu":
        return float(loss.reshape(()))
    if isinstance(loss, bool) or not isinstance(loss, numbers.Real):
        raise TypeError(f"LBFGS's closure must return a real loss (a float), got {type(loss).__name__}: {loss!r}")
    return float(loss)


def _as_count(where: str, value: Any) -> int:
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 0:
        raise ValueError(f"{where} must be a non-negative int, got {value!r}")
    return int(value)


def _as_real(where: str, value: Any) -> float:
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where} must be a real number, got {type(value).__name__}: {value!r}")
    return float(value)


def _check_vector(where: str, value: Any, layout: _Layout) -> np.ndarray:
    """A flat vector of the state as a step uses it: 1-D, all parameters' elements, their dtype, C-contiguous."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{where} must be a numpy array, got {type(value).__name__}")
    if value.dtype != layout.dtype:
        raise TypeError(f"{where} has dtype {value.dtype} but the parameters have dtype {layout.dtype}")
    if value.shape != (layout.n,):
        raise ValueError(
            f"{where} has shape {value.shape}; the parameters have {layout.n} elements in all, "
            f"so it must have shape ({layout.n},)"
        )
    if not value.flags.c_contiguous:
        raise ValueError(f"{where} is not C-contiguous")
    return value


def _arrays(entry: Mapping[str, Any]) -> list[np.ndarray]:
    """Every array of a state entry."""
    out = [entry[k] for k in ("d", "prev_flat_grad") if isinstance(entry.get(k), np.ndarray)]
    for k in ("old_dirs", "old_stps"):
        value = entry.get(k)
        if isinstance(value, list):
            out.extend(a for a in value if isinstance(a, np.ndarray))
    return out


def _load_entry(entry: Any, layout: _Layout, history_size: int) -> dict[str, Any]:
    """A loaded state entry, checked, with private copies of its arrays in the parameters' dtype."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"LBFGS's state must be a mapping, got {type(entry).__name__}")
    unknown = sorted(set(entry) - set(_STATE_KEYS) - {"al"})
    if unknown:
        raise ValueError(f"LBFGS's state has unexpected keys {unknown} (expected {sorted(_STATE_KEYS)})")
    out: dict[str, Any] = {}
    for key in ("func_evals", "n_iter"):
        if key not in entry:
            raise ValueError(f"LBFGS's state is missing {key!r}")
        out[key] = _as_count(f"state[{key!r}]", entry[key])
    present = [k for k in _HISTORY_KEYS if k in entry]
    if not present:
        if out["n_iter"] != 0:
            raise ValueError(f"LBFGS's state has n_iter={out['n_iter']} but no history ({list(_HISTORY_KEYS)})")
        return out
    missing = [k for k in _HISTORY_KEYS if k not in entry]
    if missing:
        raise ValueError(f"LBFGS's state is missing {missing}")

    def vector(where: str, value: Any) -> np.ndarray:
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{where} must be a numpy array, got {type(value).__name__}")
        if value.dtype.kind != "f":
            raise TypeError(f"{where} has dtype {value.dtype}; LBFGS's state is floating point")
        if value.size != layout.n or value.ndim != 1:
            raise ValueError(
                f"{where} has shape {value.shape}; the parameters have {layout.n} elements in all, so it "
                f"must have shape ({layout.n},)"
            )
        return np.array(value, dtype=layout.dtype, order="C", copy=True)

    for key in ("d", "prev_flat_grad"):
        out[key] = vector(f"state[{key!r}]", entry[key])
    for key in ("t", "H_diag", "prev_loss"):
        out[key] = _as_real(f"state[{key!r}]", entry[key])
    lengths = []
    for key in ("old_dirs", "old_stps", "ro"):
        value = entry[key]
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"state[{key!r}] must be a list, got {type(value).__name__}")
        lengths.append(len(value))
    if len(set(lengths)) != 1:
        raise ValueError(
            f"state['old_dirs'], state['old_stps'] and state['ro'] must have one entry per pair, got "
            f"{lengths[0]}, {lengths[1]} and {lengths[2]}"
        )
    if lengths[0] > history_size:
        raise ValueError(f"LBFGS's state has {lengths[0]} history pairs but history_size is {history_size}")
    for key in ("old_dirs", "old_stps"):
        out[key] = [vector(f"state[{key!r}][{i}]", a) for i, a in enumerate(entry[key])]
    out["ro"] = [_as_real(f"state['ro'][{i}]", r) for i, r in enumerate(entry["ro"])]
    return out
