"""The test registry: every optimizer with its option sets, how to drive its functional form, its state keys,
its torch counterpart, and the bad inputs it must reject (the shape of torch's optim_db)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

import fusedoptim

# Option sets (class keyword arguments). `torch=False` marks options torch does not have.
Options = dict[str, Any]


@dataclass
class ErrorInput:
    kwargs: Options
    error: type[Exception]
    match: str


@dataclass
class OptimInfo:
    name: str
    cls: type
    option_sets: list[Options]
    torch_only_skip: set[str] = field(default_factory=set)  # option keys torch lacks
    init_state: Callable[[list[np.ndarray], Options], dict[str, list]] = None  # type: ignore[assignment]
    functional_step: Callable[[ModuleType, list, list, dict, int, Options], None] = None  # type: ignore[assignment]
    error_inputs: list[ErrorInput] = field(default_factory=list)
    in_torch: bool = True  # torch.optim has it (Lion and LAMB are tested against their references only)
    exact: bool = True  # the kernel equals the reference bit for bit (LAMB's norms are summed in another order)
    torch_rtol_float64: float = 1e-11

    def torch_compatible(self, options: Options) -> bool:
        return self.in_torch and not (set(options) & self.torch_only_skip)

    def ids(self) -> list[str]:
        return [f"{self.name}-" + ("-".join(f"{k}={v}" for k, v in o.items()) or "default") for o in self.option_sets]


def _zeros(params):
    return [np.zeros_like(p) for p in params]


# --- SGD -----------------------------------------------------------------------------------------------------


def _sgd_defaults(o: Options) -> Options:
    return {
        "lr": 1e-3,
        "momentum": 0.0,
        "dampening": 0.0,
        "weight_decay": 0.0,
        "nesterov": False,
        "maximize": False,
        **o,
    }


def _sgd_init(params, o):
    o = _sgd_defaults(o)
    if o.get("momentum_init") == "zeros":
        return {"momentum_buffers": _zeros(params)}
    return {"momentum_buffers": [None] * len(params)}


def _sgd_step(module, params, grads, state, t, o):
    o = _sgd_defaults(o)
    o.pop("momentum_init", None)
    module.sgd_(params, grads, state["momentum_buffers"], **o)


SGD = OptimInfo(
    "SGD",
    fusedoptim.SGD,
    [
        {"lr": 0.1},
        {"lr": 0.1, "momentum": 0.9},
        {"lr": 0.1, "momentum": 0.9, "dampening": 0.5},
        {"lr": 0.1, "momentum": 0.9, "nesterov": True},
        {"lr": 0.1, "weight_decay": 0.1},
        {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.1, "maximize": True},
        {"lr": 0.1, "maximize": True},
        {"lr": 0.1, "momentum": 0.9, "dampening": 0.9, "momentum_init": "zeros"},
    ],
    torch_only_skip={"momentum_init"},
    init_state=_sgd_init,
    functional_step=_sgd_step,
    error_inputs=[
        ErrorInput({"lr": -0.1}, ValueError, "Invalid learning rate: -0.1"),
        ErrorInput({"lr": float("nan")}, ValueError, "Invalid learning rate: nan"),
        ErrorInput({"lr": "0.1"}, TypeError, "lr must be a real number"),
        ErrorInput({"momentum": -0.5}, ValueError, "Invalid momentum value: -0.5"),
        ErrorInput({"weight_decay": -1e-4}, ValueError, "Invalid weight_decay value: -0.0001"),
        ErrorInput({"nesterov": True}, ValueError, "Nesterov momentum requires a momentum and zero dampening"),
        ErrorInput(
            {"nesterov": True, "momentum": 0.9, "dampening": 0.1},
            ValueError,
            "Nesterov momentum requires a momentum and zero dampening",
        ),
        ErrorInput({"momentum_init": "ones", "momentum": 0.9}, ValueError, "Invalid momentum_init: 'ones'"),
        ErrorInput({"maximize": 1}, TypeError, "maximize must be a bool"),
    ],
)

# --- Adagrad -------------------------------------------------------------------------------------------------


def _adagrad_init(params, o):
    v = o.get("initial_accumulator_value", 0.0)
    return {"state_sums": [np.full_like(p, v) for p in params]}


def _adagrad_step(module, params, grads, state, t, o):
    o = {k: v for k, v in o.items() if k != "initial_accumulator_value"}
    module.adagrad_(params, grads, state["state_sums"], [t] * len(params), **o)


ADAGRAD = OptimInfo(
    "Adagrad",
    fusedoptim.Adagrad,
    [
        {},
        {"lr": 0.1, "lr_decay": 0.1},
        {"weight_decay": 0.1},
        {"initial_accumulator_value": 0.1},
        {"weight_decay": 0.1, "maximize": True},
        {"eps": 1e-3},
    ],
    init_state=_adagrad_init,
    functional_step=_adagrad_step,
    error_inputs=[
        ErrorInput({"lr": -0.1}, ValueError, "Invalid learning rate: -0.1"),
        ErrorInput({"lr_decay": -1.0}, ValueError, "Invalid lr_decay value: -1.0"),
        ErrorInput({"weight_decay": -1.0}, ValueError, "Invalid weight_decay value: -1.0"),
        ErrorInput({"initial_accumulator_value": -1.0}, ValueError, "Invalid initial_accumulator_value value: -1.0"),
        ErrorInput({"eps": -1e-10}, ValueError, "Invalid epsilon value: -1e-10"),
        ErrorInput({"eps": float("inf")}, ValueError, "Invalid epsilon value: inf"),
    ],
)

# --- RMSprop -------------------------------------------------------------------------------------------------


def _rmsprop_init(params, o):
    return {"square_avgs": _zeros(params), "grad_avgs": _zeros(params), "momentum_buffers": _zeros(params)}


def _rmsprop_step(module, params, grads, state, t, o):
    centered, momentum = o.get("centered", False), o.get("momentum", 0.0)
    module.rmsprop_(
        params,
        grads,
        state["square_avgs"],
        state["grad_avgs"] if centered else None,
        state["momentum_buffers"] if momentum else None,
        **o,
    )


RMSPROP = OptimInfo(
    "RMSprop",
    fusedoptim.RMSprop,
    [
        {},
        {"centered": True},
        {"momentum": 0.9},
        {"centered": True, "momentum": 0.9},
        {"weight_decay": 0.1},
        {"maximize": True, "weight_decay": 0.1},
        {"alpha": 0.3, "centered": True},
        {"alpha": 0.9, "eps_in_sqrt": True},
        {"eps_in_sqrt": True, "centered": True, "momentum": 0.5},
    ],
    torch_only_skip={"eps_in_sqrt"},
    init_state=_rmsprop_init,
    functional_step=_rmsprop_step,
    error_inputs=[
        ErrorInput({"lr": -0.1}, ValueError, "Invalid learning rate: -0.1"),
        ErrorInput({"alpha": -0.1}, ValueError, "Invalid alpha value: -0.1"),
        ErrorInput({"alpha": 1.5}, ValueError, "Invalid alpha value: 1.5"),
        ErrorInput({"eps": -1.0}, ValueError, "Invalid epsilon value: -1.0"),
        ErrorInput({"momentum": -1.0}, ValueError, "Invalid momentum value: -1.0"),
        ErrorInput({"weight_decay": -1.0}, ValueError, "Invalid weight_decay value: -1.0"),
        ErrorInput({"centered": "yes"}, TypeError, "centered must be a bool"),
    ],
)

# --- Adam and AdamW ------------------------------------------------------------------------------------------


def _adam_init(params, o):
    return {"exp_avgs": _zeros(params), "exp_avg_sqs": _zeros(params), "max_exp_avg_sqs": _zeros(params)}


def _adam_kwargs(o: Options, decoupled: bool) -> Options:
    o = dict(o)
    beta1, beta2 = o.pop("betas", (0.9, 0.999))
    o.update(beta1=beta1, beta2=beta2)
    if decoupled:
        o.setdefault("weight_decay", 1e-2)
        o["decoupled_weight_decay"] = True
    return o


def _adam_step(module, params, grads, state, t, o):
    module.adam_(
        params,
        grads,
        state["exp_avgs"],
        state["exp_avg_sqs"],
        state["max_exp_avg_sqs"],
        [t] * len(params),
        **_adam_kwargs(o, False),
    )


def _adamw_step(module, params, grads, state, t, o):
    o = _adam_kwargs(o, True)
    o.pop("decoupled_weight_decay")
    module.adamw_(
        params, grads, state["exp_avgs"], state["exp_avg_sqs"], state["max_exp_avg_sqs"], [t] * len(params), **o
    )


_ADAM_ERRORS = [
    ErrorInput({"lr": -0.1}, ValueError, "Invalid learning rate: -0.1"),
    ErrorInput({"lr": float("inf")}, ValueError, "Invalid learning rate: inf"),
    ErrorInput({"eps": -1e-8}, ValueError, "Invalid epsilon value: -1e-08"),
    ErrorInput({"betas": (1.0, 0.999)}, ValueError, "Invalid beta parameter at index 0: 1.0"),
    ErrorInput({"betas": (0.9, -0.1)}, ValueError, "Invalid beta parameter at index 1: -0.1"),
    ErrorInput({"betas": (0.9, float("nan"))}, ValueError, "Invalid beta parameter at index 1: nan"),
    ErrorInput({"betas": 0.9}, TypeError, "betas must be a pair of floats"),
    ErrorInput({"weight_decay": -0.1}, ValueError, "Invalid weight_decay value: -0.1"),
    ErrorInput({"amsgrad": None}, TypeError, "amsgrad must be a bool"),
]

ADAM = OptimInfo(
    "Adam",
    fusedoptim.Adam,
    [
        {},
        {"lr": 0.01, "amsgrad": True},
        {"lr": 0.01, "weight_decay": 0.1},
        {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True},
        {"lr": 0.01, "maximize": True},
        {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1, "maximize": True},
        {"lr": 0.01, "betas": (0.3, 0.5)},
    ],
    init_state=_adam_init,
    functional_step=_adam_step,
    error_inputs=_ADAM_ERRORS,
)

ADAMW = OptimInfo(
    "AdamW",
    fusedoptim.AdamW,
    [
        {},
        {"lr": 0.01, "amsgrad": True},
        {"lr": 0.01, "weight_decay": 0.0},
        {"lr": 0.01, "weight_decay": 0.5, "maximize": True},
    ],
    init_state=_adam_init,
    functional_step=_adamw_step,
    error_inputs=_ADAM_ERRORS,
)

# --- Adadelta ------------------------------------------------------------------------------------------------


def _adadelta_step(module, params, grads, state, t, o):
    module.adadelta_(params, grads, state["square_avgs"], state["acc_deltas"], **o)


ADADELTA = OptimInfo(
    "Adadelta",
    fusedoptim.Adadelta,
    [{}, {"lr": 0.5, "rho": 0.5}, {"weight_decay": 0.1}, {"weight_decay": 0.1, "maximize": True, "eps": 1e-3}],
    init_state=lambda params, o: {"square_avgs": _zeros(params), "acc_deltas": _zeros(params)},
    functional_step=_adadelta_step,
    error_inputs=[
        ErrorInput({"lr": -0.1}, ValueError, "Invalid learning rate: -0.1"),
        ErrorInput({"rho": 1.5}, ValueError, "Invalid rho value: 1.5"),
        ErrorInput({"eps": -1.0}, ValueError, "Invalid epsilon value: -1.0"),
        ErrorInput({"weight_decay": -1.0}, ValueError, "Invalid weight_decay value: -1.0"),
    ],
)

# --- Adamax, NAdam, RAdam ------------------------------------------------------------------------------------


def _betas(o: Options) -> Options:
    o = dict(o)
    beta1, beta2 = o.pop("betas", (0.9, 0.999) if "lion" not in o else (0.9, 0.99))
    return {**o, "beta1": beta1, "beta2": beta2}


def _adamax_step(module, params, grads, state, t, o):
    module.adamax_(params, grads, state["exp_avgs"], state["exp_infs"], [t] * len(params), **_betas(o))


ADAMAX = OptimInfo(
    "Adamax",
    fusedoptim.Adamax,
    [{}, {"lr": 0.01, "weight_decay": 0.1}, {"lr": 0.01, "maximize": True}, {"lr": 0.01, "betas": (0.3, 0.5)}],
    init_state=lambda params, o: {"exp_avgs": _zeros(params), "exp_infs": _zeros(params)},
    functional_step=_adamax_step,
    error_inputs=_ADAM_ERRORS[:7],
)


def _nadam_step(module, params, grads, state, t, o):
    module.nadam_(
        params, grads, state["exp_avgs"], state["exp_avg_sqs"], state["mu_products"], [t] * len(params), **_betas(o)
    )


NADAM = OptimInfo(
    "NAdam",
    fusedoptim.NAdam,
    [
        {},
        {"lr": 0.01, "weight_decay": 0.1},
        {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True},
        {"lr": 0.01, "momentum_decay": 0.01, "maximize": True},
        {"lr": 0.01, "betas": (0.3, 0.5)},
    ],
    init_state=lambda params, o: {
        "exp_avgs": _zeros(params),
        "exp_avg_sqs": _zeros(params),
        "mu_products": [1.0] * len(params),
    },
    functional_step=_nadam_step,
    # torch keeps mu_product in its default dtype (float32) even for float64 parameters; we keep it in double
    torch_rtol_float64=1e-7,
    error_inputs=_ADAM_ERRORS[:7]
    + [
        ErrorInput({"momentum_decay": -0.1}, ValueError, "Invalid momentum_decay value: -0.1"),
    ],
)


def _radam_step(module, params, grads, state, t, o):
    module.radam_(params, grads, state["exp_avgs"], state["exp_avg_sqs"], [t] * len(params), **_betas(o))


RADAM = OptimInfo(
    "RAdam",
    fusedoptim.RAdam,
    [
        {},
        {"lr": 0.01, "weight_decay": 0.1},
        {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True},
        {"lr": 0.01, "maximize": True},
        {"lr": 0.01, "betas": (0.3, 0.9)},
    ],
    init_state=lambda params, o: {"exp_avgs": _zeros(params), "exp_avg_sqs": _zeros(params)},
    functional_step=_radam_step,
    error_inputs=_ADAM_ERRORS[:7],
)

# --- Lion and LAMB (not in torch: tested against their references) ------------------------------------------


def _lion_step(module, params, grads, state, t, o):
    o = dict(o)
    beta1, beta2 = o.pop("betas", (0.9, 0.99))
    module.lion_(params, grads, state["exp_avgs"], beta1=beta1, beta2=beta2, **o)


LION = OptimInfo(
    "Lion",
    fusedoptim.Lion,
    [{}, {"lr": 0.01, "weight_decay": 0.1}, {"lr": 0.01, "maximize": True}, {"lr": 0.01, "betas": (0.5, 0.8)}],
    init_state=lambda params, o: {"exp_avgs": _zeros(params)},
    functional_step=_lion_step,
    error_inputs=[
        ErrorInput({"lr": -0.1}, ValueError, "Invalid learning rate: -0.1"),
        ErrorInput({"betas": (1.5, 0.99)}, ValueError, "Invalid beta parameter at index 0: 1.5"),
        ErrorInput({"weight_decay": -1.0}, ValueError, "Invalid weight_decay value: -1.0"),
    ],
    in_torch=False,
)


def _lamb_step(module, params, grads, state, t, o):
    module.lamb_(params, grads, state["exp_avgs"], state["exp_avg_sqs"], [t] * len(params), **_betas(o))


LAMB = OptimInfo(
    "LAMB",
    fusedoptim.LAMB,
    [{}, {"lr": 0.01, "weight_decay": 0.1}, {"lr": 0.01, "maximize": True}, {"lr": 0.01, "betas": (0.5, 0.8)}],
    init_state=lambda params, o: {"exp_avgs": _zeros(params), "exp_avg_sqs": _zeros(params)},
    functional_step=_lamb_step,
    error_inputs=_ADAM_ERRORS[:7],
    in_torch=False,
    exact=False,
)


# --- ASGD and Rprop ------------------------------------------------------------------------------------------


def _float32(x: float) -> float:
    with np.errstate(over="ignore"):
        return float(np.float32(x))


def _asgd_step(module, params, grads, state, t, o):
    module.asgd_(params, grads, state["axs"], state["etas"], state["mus"], [t] * len(params), **o)


ASGD = OptimInfo(
    "ASGD",
    fusedoptim.ASGD,
    [
        {},
        {"lr": 0.02, "weight_decay": 0.1},
        {"lr": 0.02, "t0": 3, "lambd": 0.1},  # averaging from the fourth step on
        {"lr": 0.01, "alpha": 0.5, "t0": 0, "maximize": True},
    ],
    # torch's initial scalars: eta = lr as a float32, mu = 1
    init_state=lambda params, o: {
        "axs": _zeros(params),
        "etas": [_float32(o.get("lr", 1e-2))] * len(params),
        "mus": [1.0] * len(params),
    },
    functional_step=_asgd_step,
    error_inputs=[
        ErrorInput({"lr": -0.1}, ValueError, "Invalid learning rate: -0.1"),
        ErrorInput({"weight_decay": -1.0}, ValueError, "Invalid weight_decay value: -1.0"),
        ErrorInput({"lambd": -1.0}, ValueError, "Invalid lambd value: -1.0"),
        ErrorInput({"alpha": float("nan")}, ValueError, "Invalid alpha value: nan"),
        ErrorInput({"t0": -1.0}, ValueError, "Invalid t0 value: -1.0"),
        ErrorInput({"maximize": 1}, TypeError, "maximize must be a bool"),
    ],
)


def _rprop_step(module, params, grads, state, t, o):
    o = dict(o)
    o.pop("lr", None)  # only the step sizes' initial value (init_state)
    etaminus, etaplus = o.pop("etas", (0.5, 1.2))
    step_size_min, step_size_max = o.pop("step_sizes", (1e-6, 50))
    module.rprop_(
        params,
        grads,
        state["prevs"],
        state["step_sizes"],
        etaminus=etaminus,
        etaplus=etaplus,
        step_size_min=step_size_min,
        step_size_max=step_size_max,
        **o,
    )


RPROP = OptimInfo(
    "Rprop",
    fusedoptim.Rprop,
    [
        {},
        {"lr": 0.05, "etas": (0.3, 1.5)},
        {"lr": 0.01, "step_sizes": (1e-3, 0.02)},  # both clamps reached within a few steps
        {"lr": 0.01, "maximize": True},
    ],
    init_state=lambda params, o: {
        "prevs": _zeros(params),
        "step_sizes": [np.full_like(p, o.get("lr", 1e-2)) for p in params],
    },
    functional_step=_rprop_step,
    error_inputs=[
        ErrorInput({"lr": -0.1}, ValueError, "Invalid learning rate: -0.1"),
        ErrorInput({"etas": (1.5, 1.2)}, ValueError, "Invalid eta values: 1.5, 1.2"),
        ErrorInput({"etas": (0.5, 0.9)}, ValueError, "Invalid eta values: 0.5, 0.9"),
        ErrorInput({"step_sizes": (-1.0, 50)}, ValueError, "Invalid minimal step size: -1.0"),
        ErrorInput({"step_sizes": (1.0, 0.5)}, ValueError, "Invalid step sizes: 1.0, 0.5"),
        ErrorInput({"etas": 0.5}, TypeError, "etas must be a pair of floats"),
        ErrorInput({"maximize": 1}, TypeError, "maximize must be a bool"),
    ],
)

OPTIMIZERS = [SGD, ADAGRAD, RMSPROP, ADAM, ADAMW, ADADELTA, ADAMAX, NADAM, RADAM, LION, LAMB, ASGD, RPROP]

ALL_CASES = [(info, o) for info in OPTIMIZERS for o in info.option_sets]
ALL_IDS = [i for info in OPTIMIZERS for i in info.ids()]

# State keys each option set must produce (torch's keys).
SIZES = [0, 1, 3, 7, 8, 15, 16, 17, 1023, 1024, 1025, 100003]


def low_precision_dtypes():
    """float16, and bfloat16 where ml_dtypes is installed."""
    dtypes = [np.dtype(np.float16)]
    try:
        import ml_dtypes
    except ImportError:
        return dtypes
    return dtypes + [np.dtype(ml_dtypes.bfloat16)]


def make_params(dtype, seed=0, sizes=SIZES, misaligned=True):
    """One array per size, plus (optionally) a view that starts one element into its buffer."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(n).astype(dtype) for n in sizes]
    params.append(rng.standard_normal((3, 5, 7)).astype(dtype))
    if misaligned:
        base = rng.standard_normal(1026).astype(dtype)
        params.append(base[1:])
    return params


SPECIALS = [0.0, -0.0, np.inf, -np.inf, np.nan]


def make_grads(params, seed, specials=False):
    """Random gradients; with ``specials``, the 17-element one carries signed zeros, infinities and NaN."""
    rng = np.random.default_rng(1000 + seed)
    grads = [rng.standard_normal(p.shape).astype(p.dtype) for p in params]
    if specials:
        for g in grads:
            if g.shape == (17,):
                g[3 * (seed % 3) : 3 * (seed % 3) + 5] = SPECIALS
    return grads
