"""Stochastic weight averaging: SWALR against torch.optim.swa_utils.SWALR 2.13 (every rate equal as a Python float),
and AveragedParams against torch.optim.swa_utils.AveragedModel on a module holding the same values.

How close AveragedParams is to torch, and why:

* ``avg_fn=get_swa_avg_fn()`` / ``get_ema_avg_fn(decay)``: torch's formulas as NumPy operations in torch's order,
  bit for bit equal to AveragedModel on the CPU (whose default is ``get_swa_avg_fn``: its fused
  ``_foreach_lerp_`` path runs on accelerators only).
* the default and ``get_swa_multi_avg_fn()`` / ``get_ema_multi_avg_fn(decay)``: fusedoptim's lerp kernel, which
  rounds each operation (``start + weight * (end - start)``), while torch divides by ``n + 1`` (its CPU default)
  or evaluates lerp with one fused multiply-add (its vectorised CPU kernel). Each update then differs by about
  an ulp of the values; held to 8 ulps of the largest value (measured: below half of one). Bit for bit, they equal a
  NumPy transcription of the lerp they implement, and fusedoptim.EMA.
"""

from __future__ import annotations

import copy
import math
import pickle
import re
import types
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

import fusedoptim
from fusedoptim import lr_scheduler, swa
from fusedoptim.swa import AveragedParams

SHAPES = [(17,), (4, 5), (1,), (1025,), (3, 2, 7)]
UPDATES = 12


@pytest.fixture(scope="module")
def torch() -> Any:
    return pytest.importorskip("torch")


@contextmanager
def _torch_warnings_silenced() -> Iterator[None]:
    """torch's schedulers warn (scheduler.step() before optimizer.step()); the suite turns warnings into errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# --- SWALR -----------------------------------------------------------------------------------------------------

LRS = (0.1, 0.03)  # the two parameter groups' rates
JUMPS = [
    1,
    2,
    2,
    5,
    6,
    3,
    9,
    10,
    14,
    15,
    20,
    21,
    7,
    8,
    25,
    30,
    31,
    33,
    34,
    35,
    36,
    40,
    41,
    42,
    50,
    51,
    52,
    53,
    54,
    55,
    56,
    57,
]


def _our_optimizer() -> fusedoptim.Optimizer:
    return fusedoptim.SGD([{"params": [np.zeros(3)], "lr": LRS[0]}, {"params": [np.zeros(2)], "lr": LRS[1]}], lr=0.5)


def _torch_optimizer(torch: Any) -> Any:
    groups = [
        {"params": [torch.zeros(3, dtype=torch.float64)], "lr": LRS[0]},
        {"params": [torch.zeros(2, dtype=torch.float64)], "lr": LRS[1]},
    ]
    return torch.optim.SGD(groups, lr=0.5)


def _module(torch: Any) -> Any:
    """torch's schedulers the cases use, with torch.optim.swa_utils.SWALR, as one module-like namespace."""
    names = ("MultiplicativeLR", "CosineAnnealingLR", "ExponentialLR", "SequentialLR", "ChainedScheduler")
    return types.SimpleNamespace(
        SWALR=torch.optim.swa_utils.SWALR, **{name: getattr(torch.optim.lr_scheduler, name) for name in names}
    )


# Each case: how to build the scheduler from a module of schedulers and an optimizer, and how to step it (the
# t-th step: a function of (scheduler, t)). The rates and group keys after each step must equal torch's.
Build = Callable[[Any, Any], Any]
Step = Callable[[Any, int], None]


def _plain(scheduler: Any, t: int) -> None:
    scheduler.step()


def _jumping(scheduler: Any, t: int) -> None:
    scheduler.step(JUMPS[t])


def _swa_after(start: int) -> Step:
    """torch's documented pattern: another scheduler until ``start``, then SWALR (both built at the start)."""

    def step(schedulers: Any, t: int) -> None:
        before, swalr = schedulers
        (swalr if t >= start else before).step()

    return step


SWALR_CASES: dict[str, tuple[Build, Step]] = {}
for _strategy in ("cos", "linear"):
    for _epochs in (0, 1, 4, 10):
        SWALR_CASES[f"{_strategy}-anneal_epochs={_epochs}"] = (
            lambda m, o, s=_strategy, e=_epochs: m.SWALR(o, swa_lr=0.05, anneal_epochs=e, anneal_strategy=s),
            _plain,
        )
    SWALR_CASES[f"{_strategy}-per-group"] = (
        lambda m, o, s=_strategy: m.SWALR(o, swa_lr=[0.01, 0.2], anneal_epochs=7, anneal_strategy=s),
        _plain,
    )
    SWALR_CASES[f"{_strategy}-step(epoch)"] = (
        lambda m, o, s=_strategy: m.SWALR(o, swa_lr=[0.5, 0.001], anneal_epochs=6, anneal_strategy=s),
        _jumping,
    )
SWALR_CASES.update(
    {
        "defaults": (lambda m, o: m.SWALR(o, 0.2), _plain),
        "int-rates": (lambda m, o: m.SWALR(o, [1, 0], anneal_epochs=3), _plain),
        "after-MultiplicativeLR": (
            lambda m, o: (
                m.MultiplicativeLR(o, lambda e: 0.9),
                m.SWALR(o, 0.05, anneal_epochs=5, anneal_strategy="linear"),
            ),
            _swa_after(12),
        ),
        "after-CosineAnnealingLR": (
            lambda m, o: (m.CosineAnnealingLR(o, T_max=20), m.SWALR(o, [0.02, 0.004], anneal_epochs=8)),
            _swa_after(15),
        ),
        "in-SequentialLR": (
            lambda m, o: m.SequentialLR(
                o, [m.ExponentialLR(o, 0.9), m.SWALR(o, 0.05, anneal_epochs=6)], milestones=[10]
            ),
            _plain,
        ),
        "in-ChainedScheduler": (
            lambda m, o: m.ChainedScheduler([m.ExponentialLR(o, 0.95), m.SWALR(o, 0.05, anneal_epochs=9)]),
            _plain,
        ),
    }
)
SWALR_STEPS = 32


def _settings(optimizer: Any) -> list[dict[str, Any]]:
    """The groups' entries other than the parameters (copies)."""
    return [copy.deepcopy({k: v for k, v in group.items() if k != "params"}) for group in optimizer.param_groups]


def _snapshot(scheduler: Any, optimizer: Any) -> dict[str, Any]:
    last = scheduler[-1] if isinstance(scheduler, tuple) else scheduler
    keys = ("lr", "initial_lr", "swa_lr")
    return {
        "last_lr": list(last.get_last_lr()),
        "groups": [{k: group[k] for k in keys if k in group} for group in optimizer.param_groups],
    }


def _run_swalr(name: str, module: Any, optimizer: Any, steps: int = SWALR_STEPS) -> tuple[Any, list[dict[str, Any]]]:
    build, step = SWALR_CASES[name]
    scheduler = build(module, optimizer)
    snapshots = [_snapshot(scheduler, optimizer)]
    for t in range(steps):
        step(scheduler, t)
        snapshots.append(_snapshot(scheduler, optimizer))
    return scheduler, snapshots


def _comparable(state: dict[str, Any]) -> dict[str, Any]:
    """A torch scheduler state dict without torch's call-time flags (always False between calls)."""
    state = {k: v for k, v in state.items() if k not in ("_get_lr_called_within_step", "_is_initial")}
    if "_schedulers" in state:
        state["_schedulers"] = [_comparable(s) for s in state["_schedulers"]]
    return state


@pytest.mark.parametrize("name", list(SWALR_CASES))
def test_swalr_matches_torch(name: str, torch: Any) -> None:
    scheduler, ours = _run_swalr(name, lr_scheduler, _our_optimizer())
    with _torch_warnings_silenced():
        torch_scheduler, theirs = _run_swalr(name, _module(torch), _torch_optimizer(torch))
    assert len(ours) == len(theirs) == SWALR_STEPS + 1
    for t, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a == b, f"after step {t}: ours {a} != torch {b}"
        assert all(type(lr) is float for lr in a["last_lr"])
    assert len({tuple(s["last_lr"]) for s in ours}) >= 2 or "anneal_epochs=0" in name, "the rates should change"
    schedulers = (
        zip(scheduler, torch_scheduler, strict=True) if isinstance(scheduler, tuple) else [(scheduler, torch_scheduler)]
    )
    for mine, theirs_scheduler in schedulers:
        assert _comparable(mine.state_dict()) == _comparable(theirs_scheduler.state_dict())


def test_swalr_reaches_swa_lr_along_the_annealing_function() -> None:
    """The schedule itself, without torch: from the rate at construction to swa_lr in anneal_epochs steps."""
    for strategy, shape in (("cos", lambda x: (1 - math.cos(math.pi * x)) / 2), ("linear", lambda x: x)):
        optimizer = _our_optimizer()
        scheduler = lr_scheduler.SWALR(optimizer, swa_lr=[0.01, 0.2], anneal_epochs=5, anneal_strategy=strategy)
        assert [g["swa_lr"] for g in optimizer.param_groups] == [0.01, 0.2]
        for t in range(12):
            alpha = shape(min(t, 5) / 5)
            expected = [alpha * swa_lr + (1 - alpha) * lr for swa_lr, lr in zip((0.01, 0.2), LRS, strict=True)]
            assert scheduler.get_last_lr() == pytest.approx(expected, rel=1e-12)
            scheduler.step()
        assert scheduler.get_last_lr() == [0.01, 0.2]
    immediate = lr_scheduler.SWALR(_our_optimizer(), swa_lr=0.05, anneal_epochs=0)
    assert immediate.get_last_lr() == [0.05, 0.05]


@pytest.mark.parametrize("resume_at", [3, 8])
def test_swalr_resumes_with_last_epoch_like_torch(resume_at: int, torch: Any) -> None:
    def run(module: Any, optimizer: Any) -> list[dict[str, Any]]:
        first = module.SWALR(optimizer, swa_lr=[0.01, 0.2], anneal_epochs=10)
        for _ in range(resume_at):
            first.step()
        scheduler = module.SWALR(optimizer, swa_lr=[0.01, 0.2], anneal_epochs=10, last_epoch=resume_at)
        snapshots = [_snapshot(scheduler, optimizer)]
        for _ in range(15):
            scheduler.step()
            snapshots.append(_snapshot(scheduler, optimizer))
        return snapshots

    ours = run(lr_scheduler, _our_optimizer())
    with _torch_warnings_silenced():
        theirs = run(torch.optim.swa_utils, _torch_optimizer(torch))
    assert ours == theirs


def test_swalr_loads_a_torch_state_dict(torch: Any) -> None:
    with _torch_warnings_silenced():
        torch_optimizer = _torch_optimizer(torch)
        torch_scheduler = torch.optim.swa_utils.SWALR(
            torch_optimizer, swa_lr=0.05, anneal_epochs=20, anneal_strategy="linear"
        )
        for _ in range(6):
            torch_scheduler.step()
    optimizer = _our_optimizer()
    scheduler = lr_scheduler.SWALR(optimizer, swa_lr=0.3, anneal_epochs=3)  # other settings: the state dict wins
    for group, torch_group in zip(optimizer.param_groups, torch_optimizer.param_groups, strict=True):
        group.update({k: torch_group[k] for k in ("lr", "initial_lr", "swa_lr")})
    scheduler.load_state_dict(torch_scheduler.state_dict())
    assert scheduler.anneal_epochs == 20 and scheduler._anneal_strategy == "linear"
    with _torch_warnings_silenced():
        for _ in range(20):
            torch_scheduler.step()
    for _ in range(20):
        scheduler.step()
    assert _snapshot(scheduler, optimizer) == _snapshot(torch_scheduler, torch_optimizer)


@pytest.mark.parametrize("name", list(SWALR_CASES))
def test_swalr_state_dict_round_trip_resumes(name: str) -> None:
    """The optimizer's and scheduler's state dicts (through pickle) loaded mid-run into fresh ones built the same
    way continue exactly the uninterrupted schedule."""
    _, expected = _run_swalr(name, lr_scheduler, _our_optimizer())
    build, step = SWALR_CASES[name]
    optimizer = _our_optimizer()
    scheduler = build(lr_scheduler, optimizer)
    half = SWALR_STEPS // 2
    for t in range(half):
        step(scheduler, t)
    parts = scheduler if isinstance(scheduler, tuple) else (scheduler,)
    saved = pickle.loads(pickle.dumps((optimizer.state_dict(), [s.state_dict() for s in parts])))

    optimizer = _our_optimizer()
    scheduler = build(lr_scheduler, optimizer)
    optimizer.load_state_dict(saved[0])
    for part, state in zip(scheduler if isinstance(scheduler, tuple) else (scheduler,), saved[1], strict=True):
        part.load_state_dict(state)
    assert _snapshot(scheduler, optimizer) == expected[half]
    for t in range(half, SWALR_STEPS):
        step(scheduler, t)
        assert _snapshot(scheduler, optimizer) == expected[t + 1], f"after step {t + 1}"


def test_swalr_through_a_checkpoint(tmp_path: Any) -> None:
    optimizer = _our_optimizer()
    scheduler = lr_scheduler.SWALR(optimizer, swa_lr=[0.01, 0.2], anneal_epochs=9, anneal_strategy="linear")
    for _ in range(4):
        scheduler.step()
    fusedoptim.save(tmp_path / "ckpt.npz", optimizer=optimizer, scheduler=scheduler)
    expected = []
    for _ in range(8):
        scheduler.step()
        expected.append(scheduler.get_last_lr())
    optimizer = _our_optimizer()
    resumed = lr_scheduler.SWALR(optimizer, swa_lr=0.5)
    fusedoptim.load(tmp_path / "ckpt.npz", optimizer=optimizer, scheduler=resumed)
    got = []
    for _ in range(8):
        resumed.step()
        got.append(resumed.get_last_lr())
    assert got == expected


# torch's own messages, where torch refuses the argument too (torch writes the groups' swa_lr before it checks the
# others; SWALR checks everything first).
SWALR_BAD_ARGUMENTS_LIKE_TORCH = [
    (
        dict(swa_lr=0.05, anneal_strategy="cosine"),
        ValueError,
        "anneal_strategy must be one of 'cos' or 'linear', instead got cosine",
    ),
    (dict(swa_lr=0.05, anneal_epochs=-1), ValueError, "anneal_epochs must be equal or greater than 0, got -1"),
    (dict(swa_lr=0.05, anneal_epochs=2.5), ValueError, "anneal_epochs must be equal or greater than 0, got 2.5"),
    (
        dict(swa_lr=[0.05]),
        ValueError,
        "swa_lr must have the same length as optimizer.param_groups. swa_lr has 1 values, param_groups has 2.",
    ),
]
# Arguments torch accepts but cannot use.
SWALR_BAD_ARGUMENTS = [
    *SWALR_BAD_ARGUMENTS_LIKE_TORCH,
    (dict(swa_lr=-0.1), ValueError, "Invalid swa_lr: -0.1"),
    (dict(swa_lr=[0.1, math.nan]), ValueError, "Invalid swa_lr: nan"),
    (dict(swa_lr="0.1"), TypeError, "swa_lr must be a real number, got str: '0.1'"),
    (dict(swa_lr=0.1, anneal_epochs=True), ValueError, "anneal_epochs must be equal or greater than 0, got True"),
    (dict(swa_lr=0.1, last_epoch=-2), ValueError, r"Invalid last_epoch: -2 (expected an integer >= -1)"),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), SWALR_BAD_ARGUMENTS, ids=[m for *_, m in SWALR_BAD_ARGUMENTS])
def test_swalr_refuses_bad_arguments_and_leaves_the_groups_alone(kwargs: dict, error: type, message: str) -> None:
    optimizer = _our_optimizer()
    before = _settings(optimizer)
    with pytest.raises(error) as raised:
        lr_scheduler.SWALR(optimizer, **kwargs)
    assert str(raised.value) == message
    assert _settings(optimizer) == before


@pytest.mark.parametrize(
    ("kwargs", "error", "message"), SWALR_BAD_ARGUMENTS_LIKE_TORCH, ids=[m for *_, m in SWALR_BAD_ARGUMENTS_LIKE_TORCH]
)
def test_swalr_messages_are_torchs(kwargs: dict, error: type, message: str, torch: Any) -> None:
    with pytest.raises(error) as raised, _torch_warnings_silenced():
        torch.optim.swa_utils.SWALR(_torch_optimizer(torch), **kwargs)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("anneal_epochs", -1, "expected an int >= 0"),
        ("anneal_epochs", 2.0, "expected an int >= 0"),
        ("_anneal_strategy", "cosine", "expected one of 'cos', 'linear'"),
        ("_step_count", -1, "expected an int >= 0"),
        ("base_lrs", [0.1], "expected a list of 2 finite rates >= 0"),
        ("anneal_func", None, "SWALR has no state named 'anneal_func'"),
        ("swa_lr", 0.1, "SWALR has no state named 'swa_lr'"),
    ],
)
def test_swalr_refuses_a_bad_state_dict_and_changes_nothing(key: str, value: Any, message: str) -> None:
    optimizer = _our_optimizer()
    scheduler = lr_scheduler.SWALR(optimizer, swa_lr=0.05, anneal_epochs=4)
    scheduler.step()
    before, groups = scheduler.state_dict(), _settings(optimizer)
    bad = {**scheduler.state_dict(), "anneal_epochs": 9, key: value}  # a good entry too: it must not be set
    with pytest.raises(ValueError, match=re.escape(message)):
        scheduler.load_state_dict(bad)
    assert scheduler.state_dict() == before and _settings(optimizer) == groups


# --- AveragedParams: values against torch ----------------------------------------------------------------------


def _trajectory(dtype: Any, updates: int = UPDATES, seed: int = 0) -> list[list[np.ndarray]]:
    """Parameter values at each update: a random walk, like a training run's."""
    rng = np.random.default_rng(seed)
    values = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    walk = []
    for _ in range(updates):
        values = [(v + 0.3 * rng.standard_normal(v.shape)).astype(dtype) for v in values]
        walk.append(values)
    return walk


def _torch_model(torch: Any, values: list[np.ndarray], buffers: list[np.ndarray] = ()) -> Any:
    model = torch.nn.Module()
    model.ps = torch.nn.ParameterList([torch.nn.Parameter(torch.from_numpy(v.copy())) for v in values])
    for i, b in enumerate(buffers):
        model.register_buffer(f"buffer{i}", torch.from_numpy(b.copy()))
    return model


def _set_torch(torch: Any, model: Any, values: list[np.ndarray], buffers: list[np.ndarray] = ()) -> None:
    with torch.no_grad():
        for p, v in zip(model.ps, values, strict=True):
            p.copy_(torch.from_numpy(v))
        for b, v in zip(model.buffers(), buffers, strict=True):
            b.copy_(torch.from_numpy(v))


def _run_both(torch: Any, dtype: Any, ours_kwargs: dict, torch_kwargs: dict) -> tuple[list, list, float]:
    """Averages after each update from AveragedParams and from AveragedModel, and the largest value seen."""
    walk = _trajectory(dtype)
    params = [np.zeros(s, dtype) for s in SHAPES]
    averaged = AveragedParams(params, **ours_kwargs)
    model = _torch_model(torch, [np.zeros(s, dtype) for s in SHAPES])
    torch_averaged = torch.optim.swa_utils.AveragedModel(model, **torch_kwargs)
    ours, theirs = [], []
    for values in walk:
        for p, v in zip(params, values, strict=True):
            p[...] = v
        _set_torch(torch, model, values)
        averaged.update()
        torch_averaged.update_parameters(model)
        ours.append([a.copy() for a in averaged.averaged])
        theirs.append([p.detach().numpy().copy() for p in torch_averaged.module.ps])
        assert averaged.n_averaged == int(torch_averaged.n_averaged)
    scale = max(float(np.max(np.abs(v))) for values in walk for v in values)
    return ours, theirs, scale


def _assert_within_rounding(ours: list, theirs: list, dtype: Any, scale: float) -> None:
    """Equal to 8 ulps of the largest value: each update's operations are rounded differently (see the module
    docstring), by about an ulp each."""
    atol = 8 * np.finfo(dtype).eps * scale
    for t, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert x.dtype == y.dtype == dtype
            np.testing.assert_allclose(x, y, rtol=0, atol=atol, err_msg=f"update {t + 1}, array {i}")


def _lerp(start: np.ndarray, end: np.ndarray, weight: float) -> np.ndarray:
    """torch.lerp with one rounding per operation, weight rounded to the arrays' dtype (the kernel's spec)."""
    w = start.dtype.type(weight)
    if abs(w) < 0.5:
        return start + w * (end - start)
    return end - (end - start) * (start.dtype.type(1) - w)


def _lerp_averages(dtype: Any, weight: Callable[[int], float]) -> list[list[np.ndarray]]:
    averages, history = None, []
    for n, values in enumerate(_trajectory(dtype)):
        averages = (
            [v.copy() for v in values]
            if averages is None
            else [_lerp(a, v, weight(n)) for a, v in zip(averages, values, strict=True)]
        )
        history.append(averages)
    return history


def _assert_bitwise(ours: list, expected: list) -> None:
    for t, (a, b) in enumerate(zip(ours, expected, strict=True)):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            np.testing.assert_array_equal(x, y, strict=True, err_msg=f"update {t + 1}, array {i}")


def _ours(dtype: Any, **kwargs: Any) -> list[list[np.ndarray]]:
    params = [np.zeros(s, dtype) for s in SHAPES]
    averaged = AveragedParams(params, **kwargs)
    history = []
    for values in _trajectory(dtype):
        for p, v in zip(params, values, strict=True):
            p[...] = v
        averaged.update()
        history.append([a.copy() for a in averaged.averaged])
    return history


def test_default_matches_torch_within_rounding(dtype: Any, torch: Any) -> None:
    ours, theirs, scale = _run_both(torch, dtype, {}, {})
    _assert_within_rounding(ours, theirs, dtype, scale)


def test_default_is_the_lerp_of_get_swa_multi_avg_fn_bit_for_bit(dtype: Any) -> None:
    expected = _lerp_averages(dtype, lambda n: 1 / (n + 1))
    _assert_bitwise(_ours(dtype), expected)
    _assert_bitwise(_ours(dtype, multi_avg_fn=swa.get_swa_multi_avg_fn()), expected)
    # the mean it approximates
    mean = np.mean(np.stack([np.asarray(v[3], np.float64) for v in _trajectory(dtype)]), axis=0)
    np.testing.assert_allclose(expected[-1][3], mean, rtol=0, atol=50 * np.finfo(dtype).eps)


def test_get_swa_avg_fn_matches_torch_bit_for_bit(dtype: Any, torch: Any) -> None:
    ours, theirs, _ = _run_both(torch, dtype, {"avg_fn": swa.get_swa_avg_fn()}, {})
    _assert_bitwise(ours, theirs)


def test_ema_matches_torch_within_rounding(dtype: Any, torch: Any) -> None:
    get = torch.optim.swa_utils.get_ema_multi_avg_fn
    ours, theirs, scale = _run_both(
        torch, dtype, {"multi_avg_fn": swa.get_ema_multi_avg_fn(0.9)}, {"multi_avg_fn": get(0.9)}
    )
    _assert_within_rounding(ours, theirs, dtype, scale)


def test_get_ema_avg_fn_matches_torch_bit_for_bit(dtype: Any, torch: Any) -> None:
    get = torch.optim.swa_utils.get_ema_avg_fn
    ours, theirs, _ = _run_both(torch, dtype, {"avg_fn": swa.get_ema_avg_fn(0.9)}, {"avg_fn": get(0.9)})
    _assert_bitwise(ours, theirs)


def test_ema_is_fusedoptims_ema_bit_for_bit(dtype: Any) -> None:
    """The first update copies; from there on the EMA is fusedoptim.EMA's (the same lerp, weight 1 - decay)."""
    expected = _lerp_averages(dtype, lambda n: 1 - 0.75)
    _assert_bitwise(_ours(dtype, multi_avg_fn=swa.get_ema_multi_avg_fn(0.75)), expected)
    walk = _trajectory(dtype)
    params = [v.copy() for v in walk[0]]
    ema = fusedoptim.EMA(params, decay=0.75)
    for values in walk[1:]:
        for p, v in zip(params, values, strict=True):
            p[...] = v
        ema.update()
    _assert_bitwise([ema.averages], [expected[-1]])


def test_multi_avg_fns_match_torchs_own_on_lists(dtype: Any, torch: Any) -> None:
    """torch's get_swa_multi_avg_fn / get_ema_multi_avg_fn called on tensor lists with an int count (the weight a
    Python float, as ours): within rounding (torch's lerp is one fused multiply-add)."""
    for ours_fn, torch_fn in (
        (swa.get_swa_multi_avg_fn(), torch.optim.swa_utils.get_swa_multi_avg_fn()),
        (swa.get_ema_multi_avg_fn(0.8), torch.optim.swa_utils.get_ema_multi_avg_fn(0.8)),
    ):
        walk = _trajectory(dtype)
        ours = [v.copy() for v in walk[0]]
        theirs = [torch.from_numpy(v.copy()) for v in walk[0]]
        for n, values in enumerate(walk[1:], start=1):
            ours_fn(ours, values, n)
            with torch.no_grad():
                torch_fn(theirs, [torch.from_numpy(v) for v in values], n)
        scale = max(float(np.max(np.abs(v))) for values in walk for v in values)
        _assert_within_rounding([ours], [[t.numpy() for t in theirs]], dtype, scale)


@pytest.mark.parametrize("use_buffers", [False, True])
def test_buffers_follow_torchs_use_buffers(use_buffers: bool, dtype: Any, torch: Any) -> None:
    """use_buffers=True averages the buffers with the parameters; False keeps copies of their current values."""
    walk = _trajectory(dtype)
    buffer_walk = _trajectory(dtype, seed=1)
    params = [np.zeros(s, dtype) for s in SHAPES]
    buffers = [np.zeros(s, dtype) for s in SHAPES[:2]]
    averaged = AveragedParams(params, avg_fn=swa.get_swa_avg_fn(), use_buffers=use_buffers, buffers=buffers)
    fused = AveragedParams(params, use_buffers=use_buffers, buffers=buffers)
    model = _torch_model(torch, params, buffers)
    torch_averaged = torch.optim.swa_utils.AveragedModel(model, use_buffers=use_buffers)
    fused_lerp: list[np.ndarray] = []
    for n, (values, buffer_values) in enumerate(zip(walk, buffer_walk, strict=True)):
        for p, v in zip(params + buffers, values + buffer_values[:2], strict=True):
            p[...] = v
        _set_torch(torch, model, values, buffer_values[:2])
        averaged.update()
        fused.update()
        torch_averaged.update_parameters(model)
        fused_lerp = (
            [v.copy() for v in buffer_values[:2]]
            if n == 0
            else [_lerp(a, v, 1 / (n + 1)) for a, v in zip(fused_lerp, buffer_values[:2], strict=True)]
        )
        torch_buffers = [b.numpy() for b in torch_averaged.module.buffers()]
        _assert_bitwise([averaged.averaged_buffers], [torch_buffers])
        _assert_bitwise([averaged.averaged], [[p.detach().numpy() for p in torch_averaged.module.ps]])
        expected = fused_lerp if use_buffers else buffer_values[:2]
        _assert_bitwise([fused.averaged_buffers], [expected])  # averaged in the same fused pass, or copied


# --- AveragedParams: behaviour ----------------------------------------------------------------------------------


def test_first_update_copies_and_n_averaged_counts() -> None:
    w, b = np.full(3, 5.0, np.float32), np.full(2, -1.0)
    averaged = AveragedParams([w, b])
    assert averaged.n_averaged == 0
    np.testing.assert_array_equal(averaged.averaged[0], w)  # copies at construction, like torch's deepcopy
    assert averaged.averaged[0] is not w
    w[...] = 1.0
    b[...] = 3.0
    averaged.update()  # copies, whatever the averages held
    assert averaged.n_averaged == 1
    np.testing.assert_array_equal(averaged.averaged[0], np.ones(3, np.float32), strict=True)
    np.testing.assert_array_equal(averaged.averaged[1], np.full(2, 3.0), strict=True)
    for value, mean in ((2.0, 1.5), (6.0, 3.0), (3.0, 3.0)):
        w[...] = value
        averaged.update()
        np.testing.assert_array_equal(averaged.averaged[0], np.full(3, mean, np.float32))
    assert averaged.n_averaged == 4
    assert type(averaged.n_averaged) is int


def test_custom_functions_are_called_as_torch_calls_them() -> None:
    f32, f64, other32 = np.ones(3, np.float32), np.ones(2), np.ones((2, 2), np.float32)
    calls: list[tuple] = []

    def multi(averages: list, params: list, n: int) -> None:
        calls.append(
            ("multi", [a.dtype for a in averages], [p is q for p, q in zip(params, (f32, other32), strict=False)], n)
        )
        for a, p in zip(averages, params, strict=True):
            a += p

    averaged = AveragedParams([f32, f64, other32], multi_avg_fn=multi)
    averaged.update()
    assert calls == []  # the first update copies
    averaged.update()
    averaged.update()
    # once per dtype, in the order the dtypes first appear; the count of values averaged so far
    assert [c[0:2] for c in calls] == [("multi", [np.float32, np.float32]), ("multi", [np.float64])] * 2
    assert [c[3] for c in calls] == [1, 1, 2, 2]
    assert calls[0][2] == [True, True]  # the parameters themselves
    np.testing.assert_array_equal(averaged.averaged[2], np.full((2, 2), 3, np.float32))

    seen: list[tuple] = []

    def single(average: np.ndarray, param: np.ndarray, n: int) -> np.ndarray:
        seen.append((average.shape, n))
        return average * 0 + n

    averaged = AveragedParams([f32, f64], avg_fn=single)
    for _ in range(3):
        averaged.update()
    assert seen == [((3,), 1), ((2,), 1), ((3,), 2), ((2,), 2)]
    np.testing.assert_array_equal(averaged.averaged[1], np.full(2, 2.0))


def test_named_and_arena_parameters_average_alike() -> None:
    walk = _trajectory(np.float32)
    names = [f"p{i}" for i in range(len(SHAPES))]
    listed = [np.zeros(s, np.float32) for s in SHAPES]
    named = {n: np.zeros(s, np.float32) for n, s in zip(names, SHAPES, strict=True)}
    arena = fusedoptim.ParamArena(dict(zip(names, SHAPES, strict=True)))
    by_list, by_name, by_arena = AveragedParams(listed), AveragedParams(named), AveragedParams(arena)
    for values in walk:
        for i, v in enumerate(values):
            listed[i][...] = v
            named[names[i]][...] = v
            arena.params[names[i]][...] = v
        for averaged in (by_list, by_name, by_arena):
            averaged.update()
    assert list(by_name.averaged) == list(by_arena.averaged) == names
    for i, name in enumerate(names):
        np.testing.assert_array_equal(by_name.averaged[name], by_list.averaged[i], strict=True)
        np.testing.assert_array_equal(by_arena.averaged[name], by_list.averaged[i], strict=True)
    assert set(by_arena.state_dict()["averages"]) == set(names)
    # an arena's state dict loads into separately named arrays and back
    by_name.load_state_dict(by_arena.state_dict())
    by_arena.load_state_dict(by_name.state_dict())


def test_copy_to_writes_the_averages() -> None:
    walk = _trajectory(np.float64, updates=3)
    params = [np.zeros(s) for s in SHAPES]
    averaged = AveragedParams(params)
    for values in walk:
        for p, v in zip(params, values, strict=True):
            p[...] = v
        averaged.update()
    evaluation = [np.zeros(s, np.float64) for s in SHAPES]
    averaged.copy_to(evaluation)
    _assert_bitwise([evaluation], [averaged.averaged])
    float32_copy = [np.zeros(s, np.float32) for s in SHAPES]  # a same-kind cast, as EMA.copy_to
    averaged.copy_to(float32_copy)
    np.testing.assert_array_equal(float32_copy[3], averaged.averaged[3].astype(np.float32))
    averaged.copy_to()  # into the averaged parameters themselves
    _assert_bitwise([params], [averaged.averaged])

    arena = fusedoptim.ParamArena({"w": (2, 3), "b": (3,)})
    arena.params["w"][...] = 2.0
    by_arena = AveragedParams(arena)
    by_arena.update()
    arena.params["w"][...] = 4.0
    by_arena.update()
    other = fusedoptim.ParamArena({"w": (2, 3), "b": (3,)})
    by_arena.copy_to(other)
    np.testing.assert_array_equal(other.params["w"], np.full((2, 3), 3.0, np.float32))
    by_arena.copy_to({"w": np.zeros((2, 3)), "b": np.zeros(3)})


def _train(averaged: AveragedParams, params: list[np.ndarray], walk: list, start: int, stop: int) -> None:
    for values in walk[start:stop]:
        for p, v in zip(params, values, strict=True):
            p[...] = v
        averaged.update()


@pytest.mark.parametrize("kind", ["default", "ema", "buffers"])
def test_state_dict_round_trip_continues_identically(kind: str, tmp_path: Any) -> None:
    def build(params: list[np.ndarray]) -> AveragedParams:
        if kind == "ema":
            return AveragedParams(params, multi_avg_fn=swa.get_ema_multi_avg_fn(0.9))
        if kind == "buffers":
            return AveragedParams(params[:3], use_buffers=True, buffers={"b": params[3], "c": params[4]})
        return AveragedParams(params)

    walk = _trajectory(np.float32)
    params = [np.zeros(s, np.float32) for s in SHAPES]
    straight = build(params)
    _train(straight, params, walk, 0, UPDATES)

    params = [np.zeros(s, np.float32) for s in SHAPES]
    first = build(params)
    _train(first, params, walk, 0, 5)
    saved = first.state_dict()
    snapshot = pickle.dumps(saved)
    _train(first, params, walk, 5, 7)
    assert pickle.dumps(saved) == snapshot  # a state dict holds copies
    fusedoptim.save(tmp_path / "swa.npz", extra={"swa": saved})
    for state in (pickle.loads(snapshot), fusedoptim.load(tmp_path / "swa.npz")["swa"]):
        params = [np.zeros(s, np.float32) for s in SHAPES]
        resumed = build(params)
        resumed.load_state_dict(state)
        assert resumed.n_averaged == 5
        _train(resumed, params, walk, 5, UPDATES)
        assert resumed.n_averaged == straight.n_averaged == UPDATES
        _assert_bitwise([resumed.averaged], [straight.averaged])
        if kind == "buffers":
            _assert_bitwise([list(resumed.averaged_buffers.values())], [list(straight.averaged_buffers.values())])


def test_swa_training_loop() -> None:
    """The README's loop: SGD on a least-squares problem, SWALR from epoch 10, averages of epochs 10..19 equal
    their mean (to rounding), evaluated through copy_to."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5))
    y = x @ rng.standard_normal(5)
    w = np.zeros(5)
    opt = fusedoptim.SGD([w], lr=0.1)
    schedule = lr_scheduler.CosineAnnealingLR(opt, T_max=20)
    swa_schedule = lr_scheduler.SWALR(opt, swa_lr=0.02, anneal_epochs=3)
    averaged = AveragedParams([w])
    seen, rates = [], []
    for epoch in range(20):
        rates.append(opt.param_groups[0]["lr"])
        opt.step([x.T @ (x @ w - y) / len(y) + 0.3 * rng.standard_normal(5)])
        if epoch >= 10:
            averaged.update()
            seen.append(w.copy())
            swa_schedule.step()
        else:
            schedule.step()
    assert rates[-1] == 0.02 and rates[10] > 0.02
    evaluation = np.zeros(5)
    averaged.copy_to([evaluation])
    np.testing.assert_allclose(evaluation, np.mean(seen, axis=0), rtol=1e-14, atol=1e-15)
    assert averaged.n_averaged == 10


# --- AveragedParams: refused inputs, nothing changed -----------------------------------------------------------


BAD_ARRAYS = [
    np.ones(3, np.float16),
    np.arange(3),
    np.ones((3, 3), np.float32).T,
    np.ma.masked_array(np.ones(3), mask=[0, 1, 0]),
    [1.0, 2.0],
    "w",
]


@pytest.mark.parametrize("bad", BAD_ARRAYS, ids=["float16", "int", "transposed", "masked", "list", "str"])
def test_refuses_what_ema_refuses_with_emas_message(bad: Any) -> None:
    with pytest.raises((TypeError, ValueError)) as ema_error:
        fusedoptim.EMA([np.ones(2), bad])
    with pytest.raises(type(ema_error.value)) as ours:
        AveragedParams([np.ones(2), bad])
    assert str(ours.value) == str(ema_error.value)
    assert str(ours.value).startswith("params[1]")
    with pytest.raises(type(ema_error.value)) as named:
        AveragedParams({"w": np.ones(2), "b": bad})
    assert str(named.value) == "params['b']" + str(ema_error.value)[len("params[1]") :]
    with pytest.raises(type(ema_error.value), match=re.escape("buffers[0]")):
        AveragedParams([np.ones(2)], buffers=[bad])


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda p: AveragedParams(p, avg_fn=swa.get_swa_avg_fn(), multi_avg_fn=swa.get_swa_multi_avg_fn()),
            ValueError,
            "Only one of avg_fn and multi_avg_fn should be provided",
        ),
        (lambda p: AveragedParams(p, avg_fn=0.5), TypeError, "avg_fn should be a function, but got float"),
        (lambda p: AveragedParams(p, multi_avg_fn="ema"), TypeError, "multi_avg_fn should be a function, but got str"),
        (lambda p: AveragedParams(p, use_buffers=1), TypeError, "use_buffers must be a bool, got int: 1"),
        (lambda p: AveragedParams([]), ValueError, "AveragedParams got an empty params list"),
        (
            lambda p: AveragedParams(p[0]),
            TypeError,
            "params must be a list of numpy arrays, a dict of named arrays or a ParamArena, got ndarray",
        ),
        (lambda p: AveragedParams({1: p[0]}), TypeError, "params names must be str, got 1"),
        (lambda p: AveragedParams(p, buffers=np.ones(2)), TypeError, "buffers must be a list of numpy arrays"),
        (lambda p: swa.get_ema_multi_avg_fn(1.5), ValueError, "Invalid decay: 1.5"),
        (lambda p: swa.get_ema_avg_fn(-0.1), ValueError, "Invalid decay: -0.1"),
    ],
)
def test_refuses_bad_arguments(make: Callable, error: type, message: str) -> None:
    params = [np.ones(3, np.float32), np.ones(2)]
    with pytest.raises(error, match=re.escape(message)):
        make(params)
    assert np.all(params[0] == 1) and np.all(params[1] == 1)


def _trained() -> tuple[AveragedParams, list[np.ndarray], dict[str, Any]]:
    params = [np.zeros(s, np.float32) for s in SHAPES[:3]] + [np.zeros(4)]
    averaged = AveragedParams(params)
    for t in range(3):
        for p in params:
            p[...] = t + 1
        averaged.update()
    for p in params:
        p[...] = 10
    return averaged, params, averaged.state_dict()


def _unchanged(averaged: AveragedParams, before: dict[str, Any]) -> None:
    assert averaged.n_averaged == before["n_averaged"]
    _assert_bitwise([averaged.averaged], [before["averages"]])


def test_update_refuses_changed_arrays_and_bad_results_changing_nothing() -> None:
    averaged, params, before = _trained()
    params[1].shape = (5, 4)  # NumPy allows reshaping an array in place
    with pytest.raises(ValueError, match=re.escape("params[1] is now float32[5, 4] but its average is float32[4, 5]")):
        averaged.update()
    _unchanged(averaged, before)
    params[1].shape = (4, 5)
    params[3].dtype = np.int64  # ... and reinterpreting its bytes
    with pytest.raises(ValueError, match=re.escape("params[3] is now int64[4]")):
        averaged.update()
    _unchanged(averaged, before)
    params[3].dtype = np.float64

    for result, error, message in (
        (lambda a, p, n: a[:1], ValueError, "avg_fn returned an array of shape (1,)"),
        (lambda a, p, n: a + 1j, TypeError, "avg_fn returned an array of dtype complex"),
    ):
        # the last array's result is the bad one: the others' must not be written either
        def avg_fn(a: np.ndarray, p: np.ndarray, n: int, result: Callable = result) -> np.ndarray:
            return result(a, p, n) if a.shape == (4,) else p

        custom = AveragedParams(params, avg_fn=avg_fn)
        custom.load_state_dict(before)
        with pytest.raises(error, match=re.escape(message)):
            custom.update()
        _unchanged(custom, before)

    for fn in (swa.get_swa_multi_avg_fn(), swa.get_ema_multi_avg_fn(0.5)):  # the kernel checks before it writes
        averages = [a.copy() for a in before["averages"]]
        with pytest.raises(ValueError, match="shape"):
            fn(averages, [p.reshape(-1) for p in params], 3)
        _assert_bitwise([averages], [before["averages"]])
    with pytest.raises(ValueError, match=re.escape("Invalid num_averaged: -1")):
        swa.get_swa_multi_avg_fn()([a.copy() for a in before["averages"]], params, -1)
    with pytest.raises(TypeError, match="num_averaged must be an int"):
        swa.get_swa_avg_fn()(params[0], params[0], 1.5)


def _copy_targets() -> list[np.ndarray]:
    return [np.full(s, 7, np.float32) for s in SHAPES[:3]] + [np.full(4, 7.0)]


@pytest.mark.parametrize(
    ("targets", "error", "message"),
    [
        (lambda t: t[:3], ValueError, "Expected 4 params (one per average), got 3"),
        (lambda t: [*t[:3], np.zeros(5)], ValueError, "params[3] must be a writeable numpy.ndarray of shape (4,)"),
        (lambda t: [*t[:3], np.zeros(4, np.int64)], TypeError, "params[3] has dtype int64; the average is float64"),
        (lambda t: [*t[:3], np.zeros(4)[None]], ValueError, "params[3] must be a writeable numpy.ndarray"),
        (lambda t: [*t[:3], _read_only(np.zeros(4))], ValueError, "params[3] must be a writeable numpy.ndarray"),
        (lambda t: [*t[:3], [0.0] * 4], ValueError, "params[3] must be a writeable numpy.ndarray"),
        (lambda t: dict(enumerate(t)), ValueError, "params must be a list of 4 arrays"),
    ],
)
def test_copy_to_checks_every_target_before_writing(targets: Callable, error: type, message: str) -> None:
    averaged, _, before = _trained()
    originals = _copy_targets()
    with pytest.raises(error, match=re.escape(message)):
        averaged.copy_to(targets(originals))
    assert all(np.all(t == 7) for t in originals), "nothing written"
    _unchanged(averaged, before)
    with pytest.raises(ValueError, match="has no buffers"):
        averaged.copy_to(buffers=[np.zeros(3)])


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def test_named_copy_to_and_load_check_names() -> None:
    named = {"w": np.ones(3, np.float32), "b": np.ones(2)}
    averaged = AveragedParams(named)
    averaged.update()
    target = {"w": np.zeros(3, np.float32)}
    with pytest.raises(ValueError, match=re.escape("params do not match the averaged params: missing ['b']")):
        averaged.copy_to(target)
    assert np.all(target["w"] == 0)
    with pytest.raises(ValueError, match="must be a dict of arrays named"):
        averaged.copy_to([np.zeros(3, np.float32), np.zeros(2)])
    state = averaged.state_dict()
    state["averages"] = {"w": np.full(3, 5, np.float32), "c": np.zeros(2)}
    with pytest.raises(ValueError, match=re.escape("missing ['b'], unexpected ['c']")):
        averaged.load_state_dict(state)
    assert np.all(averaged.averaged["w"] == 1)


def _bad_state(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def make(state: dict[str, Any]) -> dict[str, Any]:
        state = {**state, "averages": [np.full_like(a, 5) for a in state["averages"]], "n_averaged": 9}
        change(state)  # on top of good changes to every entry: none of them may be applied
        return state

    return make


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda s: [s], TypeError, "state_dict must be a mapping, got list"),
        (_bad_state(lambda s: s.pop("n_averaged")), ValueError, "missing ['n_averaged']"),
        (_bad_state(lambda s: s.update(decay=0.9)), ValueError, "unexpected ['decay']"),
        (_bad_state(lambda s: s.update(n_averaged=-1)), ValueError, "Invalid state_dict['n_averaged']: -1"),
        (_bad_state(lambda s: s.update(n_averaged=True)), ValueError, "Invalid state_dict['n_averaged']: True"),
        (_bad_state(lambda s: s.update(n_averaged=2.0)), ValueError, "Invalid state_dict['n_averaged']: 2.0"),
        (_bad_state(lambda s: s.update(n_averaged="3")), ValueError, "Invalid state_dict['n_averaged']: '3'"),
        (_bad_state(lambda s: s["averages"].pop()), ValueError, "Expected 4 state_dict['averages']"),
        (_bad_state(lambda s: s.update(averages=tuple(s["averages"])[:1])), ValueError, "Expected 4"),
        (
            _bad_state(lambda s: s["averages"].__setitem__(3, np.zeros(5))),
            ValueError,
            "Invalid state_dict['averages'][3]: expected a float64 array of shape (4,), got float64 array of shape (5,)",
        ),
        (
            _bad_state(lambda s: s["averages"].__setitem__(3, np.zeros(4, np.float32))),
            ValueError,
            "Invalid state_dict['averages'][3]: expected a float64 array of shape (4,), got float32 array",
        ),
        (
            _bad_state(lambda s: s["averages"].__setitem__(0, np.zeros(17))),
            ValueError,
            "expected a float32 array of shape (17,), got float64 array",
        ),
        (_bad_state(lambda s: s["averages"].__setitem__(3, [0.0] * 4)), ValueError, "got list"),
        (
            _bad_state(lambda s: s["averages"].__setitem__(3, np.ma.masked_array(np.zeros(4)))),
            ValueError,
            "Invalid state_dict['averages'][3]",
        ),
        (
            _bad_state(lambda s: s.update(averages={"0": s["averages"][0]})),
            ValueError,
            "state_dict['averages'] must be a list of 4 arrays",
        ),
    ],
)
def test_load_state_dict_checks_everything_first(make: Callable, error: type, message: str) -> None:
    averaged, _, before = _trained()
    with pytest.raises(error, match=re.escape(message)):
        averaged.load_state_dict(make(averaged.state_dict()))
    _unchanged(averaged, before)


def test_load_state_dict_with_buffers_checks_them_too() -> None:
    averaged = AveragedParams([np.ones(3)], buffers=[np.ones(2, np.float32)])
    averaged.update()
    state = averaged.state_dict()
    assert set(state) == {"n_averaged", "averages", "buffers"}
    bad = {**state, "n_averaged": 4, "averages": [np.zeros(3)], "buffers": [np.zeros(2)]}
    with pytest.raises(ValueError, match=re.escape("Invalid state_dict['buffers'][0]: expected a float32 array")):
        averaged.load_state_dict(bad)
    assert averaged.n_averaged == 1 and np.all(averaged.averaged[0] == 1)
    with pytest.raises(ValueError, match=re.escape("missing ['buffers']")):
        averaged.load_state_dict({"n_averaged": 1, "averages": [np.zeros(3)]})
