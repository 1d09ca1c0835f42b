/* mrc_lru.c: LRU stack distances (Bennett and Kruskal, 1975). A Fenwick
 * tree over time marks, for each distinct page, the position of its last
 * reference; the marks after a page's previous reference count the
 * distinct pages touched since, which is its depth in the LRU stack. */
#include <errno.h>
#include <stdlib.h>

#include "mrc.h"
#include "pagemap.h"

static void fenwick_add(uint32_t *tree, size_t n, size_t i, int32_t delta) {
  for (; i <= n; i += i & -i) tree[i] += (uint32_t)delta;
}

static uint32_t fenwick_prefix(const uint32_t *tree, size_t i) {
  uint32_t sum = 0;
  for (; i > 0; i -= i & -i) sum += tree[i];
  return sum;
}

int upg__mrc_lru(const uint64_t *refs, size_t nrefs, const size_t *sizes, size_t n,
                 uint64_t *hits) {
  if (n == 0) return 0;
  if (nrefs >= UINT32_MAX) return -E2BIG;
  size_t max = sizes[n - 1];
  uint64_t *hist = calloc(max + 1, sizeof *hist);
  uint32_t *tree = calloc(nrefs + 1, sizeof *tree);
  upg__pagemap_t last; /* page -> 1-based position of its last reference */
  int rc = hist == NULL || tree == NULL ? -ENOMEM : upg__pagemap_init(&last, 1024);
  if (rc != 0) {
    free(hist), free(tree);
    return rc;
  }
  uint32_t distinct = 0;
  for (size_t i = 1; i <= nrefs && rc == 0; i++) {
    uint32_t *seen = upg__pagemap_find(&last, refs[i - 1]);
    if (seen != NULL) {
      size_t depth = distinct - fenwick_prefix(tree, *seen) + 1;
      if (depth <= max) hist[depth]++;
      fenwick_add(tree, nrefs, *seen, -1);
      *seen = (uint32_t)i;
    } else {
      rc = upg__pagemap_put(&last, refs[i - 1], (uint32_t)i);
      distinct++;
    }
    fenwick_add(tree, nrefs, i, 1);
  }
  if (rc == 0) upg__mrc_cumulate(hist, sizes, n, hits);
  upg__pagemap_free(&last);
  free(hist), free(tree);
  return rc;
}
