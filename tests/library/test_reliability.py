"""Reliability: determinism (any thread count, chunking, SIMD level, alignment, run), thread safety, memory (no
leaks, no allocation per step), and malformed checkpoint files.

The thread knobs (`_core.set_num_threads`, `_core.set_parallel_grain`, `_core.set_simd_level`) are process-wide;
every test that turns them restores them.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import hashlib
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

import fusedoptim
from fusedoptim import _core, functional
from fusedoptim.lr_scheduler import StepLR
from registry import OPTIMIZERS, make_grads

# What a fresh Python process needs on sys.path to import this module: tests/library (this module) and tests/
# (registry.py, support/).
HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)

# Every option that adds work to a kernel: momentum, Nesterov, centering, AMSGrad, weight decay of both kinds.
RICH = {
    "SGD": {"lr": 0.01, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
    "Adagrad": {"lr": 0.01, "lr_decay": 0.01, "weight_decay": 0.01, "initial_accumulator_value": 0.1},
    "RMSprop": {"lr": 0.01, "centered": True, "momentum": 0.9, "weight_decay": 0.01},
    "Adam": {"lr": 0.01, "amsgrad": True, "weight_decay": 0.01},
    "AdamW": {"lr": 0.01, "amsgrad": True},
    "Adadelta": {"weight_decay": 0.01},
    "Adamax": {"lr": 0.01, "weight_decay": 0.01},
    "NAdam": {"lr": 0.01, "weight_decay": 0.01, "decoupled_weight_decay": True},
    "RAdam": {"lr": 0.01, "weight_decay": 0.01},  # 7 steps reach the rectified branch (rho_t > 5 from t = 6)
    "Lion": {"lr": 0.01, "weight_decay": 0.01},
    "LAMB": {"lr": 0.01, "weight_decay": 0.01},
    "ASGD": {"lr": 0.01, "t0": 2, "lambd": 0.01, "weight_decay": 0.01},  # averaging from the third step on
    "Rprop": {"lr": 0.01, "step_sizes": (1e-4, 0.05)},
}
IDS = [info.name for info in OPTIMIZERS]


@contextlib.contextmanager
def knobs(threads: int | None = None, grain: int | None = None, simd: str | None = None):
    previous = _core.requested_num_threads(), _core.get_parallel_grain(), _core.simd_level()
    try:
        if threads is not None:
            _core.set_num_threads(threads)
        if grain is not None:
            _core.set_parallel_grain(grain)
        if simd is not None:
            _core.set_simd_level(simd)
        yield
    finally:
        _core.set_num_threads(previous[0])
        _core.set_parallel_grain(previous[1])
        _core.set_simd_level(previous[2])


def test_knobs_are_restored():
    before = _core.requested_num_threads(), _core.get_parallel_grain(), _core.simd_level()
    with pytest.raises(ZeroDivisionError), knobs(2, 3, _core.supported_simd_levels()[0]):
        assert (_core.requested_num_threads(), _core.get_parallel_grain()) == (2, 3)
        raise ZeroDivisionError
    assert (_core.requested_num_threads(), _core.get_parallel_grain(), _core.simd_level()) == before


def test_the_sanitize_flag_tells_whether_the_extension_is_instrumented():
    """`_core.sanitize` (and `fusedoptim.info()["sanitize"]`) is True exactly when the extension was built with
    FUSEDOPTIM_SANITIZE, i.e. calls AddressSanitizer's and UBSan's checks. .ci/sanitize.sh sets
    FUSEDOPTIM_EXPECT_SANITIZE=1, so its run fails unless it really tests an instrumented build, with the ASan
    runtime loaded."""
    assert fusedoptim.info()["sanitize"] is _core.sanitize
    with open(_core.__file__, "rb") as f:
        binary = f.read()
    assert (b"__asan_report_" in binary and b"__ubsan_handle_" in binary) is _core.sanitize
    expected = os.environ.get("FUSEDOPTIM_EXPECT_SANITIZE")
    if expected is not None:
        assert _core.sanitize is (expected == "1")
    if _core.sanitize:
        with open("/proc/self/maps") as f:
            assert "libasan" in f.read()


# --- determinism -------------------------------------------------------------------------------------------

# (threads, grain): one thread; two threads cutting arrays at every element, at odd places, at reduce-block
# multiples, at the default grain, and a grain so large that two threads run serially.
CONFIGS = [(1, 32768), (2, 1), (2, 7), (2, 4096), (2, 32768), (2, 1 << 40)]
# Sizes around SIMD widths, cache lines and LAMB's/the norms' 4096-element reduce blocks; two groups.
SIZES = [0, 1, 17, 1000, 4095, 4097, 65537]


def _placed(values: list[np.ndarray], offset: int) -> list[np.ndarray]:
    """Copies of ``values`` that start ``offset`` elements into a larger buffer: the same numbers at another
    alignment, so threads' cache-line-aligned chunk boundaries fall elsewhere."""
    out = []
    for v in values:
        base = np.zeros(v.size + offset, v.dtype)
        a = base[offset:].reshape(v.shape)
        a[...] = v
        out.append(a)
    return out


def _digest(params, opt=None, extra=()) -> str:
    h = hashlib.sha256()
    for p in params:
        h.update(p.tobytes())
    if opt is not None:
        sd = opt.state_dict()
        for i in sorted(sd["state"]):
            for key in sorted(sd["state"][i]):
                v = sd["state"][i][key]
                h.update(v.tobytes() if isinstance(v, np.ndarray) else repr(v).encode())
        h.update(repr((opt.last_grad_norm, opt.skipped_steps)).encode())
    for x in extra:
        h.update(repr(x).encode())
    return h.hexdigest()


def _train(info, dtype, offset, specials, clip, steps=7) -> str:
    rng = np.random.default_rng(0)
    params = _placed([rng.standard_normal(n).astype(dtype) for n in SIZES], offset)
    opt = info.cls(
        [{"params": params[:4]}, {"params": params[4:], "lr": RICH[info.name].get("lr", 1.0) / 2}], **RICH[info.name]
    )
    for t in range(steps):
        grads = _placed(make_grads(params, t, specials=specials and t == 3), offset + 1)
        kwargs = {"max_grad_norm": 50.0, "skip_if_nonfinite": t % 2 == 0} if clip else {}
        with np.errstate(all="ignore"):
            opt.step(grads, **kwargs)
    return _digest(params, opt)


def _runs():
    """(simd, threads, grain, offset): every thread configuration at the default SIMD level, two of them at
    another alignment, and at every other SIMD level one serial and one finely split run (the parity tests
    check every SIMD level against the reference too)."""
    default = _core.simd_level()
    runs = [(default, threads, grain, 0) for threads, grain in CONFIGS]
    runs += [(default, 1, 32768, 3), (default, 2, 7, 3)]
    runs += [
        (simd, *c) for simd in _core.supported_simd_levels() if simd != default for c in [(1, 32768, 0), (2, 7, 3)]
    ]
    return runs


@pytest.mark.parametrize("info", OPTIMIZERS, ids=IDS)
def test_steps_are_bitwise_identical_for_any_threads_chunking_simd_alignment_and_run(info):
    """Params, every state buffer and step count, bit for bit (NaN payloads included): 1 or 2 threads, any
    parallel grain, every SIMD level, two alignments, repeated. In float32 with inf/NaN gradients in one step
    and the fused clipping and non-finite guard (a reduction) in every step; in float64 plainly."""
    for dtype, specials, clip in [(np.float32, True, True), (np.float64, False, False)]:
        results = {}
        for simd, threads, grain, offset in _runs():
            with knobs(threads, grain, simd):
                results[(simd, threads, grain, offset)] = _train(info, dtype, offset, specials, clip)
        with knobs(*CONFIGS[2]):  # a repeated run
            results["repeat"] = _train(info, dtype, 0, specials, clip)
        assert len(set(results.values())) == 1, {k: v[:8] for k, v in results.items()}


def test_determinism_test_can_tell_runs_apart():
    """The digests above see a one-ulp difference in one element of one state buffer."""
    info = OPTIMIZERS[3]  # Adam
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(100).astype(np.float32)]
    opt = info.cls(params)
    opt.step([np.ones(100, np.float32)])
    before = _digest(params, opt)
    v = opt.state[0]["exp_avg_sq"]
    v[50] = np.nextafter(v[50], np.float32(np.inf))
    assert _digest(params, opt) != before


NORM_SIZES = [3, 4095, 4096, 4097, 100003, 17, 65536, 5000, 1]


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf"), 3.0, 0.5])
def test_norms_and_clipping_are_bitwise_identical_for_any_threads_chunking_simd_and_alignment(norm_type):
    """get_total_norm and clip_grad_norm_ (the norm and the clipped gradients) for every configuration; also
    with a NaN in one array (the norm is NaN in every configuration)."""
    rng = np.random.default_rng(7)
    values = [
        (10 * rng.standard_normal(n)).astype(np.float32 if i % 2 else np.float64) for i, n in enumerate(NORM_SIZES)
    ]
    f32 = [v for v in values if v.dtype == np.float32]
    results = {}
    for simd in _core.supported_simd_levels():
        for threads, grain in CONFIGS:
            for offset in (0, 5):
                with knobs(threads, grain, simd):
                    grads = _placed(f32, offset)
                    total = fusedoptim.get_total_norm(grads, norm_type)
                    mixed = fusedoptim.get_total_norm(_placed(values, offset), norm_type)
                    clipped = fusedoptim.clip_grad_norm_(grads, 1.0, norm_type)
                    bad = _placed(f32, offset)
                    bad[3][4097] = np.nan
                    results[(simd, threads, grain, offset)] = _digest(
                        grads,
                        extra=(
                            total.hex(),
                            mixed.hex(),
                            clipped.hex(),
                            repr(fusedoptim.get_total_norm(bad, norm_type)),
                        ),
                    )
    assert len(set(results.values())) == 1


def test_repeated_runs_in_a_fresh_process_give_the_same_bits(tmp_path):
    """Another process (other addresses, so other chunk boundaries; freshly mapped memory) with two OpenMP
    threads gives the same bits as this one."""
    script = tmp_path / "run.py"
    script.write_text(
        "import sys\n"
        f"sys.path[:0] = {[HERE, TESTS]!r}\n"
        "import numpy as np\n"
        "from fusedoptim import _core\n"
        "import test_reliability as r\n"
        "_core.set_parallel_grain(7)\n"
        "print(' '.join(r._train(info, np.float32, 1, True, True) for info in r.OPTIMIZERS))\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    out = subprocess.run(
        [sys.executable, str(script)], check=True, capture_output=True, text=True, env=env, timeout=120
    ).stdout.split()
    with knobs(1, 32768):
        here = [_train(info, np.float32, 0, True, True) for info in OPTIMIZERS]
    assert out == here


# --- thread safety -----------------------------------------------------------------------------------------

BIG = 200_000  # large enough that a step takes long enough for two to overlap


def _big_problem(info, seed):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(BIG).astype(np.float32), rng.standard_normal(999).astype(np.float32)]
    bank = [[rng.standard_normal(p.shape).astype(np.float32) for p in params] for _ in range(3)]
    return params, info.cls(params, **RICH[info.name]), bank


def _overlaps(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> int:
    return sum(1 for s0, e0 in a for s1, e1 in b if s0 < e1 and s1 < e0)


def _run_threads(*workers):
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def wrap(work):
        try:
            barrier.wait()
            work()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors


PAIRS = [(OPTIMIZERS[i], OPTIMIZERS[(i + 1) % len(OPTIMIZERS)]) for i in range(len(OPTIMIZERS))]
STEPS = 20


@pytest.mark.parametrize("kernel_threads", [1, 2])
@pytest.mark.parametrize("pair", PAIRS, ids=[f"{a.name}+{b.name}" for a, b in PAIRS])
def test_two_optimizers_stepped_concurrently_equal_stepped_one_after_the_other(pair, kernel_threads):
    """Two optimizers (the second clipping, so with a reduction) step in two Python threads while a third thread
    computes norms of other arrays; the kernels run without the GIL, so they overlap. Everything must equal the
    same work done in one thread."""
    a_info, b_info = pair
    # The steps must overlap for the test to mean anything. A step takes well under a millisecond, so on a busy
    # machine one thread can finish before the other is scheduled: hand the GIL over often and try again.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        # 30 tries: on a loaded 2-core machine (CI runs pytest -n auto beside other work) the scheduler can keep
        # the two threads apart for several tries in a row; each try takes milliseconds.
        for _attempt in range(30):
            result = _concurrent_run(a_info, b_info, kernel_threads)
            if result[0] > 0:
                break
    finally:
        sys.setswitchinterval(interval)
    overlaps, a, a_ref, b, b_ref, norms, expected_norm = result
    assert overlaps > 0, "the two threads' steps never overlapped in 30 tries: nothing was tested"
    assert a == a_ref
    assert b == b_ref
    assert norms == [expected_norm] * STEPS


def _concurrent_run(a_info, b_info, kernel_threads):
    with knobs(kernel_threads, 4096):
        norm_arrays = [np.random.default_rng(3).standard_normal(BIG).astype(np.float32)]
        expected_norm = fusedoptim.get_total_norm(norm_arrays)

        def run(opt, bank, key, **kwargs):
            def work():
                for t in range(STEPS):
                    start = time.perf_counter()
                    opt.step([g.copy() for g in bank[t % 3]], **kwargs)
                    times[key].append((start, time.perf_counter()))

            return work

        def norm_work():
            for _ in range(STEPS):
                norms.append(fusedoptim.get_total_norm(norm_arrays))

        a_params, a_opt, a_bank = _big_problem(a_info, 1)
        b_params, b_opt, b_bank = _big_problem(b_info, 2)
        norms: list[float] = []
        times: dict[str, list[tuple[float, float]]] = {"a": [], "b": []}
        _run_threads(run(a_opt, a_bank, "a"), run(b_opt, b_bank, "b", max_grad_norm=100.0), norm_work)

        a_ref_params, a_ref, _ = _big_problem(a_info, 1)
        b_ref_params, b_ref, _ = _big_problem(b_info, 2)
        for t in range(STEPS):
            a_ref.step([g.copy() for g in a_bank[t % 3]])
        for t in range(STEPS):
            b_ref.step([g.copy() for g in b_bank[t % 3]], max_grad_norm=100.0)
    return (
        _overlaps(times["a"], times["b"]),
        _digest(a_params, a_opt),
        _digest(a_ref_params, a_ref),
        _digest(b_params, b_opt),
        _digest(b_ref_params, b_ref),
        norms,
        expected_norm,
    )


@pytest.mark.parametrize("info", [OPTIMIZERS[3], OPTIMIZERS[-1]], ids=["Adam", "LAMB"])
def test_one_optimizer_stepped_from_two_threads_is_refused_or_serialised(info):
    """Two threads step the same optimizer at once. The library must either serialise the steps or refuse the
    overlapping one with a RuntimeError that says so ("another thread"), changing nothing; never race. So the
    result must equal as many sequential steps as were applied. The gradient is the same at every step, so the
    order of the applied steps does not matter."""
    steps = 60
    with knobs(2, 4096):
        params, opt, bank = _big_problem(info, 5)
        grads = bank[0]
        opt.step(grads)  # state exists before the threads start
        applied = [0, 0]
        refused: list[BaseException] = []
        times: list[list[tuple[float, float]]] = [[], []]

        def work(i):
            def run():
                for _ in range(steps):
                    start = time.perf_counter()
                    try:
                        opt.step(grads)
                        applied[i] += 1
                    except RuntimeError as e:
                        refused.append(e)
                    times[i].append((start, time.perf_counter()))

            return run

        _run_threads(work(0), work(1))
        ref_params, ref, _ = _big_problem(info, 5)
        for _ in range(1 + sum(applied)):
            ref.step(grads)
    assert _overlaps(times[0], times[1]) > 0, "the two threads never overlapped: nothing was tested"
    for e in refused:
        assert "another thread" in str(e), e
    assert sum(applied) + len(refused) == 2 * steps
    assert opt.state[0]["step"] == 1 + sum(applied)
    assert _digest(params, opt) == _digest(ref_params, ref)
    # After the contention the optimizer is usable again.
    assert opt.step(grads) and opt.state[0]["step"] == 2 + sum(applied)


# --- memory ------------------------------------------------------------------------------------------------

_PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1 << 20


def rss() -> int:
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def test_rss_is_flat_over_100k_adam_steps():
    """100,000 steps of a small Adam: RSS may not grow by more than 1 MB after warm-up (a leak of 10 bytes per
    step would show)."""
    params = [np.zeros(64, np.float32), np.zeros((3, 7), np.float32)]
    grads = [np.full_like(p, 0.1) for p in params]
    opt = fusedoptim.Adam(params, lr=1e-3)
    for _ in range(5000):
        opt.step(grads)
    before = rss()
    for _ in range(100_000):
        opt.step(grads)
    grown = rss() - before
    assert opt.state[0]["step"] == 105_000
    assert grown < 1 * MB, f"RSS grew by {grown / MB:.1f} MB over 100,000 steps"


def test_rss_is_flat_over_guarded_clipped_lamb_steps_and_norms():
    """The paths that allocate in C++ (the validated bookkeeping of calls that are not steady-state steps: the
    fused clip-and-guard norm, get_total_norm; and the scratch memory of the reductions), and the skip path:
    30,000 calls, RSS within 1 MB."""
    params = [np.zeros(9000, np.float32), np.zeros(5, np.float32)]
    good = [np.full_like(p, 0.1) for p in params]
    bad = [g.copy() for g in good]
    bad[1][2] = np.nan
    opt = fusedoptim.LAMB(params, lr=1e-3)
    for _ in range(2000):
        opt.step(good, max_grad_norm=1.0, skip_if_nonfinite=True)
    before = rss()
    for _ in range(10_000):
        opt.step(good, max_grad_norm=1.0, skip_if_nonfinite=True)
        opt.step(bad, max_grad_norm=1.0, skip_if_nonfinite=True)
        fusedoptim.get_total_norm(good, 3.0)
    grown = rss() - before
    assert opt.skipped_steps == 10_000
    assert grown < 1 * MB, f"RSS grew by {grown / MB:.1f} MB"


@pytest.mark.parametrize("info", OPTIMIZERS, ids=IDS)
def test_no_allocation_per_step_after_the_first(info):
    """After the first step (which creates the state), a step allocates nothing the size of an array: traced
    memory (Python objects and NumPy data) peaks less than 64 kB above its level for 1 MB parameters, with
    clipping and the guard too, and is back where it was afterwards."""
    params = [np.zeros(1 << 18, np.float32), np.zeros(1000, np.float32)]
    grads = [np.full_like(p, 0.1) for p in params]
    opt = info.cls(params, **RICH[info.name])
    opt.step(grads)
    opt.step(grads, max_grad_norm=1.0, skip_if_nonfinite=True)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(5):
            opt.step(grads)
            opt.step(grads, max_grad_norm=1e6, skip_if_nonfinite=True)
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - base < 64 * 1024, f"a step allocated {peak - base} bytes"
    assert current - base < 4 * 1024, f"steps kept {current - base} bytes"


# The heap allocations of a call, C++ included: tests/support/count_alloc.c (malloc and friends, counting while
# switched on) is built with the C compiler and preloaded into a fresh Python.
_COUNT_ALLOC_RUNNER = """
import ctypes, json, sys
import numpy as np
sys.path[:0] = {paths!r}
import fusedoptim
from fusedoptim import _core
from registry import OPTIMIZERS
from test_reliability import RICH

lib = ctypes.CDLL(None)
lib.count_alloc_calls.restype = ctypes.c_uint64

def allocations(call, repeat):
    call()
    lib.count_alloc_set(1)
    before = lib.count_alloc_calls()
    for _ in range(repeat):
        call()
    lib.count_alloc_set(0)
    return lib.count_alloc_calls() - before

found = {{}}
big, small = np.zeros(100_000), np.zeros(10)
found["np.add temporary"] = allocations(lambda: np.add(big, big), 200)
found["np.add out="] = allocations(lambda: np.add(small, small, out=small), 200)
grads = [np.ones(5000, np.float32)]
found["get_total_norm"] = allocations(lambda: fusedoptim.get_total_norm(grads, 2.0), 200)
for threads, grain in ((1, 32768), (2, 64)):
    _core.set_num_threads(threads)
    _core.set_parallel_grain(grain)
    for info in OPTIMIZERS:
        params = [np.zeros(5000, np.float32), np.zeros(7, np.float32), np.zeros(3000, np.float64)]
        grads = [np.full_like(p, 0.1) for p in params]
        opt = info.cls(params, **RICH[info.name])
        for _ in range(3):
            opt.step(grads)
        found[f"{{info.name}} {{threads}}"] = allocations(lambda: opt.step(grads), 300)
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def allocation_counts(tmp_path_factory):
    if os.environ.get("FUSEDOPTIM_EXPECT_SANITIZE") == "1":
        pytest.skip("ASan's allocator is preloaded already")
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        pytest.skip("needs a C compiler to build the allocation counter")
    work = tmp_path_factory.mktemp("count_alloc")
    library = work / "count_alloc.so"
    source = os.path.join(TESTS, "support", "count_alloc.c")
    subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", str(library), source], check=True)
    script = work / "run.py"
    script.write_text(_COUNT_ALLOC_RUNNER.format(paths=[HERE, TESTS]))
    env = {**os.environ, "LD_PRELOAD": str(library)}
    out = subprocess.run(
        [sys.executable, str(script)], check=True, capture_output=True, text=True, env=env, timeout=300
    ).stdout
    return json.loads(out.splitlines()[-1])


def test_allocation_counter_sees_numpy_and_cpp_allocations(allocation_counts):
    """The counter is not blind: NumPy's temporaries and the bookkeeping of a C++ call that is not a steady-state
    step (get_total_norm validates its list into small vectors) are counted; NumPy's out= call allocates nothing."""
    assert allocation_counts["np.add temporary"] >= 200
    assert allocation_counts["get_total_norm"] >= 200
    assert allocation_counts["np.add out="] == 0


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("info", OPTIMIZERS, ids=IDS)
def test_steady_state_step_makes_no_heap_allocation(allocation_counts, info, threads):
    """After the first steps, 300 steps of every optimizer (three arrays, two dtypes, every option that adds work;
    one and two threads) call malloc, calloc, realloc or an aligned allocator not once: not in Python, not in
    the bindings, not in the kernels (LAMB's trust-ratio sums use per-thread scratch memory, common.hpp)."""
    assert allocation_counts[f"{info.name} {threads}"] == 0


def test_allocation_test_sees_an_array_sized_temporary():
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        _ = np.zeros(1 << 18, np.float32) + 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak - base >= 1 << 20


def _failing_calls():
    """Calls that fail at each stage: Python checks, C++ validation (after it has taken references to arrays),
    the overlap check, the run-time checks of a prepared step, load_state_dict, clipping. Each uses freshly
    allocated 16 kB arrays, so a reference leaked by an error keeps 16 kB alive."""
    keep = [np.zeros(4096, np.float32), np.zeros(100, np.float32)]
    opt = fusedoptim.Adam(keep, lr=1e-3, amsgrad=True)
    opt.step([np.ones_like(p) for p in keep])
    sd = opt.state_dict()
    bad_sd = copy.deepcopy(sd)
    bad_sd["state"][1]["exp_avg"] = np.zeros(3, np.float32)

    def fresh():
        return [np.ones(4096, np.float32), np.ones(100, np.float32)]

    def wrong_dtype():
        g = fresh()
        g[1] = g[1].astype(np.float64)
        opt.step(g)

    def aliased():
        g = fresh()
        g[1] = keep[1]
        opt.step(g)

    def state_aliased():
        p, g = fresh(), fresh()
        m = [np.zeros_like(x) for x in p]
        functional.adam_(p, g, m, [m[0], np.zeros_like(p[1])], None, [1, 1])

    def bad_hyper():
        p = fresh()
        functional.adam_(
            p, fresh(), [np.zeros_like(x) for x in p], [np.zeros_like(x) for x in p], None, [1, 1], lr=-1.0
        )

    def bad_steps():
        p = fresh()
        functional.adam_(p, fresh(), [np.zeros_like(x) for x in p], [np.zeros_like(x) for x in p], None, [1, 0])

    def read_only_at_run():
        p = fresh()
        step, _ = functional._sgd_prepare(
            p, fresh(), None, lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False
        )
        p[0].flags.writeable = False
        step.run()

    def run_twice():
        p = fresh()
        step, _ = functional._sgd_prepare(
            p, fresh(), None, lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False
        )
        step.run()
        step.run()

    def bad_state_dict():
        opt.load_state_dict(bad_sd)

    def nonfinite_clip():
        g = fresh()
        g[0][7] = np.inf
        fusedoptim.clip_grad_norm_(g, 1.0, error_if_nonfinite=True)

    return (
        keep,
        opt,
        [
            wrong_dtype,
            aliased,
            state_aliased,
            bad_hyper,
            bad_steps,
            read_only_at_run,
            run_twice,
            bad_state_dict,
            nonfinite_clip,
        ],
    )


def test_failed_calls_leak_neither_memory_nor_references():
    keep, opt, calls = _failing_calls()
    for call in calls:  # each one fails, before anything changes
        before = _digest(keep, opt)
        with pytest.raises((ValueError, TypeError, RuntimeError)):
            call()
        assert _digest(keep, opt) == before, call.__name__
    refcounts = [sys.getrefcount(p) for p in keep]
    state_refcounts = [sys.getrefcount(v) for v in opt.state[0].values() if isinstance(v, np.ndarray)]
    for _ in range(200):  # warm-up
        for call in calls:
            with contextlib.suppress(ValueError, TypeError, RuntimeError):
                call()
    before = rss()
    for _ in range(1500):
        for call in calls:
            with contextlib.suppress(ValueError, TypeError, RuntimeError):
                call()
    grown = rss() - before
    assert [sys.getrefcount(p) for p in keep] == refcounts
    assert [sys.getrefcount(v) for v in opt.state[0].values() if isinstance(v, np.ndarray)] == state_refcounts
    assert grown < 2 * MB, f"RSS grew by {grown / MB:.1f} MB over 13,500 failed calls"


# --- malformed checkpoint files ----------------------------------------------------------------------------
# test_toolkit.py covers a file that is not a zip, an .npz without a manifest, a file cut in half and a
# parameter of the wrong shape; test_checkpoint_io.py covers saving (concurrent, interrupted, unstorable values)
# and the hostile members (sizes that lie, a decompression bomb) with their time and memory. These are the other
# ways a file can be damaged; each must give a ValueError that names the file and what is wrong, and leave
# optimizer, scheduler and parameters exactly as they were.


def _trained():
    params = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.ones(4, np.float32)}
    opt = fusedoptim.Adam(params, lr=0.1, amsgrad=True)
    sched = StepLR(opt, step_size=2)
    for t in range(3):
        opt.step({"w": np.full((3, 4), 0.1 * t, np.float32), "b": np.full(4, -0.2, np.float32)})
        sched.step()
    return params, opt, sched


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    params, opt, sched = _trained()
    path = tmp_path_factory.mktemp("ckpt") / "good.npz"
    fusedoptim.save(path, optimizer=opt, scheduler=sched, params=params, extra={"epoch": 3})
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    return path, arrays, json.loads(str(arrays["__manifest__"]))


def _rewrite(path, arrays, manifest=None, drop=(), add=None):
    out = {k: v for k, v in arrays.items() if k not in drop}
    if manifest is not None:
        out["__manifest__"] = np.array(manifest if isinstance(manifest, str) else json.dumps(manifest))
    out.update(add or {})
    np.savez(path, **out)


def _with(manifest, **changes):
    m = copy.deepcopy(manifest)
    m.update(changes)
    return m


def _first_array_key(manifest):
    return re.search(r'"__array__": "(array_\d+)"', json.dumps(manifest["optimizer"])).group(1)


def _with_scheduler_entry(manifest, key, value):
    m = copy.deepcopy(manifest)
    m["scheduler"]["__dict__"].append([key, value])
    return m


def _npy(header_dtype, header_shape, data=b""):
    """.npy bytes with the header given (which need not describe ``data``)."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        out,
        {"descr": np.lib.format.dtype_to_descr(np.dtype(header_dtype)), "fortran_order": False, "shape": header_shape},
    )
    return out.getvalue() + data


def _zip(path, arrays, replace=None, compression=zipfile.ZIP_STORED):
    """The arrays as a zip of .npy members, some replaced by raw member bytes."""
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for key, value in arrays.items():
            out = io.BytesIO()
            np.save(out, value)
            archive.writestr(key + ".npy", (replace or {}).get(key, out.getvalue()))


def _corrupt_deflated(path, arrays, key):
    """The arrays deflated, with the deflate stream of ``key`` made invalid (block type 3 does not exist)."""
    _zip(path, arrays, compression=zipfile.ZIP_DEFLATED)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        offset = archive.getinfo(key + ".npy").header_offset
    names, extras = struct.unpack("<HH", raw[offset + 26 : offset + 30])
    raw[offset + 30 + names + extras] = 0xFF
    path.write_bytes(raw)


_NOT_READABLE = "damaged.npz: not a readable fusedoptim checkpoint"
_DAMAGED_ENTRY = "damaged.npz: checkpoint is damaged"

# Each case writes a damaged file; the expected message (a regular expression).
CORRUPTIONS = {
    "empty file": (lambda p, a, m, raw: p.write_bytes(b""), _NOT_READABLE),
    "first byte only": (lambda p, a, m, raw: p.write_bytes(raw[:1]), _NOT_READABLE),
    "zip directory cut": (lambda p, a, m, raw: p.write_bytes(raw[:-30]), _NOT_READABLE),
    "last byte missing": (lambda p, a, m, raw: p.write_bytes(raw[:-1]), _NOT_READABLE),
    "random bytes": (lambda p, a, m, raw: p.write_bytes(np.random.default_rng(0).bytes(len(raw))), _NOT_READABLE),
    "a .npy file": (
        lambda p, a, m, raw: p.write_bytes(_npy(np.float32, (3,), bytes(12))),
        _NOT_READABLE + " \\(it is a .npy file",
    ),
    "flipped byte (CRC)": (
        lambda p, a, m, raw: p.write_bytes(raw[:200] + bytes([raw[200] ^ 0xFF]) + raw[201:]),
        "damaged.npz: member '__manifest__.npy' is damaged .*Bad CRC-32",
    ),
    "corrupt deflate stream": (
        lambda p, a, m, raw: _corrupt_deflated(p, a, _first_array_key(m)),
        "member 'array_\\d+.npy' is damaged \\(zlib.error",
    ),
    "pickled object array": (
        lambda p, a, m, raw: _rewrite(p, a, add={_first_array_key(m): np.array([{}], object)}),
        "member 'array_\\d+.npy' holds an array of dtype object",
    ),
    "2**40 values declared": (
        lambda p, a, m, raw: _zip(p, a, replace={_first_array_key(m): _npy(np.float32, (2**40,), bytes(16))}),
        "member 'array_\\d+.npy' declares a float32 array of shape \\(1099511627776,\\) \\(4398046511104 bytes\\)",
    ),
    "fewer values than declared": (
        lambda p, a, m, raw: _zip(p, a, replace={_first_array_key(m): _npy(np.float32, (3, 4), bytes(40))}),
        "declares a float32 array of shape \\(3, 4\\) \\(48 bytes\\), but holds 40 bytes",
    ),
    "manifest not JSON": (lambda p, a, m, raw: _rewrite(p, a, "{not json"), "damaged.npz: damaged manifest"),
    "manifest cut short": (lambda p, a, m, raw: _rewrite(p, a, json.dumps(m)[:-40]), "damaged manifest"),
    "manifest of bytes": (
        lambda p, a, m, raw: _rewrite(p, a, add={"__manifest__": np.frombuffer(b"{x", np.uint8)}),
        "damaged manifest",
    ),
    "manifest nested 100,000 deep": (
        lambda p, a, m, raw: _rewrite(p, a, "[" * 100_000 + "]" * 100_000),
        "damaged manifest",
    ),
    "manifest a list": (lambda p, a, m, raw: _rewrite(p, a, "[1, 2]"), "not a fusedoptim checkpoint"),
    "other format": (
        lambda p, a, m, raw: _rewrite(p, a, _with(m, format="something-else")),
        "not a fusedoptim checkpoint",
    ),
    "version 2": (lambda p, a, m, raw: _rewrite(p, a, _with(m, version=2)), "checkpoint version 2 is not supported"),
    "version as text": (
        lambda p, a, m, raw: _rewrite(p, a, _with(m, version="1")),
        "checkpoint version '1' is not supported",
    ),
    "version missing": (
        lambda p, a, m, raw: _rewrite(p, a, {k: v for k, v in m.items() if k != "version"}),
        "checkpoint version None is not supported",
    ),
    "array missing": (
        lambda p, a, m, raw: _rewrite(p, a, drop=(_first_array_key(m),)),
        _DAMAGED_ENTRY + ": array 'array_\\d+' is missing",
    ),
    "array key not a string": (
        lambda p, a, m, raw: _rewrite(p, a, _with(m, extra={"__dict__": [["a", {"__array__": ["x"]}]]})),
        _DAMAGED_ENTRY,
    ),
    "bfloat16 array not stored as bits": (
        lambda p, a, m, raw: _rewrite(
            p, a, _with(m, extra={"__dict__": [["a", {"__array__": _first_array_key(m), "dtype": "bfloat16"}]]})
        ),
        _DAMAGED_ENTRY + ": bfloat16 array 'array_\\d+' is not stored as uint16 bits",
    ),
    "unknown manifest entry": (
        lambda p, a, m, raw: _rewrite(p, a, _with(m, extra={"__set__": [1]})),
        _DAMAGED_ENTRY + ": unknown entry",
    ),
    "dict entry not a pair": (
        lambda p, a, m, raw: _rewrite(p, a, _with(m, extra={"__dict__": [[1]]})),
        _DAMAGED_ENTRY + ": a dict entry is not a list of \\[key, value\\] pairs",
    ),
    "tuple entry not a list": (
        lambda p, a, m, raw: _rewrite(p, a, _with(m, extra={"__dict__": [["a", {"__tuple__": 5}]]})),
        _DAMAGED_ENTRY + ": a tuple entry is not a list",
    ),
    "extra not a dict": (
        lambda p, a, m, raw: _rewrite(p, a, _with(m, extra=[1, 2])),
        _DAMAGED_ENTRY + ": its 'extra' entry is not a dict",
    ),
    "no optimizer state": (
        lambda p, a, m, raw: _rewrite(p, a, _with(m, optimizer=None)),
        "checkpoint holds no optimizer state",
    ),
    "no scheduler state": (
        lambda p, a, m, raw: _rewrite(p, a, _with(m, scheduler=None)),
        "checkpoint holds no scheduler state",
    ),
    "optimizer state a list": (
        lambda p, a, m, raw: _rewrite(p, a, _with(m, optimizer=[1])),
        "state_dict must be a mapping",
    ),
    "state array of another shape": (
        lambda p, a, m, raw: _rewrite(p, a, add={_first_array_key(m): np.zeros(5, np.float32)}),
        "has shape \\(5,\\) but its parameter has shape",
    ),
    "scheduler state a list": (
        lambda p, a, m, raw: _rewrite(p, a, _with(m, scheduler=[1])),
        "damaged.npz: state_dict must be a mapping, got list",
    ),
    "scheduler entry named step": (
        lambda p, a, m, raw: _rewrite(p, a, _with_scheduler_entry(m, "step", 3)),
        "damaged.npz: Invalid state_dict\\['step'\\]: 3 \\(StepLR has no state named 'step'",
    ),
    "scheduler last_epoch -5": (
        lambda p, a, m, raw: _rewrite(p, a, _with_scheduler_entry(m, "last_epoch", -5)),
        "Invalid state_dict\\['last_epoch'\\]: -5 \\(expected an int >= -1\\)",
    ),
    "scheduler base_lrs NaN": (
        lambda p, a, m, raw: _rewrite(p, a, _with_scheduler_entry(m, "base_lrs", [float("nan")])),
        "Invalid state_dict\\['base_lrs'\\]: \\[nan\\]",
    ),
    "scheduler gamma negative": (
        lambda p, a, m, raw: _rewrite(p, a, _with_scheduler_entry(m, "gamma", -0.5)),
        "Invalid state_dict\\['gamma'\\]: -0.5",
    ),
    "parameter names differ": (
        lambda p, a, m, raw: _rewrite(p, a, _with(m, params={"__dict__": []})),
        "checkpoint parameters do not match",
    ),
    "a parameter that is not an array": (
        lambda p, a, m, raw: _rewrite(p, a, _with(m, params={"__dict__": [["w", 5], ["b", 7]]})),
        _DAMAGED_ENTRY + ": its parameters are not a dict of arrays",
    ),
    "a parameter of another dtype": (
        lambda p, a, m, raw: _rewrite(
            p, a, add={dict(m["params"]["__dict__"])["w"]["__array__"]: np.zeros((3, 4), np.float64)}
        ),
        "checkpoint parameter 'w' is float64\\[3, 4\\], the array is float32\\[3, 4\\]",
    ),
}


def _snapshot(params, opt, sched):
    return (
        {k: v.copy() for k, v in params.items()},
        _digest(list(params.values()), opt),
        repr(opt.param_groups),
        repr(sched.state_dict()),
    )


def _load_damaged(tmp_path, checkpoint, damage, match):
    path, arrays, manifest = checkpoint
    damaged = tmp_path / "damaged.npz"
    damage(damaged, arrays, manifest, path.read_bytes())
    params, opt, sched = _trained()
    opt.step({"w": np.ones((3, 4), np.float32), "b": np.ones(4, np.float32)})  # differs from the file
    sched.step()
    before = _snapshot(params, opt, sched)
    fds = len(os.listdir("/proc/self/fd"))
    with pytest.raises(ValueError, match=match):
        fusedoptim.load(damaged, optimizer=opt, scheduler=sched, params=params)
    after = _snapshot(params, opt, sched)
    for name in before[0]:
        np.testing.assert_array_equal(after[0][name], before[0][name], strict=True)
    assert after[1:] == before[1:]
    assert len(os.listdir("/proc/self/fd")) == fds, "load() left a file open"


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_damaged_checkpoint_is_refused_and_changes_nothing(tmp_path, checkpoint, case):
    damage, match = CORRUPTIONS[case]
    _load_damaged(tmp_path, checkpoint, damage, match)


def test_the_good_checkpoint_loads(tmp_path, checkpoint):
    """The damage above is all that makes those files fail: the file they start from loads, and changes things."""
    _, arrays, manifest = checkpoint
    copy_path = tmp_path / "copy.npz"
    _rewrite(copy_path, arrays, manifest)
    params, opt, sched = _trained()
    opt.step({"w": np.ones((3, 4), np.float32), "b": np.ones(4, np.float32)})
    before = _snapshot(params, opt, sched)
    assert fusedoptim.load(copy_path, optimizer=opt, scheduler=sched, params=params) == {"epoch": 3}
    assert _snapshot(params, opt, sched)[1] != before[1]
    assert opt.state[0]["step"] == 3


def test_checkpoint_is_a_zip_of_npy_files(checkpoint):
    """The damage above assumes the format: a zip of .npy members with a JSON manifest."""
    path, _, manifest = checkpoint
    with zipfile.ZipFile(path) as z:
        assert "__manifest__.npy" in z.namelist()
    assert manifest["format"] == "fusedoptim-checkpoint" and manifest["version"] == 1
