/* pagetable.c: page-table entries: their word, sleeping on a busy entry,
 * and the program view's protection with the count of kernel mappings.
 *
 * Every run of pages with one protection is a kernel mapping (VMA), and the
 * kernel allows vm.max_map_count of them. The count follows from the
 * protections of a page's two neighbours, so it is kept exactly as pages
 * change, and raising a page's access never takes it past the limit. */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/mman.h>

#include "internal.h"

void upg__pte_store(upg__pte_t *pte, uint32_t word) {
  uint32_t old = atomic_exchange(&pte->word, word & ~UPG__WAITERS);
  if (old & UPG__WAITERS) upg__os_wake_all((const uint32_t *)&pte->word);
}

void upg__pte_wait(upg__pte_t *pte) {
  /* An evicting page may only wait for its batch to be finished. */
  if (upg__pte_state(atomic_load(&pte->word)) == UPG__EVICTING && upg__frames_reap() > 0) return;
  uint32_t w = atomic_fetch_or(&pte->word, UPG__WAITERS) | UPG__WAITERS;
  upg__unlock();
  upg__os_wait((const uint32_t *)&pte->word, w);
  upg__lock();
}

/* The protection as the kernel sees it; an unmapped page is a hole, which
 * never merges with its neighbours. */
static uint32_t view_kind(const upg__region_t *r, size_t page) {
  uint32_t w = atomic_load_explicit(&r->pte[page].word, memory_order_relaxed);
  return upg__pte_state(w) == UPG__UNMAPPED ? 3u : upg__pte_prot(w);
}

long upg__pte_maps_delta(const upg__region_t *r, size_t first, size_t n, uint32_t prot) {
  size_t last = first + n - 1;
  long delta = 0;
  /* Inside the run every boundary disappears. */
  for (size_t page = first + 1; page <= last; page++)
    delta -= view_kind(r, page) != view_kind(r, page - 1);
  if (first > 0) {
    uint32_t left = view_kind(r, first - 1);
    delta += (long)(left != prot) - (long)(left != view_kind(r, first));
  }
  if (last + 1 < r->npages) {
    uint32_t right = view_kind(r, last + 1);
    delta += (long)(right != prot) - (long)(right != view_kind(r, last));
  }
  return delta;
}

static int os_prot(uint32_t prot) {
  return prot == UPG_PROT_RW ? PROT_READ | PROT_WRITE : prot == UPG_PROT_READ ? PROT_READ : PROT_NONE;
}

void upg__maps_add(upg__region_t *r, long delta) {
  r->maps += delta;
  upg__rt.maps_in_use += delta;
  UPG__SET(maps_in_use, (uint64_t)upg__rt.maps_in_use);
  if ((uint64_t)upg__rt.maps_in_use > upg__counters.maps_peak)
    UPG__SET(maps_peak, (uint64_t)upg__rt.maps_in_use);
}

static int run_has_prot(const upg__region_t *r, size_t first, size_t n, uint32_t prot) {
  for (size_t page = first; page < first + n; page++)
    if (upg__pte_prot(atomic_load(&r->pte[page].word)) != prot) return 0;
  return 1;
}

int upg__pte_protect_run(upg__region_t *r, size_t first, size_t n, uint32_t prot) {
  if (run_has_prot(r, first, n, prot)) return 0;
  long delta = upg__pte_maps_delta(r, first, n, prot);
  /* Closing never needs room: the limit is half the kernel's. */
  if (prot != UPG_PROT_NONE && delta > 0 &&
      upg__rt.maps_in_use + delta > (long)upg__rt.cfg.max_maps) {
    int rc = upg__frames_demote(delta);
    if (rc != 0) return rc;
    delta = upg__pte_maps_delta(r, first, n, prot);
  }
  size_t unit = upg__rt.page_size;
  int rc = upg__os_protect(r->base + first * unit, n * unit, os_prot(prot));
  if (rc != 0) return rc;
  upg__maps_add(r, delta);
  for (size_t page = first; page < first + n; page++) {
    atomic_fetch_and(&r->pte[page].word, ~UPG__PROT_MASK);
    atomic_fetch_or(&r->pte[page].word, prot << UPG__PROT_SHIFT);
  }
  return 0;
}

int upg__pte_protect(upg__region_t *r, size_t page, uint32_t prot) {
  return upg__pte_protect_run(r, page, 1, prot);
}

void upg__pte_set_unmapped(upg__region_t *r, size_t page) {
  upg__maps_add(r, upg__pte_maps_delta(r, page, 1, 3u));
  upg__pte_store(&r->pte[page], UPG__UNMAPPED);
}
