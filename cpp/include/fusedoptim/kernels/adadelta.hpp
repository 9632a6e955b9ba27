// Adadelta (torch.optim.Adadelta; Zeiler 2012).
//
// Buffers: param, grad, square_avg, acc_delta.
//   g = -g                                  if maximize
//   g = g + wd * p                          if weight_decay != 0
//   v = rho * v + (1 - rho) * g * g
//   delta = sqrt((acc + eps) / (v + eps)) * g
// torch takes both roots and divides them; the root of the quotient is one root and one division per element.
//   acc = rho * acc + (1 - rho) * delta * delta
//   p = p - lr * delta
#pragma once

#include <cstdint>

#include "fusedoptim/common.hpp"
#include "fusedoptim/parallel.hpp"

namespace fusedoptim::adadelta {

struct Hyper {
    double lr, rho, eps, weight_decay;
};

struct Options {
    bool weight_decay, maximize;
};

template <class T>
struct Coeffs {
    T neg_lr, rho, one_minus_rho, eps, weight_decay;
};

template <class T>
Coeffs<T> make_coeffs(const Hyper& h) {
    return {T(-h.lr), T(h.rho), T(1.0 - h.rho), T(h.eps), T(h.weight_decay)};
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
    FUSEDOPTIM_INLINE void operator()(const Coeffs<T>& c, int64_t i, P p, G grad, S square_avg, S acc_delta, S,
                                      S) const {
        T g = grad[i];
        g = negate(g);
        if constexpr (WeightDecay) g = g + c.weight_decay * p[i];       // grad.add(param, alpha=wd)
        const T v = square_avg[i] * c.rho + (c.one_minus_rho * g) * g;  // mul_(rho).addcmul_(g, g, 1-rho)
        square_avg[i] = v;
        const T delta =
            sqrt_((acc_delta[i] + c.eps) / (v + c.eps)) * g;  // torch: acc.add(eps).sqrt_().div_(std).mul_(g)
        acc_delta[i] = acc_delta[i] * c.rho + (c.one_minus_rho * delta) * delta;
        p[i] = p[i] + c.neg_lr * delta;  // param.add_(delta, alpha=-lr)
    }
};

template <class Isa, class T>
void run(const BatchOf<T>& batch) {
    const Options& o = batch.options;
    with_bool(o.weight_decay, [&](auto weight_decay) {
        run_elementwise<Isa>(batch, Update<T, decltype(weight_decay)::value>{Negate<T>::when(o.maximize)});
    });
}

}  // namespace fusedoptim::adadelta
