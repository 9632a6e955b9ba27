#include <pybind11/stl.h>

#include "buffers.hpp"

namespace fusedoptim::bind {

void register_nadam(py::module_& m) {
    // Returns (prepared step, the updated mu_products): the momentum products are scalar state, computed here
    // with the coefficients so the schedule is written once; the caller stores them once the step has run.
    m.def(
        "nadam_prepare",
        [](py::object params, py::object grads, py::object exp_avgs, py::object exp_avg_sqs,
           std::vector<double> mu_products, std::vector<int64_t> steps, double lr, double beta1, double beta2,
           double eps, double weight_decay, double momentum_decay, bool decoupled_weight_decay, bool maximize,
           const std::optional<std::vector<int64_t>>& labels, py::object precision) {
            Gathered g = gather({{"params", params, true},
                                 {"grads", grads, false},
                                 {"exp_avgs", exp_avgs, true},
                                 {"exp_avg_sqs", exp_avg_sqs, true}},
                                labels, precision);
            check_steps(steps, g.count);
            check_length("mu_products", mu_products.size(), g.count);
            const nadam::Hyper hyper{lr, beta1, beta2, eps, weight_decay, momentum_decay};
            for (size_t i = 0; i < mu_products.size(); ++i) mu_products[i] *= nadam::momentum_at(hyper, steps[i]);
            const nadam::Options options{maximize, weight_decay != 0.0 && !decoupled_weight_decay,
                                         weight_decay != 0.0 && decoupled_weight_decay};
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
            step.carry(CarriedScalar{py::str("mu_product"), products, next});
            return py::make_tuple(py::cast(std::move(step)), py::cast(mu_products));
        },
        py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_avg_sqs"), py::arg("mu_products"),
        py::arg("steps"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
        py::arg("weight_decay"), py::arg("momentum_decay"), py::arg("decoupled_weight_decay"), py::arg("maximize"),
        py::arg("labels") = py::none(), py::arg("precision") = py::none());
}

}  // namespace fusedoptim::bind
