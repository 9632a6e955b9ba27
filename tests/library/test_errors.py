"""Bad input: every call checks everything before it writes anything, and says what is wrong, torch-style."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest

import fusedoptim
from fusedoptim import functional
from registry import OPTIMIZERS, OptimInfo, low_precision_dtypes

RICH = {
    "SGD": {"momentum": 0.9},
    "Adagrad": {},
    "RMSprop": {"centered": True, "momentum": 0.9},
    "Adam": {"amsgrad": True},
    "AdamW": {"amsgrad": True},
    "Adadelta": {},
    "Adamax": {},
    "NAdam": {},
    "RAdam": {},
    "Lion": {},
    "LAMB": {},
    "ASGD": {"t0": 1},
    "Rprop": {},
}
ERROR_CASES = [(info, e) for info in OPTIMIZERS for e in info.error_inputs]
ERROR_IDS = [f"{info.name}-{e.match}" for info, e in ERROR_CASES]


def _params(dtype=np.float32):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(s).astype(dtype) for s in [(3,), (2, 4), (5,)]]


def _grads(params):
    return [np.full_like(p, 0.5) for p in params]


def _snapshot(opt):
    return copy.deepcopy([p.copy() for p in opt._params()]), copy.deepcopy(opt.state_dict())


def _assert_unchanged(opt, snapshot):
    params, sd = snapshot
    for p, q in zip(opt._params(), params):
        np.testing.assert_array_equal(p, q, strict=True)
    now = opt.state_dict()
    assert now["param_groups"] == sd["param_groups"]
    assert now["state"].keys() == sd["state"].keys()
    for i, entry in sd["state"].items():
        assert now["state"][i].keys() == entry.keys()
        for key, value in entry.items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(now["state"][i][key], value, strict=True)
            else:
                assert now["state"][i][key] == value


def _stepped(info: OptimInfo, dtype=np.float32):
    """An optimizer that has taken one step, so that it has state to protect."""
    params = _params(dtype)
    opt = info.cls([{"params": params[:1]}, {"params": params[1:]}], **RICH[info.name])
    opt.step(_grads(params))
    return opt, params


# --- hyperparameters ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("info", "error"), ERROR_CASES, ids=ERROR_IDS)
def test_invalid_hyperparameters_rejected_at_construction(info, error):
    with pytest.raises(error.error, match=re.escape(error.match)):
        info.cls(_params(), **error.kwargs)


@pytest.mark.parametrize(("info", "error"), ERROR_CASES, ids=ERROR_IDS)
def test_invalid_hyperparameters_edited_into_a_group_rejected_at_step(info, error):
    try:
        info.cls(_params(), **{**RICH[info.name], **error.kwargs})
        pytest.skip("valid together with this optimizer's other options")
    except error.error:
        pass
    opt, params = _stepped(info)
    snapshot = _snapshot(opt)
    opt.param_groups[1].update(error.kwargs)
    with pytest.raises(error.error, match=re.escape(error.match)):
        opt.step(_grads(params))
    opt.param_groups[1].update({k: opt.defaults[k] for k in error.kwargs})
    _assert_unchanged(opt, snapshot)


# --- arrays given to step ----------------------------------------------------------------------------------


def _bad_grads(case, params, opt):
    grads = _grads(params)
    if case == "list":
        grads[1] = grads[1].tolist()
    elif case == "dtype":
        grads[2] = grads[2].astype(np.float64)
    elif case == "big-endian":
        grads[2] = grads[2].astype(">f4")
    elif case == "shape":
        grads[1] = grads[1].reshape(4, 2)
    elif case == "size":
        grads[2] = np.zeros(6, np.float32)
    elif case == "non-contiguous":
        grads[0] = np.zeros(6, np.float32)[::2]
    elif case == "alias-param":
        grads[2] = params[2]
    elif case == "alias-param-view":
        grads[0] = params[1].reshape(-1)[2:5]
    elif case == "alias-state":
        state = opt.state[2]
        key = next(k for k, v in state.items() if isinstance(v, np.ndarray))
        grads[2] = state[key]
    elif case == "misaligned":
        raw = np.zeros(5 * 4 + 1, np.uint8)
        grads[2] = np.frombuffer(raw.data, dtype=np.float32, count=5, offset=1)
    return grads


GRAD_CASES = {
    "list": (TypeError, "grads[1] must be a numpy.ndarray, got list"),
    "dtype": (TypeError, "grads[2] has dtype float64 but params[2] has dtype float32"),
    "big-endian": (TypeError, "grads[2] has dtype >f4 but params[2] has dtype float32"),
    "shape": (ValueError, "grads[1] has shape (4, 2) but params[1] has shape (2, 4)"),
    "size": (ValueError, "grads[2] has shape (6,) but params[2] has shape (5,)"),
    "non-contiguous": (ValueError, "grads[0] is not C-contiguous"),
    "alias-param": (ValueError, "params[2] and grads[2] share memory"),
    "alias-param-view": (ValueError, "params[1] and grads[0] share memory"),
    "alias-state": (ValueError, "grads[2] share memory"),
    "misaligned": (ValueError, "grads[2] is not aligned"),
}


@pytest.mark.parametrize("info", OPTIMIZERS, ids=lambda i: i.name)
@pytest.mark.parametrize("case", list(GRAD_CASES))
def test_bad_gradient_rejected_and_nothing_changes(info, case):
    opt, params = _stepped(info)
    snapshot = _snapshot(opt)
    error, message = GRAD_CASES[case]
    with pytest.raises(error, match=re.escape(message)):
        opt.step(_bad_grads(case, params, opt))
    _assert_unchanged(opt, snapshot)


@pytest.mark.parametrize("info", OPTIMIZERS, ids=lambda i: i.name)
def test_wrong_number_of_grads(info):
    opt, params = _stepped(info)
    snapshot = _snapshot(opt)
    with pytest.raises(
        ValueError, match=re.escape("Expected 3 gradients (one per parameter, in parameter order), got 2")
    ):
        opt.step(_grads(params)[:2])
    with pytest.raises(TypeError, match="grads must be a list"):
        opt.step(params[0])
    _assert_unchanged(opt, snapshot)


@pytest.mark.parametrize("info", OPTIMIZERS, ids=lambda i: i.name)
def test_read_only_param_rejected_at_step(info):
    opt, params = _stepped(info)
    snapshot = _snapshot(opt)
    params[2].flags.writeable = False
    with pytest.raises(ValueError, match=re.escape("params[2] is read-only")):
        opt.step(_grads(params))
    params[2].flags.writeable = True
    _assert_unchanged(opt, snapshot)


# --- parameters given to the constructor -------------------------------------------------------------------


@pytest.mark.parametrize("info", OPTIMIZERS, ids=lambda i: i.name)
def test_bad_params_rejected_at_construction(info):
    p = _params()
    with pytest.raises(ValueError, match="empty parameter list"):
        info.cls([])
    with pytest.raises(TypeError, match="params must be a list"):
        info.cls(p[0])
    with pytest.raises(TypeError, match=re.escape("params[1] has dtype int64")):
        info.cls([p[0], np.arange(3)])
    with pytest.raises(TypeError, match=re.escape("params[0] is a list")):
        info.cls([[1.0, 2.0]])
    with pytest.raises(ValueError, match=re.escape("params[0] is not C-contiguous")):
        info.cls([np.zeros((4, 4), np.float32).T])
    read_only = np.zeros(3, np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match=re.escape("params[0] is read-only")):
        info.cls([read_only])
    with pytest.raises(ValueError, match=re.escape("some parameters appear more than once (params[0] is params[2])")):
        info.cls([p[0], p[1], p[0]])
    with pytest.raises(ValueError, match=re.escape("some parameters appear more than once")):
        info.cls([{"params": [p[0]]}, {"params": [p[1], p[0]]}])
    base = np.zeros(10, np.float32)
    with pytest.raises(ValueError, match=re.escape("params[0] and params[1] share memory")):
        info.cls([base[:6], base[5:]])


# --- the functional API ------------------------------------------------------------------------------------


@pytest.mark.parametrize("low", low_precision_dtypes(), ids=str)
@pytest.mark.parametrize("info", OPTIMIZERS, ids=lambda i: i.name)
def test_functional_refuses_16bit_params(info, low):
    """The kernels read float32 or float64 parameters (the classes keep float32 masters for 16-bit ones). A
    16-bit array used to pass the first list's dtype check and be read as float64, out of its bounds."""
    params = [p.astype(low) for p in _params()]
    grads = [np.ones_like(p) for p in params]
    before = [p.copy() for p in params]
    state = info.init_state(params, info.option_sets[0])
    with pytest.raises(TypeError, match=re.escape(f"params[0] has dtype {low}; fusedoptim's functional kernels")):
        info.functional_step(functional, params, grads, state, 1, info.option_sets[0])
    assert all(np.array_equal(a, b) for a, b in zip(params, before))


@pytest.mark.parametrize("low", low_precision_dtypes(), ids=str)
def test_clipping_refuses_16bit_gradients(low):
    grads = [np.full(4, 3.0, low), np.full(3, 3.0, np.float32)]
    before = [g.copy() for g in grads]
    with pytest.raises(TypeError, match=re.escape(f"grads[0] has dtype {low}")):
        fusedoptim.clip_grad_norm_(grads, 1.0)
    with pytest.raises(TypeError, match=re.escape(f"grads[0] has dtype {low}")):
        fusedoptim.clip_grad_value_(grads, 1.0)
    assert all(np.array_equal(a, b) for a, b in zip(grads, before))


def test_functional_checks_state_lists_and_steps():
    params = _params()
    grads = _grads(params)
    m, v = [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]
    before = [p.copy() for p in params]
    with pytest.raises(ValueError, match=re.escape("Expected 3 exp_avgs (one per parameter), got 2")):
        functional.adam_(params, grads, m[:2], v, None, [1, 1, 1])
    with pytest.raises(ValueError, match=re.escape("Invalid step number: steps[1] = 0")):
        functional.adam_(params, grads, m, v, None, [1, 0, 1])
    with pytest.raises(TypeError, match=re.escape("steps[0] must be an int")):
        functional.adagrad_(params, grads, v, [1.5, 1, 1])
    with pytest.raises(
        ValueError,
        match=re.escape("exp_avg_sqs[1] and exp_avgs[1] share memory")
        + "|"
        + re.escape("exp_avgs[1] and exp_avg_sqs[1] share memory"),
    ):
        functional.adam_(params, grads, m, [v[0], m[1], v[2]], None, [1, 1, 1])
    with pytest.raises(TypeError, match=re.escape("exp_avgs[0] has dtype float64 but params[0] has dtype float32")):
        functional.adam_(params, grads, [m[0].astype(np.float64), m[1], m[2]], v, None, [1, 1, 1])
    with pytest.raises(TypeError, match="max_exp_avg_sqs must be a list of arrays when amsgrad=True"):
        functional.adam_(params, grads, m, v, None, [1, 1, 1], amsgrad=True)
    with pytest.raises(TypeError, match="grads must be a list or tuple of numpy arrays, got ndarray"):
        functional.sgd_(params, grads[0], lr=0.1)
    with pytest.raises(ValueError, match=re.escape("Expected 3 grads (one per parameter), got 1")):
        functional.sgd_(params, grads[:1], lr=0.1)
    for p, q in zip(params, before):
        np.testing.assert_array_equal(p, q)
    for buf in m + v:
        assert not buf.any()


def test_empty_arrays_are_a_no_op():
    params = [np.zeros(0, np.float32), np.zeros((0, 3)), np.ones(2, np.float32)]
    opt = fusedoptim.Adam(params, lr=0.1)
    opt.step([np.zeros(0, np.float32), np.zeros((0, 3)), np.ones(2, np.float32)])
    assert params[0].shape == (0,) and params[1].shape == (0, 3)
    np.testing.assert_allclose(params[2], 0.9, rtol=1e-6)


# --- load_state_dict ---------------------------------------------------------------------------------------


def _corrupt(sd, case):
    sd = copy.deepcopy(sd)
    if case == "groups":
        sd["param_groups"].append(sd["param_groups"][0])
    elif case == "group-size":
        sd["param_groups"][1]["params"] = sd["param_groups"][1]["params"][:1]
    elif case == "shape":
        key = next(k for k, v in sd["state"][1].items() if isinstance(v, np.ndarray))
        sd["state"][1][key] = np.zeros(3, np.float32)
    elif case == "unknown-key":
        sd["state"][0]["velocity"] = np.zeros(3, np.float32)
    elif case == "missing-key":
        key = next(k for k, v in sd["state"][0].items() if isinstance(v, np.ndarray))
        sd["state"][0].pop(key)
        sd["state"][0].pop("step", None)
    elif case == "unknown-param":
        sd["state"][7] = sd["state"][0]
    elif case == "bad-step":
        sd["state"][0]["step"] = -1
    elif case == "bad-lr":
        sd["param_groups"][0]["lr"] = -1.0
    elif case == "not-a-dict":
        sd = [sd]
    elif case == "int-state":
        key = next(k for k, v in sd["state"][0].items() if isinstance(v, np.ndarray))
        sd["state"][0][key] = np.zeros(3, np.int32)
    return sd


SD_CASES = {
    "groups": "different number of parameter groups",
    "group-size": "doesn't match the size of optimizer's group",
    "shape": "has shape (3,) but its parameter has shape (2, 4)",
    "unknown-key": "unexpected keys ['velocity']",
    "missing-key": "is missing",
    "unknown-param": "state for parameter 7, which is in no parameter group",
    "bad-step": "must be a non-negative integer step count",
    "bad-lr": "Invalid learning rate: -1.0",
    "not-a-dict": "state_dict must be a mapping",
    "int-state": "has dtype int32",
}


@pytest.mark.parametrize("info", OPTIMIZERS, ids=lambda i: i.name)
@pytest.mark.parametrize("case", list(SD_CASES))
def test_malformed_state_dict_rejected_and_nothing_changes(info, case):
    opt, params = _stepped(info)
    if case in ("bad-step", "missing-key") and info.name == "SGD":
        pytest.skip("SGD keeps no step count, and its only buffer is optional (as in torch)")
    sd = opt.state_dict()
    opt.step(_grads(params))
    snapshot = _snapshot(opt)
    with pytest.raises((ValueError, TypeError), match=re.escape(SD_CASES[case])):
        opt.load_state_dict(_corrupt(sd, case))
    _assert_unchanged(opt, snapshot)


@pytest.mark.parametrize("missing", ["grads", "exp_avgs", "exp_avg_sqs"])
def test_none_for_a_required_list_is_a_type_error(missing):
    params = _params()
    lists = {
        "grads": _grads(params),
        "exp_avgs": [np.zeros_like(p) for p in params],
        "exp_avg_sqs": [np.zeros_like(p) for p in params],
    }
    lists[missing] = None
    with pytest.raises(TypeError, match=f"{missing} must be a list or tuple of numpy arrays, got NoneType"):
        functional.adam_(params, lists["grads"], lists["exp_avgs"], lists["exp_avg_sqs"], None, [1, 1, 1])
    with pytest.raises(TypeError, match="grads must be a list or tuple of numpy arrays, got NoneType"):
        functional.sgd_(params, None, lr=0.1)


def test_array_made_read_only_between_prepare_and_run_is_not_written():
    """An optimizer prepares every group, then runs them all: Python code (another thread) can run in between."""
    params = _params()
    before = [p.copy() for p in params]
    step, _ = functional._sgd_prepare(
        params,
        _grads(params),
        None,
        lr=0.1,
        momentum=0.0,
        dampening=0.0,
        weight_decay=0.0,
        nesterov=False,
        maximize=False,
    )
    params[1].flags.writeable = False
    with pytest.raises(ValueError, match=re.escape("params[1] became read-only before the step ran")):
        step.run()
    for p, q in zip(params, before):
        np.testing.assert_array_equal(p, q)


def test_masked_arrays_are_refused():
    with pytest.raises(TypeError, match="masked array"):
        fusedoptim.SGD([np.ma.masked_array(np.zeros(3), mask=[0, 1, 0])])


def test_numpy_bools_are_accepted():
    fusedoptim.Adam(_params(), amsgrad=np.True_, maximize=np.False_)
