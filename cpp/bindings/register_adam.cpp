#include <pybind11/stl.h>

#include "buffers.hpp"

namespace fusedoptim::bind {

namespace {
struct AdamHyper {
    double lr, beta1, beta2, eps, weight_decay;
    bool amsgrad, maximize, decoupled_weight_decay;
};
}  // namespace

void register_adam(py::module_& m) {
    static const char* const names[] = {"lr",           "beta1",   "beta2",    "eps",
                                        "weight_decay", "amsgrad", "maximize", "decoupled_weight_decay"};
    bind_hyper(m, "AdamHyper", names, &AdamHyper::lr, &AdamHyper::beta1, &AdamHyper::beta2, &AdamHyper::eps,
               &AdamHyper::weight_decay, &AdamHyper::amsgrad, &AdamHyper::maximize, &AdamHyper::decoupled_weight_decay);
    m.def(
        "adam_prepare",
        [](py::object params, py::object grads, py::object exp_avgs, py::object exp_avg_sqs, py::object max_exp_avg_sqs,
           std::vector<int64_t> steps, const AdamHyper& h, const std::optional<std::vector<int64_t>>& labels,
           const std::optional<Precision>& precision) {
            Gathered g = gather({{"params", params, true},
                                 {"grads", grads, false},
                                 {"exp_avgs", exp_avgs, true},
                                 {"exp_avg_sqs", exp_avg_sqs, true},
                                 {"max_exp_avg_sqs", max_exp_avg_sqs, true, h.amsgrad}},
                                labels, precision);
            const adam::Hyper hyper{h.lr, h.beta1, h.beta2, h.eps, h.weight_decay};
            const adam::Decay decay = h.weight_decay == 0.0      ? adam::Decay::none
                                      : h.decoupled_weight_decay ? adam::Decay::decoupled
                                                                 : adam::Decay::l2;
            const adam::Options options{h.amsgrad, h.maximize, decay};
            return prepare(
                std::move(g), options, steps,
                [hyper](auto zero, size_t i, const StepNumbers& s) {
                    return adam::make_coeffs<decltype(zero)>(hyper, s.steps[i]);
                },
                [](auto zero) { return kernels<decltype(zero)>().adam; });
        },
        py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_avg_sqs"), py::arg("max_exp_avg_sqs"),
        py::arg("steps"), py::arg("hyper"), py::arg("labels") = py::none(), py::arg("precision") = py::none());
}

}  // namespace fusedoptim::bind
