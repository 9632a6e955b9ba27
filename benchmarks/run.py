"""Runs the benchmark suite: ``python benchmarks/run.py [--quick | --full] [options]``.

A thin wrapper over ``python -m fusedoptim.cli.bench`` (the harness ships in the package, so an installed wheel
runs it too); results go to ``benchmarks/results/`` next to this file unless ``--out`` says otherwise. See
benchmarks/README.md for what is measured and how to read it, and ``--help`` for the options.
"""

from __future__ import annotations

import os
import sys

from fusedoptim.cli.bench import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not any(a == "--out" or a.startswith("--out=") for a in argv):
        argv += ["--out", os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")]
    sys.exit(main(argv))
