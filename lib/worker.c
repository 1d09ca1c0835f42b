/* worker.c: the runtime's background threads (the evictor, the prefetcher)
 * share one shape: a thread that holds the runtime lock while it works,
 * sleeps on a futex when there is nothing to do, and is woken by the fault
 * path, which must never block on it. All signals are blocked in it: it
 * touches no paged memory, and the program's handlers are not its business.
 * SIGSEGV too, which the preload's pthread_sigmask would leave open: a crash
 * in a worker, which may hold the lock, then ends the process with a core
 * instead of a fault handler waiting forever for that lock. The count of
 * threads started is upg__rt.workers. */
#define _GNU_SOURCE
#include <signal.h>

#include "internal.h"

static void *worker_main(void *arg) {
  upg__worker_t *w = arg;
  upg__os_block_signals(NULL);
  atomic_fetch_add(&upg__rt.workers.running, 1);
  upg__os_wake_all((const uint32_t *)&upg__rt.workers.running);
  upg__lock();
  while (!w->stop) {
    if (w->step(w->ctx)) continue;
    uint32_t seq = atomic_load(&w->kick);
    w->sleeping = 1;
    upg__unlock();
    upg__os_wait((const uint32_t *)&w->kick, seq);
    upg__lock();
  }
  upg__unlock();
  return NULL;
}

static void kick(upg__worker_t *w) {
  w->sleeping = 0;
  atomic_fetch_add(&w->kick, 1);
  upg__os_wake_all((const uint32_t *)&w->kick);
}

int upg__worker_start(upg__worker_t *w, int (*step)(void *ctx), void *ctx) {
  w->running = w->stop = w->sleeping = 0;
  w->step = step;
  w->ctx = ctx;
  int rc = pthread_create(&w->thread, NULL, worker_main, w);
  if (rc != 0) return -rc;
  upg__rt.workers.created++;
  w->running = 1;
  return 0;
}

/* glibc starts a thread with every signal blocked and reads the global
 * locale's LC_CTYPE data first (__ctype_init): under `upager run` the
 * runtime starts at the program's first malloc, when that data is still
 * glibc's static C locale, but a thread first scheduled later, after
 * setlocale() put the data in the paged heap, would read it unable to take
 * a fault, and die by SIGSEGV if the page was out. So init waits for its
 * threads, all at once: a thread can take a few hundred microseconds to
 * be first scheduled on this VM, and the waits would add up in turn. */
void upg__workers_await(void) {
  upg__workers_part_t *w = &upg__rt.workers;
  uint32_t n;
  while ((n = atomic_load(&w->running)) < w->created)
    upg__os_wait((const uint32_t *)&w->running, n);
}

void upg__worker_stop(upg__worker_t *w) {
  if (!w->running) return;
  sigset_t saved;
  upg__api_lock(&saved);
  w->stop = 1;
  kick(w);
  upg__api_unlock(&saved);
  pthread_join(w->thread, NULL);
  w->running = 0;
}

void upg__worker_wake(upg__worker_t *w) {
  if (w->running && w->sleeping) kick(w);
}
