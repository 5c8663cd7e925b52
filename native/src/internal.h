/* Private helpers shared by the core's sources; not part of the API. */
#ifndef HM_INTERNAL_H
#define HM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Every array carved from a workspace starts on this boundary, so that
 * vector loads are aligned whatever address the caller's memory has. */
#define HM_ALIGN 32u

/* Round a byte count up to the alignment. */
static inline size_t hm_align_up(size_t bytes) {
    return (bytes + (HM_ALIGN - 1u)) & ~(size_t)(HM_ALIGN - 1u);
}

/* A bump allocator over caller memory. Used at init only, never in the
 * hot path; taking more than is left marks it failed instead of crashing. */
typedef struct hm_arena {
    unsigned char *next;
    unsigned char *end;
    int failed;
} hm_arena;

static inline void hm_arena_init(hm_arena *a, void *mem, size_t len) {
    uintptr_t p = (uintptr_t)mem;
    uintptr_t aligned = (p + (HM_ALIGN - 1u)) & ~(uintptr_t)(HM_ALIGN - 1u);
    a->next = (unsigned char *)mem + (aligned - p);
    a->end = (unsigned char *)mem + len;
    a->failed = (mem == NULL) || (aligned - p > len);
}

static inline void *hm_arena_take(hm_arena *a, size_t bytes) {
    size_t need = hm_align_up(bytes);
    void *out;
    if (a->failed || (size_t)(a->end - a->next) < need) {
        a->failed = 1;
        return NULL;
    }
    out = a->next;
    a->next += need;
    return out;
}

/* Slack added to every workspace size so that an unaligned base still fits. */
#define HM_WORKSPACE_SLACK HM_ALIGN

static inline int hm_is_pow2(int n) { return n > 0 && (n & (n - 1)) == 0; }

/* On x86-64 Linux with GCC, the hot loops (FFT butterflies, filterbanks,
 * lane sums) are also compiled for AVX2 (vectors twice as wide as SSE2's)
 * and the loader picks the version the CPU runs. Both do the same IEEE operations in the same
 * order (no FMA contraction in ISO C mode), so their results are
 * identical. HM_NO_MULTIVERSION turns this off. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(HM_NO_MULTIVERSION)
#define HM_MULTIVERSION __attribute__((target_clones("avx2", "default")))
#else
#define HM_MULTIVERSION
#endif

#define HM_PI 3.14159265358979323846
#define HM_N_CHROMA_BINS 12

#endif
