// L-BFGS's flat-vector algebra (kernels/flat.hpp), one function per fused pass; python/fusedoptim/lbfgs.py calls
// them. Each validates every list through gather (dtype, shape against the first list, contiguity, alignment,
// writeability, no written buffer sharing memory with any other) before anything is written, runs without the
// GIL, and returns its reductions combined over the arrays in list order, so the result does not depend on the
// dtype split, the thread count or the SIMD level.
#include <pybind11/stl.h>

#include <array>
#include <optional>
#include <tuple>

#include "buffers.hpp"

namespace fusedoptim::bind {

namespace flat_binding {  // named, not anonymous: the bindings are compiled in unity batches

using Results = std::array<double, flat::kResults>;

template <class T>
void run_part(TensorsOf<T>& part, const flat::Options& options, double a, double c,
              std::vector<Results>& per_position) {
    if (part.tensors.empty()) return;
    std::vector<flat::Coeffs<T>> coeffs(part.tensors.size(), flat::Coeffs<T>{static_cast<T>(a), static_cast<T>(c)});
    std::vector<double> out(part.tensors.size() * flat::kResults);
    flat::BatchOf<T> batch{
        part.tensors.data(), coeffs.data(),    part.offsets.data(), static_cast<int64_t>(part.tensors.size()), options,
        kernel_threads(),    parallel_grain(), out.data()};
    {
        py::gil_scoped_release release;  // `gathered` (the caller's) holds a reference to every array
        kernels<T>().flat(batch);
    }
    for (size_t k = 0; k < part.tensors.size(); ++k) {
        for (int j = 0; j < flat::kResults; ++j) per_position[part.positions[k]][j] = out[k * flat::kResults + j];
    }
}

Results run(const std::vector<BufferList>& lists, const flat::Options& options, double a = 0.0, double c = 1.0) {
    Gathered gathered = gather(lists, std::nullopt);
    std::vector<Results> per_position(gathered.count, Results{});
    run_part(gathered.f32, options, a, c, per_position);
    run_part(gathered.f64, options, a, c, per_position);
    Results total{};
    for (const Results& r : per_position) {
        for (int j = 0; j < flat::kResults; ++j) {
            total[j] = flat::is_maximum(options.op, j) ? maximum(total[j], r[j]) : total[j] + r[j];
        }
    }
    return total;
}

}  // namespace flat_binding

void register_flat(py::module_& m) {
    using flat::Op;
    using flat_binding::Results;
    using flat_binding::run;
    m.def(
        "flat_grad_stats",
        [](py::object params, py::object grads, py::object copy, py::object direction) {
            const Results r = run({{"params", params, false},
                                   {"grads", grads, false},
                                   {"flat_grad", copy, true, !copy.is_none()},
                                   {"d", direction, false, !direction.is_none()}},
                                  flat::Options{Op::grad_stats, false, false});
            return std::make_tuple(r[0], r[1], r[2]);
        },
        py::arg("params"), py::arg("grads"), py::arg("copy") = py::none(), py::arg("direction") = py::none(),
        "L-BFGS: (max |g|, sum |g|, g.d) over all the gradients (g.d 0 without `direction`), in double; copies "
        "each gradient into `copy` when given. Every list has one array per parameter, of its dtype and shape.");
    m.def(
        "flat_history",
        [](py::object y, py::object grads, py::object prev, py::object prev_old, py::object direction, py::object s,
           double t) {
            const Results r = run({{"y", y, true},
                                   {"grads", grads, false},
                                   {"prev_flat_grad", prev, true},
                                   {"prev_old", prev_old, false, !prev_old.is_none()},
                                   {"d", direction, false},
                                   {"s", s, true}},
                                  flat::Options{Op::history, false, false}, t);
            return std::make_tuple(r[0], r[1]);
        },
        py::arg("y"), py::arg("grads"), py::arg("prev"), py::arg("prev_old"), py::arg("direction"), py::arg("s"),
        py::arg("t"),
        "L-BFGS's history update in one pass: y = g - prev_old (None: prev, read before it is written), prev = g, "
        "s = d * t; returns (y.s, y.y) in double.");
    m.def(
        "flat_axpy_dot",
        [](py::object x, py::object u, py::object v, std::optional<double> alpha, std::optional<double> scale) {
            const Results r = run({{"x", x, true}, {"u", u, false}, {"v", v, false}},
                                  flat::Options{Op::axpy_dot, !alpha.has_value(), scale.has_value()},
                                  alpha.value_or(0.0), scale.value_or(1.0));
            return r[0];
        },
        py::arg("x"), py::arg("u"), py::arg("v"), py::arg("alpha"), py::arg("scale") = py::none(),
        "A step of L-BFGS's two-loop recursion in one pass: x = x + alpha * u (alpha None: x = -u), then x = x * "
        "scale when given; returns v.x in double.");
    m.def(
        "flat_step",
        [](py::object params, py::object direction, double t, py::object snapshot, py::object base) {
            if (!snapshot.is_none() && !base.is_none()) {
                throw py::value_error("flat_step takes a snapshot or a base, not both");
            }
            const Results r = run({{"params", params, true},
                                   {"d", direction, false},
                                   {"snapshot", snapshot, true, !snapshot.is_none()},
                                   {"base", base, false, !base.is_none()}},
                                  flat::Options{Op::step, false, false}, t);
            return r[0];
        },
        py::arg("params"), py::arg("direction"), py::arg("t"), py::arg("snapshot") = py::none(),
        py::arg("base") = py::none(),
        "L-BFGS's parameter update: snapshot = p (when given), then p = (base, else p) + t * d; returns max |d|.");
}

}  // namespace fusedoptim::bind
