"""``fusedoptim train --compare``: several methods from the same initialisation and batch order, side by side."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from .data import Dataset
from .methods import FULL_BATCH, Method
from .train import Reporter, RunResult, TrainConfig, train

__all__ = ["compare", "config_for", "split_methods", "summary_table"]


def split_methods(text: str) -> list[str]:
    """Splits ``"sgd,momentum,adam:betas=(0.9,0.99)"`` at the commas outside brackets."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for character in text:
        if character in "([":
            depth += 1
        elif character in ")]":
            depth -= 1
        if character == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(character)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def config_for(label: str, method: Method, base: TrainConfig) -> TrainConfig:
    """The run of ``method``: ``base``'s model, seed, epochs and stopping rules, the method's optimizer,
    settings and batch mode (``base.batch`` when the method has none)."""
    batch = base.batch if method.batch is None else method.batch
    return dataclasses.replace(
        base, optimizer=method.optimizer, settings=dict(method.settings), batch=batch, label=label
    )


def compare(
    dataset: Dataset, methods: Sequence[tuple[str, Method]], base: TrainConfig, reporter: Reporter
) -> list[RunResult]:
    """Trains every method with ``base``'s seed: the same initial parameters and the same batch order."""
    results = []
    for i, (label, method) in enumerate(methods):
        config = config_for(label, method, base)
        batching = "full batch" if config.batch == FULL_BATCH else f"batch {config.batch}"
        reporter.line(f"=== [{i + 1}/{len(methods)}] {label}: {config.describe_optimizer()}, {batching}")
        results.append(train(dataset, config, reporter))
    return results


def summary_table(results: Sequence[RunResult], plot: str | None = None) -> str:
    """A fixed-width table: final loss and accuracy, best accuracy, time per epoch and the optimizer's share."""
    header = [
        "method",
        "optimizer",
        "batch",
        "epochs",
        "train loss",
        "test acc",
        "best acc (epoch)",
        "s/epoch",
        "step %",
    ]
    rows = []
    for run in results:
        last = run.history[-1] if run.history else None
        best_epoch, best = run.best()
        seconds = sum(r.seconds for r in run.history)
        step = sum(r.optimizer_seconds for r in run.history)
        rows.append(
            [
                run.label,
                run.config.describe_optimizer(),
                str(run.config.batch),
                str(len(run.history)),
                _number(last.train_loss if last else math.nan, ".4f"),
                _number(last.test_accuracy if last else math.nan, ".4f"),
                f"{_number(best, '.4f')} ({best_epoch})",
                _number(seconds / len(run.history) if run.history else math.nan, ".2f"),
                _number(100 * step / seconds if seconds else math.nan, ".0f"),
            ]
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    numeric = {3, 4, 5, 6, 7, 8}

    def render(row: list[str]) -> str:
        return "  ".join(
            cell.rjust(w) if i in numeric else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))
        ).rstrip()

    lines = [render(header), render(["-" * w for w in widths])] + [render(row) for row in rows]
    for run in results:
        if run.stopped:
            lines.append(f"{run.label}: stopped, {run.stopped}")
    if plot:
        lines.append(f"plot: {plot}")
    return "\n".join(lines)


def _number(value: float, spec: str) -> str:
    return "-" if value is None or math.isnan(value) else format(value, spec)
