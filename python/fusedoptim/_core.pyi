"""
fusedoptim's C++ kernels. Private: use fusedoptim.functional or the optimizer classes.
"""
from __future__ import annotations
import collections.abc
import numpy
import numpy.typing
import typing
__all__: list[str] = ['ASGDHyper', 'AdadeltaHyper', 'AdagradHyper', 'AdamHyper', 'AdamaxHyper', 'GroupSnapshot', 'LAMBHyper', 'LionHyper', 'NAdamHyper', 'Precision', 'PreparedStep', 'RAdamHyper', 'RMSpropHyper', 'RpropHyper', 'SGDHyper', 'StepPlan', 'adadelta_prepare', 'adagrad_prepare', 'adam_prepare', 'adamax_prepare', 'asgd_prepare', 'clamp_', 'compiled_simd_levels', 'compiler', 'ema_', 'flat_axpy_dot', 'flat_grad_stats', 'flat_history', 'flat_step', 'forked_without_threads', 'from_float32', 'from_float32_stochastic', 'get_num_threads', 'get_parallel_grain', 'lamb_prepare', 'lion_prepare', 'nadam_prepare', 'openmp', 'prefetch', 'prepare_scale', 'radam_prepare', 'requested_num_threads', 'rmsprop_prepare', 'rprop_prepare', 'run_steps', 'sanitize', 'scale_', 'set_num_threads', 'set_parallel_grain', 'set_simd_level', 'sgd_prepare', 'simd_level', 'stochastic_key', 'stream_triad', 'supported_simd_levels', 'to_float32', 'total_norm']
class PreparedStep:
    """
    A validated kernel call; run() applies it once, in place, without the GIL.
    """
    def run(self) -> None:
        ...
class Precision:
    """
    A call's mixed-precision settings (buffers.hpp, Precision).
    """
    def __init__(self, models: typing.Any = None, grad_scale: typing.SupportsFloat | typing.SupportsIndex = 1.0, rounding_seed: typing.SupportsInt | typing.SupportsIndex | None = None, rounding_steps: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex] = []) -> None:
        ...
    @property
    def grad_scale(self) -> float:
        ...
    @property
    def models(self) -> typing.Any:
        ...
    @property
    def rounding_seed(self) -> int | None:
        ...
    @property
    def rounding_steps(self) -> list[int]:
        ...
class GroupSnapshot:
    """
    What a StepPlan relies on of a parameter group.
    """
    def __init__(self, group: dict, params: list, members: tuple, values: tuple) -> None:
        ...
    @property
    def group(self) -> dict:
        ...
    @property
    def members(self) -> tuple:
        ...
    @property
    def params(self) -> list:
        ...
    @property
    def values(self) -> tuple:
        ...
class StepPlan:
    """
    Prepared steps re-run with new gradients and step numbers (an optimizer's steady state).
    """
    def __init__(self, steps: collections.abc.Sequence[typing.Any], groups: collections.abc.Sequence[GroupSnapshot], states: collections.abc.Sequence[dict], counters: collections.abc.Sequence[dict]) -> None:
        ...
    def bind(self, param_groups: typing.Any, grads: typing.Any, grad_scale: typing.SupportsFloat | typing.SupportsIndex = 1.0) -> bool:
        ...
    def run(self, before: PreparedStep | None = None) -> None:
        ...
    def step(self, param_groups: typing.Any, grads: typing.Any) -> bool:
        """
        bind() then run(); false, doing nothing, if bind() is.
        """
class SGDHyper:
    """
    A family's hyperparameters, as its prepare function takes them.
    """
    def __init__(self, lr: typing.SupportsFloat | typing.SupportsIndex, momentum: typing.SupportsFloat | typing.SupportsIndex, dampening: typing.SupportsFloat | typing.SupportsIndex, weight_decay: typing.SupportsFloat | typing.SupportsIndex, nesterov: bool, maximize: bool) -> None:
        ...
    def __repr__(self) -> str:
        ...
    @property
    def dampening(self) -> float:
        ...
    @property
    def lr(self) -> float:
        ...
    @property
    def maximize(self) -> bool:
        ...
    @property
    def momentum(self) -> float:
        ...
    @property
    def nesterov(self) -> bool:
        ...
    @property
    def weight_decay(self) -> float:
        ...
class AdagradHyper:
    """
    A family's hyperparameters, as its prepare function takes them.
    """
    def __init__(self, lr: typing.SupportsFloat | typing.SupportsIndex, lr_decay: typing.SupportsFloat | typing.SupportsIndex, weight_decay: typing.SupportsFloat | typing.SupportsIndex, eps: typing.SupportsFloat | typing.SupportsIndex, maximize: bool) -> None:
        ...
    def __repr__(self) -> str:
        ...
    @property
    def eps(self) -> float:
        ...
    @property
    def lr(self) -> float:
        ...
    @property
    def lr_decay(self) -> float:
        ...
    @property
    def maximize(self) -> bool:
        ...
    @property
    def weight_decay(self) -> float:
        ...
class RMSpropHyper:
    """
    A family's hyperparameters, as its prepare function takes them.
    """
    def __init__(self, lr: typing.SupportsFloat | typing.SupportsIndex, alpha: typing.SupportsFloat | typing.SupportsIndex, eps: typing.SupportsFloat | typing.SupportsIndex, weight_decay: typing.SupportsFloat | typing.SupportsIndex, momentum: typing.SupportsFloat | typing.SupportsIndex, centered: bool, maximize: bool, eps_in_sqrt: bool) -> None:
        ...
    def __repr__(self) -> str:
        ...
    @property
    def alpha(self) -> float:
        ...
    @property
    def centered(self) -> bool:
        ...
    @property
    def eps(self) -> float:
        ...
    @property
    def eps_in_sqrt(self) -> bool:
        ...
    @property
    def lr(self) -> float:
        ...
    @property
    def maximize(self) -> bool:
        ...
    @property
    def momentum(self) -> float:
        ...
    @property
    def weight_decay(self) -> float:
        ...
class AdamHyper:
    """
    A family's hyperparameters, as its prepare function takes them.
    """
    def __init__(self, lr: typing.SupportsFloat | typing.SupportsIndex, beta1: typing.SupportsFloat | typing.SupportsIndex, beta2: typing.SupportsFloat | typing.SupportsIndex, eps: typing.SupportsFloat | typing.SupportsIndex, weight_decay: typing.SupportsFloat | typing.SupportsIndex, amsgrad: bool, maximize: bool, decoupled_weight_decay: bool) -> None:
        ...
    def __repr__(self) -> str:
        ...
    @property
    def amsgrad(self) -> bool:
        ...
    @property
    def beta1(self) -> float:
        ...
    @property
    def beta2(self) -> float:
        ...
    @property
    def decoupled_weight_decay(self) -> bool:
        ...
    @property
    def eps(self) -> float:
        ...
    @property
    def lr(self) -> float:
        ...
    @property
    def maximize(self) -> bool:
        ...
    @property
    def weight_decay(self) -> float:
        ...
class AdadeltaHyper:
    """
    A family's hyperparameters, as its prepare function takes them.
    """
    def __init__(self, lr: typing.SupportsFloat | typing.SupportsIndex, rho: typing.SupportsFloat | typing.SupportsIndex, eps: typing.SupportsFloat | typing.SupportsIndex, weight_decay: typing.SupportsFloat | typing.SupportsIndex, maximize: bool) -> None:
        ...
    def __repr__(self) -> str:
        ...
    @property
    def eps(self) -> float:
        ...
    @property
    def lr(self) -> float:
        ...
    @property
    def maximize(self) -> bool:
        ...
    @property
    def rho(self) -> float:
        ...
    @property
    def weight_decay(self) -> float:
        ...
class AdamaxHyper:
    """
    A family's hyperparameters, as its prepare function takes them.
    """
    def __init__(self, lr: typing.SupportsFloat | typing.SupportsIndex, beta1: typing.SupportsFloat | typing.SupportsIndex, beta2: typing.SupportsFloat | typing.SupportsIndex, eps: typing.SupportsFloat | typing.SupportsIndex, weight_decay: typing.SupportsFloat | typing.SupportsIndex, maximize: bool) -> None:
        ...
    def __repr__(self) -> str:
        ...
    @property
    def beta1(self) -> float:
        ...
    @property
    def beta2(self) -> float:
        ...
    @property
    def eps(self) -> float:
        ...
    @property
    def lr(self) -> float:
        ...
    @property
    def maximize(self) -> bool:
        ...
    @property
    def weight_decay(self) -> float:
        ...
class NAdamHyper:
    """
    A family's hyperparameters, as its prepare function takes them.
    """
    def __init__(self, lr: typing.SupportsFloat | typing.SupportsIndex, beta1: typing.SupportsFloat | typing.SupportsIndex, beta2: typing.SupportsFloat | typing.SupportsIndex, eps: typing.SupportsFloat | typing.SupportsIndex, weight_decay: typing.SupportsFloat | typing.SupportsIndex, momentum_decay: typing.SupportsFloat | typing.SupportsIndex, decoupled_weight_decay: bool, maximize: bool) -> None:
        ...
    def __repr__(self) -> str:
        ...
    @property
    def beta1(self) -> float:
        ...
    @property
    def beta2(self) -> float:
        ...
    @property
    def decoupled_weight_decay(self) -> bool:
        ...
    @property
    def eps(self) -> float:
        ...
    @property
    def lr(self) -> float:
        ...
    @property
    def maximize(self) -> bool:
        ...
    @property
    def momentum_decay(self) -> float:
        ...
    @property
    def weight_decay(self) -> float:
        ...
class RAdamHyper:
    """
    A family's hyperparameters, as its prepare function takes them.
    """
    def __init__(self, lr: typing.SupportsFloat | typing.SupportsIndex, beta1: typing.SupportsFloat | typing.SupportsIndex, beta2: typing.SupportsFloat | typing.SupportsIndex, eps: typing.SupportsFloat | typing.SupportsIndex, weight_decay: typing.SupportsFloat | typing.SupportsIndex, decoupled_weight_decay: bool, maximize: bool) -> None:
        ...
    def __repr__(self) -> str:
        ...
    @property
    def beta1(self) -> float:
        ...
    @property
    def beta2(self) -> float:
        ...
    @property
    def decoupled_weight_decay(self) -> bool:
        ...
    @property
    def eps(self) -> float:
        ...
    @property
    def lr(self) -> float:
        ...
    @property
    def maximize(self) -> bool:
        ...
    @property
    def weight_decay(self) -> float:
        ...
class LionHyper:
    """
    A family's hyperparameters, as its prepare function takes them.
    """
    def __init__(self, lr: typing.SupportsFloat | typing.SupportsIndex, beta1: typing.SupportsFloat | typing.SupportsIndex, beta2: typing.SupportsFloat | typing.SupportsIndex, weight_decay: typing.SupportsFloat | typing.SupportsIndex, maximize: bool) -> None:
        ...
    def __repr__(self) -> str:
        ...
    @property
    def beta1(self) -> float:
        ...
    @property
    def beta2(self) -> float:
        ...
    @property
    def lr(self) -> float:
        ...
    @property
    def maximize(self) -> bool:
        ...
    @property
    def weight_decay(self) -> float:
        ...
class LAMBHyper:
    """
    A family's hyperparameters, as its prepare function takes them.
    """
    def __init__(self, lr: typing.SupportsFloat | typing.SupportsIndex, beta1: typing.SupportsFloat | typing.SupportsIndex, beta2: typing.SupportsFloat | typing.SupportsIndex, eps: typing.SupportsFloat | typing.SupportsIndex, weight_decay: typing.SupportsFloat | typing.SupportsIndex, maximize: bool) -> None:
        ...
    def __repr__(self) -> str:
        ...
    @property
    def beta1(self) -> float:
        ...
    @property
    def beta2(self) -> float:
        ...
    @property
    def eps(self) -> float:
        ...
    @property
    def lr(self) -> float:
        ...
    @property
    def maximize(self) -> bool:
        ...
    @property
    def weight_decay(self) -> float:
        ...
class ASGDHyper:
    """
    A family's hyperparameters, as its prepare function takes them.
    """
    def __init__(self, lr: typing.SupportsFloat | typing.SupportsIndex, lambd: typing.SupportsFloat | typing.SupportsIndex, alpha: typing.SupportsFloat | typing.SupportsIndex, t0: typing.SupportsFloat | typing.SupportsIndex, weight_decay: typing.SupportsFloat | typing.SupportsIndex, maximize: bool) -> None:
        ...
    def __repr__(self) -> str:
        ...
    @property
    def alpha(self) -> float:
        ...
    @property
    def lambd(self) -> float:
        ...
    @property
    def lr(self) -> float:
        ...
    @property
    def maximize(self) -> bool:
        ...
    @property
    def t0(self) -> float:
        ...
    @property
    def weight_decay(self) -> float:
        ...
class RpropHyper:
    """
    A family's hyperparameters, as its prepare function takes them.
    """
    def __init__(self, etaminus: typing.SupportsFloat | typing.SupportsIndex, etaplus: typing.SupportsFloat | typing.SupportsIndex, step_size_min: typing.SupportsFloat | typing.SupportsIndex, step_size_max: typing.SupportsFloat | typing.SupportsIndex, maximize: bool) -> None:
        ...
    def __repr__(self) -> str:
        ...
    @property
    def etaminus(self) -> float:
        ...
    @property
    def etaplus(self) -> float:
        ...
    @property
    def maximize(self) -> bool:
        ...
    @property
    def step_size_max(self) -> float:
        ...
    @property
    def step_size_min(self) -> float:
        ...
def _get_fuse_mixed_precision() -> bool:
    ...
def _partition(sizes: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], num_threads: typing.SupportsInt | typing.SupportsIndex, grain: typing.SupportsInt | typing.SupportsIndex, itemsize: typing.SupportsInt | typing.SupportsIndex, misalign: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex] = []) -> list[list]:
    """
    Test only. The (tensor, begin, end) segments for_each_segment gives each thread, in the order that thread visits them, for tensors of these sizes (tensor k starting misalign[k] elements past a cache line); one list per planned thread. No memory is touched.
    """
def _reduce_blocks(sizes: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], num_threads: typing.SupportsInt | typing.SupportsIndex, grain: typing.SupportsInt | typing.SupportsIndex) -> tuple[list, typing.Any]:
    """
    Test only. The blocks reduce_blocks gives each thread, as an int64 array of (tensor, begin, end) rows in the order that thread reduces them (one array per planned thread), and each tensor's reduction of the block lengths (its size). No memory is touched.
    """
def _set_fuse_mixed_precision(fuse: bool) -> None:
    """
    Test and benchmark only. Off: mixed-precision steps gathered from now on stage every 16-bit layout instead of taking the fused bfloat16-state loop.
    """
def _set_prefetch(prefetch: bool) -> None:
    """
    Test and benchmark only: whether mixed-precision steps gathered from now on prefetch in software (settings.hpp; the default depends on the CPU).
    """
def adadelta_prepare(params: typing.Any, grads: typing.Any, square_avgs: typing.Any, acc_deltas: typing.Any, hyper: AdadeltaHyper, labels: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex] | None = None, precision: Precision | None = None) -> PreparedStep:
    ...
def adagrad_prepare(params: typing.Any, grads: typing.Any, state_sums: typing.Any, steps: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], hyper: AdagradHyper, labels: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex] | None = None, precision: Precision | None = None) -> PreparedStep:
    ...
def adam_prepare(params: typing.Any, grads: typing.Any, exp_avgs: typing.Any, exp_avg_sqs: typing.Any, max_exp_avg_sqs: typing.Any, steps: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], hyper: AdamHyper, labels: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex] | None = None, precision: Precision | None = None) -> PreparedStep:
    ...
def adamax_prepare(params: typing.Any, grads: typing.Any, exp_avgs: typing.Any, exp_infs: typing.Any, steps: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], hyper: AdamaxHyper, labels: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex] | None = None, precision: Precision | None = None) -> PreparedStep:
    ...
def asgd_prepare(params: typing.Any, grads: typing.Any, axs: typing.Any, etas: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], mus: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], steps: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], hyper: ASGDHyper, labels: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex] | None = None, precision: Precision | None = None) -> tuple[typing.Any, typing.Any, typing.Any]:
    ...
def clamp_(grads: typing.Any, lo: typing.SupportsFloat | typing.SupportsIndex, hi: typing.SupportsFloat | typing.SupportsIndex) -> None:
    """
    Clamps grads to [lo, hi] in place; NaN stays NaN.
    """
def compiled_simd_levels() -> list[str]:
    ...
def ema_(averages: typing.Any, params: typing.Any, weight: typing.SupportsFloat | typing.SupportsIndex) -> None:
    """
    averages = lerp(averages, params, weight), in place (weight = 1 - decay).
    """
def flat_axpy_dot(x: typing.Any, u: typing.Any, v: typing.Any, alpha: typing.SupportsFloat | typing.SupportsIndex | None, scale: typing.SupportsFloat | typing.SupportsIndex | None = None) -> float:
    """
    A step of L-BFGS's two-loop recursion in one pass: x = x + alpha * u (alpha None: x = -u), then x = x * scale when given; returns v.x in double.
    """
def flat_grad_stats(params: typing.Any, grads: typing.Any, copy: typing.Any = None, direction: typing.Any = None) -> tuple[float, float, float]:
    """
    L-BFGS: (max |g|, sum |g|, g.d) over all the gradients (g.d 0 without `direction`), in double; copies each gradient into `copy` when given. Every list has one array per parameter, of its dtype and shape.
    """
def flat_history(y: typing.Any, grads: typing.Any, prev: typing.Any, prev_old: typing.Any, direction: typing.Any, s: typing.Any, t: typing.SupportsFloat | typing.SupportsIndex) -> tuple[float, float]:
    """
    L-BFGS's history update in one pass: y = g - prev_old (None: prev, read before it is written), prev = g, s = d * t; returns (y.s, y.y) in double.
    """
def flat_step(params: typing.Any, direction: typing.Any, t: typing.SupportsFloat | typing.SupportsIndex, snapshot: typing.Any = None, base: typing.Any = None) -> float:
    """
    L-BFGS's parameter update: snapshot = p (when given), then p = (base, else p) + t * d; returns max |d|.
    """
def forked_without_threads() -> bool:
    """
    True in a process forked after multi-threaded kernels ran: kernels run on one thread here.
    """
def from_float32(values: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], kind: str) -> numpy.typing.NDArray[numpy.uint16]:
    """
    The 16-bit patterns (uint16) of float32 `values` rounded to `kind` 'float16' or 'bfloat16'.
    """
def from_float32_stochastic(values: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], key: typing.SupportsInt | typing.SupportsIndex, first: typing.SupportsInt | typing.SupportsIndex = 0) -> numpy.typing.NDArray[numpy.uint16]:
    """
    The bfloat16 patterns (uint16) of float32 `values` stochastically rounded with `key`, as elements first, first + 1, ... of a buffer.
    """
def get_num_threads() -> int:
    """
    Threads a kernel call may use.
    """
def get_parallel_grain() -> int:
    ...
def lamb_prepare(params: typing.Any, grads: typing.Any, exp_avgs: typing.Any, exp_avg_sqs: typing.Any, steps: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], hyper: LAMBHyper, labels: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex] | None = None, grad_scale: typing.SupportsFloat | typing.SupportsIndex = 1.0) -> PreparedStep:
    ...
def lion_prepare(params: typing.Any, grads: typing.Any, exp_avgs: typing.Any, hyper: LionHyper, labels: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex] | None = None, precision: Precision | None = None) -> PreparedStep:
    ...
def nadam_prepare(params: typing.Any, grads: typing.Any, exp_avgs: typing.Any, exp_avg_sqs: typing.Any, mu_products: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], steps: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], hyper: NAdamHyper, labels: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex] | None = None, precision: Precision | None = None) -> tuple[typing.Any, typing.Any]:
    ...
def prefetch() -> bool:
    """
    Whether the mixed-precision loops prefetch in software.
    """
def prepare_scale(grads: typing.Any, factor: typing.SupportsFloat | typing.SupportsIndex) -> PreparedStep:
    """
    scale_ checked but not run: an optimizer's clipping, run by run_steps or StepPlan.run just before the step it belongs to.
    """
def radam_prepare(params: typing.Any, grads: typing.Any, exp_avgs: typing.Any, exp_avg_sqs: typing.Any, steps: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], hyper: RAdamHyper, labels: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex] | None = None, precision: Precision | None = None) -> PreparedStep:
    ...
def requested_num_threads() -> int:
    """
    set_num_threads' value; 0 when OpenMP decides.
    """
def rmsprop_prepare(params: typing.Any, grads: typing.Any, square_avgs: typing.Any, grad_avgs: typing.Any, momentum_buffers: typing.Any, hyper: RMSpropHyper, labels: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex] | None = None, precision: Precision | None = None) -> PreparedStep:
    ...
def rprop_prepare(params: typing.Any, grads: typing.Any, prevs: typing.Any, step_sizes: typing.Any, hyper: RpropHyper, labels: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex] | None = None, precision: Precision | None = None) -> PreparedStep:
    ...
def run_steps(steps: collections.abc.Sequence[PreparedStep], before: PreparedStep | None = None, writes: list | None = None) -> None:
    """
    Runs prepared steps in order (an optimizer prepares all its groups, then runs them): first `before` (gradient clipping), then the steps, then stores `writes` (dict, key, value) with no Python code between.
    """
def scale_(grads: typing.Any, factor: typing.SupportsFloat | typing.SupportsIndex) -> None:
    """
    grads *= factor, in place (the factor rounded to each array's dtype).
    """
def set_num_threads(threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Sets the threads kernels may use; 0 returns to OpenMP's maximum.
    """
def set_parallel_grain(grain: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Fewest units of work per thread, a unit being one float32 element of SGD with momentum (an element of the Adam family, Adagrad, RMSprop, Adadelta or Adamax counts 2, of LAMB 2 per pass, float64 twice float32). Default 65536. Tests lower it to run small arrays on two threads.
    """
def set_simd_level(level: str) -> None:
    ...
def sgd_prepare(params: typing.Any, grads: typing.Any, momentum_buffers: typing.Any, first_steps: collections.abc.Sequence[bool], hyper: SGDHyper, labels: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex] | None = None, precision: Precision | None = None) -> PreparedStep:
    ...
def simd_level() -> str:
    """
    The instruction set the kernels run with.
    """
def stochastic_key(seed: typing.SupportsInt | typing.SupportsIndex, index: typing.SupportsInt | typing.SupportsIndex, step: typing.SupportsInt | typing.SupportsIndex, slot: typing.SupportsInt | typing.SupportsIndex) -> int:
    """
    The key of buffer `slot` of parameter `index` at step `step` (convert.hpp).
    """
def stream_triad(a: numpy.ndarray, b: numpy.ndarray, c: numpy.ndarray, scalar: typing.SupportsFloat | typing.SupportsIndex) -> None:
    """
    STREAM triad a = b + scalar * c, in place, with the optimizers' threads and SIMD level: the bandwidth probe.
    """
def supported_simd_levels() -> list[str]:
    ...
def to_float32(bits: typing.Annotated[numpy.typing.ArrayLike, numpy.uint16], kind: str) -> numpy.typing.NDArray[numpy.float32]:
    """
    float32 values of 16-bit patterns (uint16, C-contiguous) of `kind` 'float16' or 'bfloat16'.
    """
def total_norm(grads: typing.Any, norm_type: typing.SupportsFloat | typing.SupportsIndex, allow_16bit: bool = False) -> float:
    """
    The norm of all arrays together, in double, deterministic for any thread count; NaN or inf when any element is not finite. allow_16bit: float16 and bfloat16 arrays too (each as its float32 copy).
    """
_CACHE_LINE_BYTES: int = 64
_REDUCE_BLOCK: int = 4096
__version__: str = '0.1.0'
compiler: str = 'GNU 12.2.0'
openmp: bool = True
sanitize: bool = False
