"""Run under ``mpiexec -n 2`` by tests/library/test_distributed.py: DataParallel equals a single-process optimizer with
the same global batch, ZeRO-1 equals DataParallel, state dicts re-assemble, checkpoints round-trip.

Every rank can compute every rank's gradients (they are drawn from seeds), so every rank also runs the
single-process reference locally and compares. With 2 ranks MPI's sum g0 + g1 is the reference's sum, so the
comparisons without clipping are exact; clipping sums the norm in another order (tolerance below).
Usage: check_equivalence.py TMPDIR. Prints "OK" at the end.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI

import fusedoptim
from fusedoptim import distributed

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
tmp = Path(sys.argv[1])
SHAPES = {"w": (7, 5), "b": (5,), "v": (37,)}  # 77 values: shard cuts fall inside arrays
STEPS = 6
ELEMENTWISE = ["SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "Adadelta", "Adamax", "NAdam", "RAdam", "Lion"]
KWARGS = {
    "SGD": dict(lr=0.1, momentum=0.9, nesterov=True),
    "Adam": dict(lr=0.01, amsgrad=True),
    "AdamW": dict(lr=0.01),
    "Adagrad": dict(lr=0.1, lr_decay=0.01),
    "RMSprop": dict(lr=0.01, centered=True, momentum=0.5),
    "Adadelta": dict(),
    "Adamax": dict(),
    "NAdam": dict(),
    "RAdam": dict(),
    "Lion": dict(),
    "LAMB": dict(lr=0.01, weight_decay=0.1),
}
EXACT = size == 2  # MPI's reduction order for more ranks is its own


def make(name: str, params, **extra):
    if name == "LAMB" and isinstance(params, fusedoptim.ParamArena):
        params = params.params  # its trust ratio is per array: the arena's views by name, not the flat buffer
    return getattr(fusedoptim, name)(params, **{**KWARGS[name], **extra})


def local_grads(step: int, r: int, dtype) -> np.ndarray:
    """Rank r's gradient (flat) at a step; every rank can draw any rank's."""
    return np.random.default_rng([step, r, 7]).standard_normal(77).astype(dtype)


def averaged(step: int, dtype) -> np.ndarray:
    total = local_grads(step, 0, dtype)
    for r in range(1, size):
        total = total + local_grads(step, r, dtype)
    return total * dtype(1.0 / size)


def new_arena(dtype) -> fusedoptim.ParamArena:
    arena = fusedoptim.ParamArena(SHAPES, dtype)
    # Different on every rank: the wrappers must broadcast rank 0's.
    arena.flat_params[:] = np.random.default_rng(rank).standard_normal(arena.size)
    return arena


def reference_arena(dtype) -> fusedoptim.ParamArena:
    arena = fusedoptim.ParamArena(SHAPES, dtype)
    arena.flat_params[:] = np.random.default_rng(0).standard_normal(arena.size)
    return arena


def step_options(t: int) -> dict:
    # Step 2 clips, step 4 carries a NaN on the last rank: every rank must skip it.
    return {"max_grad_norm": 0.5} if t == 2 else {"skip_if_nonfinite": True} if t == 4 else {}


def grads_at(t: int, r: int, dtype) -> np.ndarray:
    g = local_grads(t, r, dtype)
    if t == 4 and r == size - 1:
        g[3] = np.nan
    return g


def assert_equal(a, b, exact: bool, dtype, what: str) -> None:
    if exact:
        np.testing.assert_array_equal(a, b, err_msg=what)
    else:
        rtol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol, err_msg=what)


def assert_state_equal(sd_a, sd_b, exact: bool, dtype, what: str) -> None:
    assert sd_a["state"].keys() == sd_b["state"].keys(), (what, sd_a["state"].keys(), sd_b["state"].keys())
    for key in sd_a["state"]:
        ea, eb = sd_a["state"][key], sd_b["state"][key]
        assert ea.keys() == eb.keys(), (what, key, ea.keys(), eb.keys())
        for k in ea:
            if isinstance(ea[k], np.ndarray):
                assert ea[k].shape == eb[k].shape, (what, key, k)
                assert_equal(ea[k], eb[k], exact, dtype, f"{what}: state[{key!r}][{k!r}]")
            elif isinstance(ea[k], float):
                assert abs(ea[k] - eb[k]) <= 1e-12 * max(1.0, abs(ea[k])), (what, key, k, ea[k], eb[k])
            else:
                assert ea[k] == eb[k], (what, key, k, ea[k], eb[k])
    ga = [{k: v for k, v in g.items()} for g in sd_a["param_groups"]]
    gb = [{k: v for k, v in g.items()} for g in sd_b["param_groups"]]
    assert ga == gb, (what, ga, gb)


def check_dp_equals_single(name: str, dtype) -> None:
    """DataParallel over an arena, and over separate arrays, equal one process stepping the averaged gradient."""
    arena, ref = new_arena(dtype), reference_arena(dtype)
    dp = distributed.DataParallel(make(name, arena))
    plain = make(name, ref)
    np.testing.assert_array_equal(arena.flat_params, ref.flat_params)  # rank 0's parameters everywhere
    separate = [np.random.default_rng(rank + 10).standard_normal(s).astype(dtype) for s in SHAPES.values()]
    dp_list = distributed.DataParallel(make(name, separate))
    separate_ref = [np.random.default_rng(10).standard_normal(s).astype(dtype) for s in SHAPES.values()]
    plain_list = make(name, separate_ref)
    slices = list(ref.slices.values())
    for t in range(STEPS):
        options = step_options(t)
        mine = grads_at(t, rank, dtype)
        global_grad = averaged(t, dtype) if t != 4 else np.full(77, np.nan, dtype)
        arena.flat_grads[:] = mine
        applied = dp.step(arena.grads, **options)
        ref.flat_grads[:] = global_grad
        assert applied == plain.step(ref.grads, **options) == (t != 4), (name, t)
        assert_equal(arena.flat_params, ref.flat_params, EXACT, dtype, f"DP {name} {dtype.__name__} step {t}")
        list_grads = [mine[s].reshape(p.shape).copy() for s, p in zip(slices, separate)]
        assert dp_list.step(list_grads, **options) == plain_list.step(
            [global_grad[s].reshape(p.shape).copy() for s, p in zip(slices, separate_ref)], **options
        )
        for a, b in zip(separate, separate_ref):
            assert_equal(a, b, EXACT, dtype, f"DP list {name} step {t}")
    assert dp.skipped_steps == 1 and dp.last_grad_norm is not None
    assert_state_equal(dp.state_dict(), plain.state_dict(), EXACT, dtype, f"DP state {name}")
    dp.check_consistent()


def check_zero_equals_dp(name: str, dtype) -> None:
    """ZeRO-1 over an arena and over separate arrays in two groups equals DataParallel (exact without
    clipping; the clipped step's norm is summed shard by shard, so within rounding after it)."""
    arena, ref = new_arena(dtype), new_arena(dtype)
    zero = distributed.ZeroRedundancyOptimizer(make(name, arena))
    dp = distributed.DataParallel(make(name, ref))
    arrays = [np.random.default_rng(rank + 20).standard_normal(s).astype(dtype) for s in SHAPES.values()]
    groups = [{"params": arrays[:2]}, {"params": arrays[2:], "lr": 0.003}]
    zero_list = distributed.ZeroRedundancyOptimizer(make(name, groups))
    arrays_ref = [np.random.default_rng(20).standard_normal(s).astype(dtype) for s in SHAPES.values()]
    plain_list = make(name, [{"params": arrays_ref[:2]}, {"params": arrays_ref[2:], "lr": 0.003}])
    slices = list(arena.slices.values())
    exact = EXACT
    for t in range(STEPS):
        options = step_options(t)
        mine = grads_at(t, rank, dtype)
        arena.flat_grads[:] = mine
        ref.flat_grads[:] = mine
        assert zero.step(arena.grads, **options) == dp.step(ref.grads, **options) == (t != 4), (name, t)
        exact = exact and "max_grad_norm" not in options
        assert_equal(arena.flat_params, ref.flat_params, exact, dtype, f"ZeRO {name} {dtype.__name__} step {t}")
        global_grad = averaged(t, dtype) if t != 4 else np.full(77, np.nan, dtype)
        zero_list.step([mine[s].reshape(p.shape).copy() for s, p in zip(slices, arrays)], **options)
        plain_list.step([global_grad[s].reshape(p.shape).copy() for s, p in zip(slices, arrays_ref)], **options)
        for a, b in zip(arrays, arrays_ref):
            assert_equal(a, b, exact, dtype, f"ZeRO list {name} step {t}")
    assert zero.skipped_steps == 1
    # State memory: the shards add up to DataParallel's state, and each is about 1/N of it.
    shard_bytes = comm.allgather(zero.state_bytes())
    assert sum(shard_bytes) == dp.state_bytes() > 0, (shard_bytes, dp.state_bytes())
    assert max(shard_bytes) <= dp.state_bytes() / size + 16 * 4 * np.dtype(dtype).itemsize, shard_bytes
    # The re-assembled state dict is the single-process one.
    full = zero.consolidated_state_dict()
    full_list = zero_list.consolidated_state_dict()
    if rank == 0:
        assert_state_equal(full, dp.state_dict(), exact, dtype, f"consolidated {name}")
        assert_state_equal(full_list, plain_list.state_dict(), exact, dtype, f"consolidated list {name}")
        reloaded = make(name, reference_arena(dtype))  # and it loads into a plain optimizer
        reloaded.load_state_dict(full)
    else:
        assert full is None
    zero.check_consistent()


def check_checkpoints(name: str, dtype) -> None:
    """Sharded (one file per rank) and consolidated (one file from rank 0) checkpoints resume exactly, and a
    full state dict loads into ZeRO (each rank its slice) and a consolidated one into a plain optimizer."""
    arena = new_arena(dtype)
    zero = distributed.ZeroRedundancyOptimizer(make(name, arena))
    sched = fusedoptim.lr_scheduler.StepLR(zero, step_size=2, gamma=0.5)
    for t in range(3):
        arena.flat_grads[:] = local_grads(t, rank, dtype)
        zero.step(arena.grads)
        sched.step()
    # The scheduler drives the shard optimizer's groups (the ones the step uses).
    assert zero.param_groups[0]["lr"] == zero.param_groups[0]["initial_lr"] * 0.5, zero.param_groups[0]
    assert zero.shard_optimizer.param_groups is zero.param_groups
    shard_path = tmp / f"{name}-{dtype.__name__}-rank{rank}.npz"
    fusedoptim.save(shard_path, optimizer=zero, scheduler=sched, params=arena.params)
    consolidated = tmp / f"{name}-{dtype.__name__}-full.npz"
    distributed.save(consolidated, zero, scheduler=sched, params=arena.params, extra={"step": 3})

    def continue_run(opt, a, scheduler) -> np.ndarray:
        for t in range(3, 6):
            a.flat_grads[:] = local_grads(t, rank, dtype)
            opt.step(a.grads)
            scheduler.step()
        return a.flat_params.copy()

    expected = continue_run(zero, arena, sched)
    for path, how in ((shard_path, "sharded"), (consolidated, "consolidated")):
        fresh = fusedoptim.ParamArena(SHAPES, dtype)
        again = distributed.ZeroRedundancyOptimizer(make(name, fresh))
        sched2 = fusedoptim.lr_scheduler.StepLR(again, step_size=2, gamma=0.5)
        extra = distributed.load(path, again, scheduler=sched2, params=fresh.params)
        assert how == "sharded" or extra == {"step": 3}, extra
        np.testing.assert_array_equal(continue_run(again, fresh, sched2), expected, err_msg=f"{how} {name}")
    # The consolidated file into DataParallel (another optimizer layout, same trajectory).
    fresh = fusedoptim.ParamArena(SHAPES, dtype)
    dp = distributed.DataParallel(make(name, fresh))
    sched3 = fusedoptim.lr_scheduler.StepLR(dp, step_size=2, gamma=0.5)
    distributed.load(consolidated, dp, scheduler=sched3, params=fresh.params)
    assert_equal(continue_run(dp, fresh, sched3), expected, EXACT, dtype, f"consolidated into DP {name}")
    # A shard refuses the wrong rank's layout.
    if size > 1:
        other = tmp / f"{name}-{dtype.__name__}-rank{(rank + 1) % size}.npz"
        try:
            fusedoptim.load(other, optimizer=distributed.ZeroRedundancyOptimizer(make(name, new_arena(dtype))))
        except ValueError as error:
            assert "another layout" in str(error), error
        else:
            raise AssertionError("a shard of another rank loaded")
    comm.Barrier()


def check_zero_float16() -> None:
    """ZeRO-1 over float16 parameters equals DataParallel bit for bit: the all-gather sends 2-byte elements (it
    once sent them as 8-byte doubles, past the end of the buffer). (bfloat16 has no MPI datatype in mpi4py:
    both wrappers fail alike on every rank at construction.)"""
    start = [np.random.default_rng(30).standard_normal(s).astype(np.float16) for s in SHAPES.values()]
    zero_params, dp_params = [a.copy() for a in start], [a.copy() for a in start]
    zero = distributed.ZeroRedundancyOptimizer(fusedoptim.Adam(zero_params, lr=0.01))
    dp = distributed.DataParallel(fusedoptim.Adam(dp_params, lr=0.01))
    slices = list(reference_arena(np.float32).slices.values())
    for t in range(3):
        flat = local_grads(t, rank, np.float32).astype(np.float16)
        grads = [flat[s].reshape(p.shape) for s, p in zip(slices, start)]
        assert zero.step([g.copy() for g in grads]) and dp.step([g.copy() for g in grads])
    for a, b in zip(zero_params, dp_params):
        np.testing.assert_array_equal(a, b, err_msg="ZeRO float16")
    zero.check_consistent()


def check_errors() -> None:
    arena = new_arena(np.float32)
    try:
        distributed.ZeroRedundancyOptimizer(make("LAMB", arena))
    except TypeError as error:
        assert "LAMB" in str(error) and "DataParallel" in str(error), error
    else:
        raise AssertionError("ZeRO accepted LAMB")
    dp = distributed.DataParallel(fusedoptim.SGD(arena, lr=0.1))
    dp.check_consistent()
    if rank == size - 1:
        arena.params["b"][2] += 1.0  # a rank drifts
    try:
        dp.check_consistent()
    except RuntimeError as error:
        assert f"rank {size - 1} differs from rank 0 in params[0]" in str(error), error
    else:
        raise AssertionError("check_consistent missed a drifted rank")
    # A rank whose gradient does not fit the bucket: every rank raises (the ranks agree before the Allreduce).
    # tests/mpi/check_failures.py covers every such failure.
    arrays = [np.zeros((3, 4), np.float32), np.zeros(5, np.float32)]
    dp_list = distributed.DataParallel(fusedoptim.SGD(arrays, lr=0.1))
    bad = [np.ones((3, 4), np.float32), np.ones(6 if rank == size - 1 else 5, np.float32)]
    try:
        dp_list.step(bad)
    except ValueError as error:
        if rank == size - 1:
            assert str(error) == "grads[1] is float32[6], its parameter float32[5]", error
        else:
            expected = f"rank {size - 1} failed in DataParallel.step: ValueError: grads[1] is float32[6]"
            assert expected in str(error), error
    else:
        raise AssertionError("a mismatched gradient was not reported")
    np.testing.assert_array_equal(arrays[1], 0)  # nothing was stepped
    dp_list.step([np.ones((3, 4), np.float32), np.ones(5, np.float32)])  # and the wrapper still works
    np.testing.assert_allclose(arrays[1], -0.1)


def main() -> None:
    assert size >= 2, "run under mpiexec -n 2 (or more)"
    assert fusedoptim.get_num_threads() >= 1
    for dtype in (np.float32, np.float64):
        for name in ELEMENTWISE + ["LAMB"]:
            check_dp_equals_single(name, dtype)
        for name in ELEMENTWISE:
            check_zero_equals_dp(name, dtype)
    for name in ("SGD", "Adam", "NAdam", "Adagrad"):
        check_checkpoints(name, np.float32)
    check_checkpoints("AdamW", np.float64)
    check_zero_float16()
    check_errors()
    comm.Barrier()
    if rank == 0:
        print("OK", flush=True)


if __name__ == "__main__":
    main()
