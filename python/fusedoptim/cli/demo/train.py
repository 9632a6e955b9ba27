"""The training loop: an MLP on a classification data set, its gradients by hand, fusedoptim's step.

The defaults are the seed program's: a 784-512-10 ReLU MLP, cross-entropy, SGD with lr 0.01, batches of 64,
10 epochs, and a ``[epoch, batch] loss`` line every 100 batches (the mean loss of those batches).
"""

from __future__ import annotations

import math
import os
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

import fusedoptim
from fusedoptim.optimizer import Optimizer

from .data import Dataset
from .methods import FULL_BATCH, FULL_BATCH_ONLY, OPTIMIZERS, format_settings, hyperparameters
from .mlp import MLP
from .parallel import Parallel

__all__ = [
    "CheckpointError",
    "EpochRecord",
    "Reporter",
    "RunResult",
    "TrainConfig",
    "blas_threads",
    "build_optimizer",
    "describe_run",
    "train",
]

# Full-batch gradients are summed over chunks of this many examples, to bound the activations held at once.
_FULL_BATCH_CHUNK = 10_000
# A checkpoint is fusedoptim.save's file; the run's record (position, random state, settings) is its extra, marked
# with these.
_RUN_RECORD = "fusedoptim train"
_RUN_RECORD_VERSION = 1


class CheckpointError(ValueError):
    """A ``--resume`` file that cannot be read, is not a ``fusedoptim train`` checkpoint, or was made by a run
    with different settings."""


@dataclass
class TrainConfig:
    """Everything that decides a run's trajectory, plus when to stop and how often to log.

    Parameters
    ----------
    optimizer
        A key of :data:`fusedoptim.cli.demo.methods.OPTIMIZERS`.
    settings
        Hyperparameters over the optimizer's demo defaults.
    batch
        Examples per step, or ``"full"`` for the whole training set (gradient descent).
    hidden
        Hidden layer widths.
    epochs
        The most epochs to run (a checkpoint counts the epochs it already ran).
    tol
        Stop when the epoch's mean training loss changed by less than ``tol`` from the previous epoch's.
    patience
        Stop when test accuracy has not improved on its best for ``patience`` epochs.
    max_steps
        Stop after this many optimizer steps in all (the checkpoint then continues mid-epoch).
    """

    optimizer: str = "sgd"
    settings: dict[str, Any] = field(default_factory=dict)
    batch: int | str = 64
    hidden: tuple[int, ...] = (512,)
    epochs: int = 10
    seed: int = 0
    tol: float | None = None
    patience: int | None = None
    max_steps: int | None = None
    log_every: int = 100
    label: str = ""

    def hyperparameters(self) -> dict[str, Any]:
        """The optimizer's full keyword arguments: its demo defaults with ``settings`` applied."""
        values = {name: h.default for name, h in hyperparameters(self.optimizer).items()}
        unknown = set(self.settings) - set(values)
        if unknown:
            raise ValueError(
                f"{self.optimizer} has no hyperparameter {', '.join(sorted(unknown))} (it has {', '.join(values)})"
            )
        values.update(self.settings)
        return values

    def describe_optimizer(self) -> str:
        return format_settings(self.optimizer, self.hyperparameters())


@dataclass
class EpochRecord:
    """One epoch's results and where its time went (seconds)."""

    epoch: int
    train_loss: float
    test_accuracy: float
    steps: int
    seconds: float
    forward_backward_seconds: float
    optimizer_seconds: float
    batch_seconds: float
    evaluation_seconds: float


@dataclass
class RunResult:
    """A finished (or stopped) run: the per-epoch history and the logged loss curve."""

    config: TrainConfig
    model: MLP
    optimizer: Optimizer
    history: list[EpochRecord]
    curve: list[tuple[float, float]]
    steps: int
    steps_per_epoch: int
    stopped: str | None

    @property
    def label(self) -> str:
        return self.config.label or self.config.optimizer

    def best(self) -> tuple[int, float]:
        """(epoch, test accuracy) of the best epoch."""
        valid = [r for r in self.history if not math.isnan(r.test_accuracy)]
        if not valid:
            return 0, float("nan")
        record = max(valid, key=lambda r: r.test_accuracy)
        return record.epoch, record.test_accuracy

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary (``--json``)."""
        totals = {
            key: sum(getattr(r, key) for r in self.history)
            for key in (
                "seconds",
                "forward_backward_seconds",
                "optimizer_seconds",
                "batch_seconds",
                "evaluation_seconds",
            )
        }
        best_epoch, best_accuracy = self.best()
        last = self.history[-1] if self.history else None
        return {
            "label": self.label,
            "optimizer": self.config.optimizer,
            "optimizer_class": OPTIMIZERS[self.config.optimizer].cls.__name__,
            "hyperparameters": _jsonable(self.config.hyperparameters()),
            "batch_size": self.config.batch,
            "hidden": list(self.config.hidden),
            "seed": self.config.seed,
            "epochs_run": len(self.history),
            "steps": self.steps,
            "steps_per_epoch": self.steps_per_epoch,
            "stopped": self.stopped,
            "final_train_loss": last.train_loss if last else None,
            "final_test_accuracy": last.test_accuracy if last else None,
            "best_test_accuracy": best_accuracy,
            "best_epoch": best_epoch,
            "seconds": totals,
            "seconds_per_epoch": totals["seconds"] / len(self.history) if self.history else None,
            "history": [asdict(r) for r in self.history],
            "curve": [list(point) for point in self.curve],
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


class Reporter:
    """Where a run's lines go, and its progress bar (tqdm, from the ``demo`` extra, on a terminal only).

    Parameters
    ----------
    stream
        Receives the log lines (``--json`` sends them to stderr, keeping stdout for the JSON).
    progress
        Show a progress bar per epoch when tqdm is installed and stderr is a terminal.
    quiet
        Print nothing.
    """

    def __init__(self, stream: TextIO | None = None, progress: bool = True, quiet: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.quiet = quiet
        self._tqdm = _import_tqdm() if progress and not quiet else None
        self._bar: Any = None
        self.progress_missing = progress and not quiet and self._tqdm is None

    def line(self, text: str) -> None:
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    @contextmanager
    def bar(self, total: int, description: str) -> Iterator[Any]:
        """A progress bar over one epoch's steps, or None."""
        if self._tqdm is None or total < 2:
            yield None
            return
        # disable=None: tqdm shows nothing unless stderr is a terminal, so logs and pipes stay clean.
        self._bar = self._tqdm(
            total=total, desc=description, unit="batch", leave=False, disable=None, file=sys.stderr, dynamic_ncols=True
        )
        try:
            yield self._bar
        finally:
            self._bar.close()
            self._bar = None


def _import_tqdm() -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


def build_optimizer(config: TrainConfig, params: list[np.ndarray]) -> Optimizer:
    return OPTIMIZERS[config.optimizer].cls(params, **config.hyperparameters())


def _fingerprint(dataset: Dataset) -> dict[str, Any]:
    # Enough to tell data sets apart when resuming, without hashing every pixel.
    return {
        "name": dataset.name,
        "train": len(dataset.y_train),
        "test": len(dataset.y_test),
        "features": dataset.num_features,
        "labels_crc32": zlib.crc32(dataset.y_train.tobytes()),
        "images_crc32": zlib.crc32(np.ascontiguousarray(dataset.x_train[:256]).tobytes()),
    }


def _trajectory(config: TrainConfig, dataset: Dataset) -> dict[str, Any]:
    """What must match between a checkpoint and the run resuming it."""
    return _jsonable(
        {
            "optimizer": config.optimizer,
            "hyperparameters": config.hyperparameters(),
            "batch": config.batch,
            "hidden": list(config.hidden),
            "seed": config.seed,
            "data": _fingerprint(dataset),
        }
    )


@dataclass
class _Progress:
    """The loop's position and accumulators: what a checkpoint holds besides parameters and optimizer state."""

    epoch: int = 0  # epochs completed
    position: int = 0  # steps done in the current epoch
    steps: int = 0
    permutation: np.ndarray | None = None
    running_loss: float = 0.0
    running_count: int = 0
    epoch_loss: float = 0.0
    epoch_examples: int = 0
    times: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(("forward_backward", "optimizer", "batch"), 0.0)
    )
    history: list[EpochRecord] = field(default_factory=list)
    curve: list[tuple[float, float]] = field(default_factory=list)
    stopped: str | None = None


def _save(
    path: Path,
    config: TrainConfig,
    dataset: Dataset,
    model: MLP,
    optimizer: Optimizer,
    order_rng: np.random.Generator,
    progress: _Progress,
    parallel: Parallel | None = None,
) -> None:
    """``fusedoptim.save``: the parameters, the optimizer's state and, as the extra, the run's record. Under MPI
    ``distributed.save``, a collective: rank 0 writes the full state (ZeRO gathers the shards), and if it cannot,
    every rank raises instead of leaving the others waiting."""
    record = {
        "record": _RUN_RECORD,
        "version": _RUN_RECORD_VERSION,
        "trajectory": _trajectory(config, dataset),
        "order_rng": order_rng.bit_generator.state,
        "epoch": progress.epoch,
        "position": progress.position,
        "steps": progress.steps,
        "permutation": progress.permutation,
        "running_loss": progress.running_loss,
        "running_count": progress.running_count,
        "epoch_loss": progress.epoch_loss,
        "epoch_examples": progress.epoch_examples,
        "times": progress.times,
        "history": [asdict(r) for r in progress.history],
        "curve": progress.curve,
        # Only a divergence is final; --tol, --patience and --max-steps are judged again by the resuming run.
        "stopped": progress.stopped if (progress.stopped or "").startswith("diverged") else None,
    }
    if parallel is not None:
        parallel.distributed.save(path, optimizer, params=model.params, extra=record)
    else:
        fusedoptim.save(path, optimizer=optimizer, params=model.params, extra=record)


def _resume_error(path: Path, error: Exception) -> CheckpointError:
    """``--resume PATH: <problem>`` from what fusedoptim.load (or distributed.load) raised."""
    if isinstance(error, FileNotFoundError) and error.filename is not None:
        return CheckpointError(f"--resume {path}: no such file")
    problem = str(error)
    if problem.startswith(f"{os.fspath(path)}: "):  # fusedoptim.load's ValueErrors name the file first
        problem = problem[len(os.fspath(path)) + 2 :]
    return CheckpointError(f"--resume {path}: {problem}")


def _read_record(
    path: Path, config: TrainConfig, dataset: Dataset, order_rng: np.random.Generator
) -> tuple[_Progress, dict[str, Any]]:
    """The run's record in the checkpoint, checked against this run's settings: the loop's progress and the
    batch order's random state. Nothing is changed."""
    try:
        record = fusedoptim.load(path)
    except (ValueError, OSError) as error:
        raise _resume_error(path, error) from None
    if record.get("record") != _RUN_RECORD:
        raise CheckpointError(
            f"--resume {path}: not a fusedoptim train checkpoint (a fusedoptim checkpoint without "
            "the run's record: its position, random state and settings)"
        )
    if record.get("version") != _RUN_RECORD_VERSION:
        raise CheckpointError(
            f"--resume {path}: run record version {record.get('version')!r} is not supported "
            f"(expected {_RUN_RECORD_VERSION})"
        )
    expected, saved = _trajectory(config, dataset), record.get("trajectory")
    if not isinstance(saved, dict):
        raise CheckpointError(f"--resume {path}: the run's record has no settings to check")
    if saved != expected:
        different = [key for key in expected if saved.get(key) != expected[key]]
        details = "; ".join(f"{key}: checkpoint {saved.get(key)!r}, this run {expected[key]!r}" for key in different)
        raise CheckpointError(f"--resume {path} was made by a different run ({details}); resume with the same options")
    try:
        permutation = record["permutation"]
        if permutation is not None and not isinstance(permutation, np.ndarray):
            raise TypeError(f"the permutation is a {type(permutation).__name__}")
        # Checked on a generator of the same kind, so that a bad state changes nothing.
        type(order_rng.bit_generator)().state = record["order_rng"]
        progress = _Progress(
            epoch=record["epoch"],
            position=record["position"],
            steps=record["steps"],
            permutation=permutation,
            running_loss=record["running_loss"],
            running_count=record["running_count"],
            epoch_loss=record["epoch_loss"],
            epoch_examples=record["epoch_examples"],
            times=dict(record["times"]),
            history=[EpochRecord(**r) for r in record["history"]],
            curve=[(float(x), float(y)) for x, y in record["curve"]],
            stopped=record["stopped"],
        )
    except (KeyError, TypeError, ValueError) as error:
        problem = f"{type(error).__name__}: {error}"
        raise CheckpointError(f"--resume {path}: the run's record is damaged ({problem})") from None
    return progress, record["order_rng"]


def _restore(
    path: Path,
    config: TrainConfig,
    dataset: Dataset,
    model: MLP,
    optimizer: Optimizer,
    order_rng: np.random.Generator,
    parallel: Parallel | None = None,
) -> _Progress:
    # The record first: a checkpoint of another run is refused naming the settings that differ (before a shape
    # or a state key would refuse it less clearly), and before anything changes.
    if parallel is not None:
        # Rank 0 reads it and sends it, or its failure, to every rank.
        progress, rng_state = parallel.from_root(
            lambda: _read_record(path, config, dataset, order_rng), CheckpointError
        )
    else:
        progress, rng_state = _read_record(path, config, dataset, order_rng)
    try:
        if parallel is not None:
            # A collective: if any rank fails to load, every rank raises (and keeps what it had).
            parallel.distributed.load(path, optimizer, params=model.params)
        else:
            # The parameters are written into the existing arrays: the optimizer holds these very objects.
            fusedoptim.load(path, optimizer=optimizer, params=model.params)
    except (ValueError, OSError) as error:
        raise _resume_error(path, error) from None
    order_rng.bit_generator.state = rng_state
    return progress


def train(
    dataset: Dataset,
    config: TrainConfig,
    reporter: Reporter | None = None,
    save: str | Path | None = None,
    save_every: int | None = None,
    resume: str | Path | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    parallel: Parallel | None = None,
) -> RunResult:
    """Trains an MLP on ``dataset`` with fusedoptim and returns its history.

    The initial parameters come from ``seed``'s first child generator and the batch order (a fresh
    permutation each epoch) from its second, so runs with the same seed start alike and see the same
    batches whatever the optimizer.

    Parameters
    ----------
    save
        Checkpoint written after every epoch, every ``save_every`` steps, and when the run stops: a
        :func:`fusedoptim.save` file (parameters, optimizer state) whose extra holds the run's record.
    resume
        Checkpoint to continue from; the run must have the same trajectory settings (optimizer,
        hyperparameters, batch, model, seed, data). The continuation is bit-identical to an uninterrupted run.
    on_epoch
        Called with each epoch's record (``fusedoptim tune`` reports to Optuna and prunes from it).
    parallel
        Under ``mpiexec``: every rank runs this with the same arguments and takes a block of every batch; the
        optimizer is wrapped in DataParallel (or ZeRO-1), so the run follows the single-process one with the
        same global batch. Checkpoints are collective (``fusedoptim.distributed.save``/``load``: rank 0 writes
        one consolidated file, every rank reads it); pass a quiet reporter on the other ranks.
    """
    reporter = reporter if reporter is not None else Reporter(quiet=True)
    if config.batch != FULL_BATCH and int(config.batch) < 1:
        raise ValueError(f"batch size must be >= 1, got {config.batch}")
    if config.optimizer in FULL_BATCH_ONLY and config.batch != FULL_BATCH:
        raise ValueError(f"--optimizer {config.optimizer} trains on the whole training set: use --full-batch")
    if config.optimizer in FULL_BATCH_ONLY and parallel is not None:
        raise ValueError(
            f"--optimizer {config.optimizer} runs in one process (the distributed wrappers take gradients, "
            "not the closure it steps with)"
        )
    init_seed, order_seed = np.random.SeedSequence(config.seed).spawn(2)
    order_rng = np.random.default_rng(order_seed)
    model = MLP((dataset.num_features, *config.hidden, dataset.num_classes), np.random.default_rng(init_seed))
    optimizer = build_optimizer(config, model.params)
    if parallel is not None:
        optimizer = parallel.wrap(optimizer)
    progress = _Progress()
    if resume is not None:
        progress = _restore(Path(resume), config, dataset, model, optimizer, order_rng, parallel)
        reporter.line(
            f"resumed from {resume}: {progress.epoch} epochs and {progress.position} steps of epoch "
            f"{progress.epoch + 1} done ({progress.steps} steps in all)"
        )
    save_path = Path(save) if save is not None else None

    def checkpoint() -> None:
        if save_path is not None:
            _save(save_path, config, dataset, model, optimizer, order_rng, progress, parallel)

    if resume is not None and progress.stopped is None and progress.position == 0 and progress.history:
        # A stop by --tol or --patience is not saved: judged again with this run's settings.
        previous = progress.history[-2] if len(progress.history) > 1 else None
        progress.stopped = _stop_reason(config, progress.history, previous)

    loop = _Loop(
        dataset, config, model, optimizer, order_rng, progress, reporter, checkpoint, save_every, on_epoch, parallel
    )
    # A diverging run overflows: the loop sees the non-finite loss and stops with a message, so NumPy's
    # overflow and invalid-value warnings would only repeat it.
    with np.errstate(over="ignore", invalid="ignore"):
        while progress.stopped is None and progress.epoch < config.epochs:
            if not loop.run_epoch_steps():
                # Interrupted by --max-steps: saved mid-epoch, and resuming continues with the next batch.
                checkpoint()
                progress.stopped = f"--max-steps {config.max_steps} reached in epoch {progress.epoch + 1}"
                break
            loop.finish_epoch()

    if progress.stopped is not None:
        reporter.line(f"stopped: {progress.stopped}")
    if save_path is not None:
        reporter.line(f"checkpoint: {save_path}")
    return RunResult(
        config,
        model,
        optimizer,
        progress.history,
        progress.curve,
        progress.steps,
        loop.steps_per_epoch,
        progress.stopped,
    )


class _Loop:
    """One run's epochs: the steps of an epoch, then its evaluation, record and stopping check."""

    def __init__(
        self,
        dataset: Dataset,
        config: TrainConfig,
        model: MLP,
        optimizer: Optimizer,
        order_rng: np.random.Generator,
        progress: _Progress,
        reporter: Reporter,
        checkpoint: Callable[[], None],
        save_every: int | None,
        on_epoch: Callable[[EpochRecord], None] | None,
        parallel: Parallel | None = None,
    ) -> None:
        self.dataset, self.config, self.model, self.optimizer = dataset, config, model, optimizer
        self.parallel = parallel
        self.order_rng, self.progress, self.reporter = order_rng, progress, reporter
        self.checkpoint, self.save_every, self.on_epoch = checkpoint, save_every, on_epoch
        examples = len(dataset.y_train)
        self.full_batch = config.batch == FULL_BATCH
        self.batch_size = examples if self.full_batch else int(config.batch)
        self.steps_per_epoch = math.ceil(examples / self.batch_size)
        self.log_every = max(1, min(config.log_every, self.steps_per_epoch))

    def run_epoch_steps(self) -> bool:
        """Runs the current epoch's remaining steps; False if --max-steps interrupted it before its end."""
        progress, config, clock = self.progress, self.config, time.perf_counter
        epoch = progress.epoch + 1
        x_train, y_train = self.dataset.x_train, self.dataset.y_train
        if progress.permutation is None and not self.full_batch:
            progress.permutation = self.order_rng.permutation(len(y_train))
        chunk = _FULL_BATCH_CHUNK if self.full_batch else None
        with self.reporter.bar(self.steps_per_epoch - progress.position, f"epoch {epoch}/{config.epochs}") as bar:
            while progress.position < self.steps_per_epoch:
                b = progress.position
                t0 = clock()
                if self.full_batch:
                    x, y = x_train, y_train
                else:
                    rows = progress.permutation[b * self.batch_size : (b + 1) * self.batch_size]  # type: ignore[index]
                    x, y = x_train[rows], y_train[rows]
                count = len(y)  # the global batch; under MPI this rank computes a block of it
                if self.parallel is not None:
                    rows_here = self.parallel.block(count)
                    x, y = x[rows_here], y[rows_here]
                t1 = clock()
                if len(y):
                    loss = self.model.loss_and_grad(x, y, chunk=chunk)
                else:  # more ranks than examples in this batch: this rank contributes nothing
                    loss = 0.0
                    for g in self.model.grads:
                        g.fill(0)
                if self.parallel is not None:
                    self.parallel.reweight(self.model.grads, len(y), count)
                    loss = self.parallel.batch_loss(loss, len(y), count)
                t2 = clock()
                if self.config.optimizer in FULL_BATCH_ONLY:
                    # LBFGS evaluates the loss and gradient itself, as often as its line search needs (the first
                    # evaluation, above, gave the loss this step reports).
                    model = self.model

                    def closure() -> tuple[float, list[np.ndarray]]:
                        return model.loss_and_grad(x, y, chunk=chunk), model.grads

                    self.optimizer.step(closure)  # type: ignore[arg-type]
                else:
                    self.optimizer.step(self.model.grads)
                t3 = clock()
                progress.times["batch"] += t1 - t0
                progress.times["forward_backward"] += t2 - t1
                progress.times["optimizer"] += t3 - t2
                progress.position += 1
                progress.steps += 1
                progress.running_loss += loss
                progress.running_count += 1
                progress.epoch_loss += loss * count
                progress.epoch_examples += count
                if bar is not None:
                    bar.update(1)
                if not math.isfinite(loss):
                    progress.stopped = f"diverged: the loss became {loss} at epoch {epoch}, step {b + 1}"
                    return True  # the epoch ends here, evaluated and recorded
                if progress.position % self.log_every == 0:
                    self._log(epoch, bar)
                if progress.position == self.steps_per_epoch:
                    break
                if config.max_steps is not None and progress.steps >= config.max_steps:
                    return False
                if self.save_every and progress.steps % self.save_every == 0:
                    self.checkpoint()
        return True

    def _log(self, epoch: int, bar: Any) -> None:
        progress = self.progress
        mean = progress.running_loss / progress.running_count
        # The seed program's line: [epoch, batch] loss, the mean over the last log_every batches.
        self.reporter.line(f"[{epoch}, {progress.position:5d}] loss: {mean:.3f}")
        progress.curve.append((progress.epoch + progress.position / self.steps_per_epoch, mean))
        progress.running_loss, progress.running_count = 0.0, 0
        if bar is not None:
            bar.set_postfix(loss=f"{mean:.3f}")

    def finish_epoch(self) -> None:
        """Test accuracy, the epoch's record and line, a checkpoint, and the stopping rules."""
        progress, config = self.progress, self.config
        epoch = progress.epoch + 1
        t0 = time.perf_counter()
        accuracy = self.model.accuracy(self.dataset.x_test, self.dataset.y_test)
        evaluation = time.perf_counter() - t0
        times = progress.times
        record = EpochRecord(
            epoch,
            progress.epoch_loss / max(progress.epoch_examples, 1),
            accuracy,
            progress.position,
            times["batch"] + times["forward_backward"] + times["optimizer"] + evaluation,
            times["forward_backward"],
            times["optimizer"],
            times["batch"],
            evaluation,
        )
        previous = progress.history[-1] if progress.history else None
        progress.history.append(record)
        if progress.running_count:
            # The batches after the last log line (the seed drops them) still get a point on the curve.
            progress.curve.append((float(epoch), progress.running_loss / progress.running_count))
        self.reporter.line(_epoch_line(record, config.epochs))
        if self.on_epoch is not None:
            self.on_epoch(record)
        progress.epoch += 1
        progress.position = 0
        progress.permutation = None
        progress.running_loss, progress.running_count = 0.0, 0
        progress.epoch_loss, progress.epoch_examples = 0.0, 0
        progress.times = dict.fromkeys(times, 0.0)
        self.checkpoint()
        if progress.stopped is None:
            progress.stopped = _stop_reason(config, progress.history, previous)
        if progress.stopped is None and config.max_steps is not None and progress.steps >= config.max_steps:
            progress.stopped = f"--max-steps {config.max_steps} reached at the end of epoch {epoch}"


def _stop_reason(config: TrainConfig, history: list[EpochRecord], previous: EpochRecord | None) -> str | None:
    """The seed's "repeat until convergence": the loss stopped changing, or test accuracy stopped improving."""
    record = history[-1]
    if config.tol is not None and previous is not None:
        change = abs(record.train_loss - previous.train_loss)
        if change < config.tol:
            return f"converged: the training loss changed by {change:.3g} < --tol {config.tol:g}"
    if config.patience is not None:
        best = max(range(len(history)), key=lambda i: (history[i].test_accuracy, -i))
        if len(history) - 1 - best >= config.patience:
            return (
                f"no improvement in test accuracy for {config.patience} epochs "
                f"(best {history[best].test_accuracy:.4f} at epoch {history[best].epoch})"
            )
    return None


def _epoch_line(record: EpochRecord, epochs: int) -> str:
    compute = record.seconds or 1.0
    return (
        f"epoch {record.epoch}/{epochs}: train loss {record.train_loss:.4f}, test accuracy "
        f"{record.test_accuracy:.4f} | {record.seconds:.2f} s: forward/backward "
        f"{record.forward_backward_seconds:.2f} s ({100 * record.forward_backward_seconds / compute:.0f}%), "
        f"optimizer step {record.optimizer_seconds:.2f} s ({100 * record.optimizer_seconds / compute:.0f}%), "
        f"batching {record.batch_seconds:.2f} s, evaluation {record.evaluation_seconds:.2f} s"
    )


def describe_run(dataset: Dataset, config: TrainConfig, with_optimizer: bool = True) -> list[str]:
    """The lines printed before training: data, model, optimizer, threads."""
    sizes = (dataset.num_features, *config.hidden, dataset.num_classes)
    parameters = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    examples = len(dataset.y_train)
    if config.batch == FULL_BATCH:
        batching = f"full batch ({examples} examples, 1 step per epoch: gradient descent)"
    else:
        steps = math.ceil(examples / int(config.batch))
        batching = f"batch {config.batch} ({steps} steps per epoch)"
    lines = [
        f"data: {dataset.describe()}",
        *[f"note: {note}" for note in dataset.notes],
        f"model: MLP {'-'.join(map(str, sizes))} ({parameters:,} parameters, float32, ReLU, "
        f"torch.nn.Linear initialisation), seed {config.seed}",
    ]
    if with_optimizer:
        lines.append(f"optimizer: {config.describe_optimizer()}, {batching}, up to {config.epochs} epochs")
    blas = blas_threads()
    lines.append(
        f"threads: {fusedoptim.get_num_threads()} for fusedoptim's kernels (SIMD {fusedoptim.simd_level()}), "
        + (f"{blas} for NumPy's BLAS" if blas is not None else "NumPy's BLAS: its own default")
    )
    return lines


def blas_threads() -> int | None:
    """The threads NumPy's BLAS uses now, if threadpoolctl (demo extra) can tell."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    counts = [pool["num_threads"] for pool in threadpool_info() if pool.get("user_api") == "blas"]
    return max(counts) if counts else None
