/* mrc_opt.c: OPT's stack (Mattson et al. 1970): OPT is a stack algorithm
 * whose priority is the next use, sooner first. On a reference the page
 * goes to the top; the old top is carried down, and at each depth above the
 * page's old one the sooner-used of the carried page and the resident one
 * stays, the other moves on. The stack is cut at the largest size asked
 * for: what falls off misses at every size of interest. O(depth) a
 * reference at worst, which makes OPT's curve the slow part of --mrc on
 * long traces (docs/sim.md has the times). */
#include <errno.h>
#include <stdlib.h>

#include "mrc.h"
#include "next_use.h"
#include "pagemap.h"

#define OFF_STACK UINT32_MAX

typedef struct opt_stack {
  uint32_t *stack; /* depth -> node */
  size_t depth, max;
  uint32_t *pos; /* node -> depth, or OFF_STACK */
  uint32_t *key; /* node -> next use */
  size_t nodes, cap;
} opt_stack_t;

static int new_node(opt_stack_t *s, uint32_t *node) {
  if (s->nodes == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 1024;
    uint32_t *pos = realloc(s->pos, cap * sizeof *pos);
    if (pos == NULL) return -ENOMEM;
    s->pos = pos;
    uint32_t *key = realloc(s->key, cap * sizeof *key);
    if (key == NULL) return -ENOMEM;
    s->key = key, s->cap = cap;
  }
  *node = (uint32_t)s->nodes++;
  s->pos[*node] = OFF_STACK;
  return 0;
}

static void place(opt_stack_t *s, size_t d, uint32_t node) {
  s->stack[d] = node;
  s->pos[node] = (uint32_t)d;
}

/* Moves `node` (at depth `from`, or off the stack) to the top. */
static void reference(opt_stack_t *s, uint32_t node, size_t from) {
  if (from == 0) return;
  size_t end = from != OFF_STACK ? from : s->depth;
  uint32_t carried = s->depth ? s->stack[0] : OFF_STACK;
  /* The carried key only grows; once it is NEVER every comparison below
   * fails and nothing else moves, so the walk can stop there. */
  for (size_t d = 1; d < end && s->key[carried] != UPG__NEVER; d++) {
    uint32_t here = s->stack[d];
    if (s->key[carried] < s->key[here]) { /* the carried one is used sooner: it stays */
      place(s, d, carried);
      carried = here;
    }
  }
  if (from != OFF_STACK) place(s, from, carried);
  else if (carried != OFF_STACK && s->depth < s->max) place(s, s->depth++, carried);
  else if (carried != OFF_STACK) s->pos[carried] = OFF_STACK;
  place(s, 0, node);
  if (s->depth == 0) s->depth = 1;
}

static int replay(opt_stack_t *s, upg__pagemap_t *node_of, const uint64_t *refs, size_t nrefs,
                  const uint32_t *next, uint64_t *hist) {
  for (size_t i = 0; i < nrefs; i++) {
    uint32_t *found = upg__pagemap_find(node_of, refs[i]), node;
    int rc;
    if (found != NULL) node = *found;
    else if ((rc = new_node(s, &node)) != 0 || (rc = upg__pagemap_put(node_of, refs[i], node)) != 0)
      return rc;
    size_t from = s->pos[node];
    if (from != OFF_STACK) hist[from + 1]++;
    s->key[node] = next[i];
    reference(s, node, from);
  }
  return 0;
}

int upg__mrc_opt(const uint64_t *refs, size_t nrefs, const size_t *sizes, size_t n,
                 uint64_t *hits) {
  if (n == 0) return 0;
  if (nrefs >= UPG__NEVER) return -E2BIG;
  opt_stack_t s = {.max = sizes[n - 1]};
  uint32_t *next = malloc((nrefs ? nrefs : 1) * sizeof *next);
  uint64_t *hist = calloc(s.max + 1, sizeof *hist);
  s.stack = malloc(s.max * sizeof *s.stack);
  upg__pagemap_t node_of = {0};
  int rc = -ENOMEM;
  if (next != NULL && hist != NULL && s.stack != NULL &&
      (rc = upg__pagemap_init(&node_of, 1024)) == 0 && (rc = upg__next_use(refs, nrefs, next)) == 0)
    rc = replay(&s, &node_of, refs, nrefs, next, hist);
  if (rc == 0) upg__mrc_cumulate(hist, sizes, n, hits);
  upg__pagemap_free(&node_of);
  free(next), free(hist), free(s.stack), free(s.pos), free(s.key);
  return rc;
}
