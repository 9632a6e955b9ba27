// The table of kernels that each instruction set's copy of cpp/src/kernels.cpp fills in.
#pragma once

#include <type_traits>

#include "fusedoptim/convert.hpp"
#include "fusedoptim/kernels/adadelta.hpp"
#include "fusedoptim/kernels/adagrad.hpp"
#include "fusedoptim/kernels/adam.hpp"
#include "fusedoptim/kernels/adamax.hpp"
#include "fusedoptim/kernels/asgd.hpp"
#include "fusedoptim/kernels/clip.hpp"
#include "fusedoptim/kernels/ema.hpp"
#include "fusedoptim/kernels/flat.hpp"
#include "fusedoptim/kernels/lamb.hpp"
#include "fusedoptim/kernels/lion.hpp"
#include "fusedoptim/kernels/nadam.hpp"
#include "fusedoptim/kernels/norm.hpp"
#include "fusedoptim/kernels/radam.hpp"
#include "fusedoptim/kernels/rprop.hpp"
#include "fusedoptim/kernels/rmsprop.hpp"
#include "fusedoptim/kernels/sgd.hpp"
#include "fusedoptim/kernels/stream.hpp"

// Every optimizer family with a kernel. Adding one here adds it to each instruction set's table and registers
// its binding (cpp/bindings/register_<family>.cpp defines register_<family>).
// (clang-format 14 reflows this list differently on every run)
// clang-format off
#define FUSEDOPTIM_FAMILIES(X) \
    X(sgd) X(adagrad) X(rmsprop) X(adam) X(adadelta) X(adamax) X(nadam) X(radam) X(lion) X(lamb) X(asgd) X(rprop) \
    X(stream) X(norm) X(clip) X(ema) X(flat)
// clang-format on

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
    // The 16-bit conversions the mixed-precision kernels use (convert.hpp), exposed so tests can check them
    // exhaustively at every level.
    void (*to_float)(Storage kind, const void* src, float* dst, int64_t n);
    void (*from_float)(Storage kind, const float* src, void* dst, int64_t n);
    void (*to_bf16_stochastic)(const float* src, uint16_t* dst, int64_t first, int64_t n, uint32_t key);
};

template <class Isa>
void to_float(Storage kind, const void* src, float* dst, int64_t n) {
    load_block_of<Isa>(kind, src, 0, n, dst);
}

template <class Isa>
void from_float(Storage kind, const float* src, void* dst, int64_t n) {
    store_block_of<Isa>(kind, src, dst, 0, n);
}

template <class Isa>
void to_bf16_stochastic(const float* src, uint16_t* dst, int64_t first, int64_t n, uint32_t key) {
    store_bf16_stochastic(src, dst, first, n, key);
}

}  // namespace fusedoptim
