/* Counts heap allocations while switched on (tests/library/test_reliability.py, through LD_PRELOAD). */
#include <stddef.h>
#include <stdint.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);

static volatile int counting;
static uint64_t calls;

#define COUNT() do { if (counting) __atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED); } while (0)

void* malloc(size_t n) { COUNT(); return __libc_malloc(n); }
void* calloc(size_t count, size_t n) { COUNT(); return __libc_calloc(count, n); }
void* realloc(void* p, size_t n) { COUNT(); return __libc_realloc(p, n); }
void* memalign(size_t alignment, size_t n) { COUNT(); return __libc_memalign(alignment, n); }
void* aligned_alloc(size_t alignment, size_t n) { COUNT(); return __libc_memalign(alignment, n); }
int posix_memalign(void** out, size_t alignment, size_t n) {
    COUNT();
    void* p = __libc_memalign(alignment, n);
    if (p == NULL) return 12; /* ENOMEM */
    *out = p;
    return 0;
}

void count_alloc_set(int on) { counting = on; }
uint64_t count_alloc_calls(void) { return calls; }
