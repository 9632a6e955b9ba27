// ASGD, averaged stochastic gradient descent (Polyak & Juditsky 1992), as torch.optim.ASGD: SGD with a decaying
// step eta_t and a running average ax of the iterates, kept from step t0 on.
//
// Buffers: param, grad, ax.
//   g = -g                                       if maximize
//   g = g + wd * p                               if weight_decay
//   p = p * (1 - lambd * eta)                    (eta, mu: the parameter's scalar state from the previous step)
//   p = p - eta * g
//   ax = ax + (p - ax) * mu                      if mu != 1, else ax = p
// then, per parameter (register_asgd.cpp), the next step's scalars, computed in double and rounded to float32
// as torch stores them (0-d tensors of its default dtype), so the steps match torch's bit for bit:
//   eta = lr / (1 + lambd * lr * t)^alpha,  mu = 1 / max(1, t - t0)
#pragma once

#include <cmath>
#include <cstdint>

#include "fusedoptim/common.hpp"
#include "fusedoptim/parallel.hpp"

namespace fusedoptim::asgd {

struct Hyper {
    double lr, lambd, alpha, t0, weight_decay;
};

struct Options {
    bool weight_decay, maximize;
};

template <class T>
struct Coeffs {
    T decay, neg_eta, mu, weight_decay;
    bool copy;  // mu == 1: ax takes p itself (torch copies rather than averaging with weight 1)
};

// `eta` and `mu`: the parameter's scalars from the previous step (lr and 1 before the first).
template <class T>
Coeffs<T> make_coeffs(const Hyper& h, double eta, double mu) {
    return {T(1.0 - h.lambd * eta), T(-eta), T(mu), T(h.weight_decay), mu == 1.0};
}

// x rounded to float32, beyond float32's range +-inf (a plain cast of such a double is undefined behaviour).
FUSEDOPTIM_INLINE double as_float32(double x) {
    constexpr double kMax = 3.4028234663852886e38;  // FLT_MAX
    if (x > kMax || x < -kMax) return x > 0 ? HUGE_VALF : -HUGE_VALF;
    return static_cast<float>(x);
}

// The scalars a step with number `step` leaves for the next one (float32 values, as torch keeps them). The
// power may overflow to inf for huge hyperparameters, and eta then be 0 (torch raises OverflowError there).
FUSEDOPTIM_INLINE double eta_after(const Hyper& h, int64_t step) {
    return as_float32(h.lr / std::pow(1.0 + h.lambd * h.lr * static_cast<double>(step), h.alpha));
}
FUSEDOPTIM_INLINE double mu_after(const Hyper& h, int64_t step) {
    const double since = static_cast<double>(step) - h.t0;
    return as_float32(1.0 / (since > 1.0 ? since : 1.0));
}

template <class T>
using BatchOf = Batch<T, Coeffs<T>, Options>;

// The element update, written once; each mode is a template argument so every loop is branch-free
// (maximize is a sign flip, see Negate in common.hpp).
template <class T, bool WeightDecay>
struct Update {
    Negate<T> negate;  // maximize

    template <class P, class G, class S>  // float pointers, or the 16-bit slots of convert.hpp
    FUSEDOPTIM_INLINE void operator()(const Coeffs<T>& c, int64_t i, P p, G grad, S ax, S, S, S) const {
        T g = grad[i];
        g = negate(g);
        T param = p[i];
        if constexpr (WeightDecay) g = g + c.weight_decay * param;  // grad.add(param, alpha=wd)
        param = param * c.decay;                                    // param.mul_(1 - lambd * eta)
        param = param + c.neg_eta * g;                              // param.add_(grad, alpha=-eta)
        p[i] = param;
        const T a = ax[i];
        // `copy` is the same for the whole tensor: the loop computes both and selects.
        ax[i] = c.copy ? param : a + (param - a) * c.mu;  // ax.add_(param.sub(ax).mul_(mu))
    }
};

template <class Isa, class T>
void run(const BatchOf<T>& batch) {
    const Options& o = batch.options;
    with_bool(o.weight_decay, [&](auto weight_decay) {
        run_elementwise<Isa>(batch, Update<T, decltype(weight_decay)::value>{Negate<T>::when(o.maximize)});
    });
}

}  // namespace fusedoptim::asgd
