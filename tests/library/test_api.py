"""The optimizer API: the seed's four rules, param groups, skipped gradients, state access, state_dict
continuation, thread and SIMD determinism (the info command: tests/cli/test_cli.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import fusedoptim
from fusedoptim import _core
from registry import ALL_CASES, ALL_IDS, make_grads, make_params

# --- the seed's rules, each against a NumPy transcription of its formula ------------------------------------


def _regression(seed=0, n=64, d=5):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = x @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n)
    return x, y


def _grad(w, x, y):
    """Gradient of the mean squared error 0.5 * mean((x w - y)^2)."""
    return x.T @ (x @ w - y) / len(y)


def test_seed_rule_1_gradient_descent():
    x, y = _regression()
    w, w_ref = np.zeros(5), np.zeros(5)
    opt = fusedoptim.SGD([w], lr=0.1)
    for _ in range(50):
        opt.step([_grad(w, x, y)])
        w_ref = w_ref - 0.1 * _grad(w_ref, x, y)  # p = p - lr * grad L(p), full data set
    np.testing.assert_array_equal(w, w_ref)


def test_seed_rule_2_stochastic_gradient_descent():
    x, y = _regression()
    rng = np.random.default_rng(1)
    w, w_ref = np.zeros(5), np.zeros(5)
    opt = fusedoptim.SGD([w], lr=0.05)
    for _ in range(200):
        i = rng.integers(len(y), size=1)  # one sampled example
        opt.step([_grad(w, x[i], y[i])])
        w_ref = w_ref - 0.05 * _grad(w_ref, x[i], y[i])
    np.testing.assert_array_equal(w, w_ref)
    assert np.mean((x @ w - y) ** 2) < np.mean(y**2)


def test_seed_rule_3_momentum_ema_form():
    x, y = _regression()
    beta, lr = 0.9, 0.1
    w, w_ref, v = np.zeros(5), np.zeros(5), np.zeros(5)
    opt = fusedoptim.SGD([w], lr=lr, momentum=beta, dampening=beta, momentum_init="zeros")
    for _ in range(50):
        opt.step([_grad(w, x, y)])
        v = beta * v + (1 - beta) * _grad(w_ref, x, y)  # v starts at 0
        w_ref = w_ref - lr * v
    np.testing.assert_array_equal(w, w_ref)


def test_seed_rule_4_adaptive_learning_rate():
    x, y = _regression()
    beta, lr, eps = 0.9, 0.01, 1e-8
    w, w_ref, v = np.zeros(5), np.zeros(5), np.zeros(5)
    opt = fusedoptim.RMSprop([w], lr=lr, alpha=beta, eps=eps, eps_in_sqrt=True)
    for _ in range(50):
        opt.step([_grad(w, x, y)])
        g = _grad(w_ref, x, y)
        v = beta * v + (1 - beta) * g * g  # updated with the current gradient first
        w_ref = w_ref - lr / np.sqrt(v + eps) * g  # eps inside the root
    np.testing.assert_allclose(w, w_ref, rtol=1e-13, atol=1e-15)


# --- groups, skipped gradients, state ----------------------------------------------------------------------


def test_param_group_overrides_and_lr_change():
    a, b = np.zeros(4, np.float32), np.zeros(4, np.float32)
    opt = fusedoptim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.5)
    g = np.ones(4, np.float32)
    opt.step([g, g])
    np.testing.assert_array_equal(a, -0.5)
    np.testing.assert_array_equal(b, -1.0)
    opt.param_groups[0]["lr"] = 0.25
    opt.step([g, None])
    np.testing.assert_array_equal(a, -0.75)
    np.testing.assert_array_equal(b, -1.0)  # None: skipped


def test_none_gradient_leaves_param_and_state_untouched():
    p, q = np.ones(3), np.ones(3)
    opt = fusedoptim.Adam([p, q], lr=0.1)
    opt.step([np.ones(3), None])
    assert 1 not in opt.state and opt.state[0]["step"] == 1
    np.testing.assert_array_equal(q, 1.0)
    opt.step([None, np.ones(3)])
    assert opt.state[0]["step"] == 1 and opt.state[1]["step"] == 1
    np.testing.assert_array_equal(p, q)


def test_state_by_index_or_array_and_add_param_group():
    p, q = np.ones(3, np.float32), np.ones(2, np.float32)
    opt = fusedoptim.Adam([p], lr=0.1)
    opt.step([np.ones(3, np.float32)])
    assert opt.state[p] is opt.state[0]
    assert set(opt.state[p]) == {"step", "exp_avg", "exp_avg_sq"}
    opt.add_param_group({"params": [q], "lr": 0.5, "amsgrad": True})
    opt.step([np.ones(3, np.float32), np.ones(2, np.float32)])
    assert set(opt.state[q]) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    with pytest.raises(KeyError):
        opt.state[np.ones(3)]
    assert "Parameter Group 1" in repr(opt)


def test_state_dict_is_a_snapshot():
    p = np.ones(3)
    opt = fusedoptim.Adam([p], lr=0.1)
    opt.step([np.ones(3)])
    sd = opt.state_dict()
    opt.step([np.ones(3)])
    assert sd["state"][0]["step"] == 1
    assert not np.array_equal(sd["state"][0]["exp_avg"], opt.state[0]["exp_avg"])
    assert sd["param_groups"][0]["params"] == [0]


@pytest.mark.parametrize(("info", "options"), ALL_CASES, ids=ALL_IDS)
def test_state_dict_round_trip_is_bit_identical(info, options):
    def run(split):
        params = make_params(np.float32, sizes=[5, 1025])
        opt = info.cls(params, **options)
        for t in range(1, 9):
            if t == split:
                sd = opt.state_dict()
                opt = info.cls(params, **options)
                opt.load_state_dict(sd)
            opt.step(make_grads(params, t))
        return params, opt.state_dict()

    straight, sd_a = run(None)
    resumed, sd_b = run(4)
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a, b, strict=True)
    assert sd_a["state"].keys() == sd_b["state"].keys()
    for i in sd_a["state"]:
        for key, value in sd_a["state"][i].items():
            np.testing.assert_array_equal(value, sd_b["state"][i][key])


# --- determinism across threads and SIMD levels ------------------------------------------------------------


def _adam_run(n_threads, grain, dtype=np.float32):
    previous = _core.requested_num_threads(), _core.get_parallel_grain()
    _core.set_num_threads(n_threads)
    _core.set_parallel_grain(grain)
    try:
        params = make_params(dtype, sizes=[3, 100003, 17, 65536])
        opt = fusedoptim.Adam(params, lr=0.01, amsgrad=True, weight_decay=0.1)
        for t in range(1, 4):
            opt.step(make_grads(params, t))
        return params
    finally:
        _core.set_num_threads(previous[0])
        _core.set_parallel_grain(previous[1])


@pytest.mark.parametrize(("threads", "grain"), [(2, 32768), (2, 1), (2, 1000), (1, 1)])
def test_results_do_not_depend_on_threads_or_chunking(threads, grain):
    for a, b in zip(_adam_run(1, 32768), _adam_run(threads, grain)):
        np.testing.assert_array_equal(a, b, strict=True)


def test_results_do_not_depend_on_simd_level():
    previous = _core.simd_level()
    results = []
    try:
        for level in _core.supported_simd_levels():
            _core.set_simd_level(level)
            results.append(_adam_run(2, 64, np.float64))
    finally:
        _core.set_simd_level(previous)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b, strict=True)


def test_thread_count_settings():
    previous = _core.requested_num_threads()
    fusedoptim.set_num_threads(1)
    assert fusedoptim.get_num_threads() == 1
    fusedoptim.set_num_threads(0)
    assert fusedoptim.get_num_threads() >= 1
    with pytest.raises(ValueError, match="Invalid number of threads: -1"):
        fusedoptim.set_num_threads(-1)
    fusedoptim.set_num_threads(previous)


def test_simd_level_selection():
    assert fusedoptim.simd_level() in _core.supported_simd_levels()
    assert _core.supported_simd_levels()[0] == "baseline"
    with pytest.raises(ValueError, match="Unknown SIMD level 'sse9'"):
        _core.set_simd_level("sse9")


def _run_python(code, **env):
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}, check=False
    )


def test_environment_forces_simd_level():
    out = _run_python("import fusedoptim; print(fusedoptim.simd_level())", FUSEDOPTIM_SIMD="baseline")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "baseline"
    bad = _run_python("import fusedoptim", FUSEDOPTIM_SIMD="sse9")
    assert bad.returncode != 0 and "Unknown SIMD level 'sse9'" in bad.stderr


def test_environment_decides_prefetch():
    for value, expected in (("0", "False"), ("1", "True")):
        out = _run_python("import fusedoptim; print(fusedoptim.info()['prefetch'])", FUSEDOPTIM_PREFETCH=value)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == expected
    bad = _run_python("import fusedoptim", FUSEDOPTIM_PREFETCH="yes")
    assert bad.returncode != 0 and "Invalid FUSEDOPTIM_PREFETCH: 'yes' (0 or 1)" in bad.stderr


def test_omp_num_threads_is_respected():
    out = _run_python("import fusedoptim; print(fusedoptim.get_num_threads())", OMP_NUM_THREADS="1")
    assert out.stdout.strip() == "1", out.stderr


def test_state_follows_its_array_when_groups_are_edited():
    a, b = np.ones(3), np.ones(3)
    opt = fusedoptim.Adam([a, b], lr=0.1)
    opt.step([np.ones(3), np.full(3, -1.0)])
    state_b = opt.state[b]
    opt.param_groups[0]["params"].remove(a)
    assert opt.state[b] is state_b and opt.state[0] is state_b
    opt.step([np.full(3, -1.0)])
    assert opt.state[b]["step"] == 2
    assert list(opt.state) == [0] and len(opt.state) == 1
    sd = opt.state_dict()
    assert list(sd["state"]) == [0] and sd["state"][0]["step"] == 2


def test_load_state_dict_fills_missing_group_keys_with_defaults():
    p = np.ones(3)
    opt = fusedoptim.SGD([p], lr=0.1, momentum=0.9)
    opt.step([np.ones(3)])
    sd = opt.state_dict()
    del sd["param_groups"][0]["momentum_init"]  # e.g. a torch state_dict converted to NumPy
    other = fusedoptim.SGD([np.ones(3)], lr=0.1, momentum=0.9)
    other.load_state_dict(sd)
    assert other.param_groups[0]["momentum_init"] == "grad"


def test_adagrad_state_exists_from_the_start_like_torch():
    p = np.ones(3)
    opt = fusedoptim.Adagrad([p], initial_accumulator_value=0.5)
    assert opt.state[p]["step"] == 0
    np.testing.assert_array_equal(opt.state[p]["sum"], 0.5)
    assert list(opt.state_dict()["state"]) == [0]


def test_idle_threads_sleep_unless_the_user_chose_a_wait_policy():
    code = "import os, fusedoptim; print(os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "PASSIVE"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
        check=True,
    )
    assert out.stdout.strip() == "ACTIVE"
