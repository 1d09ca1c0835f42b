/* policy_arc.c: ARC (Megiddo and Modha, "ARC: A Self-Tuning, Low Overhead
 * Replacement Cache", USENIX FAST 2003), as in the paper's Figure 4. T1
 * holds pages seen once recently, T2 pages seen at least twice; B1 and B2
 * are their ghosts (pages evicted, identity only). A ghost hit moves the
 * target size p of T1 towards the list that would have kept the page. The
 * directory holds at most 2c pages: nodes come from a pool of 2c. */
#include <errno.h>
#include <stdlib.h>

#include "list.h"
#include "pagemap.h"
#include "sim_policy.h"

enum { T1, T2, B1, B2, NLISTS };

typedef struct arc {
  size_t c;
  double p; /* target size of T1 */
  uint32_t *prev, *next;
  uint64_t *page_of;
  unsigned char *which; /* node -> list */
  uint32_t free_head;   /* unused nodes, chained through next */
  upg__list_t list[NLISTS];
  upg__pagemap_t directory; /* page -> node, for all four lists */
} arc_t;

static void arc_destroy(void *state) {
  arc_t *s = state;
  upg__pagemap_free(&s->directory);
  free(s->prev), free(s->next), free(s->page_of), free(s->which);
  free(s);
}

static int arc_create(const upg__sim_setup_t *setup, void **state) {
  arc_t *s = calloc(1, sizeof *s);
  if (s == NULL) return -ENOMEM;
  s->c = setup->frames;
  size_t nodes = 2 * s->c;
  for (int l = 0; l < NLISTS; l++) upg__list_init(&s->list[l]);
  s->prev = malloc(nodes * sizeof *s->prev);
  s->next = malloc(nodes * sizeof *s->next);
  s->page_of = malloc(nodes * sizeof *s->page_of);
  s->which = malloc(nodes);
  if (s->prev == NULL || s->next == NULL || s->page_of == NULL || s->which == NULL ||
      upg__pagemap_init(&s->directory, nodes < 65536 ? nodes : 65536) != 0) {
    arc_destroy(s);
    return -ENOMEM;
  }
  for (size_t n = 0; n < nodes; n++) s->next[n] = n + 1 < nodes ? (uint32_t)(n + 1) : UPG__NIL;
  s->free_head = 0;
  *state = s;
  return 0;
}

static void move_to(arc_t *s, uint32_t n, int to) {
  upg__list_unlink(&s->list[s->which[n]], s->prev, s->next, n);
  upg__list_push_head(&s->list[to], s->prev, s->next, n);
  s->which[n] = (unsigned char)to;
}

/* Drops the LRU page of list l from the directory altogether. */
static void drop_lru(arc_t *s, int l) {
  uint32_t n = s->list[l].tail;
  upg__list_unlink(&s->list[l], s->prev, s->next, n);
  upg__pagemap_remove(&s->directory, s->page_of[n]);
  s->next[n] = s->free_head;
  s->free_head = n;
}

/* REPLACE(x, p): demote the LRU page of T1 or T2 to its ghost list. */
static void replace(arc_t *s, int hit_in_b2) {
  size_t t1 = s->list[T1].size;
  if (t1 >= 1 && ((hit_in_b2 && (double)t1 == s->p) || (double)t1 > s->p))
    move_to(s, s->list[T1].tail, B1);
  else move_to(s, s->list[T2].tail, B2);
}

static double maxd(double a, double b) { return a > b ? a : b; }
static double mind(double a, double b) { return a < b ? a : b; }

static int arc_access(void *state, uint64_t page) {
  arc_t *s = state;
  uint32_t *found = upg__pagemap_find(&s->directory, page);
  size_t b1 = s->list[B1].size, b2 = s->list[B2].size;
  if (found != NULL) {
    uint32_t n = *found;
    switch (s->which[n]) {
      case T1:
      case T2: move_to(s, n, T2); return 1;
      case B1:
        s->p = mind((double)s->c, s->p + maxd((double)b2 / (double)b1, 1));
        replace(s, 0);
        break;
      default: /* B2 */
        s->p = maxd(0, s->p - maxd((double)b1 / (double)b2, 1));
        replace(s, 1);
        break;
    }
    move_to(s, n, T2);
    return 0;
  }
  size_t t1 = s->list[T1].size, t2 = s->list[T2].size;
  if (t1 + b1 == s->c) {
    if (t1 < s->c) {
      drop_lru(s, B1);
      replace(s, 0);
    } else {
      drop_lru(s, T1);
    }
  } else if (t1 + t2 + b1 + b2 >= s->c) {
    if (t1 + t2 + b1 + b2 == 2 * s->c) drop_lru(s, B2);
    replace(s, 0);
  }
  uint32_t n = s->free_head;
  s->free_head = s->next[n];
  int rc = upg__pagemap_put(&s->directory, page, n);
  if (rc != 0) return rc;
  s->page_of[n] = page;
  s->which[n] = T1;
  upg__list_push_head(&s->list[T1], s->prev, s->next, n);
  return 0;
}

const upg__sim_policy_t upg__sim_arc = {
    "arc",       "ARC (FAST 2003): recency and frequency lists with adaptive ghosts",
    0,           arc_create,
    arc_destroy, arc_access,
    NULL,        NULL,
};
