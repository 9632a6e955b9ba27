"""The training-loop toolkit: clipping, the non-finite guard, weight averaging, named parameters, checkpoints."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fusedoptim
from fusedoptim import _core
from fusedoptim.lr_scheduler import StepLR
from registry import low_precision_dtypes, make_grads, make_params


def _grads(dtype=np.float32, seed=0, scale=10.0):
    rng = np.random.default_rng(seed)
    return [(scale * rng.standard_normal(s)).astype(dtype) for s in [(100,), (7, 3), (1,), (10000,)]]


# --- norms and clipping ------------------------------------------------------------------------------------


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf"), 3.0, 0.5])
def test_total_norm_matches_numpy(norm_type, dtype):
    grads = _grads(dtype)
    flat = np.concatenate([g.ravel().astype(np.float64) for g in grads])
    expected = (
        np.max(np.abs(flat)) if norm_type == float("inf") else np.sum(np.abs(flat) ** norm_type) ** (1 / norm_type)
    )
    assert fusedoptim.get_total_norm(grads, norm_type) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf"), 3.0])
def test_total_norm_is_bitwise_the_same_for_any_thread_count_and_simd_level(norm_type):
    grads = make_params(np.float32, sizes=[3, 100003, 17, 65536, 5000])
    previous = _core.requested_num_threads(), _core.get_parallel_grain(), _core.simd_level()
    results = set()
    try:
        for level in _core.supported_simd_levels():
            _core.set_simd_level(level)
            for threads, grain in [(1, 32768), (2, 1), (2, 5000)]:
                _core.set_num_threads(threads)
                _core.set_parallel_grain(grain)
                results.add(fusedoptim.get_total_norm(grads, norm_type))
    finally:
        _core.set_num_threads(previous[0])
        _core.set_parallel_grain(previous[1])
        _core.set_simd_level(previous[2])
    assert len(results) == 1


@pytest.mark.parametrize("low", low_precision_dtypes(), ids=str)
@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf"), 3.0])
def test_16bit_norm_is_the_norm_of_the_float32_copy(norm_type, low):
    """get_total_norm (and the non-finite guard) read float16 and bfloat16 arrays in the kernel, converting
    each reduce block on the stack: bit for bit the norm of their float32 copies, at every SIMD level and thread
    count, mixed with float32 and float64 arrays in one list; sizes cover partial blocks and lane tails."""
    rng = np.random.default_rng(5)
    sizes = [3, 100003, 17, 4096, 4097, 5000, 1]
    low_grads = [(10 * rng.standard_normal(n)).astype(low) for n in sizes]
    others = [rng.standard_normal(9).astype(np.float32), rng.standard_normal(4).astype(np.float64)]
    previous = _core.requested_num_threads(), _core.get_parallel_grain(), _core.simd_level()
    try:
        for level in _core.supported_simd_levels():
            _core.set_simd_level(level)
            for threads, grain in [(1, 32768), (2, 1), (2, 5000)]:
                _core.set_num_threads(threads)
                _core.set_parallel_grain(grain)
                mixed = low_grads[:3] + others + low_grads[3:]
                copies = [g.astype(np.float32) if g.dtype == low else g for g in mixed]
                assert fusedoptim.get_total_norm(mixed, norm_type) == fusedoptim.get_total_norm(copies, norm_type)
    finally:
        _core.set_num_threads(previous[0])
        _core.set_parallel_grain(previous[1])
        _core.set_simd_level(previous[2])
    for bad in (np.nan, np.inf, -np.inf):
        grads = [g.copy() for g in low_grads]
        grads[1][4099] = bad
        assert not np.isfinite(fusedoptim.get_total_norm(grads, norm_type))


@pytest.mark.parametrize("low", low_precision_dtypes(), ids=str)
def test_guard_over_16bit_gradients_skips_and_applies(low):
    """The non-finite guard over 16-bit gradients (GradScaler's) is the kernel's norm: an inf or NaN anywhere
    skips the step with nothing changed, finite gradients step; last_grad_norm is the float32 copies' norm."""
    rng = np.random.default_rng(2)
    params = [rng.standard_normal(n).astype(low) for n in (5000, 7)]
    opt = fusedoptim.Adam(params, lr=1e-3)
    grads = [rng.standard_normal(p.shape).astype(low) for p in params]
    assert opt.step(grads, skip_if_nonfinite=True)
    assert opt.last_grad_norm == fusedoptim.get_total_norm([g.astype(np.float32) for g in grads])
    before = [p.copy() for p in params], {k: v.copy() for k, v in opt.state[params[0]].items() if hasattr(v, "copy")}
    grads[0][4321] = np.inf
    assert not opt.step(grads, skip_if_nonfinite=True)
    assert opt.skipped_steps == 1 and not np.isfinite(opt.last_grad_norm)
    assert all(np.array_equal(a, b) for a, b in zip(params, before[0]))
    state = opt.state[params[0]]
    assert all(np.array_equal(state[k], v) for k, v in before[1].items())


def test_nonfinite_gradients_give_a_nonfinite_norm():
    for bad in (np.nan, np.inf, -np.inf):
        grads = _grads()
        grads[3][1234] = bad
        for norm_type in (2.0, 1.0, float("inf")):
            assert not np.isfinite(fusedoptim.get_total_norm(grads, norm_type))


@pytest.mark.parametrize("max_norm", [1.0, 1e6])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_clip_grad_norm_matches_torch(max_norm, norm_type, dtype):
    torch = pytest.importorskip("torch")
    grads = _grads(dtype)
    tparams = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype)) for g in grads]
    for p, g in zip(tparams, grads):
        p.grad = torch.from_numpy(g.copy())
    total = fusedoptim.clip_grad_norm_(grads, max_norm, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tparams, max_norm, norm_type)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert total == pytest.approx(float(ttotal), rel=rtol)
    for g, p in zip(grads, tparams):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=rtol, atol=1e-7)


def test_clip_grad_value_and_errors():
    grads = [np.array([-3.0, 0.5, np.nan, 7.0], np.float32)]
    fusedoptim.clip_grad_value_(grads, 1.0)
    np.testing.assert_array_equal(grads[0], np.array([-1.0, 0.5, np.nan, 1.0], np.float32))
    with pytest.raises(ValueError, match="Invalid clip_value: -1"):
        fusedoptim.clip_grad_value_(grads, -1)
    with pytest.raises(ValueError, match="Invalid max_norm: -1"):
        fusedoptim.clip_grad_norm_(grads, -1)
    with pytest.raises(ValueError, match="Invalid norm_type: 0"):
        fusedoptim.get_total_norm(grads, 0)
    bad = [np.array([1.0, np.inf])]
    with pytest.raises(RuntimeError, match="non-finite"):
        fusedoptim.clip_grad_norm_(bad, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(bad[0], [1.0, np.inf])
    read_only = np.ones(3)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match=re.escape("grads[0] is read-only")):
        fusedoptim.clip_grad_norm_([read_only], 0.1)


# --- the non-finite guard ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_guard_skips_the_whole_step_and_counts_it(bad):
    params = make_params(np.float32, sizes=[5, 1025], misaligned=False)
    opt = fusedoptim.Adam([{"params": params[:1]}, {"params": params[1:]}], lr=0.1)
    assert opt.step(make_grads(params, 1), skip_if_nonfinite=True)
    snapshot = opt.state_dict()
    before = [p.copy() for p in params]
    grads = make_grads(params, 2)
    grads[1][3] = bad
    assert opt.step(grads, skip_if_nonfinite=True, max_grad_norm=1.0) is False
    assert opt.skipped_steps == 1 and not np.isfinite(opt.last_grad_norm)
    for p, q in zip(params, before):
        np.testing.assert_array_equal(p, q)
    now = opt.state_dict()
    for i, entry in snapshot["state"].items():
        assert now["state"][i]["step"] == entry["step"] == 1
        np.testing.assert_array_equal(now["state"][i]["exp_avg"], entry["exp_avg"])
    assert opt.step(make_grads(params, 3), skip_if_nonfinite=True)
    assert opt.state[0]["step"] == 2


def test_step_clips_by_global_norm_in_the_same_pass():
    params = [np.zeros(4), np.zeros(3)]
    opt = fusedoptim.SGD(params, lr=1.0)
    grads = [np.full(4, 3.0), np.full(3, 4.0)]
    expected = [g * (1.0 / (np.sqrt(36 + 48) + 1e-6)) for g in grads]
    assert opt.step(grads, max_grad_norm=1.0)
    assert opt.last_grad_norm == pytest.approx(np.sqrt(84))
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p, -e, rtol=1e-15)


# --- weight averaging --------------------------------------------------------------------------------------


def test_ema_matches_torch_formula():
    params = [np.random.default_rng(0).standard_normal(1001).astype(np.float32)]
    ema = fusedoptim.EMA(params, decay=0.9)
    expected = params[0].copy()
    for t in range(5):
        params[0] += np.float32(0.1 * (t + 1))
        ema.update()
        weight = np.float32(1 - 0.9)
        expected = expected + weight * (params[0] - expected)  # torch.lerp, weight < 0.5
    np.testing.assert_array_equal(ema.averages[0], expected)
    target = [np.zeros_like(params[0])]
    ema.copy_to(target)
    np.testing.assert_array_equal(target[0], expected)
    with pytest.raises(ValueError, match="Invalid decay: 1.5"):
        fusedoptim.EMA(params, decay=1.5)


# --- named parameters --------------------------------------------------------------------------------------


def test_named_parameters_key_state_by_name():
    w, b = np.ones(3), np.zeros(2)
    opt = fusedoptim.Adam({"w": w, "b": b}, lr=0.1)
    opt.step({"w": np.ones(3), "b": None})
    sd = opt.state_dict()
    assert list(sd["state"]) == ["w"] and sd["param_groups"][0]["params"] == ["w", "b"]
    reordered = fusedoptim.Adam({"b": np.zeros(2), "w": np.ones(3)}, lr=0.1)
    reordered.load_state_dict(sd)
    assert reordered.state[1]["step"] == 1  # "w" is second here
    with pytest.raises(ValueError, match=re.escape("missing ['c']")):
        fusedoptim.Adam({"w": np.ones(3), "b": np.zeros(2), "c": np.ones(1)}).load_state_dict(sd)
    partial = fusedoptim.Adam({"w": np.ones(3), "c": np.ones(1)})
    partial.load_state_dict(sd, strict=False)
    assert partial.state[0]["step"] == 1
    with pytest.raises(ValueError, match="not parameters of this optimizer"):
        opt.step({"x": np.ones(3)})


# --- checkpoints -------------------------------------------------------------------------------------------

_TRAIN = textwrap.dedent(
    """
    import sys
    import numpy as np
    import fusedoptim
    from fusedoptim.lr_scheduler import StepLR

    def grads(params, t):
        rng = np.random.default_rng(1000 + t)
        return {k: rng.standard_normal(p.shape).astype(p.dtype) for k, p in params.items()}

    def build():
        rng = np.random.default_rng(0)
        params = {"w": rng.standard_normal((40, 30)).astype(np.float32), "b": np.zeros(30, np.float32)}
        opt = fusedoptim.{cls}(params, lr=0.01)
        sched = StepLR(opt, step_size=3, gamma=0.5)
        return params, opt, sched

    mode, path, n, k = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    params, opt, sched = build()
    if mode == "resume":
        extra = fusedoptim.load(path, optimizer=opt, scheduler=sched, params=params)
        start = extra["t"]
    else:
        start = 0
    stop = k if mode == "first" else n
    for t in range(start, stop):
        opt.step(grads(params, t), max_grad_norm=50.0)
        sched.step()
    if mode == "first":
        fusedoptim.save(path, optimizer=opt, scheduler=sched, params=params, extra={"t": stop})
    else:
        np.savez(path + ".out.npz", **params)
    """
)


@pytest.mark.parametrize("cls", ["Adam", "SGD", "NAdam", "LAMB"])
def test_checkpoint_resume_in_a_new_process_is_bit_identical(tmp_path, cls):
    script = tmp_path / "train.py"
    script.write_text(_TRAIN.replace("{cls}", cls))
    ckpt, straight = str(tmp_path / "ckpt.npz"), str(tmp_path / "straight")

    def run(*args):
        subprocess.run([sys.executable, str(script), *args], check=True, capture_output=True, text=True)

    run("straight", straight, "10", "0")
    run("first", ckpt, "10", "4")
    run("resume", ckpt, "10", "4")
    with np.load(straight + ".out.npz") as a, np.load(ckpt + ".out.npz") as b:
        for key in ("w", "b"):
            np.testing.assert_array_equal(a[key], b[key], strict=True)


def test_checkpoint_round_trip_and_bad_files(tmp_path):
    params = {"w": np.ones(3, np.float32)}
    opt = fusedoptim.Adam(params, lr=0.1, betas=(0.8, 0.9))
    sched = StepLR(opt, step_size=2)
    opt.step({"w": np.ones(3, np.float32)})
    path = tmp_path / "c.npz"
    fusedoptim.save(path, optimizer=opt, scheduler=sched, params=params, extra={"epoch": 3, "tag": "x"})
    other_params = {"w": np.zeros(3, np.float32)}
    other = fusedoptim.Adam(other_params, lr=0.5)
    other_sched = StepLR(other, step_size=5)
    extra = fusedoptim.load(path, optimizer=other, scheduler=other_sched, params=other_params)
    assert extra == {"epoch": 3, "tag": "x"}
    assert other.param_groups[0]["betas"] == (0.8, 0.9) and other.state[0]["step"] == 1
    np.testing.assert_array_equal(other_params["w"], params["w"])
    assert other_sched.step_size == 2

    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable fusedoptim checkpoint"):
        fusedoptim.load(tmp_path / "junk.npz", optimizer=other)
    np.savez(tmp_path / "plain.npz", a=np.ones(2))
    with pytest.raises(ValueError, match="no manifest"):
        fusedoptim.load(tmp_path / "plain.npz", optimizer=other)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(ValueError, match="not a readable fusedoptim checkpoint"):
        fusedoptim.load(truncated, optimizer=other)
    wrong = {"w": np.zeros(4, np.float32)}
    before = other.state_dict()
    with pytest.raises(ValueError, match="checkpoint parameter 'w' is float32"):
        fusedoptim.load(path, optimizer=other, params=wrong)
    assert other.state_dict()["param_groups"] == before["param_groups"]
    np.testing.assert_array_equal(wrong["w"], 0)


# --- the parameter arena -----------------------------------------------------------------------------------

ARENA_SHAPES = {"w1": (30, 20), "b1": (20,), "w2": (20, 7), "b2": (7,), "s": ()}


def _arena_and_dict(dtype=np.float32):
    arena = fusedoptim.ParamArena(ARENA_SHAPES, dtype=dtype)
    rng = np.random.default_rng(0)
    separate = {}
    for name, shape in ARENA_SHAPES.items():
        arena.params[name][...] = rng.standard_normal(shape)
        separate[name] = arena.params[name].copy()
    return arena, separate


@pytest.mark.parametrize(
    ("cls", "options"),
    [
        ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
        ("SGD", {"lr": 0.1, "momentum": 0.9}),
        ("NAdam", {}),
        ("Adagrad", {}),
        ("Lion", {"lr": 0.01}),
        ("RMSprop", {"centered": True, "momentum": 0.5}),
    ],
)
def test_arena_steps_as_one_array_and_equals_separate_arrays(cls, options):
    arena, separate = _arena_and_dict()
    opt_arena = getattr(fusedoptim, cls)(arena, **options)
    opt_separate = getattr(fusedoptim, cls)(separate, **options)
    for t in range(6):
        rng = np.random.default_rng(t)
        grads = {n: rng.standard_normal(s).astype(np.float32) for n, s in ARENA_SHAPES.items()}
        for n, g in grads.items():
            arena.grads[n][...] = g
        assert opt_arena.step(arena.grads)
        opt_separate.step(grads)
    for n in ARENA_SHAPES:
        np.testing.assert_array_equal(arena.params[n], separate[n], strict=True)
    sd_arena, sd_separate = opt_arena.state_dict(), opt_separate.state_dict()
    assert sd_arena["param_groups"] == sd_separate["param_groups"]
    for n in ARENA_SHAPES:
        for key, value in sd_separate["state"][n].items():
            np.testing.assert_array_equal(sd_arena["state"][n][key], value)
    # each loads the other's state dict
    other, _ = _arena_and_dict()
    getattr(fusedoptim, cls)(other, **options).load_state_dict(sd_separate)
    getattr(fusedoptim, cls)(_arena_and_dict()[1], **options).load_state_dict(sd_arena)


def test_arena_misuse_is_refused():
    arena, _ = _arena_and_dict()
    opt = fusedoptim.Adam(arena)
    with pytest.raises(ValueError, match="pass its own gradient views"):
        opt.step({n: np.zeros(s, np.float32) for n, s in ARENA_SHAPES.items()})
    with pytest.raises(ValueError, match="pass its own gradient views"):
        opt.step({"w1": arena.grads["w1"]})
    with pytest.raises(TypeError, match="trust ratio is per array"):
        fusedoptim.LAMB(arena)
    fusedoptim.LAMB(arena.params)  # per-array views are fine
    with pytest.raises(TypeError, match="float32 or float64"):
        fusedoptim.ParamArena({"w": 3}, dtype=np.int32)
    assert opt.step(arena)  # the arena itself stands for its gradients


def test_a_training_loop_with_everything_resumes_bit_for_bit(tmp_path):
    """Arena + scheduler + clipping + non-finite guard + EMA + checkpoint, interrupted and resumed."""
    from fusedoptim.lr_scheduler import CosineAnnealingLR

    def build():
        arena = fusedoptim.ParamArena({"w": (64, 32), "b": (32,)})
        arena.params["w"][...] = np.random.default_rng(0).standard_normal((64, 32))
        opt = fusedoptim.AdamW(arena, lr=1e-2)
        sched = CosineAnnealingLR(opt, T_max=12)
        ema = fusedoptim.EMA(list(arena.params.values()), decay=0.9)
        return arena, opt, sched, ema

    def run(arena, opt, sched, ema, start, stop):
        for t in range(start, stop):
            rng = np.random.default_rng(t)
            arena.grads["w"][...] = rng.standard_normal((64, 32))
            arena.grads["b"][...] = np.nan if t == 5 else rng.standard_normal(32)  # one bad step
            opt.step(arena.grads, max_grad_norm=2.0, skip_if_nonfinite=True)
            ema.update()
            sched.step()

    straight = build()
    run(*straight, 0, 12)
    first = build()
    run(*first, 0, 7)
    path = tmp_path / "loop.npz"
    fusedoptim.save(
        path, optimizer=first[1], scheduler=first[2], params=first[0].params, extra={"ema": first[3].averages, "t": 7}
    )
    resumed = build()
    extra = fusedoptim.load(path, optimizer=resumed[1], scheduler=resumed[2], params=resumed[0].params)
    for average, saved in zip(resumed[3].averages, extra["ema"]):
        average[...] = saved
    run(*resumed, extra["t"], 12)
    assert straight[1].skipped_steps == 1
    np.testing.assert_array_equal(straight[0].flat_params, resumed[0].flat_params, strict=True)
    for a, b in zip(straight[3].averages, resumed[3].averages):
        np.testing.assert_array_equal(a, b, strict=True)
    assert straight[2].get_last_lr() == resumed[2].get_last_lr()


# --- misuse found by review (2026-12-03): each refused with nothing changed -------------------------------


def test_grad_scaler_refuses_max_grad_norm():
    """The optimizer would clip the still-scaled gradients by a threshold meant for unscaled ones (an update
    `scale` times too small, and the caller's gradients rescaled in place)."""
    w = np.ones(4, np.float32)
    opt, scaler = fusedoptim.SGD([w], lr=1.0), fusedoptim.GradScaler(init_scale=1024.0)
    g = np.full(4, 102.4, np.float32)
    with pytest.raises(TypeError, match="GradScaler.step does not clip"):
        scaler.step(opt, [g], max_grad_norm=1.0)
    assert np.all(w == 1) and np.all(g == np.float32(102.4))


def test_ema_checks_before_writing():
    a, b = np.ones(3, np.float32), np.ones(2, np.float32)
    ema = fusedoptim.EMA([a, b])
    target = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="Expected 2 params"):
        ema.copy_to([target])
    assert np.all(target == 0)
    with pytest.raises(ValueError, match=re.escape("params[1] must be a writeable numpy.ndarray of shape (2,)")):
        ema.copy_to([target, np.zeros(5, np.float32)])
    assert np.all(target == 0)
    for bad in (
        {"decay": 0.9, "num_updates": "x", "averages": [np.full(3, 7, np.float32), np.ones(2, np.float32)]},
        {"decay": 0.9, "num_updates": 1, "averages": [np.full(3, 7, np.float32), np.ones(2, np.complex64)]},
    ):
        with pytest.raises((ValueError, TypeError)):
            ema.load_state_dict(bad)
        assert np.all(ema.averages[0] == 1) and ema.num_updates == 0 and ema.decay == 0.999
    for bad_param, error in (
        (np.ones(3, np.float16), TypeError),
        (np.arange(3), TypeError),
        (np.ones((3, 3), np.float32).T, ValueError),
        ([1.0], TypeError),
    ):
        with pytest.raises(error, match=re.escape("params[0]")):
            fusedoptim.EMA([bad_param])


def test_load_checks_params_are_writeable_before_changing_the_optimizer(tmp_path):
    p = np.ones(3, np.float32)
    opt = fusedoptim.Adam([p], lr=0.1)
    opt.step([np.ones(3, np.float32)])
    fusedoptim.save(tmp_path / "c.npz", optimizer=opt, params=[p])
    q = np.zeros(3, np.float32)
    other = fusedoptim.Adam([q], lr=0.5)
    read_only = q.copy()
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="is read-only"):
        fusedoptim.load(tmp_path / "c.npz", optimizer=other, params=[read_only])
    assert other.param_groups[0]["lr"] == 0.5 and not other.state


def test_state_dtype_given_as_a_dtype_is_kept_by_name_and_checkpoints(tmp_path):
    w = np.ones(3, np.float32)
    opt = fusedoptim.Adam([w], state_dtype=np.float16)
    opt.step([np.ones(3, np.float32)])
    assert opt.param_groups[0]["state_dtype"] == "float16"
    fusedoptim.save(tmp_path / "c.npz", optimizer=opt)
    again = fusedoptim.Adam([np.ones(3, np.float32)], state_dtype="float16")
    fusedoptim.load(tmp_path / "c.npz", optimizer=again)
    assert again.state[0]["exp_avg"].dtype == np.float16


def test_nadam_refuses_a_nonfinite_mu_product():
    p, g = np.ones(3, np.float32), np.ones(3, np.float32)
    m, v = np.zeros(3, np.float32), np.zeros(3, np.float32)
    for bad, error in ((float("nan"), ValueError), (float("inf"), ValueError), (True, TypeError), ("a", TypeError)):
        with pytest.raises(error, match=re.escape("mu_products[0]")):
            fusedoptim.functional.nadam_([p], [g], [m], [v], [bad], [1], lr=0.1)
        assert np.all(p == 1) and np.all(m == 0)
    opt = fusedoptim.NAdam([p])
    opt.step([g])
    opt.step([g])
    opt.state[0]["mu_product"] = float("nan")
    before = p.copy()
    with pytest.raises(ValueError, match=re.escape("Invalid mu_products[0]: nan")):
        opt.step([g])
    assert np.array_equal(p, before)


def test_arrays_appended_to_a_group_are_checked_like_the_constructors():
    """param_groups may be edited between steps; an appended array is checked as the constructor would (its
    type and dtype, and the group's precision options), before anything is written."""
    w = np.ones(4, np.float32)
    opt = fusedoptim.SGD([w], lr=0.1)
    opt.step([np.ones(4, np.float32)])
    opt.param_groups[0]["params"].append(np.ma.array([1.0, 2.0], mask=[0, 1], dtype=np.float32))
    with pytest.raises(TypeError, match="is a masked array"):
        opt.step([np.ones(4, np.float32), np.ones(2, np.float32)])
    assert np.all(w == np.float32(0.9))
    opt.param_groups[0]["params"][1] = np.ones(2, np.float32)
    opt.step([np.ones(4, np.float32), np.ones(2, np.float32)])
    adam = fusedoptim.Adam([np.ones(3, np.float64)])
    adam.step([np.ones(3)])
    adam.param_groups[0]["params"].append(np.ones(2, np.float16))
    adam.param_groups[0]["state_dtype"] = "float16"
    with pytest.raises(TypeError, match="needs float32 or 16-bit parameters"):
        adam.step([np.ones(3), np.ones(2, np.float16)])
