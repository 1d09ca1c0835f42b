/* evictor.c: the background evictor. It keeps the free frames between a low
 * and a high watermark: when a fault takes a frame below the low one, it
 * starts a batch of victims towards the high one (frames.c), and this
 * thread writes the batch to swap while the program runs, so that a fault
 * rarely waits for a write. The thread does the write, and punches the
 * holes only of a batch in a few long runs: page-table changes otherwise
 * stay on the fault path (see frames.c for why). It sleeps on a futex until
 * a batch is queued. A small budget has no thread: every eviction happens
 * on the fault path. Its state is upg__rt.evictor. */
#define _GNU_SOURCE

#include "internal.h"

/* Below this many frames the watermarks would eat the budget. */
#define EVICTOR_MIN_FRAMES 64
/* The most a fault evicts itself when the thread has fallen behind. */
#define SYNC_BATCH_MAX 16

static size_t clamp(size_t v, size_t lo, size_t hi) { return v < lo ? lo : v > hi ? hi : v; }

static int write_step(void *ctx) {
  (void)ctx; /* the batches are upg__rt's */
  return upg__frames_write_queued();
}

/* The low watermark holds two readahead windows where the budget allows
 * (an eighth of it): a window takes only free frames, and a sequential
 * fault's window and the background one after it then both load whole;
 * with one window's worth, a fault's window came out about half size. */
int upg__evictor_start(size_t nframes) {
  upg__evictor_part_t *e = &upg__rt.evictor;
  *e = (upg__evictor_part_t){0};
  if (nframes < EVICTOR_MIN_FRAMES) return 0;
  size_t windows = 2 * upg__rt.cfg.readahead;
  e->low = clamp(nframes / 64 > windows ? nframes / 64 : windows, 8, nframes / 8);
  e->low = e->low < 4096 ? e->low : 4096;
  e->high = clamp(e->low + (windows > 64 ? windows : 64), e->low, nframes / 4);
  return upg__worker_start(&e->worker, write_step, NULL);
}

/* Batches the thread had not written yet are written here. The part is
 * cleared under the lock, which the fault path reads it under. */
void upg__evictor_stop(void) {
  sigset_t saved;
  int had_thread = upg__rt.evictor.worker.running;
  if (had_thread) upg__worker_stop(&upg__rt.evictor.worker);
  upg__api_lock(&saved);
  if (had_thread) upg__frames_drain();
  upg__rt.evictor = (upg__evictor_part_t){0};
  upg__api_unlock(&saved);
}

void upg__evictor_forget(void) { upg__rt.evictor = (upg__evictor_part_t){0}; }

/* When pins (or the frames lent to the compressed pool) leave few frames
 * to evict, batches ahead of need would take the pages the program is
 * using: faults then evict for themselves. */
size_t upg__evictor_refill(size_t free_soon) {
  const upg__evictor_part_t *e = &upg__rt.evictor;
  if (!e->worker.running || free_soon >= e->low) return 0;
  size_t held = upg__rt.pinned_pages + upg__rt.lent_count; /* pins and the pool */
  return upg__rt.nframes - held >= 4 * e->high ? e->high - free_soon : 0;
}

void upg__evictor_kick(void) { upg__worker_wake(&upg__rt.evictor.worker); }

size_t upg__evictor_sync_batch(void) { return clamp(upg__rt.nframes / 64, 1, SYNC_BATCH_MAX); }
