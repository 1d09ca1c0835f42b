/* view_uffd.c: the program's view kept by userfaultfd, for the uffd fault
 * source (fault_uffd.c): a region's view and its closet, the frame area
 * where loads are read, and the copies of pages between them.
 *
 * A region's view is private anonymous memory registered with the
 * source's userfaultfd (missing pages and write protection): a page the
 * program may access is present there, any other is missing and faults.
 * Nothing is ever protected with mprotect, so the view stays one kernel
 * mapping whatever the pages do.
 *
 * A closed page that stays resident lives in the region's closet, a second
 * anonymous mapping of the view's size, registered too, at the page's own
 * offset. Closing write-protects the view's pages (a write now faults and
 * waits for the lock), copies them to the closet and gives the view's
 * memory back: no write can be lost, and the next touch of any kind is a
 * fault. That is how Clock's reference bit is kept: the hand closes the
 * pages it passes, and the next touch is a fault that sets the bit again
 * (docs/design.md weighs this against the other ways measured). An
 * evicted page is written from the closet and its memory there given back.
 *
 * Pages are copied (UFFDIO_COPY), never moved with UFFDIO_MOVE, though a
 * move costs no copy: on Linux 6.18 a move that races with the kernel's
 * compaction of memory can leave the page behind, or lose it (the
 * integrity tests lost pages and found pages in the closet that had been
 * given back, only while compaction ran; test_integrity.c provokes it).
 *
 * Loads are read into staging pages (staging.c) and copied into the view
 * (or the closet) whole, so no thread sees a page half read. A page the
 * program may only read is copied with write protection, which the kernel
 * sets in the same step: the page is never writable unseen, and a write
 * faults and marks it dirty. When every staging page is taken, a load is
 * read into the frame area instead, one page of it for each frame, whose
 * memory goes back after the copy (the copy and the page both count
 * against the budget). Fresh pages are the shared zero page
 * (UFFDIO_ZEROPAGE) in a fault's small window, which costs no memory until
 * written, and zeros copied in (real pages at once) in a heap's growth
 * window, whose every page the program writes: there the zero page's
 * copy-on-write fault a page made `upager run sort` half as slow again
 * (bench/run_overhead.sh). The memory a copy leaves behind, in the frame
 * area or a closet, goes back many pages to a process_madvise: each call
 * flushes the TLB of the other CPU, a VM exit on both sides, and one a
 * fault kept two faulting threads at the speed of one and a third.
 *
 * No call wakes the threads waiting on a page (the DONTWAKE modes): in the
 * handler-thread mode a faulting thread goes on once its fault is over,
 * counted and traced, and the handler thread wakes it (fault_uffd.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"
#include "uffd_abi.h"

upg__uffd_t upg__uffd = {.fd = -1, .pidfd = -1, .pagemap = -1};

typedef struct uview {
  char *closet; /* closed resident pages, at their offsets in the view */
  int added;    /* registered with the runtime: its pages may be opened */
} uview_t;

static char *closet_of(const upg__region_t *r) { return ((const uview_t *)r->view)->closet; }

static char *frame_slot(uint32_t frame) {
  return upg__uffd.frames + (size_t)frame * upg__rt.page_size;
}

/* ---- the userfaultfd calls ----------------------------------------------
 * Each fills whole pages and reports how far it got: a call that
 * stops early (EAGAIN while the address space changes under it) is made
 * again from there. */

static int zeropage(char *dst, size_t len) {
  for (size_t done = 0; done < len;) {
    struct uffdio_zeropage z = {{(uintptr_t)(dst + done), len - done},
                                UFFDIO_ZEROPAGE_MODE_DONTWAKE,
                                0};
    int rc = upg__os_ioctl(upg__uffd.fd, UFFDIO_ZEROPAGE, &z);
    if (z.zeropage > 0) done += (size_t)z.zeropage;
    else if (rc == -EAGAIN) upg__os_yield();
    else return rc != 0 ? rc : -EIO;
  }
  return 0;
}

/* dst gets a copy of src, write-protected in the same step when `wp`. */
static int copy_pages(char *dst, const char *src, size_t len, int wp) {
  __u64 mode = UFFDIO_COPY_MODE_DONTWAKE | (wp ? UFFDIO_COPY_MODE_WP : 0);
  for (size_t done = 0; done < len;) {
    struct uffdio_copy c = {(uintptr_t)(dst + done), (uintptr_t)(src + done), len - done, mode, 0};
    int rc = upg__os_ioctl(upg__uffd.fd, UFFDIO_COPY, &c);
    if (c.copy > 0) done += (size_t)c.copy;
    else if (rc == -EAGAIN) upg__os_yield();
    else return rc != 0 ? rc : -EIO;
  }
  return 0;
}

/* Zeros copied from the never-written run, a chunk at a time: real pages
 * at once, where the zero page would take a copy-on-write fault at the
 * program's first write of each. */
static int zeros(char *dst, size_t len, int wp) {
  for (size_t done = 0; done < len;) {
    size_t chunk = len - done < upg__uffd.zeros_len ? len - done : upg__uffd.zeros_len;
    int rc = copy_pages(dst + done, upg__uffd.zeros, chunk, wp);
    if (rc != 0) return rc;
    done += chunk;
  }
  return 0;
}

/* Protecting wakes nobody, and the kernel refuses DONTWAKE with it. */
static int write_protect(char *addr, size_t len, int on) {
  struct uffdio_writeprotect w = {{(uintptr_t)addr, len},
                                  on ? UFFDIO_WRITEPROTECT_MODE_WP
                                     : UFFDIO_WRITEPROTECT_MODE_DONTWAKE};
  int rc;
  while ((rc = upg__os_ioctl(upg__uffd.fd, UFFDIO_WRITEPROTECT, &w)) == -EAGAIN) upg__os_yield();
  return rc;
}

/* ---- giving memory back -------------------------------------------------*/

/* Gives back the memory of n ranges, scattered, in one call where the
 * kernel takes it: one TLB flush for all, where a madvise a range flushes
 * for each. */
static int give_back(const struct iovec *iov, int n) {
  if (n > 1 && upg__uffd.pidfd >= 0 && !atomic_load(&upg__uffd.batch_refused)) {
    size_t total = 0;
    for (int i = 0; i < n; i++) total += iov[i].iov_len;
    long done = upg__os_process_madvise(upg__uffd.pidfd, iov, n, MADV_DONTNEED);
    if (done == (long)total) return 0;
    if (done < 0 && done != -EINTR && done != -EAGAIN) atomic_store(&upg__uffd.batch_refused, 1);
  }
  for (int i = 0; i < n; i++) {
    int rc = upg__os_advise(iov[i].iov_base, iov[i].iov_len, MADV_DONTNEED);
    if (rc != 0) return rc;
  }
  return 0;
}

/* Copies left behind, whose memory goes back many in one call
 * (upg__uffd.stale, under the lock): those that reopening pages leaves in
 * the closets, and those that placing loaded pages leaves in the frame
 * area. A madvise for each would interrupt the other CPU at every fault.
 * They go when COPIES_WAITING_MAX pages wait, or more pages than frames
 * are free (so that the copies and the pages fit the budget together),
 * when the list is full, before a closet page is used again (a close) or
 * a waiting frame is read into again (upg__uview_reusing), and when a
 * region is unmapped or destroyed. */
#define COPIES_WAITING_MAX 32

/* More copies wait than free frames would leave room for in the budget. */
static int too_many_copies(void) {
  size_t n = upg__uffd.copies_waiting;
  return n >= COPIES_WAITING_MAX || n > upg__rt.free_count;
}

/* The frame-area pages of a range given back no longer wait. */
static void slots_given_back(const struct iovec *iov) {
  char *at = iov->iov_base, *end = upg__uffd.frames + upg__uffd.frames_len;
  if (at < upg__uffd.frames || at >= end) return;
  size_t unit = upg__rt.page_size, frame = (size_t)(at - upg__uffd.frames) / unit;
  size_t len = iov->iov_len < (size_t)(end - at) ? iov->iov_len : (size_t)(end - at);
  memset(upg__uffd.slot_waits + frame, 0, len / unit);
}

static int give_back_stale(void) {
  upg__iov_list_t *stale = &upg__uffd.stale;
  for (int i = 0; i < stale->n; i++) slots_given_back(&stale->iov[i]);
  upg__uffd.copies_waiting = 0;
  int rc = give_back(stale->iov, stale->n);
  stale->n = 0;
  return rc;
}

static int leftover(char *at, size_t len) {
  upg__iov_list_t *stale = &upg__uffd.stale;
  struct iovec *last = stale->n > 0 ? &stale->iov[stale->n - 1] : NULL;
  int rc = 0;
  if (last != NULL && (char *)last->iov_base + last->iov_len == at) {
    last->iov_len += len;
  } else {
    if (stale->n == UPG__IOV_MAX) rc = give_back_stale();
    stale->iov[stale->n++] = (struct iovec){at, len};
  }
  upg__uffd.copies_waiting += len / upg__rt.page_size;
  if (rc == 0 && too_many_copies()) rc = give_back_stale();
  return rc;
}

/* Frames [frame, frame+k) were copied out of the frame area. */
static int slots_left(uint32_t frame, size_t k) {
  memset(upg__uffd.slot_waits + frame, 1, k);
  return leftover(frame_slot(frame), k * upg__rt.page_size);
}

/* ---- the frame area -----------------------------------------------------*/

static int map_anonymous(size_t len, int prot, char **out) {
  int rc = upg__os_map(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0,
                       (void **)out);
  if (rc != 0) return rc;
  /* No huge pages: a copy places a page the size the view faults in. */
  upg__os_advise(*out, len, MADV_NOHUGEPAGE);
  upg__os_advise(*out, len, MADV_DONTFORK);
  return 0;
}

static size_t frame_count(void) { return upg__uffd.frames_len / upg__os_page_size(); }

/* A frame taken leaves one fewer free: the copies may no longer fit. */
void upg__uview_reusing(uint32_t frame) {
  if (upg__uffd.slot_waits[frame] || too_many_copies()) (void)give_back_stale();
}

int upg__uview_setup(const upg__config_t *cfg) {
  upg__uffd.frames_len = cfg->budget / cfg->page_size * cfg->page_size;
  upg__uffd.zeros_len = (size_t)UPG__IOV_MAX * cfg->page_size;
  int rc = map_anonymous(upg__uffd.frames_len, PROT_READ | PROT_WRITE, &upg__uffd.frames);
  if (rc != 0) return rc;
  rc = map_anonymous(upg__uffd.zeros_len, PROT_READ, &upg__uffd.zeros);
  if (rc != 0) goto no_zeros;
  upg__uffd.slot_waits = upg__os_alloc(frame_count());
  if (upg__uffd.slot_waits != NULL) {
    upg__uffd.pagemap = upg__os_open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC, 0);
    return 0;
  }
  rc = -ENOMEM;
  upg__os_unmap(upg__uffd.zeros, upg__uffd.zeros_len);
no_zeros:
  upg__os_unmap(upg__uffd.frames, upg__uffd.frames_len);
  return rc;
}

void upg__uview_teardown(void) {
  upg__uffd.stale.n = 0; /* the frame area goes, and every region after */
  upg__os_unmap(upg__uffd.frames, upg__uffd.frames_len);
  upg__os_unmap(upg__uffd.zeros, upg__uffd.zeros_len);
  upg__os_free(upg__uffd.slot_waits, frame_count());
  if (upg__uffd.pagemap >= 0) upg__os_close(upg__uffd.pagemap);
  upg__uffd.pagemap = -1;
  upg__uffd.frames = upg__uffd.zeros = NULL;
  upg__uffd.slot_waits = NULL;
  upg__uffd.copies_waiting = 0;
}

/* ---- a region's view and closet -----------------------------------------*/

static int register_range(char *at, size_t len) {
  struct uffdio_register reg = {{(uintptr_t)at, len},
                                UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
                                0};
  return upg__os_ioctl(upg__uffd.fd, UFFDIO_REGISTER, &reg);
}

/* The view starts on a paging unit: one unit more is reserved, and the
 * ends trimmed. */
static int map_view(upg__region_t *r) {
  size_t unit = upg__rt.page_size;
  char *reserve;
  int rc = map_anonymous(r->len + unit, PROT_READ | PROT_WRITE, &reserve);
  if (rc != 0) return rc;
  char *base = (char *)(((uintptr_t)reserve + unit - 1) & ~(uintptr_t)(unit - 1));
  if (base > reserve) upg__os_unmap(reserve, (size_t)(base - reserve));
  upg__os_unmap(base + r->len, (size_t)(reserve + unit - base));
  r->base = base;
  return 0;
}

int upg__uview_create(upg__region_t *r) {
  uview_t *v = upg__os_alloc(sizeof *v);
  if (v == NULL) return -ENOMEM;
  int rc = map_view(r);
  if (rc != 0) goto no_view;
  if ((rc = map_anonymous(r->len, PROT_READ | PROT_WRITE, &v->closet)) != 0) goto no_closet;
  if ((rc = register_range(r->base, r->len)) != 0 || (rc = register_range(v->closet, r->len)) != 0)
    goto no_registration;
  r->view = v;
  return 0;
no_registration:
  upg__os_unmap(v->closet, r->len);
no_closet:
  upg__os_unmap(r->base, r->len);
no_view:
  upg__os_free(v, sizeof *v);
  return rc;
}

void upg__uview_added(upg__region_t *r) { ((uview_t *)r->view)->added = 1; }

void upg__uview_forget(upg__region_t *r) {
  upg__os_free(r->view, sizeof(uview_t));
  r->view = NULL;
}

/* Unmapping a registered range unregisters it. */
void upg__uview_destroy(upg__region_t *r) {
  if (((uview_t *)r->view)->added) give_back_stale(); /* under the lock then */
  upg__os_unmap(r->base, r->len);
  upg__os_unmap(closet_of(r), r->len);
  upg__uview_forget(r);
}

int upg__uview_unmap(upg__region_t *r, size_t first, size_t n) {
  size_t unit = upg__rt.page_size;
  for (size_t page = first; page < first + n; page++) upg__pte_store(&r->pte[page], UPG__UNMAPPED);
  give_back_stale();
  upg__os_unmap(r->base + first * unit, n * unit);
  upg__os_unmap(closet_of(r) + first * unit, n * unit);
  return 0;
}

/* ---- the program's access ----------------------------------------------*/

static uint32_t prot_of(const upg__region_t *r, size_t page) {
  return upg__pte_prot(atomic_load_explicit(&r->pte[page].word, memory_order_relaxed));
}

/* The run of pages from `page`, below end, with the same access. */
static size_t same_prot_run(const upg__region_t *r, size_t page, size_t end) {
  size_t k = 1;
  uint32_t prot = prot_of(r, page);
  while (page + k < end && prot_of(r, page + k) == prot) k++;
  return k;
}

/* A closed run comes back from the closet, copied (write-protected when
 * read-only); the closet's copy is given back later, with others. */
static int reopen_run(upg__region_t *r, size_t page, size_t k, uint32_t prot) {
  size_t unit = upg__rt.page_size;
  char *view = r->base + page * unit, *kept = closet_of(r) + page * unit;
  int rc = copy_pages(view, kept, k * unit, prot == UPG_PROT_READ);
  return rc != 0 ? rc : leftover(kept, k * unit);
}

int upg__uview_open(upg__region_t *r, size_t first, size_t n, uint32_t prot) {
  if (upg__pte_run_has_prot(r, first, n, prot)) return 0;
  size_t unit = upg__rt.page_size, end = first + n;
  int rc = 0;
  for (size_t page = first, k; rc == 0 && page < end; page += k) {
    k = same_prot_run(r, page, end);
    uint32_t had = prot_of(r, page);
    if (had == UPG_PROT_NONE) rc = reopen_run(r, page, k, prot);
    else if (had != prot)
      rc = write_protect(r->base + page * unit, k * unit, prot == UPG_PROT_READ);
  }
  if (rc == 0) upg__pte_set_prot(r, first, n, prot);
  return rc;
}

/* Copies the view's [at, at+len) to dst, finding first the pages the
 * program gave back itself (madvise), which are zeros there: neither in
 * memory nor in swap, as /proc/self/pagemap tells (bits 63 and 62;
 * mincore cannot tell a page the kernel swapped out from a hole). Without
 * the pagemap every page counts as there. */
#define COPY_OUT_PAGES 64
#define PAGEMAP_THERE (3ull << 62)

static int copy_around_holes(char *dst, char *at, size_t len) {
  size_t unit = upg__os_page_size();
  uint64_t map[COPY_OUT_PAGES];
  for (size_t done = 0; done < len;) {
    size_t n = (len - done) / unit < COPY_OUT_PAGES ? (len - done) / unit : COPY_OUT_PAGES;
    struct iovec iov = {map, n * sizeof map[0]};
    uint64_t offset = (uintptr_t)(at + done) / unit * sizeof map[0];
    if (upg__uffd.pagemap < 0 ||
        upg__os_preadv(upg__uffd.pagemap, &iov, 1, offset) != (long)iov.iov_len)
      for (size_t i = 0; i < n; i++) map[i] = PAGEMAP_THERE;
    int rc = 0;
    for (size_t i = 0, k; rc == 0 && i < n; i += k) {
      int there = (map[i] & PAGEMAP_THERE) != 0;
      k = 1;
      while (i + k < n && ((map[i + k] & PAGEMAP_THERE) != 0) == there) k++;
      char *to = dst + done + i * unit, *from = at + done + i * unit;
      rc = there ? copy_pages(to, from, k * unit, 0) : zeropage(to, k * unit);
    }
    if (rc != 0) return rc;
    done += n * unit;
  }
  return 0;
}

/* Copies the view's [at, at+len), write-protected already, to dst. In the
 * sigbus mode a copy that meets a page the program gave back fails with
 * EFAULT, and the run is copied again a page at a time, a hole's page as
 * zeros; in the thread mode it would wait for the handler thread, which
 * may be this one, so there the holes are found before any copy. */
static int copy_out(char *dst, char *at, size_t len) {
  if (upg__rt.cfg.uffd_thread) return copy_around_holes(dst, at, len);
  int rc = copy_pages(dst, at, len, 0);
  if (rc != -EFAULT) return rc;
  if ((rc = upg__os_advise(dst, len, MADV_DONTNEED)) != 0) return rc;
  size_t unit = upg__os_page_size();
  for (size_t done = 0; rc == 0 && done < len; done += unit) {
    rc = copy_pages(dst + done, at + done, unit, 0);
    if (rc == -EFAULT) rc = zeropage(dst + done, unit);
  }
  return rc;
}

/* The view ranges of one close, given back together (kept small: a close
 * runs on the fault path, in the SIGBUS handler's stack). */
#define CLOSE_BATCH 16

typedef struct taken {
  int n;
  struct iovec iov[CLOSE_BATCH];
} taken_t;

/* The view's copies of closed pages go: their next touch faults. */
static void take_from_view(taken_t *taken) {
  int rc = taken->n > 0 ? give_back(taken->iov, taken->n) : 0;
  if (rc != 0) upg__fatal("cannot take closed pages from the view", rc);
  taken->n = 0;
}

/* Copies the open run [page, page+k) to the closet, writes stopped first
 * (a write now faults and waits for the lock, so none is lost); the view's
 * copy is then taken away with the others of the call (upg__uview_close).
 * On failure the run stays open as it was, its closet copies given back. */
static int close_run(upg__region_t *r, size_t page, size_t k, taken_t *taken) {
  size_t unit = upg__rt.page_size, len = k * unit;
  char *view = r->base + page * unit, *kept = closet_of(r) + page * unit;
  int writable = prot_of(r, page) == UPG_PROT_RW;
  int rc = writable ? write_protect(view, len, 1) : 0;
  if (rc == 0 && (rc = copy_out(kept, view, len)) == 0) {
    upg__pte_set_prot(r, page, k, UPG_PROT_NONE);
    taken->iov[taken->n++] = (struct iovec){view, len};
    return 0;
  }
  if (upg__os_advise(kept, len, MADV_DONTNEED) != 0 || (writable && write_protect(view, len, 0)))
    upg__fatal("cannot leave a page open after a failed close", rc);
  return rc;
}

/* The open pages of the runs go to the closet, and their memory in the
 * view back, in one call for all. A run that cannot close stays open, and
 * the call answers why, the others closed. */
int upg__uview_close(upg__region_t *r, size_t first, size_t n) {
  size_t end = first + n;
  taken_t taken = {.n = 0};
  int failed = give_back_stale(); /* a closet page must be empty to take a page */
  for (size_t page = first, k; page < end; page += k) {
    k = same_prot_run(r, page, end);
    if (prot_of(r, page) == UPG_PROT_NONE) continue;
    int rc = close_run(r, page, k, &taken);
    if (rc != 0) failed = rc;
    if (taken.n == CLOSE_BATCH) take_from_view(&taken);
  }
  take_from_view(&taken);
  return failed;
}

/* A page with no copy in the store was not read: it is zeros. */
static int fresh(const upg__region_t *r, size_t page) { return r->pte[page].slot == UPG__NO_SLOT; }

static int staged(const upg__region_t *r, size_t page) {
  return upg__staging_page(r->pte[page].frame) != NULL;
}

/* Where a loaded page's contents were read (frame_iov decided). */
static char *loaded_at(const upg__region_t *r, size_t page) {
  uint32_t frame = r->pte[page].frame;
  char *staged_at = upg__staging_page(frame);
  return staged_at != NULL ? staged_at : frame_slot(frame);
}

/* Pages from `page` below end that are all fresh, or all read into pages
 * that follow each other, of the staging pages or of the frame area
 * (both are handed out in ascending order, so a window's often do): one
 * call places them. */
static size_t placement_run(const upg__region_t *r, size_t page, size_t end) {
  size_t k = 1, unit = upg__rt.page_size;
  if (fresh(r, page)) {
    while (page + k < end && fresh(r, page + k)) k++;
  } else {
    char *at = loaded_at(r, page);
    while (page + k < end && !fresh(r, page + k) && staged(r, page + k) == staged(r, page) &&
           loaded_at(r, page + k) == at + k * unit)
      k++;
  }
  return k;
}

/* Fresh pages a window may place as the shared zero page: a fault's window
 * of fresh neighbours (pager.c's FAULT_AROUND), most of which the program
 * may never write, and the zero page costs no memory until it does. A
 * longer run gets real zeroed pages, sparing a copy-on-write fault a page,
 * and so does a heap's growth window (`populating`), which the program
 * writes whole: there the zero page's copy-on-write faults also flushed
 * the TLB of the other CPU each, a VM exit on both sides, and made
 * `upager run xz -T2` 1.28x a normal run. */
#define SHARED_ZEROS_MAX 16

static int place_run(upg__region_t *r, size_t page, size_t k, uint32_t prot, int populating) {
  size_t unit = upg__rt.page_size;
  char *dst = (prot == UPG_PROT_NONE ? closet_of(r) : r->base) + page * unit;
  if (fresh(r, page) && prot == UPG_PROT_RW && k <= SHARED_ZEROS_MAX && !populating)
    return zeropage(dst, k * unit);
  if (fresh(r, page)) return zeros(dst, k * unit, prot == UPG_PROT_READ);
  int was_staged = staged(r, page);
  int rc = copy_pages(dst, loaded_at(r, page), k * unit, prot == UPG_PROT_READ);
  if (rc != 0) return rc;
  uint32_t frame = r->pte[page].frame;
  for (size_t i = 0; i < k; i++) upg__staging_release(r->pte[page + i].frame);
  return was_staged ? 0 : slots_left(frame, k);
}

int upg__uview_publish(upg__region_t *r, size_t first, size_t n, uint32_t prot, int populating) {
  size_t end = first + n;
  int rc = 0;
  for (size_t page = first, k; rc == 0 && page < end; page += k) {
    k = placement_run(r, page, end);
    rc = place_run(r, page, k, prot, populating);
  }
  if (rc == 0) upg__pte_set_prot(r, first, n, prot);
  return rc;
}

/* A loading page is read into a staging page, or its frame's page of the
 * frame area; a closed one sits in the closet. */
void upg__uview_frame_iov(const upg__region_t *r, size_t first, size_t n, struct iovec *iov) {
  size_t unit = upg__rt.page_size;
  for (size_t k = 0; k < n; k++) {
    const upg__pte_t *pte = &r->pte[first + k];
    char *at = upg__pte_state(atomic_load(&pte->word)) == UPG__LOADING
                   ? upg__staging_buffer(pte->frame, frame_slot(pte->frame))
                   : closet_of(r) + (first + k) * unit;
    iov[k] = (struct iovec){at, unit};
  }
}

/* Closed pages are in the closet, and the view is missing there already:
 * the runs' closet memory goes back in one call, a TLB flush for all, where
 * a madvise a run interrupts the other CPU for each. */
int upg__uview_free(const upg__page_run_t *runs, int n) {
  size_t unit = upg__rt.page_size;
  struct iovec iov[UPG__IOV_MAX];
  int rc = 0;
  for (int done = 0; done < n && rc == 0;) {
    int k = 0;
    for (; k < UPG__IOV_MAX && done < n; k++, done++)
      iov[k] = (struct iovec){closet_of(runs[done].region) + runs[done].first * unit,
                              runs[done].n * unit};
    rc = give_back(iov, k);
  }
  return rc;
}

int upg__uview_refill_hole(void *addr) {
  upg__lock();
  upg__region_t *r = upg__rt.running ? upg__region_find(addr) : NULL;
  int refilled = 0;
  if (r != NULL) {
    size_t page = upg__region_page(r, addr), unit = upg__rt.page_size;
    uint32_t w = atomic_load(&r->pte[page].word);
    if (upg__pte_state(w) == UPG__RESIDENT && upg__pte_prot(w) != UPG_PROT_NONE) {
      char *at = r->base + page * unit;
      int rc = zeros(at, unit, upg__pte_prot(w) == UPG_PROT_READ);
      refilled = rc == 0 || rc == -EEXIST; /* -EEXIST: another thread's fault filled it */
    }
  }
  upg__unlock();
  return refilled;
}
