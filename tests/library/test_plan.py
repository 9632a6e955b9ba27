"""The steady-state step (_core.StepPlan, made by optimizer._make_plan) against the full step it replaces.

After a full step in which every parameter had a gradient, an optimizer re-runs that step's prepared kernels
with new gradients. Each test drives two optimizers with the same inputs, one free to use its plan and one
forced through the full step (its plan dropped before every step), and requires the same bits in parameters and
state after every edit a user can make between steps: whatever the plan caches must never go stale silently.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import fusedoptim
from fusedoptim import _core
from registry import OPTIMIZERS, make_grads

PLANNED = OPTIMIZERS  # every family has a steady-state plan


def _params(dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in [(7,), (3, 5), (1025,), (0,), (64,)]]


class _Pair:
    """The same optimizer twice: `fast` keeps its plan, `full` always takes the full step."""

    def __init__(self, cls, make_groups, **options):
        self.fast_params, self.full_params = _params(), _params()
        self.fast = cls(make_groups(self.fast_params), **options)
        self.full = cls(make_groups(self.full_params), **options)
        self.t = 0

    def step(self, grads=None, **kwargs):
        self.t += 1
        if grads is None:
            grads = make_grads(self.fast_params, seed=self.t)
        self.full._plan = None
        a = self.fast.step([None if g is None else g.copy() for g in grads], **kwargs)
        b = self.full.step([None if g is None else g.copy() for g in grads], **kwargs)
        assert a == b
        self.check()

    def check(self):
        for p, q in zip(self.fast_params, self.full_params):
            np.testing.assert_array_equal(p, q)
        sa, sb = self.fast.state_dict(), self.full.state_dict()
        assert sa["state"].keys() == sb["state"].keys()
        for k in sa["state"]:
            assert sa["state"][k].keys() == sb["state"][k].keys()
            for key, v in sa["state"][k].items():
                np.testing.assert_array_equal(v, sb["state"][k][key], err_msg=f"state[{k}][{key!r}]")

    def both(self, edit):
        edit(self.fast, self.fast_params)
        edit(self.full, self.full_params)


def _one_group(params):
    return params


def _two_groups(params):
    return [{"params": params[:2]}, {"params": params[2:], "lr": 2e-3}]


@pytest.mark.parametrize("info", PLANNED, ids=lambda i: i.name)
@pytest.mark.parametrize("groups", [_one_group, _two_groups], ids=["one-group", "two-groups"])
def test_plan_is_made_and_matches_the_full_step(info, groups):
    pair = _Pair(info.cls, groups, **info.option_sets[-1])
    pair.step()
    assert pair.fast._plan is not None  # the steady state does not go through the full step
    for _ in range(4):
        pair.step()
    assert pair.fast._plan is not None


@pytest.mark.parametrize("info", PLANNED, ids=lambda i: i.name)
@pytest.mark.parametrize("which", [0, -1], ids=["first-options", "last-options"])
def test_edits_between_steps_are_honoured(info, which):
    pair = _Pair(info.cls, _two_groups, **info.option_sets[which])
    pair.step()
    pair.step()

    def set_lr(opt, params):  # what a scheduler does
        opt.param_groups[1]["lr"] = opt.param_groups[1]["lr"] * 0.5

    pair.both(set_lr)
    pair.step()
    pair.step()

    def replace_state(opt, params):
        state = opt.state._get(params[2]) or {}
        for key, value in list(state.items()):
            if isinstance(value, np.ndarray):
                state[key] = np.full_like(value, 0.25)

    pair.both(replace_state)
    pair.step()

    def fill_state_in_place(opt, params):
        for value in (opt.state._get(params[0]) or {}).values():
            if isinstance(value, np.ndarray):
                value[...] = 0.5

    pair.both(fill_state_in_place)
    pair.step()

    if pair.fast._counts_steps:

        def restart_count(opt, params):
            opt.state[params[4]]["step"] = 0

        pair.both(restart_count)
        pair.step()

    def swap_param(opt, params):  # a new array in place of another, same shape
        fresh = params[0].copy()
        opt.param_groups[0]["params"][0] = fresh
        params[0] = fresh

    pair.both(swap_param)
    pair.step()

    def add_group(opt, params):
        extra = np.linspace(-1, 1, 9, dtype=np.float32)
        opt.add_param_group({"params": [extra]})
        params.append(extra)

    pair.both(add_group)
    pair.step()
    pair.step()


@pytest.mark.parametrize("info", PLANNED, ids=lambda i: i.name)
def test_missing_gradients_and_guard_on_the_steady_state(info):
    pair = _Pair(info.cls, _one_group, **info.option_sets[0])
    pair.step()
    grads = make_grads(pair.fast_params, seed=99)
    grads[2] = None
    pair.step(grads)  # a full step: the plan covers all parameters
    pair.step()
    pair.step()
    grads = make_grads(pair.fast_params, seed=7)
    grads[4][3] = np.inf
    pair.step(grads, skip_if_nonfinite=True)
    assert pair.fast.skipped_steps == 1
    pair.step(max_grad_norm=0.01)
    pair.step()


def test_state_dict_round_trip_and_simd_level_with_a_plan():
    pair = _Pair(fusedoptim.Adam, _one_group, lr=1e-2, amsgrad=True)
    pair.step()
    pair.step()
    saved = pair.full.state_dict()
    pair.fast.load_state_dict(saved)
    assert pair.fast._plan is None
    pair.step()
    levels = _core.supported_simd_levels()
    before = _core.simd_level()
    try:
        for level in levels:
            _core.set_simd_level(level)
            pair.step()
    finally:
        _core.set_simd_level(before)


BAD_GRADS = [
    (lambda g: g.astype(np.float64), TypeError, "grads[2] has dtype float64 but params[2] has dtype float32"),
    (lambda g: g[:-1], ValueError, "grads[2] has shape (1024,) but params[2] has shape (1025,)"),
    (lambda g: np.repeat(g, 2)[::2], ValueError, "grads[2] is not C-contiguous"),
    (lambda g: g.tolist(), TypeError, "grads[2] must be a numpy.ndarray, got list"),
]


@pytest.mark.parametrize("bad,error,message", BAD_GRADS)
def test_bad_gradients_on_the_steady_state_change_nothing(bad, error, message):
    pair = _Pair(fusedoptim.Adam, _one_group, lr=1e-2)
    pair.step()
    pair.step()
    assert pair.fast._plan is not None
    before = [p.copy() for p in pair.fast_params]
    grads = make_grads(pair.fast_params, seed=5)
    grads[2] = bad(grads[2])
    for opt in (pair.fast, pair.full):
        with pytest.raises(error, match=re.escape(message)):
            opt.step(grads, max_grad_norm=1e-3)
    for p, q in zip(before, pair.fast_params):
        np.testing.assert_array_equal(p, q)
    pair.check()
    pair.step()


def test_gradient_sharing_memory_with_state_on_the_steady_state():
    params = _params()
    opt = fusedoptim.Adam(params, lr=1e-2)
    opt.step(make_grads(params, seed=1))
    grads = make_grads(params, seed=2)
    grads[4] = opt.state[params[4]]["exp_avg"]
    before = [p.copy() for p in params]
    with pytest.raises(ValueError, match=r"share memory"):
        opt.step(grads)
    for p, q in zip(before, params):
        np.testing.assert_array_equal(p, q)


def test_read_only_parameter_on_the_steady_state_changes_nothing():
    params = _params()
    opt = fusedoptim.SGD(params, lr=0.1, momentum=0.9)
    opt.step(make_grads(params, seed=1))
    params[1].flags.writeable = False
    before = [p.copy() for p in params]
    grads = make_grads(params, seed=2)
    saved = [g.copy() for g in grads]
    with pytest.raises(ValueError, match=re.escape("params[1] is read-only")):
        opt.step(grads, max_grad_norm=1e-3)  # clipping would scale the gradients: it must not have run
    for p, q in zip(before, params):
        np.testing.assert_array_equal(p, q)
    for g, h in zip(saved, grads):
        np.testing.assert_array_equal(g, h)


def test_mutable_hyperparameters_are_checked_every_step():
    params = _params()
    opt = fusedoptim.Adam(params, lr=1e-2, betas=[0.9, 0.999])
    opt.step(make_grads(params, seed=1))
    assert opt._plan is None  # a list of betas can change in place: no plan relies on it
    opt.param_groups[0]["betas"][0] = 1.5
    with pytest.raises(ValueError, match="Invalid beta parameter at index 0: 1.5"):
        opt.step(make_grads(params, seed=2))


MIXED = [info for info in PLANNED if info.cls.mixed_precision]
# (parameter dtype, state_dtype, rounding)
MODES = [
    ("float16", None),
    ("bfloat16", None),
    ("float32", "bfloat16"),
    ("float32", "float16"),
    ("bfloat16", "bfloat16"),
    ("bfloat16", None, "stochastic"),
    ("float32", "bfloat16", "stochastic"),
]
MODES = [m if len(m) == 3 else (*m, "nearest") for m in MODES]


def _bits(a):
    a = np.asarray(a)
    return a.view(np.uint16) if a.dtype.itemsize == 2 else a


@pytest.mark.parametrize("mode", MODES, ids=lambda m: "-".join(str(x) for x in m))
@pytest.mark.parametrize("info", MIXED, ids=lambda i: i.name)
def test_mixed_precision_plan_matches_the_full_step(info, mode):
    """16-bit parameters (float32 masters) and 16-bit state on the steady state: the same bits as the full step
    in parameters, masters and every state buffer (stochastic rounding included: the plan draws each step's
    random bits from the new step counts), and a 16-bit gradient checked as strictly."""
    param_dtype, state_dtype, rounding = mode
    if "bfloat16" in mode:
        pytest.importorskip("ml_dtypes")
    dtype = fusedoptim._precision.bfloat16() if param_dtype == "bfloat16" else np.dtype(param_dtype)
    fast_params = [p.astype(dtype) for p in _params()]
    full_params = [p.astype(dtype) for p in _params()]
    options = dict(info.option_sets[-1], state_dtype=state_dtype, rounding=rounding)
    fast, full = info.cls(fast_params, **options), info.cls(full_params, **options)
    for t, scale in enumerate([1.0, 0.5, 0.3, 1.0, 2.0**-4], 1):  # GradScaler's steps are planned too
        grads = [(g * 0.25).astype(dtype) for g in make_grads(_params(), seed=t)]
        full._plan = None
        fast.step([g.copy() for g in grads], grad_scale=scale)
        full.step([g.copy() for g in grads], grad_scale=scale)
        assert fast._plan is not None
        for p, q in zip(fast_params, full_params):
            np.testing.assert_array_equal(_bits(p), _bits(q))
        sa, sb = fast.state_dict()["state"], full.state_dict()["state"]
        assert sa.keys() == sb.keys()
        for k in sa:
            assert sa[k].keys() == sb[k].keys()
            for key, v in sa[k].items():
                np.testing.assert_array_equal(_bits(v), _bits(sb[k][key]), err_msg=f"state[{k}][{key!r}]")
    wrong = [g.astype(np.float64) for g in make_grads(_params(), seed=9)]
    before = [_bits(p).copy() for p in fast_params]
    with pytest.raises(TypeError, match=re.escape("grads[0] has dtype float64 but params[0] has dtype " + str(dtype))):
        fast.step(wrong)
    for p, b in zip(fast_params, before):
        np.testing.assert_array_equal(_bits(p), b)


@pytest.mark.parametrize("info", PLANNED, ids=lambda i: i.name)
def test_plan_applies_each_steps_grad_scale(info, dtype):
    """A scaled step (GradScaler's: grad_scale with the non-finite guard) takes the plan, whether the plan was
    made from a scaled step or not, and each step's scale is the one applied: the same bits as the full step,
    also when a scale of 1 follows (the float32 loop then runs unstaged again) and when the guard skips."""
    fast_params, full_params = _params(dtype), _params(dtype)
    options = info.option_sets[-1]
    fast, full = info.cls(fast_params, **options), info.cls(full_params, **options)
    for t, scale in enumerate([0.3, 1.0, 0.3, 2.0**-10, 1.0, 0.7], 1):
        grads = make_grads(fast_params, seed=t)
        if t == 4:
            grads[2][5] = np.inf  # skipped by the guard, on both
        full._plan = None
        guard = t % 2 == 0
        a = fast.step([g.copy() for g in grads], grad_scale=scale, skip_if_nonfinite=guard)
        b = full.step([g.copy() for g in grads], grad_scale=scale, skip_if_nonfinite=guard)
        assert a == b == (t != 4)
        assert fast._plan is not None
        for p, q in zip(fast_params, full_params):
            np.testing.assert_array_equal(p, q)
        sa, sb = fast.state_dict()["state"], full.state_dict()["state"]
        assert sa.keys() == sb.keys()
        for k in sa:
            for key, v in sa[k].items():
                np.testing.assert_array_equal(v, sb[k][key], err_msg=f"state[{k}][{key!r}]")
    with pytest.raises(ValueError, match=re.escape("Invalid grad_scale: -1.0")):
        fast.step(make_grads(fast_params, seed=9), grad_scale=-1.0)


def test_nadam_plan_carries_the_momentum_product_and_honours_edits():
    """NAdam's plan advances mu_product itself (one float per parameter in its state, as the full step stores
    it); a mu_product set between steps is read by the next step."""
    pair = _Pair(fusedoptim.NAdam, _two_groups, weight_decay=0.01)
    for _ in range(3):
        pair.step()
    assert pair.fast._plan is not None
    assert isinstance(pair.fast.state[0]["mu_product"], float)
    pair.both(lambda opt, params: opt.state[2].__setitem__("mu_product", 0.5))
    pair.step()
    pair.step()
    assert pair.fast._plan is not None


def test_step_plan_refuses_misuse():
    p, g = np.zeros(4, np.float32), np.ones(4, np.float32)
    opt = fusedoptim.Adam([p], lr=1e-3)
    opt.step([g])
    plan = opt._plan
    with pytest.raises(RuntimeError, match="bind"):
        plan.run()
    assert not plan.bind(opt.param_groups, (g,))  # only a list (a sequence of the user's could run code)
    assert not plan.bind(opt.param_groups, [g, g])
    assert not plan.bind(opt.param_groups, [None])
    assert not plan.bind([dict(opt.param_groups[0])], [g])  # an equal group is not the same group
    opt.state[0]["step"] = -1
    with pytest.raises(ValueError, match=re.escape("Invalid step number: steps[0] = 0")):
        plan.bind(opt.param_groups, [g])
    opt.state[0]["step"] = 1
    assert plan.bind(opt.param_groups, [g])
    plan.run()
    assert opt.state[0]["step"] == 2
    with pytest.raises(RuntimeError, match="bind"):
        plan.run()  # a binding runs once
    step = _core.adam_prepare(
        [p],
        [g],
        [np.zeros_like(p)],
        [np.zeros_like(p)],
        None,
        [1],
        _core.AdamHyper(1e-3, 0.9, 0.999, 1e-8, 0.0, False, False, False),
    )
    with pytest.raises(ValueError, match="do not match the groups"):
        _core.StepPlan([step], [_core.GroupSnapshot(opt.param_groups[0], [], (), ())], [], [])
