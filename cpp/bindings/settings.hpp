// Process-wide knobs of the bindings: the thread count, the parallel grain, the fused mixed-precision loop.
#pragma once

#include <cstdint>

namespace fusedoptim::bind {

// Threads a kernel call may use: set_num_threads' value, or else OpenMP's current maximum (OMP_NUM_THREADS,
// omp_set_num_threads, threadpoolctl), read at every call so such limits take effect.
int num_threads();
// num_threads() for a kernel call about to run: also records that a team may start (see init_fork_handler).
int kernel_threads();
// Raises std::runtime_error for more than one thread in a forked child (see init_fork_handler).
void set_num_threads(int threads);  // 0 returns to OpenMP's maximum
int requested_num_threads();        // set_num_threads' value (0: none)
bool has_openmp();
// fork(): a child of a process that had run multi-threaded kernels runs them on one thread, as torch does
// (OpenMP's pool does not survive fork, and its next parallel region would hang); set_num_threads(n > 1) raises
// there. Registered once at import.
void init_fork_handler();
bool forked_without_threads();

// Fewest units of work a thread is given (one unit: one float32 element of SGD with momentum; an Adam element
// is two, a float64 element twice its float32 cost); below twice this a call runs serially.
int64_t parallel_grain();
void set_parallel_grain(int64_t grain);

// Whether mixed-precision steps with bfloat16 state take the fused loop (parallel.hpp, run_fused) where it
// applies, rather than staging. On by default; off only for tests and benchmarks comparing the two. Read when a
// step's tensors are gathered (a steady-state plan keeps what it was built with).
bool fuse_mixed_precision();
void set_fuse_mixed_precision(bool fuse);

// Whether the mixed-precision loops (fused and staged, parallel.hpp) prefetch ahead in software: on by default
// for Intel CPUs only, where it lifts DRAM-bound 16-bit steps toward their memory floor, while on AMD's the
// hardware prefetchers already keep up and it costs (benchmarks/byte_floor_latest.md, "Software prefetch";
// benchmarks/byte_floor.py times both). FUSEDOPTIM_PREFETCH=0 or 1 decides instead (read at
// import: init_prefetch throws std::invalid_argument for another value). Read when a step's tensors are gathered.
void init_prefetch();
bool prefetch_mixed_precision();
void set_prefetch_mixed_precision(bool prefetch);

}  // namespace fusedoptim::bind
