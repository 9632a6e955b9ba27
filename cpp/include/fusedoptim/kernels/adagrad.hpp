// Adagrad (torch.optim.Adagrad).
//
// Buffers: param, grad, sum.
//   g = -g                                  if maximize
//   g = g + wd * p                          if weight_decay != 0
//   clr = lr / (1 + (t - 1) * lr_decay)     (per step, in double)
//   sum = sum + g * g
//   p = p - clr * g / (sqrt(sum) + eps)
#pragma once

#include <cstdint>

#include "fusedoptim/common.hpp"
#include "fusedoptim/parallel.hpp"

namespace fusedoptim::adagrad {

struct Hyper {
    double lr, lr_decay, weight_decay, eps;
};

struct Options {
    bool weight_decay, maximize;
};

template <class T>
struct Coeffs {
    T neg_clr, weight_decay, eps;
};

template <class T>
Coeffs<T> make_coeffs(const Hyper& h, int64_t step) {
    const double clr = h.lr / (1.0 + static_cast<double>(step - 1) * h.lr_decay);
    return {T(-clr), T(h.weight_decay), T(h.eps)};
}

template <class T>
using BatchOf = Batch<T, Coeffs<T>, Options>;

// The element update, written once; each mode is a template argument so every loop is branch-free
// (maximize is a sign flip, see Negate in common.hpp).
template <class T, bool WeightDecay>
struct Update {
    Negate<T> negate;                    // maximize
    static constexpr int64_t kWork = 2;  // per element, vs SGD's: a square root and a division (parallel.hpp)

    template <class P, class G, class S>  // float pointers, or the 16-bit slots of convert.hpp
    FUSEDOPTIM_INLINE void operator()(const Coeffs<T>& c, int64_t i, P p, G grad, S sum, S, S, S) const {
        T g = grad[i];
        g = negate(g);
        if constexpr (WeightDecay) g = g + c.weight_decay * p[i];  // grad.add(param, alpha=wd)
        const T s = sum[i] + g * g;                                // sum.addcmul_(g, g, value=1)
        sum[i] = s;
        p[i] = p[i] + (c.neg_clr * g) / (sqrt_(s) + c.eps);  // param.addcdiv_(g, std, value=-clr)
    }
};

template <class Isa, class T>
void run(const BatchOf<T>& batch) {
    const Options& o = batch.options;
    with_bool(o.weight_decay, [&](auto weight_decay) {
        run_elementwise<Isa>(batch, Update<T, decltype(weight_decay)::value>{Negate<T>::when(o.maximize)});
    });
}

}  // namespace fusedoptim::adagrad
