#include <pybind11/stl.h>

#include "buffers.hpp"

namespace fusedoptim::bind {

namespace {
struct SGDHyper {
    double lr, momentum, dampening, weight_decay;
    bool nesterov, maximize;
};
}  // namespace

void register_sgd(py::module_& m) {
    static const char* const names[] = {"lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"};
    bind_hyper(m, "SGDHyper", names, &SGDHyper::lr, &SGDHyper::momentum, &SGDHyper::dampening, &SGDHyper::weight_decay,
               &SGDHyper::nesterov, &SGDHyper::maximize);
    m.def(
        "sgd_prepare",
        [](py::object params, py::object grads, py::object momentum_buffers, std::vector<bool> first_steps,
           const SGDHyper& h, const std::optional<std::vector<int64_t>>& labels,
           const std::optional<Precision>& precision) {
            const bool use_momentum = h.momentum != 0.0;
            Gathered g = gather({{"params", params, true},
                                 {"grads", grads, false},
                                 {"momentum_buffers", momentum_buffers, true, use_momentum}},
                                labels, precision);
            if (use_momentum) check_length("first_steps", first_steps.size(), g.count);
            const sgd::Hyper hyper{h.lr, h.momentum, h.dampening, h.weight_decay};
            const sgd::Options options{use_momentum, h.nesterov, h.weight_decay != 0.0, h.maximize};
            return prepare(
                std::move(g), options, std::nullopt,
                // A re-run step is never a buffer's first: the buffer exists from the first run on.
                [hyper, use_momentum, first_steps](auto zero, size_t i, const StepNumbers& s) {
                    return sgd::make_coeffs<decltype(zero)>(hyper, use_momentum && !s.rerun && first_steps[i]);
                },
                [](auto zero) { return kernels<decltype(zero)>().sgd; });
        },
        py::arg("params"), py::arg("grads"), py::arg("momentum_buffers"), py::arg("first_steps"), py::arg("hyper"),
        py::arg("labels") = py::none(), py::arg("precision") = py::none());
}

}  // namespace fusedoptim::bind
