"""The demo's training checkpoints: one ``.npz`` with arrays by name and a JSON document of everything else.

Private to the demo (a general checkpoint API is a separate piece of work). Arrays keep their exact bits;
the JSON part holds floats by ``repr``, which round-trips exactly, and the random generator's state as
Python integers, so a resumed run continues bit for bit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Union

import numpy as np

_META = "__meta__"
_FORMAT = "fusedoptim-demo-checkpoint-1"


class CheckpointError(ValueError):
    """The file is not a demo checkpoint, or it was made by a run with different settings."""


def save(path: Union[str, os.PathLike[str]], arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Writes ``arrays`` and ``meta`` to ``path`` atomically (a temporary file renamed over it)."""
    path = Path(path)
    if _META in arrays:
        raise ValueError(f"array name {_META!r} is reserved")
    document = json.dumps({"format": _FORMAT, **meta})
    temporary = path.with_name(path.name + ".tmp")
    # A file object, not a name: np.savez would append ".npz" to a name that lacks it.
    payload: dict[str, Any] = {**arrays, _META: np.array(document)}
    with open(temporary, "wb") as f:
        np.savez(f, **payload)
    os.replace(temporary, path)


def load(path: Union[str, os.PathLike[str]]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Reads a checkpoint written by :func:`save`; arrays are private copies."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise CheckpointError(f"--resume {path}: no such file") from None
    except (OSError, ValueError) as error:
        raise CheckpointError(f"--resume {path}: not a readable .npz checkpoint ({error})") from None
    if _META not in arrays:
        raise CheckpointError(f"--resume {path}: not a fusedoptim demo checkpoint (no {_META} entry)")
    meta = json.loads(str(arrays.pop(_META)))
    if meta.get("format") != _FORMAT:
        raise CheckpointError(f"--resume {path}: unknown checkpoint format {meta.get('format')!r}")
    return arrays, meta


def optimizer_state_to_npz(state_dict: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Splits an optimizer ``state_dict`` into arrays (``optimizer/<index>/<key>``) and a JSON-able rest."""
    arrays: dict[str, np.ndarray] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in state_dict["state"].items():
        scalars[str(index)] = {}
        for key, value in entry.items():
            if isinstance(value, np.ndarray):
                arrays[f"optimizer/{index}/{key}"] = value
            else:
                scalars[str(index)][key] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state_dict["param_groups"]]
    return arrays, {"scalars": scalars, "param_groups": groups}


def optimizer_state_from_npz(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`optimizer_state_to_npz`."""
    state: dict[int, dict[str, Any]] = {int(i): dict(entry) for i, entry in meta["scalars"].items()}
    for name, value in arrays.items():
        if name.startswith("optimizer/"):
            _, index, key = name.split("/", 2)
            state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}
