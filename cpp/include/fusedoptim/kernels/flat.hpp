// The flat-vector algebra of L-BFGS (python/fusedoptim/lbfgs.py). torch.optim.LBFGS works on one vector that
// concatenates every parameter; here every operand is a list of arrays: the caller's parameters and gradients,
// and the optimizer's own flat buffers, passed whole (one 1-D array) or, in a call that also takes a parameter or
// gradient list, as views split to the parameters' shapes. Each call fuses an elementwise update with the
// reductions that read its result, so it is one pass over memory where torch (and plain NumPy) make two or three.
//
// The reductions (dot products, sums and maxima of magnitudes) are in double, through reduce_blocks: the same for
// any thread count and SIMD level. Elementwise results are rounded to T as torch's tensor operations round them,
// the scalars (t, the two-loop coefficients) rounded to T first, as torch rounds an `alpha`; no FMA.
//
// Ops (Options::op), their buffers by slot, and what they compute (a buffer marked optional is used when the
// call passes it, i.e. its pointer is set):
//   grad_stats  0 params (only validated), 1 g, 2 copy (written; optional), 3 d (optional)
//               copy = g                                              results: max|g|, sum|g|, g.d
//   history     0 y (written), 1 g, 2 prev (written), 3 prev_old (optional: without it, prev is read, then
//               written), 4 d, 5 s (written)
//               y = g - prev_old; prev = g; s = d * t                 results: y.s, y.y
//   axpy_dot    0 x (written), 1 u, 2 v
//               x = -u (negate) or x = x + a * u; then x = x * c (scale)    result: v.x
//   step        0 p (written), 1 d, 2 snapshot (written; optional), 3 base (optional)
//               snapshot = p; p = (base, else p) + t * d              result: max|d|
//
// Each block (reduce_blocks' kReduceBlock elements) runs its elementwise loop first, then reduces what that loop
// wrote, still in cache: two simple loops GCC vectorises (omp simd, and the kFlatLanes accumulators) rather
// than one that mixes them.
#pragma once

#include <cstdint>
#include <type_traits>

#include "fusedoptim/common.hpp"
#include "fusedoptim/parallel.hpp"

namespace fusedoptim::flat {

enum class Op : int { grad_stats = 0, history = 1, axpy_dot = 2, step = 3 };

struct Options {
    Op op;
    bool negate;  // axpy_dot: x = -u instead of x = x + a * u
    bool scale;   // axpy_dot: then x = x * c
};

template <class T>
struct Coeffs {
    T a;  // axpy_dot's a; t in history and step
    T c;  // axpy_dot's scale
};

template <class T>
using BatchOf = Batch<T, Coeffs<T>, Options>;

inline constexpr int kResults = 3;  // per tensor; unused ones are 0

// Whether result j of `op` is a maximum (combined with `maximum`, which keeps NaN) rather than a sum.
constexpr bool is_maximum(Op op, int j) { return j == 0 && (op == Op::grad_stats || op == Op::step); }

// Independent accumulators per block: element i goes to lane i % kFlatLanes (blocks start at multiples of it), so
// each lane sums in a fixed order whatever the vector width. 32 rather than the norms' kLanes (8): with 8, one
// chain of additions per result bounds these loops (and GCC left the maximum's unvectorised); 32 made grad_stats
// about 6x and axpy_dot's reduction 1.2x faster on cache-resident float32 (AVX-512 and AVX2, benchmarks/lbfgs.py
// measures the whole iteration).
inline constexpr int kFlatLanes = 32;
static_assert(kReduceBlock % kFlatLanes == 0, "every block starts at lane 0");

// f(i, lane) for i in [0, n), in lanes as above.
template <class F>
FUSEDOPTIM_INLINE void for_lanes(int64_t n, const F& f) {
    int64_t i = 0;
    for (; i + kFlatLanes <= n; i += kFlatLanes) {
        for (int j = 0; j < kFlatLanes; ++j) f(i + j, j);
    }
    for (int j = 0; i < n; ++i, ++j) f(i, j);
}

FUSEDOPTIM_INLINE double lane_sum(const double (&acc)[kFlatLanes]) {
    double total = acc[0];
    for (int j = 1; j < kFlatLanes; ++j) total = total + acc[j];
    return total;
}

FUSEDOPTIM_INLINE double lane_max(const double (&acc)[kFlatLanes]) {
    double total = acc[0];
    for (int j = 1; j < kFlatLanes; ++j) total = maximum(total, acc[j]);
    return total;
}

FUSEDOPTIM_INLINE double widen(float x) { return static_cast<double>(x); }
FUSEDOPTIM_INLINE double widen(double x) { return x; }

template <class T, bool Copy, bool Direction>
FUSEDOPTIM_INLINE void grad_stats_block(const TensorRef<T>& t, int64_t lo, int64_t n, double* partial) {
    const T* const g = t.buf[1] + lo;
    if constexpr (Copy) {
        T* const copy = t.buf[2] + lo;
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) copy[i] = g[i];  // flat_grad.clone()
    }
    double max_abs[kFlatLanes] = {}, sum_abs[kFlatLanes] = {}, dot[kFlatLanes] = {};
    const T* const d = Direction ? t.buf[3] + lo : nullptr;
    for_lanes(n, [&](int64_t i, int j) FUSEDOPTIM_INLINE_LAMBDA {
        const double x = widen(g[i]);
        max_abs[j] = maximum(max_abs[j], __builtin_fabs(x));         // flat_grad.abs().max()
        sum_abs[j] = sum_abs[j] + __builtin_fabs(x);                 // flat_grad.abs().sum()
        if constexpr (Direction) dot[j] = dot[j] + x * widen(d[i]);  // flat_grad.dot(d)
    });
    partial[0] = lane_max(max_abs);
    partial[1] = lane_sum(sum_abs);
    partial[2] = Direction ? lane_sum(dot) : 0.0;
}

template <class T, bool InPlace>
FUSEDOPTIM_INLINE void history_block(const TensorRef<T>& t, const Coeffs<T>& c, int64_t lo, int64_t n,
                                     double* partial) {
    T* const y = t.buf[0] + lo;
    const T* const g = t.buf[1] + lo;
    T* const prev = t.buf[2] + lo;
    const T* const prev_old = InPlace ? prev : t.buf[3] + lo;
    const T* const d = t.buf[4] + lo;
    T* const s = t.buf[5] + lo;
    const T step = c.a;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
        const T gi = g[i];
        y[i] = gi - prev_old[i];  // y = flat_grad.sub(prev_flat_grad)
        prev[i] = gi;             // prev_flat_grad.copy_(flat_grad)
        s[i] = d[i] * step;       // s = d.mul(t)
    }
    double ys[kFlatLanes] = {}, yy[kFlatLanes] = {};
    for_lanes(n, [&](int64_t i, int j) FUSEDOPTIM_INLINE_LAMBDA {
        const double yi = widen(y[i]);
        ys[j] = ys[j] + yi * widen(s[i]);  // y.dot(s)
        yy[j] = yy[j] + yi * yi;           // y.dot(y)
    });
    partial[0] = lane_sum(ys);
    partial[1] = lane_sum(yy);
    partial[2] = 0.0;
}

template <class T, bool Negate, bool Scale>
FUSEDOPTIM_INLINE void axpy_dot_block(const TensorRef<T>& t, const Coeffs<T>& c, int64_t lo, int64_t n,
                                      double* partial) {
    T* const x = t.buf[0] + lo;
    const T* const u = t.buf[1] + lo;
    const T* const v = t.buf[2] + lo;
    const T a = c.a, scale = c.c;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
        T xi = Negate ? -u[i] : x[i] + a * u[i];  // q = flat_grad.neg(), or q.add_(u, alpha=a)
        if constexpr (Scale) xi = xi * scale;     // r = torch.mul(q, H_diag)
        x[i] = xi;
    }
    double dot[kFlatLanes] = {};
    for_lanes(n, [&](int64_t i, int j) FUSEDOPTIM_INLINE_LAMBDA { dot[j] = dot[j] + widen(v[i]) * widen(x[i]); });
    partial[0] = lane_sum(dot);  // v.dot(x)
    partial[1] = 0.0;
    partial[2] = 0.0;
}

template <class T, bool Snapshot, bool Base>
FUSEDOPTIM_INLINE void step_block(const TensorRef<T>& t, const Coeffs<T>& c, int64_t lo, int64_t n, double* partial) {
    T* const p = t.buf[0] + lo;
    const T* const d = t.buf[1] + lo;
    T* const snapshot = Snapshot ? t.buf[2] + lo : nullptr;
    const T* const base = Base ? t.buf[3] + lo : p;
    const T step = c.a;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
        const T from = base[i];
        if constexpr (Snapshot) snapshot[i] = from;  // x_init = self._clone_param()
        p[i] = from + step * d[i];                   // p.add_(d, alpha=t)
    }
    double max_abs[kFlatLanes] = {};
    for_lanes(n, [&](int64_t i, int j) FUSEDOPTIM_INLINE_LAMBDA {
        max_abs[j] = maximum(max_abs[j], __builtin_fabs(widen(d[i])));  // d.abs().max()
    });
    partial[0] = lane_max(max_abs);
    partial[1] = 0.0;
    partial[2] = 0.0;
}

template <class Isa, class T, Op O>
void run_op(const BatchOf<T>& batch) {
    const bool negate = batch.options.negate, scale = batch.options.scale;
    reduce_blocks<Isa, kResults>(
        batch, batch.out,
        [&](int64_t k, int64_t lo, int64_t hi, double* partial) {
            const TensorRef<T>& t = batch.tensors[k];
            const Coeffs<T> c = batch.coeffs[k];
            const int64_t n = hi - lo;
            // The optional buffers are set for every tensor of a call or for none: the branch is per block.
            if constexpr (O == Op::grad_stats) {
                with_bool(t.buf[2] != nullptr, [&](auto copy) {
                    with_bool(t.buf[3] != nullptr, [&](auto direction) {
                        grad_stats_block<T, decltype(copy)::value, decltype(direction)::value>(t, lo, n, partial);
                    });
                });
            } else if constexpr (O == Op::history) {
                with_bool(t.buf[3] == nullptr,
                          [&](auto in_place) { history_block<T, decltype(in_place)::value>(t, c, lo, n, partial); });
            } else if constexpr (O == Op::axpy_dot) {
                with_bool(negate, [&](auto neg) {
                    with_bool(scale, [&](auto sc) {
                        axpy_dot_block<T, decltype(neg)::value, decltype(sc)::value>(t, c, lo, n, partial);
                    });
                });
            } else {
                with_bool(t.buf[2] != nullptr, [&](auto snapshot) {
                    with_bool_if<!decltype(snapshot)::value>(t.buf[3] != nullptr, [&](auto base) {
                        step_block<T, decltype(snapshot)::value, decltype(base)::value>(t, c, lo, n, partial);
                    });
                });
            }
        },
        [](double a, double b, int j) { return is_maximum(O, j) ? maximum(a, b) : a + b; }, kWidthFactor<T>);
}

template <class Isa, class T>
void run(const BatchOf<T>& batch) {
    switch (batch.options.op) {
        case Op::grad_stats:
            return run_op<Isa, T, Op::grad_stats>(batch);
        case Op::history:
            return run_op<Isa, T, Op::history>(batch);
        case Op::axpy_dot:
            return run_op<Isa, T, Op::axpy_dot>(batch);
        case Op::step:
            return run_op<Isa, T, Op::step>(batch);
    }
}

}  // namespace fusedoptim::flat
