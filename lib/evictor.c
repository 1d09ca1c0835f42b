/* evictor.c: the background evictor. A thread keeps the free frames between
 * a low and a high watermark, evicting in batches while the program runs,
 * so that a fault rarely waits for a write. It sleeps on a futex and the
 * fault path wakes it when free frames fall below the low watermark. A
 * small budget has no thread: every eviction happens on the fault path. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>

#include "internal.h"

/* Below this many frames the watermarks would eat the budget. */
#define EVICTOR_MIN_FRAMES 64
/* The most a fault evicts itself when the thread has fallen behind. */
#define SYNC_BATCH_MAX 16

static struct {
  pthread_t thread;
  int running;
  int stop;
  int sleeping;           /* under the lock: a kick must wake it */
  _Atomic uint32_t kick;  /* the futex it sleeps on */
  size_t low, high;
} ev;

static size_t clamp(size_t v, size_t lo, size_t hi) { return v < lo ? lo : v > hi ? hi : v; }

static void *evictor_main(void *arg) {
  (void)arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  upg__lock();
  while (!ev.stop) {
    if (upg__rt.free_count < ev.high) {
      size_t failed = 0;
      int err = 0;
      if (upg__frames_evict(ev.high - upg__rt.free_count, &failed, &err) > 0) continue;
    }
    uint32_t seq = atomic_load(&ev.kick);
    ev.sleeping = 1;
    upg__unlock();
    upg__os_wait((const uint32_t *)&ev.kick, seq);
    upg__lock();
  }
  upg__unlock();
  return NULL;
}

static void kick(void) {
  ev.sleeping = 0;
  atomic_fetch_add(&ev.kick, 1);
  upg__os_wake_all((const uint32_t *)&ev.kick);
}

int upg__evictor_start(size_t nframes) {
  ev.running = ev.stop = ev.sleeping = 0;
  if (nframes < EVICTOR_MIN_FRAMES) return 0;
  ev.low = clamp(nframes / 64, 8, 4096);
  ev.high = clamp(ev.low + 64, ev.low, nframes / 4);
  int rc = pthread_create(&ev.thread, NULL, evictor_main, NULL);
  if (rc != 0) return -rc;
  ev.running = 1;
  return 0;
}

void upg__evictor_stop(void) {
  if (!ev.running) return;
  sigset_t saved;
  upg__api_lock(&saved);
  ev.stop = 1;
  kick();
  upg__api_unlock(&saved);
  pthread_join(ev.thread, NULL);
  ev.running = 0;
}

void upg__evictor_forget(void) { ev.running = 0; }

void upg__evictor_note_free(size_t free_count) {
  if (ev.running && ev.sleeping && free_count < ev.low) kick();
}

size_t upg__evictor_sync_batch(void) {
  return clamp(upg__rt.nframes / 64, 1, SYNC_BATCH_MAX);
}
