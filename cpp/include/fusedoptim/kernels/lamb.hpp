// LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning"), as optax.lamb defines it:
// scale_by_adam, add_decayed_weights, scale_by_trust_ratio, scale_by_learning_rate.
//
// Buffers: param, grad, exp_avg, exp_avg_sq.
//   g = -g                                  if maximize
//   m = (1 - beta1) * g + beta1 * m;  v = (1 - beta2) * g * g + beta2 * v
//   u = (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps) + wd * p
//   r = ||p|| / ||u|| per tensor (1 when either norm is 0)
//   p = p - lr * (u * r)
//
// Two passes: the first updates m and v and sums p^2 and u^2, the second recomputes u from the new m and v
// and applies it (recomputing costs less memory traffic than storing u). The sums are deterministic for any
// thread count and any SIMD level: each tensor is cut into fixed blocks, each block is summed into eight
// double accumulators in a fixed order (element i into accumulator i mod 8), and the block sums are added in
// block order. Threads only decide who computes a block, not how.
#pragma once

#include <cmath>
#include <cstdint>

#include "fusedoptim/common.hpp"
#include "fusedoptim/parallel.hpp"

namespace fusedoptim::lamb {

struct Hyper {
    double lr, beta1, beta2, eps, weight_decay;
};

struct Options {
    bool weight_decay, maximize;
};

template <class T>
struct Coeffs {
    T beta1, one_minus_beta1, beta2, one_minus_beta2, bias_correction1, bias_correction2, eps, weight_decay, neg_lr;
};

template <class T>
Coeffs<T> make_coeffs(const Hyper& h, int64_t step) {
    const double t = static_cast<double>(step);
    return {T(h.beta1),
            T(1.0 - h.beta1),
            T(h.beta2),
            T(1.0 - h.beta2),
            T(1.0 - std::pow(h.beta1, t)),
            T(1.0 - std::pow(h.beta2, t)),
            T(h.eps),
            T(h.weight_decay),
            T(-h.lr)};
}

template <class T>
using BatchOf = Batch<T, Coeffs<T>, Options>;

inline constexpr int64_t kBlock = 4096;  // elements per reduction block: fixed, so sums never depend on threads
inline constexpr int kLanes = 8;

// The direction u of the element, from the already updated moments.
template <class T, bool WeightDecay>
FUSEDOPTIM_INLINE T direction(const Coeffs<T>& c, T p, T m, T v) {
    T u = (m / c.bias_correction1) / (sqrt_(v / c.bias_correction2) + c.eps);  // scale_by_adam, eps_root = 0
    if constexpr (WeightDecay) u = u + c.weight_decay * p;                      // add_decayed_weights
    return u;
}

template <class T, bool WeightDecay, bool Maximize>
FUSEDOPTIM_INLINE void moments(const Coeffs<T>& c, int64_t i, const T* p, const T* grad, T* exp_avg, T* exp_avg_sq,
                               double& p_sq, double& u_sq) {
    T g = grad[i];
    if constexpr (Maximize) g = -g;
    const T m = c.one_minus_beta1 * g + c.beta1 * exp_avg[i];      // update_moment(g, m, b1, 1)
    const T v = c.one_minus_beta2 * (g * g) + c.beta2 * exp_avg_sq[i];  // update_moment_per_elem_norm(g, v, b2, 2)
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    const T u = direction<T, WeightDecay>(c, p[i], m, v);
    p_sq += static_cast<double>(p[i]) * static_cast<double>(p[i]);
    u_sq += static_cast<double>(u) * static_cast<double>(u);
}

template <class Isa, class T, bool WeightDecay, bool Maximize>
void run_variant(const BatchOf<T>& batch) {
    const int64_t count = batch.count;
    const int64_t total = batch.offsets[count];
    if (total == 0) return;
    // Scratch: per tensor its first block index (count + 1 entries), the trust ratios, then per block two sums.
    int64_t blocks = 0;
    int64_t* first_block = new int64_t[count + 1];
    for (int64_t k = 0; k < count; ++k) {
        first_block[k] = blocks;
        blocks += (batch.tensors[k].size + kBlock - 1) / kBlock;
    }
    first_block[count] = blocks;
    double* sums = new double[2 * blocks];
    double* ratios = new double[count];

    // Pass 1: moments and per-block sums of p^2 and u^2.
    auto block_pass = [&](int64_t begin, int64_t end) {
        int64_t k = 0;
        for (int64_t b = begin; b < end; ++b) {
            while (first_block[k + 1] <= b) ++k;
            const TensorRef<T>& t = batch.tensors[k];
            const Coeffs<T>& c = batch.coeffs[k];
            const int64_t lo = (b - first_block[k]) * kBlock;
            const int64_t hi = lo + kBlock < t.size ? lo + kBlock : t.size;
            double p_acc[kLanes] = {}, u_acc[kLanes] = {};
            int64_t i = lo;
            for (; i + kLanes <= hi; i += kLanes) {
                for (int j = 0; j < kLanes; ++j) {
                    moments<T, WeightDecay, Maximize>(c, i + j, t.buf[0], t.buf[1], t.buf[2], t.buf[3], p_acc[j],
                                                      u_acc[j]);
                }
            }
            for (int j = 0; i < hi; ++i, ++j) {
                moments<T, WeightDecay, Maximize>(c, i, t.buf[0], t.buf[1], t.buf[2], t.buf[3], p_acc[j], u_acc[j]);
            }
            double p_sum = 0.0, u_sum = 0.0;
            for (int j = 0; j < kLanes; ++j) {
                p_sum += p_acc[j];
                u_sum += u_acc[j];
            }
            sums[2 * b] = p_sum;
            sums[2 * b + 1] = u_sum;
        }
    };
    const int block_threads = plan_threads(total, batch.num_threads, batch.grain);
    if (block_threads <= 1) {
        block_pass(0, blocks);
    } else {
#if defined(_OPENMP)
#pragma omp parallel num_threads(block_threads)
        {
            const int t = omp_get_thread_num(), n = omp_get_num_threads();
            block_pass(blocks * t / n, blocks * (t + 1) / n);
        }
#endif
    }

    // Trust ratios, in block order.
    for (int64_t k = 0; k < count; ++k) {
        double p_sum = 0.0, u_sum = 0.0;
        for (int64_t b = first_block[k]; b < first_block[k + 1]; ++b) {
            p_sum += sums[2 * b];
            u_sum += sums[2 * b + 1];
        }
        const double p_norm = std::sqrt(p_sum), u_norm = std::sqrt(u_sum);
        ratios[k] = (p_norm == 0.0 || u_norm == 0.0) ? 1.0 : p_norm / u_norm;  // scale_by_trust_ratio
    }

    // Pass 2: p = p - lr * (u * r).
    for_each_segment<Isa>(batch, [&](int64_t k, int64_t lo, int64_t hi) {
        const TensorRef<T>& t = batch.tensors[k];
        const Coeffs<T> c = batch.coeffs[k];
        const T ratio = T(ratios[k]);
        T* const p = t.buf[0] + lo;
        const T* const m = t.buf[2] + lo;
        const T* const v = t.buf[3] + lo;
        const int64_t n = hi - lo;
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) p[i] = p[i] + c.neg_lr * (direction<T, WeightDecay>(c, p[i], m[i], v[i]) * ratio);
    });
    delete[] first_block;
    delete[] sums;
    delete[] ratios;
}

template <class Isa, class T>
void run(const BatchOf<T>& batch) {
    const Options& o = batch.options;
    with_bool(o.weight_decay, [&](auto weight_decay) {
    with_bool(o.maximize, [&](auto maximize) {
        run_variant<Isa, T, decltype(weight_decay)::value, decltype(maximize)::value>(batch);
    });
    });
}

}  // namespace fusedoptim::lamb
