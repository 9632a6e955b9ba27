// float16 and bfloat16 storage for mixed precision: conversions to and from float32 that round exactly like
// NumPy's float16 cast and ml_dtypes' bfloat16 cast (round to nearest, ties to even; subnormals, overflow to
// inf). NaN: bfloat16 gives ml_dtypes' canonical quiet NaN with the sign kept; float16 keeps the sign and the
// top payload bits and sets the quiet bit, as the F16C instructions do (NumPy keeps a signalling NaN
// signalling; kernel arithmetic never makes one, so results agree with NumPy bit for bit).
//
// Everything here is always-inline (the ISA-copy rule, common.hpp): the avx2/avx512 copies use F16C for blocks
// of 8, and every copy's scalar routines give the same bits, so the tail and the baseline agree with F16C.
#pragma once

#include <cstdint>
#include <cstring>

#include "fusedoptim/common.hpp"

#if defined(__F16C__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace fusedoptim {

FUSEDOPTIM_INLINE uint32_t bits_of(float x) {
    uint32_t u;
    std::memcpy(&u, &x, sizeof u);
    return u;
}

FUSEDOPTIM_INLINE float float_of(uint32_t u) {
    float x;
    std::memcpy(&x, &u, sizeof x);
    return x;
}

// float32 -> float16, round to nearest even (F. Giesen's float_to_half_fast3_rtne, with F16C's NaN).
FUSEDOPTIM_INLINE uint16_t f32_to_f16(float value) {
    const uint32_t x = bits_of(value);
    const uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t a = x & 0x7fffffffu;
    uint32_t h;
    if (a >= 0x47800000u) {  // |x| >= 2^16, inf or NaN
        h = a > 0x7f800000u ? 0x7e00u | ((a >> 13) & 0x3ffu) : 0x7c00u;
    } else if (a < 0x38800000u) {  // below 2^-14: a float16 subnormal or zero
        // Adding 0.5 aligns the 10 kept bits at the bottom of the float; the FPU's own rounding is RNE.
        const float aligned = float_of(a) + 0.5f;
        h = bits_of(aligned) - 0x3f000000u;
    } else {
        const uint32_t odd = (a >> 13) & 1u;
        a += 0xc8000fffu + odd;  // rebias the exponent (15 - 127) and round half to even
        h = a >> 13;             // [65520, 2^16) carries into the exponent: inf
    }
    return static_cast<uint16_t>(h | sign);
}

// float16 -> float32 (exact; a NaN comes back quiet, as with F16C).
FUSEDOPTIM_INLINE float f16_to_f32(uint16_t value) {
    const uint32_t sign = static_cast<uint32_t>(value & 0x8000u) << 16;
    const uint32_t a = value & 0x7fffu;
    uint32_t u;
    if (a >= 0x7c00u) {
        u = 0x7f800000u | ((a & 0x3ffu) << 13) | (a > 0x7c00u ? 0x400000u : 0u);
    } else if (a >= 0x400u) {
        u = (a << 13) + 0x38000000u;  // rebias the exponent (127 - 15)
    } else {
        u = bits_of(static_cast<float>(a) * 5.9604644775390625e-8f);  // a * 2^-24, exact
    }
    return float_of(u | sign);
}

// float32 -> bfloat16, round to nearest even; NaN -> the quiet NaN 0x7fc0 with the sign (ml_dtypes).
FUSEDOPTIM_INLINE uint16_t f32_to_bf16(float value) {
    const uint32_t x = bits_of(value);
    const uint32_t rounded = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
    const uint32_t nan = ((x >> 16) & 0x8000u) | 0x7fc0u;
    // The NaN test as a float compare: vectorised, an unsigned integer compare needs three AVX2 instructions.
    return static_cast<uint16_t>(value != value ? nan : rounded);
}

FUSEDOPTIM_INLINE float bf16_to_f32(uint16_t value) { return float_of(static_cast<uint32_t>(value) << 16); }

// Blocks of n elements between 16-bit storage and float32.
FUSEDOPTIM_INLINE void load_f16(const uint16_t* src, float* dst, int64_t n) {
    int64_t i = 0;
#if defined(__F16C__) && defined(__AVX__)
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
    }
#endif
    for (; i < n; ++i) dst[i] = f16_to_f32(src[i]);
}

FUSEDOPTIM_INLINE void store_f16(const float* src, uint16_t* dst, int64_t n) {
    int64_t i = 0;
#if defined(__F16C__) && defined(__AVX__)
    for (; i + 8 <= n; i += 8) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
#endif
    for (; i < n; ++i) dst[i] = f32_to_f16(src[i]);
}

FUSEDOPTIM_INLINE void load_bf16(const uint16_t* src, float* dst, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

#if defined(__AVX2__)
// f32_to_bf16 on eight lanes, each result in the low 16 bits of its 32-bit lane. Written out because the
// compiler's vectorisation of the scalar form spends half again as many instructions (an unsigned compare for
// the NaN test, masks before packing), and this store is the costliest part of a bfloat16-state step.
FUSEDOPTIM_INLINE __m256i bf16_lanes(__m256 v) {
    const __m256i x = _mm256_castps_si256(v);
    const __m256i high = _mm256_srli_epi32(x, 16);
    const __m256i odd = _mm256_and_si256(high, _mm256_set1_epi32(1));
    const __m256i rounded =
        _mm256_srli_epi32(_mm256_add_epi32(x, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7fff))), 16);
    const __m256i nan = _mm256_or_si256(_mm256_and_si256(high, _mm256_set1_epi32(0x8000)), _mm256_set1_epi32(0x7fc0));
    const __m256 is_nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
    return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(rounded), _mm256_castsi256_ps(nan), is_nan));
}
#endif

FUSEDOPTIM_INLINE void store_bf16(const float* src, uint16_t* dst, int64_t n) {
    int64_t i = 0;
#if defined(__AVX2__)
    for (; i + 16 <= n; i += 16) {
        const __m256i a = bf16_lanes(_mm256_loadu_ps(src + i)), b = bf16_lanes(_mm256_loadu_ps(src + i + 8));
        // Every lane is at most 0xffff, so the saturating pack only narrows; it packs within 128-bit halves
        // (a0 b0 a1 b1), and the permutation puts the halves back in order.
        const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xd8);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), packed);
    }
#endif
    for (; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}

// Stochastic rounding to bfloat16 (an option of the optimizers, for bfloat16 parameters and state): x rounds
// up in magnitude with probability equal to the fraction of a bfloat16 ulp it lies above the value below, so
// the rounded value is x on average. The 16 random bits are added below the kept bits and the sum truncated;
// inf stays inf (its low bits are zero) and NaN is the canonical quiet NaN, as with round to nearest.
//
// The random bits are a counter-based hash of (key, element index), with no generator state: the same bits for
// any thread count, block or SIMD level, so runs are reproducible. The key mixes the optimizer's seed, the
// parameter's index, its step number and the buffer's slot (stochastic_key below); element i of a buffer gets
// lowbias32(key + i * golden ratio) (C. Wellons' hash: every output bit depends on every input bit, and the
// multiplier is odd, so the 2^32 indices of a tensor get distinct inputs; indices 2^32 apart in one tensor of
// over 8 GB would share bits). reference.py repeats both in NumPy.
inline constexpr uint32_t kGolden32 = 0x9e3779b9u;

FUSEDOPTIM_INLINE uint64_t splitmix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// The key of buffer slot `slot` (0 the parameter, 2.. the state, common.hpp) of parameter `index` at step `step`.
FUSEDOPTIM_INLINE uint32_t stochastic_key(uint64_t seed, int64_t index, int64_t step, int slot) {
    uint64_t h = splitmix64(seed);
    h = splitmix64(h ^ static_cast<uint64_t>(index));
    h = splitmix64(h ^ static_cast<uint64_t>(step));
    h = splitmix64(h ^ static_cast<uint64_t>(slot));
    return static_cast<uint32_t>(h);
}

// The per-element formula, written once for a scalar (U uint32_t, F float) and for GCC vectors of them:
// `input` is key + index * golden ratio, the result the bfloat16 bits in the low half of each 32-bit lane.
template <class U, class F>
FUSEDOPTIM_INLINE U bf16_stochastic_lanes(F value, U input) {
    U x = input;  // lowbias32
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    U bits;
    std::memcpy(&bits, &value, sizeof bits);
    const U rounded = (bits + (x >> 16)) >> 16;
    const U nan = ((bits >> 16) & 0x8000u) | 0x7fc0u;
    return value != value ? nan : rounded;
}

// n float32 values to bfloat16, stochastically rounded with `key` as elements first, first + 1, ... of their
// buffer (the index the random bits are drawn for). The hash dominates the cost (two 32-bit multiplies per
// element; the index's multiple of the golden ratio is carried as a sum), so it runs a full vector of lanes at a
// time: 0.18 ns per element with AVX-512 and 0.28 with AVX2 on a Xeon, where rounding to nearest takes 0.14.
// GCC vector types, not intrinsics: GCC 12's AVX-512 shift and narrowing intrinsics trip -Wmaybe-uninitialized
// (their undefined pass-through operand), which the CI build treats as an error; and the formula stays one.
FUSEDOPTIM_INLINE void store_bf16_stochastic(const float* src, uint16_t* dst, int64_t first, int64_t n, uint32_t key) {
    int64_t i = 0;
    const uint32_t start = key + static_cast<uint32_t>(first) * kGolden32;  // element first's hash input
#if defined(__AVX2__)
#if defined(__AVX512F__)
    constexpr int kWidth = 16;
#else
    constexpr int kWidth = 8;
#endif
    typedef uint32_t u32xN __attribute__((vector_size(4 * kWidth)));
    typedef float f32xN __attribute__((vector_size(4 * kWidth)));
    typedef uint16_t u16xN __attribute__((vector_size(2 * kWidth)));
    u32xN input;
    for (int lane = 0; lane < kWidth; ++lane) input[lane] = start + static_cast<uint32_t>(lane) * kGolden32;
    for (; i + kWidth <= n; i += kWidth) {
        f32xN v;
        std::memcpy(&v, src + i, sizeof v);
        const u16xN packed = __builtin_convertvector(bf16_stochastic_lanes(v, input), u16xN);
        std::memcpy(dst + i, &packed, sizeof packed);
        input += static_cast<uint32_t>(kWidth) * kGolden32;
    }
#endif
    for (; i < n; ++i) {
        dst[i] = static_cast<uint16_t>(bf16_stochastic_lanes(src[i], start + static_cast<uint32_t>(i) * kGolden32));
    }
}

// bfloat16 buffers read and written inside the update loop, for the fused mixed-precision path (run_fused in
// parallel.hpp): a family's update indexes them like its float pointers (`m = exp_avg[i]`, `exp_avg[i] = m`),
// and the conversions (a shift in, f32_to_bf16 out) vectorise with the arithmetic, so the values never make a
// round trip through memory. float16 has no such form here: GCC 12 vectorises no _Float16 conversion without
// AVX512-FP16 and the bit-level float16 rounding is a dozen instructions, so float16 stays staged.
struct Bf16Ref {
    uint16_t* at;
    FUSEDOPTIM_INLINE operator float() const { return bf16_to_f32(*at); }
    FUSEDOPTIM_INLINE Bf16Ref& operator=(float value) {
        *at = f32_to_bf16(value);
        return *this;
    }
};

struct Bf16Slot {  // a state buffer
    uint16_t* data;
    FUSEDOPTIM_INLINE Bf16Ref operator[](int64_t i) const { return {data + i}; }
};

template <class T>
struct ScaledGrad {  // a native gradient multiplied by grad_scale as it is read (float64 tensors, run_elementwise)
    const T* data;
    T scale;
    FUSEDOPTIM_INLINE T operator[](int64_t i) const { return data[i] * scale; }
};

struct Bf16Grad {  // a bfloat16 gradient, multiplied by grad_scale as it is read (the reference's order)
    const uint16_t* data;
    float scale;
    FUSEDOPTIM_INLINE float operator[](int64_t i) const { return bf16_to_f32(data[i]) * scale; }
};

struct MasterRef {
    float* master;
    uint16_t* model;
    FUSEDOPTIM_INLINE operator float() const { return *master; }
    FUSEDOPTIM_INLINE MasterRef& operator=(float value) {
        *master = value;
        *model = f32_to_bf16(value);
        return *this;
    }
};

struct Bf16Master {  // the float32 master of a bfloat16 parameter: every store also writes the rounded parameter
    float* master;
    uint16_t* model;
    FUSEDOPTIM_INLINE MasterRef operator[](int64_t i) const { return {master + i, model + i}; }
};

// Elements [begin, begin + n) of 16-bit storage `data` of format `kind`, to or from float32.
FUSEDOPTIM_INLINE void load_block(Storage kind, const void* data, int64_t begin, int64_t n, float* dst) {
    const uint16_t* src = static_cast<const uint16_t*>(data) + begin;
    if (kind == Storage::f16) {
        load_f16(src, dst, n);
    } else {
        load_bf16(src, dst, n);
    }
}

FUSEDOPTIM_INLINE void store_block(Storage kind, const float* src, void* data, int64_t begin, int64_t n) {
    uint16_t* dst = static_cast<uint16_t*>(data) + begin;
    if (kind == Storage::f16) {
        store_f16(src, dst, n);
    } else {
        store_bf16(src, dst, n);
    }
}

// The same, out of line: one copy per instruction set (templated on its `Isa` tag, see common.hpp) that every
// family's staged loop calls. Inlined into each family and mode they doubled the kernels' compile time and code
// size, for nothing: a call costs a few cycles per block of kStageBlock elements.
template <class Isa>
__attribute__((noinline)) void load_block_of(Storage kind, const void* data, int64_t begin, int64_t n, float* dst) {
    load_block(kind, data, begin, n, dst);
}

template <class Isa>
__attribute__((noinline)) void store_block_of(Storage kind, const float* src, void* data, int64_t begin, int64_t n) {
    store_block(kind, src, data, begin, n);
}

template <class Isa>
__attribute__((noinline)) void store_bf16_stochastic_of(const float* src, void* data, int64_t begin, int64_t n,
                                                        uint32_t key) {  // elements [begin, begin + n) of data
    store_bf16_stochastic(src, static_cast<uint16_t*>(data) + begin, begin, n, key);
}

}  // namespace fusedoptim
