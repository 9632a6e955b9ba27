#include <pybind11/stl.h>

#include "buffers.hpp"

namespace fusedoptim::bind {

void register_adam(py::module_& m) {
    m.def(
        "adam_prepare",
        [](py::object params, py::object grads, py::object exp_avgs, py::object exp_avg_sqs,
           py::object max_exp_avg_sqs, std::vector<int64_t> steps, double lr, double beta1, double beta2, double eps,
           double weight_decay, bool amsgrad, bool maximize, bool decoupled_weight_decay,
           const std::optional<std::vector<int64_t>>& labels, py::object precision) {
            Gathered g = gather({{"params", params, true},
                                 {"grads", grads, false},
                                 {"exp_avgs", exp_avgs, true},
                                 {"exp_avg_sqs", exp_avg_sqs, true},
                                 {"max_exp_avg_sqs", max_exp_avg_sqs, true, amsgrad}}, labels, precision);
            const adam::Hyper hyper{lr, beta1, beta2, eps, weight_decay};
            const adam::Decay decay = weight_decay == 0.0   ? adam::Decay::none
                                      : decoupled_weight_decay ? adam::Decay::decoupled
                                                               : adam::Decay::l2;
            const adam::Options options{amsgrad, maximize, decay};
            return prepare(
                std::move(g), options,
                steps,
                [hyper](auto zero, size_t i, const StepNumbers& s) { return adam::make_coeffs<decltype(zero)>(hyper, s.steps[i]); },
                [](auto zero) { return kernels<decltype(zero)>().adam; });
        },
        py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_avg_sqs"), py::arg("max_exp_avg_sqs"),
        py::arg("steps"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
        py::arg("weight_decay"), py::arg("amsgrad"), py::arg("maximize"), py::arg("decoupled_weight_decay"), py::arg("labels") = py::none(), py::arg("precision") = py::none());
}

}  // namespace fusedoptim::bind
