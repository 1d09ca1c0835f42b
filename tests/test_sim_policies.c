/* test_sim_policies.c: the simulator's policies against known answers,
 * the stack algorithms against simulation, and the page map. */
#include <errno.h>
#include <stdlib.h>

#include "mrc.h"
#include "pagemap.h"
#include "sim_helpers.h"
#include "tlb.h"

static const uint64_t classic[] = {7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1};
static const uint64_t belady[] = {1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5};

Test(sim_policy, classic_string_3_frames_fifo_15_lru_12_opt_9, .timeout = 10) {
  cr_assert_eq(sim_misses(&upg__sim_fifo, 3, classic, LEN(classic)), 15);
  cr_assert_eq(sim_misses(&upg__sim_lru, 3, classic, LEN(classic)), 12);
  cr_assert_eq(sim_misses(&upg__sim_opt, 3, classic, LEN(classic)), 9);
}

/* The runtime's own Clock through the adapter gives the 14 faults that
 * tests/test_policy.c works out by hand for the runtime's module. */
Test(sim_policy, clock_is_the_runtime_module_14_faults_on_classic, .timeout = 10) {
  cr_assert_eq(upg__sim_clock.runtime, &upg__policy_clock);
  cr_assert_eq(upg__sim_fifo.runtime, &upg__policy_fifo);
  cr_assert_eq(sim_misses(&upg__sim_clock, 3, classic, LEN(classic)), 14);
}

Test(sim_policy, fifo_and_clock_beladys_anomaly_9_faults_at_3_frames_10_at_4, .timeout = 10) {
  cr_assert_eq(sim_misses(&upg__sim_fifo, 3, belady, LEN(belady)), 9);
  cr_assert_eq(sim_misses(&upg__sim_fifo, 4, belady, LEN(belady)), 10);
  /* The runtime's Clock shows it too (worked by hand: at 4 frames the
   * sweep for 5 clears every bit, and each later miss evicts the page
   * about to be used). */
  cr_assert_eq(sim_misses(&upg__sim_clock, 3, belady, LEN(belady)), 9);
  cr_assert_eq(sim_misses(&upg__sim_clock, 4, belady, LEN(belady)), 10);
  /* Stack algorithms cannot show it. */
  cr_assert_leq(sim_misses(&upg__sim_lru, 4, belady, LEN(belady)),
                sim_misses(&upg__sim_lru, 3, belady, LEN(belady)));
  cr_assert_leq(sim_misses(&upg__sim_opt, 4, belady, LEN(belady)),
                sim_misses(&upg__sim_opt, 3, belady, LEN(belady)));
}

/* 1,2,3 fill; the hit on 1 sets its visited bit; 4 sweeps from the tail,
 * spares 1 and evicts 2, so the last 1 hits. FIFO evicts 1 instead. */
Test(sim_policy, sieve_spares_a_visited_page_fifo_does_not, .timeout = 10) {
  static const uint64_t refs[] = {1, 2, 3, 1, 4, 1};
  cr_assert_eq(sim_hits(&upg__sim_sieve, 3, refs, LEN(refs)), 2);
  cr_assert_eq(sim_hits(&upg__sim_fifo, 3, refs, LEN(refs)), 1);
}

/* All three visited in the order 3,2,1: LRU evicts 3 for 4; SIEVE clears
 * every bit in one sweep and evicts the tail, 1, so 3 still hits. */
Test(sim_policy, sieve_does_not_reorder_on_hits_unlike_lru, .timeout = 10) {
  static const uint64_t refs[] = {1, 2, 3, 3, 2, 1, 4, 3};
  cr_assert_eq(sim_hits(&upg__sim_sieve, 3, refs, LEN(refs)), 4);
  cr_assert_eq(sim_hits(&upg__sim_lru, 3, refs, LEN(refs)), 3);
}

/* A hot set touched twice (so ARC holds it in T2), then a one-time scan
 * longer than the cache, then the hot set again: ARC keeps it, LRU lost it. */
Test(sim_policy, arc_resists_a_scan_lru_does_not, .timeout = 10) {
  uint64_t refs[200];
  size_t n = 0;
  for (int round = 0; round < 2; round++)
    for (uint64_t p = 0; p < 4; p++) refs[n++] = p;
  for (uint64_t p = 100; p < 150; p++) refs[n++] = p;
  for (uint64_t p = 0; p < 4; p++) refs[n++] = p;
  uint64_t arc = sim_hits(&upg__sim_arc, 8, refs, n), lru = sim_hits(&upg__sim_lru, 8, refs, n);
  cr_assert_eq(lru, 4, "only the second round hits under LRU");
  cr_assert_eq(arc, 8, "ARC also keeps the hot set across the scan");
}

Test(sim_policy, opt_refuses_references_other_than_its_trace, .timeout = 10) {
  upg__sim_setup_t setup = {&upg__sim_opt, 2, classic, LEN(classic)};
  void *state;
  cr_assert_eq(upg__sim_opt.create(&setup, &state), 0);
  cr_assert_eq(upg__sim_opt.access(state, 7), 0);
  cr_assert_eq(upg__sim_opt.access(state, 5), -EINVAL);
  upg__sim_opt.destroy(state);
  setup.refs = NULL;
  cr_assert_eq(upg__sim_opt.create(&setup, &state), -EINVAL);
}

Test(sim_policy, one_frame_hits_only_repeats_for_every_policy, .timeout = 10) {
  static const uint64_t refs[] = {1, 1, 2, 2, 2, 1, 3};
  for (size_t i = 0; i < upg__sim_policy_count(); i++)
    cr_assert_eq(sim_hits(upg__sim_policy_at(i), 1, refs, LEN(refs)), 3, "%s",
                 upg__sim_policy_at(i)->name);
}

static uint64_t *random_trace(size_t n, uint64_t pages, unsigned seed) {
  uint64_t *refs = malloc(n * sizeof *refs);
  srand(seed);
  /* Skewed: half the references go to a tenth of the pages. */
  for (size_t i = 0; i < n; i++)
    refs[i] = (rand() % 2) ? (uint64_t)rand() % (pages / 10) : (uint64_t)rand() % pages;
  return refs;
}

Test(sim_policy, every_policy_is_bounded_by_opt_and_stack_policies_by_inclusion, .timeout = 30) {
  size_t n = 20000;
  uint64_t *refs = random_trace(n, 500, 1);
  static const size_t sizes[] = {10, 50, 100, 200};
  for (size_t s = 0; s < LEN(sizes); s++) {
    uint64_t opt = sim_hits(&upg__sim_opt, sizes[s], refs, n);
    for (size_t i = 0; i < upg__sim_policy_count(); i++)
      cr_assert_leq(sim_hits(upg__sim_policy_at(i), sizes[s], refs, n), opt, "%s",
                    upg__sim_policy_at(i)->name);
    if (s > 0)
      cr_assert_geq(sim_hits(&upg__sim_lru, sizes[s], refs, n),
                    sim_hits(&upg__sim_lru, sizes[s - 1], refs, n));
  }
  free(refs);
}

Test(sim_mrc, stack_passes_equal_simulation_at_every_size, .timeout = 60) {
  size_t n = 30000;
  uint64_t *refs = random_trace(n, 800, 2);
  static const size_t sizes[] = {1, 2, 7, 30, 64, 100, 333, 799, 800, 1000};
  uint64_t lru[LEN(sizes)], opt[LEN(sizes)];
  cr_assert_eq(upg__mrc_lru(refs, n, sizes, LEN(sizes), lru), 0);
  cr_assert_eq(upg__mrc_opt(refs, n, sizes, LEN(sizes), opt), 0);
  for (size_t s = 0; s < LEN(sizes); s++) {
    cr_assert_eq(lru[s], sim_hits(&upg__sim_lru, sizes[s], refs, n), "lru at %zu", sizes[s]);
    cr_assert_eq(opt[s], sim_hits(&upg__sim_opt, sizes[s], refs, n), "opt at %zu", sizes[s]);
  }
  free(refs);
}

Test(sim_mrc, classic_string_curves, .timeout = 10) {
  static const size_t sizes[] = {1, 2, 3, 4, 6};
  uint64_t lru[5], opt[5];
  cr_assert_eq(upg__mrc_lru(classic, LEN(classic), sizes, 5, lru), 0);
  cr_assert_eq(upg__mrc_opt(classic, LEN(classic), sizes, 5, opt), 0);
  cr_assert_eq(LEN(classic) - lru[2], 12);
  cr_assert_eq(LEN(classic) - opt[2], 9);
  cr_assert_eq(lru[0], 0, "no page repeats back to back");
  cr_assert_eq(lru[4], LEN(classic) - 6, "six distinct pages: only the cold misses at 6 frames");
  cr_assert_eq(opt[4], LEN(classic) - 6);
}

Test(pagemap, matches_a_plain_array_through_inserts_and_deletes, .timeout = 30) {
  enum { KEYS = 4096 };
  static int64_t shadow[KEYS];
  upg__pagemap_t m;
  cr_assert_eq(upg__pagemap_init(&m, 4), 0);
  for (size_t k = 0; k < KEYS; k++) shadow[k] = -1;
  srand(3);
  for (int step = 0; step < 200000; step++) {
    uint64_t k = (uint64_t)rand() % KEYS;
    if (rand() % 3) {
      cr_assert_eq(upg__pagemap_put(&m, k * 4096, (uint32_t)step), 0);
      shadow[k] = step;
    } else {
      upg__pagemap_remove(&m, k * 4096);
      shadow[k] = -1;
    }
  }
  size_t count = 0;
  for (size_t k = 0; k < KEYS; k++) {
    uint32_t *v = upg__pagemap_find(&m, k * 4096);
    if (shadow[k] < 0) cr_assert_null(v, "key %zu", k);
    else cr_assert(v != NULL && *v == (uint32_t)shadow[k], "key %zu", k);
    count += shadow[k] >= 0;
  }
  cr_assert_eq(m.count, count);
  upg__pagemap_free(&m);
}

Test(tlb, one_page_walks_once_and_allocates_one_table_per_level, .timeout = 10) {
  upg__tlb_t *t4k, *t2m;
  cr_assert_eq(upg__tlb_create(4, 4, 12, &t4k), 0);
  cr_assert_eq(upg__tlb_create(4, 4, 21, &t2m), 0);
  for (uint64_t a = 0x7f0000000000; a < 0x7f0000000000 + 4096; a += 64) {
    upg__tlb_access(t4k, a);
    upg__tlb_access(t2m, a);
  }
  const upg__tlb_stats_t *s = upg__tlb_stats(t4k);
  cr_assert_eq(s->references, 64);
  cr_assert_eq(s->hits, 63);
  cr_assert_eq(s->walks, 1);
  cr_assert_eq(s->walk_reads, 4);
  cr_assert_eq(s->table_pages, 4, "PML4, PDPT, PD, PT");
  s = upg__tlb_stats(t2m);
  cr_assert_eq(s->walk_reads, 3);
  cr_assert_eq(s->table_pages, 3, "a 2 MiB page needs no last-level table");
  upg__tlb_destroy(t4k), upg__tlb_destroy(t2m);
}

/* 1024 pages of 4 KiB, 4 MiB in all, swept twice with a 64-entry TLB:
 * every 4 KiB access misses (LRU on a cyclic sweep larger than the TLB),
 * two 2 MiB pages always hit after their first walk. Tables: 4 KiB needs
 * 2 last-level tables (512 pages each) under one PD, one PDPT, one root. */
Test(tlb, sweep_larger_than_the_tlb_misses_4k_but_not_2m, .timeout = 10) {
  upg__tlb_t *t4k, *t2m;
  cr_assert_eq(upg__tlb_create(64, 4, 12, &t4k), 0);
  cr_assert_eq(upg__tlb_create(64, 4, 21, &t2m), 0);
  for (int pass = 0; pass < 2; pass++)
    for (uint64_t a = 0; a < 4u << 20; a += 4096) upg__tlb_access(t4k, a), upg__tlb_access(t2m, a);
  cr_assert_eq(upg__tlb_stats(t4k)->hits, 0);
  cr_assert_eq(upg__tlb_stats(t4k)->walks, 2048);
  cr_assert_eq(upg__tlb_stats(t4k)->table_pages, 5);
  cr_assert_eq(upg__tlb_stats(t2m)->walks, 2);
  cr_assert_eq(upg__tlb_stats(t2m)->table_pages, 3);
  upg__tlb_destroy(t4k), upg__tlb_destroy(t2m);
}

Test(tlb, levels_set_the_walk_length_and_the_tables, .timeout = 10) {
  for (unsigned levels = 2; levels <= 5; levels++) {
    upg__tlb_t *t4k, *t2m;
    cr_assert_eq(upg__tlb_create(8, levels, 12, &t4k), 0);
    cr_assert_eq(upg__tlb_create(8, levels, 21, &t2m), 0);
    upg__tlb_access(t4k, 0x1000), upg__tlb_access(t2m, 0x1000);
    cr_assert_eq(upg__tlb_stats(t4k)->walk_reads, levels);
    cr_assert_eq(upg__tlb_stats(t4k)->table_pages, levels);
    cr_assert_eq(upg__tlb_stats(t2m)->table_pages, levels - 1);
    upg__tlb_destroy(t4k), upg__tlb_destroy(t2m);
  }
  upg__tlb_t *t;
  cr_assert_eq(upg__tlb_create(8, 6, 12, &t), -EINVAL);
  cr_assert_eq(upg__tlb_create(8, 4, 16, &t), -EINVAL);
  cr_assert_eq(upg__tlb_create(0, 4, 12, &t), -EINVAL);
}
