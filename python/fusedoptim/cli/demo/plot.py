"""PNG plots for the demo (matplotlib, from the ``demo`` extra): loss curves and test accuracy per epoch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .train import RunResult

__all__ = ["MissingExtra", "plot_runs", "plot_study", "require"]


class MissingExtra(ImportError):
    """An optional dependency is missing; the message says which extra installs it."""


def require(module: str, extra: str, purpose: str) -> Any:
    """Imports ``module`` or raises :class:`MissingExtra` naming the extra that provides it."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise MissingExtra(f'{purpose} needs {module.split(".")[0]}: pip install "fusedoptim[{extra}]"') from None


def _figure(width: float, height: float) -> Any:
    # A Figure without pyplot: no global state and no GUI backend, just Agg rendering to the file.
    figure_module = require("matplotlib.figure", "demo", "the plot")
    return figure_module.Figure(figsize=(width, height), layout="constrained")


def plot_runs(runs: Sequence[RunResult], path: str | Path, title: str) -> Path:
    """Writes the loss curves (left, log scale) and test accuracy per epoch (right) of ``runs`` to ``path``."""
    figure = _figure(12, 4.8)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    for run in runs:
        if run.curve:
            xs, ys = zip(*run.curve)
            loss_axes.plot(xs, ys, label=run.label, linewidth=1.2, marker="o" if len(xs) < 30 else None, markersize=3)
        if run.history:
            epochs = [r.epoch for r in run.history]
            accuracies = [r.test_accuracy for r in run.history]
            accuracy_axes.plot(epochs, accuracies, marker="o", markersize=4, label=run.label)
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("training loss (cross-entropy)")
    loss_axes.set_yscale("log")
    loss_axes.grid(True, which="both", alpha=0.3)
    loss_axes.legend(fontsize="small")
    accuracy_axes.set_xlabel("epoch")
    accuracy_axes.xaxis.set_major_locator(require("matplotlib.ticker", "demo", "the plot").MaxNLocator(integer=True))
    accuracy_axes.set_ylabel("test accuracy")
    accuracy_axes.grid(True, alpha=0.3)
    accuracy_axes.legend(fontsize="small", loc="lower right")
    figure.suptitle(title)
    path = Path(path)
    figure.savefig(path, dpi=110)
    return path


def plot_study(trials: Sequence[tuple[int, float, bool]], path: str | Path, title: str, objective: str) -> Path:
    """Optimisation history, as optuna's history plot: each trial's objective (``(number, value, completed)``;
    pruned trials, with their last reported value, drawn apart) and the best completed value so far."""
    figure = _figure(8, 4.8)
    axes = figure.subplots()
    completed = [(n, v) for n, v, done in trials if done]
    pruned = [(n, v) for n, v, done in trials if not done]
    if completed:
        numbers, values = zip(*completed)
        axes.scatter(numbers, values, s=20, label="trial", color="tab:blue", zorder=3)
        best, running = [], float("-inf")
        for value in values:
            running = max(running, value)
            best.append(running)
        axes.step(numbers, best, where="post", color="tab:red", label="best so far")
    if pruned:
        numbers, values = zip(*pruned)
        axes.scatter(numbers, values, s=20, marker="x", color="tab:gray", label="pruned (last report)", zorder=3)
    axes.set_xlabel("trial")
    axes.set_ylabel(objective)
    axes.xaxis.set_major_locator(require("matplotlib.ticker", "demo", "the plot").MaxNLocator(integer=True))
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower right")
    axes.set_title(title)
    path = Path(path)
    figure.savefig(path, dpi=110)
    return path
