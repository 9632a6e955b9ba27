// Gradient norms for clipping and the non-finite guard: per tensor, sum |g|^2, sum |g|, max |g| or sum |g|^p,
// in double, through reduce_blocks (deterministic for any thread count and SIMD level). Non-finite gradients
// give a non-finite result (the max propagates NaN), which is how the guard finds them in the same pass.
//
// Buffers: grads (read only, in the first slot). A float32 tensor's may be float16 or bfloat16 storage instead
// (TensorRef::low[0]): each block is then converted to float32 on the stack first (exactly), so a 16-bit array
// has the norm of its float32 copy, from the same summation.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

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
            const TensorRef<T>& t = batch.tensors[k];
            const T* g =
                t.buf[0] ? t.buf[0] + lo : nullptr;  // g[i] is element lo + i; blocks start at multiples of kLanes
            [[maybe_unused]] alignas(64) T stage[std::is_same_v<T, float> ? kReduceBlock : 1];
            if constexpr (std::is_same_v<T, float>) {
                if (t.kind[0] != Storage::native) {
                    load_block_of<Isa>(t.kind[0], t.low[0], lo, hi - lo, stage);
                    g = stage;
                }
            }
            const int64_t n = hi - lo;
            const double p = batch.coeffs[k].p;
            double acc[kLanes] = {};
            int64_t i = 0;
            for (; i + kLanes <= n; i += kLanes) {
                for (int j = 0; j < kLanes; ++j) acc[j] = accumulate<K>(acc[j], static_cast<double>(g[i + j]), p);
            }
            for (int j = 0; i < n; ++i, ++j) acc[j] = accumulate<K>(acc[j], static_cast<double>(g[i]), p);
            double total = acc[0];
            for (int j = 1; j < kLanes; ++j) total = combine<K>(total, acc[j]);
            partial[0] = total;
        },
        [](double a, double b) { return combine<K>(a, b); });
}

template <class Isa, class T>
void run(const BatchOf<T>& batch) {
    switch (batch.options.kind) {
        case Kind::sum_squares:
            return run_kind<Isa, T, Kind::sum_squares>(batch);
        case Kind::sum_abs:
            return run_kind<Isa, T, Kind::sum_abs>(batch);
        case Kind::max_abs:
            return run_kind<Isa, T, Kind::max_abs>(batch);
        case Kind::sum_pow:
            return run_kind<Isa, T, Kind::sum_pow>(batch);
    }
}

}  // namespace fusedoptim::norm
