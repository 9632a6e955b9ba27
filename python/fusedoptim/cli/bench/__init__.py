"""The benchmark suite of issue 5: fusedoptim against NumPy, torch.optim and a plain native loop.

Run it with ``python -m fusedoptim.cli.bench`` (``--quick`` for a CI-sized run, ``--full`` up to 1e8 elements, ``-h``
for the options). Modules: :mod:`.cases` (what runs), :mod:`.peers` (the implementations), :mod:`.native` (the
OpenMP loop compiled at run time), :mod:`.timing` (interleaved rounds, medians), :mod:`.runner`,
:mod:`.report` (JSON, Markdown, PNG) and :mod:`.cli`. Nothing here is imported by ``import fusedoptim``.
"""

from __future__ import annotations

from .cli import add_arguments, main, run

__all__ = ["add_arguments", "main", "run"]
