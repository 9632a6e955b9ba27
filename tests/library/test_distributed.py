"""fusedoptim.distributed: layout logic in this process; the collectives under ``mpiexec -n 2`` (tests/mpi/).

The MPI tests skip when mpi4py or mpiexec is missing, unless FUSEDOPTIM_REQUIRE_MPI=1 (CI's .ci/mpi.sh sets
it), which turns a missing dependency into a failure. Each mpiexec run has a timeout, so a hang fails.
``fusedoptim train`` under mpiexec is tested in tests/cli/test_demo_distributed.py.
"""

from __future__ import annotations

import builtins
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fusedoptim
from fusedoptim import distributed
from support.mpirun import run_mpiexec

# The scripts run under mpiexec.
MPI_SCRIPTS = Path(__file__).resolve().parent.parent / "mpi"


# --- without MPI --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("total", [0, 1, 15, 16, 17, 77, 1000, 12345])
@pytest.mark.parametrize("ranks", [1, 2, 3, 7])
def test_shard_bounds_cover_and_balance(total: int, ranks: int) -> None:
    bounds = distributed.shard_bounds(total, ranks)
    assert len(bounds) == ranks and bounds[0][0] == 0 and bounds[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))  # contiguous, in rank order
    assert all(s <= e for s, e in bounds)
    for r, (start, _) in enumerate(bounds):
        # Every slice starts on 64 bytes of float32 (or is empty at the end), within half of that of its ideal.
        assert start % 16 == 0 or start == total
        assert start == total or abs(start - r * total / ranks) <= 8 + 1


def test_shard_bounds_refuse_bad_arguments() -> None:
    with pytest.raises(ValueError, match="world_size must be a positive int, got 0"):
        distributed.shard_bounds(10, 0)
    with pytest.raises(ValueError, match="total must be a non-negative int, got -1"):
        distributed.shard_bounds(-1, 2)


def test_shard_pieces_split_arrays_at_the_cut() -> None:
    sizes = [4, 6, 5]
    assert distributed.shard_pieces(sizes, 0, 3) == [(0, 0, 3)]
    assert distributed.shard_pieces(sizes, 3, 12) == [(0, 3, 4), (1, 0, 6), (2, 0, 2)]
    assert distributed.shard_pieces(sizes, 12, 15) == [(2, 2, 5)]
    assert distributed.shard_pieces(sizes, 5, 5) == []
    # Over any split, the pieces tile every array exactly once.
    bounds = distributed.shard_bounds(15, 4, align=2)
    covered = [np.zeros(n, int) for n in sizes]
    for s, e in bounds:
        for i, lo, hi in distributed.shard_pieces(sizes, s, e):
            covered[i][lo:hi] += 1
    assert all((c == 1).all() for c in covered)


def test_assemble_state_reverses_sharding() -> None:
    """Sharded state of a real optimizer, re-assembled, equals the unsharded optimizer's state."""
    rng = np.random.default_rng(0)
    shapes = [(3, 5), (7,), (11,)]
    params = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    full = fusedoptim.Adam([p.copy() for p in params], lr=0.1, amsgrad=True)
    sizes = [p.size for p in params]
    shards = []
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(3)]
    for start, end in distributed.shard_bounds(sum(sizes), 3, align=4):
        pieces = distributed.shard_pieces(sizes, start, end)
        local = [p.copy() for p in params]
        views = [local[i].reshape(-1)[lo:hi] for i, lo, hi in pieces]
        opt = fusedoptim.Adam(views or [np.zeros(0, np.float32)], lr=0.1, amsgrad=True)
        for g in grads:
            if pieces:
                opt.step([g[i].reshape(-1)[lo:hi].copy() for i, lo, hi in pieces])
        shards.append([(i, lo, hi, opt.state[k]) for k, (i, lo, hi) in enumerate(pieces)])
    for g in grads:
        full.step(g)
    merged = distributed.assemble_state(sizes, shards)
    for i in range(len(params)):
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            np.testing.assert_array_equal(merged[i][key], full.state[i][key].reshape(-1))
        assert merged[i]["step"] == full.state[i]["step"] == 3


def test_assemble_state_refuses_disagreeing_or_missing_shards() -> None:
    a = {"step": 1, "m": np.zeros(2)}
    with pytest.raises(ValueError, match="disagree on state 'step' of parameter 0"):
        distributed.assemble_state([4], [[(0, 0, 2, a)], [(0, 2, 4, {"step": 2, "m": np.zeros(2)})]])
    with pytest.raises(ValueError, match="hold state for 2 of parameter 0's 4 elements"):
        distributed.assemble_state([4], [[(0, 0, 2, a)]])


def test_compare_layouts_names_the_odd_rank() -> None:
    same = {"optimizer": "Adam", "parameter shapes": [((3,), "<f4")]}
    odd = {"optimizer": "Adam", "parameter shapes": [((4,), "<f4")]}
    assert distributed.compare_layouts([same, dict(same)]) is None
    message = distributed.compare_layouts([same, same, odd])
    assert message is not None and "rank 2 has parameter shapes [((4,), '<f4')]" in message
    assert "rank 1" not in message


def test_combine_norms_matches_one_norm() -> None:
    rng = np.random.default_rng(1)
    g = rng.standard_normal(100)
    for p in (1.0, 2.0, 3.0, float("inf")):
        parts = [float(fusedoptim.get_total_norm([g[a:b]], p)) for a, b in ((0, 30), (30, 31), (31, 100))]
        assert distributed._combine_norms(parts, p) == pytest.approx(fusedoptim.get_total_norm([g], p), rel=1e-12)
    assert np.isnan(distributed._combine_norms([1.0, float("nan"), float("inf")], 2.0))
    assert np.isnan(distributed._combine_norms([float("inf"), float("nan")], float("inf")))
    assert distributed._combine_norms([1.0, float("inf")], 2.0) == float("inf")


def test_other_ranks_raise_the_failing_ranks_exception_type() -> None:
    """The ranks that did not fail raise the failing rank's built-in type (one except clause on every rank),
    else RuntimeError."""
    for name, kind in (
        ("ValueError", ValueError),
        ("FileNotFoundError", FileNotFoundError),
        ("TypeError", TypeError),
        ("CheckpointError", RuntimeError),
        ("UnicodeDecodeError", RuntimeError),
        ("KeyboardInterrupt", RuntimeError),
    ):
        error = distributed._same_kind(name, "rank 1 failed in step: boom")
        assert type(error) is kind and str(error) == "rank 1 failed in step: boom", (name, error)


def test_missing_mpi4py_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_mpi4py(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "mpi4py" or name.startswith("mpi4py."):
            raise ImportError("No module named 'mpi4py'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "mpi4py", raising=False)
    monkeypatch.delitem(sys.modules, "mpi4py.MPI", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_mpi4py)
    arena = fusedoptim.ParamArena({"w": 3})
    with pytest.raises(ImportError, match=r'pip install "fusedoptim\[mpi\]"'):
        distributed.DataParallel(fusedoptim.SGD(arena, lr=0.1))


def test_importing_fusedoptim_does_not_import_mpi4py() -> None:
    code = "import sys, fusedoptim, fusedoptim.distributed; print('mpi4py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- under mpiexec ------------------------------------------------------------------------------------------


def test_dp_zero_checkpoints_under_mpiexec(tmp_path: Path) -> None:
    """DP == one process with the global batch (11 optimizers, float32 and float64, arena and separate arrays,
    clipping and the non-finite skip); ZeRO-1 == DP; re-assembled state == single-process state; sharded and
    consolidated checkpoints resume exactly; ZeRO on float16 == DP; LAMB refused by ZeRO; drift and bad gradients
    reported."""
    result = run_mpiexec([sys.executable, str(MPI_SCRIPTS / "check_equivalence.py"), str(tmp_path)], 120, tmp_path)
    assert result.returncode == 0 and result.stdout.strip().endswith("OK"), result.stdout + result.stderr


@pytest.mark.parametrize("mode", ["shape", "lr", "zero-shape"])
def test_mismatched_ranks_get_an_error_not_a_hang(tmp_path: Path, mode: str) -> None:
    result = run_mpiexec([sys.executable, str(MPI_SCRIPTS / "check_mismatch.py"), mode], 60, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # mpiexec merges the ranks' output, not always at line ends: find each rank's report anywhere.
    assert sorted(re.findall(r"rank (\d+): ValueError: the ranks' parameters do not match", result.stdout)) == [
        "0",
        "1",
    ], result.stdout


FAILURES = [
    "dp-none",
    "dp-count",
    "dp-buffer",
    "dp-root",
    "zero-shape",
    "zero-lamb",
    "options",
    "save-root",
    "save-consolidate",
    "load-damaged",
    "load-state-dict",
]


@pytest.mark.parametrize("mode", FAILURES)
def test_a_failure_on_one_rank_raises_on_every_rank(tmp_path: Path, mode: str) -> None:
    """A None gradient, a wrong gradient count or a copied arena buffer on one rank of DataParallel; a wrong
    shape on one rank of ZeRO; LAMB under ZeRO on one rank; another root or other step options on one rank; the
    root failing to write or to assemble a checkpoint; a damaged file or state dict on one rank: every rank
    raises (naming the failing rank), nothing changes on any rank, and the ranks stay in step. Before the ranks
    agreed on failures, each of these hung the other rank or left it running alone. ``-m mpi4py`` aborts the
    job when a check fails on one rank; a hang fails by the timeout (and the process group is killed)."""
    script = MPI_SCRIPTS / "check_failures.py"
    result = run_mpiexec([sys.executable, "-m", "mpi4py", str(script), mode, str(tmp_path)], 60, tmp_path)
    counts = re.search(r"OK: every rank raised \[(\d+), (\d+)\]", result.stdout)
    assert result.returncode == 0 and counts, result.stdout + result.stderr
    # mpiexec merges the ranks' output, in no set order: count each rank's reports anywhere.
    raised = re.findall(r"\[rank (\d+) raised \w+\]", result.stdout)
    assert int(counts[1]) == int(counts[2]) == raised.count("0") == raised.count("1") > 0, result.stdout
