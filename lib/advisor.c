/* advisor.c: the advisor the pager consults (advisor.h): the window
 * heuristics of advisor_window.c and the write predictor of
 * advisor_writes.c behind one table, and the hints a program gives. */
#define _GNU_SOURCE

#include "internal.h"

/* Writable when the pages are fresh heap pages, or the one page a write
 * fault loaded (marked dirty already), or the program is writing its way
 * through the region, or it writes what it loads (then presumed dirty);
 * read-only otherwise, so a write sets the bit. The sequential judge hears
 * of every load, to keep its streak. */
static uint32_t open_prot(upg__region_t *r, size_t first, size_t kept, int all_fresh,
                          int *presumed) {
  int writing = upg__window_writing(r, first, kept);
  *presumed = 0;
  if (all_fresh) return UPG_PROT_RW;
  if (kept == 1 && (atomic_load(&r->pte[first].word) & UPG__DIRTY)) return UPG_PROT_RW;
  if (writing) {
    *presumed = 1;
    UPG__COUNT(readahead_dirty, kept);
    return UPG_PROT_RW;
  }
  if (kept == 1 && upg__writes_presumed(r)) {
    *presumed = 1;
    UPG__COUNT(load_dirty, kept);
    return UPG_PROT_RW;
  }
  if (kept == 1) upg__writes_read_only_load(r);
  return UPG_PROT_READ;
}

static void wrote(upg__region_t *r, size_t page) {
  upg__window_wrote(r, page);
  upg__writes_wrote(r);
}

const upg__advisor_t upg__advisor = {
    .name = "adaptive",
    .plan = upg__window_plan,
    .below = upg__window_below,
    .claimed = upg__window_claimed,
    .open_prot = open_prot,
    .loaded = upg__window_loaded,
    .wrote = wrote,
    .marker_touched = upg__window_marker_touched,
};

void upg__advice_access(upg__region_t *r, int advice) { r->advice.access = advice; }

void upg__advice_fresh_dirty(upg__region_t *r) { r->advice.fresh_dirty = 1; }

int upg__advice_born_dirty(const upg__region_t *r) { return r->advice.fresh_dirty; }
