/* frames.c: the frame budget. A frame is one paging unit of resident
 * memory; there are budget/page_size of them and every page that is
 * loading, resident or evicting holds one, so the budget is never exceeded.
 * This file hands out frames, evicts victims in batches (one protection
 * change and one punched hole a run of pages, one write a run of swap
 * slots), closing and freeing them through the fault source.
 *
 * A batch changes page tables twice, closing the victims' views and
 * punching their frames, and each change makes the kernel interrupt every
 * other CPU that runs the process to flush its TLB: a VM exit on both sides.
 * Done from a background thread, those changes land while the program runs
 * on the other CPU, and they cost more than the thread saves. So the fault
 * path makes both changes itself (its own CPU's flush is cheap) and only
 * the write, which touches no page table, goes to the writer thread
 * (evictor.c): a batch is chosen and closed on the fault path, written by
 * the thread, and finished (punched, its frames freed) by the next fault
 * that needs a frame or waits on one of its pages; a batch of a few long
 * runs, whose holes cost a flush a run, the thread finishes itself.
 *
 * The fault path hides that work where it can: a fault reading from swap
 * does it in steps while the device reads (upg__frames_step), a run of
 * holes or a small batch at a time, so that the next faults find their
 * frames free.
 *
 * Its state is upg__rt's frame fields and upg__rt.frames_part, whose
 * tables (the batches in flight, the pages to close) it makes with the
 * frame table and frees with it. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "internal.h"

/* Victims one batch takes; their write is one I/O a run of slots. */
#define MAX_BATCH 64
_Static_assert(MAX_BATCH <= UPG__IOV_MAX, "a batch is one store call");

typedef struct victim {
  upg__region_t *region;
  size_t page;
  uint32_t frame;
  int dirty;          /* to be written: its copy in the store is stale */
  upg__handle_t slot; /* the copy written, for a dirty victim */
  int rc;             /* 0, or why the page stays resident */
} victim_t;

typedef struct batch {
  size_t n;
  victim_t v[MAX_BATCH];
} batch_t;

/* Batches in flight to the writer thread, each in one state. */
enum { SLOT_FREE, SLOT_PREPARING, SLOT_QUEUED, SLOT_WRITING, SLOT_WRITTEN, SLOT_REAPING };
#define MAX_IN_FLIGHT 4
struct upg__flight {
  int state;
  size_t reaped; /* victims of a written batch already punched and settled */
  batch_t b;
};

/* Pages whose reference bit the hand cleared and that are still to be
 * closed: closing them together lets neighbours share one mprotect. */
#define MAX_PENDING_CLOSE 256
struct upg__pending {
  size_t n;
  upg__frame_t page[MAX_PENDING_CLOSE];
};

/* This file's part of the runtime. */
#define F (&upg__rt.frames_part)
#define FLIGHT_BYTES (MAX_IN_FLIGHT * sizeof(struct upg__flight))

/* ---- the arrays this file orders and cuts into runs ---------------------*/

/* Sorts base[0..n) so that no element is `before` one ahead of it. By
 * insertion: the arrays are small (a batch, the pending pages) and mostly
 * in order already. */
#define SORT_ELEMENT_MAX 32
static void sort_small(void *base, size_t n, size_t size,
                       int (*before)(const void *a, const void *b)) {
  _Alignas(16) unsigned char held[SORT_ELEMENT_MAX];
  char *p = base;
  for (size_t i = 1; i < n; i++) {
    memcpy(held, p + i * size, size);
    size_t j = i;
    for (; j > 0 && before(held, p + (j - 1) * size); j--)
      memcpy(p + j * size, p + (j - 1) * size, size);
    memcpy(p + j * size, held, size);
  }
}

/* The length of the run from element i of base[0..n) in which each
 * element `follows` the one before it. */
static size_t run_length(const void *base, size_t n, size_t size, size_t i,
                         int (*follows)(const void *prev, const void *next)) {
  const char *p = (const char *)base + i * size;
  size_t len = 1;
  while (i + len < n && follows(p + (len - 1) * size, p + len * size)) len++;
  return len;
}

int upg__frames_create(size_t nframes) {
  upg__rt.frames = upg__os_alloc(nframes * sizeof(upg__frame_t));
  upg__rt.free_frames = upg__os_alloc(nframes * sizeof(uint32_t));
  upg__rt.lent_frames = upg__os_alloc(nframes * sizeof(uint32_t));
  if (upg__rt.frames == NULL || upg__rt.free_frames == NULL || upg__rt.lent_frames == NULL)
    goto fail;
  upg__rt.lent_count = 0;
  upg__rt.lend_owed = upg__rt.lend_cancelled = 0;
  upg__rt.nframes = nframes;
  upg__rt.free_count = nframes; /* all unused: a big budget costs nothing until used */
  upg__rt.next_unused = 0;
  upg__rt.busy_frames = upg__rt.pinned_pages = 0;
  F->flight = upg__os_alloc(FLIGHT_BYTES);
  F->pending = upg__os_alloc(sizeof *F->pending);
  if (F->flight == NULL || F->pending == NULL) goto fail;
  if (upg__staging_create(nframes) != 0) goto fail;
  if (upg__rt.policy->create(nframes, &upg__rt.policy_state) == 0) return 0;
  upg__staging_destroy();
fail:
  upg__os_free(upg__rt.frames, nframes * sizeof(upg__frame_t));
  upg__os_free(upg__rt.free_frames, nframes * sizeof(uint32_t));
  upg__os_free(upg__rt.lent_frames, nframes * sizeof(uint32_t));
  upg__os_free(F->flight, FLIGHT_BYTES);
  upg__os_free(F->pending, sizeof *F->pending);
  *F = (upg__frames_part_t){0};
  return -ENOMEM;
}

void upg__frames_destroy(void) {
  upg__rt.policy->destroy(upg__rt.policy_state);
  upg__staging_destroy();
  upg__os_free(upg__rt.frames, upg__rt.nframes * sizeof(upg__frame_t));
  upg__os_free(upg__rt.free_frames, upg__rt.nframes * sizeof(uint32_t));
  upg__os_free(upg__rt.lent_frames, upg__rt.nframes * sizeof(uint32_t));
  upg__os_free(F->flight, FLIGHT_BYTES);
  upg__os_free(F->pending, sizeof *F->pending);
  *F = (upg__frames_part_t){0};
  upg__rt.frames = NULL;
  upg__rt.free_frames = NULL;
  upg__rt.lent_frames = NULL;
  upg__rt.nframes = 0;
}

static upg__pte_t *frame_pte(size_t frame) {
  upg__frame_t *f = &upg__rt.frames[frame];
  return f->region == NULL ? NULL : &f->region->pte[f->page];
}

static int frame_evictable(void *ctx, size_t frame) {
  (void)ctx;
  upg__pte_t *pte = frame_pte(frame);
  if (pte == NULL) return 0;
  uint32_t w = atomic_load(&pte->word);
  return upg__pte_state(w) == UPG__RESIDENT && upg__pte_pins(w) == 0;
}

static int page_before(const void *pa, const void *pb) {
  const upg__frame_t *a = pa, *b = pb;
  return a->region != b->region ? a->region < b->region : a->page < b->page;
}

static int page_follows(const void *pa, const void *pb) {
  const upg__frame_t *a = pa, *b = pb;
  return b->region == a->region && b->page == a->page + 1;
}

/* Closes the pending pages, one close a run of neighbours still open and
 * resident. If the kernel refuses, a page stays open and merely loses its
 * bit. Until then a touch goes unseen, for one batch of victim choices. */
static void close_pending(void) {
  upg__frame_t *p = F->pending->page;
  sort_small(p, F->pending->n, sizeof p[0], page_before);
  for (size_t i = 0, n; i < F->pending->n; i += n) {
    n = run_length(p, F->pending->n, sizeof p[0], i, page_follows);
    (void)upg__rt.source->close(p[i].region, p[i].page, n);
  }
  F->pending->n = 0;
}

/* Clearing the bit also closes the page, so its next touch is a minor
 * fault that sets the bit again: the reference bit the hardware would keep. */
static int frame_test_clear_referenced(void *ctx, size_t frame) {
  (void)ctx;
  upg__frame_t *f = &upg__rt.frames[frame];
  upg__pte_t *pte = &f->region->pte[f->page];
  if (!(atomic_fetch_and(&pte->word, ~UPG__REFERENCED) & UPG__REFERENCED)) return 0;
  if (F->pending->n == MAX_PENDING_CLOSE) close_pending();
  F->pending->page[F->pending->n++] = *f;
  return 1;
}

static const upg__policy_env_t policy_env = {frame_evictable, frame_test_clear_referenced, NULL};

static int victim_before(const void *pa, const void *pb) {
  const victim_t *a = pa, *b = pb;
  return a->region != b->region ? a->region < b->region : a->page < b->page;
}

/* Neighbouring pages. */
static int victim_follows(const void *pa, const void *pb) {
  const victim_t *a = pa, *b = pb;
  return b->region == a->region && b->page == a->page + 1;
}

/* Neighbouring pages that share a fate: both left, or both stay. */
static int victim_fate_follows(const void *pa, const void *pb) {
  const victim_t *a = pa, *b = pb;
  return b->rc == a->rc && victim_follows(a, b);
}

_Static_assert(sizeof(victim_t) <= SORT_ELEMENT_MAX && sizeof(upg__frame_t) <= SORT_ELEMENT_MAX,
               "sort_small holds one");

/* The length of the run of victims from i in which each one `follows`. */
static size_t victim_run(const batch_t *b, size_t i, int (*follows)(const void *, const void *)) {
  return run_length(b->v, b->n, sizeof b->v[0], i, follows);
}

static upg__pte_t *victim_pte(const victim_t *v) { return &v->region->pte[v->page]; }

static int victim_dirty(const victim_t *v) {
  return (atomic_load(&victim_pte(v)->word) & UPG__DIRTY) != 0;
}

/* Takes up to `want` victims from the policy and marks them evicting. */
static void choose_victims(batch_t *b, size_t want) {
  b->n = 0;
  while (b->n < want) {
    long frame = upg__rt.policy->victim(upg__rt.policy_state, &policy_env);
    if (frame < 0) break;
    upg__frame_t *f = &upg__rt.frames[frame];
    upg__pte_t *pte = &f->region->pte[f->page];
    uint32_t w = atomic_load(&pte->word);
    upg__pte_store(pte, (w & ~UPG__STATE_MASK) | UPG__EVICTING);
    b->v[b->n++] = (victim_t){f->region, f->page, (uint32_t)frame, 0, UPG__NO_SLOT, 0};
  }
  close_pending();
  sort_small(b->v, b->n, sizeof b->v[0], victim_before); /* neighbours form runs */
}

/* Closes the program's view of every victim, a run at a time. */
static void close_views(batch_t *b) {
  for (size_t i = 0, n; i < b->n; i += n) {
    n = victim_run(b, i, victim_follows);
    int rc = upg__rt.source->close(b->v[i].region, b->v[i].page, n);
    for (size_t k = i; k < i + n; k++) b->v[k].rc = rc;
    upg__lock_yield(); /* victims are marked evicting: a fault on one waits */
  }
}

/* The dirty victims are the ones written; their copies in the store are
 * stale (pager.c lets them go as pages turn dirty; a page dirtied any
 * other way lets go of its copy here), and the write gives them new ones. */
static void note_dirty_victims(batch_t *b) {
  for (size_t i = 0, n; i < b->n; i += n) {
    n = victim_run(b, i, victim_follows);
    upg__page_drop_stale_copies(b->v[i].region, b->v[i].page, n);
  }
  for (size_t i = 0; i < b->n; i++) {
    b->v[i].slot = UPG__NO_SLOT;
    b->v[i].dirty = b->v[i].rc == 0 && victim_dirty(&b->v[i]);
  }
}

/* Hands the dirty victims to the store in one put, which places the batch
 * as it can (the file store: in runs of consecutive slots, one write a
 * run). Runs without the lock: the victims are evicting, nobody else moves
 * them. */
static void write_victims(batch_t *b) {
  struct iovec iov[MAX_BATCH];
  upg__handle_t handles[MAX_BATCH];
  size_t who[MAX_BATCH], n = 0;
  for (size_t i = 0; i < b->n; i++) {
    if (!b->v[i].dirty) continue;
    upg__rt.source->frame_iov(b->v[i].region, b->v[i].page, 1, &iov[n]);
    who[n++] = i;
  }
  if (n == 0) return;
  int rc = upg__store_put(upg__rt.store, iov, (int)n, handles);
  for (size_t k = 0; k < n; k++) {
    victim_t *v = &b->v[who[k]];
    v->slot = handles[k];
    if (handles[k] == UPG__NO_HANDLE) v->rc = rc != 0 ? rc : -EIO;
  }
}

/* Gives the memory of the victims in [first, end) that left back to the
 * kernel, a run each, in one call to the source (a hole a run for the
 * SIGSEGV source), after which the pages read as zeros, as a later first
 * touch needs. */
static void punch_victims(const batch_t *b, size_t first, size_t end) {
  upg__page_run_t runs[MAX_BATCH];
  int n = 0;
  for (size_t i = first, len; i < end; i += len) {
    len = victim_run(b, i, victim_fate_follows);
    if (b->v[i].rc == 0) runs[n++] = (upg__page_run_t){b->v[i].region, b->v[i].page, len};
  }
  int rc = n > 0 ? upg__rt.source->free(runs, n) : 0;
  if (rc != 0) upg__fatal("cannot release evicted frames", rc);
}

/* A victim whose write failed stays resident and dirty, closed, with its
 * reference bit set so that the hand passes it once before trying again. */
static void keep_victim(victim_t *v) {
  upg__pte_t *pte = victim_pte(v);
  uint32_t w = atomic_load(&pte->word);
  upg__pte_store(pte, (w & ~UPG__STATE_MASK) | UPG__RESIDENT | UPG__REFERENCED);
  upg__rt.policy->loaded(upg__rt.policy_state, v->frame);
}

static void finish_victim(victim_t *v) {
  upg__pte_t *pte = victim_pte(v);
  if (v->slot != UPG__NO_SLOT) {
    pte->slot = v->slot;
    UPG__COUNT(evict_dirty, 1);
  } else {
    UPG__COUNT(evict_clean, 1);
  }
  upg__pte_store(pte, UPG__ABSENT);
  upg__rt.frames[v->frame].region = NULL;
  upg__stats_resident(-1);
}

/* Frees the frames so that they are taken again in ascending order: pages
 * loaded in address order then sit in frames in the order the Clock hand
 * visits them, so the hand evicts them in runs that share a write. */
static int frame_above(const void *a, const void *b) {
  return *(const uint32_t *)a > *(const uint32_t *)b;
}

static void release_in_order(uint32_t *frames, size_t n) {
  sort_small(frames, n, sizeof frames[0], frame_above); /* descending: the lowest is popped first */
  for (size_t i = 0; i < n; i++) upg__frames_release(frames[i]);
}

/* Chooses up to `want` victims, closes their views and lets go of the
 * dirty ones' stale copies: what a batch needs before its write. Under the
 * lock. */
static void prepare_batch(batch_t *b, size_t want) {
  if (want > MAX_BATCH) want = MAX_BATCH;
  if (upg__rt.source->evicting != NULL) upg__rt.source->evicting();
  choose_victims(b, want);
  /* Counted busy as they are marked evicting: closing their views may let
   * other threads in, and one that found every frame evicting and none
   * counted busy would take the budget for all pinned and fail. */
  upg__rt.busy_frames += b->n;
  if (b->n == 0) return;
  close_views(b);
  note_dirty_victims(b);
}

/* A batch of a few long runs of neighbours: its holes cost a TLB flush a
 * run, few enough for the writer thread to punch them while the program
 * runs, which spares the fault path that work. Scattered victims stay with
 * the fault path (see the top of the file). */
static int batch_in_runs(const batch_t *b) {
  size_t runs = 0;
  for (size_t i = 0; i < b->n; i += victim_run(b, i, victim_follows)) runs++;
  return 8 * runs <= b->n;
}

static int batch_has_writes(const batch_t *b) {
  for (size_t i = 0; i < b->n; i++)
    if (b->v[i].dirty) return 1;
  return 0;
}

/* After the write and the holes of victims [first, end): those that left
 * become absent and their frames free; those whose write failed stay.
 * Returns the frames freed. */
static long settle_victims(batch_t *b, size_t first, size_t end, size_t *failed, int *last_error) {
  upg__rt.busy_frames -= end - first;
  uint32_t freed_frames[MAX_BATCH];
  size_t freed = 0;
  for (size_t i = first; i < end; i++) {
    if (b->v[i].rc == 0) {
      finish_victim(&b->v[i]);
      freed_frames[freed++] = b->v[i].frame;
    } else {
      keep_victim(&b->v[i]);
      *last_error = b->v[i].rc;
      (*failed)++;
    }
  }
  release_in_order(freed_frames, freed);
  upg__frames_wake_waiters();
  return (long)freed;
}

static long settle_batch(batch_t *b, size_t *failed, int *last_error) {
  UPG__COUNT(evict_batches, 1);
  return settle_victims(b, 0, b->n, failed, last_error);
}

long upg__frames_evict(size_t want, size_t *failed, int *last_error) {
  batch_t b;
  prepare_batch(&b, want);
  if (b.n == 0) return 0;
  upg__unlock();
  write_victims(&b);
  punch_victims(&b, 0, b.n);
  upg__lock();
  return settle_batch(&b, failed, last_error);
}

/* ---- batches in flight to the writer thread ----------------------------*/

/* The first slot in `state`, or MAX_IN_FLIGHT. */
static size_t slot_in(int state) {
  size_t i = 0;
  while (i < MAX_IN_FLIGHT && F->flight[i].state != state) i++;
  return i;
}

/* Starts a batch of up to `want` victims towards the writer; 0 when no
 * slot is free or no victim could be chosen. */
static int start_writeback(size_t want) {
  size_t i = slot_in(SLOT_FREE);
  if (i == MAX_IN_FLIGHT) return 0;
  F->flight[i].state = SLOT_PREPARING; /* close_views may let other threads in */
  F->flight[i].reaped = 0;
  prepare_batch(&F->flight[i].b, want);
  F->in_flight += F->flight[i].b.n;
  if (F->flight[i].b.n == 0) {
    F->flight[i].state = SLOT_FREE;
    return 0;
  }
  if (!batch_has_writes(&F->flight[i].b) && !batch_in_runs(&F->flight[i].b)) {
    F->flight[i].state = SLOT_WRITTEN;
  } else {
    F->flight[i].state = SLOT_QUEUED;
    upg__evictor_kick();
  }
  return 1;
}

/* Victims to start writing back: frames free and soon free are short. */
static size_t refill_wanted(void) {
  size_t soon = upg__rt.free_count + F->in_flight;
  return upg__evictor_refill(soon > upg__rt.lend_owed ? soon - upg__rt.lend_owed : 0);
}

void upg__frames_refill(void) {
  upg__frames_reap();
  size_t want;
  while ((want = refill_wanted()) > 0 && start_writeback(want)) continue;
}

/* Settles a batch whose write and holes are done, and frees its slot. */
static long finish_slot(size_t i) {
  size_t failed = 0;
  int err = 0;
  F->in_flight -= F->flight[i].b.n;
  long settled = settle_batch(&F->flight[i].b, &failed, &err) + (long)failed;
  F->flight[i].state = SLOT_FREE;
  return settled;
}

/* Threads sleeping on victims [from, n) of a written batch must come and
 * finish it: their pages will not change state until someone does. */
static void wake_victims(batch_t *b, size_t from) {
  for (size_t k = from; k < b->n; k++) {
    upg__pte_t *pte = victim_pte(&b->v[k]);
    upg__pte_store(pte, atomic_load(&pte->word));
  }
}

int upg__frames_write_queued(void) {
  size_t i = slot_in(SLOT_QUEUED);
  if (i == MAX_IN_FLIGHT) return 0;
  batch_t *b = &F->flight[i].b;
  int punch_here = batch_in_runs(b);
  F->flight[i].state = SLOT_WRITING;
  upg__unlock();
  write_victims(b);
  if (punch_here) punch_victims(b, 0, b->n);
  upg__lock();
  if (punch_here) {
    finish_slot(i);
    return 1;
  }
  F->flight[i].state = SLOT_WRITTEN;
  wake_victims(b, 0);
  upg__frames_wake_waiters();
  return 1;
}

/* Victims of b from `first` that the next reap frees: the rest of the
 * batch where the source frees it in one call, else the next run, so that
 * a fault's steps check its read between holes. */
static size_t reap_length(const batch_t *b, size_t first) {
  if (upg__rt.source->caps & UPG__SOURCE_FREES_AT_ONCE) return b->n - first;
  return victim_run(b, first, victim_fate_follows);
}

/* Punches the next victims of the written batch in slot i and settles
 * them; the batch ends with its last. Returns the victims settled: a kept
 * victim is news too. */
static long reap_run(size_t i) {
  batch_t *b = &F->flight[i].b;
  size_t first = F->flight[i].reaped, n = reap_length(b, first), failed = 0;
  int err = 0;
  F->flight[i].state = SLOT_REAPING;
  upg__unlock();
  punch_victims(b, first, first + n);
  upg__lock();
  long settled = settle_victims(b, first, first + n, &failed, &err) + (long)failed;
  F->in_flight -= n;
  F->flight[i].reaped += n;
  if (F->flight[i].reaped < b->n) {
    F->flight[i].state = SLOT_WRITTEN;
    wake_victims(b, F->flight[i].reaped);
  } else {
    UPG__COUNT(evict_batches, 1);
    F->flight[i].state = SLOT_FREE;
  }
  return settled;
}

long upg__frames_reap(void) {
  long settled = 0;
  for (size_t i = 0; i < MAX_IN_FLIGHT; i++)
    while (F->flight[i].state == SLOT_WRITTEN) settled += reap_run(i);
  return settled;
}

/* Victims a step chooses at most: a batch a fault prepares while its read
 * is in flight, about what one read can hide. With the SIGSEGV source,
 * choosing and closing eight took 25-30 us here, a read 30-40 us; batches
 * of 16 ran past the read. A source that frees a whole batch in one call
 * (UPG__SOURCE_FREES_AT_ONCE) pays that call's TLB flush a batch, not a
 * run, and there 32 ran faster in every alternated pair. */
#define STEP_BATCH 8
#define STEP_BATCH_AT_ONCE 32

static size_t step_batch(void) {
  return upg__rt.source->caps & UPG__SOURCE_FREES_AT_ONCE ? STEP_BATCH_AT_ONCE : STEP_BATCH;
}

int upg__frames_step(int first) {
  size_t want = first ? refill_wanted() : 0;
  if (want > 0 && start_writeback(want < step_batch() ? want : step_batch())) return 1;
  size_t i = slot_in(SLOT_WRITTEN);
  return i < MAX_IN_FLIGHT ? (reap_run(i), 1) : 0;
}

void upg__frames_drain(void) {
  while (upg__frames_write_queued()) continue;
  upg__frames_reap();
}

/* Frames are all busy with other threads' I/O: sleep until a batch ends. */
static void wait_for_frames(void) {
  uint32_t seq = atomic_load(&upg__rt.frames_event);
  atomic_fetch_add(&upg__rt.frames_waiters, 1);
  upg__unlock();
  upg__os_wait((const uint32_t *)&upg__rt.frames_event, seq);
  upg__lock();
  atomic_fetch_sub(&upg__rt.frames_waiters, 1);
}

void upg__frames_wake_waiters(void) {
  if (atomic_load(&upg__rt.frames_waiters) == 0) return;
  atomic_fetch_add(&upg__rt.frames_event, 1);
  upg__os_wake_all((const uint32_t *)&upg__rt.frames_event);
}

static size_t stacked_frames(void) {
  return upg__rt.free_count - (upg__rt.nframes - upg__rt.next_unused);
}

long upg__frames_take_free(void) {
  if (upg__rt.free_count == 0) return -1;
  size_t stacked = stacked_frames();
  upg__rt.free_count--;
  uint32_t frame = stacked > 0 ? upg__rt.free_frames[stacked - 1] : (uint32_t)upg__rt.next_unused++;
  upg__staging_release(frame);
  if (upg__rt.source->reusing != NULL) upg__rt.source->reusing(frame);
  return frame;
}

long upg__frames_obtain(void) {
  int last_error = UPG_ENOMEM;
  size_t failures = 0;
  for (;;) {
    upg__frames_refill();
    long frame = upg__frames_take_free();
    if (frame >= 0) return frame;
    size_t failed = 0;
    if (upg__frames_evict(upg__evictor_sync_batch(), &failed, &last_error) > 0) continue;
    failures += failed;
    /* A whole sweep's worth of victims refused to leave: nothing can. */
    if (failures > upg__rt.nframes) return last_error;
    if (failed == 0 && upg__rt.busy_frames == 0 && upg__rt.lend_owed > 0) {
      /* The pool's debt took every frame freed: the fault comes first. */
      upg__rt.lend_cancelled += upg__rt.lend_owed;
      upg__rt.lend_owed = 0;
      continue;
    }
    if (failed == 0 && upg__rt.busy_frames == 0) return last_error; /* all pinned */
    if (failed == 0) wait_for_frames();
  }
}

/* A frame freed while the tier is owed frames goes to it first. */
void upg__frames_release(size_t frame) {
  upg__rt.frames[frame].region = NULL;
  if (upg__rt.lend_owed > 0) {
    upg__rt.lend_owed--;
    upg__rt.lent_frames[upg__rt.lent_count++] = (uint32_t)frame;
    return;
  }
  upg__rt.free_frames[stacked_frames()] = (uint32_t)frame;
  upg__rt.free_count++;
}

void upg__frames_discard(upg__region_t *r, size_t page) {
  size_t frame = r->pte[page].frame;
  upg__rt.policy->freed(upg__rt.policy_state, frame);
  upg__frames_release(frame);
  upg__stats_resident(-1);
}

/* A lent frame holds no page: the tier's pool holds a frame's worth of
 * memory in its stead, so the budget counts both. Frames not free now are
 * owed: the evictor makes room for them (upg__evictor_refill counts them
 * as missing), and the next frames freed pay them. */
void upg__frames_lend(size_t n) {
  long frame;
  while (n > 0 && (frame = upg__frames_take_free()) >= 0)
    upg__rt.lent_frames[upg__rt.lent_count++] = (uint32_t)frame, n--;
  upg__rt.lend_owed += n;
}

void upg__frames_give_back(size_t n) {
  size_t unowed = n < upg__rt.lend_owed ? n : upg__rt.lend_owed;
  upg__rt.lend_owed -= unowed;
  for (size_t i = unowed; i < n && upg__rt.lent_count > 0; i++) {
    upg__frames_release(upg__rt.lent_frames[--upg__rt.lent_count]);
  }
  if (n > 0) upg__frames_wake_waiters();
}
