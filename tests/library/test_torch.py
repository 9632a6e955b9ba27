"""The optimizer classes against torch.optim 2.13 itself: same trajectory, same state, for every option set torch
has, with two parameter groups, a skipped gradient, a learning-rate change and a state_dict round trip mid-run."""

from __future__ import annotations

import numpy as np
import pytest

from registry import ALL_CASES, ALL_IDS

torch = pytest.importorskip("torch")

STEPS = 9
SHAPES = [(17,), (4, 5), (1,), (1025,), (3, 2, 7)]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-11, atol=1e-13)}


def _tol(info, dtype):
    if dtype == np.float64:
        return dict(rtol=info.torch_rtol_float64, atol=info.torch_rtol_float64 / 100)
    return TOL[dtype]


def _grads(t, dtype):
    rng = np.random.default_rng(100 + t)
    grads = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    if t % 3 == 2:
        grads[1] = None  # torch: p.grad is None, the parameter is skipped
    return grads


def _groups(params, torch_params=False):
    # Two groups: the second overrides the learning rate.
    return [{"params": params[:3]}, {"params": params[3:], "lr": 0.02}]


@pytest.mark.parametrize(("info", "options"), ALL_CASES, ids=ALL_IDS)
def test_matches_torch(info, options, dtype):
    if not info.torch_compatible(options):
        pytest.skip("option has no torch counterpart")
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    ours = info.cls(_groups(params), **options)
    theirs = getattr(torch.optim, info.name)(_groups(tparams), **options)

    for t in range(1, STEPS + 1):
        grads = _grads(t, dtype)
        ours.step(grads)
        for tp, g in zip(tparams, grads):
            tp.grad = None if g is None else torch.from_numpy(g.copy())
        theirs.step()
        if t == 4:  # a learning-rate change through param_groups takes effect at the next step
            for group in ours.param_groups + theirs.param_groups:
                group["lr"] *= 0.5
        if t == 6:  # a state_dict round trip into fresh optimizers continues the same trajectory
            saved = ours.state_dict()
            ours = info.cls(_groups(params), **options)
            ours.load_state_dict(saved)
            tsaved = theirs.state_dict()
            theirs = getattr(torch.optim, info.name)(_groups(tparams), **options)
            theirs.load_state_dict(tsaved)

    with torch.no_grad():
        for p, tp in zip(params, tparams):
            np.testing.assert_allclose(p, tp.numpy(), **_tol(info, dtype))
    for i, tp in enumerate(tparams):
        tstate = theirs.state[tp]
        state = ours.state.get(i, {})
        assert set(state) == set(tstate), (state.keys(), tstate.keys())
        for key, tvalue in tstate.items():
            if key == "step":
                assert state["step"] == int(tvalue.item())
            elif key == "mu_product":
                np.testing.assert_allclose(state[key], tvalue.item(), rtol=1e-6)
            elif tvalue is None:
                assert state[key] is None
            else:
                np.testing.assert_allclose(state[key], tvalue.numpy(), **_tol(info, dtype))
