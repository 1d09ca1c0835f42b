/* advisor_writes.c: the write predictor. A program that writes nearly
 * every page it loads at random (an update of scattered records) pays a
 * write fault for each: a signal and an mprotect, where writing back a page
 * that stayed clean costs one slot of a batched write. So when the last
 * round's single-page loads opened read-only were nearly all written, such
 * loads open writable and dirty, but for a sample that keeps the measure
 * going; a program that only reads never gets there, and its clean pages
 * still leave without I/O. Sequential windows have their own judge
 * (upg__window_writing). Owns the wp_* fields of upg__advice_t. Under the
 * lock, in the fault handler. */
#define _GNU_SOURCE

#include "internal.h"

/* Loads a round of the write predictor judges, and the share of them the
 * program must write (7/8) for the next round's loads to open writable. */
#define WP_ROUND 64
#define WP_SAMPLE 8 /* while presuming, one load in 8 still opens read-only */

int upg__writes_presumed(upg__region_t *r) {
  upg__advice_t *a = &r->advice;
  return a->wp_presume && ++a->wp_sample % WP_SAMPLE != 0;
}

void upg__writes_read_only_load(upg__region_t *r) {
  upg__advice_t *a = &r->advice;
  if (++a->wp_loads < WP_ROUND) return;
  a->wp_presume = 8 * a->wp_writes >= 7 * a->wp_loads;
  a->wp_loads = a->wp_writes = 0;
}

void upg__writes_wrote(upg__region_t *r) { r->advice.wp_writes++; }
