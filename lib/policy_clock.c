/* policy_clock.c: Clock (second chance). A hand sweeps the frames in a
 * circle; a referenced frame loses its bit and is spared, the first frame
 * found unreferenced is the victim. Two sweeps always suffice: the first
 * clears every bit it passes. */
#include <errno.h>

#include "os.h"
#include "policy.h"

typedef struct clock_state {
  size_t nframes;
  size_t hand;
} clock_state_t;

static int clock_create(size_t nframes, void **state) {
  clock_state_t *c = upg__os_alloc(sizeof *c);
  if (c == NULL) return -ENOMEM;
  c->nframes = nframes;
  *state = c;
  return 0;
}

static void clock_destroy(void *state) { upg__os_free(state, sizeof(clock_state_t)); }

/* The hand sweeps frames in place: loading or freeing one changes nothing. */
static void clock_loaded(void *state, size_t frame) { (void)state, (void)frame; }
static void clock_freed(void *state, size_t frame) { (void)state, (void)frame; }

static long clock_victim(void *state, const upg__policy_env_t *env) {
  clock_state_t *c = state;
  for (size_t step = 0; step < 2 * c->nframes + 1; step++) {
    size_t frame = c->hand;
    /* A compare, not `% nframes`: a division costs more than the rest of a
     * step, and the simulator sweeps on every miss. */
    if (++c->hand == c->nframes) c->hand = 0;
    if (!env->evictable(env->ctx, frame)) continue;
    if (env->test_clear_referenced(env->ctx, frame)) continue;
    return (long)frame;
  }
  return -1;
}

const upg__policy_ops_t upg__policy_clock = {
    "clock", clock_create, clock_destroy, clock_loaded, clock_freed, clock_victim,
};
