#include <pybind11/stl.h>

#include "buffers.hpp"

namespace fusedoptim::bind {

void register_radam(py::module_& m) {
    m.def(
        "radam_prepare",
        [](py::object params, py::object grads, py::object exp_avgs, py::object exp_avg_sqs,
           std::vector<int64_t> steps, double lr, double beta1, double beta2, double eps, double weight_decay,
           bool decoupled_weight_decay, bool maximize, const std::optional<std::vector<int64_t>>& labels, py::object precision) {
            Gathered g = gather({{"params", params, true},
                                 {"grads", grads, false},
                                 {"exp_avgs", exp_avgs, true},
                                 {"exp_avg_sqs", exp_avg_sqs, true}},
                                labels, precision);
            const radam::Hyper hyper{lr, beta1, beta2, eps, weight_decay};
            const radam::Options options{maximize, weight_decay != 0.0 && !decoupled_weight_decay,
                                         weight_decay != 0.0 && decoupled_weight_decay};
            return prepare(
                std::move(g), options,
                steps,
                [hyper](auto zero, size_t i, const StepNumbers& s) { return radam::make_coeffs<decltype(zero)>(hyper, s.steps[i]); },
                [](auto zero) { return kernels<decltype(zero)>().radam; });
        },
        py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_avg_sqs"), py::arg("steps"),
        py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"),
        py::arg("decoupled_weight_decay"), py::arg("maximize"), py::arg("labels") = py::none(), py::arg("precision") = py::none());
}

}  // namespace fusedoptim::bind
