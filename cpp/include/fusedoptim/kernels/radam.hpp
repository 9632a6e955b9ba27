// RAdam (torch.optim.RAdam; Liu et al. 2020), rectified Adam.
//
// Buffers: param, grad, exp_avg, exp_avg_sq. Per tensor, in double: rho_inf = 2 / (1 - beta2) - 1,
// rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t), and when rho_t > 5 the rectification
// r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t)).
//   g = -g                                  if maximize
//   g = g + wd * p                          L2 decay, or p = p * (1 - lr * wd) when decoupled
//   m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
//   rho_t > 5: p = p - m * (lr / (1 - beta1^t)) * sqrt(1 - beta2^t) / (sqrt(v) + eps) * r_t
//   else:      p = p - m * (lr / (1 - beta1^t))
// torch divides m by bc1 then multiplies by lr; the one factor lr / bc1 (from double) leaves one division
// per element.
#pragma once

#include <cmath>
#include <cstdint>

#include "fusedoptim/common.hpp"
#include "fusedoptim/kernels/adam.hpp"
#include "fusedoptim/parallel.hpp"

namespace fusedoptim::radam {

struct Hyper {
    double lr, beta1, beta2, eps, weight_decay;
};

struct Options {
    bool maximize, l2, decoupled;
};

template <class T>
struct Coeffs {
    T beta1_weight, beta2, one_minus_beta2, lr_over_bc1, bias_correction2_sqrt, eps, rect, weight_decay, decay_factor;
    bool rectified;
};

template <class T>
Coeffs<T> make_coeffs(const Hyper& h, int64_t step) {
    const double t = static_cast<double>(step);
    const double bias_correction1 = 1.0 - std::pow(h.beta1, t);
    const double bias_correction2 = 1.0 - std::pow(h.beta2, t);
    const double rho_inf = 2.0 / (1.0 - h.beta2) - 1.0;
    const double rho_t = rho_inf - 2.0 * t * std::pow(h.beta2, t) / bias_correction2;
    const bool rectified = rho_t > 5.0;
    const double rect =
        rectified ? std::sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                  : 1.0;
    return {
        T(1.0 - h.beta1), T(h.beta2), T(1.0 - h.beta2),  T(h.lr / bias_correction1),     T(std::sqrt(bias_correction2)),
        T(h.eps),         T(rect),    T(h.weight_decay), T(1.0 - h.lr * h.weight_decay), rectified};
}

template <class T>
using BatchOf = Batch<T, Coeffs<T>, Options>;

// The element update, written once; each mode is a template argument so every loop is branch-free
// (maximize is a sign flip, see Negate in common.hpp).
// `rectified` is the same for a whole tensor; the loop computes both forms and selects one.
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
        const T step = m * c.lr_over_bc1;                                  // torch: exp_avg / bc1 * lr
        const T adaptive = c.bias_correction2_sqrt / (sqrt_(v) + c.eps);   // bc2**0.5 / v.sqrt().add_(eps)
        p[i] = param - (c.rectified ? (step * adaptive) * c.rect : step);  // param.add_(..., alpha=-1)
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

}  // namespace fusedoptim::radam
