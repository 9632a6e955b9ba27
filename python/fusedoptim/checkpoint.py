"""Checkpoints: optimizer and scheduler state (and optionally the parameters) in one ``.npz`` file.

The file is a zip of ``.npy`` members, as ``np.savez`` writes it: every array under its own key and a JSON manifest
(``__manifest__``) for everything else (hyperparameters, step counts, key types). Arrays hold only numbers and
booleans, written and read with ``allow_pickle=False``: opening a checkpoint never runs code. Resuming from it
continues training bit for bit.

A checkpoint is data from outside the program, so :func:`load` trusts nothing in it: it reads the manifest first,
then only the members the manifest names, each after checking its declared type and size against the zip directory
and the file's length (a small file cannot make it allocate or decompress gigabytes), and it checks every value
before it changes anything.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import struct
import uuid
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any

import numpy as np

from . import _precision
from .lr_scheduler import LRScheduler

__all__ = ["load", "save"]

FORMAT = "fusedoptim-checkpoint"
VERSION = 1
Params = Mapping[str, np.ndarray] | Sequence[np.ndarray]

_MANIFEST = "__manifest__"
_NPY_MAGIC = b"\x93NUMPY"
# Deflate cannot expand data more than 1032 times (a 258-byte match coded in two bits, RFC 1951); a member whose
# directory entry claims more is lying, and is refused before it is decompressed. The slack covers tiny members.
_MAX_DEFLATE_RATIO = 1032
_DEFLATE_SLACK = 1024
# What reading a damaged zip or .npy member raises, besides ValueError: zipfile's BadZipFile (a bad CRC, a bad
# local header), zlib.error (a corrupt deflate stream), EOFError and OSError (a member cut short), struct.error.
_READ_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, struct.error, NotImplementedError)


def _describe(error: BaseException) -> str:
    """``zlib.error: Error -3 ...`` (a bare ``error: ...`` would not say where it came from)."""
    kind = type(error)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    return f"{name}: {error}"


def _storable(dtype: np.dtype) -> bool:
    """Booleans and numbers (not objects, strings, records or raw bytes): stored as themselves, never pickled."""
    return dtype.kind in "biufc" and dtype.fields is None and dtype.subdtype is None


class _Encoder:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def encode(self, value: Any, where: str) -> Any:
        """``value`` as JSON, its arrays moved to ``self.arrays``; ``where`` names it in error messages."""
        if isinstance(value, np.ndarray):
            key = f"array_{len(self.arrays)}"
            bfloat16 = _precision._loaded_bfloat16()  # None without ml_dtypes (and dtype == None is float64!)
            if bfloat16 is not None and value.dtype == bfloat16:
                # .npy has no bfloat16 (it would load as raw void): stored as its bits, retyped on load
                self.arrays[key] = value.view(np.uint16)
                return {"__array__": key, "dtype": "bfloat16"}
            if not _storable(value.dtype):
                # np.savez would pickle an object array and load() refuses pickles (and strings, records, raw
                # bytes): refused here, before the file is touched, not after a good checkpoint was replaced.
                raise TypeError(
                    f"cannot store {where} in a checkpoint: it is a {value.dtype} array; a checkpoint holds arrays "
                    "of numbers and booleans only (an object array would be pickled)"
                )
            self.arrays[key] = value
            return {"__array__": key}
        if isinstance(value, np.generic):
            return self.encode(value.item(), where)
        if isinstance(value, Mapping):
            return {
                "__dict__": [
                    [self.encode(k, f"a key of {where}"), self.encode(v, f"{where}[{k!r}]")] for k, v in value.items()
                ]
            }
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f"cannot store {where} in a checkpoint: a {type(value).__name__} ({value!r})")


def _array_keys(value: Any) -> Iterator[Any]:
    """The keys of the arrays a manifest entry refers to (not checked: _decode does that)."""
    if isinstance(value, list):
        for v in value:
            yield from _array_keys(v)
    elif isinstance(value, dict):
        if "__array__" in value:
            yield value["__array__"]
        for v in value.values():
            yield from _array_keys(v)


def _decode(value: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if isinstance(value, dict):
        if "__array__" in value:
            key = value["__array__"]
            if not isinstance(key, str) or key not in arrays:
                raise ValueError(f"checkpoint is damaged: array {key!r} is missing")
            if value.get("dtype") == "bfloat16":
                if arrays[key].dtype != np.uint16:
                    raise ValueError(f"checkpoint is damaged: bfloat16 array {key!r} is not stored as uint16 bits")
                return arrays[key].view(_precision.bfloat16())  # ImportError without ml_dtypes, saying so
            return arrays[key]
        if "__tuple__" in value:
            if not isinstance(value["__tuple__"], list):
                raise ValueError("checkpoint is damaged: a tuple entry is not a list")
            return tuple(_decode(v, arrays) for v in value["__tuple__"])
        if "__dict__" in value:
            if not isinstance(value["__dict__"], list) or not all(
                isinstance(item, list) and len(item) == 2 for item in value["__dict__"]
            ):
                raise ValueError("checkpoint is damaged: a dict entry is not a list of [key, value] pairs")
            return {_decode(k, arrays): _decode(v, arrays) for k, v in value["__dict__"]}
        raise ValueError("checkpoint is damaged: unknown entry in its manifest")
    return value


def _params_dict(params: Params) -> dict[str, np.ndarray]:
    if isinstance(params, Mapping):
        return dict(params)
    return {str(i): p for i, p in enumerate(params)}


# --- writing ---------------------------------------------------------------------------------------------------


def _write_npz(file: IO[bytes], arrays: Mapping[str, np.ndarray]) -> None:
    """np.savez's layout (an uncompressed zip of .npy members, zip64 allowed), with allow_pickle=False."""
    with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, value in arrays.items():
            with archive.open(key + ".npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)


def _fsync_directory(directory: str) -> None:
    """Makes the rename durable (a crash right after save keeps the new file); not possible everywhere."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save(
    path: str | os.PathLike,
    *,
    optimizer: Any = None,
    scheduler: Any = None,
    params: Params | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Writes ``optimizer.state_dict()``, ``scheduler.state_dict()``, the ``params`` (a dict by name or a list)
    and ``extra`` (JSON-able values and arrays of numbers, e.g. the epoch) to one ``.npz`` file, atomically.

    The file is written under a name of its own in the same directory, flushed to disk, then renamed onto
    ``path``: an interrupted or failed save (an exception, Ctrl-C, a full disk) leaves the previous file as it
    was and removes its temporary file, and concurrent saves to one path (threads, or every MPI rank) each write
    a whole file, the last rename winning.

    Raises
    ------
    TypeError
        Before anything is written, if a value cannot be stored: an array of anything but numbers and booleans
        (objects, strings, records, raw bytes), or a value that is not a number, string, bool, None, list,
        tuple, dict or array.
    """
    encoder = _Encoder()  # raises TypeError for what cannot be stored, before any file is opened
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "optimizer": None if optimizer is None else encoder.encode(optimizer.state_dict(), "optimizer.state_dict()"),
        "scheduler": None if scheduler is None else encoder.encode(scheduler.state_dict(), "scheduler.state_dict()"),
        "params": None if params is None else encoder.encode(_params_dict(params), "params"),
        "extra": None if extra is None else encoder.encode(dict(extra), "extra"),
    }
    arrays = {_MANIFEST: np.array(json.dumps(manifest)), **encoder.arrays}

    path = os.fsdecode(os.fspath(path))
    directory, name = os.path.split(path)
    # A name no other save (thread, process, rank) can pick; O_EXCL makes sure, and mode 0o666 lets the umask
    # give the file the permissions an ordinary open() would.
    temporary = os.path.join(directory, f"{name}.tmp-{uuid.uuid4().hex}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            _write_npz(file, arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:  # KeyboardInterrupt too: the temporary file must not be left behind
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


# --- reading ---------------------------------------------------------------------------------------------------


def _check_sizes(path: str, info: zipfile.ZipInfo, file_size: int) -> None:
    """Checks a member's directory entry against the file, before anything of it is read."""
    name = info.filename
    if info.flag_bits & 0x1:
        raise ValueError(f"{path}: member {name!r} is encrypted")
    if info.header_offset + info.compress_size > file_size:
        raise ValueError(
            f"{path}: member {name!r} claims {info.compress_size} bytes at offset {info.header_offset}, past the end "
            f"of the {file_size}-byte file (the file is cut short or damaged)"
        )
    if info.compress_type == zipfile.ZIP_STORED:
        if info.file_size != info.compress_size:
            raise ValueError(
                f"{path}: member {name!r} is stored uncompressed in {info.compress_size} bytes but claims "
                f"{info.file_size} bytes"
            )
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        if info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + _DEFLATE_SLACK:
            raise ValueError(
                f"{path}: member {name!r} claims {info.file_size} bytes from {info.compress_size} compressed bytes, "
                f"more than deflate can expand ({_MAX_DEFLATE_RATIO}:1)"
            )
    else:
        raise ValueError(
            f"{path}: member {name!r} is compressed with zip method {info.compress_type}; a checkpoint's members "
            "are stored (np.savez) or deflated (np.savez_compressed)"
        )


def _read_header(path: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[np.dtype, tuple[int, ...]]:
    """A member's .npy header, checked against its size in the zip directory (only the header is decompressed)."""
    name = info.filename
    try:
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
            header_size = member.tell()
    except _READ_ERRORS as e:
        raise ValueError(f"{path}: member {name!r} is damaged ({_describe(e)})") from e
    if not _storable(dtype) and not (name == _MANIFEST + ".npy" and dtype.kind == "U"):
        raise ValueError(
            f"{path}: member {name!r} holds an array of dtype {dtype}; a checkpoint holds arrays of numbers and "
            "booleans only (never pickled objects)"
        )
    nbytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow, however large the claim
    if header_size + nbytes != info.file_size:
        raise ValueError(
            f"{path}: member {name!r} declares a {dtype} array of shape {shape} ({nbytes} bytes), but holds "
            f"{info.file_size - header_size} bytes"
        )
    return dtype, shape


def _read_member(path: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    dtype, shape = _read_header(path, archive, info)
    try:
        with archive.open(info) as member:
            array = np.lib.format.read_array(member, allow_pickle=False)
    except _READ_ERRORS as e:
        raise ValueError(f"{path}: member {info.filename!r} is damaged ({_describe(e)})") from e
    if array.dtype != dtype or array.shape != shape:  # the header was read twice: it must not have changed
        raise ValueError(f"{path}: member {info.filename!r} is damaged (its header changed)")
    if not array.dtype.isnative:  # written on a machine of the other byte order: the kernels need native
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def _read(path: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The manifest and the arrays it names, every member checked before it is decompressed."""
    unreadable = f"{path}: not a readable fusedoptim checkpoint"
    with open(path, "rb") as file:
        if file.read(len(_NPY_MAGIC)) == _NPY_MAGIC:
            raise ValueError(f"{unreadable} (it is a .npy file holding one array, not a .npz archive)")
        file_size = file.seek(0, os.SEEK_END)
        try:
            archive = zipfile.ZipFile(file)
        except _READ_ERRORS as e:
            raise ValueError(f"{unreadable} ({_describe(e)})") from e
        with archive:
            members: dict[str, zipfile.ZipInfo] = {}
            for info in archive.infolist():
                if info.filename in members:
                    raise ValueError(f"{unreadable} (member {info.filename!r} appears twice)")
                members[info.filename] = info
            if _MANIFEST + ".npy" not in members:
                raise ValueError(f"{path}: not a fusedoptim checkpoint (no manifest)")

            info = members[_MANIFEST + ".npy"]
            _check_sizes(path, info, file_size)
            text = _read_member(path, archive, info)
            if text.dtype.kind != "U" or text.shape != ():
                raise ValueError(f"{path}: damaged manifest (a {text.dtype} array of shape {text.shape}, not text)")
            try:
                manifest = json.loads(str(text))
            except (json.JSONDecodeError, RecursionError) as e:
                raise ValueError(f"{path}: damaged manifest ({_describe(e)})") from e
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise ValueError(f"{path}: not a fusedoptim checkpoint (its manifest names no format {FORMAT!r})")
            if manifest.get("version") != VERSION:
                raise ValueError(
                    f"{path}: checkpoint version {manifest.get('version')!r} is not supported (expected {VERSION})"
                )

            try:
                keys = set(_array_keys(manifest))
            except (TypeError, RecursionError) as e:  # an unhashable key, or nesting deeper than Python's stack
                raise ValueError(f"{path}: checkpoint is damaged ({_describe(e)})") from e
            # Members the manifest does not name are ignored, never decompressed (save() writes none; a tool may
            # add some). A named member that is missing is reported by _decode, naming the entry.
            named = {f"{key}.npy" for key in keys if isinstance(key, str)}
            present = [members[name] for name in sorted(named) if name in members]
            for info in present:  # every size checked before the first array is read
                _check_sizes(path, info, file_size)
            arrays = {info.filename[: -len(".npy")]: _read_member(path, archive, info) for info in present}
    return manifest, arrays


def load(
    path: str | os.PathLike,
    *,
    optimizer: Any = None,
    scheduler: Any = None,
    params: Params | None = None,
    strict: bool = True,
) -> dict[str, Any]:
    """Restores what :func:`save` wrote into the given objects and returns the ``extra`` dict.

    ``params`` are written in place (matched by name, or by position for a list) after their shapes and dtypes
    are checked. Everything is checked before anything changes: on error the optimizer, scheduler and
    parameters are as they were.

    Only the members the manifest names are read, each after its declared dtype (numbers and booleans only) and
    size are checked against the zip directory and the file; members the manifest does not name are ignored,
    never decompressed (``save`` writes none).

    Raises
    ------
    ValueError
        ``"<path>: <problem>"`` for every kind of damage (not a zip, a ``.npy`` file, a truncated file, a corrupt
        member, a member larger than it can be, a damaged manifest, another format or version) and for state
        the optimizer, scheduler or parameters refuse. Nothing is changed.
    OSError
        If the file cannot be opened (e.g. ``FileNotFoundError``).
    """
    path = os.fsdecode(os.fspath(path))
    manifest, arrays = _read(path)
    try:
        parts = {k: _decode(manifest.get(k), arrays) for k in ("optimizer", "scheduler", "params", "extra")}
    except ValueError as e:  # _decode's own, naming the damage
        raise ValueError(f"{path}: {e}") from e
    except (TypeError, KeyError, RecursionError) as e:  # e.g. an unhashable dict key
        raise ValueError(f"{path}: checkpoint is damaged ({_describe(e)})") from e
    if parts["extra"] is not None and not isinstance(parts["extra"], dict):
        raise ValueError(f"{path}: checkpoint is damaged: its 'extra' entry is not a dict")
    if parts["params"] is not None and not (
        isinstance(parts["params"], dict) and all(isinstance(v, np.ndarray) for v in parts["params"].values())
    ):
        raise ValueError(f"{path}: checkpoint is damaged: its parameters are not a dict of arrays")
    for name, target in (("optimizer", optimizer), ("scheduler", scheduler), ("params", params)):
        if target is not None and parts[name] is None:
            raise ValueError(f"{path}: checkpoint holds no {name} state")

    if params is not None:
        targets, saved = _params_dict(params), parts["params"]
        assert saved is not None  # a checkpoint without parameters was refused above
        missing, unexpected = sorted(set(targets) - set(saved)), sorted(set(saved) - set(targets), key=repr)
        if strict and (missing or unexpected):
            raise ValueError(f"{path}: checkpoint parameters do not match: missing {missing}, unexpected {unexpected}")
        for name in set(targets) & set(saved):
            t, s = targets[name], saved[name]
            if t.shape != s.shape or t.dtype != s.dtype:
                raise ValueError(
                    f"{path}: checkpoint parameter {name!r} is {s.dtype}{list(s.shape)}, the array is "
                    f"{t.dtype}{list(t.shape)}"
                )
            if not t.flags.writeable:  # checked before the optimizer's state is replaced
                raise ValueError(f"{path}: parameter {name!r} is read-only; load writes the saved values into it")

    # The optimizer's and the scheduler's load_state_dict each check everything before changing anything. Our
    # schedulers are checked first, so that a bad scheduler state is refused before the optimizer changes; any
    # other scheduler is loaded after the optimizer, which is put back if it fails. Parameters come last.
    try:
        if isinstance(scheduler, LRScheduler):
            scheduler._check_state(parts["scheduler"])
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
    except (TypeError, ValueError, KeyError, IndexError) as e:
        # The state came from the file: refused state is a problem of this file.
        raise ValueError(f"{path}: {e}") from e
    if params is not None:
        targets, saved = _params_dict(params), parts["params"]
        assert saved is not None  # a checkpoint without parameters was refused above
        for name in set(targets) & set(saved):
            np.copyto(targets[name], saved[name])
    return dict(parts["extra"] or {})
