#include <pybind11/stl.h>

#include "buffers.hpp"

namespace fusedoptim::bind {

namespace {
struct RpropHyper {
    double etaminus, etaplus, step_size_min, step_size_max;
    bool maximize;
};
}  // namespace

void register_rprop(py::module_& m) {
    static const char* const names[] = {"etaminus", "etaplus", "step_size_min", "step_size_max", "maximize"};
    bind_hyper(m, "RpropHyper", names, &RpropHyper::etaminus, &RpropHyper::etaplus, &RpropHyper::step_size_min,
               &RpropHyper::step_size_max, &RpropHyper::maximize);
    m.def(
        "rprop_prepare",
        [](py::object params, py::object grads, py::object prevs, py::object step_sizes, const RpropHyper& h,
           const std::optional<std::vector<int64_t>>& labels, const std::optional<Precision>& precision) {
            Gathered g = gather({{"params", params, true},
                                 {"grads", grads, false},
                                 {"prevs", prevs, true},
                                 {"step_sizes", step_sizes, true}},
                                labels, precision);
            const rprop::Hyper hyper{h.etaminus, h.etaplus, h.step_size_min, h.step_size_max};
            return prepare(
                std::move(g), rprop::Options{h.maximize}, std::nullopt,
                [hyper](auto zero, size_t, const StepNumbers&) { return rprop::make_coeffs<decltype(zero)>(hyper); },
                [](auto zero) { return kernels<decltype(zero)>().rprop; });
        },
        py::arg("params"), py::arg("grads"), py::arg("prevs"), py::arg("step_sizes"), py::arg("hyper"),
        py::arg("labels") = py::none(), py::arg("precision") = py::none());
}

}  // namespace fusedoptim::bind
