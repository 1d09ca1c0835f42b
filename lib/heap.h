/* heap.h: the paged heap shared by upg_malloc (heap.c) and the preload
 * library (preload/): mimalloc serving allocations from one paged region.
 *
 * mimalloc is reached through a table of its functions. The preload links
 * libmimalloc and fills the table with direct addresses; libupager alone
 * opens a private copy with dlopen(RTLD_LOCAL), so mimalloc's exported
 * malloc never joins the program's symbol scope. */
#ifndef UPAGER_HEAP_H
#define UPAGER_HEAP_H

#include <mimalloc.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct upg__mi {
  void *(*malloc)(size_t size);
  void *(*calloc)(size_t count, size_t size);
  void *(*realloc)(void *p, size_t size);
  void *(*malloc_aligned)(size_t size, size_t alignment);
  void (*free)(void *p);
  size_t (*usable_size)(const void *p);
  bool (*manage_os_memory)(void *start, size_t size, bool is_committed, bool is_large, bool is_zero,
                           int numa_node);
  void (*option_set)(mi_option_t option, long value);
} upg__mi_t;

/* Where the heap lives, for the wrappers' lock-free "is this paged?" test;
 * both zero until the heap has started. */
typedef struct upg__heap_span {
  _Atomic(char *) base;
  size_t len;
} upg__heap_span_t;
extern upg__heap_span_t upg__heap;

static inline int upg__heap_contains(const void *p) {
  const char *base = atomic_load_explicit(&upg__heap.base, memory_order_acquire);
  return base != NULL && (const char *)p >= base && (const char *)p < base + upg__heap.len;
}

enum {
  UPG__HEAP_COLD = 0,
  UPG__HEAP_STARTING = 1,
  UPG__HEAP_READY = 2,
  UPG__HEAP_FAILED = 3,
  UPG__HEAP_LOST = 4,  /* a child of fork(): the parent's heap is not mapped here */
  UPG__HEAP_CLOSED = 5 /* upg_shutdown unmapped it */
};
extern _Atomic int upg__heap_state;

/* Called by upg_shutdown, under the lock, before the heap's region goes. */
void upg__heap_close(void);

/* Starts the runtime and puts mimalloc (the functions in `mi`) on a fresh
 * paged region; 0 once ready. UPG_EBUSY when called again from inside the
 * start on the same thread (the caller must serve that allocation from
 * elsewhere); other threads wait for the start to finish. */
int upg__heap_start(const upg__mi_t *mi);

/* calloc on the heap, zeroing large blocks by discarding their pages. */
void *upg__heap_calloc(size_t count, size_t size);

/* Frees a block of the heap. When resident memory is near the budget, a
 * large block's whole interior pages are discarded first, so that garbage
 * is never written back to swap. */
void upg__heap_free(void *p);

#endif
