"""The ``fusedoptim`` command itself: ``info``, and every way of starting it (the console script, ``python -m
fusedoptim``, ``python -m fusedoptim.cli``) reaching the same ``main`` in fusedoptim.cli."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points

import fusedoptim


def test_info_command():
    out = subprocess.run(
        [sys.executable, "-m", "fusedoptim", "info", "--json"], capture_output=True, text=True, check=True
    )
    facts = json.loads(out.stdout)
    assert facts["version"] == fusedoptim.__version__
    assert facts["simd_level"] in facts["simd_supported"]
    assert facts["prefetch"] is fusedoptim._core.prefetch()
    assert isinstance(facts["openmp"], bool) and facts["threads"] >= 1
    text = subprocess.run([sys.executable, "-m", "fusedoptim", "info"], capture_output=True, text=True, check=True)
    assert "simd level" in text.stdout


def test_every_way_of_starting_the_command_reaches_the_cli():
    import fusedoptim.__main__ as python_m_fusedoptim
    from fusedoptim.cli.__main__ import main

    assert python_m_fusedoptim.main is main
    # The console script of the installed distribution (an editable install made before the command moved to
    # fusedoptim.cli names fusedoptim.__main__:main, which is the same function).
    (script,) = entry_points(group="console_scripts", name="fusedoptim")
    assert script.load() is main
    out = subprocess.run(
        [sys.executable, "-m", "fusedoptim.cli", "info", "--json"], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout)["version"] == fusedoptim.__version__
