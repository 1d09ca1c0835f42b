/* prefetch.c: asynchronous readahead. A sequential window carries a marker
 * page in its middle that stays closed; the program's touch of it (a minor
 * fault) asks this thread to load the next window, so the read of window
 * k+1 runs while the program works through the second half of window k,
 * as the kernel's PG_readahead does. The thread takes only free frames:
 * a guess never evicts. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>

#include "internal.h"

#define QUEUE_LEN 64

typedef struct request {
  upg__region_t *region;
  size_t page;
} request_t;

static struct {
  pthread_t thread;
  int running;
  int stop;
  int sleeping;          /* under the lock: a request must wake it */
  _Atomic uint32_t kick; /* the futex it sleeps on */
  request_t queue[QUEUE_LEN];
  size_t head, count;
} pf;

static void *prefetch_main(void *arg) {
  (void)arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  upg__lock();
  while (!pf.stop) {
    if (pf.count > 0) {
      request_t req = pf.queue[pf.head];
      pf.head = (pf.head + 1) % QUEUE_LEN;
      pf.count--;
      if (req.page != SIZE_MAX) upg__page_prefetch(req.region, req.page);
      continue;
    }
    uint32_t seq = atomic_load(&pf.kick);
    pf.sleeping = 1;
    upg__unlock();
    upg__os_wait((const uint32_t *)&pf.kick, seq);
    upg__lock();
  }
  upg__unlock();
  return NULL;
}

static void kick(void) {
  pf.sleeping = 0;
  atomic_fetch_add(&pf.kick, 1);
  upg__os_wake_all((const uint32_t *)&pf.kick);
}

int upg__prefetch_start(void) {
  pf.running = pf.stop = pf.sleeping = 0;
  pf.head = pf.count = 0;
  int rc = pthread_create(&pf.thread, NULL, prefetch_main, NULL);
  if (rc != 0) return -rc;
  pf.running = 1;
  return 0;
}

void upg__prefetch_stop(void) {
  if (!pf.running) return;
  sigset_t saved;
  upg__api_lock(&saved);
  pf.stop = 1;
  kick();
  upg__api_unlock(&saved);
  pthread_join(pf.thread, NULL);
  pf.running = 0;
}

void upg__prefetch_forget(void) { pf.running = 0; }

void upg__prefetch_request(upg__region_t *r, size_t page) {
  if (!pf.running || pf.count == QUEUE_LEN || page >= r->npages) return;
  pf.queue[(pf.head + pf.count) % QUEUE_LEN] = (request_t){r, page};
  pf.count++;
  if (pf.sleeping) kick();
}

void upg__prefetch_forget_region(const upg__region_t *r) {
  for (size_t i = 0; i < pf.count; i++) {
    request_t *req = &pf.queue[(pf.head + i) % QUEUE_LEN];
    if (req->region == r) req->page = SIZE_MAX; /* dropped when popped */
  }
}
