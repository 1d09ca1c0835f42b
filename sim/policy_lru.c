/* policy_lru.c: exact LRU. Resident pages sit in one list, most recent at
 * the head; a hit moves its page to the head, a miss evicts the tail. O(1)
 * a reference. The TLB model (tlb.c) uses it as its TLB. */
#include <errno.h>
#include <stdlib.h>

#include "access_batch.h"
#include "list.h"
#include "pagemap.h"
#include "sim_policy.h"

typedef struct lru {
  size_t nframes, used;
  uint32_t *prev, *next;
  uint64_t *page_of;
  upg__list_t list;
  upg__pagemap_t resident; /* page -> node */
} lru_t;

static void lru_destroy(void *state) {
  lru_t *s = state;
  upg__pagemap_free(&s->resident);
  free(s->prev), free(s->next), free(s->page_of);
  free(s);
}

static int lru_create(const upg__sim_setup_t *setup, void **state) {
  lru_t *s = calloc(1, sizeof *s);
  if (s == NULL) return -ENOMEM;
  s->nframes = setup->frames;
  upg__list_init(&s->list);
  s->prev = malloc(s->nframes * sizeof *s->prev);
  s->next = malloc(s->nframes * sizeof *s->next);
  s->page_of = malloc(s->nframes * sizeof *s->page_of);
  if (s->prev == NULL || s->next == NULL || s->page_of == NULL ||
      upg__pagemap_init(&s->resident, s->nframes < 65536 ? s->nframes : 65536) != 0) {
    lru_destroy(s);
    return -ENOMEM;
  }
  *state = s;
  return 0;
}

static int lru_access(void *state, uint64_t page) {
  lru_t *s = state;
  uint32_t *node = upg__pagemap_find(&s->resident, page);
  if (node != NULL) {
    uint32_t n = *node;
    if (s->list.head != n) {
      upg__list_unlink(&s->list, s->prev, s->next, n);
      upg__list_push_head(&s->list, s->prev, s->next, n);
    }
    return 1;
  }
  uint32_t n;
  if (s->used < s->nframes) {
    n = (uint32_t)s->used++;
  } else {
    n = s->list.tail;
    upg__list_unlink(&s->list, s->prev, s->next, n);
    upg__pagemap_remove(&s->resident, s->page_of[n]);
  }
  int rc = upg__pagemap_insert(&s->resident, page, n);
  if (rc != 0) return rc;
  s->page_of[n] = page;
  upg__list_push_head(&s->list, s->prev, s->next, n);
  /* The tail is the next miss's victim unless a hit moves it first: start
   * loading its map slot, the one cache miss of an eviction. */
  if (s->used == s->nframes) upg__pagemap_prefetch(&s->resident, s->page_of[s->list.tail]);
  return 0;
}

static long lru_access_batch(void *state, const uint64_t *pages, size_t n) {
  lru_t *s = state;
  return upg__access_batch(s, &s->resident, lru_access, pages, n);
}

const upg__sim_policy_t upg__sim_lru = {
    "lru", "least recently used, exact", 0, lru_create, lru_destroy, lru_access, lru_access_batch,
    NULL,
};
