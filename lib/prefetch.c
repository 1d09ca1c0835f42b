/* prefetch.c: asynchronous readahead. A sequential window carries a marker
 * page in its middle that stays closed; the program's touch of it (a minor
 * fault) asks this thread to load the next window, so the read of window
 * k+1 runs while the program works through the second half of window k,
 * as the kernel's PG_readahead does. The thread takes only free frames:
 * a guess never evicts. */
#define _GNU_SOURCE

#include "internal.h"

#define QUEUE_LEN 64

typedef struct request {
  upg__region_t *region;
  size_t page;
} request_t;

static upg__worker_t worker;
static request_t queue[QUEUE_LEN];
static size_t head, count;

static int prefetch_step(void) {
  if (count == 0) return 0;
  request_t req = queue[head];
  head = (head + 1) % QUEUE_LEN;
  count--;
  if (req.page != SIZE_MAX) upg__page_prefetch(req.region, req.page);
  return 1;
}

int upg__prefetch_start(void) {
  head = count = 0;
  return upg__worker_start(&worker, prefetch_step);
}

void upg__prefetch_stop(void) { upg__worker_stop(&worker); }

void upg__prefetch_forget(void) { upg__worker_forget(&worker); }

void upg__prefetch_request(upg__region_t *r, size_t page) {
  if (!worker.running || count == QUEUE_LEN || page >= r->npages) return;
  queue[(head + count) % QUEUE_LEN] = (request_t){r, page};
  count++;
  upg__worker_wake(&worker);
}

void upg__prefetch_forget_region(const upg__region_t *r) {
  for (size_t i = 0; i < count; i++) {
    request_t *req = &queue[(head + i) % QUEUE_LEN];
    if (req->region == r) req->page = SIZE_MAX; /* dropped when popped */
  }
}
