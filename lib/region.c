/* region.c: paged regions: their tables (the page table and the map of
 * pages ever touched) and the lookup from an address to its region. The
 * view itself, its reservation and its memory, is the fault source's
 * (upg__rt.source). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>

#include "internal.h"

/* Pages a bit of the touched map stands for: a 1 TiB region's map is 32
 * KiB, and a walk reads at most a chunk of entries never touched beside
 * each touched page. */
#define TOUCH_CHUNK 1024

static size_t touched_bytes(const upg__region_t *r) {
  size_t chunks = (r->npages + TOUCH_CHUNK - 1) / TOUCH_CHUNK;
  return (chunks + 63) / 64 * sizeof(uint64_t);
}

void upg__region_touch(upg__region_t *r, size_t first, size_t n) {
  for (size_t c = first / TOUCH_CHUNK; c <= (first + n - 1) / TOUCH_CHUNK; c++)
    r->touched[c / 64] |= 1ull << (c % 64);
}

/* The first chunk from c below limit whose bit is `set`, or limit. */
static size_t find_chunk(const uint64_t *bits, size_t c, size_t limit, int set) {
  while (c < limit) {
    uint64_t word = set ? bits[c / 64] : ~bits[c / 64];
    word &= ~0ull << (c % 64);
    if (word != 0) {
      size_t found = (c & ~(size_t)63) + (size_t)__builtin_ctzll(word);
      return found < limit ? found : limit;
    }
    c = (c | 63) + 1;
  }
  return limit;
}

size_t upg__region_touched(const upg__region_t *r, size_t page, size_t end, size_t *run_end) {
  if (page >= end) return end;
  size_t limit = (end - 1) / TOUCH_CHUNK + 1;
  size_t c = find_chunk(r->touched, page / TOUCH_CHUNK, limit, 1);
  if (c == limit) return end;
  size_t stop = find_chunk(r->touched, c, limit, 0) * TOUCH_CHUNK;
  *run_end = stop < end ? stop : end;
  return page > c * TOUCH_CHUNK ? page : c * TOUCH_CHUNK;
}

int upg__region_each_touched(upg__region_t *r, size_t first, size_t end,
                             int (*fn)(upg__region_t *r, size_t first, size_t end)) {
  size_t stop;
  int rc = 0;
  for (size_t at = upg__region_touched(r, first, end, &stop); rc == 0 && at < end;
       at = upg__region_touched(r, stop, end, &stop))
    rc = fn(r, at, stop);
  return rc;
}

int upg__region_create(size_t len, upg__region_t **out) {
  upg__region_t *r = upg__os_alloc(sizeof *r);
  if (r == NULL) return -ENOMEM;
  r->len = len;
  r->npages = len >> upg__rt.page_shift;
  int rc = -ENOMEM;
  r->pte = upg__os_alloc(r->npages * sizeof(upg__pte_t));
  if (r->pte == NULL) goto fail_pte;
  r->touched = upg__os_alloc(touched_bytes(r));
  if (r->touched == NULL) goto fail_touched;
  if ((rc = upg__rt.source->view_create(r)) != 0) goto fail_view;
  *out = r;
  return 0;

fail_view:
  upg__os_free(r->touched, touched_bytes(r));
fail_touched:
  upg__os_free(r->pte, r->npages * sizeof(upg__pte_t));
fail_pte:
  upg__os_free(r, sizeof *r);
  return rc;
}

static void free_tables(upg__region_t *r) {
  upg__os_free(r->touched, touched_bytes(r));
  upg__os_free(r->pte, r->npages * sizeof(upg__pte_t));
  upg__os_free(r, sizeof *r);
}

void upg__region_forget(upg__region_t *r) {
  upg__rt.source->view_forget(r);
  free_tables(r);
}

void upg__region_destroy(upg__region_t *r) {
  upg__rt.source->view_destroy(r);
  free_tables(r);
}

upg__region_t *upg__region_find(const void *addr) {
  const char *a = addr;
  for (size_t i = 0; i < upg__rt.nregions; i++) {
    upg__region_t *r = upg__rt.regions[i];
    if (a >= r->base && a < r->base + r->len) return r;
  }
  return NULL;
}
