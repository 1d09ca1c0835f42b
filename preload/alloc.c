/* alloc.c: the program's allocator under the preload: malloc, free,
 * calloc, realloc, reallocarray, posix_memalign, aligned_alloc, memalign,
 * valloc, pvalloc and malloc_usable_size, all served by mimalloc on the
 * paged heap (lib/heap.c). C++ new and delete reach them through libstdc++.
 *
 * The first allocation starts the runtime and the heap. Anything allocated
 * while that start is in progress on the same thread comes from a small
 * static bootstrap area, which free() recognises and ignores. glibc's own
 * malloc serves the objects of new streams (streams.c) and a child of
 * fork(), and free() hands its blocks back to it. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <mimalloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "preload_api.h"
#include "preload.h"

#define BOOT_BYTES (256 << 10)
#define BOOT_ALIGN 16

const upg__mi_t upg__mi_linked = {mi_malloc, mi_calloc,      mi_realloc,          mi_malloc_aligned,
                                  mi_free,   mi_usable_size, mi_manage_os_memory, mi_option_set};

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

static _Noreturn void stop(const char *why) {
  upg__os_write_stderr(why);
  _exit(125);
}

/* A child's access to the parent's heap says so before the child dies by
 * SIGSEGV, as it would anyway (SA_RESETHAND: the access repeats under the
 * default disposition). Async-signal-safe. */
static void explain_lost_heap(int signo, siginfo_t *info, void *context) {
  (void)signo, (void)context;
  if (upg__heap_contains(info->si_addr))
    upg__os_write_stderr("upager: a child of fork() used a block of the paged heap, which stays "
                         "with the parent; under upager run a child must exec before it uses "
                         "the parent's memory\n");
}

/* The runtime's views are not inherited (MADV_DONTFORK): in the child every
 * heap block is gone, and new blocks come from glibc's malloc, so that a
 * child that allocates on its way to exec() gets there. Registered once the
 * heap runs, so that it runs after the runtime's own hook, which puts the
 * program's SIGSEGV disposition back. */
static void lose_heap_in_child(void) {
  int ready = UPG__HEAP_READY;
  atomic_compare_exchange_strong(&upg__heap_state, &ready, UPG__HEAP_LOST);
  struct sigaction now, explain;
  if (UPG__REAL(sigaction)(SIGSEGV, NULL, &now) != 0 || (now.sa_flags & SA_SIGINFO) ||
      now.sa_handler != SIG_DFL)
    return; /* the program's own handler decides */
  memset(&explain, 0, sizeof explain);
  explain.sa_sigaction = explain_lost_heap;
  explain.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER;
  UPG__REAL(sigaction)(SIGSEGV, &explain, NULL);
}

typedef enum { FROM_HEAP, FROM_BOOT, FROM_GLIBC } source_t;

/* A thread that blocks SIGSEGV is one of glibc's helpers (a timer's, an
 * AIO worker), which block every signal for life: the preload's mask
 * wrappers keep SIGSEGV open in every thread the program makes. A closed
 * page touched there would end the process, so such a thread gets no paged
 * block. Looked at once, at the thread's first allocation. */
static _Thread_local signed char blocks_sigsegv __attribute__((tls_model("initial-exec"))) = -1;

static int thread_blocks_sigsegv(void) {
  if (__builtin_expect(blocks_sigsegv < 0, 0)) {
    sigset_t now;
    upg__os_signal_mask(&now);
    blocks_sigsegv = (signed char)(sigismember(&now, SIGSEGV) == 1);
  }
  return blocks_sigsegv;
}

/* Where a new block comes from: the paged heap, once started; the
 * bootstrap area while this thread is starting it; glibc's malloc for
 * stream objects (streams.c), in a child of fork(), and in a thread that
 * blocks SIGSEGV. */
static source_t source(void) {
  int state = atomic_load_explicit(&upg__heap_state, memory_order_acquire);
  if (__builtin_expect(state == UPG__HEAP_READY && !upg__glibc_keeps && !thread_blocks_sigsegv(),
                       1))
    return FROM_HEAP;
  if (upg__glibc_keeps || state == UPG__HEAP_LOST || thread_blocks_sigsegv()) return FROM_GLIBC;
  static _Atomic int announced;
  int rc = upg__heap_start(&upg__mi_linked);
  if (rc == UPG_EBUSY) return FROM_BOOT;
  if (rc != 0)
    stop("upager: the paged heap cannot start (see the message above); stopping the program\n");
  if (!atomic_exchange(&announced, 1)) {
    pthread_atfork(NULL, NULL, lose_heap_in_child);
    upg__preload_heap_started();
  }
  return FROM_HEAP;
}

/* Neither the paged heap's nor the bootstrap area's: glibc's (a stream
 * object, or a child's block), or not a block at all, which glibc reports. */
static int glibc_block(const void *p) { return !upg__heap_contains(p) && !is_boot(p); }

static int heap_lost(void) {
  return atomic_load_explicit(&upg__heap_state, memory_order_relaxed) == UPG__HEAP_LOST;
}

UPG__EXPORT void *malloc(size_t size) {
  switch (source()) {
    case FROM_HEAP: return mi_malloc(size);
    case FROM_GLIBC: return UPG__REAL(malloc)(size);
    default: return boot_alloc(size, BOOT_ALIGN);
  }
}

UPG__EXPORT void *calloc(size_t count, size_t size) {
  switch (source()) {
    case FROM_HEAP: return upg__heap_calloc(count, size);
    case FROM_GLIBC: return UPG__REAL(calloc)(count, size);
    default: break;
  }
  if (size != 0 && count > SIZE_MAX / size) {
    errno = ENOMEM;
    return NULL;
  }
  return boot_alloc(count * size, BOOT_ALIGN); /* static memory is zeroed */
}

UPG__EXPORT void free(void *p) {
  if (p == NULL || is_boot(p)) return;
  if (glibc_block(p)) UPG__REAL(free)(p);
  else if (!heap_lost()) upg__heap_free(p); /* a child's free of the parent's block: gone anyway */
}

UPG__EXPORT void *realloc(void *p, size_t size) {
  if (p == NULL) return malloc(size);
  if (glibc_block(p)) return UPG__REAL(realloc)(p, size);
  if (!is_boot(p)) {
    if (heap_lost())
      stop("upager: a child of fork() resized a block of the paged heap, which stays with the "
           "parent; under upager run a child must exec before it uses the parent's memory\n");
    return mi_realloc(p, size);
  }
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
  switch (source()) {
    case FROM_HEAP: return mi_malloc_aligned(size, align);
    case FROM_GLIBC: return UPG__REAL(memalign)(align, size);
    default: return boot_alloc(size, align);
  }
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
  if (glibc_block(p)) return UPG__REAL(malloc_usable_size)(p);
  return is_boot(p) ? boot_size(p) : mi_usable_size(p);
}
