/* pager.c: the pager core: resolving a fault and the page transitions
 * (absent -> loading -> resident -> evicting -> absent) that every path
 * shares. How many pages a load takes, which protection they open with and
 * what the program's accesses teach are the advisor's (advisor.h), asked
 * at each of those points. All of it runs under the runtime lock, which is
 * dropped only around swap I/O while the page is marked busy.
 * Async-signal-safe: no malloc, no stdio. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* The pages after `first` that the window may take: absent ones, each with
 * a frame that is free now (readahead never evicts for a guess). */
static size_t claim_window(upg__region_t *r, size_t first, size_t window, uint32_t *frames) {
  size_t n = 1;
  while (n < window && first + n < r->npages &&
         upg__pte_state(atomic_load(&r->pte[first + n].word)) == UPG__ABSENT) {
    long frame = upg__frames_take_free();
    if (frame < 0) break;
    frames[n++] = (uint32_t)frame;
  }
  return n;
}

/* Reads the pages of [first, first+n) that have a copy in the store, in one
 * get, into their frames, closed to the program (the source's frame_iov).
 * Without the lock. On failure every one of them is marked in failed[];
 * returns the error if the first page is one. */
static int read_window(upg__region_t *r, size_t first, size_t n, unsigned char *failed) {
  struct iovec iov[UPG__IOV_MAX];
  upg__handle_t handles[UPG__IOV_MAX];
  size_t who[UPG__IOV_MAX], k = 0;
  for (size_t i = 0; i < n; i++) {
    if (r->pte[first + i].slot == UPG__NO_SLOT) continue; /* a freed frame reads as zeros */
    upg__rt.source->frame_iov(r, first + i, 1, &iov[k]);
    handles[k] = r->pte[first + i].slot;
    who[k++] = i;
  }
  if (k == 0) return 0;
  int rc = upg__store_get(upg__rt.store, handles, iov, (int)k);
  if (rc == 0) return 0;
  for (size_t j = 0; j < k; j++) failed[who[j]] = 1;
  return who[0] == 0 ? rc : 0;
}

/* How long a fault polls, its eviction work done, for its read to end
 * before it sleeps: the sleep and the wake-up cost a VM exit each way
 * here, 2-9 us a fault in alternated runs of bench/fault_latency, and
 * this disk's reads end 15-30 us after the work. A slower disk's reads
 * sleep after the poll. */
#define READ_SPIN_NS 50000

/* Each turn yields the CPU to any thread ready to run, so a program with
 * more threads than CPUs loses nothing to the poll (alloc_stress spinning
 * outright ran a tenth slower), and each return from the kernel posts a
 * read that has ended. Without the lock: the read is this thread's alone. */
static void spin_for_read(void) {
  uint64_t end = upg__os_now_ns() + READ_SPIN_NS;
  while (!upg__store_read_done(upg__rt.store) && upg__os_now_ns() < end) upg__os_yield();
}

/* Reads a window whose pages all have a copy while the fault does eviction
 * work: the device takes tens of microseconds over a read, time in which
 * the next faults' victims are closed and their frames punched (frames.c),
 * work that would otherwise add about a third to a major fault. Under the
 * lock on entry and exit; the window's pages are loading. Returns 0 when
 * the store cannot start the read now (the file store: unless the window
 * is one run of slots), which the caller then does. */
static int read_overlapped(upg__region_t *r, size_t first, size_t n, unsigned char *failed,
                           int *rc) {
  struct iovec iov[UPG__IOV_MAX];
  upg__handle_t handles[UPG__IOV_MAX];
  for (size_t i = 0; i < n; i++)
    if ((handles[i] = r->pte[first + i].slot) == UPG__NO_SLOT) return 0;
  upg__rt.source->frame_iov(r, first, n, iov);
  upg__unlock();
  int started = upg__store_read_begin(upg__rt.store, handles, iov, (int)n) == 0;
  upg__lock();
  if (!started) return 0;
  for (int first = 1; !upg__store_read_done(upg__rt.store) && upg__frames_step(first); first = 0)
    continue;
  upg__unlock();
  spin_for_read();
  *rc = upg__store_read_end(upg__rt.store);
  upg__lock();
  if (*rc != 0) memset(failed, 1, n);
  return 1;
}

/* Opens a loaded window, but for its marker (upg__load_next_t), which
 * stays closed, flagged: its touch asks for the next window. */
static void open_window(upg__region_t *r, size_t page, size_t n, uint32_t prot,
                        upg__load_next_t next) {
  const upg__fault_source_t *src = upg__rt.source;
  size_t marker = next.marker;
  int rc = src->publish(r, page, marker - page, prot, next.populate);
  if (rc == 0 && marker < page + n) {
    atomic_fetch_or(&r->pte[marker].word, UPG__RA_MARK);
    rc = src->publish(r, marker, 1, UPG_PROT_NONE, 0);
    if (rc == 0) rc = src->publish(r, marker + 1, page + n - marker - 1, prot, next.populate);
  }
  if (rc != 0) upg__fatal("cannot open loaded pages to the program", rc);
}

/* Marks the window's pages loading in their frames and fills them without
 * the lock; the program's view of them stays closed meanwhile. A
 * fault's read from swap does the eviction work meanwhile, or after it. */
static int fill_window(upg__region_t *r, size_t page, size_t n, const uint32_t *frames,
                       unsigned char *failed, int overlap) {
  for (size_t i = 0; i < n; i++) {
    upg__pte_t *pte = &r->pte[page + i];
    upg__rt.frames[frames[i]] = (upg__frame_t){r, page + i};
    pte->frame = frames[i];
    upg__pte_store(pte, UPG__LOADING);
  }
  upg__region_touch(r, page, n);
  upg__rt.busy_frames += n;
  int rc = 0;
  if (!overlap || !read_overlapped(r, page, n, failed, &rc)) {
    upg__unlock();
    rc = read_window(r, page, n, failed);
    upg__lock();
    if (overlap) upg__frames_refill();
  }
  upg__rt.busy_frames -= n;
  return rc;
}

/* Makes the filled pages resident; a page whose read failed goes back to
 * absent. Returns how many pages at the front loaded; *all_fresh says
 * whether they are all fresh heap pages (fresh_dirty), dirty from birth. */
static size_t settle_window(upg__region_t *r, size_t page, size_t n, const uint32_t *frames,
                            const unsigned char *failed, int *all_fresh) {
  uint32_t fresh = upg__advice_born_dirty(r) ? UPG__DIRTY : 0;
  size_t kept = n;
  *all_fresh = fresh != 0;
  for (size_t i = 0; i < n; i++) {
    upg__pte_t *pte = &r->pte[page + i];
    uint32_t dirty = pte->slot == UPG__NO_SLOT ? fresh : 0;
    if (failed[i]) {
      upg__pte_store(pte, UPG__ABSENT);
      upg__frames_release(frames[i]);
      if (kept == n) kept = i; /* open only the loaded run at the front */
      continue;
    }
    upg__pte_store(pte, UPG__RESIDENT | UPG__REFERENCED | dirty);
    if (i < kept && !dirty) *all_fresh = 0;
    upg__rt.policy->loaded(upg__rt.policy_state, frames[i]);
    upg__stats_resident(1);
  }
  upg__frames_wake_waiters();
  return kept;
}

static void mark(upg__region_t *r, size_t page, size_t n, uint32_t flag) {
  for (size_t i = 0; i < n; i++) atomic_fetch_or(&r->pte[page + i].word, flag);
}

/* A dirty page's copy in the store is stale: the eviction writes the page
 * afresh. It goes back now rather than at the eviction, so that a
 * compressed tier's pool holds only copies that can still be read back;
 * in a pool a quarter full of such copies, a quarter of the pool is lost
 * (the file store only frees its slot sooner). Under the lock. */
void upg__page_drop_stale_copies(upg__region_t *r, size_t first, size_t n) {
  upg__handle_t stale[UPG__IOV_MAX];
  int k = 0;
  for (size_t page = first; page < first + n; page++) {
    upg__pte_t *pte = &r->pte[page];
    if (pte->slot == UPG__NO_SLOT || !(atomic_load(&pte->word) & UPG__DIRTY)) continue;
    stale[k++] = pte->slot;
    pte->slot = UPG__NO_SLOT;
    if (k == UPG__IOV_MAX) upg__store_release(upg__rt.store, stale, k), k = 0;
  }
  if (k > 0) upg__store_release(upg__rt.store, stale, k);
}

/* Pages one populate call maps: between two calls the kernel's mapping
 * lock is free for the program's own mprotect and mmap calls. */
#define POPULATE_CHUNK 32

/* Makes a window of fresh heap pages real memory, mapped writable: about
 * 1.5-2 us a page in batched calls, where the program's first write of
 * each would take a kernel fault of 2-3 us (bench/mechanism). Only for a
 * heap growing in order: a scattered first touch leaves its window to
 * fault in, so that the pages it never uses cost nothing. The kernel
 * allocates only pages still open, so a page evicted meanwhile stops it
 * early and keeps no memory; and a heap region is only destroyed by
 * upg_shutdown, after the threads that call this have stopped. */
void upg__page_populate(const upg__region_t *r, size_t first, size_t n, int downwards) {
  size_t unit = upg__rt.page_size, done = 0;
  upg__unlock();
  while (done < n) {
    size_t len = n - done < POPULATE_CHUNK ? n - done : POPULATE_CHUNK;
    size_t at = downwards ? first + n - done - len : first + done;
    if (upg__os_prefault_write(r->base + at * unit, (uint64_t)len * unit) != 0) break;
    done += len;
  }
  upg__lock();
  UPG__COUNT(fresh_populated, done);
}

/* The program goes on at once, on the pages the fault opened, while the
 * prefetch thread maps the window's two halves around its marker, each
 * from the end far from the program towards it, the far half first: a
 * program that writes faster than the kernel makes pages meets the thread
 * in the middle, taking kernel faults from its own end. Done here when the
 * thread cannot take it. */
static void populate_half(upg__region_t *r, size_t first, size_t n, int downwards) {
  if (n > 0 && !upg__prefetch_populate(r, first, n, downwards))
    upg__page_populate(r, first, n, downwards);
}

static void populate(upg__region_t *r, size_t first, size_t n, size_t marker, int downwards) {
  size_t end = first + n, upper = marker < end ? marker + 1 : end;
  if (downwards) { /* the program comes down from the top */
    populate_half(r, first, marker - first, 0);
    populate_half(r, upper, end - upper, 0);
  } else {
    populate_half(r, upper, end - upper, 1);
    populate_half(r, first, marker - first, 1);
  }
}

/* A heap's growth window just opened: its pages become memory now, those
 * the source did not make so already. */
static void grew(upg__region_t *r, size_t first, size_t n, upg__load_next_t next) {
  if (upg__rt.source->caps & UPG__SOURCE_FILLS_GROWTH) UPG__COUNT(fresh_populated, n);
  else populate(r, first, n, next.marker, next.downwards);
}

/* Gives an absent page a frame and its contents, and with it the rest of a
 * readahead window; fills the frames while the program's view stays
 * closed, then opens the window. A write fault's page is dirty at once, and
 * opens writable. A prefetch takes free frames only, and nothing at all
 * when none is free. */
static int load(upg__region_t *r, size_t page, int prefetch, int access, int *loaded) {
  uint32_t frames[UPG__IOV_MAX];
  unsigned char failed[UPG__IOV_MAX] = {0};
  upg__load_plan_t plan = {.page = page,
                           .major = r->pte[page].slot != UPG__NO_SLOT,
                           .background = prefetch};
  upg__advisor.plan(r, &plan);
  /* A fault reading from swap refills during its read; the others first. */
  long frame = prefetch || plan.major ? upg__frames_take_free() : -1;
  if (frame < 0 && !prefetch) frame = upg__frames_obtain();
  if (frame < 0) return prefetch ? 0 : (int)frame;
  if (upg__pte_state(atomic_load(&r->pte[page].word)) != UPG__ABSENT) {
    upg__frames_release((size_t)frame); /* another thread loaded it meanwhile */
    return 0;
  }
  frames[0] = (uint32_t)frame;
  upg__load_done_t done = {.first = page - upg__advisor.below(r, &plan), .prot = UPG_PROT_READ};
  size_t first = done.first;
  done.n = claim_window(r, first, page - first + plan.window, frames);
  size_t ahead = upg__advisor.claimed(r, &plan, first, done.n);
  if (ahead != SIZE_MAX) upg__prefetch_request(r, ahead);
  int rc = fill_window(r, first, done.n, frames, failed, plan.major && !prefetch);
  size_t kept = done.kept = settle_window(r, first, done.n, frames, failed, &done.all_fresh);
  if (access == UPG__ACCESS_WRITE && page - first < kept) mark(r, page, 1, UPG__DIRTY);
  int presumed = 0;
  if (rc == 0) done.prot = upg__advisor.open_prot(r, first, kept, done.all_fresh, &presumed);
  if (presumed) mark(r, first, kept, UPG__DIRTY);
  upg__load_next_t next = upg__advisor.loaded(r, &plan, &done);
  if (rc != 0) return rc;
  if (prefetch) UPG__COUNT(readahead_async, kept);
  else if (kept > 1) UPG__COUNT(readahead_pages, kept - 1);
  open_window(r, first, kept, done.prot, next);
  if (prefetch && done.prot == UPG_PROT_READ) mark(r, first, kept, UPG__UNSEEN);
  upg__thrash_loaded(r, first, kept); /* before the copies go: it counts pages back from swap */
  upg__page_drop_stale_copies(r, first, kept);
  *loaded = plan.major ? UPG_TRACE_MAJOR : UPG_TRACE_ZERO;
  if (next.populate) grew(r, first, kept, next);
  return 0;
}

void upg__page_prefetch(upg__region_t *r, size_t page) {
  int loaded;
  if (upg__pte_state(atomic_load(&r->pte[page].word)) == UPG__ABSENT)
    (void)load(r, page, 1, UPG__ACCESS_UNKNOWN, &loaded); /* a failed guess costs nothing */
}

static int make_resident(upg__region_t *r, size_t page, int access, int *loaded) {
  upg__pte_t *pte = &r->pte[page];
  *loaded = -1;
  for (;;) {
    switch (upg__pte_state(atomic_load(&pte->word))) {
      case UPG__RESIDENT: return 0;
      case UPG__UNMAPPED: return UPG_ENOTREGION;
      case UPG__ABSENT: {
        int rc = load(r, page, 0, access, loaded);
        if (rc != 0) return rc;
        break;
      }
      default: /* loading or evicting in another thread */ upg__pte_wait(pte);
    }
  }
}

int upg__page_make_resident(upg__region_t *r, size_t page, int *loaded) {
  return make_resident(r, page, UPG__ACCESS_UNKNOWN, loaded);
}

int upg__page_open(upg__region_t *r, size_t page) {
  upg__pte_t *pte = &r->pte[page];
  uint32_t w = atomic_fetch_or(&pte->word, UPG__REFERENCED);
  return upg__rt.source->open(r, page, 1, (w & UPG__DIRTY) ? UPG_PROT_RW : UPG_PROT_READ);
}

/* A fault on a resident page: the hand closed it (minor), or it is a write
 * to a clean page mapped read-only, which marks it dirty; a write the
 * source reports as one does so on a closed page too, which then opens
 * writable at once. But the first fault on a page the prefetch thread
 * opened read-only may be a read that faulted while the page was still
 * closed, and reached the lock after the thread opened it: where the source
 * cannot tell a read from a write, that access is retried, and faults again
 * if it was a write. */
static int fault_resident(upg__region_t *r, size_t page, int access) {
  upg__pte_t *pte = &r->pte[page];
  uint32_t was = atomic_fetch_and(&pte->word, ~(UPG__RA_MARK | UPG__UNSEEN));
  if (was & UPG__RA_MARK)
    upg__prefetch_request(r, upg__advisor.marker_touched(r)); /* SIZE_MAX: none, dropped */
  uint32_t w = atomic_load(&pte->word), prot = upg__pte_prot(w);
  if (prot == UPG_PROT_RW) return -1; /* another thread opened it already */
  if (prot == UPG_PROT_READ && access == UPG__ACCESS_READ) return -1;
  if (prot == UPG_PROT_READ && access == UPG__ACCESS_UNKNOWN && (was & UPG__UNSEEN)) return -1;
  /* Read-only means clean: a dirty page opens read-write. */
  int dirtied = prot == UPG_PROT_READ || (access == UPG__ACCESS_WRITE && !(w & UPG__DIRTY));
  if (dirtied) {
    atomic_fetch_or(&pte->word, UPG__DIRTY);
    upg__page_drop_stale_copies(r, page, 1);
    upg__advisor.wrote(r, page);
  }
  int rc = upg__page_open(r, page);
  if (rc != 0) upg__fatal("cannot open a resident page to the program", rc);
  return dirtied ? UPG_TRACE_WRITE : UPG_TRACE_MINOR;
}

static void count_fault(int kind) {
  switch (kind) {
    case UPG_TRACE_ZERO: UPG__COUNT(fault_zero, 1); break;
    case UPG_TRACE_MINOR: UPG__COUNT(fault_minor, 1); break;
    case UPG_TRACE_WRITE: UPG__COUNT(fault_write, 1); break;
    case UPG_TRACE_MAJOR: UPG__COUNT(fault_major, 1); break;
  }
}

upg__fault_result_t upg__fault(void *addr, int access) {
  uint64_t start = upg__os_now_ns();
  /* A child of fork() before its atfork hook: see runtime.c. */
  if (atomic_load(&upg__rt.forking) && upg__os_getpid() != upg__rt.pid) return UPG__FAULT_NOT_OURS;
  upg__lock();
  upg__region_t *r = upg__rt.running ? upg__region_find(addr) : NULL;
  size_t page = r != NULL ? upg__region_page(r, addr) : 0;
  if (r == NULL || upg__pte_state(atomic_load(&r->pte[page].word)) == UPG__UNMAPPED) {
    upg__unlock();
    return UPG__FAULT_NOT_OURS;
  }
  uint32_t arrived = upg__pte_state(atomic_load(&r->pte[page].word));
  if (arrived != UPG__RESIDENT && arrived != UPG__ABSENT) UPG__COUNT(fault_wait, 1);
  /* Where a major fault's page comes from, for its latency's histogram. */
  int in_memory = arrived == UPG__ABSENT && r->pte[page].slot != UPG__NO_SLOT &&
                  upg__store_in_memory(upg__rt.store, r->pte[page].slot);
  int kind, rc = make_resident(r, page, access, &kind);
  if (rc != 0) upg__fatal("cannot bring in a page for a fault on paged memory", rc);
  if (kind >= 0) {
    rc = upg__page_open(r, page);
    if (rc != 0) upg__fatal("cannot open a loaded page to the program", rc);
  } else if (arrived == UPG__RESIDENT || access == UPG__ACCESS_WRITE ||
             upg__pte_prot(atomic_load(&r->pte[page].word)) == UPG_PROT_NONE) {
    kind = fault_resident(r, page, access);
  }
  /* Otherwise another thread brought the page in while this one waited,
   * and opened it: a read, or an access the source could not tell, is
   * simply retried, and faults again if it was a write to a clean page. */
  if (kind >= 0) upg__trace_fault(r, page, kind);
  /* A load has refilled already, before it took its frame; after it, the
   * page just loaded could be the victim, and the access would fault again. */
  if (kind != UPG_TRACE_ZERO && kind != UPG_TRACE_MAJOR) upg__frames_refill();
  upg__unlock();
  upg__trace_flush();
  count_fault(kind);
  uint64_t ns = upg__os_now_ns() - start;
  upg__stats_fault_latency(ns);
  if (kind == UPG_TRACE_MAJOR) upg__stats_source_latency(in_memory, ns);
  return UPG__FAULT_HANDLED;
}

/* Closes pages [first, first+n) and gives their frames' memory back: one
 * close and one free for the run. They then read as zeros. */
static int drop_memory(upg__region_t *r, size_t first, size_t n) {
  int rc = upg__rt.source->close(r, first, n);
  upg__page_run_t run = {r, first, n};
  return rc != 0 ? rc : upg__rt.source->free(&run, 1);
}

static void forget_page(upg__region_t *r, size_t page, int had_data) {
  upg__pte_t *pte = &r->pte[page];
  if (pte->slot != UPG__NO_SLOT) upg__store_release(upg__rt.store, &pte->slot, 1);
  pte->slot = UPG__NO_SLOT;
  upg__pte_store(pte, UPG__ABSENT);
  if (had_data) UPG__COUNT(discards, 1);
}

int upg__page_discard(upg__region_t *r, size_t page, int flags) {
  upg__pte_t *pte = &r->pte[page];
  uint32_t w;
  while (upg__pte_state(w = atomic_load(&pte->word)) == UPG__LOADING ||
         upg__pte_state(w) == UPG__EVICTING)
    upg__pte_wait(pte);
  if (upg__pte_state(w) == UPG__UNMAPPED) return 0;
  int had_data = upg__pte_state(w) == UPG__RESIDENT || pte->slot != UPG__NO_SLOT;
  if (upg__pte_state(w) == UPG__RESIDENT) {
    if (upg__pte_pins(w) != 0) {
      if (!(flags & UPG__DISCARD_PINNED)) return UPG_EBUSY;
      upg__rt.pinned_pages--;
      UPG__COUNT(pages_pinned, -1);
    }
    int rc = flags & UPG__DISCARD_UNMAPPING ? 0 : drop_memory(r, page, 1);
    if (rc != 0) return rc;
    upg__frames_discard(r, page);
  }
  forget_page(r, page, had_data);
  return 0;
}

static int resident_unpinned(const upg__region_t *r, size_t page) {
  uint32_t w = atomic_load(&r->pte[page].word);
  return upg__pte_state(w) == UPG__RESIDENT && upg__pte_pins(w) == 0;
}

/* A run of resident, unpinned pages leaves with one close and one hole: a
 * program freeing a large block would otherwise pay both for every page. */
static int discard_resident_run(upg__region_t *r, size_t first, size_t n) {
  int rc = drop_memory(r, first, n);
  if (rc != 0) return rc;
  for (size_t page = first; page < first + n; page++) {
    upg__frames_discard(r, page);
    forget_page(r, page, 1);
  }
  return 0;
}

int upg__page_discard_range(upg__region_t *r, size_t first, size_t end) {
  int rc = 0;
  for (size_t page = first; rc == 0 && page < end;) {
    size_t n = 0;
    while (page + n < end && resident_unpinned(r, page + n)) n++;
    rc = n > 0 ? discard_resident_run(r, page, n) : upg__page_discard(r, page, 0);
    page += n > 0 ? n : 1;
  }
  return rc;
}
