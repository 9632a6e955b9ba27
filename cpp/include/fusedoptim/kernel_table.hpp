// The table of kernels that each instruction set's copy of cpp/src/kernels.cpp fills in.
#pragma once

#include <type_traits>

#include "fusedoptim/kernels/adagrad.hpp"
#include "fusedoptim/kernels/adam.hpp"
#include "fusedoptim/kernels/rmsprop.hpp"
#include "fusedoptim/kernels/sgd.hpp"

// Every optimizer family with a kernel; adding one here adds it to each instruction set's table.
#define FUSEDOPTIM_FAMILIES(X) X(sgd) X(adagrad) X(rmsprop) X(adam)

namespace fusedoptim {

template <class T>
struct Kernels {
#define FUSEDOPTIM_ENTRY(family) void (*family)(const family::BatchOf<T>&);
    FUSEDOPTIM_FAMILIES(FUSEDOPTIM_ENTRY)
#undef FUSEDOPTIM_ENTRY
};

struct KernelTable {
    const char* name;
    Kernels<float> f32;
    Kernels<double> f64;
};

}  // namespace fusedoptim
