"""The 16-bit dtypes of mixed precision: NumPy's float16 and, when ml_dtypes is installed, bfloat16."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

try:  # optional: pip install fusedoptim[bf16]
    import ml_dtypes as _ml_dtypes

    BFLOAT16: Optional[np.dtype] = np.dtype(_ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - depends on the environment
    BFLOAT16 = None

FLOAT16 = np.dtype(np.float16)
FLOAT32 = np.dtype(np.float32)
_NEEDS_ML_DTYPES = "bfloat16 needs the ml_dtypes package (pip install fusedoptim[bf16])"


def is_16bit(dtype: np.dtype) -> bool:
    """float16, or ml_dtypes' bfloat16."""
    return dtype == FLOAT16 or (BFLOAT16 is not None and dtype == BFLOAT16)


def state_dtype(value: Any) -> Optional[np.dtype]:
    """A ``state_dtype`` option as a dtype: None (the default), "float16" or "bfloat16" (names or dtypes)."""
    if value is None:
        return None
    if isinstance(value, str) and value == "bfloat16":
        if BFLOAT16 is None:
            raise ImportError(f"state_dtype='bfloat16': {_NEEDS_ML_DTYPES}")
        return BFLOAT16
    try:
        dtype = np.dtype(value)
    except TypeError:
        dtype = None
    if dtype is None or not is_16bit(dtype):
        raise ValueError(f"Invalid state_dtype: {value!r} (expected None, 'float16' or 'bfloat16')")
    return dtype


def bfloat16() -> np.dtype:
    """ml_dtypes' bfloat16 dtype, or ImportError saying how to get it."""
    if BFLOAT16 is None:
        raise ImportError(_NEEDS_ML_DTYPES)
    return BFLOAT16
