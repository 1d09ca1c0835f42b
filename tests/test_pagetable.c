/* test_pagetable.c: the page-table entry and the count of kernel mappings
 * it keeps: how many mappings a protection change adds or removes follows
 * from the neighbours alone, and the metadata a resident page costs. */
#include <criterion/criterion.h>

#include "internal.h"

#define NPAGES 8

static upg__pte_t table[NPAGES];
static upg__region_t region = {.pte = table, .npages = NPAGES};

static void set_prots(const char *prots) { /* one letter a page: n, r, w, u (unmapped) */
  for (size_t i = 0; i < NPAGES; i++) {
    uint32_t w = prots[i] == 'u' ? UPG__UNMAPPED : UPG__RESIDENT;
    uint32_t prot = prots[i] == 'r' ? UPG_PROT_READ : prots[i] == 'w' ? UPG_PROT_RW : UPG_PROT_NONE;
    atomic_store(&table[i].word, w | prot << UPG__PROT_SHIFT);
  }
}

Test(pagetable, opening_a_page_inside_a_closed_run_splits_it_in_three, .timeout = 10) {
  set_prots("nnnnnnnn");
  cr_assert_eq(upg__pte_maps_delta(&region, 3, 1, UPG_PROT_READ), 2);
}

Test(pagetable, opening_a_page_next_to_an_open_one_extends_that_mapping, .timeout = 10) {
  set_prots("nnnrnnnn");
  cr_assert_eq(upg__pte_maps_delta(&region, 4, 1, UPG_PROT_READ), 0);
  cr_assert_eq(upg__pte_maps_delta(&region, 2, 1, UPG_PROT_READ), 0);
}

Test(pagetable, closing_the_gap_between_two_open_pages_merges_three_into_one, .timeout = 10) {
  set_prots("nnrnrnnn");
  cr_assert_eq(upg__pte_maps_delta(&region, 3, 1, UPG_PROT_READ), -2);
}

Test(pagetable, the_ends_of_the_region_have_one_neighbour, .timeout = 10) {
  set_prots("nnnnnnnn");
  cr_assert_eq(upg__pte_maps_delta(&region, 0, 1, UPG_PROT_RW), 1);
  cr_assert_eq(upg__pte_maps_delta(&region, NPAGES - 1, 1, UPG_PROT_RW), 1);
}

Test(pagetable, a_run_changes_only_its_edges_and_loses_its_inner_boundaries, .timeout = 10) {
  set_prots("nrwrwnnn"); /* n|r|w|r|w|n n n: 6 mappings */
  cr_assert_eq(upg__pte_maps_delta(&region, 1, 4, UPG_PROT_NONE), -5);
  cr_assert_eq(upg__pte_maps_delta(&region, 1, 4, UPG_PROT_READ), -3);
}

Test(pagetable, an_unmapped_hole_never_merges_with_a_neighbour, .timeout = 10) {
  set_prots("nnnunnnn");
  cr_assert_eq(upg__pte_maps_delta(&region, 2, 1, UPG_PROT_NONE), 0);
  cr_assert_eq(upg__pte_maps_delta(&region, 2, 1, UPG_PROT_READ), 1);
}

Test(pagetable, the_entry_word_keeps_state_flags_protection_and_pins_apart, .timeout = 10) {
  uint32_t w = UPG__EVICTING | UPG__DIRTY | UPG__REFERENCED | UPG_PROT_RW << UPG__PROT_SHIFT |
               3 * UPG__PIN_ONE;
  cr_assert_eq(upg__pte_state(w), UPG__EVICTING);
  cr_assert_eq(upg__pte_prot(w), UPG_PROT_RW);
  cr_assert_eq(upg__pte_pins(w), 3);
  cr_assert(w & UPG__DIRTY && w & UPG__REFERENCED && !(w & UPG__WAITERS));
}

/* Issue 5's bound: a resident page costs its entry, its frame record and
 * its place on the free list, under Clock (which keeps no per-frame state). */
Test(pagetable, a_resident_page_costs_at_most_32_bytes_of_metadata, .timeout = 10) {
  size_t bytes = sizeof(upg__pte_t) + sizeof(upg__frame_t) + sizeof(uint32_t);
  cr_assert_leq(bytes, 32, "%zu bytes", bytes);
}
