#include <pybind11/stl.h>

#include "buffers.hpp"

namespace fusedoptim::bind {

namespace {
struct AdamaxHyper {
    double lr, beta1, beta2, eps, weight_decay;
    bool maximize;
};
}  // namespace

void register_adamax(py::module_& m) {
    static const char* const names[] = {"lr", "beta1", "beta2", "eps", "weight_decay", "maximize"};
    bind_hyper(m, "AdamaxHyper", names, &AdamaxHyper::lr, &AdamaxHyper::beta1, &AdamaxHyper::beta2, &AdamaxHyper::eps,
               &AdamaxHyper::weight_decay, &AdamaxHyper::maximize);
    m.def(
        "adamax_prepare",
        [](py::object params, py::object grads, py::object exp_avgs, py::object exp_infs, std::vector<int64_t> steps,
           const AdamaxHyper& h, const std::optional<std::vector<int64_t>>& labels,
           const std::optional<Precision>& precision) {
            Gathered g = gather({{"params", params, true},
                                 {"grads", grads, false},
                                 {"exp_avgs", exp_avgs, true},
                                 {"exp_infs", exp_infs, true}},
                                labels, precision);
            const adamax::Hyper hyper{h.lr, h.beta1, h.beta2, h.eps, h.weight_decay};
            const adamax::Options options{h.weight_decay != 0.0, h.maximize};
            return prepare(
                std::move(g), options, steps,
                [hyper](auto zero, size_t i, const StepNumbers& s) {
                    return adamax::make_coeffs<decltype(zero)>(hyper, s.steps[i]);
                },
                [](auto zero) { return kernels<decltype(zero)>().adamax; });
        },
        py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_infs"), py::arg("steps"),
        py::arg("hyper"), py::arg("labels") = py::none(), py::arg("precision") = py::none());
}

}  // namespace fusedoptim::bind
