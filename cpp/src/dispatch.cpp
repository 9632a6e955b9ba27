// Chooses the instruction set the kernels run with: the best one compiled in that the CPU (and OS) supports,
// unless FUSEDOPTIM_SIMD names another. The choice can be changed at run time (tests run every level).
#include "fusedoptim/dispatch.hpp"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

namespace fusedoptim {
namespace baseline {
extern const KernelTable table;
}
#ifdef FUSEDOPTIM_HAVE_AVX2
namespace avx2 {
extern const KernelTable table;
}
#endif
#ifdef FUSEDOPTIM_HAVE_AVX512
namespace avx512 {
extern const KernelTable table;
}
#endif

namespace {

struct Level {
    const KernelTable* table;
    bool (*supported)();
};

bool always() { return true; }
#if defined(__x86_64__) || defined(__i386__)
// __builtin_cpu_supports also checks that the OS saves the wider registers (XGETBV), not just CPUID.
[[maybe_unused]] bool has_avx2() {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}
[[maybe_unused]] bool has_avx512() {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") && has_avx2();
}
#endif

const std::vector<Level>& levels() {
    static const std::vector<Level> all = {
        {&baseline::table, &always},
#ifdef FUSEDOPTIM_HAVE_AVX2
        {&avx2::table, &has_avx2},
#endif
#ifdef FUSEDOPTIM_HAVE_AVX512
        {&avx512::table, &has_avx512},
#endif
    };
    return all;
}

const KernelTable* find(const std::string& name) {
    for (const Level& level : levels()) {
        if (name == level.table->name) {
            if (!level.supported()) {
                throw std::invalid_argument("SIMD level '" + name + "' is compiled in but this CPU cannot run it");
            }
            return level.table;
        }
    }
    std::string known;
    for (const Level& level : levels()) known += (known.empty() ? "" : ", ") + std::string(level.table->name);
    throw std::invalid_argument("Unknown SIMD level '" + name + "' (compiled: " + known + ")");
}

const KernelTable* choose() {
    if (const char* forced = std::getenv("FUSEDOPTIM_SIMD"); forced != nullptr && *forced != '\0') {
        return find(forced);
    }
    const KernelTable* best = &baseline::table;
    for (const Level& level : levels()) {
        if (level.supported()) best = level.table;
    }
    return best;
}

std::atomic<const KernelTable*>& active() {
    static std::atomic<const KernelTable*> table{choose()};
    return table;
}

}  // namespace

const KernelTable& active_kernels() { return *active().load(std::memory_order_acquire); }

std::string simd_level() { return active_kernels().name; }

std::vector<std::string> compiled_simd_levels() {
    std::vector<std::string> names;
    for (const Level& level : levels()) names.emplace_back(level.table->name);
    return names;
}

std::vector<std::string> supported_simd_levels() {
    std::vector<std::string> names;
    for (const Level& level : levels()) {
        if (level.supported()) names.emplace_back(level.table->name);
    }
    return names;
}

void set_simd_level(const std::string& level) { active().store(find(level), std::memory_order_release); }

}  // namespace fusedoptim
