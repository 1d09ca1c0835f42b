/* policy_sieve.c: SIEVE (Zhang, Yang, Yue, Vigfusson and Rashmi, "SIEVE is
 * Simpler than LRU", NSDI 2024). New pages enter at the head of a FIFO
 * queue; a hit only sets the page's visited bit. A hand walks from the
 * tail towards the head: a visited page loses its bit and stays where it
 * is (unlike Clock, survivors are not moved), the first unvisited page is
 * evicted, and the hand rests on its newer neighbour, wrapping to the tail. */
#include <errno.h>
#include <stdlib.h>

#include "list.h"
#include "pagemap.h"
#include "sim_policy.h"

typedef struct sieve {
  size_t nframes, used;
  uint32_t *prev, *next; /* prev points towards the head (newer) */
  uint64_t *page_of;
  unsigned char *visited;
  uint32_t hand;
  upg__list_t queue;
  upg__pagemap_t resident; /* page -> node */
} sieve_t;

static void sieve_destroy(void *state) {
  sieve_t *s = state;
  upg__pagemap_free(&s->resident);
  free(s->prev), free(s->next), free(s->page_of), free(s->visited);
  free(s);
}

static int sieve_create(const upg__sim_setup_t *setup, void **state) {
  sieve_t *s = calloc(1, sizeof *s);
  if (s == NULL) return -ENOMEM;
  s->nframes = setup->frames;
  s->hand = UPG__NIL;
  upg__list_init(&s->queue);
  s->prev = malloc(s->nframes * sizeof *s->prev);
  s->next = malloc(s->nframes * sizeof *s->next);
  s->page_of = malloc(s->nframes * sizeof *s->page_of);
  s->visited = calloc(s->nframes, 1);
  if (s->prev == NULL || s->next == NULL || s->page_of == NULL || s->visited == NULL ||
      upg__pagemap_init(&s->resident, s->nframes < 65536 ? s->nframes : 65536) != 0) {
    sieve_destroy(s);
    return -ENOMEM;
  }
  *state = s;
  return 0;
}

/* Frees one node by the SIEVE sweep and returns it. */
static uint32_t sieve_evict(sieve_t *s) {
  uint32_t n = s->hand != UPG__NIL ? s->hand : s->queue.tail;
  while (s->visited[n]) {
    s->visited[n] = 0;
    n = s->prev[n] != UPG__NIL ? s->prev[n] : s->queue.tail;
  }
  s->hand = s->prev[n]; /* NIL wraps to the tail next time */
  upg__list_unlink(&s->queue, s->prev, s->next, n);
  upg__pagemap_remove(&s->resident, s->page_of[n]);
  return n;
}

static int sieve_access(void *state, uint64_t page) {
  sieve_t *s = state;
  uint32_t *node = upg__pagemap_find(&s->resident, page);
  if (node != NULL) {
    s->visited[*node] = 1;
    return 1;
  }
  uint32_t n = s->used < s->nframes ? (uint32_t)s->used++ : sieve_evict(s);
  int rc = upg__pagemap_put(&s->resident, page, n);
  if (rc != 0) return rc;
  s->page_of[n] = page;
  s->visited[n] = 0;
  upg__list_push_head(&s->queue, s->prev, s->next, n);
  return 0;
}

const upg__sim_policy_t upg__sim_sieve = {
    "sieve",
    "SIEVE (NSDI 2024): FIFO queue, visited bits, a sweeping hand",
    0,
    sieve_create,
    sieve_destroy,
    sieve_access,
    NULL,
    NULL,
};
