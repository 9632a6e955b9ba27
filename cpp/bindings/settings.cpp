#include "settings.hpp"

#include <atomic>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace fusedoptim::bind {

namespace {
std::atomic<int> requested_threads{0};
// In units of SGD-with-momentum float32 elements (kernels scale their element counts by their cost, WorkOf in
// parallel.hpp). benchmarks/grain.py on a 2-core AMD EPYC: waking a second thread costs ~15 us, and two
// threads start to pay from ~130k elements of SGD and ~35-65k of Adam, i.e. ~65k units per thread.
std::atomic<int64_t> grain{65536};
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
