#!/usr/bin/env bash
# CI, MPI part: inside the already-activated CI venv (fusedoptim and its test extras installed), add the `mpi`
# extra's packages only (reinstalling fusedoptim would rebuild the C++ extension) and run the distributed tests
# under mpiexec: the library's (fusedoptim.distributed) and the demo's (fusedoptim train under mpiexec).
# FUSEDOPTIM_REQUIRE_MPI=1 makes a missing mpi4py/mpiexec a failure instead of a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet "mpi4py>=4" mpich
python -c "from mpi4py import MPI; print('MPI:', MPI.Get_library_version().splitlines()[0])"
export FUSEDOPTIM_REQUIRE_MPI=1
# Two ranks share the machine's cores: one OpenMP and BLAS thread each.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
# Each mpiexec run in the tests has its own timeout (a hang fails that test and kills its process group); this
# one, far above the ~15 s the two files take, is the last line of defence against a hang outside them.
timeout --kill-after=60 1800 python -m pytest tests/library/test_distributed.py tests/cli/test_demo_distributed.py -q
