"""Run under ``mpiexec -n 2`` by tests/library/test_distributed.py: ranks that built different models or optimizers get
a clear ValueError on every rank at construction, instead of hanging in a collective of mismatched size.

Usage: check_mismatch.py {shape,lr,zero-shape}. Prints "rank R: ValueError: ..." per rank, then "OK" on rank 0.
"""

from __future__ import annotations

import sys

import numpy as np
from mpi4py import MPI

import fusedoptim
from fusedoptim import distributed

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
mode = sys.argv[1]
last = rank == size - 1
shapes = {"w": (4, 3), "b": (3 if not (last and "shape" in mode) else 4,)}
arena = fusedoptim.ParamArena(shapes, np.float32)
lr = 0.2 if (last and mode == "lr") else 0.1
cls = distributed.ZeroRedundancyOptimizer if mode.startswith("zero") else distributed.DataParallel
try:
    cls(fusedoptim.Adam(arena, lr=lr))
except ValueError as error:
    text = str(error)
    print(f"rank {rank}: ValueError: {text}", flush=True)
    assert "do not match" in text and f"rank {size - 1} has" in text, text
    assert (
        ("arena shapes" in text and "(4,)" in text)
        if "shape" in mode
        else ("parameter groups" in text and "0.2" in text)
    ), text
else:
    raise AssertionError(f"rank {rank}: the mismatch was not detected")
comm.Barrier()
if rank == 0:
    print("OK", flush=True)
