/* advisor_window.c: how many pages a fault loads and from where. Readahead:
 * a window that doubles along a sequential run, with a marker in its
 * middle whose touch reads the next one in the background. Fault-around:
 * a fresh heap page's fresh neighbours come with it. A heap growing in
 * order: windows that double up to GROWTH_MAX, their memory made at once.
 * Also the sequential writer's judge, which reads the window's writes.
 * Owns the ra_* fields of upg__advice_t. Under the lock, in the fault
 * handler. */
#define _GNU_SOURCE

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

/* Resident memory below which a heap is not yet growing in bulk: a young
 * heap's first windows hold the allocator's metadata and the odd small
 * block, and most of their pages stay untouched. */
#define POPULATE_AFTER ((uint64_t)4 << 20)

/* Writable windows in a row before one opens read-only again, to see
 * whether the program still writes. */
#define RW_STREAK_MAX 8

static int fault_around(const upg__region_t *r, size_t page) {
  const upg__advice_t *a = &r->advice;
  return a->fresh_dirty && a->access != UPG_ADV_RANDOM && upg__rt.cfg.readahead >= FAULT_AROUND &&
         r->pte[page].slot == UPG__NO_SLOT && 4 * upg__rt.free_count >= upg__rt.nframes;
}

static int fresh(const upg__region_t *r, size_t page) {
  return atomic_load(&r->pte[page].word) == UPG__ABSENT && r->pte[page].slot == UPG__NO_SLOT;
}

static int resident(const upg__region_t *r, size_t page) {
  return upg__pte_state(atomic_load(&r->pte[page].word)) == UPG__RESIDENT;
}

/* A first touch of a fresh heap page right beside a resident one, in a
 * heap past its first megabytes: the heap is growing in order, upwards or
 * downwards, and will write every page it opens. Other faults look no
 * further than the first test. */
static int continues_resident(const upg__region_t *r, size_t page) {
  if (!r->advice.fresh_dirty || r->pte[page].slot != UPG__NO_SLOT) return 0;
  uint64_t resident_bytes = UPG__GET(pages_resident) << upg__rt.page_shift;
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
  size_t w = 2 * r->advice.ra_window;
  return w < max ? w : max;
}

static size_t fresh_pages_before(const upg__region_t *r, size_t page, size_t window, int growing) {
  if (!fault_around(r, page)) return 0;
  int below_last = page + 1 + r->advice.ra_window == r->advice.ra_next;
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
static size_t readahead_window(const upg__region_t *r, size_t page, int growing) {
  size_t max = upg__rt.cfg.readahead;
  if (r->advice.access == UPG_ADV_RANDOM || max <= 1) return 1;
  if (r->advice.access == UPG_ADV_SEQUENTIAL) return max;
  if (page != r->advice.ra_next) return fresh_pages_after(r, page);
  return doubled_window(r, growing ? GROWTH_MAX : max);
}

void upg__window_plan(upg__region_t *r, upg__load_plan_t *plan) {
  plan->growing = continues_resident(r, plan->page);
  plan->window = readahead_window(r, plan->page, plan->growing && fault_around(r, plan->page));
}

size_t upg__window_below(upg__region_t *r, const upg__load_plan_t *plan) {
  if (plan->page == r->advice.ra_next) return 0;
  return fresh_pages_before(r, plan->page, plan->window, plan->growing);
}

/* A fault's window in a sequential run the program only reads has the
 * window after it loaded in the background at once, beside its own read,
 * so that two windows load at a time, one on each CPU. A marker's request
 * alone keeps one load at a time: a program that reads faster than the
 * store answers reaches the next window before the thread starts it, and
 * loads it on the fault path. The run's record moves past the window now,
 * so the background load continues the run; the fault's window gets no
 * marker (the one after has its own, for a program slower than the
 * loads). */
size_t upg__window_claimed(upg__region_t *r, upg__load_plan_t *plan, size_t first, size_t n) {
  upg__advice_t *a = &r->advice;
  if (plan->background || !plan->major || plan->growing || plan->window <= 1 ||
      a->access == UPG_ADV_RANDOM || a->ra_written > 0 || a->ra_rw_streak > 0)
    return SIZE_MAX;
  plan->ahead = 1;
  a->ra_next = first + n;
  a->ra_window = n;
  a->ra_down = 0;
  return first + n;
}

/* A window read from swap in a sequential run keeps its middle page
 * closed, marked: the program's touch of it starts the read of the next
 * window in the background (prefetch.c). So does a window of a heap
 * growing in order, whose next window is opened and its memory made in the
 * background; other windows of zero pages get no marker. */
upg__load_next_t upg__window_loaded(upg__region_t *r, const upg__load_plan_t *plan,
                                    const upg__load_done_t *done) {
  upg__advice_t *a = &r->advice;
  if (plan->ahead) return (upg__load_next_t){.marker = done->first + done->kept};
  int grown = done->all_fresh && plan->growing && done->kept > 1;
  a->ra_next = done->first + done->n;
  a->ra_window = done->n;
  a->ra_written = done->prot == UPG_PROT_RW ? done->n : 0; /* unseen, but presumed */
  a->ra_down = grown && plan->page - done->first >= done->n / 2;
  int ahead = (plan->major || grown) && done->kept >= 4 && a->access != UPG_ADV_RANDOM;
  size_t marker = done->first + (ahead ? done->kept / 2 : done->kept);
  return (upg__load_next_t){.marker = marker, .populate = grown, .downwards = a->ra_down};
}

/* A program writing its way through a region: it wrote most of the last
 * window. Its next window opens read-write and dirty at once, sparing a
 * write fault a page; a program that only reads never gets there. Called
 * at each successful load of n pages from `page`. */
int upg__window_writing(upg__region_t *r, size_t page, size_t n) {
  upg__advice_t *a = &r->advice;
  int rw = n > 1 && page == a->ra_next && a->ra_window > 1 && 2 * a->ra_written > a->ra_window &&
           a->ra_rw_streak < RW_STREAK_MAX;
  a->ra_rw_streak = rw ? a->ra_rw_streak + 1 : 0;
  return rw;
}

void upg__window_wrote(upg__region_t *r, size_t page) {
  upg__advice_t *a = &r->advice;
  if (page < a->ra_next && page + a->ra_window >= a->ra_next) a->ra_written++;
}

/* The marker sits halfway: the writes seen in the first half stand for the
 * whole window when the next one is opened. The window asked for is the
 * one after the last, or before it when the heap grows downwards. */
size_t upg__window_marker_touched(upg__region_t *r) {
  upg__advice_t *a = &r->advice;
  a->ra_written *= 2;
  size_t below = a->ra_next - a->ra_window;
  return !a->ra_down ? a->ra_next : below > 0 ? below - 1 : SIZE_MAX;
}
