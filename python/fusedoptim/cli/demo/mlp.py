"""A multilayer perceptron in plain NumPy: ReLU hidden layers, softmax cross-entropy, backward by hand.

The model keeps torch.nn.Linear's layout and initialisation, so its parameters line up with
``torch.nn.Sequential(Linear, ReLU, ..., Linear)`` one for one: layer ``k`` has a weight ``W`` of shape
``(out, in)`` and a bias ``b`` of shape ``(out,)``, both drawn from :math:`U(-1/\\sqrt{in}, 1/\\sqrt{in})`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["MLP", "cross_entropy", "cross_entropy_with_grad"]


class MLP:
    r"""A ReLU multilayer perceptron whose gradients are computed by hand, for fusedoptim to apply.

    .. math::
        a_0 = x, \quad z_k = a_{k-1} W_k^\top + b_k, \quad a_k = \max(z_k, 0), \quad
        L = \frac{1}{B}\sum_i \Big(\log \sum_c e^{z_{n,ic}} - z_{n,iy_i}\Big)

    Parameters
    ----------
    sizes
        Layer widths from input to output, e.g. ``(784, 512, 10)``.
    rng
        Draws the initial parameters (torch.nn.Linear's rule: weights and biases uniform in
        :math:`\pm 1/\sqrt{\text{fan\_in}}`), weight first, then bias, layer by layer.
    dtype
        ``np.float32`` (training) or ``np.float64`` (gradient checks).

    Attributes
    ----------
    params
        ``[W_1, b_1, W_2, b_2, ...]``: the arrays an optimizer updates in place.
    grads
        Arrays of the same shapes that :meth:`loss_and_grad` overwrites; they are reused at every call, so
        a step must consume them before the next call (``opt.step(model.grads)`` does).

    Examples
    --------
    >>> import numpy as np, fusedoptim
    >>> from fusedoptim.cli.demo.mlp import MLP
    >>> model = MLP((4, 8, 3), np.random.default_rng(0))
    >>> opt = fusedoptim.SGD(model.params, lr=0.1)
    >>> x, y = np.ones((2, 4), np.float32), np.array([0, 2])
    >>> loss = model.loss_and_grad(x, y)
    >>> opt.step(model.grads)
    """

    def __init__(self, sizes: Sequence[int], rng: np.random.Generator, dtype: type = np.float32) -> None:
        if len(sizes) < 2 or any(int(n) < 1 for n in sizes):
            raise ValueError(f"an MLP needs at least an input and an output size, all positive; got {list(sizes)}")
        self.sizes = tuple(int(n) for n in sizes)
        self.dtype = np.dtype(dtype)
        self.params: list[np.ndarray] = []
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            # torch.nn.Linear: kaiming_uniform_(a=sqrt(5)) for the weight, whose bound works out to
            # 1/sqrt(fan_in), and the same bound for the bias.
            bound = 1.0 / np.sqrt(fan_in)
            self.params.append(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(self.dtype))
            self.params.append(rng.uniform(-bound, bound, fan_out).astype(self.dtype))
        self.grads: list[np.ndarray] = [np.zeros_like(p) for p in self.params]

    @property
    def weights(self) -> list[np.ndarray]:
        return self.params[0::2]

    @property
    def biases(self) -> list[np.ndarray]:
        return self.params[1::2]

    def num_parameters(self) -> int:
        return sum(p.size for p in self.params)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The logits for a batch ``x`` of shape ``(B, sizes[0])``."""
        a = np.asarray(x, dtype=self.dtype)
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            a = a @ w.T  # w is (out, in) C-contiguous; w.T is its free transposed view, BLAS takes it as is
            a += b
            if k < last:
                np.maximum(a, 0, out=a)
        return a

    def predict(self, x: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """Predicted classes, computed ``chunk`` rows at a time to bound memory."""
        return np.concatenate([self.forward(x[i : i + chunk]).argmax(axis=1) for i in range(0, len(x), chunk)])

    def accuracy(self, x: np.ndarray, y: np.ndarray, chunk: int = 4096) -> float:
        return float(np.mean(self.predict(x, chunk) == y)) if len(y) else float("nan")

    def loss(self, x: np.ndarray, y: np.ndarray, chunk: int = 4096) -> float:
        """Mean cross-entropy over ``(x, y)`` (no gradient)."""
        total = 0.0
        for i in range(0, len(x), chunk):
            total += cross_entropy(self.forward(x[i : i + chunk]), y[i : i + chunk]) * len(y[i : i + chunk])
        return total / len(y)

    def loss_and_grad(self, x: np.ndarray, y: np.ndarray, chunk: int | None = None) -> float:
        """Mean cross-entropy of the batch; writes its gradient with respect to every parameter into ``grads``.

        With ``chunk`` the batch is processed ``chunk`` rows at a time and the gradients are summed with
        weights ``len(chunk)/len(batch)``: the full-data-set gradient of gradient descent without holding
        every activation at once.
        """
        n = len(y)
        if n == 0:
            raise ValueError("loss_and_grad needs a non-empty batch")
        if chunk is None or n <= chunk:
            return self._loss_and_grad(x, y, self.grads)
        partial = [np.empty_like(g) for g in self.grads]
        for g in self.grads:
            g.fill(0)
        total = 0.0
        for i in range(0, n, chunk):
            part = slice(i, min(i + chunk, n))
            weight = (part.stop - part.start) / n
            total += self._loss_and_grad(x[part], y[part], partial) * weight
            for g, p in zip(self.grads, partial):
                p *= self.dtype.type(weight)
                g += p
        return total

    def _loss_and_grad(self, x: np.ndarray, y: np.ndarray, grads: list[np.ndarray]) -> float:
        x = np.asarray(x, dtype=self.dtype)
        weights, biases = self.weights, self.biases
        # Forward, keeping each layer's input; ReLU in place, so a hidden activation doubles as its own mask.
        inputs = [x]
        a = x
        for k, (w, b) in enumerate(zip(weights, biases)):
            a = a @ w.T
            a += b
            if k < len(weights) - 1:
                np.maximum(a, 0, out=a)
                inputs.append(a)
        loss, delta = cross_entropy_with_grad(a, y)
        # Backward: delta is dL/dz_k, starting at the logits.
        for k in range(len(weights) - 1, -1, -1):
            if len(delta) == 1:
                # One example (one-sample SGD): an outer product, which BLAS's gemm does several times slower.
                np.multiply(delta.T, inputs[k], out=grads[2 * k])
            else:
                np.matmul(delta.T, inputs[k], out=grads[2 * k])
            np.sum(delta, axis=0, out=grads[2 * k + 1])
            if k > 0:
                delta = delta @ weights[k]
                # dReLU: zero where the unit was off (its activation is exactly 0 there).
                np.multiply(delta, inputs[k] > 0, out=delta)
        return loss


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    r"""Mean softmax cross-entropy :math:`\frac{1}{B}\sum_i \big(\log\sum_c e^{z_{ic}} - z_{iy_i}\big)`.

    Computed with the row maximum subtracted, so large logits do not overflow.
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    sum_exp = np.exp(shifted).sum(axis=1)
    return float(np.mean(np.log(sum_exp) - shifted[np.arange(len(labels)), labels], dtype=np.float64))


def cross_entropy_with_grad(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    r"""Mean softmax cross-entropy and its gradient with respect to the logits,

    .. math::
        \frac{\partial L}{\partial z_{ic}} = \frac{\operatorname{softmax}(z_i)_c - [c = y_i]}{B}.
    """
    batch = len(labels)
    rows = np.arange(batch)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    sum_exp = exp.sum(axis=1)
    loss = float(np.mean(np.log(sum_exp) - shifted[rows, labels], dtype=np.float64))
    exp /= sum_exp[:, None]
    exp[rows, labels] -= 1
    exp /= exp.dtype.type(batch)
    return loss, exp
