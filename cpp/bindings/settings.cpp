#include "settings.hpp"

#include <atomic>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace fusedoptim::bind {

namespace {
std::atomic<int> requested_threads{0};
// Measured on a 2-core Xeon (benchmarks/): below ~32k float32 Adam elements a fork/join costs more than the
// second thread saves.
std::atomic<int64_t> grain{32768};
std::atomic<bool> fuse{true};
}  // namespace

bool has_openmp() {
#if defined(_OPENMP)
    return true;
#else
    return false;
#endif
}

int num_threads() {
#if defined(_OPENMP)
    const int requested = requested_threads.load(std::memory_order_relaxed);
    return requested > 0 ? requested : omp_get_max_threads();
#else
    return 1;
#endif
}

int requested_num_threads() { return requested_threads.load(std::memory_order_relaxed); }

void set_num_threads(int threads) { requested_threads.store(threads < 0 ? 0 : threads, std::memory_order_relaxed); }

int64_t parallel_grain() { return grain.load(std::memory_order_relaxed); }

void set_parallel_grain(int64_t value) { grain.store(value < 1 ? 1 : value, std::memory_order_relaxed); }

bool fuse_mixed_precision() { return fuse.load(std::memory_order_relaxed); }

void set_fuse_mixed_precision(bool value) { fuse.store(value, std::memory_order_relaxed); }

}  // namespace fusedoptim::bind
