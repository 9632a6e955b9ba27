"""The fused kernels against the NumPy reference (the spec): params and every state buffer, bit for bit.

The kernels perform the reference's operations in the same order and precision, compiled without FMA
contraction, so equality is exact at every SIMD level and thread count."""

from __future__ import annotations

import numpy as np
import pytest

from fusedoptim import functional, reference
from registry import ALL_CASES, ALL_IDS, make_grads, make_params

STEPS = 8


def _run(module, info, options, dtype):
    params = make_params(dtype)
    state = info.init_state(params, options)
    with np.errstate(all="ignore"):  # the special gradients make inf - inf on purpose: IEEE results are the spec
        for t in range(1, STEPS + 1):
            info.functional_step(module, params, make_grads(params, t, specials=True), state, t, options)
    return params, state


def _assert_same(a, b, exact=True):
    assert a.dtype == b.dtype and a.shape == b.shape
    if exact:
        np.testing.assert_array_equal(a, b, strict=True)
    else:  # LAMB: the norms are summed in another order, so the trust ratio may differ in its last bit
        tol = dict(rtol=1e-5, atol=1e-6) if a.dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(a, b, **tol)


@pytest.mark.parametrize(("info", "options"), ALL_CASES, ids=ALL_IDS)
def test_kernel_equals_reference(info, options, dtype, threads, simd_level):
    fused_params, fused_state = _run(functional, info, options, dtype)
    ref_params, ref_state = _run(reference, info, options, dtype)
    for f, r in zip(fused_params, ref_params):
        _assert_same(f, r, info.exact)
    assert fused_state.keys() == ref_state.keys()
    for key in fused_state:
        for f, r in zip(fused_state[key], ref_state[key]):
            if r is None:
                assert f is None
            elif isinstance(r, float):
                assert f == r
            else:
                _assert_same(f, r, info.exact)
    # the run must have moved every parameter of more than one element (a single one can come back: Lion's
    # sign steps can cancel)
    initial = make_params(dtype)
    moved = [not np.array_equal(p, q) for p, q in zip(fused_params, initial) if p.size > 1]
    assert all(moved)
