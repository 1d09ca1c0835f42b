/* heap.c: the paged heap: one paged region handed to mimalloc as its only
 * memory, and upg_malloc, upg_calloc, upg_realloc and upg_free on it.
 *
 * mimalloc gets the region as an arena that is already committed, so it
 * treats the memory as pinned: it never decommits, resets or remaps region
 * pages behind the runtime's back (checked with strace in docs/run.md), and
 * mi_option_limit_os_alloc stops it from taking any other memory for
 * allocations. Freed blocks reach the runtime as discards instead
 * (upg__heap_free). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>

#include "heap.h"
#include "internal.h"

/* mimalloc's arenas are made of 32 MiB blocks aligned to their size; a
 * start aligned to 64 MiB satisfies every 2.x release. */
#define ARENA_ALIGN ((size_t)64 << 20)
/* Blocks smaller than this are not worth a discard's system calls. */
#define RELEASE_MIN_BYTES ((size_t)256 << 10)
/* Below this, calloc lets mimalloc zero the block itself. */
#define CALLOC_DISCARD_MIN ((size_t)1 << 20)
/* The bytes mimalloc writes into a block it frees (its free-list link). */
#define FREED_BLOCK_HEADER 16

upg__heap_span_t upg__heap;
_Atomic int upg__heap_state;

/* Set by the preload library, which links mimalloc; absent in libupager. */
extern const upg__mi_t upg__mi_linked __attribute__((weak, visibility("hidden")));

static const upg__mi_t *mi;
static upg__mi_t mi_private;
static _Thread_local int starting_here;

static int load_private_mimalloc(void) {
  void *lib = dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL)
    return upg__fail(UPG_ENOENT, "cannot load libmimalloc.so.2 for the paged heap: %s", dlerror());
#define LOAD_(field, symbol)                                      \
  if ((*(void **)&mi_private.field = dlsym(lib, symbol)) == NULL) \
    return upg__fail(UPG_ENOENT, "libmimalloc.so.2 lacks %s", symbol);
  LOAD_(malloc, "mi_malloc")
  LOAD_(calloc, "mi_calloc")
  LOAD_(realloc, "mi_realloc")
  LOAD_(malloc_aligned, "mi_malloc_aligned")
  LOAD_(free, "mi_free")
  LOAD_(usable_size, "mi_usable_size")
  LOAD_(manage_os_memory, "mi_manage_os_memory")
  LOAD_(option_set, "mi_option_set")
#undef LOAD_
  return 0;
}

/* Options that keep mimalloc from touching the mappings: it must neither
 * take memory from the OS for blocks nor give region pages back itself. */
static void tame_mimalloc(void) {
  mi->option_set(mi_option_limit_os_alloc, 1);
  mi->option_set(mi_option_allow_decommit, 0);
  mi->option_set(mi_option_page_reset, 0);
  mi->option_set(mi_option_abandoned_page_decommit, 0);
  mi->option_set(mi_option_large_os_pages, 0);
  mi->option_set(mi_option_reserve_os_memory, 0);
  mi->option_set(mi_option_reserve_huge_os_pages, 0);
}

static int place_arena(void) {
  size_t len = upg__rt.cfg.heap_size / ARENA_ALIGN * ARENA_ALIGN;
  char *region = upg_map(len + ARENA_ALIGN, 0);
  if (region == NULL)
    return upg__fail(-errno, "cannot reserve the paged heap of %zu bytes (UPAGER_HEAP_SIZE): %s",
                     len, strerror(errno));
  char *base = (char *)(((uintptr_t)region + ARENA_ALIGN - 1) & ~(uintptr_t)(ARENA_ALIGN - 1));
  sigset_t saved;
  upg__api_lock(&saved);
  upg__advice_fresh_dirty(upg__region_find(region)); /* a new heap page is written at once */
  upg__api_unlock(&saved);
  tame_mimalloc();
  /* Committed (so never decommitted), not large, zero-filled. */
  if (!mi->manage_os_memory(base, len, true, false, true, -1))
    return upg__fail(UPG_ENOMEM, "mimalloc refused the paged heap at %p", (void *)base);
  upg__heap.len = len;
  atomic_store_explicit(&upg__heap.base, base, memory_order_release);
  return 0;
}

static int start_once(const upg__mi_t *linked) {
  int rc = linked != NULL ? 0 : load_private_mimalloc();
  if (rc != 0) return rc;
  mi = linked != NULL ? linked : &mi_private;
  if ((rc = upg__ensure_running()) != 0) return rc;
  return place_arena();
}

int upg__heap_start(const upg__mi_t *linked) {
  int expected = UPG__HEAP_COLD;
  if (atomic_compare_exchange_strong(&upg__heap_state, &expected, UPG__HEAP_STARTING)) {
    starting_here = 1;
    int rc = start_once(linked);
    starting_here = 0;
    atomic_store(&upg__heap_state, rc == 0 ? UPG__HEAP_READY : UPG__HEAP_FAILED);
    return rc;
  }
  if (starting_here) return UPG_EBUSY;
  while ((expected = atomic_load(&upg__heap_state)) == UPG__HEAP_STARTING) upg__os_yield();
  return expected == UPG__HEAP_READY ? 0 : UPG_ENOMEM;
}

void upg__heap_close(void) {
  int ready = UPG__HEAP_READY;
  if (atomic_compare_exchange_strong(&upg__heap_state, &ready, UPG__HEAP_CLOSED))
    atomic_store_explicit(&upg__heap.base, NULL, memory_order_release);
}

/* Below three quarters of the budget nothing is evicted soon, and a
 * discard would only cost system calls now and zero-fill faults later. */
static int under_pressure(void) {
  uint64_t resident = UPG__GET(pages_resident);
  return resident * 4 >= (uint64_t)upg__rt.nframes * 3;
}

static void release_interior(void *p, size_t usable) {
  size_t unit = upg__rt.page_size;
  uintptr_t first = ((uintptr_t)p + FREED_BLOCK_HEADER + unit - 1) & ~(uintptr_t)(unit - 1);
  uintptr_t end = ((uintptr_t)p + usable) & ~(uintptr_t)(unit - 1);
  /* A page pinned by a system call in flight makes it fail: kept then. */
  if (end > first) (void)upg_advise((void *)first, end - first, UPG_ADV_DONTNEED);
}

static int heap_ready(void) {
  if (atomic_load_explicit(&upg__heap_state, memory_order_acquire) == UPG__HEAP_READY) return 1;
  int rc = upg__heap_start(&upg__mi_linked != NULL ? &upg__mi_linked : NULL);
  if (rc != 0) errno = ENOMEM;
  return rc == 0;
}

void *upg_malloc(size_t size) { return heap_ready() ? mi->malloc(size) : NULL; }

/* mimalloc does not know the region's fresh pages are zero and would
 * memset a large block whole, making every page resident and dirty. A
 * discard zeroes the whole pages instead at no cost for pages never
 * touched, so only the partial pages at the ends are written. */
void *upg__heap_calloc(size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  if (total < CALLOC_DISCARD_MIN) return mi->calloc(count, size);
  char *p = mi->malloc(total);
  if (p == NULL) return NULL;
  size_t unit = upg__rt.page_size;
  char *first = (char *)(((uintptr_t)p + unit - 1) & ~(uintptr_t)(unit - 1));
  char *end = (char *)(((uintptr_t)p + total) & ~(uintptr_t)(unit - 1));
  memset(p, 0, (size_t)(first - p));
  memset(end, 0, (size_t)(p + total - end));
  /* A page pinned by a system call in flight cannot be discarded. */
  if (upg_advise(first, (size_t)(end - first), UPG_ADV_DONTNEED) != 0)
    memset(first, 0, (size_t)(end - first));
  return p;
}

void *upg_calloc(size_t count, size_t size) {
  return heap_ready() ? upg__heap_calloc(count, size) : NULL;
}

void *upg_realloc(void *p, size_t size) { return heap_ready() ? mi->realloc(p, size) : NULL; }

void upg__heap_free(void *p) {
  if (under_pressure()) {
    size_t usable = mi->usable_size(p);
    if (usable >= RELEASE_MIN_BYTES) release_interior(p, usable);
  }
  mi->free(p);
}

void upg_free(void *p) {
  if (p != NULL && atomic_load(&upg__heap_state) != UPG__HEAP_CLOSED) upg__heap_free(p);
}
