"""The implementations ("peers") timed against each other, and the arrays they work on.

Every peer of a case updates the same parameter and gradient arrays (torch sees them through
``torch.from_numpy``, without a copy), so they all touch the same memory footprint; the peers that take their
state explicitly (fusedoptim's functional API, the reference, in-place NumPy, the native loop) share one set of
state buffers too, while the optimizer objects (fusedoptim's classes, torch.optim) own theirs. Steps continue
from call to call (step counts, bias corrections and moments evolve as in training); the parameters are reset to
their initial values between rounds if they ever grow large (:meth:`Workspace.reset_if_needed`).

Peers:

``fusedoptim``
    ``opt.step(grads)`` of the optimizer class: what a user's training loop calls.
``fusedoptim_functional``
    the in-place functional API (``fusedoptim.functional.adam_(params, grads, ...)``) on lists.
``native``
    a plain OpenMP SIMD loop of the same arithmetic compiled with ``-O3 -march=native`` (see :mod:`.native`) over
    one flat buffer of the case's total size: the bandwidth-floor proxy.
``native_per_array``
    the same loop called once per array of a many-array case (one parallel region per array).
``torch_fused``, ``torch_foreach``, ``torch_forloop``
    ``torch.optim.<Optimizer>(..., fused=True)``, ``foreach=True`` and ``foreach=False``, stepping ``.grad``.
``numpy_inplace``
    what a careful NumPy user writes: every operation a ufunc with ``out=`` into the arrays or one preallocated
    temporary per array, no allocation per step (SGD, Adam, AdamW).
``numpy_naive``
    the textbook formula in NumPy, as in the papers' pseudo-code: each expression allocates its result, state is
    rebound every step (SGD, Adam, AdamW).
``reference``
    :mod:`fusedoptim.reference`, the executable specification (torch's operations in torch's order).
``stream_triad``
    fusedoptim's STREAM triad ``a = b + s*c`` on arrays of the case's size (its own bytes: 12 per element in
    float32): the bandwidth the same driver reaches on a trivial kernel at this size.
``numpy_ufunc``
    (latency case) one in-place ufunc call ``np.add(a, b, out=a)`` on an array of the case's size.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

import fusedoptim
from fusedoptim import _core
from fusedoptim import functional as F
from fusedoptim import reference as R

from .cases import Case, OptimizerSpec
from .native import NativeLibrary, pointer_table

__all__ = ["PEER_ORDER", "Peer", "Unavailable", "Workspace", "peers_for"]

Step = Callable[[], None]

# Display order (and the order peers are set up in: when memory is short, the last ones are skipped).
PEER_ORDER = (
    "fusedoptim",
    "fusedoptim_functional",
    "native",
    "native_per_array",
    "torch_fused",
    "torch_foreach",
    "torch_forloop",
    "numpy_inplace",
    "numpy_naive",
    "reference",
    "stream_triad",
    "numpy_ufunc",
)


class Unavailable(Exception):
    """A peer that cannot run in this case (no torch, no compiler, unsupported by torch, not enough memory)."""


@dataclasses.dataclass
class Workspace:
    """A case's arrays: parameters, gradients, the shared explicit state, and the initial parameters."""

    spec: OptimizerSpec
    dtype: np.dtype
    params: list[np.ndarray]
    grads: list[np.ndarray]
    initial: list[np.ndarray]
    state: dict[str, list[np.ndarray]]
    resets: int = 0

    @classmethod
    def create(cls, case: Case, spec: OptimizerSpec, seed: int = 0) -> Workspace:
        dtype = np.dtype(case.dtype)
        rng = np.random.default_rng(seed)
        params, grads = [], []
        for shape in case.shapes:
            params.append(rng.standard_normal(shape, dtype=np.float32).astype(dtype, copy=False))
            # Gradients of a realistic scale (no value is zero, none is large).
            grads.append((rng.standard_normal(shape, dtype=np.float32) * np.float32(1e-2)).astype(dtype, copy=False))
        initial = [p.copy() for p in params]
        state: dict[str, list[np.ndarray]] = {}
        for key in spec.state:
            if key == "momentum_buffer":
                state[key] = [g.copy() for g in grads]  # torch's buffer after the first step
            else:
                state[key] = [np.zeros_like(p) for p in params]
        return cls(spec, dtype, params, grads, initial, state)

    def reset_if_needed(self) -> bool:
        """Puts the initial parameters back if any is no longer finite or has grown past 1e3 (LAMB's trust ratio
        can grow them geometrically over hundreds of thousands of small steps); returns whether it did."""
        for p in self.params:
            top = float(np.max(np.abs(p))) if p.size else 0.0
            if not math.isfinite(top) or top > 1e3:
                for p, p0 in zip(self.params, self.initial):
                    np.copyto(p, p0)
                self.resets += 1
                return True
        return False


@dataclasses.dataclass
class Peer:
    """One implementation of a case: ``make(workspace)`` builds its state and returns the step to time.

    ``arrays`` estimates the extra memory it needs, in arrays of the case's total size (to skip it when memory is
    short); ``bytes_per_element`` overrides the optimizer's traffic (the triad and ufunc probes move less).
    """

    name: str
    make: Callable[[Workspace], Step]
    arrays: float = 0.0
    bytes_per_element: int | None = None  # float32 bytes, doubled for float64


# --- fusedoptim -----------------------------------------------------------------------------------------------


def _fusedoptim_class(ws: Workspace) -> Step:
    opt = getattr(fusedoptim, ws.spec.fused_class)(ws.params, **ws.spec.hyper)
    grads = ws.grads
    return lambda: opt.step(grads)


def _explicit_call(module: Any, ws: Workspace) -> Step:
    """The functional call of ``module`` (fusedoptim.functional or fusedoptim.reference: same signatures) on the
    workspace's shared state, counting steps from 1."""
    name, hyper = ws.spec.name, ws.spec.hyper
    P, G, S = ws.params, ws.grads, ws.state
    count = len(P)
    steps = itertools.count(1)
    if name == "sgd":
        buffers: list[np.ndarray | None] = list(S["momentum_buffer"])  # never None: no first step here
        return lambda: module.sgd_(P, G, buffers, **hyper)
    if name == "adagrad":
        return lambda: module.adagrad_(P, G, S["sum"], [next(steps)] * count, **hyper)
    if name == "rmsprop":
        return lambda: module.rmsprop_(P, G, S["square_avg"], None, None, **hyper)
    if name in ("adam", "adamw"):
        function = module.adam_ if name == "adam" else module.adamw_
        M, V = S["exp_avg"], S["exp_avg_sq"]
        return lambda: function(P, G, M, V, None, [next(steps)] * count, **hyper)
    if name == "adadelta":
        return lambda: module.adadelta_(P, G, S["square_avg"], S["acc_delta"], **hyper)
    if name == "adamax":
        return lambda: module.adamax_(P, G, S["exp_avg"], S["exp_inf"], [next(steps)] * count, **hyper)
    if name == "nadam":
        products = [1.0] * count
        return lambda: module.nadam_(P, G, S["exp_avg"], S["exp_avg_sq"], products, [next(steps)] * count, **hyper)
    if name == "radam":
        return lambda: module.radam_(P, G, S["exp_avg"], S["exp_avg_sq"], [next(steps)] * count, **hyper)
    if name == "lion":
        return lambda: module.lion_(P, G, S["exp_avg"], **hyper)
    if name == "lamb":
        return lambda: module.lamb_(P, G, S["exp_avg"], S["exp_avg_sq"], [next(steps)] * count, **hyper)
    if name == "asgd":
        etas, mus = [hyper["lr"]] * count, [1.0] * count  # updated in place by every call
        return lambda: module.asgd_(P, G, S["ax"], etas, mus, [next(steps)] * count, **hyper)
    if name == "rprop":
        sizes = {"step_size_min": 1e-6, "step_size_max": 50.0}  # torch's defaults (lr only seeds the step sizes)
        return lambda: module.rprop_(P, G, S["prev"], S["step_size"], **sizes)
    raise Unavailable(f"no functional call for {name}")


def _stream_triad(ws: Workspace) -> Step:
    if len(ws.params) != 1:
        raise Unavailable("the triad runs on single-array cases")
    a = np.empty_like(ws.params[0])
    b, c = ws.initial[0], ws.grads[0]  # only read (c is checked as writeable: the gradient array is)
    return lambda: _core.stream_triad(a, b, c, 3.0)


def _numpy_ufunc(ws: Workspace) -> Step:
    a = np.zeros_like(ws.params[0])
    b = np.full_like(ws.params[0], 1e-3)
    return lambda: np.add(a, b, out=a)


# --- NumPy -------------------------------------------------------------------------------------------------------


def _adam_scalars(hyper: dict[str, Any], t: int) -> tuple[float, float]:
    """-(lr / bc1) and 1 / sqrt(bc2) of step t, in double."""
    return -(hyper["lr"] / (1 - 0.9**t)), 1.0 / math.sqrt(1 - 0.999**t)


def _numpy_inplace(ws: Workspace) -> Step:
    """A careful NumPy user's step: ufuncs with ``out=``, one preallocated temporary per array."""
    name, hyper = ws.spec.name, ws.spec.hyper
    P, G, S = ws.params, ws.grads, ws.state
    temps = [np.empty_like(p) for p in P]
    real = ws.dtype.type
    lr = hyper["lr"]
    if name == "sgd":
        momentum, neg_lr = real(hyper["momentum"]), real(-lr)
        B = S["momentum_buffer"]

        def sgd() -> None:
            for p, g, b, tmp in zip(P, G, B, temps):
                np.multiply(b, momentum, out=b)  # b = mu * b + g
                np.add(b, g, out=b)
                np.multiply(b, neg_lr, out=tmp)  # p = p - lr * b
                np.add(p, tmp, out=p)

        return sgd
    if name in ("adam", "adamw"):
        M, V = S["exp_avg"], S["exp_avg_sq"]
        decay = real(1 - lr * hyper.get("weight_decay", 0.0)) if name == "adamw" else None
        one_minus_beta1, beta2, one_minus_beta2, eps = real(0.1), real(0.999), real(1 - 0.999), real(1e-8)
        steps = itertools.count(1)

        def adam() -> None:
            neg_step_size, inv_bc2_sqrt = _adam_scalars(hyper, next(steps))
            denom_scale = real(1.0 / neg_step_size)
            inv_bc2_sqrt_ = real(inv_bc2_sqrt)
            for p, g, m, v, tmp in zip(P, G, M, V, temps):
                if decay is not None:
                    np.multiply(p, decay, out=p)  # p = p * (1 - lr * wd)
                np.subtract(g, m, out=tmp)  # m = m + (1 - beta1) * (g - m)
                np.multiply(tmp, one_minus_beta1, out=tmp)
                np.add(m, tmp, out=m)
                np.multiply(v, beta2, out=v)  # v = beta2 * v + (1 - beta2) * g * g
                np.multiply(g, one_minus_beta2, out=tmp)
                np.multiply(tmp, g, out=tmp)
                np.add(v, tmp, out=v)
                np.sqrt(v, out=tmp)  # denom = (sqrt(v) / sqrt(bc2) + eps) / (-lr / bc1): the step size folded in
                np.multiply(tmp, inv_bc2_sqrt_, out=tmp)
                np.add(tmp, eps, out=tmp)
                np.multiply(tmp, denom_scale, out=tmp)
                np.divide(m, tmp, out=tmp)  # p = p + m / denom
                np.add(p, tmp, out=p)

        return adam
    raise Unavailable(f"no in-place NumPy version of {name}")


def _numpy_naive(ws: Workspace) -> Step:
    """The textbook update (Kingma & Ba 2015, Algorithm 1; torch's SGD docs), one NumPy expression per line."""
    name, hyper = ws.spec.name, ws.spec.hyper
    P, G = ws.params, ws.grads
    lr = hyper["lr"]
    if name == "sgd":
        momentum = hyper["momentum"]
        B = [b.copy() for b in ws.state["momentum_buffer"]]

        def sgd() -> None:
            for i, (p, g) in enumerate(zip(P, G)):
                B[i] = momentum * B[i] + g
                p -= lr * B[i]

        return sgd
    if name in ("adam", "adamw"):
        wd = hyper.get("weight_decay", 0.0) if name == "adamw" else 0.0
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        M = [np.zeros_like(p) for p in P]
        V = [np.zeros_like(p) for p in P]
        steps = itertools.count(1)

        def adam() -> None:
            t = next(steps)
            for i, (p, g) in enumerate(zip(P, G)):
                if wd:
                    p -= lr * wd * p
                M[i] = beta1 * M[i] + (1 - beta1) * g
                V[i] = beta2 * V[i] + (1 - beta2) * g**2
                m_hat = M[i] / (1 - beta1**t)
                v_hat = V[i] / (1 - beta2**t)
                p -= lr * m_hat / (np.sqrt(v_hat) + eps)

        return adam
    raise Unavailable(f"no textbook NumPy version of {name}")


# --- torch ------------------------------------------------------------------------------------------------------


def _torch_peer(torch: Any, variant: str) -> Callable[[Workspace], Step]:
    def make(ws: Workspace) -> Step:
        spec = ws.spec
        if spec.torch_class is None:
            raise Unavailable(f"torch.optim has no {spec.label}")
        if variant == "fused" and not spec.torch_fused:
            raise Unavailable(f"torch.optim.{spec.torch_class} has no fused CPU implementation")
        params = [torch.nn.Parameter(torch.from_numpy(p)) for p in ws.params]  # shares the arrays' memory
        for p, g in zip(params, ws.grads):
            p.grad = torch.from_numpy(g)
        flags = {"fused": {"fused": True}, "foreach": {"foreach": True}, "forloop": {"foreach": False}}[variant]
        opt = getattr(torch.optim, spec.torch_class)(params, **spec.hyper, **flags)
        return opt.step

    return make


# --- native -----------------------------------------------------------------------------------------------------


def _native_flat(lib: NativeLibrary, threads: int) -> Callable[[Workspace], Step]:
    """The plain loop over one flat buffer per operand, of the case's total size (the workspace's own array in a
    single-array case; fresh flat buffers in a many-array case)."""

    def make(ws: Workspace) -> Step:
        name, hyper = ws.spec.name, ws.spec.hyper
        if name not in ("sgd", "adam", "adamw"):
            raise Unavailable(f"no native loop for {name}")
        if len(ws.params) == 1:
            p, g = ws.params[0].reshape(-1), ws.grads[0].reshape(-1)
            state = [ws.state[k][0].reshape(-1) for k in ws.spec.state]
        else:
            total = sum(a.size for a in ws.params)
            p = np.concatenate([a.reshape(-1) for a in ws.params])
            g = np.concatenate([a.reshape(-1) for a in ws.grads])
            state = [np.concatenate([a.reshape(-1) for a in ws.state[k]]) for k in ws.spec.state]
            assert p.size == total
        n = p.size
        keep = (p, g, state)  # bound to the step functions below, so the buffers live as long as they do
        function = lib.function(name, ws.dtype)
        lr = hyper["lr"]
        if name == "sgd":
            args = (p.ctypes.data, g.ctypes.data, state[0].ctypes.data, n, -lr, hyper["momentum"], 1.0, threads)

            def sgd_step(_keep: Any = keep) -> None:
                function(*args)

            return sgd_step
        m, v = state
        decay = (1 - lr * hyper["weight_decay"],) if name == "adamw" else ()
        pointers = (p.ctypes.data, g.ctypes.data, m.ctypes.data, v.ctypes.data, n)
        steps = itertools.count(1)

        def adam_step(_keep: Any = keep) -> None:
            t = next(steps)
            bc1, bc2 = 1 - 0.9**t, 1 - 0.999**t
            function(*pointers, 0.1, 0.999, 1 - 0.999, -(lr / bc1), 1 / math.sqrt(bc2), 1e-8, *decay, threads)

        return adam_step

    return make


def _native_per_array(lib: NativeLibrary, threads: int) -> Callable[[Workspace], Step]:
    def make(ws: Workspace) -> Step:
        name, hyper = ws.spec.name, ws.spec.hyper
        if name not in ("sgd", "adam", "adamw"):
            raise Unavailable(f"no native loop for {name}")
        tables = [pointer_table(ws.params), pointer_table(ws.grads)]
        tables += [pointer_table(ws.state[k]) for k in ws.spec.state]
        sizes = np.array([a.size for a in ws.params], dtype=np.int64)
        function = lib.function(f"{name}_list", ws.dtype)
        head = (*(t.ctypes.data for t in tables), sizes.ctypes.data, len(ws.params))
        keep = (tables, sizes, ws)
        lr = hyper["lr"]
        if name == "sgd":
            args = (*head, -lr, hyper["momentum"], 1.0, threads)

            def sgd_step(_keep: Any = keep) -> None:
                function(*args)

            return sgd_step
        decay = (1 - lr * hyper["weight_decay"],) if name == "adamw" else ()
        steps = itertools.count(1)

        def adam_step(_keep: Any = keep) -> None:
            t = next(steps)
            bc1, bc2 = 1 - 0.9**t, 1 - 0.999**t
            function(*head, 0.1, 0.999, 1 - 0.999, -(lr / bc1), 1 / math.sqrt(bc2), 1e-8, *decay, threads)

        return adam_step

    return make


# --- which peers a case runs -----------------------------------------------------------------------------------


def peers_for(
    case: Case, spec: OptimizerSpec, *, full: bool, torch: Any = None, native: NativeLibrary | None = None
) -> tuple[list[Peer], dict[str, str]]:
    """The peers of ``case`` and the reasons others are left out. ``full`` selects every peer (SGD, Adam, AdamW);
    otherwise fusedoptim, the reference and torch's for-loop (and fused, where torch has it)."""
    peers: list[Peer] = []
    skipped: dict[str, str] = {}
    k = len(spec.state)
    single = case.arrays == 1
    peers.append(Peer("fusedoptim", _fusedoptim_class, arrays=k))
    peers.append(Peer("fusedoptim_functional", lambda ws: _explicit_call(F, ws)))
    if full:
        if native is None:
            skipped["native"] = "native loop not built (--no-native, or no compiler)"
        else:
            peers.append(Peer("native", _native_flat(native, case.threads), arrays=0 if single else 2 + k))
            if not single:
                peers.append(Peer("native_per_array", _native_per_array(native, case.threads)))
    if torch is None:
        skipped["torch"] = "torch not used (--no-torch, or not installed)"
    elif spec.torch_class is None:
        skipped["torch"] = f"torch.optim has no {spec.label}"
    else:
        if spec.torch_fused:
            peers.append(Peer("torch_fused", _torch_peer(torch, "fused"), arrays=k))
        else:
            skipped["torch_fused"] = f"torch.optim.{spec.torch_class} has no fused CPU implementation"
        if full:
            peers.append(Peer("torch_foreach", _torch_peer(torch, "foreach"), arrays=k + 2))
        peers.append(Peer("torch_forloop", _torch_peer(torch, "forloop"), arrays=k))
    if full:
        peers.append(Peer("numpy_inplace", _numpy_inplace, arrays=1))
        peers.append(Peer("numpy_naive", _numpy_naive, arrays=k + 4))
    peers.append(Peer("reference", lambda ws: _explicit_call(R, ws), arrays=4))
    if case.suite == "sweep":
        peers.append(Peer("stream_triad", _stream_triad, arrays=1, bytes_per_element=12))
    if case.suite == "latency":
        peers.append(Peer("numpy_ufunc", _numpy_ufunc, arrays=2, bytes_per_element=12))
    return peers, skipped
