// Adam and AdamW (torch.optim.Adam, torch.optim.AdamW), with amsgrad.
//
// Buffers: param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq (amsgrad).
//   g = -g                                  if maximize
//   g = g + wd * p                          L2 decay (Adam), or p = p * (1 - lr * wd) decoupled (AdamW)
//   m = lerp(m, g, 1 - beta1)
//   v = beta2 * v + (1 - beta2) * g * g
//   amsgrad: vmax = max(vmax, v), v' = vmax; else v' = v
//   p = p - (lr / bc1) * m / (sqrt(v') * (1 / sqrt(bc2)) + eps),   bc_i = 1 - beta_i^t (per step, in double)
// torch divides sqrt(v') by sqrt(bc2); multiplying by the reciprocal (rounded once from double) leaves one
// division per element, the divider being what bounds this loop on cache-resident sizes. The denominator
// differs from torch's by about an ulp.
#pragma once

#include <cmath>
#include <cstdint>

#include "fusedoptim/common.hpp"
#include "fusedoptim/parallel.hpp"

namespace fusedoptim::adam {

struct Hyper {
    double lr, beta1, beta2, eps, weight_decay;
};

enum class Decay : int { none = 0, l2 = 1, decoupled = 2 };

struct Options {
    bool amsgrad, maximize;
    Decay decay;
};

template <class T>
struct Coeffs {
    T beta1_weight, beta2, one_minus_beta2, neg_step_size, inv_bc2_sqrt, eps, weight_decay, decay_factor;
};

template <class T>
Coeffs<T> make_coeffs(const Hyper& h, int64_t step) {
    const double t = static_cast<double>(step);
    const double bc1 = 1.0 - std::pow(h.beta1, t);
    const double bc2 = 1.0 - std::pow(h.beta2, t);
    return {T(1.0 - h.beta1),        T(h.beta2), T(1.0 - h.beta2),  T(-(h.lr / bc1)),
            T(1.0 / std::sqrt(bc2)), T(h.eps),   T(h.weight_decay), T(1.0 - h.lr * h.weight_decay)};
}

template <class T>
using BatchOf = Batch<T, Coeffs<T>, Options>;

// Adam's two moments in torch's operations, shared by Adam, NAdam and RAdam:
// exp_avg.lerp_(g, 1-beta1); exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1-beta2).
template <class T>
FUSEDOPTIM_INLINE void update_moments(T g, T& m, T& v, T beta1_weight, T beta2, T one_minus_beta2) {
    m = lerp(m, g, beta1_weight);
    v = v * beta2 + (one_minus_beta2 * g) * g;
}

// The element update, written once; each mode is a template argument so every loop is branch-free
// (maximize is a sign flip, see Negate in common.hpp).
template <class T, bool Amsgrad, bool L2, bool Decoupled>
struct Update {
    Negate<T> negate;                    // maximize
    static constexpr int64_t kWork = 2;  // per element, vs SGD's: a square root and a division (parallel.hpp)

    template <class P, class G, class S>  // float pointers, or the 16-bit slots of convert.hpp
    FUSEDOPTIM_INLINE void operator()(const Coeffs<T>& c, int64_t i, P p, G grad, S exp_avg, S exp_avg_sq,
                                      S max_exp_avg_sq, S) const {
        T g = grad[i];
        g = negate(g);
        if constexpr (L2) g = g + c.weight_decay * p[i];  // grad.add(param, alpha=wd)
        T param = p[i];
        if constexpr (Decoupled) param = param * c.decay_factor;  // param.mul_(1 - lr*wd)
        T m = exp_avg[i], v = exp_avg_sq[i];
        update_moments(g, m, v, c.beta1_weight, c.beta2, c.one_minus_beta2);
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        T v_used = v;
        if constexpr (Amsgrad) {
            v_used = maximum(T(max_exp_avg_sq[i]), v);  // torch.maximum(vmax, v, out=vmax)
            max_exp_avg_sq[i] = v_used;
        }
        const T denom = sqrt_(v_used) * c.inv_bc2_sqrt + c.eps;  // torch: (v.sqrt() / bc2_sqrt).add_(eps)
        p[i] = param + (c.neg_step_size * m) / denom;            // addcdiv_(m, denom, -lr/bc1)
    }
};

template <class Isa, class T>
void run(const BatchOf<T>& batch) {
    const Options& o = batch.options;
    with_bool(o.amsgrad, [&](auto amsgrad) {
        with_bool(o.decay == Decay::l2, [&](auto l2) {
            with_bool_if<!decltype(l2)::value>(o.decay == Decay::decoupled, [&](auto decoupled) {
                run_elementwise<Isa>(
                    batch, Update<T, decltype(amsgrad)::value, decltype(l2)::value, decltype(decoupled)::value>{
                               Negate<T>::when(o.maximize)});
            });
        });
    });
}

}  // namespace fusedoptim::adam
