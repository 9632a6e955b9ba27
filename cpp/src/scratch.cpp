// The calling thread's scratch memory (declared in common.hpp). Compiled once, without ISA flags: it is plain
// C++ that every instruction set's kernels call.
#include <cstdlib>
#include <new>

#include "fusedoptim/common.hpp"

namespace fusedoptim {

namespace {

struct Scratch {
    void* data[kScratchSlots] = {};
    size_t bytes[kScratchSlots] = {};
    Scratch() = default;
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    ~Scratch() {
        for (void* p : data) std::free(p);
    }
};

// One per thread: two Python threads may run kernels at once (the GIL is released around them).
thread_local Scratch scratch_of_thread;

}  // namespace

void* scratch(int slot, size_t bytes) {
    Scratch& s = scratch_of_thread;
    if (bytes > s.bytes[slot]) {
        // Rounded up to whole cache lines and at least doubled, so a slowly growing model reallocates rarely.
        size_t grown = s.bytes[slot] * 2 > bytes ? s.bytes[slot] * 2 : bytes;
        grown = (grown + 63) / 64 * 64;
        void* p = std::aligned_alloc(64, grown);
        if (p == nullptr) throw std::bad_alloc();
        std::free(s.data[slot]);
        s.data[slot] = p;
        s.bytes[slot] = grown;
    }
    return s.data[slot];
}

}  // namespace fusedoptim
