// Exponential moving average of parameters (weight averaging), as torch.optim.swa_utils' EMA:
// average = lerp(average, param, 1 - decay).
//
// Buffers: averages (written), params (read, in the gradient slot).
#pragma once

#include <cstdint>

#include "fusedoptim/common.hpp"
#include "fusedoptim/parallel.hpp"

namespace fusedoptim::ema {

struct Options {};

template <class T>
struct Coeffs {
    T weight;  // 1 - decay
};

template <class T>
using BatchOf = Batch<T, Coeffs<T>, Options>;

template <class T>
struct Update {
    FUSEDOPTIM_INLINE void operator()(const Coeffs<T>& c, int64_t i, T* average, const T* param, T*, T*, T*, T*) const {
        average[i] = lerp(average[i], param[i], c.weight);  // torch._foreach_lerp_(ema, params, 1 - decay)
    }
};

template <class Isa, class T>
void run(const BatchOf<T>& batch) {
    run_elementwise<Isa>(batch, Update<T>{});
}

}  // namespace fusedoptim::ema
