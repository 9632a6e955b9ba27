"""Runs a plan: the bandwidth probe of each (dtype, threads) group, then its cases, and collects the results as
plain data (what :mod:`fusedoptim.cli.bench.report` writes as JSON, Markdown and PNG)."""

from __future__ import annotations

import datetime
import gc
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import fusedoptim
from fusedoptim import _core

from .cases import FULL_PEER_OPTIMIZERS, OPTIMIZERS, Case, Plan
from .native import NativeLibrary
from .peers import PEER_ORDER, Peer, Unavailable, Workspace, peers_for
from .timing import Timed, measure, paired_ratio

__all__ = ["available_memory", "machine_info", "run_plan"]

Log = Callable[[str], None]

MEMORY_MARGIN = 1 << 30  # bytes left free for everyone else on the machine


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo, in bytes (None where there is no /proc)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _fits(nbytes: float, reserved: float = 0.0, free: int | None = None) -> tuple[bool, str]:
    """Whether ``nbytes`` more fit in memory, on top of ``reserved`` bytes promised to others but not yet
    allocated (torch allocates its state at the first step), leaving MEMORY_MARGIN free."""
    free = available_memory() if free is None else free
    if free is None or reserved + nbytes + MEMORY_MARGIN <= free:
        return True, ""
    return False, (
        f"not enough memory (needs ~{nbytes / 2**30:.1f} GiB, {max(0.0, free - reserved) / 2**30:.1f} GiB available)"
    )


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _caches() -> dict[str, str]:
    caches = {}
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in sorted(os.listdir(base)):
            if not entry.startswith("index"):
                continue

            def read(name: str, entry: str = entry) -> str:
                with open(os.path.join(base, entry, name), encoding="ascii") as f:
                    return f.read().strip()

            kind = read("type")
            label = f"L{read('level')}" + ("d" if kind == "Data" else "i" if kind == "Instruction" else "")
            caches[label] = read("size")
    except OSError:
        pass
    return caches


def machine_info(argv: Sequence[str], torch: Any, native: NativeLibrary | None) -> dict[str, Any]:
    """The facts a reader needs to judge the numbers: CPU, memory, library versions, settings, load."""
    try:
        import matplotlib

        matplotlib_version: str | None = matplotlib.__version__
    except ImportError:
        matplotlib_version = None
    total_memory = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            total_memory = int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python -m fusedoptim.cli.bench", *argv]),
        "argv": list(sys.argv),
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "caches": _caches(),
        "memory_bytes": total_memory,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": getattr(torch, "__version__", None),
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "matplotlib": matplotlib_version,
        "fusedoptim": fusedoptim.info(),
        "parallel_grain": _core.get_parallel_grain(),
        "native": native.describe() if native is not None else None,
        "environment": {
            k: os.environ[k]
            for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_PROC_BIND", "FUSEDOPTIM_SIMD")
            if k in os.environ
        },
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _set_threads(threads: int, torch: Any) -> None:
    _core.set_num_threads(threads)
    if torch is not None:
        torch.set_num_threads(threads)


def _peer_result(t: Timed, base: Timed | None, nbytes: int, triad_gbps: float | None) -> dict[str, Any]:
    median = t.median
    gbps = nbytes / median / 1e9 if median > 0 else None
    return {
        "median_s": median,
        "min_s": min(t.samples),
        "samples_s": t.samples,
        "calls_per_sample": t.number,
        "bytes_per_element": None,  # filled by the caller
        "gbps": gbps,
        "fraction_of_triad": gbps / triad_gbps if gbps is not None and triad_gbps else None,
        "ratio_to_fusedoptim": paired_ratio(t, base) if base is not None else None,
    }


def _measure_bandwidth(dtype: str, threads: int, plan: Plan, native: NativeLibrary | None, log: Log) -> dict:
    """STREAM triad (fusedoptim's probe, and the native loop's as a cross-check) on arrays of 4x the LLC."""
    n = plan.triad_elements[dtype]
    itemsize = np.dtype(dtype).itemsize
    record: dict[str, Any] = {"dtype": dtype, "threads": threads, "elements": n, "bytes_per_element": 3 * itemsize}
    ok, why = _fits(3 * n * itemsize)
    if not ok:
        record["skipped"] = why
        log(f"bandwidth {dtype} {threads}t: skipped, {why}")
        return record
    a = np.empty(n, dtype=dtype)
    b = np.full(n, 1.0, dtype=dtype)
    c = np.full(n, 2.0, dtype=dtype)
    a.fill(0)  # touch every page before timing
    steps: dict[str, Callable[[], object]] = {"stream_triad": lambda: _core.stream_triad(a, b, c, 3.0)}
    if native is not None:
        triad = native.function("triad", np.dtype(dtype))
        args = (a.ctypes.data, b.ctypes.data, c.ctypes.data, n, 3.0, threads)
        steps["native_triad"] = lambda: triad(*args)
    timed = measure(
        steps,
        repeats=plan.repeats,
        min_time=plan.min_time,
        max_case_time=plan.max_case_time,
        min_repeats=plan.min_repeats,
    )
    nbytes = 3 * itemsize * n
    for name, t in timed.items():
        record[name] = {
            "median_s": t.median,
            "samples_s": t.samples,
            "gbps": nbytes / t.median / 1e9,
            "calls_per_sample": t.number,
        }
    record["gbps"] = record["stream_triad"]["gbps"]
    extra = f", native triad {record['native_triad']['gbps']:.1f}" if "native_triad" in record else ""
    log(f"bandwidth {dtype} {threads}t: stream_triad {record['gbps']:.1f} GB/s{extra} ({n} elements)")
    return record


def _short(error: BaseException) -> str:
    """An exception's first line, cut to 200 characters (pybind11's messages can embed whole arrays)."""
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(error).__name__}: {first[:200]}{'...' if len(first) > 200 or len(text) > 1 else ''}"


def _format_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def run_case(
    case: Case, plan: Plan, *, torch: Any, native: NativeLibrary | None, triad_gbps: float | None
) -> dict[str, Any]:
    """Sets up every peer of ``case`` on one workspace and times them interleaved."""
    spec = OPTIMIZERS[case.optimizer]
    dtype = np.dtype(case.dtype)
    full = case.optimizer in FULL_PEER_OPTIMIZERS
    peers, skipped = peers_for(case, spec, full=full, torch=torch, native=native)
    allowed = plan.peer_filter.get(case.suite)
    if allowed is not None:
        for peer in peers:
            if peer.name not in allowed:
                skipped[peer.name] = f"left out of {plan.mode} runs"
        peers = [peer for peer in peers if peer.name in allowed]
    record: dict[str, Any] = {
        "suite": case.suite,
        "optimizer": case.optimizer,
        "label": spec.label,
        "dtype": case.dtype,
        "threads": case.threads,
        "elements": case.total,
        "arrays": case.arrays,
        "bytes_per_element": spec.bytes_for(dtype),
        "traffic": spec.traffic,
        "peers": {},
        "skipped": skipped,
    }
    unit = case.total * dtype.itemsize
    ok, why = _fits((3 + len(spec.state)) * unit)
    if not ok:
        record["skipped"] = {"all": why}
        return record
    workspace = Workspace.create(case, spec)
    steps: dict[str, Callable[[], object]] = {}
    by_name: dict[str, Peer] = {}
    free, reserved = available_memory(), 0.0  # peers allocate (some lazily): count what each will need
    for peer in peers:
        ok, why = _fits(peer.arrays * unit, reserved, free)
        if not ok:
            skipped[peer.name] = why
            continue
        reserved += peer.arrays * unit
        try:
            steps[peer.name] = peer.make(workspace)
            by_name[peer.name] = peer
        except Unavailable as e:
            skipped[peer.name] = str(e)
        except Exception as e:
            skipped[peer.name] = f"set-up failed: {_short(e)}"

    def failed(name: str, error: BaseException) -> None:
        skipped[name] = f"failed: {_short(error)}"

    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    start = time.perf_counter()
    timed = measure(
        steps,
        repeats=plan.repeats,
        min_time=plan.min_time,
        max_case_time=plan.max_case_time,
        min_repeats=plan.min_repeats,
        between_rounds=workspace.reset_if_needed,
        on_error=failed,
    )
    record["seconds"] = time.perf_counter() - start
    record["loadavg"] = [load_before, os.getloadavg()[0] if hasattr(os, "getloadavg") else None]
    record["resets"] = workspace.resets
    base = timed.get("fusedoptim")
    for name in sorted(timed, key=PEER_ORDER.index):
        own = by_name[name].bytes_per_element
        per_element = own * dtype.itemsize // 4 if own is not None else spec.bytes_for(dtype)
        result = _peer_result(timed[name], base, case.total * per_element, triad_gbps)
        result["bytes_per_element"] = per_element
        record["peers"][name] = result
    record["rounds"] = len(base.samples) if base is not None else 0
    del steps, timed, workspace
    gc.collect()
    return record


def _summary_line(record: dict[str, Any]) -> str:
    peers = record["peers"]
    head = f"{record['suite']} {record['optimizer']} {record['dtype']} {record['threads']}t n={record['elements']}"
    if record["arrays"] > 1:
        head += f" ({record['arrays']} arrays)"
    if "fusedoptim" not in peers:
        return head + ": fusedoptim not measured " + str(record["skipped"])
    f = peers["fusedoptim"]
    text = f"{head}: fusedoptim {_format_time(f['median_s'])} ({f['gbps']:.1f} GB/s"
    if f["fraction_of_triad"] is not None:
        text += f", {f['fraction_of_triad']:.2f} of triad"
    text += ")"
    others = [f"{name} {p['ratio_to_fusedoptim']:.2f}x" for name, p in peers.items() if name != "fusedoptim"]
    return text + (" | " + ", ".join(others) if others else "") + f" [{record.get('seconds', 0):.1f} s]"


def run_plan(plan: Plan, *, torch: Any, native: NativeLibrary | None, log: Log) -> dict[str, Any]:
    """Runs every case of ``plan``; returns ``{"bandwidth": [...], "cases": [...]}``."""
    previous_threads = _core.requested_num_threads()
    previous_torch_threads = torch.get_num_threads() if torch is not None else None
    bandwidth: dict[tuple[str, int], dict[str, Any]] = {}
    cases: list[dict[str, Any]] = []
    try:
        for index, case in enumerate(plan.cases, 1):
            _set_threads(case.threads, torch)
            group = (case.dtype, case.threads)
            if group not in bandwidth:
                bandwidth[group] = _measure_bandwidth(case.dtype, case.threads, plan, native, log)
            record = run_case(case, plan, torch=torch, native=native, triad_gbps=bandwidth[group].get("gbps"))
            cases.append(record)
            log(f"[{index}/{len(plan.cases)}] {_summary_line(record)}")
    finally:
        _core.set_num_threads(previous_threads)
        if torch is not None and previous_torch_threads is not None:
            torch.set_num_threads(previous_torch_threads)
    return {"bandwidth": list(bandwidth.values()), "cases": cases}
