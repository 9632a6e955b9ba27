#include "settings.hpp"

#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>

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
std::atomic<bool> prefetch{false};

bool cpu_gains_from_prefetch() {
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_cpu_is("intel");
#else
    return false;  // not measured
#endif
}
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

void init_prefetch() {
    const char* forced = std::getenv("FUSEDOPTIM_PREFETCH");
    if (forced == nullptr || *forced == '\0') {
        set_prefetch_mixed_precision(cpu_gains_from_prefetch());
    } else if (std::string(forced) == "0" || std::string(forced) == "1") {
        set_prefetch_mixed_precision(*forced == '1');
    } else {
        throw std::invalid_argument("Invalid FUSEDOPTIM_PREFETCH: '" + std::string(forced) + "' (0 or 1)");
    }
}

bool prefetch_mixed_precision() { return prefetch.load(std::memory_order_relaxed); }

void set_prefetch_mixed_precision(bool value) { prefetch.store(value, std::memory_order_relaxed); }

}  // namespace fusedoptim::bind
