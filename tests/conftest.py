from __future__ import annotations

import numpy as np
import pytest

from fusedoptim import _core


@pytest.fixture(params=_core.supported_simd_levels())
def simd_level(request):
    """Runs a test once per SIMD level this CPU supports, and restores the level afterwards."""
    previous = _core.simd_level()
    _core.set_simd_level(request.param)
    yield request.param
    _core.set_simd_level(previous)


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    """1 or 2 threads, with a small parallel grain so that small arrays are split between threads too."""
    previous_threads, previous_grain = _core.requested_num_threads(), _core.get_parallel_grain()
    _core.set_num_threads(request.param)
    _core.set_parallel_grain(8)
    yield request.param
    _core.set_num_threads(previous_threads)
    _core.set_parallel_grain(previous_grain)


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param
