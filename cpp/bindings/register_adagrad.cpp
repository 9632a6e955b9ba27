#include <pybind11/stl.h>

#include "buffers.hpp"

namespace fusedoptim::bind {

namespace {
struct AdagradHyper {
    double lr, lr_decay, weight_decay, eps;
    bool maximize;
};
}  // namespace

void register_adagrad(py::module_& m) {
    static const char* const names[] = {"lr", "lr_decay", "weight_decay", "eps", "maximize"};
    bind_hyper(m, "AdagradHyper", names, &AdagradHyper::lr, &AdagradHyper::lr_decay, &AdagradHyper::weight_decay,
               &AdagradHyper::eps, &AdagradHyper::maximize);
    m.def(
        "adagrad_prepare",
        [](py::object params, py::object grads, py::object state_sums, std::vector<int64_t> steps,
           const AdagradHyper& h, const std::optional<std::vector<int64_t>>& labels,
           const std::optional<Precision>& precision) {
            Gathered g = gather({{"params", params, true}, {"grads", grads, false}, {"state_sums", state_sums, true}},
                                labels, precision);
            const adagrad::Hyper hyper{h.lr, h.lr_decay, h.weight_decay, h.eps};
            const adagrad::Options options{h.weight_decay != 0.0, h.maximize};
            return prepare(
                std::move(g), options, steps,
                [hyper](auto zero, size_t i, const StepNumbers& s) {
                    return adagrad::make_coeffs<decltype(zero)>(hyper, s.steps[i]);
                },
                [](auto zero) { return kernels<decltype(zero)>().adagrad; });
        },
        py::arg("params"), py::arg("grads"), py::arg("state_sums"), py::arg("steps"), py::arg("hyper"),
        py::arg("labels") = py::none(), py::arg("precision") = py::none());
}

}  // namespace fusedoptim::bind
