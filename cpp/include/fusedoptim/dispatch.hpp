// Chooses which instruction set's kernel table runs.
#pragma once

#include <string>
#include <vector>

#include "fusedoptim/kernel_table.hpp"

namespace fusedoptim {

// The active table (chosen at first use from the CPU and FUSEDOPTIM_SIMD, or by set_simd_level).
const KernelTable& active_kernels();

template <class T>
const Kernels<T>& kernels() {
    if constexpr (std::is_same_v<T, float>) {
        return active_kernels().f32;
    } else {
        return active_kernels().f64;
    }
}

std::string simd_level();
// Levels compiled into this build, and the subset this CPU can run, in increasing order.
std::vector<std::string> compiled_simd_levels();
std::vector<std::string> supported_simd_levels();
// Throws std::invalid_argument for an unknown level or one this CPU cannot run.
void set_simd_level(const std::string& level);

}  // namespace fusedoptim
