"""Reliability at the edges (issue 18): what a hostile or unlucky user does around a step. Each class of misuse
must raise with nothing changed, or work; never hang, crash or lie:

- fork after a multi-threaded step (the child gets one thread instead of hanging);
- arrays changed behind a prepared step's back (resized, retyped, reshaped: the plan falls back, a run refuses);
- an interrupt at any point of a step (all of it or none of it is seen);
- another thread calling the optimizer's mutators during a step (they wait for it);
- a failing check after clipping would have written (every check runs before any write);
- the smaller ones: param_names out of step, arena views replaced, masked gradients, GradScaler at the float
  range's ends, huge finite gradients and the non-finite guard, pickling, NaN bits across SIMD levels.

Checkpoint files and MPI failures have their own tests (test_checkpoint_io.py, test_distributed.py).
"""

from __future__ import annotations

import copy
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest

import fusedoptim
from fusedoptim import _core
from fusedoptim import functional as F
from registry import OPTIMIZERS, make_grads

IDS = [info.name for info in OPTIMIZERS]
# Every family with options that give it every kind of state (momentum buffers, AMSGrad's maximum, centering).
RICH = {
    "SGD": {"lr": 0.01, "momentum": 0.9, "nesterov": True},
    "Adagrad": {"lr": 0.01},
    "RMSprop": {"lr": 0.01, "centered": True, "momentum": 0.9},
    "Adam": {"lr": 0.01, "amsgrad": True},
    "AdamW": {"lr": 0.01},
    "Adadelta": {},
    "Adamax": {"lr": 0.01},
    "NAdam": {"lr": 0.01},
    "RAdam": {"lr": 0.01},
    "Lion": {"lr": 0.01},
    "LAMB": {"lr": 0.01},
    "ASGD": {"lr": 0.01, "t0": 1, "weight_decay": 0.01},
    "Rprop": {"lr": 0.01},
}
SIZES = [1, 17, 1000]


def _setup(info, dtype=np.float32, groups=1):
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(n).astype(dtype) for n in SIZES]
    if groups == 1:
        opt = info.cls(params, **RICH[info.name])
    else:
        opt = info.cls([{"params": params[:1]}, {"params": params[1:]}], **RICH[info.name])
    return params, opt


def _snapshot(params, opt):
    """Every array's bytes and every scalar of the optimizer's state, and its group dicts."""
    state = {}
    for i, p in enumerate(params):
        entry = opt.state._get(p)
        if entry is not None:
            state[i] = {
                k: (v.tobytes(), v.dtype, v.shape) if isinstance(v, np.ndarray) else v for k, v in entry.items()
            }
    groups = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
    return [p.tobytes() for p in params], state, repr(groups), opt.skipped_steps


def _run_python(code: str, timeout: float = 120) -> str:
    """Runs ``code`` in a fresh interpreter; a hang fails the test (the child is killed) instead of the run."""
    try:
        result = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the child process hung (killed after {timeout} s): {e.stdout!r} {e.stderr!r}")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# --- fork -----------------------------------------------------------------------------------------------------

FORK_PRELUDE = """
    import os, sys, numpy as np, fusedoptim
    from fusedoptim import _core
    _core.set_num_threads(2)
    _core.set_parallel_grain(1)          # so that even a small step starts an OpenMP team
    p = np.linspace(-1, 1, 100_000, dtype=np.float32); g = np.cos(p)
    opt = fusedoptim.Adam([p], lr=0.01)
    opt.step([g])                        # a multi-threaded step: libgomp's pool now exists in this process
"""


@pytest.mark.skipif(not _core.openmp, reason="built without OpenMP: no thread pool to lose")
def test_a_forked_child_steps_on_one_thread_instead_of_hanging():
    """libgomp's pool does not survive fork: before, the child's first multi-threaded step hung forever. Now it
    runs on one thread (bit for bit the parent's result: the threads never change the bits), says so, and refuses
    more threads with an error that says why."""
    out = _run_python(
        FORK_PRELUDE
        + """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            opt.step([g])
            msg = f"{_core.get_num_threads()} {_core.forked_without_threads()} "
            try:
                fusedoptim.set_num_threads(2)
                msg += "set-ok"
            except RuntimeError as e:
                msg += "refused:" + ("fork" in str(e) and "spawn" in str(e)) * "clear"
            fusedoptim.set_num_threads(1)   # one thread stays allowed
            os.write(w, (msg + " " + p.tobytes().hex()[:64] + str(hash(p.tobytes()))).encode())
        finally:
            os._exit(0)
    os.close(w)
    child = b""
    while chunk := os.read(r, 1 << 16):
        child += chunk
    os.waitpid(pid, 0)
    opt.step([g])
    parent = p.tobytes().hex()[:64] + str(hash(p.tobytes()))
    threads, flag, refused, bits = child.decode().split(" ")
    assert (threads, flag, refused) == ("1", "True", "refused:clear"), child
    assert bits == parent, "the child's one-thread step differs from the parent's two-thread step"
    assert _core.get_num_threads() == 2 and not _core.forked_without_threads()
    print("ok")
    """
    )
    assert out.strip() == "ok"


@pytest.mark.skipif(not _core.openmp, reason="built without OpenMP: no thread pool to lose")
def test_a_fork_pool_after_a_threaded_step_does_not_hang():
    """multiprocessing's 'fork' start method (Python 3.11's default on Linux), workers stepping their own
    optimizers after the parent ran a two-thread step: they finish, on one thread, with the parent's bits."""
    out = _run_python(
        FORK_PRELUDE
        + """
    import multiprocessing as mp

    def work(seed):
        q = np.linspace(-seed, seed, 50_000, dtype=np.float32)
        o = fusedoptim.Adam([q], lr=0.1, amsgrad=True)
        for _ in range(3):
            o.step([np.cos(q)])
        return q.tobytes(), _core.get_num_threads()

    with mp.get_context("fork").Pool(2) as pool:
        results = pool.map(work, [1, 2, 3, 4])
    assert [t for _, t in results] == [1, 1, 1, 1], results
    assert [b for b, _ in results] == [work(s)[0] for s in [1, 2, 3, 4]]
    print("ok")
    """
    )
    assert out.strip() == "ok"


@pytest.mark.skipif(not _core.openmp, reason="built without OpenMP: no thread pool to lose")
def test_a_child_forked_before_any_threaded_step_keeps_its_threads():
    out = _run_python("""
    import os, numpy as np, fusedoptim
    from fusedoptim import _core
    _core.set_num_threads(2); _core.set_parallel_grain(1)
    pid = os.fork()
    if pid == 0:
        p = np.zeros(100_000, np.float32)
        fusedoptim.Adam([p]).step([np.ones_like(p)])
        os._exit(0 if (_core.get_num_threads(), _core.forked_without_threads()) == (2, False) else 3)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status))
    """)
    assert out.strip() == "0"


# --- arrays changed behind the step's back ------------------------------------------------------------------


def _resize_param(params, opt):
    params[2].resize(2000, refcheck=False)  # NumPy moves the data; the plan held the old pointer
    return [np.ones(1, np.float32), np.ones(17, np.float32), np.ones(2000, np.float32)]


def _retype_param(params, opt):
    params[2].dtype = np.int32  # float bits would be written into an int array


def _reshape_param(params, opt):
    params[2].shape = (10, 100)  # a gradient of the new shape would pass a check against the parameter


def _restride_param(params, opt):
    params[2].shape = (2, 500)
    with warnings.catch_warnings():  # deprecated in NumPy 2.4, still possible
        warnings.simplefilter("ignore", DeprecationWarning)
        params[2].strides = (4, 8)  # the same memory, not contiguous any more


def _resize_state(params, opt):
    buffers = [v for v in opt.state[params[2]].values() if isinstance(v, np.ndarray)]
    buffers[0].resize(10, refcheck=False)


def _read_only_state(params, opt):
    buffers = [v for v in opt.state[params[2]].values() if isinstance(v, np.ndarray)]
    buffers[-1].flags.writeable = False


CHANGES = [_resize_param, _retype_param, _reshape_param, _restride_param, _resize_state, _read_only_state]


@pytest.mark.parametrize("change", CHANGES, ids=lambda c: c.__name__.strip("_"))
@pytest.mark.parametrize("info", OPTIMIZERS, ids=IDS)
def test_the_steady_state_refuses_arrays_changed_behind_its_back(info, change):
    """After two steps the optimizer runs its cached plan. Changing a parameter or a state buffer in place
    (data pointer, dtype, shape, strides, flags) must make the next step raise as a full step would, with every
    other array unchanged: before, the plan read freed memory (segfault) or wrote float bits into an int array."""
    params, opt = _setup(info)
    grads = [np.ones_like(p) for p in params]
    opt.step(grads)
    opt.step(grads)
    assert opt._plan is not None
    new_grads = change(params, opt) or [np.ones(n, np.float32) for n in SIZES]
    others = [p.tobytes() for p in params[:2]] + [
        v.tobytes() for p in params[:2] for v in opt.state[p].values() if isinstance(v, np.ndarray)
    ]
    with pytest.raises((ValueError, TypeError)):
        opt.step(new_grads)
    assert [p.tobytes() for p in params[:2]] + [
        v.tobytes() for p in params[:2] for v in opt.state[p].values() if isinstance(v, np.ndarray)
    ] == others


def test_a_prepared_step_refuses_an_array_resized_before_it_runs():
    """The functional API's prepared step: prepared, then its parameter reallocated, then run."""
    p, g = np.zeros(64, np.float32), np.ones(64, np.float32)
    m, v = np.zeros_like(p), np.zeros_like(p)
    step = F._adam_prepare(
        [p],
        [g],
        [m],
        [v],
        None,
        [1],
        lr=0.1,
        beta1=0.9,
        beta2=0.999,
        eps=1e-8,
        weight_decay=0,
        amsgrad=False,
        maximize=False,
        decoupled_weight_decay=False,
    )
    p.resize(128, refcheck=False)
    with pytest.raises(ValueError, match="changed .* after the step checked it; nothing was written"):
        step.run()
    assert not p.any() and not m.any() and not v.any()


# --- interrupts ---------------------------------------------------------------------------------------------


class _Interrupt(BaseException):
    pass


def _interrupt_at(k: int):
    """A trace function raising at the k-th line executed in fusedoptim's Python code: what a Ctrl-C whose
    handler runs at that bytecode boundary does."""
    count = [0]

    def local(frame, event, arg):
        if event == "line":
            count[0] += 1
            if count[0] == k:
                raise _Interrupt
        return local

    def tracer(frame, event, arg):
        # Not in step() itself: its only lines are the busy check and `with self._step_lock`, whose entry and exit
        # a real signal cannot split (no check for signals between them), but a trace function's line event can.
        if "fusedoptim" in frame.f_code.co_filename and frame.f_code.co_name != "step":
            return local
        return None

    return tracer, count


def _consistent(params, opt, before, after):
    now = _snapshot(params, opt)
    return now in (before, after)


@pytest.mark.parametrize("clip", [False, True], ids=["plain", "clipped"])
@pytest.mark.parametrize("info", OPTIMIZERS, ids=IDS)
def test_an_interrupt_at_any_line_of_a_step_leaves_all_or_nothing(info, clip):
    """An exception raised at every line of a first (full) step, and of a steady-state step, in turn: the
    optimizer is then exactly as before the step or exactly as after it (parameters, every state buffer, step
    counts, NAdam's products, gradients). Before, an interrupt after the kernels but before the commit left
    parameters and moments updated with the step count not advanced and new buffers dropped."""
    kwargs = {"max_grad_norm": 0.5} if clip else {}
    for warm in (0, 2):
        params, opt = _setup(info, groups=2)
        for t in range(warm):
            opt.step(make_grads(params, t), **kwargs)
        grads = make_grads(params, 7)
        # The outcome of a step left alone, from an identical optimizer.
        ref_params, ref_opt = _setup(info, groups=2)
        for t in range(warm):
            ref_opt.step(make_grads(ref_params, t), **kwargs)
        ref_grads = [g.copy() for g in grads]
        before = _snapshot(params, opt) + ([g.tobytes() for g in grads],)
        ref_opt.step(ref_grads, **kwargs)
        after = _snapshot(ref_params, ref_opt) + ([g.tobytes() for g in ref_grads],)
        tracer, count = _interrupt_at(0)
        sys.settrace(tracer)
        try:
            opt.step([g.copy() for g in grads], **kwargs)
        finally:
            sys.settrace(None)
        lines = count[0]
        # The plain steady state is one C++ call from step() itself: no line of Python to interrupt.
        assert lines > 5 or (warm and not clip and lines == 0)
        for k in range(1, lines + 1):
            params, opt = _setup(info, groups=2)
            for t in range(warm):
                opt.step(make_grads(params, t), **kwargs)
            step_grads = [g.copy() for g in grads]
            tracer, _ = _interrupt_at(k)
            sys.settrace(tracer)
            try:
                opt.step(step_grads, **kwargs)
            except _Interrupt:
                pass
            finally:
                sys.settrace(None)
            now = _snapshot(params, opt) + ([g.tobytes() for g in step_grads],)
            assert now in (before, after), f"interrupted at line {k} of {lines} (warm={warm}): a partial step"
            # And the optimizer goes on as if the step had run or not.
            opt.step([g.copy() for g in grads], **kwargs)


def test_real_sigint_during_steps_loses_no_step_and_applies_none_twice():
    """SIGALRMs raising KeyboardInterrupt (Python's Ctrl-C handler) every ~100 us while a loop steps, full steps
    (a new lr object every other step drops the plan) and steady-state ones: after every interrupt the step
    happened or did not, so the parameters and state equal, bit for bit, an uninterrupted run of as many steps as
    the step count says."""
    out = _run_python(
        """
    import signal, time, numpy as np, fusedoptim
    def make():
        p = np.linspace(-1, 1, 5000, dtype=np.float32)
        return p, fusedoptim.Adam([p], lr=0.01, amsgrad=True)
    p, opt = make()
    g = np.cos(p) + np.float32(0.5)
    interrupts = 0
    armed = [False]

    def ctrl_c(signum, frame):  # as Python's SIGINT handler, but only inside the loop's try (once per arming)
        if armed[0]:
            armed[0] = False
            raise KeyboardInterrupt

    # The timer's period follows the step's time (an instrumented build steps far slower), so that a good share
    # of the steps both complete and get interrupted.
    q, probe = make()
    start = time.perf_counter()
    for i in range(20):
        probe.param_groups[0]["lr"] = float("0.01")
        probe.step([g])
    period = max(1e-4, 1.5 * (time.perf_counter() - start) / 20)
    signal.signal(signal.SIGALRM, ctrl_c)
    signal.setitimer(signal.ITIMER_REAL, period, period * 1.1)
    for i in range(2000):
        try:
            armed[0] = True
            if i % 2:
                opt.param_groups[0]["lr"] = float("0.01")  # the same value, a new object: a full step
            opt.step([g])
            armed[0] = False
        except KeyboardInterrupt:
            interrupts += 1
    signal.setitimer(signal.ITIMER_REAL, 0, 0)
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    done = opt.state[p]["step"] if len(opt.state) else 0  # no state: every step was interrupted
    q, ref = make()
    for _ in range(done):
        ref.step([g])
    same = q.tobytes() == p.tobytes() and (done == 0 or all(
        opt.state[p][k].tobytes() == ref.state[q][k].tobytes() for k in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")))
    print(interrupts, done, same)
    """,
        timeout=300,
    )
    interrupts, done, same = out.split()
    assert int(interrupts) > 10, out  # the timer did interrupt steps
    assert int(done) > 0 and same == "True", f"a step was half-applied: {out}"


# --- concurrent mutation ------------------------------------------------------------------------------------


def _in_a_long_step(make, call):
    """Runs ``call(opt)`` from this thread while another thread is inside ``opt.step(grads)``, for ``opt, grads =
    make()``, retrying with a fresh optimizer until the call really started while the step held the optimizer;
    returns (opt, the call's result)."""
    for _ in range(30):
        opt, grads = make()
        started = threading.Event()

        def stepper():
            started.set()
            opt.step(grads)

        t = threading.Thread(target=stepper)
        t.start()
        started.wait()
        deadline = time.perf_counter() + 1.0
        while not opt._step_lock.locked() and t.is_alive() and time.perf_counter() < deadline:
            pass
        held = opt._step_lock.locked()
        result = call(opt)
        t.join()
        if held:
            return opt, result
    pytest.skip("could not catch the step running (a loaded machine)")


N_LONG = 4_000_000


@pytest.mark.parametrize("what", ["load_state_dict", "state_dict", "add_param_group", "state_assignment"])
def test_mutators_wait_for_a_running_step(what):
    """load_state_dict, add_param_group, state_dict() and ``opt.state[p] = ...`` from another thread during a step
    wait for it: a loaded state dict is not advanced by the step's commit, a snapshot is not torn."""
    saved = {}

    def make():
        p = np.zeros(N_LONG, np.float32)
        g = np.ones_like(p)
        opt = fusedoptim.Adam([p], lr=0.1)
        opt.step([g])
        saved["sd"] = opt.state_dict()  # step 1
        saved["entry"] = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in opt.state[p].items()}
        return opt, [g]

    if what == "load_state_dict":
        opt, _ = _in_a_long_step(make, lambda opt: opt.load_state_dict(saved["sd"]))
        assert opt.state[0]["step"] == 1
        np.testing.assert_array_equal(opt.state[0]["exp_avg"], saved["sd"]["state"][0]["exp_avg"])
    elif what == "state_dict":
        opt, snap = _in_a_long_step(make, lambda opt: opt.state_dict())
        entry = snap["state"][0]
        # Taken after the step: its count and its moments agree.
        assert entry["step"] == 2
        np.testing.assert_array_equal(entry["exp_avg"], opt.state[0]["exp_avg"])
    elif what == "add_param_group":
        opt, _ = _in_a_long_step(make, lambda opt: opt.add_param_group({"params": [np.zeros(10, np.float32)]}))
        assert len(opt.param_groups) == 2 and opt.state[0]["step"] == 2
    else:
        opt, _ = _in_a_long_step(make, lambda opt: opt.state.__setitem__(0, saved["entry"]))
        assert opt.state[0] is saved["entry"] and saved["entry"]["step"] == 1


def test_a_second_concurrent_step_is_refused_not_run():
    """A step called while another runs raises (the step's check sees the lock held); one that starts after the
    first finished simply runs, so the attempt is retried until the second call started inside the first."""
    for _ in range(30):
        made = {}

        def make():
            made["p"] = np.zeros(N_LONG, np.float32)
            return fusedoptim.SGD([made["p"]], lr=0.1), [np.ones(N_LONG, np.float32)]

        outcome = {}

        def second(opt):
            held = opt._step_lock.locked()
            try:
                opt.step([np.ones(N_LONG, np.float32)])
                outcome["ran"] = held
            except RuntimeError as e:
                outcome["refused"] = str(e)

        _in_a_long_step(make, second)
        if "refused" in outcome:
            assert "already running" in outcome["refused"]
            return
        # It ran: then the first step had finished before the second's own check (held was a moment earlier),
        # and the two steps ran one after the other.
        np.testing.assert_array_equal(made["p"], np.float32(-0.1) + np.float32(-0.1))
    pytest.skip("could not catch the step running (a loaded machine)")


# --- every check before any write ---------------------------------------------------------------------------


@pytest.mark.parametrize("info", OPTIMIZERS, ids=IDS)
def test_clipping_writes_nothing_when_a_later_check_fails(info):
    """A gradient that is another group's parameter, with max_grad_norm: the cross-group overlap check raises.
    Before, clipping had already scaled the gradients (that parameter among them) in place."""
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal(n).astype(np.float32) for n in (17, 17, 1000))
    opt = info.cls([{"params": [a]}, {"params": [b, c]}], **RICH[info.name])
    grads = [np.ones(17, np.float32), a, np.ones(1000, np.float32)]  # b's gradient is group 0's parameter a
    before = [x.tobytes() for x in (a, b, c, grads[0], grads[2])]
    with pytest.raises(ValueError, match="share memory"):
        opt.step(grads, max_grad_norm=1e-3)
    assert [x.tobytes() for x in (a, b, c, grads[0], grads[2])] == before
    assert (
        all(
            not isinstance(v, np.ndarray) and not v
            for i in opt.state
            for v in opt.state[i].values()
            if not isinstance(v, np.ndarray)
        )
        or info.name == "Adagrad"
    )


# --- the smaller ones ---------------------------------------------------------------------------------------


def test_param_names_out_of_step_with_params_are_refused():
    a, b = np.zeros(3, np.float32), np.zeros(2, np.float32)
    with pytest.raises(ValueError, match="param_names"):
        fusedoptim.Adam([{"params": [a, b], "param_names": ["a"]}])
    opt = fusedoptim.Adam({"a": a})
    opt.param_groups[0]["params"].append(b)  # no name: its state would be silently left out of state_dict()
    with pytest.raises(ValueError, match="one name per parameter"):
        opt.step([np.ones(3, np.float32), np.ones(2, np.float32)])
    assert not a.any() and not b.any()
    positional = fusedoptim.Adam([a])
    positional.step([np.ones(3, np.float32)])
    sd = positional.state_dict()
    sd["param_groups"][0]["param_names"] = ["a"]  # torch saves it for named parameters
    positional.load_state_dict(sd)
    assert "param_names" not in positional.param_groups[0]
    positional.state_dict()


def test_arena_views_cannot_be_replaced():
    arena = fusedoptim.ParamArena({"w": (2, 3), "b": 3})
    with pytest.raises(TypeError, match="cannot be replaced; write into it in place"):
        arena.grads["w"] = np.ones((2, 3), np.float32)
    with pytest.raises(TypeError):
        arena.params["b"] = np.ones(3, np.float32)
    with pytest.raises(TypeError):
        del arena.grads["w"]
    arena.grads["w"][...] = 1.0
    opt = fusedoptim.SGD(arena, lr=0.5)
    opt.step(arena.grads)
    np.testing.assert_array_equal(arena.params["w"], -0.5)
    np.testing.assert_array_equal(arena.params["b"], 0.0)


def test_masked_gradients_are_refused_everywhere():
    """The kernels would apply the masked values: refused in a full step, the steady state, the functional API
    and clipping, with nothing changed."""
    p = np.zeros(5, np.float32)
    g = np.ma.masked_array(np.ones(5, np.float32), mask=[0, 1, 0, 0, 0])
    opt = fusedoptim.SGD([p], lr=1.0)
    with pytest.raises(TypeError, match="masked array"):
        opt.step([g])
    opt.step([np.ones(5, np.float32)])
    opt.step([np.ones(5, np.float32)])
    assert opt._plan is not None
    with pytest.raises(TypeError, match="masked array"):
        opt.step([g])
    with pytest.raises(TypeError, match="masked array"):
        F.sgd_([p], [g], [None], lr=1.0)
    with pytest.raises(TypeError, match="masked array"):
        fusedoptim.clip_grad_norm_([g], 0.1)
    np.testing.assert_array_equal(p, -2.0)
    np.testing.assert_array_equal(g.data, 1.0)


def test_grad_scaler_keeps_a_finite_positive_scale():
    """torch keeps the last finite scale when growing would overflow; before, the scale became inf and every
    later step was skipped forever. Backing off stops where 1/scale (the kernels' unscaling factor) would be inf."""
    scaler = fusedoptim.GradScaler(init_scale=1e308, growth_factor=10.0, growth_interval=1)
    p = np.zeros(3, np.float32)
    opt = fusedoptim.SGD([p], lr=1.0)
    assert scaler.step(opt, [np.ones(3, np.float32)])
    scaler.update()
    assert scaler.get_scale() == 1e308
    tiny = fusedoptim.GradScaler(init_scale=1e-308, backoff_factor=0.5)
    assert not tiny.step(opt, [np.full(3, np.inf, np.float32)])
    tiny.update()
    assert tiny.get_scale() == 1e-308
    assert not tiny.step(opt, [np.full(3, np.inf, np.float32)])  # still a valid step: skipped, not an error


def test_huge_finite_float64_gradients_are_not_taken_for_non_finite():
    """The 2-norm of float64 values above ~1e154 overflows double; the guard skipped such finite steps, and
    clipping scaled them to zero. Now the norm is computed scaled where it overflows."""
    p = np.zeros(4, np.float64)
    g = np.full(4, 1e200)
    opt = fusedoptim.SGD([p], lr=1e-200)
    assert opt.step([g], skip_if_nonfinite=True)
    assert opt.last_grad_norm == pytest.approx(2e200, rel=1e-15)
    np.testing.assert_allclose(p, -1.0)
    assert fusedoptim.get_total_norm([g], 3.0) == pytest.approx(4 ** (1 / 3) * 1e200, rel=1e-14)
    h = g.copy()
    assert fusedoptim.clip_grad_norm_([h], 1.0) == pytest.approx(2e200, rel=1e-15)
    np.testing.assert_allclose(h, 0.5, rtol=1e-12)
    # A real inf is still inf, and the step is still skipped.
    assert not opt.step([np.array([1e200, np.inf, 0, 0])], skip_if_nonfinite=True)
    assert np.isnan(fusedoptim.get_total_norm([np.array([np.nan, 1e200])]))


@pytest.mark.parametrize("info", OPTIMIZERS, ids=IDS)
def test_optimizers_refuse_pickle_and_copy_with_a_clear_message(info):
    _params, opt = _setup(info)
    for attempt in (lambda: pickle.dumps(opt), lambda: copy.deepcopy(opt), lambda: copy.copy(opt)):
        with pytest.raises(TypeError, match="cannot be pickled or copied.*state_dict"):
            attempt()


@pytest.mark.parametrize("info", OPTIMIZERS, ids=IDS)
def test_nan_results_are_nan_at_the_same_places_on_every_simd_level_and_thread_count(info):
    """What README promises exactly: every non-NaN result bit for bit, and NaN results NaN at the same elements,
    on every SIMD level and thread count (the sign bit of a NaN may differ: x86 gives a new NaN the sign bit set
    and propagates one of an operation's NaN operands, which vector and scalar code may order differently)."""
    rng = np.random.default_rng(0)
    values = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 1e30, -1e30], np.float32)
    p0, g = rng.choice(values, 1037).astype(np.float32), rng.choice(values, 1037).astype(np.float32)
    results = []
    previous = _core.requested_num_threads(), _core.get_parallel_grain(), _core.simd_level()
    try:
        for simd in _core.supported_simd_levels():
            for threads, grain in [(1, 1 << 30), (2, 7)]:
                _core.set_simd_level(simd)
                _core.set_num_threads(threads)
                _core.set_parallel_grain(grain)
                p = p0.copy()
                opt = info.cls([p], **RICH[info.name])
                with np.errstate(all="ignore"):
                    for _ in range(3):
                        opt.step([g])
                results.append(p)
    finally:
        _core.set_num_threads(previous[0])
        _core.set_parallel_grain(previous[1])
        _core.set_simd_level(previous[2])
    for r in results[1:]:
        nan = np.isnan(results[0])
        np.testing.assert_array_equal(np.isnan(r), nan)
        np.testing.assert_array_equal(r[~nan].view(np.uint32), results[0][~nan].view(np.uint32))


def test_signal_module_is_usable_here():
    """The interrupt tests rely on SIGALRM reaching the main thread of a child interpreter."""
    assert hasattr(signal, "setitimer")
