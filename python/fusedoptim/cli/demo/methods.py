"""Which optimizers the demo can train with, and the named training methods of the seed's comparison.

``OPTIMIZERS`` has one line per fusedoptim optimizer; a new optimizer is added there and nowhere else: its
hyperparameters (and so its command-line flags, their types and their defaults) are read from its
constructor's signature. ``METHODS`` adds named variants on top (``momentum``, ``gd``, ``sgd1``, ...).

A method is written ``NAME[:KEY=VALUE[:KEY=VALUE...]]``, e.g. ``adam:lr=3e-4:betas=0.9/0.99``; a tuple is
written with ``/`` between its items, a boolean as ``true``/``false``.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import fusedoptim
from fusedoptim.optimizer import Optimizer

__all__ = [
    "FULL_BATCH",
    "METHODS",
    "OPTIMIZERS",
    "Hyperparameter",
    "Method",
    "OptimizerChoice",
    "all_hyperparameters",
    "format_settings",
    "hyperparameters",
    "parse_method",
    "parse_value",
]

FULL_BATCH = "full"


@dataclass(frozen=True)
class OptimizerChoice:
    """A fusedoptim optimizer class and the demo's defaults where they differ from the class's."""

    cls: type[Optimizer]
    defaults: Mapping[str, Any] = field(default_factory=dict)


# One line per optimizer: its name here, its class's name in fusedoptim, and the demo's defaults where they
# differ from the class's. SGD takes the seed's lr 0.01 (fusedoptim's default is torch's 1e-3); RMSprop 1e-3,
# since torch's 1e-2 is too large a step for this MLP. A line whose class this build of fusedoptim lacks is
# skipped, so the table may run ahead of the library.
_TABLE: dict[str, tuple[str, dict[str, Any]]] = {
    "sgd": ("SGD", {"lr": 0.01}),
    "adagrad": ("Adagrad", {}),
    "rmsprop": ("RMSprop", {"lr": 1e-3}),
    "adam": ("Adam", {}),
    "adamw": ("AdamW", {}),
    "adadelta": ("Adadelta", {}),
    "adamax": ("Adamax", {}),
    "nadam": ("NAdam", {}),
    "radam": ("RAdam", {}),
    "lamb": ("LAMB", {}),
    "lion": ("Lion", {}),
    "asgd": ("ASGD", {}),
    "rprop": ("Rprop", {}),  # a full-batch method: use it with --full-batch
    "lbfgs": ("LBFGS", {}),  # full batch only (its line search needs one function); steps with a closure
}

# Optimizers that train only on the whole training set: their preset is full-batch.
FULL_BATCH_ONLY = frozenset({"lbfgs"})

OPTIMIZERS: dict[str, OptimizerChoice] = {
    name: OptimizerChoice(getattr(fusedoptim, cls), defaults)
    for name, (cls, defaults) in _TABLE.items()
    if isinstance(getattr(fusedoptim, cls, None), type)
}


@dataclass(frozen=True)
class Method:
    """A named way to train: an optimizer from ``OPTIMIZERS``, settings over its defaults, and a batch mode.

    ``batch`` is None (``--batch-size`` applies), ``1`` (one example per step) or ``FULL_BATCH`` (the whole
    training set per step: gradient descent).
    """

    optimizer: str
    settings: Mapping[str, Any]
    batch: int | str | None
    help: str


def _presets() -> dict[str, Method]:
    methods = {
        name: Method(
            name,
            {},
            FULL_BATCH if name in FULL_BATCH_ONLY else None,
            f"{choice.cls.__name__} with the defaults below"
            + (", on the whole training set (full batch)" if name in FULL_BATCH_ONLY else ""),
        )
        for name, choice in OPTIMIZERS.items()
    }
    methods.update(
        {
            "gd": Method(
                "sgd",
                {},
                FULL_BATCH,
                "gradient descent (seed 3.1): SGD on the gradient of the whole training set, one step per epoch",
            ),
            "sgd1": Method("sgd", {}, 1, "one-sample SGD (seed 3.2): a step per training example"),
            "momentum": Method("sgd", {"momentum": 0.9}, None, "SGD with momentum 0.9 (torch's form)"),
            "nesterov": Method("sgd", {"momentum": 0.9, "nesterov": True}, None, "SGD with Nesterov momentum 0.9"),
            # The EMA form scales each gradient by (1 - beta), so lr 0.1 gives the step size of momentum at lr 0.01.
            "momentum-ema": Method(
                "sgd",
                {"lr": 0.1, "momentum": 0.9, "dampening": 0.9, "momentum_init": "zeros"},
                None,
                "seed rule 3: v = 0.9 v + 0.1 g from v = 0, p -= lr v, lr 0.1",
            ),
            "adaptive": Method(
                "rmsprop",
                {"alpha": 0.9, "eps_in_sqrt": True},
                None,
                "seed rule 4: v = 0.9 v + 0.1 g^2, p -= lr g / sqrt(v + eps), lr 0.001",
            ),
        }
    )
    return methods


METHODS: dict[str, Method] = _presets()


@dataclass(frozen=True)
class Hyperparameter:
    """One constructor argument of an optimizer: its name, default and the values it accepts."""

    name: str
    default: Any
    choices: tuple[Any, ...] | None = None

    @property
    def kind(self) -> type:
        if isinstance(self.default, bool):
            return bool
        if isinstance(self.default, (int, float)):
            return float
        if isinstance(self.default, tuple):
            return tuple
        return str


def hyperparameters(optimizer: str) -> dict[str, Hyperparameter]:
    """The optimizer's hyperparameters (its constructor's arguments after ``params``), with the demo's defaults."""
    choice = OPTIMIZERS[optimizer]
    init = choice.cls.__init__
    try:
        hints = typing.get_type_hints(init)
    except Exception:  # an unresolvable annotation only costs us the list of choices
        hints = {}
    result = {}
    for name, parameter in inspect.signature(init).parameters.items():
        if name in ("self", "params") or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.default is inspect.Parameter.empty:
            continue
        choices = None
        if typing.get_origin(hints.get(name)) is typing.Literal:
            choices = typing.get_args(hints[name])
        default = choice.defaults.get(name, parameter.default)
        result[name] = Hyperparameter(name, default, choices)
    return result


def all_hyperparameters() -> dict[str, list[str]]:
    """Every hyperparameter name any optimizer takes -> the optimizers that take it."""
    names: dict[str, list[str]] = {}
    for optimizer in OPTIMIZERS:
        for name in hyperparameters(optimizer):
            names.setdefault(name, []).append(optimizer)
    return names


def parse_value(hyperparameter: Hyperparameter, text: str) -> Any:
    """Converts ``text`` to the hyperparameter's type (that of its default)."""
    kind = hyperparameter.kind
    try:
        if kind is bool:
            lowered = text.strip().lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if kind is float:
            value = float(text)
            return int(value) if isinstance(hyperparameter.default, int) and value.is_integer() else value
        if kind is tuple:
            items = [item for item in text.strip("()[] ").replace(",", "/").split("/") if item.strip()]
            values = tuple(float(item) for item in items)
            if len(values) != len(hyperparameter.default):
                raise ValueError
            return values
    except ValueError:
        example = {
            bool: "true or false",
            float: "a number",
            tuple: "/".join(["NUMBER"] * len(hyperparameter.default or ())),
        }[kind]
        raise ValueError(f"{hyperparameter.name}={text!r}: expected {example}") from None
    if hyperparameter.choices is not None and text not in hyperparameter.choices:
        choices = ", ".join(map(str, hyperparameter.choices))
        raise ValueError(f"{hyperparameter.name}={text!r}: expected one of {choices}")
    return text


def parse_method(spec: str) -> tuple[str, Method]:
    """Parses ``NAME[:KEY=VALUE...]`` into its display label and the method with the settings applied.

    Raises
    ------
    ValueError
        Unknown method name, a key the optimizer does not take, or a value of the wrong type.
    """
    name, *assignments = [part.strip() for part in spec.strip().split(":")]
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    method = METHODS[name]
    known = hyperparameters(method.optimizer)
    settings = dict(method.settings)
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ValueError(f"{spec!r}: settings are written KEY=VALUE, got {assignment!r}")
        if key not in known:
            raise ValueError(f"{spec!r}: {method.optimizer} has no hyperparameter {key!r} (it has {', '.join(known)})")
        settings[key] = parse_value(known[key], text.strip())
    label = spec.strip() if assignments else name
    return label, Method(method.optimizer, settings, method.batch, method.help)


def format_settings(optimizer: str, settings: Mapping[str, Any]) -> str:
    """``SGD(lr=0.01, momentum=0.9)``: the class and the settings that differ from the class's own defaults."""
    cls = OPTIMIZERS[optimizer].cls
    class_defaults = {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()}
    shown = [f"{key}={value!r}" for key, value in settings.items() if class_defaults.get(key) != value]
    return f"{cls.__name__}({', '.join(shown)})"
