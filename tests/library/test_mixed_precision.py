"""Mixed precision (issue 9): 16-bit parameters with float32 masters, 16-bit optimizer state, gradient scaling.

The kernels equal the reference (reference.mixed_precision_ around each family's update) bit for bit: the
16-bit parameters, the masters and every state buffer, after every step, at every SIMD level and thread count.
The 16-bit conversions equal NumPy's float16 and ml_dtypes' bfloat16 casts over every 16-bit pattern and
millions of float32 ones."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

import fusedoptim
from fusedoptim import _core, _precision, reference
from registry import ALL_CASES, ALL_IDS, make_grads, make_params

BF16 = _precision.bfloat16() if _precision.has_bfloat16() else None
needs_bf16 = pytest.mark.skipif(BF16 is None, reason="bfloat16 needs ml_dtypes (pip install fusedoptim[bf16])")

# Registry state lists -> optimizer state keys.
STATE_KEYS = {
    "exp_avgs": "exp_avg",
    "exp_avg_sqs": "exp_avg_sq",
    "max_exp_avg_sqs": "max_exp_avg_sq",
    "momentum_buffers": "momentum_buffer",
    "state_sums": "sum",
    "square_avgs": "square_avg",
    "grad_avgs": "grad_avg",
    "acc_deltas": "acc_delta",
    "exp_infs": "exp_inf",
    "mu_products": "mu_product",
    "axs": "ax",
    "etas": "eta",
    "mus": "mu",
    "prevs": "prev",
    "step_sizes": "step_size",
}
# Sizes around the staging block (256) and the vector widths, odd and tiny ones.
SIZES = [0, 1, 3, 7, 8, 9, 17, 255, 256, 257, 1000, 2053]
STEPS = 6


def _dtype(name):
    if name == "bfloat16":
        if BF16 is None:
            pytest.skip("bfloat16 needs ml_dtypes (pip install fusedoptim[bf16])")
        return BF16
    return np.dtype(name)


def _float32(a):
    return np.asarray(a).astype(np.float32)


# --- the converters ------------------------------------------------------------------------------------------


def _quiet_f16(bits32):
    """float32 -> float16 as F16C does: NumPy's cast, but a NaN keeps its sign and top payload bits, quieted."""
    with np.errstate(all="ignore"):
        expected = bits32.view(np.float32).astype(np.float16).view(np.uint16)
    nan = (bits32 & 0x7FFFFFFF) > 0x7F800000
    f16_nan = ((bits32 >> 16) & 0x8000) | 0x7E00 | ((bits32 >> 13) & 0x3FF)
    return np.where(nan, f16_nan.astype(np.uint16), expected)


def _float32_patterns():
    rng = np.random.default_rng(0)
    patterns = [
        rng.integers(0, 2**32, 1 << 20, dtype=np.uint64).astype(np.uint32),
        np.arange(0x33000000 - 8, 0x38800000 + 8, 97, dtype=np.uint32),  # float16 subnormals and the edge
        np.arange(0x477FE000, 0x47800010, dtype=np.uint32),  # around float16's max and 65520
        np.arange(0x7F7F0000, 0x7F800010, dtype=np.uint32),  # float32 max, bfloat16 overflow, inf
        np.arange(0x3F800000, 0x3F800000 + (1 << 17), dtype=np.uint32),  # every rounding case (ties) near 1
        np.array([0, 0x7F800000, 0x7F800001, 0x7FC00000, 0x7FA00000, 0x7FFFFFFF, 0x00000001, 0x00800000], np.uint32),
    ]
    x = np.concatenate(patterns)
    return np.concatenate([x, x | 0x80000000])


@pytest.mark.parametrize("kind", ["float16", "bfloat16"])
def test_converters_equal_numpy_and_ml_dtypes(kind, simd_level):
    dtype = _dtype(kind)
    every = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    got = _core.to_float32(every, kind).view(np.uint32)
    expected = every.view(dtype).astype(np.float32).view(np.uint32)
    if kind == "float16":  # F16C quiets a signalling NaN (NumPy keeps it signalling)
        expected = np.where(np.isnan(expected.view(np.float32)), expected | 0x400000, expected)
    np.testing.assert_array_equal(got, expected)

    bits = _float32_patterns()
    got16 = _core.from_float32(bits.view(np.float32), kind)
    if kind == "float16":
        expected16 = _quiet_f16(bits)
    else:  # ml_dtypes: round to nearest even, NaN -> 0x7fc0 with its sign
        with np.errstate(all="ignore"):
            expected16 = bits.view(np.float32).astype(dtype).view(np.uint16)
    np.testing.assert_array_equal(got16, expected16)


# --- kernels against the reference ---------------------------------------------------------------------------

# (parameter dtype, state_dtype, gradient scale)
# Modes with bfloat16 parameters or bfloat16 state take the fused loop (parallel.hpp, run_fused); the others stage.
# The stochastic-rounding modes stage too.
MODES = [
    ("float16", None, 1.0),
    ("bfloat16", None, 1.0),
    ("float32", "bfloat16", 1.0),
    ("float16", "bfloat16", 2.0**-8),
    ("float32", "float16", 0.5),
    ("bfloat16", "bfloat16", 2.0**-4),
    ("bfloat16", None, 1.0, "stochastic"),
    ("float32", "bfloat16", 1.0, "stochastic"),
    ("bfloat16", "bfloat16", 2.0**-4, "stochastic"),
]
MODE_IDS = [
    "f16-params",
    "bf16-params",
    "bf16-state",
    "f16-params-bf16-state-scaled",
    "f16-state-scaled",
    "bf16-params-bf16-state-scaled",
    "bf16-params-sr",
    "bf16-state-sr",
    "bf16-params-bf16-state-scaled-sr",
]
MODES = [m if len(m) == 4 else (*m, "nearest") for m in MODES]
SEED = 12345
CASES = [(info, o) for info, o in ALL_CASES if info.name != "LAMB"]
IDS = [i for (info, _), i in zip(ALL_CASES, ALL_IDS) if info.name != "LAMB"]


def _run_pair(info, options, param_dtype, state_dtype, grad_scale, check_each_step=None, rounding="nearest"):
    pdt = _dtype(param_dtype)
    sdt = None if state_dtype is None else _dtype(state_dtype)
    initial = make_params(np.float32, sizes=SIZES)
    params = [p.astype(pdt) for p in initial]
    kwargs = dict(options)
    if state_dtype is not None:
        kwargs["state_dtype"] = state_dtype
    if rounding != "nearest":
        kwargs.update(rounding=rounding, rounding_seed=SEED)
    opt = info.cls(params, **kwargs)
    ref_params = [p.copy() for p in params]
    masters = [p.astype(np.float32) if p.dtype != np.float32 else p for p in ref_params]
    state = info.init_state(masters, options)
    state_dtype_arrays = sdt if sdt is not None else np.dtype(np.float32)
    for key, values in state.items():
        if all(isinstance(v, np.ndarray) for v in values):
            state[key] = [v.astype(state_dtype_arrays) for v in values]
    with np.errstate(all="ignore"):
        for t in range(1, STEPS + 1):
            grads = [g.astype(pdt) for g in make_grads(initial, t, specials=True)]
            if grad_scale != 1.0:
                grads = [(g.astype(np.float32) / np.float32(grad_scale)).astype(pdt) for g in grads]
            opt.step(grads, grad_scale=grad_scale)
            reference.mixed_precision_(
                lambda m, g, s, t=t: info.functional_step(reference, m, g, s, t, options),
                ref_params,
                masters,
                grads,
                state,
                grad_scale=grad_scale,
                state_dtype=sdt,
                rounding=rounding,
                seed=SEED,
                steps=[t] * len(params),
            )
            if check_each_step is not None:
                check_each_step(opt, params)
    return opt, params, ref_params, masters, state


def _assert_bitwise(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(_float32(a), _float32(b), strict=True)


@pytest.mark.parametrize(("param_dtype", "state_dtype", "grad_scale", "rounding"), MODES, ids=MODE_IDS)
@pytest.mark.parametrize(("info", "options"), CASES, ids=IDS)
def test_mixed_kernel_equals_reference(
    info, options, param_dtype, state_dtype, grad_scale, rounding, threads, simd_level
):
    def params_are_rounded_masters(opt, params):
        for i, p in enumerate(params):
            if p.dtype.itemsize == 2:
                master = opt.state[p]["master_param"]
                if rounding == "stochastic":
                    expected = reference.round_bfloat16_stochastic(
                        master, reference.stochastic_key(SEED, i, opt.state[p]["step"], 0)
                    )
                else:
                    expected = master.astype(p.dtype)
                np.testing.assert_array_equal(p.view(np.uint16), expected.view(np.uint16))

    opt, params, ref_params, masters, state = _run_pair(
        info, options, param_dtype, state_dtype, grad_scale, params_are_rounded_masters, rounding
    )
    for p, r, m in zip(params, ref_params, masters):
        _assert_bitwise(p, r)
        if p.dtype.itemsize == 2:
            _assert_bitwise(opt.state[p]["master_param"], m)
    for key, values in state.items():
        for p, r in zip(params, values):
            entry = opt.state._get(p) or {}
            name = STATE_KEYS[key]
            if name not in entry:
                continue
            if isinstance(r, float):
                assert entry[name] == r
            elif r is not None:
                expected_dtype = np.dtype((state_dtype and _dtype(state_dtype)) or np.float32)
                assert entry[name].dtype == expected_dtype, (key, entry[name].dtype)
                _assert_bitwise(entry[name], r)


@pytest.mark.parametrize(
    ("param_dtype", "state_dtype", "grad_scale"),
    [
        ("float32", "bfloat16", 1.0),
        ("bfloat16", "bfloat16", 2.0**-4),
        ("bfloat16", "bfloat16", 1.0),
        ("bfloat16", None, 1.0),
        ("bfloat16", None, 2.0**-4),
    ],
    ids=["f32-params-bf16-state", "bf16-both-scaled", "bf16-both", "bf16-params", "bf16-params-scaled"],
)
@pytest.mark.parametrize(("info", "options"), CASES, ids=IDS)
def test_fused_loop_equals_staged_loop(info, options, param_dtype, state_dtype, grad_scale):
    """bfloat16 parameters and bfloat16 state take the fused loop, converting in registers; staging (the knob
    off) must give the same bits in the parameters, the masters and every state buffer."""
    results = []
    previous = _core._get_fuse_mixed_precision()
    try:
        for fuse in (True, False):
            _core._set_fuse_mixed_precision(fuse)
            opt, params, _, _, _ = _run_pair(info, options, param_dtype, state_dtype, grad_scale)
            results.append((params, [dict(opt.state._get(p) or {}) for p in params]))
    finally:
        _core._set_fuse_mixed_precision(previous)
    (fused_params, fused_state), (staged_params, staged_state) = results
    for a, b in zip(fused_params, staged_params):
        _assert_bitwise(a, b)
    for a, b in zip(fused_state, staged_state):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], np.ndarray):
                _assert_bitwise(a[key], b[key])
            else:
                assert a[key] == b[key]


# --- accuracy against float32 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param_dtype", "state_dtype", "tolerance"),
    [("float16", None, 2e-3), ("bfloat16", None, 1e-2), ("float32", "bfloat16", 1e-2)],
)
def test_mixed_run_tracks_float32_run(param_dtype, state_dtype, tolerance):
    """Adam on least squares, 300 steps: the 16-bit run's parameters stay within `tolerance` (relative to the
    largest |w|) of the float32 run's. Gradients are computed from the 16-bit parameters and rounded to 16 bits,
    as a 16-bit model would."""
    pdt = _dtype(param_dtype)
    if state_dtype is not None:
        _dtype(state_dtype)  # skips without ml_dtypes
    rng = np.random.default_rng(3)
    a = rng.standard_normal((64, 32)).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    w32 = np.zeros(32, np.float32)
    w16 = w32.astype(pdt)
    kwargs = {} if state_dtype is None else {"state_dtype": state_dtype}
    opt32, opt16 = fusedoptim.Adam([w32], lr=1e-2), fusedoptim.Adam([w16], lr=1e-2, **kwargs)
    for _ in range(300):
        opt32.step([a.T @ (a @ w32 - b) / 64])
        w = w16.astype(np.float32)
        opt16.step([(a.T @ (a @ w - b) / 64).astype(pdt)])
    scale = np.max(np.abs(w32))
    assert np.max(np.abs(w16.astype(np.float32) - w32)) <= tolerance * scale


# --- errors and options --------------------------------------------------------------------------------------


def test_grads_must_have_the_parameters_dtype():
    w = np.zeros(4, np.float16)
    opt = fusedoptim.Adam([w])
    with pytest.raises(TypeError, match=r"grads\[0\] has dtype float32 but params\[0\] has dtype float16"):
        opt.step([np.zeros(4, np.float32)])
    assert "master_param" not in (opt.state._get(w) or {})


def test_lamb_refuses_mixed_precision():
    with pytest.raises(TypeError, match="LAMB does not support mixed precision"):
        fusedoptim.LAMB([np.zeros(3, np.float16)])
    with pytest.raises(TypeError, match="LAMB does not support mixed precision"):
        fusedoptim.LAMB([{"params": [np.zeros(3, np.float32)], "state_dtype": "float16"}])


def test_state_dtype_is_checked():
    with pytest.raises(ValueError, match=r"Invalid state_dtype: 'int8'"):
        fusedoptim.Adam([np.zeros(3, np.float32)], state_dtype="int8")
    with pytest.raises(TypeError, match="needs float32 or 16-bit parameters"):
        fusedoptim.Adam([np.zeros(3, np.float64)], state_dtype="float16")


def test_bfloat16_without_ml_dtypes_raises_clearly(monkeypatch):
    monkeypatch.setitem(sys.modules, "ml_dtypes", None)  # what `import ml_dtypes` sees when it is not installed
    with pytest.raises(ImportError, match=r"pip install fusedoptim\[bf16\]"):
        fusedoptim.Adam([np.zeros(3, np.float32)], state_dtype="bfloat16")


def test_mixed_precision_optimizers_are_planned_with_and_without_grad_scale():
    """The steady state applies to 16-bit parameters and state too, and to scaled steps (GradScaler's):
    tests/library/test_plan.py checks it against the full step."""
    for w, grad in [
        (np.zeros(8, np.float32), np.ones(8, np.float32)),
        (np.zeros(8, np.float16), np.ones(8, np.float16)),
    ]:
        opt = fusedoptim.Adam([w])
        opt.step([grad])
        plan = opt._plan
        assert plan is not None
        opt.step([grad], grad_scale=0.5)
        opt.step([grad], grad_scale=0.5, skip_if_nonfinite=True)
        assert opt._plan is plan


@pytest.mark.parametrize(("info", "options"), ALL_CASES, ids=ALL_IDS)
def test_grad_scale_is_applied_for_every_family_and_dtype(info, options, dtype):
    """step(grads, grad_scale=s) is the step on grads * s (computed in the parameters' dtype), bit for bit, for
    every family, option set and dtype (the prescaled run takes the steady-state plan, the scaled one the full
    step). float64 parameters (every family) and LAMB (both dtypes) used to ignore the scale."""
    scale = 0.3  # not a power of two: the product is rounded, as the kernel's is
    params = make_params(dtype, sizes=[1, 7, 1025, 5000])
    copies = [p.copy() for p in params]
    scaled_opt, prescaled_opt = info.cls(params, **options), info.cls(copies, **options)
    for seed in range(3):
        grads = make_grads(params, seed)
        scaled_opt.step(grads, grad_scale=scale)
        prescaled_opt.step([g * dtype(scale) for g in grads])
        for a, b in zip(params, copies):
            _assert_bitwise(a, b)
    for a, b in zip(params, copies):
        state_a, state_b = scaled_opt.state._get(a) or {}, prescaled_opt.state._get(b) or {}  # plain SGD keeps none
        assert state_a.keys() == state_b.keys()
        for key in state_a:
            if isinstance(state_a[key], np.ndarray):
                _assert_bitwise(state_a[key], state_b[key])
            else:
                assert state_a[key] == state_b[key]


def test_grad_scale_equals_prescaled_gradients():
    """grad_scale is applied to the gradient as read: a power of two gives exactly the unscaled step."""
    g = np.random.default_rng(0).standard_normal(100).astype(np.float32)
    w1, w2 = np.ones(100, np.float32), np.ones(100, np.float32)
    o1, o2 = fusedoptim.Adam([w1]), fusedoptim.Adam([w2])
    for _ in range(3):
        o1.step([g])
        o2.step([g * np.float32(1024)], grad_scale=1 / 1024)
    np.testing.assert_array_equal(w1, w2)


# --- GradScaler ----------------------------------------------------------------------------------------------


def test_grad_scaler_skips_backs_off_and_grows():
    w = np.ones(4, np.float16)
    opt = fusedoptim.SGD([w], lr=0.1)
    scaler = fusedoptim.GradScaler(init_scale=2.0**10, growth_interval=2)
    assert scaler.scale(3.0) == 3.0 * 2**10
    good = np.full(4, 2.0**10, np.float16)  # the true gradient is 1
    assert scaler.step(opt, [good])
    scaler.update()
    np.testing.assert_array_equal(w, np.full(4, 0.9, np.float16))
    assert scaler.get_scale() == 2.0**10
    bad = good.copy()
    bad[1] = np.inf
    before = opt.state[w]["master_param"].copy()
    assert not scaler.step(opt, [bad])
    scaler.update()
    np.testing.assert_array_equal(opt.state[w]["master_param"], before)
    assert scaler.get_scale() == 2.0**9 and opt.skipped_steps == 1
    for _ in range(2):
        assert scaler.step(opt, [np.full(4, 2.0**9, np.float16)])
        scaler.update()
    assert scaler.get_scale() == 2.0**10
    state = scaler.state_dict()
    other = fusedoptim.GradScaler()
    other.load_state_dict(state)
    assert other.state_dict() == state
    with pytest.raises(ValueError, match="Invalid growth_factor"):
        fusedoptim.GradScaler(growth_factor=0.5)
    with pytest.raises(ValueError, match="must have the keys"):
        other.load_state_dict({"scale": 1.0})


@needs_bf16
def test_bfloat16_state_dict_round_trips_and_converts():
    w = np.linspace(-1, 1, 10).astype(BF16)
    opt = fusedoptim.Adam([w], state_dtype="bfloat16")
    opt.step([np.ones(10, BF16)])
    sd = opt.state_dict()
    assert sd["state"][0]["master_param"].dtype == np.float32
    assert sd["state"][0]["exp_avg"].dtype == BF16
    w2 = w.copy()
    opt2 = fusedoptim.Adam([w2], state_dtype="bfloat16")
    opt2.load_state_dict(sd)
    _assert_bitwise(opt2.state[w2]["exp_avg"], opt.state[w]["exp_avg"])
    # float32 state into a bfloat16-state optimizer: rounded to nearest even
    sd32 = opt.state_dict()
    sd32["state"][0]["exp_avg"] = np.full(10, 1 + 2.0**-9, np.float32)  # a tie: rounds to even, 1.0
    opt2.load_state_dict(sd32)
    assert (opt2.state[w2]["exp_avg"].astype(np.float32) == 1.0).all()
    bad = opt.state_dict()
    bad["state"][0]["master_param"] = bad["state"][0]["master_param"].astype(np.float64)
    with pytest.raises(TypeError, match=r"state\[0\]\['master_param'\] has dtype float64; master weights are float32"):
        opt2.load_state_dict(bad)
    w32 = np.zeros(10, np.float32)
    with pytest.raises(ValueError, match="unexpected keys"):
        fusedoptim.Adam([w32]).load_state_dict(opt.state_dict())


@needs_bf16
def test_checkpoint_round_trips_masters_and_16bit_state(tmp_path):
    """save/load: 16-bit parameters, float32 masters and bfloat16 state come back with their dtypes, and the
    resumed run continues bit for bit."""
    rng = np.random.default_rng(0)
    grads = [[rng.standard_normal(50).astype(BF16), rng.standard_normal(7).astype(np.float16)] for _ in range(4)]

    def make():
        ps = [np.linspace(-1, 1, 50).astype(BF16), np.linspace(0, 1, 7).astype(np.float16)]
        return ps, fusedoptim.AdamW(ps, lr=1e-2, state_dtype="bfloat16")

    params, opt = make()
    for g in grads[:2]:
        opt.step(g)
    fusedoptim.save(tmp_path / "c.npz", optimizer=opt, params=params)
    for g in grads[2:]:
        opt.step(g)
    params2, opt2 = make()
    fusedoptim.load(tmp_path / "c.npz", optimizer=opt2, params=params2)
    assert opt2.state[params2[0]]["exp_avg"].dtype == BF16
    assert opt2.state[params2[0]]["master_param"].dtype == np.float32
    for g in grads[2:]:
        opt2.step(g)
    for a, b in zip(params, params2):
        _assert_bitwise(a, b)


def test_import_does_not_import_ml_dtypes():
    """ml_dtypes registers its dtypes with NumPy on import (about a second): fusedoptim imports it only when
    bfloat16 is asked for by name."""
    code = "import sys, fusedoptim; assert 'ml_dtypes' not in sys.modules, 'ml_dtypes imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_checkpoints_without_ml_dtypes_keep_their_dtypes(tmp_path):
    """In a process that never imported ml_dtypes (fusedoptim does not import it by itself), a checkpoint of
    float64 and float32 parameters saves and loads them as such (`dtype == None` is True for float64 in NumPy:
    a missing bfloat16 must not match it)."""
    code = f"""
import sys, numpy as np, fusedoptim
w64, w32 = np.arange(5.0), np.arange(3, dtype=np.float32)
opt = fusedoptim.Adam({{"a": w64, "b": w32}})
opt.step({{"a": np.ones(5), "b": np.ones(3, np.float32)}})
fusedoptim.save({str(tmp_path / "c.npz")!r}, optimizer=opt, params={{"a": w64, "b": w32}})
v64, v32 = np.zeros(5), np.zeros(3, np.float32)
opt2 = fusedoptim.Adam({{"a": v64, "b": v32}})
fusedoptim.load({str(tmp_path / "c.npz")!r}, optimizer=opt2, params={{"a": v64, "b": v32}})
assert np.array_equal(v64, w64) and np.array_equal(v32, w32)
assert opt2.state[v64]["exp_avg"].dtype == np.float64
assert "ml_dtypes" not in sys.modules
"""
    subprocess.run([sys.executable, "-c", code], check=True)


# --- stochastic rounding -------------------------------------------------------------------------------------


@needs_bf16
@pytest.mark.parametrize("first", [0, 5, 2**32 - 8], ids=["first0", "first5", "index-wraps"])
def test_stochastic_rounding_equals_reference(first, simd_level):
    """The kernels' stochastic bfloat16 store equals reference.round_bfloat16_stochastic on millions of float32
    patterns (NaN, inf, overflow, subnormals, every tie near 1), from any first element index; every result is
    the value truncated to bfloat16 or the next one up in magnitude (NaN aside)."""
    bits = _float32_patterns()
    values = bits.view(np.float32)
    key = reference.stochastic_key(SEED, 3, 7, 2)
    got = _core.from_float32_stochastic(values, key, first)
    # The reference draws for indices 0, 1, ...: element i's hash input is key + i * golden, so starting at
    # `first` is the same as shifting the key by first * golden.
    shifted = (key + first * 0x9E3779B9) % 2**32
    expected = reference.round_bfloat16_stochastic(values, shifted).view(np.uint16)
    np.testing.assert_array_equal(got, expected)
    finite = ~np.isnan(values)
    truncated = (bits >> 16).astype(np.uint16)
    up = got[finite] - truncated[finite]
    assert set(np.unique(up)) <= {0, 1}
    assert 0 < up.mean() < 1  # both directions occur


@needs_bf16
def test_stochastic_rounding_is_unbiased():
    """x between two bfloat16 neighbours rounds up with probability equal to its fraction of the ulp: over 2^16
    elements the share rounded up is within 5 standard deviations of the fraction, and the mean of the rounded
    values is x to within that. (Deterministic: the random bits are a hash of fixed keys.)"""
    n = 1 << 16
    ulp = 2.0**-7  # bfloat16's ulp on [1, 2)
    for k in range(1, 16):
        fraction = k / 16
        x = np.full(n, 1.0 + fraction * ulp, np.float32)
        for seed in (0, 1):
            key = reference.stochastic_key(seed, 0, 1, 0)
            got = _core.from_float32_stochastic(x, key)
            np.testing.assert_array_equal(got, reference.round_bfloat16_stochastic(x, key).view(np.uint16))
            share_up = np.mean(got == 0x3F81)
            assert set(np.unique(got)) <= {0x3F80, 0x3F81}
            sigma = np.sqrt(fraction * (1 - fraction) / n)
            assert abs(share_up - fraction) < 5 * sigma, (k, seed, share_up)
            mean = got.view(BF16).astype(np.float64).mean()
            assert abs(mean - x[0]) < 5 * sigma * ulp


@needs_bf16
def test_stochastic_state_tracks_float32_where_nearest_stalls():
    """Adam's exp_avg_sq in bfloat16 under a constant gradient: (1 - beta2) * (g^2 - v) falls below half an ulp of
    v once v passes 1/4, so round to nearest stops there for good; stochastic rounding follows the float32
    value 1 - 0.999^t on average (the accuracy it buys, README "Mixed precision")."""
    t, n = 1000, 4096
    means = {}
    for rounding in ("nearest", "stochastic"):
        p = np.zeros(n, np.float32)
        opt = fusedoptim.Adam([p], lr=1e-3, state_dtype="bfloat16", rounding=rounding)
        g = np.ones(n, np.float32)
        for _ in range(t):
            opt.step([g])
        means[rounding] = opt.state[p]["exp_avg_sq"].astype(np.float64).mean()
    exact = 1 - 0.999**t  # 0.632
    assert means["nearest"] == 0.25
    assert abs(means["stochastic"] - exact) < 0.01 * exact


@needs_bf16
@pytest.mark.parametrize("cls", [fusedoptim.SGD, fusedoptim.Adam], ids=["SGD", "Adam"])
def test_stochastic_rounding_is_reproducible_and_resumes_from_checkpoints(cls, tmp_path):
    """The random bits follow from the seed, the parameter's index, its step count and the element's index: the
    same seed gives the same bits, another seed others, and a run saved and resumed (state_dict, or a
    checkpoint file) continues bit for bit. SGD, which counts no steps otherwise, keeps a count for it."""
    rng = np.random.default_rng(5)
    initial = [rng.standard_normal(n).astype(BF16) for n in (1000, 37)]
    grads = [[rng.standard_normal(p.shape).astype(BF16) for p in initial] for _ in range(6)]
    extra = dict(momentum=0.9) if cls is fusedoptim.SGD else {}

    def run(seed, resume_at=None, via_file=False):
        params = [p.copy() for p in initial]
        groups = [{"params": [params[0]], "state_dtype": "bfloat16"}, {"params": [params[1]], "rounding": "nearest"}]
        opt = cls(groups, lr=0.05, rounding="stochastic", rounding_seed=seed, **extra)
        for t, g in enumerate(grads):
            if t == resume_at:
                if via_file:
                    fusedoptim.save(tmp_path / "ckpt.npz", params=params, optimizer=opt)
                    params = [p.copy() for p in params]
                    opt = cls([{"params": [params[0]]}, {"params": [params[1]]}], lr=1.0, **extra)
                    fusedoptim.load(tmp_path / "ckpt.npz", params=params, optimizer=opt)
                else:
                    saved = opt.state_dict()
                    params = [p.copy() for p in params]
                    opt = cls([{"params": [params[0]]}, {"params": [params[1]]}], lr=1.0, **extra)
                    opt.load_state_dict(saved)
            opt.step(g)
        assert opt._plan is not None
        assert [opt.state[p]["step"] for p in params] == [6, 6]
        return [p.view(np.uint16).copy() for p in params]

    first = run(1)
    for a, b in zip(first, run(1)):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], run(2)[0])
    np.testing.assert_array_equal(first[1], run(2)[1])  # the group that rounds to nearest ignores the seed
    for resumed in (run(1, resume_at=3), run(1, resume_at=3, via_file=True)):
        for a, b in zip(first, resumed):
            np.testing.assert_array_equal(a, b)


def test_stochastic_rounding_is_checked():
    w32 = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"Invalid rounding: 'up' \(expected 'nearest' or 'stochastic'\)"):
        fusedoptim.Adam([w32], state_dtype="float16", rounding="up")
    for seed in (-1, 2**64, True, 1.5, "1"):
        with pytest.raises(ValueError, match=re.escape(f"Invalid rounding_seed: {seed!r}")):
            fusedoptim.SGD([w32], state_dtype="float16", rounding="stochastic", rounding_seed=seed)
    with pytest.raises(ValueError, match="rounding='stochastic' has nothing to round"):
        fusedoptim.Adam([w32], rounding="stochastic")
    with pytest.raises(TypeError, match="rounding='stochastic' is for bfloat16; this group has float16 parameters"):
        fusedoptim.Adam([np.zeros(3, np.float16)], rounding="stochastic")
    with pytest.raises(TypeError, match="this group has state_dtype='float16'"):
        fusedoptim.Adam([w32], state_dtype="float16", rounding="stochastic")
    opt = fusedoptim.Adam([w32], state_dtype="float16")
    opt.param_groups[0]["rounding"] = "stochastic"  # an edit is checked at the next step, before any write
    with pytest.raises(TypeError, match="state_dtype='float16'"):
        opt.step([np.ones(3, np.float32)])
    assert not opt.state and np.all(w32 == 0)
    assert "rounding" not in fusedoptim.Adam([w32]).param_groups[0]  # round to nearest adds no keys


@needs_bf16
@pytest.mark.parametrize(
    ("param_dtype", "state_dtype", "rounding"),
    [
        ("float32", "bfloat16", "nearest"),
        ("bfloat16", "bfloat16", "nearest"),
        ("bfloat16", None, "stochastic"),
        ("float32", "bfloat16", "stochastic"),
        ("float16", None, "nearest"),
    ],
)
@pytest.mark.parametrize("cls", [fusedoptim.Adam, fusedoptim.SGD], ids=["Adam", "SGD"])
def test_large_mixed_steps_split_over_threads_bit_for_bit(cls, param_dtype, state_dtype, rounding):
    """Above the parallel grain a step splits over threads at cache-line boundaries, and the mixed-precision loops
    may prefetch blocks ahead (the default depends on the CPU): the same bits as one thread without prefetching
    (and as the reference's elementwise definition, which the small sizes above check), for fused, staged and
    stochastic modes."""
    n = 300_007
    rng = np.random.default_rng(11)
    initial = rng.standard_normal(n).astype(np.float32)
    grads = [(rng.standard_normal(n) * 1e-2).astype(_dtype(param_dtype)) for _ in range(3)]
    kwargs = dict(lr=1e-2, state_dtype=state_dtype)
    if cls is fusedoptim.SGD:
        kwargs["momentum"] = 0.9
    if rounding == "stochastic":
        kwargs["rounding"] = rounding
    results = []
    previous, previous_prefetch = _core.requested_num_threads(), _core.prefetch()
    try:
        for threads, prefetch in ((1, False), (2, False), (1, True), (2, True)):
            _core.set_num_threads(threads)
            _core._set_prefetch(prefetch)
            p = initial.astype(_dtype(param_dtype))
            opt = cls([p], **kwargs)
            for g in grads:
                opt.step([g])
            results.append((p, opt.state[p]))
    finally:
        _core.set_num_threads(previous)
        _core._set_prefetch(previous_prefetch)
    p1, s1 = results[0]
    for p2, s2 in results[1:]:
        _assert_bitwise(p1, p2)
        assert s1.keys() == s2.keys()
        for key in s1:
            if isinstance(s1[key], np.ndarray):
                _assert_bitwise(s1[key], s2[key])
