"""``python -m fusedoptim.cli.bench``: the command line of the benchmark suite (issue 5)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

import fusedoptim
from fusedoptim import _core

from .cases import OPTIMIZERS, SUITES, make_plan, parse_size
from .report import headline, write_outputs

__all__ = ["add_arguments", "main", "run"]

DESCRIPTION = """\
Times fusedoptim's optimizers against the NumPy reference, in-place and textbook NumPy, torch.optim (for-loop,
foreach, fused) and a plain OpenMP loop compiled for this CPU, interleaved in one process, over sizes, dtypes and
thread counts, ResNet-50's parameter list, 1000 arrays of 4096 and a single small array. Writes bench.json,
bench.md, summary.md and PNG plots to --out, and prints the issue's targets with the measured ratios."""


def _list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _dtypes(text: str) -> list[str]:
    names = {"f32": "float32", "float32": "float32", "f64": "float64", "float64": "float64"}
    try:
        return [names[d] for d in _list(text)]
    except KeyError as e:
        raise argparse.ArgumentTypeError(f"unknown dtype {e.args[0]!r} (float32, float64)") from None


def _ints(text: str) -> list[int]:
    try:
        values = [int(t) for t in _list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("thread counts must be positive")
    return values


def _sizes(text: str) -> list[int]:
    try:
        return [parse_size(t) for t in _list(text)]
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the benchmark's options to ``parser`` (for ``fusedoptim bench``)."""
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick",
        action="store_true",
        help="CI-sized run (< 60 s): SGD and Adam, float32, sizes 1e3, 1e5, 1e6, the latency case, "
        "the many-array cases for Adam against the native loop and torch fused",
    )
    mode.add_argument(
        "--full",
        action="store_true",
        help="half-decade sizes from 1e3 up to 1e8 elements (peers that do not fit in memory are "
        "skipped); the default sweep stops at 1e7",
    )
    parser.add_argument(
        "--optimizers",
        type=_list,
        metavar="LIST",
        help=f"comma-separated subset of: {', '.join(OPTIMIZERS)} (default: all; --quick: sgd,adam)",
    )
    parser.add_argument(
        "--dtypes", type=_dtypes, metavar="LIST", help="float32,float64 (default both; --quick: float32)"
    )
    parser.add_argument(
        "--threads", type=_ints, metavar="LIST", help="thread counts (default: 1 and fusedoptim.get_num_threads())"
    )
    parser.add_argument("--sizes", type=_sizes, metavar="LIST", help="sweep sizes, e.g. 1e3,1e5,2**20")
    parser.add_argument(
        "--suites", type=_list, metavar="LIST", help=f"comma-separated subset of: {', '.join(SUITES)} (default: all)"
    )
    parser.add_argument("--repeats", type=int, metavar="N", help="timed rounds per case (default 7; --quick 5)")
    parser.add_argument(
        "--min-time",
        type=float,
        metavar="S",
        help="seconds per timed sample: fast steps are batched until a sample lasts this long "
        "(default 0.01; --quick 0.004)",
    )
    parser.add_argument(
        "--max-case-time",
        type=float,
        metavar="S",
        help="fewer rounds (at least 3) when a case would take longer (default 25; --quick 4)",
    )
    parser.add_argument(
        "--triad-size",
        type=_sizes,
        metavar="N",
        help="elements per array of the STREAM probe (default 256 MiB per array; --quick 128 MiB)",
    )
    parser.add_argument(
        "--simd",
        metavar="LEVEL",
        help=f"force fusedoptim's SIMD level (this CPU: {', '.join(_core.supported_simd_levels())})",
    )
    parser.add_argument(
        "--out",
        default=os.path.join("benchmarks", "results"),
        metavar="DIR",
        help="output directory (default benchmarks/results/)",
    )
    parser.add_argument("--no-torch", action="store_true", help="leave torch.optim out")
    parser.add_argument("--no-native", action="store_true", help="do not compile the native OpenMP loop")
    parser.add_argument("--no-plots", action="store_true", help="write no PNG")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def _import_torch(args: argparse.Namespace, notes: list[str]) -> Any:
    if args.no_torch:
        notes.append("torch.optim not measured (--no-torch).")
        return None
    try:
        import torch
    except ImportError:
        notes.append("torch is not installed: torch.optim not measured.")
        return None
    return torch


def _build_native(args: argparse.Namespace, notes: list[str], log: Any) -> Any:
    if args.no_native:
        notes.append("native loop not measured (--no-native).")
        return None
    from .native import NativeUnavailable, compile_native

    try:
        library = compile_native()
    except NativeUnavailable as e:
        notes.append(f"native loop skipped: {e}")
        log(f"native loop skipped: {e}")
        return None
    log(f"native loop: {' '.join(library.command)}")
    return library


def run(args: argparse.Namespace, argv: Sequence[str] = ()) -> int:
    """Runs the benchmark the parsed ``args`` describe; returns the exit status."""
    from .runner import machine_info, run_plan

    log = (lambda text: None) if args.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    notes: list[str] = []
    mode = "quick" if args.quick else "full" if args.full else "default"
    max_threads = fusedoptim.get_num_threads()
    try:
        plan = make_plan(
            mode,
            optimizers=args.optimizers,
            dtypes=args.dtypes,
            threads=args.threads,
            sizes=args.sizes,
            suites=args.suites,
            repeats=args.repeats,
            min_time=args.min_time,
            max_case_time=args.max_case_time,
            max_threads=max_threads,
        )
    except ValueError as e:
        print(f"fusedoptim bench: {e}", file=sys.stderr)
        return 2
    if args.triad_size:
        plan.triad_elements = {d: args.triad_size[0] for d in plan.triad_elements}
    previous_level = _core.simd_level()
    if args.simd:
        try:
            _core.set_simd_level(args.simd)
        except ValueError as e:
            print(f"fusedoptim bench: {e}", file=sys.stderr)
            return 2
    try:
        torch = _import_torch(args, notes)
        native = _build_native(args, notes, log)
        machine = machine_info(argv, torch, native)
        log(
            f"fusedoptim bench ({mode}): {len(plan.cases)} cases on {machine['cpu_model']}, "
            f"SIMD {machine['fusedoptim']['simd_level']}, threads {plan.threads}"
        )
        measured = run_plan(plan, torch=torch, native=native, log=log)
        machine["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    finally:
        _core.set_simd_level(previous_level)
    headline_threads = 2 if 2 in plan.threads else max(plan.threads)
    results: dict[str, Any] = {
        "schema": "fusedoptim-bench/1",
        "mode": mode,
        "machine": machine,
        "settings": {
            "repeats": plan.repeats,
            "min_time_s": plan.min_time,
            "max_case_time_s": plan.max_case_time,
            "min_repeats": plan.min_repeats,
            "dtypes": plan.dtypes,
            "threads": plan.threads,
            "triad_elements": plan.triad_elements,
        },
        "headline_threads": headline_threads,
        "bandwidth": measured["bandwidth"],
        "cases": measured["cases"],
        "notes": notes,
    }
    results["headline"] = headline(results, headline_threads)
    paths = write_outputs(results, args.out, plots=not args.no_plots)
    if not args.no_plots and not paths["plots"]:
        notes.append("matplotlib is not installed: no plots written.")
        log("matplotlib is not installed: no plots written")
    print(f"Targets (float32, {headline_threads} threads):")
    for row in results["headline"]:
        state = {True: "pass", False: "MISS", None: "not measured"}[row["passed"]]
        value = f"{row['measured']:.2f}" if row["measured"] is not None else "-"
        print(f"  {state:>12}  {value:>7} (goal {row['goal']})  {row['target']}")
    print(
        f"Wrote {paths['json']}, {paths['markdown']}, {paths['summary']}"
        + (f" and {len(paths['plots'])} plots" if paths["plots"] else "")
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fusedoptim.cli.bench [options]``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m fusedoptim.cli.bench", description=DESCRIPTION)
    add_arguments(parser)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    return run(args, argv)
