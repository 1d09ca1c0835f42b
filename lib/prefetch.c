/* prefetch.c: the work a fault hands to the other CPU. Asynchronous
 * readahead: a sequential window carries a marker page in its middle that
 * stays closed; the program's touch of it (a minor fault) asks this thread
 * to load the next window, so the read of window k+1 runs while the
 * program works through the second half of window k, as the kernel's
 * PG_readahead does. The thread takes only free frames: a guess never
 * evicts. And the memory of a growing heap's windows: the fault opens the
 * window and returns, and this thread has the kernel allocate and zero its
 * pages while the program goes on, instead of the program waiting for it. */
#define _GNU_SOURCE

#include "internal.h"

#define QUEUE_LEN 64

typedef struct request {
  upg__region_t *region;
  size_t page;
  size_t populate; /* 0: a readahead window at page; else pages from page */
  int downwards;
} request_t;

static upg__worker_t worker;
static request_t queue[QUEUE_LEN];
static size_t head, count;

static int prefetch_step(void) {
  if (count == 0) return 0;
  request_t req = queue[head];
  head = (head + 1) % QUEUE_LEN;
  count--;
  if (req.page == SIZE_MAX) return 1;
  if (req.populate > 0)
    upg__page_populate(req.region, req.page, req.populate, req.downwards);
  else
    upg__page_prefetch(req.region, req.page);
  return 1;
}

int upg__prefetch_start(void) {
  head = count = 0;
  return upg__worker_start(&worker, prefetch_step);
}

void upg__prefetch_stop(void) { upg__worker_stop(&worker); }

void upg__prefetch_forget(void) { upg__worker_forget(&worker); }

static int enqueue(request_t req) {
  if (!worker.running || count == QUEUE_LEN) return 0;
  queue[(head + count) % QUEUE_LEN] = req;
  count++;
  upg__worker_wake(&worker);
  return 1;
}

void upg__prefetch_request(upg__region_t *r, size_t page) {
  if (page < r->npages) (void)enqueue((request_t){.region = r, .page = page});
}

int upg__prefetch_populate(upg__region_t *r, size_t first, size_t n, int downwards) {
  return enqueue((request_t){.region = r, .page = first, .populate = n, .downwards = downwards});
}

void upg__prefetch_forget_region(const upg__region_t *r) {
  for (size_t i = 0; i < count; i++) {
    request_t *req = &queue[(head + i) % QUEUE_LEN];
    if (req->region == r) req->page = SIZE_MAX; /* dropped when popped */
  }
}
