/* sim_runtime.c: the runtime's policy modules (lib/policy_fifo.c,
 * lib/policy_clock.c) run unchanged in the simulator. This adapter plays
 * the runtime's part: it keeps which page each frame holds and its
 * reference bit, sets the bit on every hit (in the runtime the first touch
 * of a protected page faults and sets it; later touches find it set) and on
 * every load, and answers the policy's questions through upg__policy_env_t.
 * Every frame is evictable: the simulator has no pins and no I/O in flight. */
#include <errno.h>
#include <stdlib.h>

#include "access_batch.h"
#include "pagemap.h"
#include "sim_policy.h"

typedef struct runtime_sim {
  const upg__policy_ops_t *ops;
  void *policy_state;
  size_t nframes, used;
  uint64_t *page_of; /* frame -> page */
  unsigned char *referenced;
  upg__pagemap_t resident; /* page -> frame */
  upg__policy_env_t env;
} runtime_sim_t;

static int always_evictable(void *ctx, size_t frame) {
  (void)ctx, (void)frame;
  return 1;
}

static int test_clear_referenced(void *ctx, size_t frame) {
  runtime_sim_t *s = ctx;
  int was = s->referenced[frame];
  s->referenced[frame] = 0;
  return was;
}

static void runtime_destroy(void *state) {
  runtime_sim_t *s = state;
  if (s->policy_state != NULL) s->ops->destroy(s->policy_state);
  upg__pagemap_free(&s->resident);
  free(s->page_of), free(s->referenced);
  free(s);
}

static int runtime_create(const upg__sim_setup_t *setup, void **state) {
  runtime_sim_t *s = calloc(1, sizeof *s);
  if (s == NULL) return -ENOMEM;
  s->ops = setup->policy->runtime;
  s->nframes = setup->frames;
  s->env = (upg__policy_env_t){always_evictable, test_clear_referenced, s};
  s->page_of = malloc(setup->frames * sizeof *s->page_of);
  s->referenced = calloc(setup->frames, 1);
  int rc = s->page_of == NULL || s->referenced == NULL
               ? -ENOMEM
               : upg__pagemap_init(&s->resident, setup->frames < 65536 ? setup->frames : 65536);
  if (rc == 0) rc = s->ops->create(setup->frames, &s->policy_state);
  if (rc != 0) {
    runtime_destroy(s);
    return rc;
  }
  *state = s;
  return 0;
}

static int runtime_access(void *state, uint64_t page) {
  runtime_sim_t *s = state;
  uint32_t *frame = upg__pagemap_find(&s->resident, page);
  if (frame != NULL) {
    s->referenced[*frame] = 1;
    return 1;
  }
  size_t f;
  if (s->used < s->nframes) {
    f = s->used++;
  } else {
    long victim = s->ops->victim(s->policy_state, &s->env);
    if (victim < 0) return -EAGAIN; /* cannot happen: every frame is evictable */
    f = (size_t)victim;
    upg__pagemap_remove(&s->resident, s->page_of[f]);
  }
  int rc = upg__pagemap_insert(&s->resident, page, (uint32_t)f);
  if (rc != 0) return rc;
  s->page_of[f] = page;
  s->referenced[f] = 1;
  s->ops->loaded(s->policy_state, f);
  return 0;
}

static long runtime_access_batch(void *state, const uint64_t *pages, size_t n) {
  runtime_sim_t *s = state;
  return upg__access_batch(s, &s->resident, runtime_access, pages, n);
}

const upg__sim_policy_t upg__sim_fifo = {
    "fifo",
    "first in, first out (the runtime's lib/policy_fifo.c)",
    0,
    runtime_create,
    runtime_destroy,
    runtime_access,
    runtime_access_batch,
    &upg__policy_fifo,
};

const upg__sim_policy_t upg__sim_clock = {
    "clock",
    "second chance (the runtime's lib/policy_clock.c)",
    0,
    runtime_create,
    runtime_destroy,
    runtime_access,
    runtime_access_batch,
    &upg__policy_clock,
};
