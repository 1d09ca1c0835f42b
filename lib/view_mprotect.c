/* view_mprotect.c: the program's view kept by memory protection, for the
 * SIGSEGV fault source (fault_sigsegv.c): a region's memory, both views
 * of it, the protections that follow the pages' states, and the count of
 * kernel mappings those protections make.
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
 * eviction every view moves onto its memfd (upg__mview_evicting).
 *
 * Every run of pages with one protection is a kernel mapping (VMA), and
 * the kernel allows vm.max_map_count of them. The count follows from the
 * protections of a page's two neighbours, so it is kept exactly as pages
 * change, and raising a page's access never takes it past the limit:
 * resident pages are closed early instead (demote). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>

#include "internal.h"

typedef struct mview {
  char *alias;   /* always read-write: the runtime fills and drains here */
  int memfd;     /* the frames' memory: both views map it */
  int anonymous; /* the view is still anonymous memory: nothing was evicted yet */
  long maps;     /* kernel mappings: the view's runs, the alias, the table */
} mview_t;

/* This file's part of the runtime. */
#define V (&upg__rt.mview)

static mview_t *mv(const upg__region_t *r) { return r->view; }

void upg__mview_reset(void) {
  *V = (upg__mview_part_t){0};
  UPG__SET(maps_limit, upg__rt.cfg.max_maps);
}

/* ---- the count of kernel mappings ---------------------------------------*/

/* The protection as the kernel sees it; an unmapped page is a hole, which
 * never merges with its neighbours. */
static uint32_t view_kind(const upg__region_t *r, size_t page) {
  uint32_t w = atomic_load_explicit(&r->pte[page].word, memory_order_relaxed);
  return upg__pte_state(w) == UPG__UNMAPPED ? 3u : upg__pte_prot(w);
}

long upg__pte_maps_delta(const upg__region_t *r, size_t first, size_t n, uint32_t prot) {
  size_t last = first + n - 1;
  long delta = 0;
  /* Inside the run every boundary disappears. */
  for (size_t page = first + 1; page <= last; page++)
    delta -= view_kind(r, page) != view_kind(r, page - 1);
  if (first > 0) {
    uint32_t left = view_kind(r, first - 1);
    delta += (long)(left != prot) - (long)(left != view_kind(r, first));
  }
  if (last + 1 < r->npages) {
    uint32_t right = view_kind(r, last + 1);
    delta += (long)(right != prot) - (long)(right != view_kind(r, last));
  }
  return delta;
}

static void maps_add(upg__region_t *r, long delta) {
  mv(r)->maps += delta;
  V->maps_in_use += delta;
  UPG__SET(maps_in_use, (uint64_t)V->maps_in_use);
  if ((uint64_t)V->maps_in_use > UPG__GET(maps_peak)) UPG__SET(maps_peak, (uint64_t)V->maps_in_use);
}

static int protect_run(upg__region_t *r, size_t first, size_t n, uint32_t prot);

/* Closes open, unpinned resident pages whose closing does not add a
 * mapping, until `need` more fit under the limit; 0 or UPG_EMAPLIMIT. */
static int demote(long need) {
  for (size_t scanned = 0; V->maps_in_use + need > (long)upg__rt.cfg.max_maps; scanned++) {
    if (scanned >= 3 * upg__rt.nframes) return UPG_EMAPLIMIT;
    upg__frame_t *f = &upg__rt.frames[V->demote_hand];
    V->demote_hand = (V->demote_hand + 1) % upg__rt.nframes;
    if (f->region == NULL) continue;
    upg__pte_t *pte = &f->region->pte[f->page];
    uint32_t w = atomic_load(&pte->word);
    if (upg__pte_state(w) != UPG__RESIDENT || upg__pte_pins(w) != 0 ||
        upg__pte_prot(w) == UPG_PROT_NONE ||
        upg__pte_maps_delta(f->region, f->page, 1, UPG_PROT_NONE) > 0)
      continue;
    atomic_fetch_and(&pte->word, ~UPG__REFERENCED);
    if (protect_run(f->region, f->page, 1, UPG_PROT_NONE) == 0) UPG__COUNT(maps_demotions, 1);
  }
  return 0;
}

static int os_prot(uint32_t prot) {
  return prot == UPG_PROT_RW     ? PROT_READ | PROT_WRITE
         : prot == UPG_PROT_READ ? PROT_READ
                                 : PROT_NONE;
}

/* Gives pages [first, first+n) `prot` with one mprotect, keeping the
 * count; may first close other pages to stay under the limit. */
static int protect_run(upg__region_t *r, size_t first, size_t n, uint32_t prot) {
  if (upg__pte_run_has_prot(r, first, n, prot)) return 0;
  long delta = upg__pte_maps_delta(r, first, n, prot);
  /* Closing never needs room: the limit is half the kernel's. */
  if (prot != UPG_PROT_NONE && delta > 0 && V->maps_in_use + delta > (long)upg__rt.cfg.max_maps) {
    int rc = demote(delta);
    if (rc != 0) return rc;
    delta = upg__pte_maps_delta(r, first, n, prot);
  }
  size_t unit = upg__rt.page_size;
  int rc = upg__os_protect(r->base + first * unit, n * unit, os_prot(prot));
  if (rc != 0) return rc;
  maps_add(r, delta);
  upg__pte_set_prot(r, first, n, prot);
  return 0;
}

int upg__mview_open(upg__region_t *r, size_t first, size_t n, uint32_t prot) {
  return protect_run(r, first, n, prot);
}

int upg__mview_close(upg__region_t *r, size_t first, size_t n) {
  return protect_run(r, first, n, UPG_PROT_NONE);
}

/* The pages from `page`, below end, whose loads were read into staging
 * pages: written into the memfd in one call, which allocates their memory
 * there without the page fault and the zeroing a fill through the alias
 * costs. Returns how many pages it looked at (a page not staged is one). */
static size_t write_staged(upg__region_t *r, size_t page, size_t end, int *rc) {
  struct iovec iov[UPG__IOV_MAX];
  size_t unit = upg__rt.page_size, k = 0;
  while (page + k < end && k < UPG__IOV_MAX &&
         (iov[k].iov_base = upg__staging_page(r->pte[page + k].frame)) != NULL)
    iov[k++].iov_len = unit;
  if (k == 0) return 1;
  uint64_t offset = (uint64_t)page * unit;
  long n = upg__os_pwritev(mv(r)->memfd, iov, (int)k, offset);
  if (n < 0) *rc = (int)n;
  /* A short write (memory ran short mid-call) is finished page by page. */
  for (size_t done = n > 0 ? (size_t)n : 0; *rc == 0 && done < k * unit; done += unit - done % unit)
    *rc = upg__os_pwrite_all(mv(r)->memfd, (char *)iov[done / unit].iov_base + done % unit,
                             unit - done % unit, offset + done);
  for (size_t i = 0; *rc == 0 && i < k; i++) upg__staging_release(r->pte[page + i].frame);
  return k;
}

/* A page read into the alias is in the memfd already; one read into a
 * staging page is written there first. Opening the view then shows it. A
 * fresh page is a hole of the frames' memory, which the pager's populate
 * fills when `populating`. */
int upg__mview_publish(upg__region_t *r, size_t first, size_t n, uint32_t prot, int populating) {
  (void)populating;
  int rc = 0;
  for (size_t page = first; rc == 0 && page < first + n;)
    page += write_staged(r, page, first + n, &rc);
  return rc != 0 ? rc : protect_run(r, first, n, prot);
}

/* A loading page is read into a staging page where one is free, else
 * straight into the alias; an evicting one is drained from the alias. */
void upg__mview_frame_iov(const upg__region_t *r, size_t first, size_t n, struct iovec *iov) {
  size_t unit = upg__rt.page_size;
  char *alias = mv(r)->alias;
  for (size_t k = 0; k < n; k++) {
    const upg__pte_t *pte = &r->pte[first + k];
    char *at = alias + (first + k) * unit;
    if (upg__pte_state(atomic_load(&pte->word)) == UPG__LOADING)
      at = upg__staging_buffer(pte->frame, at);
    iov[k] = (struct iovec){at, unit};
  }
}

static int free_run(const upg__page_run_t *run) {
  size_t unit = upg__rt.page_size;
  const upg__region_t *r = run->region;
  if (mv(r)->anonymous)
    return upg__os_advise(r->base + run->first * unit, run->n * unit, MADV_DONTNEED);
  return upg__os_punch_hole(mv(r)->memfd, (uint64_t)run->first * unit, (uint64_t)run->n * unit);
}

/* A hole a run: each is a call of its own. */
int upg__mview_free(const upg__page_run_t *runs, int n) {
  int rc = 0;
  for (int i = 0; i < n && rc == 0; i++) rc = free_run(&runs[i]);
  return rc;
}

/* ---- the views' memory --------------------------------------------------*/

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
  mv(r)->anonymous = 1;
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
  rc = upg__os_map(NULL, r->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, mv(r)->memfd,
                   0, (void **)&mv(r)->alias);
  if (rc != 0) {
    upg__os_unmap(r->base, r->len);
    return rc;
  }
  upg__os_advise(r->base, r->len, MADV_NOHUGEPAGE);
  upg__os_advise(r->base, r->len, MADV_DONTFORK);
  upg__os_advise(mv(r)->alias, r->len, MADV_DONTFORK);
  return 0;
}

int upg__mview_create(upg__region_t *r) {
  mview_t *v = upg__os_alloc(sizeof *v);
  if (v == NULL) return -ENOMEM;
  r->view = v;
  int rc = v->memfd = upg__os_memfd("upager");
  if (v->memfd >= 0 && (rc = upg__os_truncate(v->memfd, r->len)) == 0 && (rc = map_views(r)) == 0)
    return 0;
  if (v->memfd >= 0) upg__os_close(v->memfd);
  upg__os_free(v, sizeof *v);
  r->view = NULL;
  return rc;
}

void upg__mview_forget(upg__region_t *r) {
  upg__os_close(mv(r)->memfd);
  upg__os_free(r->view, sizeof(mview_t));
  r->view = NULL;
}

void upg__mview_destroy(upg__region_t *r) {
  if (mv(r)->maps != 0) maps_add(r, -mv(r)->maps);
  upg__os_unmap(r->base, r->len);
  upg__os_unmap(mv(r)->alias, r->len);
  upg__mview_forget(r);
}

int upg__mview_unmap(upg__region_t *r, size_t first, size_t n) {
  size_t unit = upg__rt.page_size;
  for (size_t page = first; page < first + n; page++) {
    maps_add(r, upg__pte_maps_delta(r, page, 1, 3u));
    upg__pte_store(&r->pte[page], UPG__UNMAPPED);
  }
  upg__os_unmap(r->base + first * unit, n * unit);
  upg__os_unmap(mv(r)->alias + first * unit, n * unit);
  /* An anonymous view's memory went with the munmap; a shared view's lives
   * on in the memfd until its range is punched. */
  int rc = upg__os_punch_hole(mv(r)->memfd, (uint64_t)first * unit, (uint64_t)n * unit);
  if (rc != 0) upg__fatal("cannot release the frames of an unmapped range", rc);
  return 0;
}

/* ---- moving the views onto their memfds ---------------------------------*/

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
  int rc = upg__os_map(view, n * unit, PROT_NONE, MAP_SHARED | MAP_NORESERVE | MAP_FIXED,
                       mv(r)->memfd, first * unit, &mapped);
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
    rc = upg__os_pwrite_all(mv(r)->memfd, r->base + page * unit, k * unit, page * unit);
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
  maps_add(r, delta);
  /* Only entries that change are written: the table's untouched pages
   * stay unallocated. */
  for (size_t page = first; page < end; page++)
    if (word(r, page) & (UPG__PROT_MASK | UPG__ANON))
      atomic_fetch_and(&r->pte[page].word, ~(UPG__PROT_MASK | UPG__ANON));
}

/* Shares the movable pages of [first, end) in steps; a pinned page, which
 * a system call may be using, keeps its anonymous memory, flagged, until
 * its last unpin (upg__mview_unpinned). */
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
  if (!mv(r)->anonymous) return;
  size_t at = 0, stop = 0;
  for (size_t run = upg__region_touched(r, 0, r->npages, &stop);;) {
    if (run > at) map_memfd(r, at, run - at);
    if (run == r->npages) break;
    share_pages(r, run, stop);
    at = stop;
    run = upg__region_touched(r, stop, r->npages, &stop);
  }
  mv(r)->anonymous = 0;
}

/* Victims drain from the alias, so the first batch needs every view on
 * its memfd; regions added later are shared at once. Fatal if the kernel
 * refuses: no page could be evicted. */
void upg__mview_evicting(void) {
  if (V->views_shared) return;
  for (size_t i = 0; i < upg__rt.nregions; i++) region_share(upg__rt.regions[i]);
  V->views_shared = 1;
}

void upg__mview_added(upg__region_t *r) {
  maps_add(r, 3); /* the view, the alias and the page table */
  if (V->views_shared) region_share(r);
}

/* A page pinned while its view was shared moves onto the memfd now. */
void upg__mview_unpinned(upg__region_t *r, size_t page) {
  if (atomic_load(&r->pte[page].word) & UPG__ANON) share_run(r, page, page + 1, 1);
}
