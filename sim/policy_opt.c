/* policy_opt.c: OPT (Belady's MIN), offline: evict the resident page whose
 * next use lies furthest in the future. A table of next uses, built by one
 * backward pass over the trace (next_use.c), gives each reference's successor; resident
 * pages sit in a max-heap keyed by next use. O(log k) a reference for k
 * frames; memory is the next-use table (4 bytes a reference) plus O(k). */
#include <errno.h>
#include <stdlib.h>

#include "next_use.h"
#include "pagemap.h"
#include "sim_policy.h"

typedef struct opt {
  const uint64_t *refs;
  size_t nrefs, pos;
  uint32_t *next_use; /* next_use[i]: the next index referencing refs[i] */
  size_t nframes, used;
  uint32_t *heap;          /* slots, max-heap on key */
  uint32_t *key;           /* slot -> next use of its page */
  uint32_t *heap_pos;      /* slot -> index in heap */
  uint64_t *page_of;       /* slot -> page */
  upg__pagemap_t resident; /* page -> slot */
} opt_t;

static void opt_destroy(void *state) {
  opt_t *s = state;
  upg__pagemap_free(&s->resident);
  free(s->next_use), free(s->heap), free(s->key), free(s->heap_pos), free(s->page_of);
  free(s);
}

static int opt_create(const upg__sim_setup_t *setup, void **state) {
  if (setup->refs == NULL) return -EINVAL;
  if (setup->nrefs >= UPG__NEVER) return -E2BIG; /* indices are 32 bits */
  opt_t *s = calloc(1, sizeof *s);
  if (s == NULL) return -ENOMEM;
  s->refs = setup->refs, s->nrefs = setup->nrefs;
  s->nframes = setup->frames;
  s->next_use = malloc((s->nrefs ? s->nrefs : 1) * sizeof *s->next_use);
  s->heap = malloc(s->nframes * sizeof *s->heap);
  s->key = malloc(s->nframes * sizeof *s->key);
  s->heap_pos = malloc(s->nframes * sizeof *s->heap_pos);
  s->page_of = malloc(s->nframes * sizeof *s->page_of);
  int rc = -ENOMEM;
  if (s->next_use != NULL && s->heap != NULL && s->key != NULL && s->heap_pos != NULL &&
      s->page_of != NULL &&
      (rc = upg__pagemap_init(&s->resident, s->nframes < 65536 ? s->nframes : 65536)) == 0)
    rc = upg__next_use(s->refs, s->nrefs, s->next_use);
  if (rc != 0) {
    opt_destroy(s);
    return rc;
  }
  *state = s;
  return 0;
}

static void heap_set(opt_t *s, size_t i, uint32_t slot) {
  s->heap[i] = slot;
  s->heap_pos[slot] = (uint32_t)i;
}

static void sift_up(opt_t *s, size_t i) {
  uint32_t slot = s->heap[i];
  while (i > 0 && s->key[s->heap[(i - 1) / 2]] < s->key[slot]) {
    heap_set(s, i, s->heap[(i - 1) / 2]);
    i = (i - 1) / 2;
  }
  heap_set(s, i, slot);
}

static void sift_down(opt_t *s, size_t i) {
  uint32_t slot = s->heap[i];
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= s->used) break;
    if (child + 1 < s->used && s->key[s->heap[child + 1]] > s->key[s->heap[child]]) child++;
    if (s->key[s->heap[child]] <= s->key[slot]) break;
    heap_set(s, i, s->heap[child]);
    i = child;
  }
  heap_set(s, i, slot);
}

static int opt_access(void *state, uint64_t page) {
  opt_t *s = state;
  if (s->pos >= s->nrefs || s->refs[s->pos] != page) return -EINVAL; /* not the trace given */
  uint32_t next = s->next_use[s->pos++];
  uint32_t *slot = upg__pagemap_find(&s->resident, page);
  if (slot != NULL) {
    /* Its key was this reference, the smallest of all: it can only rise. */
    s->key[*slot] = next;
    sift_up(s, s->heap_pos[*slot]);
    return 1;
  }
  if (s->used < s->nframes) {
    uint32_t n = (uint32_t)s->used++;
    s->key[n] = next;
    s->page_of[n] = page;
    heap_set(s, s->used - 1, n);
    sift_up(s, s->used - 1);
    return upg__pagemap_put(&s->resident, page, n);
  }
  uint32_t victim = s->heap[0];
  upg__pagemap_remove(&s->resident, s->page_of[victim]);
  s->key[victim] = next;
  s->page_of[victim] = page;
  sift_down(s, 0);
  return upg__pagemap_put(&s->resident, page, victim);
}

const upg__sim_policy_t upg__sim_opt = {
    "opt",       "Belady's optimal, offline (evicts the page used furthest ahead)",
    1,           opt_create,
    opt_destroy, opt_access,
    NULL,        NULL,
};
