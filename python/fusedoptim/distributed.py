"""Data-parallel training and sharded optimizer state (ZeRO stage 1) over MPI, through mpi4py.

Every rank runs the same training loop on its own slice of each global batch; the wrappers here make the
ranks agree:

- :class:`DataParallel` broadcasts the initial parameters from rank 0, then at each step averages the
  gradients over the ranks with **one in-place Allreduce per dtype** (an arena's flat gradient buffer is
  reduced where it is; separate arrays are packed into one flat bucket allocated once) and runs the wrapped
  optimizer's fused step, identically on every rank.
- :class:`ZeroRedundancyOptimizer` splits the flat parameters into one contiguous slice per rank: gradients
  are reduce-scattered (each rank receives the sum of its slice only), each rank steps its slice with the
  fused kernel and keeps optimizer state for that slice alone (state memory falls N-fold), and the updated
  parameters are all-gathered in place.

mpi4py is imported on first use, so ``import fusedoptim`` never needs it; install it with
``pip install "fusedoptim[mpi]"`` (mpi4py and the MPICH wheel, which provides ``mpiexec``). Run with e.g.
``mpiexec -n 2 python -m mpi4py train.py`` (see Failures below).

Example (each rank computes the gradient of its part of the global batch; ``opt.step`` averages them)::

    import numpy as np, fusedoptim
    from fusedoptim import distributed

    arena = fusedoptim.ParamArena({"w": (20,), "b": (1,)})
    opt = distributed.DataParallel(fusedoptim.Adam(arena, lr=1e-2))   # broadcasts rank 0's parameters
    for x, y in my_batches():                     # the same global batches on every rank
        x, y = x[opt.rank::opt.world_size], y[opt.rank::opt.world_size]
        backward(arena.params, arena.grads, x, y)  # gradient of the local mean loss, into arena.grads
        opt.step(arena.grads)                      # one Allreduce of arena.flat_grads, then the fused step
    opt.check_consistent()                         # optional: raises if the ranks' parameters differ

With equal local batches, the average of the ranks' mean gradients is the mean gradient of the global batch,
so the run follows the single-process run with that batch (to the rounding of the sums).

Failures. An error on one rank must not leave the others waiting in a collective it never joins. Every public
call that communicates (the constructors, ``step``, ``average_gradients``, ``load_state_dict``,
``consolidated_state_dict``, ``check_consistent``, :func:`save`, :func:`load`) first does its local part (the
checks of the gradients and arguments, LAMB refused under ZeRO, the root's write of a checkpoint, each rank's
read of one), then the ranks agree on the outcome with one small Allreduce (3 integers: a step's only extra
cost, measured in benchmarks/DISTRIBUTED.md), before any data moves. If any rank failed, every rank raises:
the failing rank its own exception, the others one of the same type saying ``rank R failed in <call>:
<message>``, and nothing has changed on any rank (a load that succeeded on some ranks is undone there). A step
called with different ``skip_if_nonfinite`` / ``max_grad_norm`` / ``norm_type`` on different ranks is refused
the same way.

What the library cannot agree on is an exception outside its calls: with ``mpiexec -n 2 python train.py`` an
uncaught exception ends that rank while the others wait in their next collective (the library's or your own)
forever. Run ``mpiexec -n 2 python -m mpi4py train.py``: mpi4py then aborts the whole job (``MPI_Abort``) on an
uncaught exception on any rank.
"""

from __future__ import annotations

import builtins
import copy
import math
import os
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import numpy as np

from . import _core
from . import checkpoint as _checkpoint
from . import clip as _clip
from .arena import ParamArena
from .optimizer import Optimizer

__all__ = [
    "MPI_EXTRA",
    "DataParallel",
    "ZeroRedundancyOptimizer",
    "load",
    "mpi",
    "save",
    "shard_bounds",
]

MPI_EXTRA = 'pip install "fusedoptim[mpi]"'

# Shard boundaries fall on multiples of 64 bytes' worth of float32 elements, so every rank's slice starts on a
# cache line (and a SIMD-aligned address) when the flat buffer does.
_ALIGN = 16


def mpi() -> Any:
    """The ``mpi4py.MPI`` module, imported now; a clear ImportError naming the extra when it is missing."""
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError(
            "fusedoptim.distributed needs mpi4py and an MPI library; install them with "
            f'{MPI_EXTRA} (or pip install "mpi4py>=4" mpich), then run under mpiexec ({error})'
        ) from error
    return MPI


# --- layout: pure functions, testable without MPI ----------------------------------------------------------


def shard_bounds(total: int, world_size: int, align: int = _ALIGN) -> list[tuple[int, int]]:
    """Contiguous ``[start, end)`` slices of ``range(total)``, one per rank, balanced to within ``align``
    elements, with every inner boundary a multiple of ``align``.

    >>> shard_bounds(100, 3)
    [(0, 32), (32, 64), (64, 100)]
    """
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise ValueError(f"total must be a non-negative int, got {total!r}")
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}")
    if isinstance(align, bool) or not isinstance(align, int) or align < 1:
        raise ValueError(f"align must be a positive int, got {align!r}")
    # Each inner cut is the ideal one, r * total / N, rounded to the nearest multiple of align.
    cuts = [0] + [min(total, (r * total // world_size + align // 2) // align * align) for r in range(1, world_size)]
    cuts.append(total)
    return [(cuts[r], cuts[r + 1]) for r in range(world_size)]


def shard_pieces(sizes: Sequence[int], start: int, end: int) -> list[tuple[int, int, int]]:
    """Where the flat slice ``[start, end)`` meets each array of ``sizes`` laid end to end: ``(array index,
    lo, hi)`` with ``lo:hi`` the range inside that array (flattened), in order, empty intersections omitted.

    >>> shard_pieces([4, 6, 5], 3, 12)
    [(0, 3, 4), (1, 0, 6), (2, 0, 2)]
    """
    pieces, offset = [], 0
    for i, size in enumerate(sizes):
        lo, hi = max(start, offset), min(end, offset + size)
        if lo < hi:
            pieces.append((i, lo - offset, hi - offset))
        offset += size
    return pieces


def assemble_state(
    sizes: Sequence[int], shards: Sequence[Sequence[tuple[int, int, int, Mapping[str, Any]]]]
) -> dict[int, dict[str, Any]]:
    """Re-assembles per-array optimizer state from shards: ``shards[r]`` lists rank r's pieces as
    ``(array index, lo, hi, state entry)``. Array entries are concatenated into flat arrays of the array's
    size; scalar entries (``step``, NAdam's ``mu_product``) must agree over an array's pieces and are kept once.

    >>> s = assemble_state([3], [[(0, 0, 2, {"step": 1, "m": np.array([1., 2.])})], [(0, 2, 3, {"step": 1, "m": np.array([3.])})]])
    >>> s[0]["m"], s[0]["step"]
    (array([1., 2., 3.]), 1)
    """
    merged: dict[int, dict[str, Any]] = {}
    covered: dict[int, int] = {}
    for rank, pieces in enumerate(shards):
        for i, lo, hi, entry in pieces:
            if not entry:
                continue
            target = merged.setdefault(i, {})
            covered[i] = covered.get(i, 0) + (hi - lo)
            for key, value in entry.items():
                if isinstance(value, np.ndarray):
                    if key not in target:
                        target[key] = np.empty(sizes[i], dtype=value.dtype)
                    target[key][lo:hi] = value.reshape(-1)
                elif key not in target:
                    target[key] = value
                elif target[key] != value:
                    raise ValueError(
                        f"the shards disagree on state {key!r} of parameter {i}: {target[key]!r} and {value!r} "
                        f"(rank {rank}); they were not stepped together"
                    )
    for i, count in covered.items():
        if count != sizes[i]:
            raise ValueError(f"the shards hold state for {count} of parameter {i}'s {sizes[i]} elements")
    return merged


def compare_layouts(layouts: Sequence[Any], what: str = "parameters") -> str | None:
    """A message naming the ranks whose layout differs from rank 0's (and how), or None when all agree."""
    different = [r for r, layout in enumerate(layouts) if layout != layouts[0]]
    if not different:
        return None
    details = []
    for r in different:
        for key in layouts[0]:
            if layouts[r].get(key) != layouts[0].get(key):
                details.append(
                    f"rank {r} has {key} {_short(layouts[r].get(key))}, rank 0 has {_short(layouts[0][key])}"
                )
                break
    return f"the ranks' {what} do not match (every rank must build the same model and optimizer): " + "; ".join(details)


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _layout(optimizer: Optimizer) -> dict[str, Any]:
    """What must be equal on every rank: class, parameter shapes and dtypes, groups and hyperparameters."""
    groups = []
    for group in optimizer.param_groups:
        hyper = {k: v for k, v in group.items() if k not in ("params", "param_names")}
        groups.append((len(group["params"]), repr(sorted(hyper.items()))))
    return {
        "optimizer": type(optimizer).__name__,
        "parameter count": len(optimizer.parameters()),
        "arena shapes": [dict(arena.shapes) for arena in optimizer.arenas],
        "parameter shapes": [(tuple(p.shape), p.dtype.str) for p in optimizer.parameters()],
        "parameter names": optimizer.parameter_names(),
        "parameter groups": groups,
    }


def _checksum(arrays: Sequence[np.ndarray]) -> list[tuple[float, int]]:
    # The float64 sum shows gross differences readably; the CRC of the bytes catches any single bit. (The ignore:
    # numpy's stubs declare ndarray.__buffer__, the Buffer protocol, only for Python >= 3.12; mypy checks 3.10.)
    return [
        (float(np.sum(a, dtype=np.float64)), zlib.crc32(np.ascontiguousarray(a).reshape(-1).view(np.uint8)))  # type: ignore[arg-type]
        for a in arrays
    ]


def _state_bytes(state: Any) -> int:
    return sum(v.nbytes for i in state for v in state[i].values() if isinstance(v, np.ndarray))


# --- the wrappers -------------------------------------------------------------------------------------------


class _Distributed:
    """What both wrappers share: the communicator, the cross-rank layout check, the parameter broadcast,
    gradient resolution and packing, the consistency check."""

    def __init__(
        self,
        optimizer: Optimizer,
        comm: Any,
        threads: int | str | None,
        root: int,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.MPI = mpi()
        self.comm = comm if comm is not None else self.MPI.COMM_WORLD
        if not isinstance(self.comm, self.MPI.Intracomm):
            raise TypeError(f"comm must be an mpi4py intracommunicator, got {type(comm).__name__}")
        self.rank: int = self.comm.Get_rank()
        self.world_size: int = self.comm.Get_size()
        # The agreement's buffer (see _agree), allocated once: a step allocates nothing.
        self._status = np.zeros(3, np.int64)
        # Local checks first, then the ranks agree, then the collectives: a rank that refuses its optimizer
        # (LAMB under ZeRO) or an argument must not leave the others waiting in the layout comparison.
        error = None
        try:
            if not isinstance(optimizer, Optimizer):
                raise TypeError(f"optimizer must be a fusedoptim optimizer, got {type(optimizer).__name__}")
            if isinstance(root, bool) or not isinstance(root, int) or not 0 <= root < self.world_size:
                raise ValueError(f"root must be a rank in [0, {self.world_size}), got {root!r}")
            if (
                threads is not None
                and threads != "auto"
                and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 0)
            ):
                raise ValueError(f"threads must be 'auto', None or an int >= 0, got {threads!r}")
            self._check_optimizer(optimizer)
            # The root and the wrapper's settings are compared with the layout: Bcasts from different roots hang.
            layout = {**_layout(optimizer), "root": root, **(settings or {})}
        except Exception as exception:
            error = exception
        self._agree(error, f"{type(self).__name__}()")
        self.root = root
        self.optimizer = optimizer
        self._set_threads(threads)
        # Before any collective that depends on sizes: a rank with another model would otherwise hang in (or
        # corrupt) a collective of the wrong length. Every rank sees every layout, so every rank raises.
        message = compare_layouts(self.comm.allgather(layout))
        if message is not None:
            raise ValueError(message)
        self._params = optimizer.parameters()
        self.skipped_steps = 0
        self.last_grad_norm: float | None = None

    def _check_optimizer(self, optimizer: Optimizer) -> None:
        """What a wrapper refuses in an optimizer; checked on each rank before the ranks agree."""

    def _agree(self, error: BaseException | None, what: str, key: Any = None) -> None:
        """Makes every rank raise when any rank failed its local checks, before a collective the failed rank
        would not join. A collective: every rank calls it at the same point with its outcome (``error``: the
        exception its local checks raised, or None) and optionally a ``key`` that must be equal on every rank
        (a step's options).

        One Allreduce (MAX) of 3 integers: the failure flag, a CRC of the key and the CRC negated (the max and
        the min in one reduction). Only when something is wrong does an allgather tell every rank which rank
        failed and why. The failing rank raises ``error`` itself; the others raise an exception of the same
        built-in type (else RuntimeError) saying ``rank R failed in <what>: <message>``; keys that differ raise
        ValueError on every rank."""
        status = self._status
        code = 0 if key is None else zlib.crc32(repr(key).encode())
        status[0], status[1], status[2] = error is not None, code, -code
        self.comm.Allreduce(self.MPI.IN_PLACE, status, op=self.MPI.MAX)
        if status[0] == 0 and status[1] == -status[2]:
            return
        reports = self.comm.allgather((None if error is None else (type(error).__name__, str(error)), repr(key)))
        if error is not None:
            raise error
        failed = [(r, report) for r, (report, _) in enumerate(reports) if report is not None]
        if failed:
            raise _same_kind(
                failed[0][1][0], "; ".join(f"rank {r} failed in {what}: {name}: {text}" for r, (name, text) in failed)
            )
        raise ValueError(
            f"{what} was called with different arguments on different ranks (every rank must pass "
            "the same): " + "; ".join(f"rank {r}: {k}" for r, (_, k) in enumerate(reports))
        )

    def _load_agreed(self, state_dict: Mapping[str, Any], strict: bool, what: str) -> None:
        """load_state_dict as a collective: each rank loads (every check before any change), the ranks agree,
        and a rank whose load succeeded while another's failed puts back the state it had."""
        error = None
        before: Mapping[str, Any] | None = None
        try:
            before = self.state_dict()
            self._load_local(state_dict, strict)
        except Exception as exception:
            error = exception
        try:
            self._agree(error, what)
        except Exception:
            if error is None and before is not None:
                self._load_local(before)
            raise

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def _load_local(self, state_dict: Mapping[str, Any], strict: bool = True) -> None:
        """load_state_dict on this rank alone (no agreement): all of it checked before anything changes."""
        raise NotImplementedError

    def _set_threads(self, threads: int | str | None) -> None:
        """Ranks on one machine share its cores: by default each gets cores / ranks-per-machine OpenMP threads
        (at least 1), unless OMP_NUM_THREADS was set. More threads than cores make a step wait for a
        descheduled thread, and MPICH busy-polls while it waits, so oversubscribing costs whole time slices.
        The ranks per machine are counted (a collective) whatever ``threads`` is, so ranks given different
        ``threads`` run the same collectives."""
        local = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED)
        try:
            per_node = local.Get_size()
        finally:
            local.Free()
        if threads is None or (threads == "auto" and "OMP_NUM_THREADS" in os.environ):
            return
        if threads == "auto":
            available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            threads = max(1, min(available, (os.cpu_count() or 1) // per_node))
        assert isinstance(threads, int)  # __init__ refused anything but None, "auto" or an int
        _core.set_num_threads(threads)

    # The wrapped optimizer's vocabulary, so schedulers and loops treat a wrapper like an optimizer.
    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    @property
    def defaults(self) -> dict[str, Any]:
        return self.optimizer.defaults

    @property
    def state(self) -> Any:
        return self.optimizer.state

    def _resolve(self, grads: Any) -> list[np.ndarray]:
        """One gradient array per internal parameter (an arena counts as one, its flat gradient buffer)."""
        opt = self.optimizer
        if isinstance(grads, ParamArena):
            grads = grads.grads
        if isinstance(grads, Mapping):
            arrays = opt._grads_by_name(grads)
        elif isinstance(grads, Sequence) and not isinstance(grads, (str, bytes)):
            arrays = list(grads)
        else:
            raise TypeError(
                f"grads must be a list with one gradient per parameter or a dict by name, got {type(grads).__name__}"
            )
        if len(arrays) != len(self._params):
            raise ValueError(
                f"Expected {len(self._params)} gradients (one per parameter, in parameter order), got {len(arrays)}"
            )
        for i, g in enumerate(arrays):
            if g is None:
                # Every rank must send the same buffer; a missing gradient would have to be missing everywhere.
                raise ValueError(
                    f"grads[{i}] is None: distributed steps need a gradient for every parameter (use zeros)"
                )
        return cast(list[np.ndarray], arrays)  # no None left (refused above)

    def _bcast_params(self, groups: list[tuple[np.dtype, list[int], np.ndarray | None]]) -> None:
        """Rank ``root``'s parameters to every rank, one Bcast per dtype: in place when the dtype's parameters
        are one array, else through the dtype's bucket."""
        for _dtype, indices, bucket in groups:
            if bucket is None:
                self.comm.Bcast(self._params[indices[0]].reshape(-1), root=self.root)
                continue
            views = _views(bucket, [self._params[i].size for i in indices])
            if self.rank == self.root:
                for i, view in zip(indices, views):
                    np.copyto(view, self._params[i].reshape(-1))
            self.comm.Bcast(bucket[: sum(v.size for v in views)], root=self.root)
            if self.rank != self.root:
                for i, view in zip(indices, views):
                    np.copyto(self._params[i].reshape(-1), view)

    def check_consistent(self) -> list[tuple[float, int]]:
        """Checks that every rank holds the same parameters (a float64 sum and a CRC-32 of each parameter's
        bytes, compared by one allgather); raises RuntimeError naming the ranks and parameters that differ.
        A collective: call it on every rank. Returns this rank's checksums."""
        error, mine = None, []
        try:
            mine = _checksum(self._params)
        except Exception as exception:
            error = exception
        self._agree(error, "check_consistent")
        every = self.comm.allgather(mine)
        names = self.optimizer.parameter_names()
        problems = []
        for r, sums in enumerate(every):
            bad = [i for i, (a, b) in enumerate(zip(sums, every[0])) if a != b]
            if bad:
                where = ", ".join(f"params[{i}]" + (f" ({names[i]!r})" if names else "") for i in bad[:5])
                problems.append(
                    f"rank {r} differs from rank 0 in {where} (sum {sums[bad[0]][0]!r} vs {every[0][bad[0]][0]!r})"
                )
        if problems:
            raise RuntimeError("parameters differ across ranks: " + "; ".join(problems))
        return mine

    def state_bytes(self) -> int:
        """Bytes of optimizer state arrays this rank holds."""
        return _state_bytes(self.state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.optimizer).__name__}, rank {self.rank} of {self.world_size})"


def _same_kind(name: str, message: str) -> Exception:
    """An exception of the built-in type called ``name`` (so one ``except`` clause catches it on every rank),
    else a RuntimeError, with ``message``."""
    kind = getattr(builtins, name, None)
    if isinstance(kind, type) and issubclass(kind, Exception):
        try:
            return kind(message)
        except Exception:  # a built-in type whose constructor needs more (UnicodeDecodeError)
            pass
    return RuntimeError(message)


def _check_grad(i: int, g: Any, param: np.ndarray) -> None:
    if not isinstance(g, np.ndarray):
        raise TypeError(f"grads[{i}] must be a numpy array, got {type(g).__name__}")
    if g.shape != param.shape or g.dtype != param.dtype:
        raise ValueError(f"grads[{i}] is {g.dtype}{list(g.shape)}, its parameter {param.dtype}{list(param.shape)}")


def _views(flat: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    out, offset = [], 0
    for size in sizes:
        out.append(flat[offset : offset + size])
        offset += size
    return out


class DataParallel(_Distributed):
    """Data-parallel training with any fusedoptim optimizer: gradients averaged over the ranks, then the
    optimizer's own fused step on every rank.

    Parameters
    ----------
    optimizer
        A fusedoptim optimizer over this rank's copy of the model; every rank must build the same one (same
        class, parameter shapes and dtypes, groups and hyperparameters: checked at construction, which raises
        ValueError on every rank rather than hang in a collective of mismatched size).
    comm
        An mpi4py intracommunicator (default ``MPI.COMM_WORLD``).
    threads
        OpenMP threads for this rank's kernels: ``"auto"`` (cores per machine / ranks per machine, unless
        ``OMP_NUM_THREADS`` is set), an int (``fusedoptim.set_num_threads``), or None to leave them.
    root
        The rank whose parameters are broadcast to all at construction.

    Communication per step: one in-place ``Allreduce`` per parameter dtype. When a dtype's parameters are one
    ParamArena, the reduction runs on ``arena.flat_grads`` itself (the caller's gradients are then averaged in
    place); otherwise gradients are copied into one flat bucket per dtype, allocated at construction, and the
    step reads the averaged gradients from the bucket (the caller's arrays are left as they were). Nothing is
    allocated per step.

    Example::

        arena = fusedoptim.ParamArena({"w": (784, 10), "b": (10,)})
        opt = distributed.DataParallel(fusedoptim.SGD(arena, lr=0.1, momentum=0.9))
        ...  # local gradients into arena.grads
        opt.step(arena.grads, max_grad_norm=1.0)   # norm of the averaged (global) gradient
    """

    def __init__(
        self, optimizer: Optimizer, comm: Any = None, *, threads: int | str | None = "auto", root: int = 0
    ) -> None:
        super().__init__(optimizer, comm, threads, root)
        arena_params = {id(a.flat_params): a for a in optimizer.arenas}
        # One communication group per dtype, decided from the layout alone so it is the same on every rank:
        # in place on an arena's flat gradients when the dtype has only that parameter, else a packed bucket.
        self._groups: list[tuple[np.dtype, list[int], np.ndarray | None]] = []
        by_dtype: dict[np.dtype, list[int]] = {}
        for i, p in enumerate(self._params):
            by_dtype.setdefault(p.dtype, []).append(i)
        for dtype, indices in by_dtype.items():
            if len(indices) == 1 and id(self._params[indices[0]]) in arena_params:
                self._groups.append((dtype, indices, None))
            else:
                self._groups.append((dtype, indices, np.zeros(sum(self._params[i].size for i in indices), dtype)))
        self._arena_grads = {
            i: arena_params[id(self._params[i])].flat_grads for g in self._groups if g[2] is None for i in g[1]
        }
        # The gradients handed to the wrapped step: bucket views, made once, so its steady-state plan holds.
        self._step_grads: list[np.ndarray | None] = [None] * len(self._params)
        for _dtype, indices, bucket in self._groups:
            if bucket is not None:
                for i, view in zip(indices, _views(bucket, [self._params[i].size for i in indices])):
                    self._step_grads[i] = view.reshape(self._params[i].shape)
        self._scale = 1.0 / self.world_size
        self._bcast_params(self._groups)

    @property
    def bytes_per_step(self) -> int:
        """Bytes each rank hands to Allreduce per step (the gradient buffers; a ring all-reduce moves about
        ``2 (N-1)/N`` times this over each rank's link)."""
        return sum(b.nbytes if b is not None else self._params[ix[0]].nbytes for _d, ix, b in self._groups)

    def average_gradients(self, grads: Any) -> list[np.ndarray]:
        """Sums ``grads`` over the ranks and divides by the number of ranks (a collective: every rank must
        call it); returns the averaged gradients, one per internal parameter (arena buffers or bucket views).
        If any rank's gradients do not fit its parameters, every rank raises and nothing is reduced."""
        return self._average(grads, "DataParallel.average_gradients")

    def _average(self, grads: Any, what: str, key: Any = None, error: Exception | None = None) -> list[np.ndarray]:
        """average_gradients; ``key`` and ``error``: the step's options and what checking them raised."""
        MPI = self.MPI
        if error is None:
            try:
                arrays = self._resolve(grads)
                for _dtype, indices, bucket in self._groups:
                    if bucket is None:
                        if arrays[indices[0]] is not self._arena_grads[indices[0]]:
                            raise ValueError(
                                "an arena's gradient is its own buffer: pass arena.grads or arena.flat_grads"
                            )
                        continue
                    for i in indices:
                        _check_grad(i, arrays[i], self._params[i])
                        np.copyto(self._step_grads[i], arrays[i])  # type: ignore[arg-type]
            except Exception as exception:
                error = exception
        # Every rank's gradients are checked (and packed) before the first Allreduce: a rank that failed would
        # otherwise leave the others waiting in it, and an arena's gradients would be averaged in place.
        self._agree(error, what, key)
        for _dtype, indices, bucket in self._groups:
            flat = self._arena_grads[indices[0]] if bucket is None else bucket
            self.comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
            if self.world_size > 1:  # one rank: the sum is the average, skip a pass over memory
                np.multiply(flat, flat.dtype.type(self._scale), out=flat)
        return [self._arena_grads.get(i, self._step_grads[i]) for i in range(len(self._params))]  # type: ignore[misc]

    def step(
        self, grads: Any, *, skip_if_nonfinite: bool = False, max_grad_norm: float | None = None, norm_type: float = 2.0
    ) -> bool:
        """Averages ``grads`` over the ranks (:meth:`average_gradients`) and steps the wrapped optimizer with
        them. ``grads`` as for the optimizer's own step (every parameter needs one). ``skip_if_nonfinite`` and
        ``max_grad_norm`` act on the averaged gradient, the Allreduce's result, which every rank receives bit
        for bit alike (the MPI standard advises it and MPICH's algorithms do it), so every rank makes the same
        decision; the options must be the same on every rank (compared before the Allreduce, with the
        gradients' checks). Returns True when the step was applied."""
        error = key = None
        options: tuple[bool, float | None, float] = (False, None, 2.0)
        try:
            options = _clip._guard_options(skip_if_nonfinite, max_grad_norm, norm_type)
            key = options if options[0] or options[1] is not None else None
        except Exception as exception:
            error = exception
        averaged = self._average(grads, "DataParallel.step", key, error)
        applied = self.optimizer.step(
            averaged, skip_if_nonfinite=options[0], max_grad_norm=options[1], norm_type=options[2]
        )
        self.skipped_steps = self.optimizer.skipped_steps
        self.last_grad_norm = self.optimizer.last_grad_norm
        return applied

    def state_dict(self) -> dict[str, Any]:
        """The wrapped optimizer's state dict (the same on every rank)."""
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> None:
        """Loads a state dict into the wrapped optimizer. A collective: if it does not load on some rank,
        every rank raises and every rank keeps the state it had."""
        self._load_agreed(state_dict, strict, "DataParallel.load_state_dict")

    def _load_local(self, state_dict: Mapping[str, Any], strict: bool = True) -> None:
        self.optimizer.load_state_dict(state_dict, strict=strict)

    def consolidated_state_dict(self) -> dict[str, Any]:
        """The full state dict (for DP every rank has it: the same as :meth:`state_dict`). Not a collective."""
        return self.state_dict()


class ZeroRedundancyOptimizer(_Distributed):
    """ZeRO stage 1: optimizer state sharded over the ranks, each rank stepping its slice of the flat
    parameters with the fused kernel.

    The parameters (in parameter order, flattened; an arena is already one flat buffer) are split into
    ``world_size`` contiguous slices (:func:`shard_bounds`). A step reduce-scatters the gradients (each rank
    receives the summed gradient of its slice), scales them by 1/N, steps the slice with an optimizer of the
    wrapped optimizer's class and hyperparameters built over views of the slice, and all-gathers the updated
    parameters. With the same gradients it gives the same parameters as :class:`DataParallel` (bit for bit
    unless ``max_grad_norm`` clips, whose global norm is then summed in another order); state memory per rank
    falls N-fold.

    Parameters
    ----------
    optimizer
        A fusedoptim optimizer whose update is elementwise (not LAMB: its trust ratio is a norm over a whole
        array, which a slice does not have), all parameters of one dtype. It is used as the template and
        never stepped; any state it holds is sliced into the shards and dropped from it.
    comm, threads, root
        As for :class:`DataParallel`.

    ``param_groups`` are the shard optimizer's groups (the wrapped optimizer's hyperparameters, over this
    rank's slice), so a scheduler attached to this object drives the real step. :meth:`state_dict` is this
    rank's shard (with its layout), :meth:`consolidated_state_dict` gathers the single-process state dict on
    the root, and :meth:`load_state_dict` takes either.

    With a ParamArena nothing is copied: the reduce-scatter reads ``arena.flat_grads`` and the all-gather
    writes ``arena.flat_params`` in place. Separate arrays go through one flat bucket (allocated once).

    Example::

        arena = fusedoptim.ParamArena({"w": (784, 512), "b": (512,)})
        opt = distributed.ZeroRedundancyOptimizer(fusedoptim.AdamW(arena, lr=1e-3))
        sched = fusedoptim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
        ...  # local gradients into arena.grads
        opt.step(arena.grads)
        sched.step()
        distributed.save("ckpt.npz", opt, params=arena.params)   # rank 0 writes the full state
    """

    def __init__(
        self,
        optimizer: Optimizer,
        comm: Any = None,
        *,
        threads: int | str | None = "auto",
        root: int = 0,
        align: int = _ALIGN,
    ) -> None:
        self._align = align
        super().__init__(optimizer, comm, threads, root, settings={"shard alignment": align})
        self.dtype = self._params[0].dtype
        self._sizes = [p.size for p in self._params]
        self.total = sum(self._sizes)
        self.bounds = shard_bounds(self.total, self.world_size, align)
        self.start, self.end = self.bounds[self.rank]
        self.pieces = shard_pieces(self._sizes, self.start, self.end)
        self._counts = [e - s for s, e in self.bounds]
        self._displs = [s for s, _ in self.bounds]
        arenas = list(optimizer.arenas)
        self._arena = arenas[0] if len(self._params) == 1 and arenas else None
        # Separate arrays: one flat bucket, for the packed gradients and then for the gathered parameters.
        self._bucket = None if self._arena is not None else np.zeros(self.total, self.dtype)
        self._shard_grads = np.zeros(self.end - self.start, self.dtype)
        self._bcast_params(
            [(self.dtype, list(range(len(self._params))), None if self._arena is not None else self._bucket)]
        )

        group_of = [g for g, group in enumerate(optimizer.param_groups) for _ in group["params"]]
        groups = [
            {**{k: v for k, v in group.items() if k not in ("params", "param_names")}, "params": []}
            for group in optimizer.param_groups
        ]
        self._piece_grads: list[np.ndarray] = []
        offset = 0
        for i, lo, hi in self.pieces:
            # A 1-D view into the caller's parameter: the shard optimizer updates it in place.
            groups[group_of[i]]["params"].append(self._params[i].reshape(-1)[lo:hi])
            self._piece_grads.append(self._shard_grads[offset : offset + hi - lo])
            offset += hi - lo
        # Groups hold consecutive parameters, so the shard optimizer's parameter order (group by group) is
        # the pieces' order, which _piece_grads and state re-assembly rely on.
        # Every family's constructor takes the groups alone (its hyperparameters have defaults; the groups hold them).
        family = cast(Callable[[list[dict[str, Any]]], Optimizer], type(optimizer))
        self.shard_optimizer: Optimizer = family(groups)
        self.shard_optimizer.defaults = dict(optimizer.defaults)
        if len(optimizer.state):
            self._take_full_state()

    def _check_optimizer(self, optimizer: Optimizer) -> None:
        # Shards are flat slices: each element's update must read only that element (Optimizer.elementwise).
        if not optimizer.elementwise:
            raise TypeError(
                f"ZeroRedundancyOptimizer needs an optimizer whose update is elementwise; got {type(optimizer).__name__}"
                + (
                    ", whose update reduces over each whole array (its trust ratio), which a slice of the flat "
                    "parameters does not have (use DataParallel)"
                    if optimizer.per_array_reductions
                    else ""
                )
            )
        params = optimizer.parameters()
        dtypes = sorted({p.dtype.str for p in params})
        if len(dtypes) != 1:
            raise ValueError(f"ZeroRedundancyOptimizer needs parameters of one dtype, got {dtypes}")
        shard_bounds(sum(p.size for p in params), self.world_size, self._align)  # refuses a bad align

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.shard_optimizer.param_groups

    @property
    def defaults(self) -> dict[str, Any]:
        return self.shard_optimizer.defaults

    @property
    def state(self) -> Any:
        """This rank's shard of the state (keyed by piece: see ``pieces``)."""
        return self.shard_optimizer.state

    @property
    def bytes_per_step(self) -> int:
        """Bytes each rank hands to the collectives per step: the full gradient buffer to Reduce_scatter and
        the full parameter buffer to Allgatherv (a ring moves ``(N-1)/N`` of each over each rank's link)."""
        return 2 * self.total * self.dtype.itemsize

    def step(
        self, grads: Any, *, skip_if_nonfinite: bool = False, max_grad_norm: float | None = None, norm_type: float = 2.0
    ) -> bool:
        """Reduce-scatter, scale by 1/N, step this rank's slice, all-gather the parameters (all collectives:
        every rank must call it). ``skip_if_nonfinite`` and ``max_grad_norm`` use the norm of the whole
        averaged gradient, combined over the ranks with one scalar allgather, so every rank decides alike; the
        options must be the same on every rank (compared before the first collective, with the gradients'
        checks: if any rank's do not fit, every rank raises and nothing changes)."""
        MPI = self.MPI
        error = key = None
        try:
            skip_if_nonfinite, max_grad_norm, p = _clip._guard_options(skip_if_nonfinite, max_grad_norm, norm_type)
            key = (skip_if_nonfinite, max_grad_norm, p) if skip_if_nonfinite or max_grad_norm is not None else None
            arrays = self._resolve(grads)
            if self._arena is not None:
                if arrays[0] is not self._arena.flat_grads:
                    raise ValueError("an arena's gradient is its own buffer: pass arena.grads or arena.flat_grads")
                send = self._arena.flat_grads
            else:
                assert self._bucket is not None  # the bucket exists when there is no arena
                send = self._bucket
                for i, (g, view) in enumerate(zip(arrays, _views(send, self._sizes))):
                    _check_grad(i, g, self._params[i])
                    np.copyto(view, g.reshape(-1))
        except Exception as exception:
            error = exception
        # A rank that failed would not join the Reduce_scatter; one whose options differ would run other
        # collectives (the norms' allgather): agree first.
        self._agree(error, "ZeroRedundancyOptimizer.step", key)
        self.comm.Reduce_scatter(send, self._shard_grads, recvcounts=self._counts, op=MPI.SUM)
        if self.world_size > 1:
            np.multiply(self._shard_grads, self.dtype.type(1.0 / self.world_size), out=self._shard_grads)

        if skip_if_nonfinite or max_grad_norm is not None:
            # Every rank gets every slice's norm and combines them in rank order, so every rank computes the
            # same total and makes the same decision (a reduction op's NaN handling is not specified).
            total = _combine_norms(self.comm.allgather(float(_core.total_norm([self._shard_grads], p))), p)
            self.last_grad_norm = total
            if skip_if_nonfinite and not math.isfinite(total):
                self.skipped_steps += 1
                return False  # the same decision on every rank: nothing changed anywhere
            if max_grad_norm is not None:
                clip_coef = _clip._clip_coef(max_grad_norm, total)
                if clip_coef is not None:
                    np.multiply(self._shard_grads, self.dtype.type(clip_coef), out=self._shard_grads)
        self.shard_optimizer.step(self._piece_grads)

        if self._arena is not None:
            flat = self._arena.flat_params
        else:
            assert self._bucket is not None  # the bucket exists when there is no arena
            flat = self._bucket
            offset = self.start
            for piece in self.shard_optimizer.parameters():
                flat[offset : offset + piece.size] = piece
                offset += piece.size
        # The MPI datatype is the buffer's own (mpi4py maps the dtype): a fixed FLOAT/DOUBLE read 16-bit
        # parameters as 4 or 8 bytes per element, past the end of the buffer.
        self.comm.Allgatherv(MPI.IN_PLACE, [flat, (self._counts, self._displs)])
        if self._arena is None:
            for param, view in zip(self._params, _views(flat, self._sizes)):
                np.copyto(param.reshape(-1), view)
        return True

    # --- state ----------------------------------------------------------------------------------------------

    def _shard_layout(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "world_size": self.world_size,
            "bounds": [list(b) for b in self.bounds],
            "total": self.total,
            "pieces": [list(p) for p in self.pieces],
        }

    def state_dict(self) -> dict[str, Any]:
        """This rank's shard: ``{"zero_shard": layout, "state": ..., "param_groups": ...}``, the shard
        optimizer's state dict (keyed by piece) with the layout it belongs to. Load it into the same rank of a
        ZeroRedundancyOptimizer with the same world size and parameters."""
        return {"zero_shard": self._shard_layout(), **self.shard_optimizer.state_dict()}

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> None:
        """Loads this rank's shard (from :meth:`state_dict`) or a full single-process state dict (from
        :meth:`consolidated_state_dict` or a plain optimizer over the same parameters), of which each rank
        takes its slice. A collective: if it does not load on some rank (a shard of another layout, a damaged
        entry), every rank raises and every rank keeps the state it had."""
        self._load_agreed(state_dict, strict, "ZeroRedundancyOptimizer.load_state_dict")

    def _load_local(self, state_dict: Mapping[str, Any], strict: bool = True) -> None:
        if not isinstance(state_dict, Mapping):
            raise ValueError("state_dict must be a mapping with keys 'state' and 'param_groups'")
        if "zero_shard" in state_dict:
            saved = state_dict["zero_shard"]
            mine = self._shard_layout()
            if not isinstance(saved, Mapping) or any(_plain(saved.get(k)) != mine[k] for k in mine):
                raise ValueError(
                    f"state_dict is the shard of another layout: saved {_short(dict(saved) if isinstance(saved, Mapping) else saved)}, "
                    f"this rank's {_short(mine)}; load the consolidated state dict to change the number of ranks"
                )
            self.shard_optimizer.load_state_dict(
                {k: v for k, v in state_dict.items() if k != "zero_shard"}, strict=strict
            )
            return
        # A full state dict: the wrapped optimizer checks it (and casts it) as a plain load would; then each
        # piece takes its slice and the full arrays are dropped again.
        self.optimizer.load_state_dict(state_dict, strict=strict)
        self._take_full_state()

    def _take_full_state(self) -> None:
        """Moves the wrapped optimizer's (full) state and hyperparameters into the shard optimizer."""
        full, shard = self.optimizer, self.shard_optimizer
        full_params = self._params
        entries = []
        for piece, (i, lo, hi) in zip(shard.parameters(), self.pieces):
            entry = full.state._get(full_params[i])
            if entry:
                entries.append(
                    (
                        piece,
                        {
                            k: (np.array(v.reshape(-1)[lo:hi]) if isinstance(v, np.ndarray) else v)
                            for k, v in entry.items()
                        },
                    )
                )
        shard.state._replace(entries)
        for group, source in zip(shard.param_groups, full.param_groups):
            for key, value in source.items():
                if key not in ("params", "param_names"):
                    group[key] = value
        full.state._replace([])  # the full state is what sharding saves

    def consolidated_state_dict(self, root: int | None = None) -> dict[str, Any] | None:
        """Gathers every rank's shard to ``root`` (default: the wrapper's root) and returns there the state
        dict a single-process optimizer over the same parameters would have (loadable into the wrapped
        optimizer or any like it); None on the other ranks. A collective (every rank must pass the same
        ``root``): when the root cannot assemble the shards, every rank raises."""
        root = self.root if root is None else root
        error, mine = None, []
        try:
            if isinstance(root, bool) or not isinstance(root, int) or not 0 <= root < self.world_size:
                raise ValueError(f"root must be a rank in [0, {self.world_size}), got {root!r}")
            shard = self.shard_optimizer
            mine = [
                (i, lo, hi, dict(shard.state._get(piece) or {}))
                for piece, (i, lo, hi) in zip(shard.parameters(), self.pieces)
            ]
        except Exception as exception:
            error = exception
        self._agree(error, "consolidated_state_dict", key=root)
        shards = self.comm.gather(mine, root=root)
        full_state = None
        if self.rank == root:
            try:
                full_state = self._assemble(shards)
            except Exception as exception:
                error = exception
        # The root's outcome, so the other ranks raise too (distributed.save would otherwise wait for a write
        # the root never makes).
        self._agree(error, "consolidated_state_dict")
        return full_state

    def _assemble(self, shards: list[Any]) -> dict[str, Any]:
        """The full state dict from every rank's shard (on the root)."""
        merged = assemble_state(self._sizes, shards)
        full, shard = self.optimizer, self.shard_optimizer
        # Built with the wrapped optimizer's own state_dict (names, arenas, torch's layout), then dropped.
        full.state._replace(
            [
                (
                    self._params[i],
                    {
                        k: (v.reshape(self._params[i].shape) if isinstance(v, np.ndarray) else v)
                        for k, v in entry.items()
                    },
                )
                for i, entry in merged.items()
            ]
        )
        try:
            for group, source in zip(full.param_groups, shard.param_groups):
                for key, value in source.items():
                    if key != "params":
                        group[key] = value
            return full.state_dict()
        finally:
            full.state._replace([])


def _combine_norms(norms: Sequence[float], p: float) -> float:
    """The p-norm of a vector from the p-norms of its parts: NaN if any is NaN, the max for p = inf."""
    if any(math.isnan(n) for n in norms):
        return math.nan
    if math.isinf(p):
        return max(norms)
    if any(math.isinf(n) for n in norms):
        return math.inf
    return math.fsum(n**p for n in norms) ** (1.0 / p)


def _plain(value: Any) -> Any:
    """A layout value as loaded from a checkpoint (tuples become lists) for comparing with ours."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


class _Snapshot:
    """A state dict posing as an optimizer, for fusedoptim.save."""

    def __init__(self, state_dict: Mapping[str, Any]) -> None:
        self._state_dict = state_dict

    def state_dict(self) -> Mapping[str, Any]:
        return self._state_dict


Wrapper = DataParallel | ZeroRedundancyOptimizer


class _Local:
    """A wrapper posing as a plain optimizer for fusedoptim.load: its load_state_dict is this rank's alone
    (distributed.load agrees once, over the whole load)."""

    def __init__(self, wrapper: Wrapper) -> None:
        self._wrapper = wrapper

    def state_dict(self) -> dict[str, Any]:
        return self._wrapper.state_dict()

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> None:
        self._wrapper._load_local(state_dict, strict=strict)


def save(
    path: str | os.PathLike,
    optimizer: Wrapper,
    *,
    scheduler: Any = None,
    params: Any = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """A collective: writes one consolidated checkpoint from the root rank (``fusedoptim.save``'s format:
    the full single-process state dict, so it loads into any number of ranks or a plain optimizer), then
    waits until it is written. ``params`` and ``scheduler`` are taken from the root (the ranks agree). When
    the root cannot write (a missing directory, a full disk), every rank raises, naming the root; an existing
    file at ``path`` is left as it was (the write is atomic)."""
    full = optimizer.consolidated_state_dict()
    error = None
    if optimizer.rank == optimizer.root:
        assert full is not None  # the root's consolidated state (None only on the other ranks)
        try:
            _checkpoint.save(path, optimizer=_Snapshot(full), scheduler=scheduler, params=params, extra=extra)
        except Exception as exception:
            error = exception
    # Also the barrier: no rank returns before the root has written (or failed to).
    optimizer._agree(error, "distributed.save")


def load(
    path: str | os.PathLike, optimizer: Wrapper, *, scheduler: Any = None, params: Any = None, strict: bool = True
) -> dict[str, Any]:
    """Every rank reads the checkpoint that :func:`save` (or ``fusedoptim.save`` of a shard, one file per
    rank) wrote and takes its part; returns the ``extra`` dict. A collective: if the load fails on any rank (a
    damaged or missing file, parameters that do not fit), every rank raises, naming that rank, and every rank
    keeps the optimizer state, scheduler state and parameters it had (the ranks that loaded put them back).
    Under MPI use this rather than ``fusedoptim.load(path, optimizer=wrapper)``, whose own checks run before
    the wrapper's agreement."""
    error = None
    undo: Callable[[], None] | None = None
    try:
        undo = _snapshot(optimizer, scheduler, params)
        extra = _checkpoint.load(path, optimizer=_Local(optimizer), scheduler=scheduler, params=params, strict=strict)
    except Exception as exception:
        error, undo = exception, None  # a failed load changed nothing on this rank
    try:
        optimizer._agree(error, "distributed.load")
    except Exception:
        if undo is not None:
            undo()
        raise
    return extra


def _snapshot(optimizer: Wrapper, scheduler: Any, params: Any) -> Callable[[], None]:
    """What distributed.load may change on this rank (copies), and the function that puts it back."""
    state = optimizer.state_dict()
    scheduler_state = copy.deepcopy(scheduler.state_dict()) if scheduler is not None else None
    arrays = [] if params is None else list(params.values() if isinstance(params, Mapping) else params)
    saved = [np.array(p, copy=True) for p in arrays]

    def undo() -> None:
        optimizer._load_local(state)
        if scheduler is not None:
            scheduler.load_state_dict(scheduler_state)
        for p, values in zip(arrays, saved):
            np.copyto(p, values)

    return undo
