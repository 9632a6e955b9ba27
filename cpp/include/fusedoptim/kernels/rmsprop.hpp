// RMSprop (torch.optim.RMSprop), plus `eps_in_sqrt` for the form sqrt(v + eps) (optax, Keras, the seed's rule 4).
//
// Buffers: param, grad, square_avg, grad_avg (centered), momentum_buffer (momentum != 0).
//   g = -g                                  if maximize
//   g = g + wd * p                          if weight_decay != 0
//   v = alpha * v + (1 - alpha) * g * g
//   centered: ga = lerp(ga, g, 1 - alpha), v' = v - ga * ga; else v' = v
//   avg = sqrt(v') + eps                    (eps_in_sqrt: sqrt(v' + eps))
//   momentum: b = mu * b + g / avg, p = p - lr * b; else p = p - lr * g / avg
#pragma once

#include <cstdint>

#include "fusedoptim/common.hpp"
#include "fusedoptim/parallel.hpp"

namespace fusedoptim::rmsprop {

struct Hyper {
    double lr, alpha, eps, weight_decay, momentum;
};

struct Options {
    bool centered, momentum, weight_decay, maximize, eps_in_sqrt;
};

template <class T>
struct Coeffs {
    T neg_lr, alpha, one_minus_alpha, eps, weight_decay, momentum;
};

template <class T>
Coeffs<T> make_coeffs(const Hyper& h) {
    return {T(-h.lr), T(h.alpha), T(1.0 - h.alpha), T(h.eps), T(h.weight_decay), T(h.momentum)};
}

template <class T>
using BatchOf = Batch<T, Coeffs<T>, Options>;

// The element update, written once; each mode is a template argument so every loop is branch-free
// (maximize is a sign flip, see Negate in common.hpp).
template <class T, bool Centered, bool Momentum, bool WeightDecay, bool EpsInSqrt>
struct Update {
    Negate<T> negate;                    // maximize
    static constexpr int64_t kWork = 2;  // per element, vs SGD's: a square root and a division (parallel.hpp)

    template <class P, class G, class S>  // float pointers, or the 16-bit slots of convert.hpp
    FUSEDOPTIM_INLINE void operator()(const Coeffs<T>& c, int64_t i, P p, G grad, S square_avg, S grad_avg, S buf,
                                      S) const {
        T g = grad[i];
        g = negate(g);
        if constexpr (WeightDecay) g = g + c.weight_decay * p[i];           // grad.add(param, alpha=wd)
        const T v = square_avg[i] * c.alpha + (c.one_minus_alpha * g) * g;  // mul_(a).addcmul_(g, g, 1-a)
        square_avg[i] = v;
        T var = v;
        if constexpr (Centered) {
            const T ga = lerp(T(grad_avg[i]), g, c.one_minus_alpha);  // grad_avg.lerp_(g, 1-a)
            grad_avg[i] = ga;
            var = v - ga * ga;  // addcmul(ga, ga, value=-1)
        }
        T avg;
        if constexpr (EpsInSqrt) {
            avg = sqrt_(var + c.eps);
        } else {
            avg = sqrt_(var) + c.eps;  // sqrt_().add_(eps)
        }
        if constexpr (Momentum) {
            const T b = buf[i] * c.momentum + g / avg;  // buf.mul_(mu).addcdiv_(g, avg)
            buf[i] = b;
            p[i] = p[i] + c.neg_lr * b;  // param.add_(buf, alpha=-lr)
        } else {
            p[i] = p[i] + (c.neg_lr * g) / avg;  // param.addcdiv_(g, avg, -lr)
        }
    }
};

template <class Isa, class T>
void run(const BatchOf<T>& batch) {
    const Options& o = batch.options;
    with_bool(o.centered, [&](auto centered) {
        with_bool(o.momentum, [&](auto momentum) {
            with_bool(o.weight_decay, [&](auto weight_decay) {
                with_bool(o.eps_in_sqrt, [&](auto eps_in_sqrt) {
                    run_elementwise<Isa>(batch, Update<T, decltype(centered)::value, decltype(momentum)::value,
                                                       decltype(weight_decay)::value, decltype(eps_in_sqrt)::value>{
                                                    Negate<T>::when(o.maximize)});
                });
            });
        });
    });
}

}  // namespace fusedoptim::rmsprop
