/* alloc.c: the program's allocator under the preload: malloc, free,
 * calloc, realloc, reallocarray, posix_memalign, aligned_alloc, memalign,
 * valloc, pvalloc and malloc_usable_size, all served by mimalloc on the
 * paged heap (lib/heap.c). C++ new and delete reach them through libstdc++.
 *
 * The first allocation starts the runtime and the heap. Anything allocated
 * while that start is in progress on the same thread comes from a small
 * static bootstrap area, which free() recognises and ignores. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <mimalloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heap.h"
#include "internal.h"
#include "preload.h"

#define BOOT_BYTES (256 << 10)
#define BOOT_ALIGN 16

const upg__mi_t upg__mi_linked = {mi_malloc,         mi_calloc, mi_realloc,
                                  mi_malloc_aligned, mi_free,   mi_usable_size,
                                  mi_manage_os_memory, mi_option_set};

static _Alignas(4096) char boot_area[BOOT_BYTES];
static _Atomic size_t boot_used;

static int is_boot(const void *p) {
  return (const char *)p >= boot_area && (const char *)p < boot_area + BOOT_BYTES;
}

/* Each bootstrap block is preceded by its size, for realloc. */
static void *boot_alloc(size_t size, size_t align) {
  if (align < BOOT_ALIGN) align = BOOT_ALIGN;
  size_t need = (size + BOOT_ALIGN - 1) / BOOT_ALIGN * BOOT_ALIGN;
  size_t old = atomic_load(&boot_used), start;
  do {
    start = (old + BOOT_ALIGN + align - 1) / align * align;
    if (start + need > BOOT_BYTES) {
      errno = ENOMEM;
      return NULL;
    }
  } while (!atomic_compare_exchange_weak(&boot_used, &old, start + need));
  ((size_t *)(boot_area + start))[-1] = size;
  return boot_area + start;
}

static size_t boot_size(const void *p) { return ((const size_t *)p)[-1]; }

static _Noreturn void heap_failed(void) {
  if (atomic_load(&upg__heap_state) == UPG__HEAP_LOST)
    upg__os_write_stderr("upager: a child of fork() allocated memory, but the paged heap "
                         "stays with the parent; under upager run a child must exec first\n");
  else
    upg__os_write_stderr("upager: the paged heap cannot start (see the message above); "
                         "stopping the program\n");
  _exit(125);
}

/* The runtime's views are not inherited (MADV_DONTFORK), so in the child
 * every heap block is gone: fail the next allocation with a message rather
 * than crash somewhere inside mimalloc. */
static void lose_heap_in_child(void) {
  int ready = UPG__HEAP_READY;
  atomic_compare_exchange_strong(&upg__heap_state, &ready, UPG__HEAP_LOST);
}

__attribute__((constructor(102))) static void watch_forks(void) {
  pthread_atfork(NULL, NULL, lose_heap_in_child);
}

/* 1 when mimalloc may serve the call, 0 when the bootstrap area must. */
static int heap_usable(void) {
  if (__builtin_expect(atomic_load_explicit(&upg__heap_state, memory_order_acquire) ==
                           UPG__HEAP_READY, 1))
    return 1;
  static _Atomic int announced;
  int rc = upg__heap_start(&upg__mi_linked);
  if (rc == UPG_EBUSY) return 0;
  if (rc != 0) heap_failed();
  if (!atomic_exchange(&announced, 1)) upg__preload_heap_started();
  return 1;
}

UPG__EXPORT void *malloc(size_t size) {
  return heap_usable() ? mi_malloc(size) : boot_alloc(size, BOOT_ALIGN);
}

UPG__EXPORT void *calloc(size_t count, size_t size) {
  if (heap_usable()) return upg__heap_calloc(count, size);
  if (size != 0 && count > SIZE_MAX / size) {
    errno = ENOMEM;
    return NULL;
  }
  return boot_alloc(count * size, BOOT_ALIGN); /* static memory is zeroed */
}

UPG__EXPORT void free(void *p) {
  /* A child of fork() may free the parent's blocks: they are gone anyway. */
  if (p == NULL || is_boot(p) || atomic_load_explicit(&upg__heap_state, memory_order_relaxed) ==
                                     UPG__HEAP_LOST)
    return;
  upg__heap_free(p);
}

/* A block that is neither NULL nor bootstrap is mimalloc's: the heap is up. */
UPG__EXPORT void *realloc(void *p, size_t size) {
  if (p == NULL) return malloc(size);
  if (!is_boot(p)) return heap_usable() ? mi_realloc(p, size) : NULL;
  void *q = malloc(size);
  if (q != NULL) memcpy(q, p, boot_size(p) < size ? boot_size(p) : size);
  return q;
}

UPG__EXPORT void *reallocarray(void *p, size_t count, size_t size) {
  if (size != 0 && count > SIZE_MAX / size) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(p, count * size);
}

static void *aligned(size_t align, size_t size) {
  return heap_usable() ? mi_malloc_aligned(size, align) : boot_alloc(size, align);
}

static int power_of_two(size_t v) { return v != 0 && (v & (v - 1)) == 0; }

UPG__EXPORT int posix_memalign(void **out, size_t align, size_t size) {
  if (!power_of_two(align) || align % sizeof(void *) != 0) return EINVAL;
  void *p = aligned(align, size);
  if (p == NULL) return ENOMEM;
  *out = p;
  return 0;
}

UPG__EXPORT void *aligned_alloc(size_t align, size_t size) {
  if (!power_of_two(align)) {
    errno = EINVAL;
    return NULL;
  }
  return aligned(align, size);
}

/* glibc's memalign rounds a non-power-of-two alignment up. */
UPG__EXPORT void *memalign(size_t align, size_t size) {
  size_t a = BOOT_ALIGN;
  while (a < align) a <<= 1;
  return aligned(a, size);
}

UPG__EXPORT void *valloc(size_t size) { return aligned(upg__os_page_size(), size); }

UPG__EXPORT void *pvalloc(size_t size) {
  size_t page = upg__os_page_size();
  return aligned(page, (size + page - 1) / page * page);
}

UPG__EXPORT size_t malloc_usable_size(void *p) {
  if (p == NULL) return 0;
  return is_boot(p) ? boot_size(p) : mi_usable_size(p);
}
