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
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "fusedoptim/common.hpp"
#include "fusedoptim/convert.hpp"
#include "fusedoptim/dispatch.hpp"
#include "settings.hpp"

namespace fusedoptim::bind {

namespace py = pybind11;

// One list argument of a kernel call: a list or tuple of arrays. A list the call's mode does not use
// (`used == false`) is ignored, whatever it holds. The first list is always `params`, the second `grads`.
// `low_ok` (the first list of a read-only call only: the norms) also takes float16 and bfloat16 arrays, which
// become float32 tensors read through their 16-bit slot 0 (TensorRef::low).
struct BufferList {
    const char* name;
    py::handle list;
    bool written;
    bool used = true;
    bool low_ok = false;
};

template <class T>
struct TensorsOf {
    std::vector<TensorRef<T>> tensors;
    std::vector<int64_t> offsets{0};
    std::vector<size_t> positions;  // each tensor's index in the call's lists
    // Stochastic rounding: the seed, and each tensor's index in the keys (its label, see gather).
    uint64_t round_seed = 0;
    std::vector<int64_t> round_indices;
};

// Sets the stochastic-rounding keys of `part`'s stochastic tensors for the step numbers `steps` (by position).
template <class T>
void set_round_keys(TensorsOf<T>& part, const int64_t* steps) {
    for (size_t k = 0; k < part.tensors.size(); ++k) {
        TensorRef<T>& t = part.tensors[k];
        if (!t.stochastic) continue;
        for (int j = 0; j < kMaxBuffers; ++j) {
            t.round_key[j] = stochastic_key(part.round_seed, part.round_indices[k], steps[part.positions[k]], j);
        }
    }
}

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
    std::vector<py::array> params;  // each position's parameter
    // What the caller's group holds at each position, and what its gradient must match: the 16-bit parameter
    // of a mixed-precision row (whose `params` entry is its float32 master), else the parameter.
    std::vector<py::array> members;
    std::vector<int64_t> labels;       // each position's index in messages
    std::vector<int64_t> round_steps;  // stochastic rounding: each position's step number, else empty
    // Every array but the gradients (parameters, 16-bit models, state), empty ones included: what a prepared
    // step pins (see Pinned).
    std::vector<py::object> pinned;
};

// What a prepared step relies on of an array it keeps: its data pointer, dtype object, shape, strides and the
// flags validation looked at. NumPy lets Python change all of these behind a reference (`a.resize(...,
// refcheck=False)` moves the data, `a.dtype = ...`, `a.shape = ...`, `a.flags.writeable = False`), so a step
// re-reads them before it runs: anything else would read freed memory or write float bits into an int array.
// The facts of all of a step's arrays sit in one flat vector (read in order at every steady-state step).
class Pinned {
public:
    explicit Pinned(const std::vector<py::object>& arrays);
    bool unchanged() const;

private:
    std::vector<py::object> arrays_;
    // Per array: data pointer, dtype object, flags, ndim, then ndim dimensions and ndim strides.
    std::vector<Py_intptr_t> facts_;
};

// A call's mixed-precision settings (`_core.Precision`). Given, they make every tensor mixed-precision (float32
// masters only): state lists may then hold float16/bfloat16 arrays; `models` (None, or a list with None or the
// float16/bfloat16 parameter for each position, written after each update with the rounded master) fixes the
// gradients' dtype; the gradients are multiplied by `grad_scale` as they are read (GradScaler's unscaling);
// with a `rounding_seed`, the bfloat16 stores round stochastically, keyed by the seed, each position's label
// and its step number in `rounding_steps`. See TensorRef in common.hpp.
struct Precision {
    py::object models = py::none();
    double grad_scale = 1.0;
    std::optional<uint64_t> rounding_seed;
    std::vector<int64_t> rounding_steps;
};

// Validates the lists (see the top of this file) and raises TypeError/ValueError naming the argument, index
// and offending value.
// `labels`, when given, are the indices messages show for each position (an optimizer's global parameter
// indices, as it passes only the parameters that have a gradient). `precision`: see Precision.
Gathered gather(const std::vector<BufferList>& lists, const std::optional<std::vector<int64_t>>& labels,
                const std::optional<Precision>& precision = std::nullopt);

// Raises ValueError unless `values` has one entry per parameter.
void check_length(const char* name, size_t length, size_t count);

// Raises ValueError("Invalid grad_scale: ...") unless the scale is finite and >= 0.
void check_grad_scale(double grad_scale);

// Raises ValueError unless there is one step number per parameter, each >= 1 (bias corrections divide by
// 1 - beta^t).
void check_steps(const std::vector<int64_t>& steps, size_t count);

// The step numbers a run's coefficients are made from: steps[i] for position i (null for families that count
// no steps). `rerun` is false when a step is prepared and true when a StepPlan runs it again.
struct StepNumbers {
    const int64_t* steps;
    bool rerun;
};

// A per-parameter float that a family's coefficients follow from step to step (NAdam's momentum product), kept
// in the parameters' state dicts under `key`. A StepPlan carries it: `next(i, step)` is position i's value for
// step number `step`, computed from values[i] (the value after the last step), and after each run the plan
// stores it in values[i] and in the state dict. The family's coefficients read it through the same `values`.
struct CarriedScalar {
    py::str key;
    std::shared_ptr<std::vector<double>> values;
    std::function<double(size_t, int64_t)> next;
    std::vector<double> pending;  // a run's new values, before they are stored (sized by carry())
};

// A validated call, ready to run. Running releases the GIL: this is safe because the step holds references to
// every array (none can be freed or resized under us, as NumPy refuses to resize a referenced array) and the
// kernels touch no Python object.
class PreparedStep {
public:
    // One dtype's tensors, their coefficients and the kernel.
    struct Part {
        virtual ~Part() = default;
        virtual void run() const = 0;
        virtual void set_grad(size_t index, const void* grad) = 0;
        virtual void recompute(const StepNumbers& steps) = 0;
        virtual void set_rounding_steps(const int64_t* steps) = 0;  // by position (set_round_keys)
        virtual void set_grad_scale(double scale) = 0;              // every tensor's (a StepPlan's re-run)
    };
    // Where position i's tensor is: part 0 (float32) or 1 (float64) at `index`, or part -1 (an empty array).
    struct Slot {
        int part;
        size_t index;
    };

    PreparedStep(std::unique_ptr<Part> f32, std::unique_ptr<Part> f64, std::vector<Slot> slots, Gathered&& gathered,
                 bool counts_steps)
        : slots_(std::move(slots)),
          params_(std::move(gathered.params)),
          members_(std::move(gathered.members)),
          labels_(std::move(gathered.labels)),
          arrays_(std::move(gathered.arrays)),
          written_arrays_(std::move(gathered.written_arrays)),
          written_(std::move(gathered.written)),
          read_(std::move(gathered.read)),
          pinned_(gathered.pinned),
          counts_steps_(counts_steps),
          stochastic_(!gathered.round_steps.empty()) {
        parts_[0] = std::move(f32);
        parts_[1] = std::move(f64);
    }

    // Runs the steps in order, after checking that no step writes memory another step reads or writes (an
    // optimizer prepares each parameter group separately, then runs them all). Raises before running any.
    // `before`, if given, runs first and may write what the steps read (gradient clipping scales the gradients
    // the steps then read). `writes` (None or a list of (dict, key, value)) are stored once the kernels ran,
    // in order, with no Python code in between: an optimizer's new state and step counts, so that a signal
    // (Ctrl-C) lands before the step or after all of it, never between the kernels and the state they advanced.
    static void run_all(const std::vector<PreparedStep*>& steps, PreparedStep* before = nullptr,
                        py::handle writes = py::none());

    // A family may carry several (ASGD: eta and mu); each run computes all their new values, then stores them.
    void carry(CarriedScalar carried) {
        carried.pending.resize(carried.values->size());
        carried_.push_back(std::move(carried));
    }

private:
    friend class StepPlan;
    void run_parts() const {
        for (const auto& part : parts_) part->run();
    }
    // Raises ValueError("<list>[<label>] <problem>") unless every written array is still writeable (Python code
    // may run between the checks and the run).
    void check_still_writeable(const char* problem) const;
    // Whether every pinned array is as it was validated (see Pinned).
    bool pinned_unchanged() const { return pinned_.unchanged(); }
    // Raises ValueError unless every written array is still writeable and pinned_unchanged(): nothing is
    // written then. (StepPlan::bind needs only pinned_unchanged(): it covers the flags, and the full step it
    // falls back to names the problem.)
    void check_unchanged() const;

    std::unique_ptr<Part> parts_[2];
    std::vector<Slot> slots_;
    std::vector<py::array> params_;
    std::vector<py::array> members_;
    std::vector<int64_t> labels_;
    std::vector<py::object> arrays_;
    std::vector<std::pair<py::object, Interval>> written_arrays_;
    std::vector<Interval> written_, read_;
    Pinned pinned_;
    bool counts_steps_;
    bool stochastic_;  // some tensor rounds stochastically: a re-run needs new keys
    bool done_ = false;
    std::vector<CarriedScalar> carried_;
};

// What a StepPlan relies on of a parameter group (`_core.GroupSnapshot`): the group dict, its params list, that
// list's arrays when the plan was made, and the dict's values in order (compared by identity).
struct GroupSnapshot {
    py::dict group;
    py::list params;
    py::tuple members;
    py::tuple values;
};

// What a StepPlan relies on of a parameter's state: the state dict and the arrays its keys held.
struct StateSnapshot {
    py::dict state;
    std::vector<std::pair<py::object, py::object>> arrays;  // (key, array)
};

// An optimizer's steady state: the prepared steps of a full step (one per parameter group), re-run with new
// gradients and step numbers. Parameters and state were validated when the steps were prepared; each step
// validates only the gradients (as strictly as a prepare) and recomputes the coefficients. The plan also checks,
// at C speed, that nothing it relies on changed in Python: the optimizer's group dicts, their params lists and
// every hyperparameter object (by identity), and each state entry's arrays. When anything did, bind() returns
// false and the optimizer takes its full step instead.
class StepPlan {
public:
    // steps: the prepared steps, one per non-empty group, in order. groups: every group's snapshot. states: the
    // parameters' state dicts (the plan records the arrays each holds). counters: the state dicts whose int
    // "step" each run advances, one per parameter in order, or empty for families that count no steps. The run
    // is the one writer of that state in the steady state, as run_all (given the new values) is in a full step.
    StepPlan(const std::vector<py::object>& steps, std::vector<GroupSnapshot> groups,
             const std::vector<py::dict>& states, std::vector<py::dict> counters);
    // False if the plan no longer applies (see above) or a gradient is None; else validates every gradient (one
    // per parameter, in order, in a list), raising like a prepare, and binds them for run(), each to be read
    // multiplied by grad_scale (GradScaler's unscaling; ValueError unless finite and >= 0).
    bool bind(py::handle param_groups, py::handle grads, double grad_scale = 1.0);
    // Runs the bound step once, without the GIL, then advances the step counters. `before` as in run_all.
    // `recheck`: check again that the arrays are as bind() saw them (false only when nothing can have run
    // between the two: StepPlan.step calls both holding the GIL).
    void run(PreparedStep* before = nullptr, bool recheck = true);

private:
    bool unchanged(py::handle param_groups, py::handle grads) const;

    std::vector<py::object> owners_;
    std::vector<PreparedStep*> steps_;
    std::vector<size_t> starts_;  // each step's first parameter in the optimizer's order
    size_t count_ = 0;            // parameters in all
    std::vector<GroupSnapshot> groups_;
    std::vector<StateSnapshot> entries_;
    std::vector<py::dict> counters_;
    const py::str params_key_{"params"}, step_key_{"step"};  // made once: a lookup then costs no allocation
    std::vector<Interval> written_;                          // every step's written buffers, sorted
    std::vector<py::object> bound_grads_;                    // kept alive from bind to run
    std::vector<int64_t> step_numbers_;                      // this run's, one per parameter (counting families)
    bool bound_ = false;
};

namespace detail {

template <class T, class Options, class MakeCoeffs, class KernelOf>
class PartOf final : public PreparedStep::Part {
public:
    using Coeffs = decltype(std::declval<const MakeCoeffs&>()(T{}, size_t{0}, StepNumbers{}));

    PartOf(TensorsOf<T>&& tensors, const Options& options, MakeCoeffs make_coeffs, KernelOf kernel_of,
           const StepNumbers& steps)
        : tensors_(std::move(tensors)), options_(options), make_coeffs_(std::move(make_coeffs)), kernel_of_(kernel_of) {
        coeffs_.reserve(tensors_.positions.size());
        for (size_t position : tensors_.positions) coeffs_.push_back(make_coeffs_(T{}, position, steps));
    }

    void run() const override {
        if (tensors_.tensors.empty()) return;
        const Batch<T, Coeffs, Options> batch{tensors_.tensors.data(),
                                              coeffs_.data(),
                                              tensors_.offsets.data(),
                                              static_cast<int64_t>(tensors_.tensors.size()),
                                              options_,
                                              kernel_threads(),
                                              parallel_grain()};
        kernel_of_(T{})(batch);  // looked up at each run: set_simd_level applies to plans made before it
    }

    void set_grad(size_t index, const void* grad) override {
        TensorRef<T>& t = tensors_.tensors[index];
        if (t.kind[1] != Storage::native) {
            t.low[1] = const_cast<void*>(grad);  // only ever read
        } else {
            t.buf[1] = const_cast<T*>(static_cast<const T*>(grad));
        }
    }

    void recompute(const StepNumbers& steps) override {
        for (size_t k = 0; k < coeffs_.size(); ++k) coeffs_[k] = make_coeffs_(T{}, tensors_.positions[k], steps);
    }

    void set_rounding_steps(const int64_t* steps) override { set_round_keys(tensors_, steps); }

    // As gather sets it for a call with this scale: a float32 tensor stages when it has 16-bit storage or a
    // scale (float64 tensors and LAMB read the scale in their own loops). A plan's steady state keeps one scale:
    // nothing to redo then.
    void set_grad_scale(double scale) override {
        if (scale == grad_scale_) return;
        grad_scale_ = scale;
        for (TensorRef<T>& t : tensors_.tensors) {
            t.grad_scale = static_cast<T>(scale);
            bool low = t.model != nullptr;
            for (int j = 0; j < kMaxBuffers; ++j) low = low || t.kind[j] != Storage::native;
            t.staged = low || scale != 1.0;
        }
    }

private:
    TensorsOf<T> tensors_;
    double grad_scale_ = tensors_.tensors.empty() ? 1.0 : static_cast<double>(tensors_.tensors[0].grad_scale);
    std::vector<Coeffs> coeffs_;
    Options options_;
    MakeCoeffs make_coeffs_;
    KernelOf kernel_of_;
};

}  // namespace detail

// Builds the prepared step of one family. `make_coeffs(T{}, position, StepNumbers)` gives a tensor's
// coefficients; it is kept (so it captures by value) to recompute them when a StepPlan re-runs the step.
// `steps`: the step numbers of a family that counts steps (checked here), nullopt otherwise. `kernel_of(T{})`
// gives the kernel from the active table. A family whose coefficients follow other per-step state (NAdam's
// momentum products) hands it to the step with carry().
template <class Options, class MakeCoeffs, class KernelOf>
PreparedStep prepare(Gathered&& gathered, const Options& options, const std::optional<std::vector<int64_t>>& steps,
                     MakeCoeffs make_coeffs, KernelOf kernel_of) {
    if (steps) check_steps(*steps, gathered.count);
    const StepNumbers numbers{steps ? steps->data() : nullptr, false};
    if (!gathered.round_steps.empty()) set_round_keys(gathered.f32, gathered.round_steps.data());
    std::vector<PreparedStep::Slot> slots(gathered.count, PreparedStep::Slot{-1, 0});
    auto part = [&](auto zero, auto& tensors, int which) {
        using T = decltype(zero);
        for (size_t k = 0; k < tensors.positions.size(); ++k) slots[tensors.positions[k]] = {which, k};
        return std::unique_ptr<PreparedStep::Part>(new detail::PartOf<T, Options, MakeCoeffs, KernelOf>(
            std::move(tensors), options, make_coeffs, kernel_of, numbers));
    };
    auto f32 = part(float{}, gathered.f32, 0);
    auto f64 = part(double{}, gathered.f64, 1);
    return PreparedStep(std::move(f32), std::move(f64), std::move(slots), std::move(gathered), steps.has_value());
}

namespace detail {

template <class S, class... Ts, size_t... I>
void bind_hyper_fields(py::class_<S>& cls, const char* const* names, std::index_sequence<I...>, Ts S::*... members) {
    cls.def(py::init<Ts...>(), py::arg(names[I])...);
    (cls.def_readonly(names[I], members), ...);
    const std::vector<std::string> keys{names[I]...};
    cls.def("__repr__", [keys, members...](const S& self) {
        std::string out;
        ((out += (I ? ", " : "") + keys[I] + "=" + std::string(py::repr(py::cast(self.*members)))), ...);
        return std::string(py::str(py::type::of<S>().attr("__name__"))) + "(" + out + ")";
    });
}

}  // namespace detail

// Binds an aggregate of a family's hyperparameters as a Python class (`_core.AdamHyper`, ...): constructed with
// every field, by position or name, with read-only fields of those names. A prepare function takes one instead
// of a long positional argument list.
template <class S, class... Ts>
void bind_hyper(py::module_& m, const char* name, const char* const (&names)[sizeof...(Ts)], Ts S::*... members) {
    py::class_<S> cls(m, name, "A family's hyperparameters, as its prepare function takes them.");
    detail::bind_hyper_fields(cls, names, std::index_sequence_for<Ts...>{}, members...);
}

void register_prepared_step(py::module_& m);

}  // namespace fusedoptim::bind
