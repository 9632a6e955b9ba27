// Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"), as optax.lion defines it.
//
// Buffers: param, grad, exp_avg.
//   g = -g                                  if maximize
//   u = sign((1 - beta1) * g + beta1 * m)
//   m = (1 - beta2) * g + beta2 * m
//   p = p - lr * (u + wd * p)               (decoupled decay, applied with the update)
#pragma once

#include <cstdint>

#include "fusedoptim/common.hpp"
#include "fusedoptim/parallel.hpp"

namespace fusedoptim::lion {

struct Hyper {
    double lr, beta1, beta2, weight_decay;
};

struct Options {
    bool weight_decay, maximize;
};

template <class T>
struct Coeffs {
    T neg_lr, beta1, one_minus_beta1, beta2, one_minus_beta2, weight_decay;
};

template <class T>
Coeffs<T> make_coeffs(const Hyper& h) {
    return {T(-h.lr), T(h.beta1), T(1.0 - h.beta1), T(h.beta2), T(1.0 - h.beta2), T(h.weight_decay)};
}

template <class T>
using BatchOf = Batch<T, Coeffs<T>, Options>;

// The element update, written once; each mode is a template argument so every loop is branch-free
// (maximize is a sign flip, see Negate in common.hpp).
template <class T, bool WeightDecay>
struct Update {
    Negate<T> negate;  // maximize

    template <class P, class G, class S>  // float pointers, or the 16-bit slots of convert.hpp
    FUSEDOPTIM_INLINE void operator()(const Coeffs<T>& c, int64_t i, P p, G grad, S exp_avg, S, S, S) const {
        T g = grad[i];
        g = negate(g);
        const T m = exp_avg[i];
        T u = sign(c.one_minus_beta1 * g + c.beta1 * m);           // scale_by_lion
        exp_avg[i] = c.one_minus_beta2 * g + c.beta2 * m;          // tree_update_moment(g, m, b2, 1)
        if constexpr (WeightDecay) u = u + c.weight_decay * p[i];  // add_decayed_weights
        p[i] = p[i] + c.neg_lr * u;                                // scale_by_learning_rate, apply_updates
    }
};

template <class Isa, class T>
void run(const BatchOf<T>& batch) {
    const Options& o = batch.options;
    with_bool(o.weight_decay, [&](auto weight_decay) {
        run_elementwise<Isa>(batch, Update<T, decltype(weight_decay)::value>{Negate<T>::when(o.maximize)});
    });
}

}  // namespace fusedoptim::lion
