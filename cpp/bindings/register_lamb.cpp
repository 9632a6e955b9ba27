#include <pybind11/stl.h>

#include "buffers.hpp"

namespace fusedoptim::bind {

void register_lamb(py::module_& m) {
    m.def(
        "lamb_prepare",
        [](py::object params, py::object grads, py::object exp_avgs, py::object exp_avg_sqs,
           std::vector<int64_t> steps, double lr, double beta1, double beta2, double eps, double weight_decay,
           bool maximize, const std::optional<std::vector<int64_t>>& labels, double grad_scale) {
            check_grad_scale(grad_scale);
            // LAMB takes no 16-bit storage: `precision` only to carry a gradient scale into the tensors.
            Gathered g = gather({{"params", params, true},
                                 {"grads", grads, false},
                                 {"exp_avgs", exp_avgs, true},
                                 {"exp_avg_sqs", exp_avg_sqs, true}},
                                labels, grad_scale == 1.0 ? py::object(py::none()) : py::object(py::make_tuple(py::none(), grad_scale)));
            const lamb::Hyper hyper{lr, beta1, beta2, eps, weight_decay};
            const lamb::Options options{weight_decay != 0.0, maximize};
            return prepare(
                std::move(g), options,
                steps,
                [hyper](auto zero, size_t i, const StepNumbers& s) { return lamb::make_coeffs<decltype(zero)>(hyper, s.steps[i]); },
                [](auto zero) { return kernels<decltype(zero)>().lamb; });
        },
        py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_avg_sqs"), py::arg("steps"),
        py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"),
        py::arg("maximize"), py::arg("labels") = py::none(), py::arg("grad_scale") = 1.0);
}

}  // namespace fusedoptim::bind
