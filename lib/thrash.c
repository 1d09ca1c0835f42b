/* thrash.c: the thrashing detector. It watches the loads the fault path
 * makes and says when the working set exceeds the budget, once, on stderr,
 * with the numbers, and keeps the verdict in the stats.
 *
 * Reuse distance: every load is stamped with a global count of loads.
 * When a page comes back from swap, the loads made since its previous load
 * are its reuse distance: about the number of frames that would have kept
 * it resident. Refaults at distances within a few budgets mean the pages
 * keep coming back for want of room (thrashing); refaults far beyond that
 * are a scan, which no budget would help. A window of WINDOW_MAJORS
 * pages back from swap is judged thrashing when they came fast and their median reuse
 * distance is within MAX_DISTANCE_BUDGETS budgets. Runs under the runtime lock, in
 * the fault handler: no malloc, no stdio. Its state is upg__rt.thrash. */
#define _GNU_SOURCE
#include <string.h>

#include "internal.h"

#define WINDOW_MAJORS 1024                 /* a window is this many refaults */
#define WINDOW_NS 1000000000ull            /* that came within a second: */
#define MIN_MAJORS_PER_SECOND 1000         /* slower paging is not a storm */
#define MAX_DISTANCE_BUDGETS 4             /* median reuse within 4 budgets */
#define WARNING_INTERVAL_NS 30000000000ull /* at most one warning in 30 s */
#define DISTANCE_BUCKETS UPG__THRASH_BUCKETS
#define MAX_TABLES UPG__THRASH_TABLES

/* This file's part of the runtime: all of the detector's state. */
#define T (&upg__rt.thrash)

static uint32_t *stamps_of(const upg__region_t *r) {
  upg__stamp_table_t *tables = T->tables, *free_table = NULL;
  for (int i = 0; i < MAX_TABLES; i++) {
    if (tables[i].region == r && tables[i].npages == r->npages) return tables[i].stamp;
    if (free_table == NULL && tables[i].region == NULL) free_table = &tables[i];
  }
  if (free_table == NULL) { /* regions came and went: recycle the first */
    free_table = &tables[0];
    upg__os_free(free_table->stamp, free_table->npages * sizeof(uint32_t));
  }
  uint32_t *stamp = upg__os_alloc(r->npages * sizeof(uint32_t));
  *free_table = (upg__stamp_table_t){stamp != NULL ? r : NULL, r->npages, stamp};
  return stamp;
}

void upg__thrash_forget_region(const upg__region_t *r) {
  upg__stamp_table_t *tables = T->tables;
  for (int i = 0; i < MAX_TABLES; i++) {
    if (tables[i].region != r) continue;
    upg__os_free(tables[i].stamp, tables[i].npages * sizeof(uint32_t));
    tables[i] = (upg__stamp_table_t){NULL, 0, NULL};
  }
}

/* The tables went with the regions of the runtime before. */
void upg__thrash_reset(void) { *T = (upg__thrash_part_t){0}; }

static void append_number(char *buf, size_t size, uint64_t v) {
  char digits[24];
  int n = 0;
  do digits[n++] = (char)('0' + v % 10), v /= 10;
  while (v > 0);
  size_t len = strlen(buf);
  while (n > 0 && len + 1 < size) buf[len++] = digits[--n];
  buf[len] = '\0';
}

static void append(char *buf, size_t size, const char *text) {
  strncat(buf, text, size - strlen(buf) - 1);
}

static void warn(uint64_t majors_per_second, uint64_t median_pages) {
  char msg[400] = "upager: warning: thrashing: ";
  size_t frames = upg__rt.nframes, kib = upg__rt.page_size / 1024;
  append_number(msg, sizeof msg, majors_per_second);
  append(msg, sizeof msg, " pages a second come back from swap, half of them reused within ");
  append_number(msg, sizeof msg, median_pages);
  append(msg, sizeof msg, " page loads of being evicted, while the budget is ");
  append_number(msg, sizeof msg, frames);
  append(msg, sizeof msg, " pages: the working set exceeds the budget; a budget of about ");
  append_number(msg, sizeof msg, median_pages * kib / 1024 + 1);
  append(msg, sizeof msg, "M, or working in smaller pieces, would stop it\n");
  upg__os_warn(msg);
}

/* The distance below which half of the window's refaults fell, in pages. */
static uint64_t median_distance(void) {
  uint64_t seen = 0, quarter = upg__rt.nframes / 4 > 0 ? upg__rt.nframes / 4 : 1;
  for (int b = 0; b <= DISTANCE_BUCKETS; b++) {
    seen += T->distance_hist[b];
    if (2 * seen >= T->window_majors) return (uint64_t)(b + 1) * quarter;
  }
  return UINT64_MAX;
}

static void start_window(uint64_t now) {
  T->window_start_ns = now;
  T->window_majors = 0;
  memset(T->distance_hist, 0, sizeof T->distance_hist);
}

/* Judged when full, at a refault, so a verdict always belongs to the
 * faults that made it; a window too slow to fill is dropped unjudged. */
static void judge_window(uint64_t now) {
  uint64_t elapsed = now - T->window_start_ns;
  if (elapsed > WINDOW_NS) {
    start_window(now);
    return;
  }
  if (T->window_majors < WINDOW_MAJORS) return;
  uint64_t rate = T->window_majors * 1000000000ull / (elapsed > 0 ? elapsed : 1);
  uint64_t median = median_distance();
  if (rate >= MIN_MAJORS_PER_SECOND && median <= MAX_DISTANCE_BUDGETS * upg__rt.nframes) {
    UPG__COUNT(thrash_windows, 1);
    UPG__SET(thrash_working_set, median);
    if (T->last_warning_ns == 0 || now - T->last_warning_ns >= WARNING_INTERVAL_NS) {
      T->last_warning_ns = now;
      UPG__COUNT(thrash_warnings, 1);
      warn(rate, median);
    }
  }
  start_window(now);
}

/* Counted in pages, not faults: one fault can load a readahead window,
 * and the prefetch thread loads windows without a fault at all. */
void upg__thrash_loaded(const upg__region_t *r, size_t first, size_t n) {
  uint32_t *stamp = stamps_of(r);
  if (stamp == NULL) return;
  uint64_t quarter = upg__rt.nframes / 4 > 0 ? upg__rt.nframes / 4 : 1;
  int refaulted = 0;
  for (size_t page = first; page < first + n; page++) {
    T->loads++;
    if (r->pte[page].slot != UPG__NO_SLOT) { /* back from swap */
      uint64_t bucket = (uint32_t)(T->loads - stamp[page]) / quarter;
      T->distance_hist[bucket < DISTANCE_BUCKETS ? bucket : DISTANCE_BUCKETS]++;
      T->window_majors++;
      refaulted = 1;
    }
    stamp[page] = T->loads;
  }
  if (refaulted) judge_window(upg__os_now_ns());
}
