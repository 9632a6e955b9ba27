// Thread policy and the multi-tensor driver.
//
// A call's tensors are laid end to end as one index space [0, total). Below `grain` elements per thread the
// call runs serially; above, one OpenMP parallel region splits the total (not each tensor) into one static,
// contiguous range per thread, each range starting on a 64-byte boundary of the parameter it starts in, so no
// two threads write the same cache line. Every element is updated by the same arithmetic whichever thread,
// chunk or vector lane handles it, so results do not depend on the thread count.
#pragma once

#include <cstdint>
#include <type_traits>

#include "fusedoptim/common.hpp"
#include "fusedoptim/convert.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace fusedoptim {

inline constexpr int64_t kCacheLineBytes = 64;

// How many threads a call of `total` units of work gets: never more than asked, never fewer than `grain` units
// each, and one inside an enclosing parallel region (no nested regions). A unit is one element of SGD with
// momentum on float32; callers scale their element count by their cost per element (WorkOf below), because
// what a second thread must amortise, its wake-up, is the same for all (benchmarks/grain_latest.md).
FUSEDOPTIM_INLINE int plan_threads(int64_t total, int max_threads, int64_t grain) {
#if defined(_OPENMP)
    if (max_threads <= 1 || omp_in_parallel()) return 1;
    if (grain < 1) grain = 1;
    const int64_t by_work = total / grain;
    if (by_work < 2) return 1;
    return by_work < max_threads ? static_cast<int>(by_work) : max_threads;
#else
    (void)total;
    (void)max_threads;
    (void)grain;
    return 1;
#endif
}

// A kernel's cost per float32 element in grain units: an Update functor may declare `kWork` (its family's
// header says what it was measured from); otherwise 1. float64 counts double (twice the bytes and half the
// vector lanes per division).
template <class U, class = void>
struct WorkOf {
    static constexpr int64_t value = 1;
};
template <class U>
struct WorkOf<U, std::void_t<decltype(U::kWork)>> {
    static constexpr int64_t value = U::kWork;
};
template <class T>
inline constexpr int64_t kWidthFactor = static_cast<int64_t>(sizeof(T) / sizeof(float));
template <class U, class T>
inline constexpr int64_t kWorkOf = WorkOf<U>::value* kWidthFactor<T>;

// Where thread `t` of `n` starts, as a global element index: the even split point, moved forward to the next
// cache-line boundary of the parameter it falls in (or that parameter's end). Threads t-1 and t compute the same
// value, so the ranges tile [0, total) exactly. Overflow-free for any int64 total.
template <class T>
FUSEDOPTIM_INLINE int64_t split_point(const TensorRef<T>* tensors, const int64_t* offsets, int64_t count, int64_t total,
                                      int t, int n) {
    if (t <= 0) return 0;
    if (t >= n) return total;
    const int64_t q = total / n, r = total % n;
    const int64_t raw = q * t + (r * t) / n;
    // The tensor holding `raw`: the last k with offsets[k] <= raw.
    int64_t lo = 0, hi = count - 1;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo + 1) / 2;
        if (offsets[mid] <= raw) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    const int64_t local = raw - offsets[lo];
    if (local == 0) return raw;
    const auto address = reinterpret_cast<uintptr_t>(tensors[lo].buf[0] + local);
    const int64_t misalign = static_cast<int64_t>(address % kCacheLineBytes);
    int64_t step = 0;
    if (misalign % static_cast<int64_t>(sizeof(T)) == 0 && misalign != 0) {
        step = (kCacheLineBytes - misalign) / static_cast<int64_t>(sizeof(T));
    }
    const int64_t end = offsets[lo + 1];
    return raw + step < end ? raw + step : end;
}

// Calls body(k, begin, end) for consecutive pieces [begin, end) of tensor k covering the whole batch; `work` is
// the body's cost per element (plan_threads).
template <class Isa, class T, class C, class O, class Body>
void for_each_segment(const Batch<T, C, O>& batch, const Body& body, int64_t work = 1) {
    const int64_t total = batch.offsets[batch.count];
    if (total == 0) return;
    const int threads = plan_threads(total * work, batch.num_threads, batch.grain);
    auto run_range = [&](int64_t begin, int64_t end) {
        int64_t k = 0;
        while (k < batch.count && batch.offsets[k + 1] <= begin) ++k;
        for (; k < batch.count && batch.offsets[k] < end; ++k) {
            const int64_t lo = (begin > batch.offsets[k] ? begin : batch.offsets[k]) - batch.offsets[k];
            const int64_t hi = (end < batch.offsets[k + 1] ? end : batch.offsets[k + 1]) - batch.offsets[k];
            if (hi > lo) body(k, lo, hi);
        }
    };
    if (threads <= 1) {
        run_range(0, total);
        return;
    }
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num(), n = omp_get_num_threads();
        const int64_t begin = split_point(batch.tensors, batch.offsets, batch.count, total, t, n);
        const int64_t end = split_point(batch.tensors, batch.offsets, batch.count, total, t + 1, n);
        if (end > begin) run_range(begin, end);
    }
#endif
}

// Mixed-precision tensors (TensorRef::staged) go through blocks of kStageBlock elements, small enough to stay in
// L1: the 16-bit slots and the scaled gradient are converted into float buffers on the stack, the family's
// unchanged update runs on the block, then the 16-bit state is stored back and the master rounded into the
// 16-bit parameter. Still one pass over memory, and every element sees the same operations whatever the block,
// thread or SIMD level.
inline constexpr int64_t kStageBlock = 256;

// The fused mixed-precision path, for bfloat16 parameters (float32 masters; the bfloat16 gradient scaled as
// read) and for bfloat16 state (with float32 or bfloat16 parameters): the update reads and writes the 16-bit
// values in its own loop through convert.hpp's slots, so they stay in registers. Staging stores every converted
// vector to L1 and loads it back, and on CPUs with one store port per cycle (Zen 1 splits a 256-bit store in
// two) those stores, not memory, bounded the step. Same bits as staging: each slot is read and converted once
// before it is written, and the master is rounded as it is stored.
template <class Update, class C>
inline constexpr bool kFusable =
    std::is_invocable_v<const Update&, const C&, int64_t, Bf16Master, Bf16Grad, Bf16Slot, Bf16Slot, Bf16Slot, Bf16Slot>;

// Tensor t's fused layout: bit 0 set for bfloat16 parameters, bit 1 for bfloat16 state; -1 when it has none
// (float16 anywhere, state buffers of mixed formats, a scaled float32 gradient, float32 everything) and for
// stochastic rounding, which stages: fused variants of it would add a third to the kernels' compile time, and
// its hash, not the staging, is most of its cost.
FUSEDOPTIM_INLINE int fused_layout(const TensorRef<float>& t) {
    if (!t.fuse || t.stochastic) return -1;
    bool low_state = false, native_state = false;
    for (int j = 2; j < kMaxBuffers; ++j) {
        if (t.low[j] != nullptr && t.kind[j] != Storage::bf16) return -1;
        low_state = low_state || t.low[j] != nullptr;
        native_state = native_state || t.buf[j] != nullptr;
    }
    if (low_state && native_state) return -1;
    const int state = low_state ? 2 : 0;
    if (t.kind[1] == Storage::native && t.model_kind == Storage::native && t.grad_scale == 1.0f) {
        return low_state ? state : -1;
    }
    if (t.kind[1] == Storage::bf16 && t.model_kind == Storage::bf16) return 1 | state;
    return -1;
}

// run_fused works in blocks of kFuseBlock elements, each first prefetching (into L1, where t.prefetch says so)
// the block kPrefetchAhead elements on in every stream. These loops do more work per byte than the float32
// ones, so the out-of-order window holds fewer cache misses, and on Intel CPUs the hardware prefetchers alone
// leave the step short of its memory floor; on AMD's they keep up and software prefetch only costs, so it is
// off there (settings.hpp in the bindings). The measurements that decided it, and the distances tried, are in
// benchmarks/byte_floor_latest.md ("Software prefetch").
inline constexpr int64_t kFuseBlock = 256, kPrefetchAhead = 1024;
static_assert(kFuseBlock == kStageBlock, "prefetch_block fetches one block of either loop");

template <int Bytes>
FUSEDOPTIM_INLINE void prefetch_block(const void* base, int64_t at) {
    const char* q = static_cast<const char*>(base) + at * Bytes;
    for (int64_t k = 0; k < kFuseBlock * Bytes; k += kCacheLineBytes) __builtin_prefetch(q + k, 1, 3);
}

template <class Isa, bool Bf16Params, bool Bf16State, class C, class Update>
void run_fused(const TensorRef<float>& t, const C c, int64_t lo, int64_t hi, const Update update) {
    for (int64_t begin = lo; begin < hi; begin += kFuseBlock) {
        const int64_t n = hi - begin < kFuseBlock ? hi - begin : kFuseBlock;
        const int64_t ahead = begin + kPrefetchAhead;
        if (t.prefetch && ahead + kFuseBlock <= hi) {
            prefetch_block<4>(t.buf[0], ahead);
            if constexpr (Bf16Params) {
                prefetch_block<2>(t.low[1], ahead);
                prefetch_block<2>(t.model, ahead);
            } else {
                prefetch_block<4>(t.buf[1], ahead);
            }
            for (int j = 2; j < kMaxBuffers; ++j) {
                if constexpr (Bf16State) {
                    if (t.low[j]) prefetch_block<2>(t.low[j], ahead);
                } else {
                    if (t.buf[j]) prefetch_block<4>(t.buf[j], ahead);
                }
            }
        }
        const auto slot = [&](int j) {
            if constexpr (Bf16State) {
                return Bf16Slot{t.low[j] ? static_cast<uint16_t*>(t.low[j]) + begin : nullptr};
            } else {
                return t.buf[j] ? t.buf[j] + begin : nullptr;
            }
        };
        const auto s0 = slot(2), s1 = slot(3), s2 = slot(4), s3 = slot(5);
        if constexpr (Bf16Params) {
            const Bf16Master p{t.buf[0] + begin, static_cast<uint16_t*>(t.model) + begin};
            const Bf16Grad g{static_cast<const uint16_t*>(t.low[1]) + begin, t.grad_scale};
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) update(c, i, p, g, s0, s1, s2, s3);
        } else {
            float* const p = t.buf[0] + begin;
            const float* const g = t.buf[1] + begin;
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) update(c, i, p, g, s0, s1, s2, s3);
        }
    }
}

// `c` and `update` are taken by value: local copies cannot alias the stores, so the compiler can hoist mode
// tests on the coefficients (lerp's weight) and the functor's members out of the loop and vectorise it.
template <class Isa, class T, class C, class Update>
void run_staged(const TensorRef<T>& t, const C c, int64_t lo, int64_t hi, const Update update) {
    alignas(64) T stage[kMaxBuffers][kStageBlock];
    for (int64_t begin = lo; begin < hi; begin += kStageBlock) {
        const int64_t n = hi - begin < kStageBlock ? hi - begin : kStageBlock;
        if constexpr (std::is_same_v<T, float>) {
            // As in run_fused (benchmarks/byte_floor_latest.md, "Software prefetch": the staged loop too gains on
            // Intel in most modes and loses on AMD).
            const int64_t ahead = begin + kPrefetchAhead;
            if (t.prefetch && ahead + kStageBlock <= hi) {
                for (int j = 0; j < kMaxBuffers; ++j) {
                    if (t.buf[j]) prefetch_block<4>(t.buf[j], ahead);
                    if (t.low[j]) prefetch_block<2>(t.low[j], ahead);
                }
                if (t.model) prefetch_block<2>(t.model, ahead);
            }
        }
        T* b[kMaxBuffers];
        for (int j = 0; j < kMaxBuffers; ++j) {
            b[j] = t.buf[j] ? t.buf[j] + begin : nullptr;
            if constexpr (std::is_same_v<T, float>) {
                if (t.kind[j] != Storage::native) {
                    load_block_of<Isa>(t.kind[j], t.low[j], begin, n, stage[j]);
                    b[j] = stage[j];
                }
            }
        }
        // reference: g.astype(T) * grad_scale; with no scale the gradient is read where it is (in the caller's
        // array, or as converted into the stage): multiplying by 1 changes no bits.
        const T* grad = b[1];
        if (t.grad_scale != T(1)) {
            T* const scaled = stage[1];
            const T grad_scale = t.grad_scale;
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) scaled[i] = grad[i] * grad_scale;
            grad = scaled;
        }
        T* const p = b[0];
        T* const s0 = b[2];
        T* const s1 = b[3];
        T* const s2 = b[4];
        T* const s3 = b[5];
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) update(c, i, p, grad, s0, s1, s2, s3);
        if constexpr (std::is_same_v<T, float>) {
            const auto store = [&](int j, Storage kind, const float* src, void* dst) {
                if (t.stochastic && kind == Storage::bf16) {
                    store_bf16_stochastic_of<Isa>(src, dst, begin, n, t.round_key[j]);
                } else {
                    store_block_of<Isa>(kind, src, dst, begin, n);
                }
            };
            for (int j = 2; j < kMaxBuffers; ++j) {
                if (t.kind[j] != Storage::native) store(j, t.kind[j], stage[j], t.low[j]);
            }
            if (t.model_kind != Storage::native) store(0, t.model_kind, p, t.model);
        }
    }
}

// Applies update(coeffs, i, p, g, s0, s1, s2, s3) to every element: the one loop all elementwise kernels share.
// `omp simd` is safe because validation guarantees no buffer overlaps another.
template <class Isa, class T, class C, class O, class Update>
void run_elementwise(const Batch<T, C, O>& batch, const Update& update) {
    for_each_segment<Isa>(
        batch,
        [&](int64_t k, int64_t lo, int64_t hi) {
            const TensorRef<T>& t = batch.tensors[k];
            const C c = batch.coeffs[k];
            const Update u = update;                   // a local copy: its members (Negate's mask) stay in registers
            if constexpr (std::is_same_v<T, float>) {  // only float32 tensors are staged: no double copy to compile
                if (t.staged) {
                    if constexpr (kFusable<Update, C>) {
                        switch (fused_layout(t)) {
                            case 1:
                                run_fused<Isa, true, false>(t, c, lo, hi, u);
                                return;
                            case 2:
                                run_fused<Isa, false, true>(t, c, lo, hi, u);
                                return;
                            case 3:
                                run_fused<Isa, true, true>(t, c, lo, hi, u);
                                return;
                            default:
                                break;
                        }
                    }
                    run_staged<Isa>(t, c, lo, hi, u);
                    return;
                }
            }
            T* b[kMaxBuffers];
            for (int j = 0; j < kMaxBuffers; ++j) b[j] = t.buf[j] ? t.buf[j] + lo : nullptr;
            const int64_t n = hi - lo;
            if constexpr (std::is_same_v<T, double> &&
                          std::is_invocable_v<const Update&, const C&, int64_t, T*, ScaledGrad<T>, T*, T*, T*, T*>) {
                // float64 tensors have no 16-bit storage, only a gradient scale (GradScaler): read as scaled. (The
                // optimizer families take any gradient type; clipping, EMA and the stream kernels get no scale.)
                if (t.grad_scale != T(1)) {
                    const ScaledGrad<T> g{b[1], t.grad_scale};
#pragma omp simd
                    for (int64_t i = 0; i < n; ++i) u(c, i, b[0], g, b[2], b[3], b[4], b[5]);
                    return;
                }
            }
            T* const p = b[0];
            const T* const g = b[1];
            T* const s0 = b[2];
            T* const s1 = b[3];
            T* const s2 = b[4];
            T* const s3 = b[5];
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) u(c, i, p, g, s0, s1, s2, s3);
        },
        kWorkOf<Update, T>);
}

// Deterministic reductions. Each tensor is cut into fixed blocks of kReduceBlock elements; `block(k, lo, hi,
// partial)` reduces one block into `partial[0..N)`; threads only decide who computes a block. The block partials
// are then combined in block order with `combine`, into out[k * N + j]. So the result is the same for any thread
// count, and, when `block` fixes its own summation order (see kLanes), for any SIMD level too. `combine(a, b)`
// combines every result alike; `combine(a, b, j)` lets results differ (a maximum beside sums: kernels/flat.hpp).
inline constexpr int64_t kReduceBlock = 4096;
inline constexpr int kLanes = 8;  // independent accumulators per block: element i goes to lane i % kLanes

template <class Isa, int N, class T, class C, class O, class Block, class Combine>
void reduce_blocks(const Batch<T, C, O>& batch, double* out, const Block& block, const Combine& combine,
                   int64_t work = 1) {
    const int64_t count = batch.count;
    const int64_t total = batch.offsets[count];
    int64_t* first_block = static_cast<int64_t*>(scratch(1, sizeof(int64_t) * static_cast<size_t>(count + 1)));
    int64_t blocks = 0;
    for (int64_t k = 0; k < count; ++k) {
        first_block[k] = blocks;
        blocks += (batch.tensors[k].size + kReduceBlock - 1) / kReduceBlock;
    }
    first_block[count] = blocks;
    double* partials =
        static_cast<double*>(scratch(2, sizeof(double) * static_cast<size_t>(blocks * N > 0 ? blocks * N : 1)));
    auto run_blocks = [&](int64_t begin, int64_t end) {
        int64_t k = 0;
        for (int64_t b = begin; b < end; ++b) {
            while (first_block[k + 1] <= b) ++k;
            const int64_t lo = (b - first_block[k]) * kReduceBlock;
            const int64_t hi = lo + kReduceBlock < batch.tensors[k].size ? lo + kReduceBlock : batch.tensors[k].size;
            block(k, lo, hi, partials + b * N);
        }
    };
    const int threads = plan_threads(total * work, batch.num_threads, batch.grain);
    if (threads <= 1) {
        run_blocks(0, blocks);
    } else {
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads)
        {
            const int t = omp_get_thread_num(), n = omp_get_num_threads();
            run_blocks(blocks * t / n, blocks * (t + 1) / n);
        }
#endif
    }
    for (int64_t k = 0; k < count; ++k) {
        for (int j = 0; j < N; ++j) {
            double acc = first_block[k] < first_block[k + 1] ? partials[first_block[k] * N + j] : 0.0;
            for (int64_t b = first_block[k] + 1; b < first_block[k + 1]; ++b) {
                if constexpr (std::is_invocable_v<const Combine&, double, double, int>) {
                    acc = combine(acc, partials[b * N + j], j);
                } else {
                    acc = combine(acc, partials[b * N + j]);
                }
            }
            out[k * N + j] = acc;
        }
    }
}

}  // namespace fusedoptim
