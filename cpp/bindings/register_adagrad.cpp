#include <pybind11/stl.h>

#include "buffers.hpp"

namespace fusedoptim::bind {

void register_adagrad(py::module_& m) {
    m.def(
        "adagrad_prepare",
        [](py::object params, py::object grads, py::object state_sums, std::vector<int64_t> steps, double lr,
           double lr_decay, double weight_decay, double eps, bool maximize,
           const std::optional<std::vector<int64_t>>& labels, py::object precision) {
            Gathered g = gather({{"params", params, true}, {"grads", grads, false}, {"state_sums", state_sums, true}}, labels, precision);
            const adagrad::Hyper hyper{lr, lr_decay, weight_decay, eps};
            const adagrad::Options options{weight_decay != 0.0, maximize};
            return prepare(
                std::move(g), options,
                steps,
                [hyper](auto zero, size_t i, const StepNumbers& s) { return adagrad::make_coeffs<decltype(zero)>(hyper, s.steps[i]); },
                [](auto zero) { return kernels<decltype(zero)>().adagrad; });
        },
        py::arg("params"), py::arg("grads"), py::arg("state_sums"), py::arg("steps"), py::arg("lr"),
        py::arg("lr_decay"), py::arg("weight_decay"), py::arg("eps"), py::arg("maximize"), py::arg("labels") = py::none(), py::arg("precision") = py::none());
}

}  // namespace fusedoptim::bind
