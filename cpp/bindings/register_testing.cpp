// Test-only functions (leading underscore, not API): the partitioning of parallel.hpp, run on tensors that have
// sizes and addresses but no memory, so tests/test_partition.py can check sizes beyond 2^31 elements without
// allocating them. They call the kernels' own plan_threads, split_point (through for_each_segment) and
// reduce_blocks; only the bodies differ: they record which thread got which piece instead of touching it.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "fusedoptim/parallel.hpp"
#include "settings.hpp"

namespace fusedoptim::bind {

namespace py = pybind11;

namespace {

// for_each_segment and reduce_blocks take an instruction-set tag; this file's own keeps its instantiations
// apart from the kernels' per-ISA copies (see common.hpp).
struct TestingIsa {};
struct NoCoeffs {};
struct NoOptions {};

// Where the fake tensors start: line-aligned, far from address 0, with room for 2^40 bytes above it.
constexpr uintptr_t kFakeBase = uintptr_t{1} << 32;

int calling_thread() {
#if defined(_OPENMP)
    return omp_get_thread_num();
#else
    return 0;
#endif
}

void check_arguments(const std::vector<int64_t>& sizes, int num_threads, int64_t grain) {
    if (num_threads < 1) throw py::value_error("Invalid number of threads: " + std::to_string(num_threads));
    if (grain < 1) throw py::value_error("Invalid parallel grain: " + std::to_string(grain));
    int64_t total = 0;
    for (const int64_t size : sizes) {
        // 2^40 elements in all keeps every fake address (kFakeBase + 8 bytes per element) far from overflow.
        if (size < 0 || size > (int64_t{1} << 40) - total) throw py::value_error("Invalid sizes");
        total += size;
    }
}

// Tensors of the given sizes laid out one after another from kFakeBase, tensor k starting misalign[k] elements
// past a cache line. The pointers are only used for address arithmetic (split_point's line alignment).
template <class T>
std::vector<py::list> partition(const std::vector<int64_t>& sizes, int num_threads, int64_t grain,
                                const std::vector<int64_t>& misalign) {
    const auto count = static_cast<int64_t>(sizes.size());
    std::vector<TensorRef<T>> tensors(sizes.size());
    std::vector<int64_t> offsets(sizes.size() + 1, 0);
    uintptr_t address = kFakeBase;
    for (int64_t k = 0; k < count; ++k) {
        const int64_t shift = misalign.empty() ? 0 : misalign[k];
        tensors[k] = TensorRef<T>{{reinterpret_cast<T*>(address + shift * sizeof(T))}, sizes[k]};
        offsets[k + 1] = offsets[k] + sizes[k];
        // The next tensor starts on the first line after this one (and its misalignment).
        const uintptr_t end = address + (shift + sizes[k]) * sizeof(T);
        address = (end + kCacheLineBytes - 1) / kCacheLineBytes * kCacheLineBytes;
    }
    const Batch<T, NoCoeffs, NoOptions> batch{tensors.data(), nullptr,     offsets.data(), count,
                                              NoOptions{},    num_threads, grain};
    const int threads = plan_threads(offsets[count], num_threads, grain);
    std::vector<std::vector<std::tuple<int64_t, int64_t, int64_t>>> segments(threads);
    for_each_segment<TestingIsa>(
        batch, [&](int64_t k, int64_t lo, int64_t hi) { segments[calling_thread()].emplace_back(k, lo, hi); });
    std::vector<py::list> out;
    for (const auto& mine : segments) out.push_back(py::cast(mine));
    return out;
}

}  // namespace

void register_testing(py::module_& m) {
    m.attr("_CACHE_LINE_BYTES") = kCacheLineBytes;
    m.attr("_REDUCE_BLOCK") = kReduceBlock;
    m.def("_set_fuse_mixed_precision", &set_fuse_mixed_precision, py::arg("fuse"),
          "Test and benchmark only. Off: mixed-precision steps gathered from now on stage every 16-bit layout "
          "instead of taking the fused bfloat16-state loop.");
    m.def("_get_fuse_mixed_precision", &fuse_mixed_precision);
    m.def("_set_prefetch", &set_prefetch_mixed_precision, py::arg("prefetch"),
          "Test and benchmark only: whether mixed-precision steps gathered from now on prefetch in software "
          "(settings.hpp; the default depends on the CPU).");
    m.def(
        "_partition",
        [](const std::vector<int64_t>& sizes, int num_threads, int64_t grain, int itemsize,
           const std::vector<int64_t>& misalign) {
            check_arguments(sizes, num_threads, grain);
            if (!misalign.empty() && misalign.size() != sizes.size()) {
                throw py::value_error("misalign needs one value per size");
            }
            for (const int64_t shift : misalign) {
                if (shift < 0 || shift * itemsize >= kCacheLineBytes) throw py::value_error("Invalid misalign");
            }
            if (itemsize == 4) return partition<float>(sizes, num_threads, grain, misalign);
            if (itemsize == 8) return partition<double>(sizes, num_threads, grain, misalign);
            throw py::value_error("Invalid itemsize: " + std::to_string(itemsize));
        },
        py::arg("sizes"), py::arg("num_threads"), py::arg("grain"), py::arg("itemsize"),
        py::arg("misalign") = std::vector<int64_t>{},
        "Test only. The (tensor, begin, end) segments for_each_segment gives each thread, in the order that "
        "thread visits them, for tensors of these sizes (tensor k starting misalign[k] elements past a cache "
        "line); one list per planned thread. No memory is touched.");
    m.def(
        "_reduce_blocks",
        [](const std::vector<int64_t>& sizes, int num_threads, int64_t grain) {
            check_arguments(sizes, num_threads, grain);
            const auto count = static_cast<int64_t>(sizes.size());
            std::vector<TensorRef<float>> tensors(sizes.size());
            std::vector<int64_t> offsets(sizes.size() + 1, 0);
            for (int64_t k = 0; k < count; ++k) {
                tensors[k] = TensorRef<float>{{nullptr}, sizes[k]};
                offsets[k + 1] = offsets[k] + sizes[k];
            }
            const Batch<float, NoCoeffs, NoOptions> batch{tensors.data(), nullptr,     offsets.data(), count,
                                                          NoOptions{},    num_threads, grain};
            const int threads = plan_threads(offsets[count], num_threads, grain);
            std::vector<std::vector<int64_t>> blocks(threads);
            std::vector<double> sums(sizes.size() > 0 ? sizes.size() : 1);
            // Each block's partial is its length; the per-tensor results are their sum in block order.
            reduce_blocks<TestingIsa, 1>(
                batch, sums.data(),
                [&](int64_t k, int64_t lo, int64_t hi, double* partial) {
                    auto& mine = blocks[calling_thread()];
                    mine.insert(mine.end(), {k, lo, hi});
                    partial[0] = static_cast<double>(hi - lo);
                },
                [](double acc, double partial) { return acc + partial; });
            py::list per_thread;
            for (const auto& mine : blocks) {
                py::array_t<int64_t> a({static_cast<py::ssize_t>(mine.size() / 3), py::ssize_t{3}});
                std::copy(mine.begin(), mine.end(), a.mutable_data());
                per_thread.append(a);
            }
            sums.resize(sizes.size());
            return py::make_tuple(per_thread, py::cast(sums));
        },
        py::arg("sizes"), py::arg("num_threads"), py::arg("grain"),
        "Test only. The blocks reduce_blocks gives each thread, as an int64 array of (tensor, begin, end) rows in "
        "the order that thread reduces them (one array per planned thread), and each tensor's reduction of the "
        "block lengths (its size). No memory is touched.");
}

}  // namespace fusedoptim::bind
