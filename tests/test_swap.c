/* test_swap.c: the file store and its slots: runs of consecutive slots,
 * reuse before growth, the file's bounded growth, pages put read back, and
 * released space given back in long runs. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define SLOT 4096

static upg__slots_t sw;

static void open_swap(void) {
  memset(&upg__counters, 0, sizeof upg__counters);
  cr_assert_eq(upg__slots_init(&sw), 0);
}

static uint32_t alloc(uint32_t want, long expect_n) {
  uint32_t first;
  long n = upg__slots_alloc_run(&sw, want, &first);
  cr_assert_eq(n, expect_n, "asked %u, got %ld", want, n);
  return first;
}

Test(swap, runs_are_consecutive_and_start_at_slot_one, .timeout = 10) {
  open_swap();
  cr_assert_eq(alloc(8, 8), 1);
  cr_assert_eq(alloc(4, 4), 9);
  cr_assert_eq(sw.high, 12);
  cr_assert_eq(upg__counters.swap_slots_in_use, 12);
}

Test(swap, a_freed_slot_is_taken_again_before_the_file_grows, .timeout = 10) {
  open_swap();
  alloc(64, 64);
  upg__slots_unalloc(&sw, 10);
  upg__slots_unalloc(&sw, 11);
  cr_assert_eq(alloc(2, 2), 10); /* a run that fits in the hole: no growth */
  cr_assert_eq(sw.high, 64);
}

Test(swap, the_file_grows_to_at_most_twice_its_use_for_contiguous_runs, .timeout = 30) {
  open_swap();
  alloc(4096, 4096);
  srand(7);
  for (int round = 0; round < 2000; round++) { /* scattered frees, runs of 16 wanted */
    uint32_t first;
    for (int k = 0; k < 16; k++) {
      uint32_t s = 1 + (uint32_t)rand() % sw.high;
      if (sw.used[s / 64] & (1ull << (s % 64))) upg__slots_unalloc(&sw, s);
      else k--;
    }
    for (uint32_t left = 16; left > 0;) {
      long n = upg__slots_alloc_run(&sw, left, &first);
      cr_assert_gt(n, 0);
      left -= (uint32_t)n;
    }
  }
  cr_assert_eq(upg__counters.swap_slots_in_use, 4096);
  cr_assert_leq(sw.high, 2 * 4096 + 2 * 16, "file of %u slots for 4096 in use", sw.high);
}

/* The file store, through the interface the core uses. */
static upg__store_t *store;

static void open_store(void) {
  upg__config_t cfg = {.page_size = SLOT, .direct_io = 1, .store = upg__store_find("file")};
  strcpy(cfg.swap_dir, "/tmp");
  cr_assert_eq(upg__store_open(&cfg, &store), 0);
}

/* Puts n pages of c, in calls of at most 64. */
static void write_pattern(upg__handle_t *handles, uint32_t n, char c) {
  static char out[64][SLOT] __attribute__((aligned(4096)));
  memset(out, c, sizeof out);
  for (uint32_t done = 0; done < n; done += 64) {
    struct iovec v[64];
    int k = n - done < 64 ? (int)(n - done) : 64;
    for (int i = 0; i < k; i++) v[i] = (struct iovec){out[i], SLOT};
    int rc = upg__store_put(store, v, k, handles + done);
    cr_assert_eq(rc, 0);
  }
}

Test(swap, a_written_run_reads_back, .timeout = 10) {
  open_store();
  static char in[2][SLOT] __attribute__((aligned(4096)));
  upg__handle_t h[2];
  write_pattern(h, 2, 'a');
  cr_assert(h[0] == 1 && h[1] == 2, "one run from slot one: %u, %u", h[0], h[1]);
  struct iovec rv[2] = {{in[0], SLOT}, {in[1], SLOT}};
  cr_assert_eq(upg__store_get(store, h, rv, 2), 0);
  for (size_t i = 0; i < SLOT; i++) cr_assert(in[0][i] == 'a' && in[1][i] == 'a');
  upg__store_close(store);
}

/* Counts the runs give-back would punch. */
static int discards;
static uint64_t discarded_bytes;
static void count_discard(void *ctx, uint32_t first, uint32_t n) {
  (void)ctx, (void)first;
  discards++;
  discarded_bytes += (uint64_t)n * SLOT;
}
#define MIN_SLOTS ((1u << 20) / SLOT) /* the file store's: runs of 1 MiB */

/* Space goes back one discard a long run of free slots, however many
 * slots were released one by one: each discard is a synchronous hole. */
Test(swap, released_slots_give_their_space_back_in_one_discard_a_long_run, .timeout = 20) {
  open_swap();
  uint32_t first = alloc(1024, 1024);
  for (uint32_t s = first; s < first + 1024; s++) upg__slots_release(&sw, s);
  cr_assert_eq(discards, 0, "released slots are given back together");
  upg__slots_give_back(&sw, MIN_SLOTS, count_discard, NULL);
  cr_assert_eq(discards, 1);
  cr_assert_eq(discarded_bytes, 1024ull * SLOT);
  /* The file store punches that run: its slots read zeros. */
  static upg__handle_t h[1024];
  open_store();
  write_pattern(h, 1024, 'b');
  upg__store_release(store, h, 1024);
  upg__store_give_back(store);
  static char in[SLOT] __attribute__((aligned(4096)));
  struct iovec rv = {in, SLOT};
  cr_assert_eq(upg__store_get(store, &h[500], &rv, 1), 0);
  for (size_t i = 0; i < SLOT; i++) cr_assert_eq(in[i], 0, "a given-back slot reads zeros");
  upg__store_close(store);
}

Test(swap, scattered_single_free_slots_keep_their_space_for_reuse, .timeout = 20) {
  open_swap();
  uint32_t first = alloc(1024, 1024);
  for (uint32_t s = first; s < first + 1024; s += 2) upg__slots_release(&sw, s);
  upg__slots_give_back(&sw, MIN_SLOTS, count_discard, NULL);
  cr_assert_eq(discards, 0);
  cr_assert_eq(upg__counters.swap_slots_in_use, 512);
  uint32_t again = alloc(1, 1);
  cr_assert(again < first + 1024 && (again - first) % 2 == 0, "slot %u: a freed one is taken again",
            again);
  upg__slots_fini(&sw);
}
