// Gradient norms for clipping and the non-finite guard: per tensor, sum |g|^2, sum |g|, max |g| or sum |g|^p,
// in double, through reduce_blocks (deterministic for any thread count and SIMD level). Non-finite gradients
// give a non-finite result (the max propagates NaN), which is how the guard finds them in the same pass.
//
// Buffers: grads (read only, in the first slot).
#pragma once

#include <cmath>
#include <cstdint>

#include "fusedoptim/common.hpp"
#include "fusedoptim/parallel.hpp"

namespace fusedoptim::norm {

enum class Kind : int { sum_squares = 0, sum_abs = 1, max_abs = 2, sum_pow = 3 };

struct Options {
    Kind kind;
};

template <class T>
struct Coeffs {
    double p;  // the exponent of sum_pow
};

template <class T>
using BatchOf = Batch<T, Coeffs<T>, Options>;

template <Kind K>
FUSEDOPTIM_INLINE double accumulate(double acc, double x, double p) {
    if constexpr (K == Kind::sum_squares) {
        return acc + x * x;
    } else if constexpr (K == Kind::sum_abs) {
        return acc + __builtin_fabs(x);
    } else if constexpr (K == Kind::max_abs) {
        return maximum(acc, __builtin_fabs(x));
    } else {
        return acc + std::pow(__builtin_fabs(x), p);
    }
}

template <Kind K>
FUSEDOPTIM_INLINE double combine(double a, double b) {
    if constexpr (K == Kind::max_abs) {
        return maximum(a, b);
    } else {
        return a + b;
    }
}

template <class Isa, class T, Kind K>
void run_kind(const BatchOf<T>& batch) {
    reduce_blocks<Isa, 1>(
        batch, batch.out,
        [&](int64_t k, int64_t lo, int64_t hi, double* partial) {
            const T* const g = batch.tensors[k].buf[0];
            const double p = batch.coeffs[k].p;
            double acc[kLanes] = {};
            int64_t i = lo;
            for (; i + kLanes <= hi; i += kLanes) {
                for (int j = 0; j < kLanes; ++j) acc[j] = accumulate<K>(acc[j], static_cast<double>(g[i + j]), p);
            }
            for (int j = 0; i < hi; ++i, ++j) acc[j] = accumulate<K>(acc[j], static_cast<double>(g[i]), p);
            double total = acc[0];
            for (int j = 1; j < kLanes; ++j) total = combine<K>(total, acc[j]);
            partial[0] = total;
        },
        [](double a, double b) { return combine<K>(a, b); });
}

template <class Isa, class T>
void run(const BatchOf<T>& batch) {
    switch (batch.options.kind) {
        case Kind::sum_squares: return run_kind<Isa, T, Kind::sum_squares>(batch);
        case Kind::sum_abs: return run_kind<Isa, T, Kind::sum_abs>(batch);
        case Kind::max_abs: return run_kind<Isa, T, Kind::max_abs>(batch);
        case Kind::sum_pow: return run_kind<Isa, T, Kind::sum_pow>(batch);
    }
}

}  // namespace fusedoptim::norm
