/* mrc.h: miss-ratio curves of the stack algorithms in one pass each. For a
 * stack algorithm the cache of k frames always holds the top k entries of
 * one stack, so a reference found at depth d hits for every k >= d and one
 * pass gives the hits at every size (Mattson, Gecsei, Slutz and Traiger,
 * "Evaluation techniques for storage hierarchies", IBM Systems Journal
 * 1970). sizes[] ascend; hits[k] receives the hits at sizes[k]. */
#ifndef UPAGER_SIM_MRC_H
#define UPAGER_SIM_MRC_H

#include <stddef.h>
#include <stdint.h>

/* LRU: the stack is recency; depth counts the distinct pages touched since
 * the last reference, O(log n) a reference with a Fenwick tree. */
int upg__mrc_lru(const uint64_t *refs, size_t nrefs, const size_t *sizes, size_t n, uint64_t *hits);
/* OPT: the stack is ordered by next use, kept to depth max(sizes); O(depth)
 * a reference. */
int upg__mrc_opt(const uint64_t *refs, size_t nrefs, const size_t *sizes, size_t n, uint64_t *hits);

/* Turns a histogram of depths (hist[d] for d = 1..max(sizes)) into the
 * hits at each size: a reference at depth d hits in every cache of d or
 * more frames. */
static inline void upg__mrc_cumulate(const uint64_t *hist, const size_t *sizes, size_t n,
                                     uint64_t *hits) {
  uint64_t sum = 0;
  for (size_t k = 0, d = 1; k < n; k++) {
    for (; d <= sizes[k]; d++) sum += hist[d];
    hits[k] = sum;
  }
}

#endif
