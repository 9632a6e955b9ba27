#include <pybind11/stl.h>

#include "buffers.hpp"

namespace fusedoptim::bind {

void register_stream(py::module_& m) {
    m.def(
        "stream_triad",
        [](py::array a, py::array b, py::array c, double scalar) {
            // c is only read, but it takes a state slot: it is checked as written (so it may not alias b).
            Gathered g = gather(
                {{"a", py::make_tuple(a), true}, {"b", py::make_tuple(b), false}, {"c", py::make_tuple(c), true}},
                std::nullopt);
            auto step = prepare(
                std::move(g), stream::Options{}, std::nullopt,
                [scalar](auto zero, size_t, const StepNumbers&) {
                    return stream::Coeffs<decltype(zero)>{decltype(zero)(scalar)};
                },
                [](auto zero) { return kernels<decltype(zero)>().stream; });
            PreparedStep::run_all({&step});
        },
        py::arg("a"), py::arg("b"), py::arg("c"), py::arg("scalar"),
        "STREAM triad a = b + scalar * c, in place, with the optimizers' threads and SIMD level: the bandwidth probe.");
}

}  // namespace fusedoptim::bind
