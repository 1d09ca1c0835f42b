/* test_policy.c: the Clock and FIFO modules the runtime runs, driven by a
 * reference string over simulated frames, against known answers. */
#include <criterion/criterion.h>

#include "policy.h"

#define MAX_FRAMES 8

/* A tiny pager around a policy: which page each frame holds and its
 * reference bit, as the runtime's page table would keep them. */
typedef struct sim {
  const upg__policy_ops_t *ops;
  void *state;
  size_t nframes;
  long page[MAX_FRAMES];
  int referenced[MAX_FRAMES];
  int pinned[MAX_FRAMES];
} sim_t;

static int evictable(void *ctx, size_t f) {
  sim_t *s = ctx;
  return s->page[f] >= 0 && !s->pinned[f];
}

static int test_clear(void *ctx, size_t f) {
  sim_t *s = ctx;
  int was = s->referenced[f];
  s->referenced[f] = 0;
  return was;
}

static void sim_init(sim_t *s, const upg__policy_ops_t *ops, size_t nframes) {
  memset(s, 0, sizeof *s);
  s->ops = ops;
  s->nframes = nframes;
  for (size_t f = 0; f < MAX_FRAMES; f++) s->page[f] = -1;
  cr_assert_eq(ops->create(nframes, &s->state), 0);
}

/* Returns 1 on a fault. */
static int sim_access(sim_t *s, long page) {
  for (size_t f = 0; f < s->nframes; f++)
    if (s->page[f] == page) {
      s->referenced[f] = 1;
      return 0;
    }
  long frame = -1;
  for (size_t f = 0; f < s->nframes && frame < 0; f++)
    if (s->page[f] < 0) frame = (long)f;
  if (frame < 0) {
    upg__policy_env_t env = {evictable, test_clear, s};
    frame = s->ops->victim(s->state, &env);
    cr_assert_geq(frame, 0, "no victim");
  }
  s->page[frame] = page;
  s->referenced[frame] = 1;
  s->ops->loaded(s->state, (size_t)frame);
  return 1;
}

static int count_faults(const upg__policy_ops_t *ops, size_t nframes, const long *refs, size_t n) {
  sim_t s;
  int faults = 0;
  sim_init(&s, ops, nframes);
  for (size_t i = 0; i < n; i++) faults += sim_access(&s, refs[i]);
  ops->destroy(s.state);
  return faults;
}

static const long classic[] = {7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1};
static const long belady[] = {1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5};
#define LEN(a) (sizeof(a) / sizeof(a[0]))

Test(policy, fifo_classic_string_3_frames_15_faults, .timeout = 10) {
  cr_assert_eq(count_faults(&upg__policy_fifo, 3, classic, LEN(classic)), 15);
}

Test(policy, fifo_shows_beladys_anomaly, .timeout = 10) {
  cr_assert_eq(count_faults(&upg__policy_fifo, 3, belady, LEN(belady)), 9);
  cr_assert_eq(count_faults(&upg__policy_fifo, 4, belady, LEN(belady)), 10);
}

/* Worked by hand: pages enter with their bit set, the hand starts at frame
 * 0 and rests one past each victim. The hits are the 5th, 7th, 10th, 14th,
 * 17th and 19th references (0, 0, 3, 2, 1, 0): 14 faults, between LRU's 12
 * and FIFO's 15. */
Test(policy, clock_classic_string_3_frames_14_faults, .timeout = 10) {
  cr_assert_eq(count_faults(&upg__policy_clock, 3, classic, LEN(classic)), 14);
}

Test(policy, clock_is_fifo_when_nothing_is_referenced_again, .timeout = 10) {
  static const long cycle[] = {1, 2, 3, 4, 5, 6, 7, 8};
  cr_assert_eq(count_faults(&upg__policy_clock, 3, cycle, LEN(cycle)), 8);
}

Test(policy, clock_spares_a_referenced_page, .timeout = 10) {
  sim_t s;
  sim_init(&s, &upg__policy_clock, 3);
  sim_access(&s, 1), sim_access(&s, 2), sim_access(&s, 3);
  /* All three bits set: one sweep clears them and frame 0 (page 1) goes. */
  sim_access(&s, 4);
  cr_assert_eq(s.page[0], 4);
  /* Page 2 is touched again, so the hand passes it and takes page 3. */
  sim_access(&s, 2);
  sim_access(&s, 5);
  cr_assert_eq(s.page[1], 2);
  cr_assert_eq(s.page[2], 5);
}

Test(policy, victims_skip_pinned_frames_and_none_when_all_pinned, .timeout = 10) {
  const upg__policy_ops_t *all[] = {&upg__policy_clock, &upg__policy_fifo};
  for (int p = 0; p < 2; p++) {
    sim_t s;
    sim_init(&s, all[p], 2);
    sim_access(&s, 1), sim_access(&s, 2);
    s.pinned[0] = 1;
    upg__policy_env_t env = {evictable, test_clear, &s};
    cr_assert_eq(all[p]->victim(s.state, &env), 1, "%s", all[p]->name);
    all[p]->loaded(s.state, 1);
    s.pinned[1] = 1;
    cr_assert_eq(all[p]->victim(s.state, &env), -1, "%s", all[p]->name);
    all[p]->destroy(s.state);
  }
}

Test(policy, fifo_forgets_a_freed_frame, .timeout = 10) {
  sim_t s;
  sim_init(&s, &upg__policy_fifo, 3);
  sim_access(&s, 1), sim_access(&s, 2), sim_access(&s, 3);
  upg__policy_fifo.freed(s.state, 0);
  s.page[0] = -1;
  upg__policy_env_t env = {evictable, test_clear, &s};
  cr_assert_eq(upg__policy_fifo.victim(s.state, &env), 1);
}

Test(policy, names_resolve_and_unknown_is_null, .timeout = 10) {
  cr_assert_eq(upg__policy_find("clock"), &upg__policy_clock);
  cr_assert_eq(upg__policy_find("fifo"), &upg__policy_fifo);
  cr_assert_null(upg__policy_find("lru"));
}

Test(policy, the_list_of_names_is_the_table, .timeout = 10) {
  cr_assert_str_eq(upg__policy_names(), "clock, fifo");
  cr_assert_str_eq(upg__policy_names(), "clock, fifo", "the second call too");
}
