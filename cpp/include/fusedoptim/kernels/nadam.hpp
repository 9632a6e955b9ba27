// NAdam (torch.optim.NAdam; Dozat 2016), with torch's momentum schedule.
//
// Buffers: param, grad, exp_avg, exp_avg_sq. Per tensor, in double: mu_t = beta1 (1 - 0.5 * 0.96^(t psi)),
// the running product prod_t = mu_1 ... mu_t (state "mu_product"), and prod_{t+1} = prod_t mu_{t+1}.
//   g = -g                                  if maximize
//   g = g + wd * p                          L2 decay, or p = p * (1 - lr * wd) when decoupled
//   m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
//   d = sqrt(v * (1 / (1 - beta2^t))) + eps
//   p = p + (-lr (1 - mu_t) / (1 - prod_t) * g  -  lr mu_{t+1} / (1 - prod_{t+1}) * m) / d
// torch divides v by bc2 and adds the two terms to p in two addcdiv_ (three divisions); one division per
// element here: the reciprocal of bc2 from double, and the terms summed before dividing (one rounding fewer).
#pragma once

#include <cmath>
#include <cstdint>

#include "fusedoptim/common.hpp"
#include "fusedoptim/kernels/adam.hpp"
#include "fusedoptim/parallel.hpp"

namespace fusedoptim::nadam {

struct Hyper {
    double lr, beta1, beta2, eps, weight_decay, momentum_decay;
};

struct Options {
    bool maximize, l2, decoupled;
};

template <class T>
struct Coeffs {
    T beta1_weight, beta2, one_minus_beta2, inv_bias_correction2, eps, weight_decay, decay_factor, grad_coeff,
        avg_scale;
};

// mu_t of torch's schedule.
FUSEDOPTIM_INLINE double momentum_at(const Hyper& h, int64_t step) {
    return h.beta1 * (1.0 - 0.5 * std::pow(0.96, static_cast<double>(step) * h.momentum_decay));
}

// `mu_product` is the product including this step's mu_t (the caller updates it with momentum_at).
template <class T>
Coeffs<T> make_coeffs(const Hyper& h, int64_t step, double mu_product) {
    const double t = static_cast<double>(step);
    const double mu = momentum_at(h, step), mu_next = momentum_at(h, step + 1);
    const double mu_product_next = mu_product * mu_next;
    return {T(1.0 - h.beta1),
            T(h.beta2),
            T(1.0 - h.beta2),
            T(1.0 / (1.0 - std::pow(h.beta2, t))),
            T(h.eps),
            T(h.weight_decay),
            T(1.0 - h.lr * h.weight_decay),
            T(-h.lr * (1.0 - mu) / (1.0 - mu_product)),
            T((-h.lr * mu_next) / (1.0 - mu_product_next))};
}

template <class T>
using BatchOf = Batch<T, Coeffs<T>, Options>;

// The element update, written once; each mode is a template argument so every loop is branch-free
// (maximize is a sign flip, see Negate in common.hpp).
template <class T, bool L2, bool Decoupled>
struct Update {
    Negate<T> negate;                    // maximize
    static constexpr int64_t kWork = 2;  // per element, vs SGD's: a square root and a division (parallel.hpp)

    template <class P, class G, class S>  // float pointers, or the 16-bit slots of convert.hpp
    FUSEDOPTIM_INLINE void operator()(const Coeffs<T>& c, int64_t i, P p, G grad, S exp_avg, S exp_avg_sq, S, S) const {
        T g = grad[i];
        g = negate(g);
        T param = p[i];
        if constexpr (Decoupled) param = param * c.decay_factor;  // param.mul_(1 - lr*wd)
        if constexpr (L2) g = g + c.weight_decay * param;         // grad.add(param, alpha=wd)
        T m = exp_avg[i], v = exp_avg_sq[i];
        adam::update_moments(g, m, v, c.beta1_weight, c.beta2, c.one_minus_beta2);
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        const T denom = sqrt_(v * c.inv_bias_correction2) + c.eps;    // torch: v.div(bc2).sqrt().add_(eps)
        p[i] = param + (c.grad_coeff * g + c.avg_scale * m) / denom;  // torch: two addcdiv_ by denom
    }
};

template <class Isa, class T>
void run(const BatchOf<T>& batch) {
    const Options& o = batch.options;
    with_bool(o.l2, [&](auto l2) {
        with_bool_if<!decltype(l2)::value>(o.decoupled, [&](auto decoupled) {
            run_elementwise<Isa>(
                batch, Update<T, decltype(l2)::value, decltype(decoupled)::value>{Negate<T>::when(o.maximize)});
        });
    });
}

}  // namespace fusedoptim::nadam
