// Build and runtime facts (`fusedoptim info`), the thread count, and the SIMD level.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>

#include "fusedoptim/dispatch.hpp"
#include "settings.hpp"

namespace fusedoptim::bind {

namespace py = pybind11;

void register_info(py::module_& m) {
    m.attr("__version__") = FUSEDOPTIM_VERSION;
    m.attr("compiler") = FUSEDOPTIM_COMPILER;
    m.attr("openmp") = has_openmp();
#if defined(FUSEDOPTIM_SANITIZE)
    m.attr("sanitize") = true;  // built with -fsanitize=address,undefined (FUSEDOPTIM_SANITIZE, .ci/sanitize.sh)
#else
    m.attr("sanitize") = false;
#endif
    m.def("get_num_threads", &num_threads, "Threads a kernel call may use.");
    m.def(
        "set_num_threads",
        [](int threads) {
            if (threads < 0) throw py::value_error("Invalid number of threads: " + std::to_string(threads));
            set_num_threads(threads);
        },
        py::arg("threads"), "Sets the threads kernels may use; 0 returns to OpenMP's maximum.");
    m.def("forked_without_threads", &forked_without_threads,
          "True in a process forked after multi-threaded kernels ran: kernels run on one thread here.");
    m.def("requested_num_threads", &requested_num_threads, "set_num_threads' value; 0 when OpenMP decides.");
    m.def("get_parallel_grain", &parallel_grain);
    m.def(
        "set_parallel_grain",
        [](int64_t grain) {
            if (grain < 1) throw py::value_error("Invalid parallel grain: " + std::to_string(grain));
            set_parallel_grain(grain);
        },
        py::arg("grain"),
        "Fewest units of work per thread, a unit being one float32 element of SGD with momentum (an element of "
        "the Adam family, Adagrad, RMSprop, Adadelta or Adamax counts 2, of LAMB 2 per pass, float64 twice "
        "float32). Default 65536. Tests lower it to run small arrays on two threads.");
    m.def("simd_level", &simd_level, "The instruction set the kernels run with.");
    m.def("compiled_simd_levels", &compiled_simd_levels);
    m.def("supported_simd_levels", &supported_simd_levels);
    m.def(
        "set_simd_level",
        [](const std::string& level) {
            try {
                set_simd_level(level);
            } catch (const std::invalid_argument& e) {
                throw py::value_error(e.what());
            }
        },
        py::arg("level"));
    m.def("prefetch", &prefetch_mixed_precision, "Whether the mixed-precision loops prefetch in software.");
    // Resolve FUSEDOPTIM_SIMD and FUSEDOPTIM_PREFETCH now, so a bad value fails the import rather than the first step.
    try {
        (void)active_kernels();
    } catch (const std::invalid_argument& e) {
        throw py::value_error(std::string("FUSEDOPTIM_SIMD: ") + e.what());
    }
    try {
        init_prefetch();
    } catch (const std::invalid_argument& e) {
        throw py::value_error(e.what());
    }
    init_fork_handler();
}

}  // namespace fusedoptim::bind
