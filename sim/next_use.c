/* next_use.c: the next-use table, by one backward pass with a page map of
 * each page's most recent (in the backward sense) index. */
#include "next_use.h"

#include "pagemap.h"

int upg__next_use(const uint64_t *refs, size_t nrefs, uint32_t *next) {
  upg__pagemap_t last;
  int rc = upg__pagemap_init(&last, 1024);
  if (rc != 0) return rc;
  for (size_t i = nrefs; i-- > 0;) {
    uint32_t *seen = upg__pagemap_find(&last, refs[i]);
    next[i] = seen != NULL ? *seen : UPG__NEVER;
    if (seen != NULL) *seen = (uint32_t)i;
    else if ((rc = upg__pagemap_put(&last, refs[i], (uint32_t)i)) != 0) break;
  }
  upg__pagemap_free(&last);
  return rc;
}
