/* evictor.c: the background evictor. A thread keeps the free frames between
 * a low and a high watermark, evicting in batches while the program runs,
 * so that a fault rarely waits for a write. It sleeps on a futex and the
 * fault path wakes it when free frames fall below the low watermark. A
 * small budget has no thread: every eviction happens on the fault path. */
#define _GNU_SOURCE

#include "internal.h"

/* Below this many frames the watermarks would eat the budget. */
#define EVICTOR_MIN_FRAMES 64
/* The most a fault evicts itself when the thread has fallen behind. */
#define SYNC_BATCH_MAX 16

static upg__worker_t worker;
static size_t low, high; /* the watermarks, in free frames */

static size_t clamp(size_t v, size_t lo, size_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* One batch towards the high watermark; 0 when there is nothing to do or
 * nothing could leave (the next kick retries). */
static int evict_step(void) {
  if (upg__rt.free_count >= high) return 0;
  size_t failed = 0;
  int err = 0;
  return upg__frames_evict(high - upg__rt.free_count, &failed, &err) > 0;
}

int upg__evictor_start(size_t nframes) {
  worker.running = 0;
  if (nframes < EVICTOR_MIN_FRAMES) return 0;
  low = clamp(nframes / 64, 8, 4096);
  high = clamp(low + 64, low, nframes / 4);
  return upg__worker_start(&worker, evict_step);
}

void upg__evictor_stop(void) { upg__worker_stop(&worker); }

void upg__evictor_forget(void) { upg__worker_forget(&worker); }

void upg__evictor_note_free(size_t free_count) {
  if (free_count < low) upg__worker_wake(&worker);
}

size_t upg__evictor_sync_batch(void) {
  return clamp(upg__rt.nframes / 64, 1, SYNC_BATCH_MAX);
}
