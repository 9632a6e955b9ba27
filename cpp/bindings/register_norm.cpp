#include <pybind11/stl.h>

#include <cmath>
#include <limits>

#include "buffers.hpp"

namespace fusedoptim::bind {

namespace {

template <class T>
void run_part(TensorsOf<T>& part, norm::Kind kind, double p, std::vector<double>& per_position) {
    if (part.tensors.empty()) return;
    std::vector<norm::Coeffs<T>> coeffs(part.tensors.size(), norm::Coeffs<T>{p});
    std::vector<double> out(part.tensors.size());
    norm::BatchOf<T> batch{
        part.tensors.data(), coeffs.data(),    part.offsets.data(), static_cast<int64_t>(part.tensors.size()),
        norm::Options{kind}, kernel_threads(), parallel_grain(),    out.data()};
    {
        py::gil_scoped_release release;  // the arrays are referenced by the caller's list for the whole call
        kernels<T>().norm(batch);
    }
    for (size_t k = 0; k < out.size(); ++k) per_position[part.positions[k]] = out[k];
}

}  // namespace

void register_norm(py::module_& m) {
    m.def(
        "total_norm",
        [](py::object grads, double norm_type, bool allow_16bit) {
            Gathered g = gather({{"grads", grads, false, true, allow_16bit}}, std::nullopt);
            const bool is_inf = std::isinf(norm_type) && norm_type > 0;
            if (!(norm_type > 0.0))
                throw py::value_error("Invalid norm_type: " + std::string(py::repr(py::float_(norm_type))));
            const norm::Kind kind = is_inf             ? norm::Kind::max_abs
                                    : norm_type == 2.0 ? norm::Kind::sum_squares
                                    : norm_type == 1.0 ? norm::Kind::sum_abs
                                                       : norm::Kind::sum_pow;
            // Per-tensor results, combined in list order so the total does not depend on dtypes or threads.
            std::vector<double> per_position(g.count, 0.0);
            run_part(g.f32, kind, norm_type, per_position);
            run_part(g.f64, kind, norm_type, per_position);
            double total = 0.0;
            for (double x : per_position) total = kind == norm::Kind::max_abs ? maximum(total, x) : total + x;
            switch (kind) {
                case norm::Kind::sum_squares:
                    return std::sqrt(total);
                case norm::Kind::sum_pow:
                    return std::pow(total, 1.0 / norm_type);
                default:
                    return total;
            }
        },
        py::arg("grads"), py::arg("norm_type"), py::arg("allow_16bit") = false,
        "The norm of all arrays together, in double, deterministic for any thread count; NaN or inf when any "
        "element is not finite. allow_16bit: float16 and bfloat16 arrays too (each as its float32 copy).");
}

}  // namespace fusedoptim::bind
