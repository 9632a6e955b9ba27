#include <pybind11/stl.h>

#include "buffers.hpp"

namespace fusedoptim::bind {

void register_sgd(py::module_& m) {
    m.def(
        "sgd_prepare",
        [](py::object params, py::object grads, py::object momentum_buffers, std::vector<bool> first_steps,
           double lr, double momentum, double dampening, double weight_decay, bool nesterov, bool maximize,
           const std::optional<std::vector<int64_t>>& labels, py::object precision) {
            const bool use_momentum = momentum != 0.0;
            Gathered g = gather({{"params", params, true},
                                 {"grads", grads, false},
                                 {"momentum_buffers", momentum_buffers, true, use_momentum}}, labels, precision);
            if (use_momentum) check_length("first_steps", first_steps.size(), g.count);
            const sgd::Hyper hyper{lr, momentum, dampening, weight_decay};
            const sgd::Options options{use_momentum, nesterov, weight_decay != 0.0, maximize};
            return prepare(
                std::move(g), options,
                std::nullopt,
                // A re-run step is never a buffer's first: the buffer exists from the first run on.
                [hyper, use_momentum, first_steps](auto zero, size_t i, const StepNumbers& s) {
                    return sgd::make_coeffs<decltype(zero)>(hyper, use_momentum && !s.rerun && first_steps[i]);
                },
                [](auto zero) { return kernels<decltype(zero)>().sgd; });
        },
        py::arg("params"), py::arg("grads"), py::arg("momentum_buffers"), py::arg("first_steps"),
        py::arg("lr"), py::arg("momentum"), py::arg("dampening"), py::arg("weight_decay"), py::arg("nesterov"),
        py::arg("maximize"), py::arg("labels") = py::none(), py::arg("precision") = py::none());
}

}  // namespace fusedoptim::bind
