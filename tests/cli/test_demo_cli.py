"""The ``fusedoptim train`` and ``fusedoptim tune`` commands: output, --json, --compare's table and PNG,
checkpoints, downloads from a server on 127.0.0.1, errors, and what happens when an extra is missing."""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import json
import shlex
import subprocess
import sys

import pytest
from test_demo_data import idx_bytes, local_server, synthetic_digits, write_mnist_dir

import fusedoptim
from fusedoptim.cli.__main__ import main
from fusedoptim.cli.demo import data
from fusedoptim.cli.demo.train import Reporter

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
HAS_OPTUNA = importlib.util.find_spec("optuna") is not None
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _run_in_tmp_path(tmp_path, monkeypatch):
    """Default output files (fusedoptim-compare.png, ...) land in a temporary directory, not the work tree."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(write_mnist_dir(tmp_path_factory.mktemp("digits"), train=300, test=100))


def _quick(data_dir, *extra, batch=("--batch-size", "32")):
    return [
        "train",
        "--data-dir",
        data_dir,
        "--hidden",
        "16",
        "--epochs",
        "2",
        *batch,
        "--log-every",
        "5",
        "--no-progress",
        *extra,
    ]


def _hide(monkeypatch, *modules):
    """Makes ``import module`` fail, as if the extra that installs it were absent."""
    for name in modules:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            monkeypatch.delitem(sys.modules, loaded)
        monkeypatch.setitem(sys.modules, name, None)


def test_train_prints_the_seed_lines_accuracy_and_time_split(data_dir, capsys):
    assert main(_quick(data_dir, "--lr", "0.1")) == 0
    out = capsys.readouterr().out
    assert "data: digits" in out and "300 training and 100 test images of 8x8, 10 classes" in out
    assert "model: MLP 64-16-10 (1,210 parameters" in out
    assert "optimizer: SGD(lr=0.1), batch 32 (10 steps per epoch), up to 2 epochs" in out
    assert "[1,     5] loss: " in out and "[2,    10] loss: " in out
    assert "epoch 2/2: train loss" in out and "test accuracy" in out
    assert "forward/backward" in out and "optimizer step" in out


def test_train_json(data_dir, capsys):
    assert main(_quick(data_dir, "--optimizer", "adam", "--betas", "0.8,0.99", "--json")) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)  # stdout holds the JSON alone
    assert "[1,     5] loss" in captured.err
    assert summary["command"] == "train" and summary["fusedoptim"] == fusedoptim.__version__
    assert summary["data"]["train"] == 300 and summary["data"]["image_shape"] == [8, 8]
    (run,) = summary["runs"]
    assert run["optimizer_class"] == "Adam" and run["hyperparameters"]["betas"] == [0.8, 0.99]
    assert run["epochs_run"] == 2 and run["steps"] == 20 and len(run["history"]) == 2
    assert set(run["history"][0]) >= {"train_loss", "test_accuracy", "forward_backward_seconds", "optimizer_seconds"}
    assert 0 <= run["final_test_accuracy"] <= 1 and run["stopped"] is None


def test_train_quiet_json_prints_only_json(data_dir, capsys):
    assert main(_quick(data_dir, "--json", "--quiet")) == 0
    captured = capsys.readouterr()
    json.loads(captured.out)
    assert captured.err == ""


def test_compare_writes_table_and_plot(data_dir, tmp_path, capsys):
    plot = tmp_path / "compare.png"
    methods = "gd,sgd,momentum,adam:lr=3e-3,adaptive"
    assert main(_quick(data_dir, "--compare", methods, "--plot", str(plot), "--json")) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    labels = [run["label"] for run in summary["runs"]]
    assert labels == ["gd", "sgd", "momentum", "adam:lr=3e-3", "adaptive"]
    assert [run["batch_size"] for run in summary["runs"]] == ["full", 32, 32, 32, 32]
    assert [run["steps"] for run in summary["runs"]] == [2, 20, 20, 20, 20]
    table = captured.err[captured.err.index("method  ") :]
    for label in labels:
        assert f"\n{label} " in table
    assert "SGD(lr=0.01, momentum=0.9)" in table and "Adam(lr=0.003)" in table
    assert "RMSprop(lr=0.001, alpha=0.9, eps_in_sqrt=True)" in table
    if HAS_MATPLOTLIB:
        assert plot.read_bytes()[:8] == PNG_MAGIC
        assert summary["plot"] == str(plot) and f"plot: {plot}" in table
    else:
        assert not plot.exists() and summary["plot"] is None
        assert 'pip install "fusedoptim[demo]"' in captured.err


def test_compare_starts_every_method_alike(data_dir, capsys):
    # The same seed: the same initial parameters and batch order, so two identical methods match exactly.
    assert main(_quick(data_dir, "--compare", "sgd,sgd:lr=0.01", "--json", "--quiet", "--no-plot")) == 0
    first, second = json.loads(capsys.readouterr().out)["runs"]
    for a, b in zip(first["history"], second["history"]):
        assert (a["train_loss"], a["test_accuracy"]) == (b["train_loss"], b["test_accuracy"])


def test_compare_without_matplotlib_still_prints_the_table(data_dir, tmp_path, capsys, monkeypatch):
    _hide(monkeypatch, "matplotlib")
    plot = tmp_path / "c.png"
    assert main(_quick(data_dir, "--compare", "sgd,adam", "--plot", str(plot))) == 0
    out = capsys.readouterr().out
    assert 'note: plot not written: the plot needs matplotlib: pip install "fusedoptim[demo]"' in out
    assert "method  " in out and not plot.exists()


def test_without_tqdm_there_is_no_progress_bar(monkeypatch):
    _hide(monkeypatch, "tqdm")
    reporter = Reporter(progress=True)
    assert reporter.progress_missing
    with reporter.bar(10, "epoch") as bar:
        assert bar is None


def test_single_run_plot(data_dir, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "run.png"
    assert main(_quick(data_dir, "--plot", str(plot))) == 0
    assert plot.read_bytes()[:8] == PNG_MAGIC
    assert f"plot: {plot}" in capsys.readouterr().out


def test_resume_equals_uninterrupted_through_the_cli(data_dir, tmp_path, capsys):
    checkpoint = str(tmp_path / "run.npz")
    common = _quick(data_dir, "--optimizer", "momentum", "--json", "--quiet")
    assert main([*common, "--epochs", "3"]) == 0
    uninterrupted = json.loads(capsys.readouterr().out)["runs"][0]
    assert main([*common, "--epochs", "3", "--max-steps", "13", "--save", checkpoint]) == 0
    interrupted = json.loads(capsys.readouterr().out)["runs"][0]
    assert interrupted["steps"] == 13 and interrupted["stopped"].startswith("--max-steps 13")
    assert main([*common, "--epochs", "3", "--resume", checkpoint]) == 0
    resumed = json.loads(capsys.readouterr().out)["runs"][0]
    for key in ("steps", "final_train_loss", "final_test_accuracy", "curve"):
        assert resumed[key] == uninterrupted[key]
    assert [(r["train_loss"], r["test_accuracy"]) for r in resumed["history"]] == [
        (r["train_loss"], r["test_accuracy"]) for r in uninterrupted["history"]
    ]


def test_resume_with_other_settings_is_refused(data_dir, tmp_path, capsys):
    checkpoint = str(tmp_path / "run.npz")
    assert main(_quick(data_dir, "--save", checkpoint, "--quiet")) == 0
    assert main(_quick(data_dir, "--resume", checkpoint, "--lr", "0.5", "--quiet")) == 1
    assert "was made by a different run (hyperparameters:" in capsys.readouterr().err


def test_full_batch_and_one_sample_modes(data_dir, capsys):
    assert main(_quick(data_dir, "--json", "--quiet", batch=["--full-batch"])) == 0
    run = json.loads(capsys.readouterr().out)["runs"][0]
    assert run["batch_size"] == "full" and run["steps"] == 2
    argv = _quick(data_dir, "--epochs", "1", "--train-subset", "40", "--json", "--quiet", batch=["--one-sample"])
    assert main(argv) == 0
    run = json.loads(capsys.readouterr().out)["runs"][0]
    assert run["batch_size"] == 1 and run["steps"] == 40


def test_stopping_options(data_dir, capsys):
    assert main(_quick(data_dir, "--epochs", "30", "--lr", "0", "--patience", "2", "--json", "--quiet")) == 0
    run = json.loads(capsys.readouterr().out)["runs"][0]
    assert run["epochs_run"] == 3 and run["stopped"].startswith("no improvement")


def test_threads_option_is_restored(data_dir, capsys):
    before = fusedoptim.get_num_threads()
    assert main(_quick(data_dir, "--threads", "1", "--epochs", "1")) == 0
    assert "threads: 1 for fusedoptim's kernels" in capsys.readouterr().out
    assert fusedoptim.get_num_threads() == before


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--optimizer", "adam", "--momentum", "0.9"], "--momentum is not a hyperparameter of adam"),
        (["--optimizer", "nosuch"], "unknown method 'nosuch'"),
        (["--full-batch", "--one-sample"], "exclude each other"),
        (["--optimizer", "gd", "--batch-size", "8"], "the method sets its own batch"),
        (["--compare", "sgd,adam", "--lr", "0.1"], "with --compare, give each method's settings in the list"),
        (["--compare", "sgd,bogus"], "--compare: unknown method 'bogus'"),
        (["--save-every", "3"], "--save-every needs --save"),
        (["--betas", "0.9"], "--betas is not a hyperparameter of sgd"),
        (["--optimizer", "adam", "--betas", "0.9"], "expected NUMBER/NUMBER"),
        (["--hidden", "0"], "hidden widths must be positive"),
    ],
)
def test_usage_errors(data_dir, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data-dir", data_dir, *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_data_errors_are_reported_clearly(tmp_path, capsys):
    assert main(["train", "--data-dir", str(tmp_path / "nowhere")]) == 1
    assert "fusedoptim train: error: --data-dir" in capsys.readouterr().err
    broken = write_mnist_dir(tmp_path / "broken", gz=False, train=30, test=10)
    raw = (broken / "train-images-idx3-ubyte").read_bytes()
    (broken / "train-images-idx3-ubyte").write_bytes(raw[:-10])
    assert main(["train", "--data-dir", str(broken)]) == 1
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte: truncated IDX file: dimensions (30, 8, 8) need 1920 bytes" in err


def test_download_through_the_cli(tmp_path, capsys, monkeypatch):
    (x_train, y_train), (x_test, y_test) = synthetic_digits(train=60, test=20)
    arrays = {
        "train-images-idx3-ubyte.gz": x_train,
        "train-labels-idx1-ubyte.gz": y_train,
        "t10k-images-idx3-ubyte.gz": x_test,
        "t10k-labels-idx1-ubyte.gz": y_test,
    }
    contents = {name: gzip.compress(idx_bytes(array)) for name, array in arrays.items()}
    monkeypatch.setattr(
        data, "MNIST_FILES", {name: "md5:" + hashlib.md5(body).hexdigest() for name, body in contents.items()}
    )
    cache = tmp_path / "cache"
    with local_server(contents) as url:
        argv = ["train", "--download", "--mirror", url, "--cache-dir", str(cache), "--hidden", "8", "--epochs", "1"]
        assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"downloaded {url}train-images-idx3-ubyte.gz" in out and "md5 verified" in out
    assert "data: mnist: 60 training and 20 test images" in out
    # Later runs find MNIST in the cache without --download.
    assert main(["train", "--cache-dir", str(cache), "--hidden", "8", "--epochs", "1"]) == 0
    assert "data: mnist: 60 training" in capsys.readouterr().out


def test_download_with_a_bad_checksum_fails_clearly(tmp_path, capsys):
    # Served files are not the real MNIST, so the real checksums do not match.
    contents = {name: b"not mnist" for name in data.MNIST_FILES}
    with local_server(contents) as url:
        argv = ["train", "--download", "--mirror", url, "--cache-dir", str(tmp_path)]
        assert main(argv) == 1
    err = capsys.readouterr().err
    assert "could not download train-images-idx3-ubyte.gz with the expected checksum" in err
    assert "checksum mismatch (md5 " in err and "expected f68b3c2dcbeaaa9fbdd348bbdeb94873" in err
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(not HAS_OPTUNA, reason="optuna (the tune extra) is not installed")
def test_tune(data_dir, tmp_path, capsys):
    plot = tmp_path / "history.png"
    argv = [
        "tune",
        "--data-dir",
        data_dir,
        "--optimizer",
        "sgd",
        "--params",
        "lr,momentum",
        "--trials",
        "4",
        "--epochs",
        "1",
        "--hidden",
        "16",
        "--batch-size",
        "32",
        "--plot",
        str(plot),
        "--json",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert len(summary["trials"]) == 4 and set(summary["dimensions"]) == {"lr", "momentum"}
    best = summary["best"]
    assert 0 <= best["value"] <= 1 and set(best["params"]) == {"lr", "momentum"}
    assert summary["command"] == "tune"
    assert summary["train_command"].startswith("fusedoptim train --optimizer sgd --lr ")
    assert "best trial: #" in captured.err
    if HAS_MATPLOTLIB:
        assert plot.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.skipif(not HAS_OPTUNA, reason="optuna (the tune extra) is not installed")
def test_tune_rejects_unknown_dimensions(data_dir, capsys):
    assert main(["tune", "--data-dir", data_dir, "--optimizer", "adam", "--params", "lr,momentum"]) == 1
    assert "cannot tune momentum for adam" in capsys.readouterr().err


def test_tune_suggests_a_train_command_that_parses():
    from fusedoptim.cli.demo.cli import add_commands
    from fusedoptim.cli.demo.tune import command_for

    command = command_for("sgd", {"lr": 0.0123, "momentum": 0.9, "nesterov": True, "momentum_init": "zeros"})
    assert command == ("fusedoptim train --optimizer sgd --lr 0.0123 --momentum 0.9 --nesterov --momentum-init zeros")
    parser = argparse.ArgumentParser(prog="fusedoptim")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(shlex.split(command)[1:])
    assert (args.hp_lr, args.hp_momentum, args.hp_nesterov, args.hp_momentum_init) == ("0.0123", "0.9", True, "zeros")
    command = command_for("adam", {"betas": (0.8, 0.99), "amsgrad": False})
    args = parser.parse_args(shlex.split(command)[1:])
    assert (args.hp_betas, args.hp_amsgrad) == ("0.8,0.99", False)


def test_tune_without_optuna_says_how_to_install_it(data_dir, capsys, monkeypatch):
    _hide(monkeypatch, "optuna")
    assert main(["tune", "--data-dir", data_dir]) == 1
    assert 'fusedoptim tune needs optuna: pip install "fusedoptim[tune]"' in capsys.readouterr().err


def test_info_is_unchanged(capsys):
    assert main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == fusedoptim.info()


def test_console_entry_point(data_dir):
    result = subprocess.run(
        [sys.executable, "-m", "fusedoptim", *_quick(data_dir, "--epochs", "1", "--json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["runs"][0]["epochs_run"] == 1
