#include <pybind11/stl.h>

#include "buffers.hpp"

namespace fusedoptim::bind {

namespace {
struct RAdamHyper {
    double lr, beta1, beta2, eps, weight_decay;
    bool decoupled_weight_decay, maximize;
};
}  // namespace

void register_radam(py::module_& m) {
    static const char* const names[] = {"lr",      "beta1", "beta2", "eps", "weight_decay", "decoupled_weight_decay",
                                        "maximize"};
    bind_hyper(m, "RAdamHyper", names, &RAdamHyper::lr, &RAdamHyper::beta1, &RAdamHyper::beta2, &RAdamHyper::eps,
               &RAdamHyper::weight_decay, &RAdamHyper::decoupled_weight_decay, &RAdamHyper::maximize);
    m.def(
        "radam_prepare",
        [](py::object params, py::object grads, py::object exp_avgs, py::object exp_avg_sqs, std::vector<int64_t> steps,
           const RAdamHyper& h, const std::optional<std::vector<int64_t>>& labels,
           const std::optional<Precision>& precision) {
            Gathered g = gather({{"params", params, true},
                                 {"grads", grads, false},
                                 {"exp_avgs", exp_avgs, true},
                                 {"exp_avg_sqs", exp_avg_sqs, true}},
                                labels, precision);
            const radam::Hyper hyper{h.lr, h.beta1, h.beta2, h.eps, h.weight_decay};
            const radam::Options options{h.maximize, h.weight_decay != 0.0 && !h.decoupled_weight_decay,
                                         h.weight_decay != 0.0 && h.decoupled_weight_decay};
            return prepare(
                std::move(g), options, steps,
                [hyper](auto zero, size_t i, const StepNumbers& s) {
                    return radam::make_coeffs<decltype(zero)>(hyper, s.steps[i]);
                },
                [](auto zero) { return kernels<decltype(zero)>().radam; });
        },
        py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_avg_sqs"), py::arg("steps"),
        py::arg("hyper"), py::arg("labels") = py::none(), py::arg("precision") = py::none());
}

}  // namespace fusedoptim::bind
