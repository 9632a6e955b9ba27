"""Learning-rate schedulers against torch.optim.lr_scheduler 2.13 itself: every scheduler, several argument sets,
two parameter groups with different rates, compositions, metric-driven and per-batch schedules. The rates (and the
momentum or beta1 they cycle, and the keys they write into the groups) must equal torch's exactly at every step;
so must the state dicts. The tests without torch check state_dict round trips, argument errors and types."""

from __future__ import annotations

import math
import pickle
import types
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import fusedoptim
from fusedoptim import lr_scheduler

LRS = (0.1, 0.03)  # the two parameter groups' rates
SHAPES = ((3,), (2,))

# A metric that improves, stalls, wobbles and improves again: enough plateaus for several reductions in every mode.
METRICS = [
    1.0,
    0.8,
    0.7,
    0.7,
    0.7,
    0.69995,
    0.7,
    0.71,
    0.6,
    0.6,
    0.6,
    0.6,
    0.6,
    0.5,
    0.55,
    0.5,
    0.5,
    0.5,
    0.5,
    0.49,
    0.49,
    0.49,
    0.49,
    0.49,
    0.4,
    0.45,
    0.45,
    0.45,
    0.45,
    0.45,
    0.45,
    0.45,
    0.3,
    0.3,
    0.3,
    0.3,
    0.3,
    0.3,
    0.3,
    0.3,
]
# Fractional epochs for CosineAnnealingWarmRestarts.step(epoch): per batch (3 per epoch), across several restarts.
BATCH_EPOCHS = [i / 3 for i in range(60)]
# Explicit epochs for step(epoch), jumping forwards, repeating and going back.
JUMPS = [1, 2, 2, 5, 6, 3, 9, 10, 14, 15, 20, 21, 7, 8, 25, 30]


@dataclass(frozen=True)
class Case:
    """A scheduler built the same way from our module and from torch's, and how to step it."""

    build: Callable[[Any, Any], Any]  # (scheduler module, optimizer) -> scheduler
    optimizer: str = "sgd"  # "sgd" (momentum 0.9), "adam" or "adagrad"
    steps: int = 40
    args: Callable[[int], tuple] = field(default=lambda t: ())  # the arguments of the t-th step() call


def _metric(t: int) -> tuple:
    return (METRICS[t],)


def _negated_metric(t: int) -> tuple:
    return (-METRICS[t],)


class Halving:
    """A callable object (its attributes are saved in state dicts, unlike a lambda's)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def __call__(self, x: float) -> float:
        return self.rate**x


CASES: dict[str, Case] = {
    "LambdaLR": Case(lambda m, o: m.LambdaLR(o, lambda e: 0.95**e)),
    "LambdaLR-per-group": Case(lambda m, o: m.LambdaLR(o, [lambda e: 1 / (1 + e), Halving(0.9)])),
    "MultiplicativeLR": Case(lambda m, o: m.MultiplicativeLR(o, lambda e: 0.97)),
    "MultiplicativeLR-per-group": Case(
        lambda m, o: m.MultiplicativeLR(o, [lambda e: 0.9 + 0.01 * (e % 3), lambda e: 1.02 if e < 5 else 0.9])
    ),
    "StepLR": Case(lambda m, o: m.StepLR(o, step_size=3, gamma=0.5)),
    "StepLR-default-gamma": Case(lambda m, o: m.StepLR(o, step_size=7)),
    "MultiStepLR": Case(lambda m, o: m.MultiStepLR(o, milestones=[3, 7, 7, 12], gamma=0.3)),
    "ConstantLR-defaults": Case(lambda m, o: m.ConstantLR(o)),
    "ConstantLR": Case(lambda m, o: m.ConstantLR(o, factor=0.45, total_iters=4)),  # x*(1/f) != x/f here
    "LinearLR-defaults": Case(lambda m, o: m.LinearLR(o)),
    "LinearLR-warmup": Case(lambda m, o: m.LinearLR(o, start_factor=0.25, end_factor=0.8, total_iters=10)),
    "LinearLR-decay": Case(lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=7)),
    "ExponentialLR": Case(lambda m, o: m.ExponentialLR(o, gamma=0.9)),
    "PolynomialLR-defaults": Case(lambda m, o: m.PolynomialLR(o)),
    "PolynomialLR-square": Case(lambda m, o: m.PolynomialLR(o, total_iters=20, power=2.0)),
    "PolynomialLR-sqrt": Case(lambda m, o: m.PolynomialLR(o, total_iters=13, power=0.5)),
    # Past T_max the cosine continues; at t = T_max + 1 (mod 2 T_max) torch's special branch applies.
    "CosineAnnealingLR": Case(lambda m, o: m.CosineAnnealingLR(o, T_max=10), steps=45),
    "CosineAnnealingLR-eta_min": Case(lambda m, o: m.CosineAnnealingLR(o, T_max=7, eta_min=0.001), steps=45),
    "SequentialLR-warmup-cosine": Case(
        lambda m, o: m.SequentialLR(
            o, [m.LinearLR(o, start_factor=0.1, total_iters=5), m.CosineAnnealingLR(o, T_max=20)], milestones=[5]
        )
    ),
    "SequentialLR-three": Case(
        lambda m, o: m.SequentialLR(
            o,
            [m.ConstantLR(o, factor=0.5, total_iters=3), m.ExponentialLR(o, gamma=0.9), m.StepLR(o, 4, gamma=0.5)],
            milestones=[4, 10],
        )
    ),
    "SequentialLR-lambdas": Case(
        lambda m, o: m.SequentialLR(
            o, [m.MultiplicativeLR(o, lambda e: 0.9), m.LambdaLR(o, lambda e: 0.5 ** (e / 4))], milestones=[6]
        )
    ),
    "SequentialLR-polynomial-multistep": Case(
        lambda m, o: m.SequentialLR(
            o, [m.PolynomialLR(o, total_iters=8, power=2.0), m.MultiStepLR(o, [2, 5], gamma=0.5)], milestones=[8]
        )
    ),
    "ChainedScheduler": Case(
        lambda m, o: m.ChainedScheduler([m.ConstantLR(o, factor=0.1, total_iters=3), m.ExponentialLR(o, gamma=0.9)])
    ),
    "ChainedScheduler-three-with-optimizer": Case(
        lambda m, o: m.ChainedScheduler(
            [m.LinearLR(o, start_factor=0.5, total_iters=6), m.StepLR(o, 5, gamma=0.7), m.CosineAnnealingLR(o, 30)],
            optimizer=o,
        )
    ),
    "ChainedScheduler-of-SequentialLR": Case(
        lambda m, o: m.ChainedScheduler(
            [
                m.SequentialLR(o, [m.LinearLR(o, start_factor=0.2, total_iters=4), m.ExponentialLR(o, 0.95)], [4]),
                m.MultiStepLR(o, [10, 20], gamma=0.5),
            ]
        )
    ),
    "ReduceLROnPlateau-defaults": Case(lambda m, o: m.ReduceLROnPlateau(o, patience=2), args=_metric),
    "ReduceLROnPlateau-min-abs-cooldown": Case(
        lambda m, o: m.ReduceLROnPlateau(o, factor=0.5, patience=1, threshold=0.01, threshold_mode="abs", cooldown=2),
        args=_metric,
    ),
    "ReduceLROnPlateau-max-rel-min_lr": Case(
        lambda m, o: m.ReduceLROnPlateau(o, mode="max", factor=0.3, patience=0, min_lr=0.005), args=_negated_metric
    ),
    "ReduceLROnPlateau-max-abs-min_lr-list": Case(
        lambda m, o: m.ReduceLROnPlateau(
            o,
            mode="max",
            factor=0.5,
            patience=1,
            threshold=0.02,
            threshold_mode="abs",
            cooldown=1,
            min_lr=[0.01, 0.004],
            eps=1e-3,
        ),
        args=_negated_metric,
    ),
    "CyclicLR-triangular": Case(lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4), steps=50),
    "CyclicLR-triangular2-per-group": Case(
        lambda m, o: m.CyclicLR(
            o,
            base_lr=[0.01, 0.002],
            max_lr=[0.1, 0.05],
            step_size_up=3,
            step_size_down=5,
            mode="triangular2",
            base_momentum=[0.8, 0.7],
            max_momentum=[0.9, 0.95],
        ),
        steps=50,
    ),
    "CyclicLR-exp_range-adam": Case(
        lambda m, o: m.CyclicLR(o, base_lr=0.001, max_lr=0.01, step_size_up=5, mode="exp_range", gamma=0.97),
        optimizer="adam",
        steps=50,
    ),
    # A second scheduler: the groups already hold initial_lr, which torch's construction-time step uses.
    "CyclicLR-after-ExponentialLR": Case(
        lambda m, o: (m.ExponentialLR(o, gamma=0.5), m.CyclicLR(o, 0.01, 0.05, step_size_up=3))[1], steps=30
    ),
    "CyclicLR-scale_fn-cycle": Case(
        lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=2, step_size_down=4, scale_fn=lambda x: 1 / x), steps=50
    ),
    "CyclicLR-scale_fn-iterations": Case(
        lambda m, o: m.CyclicLR(
            o, 0.01, 0.1, step_size_up=4, scale_fn=Halving(0.98), scale_mode="iterations", cycle_momentum=False
        ),
        optimizer="adagrad",
        steps=50,
    ),
    "CosineAnnealingWarmRestarts": Case(lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=5), steps=50),
    "CosineAnnealingWarmRestarts-T_mult": Case(
        lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.01), steps=50
    ),
    "CosineAnnealingWarmRestarts-fractional": Case(
        lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=4), steps=60, args=lambda t: (BATCH_EPOCHS[t],)
    ),
    "CosineAnnealingWarmRestarts-T_mult-fractional": Case(
        lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=3, eta_min=0.001),
        steps=60,
        args=lambda t: (BATCH_EPOCHS[t],),
    ),
    "CosineAnnealingWarmRestarts-interleaved": Case(
        lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2),
        steps=40,
        args=lambda t: () if t % 4 else (t / 2 + 0.25,),
    ),
    "OneCycleLR-cos": Case(lambda m, o: m.OneCycleLR(o, max_lr=0.1, total_steps=40)),
    "OneCycleLR-linear-adam": Case(
        lambda m, o: m.OneCycleLR(o, max_lr=[0.1, 0.05], total_steps=40, anneal_strategy="linear"), optimizer="adam"
    ),
    "OneCycleLR-three_phase": Case(
        lambda m, o: m.OneCycleLR(
            o,
            max_lr=0.2,
            epochs=8,
            steps_per_epoch=5,
            pct_start=0.25,
            three_phase=True,
            div_factor=10.0,
            final_div_factor=100.0,
            base_momentum=[0.8, 0.85],
            max_momentum=0.9,
        )
    ),
    "OneCycleLR-three_phase-linear-adam": Case(
        lambda m, o: m.OneCycleLR(o, max_lr=0.05, total_steps=40, anneal_strategy="linear", three_phase=True),
        optimizer="adam",
    ),
    "OneCycleLR-no-momentum": Case(
        lambda m, o: m.OneCycleLR(o, max_lr=0.1, total_steps=40, cycle_momentum=False), optimizer="adagrad"
    ),
}

# step(epoch): torch's deprecated explicit-epoch form, closed forms where a scheduler has one.
for _name, _build in {
    "StepLR": lambda m, o: m.StepLR(o, step_size=3, gamma=0.5),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[3, 7, 7, 12], gamma=0.3),
    "ConstantLR": lambda m, o: m.ConstantLR(o, factor=0.3, total_iters=4),
    "LinearLR": lambda m, o: m.LinearLR(o, start_factor=0.25, end_factor=0.8, total_iters=10),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.9),
    "PolynomialLR": lambda m, o: m.PolynomialLR(o, total_iters=20, power=2.0),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
    "LambdaLR": lambda m, o: m.LambdaLR(o, lambda e: 0.95**e),
}.items():
    CASES[f"{_name}-step(epoch)"] = Case(_build, steps=len(JUMPS), args=lambda t: (JUMPS[t],))

# Schedulers built with last_epoch >= 0 on an optimizer a first scheduler has run on (torch's resume semantics).
RESUMABLE: dict[str, Callable[[Any, Any, int], Any]] = {
    "LambdaLR": lambda m, o, e: m.LambdaLR(o, lambda t: 0.9**t, last_epoch=e),
    "MultiplicativeLR": lambda m, o, e: m.MultiplicativeLR(o, lambda t: 0.9, last_epoch=e),
    "StepLR": lambda m, o, e: m.StepLR(o, 3, gamma=0.5, last_epoch=e),
    "MultiStepLR": lambda m, o, e: m.MultiStepLR(o, [2, 6, 9], gamma=0.5, last_epoch=e),
    "ConstantLR": lambda m, o, e: m.ConstantLR(o, factor=0.5, total_iters=8, last_epoch=e),
    "LinearLR": lambda m, o, e: m.LinearLR(o, start_factor=0.2, total_iters=10, last_epoch=e),
    "ExponentialLR": lambda m, o, e: m.ExponentialLR(o, gamma=0.9, last_epoch=e),
    "PolynomialLR": lambda m, o, e: m.PolynomialLR(o, total_iters=12, power=2.0, last_epoch=e),
    "CosineAnnealingLR": lambda m, o, e: m.CosineAnnealingLR(o, T_max=8, last_epoch=e),
    "CyclicLR": lambda m, o, e: m.CyclicLR(o, 0.01, 0.1, step_size_up=3, mode="triangular2", last_epoch=e),
    "CosineAnnealingWarmRestarts": lambda m, o, e: m.CosineAnnealingWarmRestarts(o, T_0=4, T_mult=2, last_epoch=e),
    "OneCycleLR": lambda m, o, e: m.OneCycleLR(o, max_lr=0.1, total_steps=30, last_epoch=e),
}

# Everything a schedule may write into a parameter group.
SCHEDULED_KEYS = ("lr", "initial_lr", "max_lr", "min_lr", "momentum", "betas", "max_momentum", "base_momentum")


def _our_optimizer(kind: str) -> fusedoptim.Optimizer:
    groups = [{"params": [np.zeros(s)], "lr": lr} for s, lr in zip(SHAPES, LRS, strict=True)]
    if kind == "sgd":
        return fusedoptim.SGD(groups, lr=0.5, momentum=0.9)
    if kind == "adam":
        return fusedoptim.Adam(groups, lr=0.5)
    return fusedoptim.Adagrad(groups, lr=0.5)


def _torch_optimizer(torch: Any, kind: str) -> Any:
    groups = [{"params": [torch.zeros(s, dtype=torch.float64)], "lr": lr} for s, lr in zip(SHAPES, LRS, strict=True)]
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=0.5, momentum=0.9)
    if kind == "adam":
        return torch.optim.Adam(groups, lr=0.5)
    return torch.optim.Adagrad(groups, lr=0.5)


def _snapshot(scheduler: Any, optimizer: Any) -> dict[str, Any]:
    groups = [
        {key: (tuple(group[key]) if key == "betas" else group[key]) for key in SCHEDULED_KEYS if key in group}
        for group in optimizer.param_groups
    ]
    return {"last_lr": list(scheduler.get_last_lr()), "groups": groups}


def _run(case: Case, module: Any, optimizer: Any) -> tuple[Any, list[dict[str, Any]]]:
    scheduler = case.build(module, optimizer)
    snapshots = [_snapshot(scheduler, optimizer)]
    for t in range(case.steps):
        scheduler.step(*case.args(t))
        snapshots.append(_snapshot(scheduler, optimizer))
    return scheduler, snapshots


@contextmanager
def _torch_warnings_silenced() -> Iterator[None]:
    """torch warns that scheduler.step() precedes optimizer.step() and that step(epoch) is deprecated; ours must not
    warn at all (the suite turns warnings into errors), so only the calls into torch are silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _run_torch(torch: Any, case: Case) -> tuple[Any, list[dict[str, Any]]]:
    with _torch_warnings_silenced():
        return _run(case, torch.optim.lr_scheduler, _torch_optimizer(torch, case.optimizer))


def _assert_same_sequence(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> None:
    assert len(ours) == len(theirs)
    for t, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a == b, f"after step {t}: ours {a} != torch {b}"


def _comparable(state: dict[str, Any]) -> dict[str, Any]:
    """A torch scheduler state dict without torch's call-time flags (which are always False between calls)."""
    state = {k: v for k, v in state.items() if k not in ("_get_lr_called_within_step", "_is_initial")}
    if "_schedulers" in state:
        state["_schedulers"] = [_comparable(s) for s in state["_schedulers"]]
    return state


@pytest.fixture(scope="module")
def torch() -> Any:
    return pytest.importorskip("torch")


# --- against torch ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_matches_torch(name: str, torch: Any) -> None:
    case = CASES[name]
    scheduler, ours = _run(case, lr_scheduler, _our_optimizer(case.optimizer))
    torch_scheduler, theirs = _run_torch(torch, case)
    _assert_same_sequence(ours, theirs)
    assert len({tuple(s["last_lr"]) for s in ours}) >= 2, "the schedule should change the rates"
    assert _comparable(scheduler.state_dict()) == _comparable(torch_scheduler.state_dict())


@pytest.mark.parametrize("name", list(RESUMABLE))
@pytest.mark.parametrize("resume_at", [4, 5])
def test_resume_with_last_epoch_matches_torch(name: str, resume_at: int, torch: Any) -> None:
    build = RESUMABLE[name]

    def run(module: Any, optimizer: Any) -> list[dict[str, Any]]:
        first = build(module, optimizer, -1)
        for _ in range(resume_at):
            first.step()
        # A new scheduler on the same optimizer (its groups hold initial_lr), continuing from epoch resume_at.
        scheduler = build(module, optimizer, resume_at)
        snapshots = [_snapshot(scheduler, optimizer)]
        for _ in range(20):
            scheduler.step()
            snapshots.append(_snapshot(scheduler, optimizer))
        return snapshots

    ours = run(lr_scheduler, _our_optimizer("sgd"))
    with _torch_warnings_silenced():
        theirs = run(torch.optim.lr_scheduler, _torch_optimizer(torch, "sgd"))
    _assert_same_sequence(ours, theirs)


@pytest.mark.parametrize("name", ["StepLR", "OneCycleLR-three_phase", "CyclicLR-triangular2-per-group"])
def test_loads_a_torch_state_dict(name: str, torch: Any) -> None:
    """A torch scheduler's state dict (with the optimizer's scheduled keys) continues the same schedule here."""
    case = CASES[name]
    with _torch_warnings_silenced():
        torch_optimizer = _torch_optimizer(torch, case.optimizer)
        torch_scheduler = case.build(torch.optim.lr_scheduler, torch_optimizer)
        for t in range(15):
            torch_scheduler.step(*case.args(t))
    optimizer = _our_optimizer(case.optimizer)
    scheduler = case.build(lr_scheduler, optimizer)
    for group, torch_group in zip(optimizer.param_groups, torch_optimizer.param_groups, strict=True):
        group.update({key: torch_group[key] for key in SCHEDULED_KEYS if key in torch_group})
    scheduler.load_state_dict(torch_scheduler.state_dict())
    with _torch_warnings_silenced():
        for t in range(15, 30):
            torch_scheduler.step(*case.args(t))
    for t in range(15, 30):
        scheduler.step(*case.args(t))
    assert _snapshot(scheduler, optimizer) == _snapshot(torch_scheduler, torch_optimizer)


# --- without torch ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_state_dict_round_trip_resumes(name: str) -> None:
    """Saving the optimizer and scheduler mid-run (through pickle) and loading both into fresh ones built the same
    way continues exactly the uninterrupted schedule."""
    case = CASES[name]
    _, expected = _run(case, lr_scheduler, _our_optimizer(case.optimizer))

    optimizer = _our_optimizer(case.optimizer)
    scheduler = case.build(lr_scheduler, optimizer)
    half = case.steps // 2
    for t in range(half):
        scheduler.step(*case.args(t))
    saved = pickle.loads(pickle.dumps((optimizer.state_dict(), scheduler.state_dict())))

    optimizer = _our_optimizer(case.optimizer)
    scheduler = case.build(lr_scheduler, optimizer)  # construct first: it writes the groups' rates
    optimizer.load_state_dict(saved[0])
    scheduler.load_state_dict(saved[1])
    assert _snapshot(scheduler, optimizer) == expected[half]
    for t in range(half, case.steps):
        scheduler.step(*case.args(t))
        assert _snapshot(scheduler, optimizer) == expected[t + 1], f"after step {t + 1}"


def test_state_dict_is_a_snapshot() -> None:
    optimizer = _our_optimizer("sgd")
    scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, patience=0, min_lr=[0.0, 0.01])
    saved = scheduler.state_dict()
    before = pickle.dumps(saved)
    for t in range(10):
        scheduler.step(METRICS[t])
    assert pickle.dumps(saved) == before
    assert "optimizer" not in saved


def test_callables_are_not_saved_but_callable_objects_are() -> None:
    optimizer = _our_optimizer("sgd")
    scheduler = lr_scheduler.LambdaLR(optimizer, [lambda e: 0.5, Halving(0.9)])
    saved = scheduler.state_dict()
    assert saved["lr_lambdas"] == [None, {"rate": 0.9}]

    other = lr_scheduler.LambdaLR(_our_optimizer("sgd"), [lambda e: 1.0, Halving(0.5)])
    keep = other.lr_lambdas[0]
    other.load_state_dict(saved)
    assert other.lr_lambdas[0] is keep  # a function is never replaced by a state dict
    assert other.lr_lambdas[1].rate == 0.9
    assert saved["lr_lambdas"] == [None, {"rate": 0.9}]  # loading does not consume the state dict

    cyclic = lr_scheduler.CyclicLR(_our_optimizer("sgd"), 0.01, 0.1, scale_fn=lambda x: 1.0)
    assert cyclic.state_dict()["_scale_fn_custom"] is None
    cyclic = lr_scheduler.CyclicLR(_our_optimizer("sgd"), 0.01, 0.1, scale_fn=Halving(0.7), scale_mode="iterations")
    saved = cyclic.state_dict()
    assert saved["_scale_fn_custom"] == {"rate": 0.7}
    fresh = lr_scheduler.CyclicLR(_our_optimizer("sgd"), 0.01, 0.1, scale_fn=Halving(0.2), scale_mode="iterations")
    fresh.load_state_dict(saved)
    assert fresh._scale_fn_custom.rate == 0.7
    pickle.dumps(saved)


@pytest.mark.parametrize("name", list(CASES))
def test_get_last_lr_is_a_new_list_of_floats(name: str) -> None:
    case = CASES[name]
    optimizer = _our_optimizer(case.optimizer)
    scheduler = case.build(lr_scheduler, optimizer)
    for t in range(5):
        last = scheduler.get_last_lr()
        assert isinstance(last, list) and len(last) == len(optimizer.param_groups)
        assert all(type(lr) is float for lr in last)
        assert last == [group["lr"] for group in optimizer.param_groups]
        last[0] = -1.0  # the caller's copy: the scheduler's record is untouched
        assert scheduler.get_last_lr()[0] != -1.0
        scheduler.step(*case.args(t))


@pytest.mark.parametrize(
    "make",
    [
        lambda o: lr_scheduler.StepLR(o, step_size=2),
        lambda o: lr_scheduler.ReduceLROnPlateau(o),
        lambda o: lr_scheduler.ChainedScheduler([lr_scheduler.ConstantLR(o, factor=1.0)]),
    ],
    ids=["StepLR", "ReduceLROnPlateau", "ChainedScheduler"],
)
def test_integer_learning_rate_reads_back_as_float(make: Callable[[Any], Any]) -> None:
    optimizer = fusedoptim.SGD([np.zeros(2)], lr=1)
    scheduler = make(optimizer)
    assert scheduler.get_last_lr() == [1.0] and type(scheduler.get_last_lr()[0]) is float


def test_initial_lr_and_resume_keys() -> None:
    optimizer = _our_optimizer("sgd")
    lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
    assert [group["initial_lr"] for group in optimizer.param_groups] == list(LRS)
    # A second scheduler keeps the first one's initial_lr (setdefault), as in torch.
    optimizer.param_groups[0]["lr"] = 7.0
    scheduler = lr_scheduler.StepLR(optimizer, step_size=2)
    assert scheduler.base_lrs == list(LRS)
    # Resuming needs initial_lr in every group.
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(_our_optimizer("sgd"), step_size=2, last_epoch=3)


def test_schedule_drives_the_optimizer() -> None:
    """The optimizer steps with the scheduled rates and accepts the keys schedulers add to its groups."""
    w = np.zeros(4)
    optimizer = fusedoptim.SGD([w], lr=0.1)
    scheduler = lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    used = []
    for _ in range(6):
        used.append(scheduler.get_last_lr()[0])
        optimizer.step([np.ones(4)])
        scheduler.step()
    assert used == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    np.testing.assert_allclose(w, -sum(used), rtol=1e-15)

    p = np.ones(3)
    adam = fusedoptim.Adam([p], lr=1e-3)
    one_cycle = lr_scheduler.OneCycleLR(adam, max_lr=0.01, total_steps=10)
    for _ in range(10):
        adam.step([np.full(3, 0.5)])
        one_cycle.step()
    restored = fusedoptim.Adam([np.ones(3)], lr=1e-3)
    restored.load_state_dict(adam.state_dict())
    assert restored.param_groups[0]["betas"] == adam.param_groups[0]["betas"]
    assert restored.param_groups[0]["max_lr"] == 0.01


def test_works_on_any_object_with_param_groups() -> None:
    optimizer = types.SimpleNamespace(param_groups=[{"lr": 0.1, "momentum": 0.5}, {"lr": 0.2, "momentum": 0.5}])
    scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=4)
    for _ in range(4):
        scheduler.step()
    assert scheduler.get_last_lr() == pytest.approx([0.0, 0.0], abs=1e-17)
    cyclic = lr_scheduler.CyclicLR(optimizer, 0.01, 0.1, step_size_up=2)
    cyclic.step()
    assert optimizer.param_groups[0]["momentum"] == pytest.approx(0.85)


def test_one_cycle_past_total_steps_raises() -> None:
    scheduler = lr_scheduler.OneCycleLR(_our_optimizer("sgd"), max_lr=0.1, total_steps=5)
    for _ in range(5):
        scheduler.step()
    with pytest.raises(ValueError, match="Tried to step 6 times. The specified number of total steps is 5"):
        scheduler.step()


def test_failed_construction_leaves_the_groups_alone() -> None:
    optimizer = _our_optimizer("adagrad")
    before = [dict(group) for group in optimizer.param_groups]
    with pytest.raises(ValueError, match="cycle_momentum"):
        lr_scheduler.CyclicLR(optimizer, base_lr=0.5, max_lr=1.0)
    with pytest.raises(ValueError, match="cycle_momentum"):
        lr_scheduler.OneCycleLR(optimizer, max_lr=1.0, total_steps=10)
    with pytest.raises(ValueError, match="Invalid step_size_up: 0"):
        lr_scheduler.CyclicLR(optimizer, base_lr=0.5, max_lr=1.0, step_size_up=0, cycle_momentum=False)
    assert optimizer.param_groups == before


def _sgd() -> fusedoptim.Optimizer:
    return _our_optimizer("sgd")


def _other_sgd_scheduler() -> lr_scheduler.LRScheduler:
    return lr_scheduler.StepLR(_sgd(), 2)


BAD_ARGUMENTS = [
    (lambda: lr_scheduler.StepLR(object(), 2), TypeError, "object is not an Optimizer"),
    (lambda: lr_scheduler.StepLR([np.zeros(2)], 2), TypeError, "list is not an Optimizer"),
    (lambda: lr_scheduler.ExponentialLR(types.SimpleNamespace(param_groups=[{}]), 0.5), TypeError, "not an Optimizer"),
    (lambda: lr_scheduler.ReduceLROnPlateau(None), TypeError, "NoneType is not an Optimizer"),
    (lambda: lr_scheduler.OneCycleLR("sgd", max_lr=0.1, total_steps=3), TypeError, "str is not an Optimizer"),
    (lambda: lr_scheduler.StepLR(_sgd(), 2, gamma=-1), ValueError, r"Invalid gamma: -1"),
    (lambda: lr_scheduler.StepLR(_sgd(), 0), ValueError, r"Invalid step_size: 0"),
    (lambda: lr_scheduler.StepLR(_sgd(), 2, last_epoch=-2), ValueError, r"Invalid last_epoch: -2"),
    (lambda: lr_scheduler.ExponentialLR(_sgd(), gamma=math.nan), ValueError, r"Invalid gamma: nan"),
    (lambda: lr_scheduler.ExponentialLR(_sgd(), gamma="0.9"), TypeError, r"gamma must be a real number"),
    (lambda: lr_scheduler.MultiStepLR(_sgd(), [2, 4.5]), TypeError, r"milestones\[1\] must be an int"),
    (lambda: lr_scheduler.LambdaLR(_sgd(), [lambda e: 1.0]), ValueError, "Expected 2 lr_lambdas, but got 1"),
    (lambda: lr_scheduler.LambdaLR(_sgd(), 0.5), TypeError, "lr_lambda should be a function"),
    (lambda: lr_scheduler.MultiplicativeLR(_sgd(), [lambda e: 1.0, None]), TypeError, "lr_lambda should be a function"),
    (lambda: lr_scheduler.ConstantLR(_sgd(), factor=2), ValueError, r"Invalid factor: 2"),
    (lambda: lr_scheduler.ConstantLR(_sgd(), total_iters=-1), ValueError, r"Invalid total_iters: -1"),
    (lambda: lr_scheduler.LinearLR(_sgd(), start_factor=0), ValueError, r"Invalid start_factor: 0"),
    (lambda: lr_scheduler.LinearLR(_sgd(), end_factor=1.5), ValueError, r"Invalid end_factor: 1.5"),
    (lambda: lr_scheduler.PolynomialLR(_sgd(), total_iters=0), ValueError, r"Invalid total_iters: 0"),
    (lambda: lr_scheduler.PolynomialLR(_sgd(), power=-1.0), ValueError, r"Invalid power: -1.0"),
    (lambda: lr_scheduler.CosineAnnealingLR(_sgd(), T_max=0), ValueError, r"Invalid T_max: 0"),
    (lambda: lr_scheduler.CosineAnnealingLR(_sgd(), T_max=5, eta_min=-0.1), ValueError, r"Invalid eta_min: -0.1"),
    (lambda: lr_scheduler.SequentialLR(_sgd(), [], []), ValueError, "expects at least one scheduler"),
    (lambda: lr_scheduler.SequentialLR(_sgd(), [_other_sgd_scheduler()], []), ValueError, "same optimizer"),
    (lambda: lr_scheduler.SequentialLR(_sgd(), ["StepLR"], []), TypeError, "should have `optimizer`"),
    (lambda: _sequential_with_milestones([]), ValueError, "number of milestones to be equal to 0"),
    (lambda: _sequential_with_plateau(), ValueError, "does not support `ReduceLROnPlateau`"),
    (lambda: lr_scheduler.ChainedScheduler([]), ValueError, "expects at least one scheduler"),
    (lambda: _chained_across_optimizers(), ValueError, "same optimizer"),
    (lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), factor=1.0), ValueError, r"Invalid factor: 1.0"),
    (lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), mode="down"), ValueError, "mode 'down' is unknown"),
    (lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), threshold_mode="x"), ValueError, "threshold mode 'x' is unknown"),
    (lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), min_lr=[0.1]), ValueError, "expected 2 min_lrs, got 1"),
    (lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), patience=-1), ValueError, r"Invalid patience: -1"),
    (lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), cooldown=1.5), TypeError, "cooldown must be an int"),
    (lambda: lr_scheduler.CyclicLR(_sgd(), 0.1, 1.0, mode="square"), ValueError, "Invalid mode: 'square'"),
    (lambda: lr_scheduler.CyclicLR(_sgd(), [0.1], 1.0), ValueError, "base_lr must have the same length"),
    (lambda: lr_scheduler.CyclicLR(_sgd(), 0.1, -1.0), ValueError, r"Invalid max_lr: -1.0"),
    (lambda: lr_scheduler.CyclicLR(_sgd(), 0.1, 1.0, scale_mode="epochs"), ValueError, "Invalid scale_mode"),
    (
        lambda: lr_scheduler.CyclicLR(_our_optimizer("adagrad"), 0.1, 1.0),
        ValueError,
        "optimizer must support momentum or beta1 with `cycle_momentum` option enabled",
    ),
    (
        lambda: lr_scheduler.CyclicLR(_sgd(), 0.1, 1.0, max_momentum=[0.9]),
        ValueError,
        "max_momentum must have the same length",
    ),
    (
        lambda: lr_scheduler.CosineAnnealingWarmRestarts(_sgd(), T_0=0),
        ValueError,
        "Expected positive integer T_0, but got 0",
    ),
    (
        lambda: lr_scheduler.CosineAnnealingWarmRestarts(_sgd(), T_0=2, T_mult=1.5),
        ValueError,
        r"Expected integer T_mult >= 1, but got 1.5",
    ),
    (
        lambda: lr_scheduler.CosineAnnealingWarmRestarts(_sgd(), T_0=2, eta_min="0"),
        ValueError,
        "Expected float or int eta_min",
    ),
    (
        lambda: lr_scheduler.CosineAnnealingWarmRestarts(_sgd(), T_0=2).step(-1),
        ValueError,
        "Expected non-negative epoch, but got -1",
    ),
    (
        lambda: lr_scheduler.OneCycleLR(_sgd(), max_lr=0.1),
        ValueError,
        r"You must define either total_steps OR \(epochs AND steps_per_epoch\)",
    ),
    (
        lambda: lr_scheduler.OneCycleLR(_sgd(), 0.1, total_steps=0),
        ValueError,
        "Expected positive integer total_steps, but got 0",
    ),
    (
        lambda: lr_scheduler.OneCycleLR(_sgd(), 0.1, epochs=0, steps_per_epoch=3),
        ValueError,
        "Expected positive integer epochs, but got 0",
    ),
    (
        lambda: lr_scheduler.OneCycleLR(_sgd(), 0.1, epochs=2, steps_per_epoch=2.5),
        ValueError,
        "Expected positive integer steps_per_epoch, but got 2.5",
    ),
    (
        lambda: lr_scheduler.OneCycleLR(_sgd(), 0.1, total_steps=10, pct_start=1.5),
        ValueError,
        "Expected float between 0 and 1 pct_start, but got 1.5",
    ),
    (
        lambda: lr_scheduler.OneCycleLR(_sgd(), 0.1, total_steps=10, anneal_strategy="cosine"),
        ValueError,
        "anneal_strategy must be one of 'cos' or 'linear', instead got cosine",
    ),
    (lambda: lr_scheduler.OneCycleLR(_sgd(), 0.1, total_steps=10, div_factor=0), ValueError, r"Invalid div_factor: 0"),
    (
        lambda: lr_scheduler.OneCycleLR(_sgd(), [0.1, 0.2, 0.3], total_steps=10),
        ValueError,
        "max_lr must have the same length",
    ),
]


def _sequential_with_milestones(milestones: list[int]) -> lr_scheduler.SequentialLR:
    optimizer = _sgd()
    schedulers = [lr_scheduler.ConstantLR(optimizer), lr_scheduler.ExponentialLR(optimizer, 0.9)]
    return lr_scheduler.SequentialLR(optimizer, schedulers, milestones)


def _sequential_with_plateau() -> lr_scheduler.SequentialLR:
    optimizer = _sgd()
    return lr_scheduler.SequentialLR(optimizer, [lr_scheduler.ReduceLROnPlateau(optimizer)], [])


def _chained_across_optimizers() -> lr_scheduler.ChainedScheduler:
    return lr_scheduler.ChainedScheduler([lr_scheduler.StepLR(_sgd(), 2), lr_scheduler.StepLR(_sgd(), 3)])


@pytest.mark.parametrize(
    ("make", "error", "match"), BAD_ARGUMENTS, ids=[match.replace("\\", "") for _, _, match in BAD_ARGUMENTS]
)
def test_bad_arguments_raise(make: Callable[[], Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        make()
