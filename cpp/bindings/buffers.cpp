#include "buffers.hpp"

#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>

namespace fusedoptim::bind {

namespace {

using npy = py::detail::npy_api;

// Positions in messages: the caller's labels (an optimizer passes global parameter indices) or list positions.
thread_local const std::vector<int64_t>* message_labels = nullptr;

std::string entry_name(const char* list, size_t index) {
    const int64_t shown = message_labels && index < message_labels->size() ? (*message_labels)[index]
                                                                            : static_cast<int64_t>(index);
    return std::string(list) + "[" + std::to_string(shown) + "]";
}

std::string type_name(py::handle obj) { return py::str(py::type::handle_of(obj).attr("__name__")); }

std::string describe_dtype(const py::array& a) { return py::str(a.dtype()); }

std::string describe_shape(const py::array& a) { return py::str(a.attr("shape")); }

enum class DType { f32, f64, other };

DType dtype_of(const py::array& a) {
    // Read from the descriptor directly (array_t<T>::check_ builds a dtype object per call): the type number
    // and a native byte order, so '>f4' is not taken for float32.
    const auto* descr = py::detail::array_descriptor_proxy(py::detail::array_proxy(a.ptr())->descr);
    const bool native_order = descr->byteorder == '=' || descr->byteorder == '|' ||
                              descr->byteorder == (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? '<' : '>');
    if (!native_order) return DType::other;
    if (descr->type_num == py::detail::npy_api::NPY_FLOAT_) return DType::f32;
    if (descr->type_num == py::detail::npy_api::NPY_DOUBLE_) return DType::f64;
    return DType::other;
}

py::sequence as_list(const BufferList& arg, size_t expected, bool is_params) {
    if (!py::isinstance<py::list>(arg.list) && !py::isinstance<py::tuple>(arg.list)) {
        throw py::type_error(std::string(arg.name) + " must be a list or tuple of numpy arrays, got " +
                             type_name(arg.list));
    }
    auto seq = py::reinterpret_borrow<py::sequence>(arg.list);
    if (!is_params) check_length(arg.name, seq.size(), expected);
    return seq;
}

std::string overlap_message(const Interval& a, const Interval& b) {
    return std::string(a.list) + "[" + std::to_string(a.label) + "] and " + b.list + "[" + std::to_string(b.label) +
           "]" +
           " share memory; every parameter and state buffer must be its own array, and a gradient must not "
           "share memory with any of them";
}

template <class T>
void append(TensorsOf<T>& part, const std::vector<py::object>& row, size_t position, int64_t size) {
    TensorRef<T> ref{};
    for (size_t j = 0; j < row.size(); ++j) {
        if (row[j]) ref.buf[j] = reinterpret_cast<T*>(py::detail::array_proxy(row[j].ptr())->data);
    }
    ref.size = size;
    part.tensors.push_back(ref);
    part.offsets.push_back(part.offsets.back() + size);
    part.positions.push_back(position);
}

// Sorts `written`; raises if two written buffers overlap, or a read-only one (a gradient) overlaps a written
// one. Gradients may share memory with each other.
void check_overlaps(std::vector<Interval>& written, const std::vector<Interval>& read) {
    std::sort(written.begin(), written.end(), [](const Interval& a, const Interval& b) { return a.begin < b.begin; });
    for (size_t k = 1; k < written.size(); ++k) {
        if (written[k].begin < written[k - 1].end) throw py::value_error(overlap_message(written[k - 1], written[k]));
    }
    for (const Interval& r : read) {
        auto it = std::upper_bound(written.begin(), written.end(), r.begin,
                                   [](uintptr_t address, const Interval& w) { return address < w.end; });
        if (it != written.end() && it->begin < r.end) throw py::value_error(overlap_message(*it, r));
    }
}

}  // namespace

void check_length(const char* name, size_t length, size_t count) {
    if (length != count) {
        throw py::value_error("Expected " + std::to_string(count) + " " + name + " (one per parameter), got " +
                              std::to_string(length));
    }
}

void check_steps(const std::vector<int64_t>& steps, size_t count) {
    check_length("steps", steps.size(), count);
    for (size_t i = 0; i < steps.size(); ++i) {
        if (steps[i] < 1) {
            throw py::value_error("Invalid step number: steps[" + std::to_string(i) + "] = " + std::to_string(steps[i]) +
                                  " (steps count from 1)");
        }
    }
}

Gathered gather(const std::vector<BufferList>& lists, const std::optional<std::vector<int64_t>>& labels) {
    struct LabelScope {
        explicit LabelScope(const std::vector<int64_t>* l) { message_labels = l; }
        ~LabelScope() { message_labels = nullptr; }
    } scope(labels ? &*labels : nullptr);
    if (lists.size() > static_cast<size_t>(kMaxBuffers)) throw std::logic_error("too many buffer lists");
    const auto params = as_list(lists[0], 0, true);
    const size_t count = params.size();
    std::vector<py::sequence> seqs;
    for (size_t l = 0; l < lists.size(); ++l) {
        if (!lists[l].used) {
            seqs.emplace_back();
        } else {
            seqs.push_back(l == 0 ? params : as_list(lists[l], count, false));
        }
    }

    Gathered out;
    out.count = count;
    std::vector<std::vector<py::object>> rows(count, std::vector<py::object>(lists.size()));
    std::vector<DType> dtypes(count);
    for (size_t i = 0; i < count; ++i) {
        for (size_t l = 0; l < lists.size(); ++l) {
            if (!seqs[l]) continue;
            const BufferList& arg = lists[l];
            py::object item = seqs[l][i];
            if (!py::isinstance<py::array>(item)) {
                throw py::type_error(entry_name(arg.name, i) + " must be a numpy.ndarray, got " + type_name(item));
            }
            auto a = py::reinterpret_borrow<py::array>(item);
            const DType dt = dtype_of(a);
            if (l == 0) {
                if (dt == DType::other) {
                    throw py::type_error(entry_name(arg.name, i) + " has dtype " + describe_dtype(a) +
                                         "; fusedoptim updates float32 and float64 arrays (native byte order)");
                }
                dtypes[i] = dt;
            } else {
                const auto p = py::reinterpret_borrow<py::array>(rows[i][0]);
                if (dt != dtypes[i]) {
                    throw py::type_error(entry_name(arg.name, i) + " has dtype " + describe_dtype(a) + " but " +
                                         entry_name(lists[0].name, i) + " has dtype " + describe_dtype(p));
                }
                if (a.ndim() != p.ndim() || !std::equal(a.shape(), a.shape() + a.ndim(), p.shape())) {
                    throw py::value_error(entry_name(arg.name, i) + " has shape " + describe_shape(a) + " but " +
                                          entry_name(lists[0].name, i) + " has shape " + describe_shape(p));
                }
            }
            const int flags = py::detail::array_proxy(a.ptr())->flags;
            if (!(flags & npy::NPY_ARRAY_C_CONTIGUOUS_)) {
                throw py::value_error(entry_name(arg.name, i) + " is not C-contiguous (strides " +
                                      std::string(py::str(a.attr("strides"))) +
                                      "); fusedoptim updates arrays in place and never copies them");
            }
            if (!(flags & npy::NPY_ARRAY_ALIGNED_)) {
                throw py::value_error(entry_name(arg.name, i) + " is not aligned to its dtype's size");
            }
            if (arg.written && !(flags & npy::NPY_ARRAY_WRITEABLE_)) {
                throw py::value_error(entry_name(arg.name, i) + " is read-only; fusedoptim updates it in place");
            }
            if (a.size() > 0) {
                const auto begin = reinterpret_cast<uintptr_t>(a.data());
                const int64_t label = labels && i < labels->size() ? (*labels)[i] : static_cast<int64_t>(i);
                const Interval interval{begin, begin + static_cast<uintptr_t>(a.nbytes()), arg.name, label};
                (arg.written ? out.written : out.read).push_back(interval);
                if (arg.written) out.written_arrays.emplace_back(a, interval);
            }
            rows[i][l] = std::move(a);
        }
    }

    check_overlaps(out.written, out.read);

    for (size_t i = 0; i < count; ++i) {
        const int64_t size = static_cast<int64_t>(py::reinterpret_borrow<py::array>(rows[i][0]).size());
        for (const py::object& a : rows[i]) {
            if (a) out.arrays.push_back(a);
        }
        if (size == 0) continue;
        if (dtypes[i] == DType::f32) {
            append(out.f32, rows[i], i, size);
        } else {
            append(out.f64, rows[i], i, size);
        }
    }
    return out;
}

void PreparedStep::run_all(const std::vector<PreparedStep*>& steps) {
    for (const PreparedStep* step : steps) {
        if (step->done_) throw std::runtime_error("This prepared step has already run");
    }
    if (steps.size() > 1) {
        std::vector<Interval> written, read;
        for (const PreparedStep* step : steps) {
            written.insert(written.end(), step->written_.begin(), step->written_.end());
            read.insert(read.end(), step->read_.begin(), step->read_.end());
        }
        check_overlaps(written, read);
    }
    // Python code may have run since the steps were prepared (an optimizer prepares one group after another):
    // an array made read-only meanwhile must not be written.
    for (const PreparedStep* step : steps) {
        for (const auto& [array, where] : step->written_arrays_) {
            if (!(py::detail::array_proxy(array.ptr())->flags & npy::NPY_ARRAY_WRITEABLE_)) {
                throw py::value_error(std::string(where.list) + "[" + std::to_string(where.label) +
                                      "] became read-only before the step ran; nothing was written");
            }
        }
    }
    for (PreparedStep* step : steps) step->done_ = true;
    py::gil_scoped_release release;
    for (PreparedStep* step : steps) step->run_();
}

void register_prepared_step(py::module_& m) {
    py::class_<PreparedStep>(m, "PreparedStep",
                             "A validated kernel call; run() applies it once, in place, without the GIL.")
        .def("run", [](PreparedStep& step) { PreparedStep::run_all({&step}); });
    m.def(
        "run_steps", &PreparedStep::run_all,
        py::arg("steps"), "Runs prepared steps in order (an optimizer prepares all its groups, then runs them).");
}

}  // namespace fusedoptim::bind
