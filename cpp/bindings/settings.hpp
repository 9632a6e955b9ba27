// Process-wide knobs of the bindings: the thread count and the parallel grain.
#pragma once

#include <cstdint>

namespace fusedoptim::bind {

// Threads a kernel call may use: set_num_threads' value, or else OpenMP's current maximum (OMP_NUM_THREADS,
// omp_set_num_threads, threadpoolctl), read at every call so such limits take effect.
int num_threads();
void set_num_threads(int threads);  // 0 returns to OpenMP's maximum
int requested_num_threads();        // set_num_threads' value (0: none)
bool has_openmp();

// Fewest elements a thread is given; below twice this a call runs serially.
int64_t parallel_grain();
void set_parallel_grain(int64_t grain);

}  // namespace fusedoptim::bind
