// Compiled once per instruction set (CMakeLists.txt sets FUSEDOPTIM_ISA and the matching -m flags). Everything
// instantiated here takes this file's own `Isa` tag, so the copies never collide (see common.hpp).
#include "fusedoptim/kernel_table.hpp"

#ifndef FUSEDOPTIM_ISA
#error "FUSEDOPTIM_ISA must name the instruction set this translation unit is compiled for"
#endif

#define FUSEDOPTIM_STR2(x) #x
#define FUSEDOPTIM_STR(x) FUSEDOPTIM_STR2(x)

namespace fusedoptim::FUSEDOPTIM_ISA {

struct Isa {};

#define FUSEDOPTIM_F32(family) &family::run<Isa, float>,
#define FUSEDOPTIM_F64(family) &family::run<Isa, double>,
extern const KernelTable table;
const KernelTable table = {
    FUSEDOPTIM_STR(FUSEDOPTIM_ISA),
    {FUSEDOPTIM_FAMILIES(FUSEDOPTIM_F32)},
    {FUSEDOPTIM_FAMILIES(FUSEDOPTIM_F64)},
    &to_float<Isa>,
    &from_float<Isa>,
    &to_bf16_stochastic<Isa>,
};

}  // namespace fusedoptim::FUSEDOPTIM_ISA
