"""``fusedoptim train`` under ``mpiexec -n N``: data parallelism for the demo's training loop.

Every rank draws the same global batches (same seed, same permutation) and takes a contiguous block of each;
the ranks' gradients are weighted by their share of the batch and averaged by
:class:`fusedoptim.distributed.DataParallel` (or sharded with ``--zero``), so a step uses the gradient of the
whole global batch, as a single process would, up to the rounding of the sums. The batch's loss is combined
the same way, so every rank logs, stops and checkpoints at the same step; only rank 0 prints and writes.
Checkpoints are collective (``fusedoptim.distributed.save``/``load``): a failure on one rank stops every rank.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from fusedoptim.optimizer import Optimizer

__all__ = ["Parallel", "launched_ranks"]

T = TypeVar("T")

# Set by the launchers: MPICH's Hydra and Intel MPI (PMI_SIZE), Open MPI (OMPI_COMM_WORLD_SIZE).
_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")


def launched_ranks() -> int:
    """The number of ranks an MPI launcher started this process among (1 when not under mpiexec)."""
    for name in _SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


class Parallel:
    """The demo's view of the MPI world: which block of a batch is this rank's, and the collectives the loop
    needs besides the optimizer's (the batch loss)."""

    def __init__(self, zero: bool = False) -> None:
        from fusedoptim import distributed

        self.distributed = distributed
        MPI = distributed.mpi()
        self.comm = MPI.COMM_WORLD
        self.rank: int = self.comm.Get_rank()
        self.size: int = self.comm.Get_size()
        self.zero = zero

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def describe(self) -> str:
        how = "ZeRO-1: optimizer state sharded over the ranks" if self.zero else "gradients averaged by Allreduce"
        return f"data parallel: {self.size} MPI ranks, each a block of every batch; {how}"

    def wrap(self, optimizer: Optimizer) -> Any:
        # threads=None: the command's --threads already chose the kernels' threads for this rank.
        cls = self.distributed.ZeroRedundancyOptimizer if self.zero else self.distributed.DataParallel
        return cls(optimizer, self.comm, threads=None)

    def block(self, count: int) -> slice:
        """This rank's rows of a batch of ``count``: contiguous, sizes differing by at most one."""
        return slice(self.rank * count // self.size, (self.rank + 1) * count // self.size)

    def reweight(self, grads: list[np.ndarray], local: int, count: int) -> None:
        """Scales this rank's mean gradient by ``local * N / count`` so the ranks' average is the mean over the
        whole batch when the blocks differ in size (a no-op when they are equal)."""
        weight = local * self.size / count
        if weight != 1.0:
            for g in grads:
                g *= g.dtype.type(weight)

    def batch_loss(self, loss: float, local: int, count: int) -> float:
        """The mean loss over the whole batch from each rank's mean over its block (one small Allreduce): the
        same value on every rank, so all ranks take the same decisions (logging, divergence, stopping)."""
        return float(self.comm.allreduce(loss * local / count if local else 0.0))

    def from_root(self, read: Callable[[], T], error_type: type[Exception]) -> T:
        """``read()`` on rank 0 alone, its result sent to every rank (one broadcast). A collective: if it raises,
        every rank raises, rank 0 its own exception and the others ``error_type`` with the same message (a
        RuntimeError naming it, for another kind of exception), so rank 0's failure cannot leave the others
        waiting. Only strings cross for a failure: any exception can be reported."""
        result: Any = None
        failure: tuple[bool, str] | None = None
        error: Exception | None = None
        if self.is_root:
            try:
                result = read()
            except Exception as exception:
                error = exception
                expected = isinstance(exception, error_type)
                failure = (
                    expected,
                    str(exception) if expected else f"rank 0 failed: {type(exception).__name__}: {exception}",
                )
        result, failure = self.comm.bcast((result, failure), root=0)
        if error is not None:
            raise error
        if failure is not None:
            expected, message = failure
            raise error_type(message) if expected else RuntimeError(message)
        return result
