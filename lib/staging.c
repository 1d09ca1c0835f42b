/* staging.c: the staging pages, where loads are read before a fault
 * source places them in the program's view. A source that read into the
 * page's own memory would fault in a freshly zeroed page at every read,
 * its memory having been given back at the page's last eviction; staging
 * pages keep theirs, so a read finds its buffer in place, and the source
 * places the page with one copy that needs no zeroing (a write into the
 * sigsegv view's memfd, a UFFDIO_COPY into the uffd view).
 *
 * UPG__IOV_MAX of them, a window's worth, outside the budget as the
 * stores' I/O buffers are. A load that finds none free reads where the
 * source would have without them. Any thread takes and frees them, with or
 * without the lock: a frame's record is its load's alone. Its state is
 * upg__rt.staging. */
#define _GNU_SOURCE
#include <errno.h>

#include "internal.h"

#define STAGING_PAGES UPG__IOV_MAX
/* staged[frame]: 0 while its load has no buffer yet (memory untouched
 * until frames are used), UNSTAGED when it reads where the source says,
 * else FIRST_STAGED + the staging page's number. */
#define UNSTAGED 1
#define FIRST_STAGED 2

#define S (&upg__rt.staging)

static size_t pages_len(void) { return (size_t)STAGING_PAGES * upg__rt.page_size; }

int upg__staging_create(size_t nframes) {
  S->pages = upg__os_alloc(pages_len());
  S->busy = upg__os_alloc(STAGING_PAGES);
  S->staged = upg__os_alloc(nframes * sizeof *S->staged);
  S->nframes = nframes;
  atomic_store(&S->next, 0);
  if (S->pages && S->busy && S->staged) return 0;
  upg__staging_destroy();
  return -ENOMEM;
}

void upg__staging_destroy(void) {
  upg__os_free(S->pages, pages_len());
  upg__os_free((void *)S->busy, STAGING_PAGES);
  upg__os_free(S->staged, S->nframes * sizeof *S->staged);
  *S = (upg__staging_part_t){0};
}

static char *page_at(uint16_t s) {
  return S->pages + (size_t)(s - FIRST_STAGED) * upg__rt.page_size;
}

/* A free staging page's staged[] value, or UNSTAGED. The search starts
 * after the last page taken, so a window's pages, taken in order, follow
 * each other and are placed in one call. */
static uint16_t take(void) {
  uint32_t from = atomic_load_explicit(&S->next, memory_order_relaxed);
  for (uint32_t i = 0; i < STAGING_PAGES; i++) {
    uint32_t s = (from + i) % STAGING_PAGES;
    _Atomic uint8_t *busy = &S->busy[s];
    if (atomic_load_explicit(busy, memory_order_relaxed) == 0 && atomic_exchange(busy, 1) == 0) {
      atomic_store_explicit(&S->next, s + 1, memory_order_relaxed);
      return (uint16_t)(FIRST_STAGED + s);
    }
  }
  return UNSTAGED;
}

char *upg__staging_buffer(uint32_t frame, char *unstaged) {
  uint16_t *s = &S->staged[frame];
  if (*s == 0) *s = take();
  return *s == UNSTAGED ? unstaged : page_at(*s);
}

char *upg__staging_page(uint32_t frame) {
  uint16_t s = S->staged[frame];
  return s >= FIRST_STAGED ? page_at(s) : NULL;
}

void upg__staging_release(uint32_t frame) {
  uint16_t s = S->staged[frame];
  if (s >= FIRST_STAGED) atomic_store(&S->busy[s - FIRST_STAGED], 0);
  S->staged[frame] = 0;
}
