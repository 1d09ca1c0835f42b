/* pagetable.c: page-table entries: their word, sleeping on a busy entry,
 * and the access the fault source has given the program, as recorded in
 * each entry. */
#define _GNU_SOURCE
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

int upg__pte_run_has_prot(const upg__region_t *r, size_t first, size_t n, uint32_t prot) {
  for (size_t page = first; page < first + n; page++)
    if (upg__pte_prot(atomic_load(&r->pte[page].word)) != prot) return 0;
  return 1;
}

void upg__pte_set_prot(upg__region_t *r, size_t first, size_t n, uint32_t prot) {
  for (size_t page = first; page < first + n; page++) {
    atomic_fetch_and(&r->pte[page].word, ~UPG__PROT_MASK);
    atomic_fetch_or(&r->pte[page].word, prot << UPG__PROT_SHIFT);
  }
}
