// LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning"), as optax.lamb defines it:
// scale_by_adam, add_decayed_weights, scale_by_trust_ratio, scale_by_learning_rate.
//
// Buffers: param, grad, exp_avg, exp_avg_sq.
//   g = -g                                  if maximize
//   m = (1 - beta1) * g + beta1 * m;  v = (1 - beta2) * g * g + beta2 * v
//   u = (m * (1 / (1 - beta1^t))) / (sqrt(v * (1 / (1 - beta2^t))) + eps) + wd * p
//   (optax divides by both bias corrections; their reciprocals, from double, leave one division per element)
//   r = ||p|| / ||u|| per tensor (1 when either norm is 0)
//   p = p - lr * (u * r)
//
// Two passes: the first updates m and v and sums p^2 and u^2, the second recomputes u from the new m and v
// and applies it (recomputing costs less memory traffic than storing u). The sums go through reduce_blocks
// (parallel.hpp), so they are the same for any thread count and any SIMD level.
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
    T beta1, one_minus_beta1, beta2, one_minus_beta2, inv_bias_correction1, inv_bias_correction2, eps, weight_decay,
        neg_lr;
};

template <class T>
Coeffs<T> make_coeffs(const Hyper& h, int64_t step) {
    const double t = static_cast<double>(step);
    return {T(h.beta1),
            T(1.0 - h.beta1),
            T(h.beta2),
            T(1.0 - h.beta2),
            T(1.0 / (1.0 - std::pow(h.beta1, t))),
            T(1.0 / (1.0 - std::pow(h.beta2, t))),
            T(h.eps),
            T(h.weight_decay),
            T(-h.lr)};
}

template <class T>
using BatchOf = Batch<T, Coeffs<T>, Options>;

// The direction u of the element, from the already updated moments.
template <class T, bool WeightDecay>
FUSEDOPTIM_INLINE T direction(const Coeffs<T>& c, T p, T m, T v) {
    T u = (m * c.inv_bias_correction1) / (sqrt_(v * c.inv_bias_correction2) + c.eps);  // scale_by_adam, eps_root 0
    if constexpr (WeightDecay) u = u + c.weight_decay * p;                             // add_decayed_weights
    return u;
}

template <class T, bool WeightDecay>
FUSEDOPTIM_INLINE void moments(const Coeffs<T>& c, Negate<T> negate, T grad_scale, int64_t i, const T* p, const T* grad,
                               T* exp_avg, T* exp_avg_sq, double& p_sq, double& u_sq) {
    // The reference scales first (g.astype(T) * grad_scale), then negates: the same bits (a sign flip commutes
    // with a multiplication); a scale of 1 changes none.
    const T g = negate(grad[i] * grad_scale);                           // maximize
    const T m = c.one_minus_beta1 * g + c.beta1 * exp_avg[i];           // update_moment(g, m, b1, 1)
    const T v = c.one_minus_beta2 * (g * g) + c.beta2 * exp_avg_sq[i];  // update_moment_per_elem_norm(g, v, b2, 2)
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    const T u = direction<T, WeightDecay>(c, p[i], m, v);
    p_sq += static_cast<double>(p[i]) * static_cast<double>(p[i]);
    u_sq += static_cast<double>(u) * static_cast<double>(u);
}

// Each pass costs about one Adam step per element (a square root and a division): the grain's work weight.
inline constexpr int64_t kLambWork = 2;

template <class Isa, class T, bool WeightDecay>
void run_variant(const BatchOf<T>& batch) {
    const Negate<T> negate = Negate<T>::when(batch.options.maximize);
    const int64_t count = batch.count;
    if (batch.offsets[count] == 0) return;
    double* sums =
        static_cast<double*>(scratch(0, sizeof(double) * static_cast<size_t>(2 * count)));  // per tensor: p^2, u^2

    // Pass 1: moments, and the sums of p^2 and u^2 (eight lanes per block, in a fixed order).
    reduce_blocks<Isa, 2>(
        batch, sums,
        [&](int64_t k, int64_t lo, int64_t hi, double* partial) {
            const TensorRef<T>& t = batch.tensors[k];
            const Coeffs<T> c = batch.coeffs[k];  // a copy: the stores cannot alias it
            alignas(64) double p_acc[kLanes] = {}, u_acc[kLanes] = {};
            const T* const p = t.buf[0];
            const T* const g = t.buf[1];
            const T grad_scale = t.grad_scale;  // GradScaler's unscaling
            T* const m = t.buf[2];
            T* const v = t.buf[3];
            int64_t i = lo;
            // One vector of kLanes elements per iteration, lane j into accumulator j: the same sums whether the
            // inner loop is one vector, two, or scalar.
            for (; i + kLanes <= hi; i += kLanes) {
#pragma omp simd
                for (int j = 0; j < kLanes; ++j) {
                    moments<T, WeightDecay>(c, negate, grad_scale, i + j, p, g, m, v, p_acc[j], u_acc[j]);
                }
            }
            for (int j = 0; i < hi; ++i, ++j) {
                moments<T, WeightDecay>(c, negate, grad_scale, i, p, g, m, v, p_acc[j], u_acc[j]);
            }
            partial[0] = partial[1] = 0.0;
            for (int j = 0; j < kLanes; ++j) {
                partial[0] += p_acc[j];
                partial[1] += u_acc[j];
            }
        },
        [](double a, double b) { return a + b; }, kLambWork * kWidthFactor<T>);

    // Pass 2: p = p - lr * (u * r), r = ||p|| / ||u|| (1 when either is 0: scale_by_trust_ratio).
    for_each_segment<Isa>(
        batch,
        [&](int64_t k, int64_t lo, int64_t hi) {
            const TensorRef<T>& t = batch.tensors[k];
            const Coeffs<T> c = batch.coeffs[k];
            const double p_norm = std::sqrt(sums[2 * k]), u_norm = std::sqrt(sums[2 * k + 1]);
            const T ratio = T((p_norm == 0.0 || u_norm == 0.0) ? 1.0 : p_norm / u_norm);
            T* const p = t.buf[0] + lo;
            const T* const m = t.buf[2] + lo;
            const T* const v = t.buf[3] + lo;
            const int64_t n = hi - lo;
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) {
                p[i] = p[i] + c.neg_lr * (direction<T, WeightDecay>(c, p[i], m[i], v[i]) * ratio);
            }
        },
        kLambWork * kWidthFactor<T>);
}

template <class Isa, class T>
void run(const BatchOf<T>& batch) {
    const Options& o = batch.options;
    with_bool(o.weight_decay, [&](auto weight_decay) { run_variant<Isa, T, decltype(weight_decay)::value>(batch); });
}

}  // namespace fusedoptim::lamb
