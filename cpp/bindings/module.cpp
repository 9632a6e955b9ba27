// The extension module: only registrations. Kernels live in cpp/include, validation in buffers.cpp.
#include <pybind11/pybind11.h>

#include "fusedoptim/kernel_table.hpp"

namespace py = pybind11;

namespace fusedoptim::bind {
void register_info(py::module_& m);
void register_prepared_step(py::module_& m);
void register_precision(py::module_& m);
void register_testing(py::module_& m);
#define FUSEDOPTIM_DECLARE(family) void register_##family(py::module_& m);
FUSEDOPTIM_FAMILIES(FUSEDOPTIM_DECLARE)
#undef FUSEDOPTIM_DECLARE
}  // namespace fusedoptim::bind

PYBIND11_MODULE(_core, m) {
    m.doc() = "fusedoptim's C++ kernels. Private: use fusedoptim.functional or the optimizer classes.";
    using namespace fusedoptim::bind;
    register_info(m);
    register_prepared_step(m);
    register_precision(m);
    register_testing(m);
#define FUSEDOPTIM_REGISTER(family) register_##family(m);
    FUSEDOPTIM_FAMILIES(FUSEDOPTIM_REGISTER)
#undef FUSEDOPTIM_REGISTER
}
