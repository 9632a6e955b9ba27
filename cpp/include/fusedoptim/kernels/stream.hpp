// The STREAM "triad" a = b + s * c (McCalpin), the bandwidth probe the benchmarks compare the optimizers with.
// It runs through the same driver, thread policy and dispatch as the optimizers, so its GB/s is the roofline
// they can reach on this machine with the same threads.
//
// Buffers: a (written), b, c (read; c sits in the first state slot).
#pragma once

#include <cstdint>

#include "fusedoptim/common.hpp"
#include "fusedoptim/parallel.hpp"

namespace fusedoptim::stream {

struct Options {};

template <class T>
struct Coeffs {
    T scalar;
};

template <class T>
using BatchOf = Batch<T, Coeffs<T>, Options>;

template <class T>
struct Update {
    FUSEDOPTIM_INLINE void operator()(const Coeffs<T>& c, int64_t i, T* a, const T* b, T* cc, T*, T*, T*) const {
        a[i] = b[i] + c.scalar * cc[i];
    }
};

template <class Isa, class T>
void run(const BatchOf<T>& batch) {
    run_elementwise<Isa>(batch, Update<T>{});
}

}  // namespace fusedoptim::stream
