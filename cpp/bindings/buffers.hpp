// Validation of a kernel call's arrays, and the prepared step that runs once everything has been checked.
//
// The in-place contract: every array a kernel touches is an ndarray of the parameter's dtype (float32 or
// float64, native byte order) and shape, C-contiguous and aligned; written ones are writeable; no written
// buffer overlaps any other buffer. All of it is checked, for every list, before any buffer is written, so a
// failed call changes nothing. Nothing is ever converted or copied.
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <utility>
#include <utility>
#include <vector>

#include "fusedoptim/common.hpp"
#include "fusedoptim/dispatch.hpp"
#include "settings.hpp"

namespace fusedoptim::bind {

namespace py = pybind11;

// One list argument of a kernel call: a list or tuple of arrays. A list the call's mode does not use
// (`used == false`) is ignored, whatever it holds. The first list is always `params`, the second `grads`.
struct BufferList {
    const char* name;
    py::handle list;
    bool written;
    bool used = true;
};

template <class T>
struct TensorsOf {
    std::vector<TensorRef<T>> tensors;
    std::vector<int64_t> offsets{0};
    std::vector<size_t> positions;  // each tensor's index in the call's lists
};

// A buffer's bytes, and its name for messages.
struct Interval {
    uintptr_t begin, end;
    const char* list;
    int64_t label;
};

// The validated, non-empty tensors of a call, by dtype, and references keeping every array alive.
struct Gathered {
    std::vector<Interval> written, read;
    size_t count = 0;  // number of params in the call, empty ones included
    TensorsOf<float> f32;
    TensorsOf<double> f64;
    std::vector<py::object> arrays;
    std::vector<std::pair<py::object, Interval>> written_arrays;
};

// Validates the lists (see the top of this file) and raises TypeError/ValueError naming the argument, index
// and offending value.
// `labels`, when given, are the indices messages show for each position (an optimizer's global parameter
// indices, as it passes only the parameters that have a gradient).
Gathered gather(const std::vector<BufferList>& lists, const std::optional<std::vector<int64_t>>& labels);

// Raises ValueError unless `values` has one entry per parameter.
void check_length(const char* name, size_t length, size_t count);

// Raises ValueError unless there is one step number per parameter, each >= 1 (bias corrections divide by
// 1 - beta^t).
void check_steps(const std::vector<int64_t>& steps, size_t count);

// A validated call, ready to run. Running releases the GIL: this is safe because the step holds references to
// every array (none can be freed or resized under us, as NumPy refuses to resize a referenced array) and the
// kernels touch no Python object.
class PreparedStep {
public:
    PreparedStep(std::function<void()> run, Gathered&& gathered)
        : run_(std::move(run)),
          arrays_(std::move(gathered.arrays)),
          written_arrays_(std::move(gathered.written_arrays)),
          written_(std::move(gathered.written)),
          read_(std::move(gathered.read)) {}

    // Runs the steps in order, after checking that no step writes memory another step reads or writes (an
    // optimizer prepares each parameter group separately, then runs them all). Raises before running any.
    static void run_all(const std::vector<PreparedStep*>& steps);

private:
    std::function<void()> run_;
    std::vector<py::object> arrays_;
    std::vector<std::pair<py::object, Interval>> written_arrays_;
    std::vector<Interval> written_, read_;
    bool done_ = false;
};

// Builds the prepared step of one family: per-tensor coefficients from `make_coeffs(T{}, position)` and the
// kernel from `kernel(T{})`, for each dtype present.
template <class Options, class MakeCoeffs, class Kernel>
PreparedStep prepare(Gathered&& gathered, const Options& options, const MakeCoeffs& make_coeffs,
                     const Kernel& kernel) {
    auto part = [&](auto zero, auto& tensors) {
        using T = decltype(zero);
        using Coeffs = decltype(make_coeffs(zero, size_t{0}));
        std::vector<Coeffs> coeffs;
        coeffs.reserve(tensors.positions.size());
        for (size_t position : tensors.positions) coeffs.push_back(make_coeffs(zero, position));
        return [tensors = std::move(tensors), coeffs = std::move(coeffs), options, run = kernel(zero)]() {
            if (tensors.tensors.empty()) return;
            const Batch<T, Coeffs, Options> batch{tensors.tensors.data(), coeffs.data(), tensors.offsets.data(),
                                                  static_cast<int64_t>(tensors.tensors.size()), options,
                                                  num_threads(), parallel_grain()};
            run(batch);
        };
    };
    auto run_f32 = part(float{}, gathered.f32);
    auto run_f64 = part(double{}, gathered.f64);
    return PreparedStep(
        [run_f32 = std::move(run_f32), run_f64 = std::move(run_f64)]() {
            run_f32();
            run_f64();
        },
        std::move(gathered));
}

void register_prepared_step(py::module_& m);

}  // namespace fusedoptim::bind
