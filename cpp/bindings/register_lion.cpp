#include <pybind11/stl.h>

#include "buffers.hpp"

namespace fusedoptim::bind {

void register_lion(py::module_& m) {
    m.def(
        "lion_prepare",
        [](py::object params, py::object grads, py::object exp_avgs, double lr, double beta1, double beta2,
           double weight_decay, bool maximize, const std::optional<std::vector<int64_t>>& labels, py::object precision) {
            Gathered g =
                gather({{"params", params, true}, {"grads", grads, false}, {"exp_avgs", exp_avgs, true}}, labels, precision);
            const lion::Hyper hyper{lr, beta1, beta2, weight_decay};
            const lion::Options options{weight_decay != 0.0, maximize};
            return prepare(
                std::move(g), options, std::nullopt,
                [hyper](auto zero, size_t, const StepNumbers&) { return lion::make_coeffs<decltype(zero)>(hyper); },
                [](auto zero) { return kernels<decltype(zero)>().lion; });
        },
        py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("lr"), py::arg("beta1"),
        py::arg("beta2"), py::arg("weight_decay"), py::arg("maximize"), py::arg("labels") = py::none(), py::arg("precision") = py::none());
}

}  // namespace fusedoptim::bind
