// Adamax (torch.optim.Adamax; Kingma & Ba 2015, section 7.1).
//
// Buffers: param, grad, exp_avg, exp_inf.
//   g = -g                                  if maximize
//   g = g + wd * p                          if weight_decay != 0
//   m = lerp(m, g, 1 - beta1)
//   u = max(beta2 * u, |g| + eps)
//   p = p - lr / (1 - beta1^t) * m / u
#pragma once

#include <cmath>
#include <cstdint>

#include "fusedoptim/common.hpp"
#include "fusedoptim/parallel.hpp"

namespace fusedoptim::adamax {

struct Hyper {
    double lr, beta1, beta2, eps, weight_decay;
};

struct Options {
    bool weight_decay, maximize;
};

template <class T>
struct Coeffs {
    T beta1_weight, beta2, eps, neg_clr, weight_decay;
};

template <class T>
Coeffs<T> make_coeffs(const Hyper& h, int64_t step) {
    const double bias_correction = 1.0 - std::pow(h.beta1, static_cast<double>(step));
    return {T(1.0 - h.beta1), T(h.beta2), T(h.eps), T(-(h.lr / bias_correction)), T(h.weight_decay)};
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
    FUSEDOPTIM_INLINE void operator()(const Coeffs<T>& c, int64_t i, P p, G grad, S exp_avg, S exp_inf, S, S) const {
        T g = grad[i];
        g = negate(g);
        if constexpr (WeightDecay) g = g + c.weight_decay * p[i];  // grad.add(param, alpha=wd)
        const T m = lerp(T(exp_avg[i]), g, c.beta1_weight);        // exp_avg.lerp_(g, 1-beta1)
        exp_avg[i] = m;
        const T u = maximum(exp_inf[i] * c.beta2, abs_(g) + c.eps);  // maximum(u.mul_(b2), g.abs().add_(eps))
        exp_inf[i] = u;
        p[i] = p[i] + (c.neg_clr * m) / u;  // param.addcdiv_(m, u, value=-clr)
    }
};

template <class Isa, class T>
void run(const BatchOf<T>& batch) {
    const Options& o = batch.options;
    with_bool(o.weight_decay, [&](auto weight_decay) {
        run_elementwise<Isa>(batch, Update<T, decltype(weight_decay)::value>{Negate<T>::when(o.maximize)});
    });
}

}  // namespace fusedoptim::adamax
