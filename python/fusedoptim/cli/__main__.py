"""The ``fusedoptim`` command line: ``info``, ``train``, ``tune`` and ``bench`` (``fusedoptim ...``, or
``python -m fusedoptim ...``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def _info(args: argparse.Namespace) -> int:
    import fusedoptim

    facts = fusedoptim.info()
    if args.json:
        print(json.dumps(facts, indent=2))
        return 0
    print(f"fusedoptim {facts['version']}")
    print(f"  compiler      {facts['compiler']}")
    print(f"  openmp        {'on' if facts['openmp'] else 'off (kernels run on one thread)'}")
    if facts["sanitize"]:
        print("  sanitizers    address, undefined (a checking build, not for use)")
    print(f"  threads       {facts['threads']}")
    print(f"  simd level    {facts['simd_level']}")
    print(f"  compiled      {', '.join(facts['simd_compiled'])}")  # type: ignore[arg-type]
    print(f"  this cpu runs {', '.join(facts['simd_supported'])}")  # type: ignore[arg-type]
    print(f"  prefetch      {'on' if facts['prefetch'] else 'off'} (mixed-precision loops; FUSEDOPTIM_PREFETCH=0/1)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fusedoptim", description="Fused in-place optimizers for NumPy.")
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="version, compiler, OpenMP and threads, SIMD level")
    info.add_argument("--json", action="store_true", help="print the facts as JSON")
    info.set_defaults(run=_info)
    # The training demo lives in fusedoptim.cli.demo, apart from the optimizer core; only its parsers load here.
    from fusedoptim.cli.demo.cli import add_commands

    add_commands(commands)
    from fusedoptim.cli.bench.cli import DESCRIPTION, add_arguments
    from fusedoptim.cli.bench.cli import run as run_bench

    bench = commands.add_parser(
        "bench", help="the benchmark suite (writes JSON, Markdown and PNG plots)", description=DESCRIPTION
    )
    add_arguments(bench)
    bench_argv = list(sys.argv[1:] if argv is None else argv)[1:]
    bench.set_defaults(run=lambda a: run_bench(a, bench_argv))
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
