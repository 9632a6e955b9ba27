"""LBFGS (python/fusedoptim/lbfgs.py): against torch.optim.LBFGS 2.13 iteration by iteration, against the NumPy
transcription of torch's algorithm below (the spec), bitwise for any thread count and SIMD level, through
state_dict, and refusing bad input with nothing changed.

How close, and why. Least squares and logistic regression, float32 and float64, with and without the line search
(lr 1, 0.1 and 3: accepted at once, extrapolating, zooming), compared after every iteration (steps of max_iter=1)
and after steps of 5 iterations with a history of 3 (it wraps), before convergence: the loss, every parameter, and
every state entry; counters exactly, the rest normwise (max |a - b| <= rtol * max |b|, as a difference of gradients
has elements far below its scale). The tolerances are 30 to 100x the largest difference measured:

* against the spec, on the same NumPy closure: the same operations in the same order, each elementwise one rounded
  to the parameters' dtype (s = d*t, y = g - prev, q + a*y, q*H_diag, p + t*d, the scalars rounded to the dtype
  first, no fused multiply-add) and every dot product and sum in double. Only the order in which the dot products
  are summed differs (fixed blocks and lanes in the kernels, NumPy's in the spec), by a few ulps of double. Measured:
  float32 bit for bit in every parameter and vector (the double scalars ro and H_diag within 5e-16), float64 within
  3e-14. Tolerances 1e-6 and 1e-12.
* against torch, each with its own closure (NumPy's and torch's matrix products round differently): float64 within
  1.2e-13 (torch sums in another order, and its add with alpha is a fused multiply-add): tolerance 1e-11. For
  float32 parameters torch computes in float32 what fusedoptim computes in double (its dot products, ro, H_diag,
  the two-loop coefficients, sum |g|, and the line search's arithmetic with them are float32 tensors): within 4e-5,
  tolerance 3e-3. (Run to convergence, float32 trajectories then part at the noise level; that is not compared.)
"""

from __future__ import annotations

import copy
import math
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fusedoptim
from fusedoptim import _core

ITERATIONS = 8
# Normwise relative tolerances (_close), 30 to 100x the largest difference measured (see the top).
TOL_SPEC = {np.float32: 1e-6, np.float64: 1e-12}
TOL_TORCH = {np.float32: 3e-3, np.float64: 1e-11}


@pytest.fixture(scope="module")
def torch() -> Any:
    return pytest.importorskip("torch")


# --- the spec: torch.optim.LBFGS.step in NumPy, on one concatenated vector ----------------------------------


def _cubic(x1, f1, g1, x2, f2, g2, bounds=None):
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square >= 0:
        d2 = math.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a.astype(np.float64), b.astype(np.float64)))


def _strong_wolfe(obj_func, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    d_norm = float(np.abs(d).max())
    g = g.copy()
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = _dot(g_new, d)
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f, bracket_g, bracket_gtd = (
                [t_prev, t],
                [f_prev, f_new],
                [g_prev, g_new.copy()],
                [gtd_prev, gtd_new],
            )
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f, bracket_g, bracket_gtd = (
                [t_prev, t],
                [f_prev, f_new],
                [g_prev, g_new.copy()],
                [gtd_prev, gtd_new],
            )
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new.copy(), gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = _dot(g_new, d)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1])
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = _dot(g_new, d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new.copy(), gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos], bracket_gtd[high_pos] = bracket_g[low_pos], bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new.copy(), gtd_new
    t = bracket[low_pos]
    return bracket_f[low_pos], bracket_g[low_pos], t, ls_func_evals


class SpecLBFGS:
    """torch.optim.LBFGS (2.13) transcribed to NumPy, operation by operation, on one concatenated vector: the flat
    vectors in the parameters' dtype, each elementwise operation rounded to it (scalars rounded first, as torch
    rounds an alpha), dot products and sums in double (where torch, for float32, reduces in float32)."""

    def __init__(
        self,
        params,
        lr=1,
        max_iter=20,
        max_eval=None,
        tolerance_grad=1e-7,
        tolerance_change=1e-9,
        history_size=100,
        line_search_fn=None,
    ):
        self.params = params
        self.dtype = params[0].dtype.type
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        self.group = dict(
            lr=lr,
            max_iter=max_iter,
            max_eval=max_eval,
            tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change,
            history_size=history_size,
            line_search_fn=line_search_fn,
        )
        self.state: dict[str, Any] = {}

    def _flat(self, grads):
        return np.concatenate([g.reshape(-1) for g in grads])

    def _add_grad(self, t, d):
        offset = 0
        for p in self.params:
            p += self.dtype(t) * d[offset : offset + p.size].reshape(p.shape)
            offset += p.size

    def _set_param(self, x):
        for p, v in zip(self.params, x, strict=True):
            p[...] = v

    def _evaluate(self, closure):
        loss, grads = closure()
        return float(loss), self._flat(grads)

    def step(self, closure):
        T = self.dtype
        group = self.group
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        line_search_fn, history_size = group["line_search_fn"], group["history_size"]
        state = self.state
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        orig_loss, grads = closure()
        loss, flat_grad = float(orig_loss), self._flat(grads)
        current_evals = 1
        state["func_evals"] += 1
        opt_cond = np.abs(flat_grad).max() <= T(tolerance_grad)
        if opt_cond:
            return orig_loss
        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        H_diag, prev_flat_grad, prev_loss = state.get("H_diag"), state.get("prev_flat_grad"), state.get("prev_loss")
        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1.0
            else:
                y = flat_grad - prev_flat_grad
                s = d * T(t)
                ys = _dot(y, s)
                if ys > 1e-10:
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / _dot(y, y)
                num_old = len(old_dirs)
                al = [0.0] * num_old
                q = -flat_grad
                for i in range(num_old - 1, -1, -1):
                    al[i] = _dot(old_stps[i], q) * ro[i]
                    q = q + T(-al[i]) * old_dirs[i]
                d = r = q * T(H_diag)
                for i in range(num_old):
                    be_i = _dot(old_dirs[i], r) * ro[i]
                    r = r + T(al[i] - be_i) * old_stps[i]
                d = r
            prev_flat_grad = flat_grad.copy()
            prev_loss = loss
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / float(np.abs(flat_grad.astype(np.float64)).sum())) * lr
            else:
                t = lr
            gtd = _dot(flat_grad, d)
            if gtd > -tolerance_change:
                break
            ls_func_evals = 0
            if line_search_fn is not None:
                x_init = [p.copy() for p in self.params]

                def obj_func(x, t, d):
                    self._add_grad(t, d)
                    f, g = self._evaluate(closure)
                    self._set_param(x)
                    return f, g

                loss, flat_grad, t, ls_func_evals = _strong_wolfe(
                    obj_func, x_init, t, d, loss, flat_grad, gtd, max_ls=max_eval - current_evals
                )
                self._add_grad(t, d)
                opt_cond = np.abs(flat_grad).max() <= T(tolerance_grad)
            else:
                self._add_grad(t, d)
                if n_iter != max_iter:
                    loss, flat_grad = self._evaluate(closure)
                    opt_cond = np.abs(flat_grad).max() <= T(tolerance_grad)
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals
            if n_iter == max_iter:
                break
            if current_evals >= max_eval:
                break
            if opt_cond:
                break
            if np.abs(d * T(t)).max() <= T(tolerance_change):
                break
            if abs(loss - prev_loss) < tolerance_change:
                break
        state.update(
            d=d,
            t=t,
            old_dirs=old_dirs,
            old_stps=old_stps,
            ro=ro,
            H_diag=H_diag,
            prev_flat_grad=prev_flat_grad,
            prev_loss=prev_loss,
        )
        return orig_loss


# --- problems -----------------------------------------------------------------------------------------------


class Problem:
    """A convex objective of parameters with ``shapes``: a NumPy closure over given arrays (loss, grads), and
    the same in torch with autograd."""

    shapes: tuple[tuple[int, ...], ...]

    def initial(self, dtype) -> list[np.ndarray]:
        rng = np.random.default_rng(7)
        return [(0.1 * rng.standard_normal(s)).astype(dtype) for s in self.shapes]

    def closure(self, params: list[np.ndarray], dtype, names: list[str] | None = None) -> Callable[[], Any]:
        raise NotImplementedError

    def torch_closure(self, torch, opt, tparams):
        raise NotImplementedError


class LeastSquares(Problem):
    """0.5/m |A vec(W) + b - c|^2 with W (5, 4) and b (10,) stacked, ill-conditioned A."""

    shapes = ((5, 4), (10,))

    def __init__(self) -> None:
        rng = np.random.default_rng(1)
        m, n = 80, 30
        u, _ = np.linalg.qr(rng.standard_normal((m, n)))
        v, _ = np.linalg.qr(rng.standard_normal((n, n)))
        self.A = u @ np.diag(np.geomspace(1, 30, n)) @ v.T
        self.c = rng.standard_normal(m)
        self.m = m

    def closure(self, params, dtype, names=None):
        A, c = self.A.astype(dtype), self.c.astype(dtype)

        def closure():
            x = np.concatenate([p.reshape(-1) for p in params])
            r = A @ x - c
            g = (A.T @ r) / dtype(self.m)
            grads = [g[:20].reshape(5, 4), g[20:]]
            return 0.5 * float(r.astype(np.float64) @ r) / self.m, grads if names is None else dict(
                zip(names, grads, strict=True)
            )

        return closure

    def torch_closure(self, torch, opt, tparams):
        dtype = tparams[0].dtype
        A, c = torch.tensor(self.A, dtype=dtype), torch.tensor(self.c, dtype=dtype)

        def closure():
            opt.zero_grad()
            r = A @ torch.cat([p.reshape(-1) for p in tparams]) - c
            loss = 0.5 * (r @ r) / self.m
            loss.backward()
            return loss

        return closure


class Logistic(Problem):
    """Logistic regression (mean log-loss, L2 0.01/2 |w|^2) of 12 features, weight (3, 4) and bias (1,)."""

    shapes = ((3, 4), (1,))

    def __init__(self, samples: int = 300, features: tuple[int, ...] = (3, 4)) -> None:
        rng = np.random.default_rng(2)
        self.shapes = (features, (1,))
        k = int(np.prod(features))
        self.X = rng.standard_normal((samples, k)) * np.geomspace(0.3, 3, k) * math.sqrt(12 / k)
        w_true = rng.standard_normal(k)
        self.y = (rng.random(samples) < 1 / (1 + np.exp(-(self.X @ w_true) - 0.5))).astype(np.float64)
        self.lam = 0.01

    def closure(self, params, dtype, names=None):
        X, y, shape = self.X.astype(dtype), self.y.astype(dtype), self.shapes[0]
        m, lam = dtype(len(self.y)), dtype(self.lam)

        def closure():
            w, b = params[0].reshape(-1), params[1]
            z = X @ w + b[0]
            loss = float(np.mean(np.logaddexp(0, z.astype(np.float64)) - y * z) + 0.5 * self.lam * float(w @ w))
            r = (dtype(0.5) * (1 + np.tanh(dtype(0.5) * z)) - y) / m  # the sigmoid, without overflow
            grads = [(X.T @ r + lam * w).reshape(shape), np.array([r.sum()], dtype=dtype)]
            return loss, grads if names is None else dict(zip(names, grads, strict=True))

        return closure

    def torch_closure(self, torch, opt, tparams):
        dtype = tparams[0].dtype
        X, y = torch.tensor(self.X, dtype=dtype), torch.tensor(self.y, dtype=dtype)

        def closure():
            opt.zero_grad()
            w = tparams[0].reshape(-1)
            z = X @ w + tparams[1][0]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y) + 0.5 * self.lam * (w @ w)
            loss.backward()
            return loss

        return closure


PROBLEMS = {"least_squares": LeastSquares, "logistic": Logistic}
LINE_SEARCHES = [None, "strong_wolfe"]


def _state(opt) -> dict[str, Any]:
    """The optimizer's state in the spec's terms: flat vectors, lists, Python scalars."""
    return opt.state_dict()["state"].get(0, {})


def _close(ours: Any, other: Any, rtol: float, what: str) -> None:
    """Normwise: max |ours - other| <= rtol * max |other| (elementwise tolerances are meaningless for the small
    elements of a difference of gradients)."""
    ours, other = np.asarray(ours, dtype=np.float64), np.asarray(other, dtype=np.float64)
    assert ours.shape == other.shape, what
    error, scale = np.abs(ours - other).max(initial=0.0), np.abs(other).max(initial=0.0)
    assert error <= rtol * scale, f"{what}: max |difference| {error:.3g} > {rtol:g} * {scale:.3g}"


def _compare(
    params, other_params, loss, other_loss, ours: dict[str, Any], other: dict[str, Any], rtol: float, dtype
) -> None:
    _close(loss, other_loss, rtol, "loss")
    for i, (a, b) in enumerate(zip(params, other_params, strict=True)):
        _close(a, b, rtol, f"params[{i}]")
    assert (ours["func_evals"], ours["n_iter"]) == (other["func_evals"], other["n_iter"])
    if "d" not in other:
        return
    for key in ("d", "prev_flat_grad"):
        assert ours[key].dtype == dtype and ours[key].shape == (sum(p.size for p in params),)
        _close(ours[key], other[key], rtol, key)
    assert len(ours["old_dirs"]) == len(other["old_dirs"]) == len(ours["old_stps"]) == len(ours["ro"])
    for key in ("old_dirs", "old_stps"):
        for i, (a, b) in enumerate(zip(ours[key], other[key], strict=True)):
            _close(a, b, rtol, f"{key}[{i}]")
    for key in ("t", "H_diag", "prev_loss"):
        _close(ours[key], float(other[key]), rtol, key)
    _close(ours["ro"], [float(r) for r in other["ro"]], rtol, "ro")


def _torch_state(torch, topt) -> dict[str, Any]:
    state = topt.state[topt._params[0]]

    def numpy(v):
        return v.detach().numpy() if isinstance(v, torch.Tensor) else v

    return {k: ([numpy(x) for x in v] if isinstance(v, list) else numpy(v)) for k, v in state.items()}


# --- against the spec and torch -----------------------------------------------------------------------------

# One iteration per step, every iteration compared. max_eval 25 (max_iter=1 alone would give the line search a
# single evaluation); lr 0.1 makes the line search extrapolate (its bracketing phase interpolates), lr 3 zoom.
EACH = [(None, 1), ("strong_wolfe", 1), ("strong_wolfe", 0.1), ("strong_wolfe", 3)]
EACH_IDS = ["fixed", "strong_wolfe", "strong_wolfe-lr0.1", "strong_wolfe-lr3"]
# Steps of 5 iterations with a history of 3 (it wraps), two steps, before convergence.
WHOLE = dict(max_iter=5, history_size=3)


def _run_against(prob, other_params, other_step, other_state, dtype, rtol, steps, **options) -> None:
    params = prob.initial(dtype)
    opt = fusedoptim.LBFGS(params, **options)
    closure = prob.closure(params, dtype)
    losses = []
    for _ in range(steps):
        loss = opt.step(closure)
        _compare(params, other_params, loss, other_step(), _state(opt), other_state(), rtol, dtype)
        losses.append(loss)
    assert losses[-2] - losses[-1] > 1e-6 * abs(losses[-1])  # not converged yet


def _against_spec(prob, dtype, steps, **options) -> None:
    spec = prob.initial(dtype)
    ref = SpecLBFGS(spec, **options)
    spec_closure = prob.closure(spec, dtype)
    _run_against(
        prob, spec, lambda: ref.step(spec_closure), lambda: ref.state, dtype, TOL_SPEC[dtype], steps, **options
    )


def _against_torch(torch, prob, dtype, steps, **options) -> None:
    tparams = [torch.tensor(p, requires_grad=True) for p in prob.initial(dtype)]
    topt = torch.optim.LBFGS(tparams, **options)
    tclosure = prob.torch_closure(torch, topt, tparams)
    views = [p.detach().numpy() for p in tparams]
    _run_against(
        prob,
        views,
        lambda: topt.step(tclosure).item(),
        lambda: _torch_state(torch, topt),
        dtype,
        TOL_TORCH[dtype],
        steps,
        **options,
    )


@pytest.mark.parametrize(("line_search_fn", "lr"), EACH, ids=EACH_IDS)
@pytest.mark.parametrize("problem", list(PROBLEMS), ids=list(PROBLEMS))
def test_matches_spec_each_iteration(problem, line_search_fn, lr, dtype):
    _against_spec(
        PROBLEMS[problem](),
        dtype,
        ITERATIONS,
        lr=lr,
        max_iter=1,
        max_eval=25,
        history_size=4,
        line_search_fn=line_search_fn,
    )


@pytest.mark.parametrize("line_search_fn", LINE_SEARCHES, ids=["fixed", "strong_wolfe"])
@pytest.mark.parametrize("problem", list(PROBLEMS), ids=list(PROBLEMS))
def test_matches_spec_whole_steps(problem, line_search_fn, dtype):
    _against_spec(PROBLEMS[problem](), dtype, 2, line_search_fn=line_search_fn, **WHOLE)


@pytest.mark.parametrize(("line_search_fn", "lr"), EACH, ids=EACH_IDS)
@pytest.mark.parametrize("problem", list(PROBLEMS), ids=list(PROBLEMS))
def test_matches_torch_each_iteration(torch, problem, line_search_fn, lr, dtype):
    _against_torch(
        torch,
        PROBLEMS[problem](),
        dtype,
        ITERATIONS,
        lr=lr,
        max_iter=1,
        max_eval=25,
        history_size=4,
        line_search_fn=line_search_fn,
    )


@pytest.mark.parametrize("line_search_fn", LINE_SEARCHES, ids=["fixed", "strong_wolfe"])
@pytest.mark.parametrize("problem", list(PROBLEMS), ids=list(PROBLEMS))
def test_matches_torch_whole_steps(torch, problem, line_search_fn, dtype):
    _against_torch(torch, PROBLEMS[problem](), dtype, 2, line_search_fn=line_search_fn, **WHOLE)


def test_logistic_regression_converges(torch):
    """torch's defaults with the line search, stepped until the gradient is at tolerance_grad (float64)."""
    prob = Logistic()
    ours = prob.initial(np.float64)
    tparams = [torch.tensor(p, requires_grad=True) for p in prob.initial(np.float64)]
    opt = fusedoptim.LBFGS(ours, line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=0)
    topt = torch.optim.LBFGS(tparams, line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=0)
    closure, tclosure = prob.closure(ours, np.float64), prob.torch_closure(torch, topt, tparams)
    for _ in range(5):
        opt.step(closure)
        topt.step(tclosure)
    _, grads = closure()
    assert max(np.abs(g).max() for g in grads) <= 1e-9
    for a, b in zip(ours, tparams, strict=True):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-8, atol=1e-10)


def test_readme_example_converges(capsys):
    """README's L-BFGS example runs and reaches the optimum (Newton's method gives loss 0.12590187100670)."""
    readme = Path(__file__).resolve().parents[2] / "README.md"
    if not readme.exists():
        pytest.skip("no README.md beside the tests")
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(encoding="utf-8"), re.S)
    code = next(b for b in blocks if b.startswith("# L-BFGS: a logistic regression fitted to convergence"))
    exec(compile(code, "README.md", "exec"), {})
    assert re.search(r"loss 0\.12590187$", capsys.readouterr().out.strip())


def test_missing_gradient_counts_as_zero():
    """torch's _gather_flat_grad: a parameter without a gradient contributes zeros."""
    prob = LeastSquares()
    a, b = prob.initial(np.float64), prob.initial(np.float64)
    inner_a, inner_b = prob.closure(a, np.float64), prob.closure(b, np.float64)

    def closure_a():
        loss, grads = inner_a()
        return loss, [grads[0], None]

    def closure_b():
        loss, grads = inner_b()
        return loss, [grads[0], np.zeros_like(grads[1])]

    opt_a, opt_b = fusedoptim.LBFGS(a, max_iter=5), fusedoptim.LBFGS(b, max_iter=5)
    opt_a.step(closure_a)
    opt_b.step(closure_b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert np.array_equal(a[1], prob.initial(np.float64)[1])


def test_named_parameters():
    prob = LeastSquares()
    named = dict(zip(["w", "b"], prob.initial(np.float64), strict=True))
    plain = prob.initial(np.float64)
    opt_named = fusedoptim.LBFGS(named, max_iter=6, line_search_fn="strong_wolfe")
    opt_plain = fusedoptim.LBFGS(plain, max_iter=6, line_search_fn="strong_wolfe")
    opt_named.step(prob.closure(list(named.values()), np.float64, names=["w", "b"]))
    opt_plain.step(prob.closure(plain, np.float64))
    for x, y in zip(named.values(), plain, strict=True):
        np.testing.assert_array_equal(x, y)
    sd = opt_named.state_dict()
    assert list(sd["state"]) == ["w"] and sd["param_groups"][0]["params"] == ["w", "b"]


# --- determinism, state_dict ----------------------------------------------------------------------------------


def _run_large(line_search_fn, dtype, steps=2):
    """Logistic regression over 13 000 weights (several reduction blocks per array, split between threads)."""
    prob = Logistic(samples=64, features=(130, 100))
    params = prob.initial(dtype)
    opt = fusedoptim.LBFGS(params, max_iter=5, history_size=3, line_search_fn=line_search_fn)
    closure = prob.closure(params, dtype)
    losses = [opt.step(closure) for _ in range(steps)]
    return params, _state(opt), losses


def _assert_identical(x, y) -> None:
    params_x, state_x, losses_x = x
    params_y, state_y, losses_y = y
    assert losses_x == losses_y
    for a, b in zip(params_x, params_y, strict=True):
        np.testing.assert_array_equal(a, b)
    assert state_x.keys() == state_y.keys()
    for key, value in state_x.items():
        if isinstance(value, list):
            assert len(value) == len(state_y[key])
            for a, b in zip(value, state_y[key], strict=True):
                np.testing.assert_array_equal(a, b)
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, state_y[key])
        else:
            assert value == state_y[key], key


@pytest.mark.parametrize("line_search_fn", LINE_SEARCHES, ids=["fixed", "strong_wolfe"])
def test_bitwise_for_any_thread_count_and_simd_level(line_search_fn, dtype):
    previous = _core.requested_num_threads(), _core.get_parallel_grain(), _core.simd_level()
    runs = []
    try:
        for threads, grain in ((1, 1 << 20), (2, 1)):
            for level in _core.supported_simd_levels():
                _core.set_num_threads(threads)
                _core.set_parallel_grain(grain)
                _core.set_simd_level(level)
                runs.append(_run_large(line_search_fn, dtype))
    finally:
        _core.set_num_threads(previous[0])
        _core.set_parallel_grain(previous[1])
        _core.set_simd_level(previous[2])
    for other in runs[1:]:
        _assert_identical(runs[0], other)


@pytest.mark.parametrize("line_search_fn", LINE_SEARCHES, ids=["fixed", "strong_wolfe"])
def test_state_dict_round_trip_continues_bitwise(line_search_fn, dtype, tmp_path):
    prob = LeastSquares()
    a = prob.initial(dtype)
    opt = fusedoptim.LBFGS(a, max_iter=3, history_size=2, line_search_fn=line_search_fn)
    closure = prob.closure(a, dtype)
    for _ in range(3):  # the history is full and wraps
        opt.step(closure)
    sd = opt.state_dict()
    assert set(sd["state"][0]) == {
        "func_evals",
        "n_iter",
        "d",
        "t",
        "old_dirs",
        "old_stps",
        "ro",
        "H_diag",
        "prev_flat_grad",
        "prev_loss",
    }
    assert len(sd["state"][0]["old_dirs"]) == 2
    saved = copy.deepcopy(sd["state"][0])
    b = [p.copy() for p in a]
    opt_b = fusedoptim.LBFGS(b, max_iter=3, history_size=2, line_search_fn=line_search_fn)
    opt_b.load_state_dict(sd)
    fusedoptim.save(tmp_path / "lbfgs.ckpt", optimizer=opt, params=a)
    c = [np.zeros_like(p) for p in a]
    opt_c = fusedoptim.LBFGS(c, max_iter=3, history_size=2, line_search_fn=line_search_fn)
    fusedoptim.load(tmp_path / "lbfgs.ckpt", optimizer=opt_c, params=c)
    runs = []
    for params, optimizer in ((a, opt), (b, opt_b), (c, opt_c)):
        step = prob.closure(params, dtype)
        losses = [optimizer.step(step) for _ in range(3)]
        runs.append((params, _state(optimizer), losses))
    _assert_identical(runs[0], runs[1])
    _assert_identical(runs[0], runs[2])
    # the state_dict taken earlier is a copy: the steps since changed none of it
    for key, value in saved.items():
        if isinstance(value, list) and key.startswith("old"):
            for x, y in zip(value, sd["state"][0][key], strict=True):
                np.testing.assert_array_equal(x, y)
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, sd["state"][0][key])
        else:
            assert value == sd["state"][0][key]


def test_loads_torch_state_dict(torch):
    """A torch LBFGS state_dict, tensors turned into arrays (its 'al' scratch list is ignored): continues as torch."""
    prob = LeastSquares()
    tparams = [torch.tensor(p, requires_grad=True) for p in prob.initial(np.float64)]
    topt = torch.optim.LBFGS(tparams, max_iter=3, history_size=3)
    tclosure = prob.torch_closure(torch, topt, tparams)
    for _ in range(2):
        topt.step(tclosure)

    def numpy(v):
        if isinstance(v, list):
            return [numpy(x) for x in v]
        if isinstance(v, torch.Tensor):
            return v.detach().numpy().copy() if v.ndim else v.item()
        return v

    sd = topt.state_dict()
    sd = {
        "state": {k: {key: numpy(v) for key, v in s.items()} for k, s in sd["state"].items()},
        "param_groups": sd["param_groups"],
    }
    ours = [p.detach().numpy().copy() for p in tparams]
    opt = fusedoptim.LBFGS(ours, max_iter=3, history_size=3)
    opt.load_state_dict(sd)
    closure = prob.closure(ours, np.float64)
    for _ in range(2):
        np.testing.assert_allclose(opt.step(closure), topt.step(tclosure).item(), rtol=1e-10)
        for a, b in zip(ours, tparams, strict=True):
            np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("line_search_fn", LINE_SEARCHES, ids=["fixed", "strong_wolfe"])
def test_recycled_buffers_never_shared(line_search_fn):
    """The flat buffers a step retires are reused by later steps: the state's arrays stay distinct, and the kept
    spares stay bounded (2 min(max_iter, history_size) + 6)."""
    _, _, opt, closure = _fresh(line_search_fn, history_size=3, steps=0)
    for _ in range(8):
        opt.step(closure)
        state = opt.state[0]
        arrays = [state["d"], state["prev_flat_grad"], *state["old_dirs"], *state["old_stps"]]
        for i, a in enumerate(arrays):
            for b in arrays[i + 1 :]:
                assert not np.shares_memory(a, b)
        assert all(not np.shares_memory(a, f.array) for a in arrays for f in opt._spares)
        assert len(opt._spares) <= 2 * 3 + 6


# --- errors: refused with nothing changed ---------------------------------------------------------------------


def _snapshot(params, opt):
    return [p.copy() for p in params], opt.state_dict()


def _unchanged(params, opt, before) -> None:
    values, sd = before
    for p, v in zip(params, values, strict=True):
        np.testing.assert_array_equal(p, v)
    _assert_identical((values, sd["state"].get(0, {}), []), (values, opt.state_dict()["state"].get(0, {}), []))


def _fresh(line_search_fn=None, history_size=2, steps=2):
    prob = LeastSquares()
    params = prob.initial(np.float64)
    opt = fusedoptim.LBFGS(params, max_iter=4, history_size=history_size, line_search_fn=line_search_fn)
    closure = prob.closure(params, np.float64)
    for _ in range(steps):
        opt.step(closure)
    return prob, params, opt, closure


def _bad_returns(params):
    good = [np.zeros_like(p) for p in params]
    return {
        "not a pair": (1.0, good, 2),
        "loss a string": ("1.0", good),
        "loss an array": (np.zeros(3), good),
        "grads an array": (1.0, np.zeros(30)),
        "one gradient too few": (1.0, good[:1]),
        "float32 gradient": (1.0, [good[0].astype(np.float32), good[1]]),
        "wrong shape": (1.0, [good[0].reshape(4, 5), good[1]]),
        "not contiguous": (1.0, [np.zeros((4, 5)).T, good[1]]),
        "a list": (1.0, [good[0].tolist(), good[1]]),
        "names without names": (1.0, {"w": good[0], "b": good[1]}),
    }


@pytest.mark.parametrize("line_search_fn", LINE_SEARCHES, ids=["fixed", "strong_wolfe"])
@pytest.mark.parametrize("at_evaluation", [1, 3])
@pytest.mark.parametrize("case", list(_bad_returns([np.zeros((5, 4)), np.zeros(10)])))
def test_bad_closure_return_changes_nothing(case, at_evaluation, line_search_fn):
    """A bad return at the first evaluation (nothing written yet) or at the third (the parameters have moved,
    the history is full and the step has dropped a pair): the step raises, the parameters are back where the step
    began and the state is as it was; the next good step is the one an optimizer that never saw it makes."""
    _prob, params, opt, closure = _fresh(line_search_fn)
    _, twin_params, twin, twin_closure = _fresh(line_search_fn)
    before = _snapshot(params, opt)
    calls = [0]

    def bad():
        calls[0] += 1
        if calls[0] == at_evaluation:
            return _bad_returns(params)[case]
        return closure()

    with pytest.raises((TypeError, ValueError)):
        opt.step(bad)
    assert calls[0] == at_evaluation
    _unchanged(params, opt, before)
    opt.step(closure)
    twin.step(twin_closure)
    for a, b in zip(params, twin_params, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("line_search_fn", LINE_SEARCHES, ids=["fixed", "strong_wolfe"])
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_closure_raising_changes_nothing(error, line_search_fn):
    _prob, params, opt, closure = _fresh(line_search_fn)
    for at in range(1, 5):
        before = _snapshot(params, opt)
        calls = [0]

        def failing():
            calls[0] += 1
            if calls[0] == at:
                raise error("in the closure")
            return closure()

        with pytest.raises(error):
            opt.step(failing)
        _unchanged(params, opt, before)


def test_nan_loss_is_not_an_error(torch):
    """As torch: a NaN loss from the second evaluation on is taken as it is (comparisons with it are False)."""
    prob = LeastSquares()
    ours = prob.initial(np.float64)
    tparams = [torch.tensor(p, requires_grad=True) for p in prob.initial(np.float64)]
    opt = fusedoptim.LBFGS(ours, max_iter=6)
    topt = torch.optim.LBFGS(tparams, max_iter=6)
    inner, tinner = prob.closure(ours, np.float64), prob.torch_closure(torch, topt, tparams)
    calls = [0, 0]

    def closure():
        calls[0] += 1
        loss, grads = inner()
        return (math.nan if calls[0] > 1 else loss), grads

    def tclosure():
        calls[1] += 1
        loss = tinner()
        return loss * math.nan if calls[1] > 1 else loss

    opt.step(closure)
    topt.step(tclosure)
    assert calls[0] == calls[1] == 6
    for a, b in zip(ours, tparams, strict=True):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-9)
    assert math.isnan(_state(opt)["prev_loss"])


def test_step_refuses_a_non_callable():
    _prob, params, opt, _closure = _fresh()
    before = _snapshot(params, opt)
    with pytest.raises(TypeError, match="closure"):
        opt.step([np.zeros((5, 4)), np.zeros(10)])
    _unchanged(params, opt, before)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(lr=-1.0), ValueError, "Invalid learning rate: -1.0"),
        (dict(lr=math.nan), ValueError, "Invalid learning rate"),
        (dict(max_iter=0), ValueError, "max_iter"),
        (dict(max_iter=2.0), TypeError, "max_iter"),
        (dict(max_eval=0), ValueError, "max_eval"),
        (dict(history_size=0), ValueError, "history_size"),
        (dict(tolerance_grad=-1e-7), ValueError, "tolerance_grad"),
        (dict(tolerance_change=math.inf), ValueError, "tolerance_change"),
        (dict(line_search_fn="wolfe"), ValueError, "line_search_fn"),
    ],
)
def test_hyperparameters_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        fusedoptim.LBFGS([np.zeros(3)], **kwargs)


def test_parameters_refused():
    with pytest.raises(TypeError, match="one dtype"):
        fusedoptim.LBFGS([np.zeros(3), np.zeros(2, dtype=np.float32)])
    with pytest.raises(TypeError, match="float32 and float64"):
        fusedoptim.LBFGS([np.zeros(3, dtype=np.float16)])
    with pytest.raises(ValueError, match="parameter groups"):
        fusedoptim.LBFGS([{"params": [np.zeros(3)]}, {"params": [np.zeros(2)], "lr": 0.1}])
    opt = fusedoptim.LBFGS([np.zeros(3)])
    with pytest.raises(ValueError, match="parameter groups"):
        opt.add_param_group({"params": [np.zeros(2)]})
    arena = fusedoptim.ParamArena({"w": (3,)})
    with pytest.raises(TypeError, match="arena"):
        fusedoptim.LBFGS(arena)
    opt = fusedoptim.LBFGS(arena.params)  # the arena's views are fine
    opt.step(lambda: (0.0, {name: np.ones_like(view) for name, view in arena.params.items()}))


def test_edited_group_checked_at_step():
    _prob, params, opt, closure = _fresh()
    before = _snapshot(params, opt)
    opt.param_groups[0]["history_size"] = 0
    with pytest.raises(ValueError, match="history_size"):
        opt.step(closure)
    opt.param_groups[0]["history_size"] = 2
    _unchanged(params, opt, before)


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (lambda s: s.update(d=s["d"][:-1]), ValueError),
        (lambda s: s.update(d=s["d"].astype(np.float32)), TypeError),
        (lambda s: s.update(prev_flat_grad=s["prev_flat_grad"][::2]), ValueError),
        (lambda s: s.update(old_dirs=s["old_dirs"][:1]), ValueError),
        (lambda s: s.update(ro=[1.0, "x"]), TypeError),
        (lambda s: s.update(t=None), TypeError),
        (lambda s: s.pop("H_diag"), ValueError),
        (lambda s: s.update(n_iter=-1), ValueError),
    ],
)
def test_edited_state_refused_before_the_closure_runs(edit, error):
    _prob, params, opt, closure = _fresh()
    entry = dict(opt.state[0])
    edit(entry)
    opt.state[0] = entry
    values = [p.copy() for p in params]
    calls = [0]

    def counting():
        calls[0] += 1
        return closure()

    with pytest.raises(error):
        opt.step(counting)
    assert calls[0] == 0
    for p, v in zip(params, values, strict=True):
        np.testing.assert_array_equal(p, v)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda sd: sd["state"][0].update(d=np.zeros(5)), "shape"),
        (lambda sd: sd["state"][0].update(old_stps=sd["state"][0]["old_stps"][:1]), "one entry per pair"),
        (lambda sd: sd["state"][0].update(momentum_buffer=np.zeros(30)), "unexpected keys"),
        (lambda sd: sd["state"][0].pop("t"), "missing"),
        (lambda sd: sd["state"].update({1: {}}), "first parameter"),
        (lambda sd: sd["param_groups"][0].update(history_size=1), "history pairs"),
        (lambda sd: sd["param_groups"][0].update(lr=-1), "learning rate"),
        (lambda sd: sd["param_groups"][0].update(params=[1, 0]), "do not match"),
        (lambda sd: sd["param_groups"].append(dict(sd["param_groups"][0])), "number of parameter groups"),
    ],
)
def test_load_state_dict_refuses_with_nothing_changed(edit, match):
    _prob, _params, opt, _closure = _fresh()
    sd = opt.state_dict()
    edit(sd)
    _, other_params, other, _ = _fresh(steps=1)
    before = _snapshot(other_params, other)
    group = {k: v for k, v in other.param_groups[0].items() if k != "params"}
    with pytest.raises((ValueError, TypeError), match=match):
        other.load_state_dict(sd)
    _unchanged(other_params, other, before)
    assert {k: v for k, v in other.param_groups[0].items() if k != "params"} == group


def test_reentry_from_the_closure_refused():
    _prob, params, opt, closure = _fresh()
    before = _snapshot(params, opt)
    for action in (
        lambda: opt.step(closure),
        opt.state_dict,
        lambda: opt.load_state_dict(before[1]),
        lambda: opt.state.__setitem__(0, {}),
        lambda: opt.add_param_group({"params": [np.zeros(1)]}),
    ):
        calls = [0]

        def reentering(action=action):
            calls[0] += 1
            if calls[0] == 2:
                action()
            return closure()

        with pytest.raises(RuntimeError, match="closure"):
            opt.step(reentering)
        _unchanged(params, opt, before)


def test_concurrent_step_refused():
    _prob, _params, opt, closure = _fresh()
    inside, release = threading.Event(), threading.Event()

    def slow():
        inside.set()
        release.wait(10)
        return closure()

    thread = threading.Thread(target=opt.step, args=(slow,))
    thread.start()
    inside.wait(10)
    try:
        with pytest.raises(RuntimeError, match="another thread"):
            opt.step(closure)
    finally:
        release.set()
        thread.join()


def test_kernels_validate_every_list():
    """The flat kernels' own checks (gather): a written buffer aliasing another, a read-only one, a dtype."""
    p = [np.zeros(8)]
    flat = np.zeros(8)
    with pytest.raises(ValueError, match="share memory"):
        _core.flat_step(p, [flat], 1.0, [flat])
    read_only = np.zeros(8)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _core.flat_axpy_dot([read_only], [flat], [flat], 1.0)
    with pytest.raises(TypeError, match="dtype"):
        _core.flat_grad_stats(p, [np.zeros(8, dtype=np.float32)])
    with pytest.raises(ValueError, match="snapshot or a base"):
        _core.flat_step(p, [flat], 1.0, [np.zeros(8)], [np.zeros(8)])
    assert np.array_equal(p[0], np.zeros(8)) and np.array_equal(flat, np.zeros(8))
