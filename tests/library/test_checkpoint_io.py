"""Checkpoint I/O at the edges (issue 18, class 6): concurrent and interrupted saves, values that cannot be stored,
files that are not checkpoints, damaged or hostile members, and scheduler state that is not a scheduler's.

Every refusal must be a ValueError naming the file (or, for save, a TypeError before anything is written), and
must leave the file on disk, the optimizer, the scheduler and the parameters exactly as they were.
tests/library/test_reliability.py holds the table of damaged files in the manifest's terms; these are the file-level
cases.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import threading
import zipfile

import numpy as np
import pytest

import fusedoptim
from fusedoptim import lr_scheduler
from fusedoptim.lr_scheduler import StepLR

MB = 1 << 20


def _trained(seed: int = 0, n: int = 12):
    rng = np.random.default_rng(seed)
    params = {"w": rng.standard_normal(n).astype(np.float32), "b": np.ones(4, np.float32)}
    opt = fusedoptim.Adam(params, lr=0.1)
    sched = StepLR(opt, step_size=2)
    for _ in range(3):
        opt.step({"w": rng.standard_normal(n).astype(np.float32), "b": np.full(4, -0.2, np.float32)})
        sched.step()
    return params, opt, sched


def _fresh(n: int = 12):
    params = {"w": np.zeros(n, np.float32), "b": np.zeros(4, np.float32)}
    opt = fusedoptim.Adam(params, lr=0.5)
    opt.step({"w": np.ones(n, np.float32), "b": np.ones(4, np.float32)})
    return params, opt, StepLR(opt, step_size=5)


def _snapshot(params, opt, sched):
    return pickle.dumps(
        ({k: v.tobytes() for k, v in params.items()}, opt.state_dict(), sched.state_dict(), opt.param_groups)
    )


def _refused(path, match=None, **targets):
    """load() raises a ValueError naming the file (and ``match``) and changes nothing."""
    params, opt, sched = targets.get("params") or _fresh()
    before = _snapshot(params, opt, sched)
    with pytest.raises(ValueError, match=match) as info:
        fusedoptim.load(path, optimizer=opt, scheduler=sched, params=params)
    assert str(path) in str(info.value)
    assert _snapshot(params, opt, sched) == before
    return info.value


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.npz"
    params, opt, sched = _trained()
    fusedoptim.save(path, optimizer=opt, scheduler=sched, params=params, extra={"epoch": 3})
    return path


def _members(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write_zip(path, members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _npy_header(dtype, shape) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        out, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
    )
    return out.getvalue()


def _data_offset(raw: bytes, info: zipfile.ZipInfo) -> int:
    """Where a member's (compressed) data starts: after its local header, file name and extra field."""
    name_length, extra_length = struct.unpack("<HH", raw[info.header_offset + 26 : info.header_offset + 30])
    return info.header_offset + 30 + name_length + extra_length


def _set_central_sizes(raw: bytearray, name: str, compressed: int, uncompressed: int) -> None:
    """Rewrites the sizes a member's entry in the zip directory claims (32-bit fields: small files only)."""
    end = raw.rindex(b"PK\x05\x06")  # the end record, which says where the directory starts
    (start,) = struct.unpack("<I", raw[end + 16 : end + 20])
    while raw[start : start + 4] == b"PK\x01\x02":
        name_length, extra_length, comment_length = struct.unpack("<HHH", raw[start + 28 : start + 34])
        if raw[start + 46 : start + 46 + name_length].decode() == name:
            raw[start + 20 : start + 28] = struct.pack("<II", compressed, uncompressed)
            return
        start += 46 + name_length + extra_length + comment_length
    raise AssertionError(f"no member {name!r}")


def _temporaries(directory) -> list[str]:
    return sorted(name for name in os.listdir(directory) if ".tmp" in name)


_MEASURED_LOAD = """
import json, resource, sys, time
import numpy as np, fusedoptim
from fusedoptim.lr_scheduler import StepLR

params = {"w": np.zeros(12, np.float32), "b": np.zeros(4, np.float32)}
opt = fusedoptim.Adam(params, lr=0.5)
sched = StepLR(opt, step_size=5)
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
start = time.perf_counter()
try:
    fusedoptim.load(sys.argv[1], optimizer=opt, scheduler=sched, params=params)
    error = None
except BaseException as e:
    error = f"{type(e).__name__}: {e}"
print(json.dumps({"seconds": time.perf_counter() - start, "error": error,
                  "rss_growth": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before}))
"""


def _measure_load(path) -> dict:
    """Loads ``path`` in a fresh interpreter, whose peak RSS (ru_maxrss) before the load is its own."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURED_LOAD, str(path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- save: concurrent, interrupted, refused ----------------------------------------------------------------------


def test_concurrent_saves_from_threads_each_write_a_whole_file(tmp_path):
    """Two threads save to one path over and over while a third loads it: every load succeeds (each save is a
    whole file renamed into place), the last file is one thread's, and no temporary file is left."""
    path = tmp_path / "c.npz"
    runs = [_trained(seed, n=500_000) for seed in (1, 2)]  # 2 MB a save: long enough for the saves to overlap
    fusedoptim.save(path, params=runs[0][0], optimizer=runs[0][1], extra={"who": 0})
    start, done, errors = threading.Barrier(3), threading.Event(), []

    def saver(who):
        params, opt, _ = runs[who]
        start.wait()
        try:
            for _ in range(15):
                fusedoptim.save(path, params=params, optimizer=opt, extra={"who": who})
        except BaseException as e:
            errors.append(e)

    def reader():
        start.wait()
        params, opt, _ = _fresh(n=500_000)
        try:
            while not done.is_set():
                fusedoptim.load(path, params=params, optimizer=opt)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=saver, args=(who,)) for who in (0, 1)] + [threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads[:2]:
        t.join()
    done.set()
    threads[2].join()
    assert not errors, errors
    params, opt, _ = _fresh(n=500_000)
    who = fusedoptim.load(path, params=params, optimizer=opt)["who"]
    np.testing.assert_array_equal(params["w"], runs[who][0]["w"])
    assert _temporaries(tmp_path) == []


def test_concurrent_saves_from_processes_each_write_a_whole_file(tmp_path):
    """As every MPI rank saving to one path: two processes, each saving 20 times; both succeed, the file loads."""
    path = tmp_path / "c.npz"
    script = textwrap.dedent(
        f"""
        import sys, numpy as np, fusedoptim
        who = int(sys.argv[1])
        params = [np.full(300_000, who, np.float32)]
        opt = fusedoptim.SGD(params, lr=0.1, momentum=0.9)
        opt.step([np.ones(300_000, np.float32)])
        for _ in range(20):
            fusedoptim.save({str(path)!r}, optimizer=opt, params=params, extra={{"who": who}})
        """
    )
    ranks = [
        subprocess.Popen([sys.executable, "-c", script, str(who)], stderr=subprocess.PIPE, text=True) for who in (0, 1)
    ]
    for rank in ranks:
        _, stderr = rank.communicate(timeout=300)
        assert rank.returncode == 0, stderr
    params = [np.zeros(300_000, np.float32)]
    who = fusedoptim.load(path, optimizer=fusedoptim.SGD(params, lr=1.0, momentum=0.5), params=params)["who"]
    expected = [np.full(300_000, who, np.float32)]
    fusedoptim.SGD(expected, lr=0.1, momentum=0.9).step([np.ones(300_000, np.float32)])
    np.testing.assert_array_equal(params[0], expected[0])
    assert _temporaries(tmp_path) == []


class _Interrupted(Exception):
    pass


@pytest.mark.parametrize("error", [_Interrupted, KeyboardInterrupt, OSError])
@pytest.mark.parametrize("where", ["writing an array", "fsync", "rename"])
def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path, good, monkeypatch, where, error):
    """An exception or Ctrl-C while the file is written, flushed or renamed: the previous checkpoint is byte for
    byte what it was (it still loads) and the directory holds nothing else."""
    old = good.read_bytes()
    params, opt, sched = _trained(seed=7)
    if where == "writing an array":
        write_array, calls = np.lib.format.write_array, []

        def failing(*args, **kwargs):  # the manifest and one array get written, then the disk "fills"
            calls.append(1)
            if len(calls) == 3:
                raise error("interrupted while writing")
            return write_array(*args, **kwargs)

        monkeypatch.setattr(np.lib.format, "write_array", failing)
    elif where == "fsync":
        monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(error("interrupted in fsync")))
    else:
        monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(error("interrupted in rename")))
    with pytest.raises(error):
        fusedoptim.save(good, optimizer=opt, scheduler=sched, params=params, extra={"epoch": 9})
    monkeypatch.undo()
    assert good.read_bytes() == old
    assert sorted(os.listdir(good.parent)) == ["good.npz"]
    assert fusedoptim.load(good, optimizer=_fresh()[1]) == {"epoch": 3}


def test_a_failed_first_save_leaves_nothing(tmp_path, monkeypatch):
    params, opt, _sched = _trained()
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        fusedoptim.save(tmp_path / "new.npz", optimizer=opt, params=params)
    assert os.listdir(tmp_path) == []


def test_save_keeps_the_permissions_an_ordinary_file_gets(tmp_path):
    """The temporary file is created as open() would create it (mode 0o666 less the umask), not 0o600."""
    params, opt, _ = _trained()
    umask = os.umask(0o022)
    try:
        fusedoptim.save(tmp_path / "c.npz", optimizer=opt, params=params)
    finally:
        os.umask(umask)
    assert (tmp_path / "c.npz").stat().st_mode & 0o777 == 0o644


class _StateDictOf:
    def __init__(self, state):
        self._state = state

    def state_dict(self):
        return self._state


UNSTORABLE = {
    "object array in extra": dict(extra={"ema": np.array([{"a": 1}], dtype=object)}),
    "object array deep in extra": dict(extra={"runs": [{"best": (1, np.array([None, 2.0], dtype=object))}]}),
    "structured array in extra": dict(extra={"log": np.zeros(3, dtype=[("step", "i4"), ("loss", "f4")])}),
    "void array in extra": dict(extra={"blob": np.zeros(2, dtype="V8")}),
    "string array in extra": dict(extra={"names": np.array(["w", "b"])}),
    "object array as a parameter": dict(params=[np.array([1.0, None], dtype=object)]),
    "object array in optimizer state": dict(
        optimizer=_StateDictOf({"state": {0: {"exp_avg": np.array([object()], dtype=object)}}, "param_groups": []})
    ),
    "object array in scheduler state": dict(scheduler=_StateDictOf({"history": np.array([[1], [2, 3]], dtype=object)})),
    "an object that is not data": dict(extra={"callback": print}),
}


@pytest.mark.parametrize("case", list(UNSTORABLE))
def test_unstorable_values_are_refused_before_anything_is_written(good, case):
    """np.savez pickles object arrays and load() refuses pickles: such a save must fail, not replace a good file
    with one that cannot be loaded."""
    old = good.read_bytes()
    with pytest.raises(TypeError, match="cannot store"):
        fusedoptim.save(good, **UNSTORABLE[case])
    assert good.read_bytes() == old
    assert sorted(os.listdir(good.parent)) == ["good.npz"]


def test_the_refusal_says_where_the_value_is(good):
    with pytest.raises(TypeError, match=r"extra\['runs'\]\[0\]\['best'\]\[1\].*object array"):
        fusedoptim.save(good, **UNSTORABLE["object array deep in extra"])


def test_what_save_writes_is_np_savez_layout_without_pickles(good):
    """The format is unchanged (np.load reads it) and no member is a pickle."""
    with np.load(good, allow_pickle=False) as data:
        assert "__manifest__" in data.files and json.loads(str(data["__manifest__"]))["version"] == 1
        assert all(data[key].dtype != object for key in data.files)
    with zipfile.ZipFile(good) as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}


# --- load: files that are not checkpoints --------------------------------------------------------------------------


def test_a_npy_file_is_refused(tmp_path):
    path = tmp_path / "weights.npy"
    np.save(path, np.ones(3, np.float32))
    _refused(path, r"\.npy file")


@pytest.mark.parametrize("seed", range(4))
def test_random_bytes_are_refused(tmp_path, seed):
    rng = np.random.default_rng(seed)
    path = tmp_path / "random.npz"
    prefix = [b"", b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY"][seed]  # also bytes that start like a zip or .npy
    path.write_bytes(prefix + rng.bytes(int(rng.integers(0, 5000))))
    _refused(path)


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99])
def test_a_truncated_file_is_refused(tmp_path, good, fraction):
    raw = good.read_bytes()
    path = tmp_path / "cut.npz"
    path.write_bytes(raw[: int(len(raw) * fraction)])
    _refused(path, "not a readable fusedoptim checkpoint")


@pytest.mark.parametrize("cut", [1, 22, 30])
def test_a_file_missing_its_last_bytes_is_refused(tmp_path, good, cut):
    path = tmp_path / "cut.npz"
    path.write_bytes(good.read_bytes()[:-cut])
    _refused(path, "not a readable fusedoptim checkpoint")


def test_a_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        fusedoptim.load(tmp_path / "nowhere.npz", optimizer=_fresh()[1])


# --- load: damaged and hostile members -----------------------------------------------------------------------------


def test_a_deflated_checkpoint_loads(tmp_path, good):
    """A checkpoint recompressed by another tool (np.savez_compressed's layout) is still a checkpoint."""
    path = tmp_path / "deflated.npz"
    _write_zip(path, _members(good), zipfile.ZIP_DEFLATED)
    params, opt, sched = _fresh()
    assert fusedoptim.load(path, optimizer=opt, scheduler=sched, params=params) == {"epoch": 3}
    np.testing.assert_array_equal(params["w"], _trained()[0]["w"])


@pytest.mark.parametrize("member", ["__manifest__.npy", "array_0.npy"])
def test_a_corrupt_deflate_stream_is_refused(tmp_path, good, member):
    path = tmp_path / "corrupt.npz"
    _write_zip(path, _members(good), zipfile.ZIP_DEFLATED)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        start = _data_offset(raw, archive.getinfo(member))
    raw[start : start + 4] = b"\xff\xff\xff\xff"  # block type 3 does not exist: zlib.error
    path.write_bytes(raw)
    _refused(path, f"member '{member}' is damaged .*zlib.error")


def test_a_flipped_byte_in_array_data_is_refused(tmp_path, good):
    path = tmp_path / "flipped.npz"
    raw = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as archive:
        info = archive.getinfo("array_0.npy")
    raw[_data_offset(raw, info) + info.file_size - 1] ^= 0xFF  # the last byte of the values: only the CRC sees it
    path.write_bytes(raw)
    _refused(path, "Bad CRC-32")


def test_a_member_declaring_2_to_the_40_values_is_refused_without_allocating(tmp_path, good):
    """Its .npy header claims 4 TiB of float32; the zip directory says 16 bytes. Refused from the header, in
    well under a second, and the process's peak memory does not move (it was a MemoryError)."""
    members = _members(good)
    members["array_0.npy"] = _npy_header(np.float32, (2**40,)) + bytes(16)
    path = tmp_path / "huge.npz"
    _write_zip(path, members)
    _refused(path, r"member 'array_0.npy' declares a float32 array of shape \(1099511627776,\)")
    measured = _measure_load(path)
    assert measured["error"].startswith("ValueError") and "declares" in measured["error"], measured
    assert measured["seconds"] < 0.5, measured
    assert measured["rss_growth"] < 20 * MB, measured


@pytest.mark.parametrize("claim", ["uncompressed size", "both sizes"])
def test_a_zip_directory_claiming_more_than_the_file_holds_is_refused(tmp_path, good, claim):
    """The .npy header and the zip directory agree on 1 GiB, the file has 16 bytes of it: refused before a byte of
    the member is read."""
    members = _members(good)
    header = _npy_header(np.float32, (2**28,))
    members["array_0.npy"] = header + bytes(16)
    path = tmp_path / "lying.npz"
    _write_zip(path, members)
    raw = bytearray(path.read_bytes())
    claimed = len(header) + 2**30
    _set_central_sizes(raw, "array_0.npy", claimed if claim == "both sizes" else len(header) + 16, claimed)
    path.write_bytes(raw)
    with zipfile.ZipFile(path) as archive:  # the lie is what zipfile reads
        assert archive.getinfo("array_0.npy").file_size == claimed
    _refused(path, "member 'array_0.npy' (is stored uncompressed|claims .* past the end)")


def test_a_deflated_member_claiming_more_than_deflate_can_expand_is_refused(tmp_path, good):
    members = _members(good)
    header = _npy_header(np.float32, (2**28,))
    members["array_0.npy"] = header + bytes(4096)
    path = tmp_path / "lying.npz"
    _write_zip(path, members, zipfile.ZIP_DEFLATED)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        compressed = archive.getinfo("array_0.npy").compress_size
    _set_central_sizes(raw, "array_0.npy", compressed, len(header) + 2**30)
    path.write_bytes(raw)
    _refused(path, "more than deflate can expand")


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    """A good checkpoint plus a member the manifest does not name: 600 MB of zeros deflated to 0.6 MB."""
    directory = tmp_path_factory.mktemp("bomb")
    params, opt, sched = _trained()
    good = directory / "good.npz"
    fusedoptim.save(good, optimizer=opt, scheduler=sched, params=params, extra={"epoch": 3})
    path = directory / "bomb.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in _members(good).items():
            archive.writestr(name, data)
        info = zipfile.ZipInfo("bomb.npy")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w") as member:
            member.write(_npy_header(np.uint8, (600 * MB,)))
            zeros = bytes(MB)
            for _ in range(600):
                member.write(zeros)
    assert path.stat().st_size < MB
    return path


def test_a_member_the_manifest_does_not_name_is_never_decompressed(bomb):
    """The 0.6 MB file took 600 MB and seconds to load: every member was decompressed before the manifest was
    read. Now the checkpoint loads, in milliseconds, and the bomb is never touched."""
    measured = _measure_load(bomb)
    assert measured["error"] is None, measured
    assert measured["seconds"] < 0.5, measured
    assert measured["rss_growth"] < 20 * MB, measured


def test_a_named_member_of_objects_is_refused_from_its_header(tmp_path, good):
    members = _members(good)
    out = io.BytesIO()
    np.save(out, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    members["array_0.npy"] = out.getvalue()
    path = tmp_path / "pickle.npz"
    _write_zip(path, members)
    _refused(path, "member 'array_0.npy' holds an array of dtype object")


def test_an_unsupported_compression_method_is_refused(tmp_path, good):
    path = tmp_path / "bzip2.npz"
    _write_zip(path, _members(good), zipfile.ZIP_BZIP2)
    _refused(path, "compressed with zip method 12")


def test_a_member_that_appears_twice_is_refused(tmp_path, good):
    members = _members(good)
    path = tmp_path / "twice.npz"
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.writestr("array_0.npy", members["array_0.npy"])
    _refused(path, "member 'array_0.npy' appears twice")


def test_big_endian_arrays_load_in_native_byte_order(tmp_path, good):
    """A checkpoint written on a big-endian machine: its parameter arrays are >f4, the arrays here float32."""
    members = _members(good)
    manifest = json.loads(str(np.lib.format.read_array(io.BytesIO(members["__manifest__.npy"]))))
    key = dict(manifest["params"]["__dict__"])["w"]["__array__"]
    array = np.lib.format.read_array(io.BytesIO(members[key + ".npy"]))
    out = io.BytesIO()
    np.save(out, array.astype(array.dtype.newbyteorder(">")))
    members[key + ".npy"] = out.getvalue()
    path = tmp_path / "big-endian.npz"
    _write_zip(path, members)
    params, opt, sched = _fresh()
    fusedoptim.load(path, optimizer=opt, scheduler=sched, params=params)
    np.testing.assert_array_equal(params["w"], _trained()[0]["w"], strict=True)


# --- load: scheduler state -------------------------------------------------------------------------------------


def _with_scheduler_state(tmp_path, good, **changes):
    """``good`` with entries of its scheduler state replaced or added (through the manifest)."""
    members = _members(good)
    with zipfile.ZipFile(good) as archive, archive.open("__manifest__.npy") as member:
        manifest = json.loads(str(np.lib.format.read_array(member)))
    for key, value in changes.items():
        manifest["scheduler"]["__dict__"].append([key, value])
    out = io.BytesIO()
    np.save(out, np.array(json.dumps(manifest)))
    members["__manifest__.npy"] = out.getvalue()
    path = tmp_path / "scheduler.npz"
    _write_zip(path, members)
    return path


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"step": 5}, r"Invalid state_dict\['step'\]: 5 \(StepLR has no state named 'step'"),
        ({"get_last_lr": None}, "has no state named 'get_last_lr'"),
        ({"optimizer_step": 1}, "has no state named 'optimizer_step'"),
        ({"last_epoch": -5}, r"Invalid state_dict\['last_epoch'\]: -5 \(expected an int >= -1\)"),
        ({"last_epoch": "3"}, r"Invalid state_dict\['last_epoch'\]: '3'"),
        ({"last_epoch": 2.5}, r"Invalid state_dict\['last_epoch'\]: 2.5"),
        ({"step_size": 0}, r"Invalid state_dict\['step_size'\]: 0"),
        ({"gamma": -0.1}, r"Invalid state_dict\['gamma'\]: -0.1"),
        ({"base_lrs": [0.1, 0.1]}, r"Invalid state_dict\['base_lrs'\].*a list of 1 finite rates"),
        ({"_last_lr": [float("nan")]}, r"Invalid state_dict\['_last_lr'\]: \[nan\] \(entry 0 is nan"),
    ],
)
def test_scheduler_state_from_a_file_is_checked_before_anything_changes(tmp_path, good, changes, match):
    """The scheduler's state was applied unchecked: an entry named `step` replaced the method. Now it is refused,
    before the optimizer (loaded first) changes."""
    path = _with_scheduler_state(tmp_path, good, **changes)
    _refused(path, match)
    params, opt, sched = _fresh()
    with pytest.raises(ValueError):
        fusedoptim.load(path, optimizer=opt, scheduler=sched, params=params)
    sched.step()  # still the method


def test_multistep_milestones_come_back_as_a_counter(tmp_path):
    """A Counter goes through the manifest as a dict; loaded as a dict, step(epoch) failed on .elements()."""
    params = [np.zeros(3, np.float32)]
    opt = fusedoptim.SGD(params, lr=0.1)
    sched = lr_scheduler.MultiStepLR(opt, milestones=[2, 4, 4], gamma=0.5)
    fusedoptim.save(tmp_path / "c.npz", optimizer=opt, scheduler=sched)
    again = lr_scheduler.MultiStepLR(fusedoptim.SGD([np.zeros(3, np.float32)], lr=0.1), milestones=[9])
    fusedoptim.load(tmp_path / "c.npz", optimizer=again.optimizer, scheduler=again)
    assert again.milestones == sched.milestones and type(again.milestones) is type(sched.milestones)
    again.step(5)
    assert again.get_last_lr() == [0.1 * 0.5**3]


# --- scheduler state dicts, every class --------------------------------------------------------------------------

from test_lr_scheduler import CASES, _our_optimizer, _run_torch  # noqa: E402 - the schedulers torch's tests build


def _phases_reading(key):
    return lambda state: [{**phase, "start_lr": key} for phase in state["_schedule_phases"]]


def _inner(index, **changes):
    return lambda state: [{**inner, **changes} if i == index else inner for i, inner in enumerate(state["_schedulers"])]


# (scheduler case of test_lr_scheduler, key, bad value (or a function of the good state dict), where it is named)
BAD_ENTRIES = [
    ("StepLR", "step", 1, "has no state named 'step'"),
    ("StepLR", "get_lr", None, "has no state named 'get_lr'"),
    ("StepLR", "__dict__", {}, "has no state named '__dict__'"),
    ("StepLR", "_not_saved", [], "has no state named '_not_saved'"),
    ("StepLR", "last_epoch", -2, r"\['last_epoch'\]: -2 \(expected an int >= -1\)"),
    ("StepLR", "last_epoch", True, r"\['last_epoch'\]: True"),
    ("StepLR", "last_epoch", None, r"\['last_epoch'\]: None"),
    ("StepLR", "_step_count", -1, r"\['_step_count'\]: -1"),
    ("StepLR", "base_lrs", [0.1], r"\['base_lrs'\]: \[0.1\] \(expected a list of 2 finite rates >= 0"),
    ("StepLR", "base_lrs", [0.1, -1.0], r"\['base_lrs'\].*entry 1 is -1.0"),
    ("StepLR", "base_lrs", [0.1, float("inf")], r"\['base_lrs'\].*entry 1 is inf"),
    ("StepLR", "base_lrs", "ab", r"\['base_lrs'\]: 'ab'"),
    ("StepLR", "_last_lr", [0.1, "0.1"], r"\['_last_lr'\]"),
    ("StepLR", "step_size", 0, r"\['step_size'\]: 0"),
    ("StepLR", "gamma", float("nan"), r"\['gamma'\]: nan"),
    ("MultiStepLR", "milestones", {3: 0}, r"\['milestones'\]"),
    ("MultiStepLR", "milestones", {"3": 1}, r"\['milestones'\]"),
    ("ConstantLR", "factor", 1.5, r"\['factor'\]: 1.5 \(expected a finite real number in \[0, 1\]\)"),
    ("ConstantLR", "total_iters", -1, r"\['total_iters'\]"),
    ("LinearLR-defaults", "start_factor", 0.0, r"\['start_factor'\]: 0.0 \(expected .* in \(0, 1\]\)"),
    ("LinearLR-defaults", "end_factor", 2.0, r"\['end_factor'\]"),
    ("ExponentialLR", "gamma", -1, r"\['gamma'\]: -1"),
    ("PolynomialLR-defaults", "total_iters", 0, r"\['total_iters'\]"),
    ("PolynomialLR-defaults", "power", "2", r"\['power'\]"),
    ("CosineAnnealingLR", "T_max", 0, r"\['T_max'\]"),
    ("CosineAnnealingLR", "eta_min", -1e-3, r"\['eta_min'\]"),
    ("LambdaLR-per-group", "lr_lambdas", [None], r"\['lr_lambdas'\].*a list of 2 entries"),
    ("LambdaLR-per-group", "lr_lambdas", [{"rate": 2.0}, None], r"\['lr_lambdas'\].*entry 0: expected None"),
    ("LambdaLR-per-group", "lr_lambdas", [None, {"__class__": int}], "Halving object has no attribute '__class__'"),
    ("SequentialLR-warmup-cosine", "_schedulers", [], r"\['_schedulers'\]: \[\] \(expected a list of 2"),
    ("SequentialLR-warmup-cosine", "_schedulers", _inner(1, last_epoch=-9), r"\['_schedulers'\]\[1\]\['last_epoch'\]"),
    ("SequentialLR-warmup-cosine", "_milestones", [5, 6], r"\['_milestones'\]"),
    ("ChainedScheduler", "_schedulers", _inner(0, step=0), r"\['_schedulers'\]\[0\]\['step'\]"),
    ("ChainedScheduler", "base_lrs", [0.1, 0.1], "ChainedScheduler has no state named 'base_lrs'"),
    ("ReduceLROnPlateau-defaults", "mode", "median", r"\['mode'\]: 'median' \(expected one of 'min', 'max'\)"),
    ("ReduceLROnPlateau-defaults", "factor", 1.0, r"\['factor'\]"),
    ("ReduceLROnPlateau-defaults", "min_lrs", [0.0], r"\['min_lrs'\]"),
    ("ReduceLROnPlateau-defaults", "best", float("nan"), r"\['best'\]"),
    ("ReduceLROnPlateau-defaults", "threshold_mode", "relative", r"\['threshold_mode'\]"),
    ("ReduceLROnPlateau-defaults", "cooldown_counter", -1, r"\['cooldown_counter'\]"),
    ("ReduceLROnPlateau-defaults", "default_min_lr", -1, r"\['default_min_lr'\]"),
    ("CyclicLR-triangular", "mode", "sine", r"\['mode'\]"),
    ("CyclicLR-triangular", "step_ratio", 0.0, r"\['step_ratio'\]"),
    ("CyclicLR-triangular", "total_size", 0, r"\['total_size'\]"),
    ("CyclicLR-triangular", "use_beta1", True, r"\['use_beta1'\]: True \(the optimizer's momentum is momentum\)"),
    ("CyclicLR-triangular", "base_momentums", [0.8], r"\['base_momentums'\]"),
    ("CyclicLR-triangular", "scale_mode", "epoch", r"\['scale_mode'\]"),
    ("CyclicLR-triangular", "_scale_fn_custom", {"rate": 1.0}, r"\['_scale_fn_custom'\]"),
    ("CyclicLR-scale_fn-iterations", "cycle_momentum", True, r"\['cycle_momentum'\]: True .* no \['use_beta1'"),
    ("CosineAnnealingWarmRestarts", "T_0", 0, r"\['T_0'\]"),
    ("CosineAnnealingWarmRestarts", "T_mult", 0, r"\['T_mult'\]"),
    ("CosineAnnealingWarmRestarts", "T_i", 1.5, r"\['T_i'\]"),
    ("CosineAnnealingWarmRestarts", "T_cur", float("inf"), r"\['T_cur'\]"),
    ("OneCycleLR-cos", "_anneal_func_type", "sin", r"\['_anneal_func_type'\]"),
    ("OneCycleLR-cos", "_schedule_phases", _phases_reading("params"), r"\['_schedule_phases'\]"),
    ("OneCycleLR-cos", "_schedule_phases", lambda state: state["_schedule_phases"][:1], r"\['_schedule_phases'\]"),
    ("OneCycleLR-cos", "total_steps", 0, r"\['total_steps'\]"),
    ("OneCycleLR-linear-adam", "use_beta1", False, r"\['use_beta1'\]: False \(the optimizer's momentum is beta1"),
    ("OneCycleLR-no-momentum", "cycle_momentum", True, r"\['cycle_momentum'\]"),
]


def _scheduler_snapshot(scheduler):
    groups = [{k: v for k, v in group.items() if k != "params"} for group in scheduler.optimizer.param_groups]
    return pickle.dumps((scheduler.state_dict(), sorted(vars(scheduler)), groups))


@pytest.mark.parametrize(
    "case, key, value, match", BAD_ENTRIES, ids=[f"{case}-{key}-{i}" for i, (case, key, _, _) in enumerate(BAD_ENTRIES)]
)
def test_a_bad_scheduler_state_entry_is_refused_and_changes_nothing(case, key, value, match):
    """Every entry is checked as the constructor checks its argument, before any is set; unknown keys (a method's
    name, a private attribute) are refused. torch's load_state_dict takes them all, and so did ours."""
    scheduler = CASES[case].build(lr_scheduler, _our_optimizer(CASES[case].optimizer))
    for t in range(3):
        scheduler.step(*CASES[case].args(t))
    state = scheduler.state_dict()
    state[key] = value(state) if callable(value) else value
    before = _scheduler_snapshot(scheduler)
    with pytest.raises(ValueError, match=r"^Invalid state_dict.*" + match):
        scheduler.load_state_dict(state)
    assert _scheduler_snapshot(scheduler) == before
    assert callable(scheduler.step) and callable(scheduler.get_last_lr)
    scheduler.load_state_dict(scheduler.state_dict())  # and its own state still loads


@pytest.mark.parametrize("name", list(CASES))
def test_every_scheduler_state_entry_has_a_check(name):
    """No entry of our schedulers' state dicts is copied unchecked (only a subclass outside the module may be)."""

    def unchecked(scheduler):
        own = [key for key in scheduler.state_dict() if key != "_schedulers" and scheduler._state_check(key) is None]
        return own + [key for inner in getattr(scheduler, "_schedulers", []) for key in unchecked(inner)]

    case = CASES[name]
    assert unchecked(case.build(lr_scheduler, _our_optimizer(case.optimizer))) == []


@pytest.mark.parametrize("name", list(CASES))
def test_torch_scheduler_state_dicts_pass_the_checks(name):
    """After a whole torch run (its flags included), every torch state dict is accepted here."""
    torch = pytest.importorskip("torch")
    case = CASES[name]
    torch_scheduler, _ = _run_torch(torch, case)
    scheduler = case.build(lr_scheduler, _our_optimizer(case.optimizer))
    scheduler._check_state(torch_scheduler.state_dict())
