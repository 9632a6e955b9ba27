// Types and element helpers shared by every kernel. No Python headers.
//
// One rule keeps the per-ISA copies of the kernels apart (cpp/src/kernels.cpp is compiled once per instruction
// set): a translation unit built with ISA flags may only instantiate templates that take its own `Isa` tag
// type, or always-inline helpers. Anything else it emitted as a weak symbol (an std::vector member, a shared
// inline function) could be picked by the linker for every caller, and an AVX-512 body would then run on a
// CPU without AVX-512.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#define FUSEDOPTIM_INLINE inline __attribute__((always_inline))
#define FUSEDOPTIM_INLINE_LAMBDA __attribute__((always_inline))

namespace fusedoptim {

// Scratch memory of the calling thread (cpp/src/scratch.cpp), one grow-only buffer per slot, 64-byte aligned:
// what a kernel needs per call besides the caller's arrays (the reductions' bookkeeping) comes from here, so a
// step allocates nothing once sizes like its own have been seen. Valid until the next call with the same slot
// on the same thread; throws std::bad_alloc. Slots: 0 LAMB's per-tensor sums, 1 and 2 reduce_blocks.
inline constexpr int kScratchSlots = 3;
void* scratch(int slot, size_t bytes);

// A tensor's buffers: buf[0] the parameter, buf[1] the gradient (only read), then the family's state buffers
// in the order its header documents. Unused slots are null.
inline constexpr int kMaxBuffers = 6;

// How a buffer slot is stored: in the tensor's own type, or in 16 bits (float32 tensors only, convert.hpp).
enum class Storage : uint8_t { native = 0, f16 = 1, bf16 = 2 };

// Mixed precision (float32 tensors; see run_elementwise): a gradient or state slot j may live in 16-bit storage
// instead, at low[j] (buf[j] null, kind[j] its format); the update still computes in T. `model`, when set,
// receives the updated parameter rounded to `model_kind` (buf[0] is then the float32 master copy), and
// grad_scale multiplies the gradient as it is read (unscaling a loss-scaled gradient). `staged` says any of
// these is in use; `fuse` lets the layouts run_fused handles take it (off only to test it against staging).
// `stochastic`: the bfloat16 stores (model and state) round stochastically, slot j's random bits keyed by
// round_key[j] (convert.hpp), which the bindings set for every step. `prefetch`: those loops prefetch ahead in
// software (parallel.hpp; the bindings' settings.hpp says on which CPUs).
template <class T>
struct TensorRef {
    T* buf[kMaxBuffers];
    int64_t size;
    void* low[kMaxBuffers] = {};
    Storage kind[kMaxBuffers] = {};
    void* model = nullptr;
    Storage model_kind = Storage::native;
    T grad_scale = T(1);
    bool staged = false;
    bool fuse = true;
    bool prefetch = false;
    bool stochastic = false;
    uint32_t round_key[kMaxBuffers] = {};
};

// One call's work: tensors of one dtype sharing one set of mode flags, with per-tensor coefficients
// (per-tensor because step counts, and so bias corrections, can differ between tensors of a group).
// offsets[k] is the number of elements before tensor k; offsets[count] the total.
template <class T, class Coeffs, class Options>
struct Batch {
    const TensorRef<T>* tensors;
    const Coeffs* coeffs;
    const int64_t* offsets;
    int64_t count;
    Options options;
    int num_threads;
    int64_t grain;          // fewest elements per thread worth a thread
    double* out = nullptr;  // reductions: one result per tensor (count entries)
};

FUSEDOPTIM_INLINE float sqrt_(float x) { return __builtin_sqrtf(x); }
FUSEDOPTIM_INLINE double sqrt_(double x) { return __builtin_sqrt(x); }

FUSEDOPTIM_INLINE float abs_(float x) { return __builtin_fabsf(x); }
FUSEDOPTIM_INLINE double abs_(double x) { return __builtin_fabs(x); }

FUSEDOPTIM_INLINE float copysign_(float x, float y) { return __builtin_copysignf(x, y); }
FUSEDOPTIM_INLINE double copysign_(double x, double y) { return __builtin_copysign(x, y); }

// np.sign: -1 or 1 carrying x's sign, and x itself for a zero (of either sign) or a NaN. One select on
// copysign: the nested comparisons it replaces kept GCC from vectorising Lion's loop.
template <class T>
FUSEDOPTIM_INLINE T sign(T x) {
    return (x > T(0) || x < T(0)) ? copysign_(T(1), x) : x;
}

// torch.maximum: NaN in either argument propagates (std::max would drop a NaN in its first argument). The
// quiet test comes second: written first, it guarded the ordered compare (which may raise FE_INVALID), and
// GCC, keeping floating-point exceptions exact, would not turn the pair into a select (Adamax ran scalar and
// branchy).
template <class T>
FUSEDOPTIM_INLINE T maximum(T a, T b) {
    return (a > b || a != a) ? a : b;
}

// torch's lerp (ATen/native/Lerp.h): the form is chosen by the weight so that both ends are exact. The weight is
// the same for a whole loop: GCC unswitches the loop on it (the fused mixed-precision loops need a larger
// unswitching budget for that, CMakeLists.txt), so each copy is branch-free.
template <class T>
FUSEDOPTIM_INLINE T lerp(T start, T end, T weight) {
    return (weight < T(0.5) && weight > T(-0.5)) ? start + weight * (end - start)
                                                 : end - (end - start) * (T(1) - weight);
}

// Turns runtime mode flags into template arguments, so each mode is its own branch-free loop.
template <class F>
FUSEDOPTIM_INLINE void with_bool(bool flag, F&& f) {
    if (flag) {
        f(std::true_type{});
    } else {
        f(std::false_type{});
    }
}

// with_bool for a mode that can only be on when `Possible` (Nesterov needs momentum; L2 and decoupled decay
// exclude each other; the bindings guarantee it): the impossible combinations are never compiled.
template <bool Possible, class F>
FUSEDOPTIM_INLINE void with_bool_if(bool flag, F&& f) {
    if constexpr (Possible) {
        with_bool(flag, f);
    } else {
        (void)flag;
        f(std::false_type{});
    }
}

template <class T>
struct BitsOf;
template <>
struct BitsOf<float> {
    using type = uint32_t;
};
template <>
struct BitsOf<double> {
    using type = uint64_t;
};

// `maximize` (g = -g) as an xor of the sign bit with a per-call mask: bit for bit the negation, a NaN's sign
// included. As a template mode it doubled every family's instantiations, and so the kernels' compile time and
// code size; the xor is free in loops bound by memory or by the divider.
template <class T>
struct Negate {
    typename BitsOf<T>::type mask;  // 0, or the sign bit

    FUSEDOPTIM_INLINE static Negate when(bool negate) {
        return {negate ? typename BitsOf<T>::type(1) << (8 * sizeof(T) - 1) : typename BitsOf<T>::type(0)};
    }
    FUSEDOPTIM_INLINE T operator()(T x) const {
        return __builtin_bit_cast(T, __builtin_bit_cast(typename BitsOf<T>::type, x) ^ mask);
    }
};

}  // namespace fusedoptim
