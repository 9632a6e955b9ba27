// SGD with optional momentum, dampening, Nesterov and L2 weight decay (torch.optim.SGD).
//
// Buffers: param, grad, momentum_buffer.
//   g = -g                                  if maximize
//   g = g + wd * p                          if weight_decay != 0
//   b = mu * b + (1 - dampening) * g        (first step: b = g)
//   g = g + mu * b  if nesterov, else g = b (when momentum != 0)
//   p = p - lr * g
#pragma once

#include <cstdint>

#include "fusedoptim/common.hpp"
#include "fusedoptim/parallel.hpp"

namespace fusedoptim::sgd {

struct Hyper {
    double lr, momentum, dampening, weight_decay;
};

struct Options {
    bool momentum, nesterov, weight_decay, maximize;
};

template <class T>
struct Coeffs {
    T neg_lr, weight_decay, momentum, one_minus_dampening;
    bool first_step;  // the buffer was just created: torch sets it to the gradient itself
};

template <class T>
Coeffs<T> make_coeffs(const Hyper& h, bool first_step) {
    return {T(-h.lr), T(h.weight_decay), T(h.momentum), T(1.0 - h.dampening), first_step};
}

template <class T>
using BatchOf = Batch<T, Coeffs<T>, Options>;

// The element update, written once; each mode is a template argument so every loop is branch-free
// (maximize is a sign flip, see Negate in common.hpp).
template <class T, bool Momentum, bool Nesterov, bool WeightDecay>
struct Update {
    Negate<T> negate;  // maximize

    template <class P, class G, class S>  // float pointers, or the 16-bit slots of convert.hpp
    FUSEDOPTIM_INLINE void operator()(const Coeffs<T>& c, int64_t i, P p, G grad, S buf, S, S, S) const {
        T g = grad[i];
        g = negate(g);
        if constexpr (WeightDecay) g = g + c.weight_decay * p[i];  // grad.add(param, alpha=wd)
        if constexpr (Momentum) {
            // first step: clone(g); then buf.mul_(mu).add_(g, alpha=1-damp). `first_step` is the same for the
            // whole tensor: the loop computes both and selects.
            const T b = c.first_step ? g : buf[i] * c.momentum + c.one_minus_dampening * g;
            buf[i] = b;
            if constexpr (Nesterov) {
                g = g + c.momentum * b;  // grad.add(buf, alpha=mu)
            } else {
                g = b;
            }
        }
        p[i] = p[i] + c.neg_lr * g;  // param.add_(g, alpha=-lr)
    }
};

template <class Isa, class T>
void run(const BatchOf<T>& batch) {
    const Options& o = batch.options;
    with_bool(o.momentum, [&](auto momentum) {
        with_bool_if<decltype(momentum)::value>(o.nesterov, [&](auto nesterov) {
            with_bool(o.weight_decay, [&](auto weight_decay) {
                run_elementwise<Isa>(
                    batch,
                    Update<T, decltype(momentum)::value, decltype(nesterov)::value, decltype(weight_decay)::value>{
                        Negate<T>::when(o.maximize)});
            });
        });
    });
}

}  // namespace fusedoptim::sgd
