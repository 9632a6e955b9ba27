#include <pybind11/stl.h>

#include "buffers.hpp"

namespace fusedoptim::bind {

namespace {
struct LAMBHyper {
    double lr, beta1, beta2, eps, weight_decay;
    bool maximize;
};
}  // namespace

void register_lamb(py::module_& m) {
    static const char* const names[] = {"lr", "beta1", "beta2", "eps", "weight_decay", "maximize"};
    bind_hyper(m, "LAMBHyper", names, &LAMBHyper::lr, &LAMBHyper::beta1, &LAMBHyper::beta2, &LAMBHyper::eps,
               &LAMBHyper::weight_decay, &LAMBHyper::maximize);
    m.def(
        "lamb_prepare",
        [](py::object params, py::object grads, py::object exp_avgs, py::object exp_avg_sqs, std::vector<int64_t> steps,
           const LAMBHyper& h, const std::optional<std::vector<int64_t>>& labels, double grad_scale) {
            check_grad_scale(grad_scale);
            // LAMB takes no 16-bit storage: a Precision only to carry a gradient scale into the tensors.
            std::optional<Precision> precision;
            if (grad_scale != 1.0) precision = Precision{py::none(), grad_scale, std::nullopt, {}};
            Gathered g = gather({{"params", params, true},
                                 {"grads", grads, false},
                                 {"exp_avgs", exp_avgs, true},
                                 {"exp_avg_sqs", exp_avg_sqs, true}},
                                labels, precision);
            const lamb::Hyper hyper{h.lr, h.beta1, h.beta2, h.eps, h.weight_decay};
            const lamb::Options options{h.weight_decay != 0.0, h.maximize};
            return prepare(
                std::move(g), options, steps,
                [hyper](auto zero, size_t i, const StepNumbers& s) {
                    return lamb::make_coeffs<decltype(zero)>(hyper, s.steps[i]);
                },
                [](auto zero) { return kernels<decltype(zero)>().lamb; });
        },
        py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_avg_sqs"), py::arg("steps"),
        py::arg("hyper"), py::arg("labels") = py::none(), py::arg("grad_scale") = 1.0);
}

}  // namespace fusedoptim::bind
