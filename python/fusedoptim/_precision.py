"""The 16-bit dtypes of mixed precision: NumPy's float16 and, when ml_dtypes is installed, bfloat16."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

import numpy as np


def _loaded_bfloat16() -> np.dtype | None:
    """bfloat16 if ml_dtypes is already imported, else None (an array can only be bfloat16 once it is).

    ml_dtypes is imported only when bfloat16 is asked for by name: importing it registers its dtypes with NumPy,
    which took 1.1 s, 90% of ``import fusedoptim``, on the development machine."""
    module = sys.modules.get("ml_dtypes")
    return None if module is None else np.dtype(module.bfloat16)


def has_bfloat16() -> bool:
    """Whether ml_dtypes can be imported (without importing it)."""
    return "ml_dtypes" in sys.modules or importlib.util.find_spec("ml_dtypes") is not None


FLOAT16 = np.dtype(np.float16)
FLOAT32 = np.dtype(np.float32)
_NEEDS_ML_DTYPES = "bfloat16 needs the ml_dtypes package (pip install fusedoptim[bf16])"


def is_16bit(dtype: np.dtype) -> bool:
    """float16, or ml_dtypes' bfloat16."""
    if dtype == FLOAT16:
        return True
    bf16 = _loaded_bfloat16()
    return bf16 is not None and dtype == bf16


def state_dtype(value: Any) -> np.dtype | None:
    """A ``state_dtype`` option as a dtype: None (the default), "float16" or "bfloat16" (names or dtypes)."""
    if value is None:
        return None
    if isinstance(value, str) and value == "bfloat16":
        try:
            return bfloat16()
        except ImportError:
            raise ImportError(f"state_dtype='bfloat16': {_NEEDS_ML_DTYPES}") from None
    try:
        dtype = np.dtype(value)
    except TypeError:
        dtype = None
    if dtype is None or not is_16bit(dtype):
        raise ValueError(f"Invalid state_dtype: {value!r} (expected None, 'float16' or 'bfloat16')")
    return dtype


def bfloat16() -> np.dtype:
    """ml_dtypes' bfloat16 dtype, or ImportError saying how to get it."""
    try:
        import ml_dtypes
    except ImportError:
        raise ImportError(_NEEDS_ML_DTYPES) from None
    return np.dtype(ml_dtypes.bfloat16)
