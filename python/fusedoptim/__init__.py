"""fusedoptim: fused, in-place C++ optimizers for NumPy training loops, shaped like torch.optim.

>>> import numpy as np, fusedoptim
>>> w = np.zeros(3, dtype=np.float32)
>>> opt = fusedoptim.SGD([w], lr=0.5, momentum=0.9)
>>> opt.step([np.ones(3, dtype=np.float32)])
>>> w
array([-0.5, -0.5, -0.5], dtype=float32)
"""

from __future__ import annotations

import os as _os

# Idle kernel threads sleep rather than spin between steps, unless the user chose otherwise. libgomp reads this
# once, when the extension loads it just below. Spinning threads make a step wait a whole scheduler time slice
# whenever anything else (NumPy's BLAS threads, another process) runs on the cores: measured on 2 cores with one
# busy process, Adam on 1e5 float32 values with 2 threads took 6.2 ms per step spinning and 0.16 ms sleeping.
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

from . import _core, functional, lr_scheduler, reference, swa
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .amp import GradScaler
from .arena import ParamArena
from .asgd import ASGD
from .checkpoint import load, save
from .clip import clip_grad_norm_, clip_grad_value_, get_total_norm
from .ema import EMA, ema_
from .lamb import LAMB
from .lbfgs import LBFGS
from .lion import Lion
from .nadam import NAdam
from .optimizer import Optimizer, ParamState
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop
from .sgd import SGD
from .swa import AveragedParams

__version__: str = _core.__version__

__all__ = [
    "ASGD",
    "EMA",
    "LAMB",
    "LBFGS",
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "AveragedParams",
    "GradScaler",
    "Lion",
    "NAdam",
    "Optimizer",
    "ParamArena",
    "ParamState",
    "RAdam",
    "RMSprop",
    "Rprop",
    "__version__",
    "clip_grad_norm_",
    "clip_grad_value_",
    "ema_",
    "functional",
    "get_num_threads",
    "get_total_norm",
    "info",
    "load",
    "lr_scheduler",
    "reference",
    "save",
    "set_num_threads",
    "simd_level",
    "swa",
]


def get_num_threads() -> int:
    """Threads a kernel call may use (``set_num_threads``' value, else OpenMP's, e.g. ``OMP_NUM_THREADS``)."""
    return _core.get_num_threads()


def set_num_threads(threads: int) -> None:
    """Limits the threads kernels use; 0 returns to OpenMP's maximum."""
    _core.set_num_threads(threads)


def simd_level() -> str:
    """The instruction set the kernels run with (``FUSEDOPTIM_SIMD`` forces one at import)."""
    return _core.simd_level()


def info() -> dict[str, object]:
    """Build and runtime facts: version, compiler, OpenMP, sanitizers, threads, SIMD levels, and whether the
    mixed-precision loops prefetch in software (on for Intel CPUs; ``FUSEDOPTIM_PREFETCH=0`` or ``1`` decides)."""
    return {
        "version": __version__,
        "compiler": _core.compiler,
        "openmp": _core.openmp,
        "sanitize": _core.sanitize,
        "threads": _core.get_num_threads(),
        "simd_level": _core.simd_level(),
        "simd_compiled": _core.compiled_simd_levels(),
        "simd_supported": _core.supported_simd_levels(),
        "prefetch": _core.prefetch(),
    }
