#include <pybind11/stl.h>

#include "buffers.hpp"

namespace fusedoptim::bind {

void register_ema(py::module_& m) {
    m.def(
        "ema_",
        [](py::object averages, py::object params, double weight) {
            Gathered g = gather({{"averages", averages, true}, {"params", params, false}}, std::nullopt);
            auto step = prepare(
                std::move(g), ema::Options{}, std::nullopt,
                [weight](auto zero, size_t, const StepNumbers&) {
                    return ema::Coeffs<decltype(zero)>{decltype(zero)(weight)};
                },
                [](auto zero) { return kernels<decltype(zero)>().ema; });
            PreparedStep::run_all({&step});
        },
        py::arg("averages"), py::arg("params"), py::arg("weight"),
        "averages = lerp(averages, params, weight), in place (weight = 1 - decay).");
}

}  // namespace fusedoptim::bind
