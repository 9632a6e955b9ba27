"""``fusedoptim train`` under ``mpiexec -n 2``: data parallel runs follow the single-process run; their checkpoints
(``fusedoptim.distributed.save``/``load``) resume in one process or bit for bit under mpiexec; a checkpoint that
cannot be written or read stops every rank.

Like tests/library/test_distributed.py these skip without mpi4py and mpiexec, unless FUSEDOPTIM_REQUIRE_MPI=1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fusedoptim
from support.mpirun import mpiexec, run_mpiexec


def _train_args(*extra: str) -> list[str]:
    return [
        "-m",
        "fusedoptim",
        "train",
        "--epochs",
        "2",
        "--train-subset",
        "1200",
        "--test-subset",
        "600",
        "--hidden",
        "64",
        "--no-progress",
        "--json",
        *extra,
    ]


def _summary(stdout: str) -> dict:
    return json.loads(stdout)["runs"][0]


@pytest.mark.parametrize("extra", [(), ("--optimizer", "adam", "--zero", "--batch-size", "50")])
def test_train_under_mpiexec_matches_one_process(tmp_path: Path, extra: tuple[str, ...]) -> None:
    """fusedoptim train under mpiexec -n 2 follows the single-process run with the same global batch (the
    batch of 50 over 1200 examples has equal blocks; the default 64 ends each epoch on a batch of 48)."""
    mpiexec()  # skips (or, in CI's MPI step, fails) first: even the single-process --zero run needs mpi4py
    single = subprocess.run(
        [sys.executable, *_train_args(*extra)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert single.returncode == 0, single.stderr
    parallel = run_mpiexec([sys.executable, *_train_args(*extra, "--save", str(tmp_path / "run.npz"))], 120, tmp_path)
    assert parallel.returncode == 0, parallel.stdout + parallel.stderr
    assert "data parallel: 2 MPI ranks" in parallel.stderr
    one, two = _summary(single.stdout), _summary(parallel.stdout)  # one JSON document: only rank 0 prints
    assert one["steps"] == two["steps"]
    for a, b in zip(one["history"], two["history"]):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)
        assert abs(b["test_accuracy"] - a["test_accuracy"]) <= 2 / 600  # at most a couple of borderline images
    # The checkpoint rank 0 wrote (consolidated) resumes in a single process.
    resumed = subprocess.run(
        [sys.executable, *_train_args(*extra, "--epochs", "3", "--resume", str(tmp_path / "run.npz"))],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert _summary(resumed.stdout)["epochs_run"] == 3


def _small_run(*extra: str) -> list[str]:
    return [
        "-m",
        "fusedoptim",
        "train",
        "--epochs",
        "2",
        "--train-subset",
        "600",
        "--test-subset",
        "200",
        "--hidden",
        "32",
        "--no-progress",
        *extra,
    ]


@pytest.mark.parametrize(
    "extra", [(), ("--optimizer", "adam", "--zero", "--batch-size", "50")], ids=["data-parallel", "zero"]
)
def test_resume_under_mpiexec_equals_uninterrupted(tmp_path: Path, extra: tuple[str, ...]) -> None:
    """A run stopped mid-epoch (--max-steps) and resumed, both under mpiexec -n 2, equals the uninterrupted run
    bit for bit: distributed.save writes one consolidated checkpoint (ZeRO gathers the shards), distributed.load
    gives every rank its part."""
    args = [sys.executable, *_small_run("--json", *extra)]
    whole = run_mpiexec(args, 120, tmp_path)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    checkpoint = str(tmp_path / "run.npz")
    stopped = run_mpiexec([*args, "--max-steps", "13", "--save", checkpoint], 120, tmp_path)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert _summary(stopped.stdout)["steps"] == 13
    resumed = run_mpiexec([*args, "--resume", checkpoint], 120, tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resumed from" in resumed.stderr
    one, two = _summary(whole.stdout), _summary(resumed.stdout)
    assert one["steps"] == two["steps"] and one["curve"] == two["curve"]
    assert [(r["train_loss"], r["test_accuracy"]) for r in one["history"]] == [
        (r["train_loss"], r["test_accuracy"]) for r in two["history"]
    ]


@pytest.mark.parametrize("failure", ["save", "resume-damaged", "resume-not-a-run"])
def test_a_checkpoint_failure_under_mpiexec_stops_every_rank(tmp_path: Path, failure: str) -> None:
    """Rank 0 cannot write the checkpoint, or the file to resume is damaged or not a run's: every rank reports
    the error and exits with status 1. (When rank 0 wrote alone, its failure left rank 1 waiting forever in the
    next step's Allreduce.)"""
    if failure == "save":
        extra, expected = ("--save", str(tmp_path / "missing" / "run.npz")), "No such file or directory"
    elif failure == "resume-damaged":
        (tmp_path / "junk.npz").write_bytes(b"not a zip")
        extra, expected = ("--resume", "junk.npz"), "junk.npz: not a readable fusedoptim checkpoint"
    else:
        fusedoptim.save(tmp_path / "library.npz", params=[np.zeros(3, np.float32)])
        extra, expected = ("--resume", "library.npz"), "library.npz: not a fusedoptim train checkpoint"
    result = run_mpiexec([sys.executable, *_small_run(*extra)], 60, tmp_path)
    assert result.returncode != 0, result.stdout + result.stderr
    # mpiexec merges the ranks' output, not always at line ends: count each rank's report anywhere.
    assert result.stderr.count("fusedoptim train: error: ") == 2, result.stderr
    assert result.stderr.count(expected) == 2, result.stderr
    if failure == "save":
        assert "rank 0 failed in distributed.save: FileNotFoundError" in result.stderr
