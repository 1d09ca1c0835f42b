/* advisor.h: the advisor, the pager's judge of what a fault should do
 * beyond loading the page it hit: how many pages to load and from where
 * (readahead, fault-around, a growing heap's windows), which protection a
 * loaded window opens with (the sequential writer's and the write
 * predictor's verdicts), and what to note as the program goes on. The
 * pager (pager.c) keeps the page transitions and asks the advisor at each
 * of its decision points, through the const table below; the advisor keeps
 * what it learns in each region's upg__advice_t, which nothing else reads.
 * Every function runs under the runtime lock, in the fault handler: no
 * malloc, no stdio, no system call. */
#ifndef UPAGER_ADVISOR_H
#define UPAGER_ADVISOR_H

#include <stddef.h>
#include <stdint.h>

typedef struct upg__region upg__region_t;

/* What the advisor knows of one region, zero at its creation. */
typedef struct upg__advice {
  /* Hints the program gave (upg_advise) or the heap set. */
  int access;      /* UPG_ADV_NORMAL, _SEQUENTIAL or _RANDOM */
  int fresh_dirty; /* first touch opens read-write and dirty (the heap,
                      whose new pages are written at once: one fault, not two) */
  /* The last window (advisor_window.c). */
  size_t ra_next;        /* the page a sequential run would fault on next */
  size_t ra_window;      /* pages the last fault loaded, ending at ra_next */
  size_t ra_written;     /* of those, how many the program has written since */
  unsigned ra_rw_streak; /* windows in a row opened writable */
  int ra_down;           /* ... downwards */
  /* The write predictor (advisor_writes.c): of the pages loads opened
   * read-only in this round, how many the program then wrote; and the last
   * round's verdict. */
  unsigned wp_loads, wp_writes, wp_sample;
  int wp_presume;
} upg__advice_t;

/* One load as the advisor plans it and then hears of it. */
typedef struct upg__load_plan {
  size_t page;    /* the page the load is for */
  int major;      /* that page has a copy in the store */
  int background; /* the prefetch thread's load, not a fault's */
  /* Set by plan: the pages from `page` on the load may take, and whether
   * the region is a heap growing in order. */
  size_t window;
  int growing;
  /* Set by claimed: the window after this one loads in the background
   * beside it, and the run's record already counts this one. */
  int ahead;
} upg__load_plan_t;

/* What a load did, for the advisor to note: pages [first, first+n) were
 * claimed, the first `kept` of them loaded and opened with `prot`. */
typedef struct upg__load_done {
  size_t first, n, kept;
  uint32_t prot;
  int all_fresh; /* every kept page is a fresh heap page, dirty from birth */
} upg__load_done_t;

/* What the pager does with a loaded window once it is open. */
typedef struct upg__load_next {
  size_t marker; /* the page left closed whose touch asks for the next
                     window (prefetch.c), or first + kept: none */
  int populate;  /* a growing heap's window: its memory made now */
  int downwards; /* which end the heap grows from: populate from the other */
} upg__load_next_t;

typedef struct upg__advisor {
  const char *name;
  /* Before the frame is taken: the window from plan->page on. */
  void (*plan)(upg__region_t *r, upg__load_plan_t *plan);
  /* Once the frame is taken (the lock may have been dropped meanwhile):
   * the fresh pages right below plan->page the load takes too. */
  size_t (*below)(upg__region_t *r, const upg__load_plan_t *plan);
  /* Once pages [first, first+n) are claimed, before their read: the page
   * whose window to load in the background at once, or SIZE_MAX. */
  size_t (*claimed)(upg__region_t *r, upg__load_plan_t *plan, size_t first, size_t n);
  /* A load that succeeded: the protection pages [first, first+kept) open
   * with. *presumed says they open writable though not known written: the
   * pager marks them dirty, so they are written back when they leave. */
  uint32_t (*open_prot)(upg__region_t *r, size_t first, size_t kept, int all_fresh, int *presumed);
  /* After every load, failed or not: notes the window, and says where its
   * marker goes and whether its memory is made now. */
  upg__load_next_t (*loaded)(upg__region_t *r, const upg__load_plan_t *plan,
                             const upg__load_done_t *done);
  /* The program wrote a resident page that was open read-only. */
  void (*wrote)(upg__region_t *r, size_t page);
  /* The program touched a window's marker: the page whose window to load
   * in the background, or SIZE_MAX for none. */
  size_t (*marker_touched)(upg__region_t *r);
} upg__advisor_t;

/* The advisor the pager consults. */
extern const upg__advisor_t upg__advisor;

/* Hints, under the lock: upg_advise's UPG_ADV_NORMAL, _SEQUENTIAL and
 * _RANDOM, and the heap's "every fresh page is written at once". */
void upg__advice_access(upg__region_t *r, int advice);
void upg__advice_fresh_dirty(upg__region_t *r);
/* Whether a fresh page of the region loads dirty (upg__advice_fresh_dirty). */
int upg__advice_born_dirty(const upg__region_t *r);

/* ---- the parts of the advisor (advisor.c puts them in its table) --------*/
/* advisor_window.c: readahead, fault-around and a growing heap's windows. */
void upg__window_plan(upg__region_t *r, upg__load_plan_t *plan);
size_t upg__window_below(upg__region_t *r, const upg__load_plan_t *plan);
size_t upg__window_claimed(upg__region_t *r, upg__load_plan_t *plan, size_t first, size_t n);
upg__load_next_t upg__window_loaded(upg__region_t *r, const upg__load_plan_t *plan,
                                    const upg__load_done_t *done);
/* The sequential writer's verdict on a successful load of n pages from
 * `page`: open them writable. */
int upg__window_writing(upg__region_t *r, size_t page, size_t n);
void upg__window_wrote(upg__region_t *r, size_t page);
size_t upg__window_marker_touched(upg__region_t *r);
/* advisor_writes.c: the write predictor, for single-page loads. */
/* Whether this load opens writable, presumed written (counts the sample). */
int upg__writes_presumed(upg__region_t *r);
/* A single-page load opened read-only: one more of the round. */
void upg__writes_read_only_load(upg__region_t *r);
void upg__writes_wrote(upg__region_t *r);

#endif
