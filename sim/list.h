/* list.h: doubly linked lists threaded through arrays of uint32_t node
 * numbers, which LRU, ARC and SIEVE keep their pages in. Node numbers are
 * what the page map stores, so a page finds its node in one lookup. */
#ifndef UPAGER_SIM_LIST_H
#define UPAGER_SIM_LIST_H

#include <stdint.h>

#define UPG__NIL UINT32_MAX

typedef struct upg__list {
  uint32_t head, tail; /* head is the most recent end */
  uint32_t size;
} upg__list_t;

static inline void upg__list_init(upg__list_t *l) { *l = (upg__list_t){UPG__NIL, UPG__NIL, 0}; }

static inline void upg__list_unlink(upg__list_t *l, uint32_t *prev, uint32_t *next, uint32_t n) {
  uint32_t p = prev[n], x = next[n];
  if (p == UPG__NIL) l->head = x;
  else next[p] = x;
  if (x == UPG__NIL) l->tail = p;
  else prev[x] = p;
  l->size--;
}

static inline void upg__list_push_head(upg__list_t *l, uint32_t *prev, uint32_t *next, uint32_t n) {
  prev[n] = UPG__NIL;
  next[n] = l->head;
  if (l->head == UPG__NIL) l->tail = n;
  else prev[l->head] = n;
  l->head = n;
  l->size++;
}

#endif
