/* region.c: paged regions: their reservation, the memory behind their
 * views, and the lookup from an address to its region.
 *
 * A region's memory is a memfd mapped twice. The program's view starts
 * PROT_NONE and its protections follow the pages' states; the alias is
 * always read-write and is where the runtime fills a page before opening
 * the program's view, so no thread can see a page half loaded, and drains
 * it to swap after closing the view. Both views are MADV_DONTFORK: a child
 * of fork() never shares the parent's frames.
 *
 * Until the runtime first evicts, though, no page needs the alias, and the
 * view is anonymous memory, which the kernel makes and frees at about half
 * a memfd page's cost (bench/mechanism): a program whose heap fits in the
 * budget runs almost as it would without the runtime. Before the first
 * eviction every view moves onto its memfd (upg__regions_share). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

static int map_views(upg__region_t *r) {
  size_t unit = upg__rt.page_size;
  /* Reserve one unit more than needed so the view can start on a unit. */
  char *reserve;
  int rc = upg__os_map(NULL, r->len + unit, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0, (void **)&reserve);
  if (rc != 0) return rc;
  char *base = (char *)(((uintptr_t)reserve + unit - 1) & ~(uintptr_t)(unit - 1));
  if (base > reserve) upg__os_unmap(reserve, (size_t)(base - reserve));
  upg__os_unmap(base + r->len, (size_t)(reserve + unit - base));
  /* The reservation is the anonymous view. No huge pages: one would take
   * 2 MiB of the budget at a touch, out of the runtime's count. */
  r->base = base;
  r->anonymous = 1;
  /* One written page gives the view its anon_vma before mprotect splits
   * it, so that its pieces share one and merge again as their protections
   * meet, as the kernel-mapping count assumes: pieces first written apart
   * would each get their own, and never merge. */
  if ((rc = upg__os_protect(base, unit, PROT_READ | PROT_WRITE)) != 0) {
    upg__os_unmap(base, r->len);
    return rc;
  }
  *(volatile char *)base = 0;
  upg__os_advise(base, unit, MADV_DONTNEED);
  upg__os_protect(base, unit, PROT_NONE);
  rc = upg__os_map(NULL, r->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, r->memfd, 0,
                   (void **)&r->alias);
  if (rc != 0) {
    upg__os_unmap(r->base, r->len);
    return rc;
  }
  upg__os_advise(r->base, r->len, MADV_NOHUGEPAGE);
  upg__os_advise(r->base, r->len, MADV_DONTFORK);
  upg__os_advise(r->alias, r->len, MADV_DONTFORK);
  return 0;
}

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
  r->memfd = upg__os_memfd("upager");
  if (r->memfd < 0 || (rc = upg__os_truncate(r->memfd, len)) != 0) {
    if (r->memfd < 0) rc = r->memfd;
    goto fail_memfd;
  }
  if ((rc = map_views(r)) != 0) goto fail_memfd;
  *out = r;
  return 0;

fail_memfd:
  if (r->memfd >= 0) upg__os_close(r->memfd);
  upg__os_free(r->touched, touched_bytes(r));
fail_touched:
  upg__os_free(r->pte, r->npages * sizeof(upg__pte_t));
fail_pte:
  upg__os_free(r, sizeof *r);
  return rc;
}

void upg__region_forget(upg__region_t *r) {
  upg__os_close(r->memfd);
  upg__os_free(r->touched, touched_bytes(r));
  upg__os_free(r->pte, r->npages * sizeof(upg__pte_t));
  upg__os_free(r, sizeof *r);
}

void upg__region_destroy(upg__region_t *r) {
  upg__os_unmap(r->base, r->len);
  upg__os_unmap(r->alias, r->len);
  upg__region_forget(r);
}

/* Resident pages one step of sharing copies: their anonymous pages and
 * the memfd's copies are both memory until the step's mmap drops the
 * former, so a step bounds the excess over the budget. */
#define SHARE_STEP 256

static uint32_t word(const upg__region_t *r, size_t page) {
  return atomic_load(&r->pte[page].word);
}

/* Not pinned and not a hole: the view's memory there may be replaced. */
static int movable(uint32_t w) {
  return upg__pte_state(w) != UPG__UNMAPPED && upg__pte_pins(w) == 0;
}

/* A page that may hold more than zeros: before the first eviction every
 * other page does, having had no copy anywhere but its zeros. */
static int written(uint32_t w) {
  return upg__pte_state(w) == UPG__RESIDENT &&
         ((w & UPG__DIRTY) || upg__pte_prot(w) == UPG_PROT_RW);
}

/* Replaces the view of pages [first, first+n) with the memfd's, closed. */
static void map_memfd(const upg__region_t *r, size_t first, size_t n) {
  size_t unit = upg__rt.page_size;
  char *view = r->base + first * unit;
  void *mapped;
  int rc = upg__os_map(view, n * unit, PROT_NONE, MAP_SHARED | MAP_NORESERVE | MAP_FIXED, r->memfd,
                       first * unit, &mapped);
  if (rc != 0) upg__fatal("cannot map a region's memfd over its view", rc);
  upg__os_advise(view, n * unit, MADV_DONTFORK);
}

/* Copies the written pages of [first, end) into the memfd, a run of them
 * a pwrite, the view read-only meanwhile: the program's threads read on,
 * and a write faults and waits for the lock. Not through the alias: most
 * of those pages never leave, and a pwrite makes the memfd's pages
 * without mapping them, about a page fault cheaper each. */
static void copy_written(upg__region_t *r, size_t first, size_t end) {
  size_t unit = upg__rt.page_size;
  int rc = upg__os_protect(r->base + first * unit, (end - first) * unit, PROT_READ);
  if (rc != 0) upg__fatal("cannot make a region's view read-only to share it", rc);
  for (size_t page = first; page < end;) {
    size_t k = 0;
    while (page + k < end && written(word(r, page + k))) k++;
    if (k == 0) {
      page++;
      continue;
    }
    rc = upg__os_pwrite_all(r->memfd, r->base + page * unit, k * unit, page * unit);
    if (rc != 0) upg__fatal("cannot copy a region's pages into its memfd", rc);
    page += k;
  }
}

/* Moves pages [first, end), none pinned or unmapped, onto the memfd: the
 * written pages are copied, and one mmap then replaces the anonymous
 * pages with the memfd's, closed: each resident page's next touch is a
 * minor fault, as after a sweep of the Clock hand. */
static void share_run(upg__region_t *r, size_t first, size_t end, int copies) {
  size_t n = end - first;
  long delta = upg__pte_maps_delta(r, first, n, UPG_PROT_NONE);
  if (copies) copy_written(r, first, end);
  map_memfd(r, first, n);
  upg__maps_add(r, delta);
  /* Only entries that change are written: the table's untouched pages
   * stay unallocated. */
  for (size_t page = first; page < end; page++)
    if (word(r, page) & (UPG__PROT_MASK | UPG__ANON))
      atomic_fetch_and(&r->pte[page].word, ~(UPG__PROT_MASK | UPG__ANON));
}

/* Shares the movable pages of [first, end) in steps; a pinned page, which
 * a system call may be using, keeps its anonymous memory, flagged, until
 * its last unpin (upg__region_share_page). */
static void share_pages(upg__region_t *r, size_t first, size_t end) {
  for (size_t page = first; page < end;) {
    uint32_t w = word(r, page);
    if (!movable(w)) {
      if (upg__pte_state(w) != UPG__UNMAPPED) atomic_fetch_or(&r->pte[page].word, UPG__ANON);
      page++;
      continue;
    }
    size_t stop = page;
    int copies = 0;
    for (; stop < end && movable(w = word(r, stop)) && copies < SHARE_STEP; stop++)
      copies += written(w);
    share_run(r, page, stop, copies);
    page = stop;
  }
}

/* Outside the pages ever touched or unmapped, every entry is still zero,
 * closed and absent: each stretch between them goes in one mmap, without
 * a look at its entries, whose memory was never touched either (a heap
 * reserves 32 GiB). */
static void region_share(upg__region_t *r) {
  if (!r->anonymous) return;
  size_t at = 0, stop = 0;
  for (size_t run = upg__region_touched(r, 0, r->npages, &stop);; ) {
    if (run > at) map_memfd(r, at, run - at);
    if (run == r->npages) break;
    share_pages(r, run, stop);
    at = stop;
    run = upg__region_touched(r, stop, r->npages, &stop);
  }
  r->anonymous = 0;
}

void upg__regions_share(void) {
  if (upg__rt.views_shared) return;
  for (size_t i = 0; i < upg__rt.nregions; i++) region_share(upg__rt.regions[i]);
  upg__rt.views_shared = 1;
}

void upg__region_added(upg__region_t *r) {
  if (upg__rt.views_shared) region_share(r);
}

void upg__region_share_page(upg__region_t *r, size_t page) {
  if (atomic_load(&r->pte[page].word) & UPG__ANON) share_run(r, page, page + 1, 1);
}

int upg__region_drop(upg__region_t *r, size_t first, size_t n) {
  size_t unit = upg__rt.page_size;
  if (r->anonymous)
    return upg__os_advise(r->base + first * unit, n * unit, MADV_DONTNEED);
  return upg__os_punch_hole(r->memfd, (uint64_t)first * unit, (uint64_t)n * unit);
}

upg__region_t *upg__region_find(const void *addr) {
  const char *a = addr;
  for (size_t i = 0; i < upg__rt.nregions; i++) {
    upg__region_t *r = upg__rt.regions[i];
    if (a >= r->base && a < r->base + r->len) return r;
  }
  return NULL;
}
