#include "settings.hpp"

#include <atomic>
#include <cstdlib>
#include <pthread.h>
#include <stdexcept>
#include <string>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace fusedoptim::bind {

namespace {
std::atomic<int> requested_threads{0};
// In units of SGD-with-momentum float32 elements (kernels scale their element counts by their cost, WorkOf in
// parallel.hpp): a second thread pays only once its share outweighs its wake-up (benchmarks/grain_latest.md,
// "The default grain", has the measurements behind 65536).
std::atomic<int64_t> grain{65536};
std::atomic<bool> fuse{true};
std::atomic<bool> prefetch{false};
// libgomp's thread pool does not survive fork(): a child whose parent had started a team hangs in its first
// parallel region (the pool's threads do not exist there, the child waits for them forever). torch drops to one
// thread in such a child; so do we, and refuse more (see set_num_threads).
std::atomic<bool> team_started{false};
std::atomic<bool> forked_after_team{false};

void in_forked_child() {
    if (team_started.load(std::memory_order_relaxed)) forked_after_team.store(true, std::memory_order_relaxed);
}

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
    if (forked_after_team.load(std::memory_order_relaxed)) return 1;
    const int requested = requested_threads.load(std::memory_order_relaxed);
    return requested > 0 ? requested : omp_get_max_threads();
#else
    return 1;
#endif
}

int kernel_threads() {
    const int threads = num_threads();
    // Set before any team can start, so a fork at any later point sees it (it errs on the safe side: a call too
    // small to split also sets it).
    if (threads > 1 && !team_started.load(std::memory_order_relaxed)) {
        team_started.store(true, std::memory_order_relaxed);
    }
    return threads;
}

void init_fork_handler() {
    static const int registered = pthread_atfork(nullptr, nullptr, in_forked_child);
    if (registered != 0) throw std::runtime_error("pthread_atfork failed: " + std::to_string(registered));
}

bool forked_without_threads() { return forked_after_team.load(std::memory_order_relaxed); }

int requested_num_threads() { return requested_threads.load(std::memory_order_relaxed); }

void set_num_threads(int threads) {
    if (threads > 1 && forked_after_team.load(std::memory_order_relaxed)) {
        throw std::runtime_error(
            "fusedoptim cannot use " + std::to_string(threads) +
            " threads in this process: it was forked from a process that had run multi-threaded kernels, and "
            "OpenMP's thread pool does not survive fork() (its first parallel region would hang). Kernels here run "
            "on one thread; for more, start workers with the 'spawn' or 'forkserver' method of multiprocessing");
    }
    requested_threads.store(threads < 0 ? 0 : threads, std::memory_order_relaxed);
}

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
