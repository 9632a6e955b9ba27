#include <pybind11/stl.h>

#include "buffers.hpp"

namespace fusedoptim::bind {

namespace {
struct AdadeltaHyper {
    double lr, rho, eps, weight_decay;
    bool maximize;
};
}  // namespace

void register_adadelta(py::module_& m) {
    static const char* const names[] = {"lr", "rho", "eps", "weight_decay", "maximize"};
    bind_hyper(m, "AdadeltaHyper", names, &AdadeltaHyper::lr, &AdadeltaHyper::rho, &AdadeltaHyper::eps,
               &AdadeltaHyper::weight_decay, &AdadeltaHyper::maximize);
    m.def(
        "adadelta_prepare",
        [](py::object params, py::object grads, py::object square_avgs, py::object acc_deltas, const AdadeltaHyper& h,
           const std::optional<std::vector<int64_t>>& labels, const std::optional<Precision>& precision) {
            Gathered g = gather({{"params", params, true},
                                 {"grads", grads, false},
                                 {"square_avgs", square_avgs, true},
                                 {"acc_deltas", acc_deltas, true}},
                                labels, precision);
            const adadelta::Hyper hyper{h.lr, h.rho, h.eps, h.weight_decay};
            const adadelta::Options options{h.weight_decay != 0.0, h.maximize};
            return prepare(
                std::move(g), options, std::nullopt,
                [hyper](auto zero, size_t, const StepNumbers&) { return adadelta::make_coeffs<decltype(zero)>(hyper); },
                [](auto zero) { return kernels<decltype(zero)>().adadelta; });
        },
        py::arg("params"), py::arg("grads"), py::arg("square_avgs"), py::arg("acc_deltas"), py::arg("hyper"),
        py::arg("labels") = py::none(), py::arg("precision") = py::none());
}

}  // namespace fusedoptim::bind
