// In-place gradient transforms: scaling by a factor (clip_grad_norm_) and clamping to [lo, hi]
// (clip_grad_value_; NaN stays NaN, as torch.clamp).
//
// Buffers: grads (written, in the first slot).
#pragma once

#include <cstdint>

#include "fusedoptim/common.hpp"
#include "fusedoptim/parallel.hpp"

namespace fusedoptim::clip {

struct Options {
    bool clamp;
};

template <class T>
struct Coeffs {
    T scale, lo, hi;
};

template <class T>
using BatchOf = Batch<T, Coeffs<T>, Options>;

template <class T, bool Clamp>
struct Update {
    FUSEDOPTIM_INLINE void operator()(const Coeffs<T>& c, int64_t i, T* g, const T*, T*, T*, T*, T*) const {
        const T x = g[i];
        if constexpr (Clamp) {
            g[i] = x < c.lo ? c.lo : (x > c.hi ? c.hi : x);  // NaN compares false both ways: stays NaN
        } else {
            g[i] = x * c.scale;  // torch._foreach_mul_(grads, clip_coef)
        }
    }
};

template <class Isa, class T>
void run(const BatchOf<T>& batch) {
    with_bool(batch.options.clamp,
              [&](auto clamp) { run_elementwise<Isa>(batch, Update<T, decltype(clamp)::value>{}); });
}

}  // namespace fusedoptim::clip
