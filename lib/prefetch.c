/* prefetch.c: the work a fault hands to the other CPU. Asynchronous
 * readahead: a sequential window carries a marker page in its middle that
 * stays closed; the program's touch of it (a minor fault) asks this thread
 * to load the next window, so the read of window k+1 runs while the
 * program works through the second half of window k, as the kernel's
 * PG_readahead does. The thread takes only free frames: a guess never
 * evicts. And the memory of a growing heap's windows: the fault opens the
 * window and returns, and this thread has the kernel allocate and zero its
 * pages while the program goes on, instead of the program waiting for it.
 * Its state is upg__rt.prefetch. */
#define _GNU_SOURCE

#include "internal.h"

#define QUEUE_LEN UPG__PREFETCH_QUEUE

static int prefetch_step(void *ctx) {
  (void)ctx; /* the queue is upg__rt.prefetch */
  upg__prefetch_part_t *p = &upg__rt.prefetch;
  if (p->count == 0) return 0;
  upg__prefetch_request_t req = p->queue[p->head];
  p->head = (p->head + 1) % QUEUE_LEN;
  p->count--;
  if (req.page == SIZE_MAX) return 1;
  if (req.populate > 0) upg__page_populate(req.region, req.page, req.populate, req.downwards);
  else upg__page_prefetch(req.region, req.page);
  return 1;
}

int upg__prefetch_start(void) {
  upg__rt.prefetch = (upg__prefetch_part_t){0};
  return upg__worker_start(&upg__rt.prefetch.worker, prefetch_step, NULL);
}

/* Requests still queued go with the thread; the part is cleared under the
 * lock, which faults enqueue under. */
void upg__prefetch_stop(void) {
  sigset_t saved;
  upg__worker_stop(&upg__rt.prefetch.worker);
  upg__api_lock(&saved);
  upg__rt.prefetch = (upg__prefetch_part_t){0};
  upg__api_unlock(&saved);
}

void upg__prefetch_forget(void) { upg__rt.prefetch = (upg__prefetch_part_t){0}; }

static int enqueue(upg__prefetch_request_t req) {
  upg__prefetch_part_t *p = &upg__rt.prefetch;
  if (!p->worker.running || p->count == QUEUE_LEN) return 0;
  p->queue[(p->head + p->count) % QUEUE_LEN] = req;
  p->count++;
  upg__worker_wake(&p->worker);
  return 1;
}

void upg__prefetch_request(upg__region_t *r, size_t page) {
  if (page < r->npages) (void)enqueue((upg__prefetch_request_t){.region = r, .page = page});
}

int upg__prefetch_populate(upg__region_t *r, size_t first, size_t n, int downwards) {
  return enqueue(
      (upg__prefetch_request_t){.region = r, .page = first, .populate = n, .downwards = downwards});
}

void upg__prefetch_forget_region(const upg__region_t *r) {
  upg__prefetch_part_t *p = &upg__rt.prefetch;
  for (size_t i = 0; i < p->count; i++) {
    upg__prefetch_request_t *req = &p->queue[(p->head + i) % QUEUE_LEN];
    if (req->region == r) req->page = SIZE_MAX; /* dropped when popped */
  }
}
