"""The benchmark harness (fusedoptim.cli.bench) runs end to end and writes well-formed outputs.

Tiny sizes and few rounds; nothing here asserts on a timing (the numbers of a test run mean nothing).
"""

from __future__ import annotations

import json
import math

import pytest

import fusedoptim
from fusedoptim.cli.bench import main
from fusedoptim.cli.bench.cases import RESNET50_PARAMETERS, make_plan, resnet50_shapes
from fusedoptim.cli.bench.timing import Timed, measure, paired_ratio

TINY = [
    "--quick",
    "--sizes",
    "1000,4096",
    "--triad-size",
    "65536",
    "--repeats",
    "2",
    "--min-time",
    "0.0002",
    "--no-native",
    "--quiet",
]


def run(tmp_path, *options: str) -> tuple[dict, str, str]:
    out = tmp_path / "results"
    assert main([*TINY, *options, "--out", str(out)]) == 0
    results = json.loads((out / "bench.json").read_text())
    return results, (out / "bench.md").read_text(), (out / "summary.md").read_text()


def test_resnet50_shapes_are_the_161_parameters_of_torchvision_resnet50():
    shapes = resnet50_shapes()
    assert len(shapes) == 161
    assert sum(math.prod(s) for s in shapes) == RESNET50_PARAMETERS == 25_557_032
    assert shapes[0] == (64, 3, 7, 7) and shapes[-2:] == [(1000, 2048), (1000,)]


def test_plans():
    quick = make_plan("quick", max_threads=2)
    assert {c.optimizer for c in quick.cases} == {"sgd", "adam"} and quick.dtypes == ["float32"]
    assert {c.suite for c in quick.cases} == {"sweep", "latency", "resnet50", "many4096"}
    assert all(c.threads == 2 for c in quick.cases if c.suite in ("resnet50", "many4096"))
    default = make_plan("default", max_threads=2)
    assert max(c.total for c in default.cases if c.suite == "sweep") == 10**7
    assert {c.dtype for c in default.cases} == {"float32", "float64"} and default.threads == [1, 2]
    full = make_plan("full", optimizers=["adam"], max_threads=2)
    assert max(c.total for c in full.cases if c.suite == "sweep") == 10**8
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_plan("default", optimizers=["adamm"])


def test_interleaved_timing_collects_one_sample_per_round():
    calls = {"a": 0, "b": 0}

    def step(name):
        def f():
            calls[name] += 1

        return f

    rounds = []
    timed = measure(
        {"a": step("a"), "b": step("b")},
        repeats=4,
        min_time=1e-4,
        max_case_time=10,
        between_rounds=lambda: rounds.append(1),
    )
    assert set(timed) == {"a", "b"} and all(len(t.samples) == 4 for t in timed.values())
    assert len(rounds) == 5  # the warm-up round, then four timed ones
    assert paired_ratio(Timed(1, [2.0, 4.0, 6.0]), Timed(1, [1.0, 1.0, 2.0])) == 3.0

    def broken():
        raise RuntimeError("unsupported")

    errors = {}
    timed = measure(
        {"ok": step("a"), "bad": broken},
        repeats=1,
        min_time=1e-4,
        max_case_time=10,
        on_error=lambda name, e: errors.setdefault(name, str(e)),
    )
    assert set(timed) == {"ok"} and errors == {"bad": "unsupported"}


def test_quick_run_writes_json_and_markdown(tmp_path):
    results, report, summary = run(
        tmp_path, "--no-torch", "--no-plots", "--threads", "1,2", "--suites", "sweep,latency,many4096"
    )
    assert results["schema"] == "fusedoptim-bench/1" and results["mode"] == "quick"
    machine = results["machine"]
    for key in ("date", "command", "cpu_model", "logical_cpus", "numpy", "fusedoptim", "caches", "loadavg_start"):
        assert key in machine
    assert machine["fusedoptim"]["simd_level"] in machine["fusedoptim"]["simd_supported"]
    assert machine["torch"] is None and "--no-torch" in machine["command"]

    assert [(b["dtype"], b["threads"]) for b in results["bandwidth"]] == [("float32", 1), ("float32", 2)]
    assert all(b["gbps"] > 0 and b["elements"] == 65536 for b in results["bandwidth"])

    cases = results["cases"]
    sweep = [c for c in cases if c["suite"] == "sweep"]
    assert {(c["optimizer"], c["threads"], c["elements"]) for c in sweep} == {
        (o, t, n) for o in ("sgd", "adam") for t in (1, 2) for n in (1000, 4096)
    }
    for case in sweep:
        peers = case["peers"]
        assert {
            "fusedoptim",
            "fusedoptim_functional",
            "numpy_inplace",
            "numpy_naive",
            "reference",
            "stream_triad",
        } <= set(peers)
        assert case["bytes_per_element"] == {"adam": 28, "sgd": 20}[case["optimizer"]]
        for peer in peers.values():
            assert peer["median_s"] > 0 and len(peer["samples_s"]) == case["rounds"] == 2
            assert peer["gbps"] > 0 and peer["fraction_of_triad"] > 0 and peer["ratio_to_fusedoptim"] > 0
        assert peers["stream_triad"]["bytes_per_element"] == 12
        assert "torch" in case["skipped"] and "native" in case["skipped"]
    latency = [c for c in cases if c["suite"] == "latency"]
    assert len(latency) == 2 and all("numpy_ufunc" in c["peers"] for c in latency)
    many = [c for c in cases if c["suite"] == "many4096"]
    assert len(many) == 1 and many[0]["arrays"] == 1000 and many[0]["elements"] == 4096000
    assert set(many[0]["peers"]) == {"fusedoptim", "fusedoptim_functional"}  # --quick: the targets' peers only

    rows = results["headline"]
    assert len(rows) == 10 and results["headline_threads"] == 2
    for row in rows:
        assert set(row) == {"target", "goal", "measured", "passed", "detail"}
    latency_row = next(r for r in rows if "1000-element" in r["target"])
    assert latency_row["measured"] > 0 and latency_row["passed"] in (True, False)
    assert all(r["passed"] is None for r in rows if "n=1e7" in r["target"] or "torch" in r["target"])

    for text in (report, summary):
        assert text.startswith("# fusedoptim benchmark")
        assert "## Targets (issue 5; float32, 2 threads" in text
        assert "| target | goal | measured | result |" in text
        assert "## Memory bandwidth" in text and "## Latency" in text
    assert "## Adam, float32, 2 threads" in summary and "## Adam, float32, 1 thread" not in summary
    assert "## Adam, float32, 1 thread" in report and "## Not measured" in report
    table = [line for line in report.splitlines() if line.startswith("| 1e3 |")]
    assert table and all(line.count("|") == table[0].count("|") for line in table)


def test_run_with_torch_and_plots(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    results, report, _ = run(tmp_path, "--optimizers", "adam,lion", "--threads", "1", "--suites", "sweep")
    cases = {(c["optimizer"], c["elements"]): c for c in results["cases"]}
    assert {"torch_fused", "torch_foreach", "torch_forloop"} <= set(cases["adam", 1000]["peers"])
    assert "torch" in cases["lion", 1000]["skipped"] and "reference" in cases["lion", 1000]["peers"]
    assert results["machine"]["torch"] is not None
    assert "torch fused" in report
    out = tmp_path / "results"
    plots = sorted(p.name for p in out.glob("*.png"))
    assert plots == ["headline.png", "sweep_adam.png", "sweep_lion.png"]
    for name in plots:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_arguments_exit_with_status_2(tmp_path, capsys):
    assert main(["--optimizers", "adamm", "--out", str(tmp_path)]) == 2
    assert "unknown optimizer" in capsys.readouterr().err


def _benchmark_script(name: str):
    """benchmarks/<name>.py as a module (skips where benchmarks/ is not next to the tests)."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / f"{name}.py"
    if not path.exists():
        pytest.skip("benchmarks/ is not next to the tests (an installed-package run)")
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_divider_floor_script_writes_its_table(tmp_path):
    """benchmarks/divider_floor.py (the evidence for the Adam n=1e6 target) runs and writes JSON and Markdown."""
    import shutil

    if shutil.which("g++") is None and shutil.which("c++") is None:
        pytest.skip("no C++ compiler for the native loops")
    module = _benchmark_script("divider_floor")
    assert (
        module.main(["--n", "4099", "--threads", "1", "--rounds", "2", "--min-time", "0.0001", "--out", str(tmp_path)])
        == 0
    )
    result = json.loads((tmp_path / "divider_floor.json").read_text())
    peers = [row["peer"] for row in result["rows"]]
    assert peers[:4] == [name for name, _ in module.VARIANTS] and "fusedoptim.Adam step" in peers
    assert all(row["time_us"] > 0 for row in result["rows"])
    assert "| peer |" in (tmp_path / "divider_floor.md").read_text()


def test_precision_script_times_every_mode(tmp_path):
    """benchmarks/precision.py (issue 9's figures) times every precision mode of Adam and SGD and counts their
    bytes: Adam 28 (fp32, 16-bit params with a float32 master) and 20 (bfloat16 state); SGD 20 and 16."""
    from fusedoptim import _precision

    module = _benchmark_script("precision")
    assert (
        module.main(["--sizes", "1000", "--threads", "1", "--rounds", "2", "--steps", "1", "--out", str(tmp_path)]) == 0
    )
    rows = json.loads((tmp_path / "precision.json").read_text())["results"]
    found = {(r["optimizer"], r["mode"]): r["bytes_per_element"] for r in rows}
    expected = {
        ("adam", "fp32"): 28,
        ("adam", "fp16 params + fp32 master"): 28,
        ("sgd", "fp32"): 20,
        ("sgd", "fp16 params + fp32 master"): 20,
        ("adam", "fp32 params + fp16 state"): 20,
    }
    if _precision.has_bfloat16():
        expected.update(
            {
                ("adam", "fp32 params + bf16 state"): 20,
                ("adam", "bf16 params + bf16 state"): 20,
                ("sgd", "fp32 params + bf16 state"): 16,
                ("sgd", "bf16 params + bf16 state"): 16,
                ("adam", "fp32 params + bf16 state, staged"): 20,
                ("adam", "fp32 params + bf16 state, stochastic"): 20,
                ("sgd", "bf16 params + fp32 master, stochastic"): 20,
            }
        )
    assert all(found[key] == value for key, value in expected.items())
    # The write-only 16-bit parameter beside a master costs a write-allocate read of 2 bytes more.
    traffic = {(r["optimizer"], r["mode"]): r["traffic_per_element"] for r in rows}
    assert all(traffic[key] == value + (0 if key[1].startswith("fp32") else 2) for key, value in expected.items())
    assert all(r["median_step_s"] > 0 for r in rows)
    assert "| optimizer | n | threads | mode |" in (tmp_path / "precision.md").read_text()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert (tmp_path / "precision.png").stat().st_size > 10_000


def test_grain_script_times_both_policies(tmp_path):
    """benchmarks/grain.py (the measurement behind the parallel grain) times one thread, two threads always
    split and the default policy, and restores the thread knobs it changed."""
    from fusedoptim import _core

    before = _core.requested_num_threads(), _core.get_parallel_grain()
    module = _benchmark_script("grain")
    assert (
        module.main(
            [
                "--sizes",
                "4096",
                "--optimizers",
                "sgd,adam",
                "--rounds",
                "1",
                "--min-time",
                "0.0005",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    rows = json.loads((tmp_path / "grain.json").read_text())["rows"]
    assert [(r["optimizer"], r["n"]) for r in rows] == [("sgd", 4096), ("adam", 4096)]
    assert all(r["one_thread_s"] > 0 and r["two_threads_s"] > 0 and r["default_s"] > 0 for r in rows)
    assert (_core.requested_num_threads(), _core.get_parallel_grain()) == before
    assert "| default policy, 2 threads |" in (tmp_path / "grain.md").read_text()


def test_byte_floor_script_compares_floor_loops_and_kernels(tmp_path):
    """benchmarks/byte_floor.py (issue 9: what fewer bytes can buy here) times the memory-floor loops and the
    fused steps, float32 and bfloat16 state (the latter with prefetching off and on too), and reports the ratios."""
    import shutil

    if shutil.which("g++") is None and shutil.which("c++") is None:
        pytest.skip("no C++ compiler for the native loops")
    pytest.importorskip("ml_dtypes")
    module = _benchmark_script("byte_floor")
    assert module.main(["--n", "5000", "--threads", "1", "--rounds", "1", "--steps", "1", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "byte_floor.json").read_text())["rows"]
    assert [(r["optimizer"], r["bytes_f32"], r["bytes_bf16"]) for r in rows] == [("sgd", 20, 16), ("adam", 28, 20)]
    assert all(r["floor_speedup"] > 0 and r["fused_speedup"] > 0 for r in rows)
    assert all(r["speedup_prefetch_off"] > 0 and r["speedup_prefetch_on"] > 0 for r in rows)
    assert all(r["prefetch_default"] is fusedoptim._core.prefetch() for r in rows)
