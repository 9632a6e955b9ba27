#include "buffers.hpp"
#include "settings.hpp"

#include <pybind11/stl.h>
#include <pybind11/typing.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>

namespace fusedoptim::bind {

namespace {

using npy = py::detail::npy_api;

// Positions in messages: the caller's labels (an optimizer passes global parameter indices) or list positions.
thread_local const std::vector<int64_t>* message_labels = nullptr;

std::string entry_name(const char* list, size_t index) {
    const int64_t shown =
        message_labels && index < message_labels->size() ? (*message_labels)[index] : static_cast<int64_t>(index);
    return std::string(list) + "[" + std::to_string(shown) + "]";
}

std::string type_name(py::handle obj) { return py::str(py::type::handle_of(obj).attr("__name__")); }

std::string describe_dtype(const py::array& a) { return py::str(a.dtype()); }

std::string describe_shape(const py::array& a) { return py::str(a.attr("shape")); }

enum class DType { f32, f64, f16, bf16, other };

bool is_16bit(DType dt) { return dt == DType::f16 || dt == DType::bf16; }

Storage storage_of(DType dt) {
    return dt == DType::f16 ? Storage::f16 : dt == DType::bf16 ? Storage::bf16 : Storage::native;
}

DType dtype_of(const py::array& a) {
    // Read from the descriptor directly (array_t<T>::check_ builds a dtype object per call): the type number
    // and a native byte order, so '>f4' is not taken for float32.
    const auto* descr = py::detail::array_descriptor_proxy(py::detail::array_proxy(a.ptr())->descr);
    const bool native_order = descr->byteorder == '=' || descr->byteorder == '|' ||
                              descr->byteorder == (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? '<' : '>');
    if (!native_order) return DType::other;
    if (descr->type_num == py::detail::npy_api::NPY_FLOAT_) return DType::f32;
    if (descr->type_num == py::detail::npy_api::NPY_DOUBLE_) return DType::f64;
    if (descr->type_num == 23) return DType::f16;  // NPY_HALF
    // ml_dtypes' bfloat16 is a user-defined type (its number depends on registration order): checked by name
    // once, then by the number (fixed for the process; naming the dtype costs microseconds per array).
    static std::atomic<int> bfloat16_type_num{-1};
    if (descr->type_num < 256) return DType::other;
    if (descr->type_num == bfloat16_type_num.load(std::memory_order_relaxed)) return DType::bf16;
    if (std::string(py::str(a.dtype())) == "bfloat16") {
        bfloat16_type_num.store(descr->type_num, std::memory_order_relaxed);
        return DType::bf16;
    }
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

bool is_masked(py::handle item) {
    if (Py_TYPE(item.ptr()) == reinterpret_cast<PyTypeObject*>(npy::get().PyArray_Type_)) return false;
    // numpy.ma is imported with numpy; the type is looked up once and kept for the life of the process.
    static PyObject* const masked = py::object(py::module_::import("numpy.ma").attr("MaskedArray")).release().ptr();
    const int result = PyObject_IsInstance(item.ptr(), masked);
    if (result < 0) throw py::error_already_set();
    return result == 1;
}

// Checks entry i of list `list`: an ndarray, C-contiguous, aligned, writeable if `written`; a parameter
// (`param` null) of float32/float64 (or, with `low_ok`, float16/bfloat16: the norms' read-only list); anything
// else of the parameter's dtype (`param_dtype`) and shape, or, with `low_ok` and a float32 parameter, float16
// or bfloat16 storage (mixed-precision state). Returns its dtype.
DType check_entry(const char* list, bool written, size_t i, py::handle item, const py::array* param, DType param_dtype,
                  const char* param_list, bool low_ok = false) {
    if (!py::isinstance<py::array>(item)) {
        throw py::type_error(entry_name(list, i) + " must be a numpy.ndarray, got " + type_name(item));
    }
    if (is_masked(item)) {
        // The kernels would read (or update) masked elements too: refuse rather than ignore the mask silently.
        throw py::type_error(entry_name(list, i) +
                             " is a masked array; pass its data (.data, or .filled(0) for a "
                             "gradient) if every element should be used");
    }
    const auto a = py::reinterpret_borrow<py::array>(item);
    const DType dt = dtype_of(a);
    if (param == nullptr) {
        if (dt == DType::other) {
            throw py::type_error(entry_name(list, i) + " has dtype " + describe_dtype(a) +
                                 "; fusedoptim updates float32 and float64 arrays (native byte order)");
        }
        if (is_16bit(dt) && !low_ok) {
            // The optimizer classes keep float32 masters for these; a kernel would read them as float64.
            throw py::type_error(
                entry_name(list, i) + " has dtype " + describe_dtype(a) +
                "; fusedoptim's functional kernels and clipping take float32 and float64 arrays "
                "(for float16 or bfloat16 parameters use the optimizer classes, which keep float32 master weights)");
        }
    } else {
        if (dt != param_dtype && !(low_ok && param_dtype == DType::f32 && is_16bit(dt))) {
            throw py::type_error(entry_name(list, i) + " has dtype " + describe_dtype(a) + " but " +
                                 entry_name(param_list, i) + " has dtype " + describe_dtype(*param));
        }
        if (a.ndim() != param->ndim() || !std::equal(a.shape(), a.shape() + a.ndim(), param->shape())) {
            throw py::value_error(entry_name(list, i) + " has shape " + describe_shape(a) + " but " +
                                  entry_name(param_list, i) + " has shape " + describe_shape(*param));
        }
    }
    const int flags = py::detail::array_proxy(a.ptr())->flags;
    if (!(flags & npy::NPY_ARRAY_C_CONTIGUOUS_)) {
        throw py::value_error(entry_name(list, i) + " is not C-contiguous (strides " +
                              std::string(py::str(a.attr("strides"))) +
                              "); fusedoptim updates arrays in place and never copies them");
    }
    if (!(flags & npy::NPY_ARRAY_ALIGNED_)) {
        throw py::value_error(entry_name(list, i) + " is not aligned to its dtype's size");
    }
    if (written && !(flags & npy::NPY_ARRAY_WRITEABLE_)) {
        throw py::value_error(entry_name(list, i) + " is read-only; fusedoptim updates it in place");
    }
    return dt;
}

// Raises if the read-only buffer `r` overlaps one of `written` (sorted by begin, non-overlapping).
void check_read_overlap(const std::vector<Interval>& written, const Interval& r) {
    auto it = std::upper_bound(written.begin(), written.end(), r.begin,
                               [](uintptr_t address, const Interval& w) { return address < w.end; });
    if (it != written.end() && it->begin < r.end) throw py::value_error(overlap_message(*it, r));
}

// A row's mixed-precision storage: each slot's format, the 16-bit parameter written after the update, and the
// gradient's scale.
struct RowPrecision {
    std::vector<DType> kinds;
    py::object model;
    DType model_kind = DType::other;
    double grad_scale = 1.0;
    bool staged = false;
    bool stochastic = false;
    int64_t round_index = 0;
};

template <class T>
void append(TensorsOf<T>& part, const std::vector<py::object>& row, size_t position, int64_t size,
            const RowPrecision& precision) {
    TensorRef<T> ref{};
    for (size_t j = 0; j < row.size(); ++j) {
        if (!row[j]) continue;
        char* data = py::detail::array_proxy(row[j].ptr())->data;
        if (is_16bit(precision.kinds[j])) {
            ref.low[j] = data;
            ref.kind[j] = storage_of(precision.kinds[j]);
        } else {
            ref.buf[j] = reinterpret_cast<T*>(data);
        }
    }
    if (precision.model) {
        ref.model = py::detail::array_proxy(precision.model.ptr())->data;
        ref.model_kind = storage_of(precision.model_kind);
    }
    ref.grad_scale = static_cast<T>(precision.grad_scale);
    ref.staged = precision.staged;
    ref.stochastic = std::is_same_v<T, float> && precision.stochastic;  // only float32 tensors are staged
    ref.fuse = fuse_mixed_precision();
    ref.prefetch = prefetch_mixed_precision();
    ref.size = size;
    part.tensors.push_back(ref);
    part.offsets.push_back(part.offsets.back() + size);
    part.positions.push_back(position);
    part.round_indices.push_back(precision.round_index);
}

// Sorts `written`; raises if two written buffers overlap, or a read-only one (a gradient) overlaps a written
// one. Gradients may share memory with each other.
void check_overlaps(std::vector<Interval>& written, const std::vector<Interval>& read) {
    std::sort(written.begin(), written.end(), [](const Interval& a, const Interval& b) { return a.begin < b.begin; });
    for (size_t k = 1; k < written.size(); ++k) {
        if (written[k].begin < written[k - 1].end) throw py::value_error(overlap_message(written[k - 1], written[k]));
    }
    for (const Interval& r : read) check_read_overlap(written, r);
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
            throw py::value_error("Invalid step number: steps[" + std::to_string(i) +
                                  "] = " + std::to_string(steps[i]) + " (steps count from 1)");
        }
    }
}

Gathered gather(const std::vector<BufferList>& lists, const std::optional<std::vector<int64_t>>& labels,
                const std::optional<Precision>& precision) {
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

    const bool mixed = precision.has_value();
    py::sequence models;
    double grad_scale = 1.0;
    Gathered out;
    out.count = count;
    if (mixed) {
        grad_scale = precision->grad_scale;
        if (!precision->models.is_none()) {
            models = as_list(BufferList{"model_params", precision->models, true}, count, false);
        }
        if (precision->rounding_seed) {
            out.round_steps = precision->rounding_steps;
            check_steps(out.round_steps, count);
            out.f32.round_seed = out.f64.round_seed = *precision->rounding_seed;
        }
    }

    std::vector<std::vector<py::object>> rows(count, std::vector<py::object>(lists.size()));
    std::vector<RowPrecision> row_precision(count);
    std::vector<DType> dtypes(count);
    for (size_t i = 0; i < count; ++i) {
        RowPrecision& rp = row_precision[i];
        rp.kinds.assign(lists.size(), DType::other);
        for (size_t l = 0; l < lists.size(); ++l) {
            if (!seqs[l]) continue;
            const BufferList& arg = lists[l];
            py::object item = seqs[l][i];
            py::array param_array;
            if (l > 0) param_array = py::reinterpret_borrow<py::array>(rows[i][0]);
            const py::array* param = l == 0 ? nullptr : &param_array;
            DType dt;
            if (l == 1 && models && !models[i].is_none()) {
                // The gradient has the 16-bit parameter's dtype and shape (checked against it, by its name).
                py::object model = models[i];
                const DType model_dt =
                    check_entry("params", true, i, model, &param_array, dtypes[i], "master_params", true);
                if (!is_16bit(model_dt)) {
                    throw py::type_error(entry_name("params", i) + " has dtype " +
                                         describe_dtype(py::reinterpret_borrow<py::array>(model)) +
                                         "; mixed precision updates float16 or bfloat16 parameters");
                }
                const auto model_array = py::reinterpret_borrow<py::array>(model);
                dt = check_entry(arg.name, arg.written, i, item, &model_array, model_dt, "params");
                rp.model = model;
                rp.model_kind = model_dt;
                if (model_array.size() > 0) {
                    const auto begin = reinterpret_cast<uintptr_t>(model_array.data());
                    const int64_t label = labels && i < labels->size() ? (*labels)[i] : static_cast<int64_t>(i);
                    const Interval interval{begin, begin + static_cast<uintptr_t>(model_array.nbytes()), "params",
                                            label};
                    out.written.push_back(interval);
                    out.written_arrays.emplace_back(model_array, interval);
                }
                out.arrays.push_back(model);
            } else {
                dt =
                    check_entry(arg.name, arg.written, i, item, param, l == 0 ? DType::other : dtypes[i], lists[0].name,
                                l == 0 ? arg.low_ok && !arg.written && lists.size() == 1 : mixed && l >= 2);
            }
            if (l == 0) dtypes[i] = dt;
            rp.kinds[l] = dt;
            auto a = py::reinterpret_borrow<py::array>(item);
            if (a.size() > 0) {
                const auto begin = reinterpret_cast<uintptr_t>(a.data());
                const int64_t label = labels && i < labels->size() ? (*labels)[i] : static_cast<int64_t>(i);
                const Interval interval{begin, begin + static_cast<uintptr_t>(a.nbytes()), arg.name, label};
                (arg.written ? out.written : out.read).push_back(interval);
                if (arg.written) out.written_arrays.emplace_back(a, interval);
            }
            if (l != 1) out.pinned.push_back(a);
            rows[i][l] = std::move(a);
        }
        if (rp.model) out.pinned.push_back(rp.model);
        if (mixed) {
            rp.grad_scale = grad_scale;
            rp.staged = true;
            rp.stochastic = !out.round_steps.empty();
            rp.round_index = labels && i < labels->size() ? (*labels)[i] : static_cast<int64_t>(i);
        }
    }

    check_overlaps(out.written, out.read);

    out.params.reserve(count);
    out.members.reserve(count);
    out.labels.reserve(count);
    for (size_t i = 0; i < count; ++i) {
        out.params.push_back(py::reinterpret_borrow<py::array>(rows[i][0]));
        out.members.push_back(
            py::reinterpret_borrow<py::array>(row_precision[i].model ? row_precision[i].model : rows[i][0]));
        out.labels.push_back(labels && i < labels->size() ? (*labels)[i] : static_cast<int64_t>(i));
        const int64_t size = static_cast<int64_t>(py::reinterpret_borrow<py::array>(rows[i][0]).size());
        for (const py::object& a : rows[i]) {
            if (a) out.arrays.push_back(a);
        }
        if (size == 0) continue;
        if (dtypes[i] == DType::f32 || is_16bit(dtypes[i])) {
            append(out.f32, rows[i], i, size, row_precision[i]);
        } else {
            append(out.f64, rows[i], i, size, row_precision[i]);
        }
    }
    return out;
}

namespace {
constexpr int kPinnedFlags = npy::NPY_ARRAY_C_CONTIGUOUS_ | npy::NPY_ARRAY_ALIGNED_ | npy::NPY_ARRAY_WRITEABLE_;
}  // namespace

Pinned::Pinned(const std::vector<py::object>& arrays) : arrays_(arrays) {
    for (const py::object& array : arrays_) {
        const auto* proxy = py::detail::array_proxy(array.ptr());
        facts_.push_back(reinterpret_cast<Py_intptr_t>(proxy->data));
        facts_.push_back(reinterpret_cast<Py_intptr_t>(proxy->descr));
        facts_.push_back(proxy->flags & kPinnedFlags);
        facts_.push_back(proxy->nd);
        facts_.insert(facts_.end(), proxy->dimensions, proxy->dimensions + proxy->nd);
        facts_.insert(facts_.end(), proxy->strides, proxy->strides + proxy->nd);
    }
}

bool Pinned::unchanged() const {
    const Py_intptr_t* f = facts_.data();
    for (const py::object& array : arrays_) {
        const auto* proxy = py::detail::array_proxy(array.ptr());
        const int nd = proxy->nd;
        if (f[0] != reinterpret_cast<Py_intptr_t>(proxy->data) || f[1] != reinterpret_cast<Py_intptr_t>(proxy->descr) ||
            f[2] != (proxy->flags & kPinnedFlags) || f[3] != nd) {
            return false;
        }
        f += 4;
        for (int k = 0; k < nd; ++k) {
            if (f[k] != proxy->dimensions[k] || f[nd + k] != proxy->strides[k]) return false;
        }
        f += 2 * nd;
    }
    return true;
}

constexpr const char* kBecameReadOnly = "became read-only before the step ran; nothing was written";

void PreparedStep::check_unchanged() const {
    check_still_writeable(kBecameReadOnly);  // the specific message first, for the likeliest change
    if (!pinned_unchanged()) {
        throw py::value_error(
            "a parameter or state array was changed (resized, reshaped, retyped, or its flags) after the step "
            "checked it; nothing was written");
    }
}

void PreparedStep::check_still_writeable(const char* problem) const {
    for (const auto& [array, where] : written_arrays_) {
        if (!(py::detail::array_proxy(array.ptr())->flags & npy::NPY_ARRAY_WRITEABLE_)) {
            throw py::value_error(std::string(where.list) + "[" + std::to_string(where.label) + "] " + problem);
        }
    }
}

namespace {

// run_all's `writes`, checked before anything runs: a list of (dict, key, value), each dict exactly a dict (a
// subclass could run Python code as it is written to).
std::vector<PyObject*> checked_writes(py::handle writes) {
    std::vector<PyObject*> items;
    if (writes.is_none()) return items;
    if (!PyList_CheckExact(writes.ptr())) throw py::type_error("writes must be a list of (dict, key, value)");
    const Py_ssize_t n = PyList_GET_SIZE(writes.ptr());
    items.reserve(static_cast<size_t>(n));
    for (Py_ssize_t k = 0; k < n; ++k) {
        PyObject* const item = PyList_GET_ITEM(writes.ptr(), k);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 3 || !PyDict_CheckExact(PyTuple_GET_ITEM(item, 0))) {
            throw py::type_error("writes must be a list of (dict, key, value)");
        }
        PyObject* const key = PyTuple_GET_ITEM(item, 1);
        if (!PyLong_CheckExact(key) && !PyUnicode_CheckExact(key)) {
            throw py::type_error("writes' keys must be ints or strs");  // hashing them runs no Python code
        }
        items.push_back(item);
    }
    return items;
}

void apply_writes(const std::vector<PyObject*>& items) {
    for (PyObject* item : items) {
        if (PyDict_SetItem(PyTuple_GET_ITEM(item, 0), PyTuple_GET_ITEM(item, 1), PyTuple_GET_ITEM(item, 2)) != 0) {
            throw py::error_already_set();  // out of memory only
        }
    }
}

}  // namespace

void PreparedStep::run_all(const std::vector<PreparedStep*>& steps, PreparedStep* before, py::handle writes) {
    for (const PreparedStep* step : steps) {
        if (step->done_) throw std::runtime_error("This prepared step has already run");
    }
    if (before != nullptr && (before->done_ || std::find(steps.begin(), steps.end(), before) != steps.end())) {
        throw std::runtime_error("This prepared step has already run");
    }
    const std::vector<PyObject*> items = checked_writes(writes);
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
    for (const PreparedStep* step : steps) step->check_unchanged();
    if (before != nullptr) before->check_unchanged();
    if (before != nullptr) before->done_ = true;
    for (PreparedStep* step : steps) step->done_ = true;
    {
        py::gil_scoped_release release;
        if (before != nullptr) before->run_parts();
        for (PreparedStep* step : steps) step->run_parts();
    }
    apply_writes(items);
}

StepPlan::StepPlan(const std::vector<py::object>& steps, std::vector<GroupSnapshot> groups,
                   const std::vector<py::dict>& states, std::vector<py::dict> counters)
    : groups_(std::move(groups)), counters_(std::move(counters)) {
    for (const py::dict& state : states) {
        StateSnapshot entry{state, {}};
        for (const auto& [key, value] : state) {
            if (py::isinstance<py::array>(value)) {
                entry.arrays.emplace_back(py::reinterpret_borrow<py::object>(key),
                                          py::reinterpret_borrow<py::object>(value));
            }
        }
        if (!entry.arrays.empty()) entries_.push_back(std::move(entry));
    }
    for (const py::object& object : steps) {
        auto* step = object.cast<PreparedStep*>();
        owners_.push_back(object);
        steps_.push_back(step);
        written_.insert(written_.end(), step->written_.begin(), step->written_.end());
    }
    check_overlaps(written_, {});
    // The steps must be the non-empty groups' arrays, in order: a plan that disagreed would update others.
    size_t s = 0;
    for (const GroupSnapshot& group : groups_) {
        const py::tuple& members = group.members;
        if (members.empty()) continue;
        if (s == steps_.size() || steps_[s]->members_.size() != members.size()) {
            throw py::value_error("StepPlan: the prepared steps do not match the groups");
        }
        for (size_t i = 0; i < members.size(); ++i) {
            if (members[i].ptr() != steps_[s]->members_[i].ptr()) {
                throw py::value_error("StepPlan: the prepared steps do not match the groups");
            }
        }
        starts_.push_back(count_);
        count_ += members.size();
        ++s;
    }
    if (s != steps_.size()) throw py::value_error("StepPlan: the prepared steps do not match the groups");
    const bool counts = !steps_.empty() && steps_[0]->counts_steps_;
    if (counts && counters_.size() != count_) throw py::value_error("StepPlan: one step counter per parameter");
    for (const PreparedStep* step : steps_) {
        // Without counters every re-run would draw the same random bits.
        if (step->stochastic_ && counters_.size() != count_) {
            throw py::value_error("StepPlan: stochastic rounding needs one step counter per parameter");
        }
    }
    step_numbers_.resize(count_);
}

bool StepPlan::unchanged(py::handle param_groups, py::handle grads) const {
    if (!PyList_CheckExact(grads.ptr()) || static_cast<size_t>(PyList_GET_SIZE(grads.ptr())) != count_) return false;
    PyObject* const list = param_groups.ptr();
    if (!PyList_CheckExact(list) || PyList_GET_SIZE(list) != static_cast<Py_ssize_t>(groups_.size())) return false;
    for (size_t g = 0; g < groups_.size(); ++g) {
        const GroupSnapshot& known = groups_[g];
        PyObject* const group = known.group.ptr();
        if (PyList_GET_ITEM(list, g) != group || !PyDict_CheckExact(group)) return false;
        PyObject* const params = known.params.ptr();
        PyObject* const members = known.members.ptr();
        PyObject* const values = known.values.ptr();
        if (PyDict_GetItem(group, params_key_.ptr()) != params || !PyList_CheckExact(params)) return false;
        const Py_ssize_t n = PyTuple_GET_SIZE(members);
        if (PyList_GET_SIZE(params) != n) return false;
        for (Py_ssize_t i = 0; i < n; ++i) {
            if (PyList_GET_ITEM(params, i) != PyTuple_GET_ITEM(members, i)) return false;
        }
        if (PyDict_Size(group) != PyTuple_GET_SIZE(values)) return false;
        Py_ssize_t position = 0, k = 0;
        PyObject *key, *value;
        while (PyDict_Next(group, &position, &key, &value)) {
            if (value != PyTuple_GET_ITEM(values, k++)) return false;
        }
    }
    for (const PreparedStep* step : steps_) {
        if (!step->pinned_unchanged()) return false;  // the full step re-validates (and refuses) what changed
    }
    for (const StateSnapshot& entry : entries_) {
        PyObject* const state = entry.state.ptr();
        for (const auto& [key, array] : entry.arrays) {
            if (PyDict_GetItem(state, key.ptr()) != array.ptr()) return false;
        }
    }
    return true;
}

void check_grad_scale(double grad_scale) {
    if (!(grad_scale >= 0.0) || !std::isfinite(grad_scale)) {
        throw py::value_error("Invalid grad_scale: " + std::string(py::repr(py::float_(grad_scale))));
    }
}

bool StepPlan::bind(py::handle param_groups, py::handle grads, double grad_scale) {
    bound_ = false;
    bound_grads_.clear();
    check_grad_scale(grad_scale);
    if (!unchanged(param_groups, grads)) return false;
    for (size_t i = 0; i < counters_.size(); ++i) {
        PyObject* const step = PyDict_GetItem(counters_[i].ptr(), step_key_.ptr());
        if (step == nullptr || !PyLong_CheckExact(step)) return false;  // the full step deals with it
        const long long value = PyLong_AsLongLong(step);
        if (value == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return false;
        }
        step_numbers_[i] = static_cast<int64_t>(value) + 1;
    }
    // A carried scalar edited in Python since the last step: the full step reads the new value.
    for (size_t s = 0; s < steps_.size() && counters_.size() == count_; ++s) {
        for (const CarriedScalar& carried : steps_[s]->carried_) {
            for (size_t i = 0; i < carried.values->size(); ++i) {
                PyObject* const held = PyDict_GetItem(counters_[starts_[s] + i].ptr(), carried.key.ptr());
                if (held == nullptr || !PyFloat_CheckExact(held) || PyFloat_AS_DOUBLE(held) != (*carried.values)[i]) {
                    return false;
                }
            }
        }
    }
    PyObject* const list = grads.ptr();
    for (size_t i = 0; i < count_; ++i) {
        if (PyList_GET_ITEM(list, i) == Py_None) return false;
    }
    for (size_t s = 0; s < steps_.size(); ++s) {
        PreparedStep& step = *steps_[s];
        struct LabelScope {
            explicit LabelScope(const std::vector<int64_t>* l) { message_labels = l; }
            ~LabelScope() { message_labels = nullptr; }
        } scope(&step.labels_);
        for (size_t i = 0; i < step.params_.size(); ++i) {
            py::object item = py::reinterpret_borrow<py::object>(PyList_GET_ITEM(list, starts_[s] + i));
            const py::array& param = step.members_[i];  // a 16-bit parameter's gradient is 16-bit too
            check_entry("grads", false, i, item, &param, dtype_of(param), "params");
            const PreparedStep::Slot slot = step.slots_[i];
            if (slot.part >= 0) {
                char* data = py::detail::array_proxy(item.ptr())->data;
                const auto begin = reinterpret_cast<uintptr_t>(data);
                const auto nbytes = static_cast<uintptr_t>(py::reinterpret_borrow<py::array>(item).nbytes());
                check_read_overlap(written_, Interval{begin, begin + nbytes, "grads", step.labels_[i]});
                step.parts_[slot.part]->set_grad(slot.index, data);
            }
            bound_grads_.push_back(std::move(item));
        }
        for (size_t i = 0; step.counts_steps_ && i < step.params_.size(); ++i) {
            const int64_t number = step_numbers_[starts_[s] + i];
            if (number < 1) {
                throw py::value_error("Invalid step number: steps[" + std::to_string(step.labels_[i]) +
                                      "] = " + std::to_string(number) + " (steps count from 1)");
            }
        }
        const StepNumbers numbers{step.counts_steps_ ? step_numbers_.data() + starts_[s] : nullptr, true};
        for (const auto& part : step.parts_) {
            part->recompute(numbers);
            part->set_grad_scale(grad_scale);
        }
        if (step.stochastic_) {
            for (const auto& part : step.parts_) part->set_rounding_steps(step_numbers_.data() + starts_[s]);
        }
    }
    bound_ = true;
    return true;
}

void StepPlan::run(PreparedStep* before, bool recheck) {
    if (!bound_) throw std::runtime_error("StepPlan.run() needs a successful bind() first");
    if (before != nullptr && before->done_) throw std::runtime_error("This prepared step has already run");
    if (recheck) {
        for (const PreparedStep* step : steps_) step->check_unchanged();
    }
    if (before != nullptr) {
        before->check_unchanged();
        before->done_ = true;
    }
    bound_ = false;
    {
        py::gil_scoped_release release;
        if (before != nullptr) before->run_parts();
        for (const PreparedStep* step : steps_) step->run_parts();
    }
    bound_grads_.clear();
    for (size_t i = 0; i < counters_.size(); ++i) {
        const py::int_ number(step_numbers_[i]);
        if (PyDict_SetItem(counters_[i].ptr(), step_key_.ptr(), number.ptr()) != 0) {
            throw py::error_already_set();
        }
    }
    for (size_t s = 0; s < steps_.size() && counters_.size() == count_; ++s) {
        // All the new values first (a family's next() may read its other scalars' current values), then stored.
        for (CarriedScalar& carried : steps_[s]->carried_) {
            for (size_t i = 0; i < carried.values->size(); ++i) {
                carried.pending[i] = carried.next(i, step_numbers_[starts_[s] + i]);
            }
        }
        for (CarriedScalar& carried : steps_[s]->carried_) {
            std::vector<double>& values = *carried.values;
            for (size_t i = 0; i < values.size(); ++i) {
                values[i] = carried.pending[i];
                const py::float_ value(values[i]);
                if (PyDict_SetItem(counters_[starts_[s] + i].ptr(), carried.key.ptr(), value.ptr()) != 0) {
                    throw py::error_already_set();
                }
            }
        }
    }
}

void register_prepared_step(py::module_& m) {
    py::class_<PreparedStep>(m, "PreparedStep",
                             "A validated kernel call; run() applies it once, in place, without the GIL.")
        .def("run", [](PreparedStep& step) { PreparedStep::run_all({&step}); });
    m.def(
        "run_steps",
        [](const std::vector<PreparedStep*>& steps, py::typing::Optional<PreparedStep> before,
           py::typing::Optional<py::list> writes) {
            PreparedStep::run_all(steps, before.is_none() ? nullptr : before.cast<PreparedStep*>(), writes);
        },
        py::arg("steps"), py::arg("before") = py::none(), py::arg("writes") = py::none(),
        "Runs prepared steps in order (an optimizer prepares all its groups, then runs them): first `before` "
        "(gradient clipping), then the steps, then stores `writes` (dict, key, value) with no Python code between.");
    py::class_<Precision>(m, "Precision", "A call's mixed-precision settings (buffers.hpp, Precision).")
        .def(py::init([](py::object models, double grad_scale, std::optional<uint64_t> rounding_seed,
                         std::vector<int64_t> rounding_steps) {
                 if (!models.is_none() && !py::isinstance<py::list>(models) && !py::isinstance<py::tuple>(models)) {
                     throw py::type_error("Precision.models must be None or a list");
                 }
                 return Precision{std::move(models), grad_scale, rounding_seed, std::move(rounding_steps)};
             }),
             py::arg("models") = py::none(), py::arg("grad_scale") = 1.0, py::arg("rounding_seed") = py::none(),
             py::arg("rounding_steps") = std::vector<int64_t>{})
        .def_readonly("models", &Precision::models)
        .def_readonly("grad_scale", &Precision::grad_scale)
        .def_readonly("rounding_seed", &Precision::rounding_seed)
        .def_readonly("rounding_steps", &Precision::rounding_steps);
    py::class_<GroupSnapshot>(m, "GroupSnapshot", "What a StepPlan relies on of a parameter group.")
        .def(py::init<py::dict, py::list, py::tuple, py::tuple>(), py::arg("group"), py::arg("params"),
             py::arg("members"), py::arg("values"))
        .def_readonly("group", &GroupSnapshot::group)
        .def_readonly("params", &GroupSnapshot::params)
        .def_readonly("members", &GroupSnapshot::members)
        .def_readonly("values", &GroupSnapshot::values);
    py::class_<StepPlan>(m, "StepPlan",
                         "Prepared steps re-run with new gradients and step numbers (an optimizer's steady state).")
        .def(py::init<const std::vector<py::object>&, std::vector<GroupSnapshot>, const std::vector<py::dict>&,
                      std::vector<py::dict>>(),
             py::arg("steps"), py::arg("groups"), py::arg("states"), py::arg("counters"))
        .def("bind", &StepPlan::bind, py::arg("param_groups"), py::arg("grads"), py::arg("grad_scale") = 1.0)
        .def(
            "run",
            [](StepPlan& plan, py::typing::Optional<PreparedStep> before) {
                plan.run(before.is_none() ? nullptr : before.cast<PreparedStep*>());
            },
            py::arg("before") = py::none())
        .def(
            "step",
            [](StepPlan& plan, py::handle param_groups, py::handle grads) {
                if (!plan.bind(param_groups, grads)) return false;
                plan.run(nullptr, false);  // bind() just checked everything, and no Python code ran since
                return true;
            },
            py::arg("param_groups"), py::arg("grads"), "bind() then run(); false, doing nothing, if bind() is.");
}

}  // namespace fusedoptim::bind
