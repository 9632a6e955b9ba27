"""fusedoptim.cli.demo.mlp: the hand-written backward pass against finite differences (float64) and against torch
autograd, the initialisation, and the numerics of the cross-entropy."""

from __future__ import annotations

import numpy as np
import pytest

from fusedoptim.cli.demo.mlp import MLP, cross_entropy, cross_entropy_with_grad


def _batch(rng, n, features, classes):
    return rng.standard_normal((n, features)), rng.integers(0, classes, n)


def _numeric_gradient(model, p, x, y, h=1e-6):
    """Central differences of the loss with respect to every element of the parameter ``p``."""
    numeric = np.empty_like(p)
    for i in np.ndindex(p.shape):
        saved = p[i]
        p[i] = saved + h
        plus = model.loss(x, y)
        p[i] = saved - h
        minus = model.loss(x, y)
        p[i] = saved
        numeric[i] = (plus - minus) / (2 * h)
    return numeric


@pytest.mark.parametrize("sizes", [(6, 5, 4), (7, 6, 5, 3), (5, 3)], ids=["one-hidden", "two-hidden", "linear"])
@pytest.mark.parametrize("batch", [9, 1], ids=["batch", "one-example"])  # one example: the outer-product path
def test_gradients_match_finite_differences(sizes, batch):
    rng = np.random.default_rng(1)
    model = MLP(sizes, rng, dtype=np.float64)
    x, y = _batch(rng, batch, sizes[0], sizes[-1])
    model.loss_and_grad(x, y)
    for p, g in zip(model.params, model.grads):
        np.testing.assert_allclose(g, _numeric_gradient(model, p, x, y), rtol=1e-6, atol=1e-8)


def test_loss_and_grad_returns_the_loss_and_chunks_agree():
    rng = np.random.default_rng(2)
    model = MLP((10, 8, 4), rng, dtype=np.float64)
    x, y = _batch(rng, 50, 10, 4)
    loss = model.loss_and_grad(x, y)
    whole = [g.copy() for g in model.grads]
    assert loss == pytest.approx(model.loss(x, y), rel=1e-12)
    chunked = model.loss_and_grad(x, y, chunk=7)  # gradient descent sums the full-batch gradient in chunks
    assert chunked == pytest.approx(loss, rel=1e-12)
    for g, w in zip(model.grads, whole):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-14)


def test_float32_training_path_stays_float32():
    rng = np.random.default_rng(3)
    model = MLP((784, 512, 10), rng)
    assert all(p.dtype == np.float32 and p.flags.c_contiguous for p in model.params)
    assert [p.shape for p in model.params] == [(512, 784), (512,), (10, 512), (10,)]
    assert model.num_parameters() == 784 * 512 + 512 + 512 * 10 + 10
    x = rng.random((64, 784), dtype=np.float32)
    model.loss_and_grad(x, rng.integers(0, 10, 64))
    assert all(g.dtype == np.float32 for g in model.grads)
    assert model.forward(x).dtype == np.float32


def test_initialisation_is_torch_linear_default():
    # torch.nn.Linear: weight and bias uniform in +-1/sqrt(fan_in).
    model = MLP((400, 300, 10), np.random.default_rng(4))
    for w, b in zip(model.weights, model.biases):
        bound = 1 / np.sqrt(w.shape[1])
        for p in (w, b):
            assert np.abs(p).max() <= bound
        assert np.abs(w).max() > 0.99 * bound
        assert w.std() == pytest.approx(bound / np.sqrt(3), rel=0.02)
    same = MLP((400, 300, 10), np.random.default_rng(4))
    for p, q in zip(model.params, same.params):
        np.testing.assert_array_equal(p, q)


def test_cross_entropy_is_stable_for_large_logits():
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    loss, grad = cross_entropy_with_grad(logits, np.array([0, 2]))
    assert loss == pytest.approx(np.log(3) / 2, rel=1e-6)
    assert cross_entropy(logits, np.array([0, 2])) == loss
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-7)


def test_matches_torch_autograd():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    model = MLP((20, 16, 12, 5), rng, dtype=np.float64)
    x, y = _batch(rng, 13, 20, 5)
    loss = model.loss_and_grad(x, y)
    layers = []
    for i, (w, b) in enumerate(zip(model.weights, model.biases)):
        linear = torch.nn.Linear(w.shape[1], w.shape[0], dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
        layers += [linear, torch.nn.ReLU()] if i < len(model.weights) - 1 else [linear]
    net = torch.nn.Sequential(*layers)
    reference = torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y))
    reference.backward()
    assert loss == pytest.approx(reference.item(), rel=1e-12)
    torch_grads = [t.grad.numpy() for t in net.parameters()]
    for g, t in zip(model.grads, torch_grads):
        np.testing.assert_allclose(g, t, rtol=1e-10, atol=1e-14)


def test_rejects_degenerate_sizes():
    with pytest.raises(ValueError, match="at least an input and an output size"):
        MLP((784,), np.random.default_rng())
    with pytest.raises(ValueError):
        MLP((784, 0, 10), np.random.default_rng())
