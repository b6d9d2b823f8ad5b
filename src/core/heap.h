/* heap.h - the process heap of a long-running server: transparent huge pages.
 *
 * On the machines drover runs on (virtual machines), a page fault costs microseconds:
 * a coordinator taking 100,000 tests spent a fifth of its time faulting in fresh memory
 * 4 KiB at a time (its arrays grow, SQLite's page cache fills, the writer's logs come and
 * go). drv_heap_tune() makes glibc's heap grow in large steps, keeps what it freed
 * instead of giving it back, and asks the kernel to back the heap with 2 MiB pages
 * (madvise MADV_HUGEPAGE, honoured when transparent huge pages are "always" or
 * "madvise"); drv_heap_advise() extends that to the heap grown since. Measured with
 * bench/e2e.sh (acknowledge-only, three interleaved pairs): the coordinator's CPU per
 * test 20.5-21.2 -> 17.6-17.9 us, 49,000-52,000 -> 57,000-59,000 tests/s. Only the
 * main heap is advised: a thread's own arena (the store's writer) is not.
 *
 * Memory: freed memory stays with the process (its peak, not its current need), and
 * resident memory grows in 2 MiB steps. For a coordinator, the trade is worth it; a
 * short-lived command does not need it.
 *
 * Both are process-wide; call them from the thread that owns the process's setup (the
 * coordinator's loop). Without glibc or madvise they do nothing. */
#ifndef DRV_CORE_HEAP_H
#define DRV_CORE_HEAP_H

#include <stddef.h>

/* Tunes malloc (top pad of pad bytes, no trimming, mmap only above 32 MiB) and advises
 * the heap. Calling it again only advises. */
void drv_heap_tune(size_t pad);

/* Advises the part of the heap grown since the last call. Cheap when it did not grow
 * (no system call); a no-op before drv_heap_tune(). */
void drv_heap_advise(void);

#endif
