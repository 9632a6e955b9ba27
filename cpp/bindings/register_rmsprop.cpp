#include <pybind11/stl.h>

#include "buffers.hpp"

namespace fusedoptim::bind {

void register_rmsprop(py::module_& m) {
    m.def(
        "rmsprop_prepare",
        [](py::object params, py::object grads, py::object square_avgs, py::object grad_avgs,
           py::object momentum_buffers, double lr, double alpha, double eps, double weight_decay, double momentum,
           bool centered, bool maximize, bool eps_in_sqrt,
           const std::optional<std::vector<int64_t>>& labels, py::object precision) {
            const bool use_momentum = momentum != 0.0;
            Gathered g = gather({{"params", params, true},
                                 {"grads", grads, false},
                                 {"square_avgs", square_avgs, true},
                                 {"grad_avgs", grad_avgs, true, centered},
                                 {"momentum_buffers", momentum_buffers, true, use_momentum}}, labels, precision);
            const rmsprop::Hyper hyper{lr, alpha, eps, weight_decay, momentum};
            const rmsprop::Options options{centered, use_momentum, weight_decay != 0.0, maximize, eps_in_sqrt};
            return prepare(
                std::move(g), options,
                std::nullopt, [hyper](auto zero, size_t, const StepNumbers&) { return rmsprop::make_coeffs<decltype(zero)>(hyper); },
                [](auto zero) { return kernels<decltype(zero)>().rmsprop; });
        },
        py::arg("params"), py::arg("grads"), py::arg("square_avgs"), py::arg("grad_avgs"),
        py::arg("momentum_buffers"), py::arg("lr"), py::arg("alpha"), py::arg("eps"),
        py::arg("weight_decay"), py::arg("momentum"), py::arg("centered"), py::arg("maximize"),
        py::arg("eps_in_sqrt"), py::arg("labels") = py::none(), py::arg("precision") = py::none());
}

}  // namespace fusedoptim::bind
