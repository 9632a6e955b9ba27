"""Run under ``mpiexec -n 2 python -m mpi4py`` by tests/library/test_distributed.py: an error on one rank of a
collective call makes every rank raise, instead of leaving the other ranks waiting in a collective the failed rank
never joins. In every mode: every rank raises (the failing rank its own exception, the others one of the same type
naming the failing rank), parameters and state are unchanged on every rank (compared by CRC), and the wrapper
still works afterwards (the ranks are in step). A hang is what this guards against: the test's timeout turns it
into a failure, and ``-m mpi4py`` aborts the job when a check here fails on one rank.

Usage: check_failures.py MODE TMPDIR. Prints "[rank R raised TYPE] message" for every expected failure, then
"OK: every rank raised [n0, n1]" (each rank's count) on rank 0.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from mpi4py import MPI

import fusedoptim
from fusedoptim import distributed

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
mode, tmp = sys.argv[1], Path(sys.argv[2])
ODD = size - 1  # the rank that fails (the root, rank 0, when the root's part fails)
SHAPES = {"w": (7, 5), "b": (5,), "v": (37,)}  # 77 values: the shard cut falls inside "w"
raised_here = 0  # expected failures seen on this rank


def fingerprint(value: Any) -> Any:
    """CRCs of every array in a (nested) value, repr of everything else: equal when nothing changed."""
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, zlib.crc32(np.ascontiguousarray(value).reshape(-1).view(np.uint8)))
    if isinstance(value, Mapping):
        return [(repr(k), fingerprint(v)) for k, v in value.items()]
    if isinstance(value, (list, tuple)):
        return [fingerprint(v) for v in value]
    return repr(value)


def report(raised: BaseException) -> None:
    global raised_here
    raised_here += 1
    print(f"[rank {rank} raised {type(raised).__name__}] {raised}", flush=True)


def expect_failure(call: Callable[[], Any], failing: int, kind: type, text: str, where: str) -> None:
    """``call`` raises ``kind`` on every rank: on ``failing`` its own error (containing ``text``), elsewhere one
    naming the failing rank and ``where`` (the call), with the failing rank's message."""
    try:
        call()
    except Exception as error:
        raised: BaseException = error
    else:
        raise AssertionError(f"rank {rank}: {where} did not raise ({mode})")
    report(raised)
    assert isinstance(raised, kind), (rank, type(raised), raised)
    assert text in str(raised), (rank, text, str(raised))
    if rank != failing:
        assert f"rank {failing} failed in {where}" in str(raised), (rank, str(raised))


def expect_everywhere(call: Callable[[], Any], kind: type, text: str) -> None:
    """``call`` raises ``kind`` containing ``text`` on every rank (a failure every rank sees)."""
    try:
        call()
    except Exception as error:
        raised: BaseException = error
    else:
        raise AssertionError(f"rank {rank}: no error ({mode})")
    report(raised)
    assert isinstance(raised, kind) and text in str(raised), (rank, type(raised), str(raised))


def local_grad(step: int) -> np.ndarray:
    """This rank's flat gradient (77 values) at a step."""
    return np.random.default_rng([step, rank]).standard_normal(77).astype(np.float32)


def new_arena() -> fusedoptim.ParamArena:
    arena = fusedoptim.ParamArena(SHAPES, np.float32)
    arena.flat_params[:] = np.random.default_rng(rank).standard_normal(arena.size)  # different on every rank
    return arena


def arrays_of(flat: np.ndarray) -> list[np.ndarray]:
    out, offset = [], 0
    for shape in SHAPES.values():
        n = int(np.prod(shape))
        out.append(flat[offset : offset + n].reshape(shape).copy())
        offset += n
    return out


def stepped(wrapper: Any, arena: Any, steps: int = 2, scheduler: Any = None) -> None:
    for t in range(steps):
        arena.flat_grads[:] = local_grad(t)
        assert wrapper.step(arena.grads)
        if scheduler is not None:
            scheduler.step()


def still_works(wrapper: Any, grads: Any) -> None:
    """The ranks are still in step: a good step runs on every rank and leaves the same parameters."""
    assert wrapper.step(grads)
    wrapper.check_consistent()


# --- the modes: one failure each ---------------------------------------------------------------------------


def dp_gradients(what: str) -> None:
    """DataParallel over separate arrays; rank ODD passes a None gradient or one gradient too few."""
    params = arrays_of(np.random.default_rng(rank).standard_normal(77).astype(np.float32))
    dp = distributed.DataParallel(fusedoptim.SGD(params, lr=0.1, momentum=0.9))
    dp.step(arrays_of(local_grad(0)))  # momentum buffers exist
    before = fingerprint([params, dp.state_dict()])
    bad: list[Any] = arrays_of(local_grad(1))
    if rank == ODD:
        bad = bad[:2] if what == "count" else [bad[0], None, bad[2]]
    text = "Expected 3 gradients" if what == "count" else "grads[1] is None"
    expect_failure(lambda: dp.step(bad), ODD, ValueError, text, "DataParallel.step")
    expect_failure(lambda: dp.average_gradients(bad), ODD, ValueError, text, "DataParallel.average_gradients")
    assert fingerprint([params, dp.state_dict()]) == before
    still_works(dp, arrays_of(local_grad(1)))


def dp_buffer() -> None:
    """DataParallel over an arena; rank ODD passes a copy of the flat gradients instead of the arena's buffer.
    The other ranks' gradients must not have been averaged in place."""
    arena = new_arena()
    dp = distributed.DataParallel(fusedoptim.Adam(arena, lr=0.01))
    stepped(dp, arena)
    arena.flat_grads[:] = local_grad(5)
    before = fingerprint([arena.flat_params, arena.flat_grads, dp.state_dict()])
    bad = [arena.flat_grads.copy()] if rank == ODD else arena.grads
    text = "an arena's gradient is its own buffer"
    expect_failure(lambda: dp.step(bad), ODD, ValueError, text, "DataParallel.step")
    assert fingerprint([arena.flat_params, arena.flat_grads, dp.state_dict()]) == before
    still_works(dp, arena.grads)


def dp_root() -> None:
    """Rank ODD names another root: the layout comparison refuses it before the broadcast."""
    arena = new_arena()
    before = fingerprint(arena.flat_params)
    root = 1 if rank == ODD else 0
    expect_everywhere(
        lambda: distributed.DataParallel(fusedoptim.Adam(arena), root=root),
        ValueError,
        f"rank {ODD} has root 1, rank 0 has 0",
    )
    assert fingerprint(arena.flat_params) == before  # nothing was broadcast
    dp = distributed.DataParallel(fusedoptim.Adam(arena))
    arena.flat_grads[:] = local_grad(0)
    still_works(dp, arena.grads)


def zero_shape() -> None:
    """ZeRO over separate arrays in two groups; rank ODD passes a gradient of the wrong shape. Then ZeRO over
    an arena; rank ODD passes a copy of the flat gradients."""
    params = arrays_of(np.random.default_rng(rank).standard_normal(77).astype(np.float32))
    zero = distributed.ZeroRedundancyOptimizer(
        fusedoptim.Adam([{"params": params[:2]}, {"params": params[2:], "lr": 0.003}], lr=0.01)
    )
    zero.step(arrays_of(local_grad(0)))
    before = fingerprint([params, zero.state_dict()])
    bad = arrays_of(local_grad(1))
    if rank == ODD:
        bad[1] = np.ones(6, np.float32)
    expect_failure(
        lambda: zero.step(bad),
        ODD,
        ValueError,
        "grads[1] is float32[6], its parameter float32[5]",
        "ZeroRedundancyOptimizer.step",
    )
    assert fingerprint([params, zero.state_dict()]) == before
    still_works(zero, arrays_of(local_grad(1)))

    arena = new_arena()
    zero = distributed.ZeroRedundancyOptimizer(fusedoptim.Adam(arena, lr=0.01))
    stepped(zero, arena)
    before = fingerprint([arena.flat_params, arena.flat_grads, zero.state_dict()])
    bad_arena = [arena.flat_grads.copy()] if rank == ODD else arena.grads
    expect_failure(
        lambda: zero.step(bad_arena),
        ODD,
        ValueError,
        "an arena's gradient is its own buffer",
        "ZeroRedundancyOptimizer.step",
    )
    assert fingerprint([arena.flat_params, arena.flat_grads, zero.state_dict()]) == before
    still_works(zero, arena.grads)


def zero_lamb() -> None:
    """Rank ODD wraps LAMB in ZeRO (refused), the others Adam: every rank raises, nothing is broadcast."""
    arena = new_arena()
    before = fingerprint(arena.flat_params)
    opt = fusedoptim.LAMB(arena.params, lr=0.01) if rank == ODD else fusedoptim.Adam(arena, lr=0.01)
    expect_failure(
        lambda: distributed.ZeroRedundancyOptimizer(opt),
        ODD,
        TypeError,
        "whose update reduces over each whole array",
        "ZeroRedundancyOptimizer()",
    )
    assert fingerprint(arena.flat_params) == before
    zero = distributed.ZeroRedundancyOptimizer(fusedoptim.Adam(arena, lr=0.01))
    arena.flat_grads[:] = local_grad(0)
    still_works(zero, arena.grads)


def options() -> None:
    """Rank ODD clips and the others do not: ZeRO would run different collectives (the norms' allgather),
    DataParallel would diverge. Refused on every rank."""
    for cls in (distributed.ZeroRedundancyOptimizer, distributed.DataParallel):
        arena = new_arena()
        wrapper = cls(fusedoptim.Adam(arena, lr=0.01))
        stepped(wrapper, arena)
        before = fingerprint([arena.flat_params, wrapper.state_dict()])
        kwargs = {"max_grad_norm": 1.0} if rank == ODD else {}
        expect_everywhere(
            lambda: wrapper.step(arena.grads, **kwargs),
            ValueError,
            f"{cls.__name__}.step was called with different arguments on different ranks",
        )
        assert fingerprint([arena.flat_params, wrapper.state_dict()]) == before
        still_works(wrapper, arena.grads)


def save_root() -> None:
    """The root (rank 0) cannot write the checkpoint (its directory does not exist): every rank raises instead
    of the others waiting for the write; nothing is written, nothing changes."""
    for cls in (distributed.ZeroRedundancyOptimizer, distributed.DataParallel):
        arena = new_arena()
        wrapper = cls(fusedoptim.Adam(arena, lr=0.01))
        sched = fusedoptim.lr_scheduler.StepLR(wrapper, step_size=1, gamma=0.5)
        stepped(wrapper, arena, scheduler=sched)
        before = fingerprint([arena.flat_params, wrapper.state_dict(), sched.state_dict()])
        path = tmp / "missing" / "ckpt.npz" if rank == 0 else tmp / f"{cls.__name__}-unused.npz"
        expect_failure(
            lambda: distributed.save(path, wrapper, scheduler=sched, params=arena.params),
            0,
            FileNotFoundError,
            "No such file or directory",
            "distributed.save",
        )
        assert fingerprint([arena.flat_params, wrapper.state_dict(), sched.state_dict()]) == before
        assert not (tmp / "missing").exists() and not (tmp / f"{cls.__name__}-unused.npz").exists()
        good = tmp / f"{cls.__name__}-good.npz"
        distributed.save(good, wrapper, scheduler=sched, params=arena.params)
        assert good.exists()
        still_works(wrapper, arena.grads)


def save_consolidate() -> None:
    """The root cannot assemble the shards (rank ODD's step count was tampered with): every rank raises, in
    consolidated_state_dict and in distributed.save, and nothing is written."""
    arena = new_arena()
    zero = distributed.ZeroRedundancyOptimizer(fusedoptim.Adam(arena, lr=0.01))
    stepped(zero, arena)
    if rank == ODD:
        zero.state[0]["step"] += 5  # piece 0 of rank 1 is the tail of parameter 0, whose head rank 0 holds
    before = fingerprint([arena.flat_params, zero.state_dict()])
    text = "the shards disagree on state 'step' of parameter 0"
    expect_failure(zero.consolidated_state_dict, 0, ValueError, text, "consolidated_state_dict")
    path = tmp / "ckpt.npz"
    expect_failure(
        lambda: distributed.save(path, zero, params=arena.params), 0, ValueError, text, "consolidated_state_dict"
    )
    assert not path.exists()
    assert fingerprint([arena.flat_params, zero.state_dict()]) == before
    if rank == ODD:
        zero.state[0]["step"] -= 5
    distributed.save(path, zero, params=arena.params)
    still_works(zero, arena.grads)


def load_damaged() -> None:
    """Rank ODD reads a damaged copy of the checkpoint, rank 0 the good one: every rank raises, and rank 0,
    which had loaded, puts back its state, scheduler and parameters. Then every rank reads the damaged file
    (each raises its own error), and then the good one (the run continues)."""
    for cls in (distributed.ZeroRedundancyOptimizer, distributed.DataParallel):
        arena = new_arena()
        wrapper = cls(fusedoptim.Adam(arena, lr=0.01))
        sched = fusedoptim.lr_scheduler.StepLR(wrapper, step_size=1, gamma=0.5)
        stepped(wrapper, arena, scheduler=sched)
        good, damaged = tmp / f"{cls.__name__}.npz", tmp / f"{cls.__name__}-damaged.npz"
        distributed.save(good, wrapper, scheduler=sched, params=arena.params, extra={"step": 2})
        if rank == 0:
            data = good.read_bytes()
            damaged.write_bytes(data[: len(data) // 2])
        comm.Barrier()
        stepped(wrapper, arena, steps=1, scheduler=sched)  # now the good file would change everything

        def state() -> Any:
            return fingerprint([arena.flat_params, wrapper.state_dict(), sched.state_dict()])

        before = state()
        path = damaged if rank == ODD else good
        expect_failure(
            lambda: distributed.load(path, wrapper, scheduler=sched, params=arena.params),
            ODD,
            ValueError,
            damaged.name,
            "distributed.load",
        )  # checkpoint errors name the file
        assert state() == before
        expect_everywhere(
            lambda: distributed.load(damaged, wrapper, scheduler=sched, params=arena.params), ValueError, damaged.name
        )
        assert state() == before
        assert distributed.load(good, wrapper, scheduler=sched, params=arena.params) == {"step": 2}
        assert state() != before
        still_works(wrapper, arena.grads)


def load_state_dict() -> None:
    """load_state_dict with a bad entry on rank ODD (a negative learning rate), a good one elsewhere: every
    rank raises and keeps the state it had."""
    for cls in (distributed.ZeroRedundancyOptimizer, distributed.DataParallel):
        arena = new_arena()
        wrapper = cls(fusedoptim.Adam(arena, lr=0.01))
        stepped(wrapper, arena)
        saved = wrapper.state_dict()
        stepped(wrapper, arena, steps=1)
        before = fingerprint(wrapper.state_dict())
        given = saved
        if rank == ODD:
            given = {**saved, "param_groups": [{**g, "lr": -1.0} for g in saved["param_groups"]]}
        expect_failure(
            lambda: wrapper.load_state_dict(given),
            ODD,
            ValueError,
            "Invalid learning rate: -1.0",
            f"{cls.__name__}.load_state_dict",
        )
        assert fingerprint(wrapper.state_dict()) == before
        wrapper.load_state_dict(saved)
        assert fingerprint(wrapper.state_dict()) != before
        still_works(wrapper, arena.grads)


MODES: dict[str, Callable[[], None]] = {
    "dp-none": lambda: dp_gradients("none"),
    "dp-count": lambda: dp_gradients("count"),
    "dp-buffer": dp_buffer,
    "dp-root": dp_root,
    "zero-shape": zero_shape,
    "zero-lamb": zero_lamb,
    "options": options,
    "save-root": save_root,
    "save-consolidate": save_consolidate,
    "load-damaged": load_damaged,
    "load-state-dict": load_state_dict,
}


def main() -> None:
    assert size == 2, "run under mpiexec -n 2"
    MODES[mode]()
    counts = comm.gather(raised_here, root=0)
    if rank == 0:
        print(f"OK: every rank raised {counts}", flush=True)


if __name__ == "__main__":
    main()
