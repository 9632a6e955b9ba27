#include <pybind11/stl.h>

#include <memory>

#include "buffers.hpp"

namespace fusedoptim::bind {

namespace {
struct ASGDHyper {
    double lr, lambd, alpha, t0, weight_decay;
    bool maximize;
};
}  // namespace

void register_asgd(py::module_& m) {
    static const char* const names[] = {"lr", "lambd", "alpha", "t0", "weight_decay", "maximize"};
    bind_hyper(m, "ASGDHyper", names, &ASGDHyper::lr, &ASGDHyper::lambd, &ASGDHyper::alpha, &ASGDHyper::t0,
               &ASGDHyper::weight_decay, &ASGDHyper::maximize);
    // Returns (prepared step, etas, mus): the scalars this step leaves for the next one, computed here with the
    // coefficients so the schedule is written once; the caller hands them to the run to store. `etas` and
    // `mus` are the parameters' current scalars (torch's state "eta" and "mu": lr and 1 before the first step).
    m.def(
        "asgd_prepare",
        [](py::object params, py::object grads, py::object axs, std::vector<double> etas, std::vector<double> mus,
           std::vector<int64_t> steps, const ASGDHyper& h, const std::optional<std::vector<int64_t>>& labels,
           const std::optional<Precision>& precision) {
            Gathered g =
                gather({{"params", params, true}, {"grads", grads, false}, {"axs", axs, true}}, labels, precision);
            check_steps(steps, g.count);
            check_length("etas", etas.size(), g.count);
            check_length("mus", mus.size(), g.count);
            const asgd::Hyper hyper{h.lr, h.lambd, h.alpha, h.t0, h.weight_decay};
            // The scalars after this step. A StepPlan re-running the step (same hyperparameters) reads the ones the
            // previous run left and leaves eta_after/mu_after of its own step (CarriedScalar).
            auto next_etas = std::make_shared<std::vector<double>>(etas.size());
            auto next_mus = std::make_shared<std::vector<double>>(mus.size());
            for (size_t i = 0; i < etas.size(); ++i) {
                (*next_etas)[i] = asgd::eta_after(hyper, steps[i]);
                (*next_mus)[i] = asgd::mu_after(hyper, steps[i]);
            }
            PreparedStep step = prepare(
                std::move(g), asgd::Options{h.weight_decay != 0.0, h.maximize}, steps,
                [hyper, etas, mus, next_etas, next_mus](auto zero, size_t i, const StepNumbers& numbers) {
                    using T = decltype(zero);
                    if (!numbers.rerun) return asgd::make_coeffs<T>(hyper, etas[i], mus[i]);
                    return asgd::make_coeffs<T>(hyper, (*next_etas)[i], (*next_mus)[i]);
                },
                [](auto zero) { return kernels<decltype(zero)>().asgd; });
            step.carry(CarriedScalar{py::str("eta"),
                                     next_etas,
                                     [hyper](size_t, int64_t number) { return asgd::eta_after(hyper, number); },
                                     {}});
            step.carry(CarriedScalar{py::str("mu"),
                                     next_mus,
                                     [hyper](size_t, int64_t number) { return asgd::mu_after(hyper, number); },
                                     {}});
            return py::make_tuple(py::cast(std::move(step)), py::cast(*next_etas), py::cast(*next_mus));
        },
        py::arg("params"), py::arg("grads"), py::arg("axs"), py::arg("etas"), py::arg("mus"), py::arg("steps"),
        py::arg("hyper"), py::arg("labels") = py::none(), py::arg("precision") = py::none());
}

}  // namespace fusedoptim::bind
