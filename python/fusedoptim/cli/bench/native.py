"""The "native" peer: a plain OpenMP SIMD loop of the same arithmetic, compiled at benchmark time.

It is the measured proxy for the bandwidth floor of issue 5: what a C++ programmer gets from one
``#pragma omp parallel for simd`` loop over flat arrays with ``-O3 -march=native``, without fusedoptim's driver,
validation or dispatch. The source below is compiled into a temporary directory with the system's C++
compiler and loaded with :mod:`ctypes`; it exists only for the benchmark and is never on fusedoptim's own code
path.

Flags: ``-O3 -march=native -fopenmp -shared -fPIC`` as the issue names them, plus ``-fno-math-errno``: without
it GCC will not vectorise ``sqrt`` (it must be able to set ``errno`` for negative inputs) and the loop would not
be a SIMD loop at all. The flag changes no value. FMA contraction is left at the compiler's default (fusedoptim
builds with ``-ffp-contract=off`` for bitwise parity; that costs nothing measurable in a memory-bound loop).

Exported functions (``T`` is ``float`` for ``_f32`` and ``double`` for ``_f64``):

* ``adam_<dtype>(p, g, m, v, n, beta1_weight, beta2, one_minus_beta2, neg_step_size, inv_bc2_sqrt, eps, threads)`` and
  ``adamw_<dtype>(..., decay_factor, threads)``: torch's Adam element update (``m = lerp(m, g, 1 - beta1)``, whose
  weight 0.1 < 0.5 selects ``m + w * (g - m)``; ``v = beta2 * v + (1 - beta2) * g * g``;
  ``p = p + (-lr / bc1) * m / (sqrt(v) * (1 / sqrt(bc2)) + eps)``, fusedoptim's one-division form), over one flat
  buffer.
* ``sgd_<dtype>(p, g, b, n, neg_lr, momentum, grad_scale, threads)``: ``b = momentum * b + grad_scale * g``,
  ``p = p - lr * b``.
* ``*_list_<dtype>``: the same loops over ``count`` separate arrays (tables of pointers and sizes), one parallel
  loop per array: the obvious way to apply a flat-buffer kernel to a model's parameter list.
* ``triad_<dtype>(a, b, c, n, scalar, threads)``: STREAM triad ``a = b + scalar * c``, to cross-check
  fusedoptim's ``stream_triad`` probe.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence

import numpy as np

__all__ = ["COMPILE_FLAGS", "SOURCE", "NativeLibrary", "compile_native"]

COMPILE_FLAGS = ["-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-shared", "-fPIC"]

SOURCE = r"""
// A plain OpenMP SIMD loop of fusedoptim's arithmetic: the benchmark's bandwidth-floor proxy (see native.py).
#include <cmath>
#include <cstdint>

namespace {

template <class T, bool Decoupled>
void adam(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v, int64_t n, T beta1_weight,
          T beta2, T one_minus_beta2, T neg_step_size, T inv_bc2_sqrt, T eps, T decay_factor, int threads) {
#pragma omp parallel for simd schedule(static) num_threads(threads)
    for (int64_t i = 0; i < n; ++i) {
        const T gi = g[i];
        T param = p[i];
        if (Decoupled) param = param * decay_factor;
        const T mi = m[i] + beta1_weight * (gi - m[i]);
        m[i] = mi;
        const T vi = v[i] * beta2 + (one_minus_beta2 * gi) * gi;
        v[i] = vi;
        const T denom = std::sqrt(vi) * inv_bc2_sqrt + eps;
        p[i] = param + (neg_step_size * mi) / denom;
    }
}

template <class T>
void sgd(T* __restrict p, const T* __restrict g, T* __restrict b, int64_t n, T neg_lr, T momentum, T grad_scale,
         int threads) {
#pragma omp parallel for simd schedule(static) num_threads(threads)
    for (int64_t i = 0; i < n; ++i) {
        const T bi = b[i] * momentum + grad_scale * g[i];
        b[i] = bi;
        p[i] = p[i] + neg_lr * bi;
    }
}

template <class T>
void triad(T* __restrict a, const T* __restrict b, const T* __restrict c, int64_t n, T scalar, int threads) {
#pragma omp parallel for simd schedule(static) num_threads(threads)
    for (int64_t i = 0; i < n; ++i) a[i] = b[i] + scalar * c[i];
}

}  // namespace

#define FUSEDOPTIM_BENCH_EXPORT(T, suffix)                                                                      \
    extern "C" void adam_##suffix(T* p, const T* g, T* m, T* v, int64_t n, T w, T b2, T omb2, T nss, T ibc2s,    \
                                  T eps, int threads) {                                                         \
        adam<T, false>(p, g, m, v, n, w, b2, omb2, nss, ibc2s, eps, T(1), threads);                              \
    }                                                                                                           \
    extern "C" void adamw_##suffix(T* p, const T* g, T* m, T* v, int64_t n, T w, T b2, T omb2, T nss, T ibc2s,   \
                                   T eps, T decay, int threads) {                                               \
        adam<T, true>(p, g, m, v, n, w, b2, omb2, nss, ibc2s, eps, decay, threads);                              \
    }                                                                                                           \
    extern "C" void sgd_##suffix(T* p, const T* g, T* b, int64_t n, T neg_lr, T mu, T scale, int threads) {      \
        sgd<T>(p, g, b, n, neg_lr, mu, scale, threads);                                                         \
    }                                                                                                           \
    extern "C" void adam_list_##suffix(T** p, T** g, T** m, T** v, const int64_t* sizes, int64_t count, T w,    \
                                       T b2, T omb2, T nss, T ibc2s, T eps, int threads) {                       \
        for (int64_t k = 0; k < count; ++k)                                                                     \
            adam<T, false>(p[k], g[k], m[k], v[k], sizes[k], w, b2, omb2, nss, ibc2s, eps, T(1), threads);       \
    }                                                                                                           \
    extern "C" void adamw_list_##suffix(T** p, T** g, T** m, T** v, const int64_t* sizes, int64_t count, T w,   \
                                        T b2, T omb2, T nss, T ibc2s, T eps, T decay, int threads) {             \
        for (int64_t k = 0; k < count; ++k)                                                                     \
            adam<T, true>(p[k], g[k], m[k], v[k], sizes[k], w, b2, omb2, nss, ibc2s, eps, decay, threads);       \
    }                                                                                                           \
    extern "C" void sgd_list_##suffix(T** p, T** g, T** b, const int64_t* sizes, int64_t count, T neg_lr,       \
                                      T mu, T scale, int threads) {                                             \
        for (int64_t k = 0; k < count; ++k) sgd<T>(p[k], g[k], b[k], sizes[k], neg_lr, mu, scale, threads);    \
    }                                                                                                           \
    extern "C" void triad_##suffix(T* a, const T* b, const T* c, int64_t n, T scalar, int threads) {            \
        triad<T>(a, b, c, n, scalar, threads);                                                                  \
    }

FUSEDOPTIM_BENCH_EXPORT(float, f32)
FUSEDOPTIM_BENCH_EXPORT(double, f64)
"""


class NativeUnavailable(RuntimeError):
    """No C++ compiler, or the native loop failed to build or load."""


class NativeLibrary:
    """The compiled native loops, with typed ctypes entry points (see the module docstring)."""

    def __init__(self, path: str, compiler: str, version: str, command: list[str]) -> None:
        self.path = path
        self.compiler = compiler
        self.version = version
        self.command = command
        self._lib = ctypes.CDLL(path)
        p, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
        for suffix, real in (("f32", ctypes.c_float), ("f64", ctypes.c_double)):
            self._declare(f"adam_{suffix}", [p, p, p, p, i64] + [real] * 6 + [i32])
            self._declare(f"adamw_{suffix}", [p, p, p, p, i64] + [real] * 7 + [i32])
            self._declare(f"sgd_{suffix}", [p, p, p, i64] + [real] * 3 + [i32])
            self._declare(f"adam_list_{suffix}", [p, p, p, p, p, i64] + [real] * 6 + [i32])
            self._declare(f"adamw_list_{suffix}", [p, p, p, p, p, i64] + [real] * 7 + [i32])
            self._declare(f"sgd_list_{suffix}", [p, p, p, p, i64] + [real] * 3 + [i32])
            self._declare(f"triad_{suffix}", [p, p, p, i64, real, i32])

    def _declare(self, name: str, argtypes: list) -> None:
        function = getattr(self._lib, name)
        function.argtypes = argtypes
        function.restype = None

    def function(self, name: str, dtype: np.dtype) -> ctypes._CFuncPtr:  # type: ignore[name-defined]
        """The entry point ``name`` for ``dtype`` (float32 or float64)."""
        suffix = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}[np.dtype(dtype)]
        return getattr(self._lib, f"{name}_{suffix}")

    def describe(self) -> dict[str, object]:
        return {"compiler": self.compiler, "version": self.version, "command": " ".join(self.command)}


def pointer_table(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """The arrays' data addresses as a C array of pointers (keep the arrays alive while it is used)."""
    return np.array([a.ctypes.data for a in arrays], dtype=np.uintp)


def _find_compiler() -> str | None:
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def compile_library(source: str, directory: str, name: str) -> tuple[str, str, list[str]]:
    """Compiles C++ ``source`` with :data:`COMPILE_FLAGS` into ``directory/name.so``.

    Returns the library's path, the compiler and the command. Raises :class:`NativeUnavailable` with the reason
    when there is no compiler or the build fails. (The benchmark scripts' own floor loops use it too.)
    """
    compiler = _find_compiler()
    if compiler is None:
        raise NativeUnavailable("no C++ compiler found (set CXX, or install g++)")
    source_path = os.path.join(directory, name + ".cpp")
    library = os.path.join(directory, name + ".so")
    with open(source_path, "w", encoding="utf-8") as f:
        f.write(source)
    command = [compiler, *COMPILE_FLAGS, "-o", library, source_path]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)
    except subprocess.CalledProcessError as e:
        raise NativeUnavailable(f"{os.path.basename(compiler)} failed: {e.stderr.strip()[-500:]}") from e
    except (OSError, subprocess.TimeoutExpired) as e:
        raise NativeUnavailable(f"could not run {compiler}: {e}") from e
    return library, compiler, command


def compile_native(directory: str | None = None) -> NativeLibrary:
    """Compiles :data:`SOURCE` into ``directory`` (a new temporary directory by default) and loads it.

    Raises :class:`NativeUnavailable` with the reason when there is no compiler or the build fails.
    """
    directory = directory or tempfile.mkdtemp(prefix="fusedoptim-bench-native-")
    library, compiler, command = compile_library(SOURCE, directory, "native_loop")
    try:
        version = subprocess.run(
            [compiler, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        version = ""
    try:
        return NativeLibrary(library, compiler, version.splitlines()[0] if version else "", command)
    except OSError as e:
        raise NativeUnavailable(f"could not load the compiled loop: {e}") from e
