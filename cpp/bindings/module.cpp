// The extension module: only registrations. Kernels live in cpp/include, validation in buffers.cpp.
#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace fusedoptim::bind {
void register_info(py::module_& m);
void register_prepared_step(py::module_& m);
void register_sgd(py::module_& m);
void register_adagrad(py::module_& m);
void register_rmsprop(py::module_& m);
void register_adam(py::module_& m);
}  // namespace fusedoptim::bind

PYBIND11_MODULE(_core, m) {
    m.doc() = "fusedoptim's C++ kernels. Private: use fusedoptim.functional or the optimizer classes.";
    using namespace fusedoptim::bind;
    register_info(m);
    register_prepared_step(m);
    register_sgd(m);
    register_adagrad(m);
    register_rmsprop(m);
    register_adam(m);
}
