/* region.c: paged regions: their reservation and the lookup from an
 * address to its region.
 *
 * A region's memory is a memfd mapped twice. The program's view starts
 * PROT_NONE and its protections follow the pages' states; the alias is
 * always read-write and is where the runtime fills a page before opening
 * the program's view, so no thread can see a page half loaded. Both views
 * are MADV_DONTFORK: a child of fork() never shares the parent's frames. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

static int map_views(upg__region_t *r) {
  size_t unit = upg__rt.page_size;
  /* Reserve one unit more than needed so the view can start on a unit. */
  char *reserve = mmap(NULL, r->len + unit, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reserve == MAP_FAILED) return -errno;
  char *base = (char *)(((uintptr_t)reserve + unit - 1) & ~(uintptr_t)(unit - 1));
  if (base > reserve) munmap(reserve, (size_t)(base - reserve));
  munmap(base + r->len, (size_t)(reserve + unit - base));
  r->base = mmap(base, r->len, PROT_NONE, MAP_SHARED | MAP_NORESERVE | MAP_FIXED, r->memfd, 0);
  if (r->base == MAP_FAILED) {
    munmap(base, r->len);
    return -errno;
  }
  r->alias = mmap(NULL, r->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, r->memfd, 0);
  if (r->alias == MAP_FAILED) {
    munmap(r->base, r->len);
    return -errno;
  }
  madvise(r->base, r->len, MADV_DONTFORK);
  madvise(r->alias, r->len, MADV_DONTFORK);
  return 0;
}

int upg__region_create(size_t len, upg__region_t **out) {
  upg__region_t *r = upg__os_alloc(sizeof *r);
  if (r == NULL) return -ENOMEM;
  r->len = len;
  r->npages = len >> upg__rt.page_shift;
  r->touched_lo = r->npages;
  r->touched_hi = 0;
  int rc = -ENOMEM;
  r->pte = upg__os_alloc(r->npages * sizeof(upg__pte_t));
  if (r->pte == NULL) goto fail_pte;
  r->memfd = memfd_create("upager", MFD_CLOEXEC);
  if (r->memfd < 0 || ftruncate(r->memfd, (off_t)len) != 0) {
    rc = -errno;
    goto fail_memfd;
  }
  if ((rc = map_views(r)) != 0) goto fail_memfd;
  *out = r;
  return 0;

fail_memfd:
  if (r->memfd >= 0) close(r->memfd);
  upg__os_free(r->pte, r->npages * sizeof(upg__pte_t));
fail_pte:
  upg__os_free(r, sizeof *r);
  return rc;
}

void upg__region_destroy(upg__region_t *r) {
  munmap(r->base, r->len);
  munmap(r->alias, r->len);
  close(r->memfd);
  upg__os_free(r->pte, r->npages * sizeof(upg__pte_t));
  upg__os_free(r, sizeof *r);
}

upg__region_t *upg__region_find(const void *addr) {
  const char *a = addr;
  for (size_t i = 0; i < upg__rt.nregions; i++) {
    upg__region_t *r = upg__rt.regions[i];
    if (a >= r->base && a < r->base + r->len) return r;
  }
  return NULL;
}
