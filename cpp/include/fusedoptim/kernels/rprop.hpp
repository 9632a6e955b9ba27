// Rprop (Riedmiller & Braun 1993), as torch.optim.Rprop: a per-element step size that grows while the
// gradient keeps its sign and shrinks when it flips; the update uses only the gradient's sign.
//
// Buffers: param, grad, prev, step_size.
//   g = -g                                       if maximize
//   s = sign(g * prev)
//   f = etaplus if s > 0, etaminus if s < 0, else 1
//   step_size = clamp(step_size * f, step_size_min, step_size_max)
//   g = 0 where f == etaminus                    (after a sign change the step skips the element)
//   p = p - sign(g) * step_size
//   prev = g
// sign() is torch's: +0 for either zero and 0 for NaN (not NumPy's NaN), so a NaN gradient leaves its element
// and step size as they were, as in torch. torch replaces the signs by masked assignments; here each is a select
// on the same comparison, so the loop vectorises with the same bits (and etaminus < 1 < etaplus, checked by the
// caller, keeps the cases apart).
#pragma once

#include <cstdint>

#include "fusedoptim/common.hpp"
#include "fusedoptim/parallel.hpp"

namespace fusedoptim::rprop {

struct Hyper {
    double etaminus, etaplus, step_size_min, step_size_max;
};

struct Options {
    bool maximize;
};

template <class T>
struct Coeffs {
    T etaminus, etaplus, step_size_min, step_size_max;
};

template <class T>
Coeffs<T> make_coeffs(const Hyper& h) {
    return {T(h.etaminus), T(h.etaplus), T(h.step_size_min), T(h.step_size_max)};
}

template <class T>
using BatchOf = Batch<T, Coeffs<T>, Options>;

// torch.sign: -1, 1, or +0 for a zero of either sign and for NaN.
template <class T>
FUSEDOPTIM_INLINE T torch_sign(T x) {
    return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
}

// The element update, written once (maximize is a sign flip, see Negate in common.hpp).
template <class T>
struct Update {
    Negate<T> negate;  // maximize

    template <class P, class G, class S>  // float pointers, or the 16-bit slots of convert.hpp
    FUSEDOPTIM_INLINE void operator()(const Coeffs<T>& c, int64_t i, P p, G grad, S prev, S step_size, S, S) const {
        T g = grad[i];
        g = negate(g);
        const T s = g * T(prev[i]);  // grad.mul(prev).sign()
        const T f = s > T(0) ? c.etaplus : (s < T(0) ? c.etaminus : T(1));
        const T scaled = T(step_size[i]) * f;                               // step_size.mul_(sign)
        const T low = scaled < c.step_size_min ? c.step_size_min : scaled;  // .clamp_(min, max): NaN stays
        const T size = low > c.step_size_max ? c.step_size_max : low;
        step_size[i] = size;
        g = f == c.etaminus ? T(0) : g;      // grad[sign.eq(etaminus)] = 0
        p[i] = p[i] - torch_sign(g) * size;  // addcmul_(g.sign(), size, -1)
        prev[i] = g;                         // prev.copy_(grad)
    }
};

template <class Isa, class T>
void run(const BatchOf<T>& batch) {
    run_elementwise<Isa>(batch, Update<T>{Negate<T>::when(batch.options.maximize)});
}

}  // namespace fusedoptim::rprop
