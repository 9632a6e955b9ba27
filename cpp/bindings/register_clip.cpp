#include <pybind11/stl.h>

#include "buffers.hpp"

namespace fusedoptim::bind {

namespace {

PreparedStep prepare_clip(py::object grads, const clip::Options& options, double scale, double lo, double hi) {
    Gathered g = gather({{"grads", grads, true}}, std::nullopt);
    return prepare(
        std::move(g), options, std::nullopt,
        [scale, lo, hi](auto zero, size_t, const StepNumbers&) {
            using T = decltype(zero);
            return clip::Coeffs<T>{T(scale), T(lo), T(hi)};
        },
        [](auto zero) { return kernels<decltype(zero)>().clip; });
}

void run_clip(py::object grads, const clip::Options& options, double scale, double lo, double hi) {
    PreparedStep step = prepare_clip(std::move(grads), options, scale, lo, hi);
    PreparedStep::run_all({&step});
}

}  // namespace

void register_clip(py::module_& m) {
    m.def(
        "scale_", [](py::object grads, double factor) { run_clip(grads, clip::Options{false}, factor, 0.0, 0.0); },
        py::arg("grads"), py::arg("factor"), "grads *= factor, in place (the factor rounded to each array's dtype).");
    m.def(
        "prepare_scale",
        [](py::object grads, double factor) {
            return prepare_clip(std::move(grads), clip::Options{false}, factor, 0.0, 0.0);
        },
        py::arg("grads"), py::arg("factor"),
        "scale_ checked but not run: an optimizer's clipping, run by run_steps or StepPlan.run just before the "
        "step it belongs to.");
    m.def(
        "clamp_", [](py::object grads, double lo, double hi) { run_clip(grads, clip::Options{true}, 1.0, lo, hi); },
        py::arg("grads"), py::arg("lo"), py::arg("hi"), "Clamps grads to [lo, hi] in place; NaN stays NaN.");
}

}  // namespace fusedoptim::bind
