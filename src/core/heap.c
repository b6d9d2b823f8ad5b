/* heap.c - see heap.h. */
#define _DEFAULT_SOURCE /* sbrk, madvise */
#include "core/heap.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#define HUGE_PAGE (2u * 1024u * 1024u)

static bool tuned;
static uintptr_t advised_to; /* the heap below this was advised */

void drv_heap_advise(void)
{
#if defined(__GLIBC__) && defined(MADV_HUGEPAGE)
    if (!tuned)
        return;
    void *top = sbrk(0);
    if (top == (void *)-1)
        return;
    uintptr_t hi = (uintptr_t)top & ~(uintptr_t)(HUGE_PAGE - 1);
    if (hi <= advised_to)
        return;
    /* A failure (no THP in this kernel) changes nothing: the heap works as before. */
    madvise((void *)advised_to, hi - advised_to, MADV_HUGEPAGE);
    advised_to = hi;
#endif
}

void drv_heap_tune(size_t pad)
{
#if defined(__GLIBC__) && defined(MADV_HUGEPAGE)
    if (!tuned) {
        void *start = sbrk(0);
        if (start == (void *)-1)
            return;
        mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024); /* glibc's largest */
        mallopt(M_TRIM_THRESHOLD, INT32_MAX);
        mallopt(M_TOP_PAD, (int)(pad > INT32_MAX ? INT32_MAX : pad));
        /* One allocation larger than what is left at the heap's top (and below the mmap
         * threshold) grows the heap by it and the pad now, so the advice covers that
         * before anything is written there; freed, it stays in the heap. */
        void *volatile grow = malloc(16 * 1024 * 1024); /* volatile: kept by the compiler */
        free(grow);
        advised_to = ((uintptr_t)start + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
        tuned = true;
    }
    drv_heap_advise();
#else
    (void)pad;
#endif
}
