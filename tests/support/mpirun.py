"""Runs a command under ``mpiexec -n 2`` with a timeout (tests/library/test_distributed.py,
tests/cli/test_demo_distributed.py).

The tests that use it skip when mpi4py or mpiexec is missing, unless FUSEDOPTIM_REQUIRE_MPI=1 (CI's .ci/mpi.sh sets
it), which turns a missing dependency into a failure. A hang fails the test and ends the launcher's process group.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["mpiexec", "run_mpiexec"]

REQUIRE = os.environ.get("FUSEDOPTIM_REQUIRE_MPI") == "1"


def mpiexec() -> str:
    """The mpiexec to use; skips the test (fails it under FUSEDOPTIM_REQUIRE_MPI=1) without mpi4py or mpiexec."""
    found = shutil.which("mpiexec")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        found = None
    if found is None:
        if REQUIRE:
            pytest.fail('FUSEDOPTIM_REQUIRE_MPI=1 but mpi4py or mpiexec is missing: pip install "mpi4py>=4" mpich')
        pytest.skip('needs mpi4py and mpiexec: pip install "fusedoptim[mpi]"')
    return found


def run_mpiexec(args: list[str], timeout: float, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``mpiexec -n 2 *args`` in ``cwd``; fails the test if it runs longer than ``timeout`` seconds."""
    env = dict(os.environ)
    # Two ranks on a 2-core machine: one OpenMP thread each, so a rank never waits for a descheduled thread
    # while the other busy-polls in MPI.
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("MKL_NUM_THREADS", "1")
    command = [mpiexec(), "-n", "2", *args]
    # A new session, so a timeout can end the whole launcher's process group (the ranks too).
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        stdout, stderr = process.communicate()
        pytest.fail(f"mpiexec {' '.join(args)} hung for {timeout} s\nstdout:\n{stdout}\nstderr:\n{stderr}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
