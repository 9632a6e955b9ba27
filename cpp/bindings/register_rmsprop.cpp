#include <pybind11/stl.h>

#include "buffers.hpp"

namespace fusedoptim::bind {

namespace {
struct RMSpropHyper {
    double lr, alpha, eps, weight_decay, momentum;
    bool centered, maximize, eps_in_sqrt;
};
}  // namespace

void register_rmsprop(py::module_& m) {
    static const char* const names[] = {"lr",       "alpha",    "eps",      "weight_decay",
                                        "momentum", "centered", "maximize", "eps_in_sqrt"};
    bind_hyper(m, "RMSpropHyper", names, &RMSpropHyper::lr, &RMSpropHyper::alpha, &RMSpropHyper::eps,
               &RMSpropHyper::weight_decay, &RMSpropHyper::momentum, &RMSpropHyper::centered, &RMSpropHyper::maximize,
               &RMSpropHyper::eps_in_sqrt);
    m.def(
        "rmsprop_prepare",
        [](py::object params, py::object grads, py::object square_avgs, py::object grad_avgs,
           py::object momentum_buffers, const RMSpropHyper& h, const std::optional<std::vector<int64_t>>& labels,
           const std::optional<Precision>& precision) {
            const bool use_momentum = h.momentum != 0.0;
            Gathered g = gather({{"params", params, true},
                                 {"grads", grads, false},
                                 {"square_avgs", square_avgs, true},
                                 {"grad_avgs", grad_avgs, true, h.centered},
                                 {"momentum_buffers", momentum_buffers, true, use_momentum}},
                                labels, precision);
            const rmsprop::Hyper hyper{h.lr, h.alpha, h.eps, h.weight_decay, h.momentum};
            const rmsprop::Options options{h.centered, use_momentum, h.weight_decay != 0.0, h.maximize, h.eps_in_sqrt};
            return prepare(
                std::move(g), options, std::nullopt,
                [hyper](auto zero, size_t, const StepNumbers&) { return rmsprop::make_coeffs<decltype(zero)>(hyper); },
                [](auto zero) { return kernels<decltype(zero)>().rmsprop; });
        },
        py::arg("params"), py::arg("grads"), py::arg("square_avgs"), py::arg("grad_avgs"), py::arg("momentum_buffers"),
        py::arg("hyper"), py::arg("labels") = py::none(), py::arg("precision") = py::none());
}

}  // namespace fusedoptim::bind
