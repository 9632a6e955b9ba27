#include <pybind11/stl.h>

#include "buffers.hpp"

namespace fusedoptim::bind {

namespace {
struct LionHyper {
    double lr, beta1, beta2, weight_decay;
    bool maximize;
};
}  // namespace

void register_lion(py::module_& m) {
    static const char* const names[] = {"lr", "beta1", "beta2", "weight_decay", "maximize"};
    bind_hyper(m, "LionHyper", names, &LionHyper::lr, &LionHyper::beta1, &LionHyper::beta2, &LionHyper::weight_decay,
               &LionHyper::maximize);
    m.def(
        "lion_prepare",
        [](py::object params, py::object grads, py::object exp_avgs, const LionHyper& h,
           const std::optional<std::vector<int64_t>>& labels, const std::optional<Precision>& precision) {
            Gathered g = gather({{"params", params, true}, {"grads", grads, false}, {"exp_avgs", exp_avgs, true}},
                                labels, precision);
            const lion::Hyper hyper{h.lr, h.beta1, h.beta2, h.weight_decay};
            const lion::Options options{h.weight_decay != 0.0, h.maximize};
            return prepare(
                std::move(g), options, std::nullopt,
                [hyper](auto zero, size_t, const StepNumbers&) { return lion::make_coeffs<decltype(zero)>(hyper); },
                [](auto zero) { return kernels<decltype(zero)>().lion; });
        },
        py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("hyper"), py::arg("labels") = py::none(),
        py::arg("precision") = py::none());
}

}  // namespace fusedoptim::bind
