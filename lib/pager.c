/* pager.c: the pager core: resolving a fault and the page transitions
 * (absent -> loading -> resident -> evicting -> absent) that every path
 * shares. All of it runs under the runtime lock, which is dropped only
 * around swap I/O while the page is marked busy. Async-signal-safe: no
 * malloc, no stdio. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* Fresh heap pages a first touch maps at once, the faulting one and those
 * around it that were never loaded either, while free frames are plenty (a
 * quarter of the budget): a heap grows into its pages in bursts, and each
 * first touch would otherwise cost a signal. It is readahead for zero
 * pages: a readahead limit below it, or UPG_ADV_RANDOM, turns it off. */
#define FAULT_AROUND 16

/* Most pages one window takes while a heap grows in order, upwards or
 * downwards: it doubles as the run goes on, like readahead, but the pages
 * need no I/O, so only the window's frame array bounds it. Each window
 * costs a signal and three system calls; 1 MiB windows make that a few
 * percent of mapping the pages (bench/mechanism). */
#define GROWTH_MAX UPG__IOV_MAX

static int fault_around(const upg__region_t *r, size_t page) {
  return r->fresh_dirty && r->access != UPG_ADV_RANDOM && upg__rt.cfg.readahead >= FAULT_AROUND &&
         r->pte[page].slot == UPG__NO_SLOT && 4 * upg__rt.free_count >= upg__rt.nframes;
}

static int fresh(const upg__region_t *r, size_t page) {
  return atomic_load(&r->pte[page].word) == UPG__ABSENT && r->pte[page].slot == UPG__NO_SLOT;
}

static int resident(const upg__region_t *r, size_t page) {
  return upg__pte_state(atomic_load(&r->pte[page].word)) == UPG__RESIDENT;
}

/* Resident memory below which a heap is not yet growing in bulk: a young
 * heap's first windows hold the allocator's metadata and the odd small
 * block, and most of their pages stay untouched. */
#define POPULATE_AFTER ((uint64_t)4 << 20)

/* A first touch of a fresh heap page right beside a resident one, in a
 * heap past its first megabytes: the heap is growing in order, upwards or
 * downwards, and will write every page it opens. Other faults look no
 * further than the first test. */
static int continues_resident(const upg__region_t *r, size_t page) {
  if (!r->fresh_dirty || r->pte[page].slot != UPG__NO_SLOT) return 0;
  uint64_t resident_bytes = atomic_load_explicit(&upg__rt.counters.pages_resident, memory_order_relaxed)
                            << upg__rt.page_shift;
  return resident_bytes >= POPULATE_AFTER &&
         ((page > 0 && resident(r, page - 1)) || (page + 1 < r->npages && resident(r, page + 1)));
}

/* The fresh pages right after `page`, with it; and right before it, which
 * a heap that fills its blocks downwards (GNU sort's line table) touches
 * next. Both under the lock, the second once the frame is taken. */
static size_t fresh_pages_after(const upg__region_t *r, size_t page) {
  if (!fault_around(r, page)) return 1;
  size_t n = 1;
  while (n < FAULT_AROUND && page + n < r->npages && fresh(r, page + n)) n++;
  return n;
}

/* The last window doubled, but no larger than max: a run's next window. */
static size_t doubled_window(const upg__region_t *r, size_t max) {
  size_t w = 2 * r->ra_window;
  return w < max ? w : max;
}

static size_t fresh_pages_before(const upg__region_t *r, size_t page, size_t window, int growing) {
  if (!fault_around(r, page)) return 0;
  int below_last = page + 1 + r->ra_window == r->ra_next;
  size_t want = growing && below_last ? doubled_window(r, GROWTH_MAX) : FAULT_AROUND;
  size_t n = 0;
  while (n + window < want && n < page && fresh(r, page - n - 1)) n++;
  return n;
}

/* How many pages a fault at `page` loads: one for a random access; for a
 * sequential run a window that doubles with each fault in the run, up to
 * the readahead limit, or up to GROWTH_MAX for a heap growing in order,
 * whose pages need no I/O; for a fresh heap page, its fresh neighbours too.
 * upg_advise can fix either of the first two answers for a region. */
static size_t readahead_window(upg__region_t *r, size_t page, int growing) {
  size_t max = upg__rt.cfg.readahead;
  if (r->access == UPG_ADV_RANDOM || max <= 1) return 1;
  if (r->access == UPG_ADV_SEQUENTIAL) return max;
  if (page != r->ra_next) return fresh_pages_after(r, page);
  return doubled_window(r, growing ? GROWTH_MAX : max);
}

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

/* The alias of pages [first, first+n), a buffer a page. */
static void alias_iov(const upg__region_t *r, size_t first, size_t n, struct iovec *iov) {
  size_t unit = upg__rt.page_size;
  for (size_t k = 0; k < n; k++) iov[k] = (struct iovec){r->alias + (first + k) * unit, unit};
}

/* Reads the pages of [first, first+n) that have a copy in the store, in one
 * get, into the alias. Without the lock. On failure every one of them is
 * marked in failed[]; returns the error if the first page is one. */
static int read_window(upg__region_t *r, size_t first, size_t n, unsigned char *failed) {
  struct iovec iov[UPG__IOV_MAX];
  upg__handle_t handles[UPG__IOV_MAX];
  size_t who[UPG__IOV_MAX], k = 0;
  for (size_t i = 0; i < n; i++) {
    if (r->pte[first + i].slot == UPG__NO_SLOT) continue; /* the memfd hole reads as zeros */
    alias_iov(r, first + i, 1, &iov[k]);
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
  alias_iov(r, first, n, iov);
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

/* Writable windows in a row before one opens read-only again, to see
 * whether the program still writes. */
#define RW_STREAK_MAX 8

/* A program writing its way through a region: it wrote most of the last
 * window. Its next window opens read-write and dirty at once, sparing a
 * write fault a page; a program that only reads never gets there. */
static int writing_sequentially(upg__region_t *r, size_t page, size_t n) {
  int rw = n > 1 && page == r->ra_next && r->ra_window > 1 && 2 * r->ra_written > r->ra_window &&
           r->ra_rw_streak < RW_STREAK_MAX;
  r->ra_rw_streak = rw ? r->ra_rw_streak + 1 : 0;
  return rw;
}

/* Opens a loaded window. A window read from swap in a sequential run keeps
 * its middle page closed, marked: the program's touch of it starts the read
 * of the next window in the background (prefetch.c). So does a window of a
 * heap growing in order, whose next window is opened and its memory made
 * in the background; other windows of zero pages get no marker. Returns
 * the marker, or page + n. */
static size_t open_window(upg__region_t *r, size_t page, size_t n, uint32_t prot, int ahead) {
  size_t marker = ahead && n >= 4 && r->access != UPG_ADV_RANDOM ? page + n / 2 : page + n;
  int rc = upg__pte_protect_run(r, page, marker - page, prot);
  if (rc == 0 && marker < page + n) {
    atomic_fetch_or(&r->pte[marker].word, UPG__RA_MARK);
    rc = upg__pte_protect_run(r, marker + 1, page + n - marker - 1, prot);
  }
  if (rc != 0) upg__fatal("cannot open loaded pages to the program", rc);
  return marker;
}

/* Marks the window's pages loading in their frames and fills the alias
 * without the lock; the program's view of them stays closed meanwhile. A
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
  uint32_t fresh = r->fresh_dirty ? UPG__DIRTY : 0;
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

/* Loads a round of the write predictor judges, and the share of them the
 * program must write (7/8) for the next round's loads to open writable. */
#define WP_ROUND 64
#define WP_SAMPLE 8 /* while presuming, one load in 8 still opens read-only */

/* A program that writes nearly every page it loads at random (an update
 * of scattered records) pays a write fault for each: a signal and an
 * mprotect, where writing back a page that stayed clean costs one slot of
 * a batched write. So when the last round's single-page loads opened
 * read-only were nearly all written, such loads open writable and dirty,
 * but for a sample that keeps the measure going; a program that only reads
 * never gets there, and its clean pages still leave without I/O.
 * Sequential windows have their own judge (writing_sequentially). */
static int writes_what_it_loads(upg__region_t *r) {
  return r->wp_presume && ++r->wp_sample % WP_SAMPLE != 0;
}

static void wp_note_read_only_load(upg__region_t *r) {
  if (++r->wp_loads < WP_ROUND) return;
  r->wp_presume = 8 * r->wp_writes >= 7 * r->wp_loads;
  r->wp_loads = r->wp_writes = 0;
}

static void mark(upg__region_t *r, size_t page, size_t n, uint32_t flag) {
  for (size_t i = 0; i < n; i++) atomic_fetch_or(&r->pte[page + i].word, flag);
}

/* The protection a loaded window opens with: writable when its pages are
 * fresh heap pages, or the program is writing its way through the region,
 * or it writes what it loads (then presumed dirty); read-only otherwise, so
 * a write sets the bit. */
static uint32_t window_prot(upg__region_t *r, size_t page, size_t kept, int all_fresh) {
  int writing = writing_sequentially(r, page, kept);
  if (all_fresh) return UPG_PROT_RW;
  if (writing) {
    mark(r, page, kept, UPG__DIRTY);
    UPG__COUNT(readahead_dirty, kept);
    return UPG_PROT_RW;
  }
  if (kept == 1 && writes_what_it_loads(r)) {
    mark(r, page, kept, UPG__DIRTY);
    UPG__COUNT(load_dirty, kept);
    return UPG_PROT_RW;
  }
  if (kept == 1) wp_note_read_only_load(r);
  return UPG_PROT_READ;
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

static void populate(upg__region_t *r, size_t first, size_t n, size_t marker) {
  size_t end = first + n, upper = marker < end ? marker + 1 : end;
  if (r->ra_down) { /* the program comes down from the top */
    populate_half(r, first, marker - first, 0);
    populate_half(r, upper, end - upper, 0);
  } else {
    populate_half(r, upper, end - upper, 1);
    populate_half(r, first, marker - first, 1);
  }
}

/* The page whose load the marker's touch asks for: the window after the
 * last one, or before it when the heap grows downwards. */
static size_t next_window(const upg__region_t *r) {
  size_t below = r->ra_next - r->ra_window;
  return !r->ra_down ? r->ra_next : below > 0 ? below - 1 : SIZE_MAX;
}

/* Gives an absent page a frame and its contents, and with it the rest of a
 * readahead window; fills the alias while the program's view stays closed,
 * then opens the window. A prefetch takes free frames only, and nothing at
 * all when none is free. */
static int load(upg__region_t *r, size_t page, int prefetch, int *loaded) {
  uint32_t frames[UPG__IOV_MAX];
  unsigned char failed[UPG__IOV_MAX] = {0};
  int growing = continues_resident(r, page);
  size_t window = readahead_window(r, page, growing && fault_around(r, page));
  /* A fault reading from swap refills during its read; the others first. */
  int major = r->pte[page].slot != UPG__NO_SLOT, all_fresh;
  long frame = prefetch || major ? upg__frames_take_free() : -1;
  if (frame < 0 && !prefetch) frame = upg__frames_obtain();
  if (frame < 0) return prefetch ? 0 : (int)frame;
  if (upg__pte_state(atomic_load(&r->pte[page].word)) != UPG__ABSENT) {
    upg__frames_release((size_t)frame); /* another thread loaded it meanwhile */
    return 0;
  }
  frames[0] = (uint32_t)frame;
  size_t below = page == r->ra_next ? 0 : fresh_pages_before(r, page, window, growing);
  size_t first = page - below;
  size_t n = claim_window(r, first, below + window, frames);
  int rc = fill_window(r, first, n, frames, failed, major && !prefetch);
  size_t kept = settle_window(r, first, n, frames, failed, &all_fresh);
  uint32_t prot = rc == 0 ? window_prot(r, first, kept, all_fresh) : UPG_PROT_READ;
  int grown = all_fresh && growing && kept > 1;
  r->ra_next = first + n;
  r->ra_window = n;
  r->ra_written = prot == UPG_PROT_RW ? n : 0; /* unseen, but presumed */
  r->ra_down = grown && page - first >= n / 2;
  if (rc != 0) return rc;
  if (prefetch) UPG__COUNT(readahead_async, kept);
  else if (kept > 1) UPG__COUNT(readahead_pages, kept - 1);
  size_t marker = open_window(r, first, kept, prot, major || grown);
  if (prefetch && prot == UPG_PROT_READ) mark(r, first, kept, UPG__UNSEEN);
  upg__thrash_loaded(r, first, kept);
  *loaded = major ? UPG_TRACE_MAJOR : UPG_TRACE_ZERO;
  if (grown) populate(r, first, kept, marker);
  return 0;
}

void upg__page_prefetch(upg__region_t *r, size_t page) {
  int loaded;
  if (upg__pte_state(atomic_load(&r->pte[page].word)) == UPG__ABSENT)
    (void)load(r, page, 1, &loaded); /* a failed guess costs nothing */
}

int upg__page_make_resident(upg__region_t *r, size_t page, int *loaded) {
  upg__pte_t *pte = &r->pte[page];
  *loaded = -1;
  for (;;) {
    switch (upg__pte_state(atomic_load(&pte->word))) {
      case UPG__RESIDENT:
        return 0;
      case UPG__UNMAPPED:
        return UPG_ENOTREGION;
      case UPG__ABSENT: {
        int rc = load(r, page, 0, loaded);
        if (rc != 0) return rc;
        break;
      }
      default: /* loading or evicting in another thread */
        upg__pte_wait(pte);
    }
  }
}

int upg__page_open(upg__region_t *r, size_t page) {
  upg__pte_t *pte = &r->pte[page];
  uint32_t w = atomic_fetch_or(&pte->word, UPG__REFERENCED);
  return upg__pte_protect(r, page, (w & UPG__DIRTY) ? UPG_PROT_RW : UPG_PROT_READ);
}

/* A fault on a resident page: the hand closed it (minor), or it is a write
 * to a clean page mapped read-only, which marks it dirty. But the first
 * fault on a page the prefetch thread opened read-only may be a read that
 * faulted while the page was still closed, and reached the lock after the
 * thread opened it: the runtime cannot tell a read from a write, so that
 * access is retried, and faults again if it was a write. */
static int fault_resident(upg__region_t *r, size_t page) {
  upg__pte_t *pte = &r->pte[page];
  uint32_t was = atomic_fetch_and(&pte->word, ~(UPG__RA_MARK | UPG__UNSEEN));
  if (was & UPG__RA_MARK) {
    /* The marker sits halfway: the writes seen in the first half stand for
     * the whole window when the next one is opened. */
    r->ra_written *= 2;
    upg__prefetch_request(r, next_window(r)); /* SIZE_MAX: none, dropped */
  }
  uint32_t prot = upg__pte_prot(atomic_load(&pte->word));
  if (prot == UPG_PROT_RW) return -1; /* another thread opened it already */
  if (prot == UPG_PROT_READ && (was & UPG__UNSEEN)) return -1;
  if (prot == UPG_PROT_READ) {
    atomic_fetch_or(&pte->word, UPG__DIRTY);
    if (page < r->ra_next && page + r->ra_window >= r->ra_next) r->ra_written++;
    r->wp_writes++;
  }
  int rc = upg__page_open(r, page);
  if (rc != 0) upg__fatal("cannot open a resident page to the program", rc);
  return prot == UPG_PROT_READ ? UPG_TRACE_WRITE : UPG_TRACE_MINOR;
}

static void count_fault(int kind) {
  switch (kind) {
    case UPG_TRACE_ZERO: UPG__COUNT(fault_zero, 1); break;
    case UPG_TRACE_MINOR: UPG__COUNT(fault_minor, 1); break;
    case UPG_TRACE_WRITE: UPG__COUNT(fault_write, 1); break;
    case UPG_TRACE_MAJOR: UPG__COUNT(fault_major, 1); break;
  }
}

upg__fault_result_t upg__fault(void *addr) {
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
  int kind, rc = upg__page_make_resident(r, page, &kind);
  if (rc != 0) upg__fatal("cannot bring in a page for a fault on paged memory", rc);
  if (kind >= 0) {
    rc = upg__page_open(r, page);
    if (rc != 0) upg__fatal("cannot open a loaded page to the program", rc);
  } else if (arrived == UPG__RESIDENT ||
             upg__pte_prot(atomic_load(&r->pte[page].word)) == UPG_PROT_NONE) {
    kind = fault_resident(r, page);
  }
  /* Otherwise another thread brought the page in while this one waited,
   * and opened it: whether this access was a write is unknown, so it is
   * simply retried, and faults again if it was a write to a clean page. */
  if (kind >= 0) upg__trace_fault(r, page, kind);
  /* A load has refilled already, before it took its frame; after it, the
   * page just loaded could be the victim, and the access would fault again. */
  if (kind != UPG_TRACE_ZERO && kind != UPG_TRACE_MAJOR) upg__frames_refill();
  upg__unlock();
  upg__trace_flush();
  count_fault(kind);
  upg__stats_fault_latency(upg__os_now_ns() - start);
  return UPG__FAULT_HANDLED;
}

/* Closes pages [first, first+n) and gives their frames' memory back: one
 * mprotect and one hole for the run. The hole reads as zeros. */
static int drop_memory(upg__region_t *r, size_t first, size_t n) {
  int rc = upg__pte_protect_run(r, first, n, UPG_PROT_NONE);
  return rc != 0 ? rc : upg__region_drop(r, first, n);
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
