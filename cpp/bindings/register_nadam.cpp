#include <pybind11/stl.h>

#include "buffers.hpp"

namespace fusedoptim::bind {

namespace {
struct NAdamHyper {
    double lr, beta1, beta2, eps, weight_decay, momentum_decay;
    bool decoupled_weight_decay, maximize;
};
}  // namespace

void register_nadam(py::module_& m) {
    static const char* const names[] = {
        "lr", "beta1", "beta2", "eps", "weight_decay", "momentum_decay", "decoupled_weight_decay", "maximize"};
    bind_hyper(m, "NAdamHyper", names, &NAdamHyper::lr, &NAdamHyper::beta1, &NAdamHyper::beta2, &NAdamHyper::eps,
               &NAdamHyper::weight_decay, &NAdamHyper::momentum_decay, &NAdamHyper::decoupled_weight_decay,
               &NAdamHyper::maximize);
    // Returns (prepared step, the updated mu_products): the momentum products are scalar state, computed here
    // with the coefficients so the schedule is written once; the caller hands them to the run to store.
    m.def(
        "nadam_prepare",
        [](py::object params, py::object grads, py::object exp_avgs, py::object exp_avg_sqs,
           std::vector<double> mu_products, std::vector<int64_t> steps, const NAdamHyper& h,
           const std::optional<std::vector<int64_t>>& labels, const std::optional<Precision>& precision) {
            Gathered g = gather({{"params", params, true},
                                 {"grads", grads, false},
                                 {"exp_avgs", exp_avgs, true},
                                 {"exp_avg_sqs", exp_avg_sqs, true}},
                                labels, precision);
            check_steps(steps, g.count);
            check_length("mu_products", mu_products.size(), g.count);
            const nadam::Hyper hyper{h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, h.momentum_decay};
            for (size_t i = 0; i < mu_products.size(); ++i) mu_products[i] *= nadam::momentum_at(hyper, steps[i]);
            const nadam::Options options{h.maximize, h.weight_decay != 0.0 && !h.decoupled_weight_decay,
                                         h.weight_decay != 0.0 && h.decoupled_weight_decay};
            // The products after this step; a StepPlan re-running it advances them (CarriedScalar).
            auto products = std::make_shared<std::vector<double>>(mu_products);
            auto next = [hyper, products](size_t i, int64_t step) {
                return (*products)[i] * nadam::momentum_at(hyper, step);
            };
            PreparedStep step = prepare(
                std::move(g), options, steps,
                [hyper, steps, products, next](auto zero, size_t i, const StepNumbers& numbers) {
                    using T = decltype(zero);
                    if (!numbers.rerun) return nadam::make_coeffs<T>(hyper, steps[i], (*products)[i]);
                    return nadam::make_coeffs<T>(hyper, numbers.steps[i], next(i, numbers.steps[i]));
                },
                [](auto zero) { return kernels<decltype(zero)>().nadam; });
            step.carry(CarriedScalar{py::str("mu_product"), products, next, {}});
            return py::make_tuple(py::cast(std::move(step)), py::cast(mu_products));
        },
        py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_avg_sqs"), py::arg("mu_products"),
        py::arg("steps"), py::arg("hyper"), py::arg("labels") = py::none(), py::arg("precision") = py::none());
}

}  // namespace fusedoptim::bind
