/* frames.c: the frame budget. A frame is one paging unit of resident
 * memory; there are budget/page_size of them and every page that is
 * loading, resident or evicting holds one, so the budget is never exceeded.
 * This file hands out frames, asks the policy for victims and evicts them,
 * and protects pages early when kernel mappings run short. */
#define _GNU_SOURCE
#include <errno.h>
#include <time.h>

#include "internal.h"

/* Victims whose write-back failed are passed over for the rest of one
 * request; after this many failures the request gives up. */
#define MAX_FAILED_VICTIMS 16

typedef struct victim_search {
  size_t failed[MAX_FAILED_VICTIMS];
  size_t nfailed;
} victim_search_t;

static size_t demote_hand;

int upg__frames_create(size_t nframes) {
  upg__rt.frames = upg__os_alloc(nframes * sizeof(upg__frame_t));
  upg__rt.free_frames = upg__os_alloc(nframes * sizeof(size_t));
  if (upg__rt.frames == NULL || upg__rt.free_frames == NULL) goto fail;
  upg__rt.nframes = nframes;
  for (size_t i = 0; i < nframes; i++) upg__rt.free_frames[i] = nframes - 1 - i;
  upg__rt.free_count = nframes;
  upg__rt.busy_frames = upg__rt.pinned_pages = 0;
  demote_hand = 0;
  if (upg__rt.policy->create(nframes, &upg__rt.policy_state) == 0) return 0;
fail:
  upg__os_free(upg__rt.frames, nframes * sizeof(upg__frame_t));
  upg__os_free(upg__rt.free_frames, nframes * sizeof(size_t));
  return -ENOMEM;
}

void upg__frames_destroy(void) {
  upg__rt.policy->destroy(upg__rt.policy_state);
  upg__os_free(upg__rt.frames, upg__rt.nframes * sizeof(upg__frame_t));
  upg__os_free(upg__rt.free_frames, upg__rt.nframes * sizeof(size_t));
  upg__rt.frames = NULL;
  upg__rt.free_frames = NULL;
  upg__rt.nframes = 0;
}

static upg__pte_t *frame_pte(size_t frame) {
  upg__frame_t *f = &upg__rt.frames[frame];
  return f->region == NULL ? NULL : &f->region->pte[f->page];
}

static int frame_evictable(void *ctx, size_t frame) {
  const victim_search_t *search = ctx;
  upg__pte_t *pte = frame_pte(frame);
  if (pte == NULL) return 0;
  uint32_t w = atomic_load(&pte->word);
  if (upg__pte_state(w) != UPG__RESIDENT || upg__pte_pins(w) != 0) return 0;
  for (size_t i = 0; i < search->nfailed; i++)
    if (search->failed[i] == frame) return 0;
  return 1;
}

/* Clearing the bit also closes the page, so its next touch is a minor
 * fault that sets the bit again: the reference bit the hardware would keep. */
static int frame_test_clear_referenced(void *ctx, size_t frame) {
  (void)ctx;
  upg__frame_t *f = &upg__rt.frames[frame];
  upg__pte_t *pte = &f->region->pte[f->page];
  if (!(atomic_fetch_and(&pte->word, ~UPG__REFERENCED) & UPG__REFERENCED)) return 0;
  /* If the kernel refuses, the page stays open and merely loses its bit. */
  (void)upg__pte_protect(f->region, f->page, UPG_PROT_NONE);
  return 1;
}

/* Writes a dirty page out; on failure it stays resident and dirty. */
static int write_back(upg__region_t *r, size_t page, size_t frame) {
  upg__pte_t *pte = &r->pte[page];
  uint32_t slot = pte->slot;
  int fresh = slot == UPG__NO_SLOT, rc;
  if (fresh && (rc = upg__swap_alloc(&upg__rt.swap, &slot)) != 0) return rc;
  uint32_t w = atomic_load(&pte->word);
  upg__pte_store(pte, (w & ~UPG__STATE_MASK) | UPG__EVICTING);
  upg__rt.busy_frames++;
  upg__unlock();
  rc = upg__swap_write(&upg__rt.swap, slot, r->alias + page * upg__rt.page_size);
  upg__lock();
  upg__rt.busy_frames--;
  w = atomic_load(&pte->word);
  if (rc != 0) {
    if (fresh) upg__swap_unalloc(&upg__rt.swap, slot);
    upg__pte_store(pte, (w & ~UPG__STATE_MASK) | UPG__RESIDENT);
    upg__rt.policy->loaded(upg__rt.policy_state, frame);
    return rc;
  }
  pte->slot = slot;
  return 0;
}

/* Evicts the page in `frame`, which the caller then owns. */
static int evict(size_t frame) {
  upg__region_t *r = upg__rt.frames[frame].region;
  size_t page = upg__rt.frames[frame].page, unit = upg__rt.page_size;
  upg__pte_t *pte = &r->pte[page];
  int rc = upg__pte_protect(r, page, UPG_PROT_NONE);
  if (rc == 0 && (atomic_load(&pte->word) & UPG__DIRTY)) {
    rc = write_back(r, page, frame);
    if (rc == 0) UPG__COUNT(evict_dirty, 1);
  } else if (rc == 0) {
    UPG__COUNT(evict_clean, 1);
  }
  if (rc != 0) return rc;
  /* The frame's memory goes back to the kernel; the hole reads as zeros,
   * which is what a later first touch needs. */
  rc = upg__os_punch_hole(r->memfd, (uint64_t)page * unit, unit);
  if (rc != 0) upg__fatal("cannot release an evicted frame", rc);
  upg__pte_store(pte, UPG__ABSENT);
  upg__rt.frames[frame].region = NULL;
  upg__stats_resident(-1);
  return 0;
}

/* Frames are all busy with other threads' I/O: let one of them finish. */
static void wait_for_busy_frame(void) {
  static const struct timespec pause = {0, 50 * 1000};
  upg__unlock();
  nanosleep(&pause, NULL);
  upg__lock();
}

long upg__frames_obtain(void) {
  victim_search_t search = {.nfailed = 0};
  const upg__policy_env_t env = {frame_evictable, frame_test_clear_referenced, &search};
  int last_error = UPG_ENOMEM;
  for (;;) {
    if (upg__rt.free_count > 0) return (long)upg__rt.free_frames[--upg__rt.free_count];
    long frame = upg__rt.policy->victim(upg__rt.policy_state, &env);
    if (frame < 0) {
      if (upg__rt.busy_frames == 0) return last_error;
      wait_for_busy_frame();
      continue;
    }
    int rc = evict((size_t)frame);
    if (rc == 0) return frame;
    last_error = rc;
    search.failed[search.nfailed++] = (size_t)frame;
    if (search.nfailed == MAX_FAILED_VICTIMS) return rc;
  }
}

void upg__frames_release(size_t frame) {
  upg__rt.frames[frame].region = NULL;
  upg__rt.free_frames[upg__rt.free_count++] = frame;
}

void upg__frames_discard(upg__region_t *r, size_t page) {
  size_t frame = r->pte[page].frame;
  upg__rt.policy->freed(upg__rt.policy_state, frame);
  upg__frames_release(frame);
  upg__stats_resident(-1);
}

/* Closes open, unpinned resident pages whose closing does not add a
 * mapping, until `need` more fit under the limit. */
int upg__frames_demote(long need) {
  for (size_t scanned = 0; upg__rt.maps_in_use + need > (long)upg__rt.cfg.max_maps; scanned++) {
    if (scanned >= 3 * upg__rt.nframes) return UPG_EMAPLIMIT;
    size_t frame = demote_hand;
    demote_hand = (demote_hand + 1) % upg__rt.nframes;
    upg__frame_t *f = &upg__rt.frames[frame];
    upg__pte_t *pte = frame_pte(frame);
    if (pte == NULL) continue;
    uint32_t w = atomic_load(&pte->word);
    if (upg__pte_state(w) != UPG__RESIDENT || upg__pte_pins(w) != 0 ||
        upg__pte_prot(w) == UPG_PROT_NONE ||
        upg__pte_maps_delta(f->region, f->page, UPG_PROT_NONE) > 0)
      continue;
    atomic_fetch_and(&pte->word, ~UPG__REFERENCED);
    if (upg__pte_protect(f->region, f->page, UPG_PROT_NONE) == 0) UPG__COUNT(maps_demotions, 1);
  }
  return 0;
}
