// The 16-bit conversions of the active SIMD level, for tests (mixed precision, convert.hpp).
#include <string>

#include "buffers.hpp"

namespace fusedoptim::bind {

namespace {

Storage storage_named(const std::string& kind) {
    if (kind == "float16") return Storage::f16;
    if (kind == "bfloat16") return Storage::bf16;
    throw py::value_error("Invalid kind: '" + kind + "' (expected 'float16' or 'bfloat16')");
}

}  // namespace

void register_precision(py::module_& m) {
    m.def(
        "to_float32",
        [](py::array_t<uint16_t, py::array::c_style> bits, const std::string& kind) {
            const Storage storage = storage_named(kind);
            py::array_t<float> out(bits.size());
            active_kernels().to_float(storage, bits.data(), out.mutable_data(), bits.size());
            return out;
        },
        py::arg("bits"), py::arg("kind"),
        "float32 values of 16-bit patterns (uint16, C-contiguous) of `kind` 'float16' or 'bfloat16'.");
    m.def(
        "from_float32",
        [](py::array_t<float, py::array::c_style> values, const std::string& kind) {
            const Storage storage = storage_named(kind);
            py::array_t<uint16_t> out(values.size());
            active_kernels().from_float(storage, values.data(), out.mutable_data(), values.size());
            return out;
        },
        py::arg("values"), py::arg("kind"),
        "The 16-bit patterns (uint16) of float32 `values` rounded to `kind` 'float16' or 'bfloat16'.");
    m.def(
        "from_float32_stochastic",
        [](py::array_t<float, py::array::c_style> values, uint32_t key, int64_t first) {
            py::array_t<uint16_t> out(values.size());
            active_kernels().to_bf16_stochastic(values.data(), out.mutable_data(), first, values.size(), key);
            return out;
        },
        py::arg("values"), py::arg("key"), py::arg("first") = 0,
        "The bfloat16 patterns (uint16) of float32 `values` stochastically rounded with `key`, as elements first, "
        "first + 1, ... of a buffer.");
    m.def(
        "stochastic_key",
        [](uint64_t seed, int64_t index, int64_t step, int slot) { return stochastic_key(seed, index, step, slot); },
        py::arg("seed"), py::arg("index"), py::arg("step"), py::arg("slot"),
        "The key of buffer `slot` of parameter `index` at step `step` (convert.hpp).");
}

}  // namespace fusedoptim::bind
