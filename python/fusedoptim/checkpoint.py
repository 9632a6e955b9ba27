"""Checkpoints: optimizer and scheduler state (and optionally the parameters) in one ``.npz`` file.

The file holds every array under its own key and a JSON manifest for everything else (hyperparameters, step
counts, key types), so it loads with ``allow_pickle=False``: opening a checkpoint never runs code. Resuming from it
continues training bit for bit.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union

import numpy as np

from . import _precision

__all__ = ["save", "load"]

FORMAT = "fusedoptim-checkpoint"
VERSION = 1
Params = Union[Mapping[str, np.ndarray], Sequence[np.ndarray]]


class _Encoder:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def encode(self, value: Any) -> Any:
        if isinstance(value, np.ndarray):
            key = f"array_{len(self.arrays)}"
            bfloat16 = _precision._loaded_bfloat16()  # None without ml_dtypes (and dtype == None is float64!)
            if bfloat16 is not None and value.dtype == bfloat16:
                # .npy has no bfloat16 (it would load as raw void): stored as its bits, retyped on load
                self.arrays[key] = value.view(np.uint16)
                return {"__array__": key, "dtype": "bfloat16"}
            self.arrays[key] = value
            return {"__array__": key}
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, Mapping):
            return {"__dict__": [[self.encode(k), self.encode(v)] for k, v in value.items()]}
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v) for v in value]}
        if isinstance(value, list):
            return [self.encode(v) for v in value]
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f"cannot store a {type(value).__name__} in a checkpoint: {value!r}")


def _decode(value: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if isinstance(value, dict):
        if "__array__" in value:
            key = value["__array__"]
            if key not in arrays:
                raise ValueError(f"checkpoint is damaged: array {key!r} is missing")
            if value.get("dtype") == "bfloat16":
                if arrays[key].dtype != np.uint16:
                    raise ValueError(f"checkpoint is damaged: bfloat16 array {key!r} is not stored as uint16 bits")
                return arrays[key].view(_precision.bfloat16())  # ImportError without ml_dtypes, saying so
            return arrays[key]
        if "__tuple__" in value:
            return tuple(_decode(v, arrays) for v in value["__tuple__"])
        if "__dict__" in value:
            return {_decode(k, arrays): _decode(v, arrays) for k, v in value["__dict__"]}
        raise ValueError("checkpoint is damaged: unknown entry in its manifest")
    return value


def _params_dict(params: Params) -> dict[str, np.ndarray]:
    if isinstance(params, Mapping):
        return dict(params)
    return {str(i): p for i, p in enumerate(params)}


def save(
    path: Union[str, os.PathLike],
    *,
    optimizer: Any = None,
    scheduler: Any = None,
    params: Optional[Params] = None,
    extra: Optional[Mapping[str, Any]] = None,
) -> None:
    """Writes ``optimizer.state_dict()``, ``scheduler.state_dict()``, the ``params`` (a dict by name or a list)
    and ``extra`` (JSON-able values and arrays, e.g. the epoch) to one ``.npz`` file, atomically (a temporary
    file renamed into place, so an interrupted save never leaves a broken checkpoint)."""
    encoder = _Encoder()
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "optimizer": encoder.encode(optimizer.state_dict()) if optimizer is not None else None,
        "scheduler": encoder.encode(scheduler.state_dict()) if scheduler is not None else None,
        "params": encoder.encode(_params_dict(params)) if params is not None else None,
        "extra": encoder.encode(dict(extra)) if extra is not None else None,
    }
    path = os.fspath(path)
    tmp = path + ".tmp.npz"
    with open(tmp, "wb") as f:
        np.savez(f, __manifest__=np.array(json.dumps(manifest)), **encoder.arrays)
    os.replace(tmp, path)


def load(
    path: Union[str, os.PathLike],
    *,
    optimizer: Any = None,
    scheduler: Any = None,
    params: Optional[Params] = None,
    strict: bool = True,
) -> dict[str, Any]:
    """Restores what :func:`save` wrote into the given objects and returns the ``extra`` dict.

    ``params`` are written in place (matched by name, or by position for a list) after their shapes and dtypes
    are checked. Everything is checked before anything changes: on error the optimizer, scheduler and
    parameters are as they were.
    """
    try:
        # Our own file object: np.load leaves its own open when the zip directory is unreadable.
        with open(os.fspath(path), "rb") as f, np.load(f, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{os.fspath(path)!r} is not a readable fusedoptim checkpoint: {e}") from e
    if "__manifest__" not in arrays:
        raise ValueError(f"{os.fspath(path)!r} is not a fusedoptim checkpoint (no manifest)")
    try:
        manifest = json.loads(str(arrays.pop("__manifest__")))
    except (json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"{os.fspath(path)!r} has a damaged manifest: {e}") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{os.fspath(path)!r} is not a fusedoptim checkpoint")
    if manifest.get("version") != VERSION:
        raise ValueError(f"checkpoint version {manifest.get('version')!r} is not supported (expected {VERSION})")
    try:
        parts = {k: _decode(manifest.get(k), arrays) for k in ("optimizer", "scheduler", "params", "extra")}
    except (TypeError, KeyError, ValueError, RecursionError) as e:
        raise ValueError(f"checkpoint is damaged: {type(e).__name__} ({e})") from e
    if parts["extra"] is not None and not isinstance(parts["extra"], dict):
        raise ValueError("checkpoint is damaged: its 'extra' entry is not a dict")
    if parts["params"] is not None and not (
        isinstance(parts["params"], dict) and all(isinstance(v, np.ndarray) for v in parts["params"].values())
    ):
        raise ValueError("checkpoint is damaged: its parameters are not a dict of arrays")
    for name, target in (("optimizer", optimizer), ("scheduler", scheduler), ("params", params)):
        if target is not None and parts[name] is None:
            raise ValueError(f"checkpoint holds no {name} state")

    if params is not None:
        targets, saved = _params_dict(params), parts["params"]
        missing, unexpected = sorted(set(targets) - set(saved)), sorted(set(saved) - set(targets))
        if strict and (missing or unexpected):
            raise ValueError(f"checkpoint parameters do not match: missing {missing}, unexpected {unexpected}")
        for name in set(targets) & set(saved):
            t, s = targets[name], saved[name]
            if t.shape != s.shape or t.dtype != s.dtype:
                raise ValueError(
                    f"checkpoint parameter {name!r} is {s.dtype}{list(s.shape)}, the array is {t.dtype}{list(t.shape)}"
                )
            if not t.flags.writeable:  # checked before the optimizer's state is replaced
                raise ValueError(f"parameter {name!r} is read-only; load writes the saved values into it")
    before = optimizer.state_dict() if optimizer is not None else None
    if optimizer is not None:
        optimizer.load_state_dict(parts["optimizer"], strict=strict)
    if scheduler is not None:
        try:
            scheduler.load_state_dict(parts["scheduler"])
        except Exception:
            if optimizer is not None:
                optimizer.load_state_dict(before)
            raise
    if params is not None:
        targets, saved = _params_dict(params), parts["params"]
        for name in set(targets) & set(saved):
            np.copyto(targets[name], saved[name])
    return dict(parts["extra"] or {})
