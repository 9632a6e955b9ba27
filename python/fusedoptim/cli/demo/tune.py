"""``fusedoptim tune``: an Optuna study over an optimizer's learning rate and one or two other hyperparameters.

Each trial trains the MLP briefly (``--epochs``, on ``--train-subset`` examples) and is scored by its accuracy
on a validation set held out from the training set (the test set is not used for choosing). TPE proposes the
values; a median pruner stops trials that trail the others after an epoch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .data import Dataset
from .methods import Hyperparameter, hyperparameters
from .plot import require
from .train import EpochRecord, Reporter, TrainConfig, train

__all__ = ["SearchDimension", "command_for", "default_dimensions", "run_study", "search_space", "validation_split"]


@dataclass(frozen=True)
class SearchDimension:
    """A hyperparameter (or, for ``beta1``/``beta2``, one item of ``betas``) and the range TPE samples."""

    name: str
    low: float
    high: float
    log: bool


# The range of each tunable name; ``lr``'s is relative to the optimizer's default (x1/30 .. x30).
_RANGES: dict[str, tuple[float, float, bool]] = {
    "momentum": (0.0, 0.99, False),
    "beta1": (0.5, 0.99, False),
    "beta2": (0.9, 0.9999, False),
    "alpha": (0.8, 0.999, False),
    "weight_decay": (1e-6, 1e-1, True),
    "lr_decay": (1e-6, 1e-2, True),
}
# What to tune beside lr when --params is not given, in order of preference.
_PREFERENCE = ("momentum", "beta1", "alpha", "weight_decay", "lr_decay")


def search_space(optimizer: str) -> dict[str, SearchDimension]:
    """Every dimension ``optimizer`` can be tuned over."""
    known = hyperparameters(optimizer)
    space: dict[str, SearchDimension] = {}
    if "lr" in known:
        default = float(known["lr"].default)
        space["lr"] = SearchDimension("lr", default / 30, min(default * 30, 1.0), True)
    names: list[str] = [n for n in known if n in _RANGES]
    if "betas" in known:
        names += ["beta1", "beta2"]
    for name in names:
        low, high, log = _RANGES[name]
        space[name] = SearchDimension(name, low, high, log)
    return space


def default_dimensions(optimizer: str) -> list[str]:
    """``lr`` and the first two of momentum, beta1, alpha, weight_decay, lr_decay the optimizer has."""
    space = search_space(optimizer)
    return (["lr"] if "lr" in space else []) + [n for n in _PREFERENCE if n in space][:2]


def validation_split(dataset: Dataset, fraction: float, train_subset: int | None) -> Dataset:
    """The training set split into training and validation parts (a fixed shuffle, whatever the seed);
    the validation part takes the test set's place."""
    examples = len(dataset.y_train)
    held_out = max(1, round(examples * fraction))
    if held_out >= examples:
        raise ValueError(f"--val-fraction {fraction} leaves no training examples")
    order = np.random.default_rng(12345).permutation(examples)
    validation, training = order[:held_out], order[held_out:]
    if train_subset is not None:
        training = training[:train_subset]
    training, validation = np.sort(training), np.sort(validation)
    return Dataset(
        f"{dataset.name} (validation split)",
        dataset.source,
        dataset.x_train[training],
        dataset.y_train[training],
        dataset.x_train[validation],
        dataset.y_train[validation],
        dataset.image_shape,
        dataset.num_classes,
        list(dataset.notes),
    )


def _settings(values: dict[str, float], known: dict[str, Hyperparameter]) -> dict[str, Any]:
    settings: dict[str, Any] = {k: v for k, v in values.items() if k not in ("beta1", "beta2")}
    if "beta1" in values or "beta2" in values:
        beta1, beta2 = known["betas"].default
        settings["betas"] = (values.get("beta1", beta1), values.get("beta2", beta2))
    return settings


def run_study(
    dataset: Dataset,
    base: TrainConfig,
    dimensions: Sequence[str],
    trials: int,
    reporter: Reporter,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Runs the study and returns its trials and best trial (JSON-able).

    Raises
    ------
    fusedoptim.cli.demo.plot.MissingExtra
        Optuna is not installed (``pip install "fusedoptim[tune]"``).
    """
    optuna = require("optuna", "tune", "fusedoptim tune")
    space = search_space(base.optimizer)
    unknown = [d for d in dimensions if d not in space]
    if unknown:
        raise ValueError(f"cannot tune {', '.join(unknown)} for {base.optimizer}; choose from {', '.join(space)}")
    known = hyperparameters(base.optimizer)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=base.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5),
    )
    quiet = Reporter(quiet=True)

    def objective(trial: Any) -> float:
        values = {
            name: trial.suggest_float(name, space[name].low, space[name].high, log=space[name].log)
            for name in dimensions
        }
        settings = {**base.settings, **_settings(values, known)}
        config = dataclasses.replace(base, settings=settings, label=f"trial {trial.number}")

        def on_epoch(record: EpochRecord) -> None:
            trial.report(_score(record.test_accuracy), record.epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        result = train(dataset, config, quiet, on_epoch=on_epoch)
        return _score(result.history[-1].test_accuracy)

    def log_trial(study: Any, trial: Any) -> None:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in trial.params.items())
        if trial.state == optuna.trial.TrialState.COMPLETE:
            outcome = f"validation accuracy {trial.value:.4f}"
        else:
            outcome = f"{trial.state.name.lower()} after {len(trial.intermediate_values)} epoch(s)"
        reporter.line(f"trial {trial.number}: {outcome} ({shown})")

    study.optimize(objective, n_trials=trials, timeout=timeout, callbacks=[log_trial])
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    summary: dict[str, Any] = {
        "optimizer": base.optimizer,
        "dimensions": {name: dataclasses.asdict(space[name]) for name in dimensions},
        "trials": [
            {"number": t.number, "state": t.state.name.lower(), "value": t.value, "params": t.params}
            for t in study.trials
        ],
        "best": None,
    }
    if completed:
        best = study.best_trial
        settings = _settings(best.params, known)
        summary["best"] = {
            "number": best.number,
            "value": best.value,
            "params": best.params,
            "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
        }
    return summary


def _score(accuracy: float) -> float:
    # A diverged run scores 0 rather than NaN, which optuna would record as a failed trial.
    return 0.0 if math.isnan(accuracy) else accuracy


def command_for(optimizer: str, settings: dict[str, Any]) -> str:
    """The ``fusedoptim train`` flags that reproduce ``settings``."""
    flags = [f"--optimizer {optimizer}"]
    for key, value in settings.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, (tuple, list)):
            flags.append(f"{flag} {','.join(f'{v:.6g}' for v in value)}")
        elif isinstance(value, (int, float)):
            flags.append(f"{flag} {value:.6g}")
        else:
            flags.append(f"{flag} {value}")
    return "fusedoptim train " + " ".join(flags)
