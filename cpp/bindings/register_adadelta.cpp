#include <pybind11/stl.h>

#include "buffers.hpp"

namespace fusedoptim::bind {

void register_adadelta(py::module_& m) {
    m.def(
        "adadelta_prepare",
        [](py::object params, py::object grads, py::object square_avgs, py::object acc_deltas, double lr, double rho,
           double eps, double weight_decay, bool maximize, const std::optional<std::vector<int64_t>>& labels, py::object precision) {
            Gathered g = gather({{"params", params, true},
                                 {"grads", grads, false},
                                 {"square_avgs", square_avgs, true},
                                 {"acc_deltas", acc_deltas, true}},
                                labels, precision);
            const adadelta::Hyper hyper{lr, rho, eps, weight_decay};
            const adadelta::Options options{weight_decay != 0.0, maximize};
            return prepare(
                std::move(g), options, std::nullopt,
                [hyper](auto zero, size_t, const StepNumbers&) { return adadelta::make_coeffs<decltype(zero)>(hyper); },
                [](auto zero) { return kernels<decltype(zero)>().adadelta; });
        },
        py::arg("params"), py::arg("grads"), py::arg("square_avgs"), py::arg("acc_deltas"),
        py::arg("lr"), py::arg("rho"), py::arg("eps"), py::arg("weight_decay"), py::arg("maximize"),
        py::arg("labels") = py::none(), py::arg("precision") = py::none());
}

}  // namespace fusedoptim::bind
