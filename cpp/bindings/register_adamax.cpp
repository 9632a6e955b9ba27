#include <pybind11/stl.h>

#include "buffers.hpp"

namespace fusedoptim::bind {

void register_adamax(py::module_& m) {
    m.def(
        "adamax_prepare",
        [](py::object params, py::object grads, py::object exp_avgs, py::object exp_infs, std::vector<int64_t> steps,
           double lr, double beta1, double beta2, double eps, double weight_decay, bool maximize,
           const std::optional<std::vector<int64_t>>& labels, py::object precision) {
            Gathered g = gather({{"params", params, true},
                                 {"grads", grads, false},
                                 {"exp_avgs", exp_avgs, true},
                                 {"exp_infs", exp_infs, true}},
                                labels, precision);
            const adamax::Hyper hyper{lr, beta1, beta2, eps, weight_decay};
            const adamax::Options options{weight_decay != 0.0, maximize};
            return prepare(
                std::move(g), options,
                steps,
                [hyper](auto zero, size_t i, const StepNumbers& s) { return adamax::make_coeffs<decltype(zero)>(hyper, s.steps[i]); },
                [](auto zero) { return kernels<decltype(zero)>().adamax; });
        },
        py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_infs"), py::arg("steps"),
        py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"),
        py::arg("maximize"), py::arg("labels") = py::none(), py::arg("precision") = py::none());
}

}  // namespace fusedoptim::bind
