/* policy.h: the contract of a replacement policy, shared by the runtime and
 * the simulator (`upager sim`).
 *
 * A policy sees frames 0..nframes-1 only; the caller owns what is in them.
 * It asks the caller two questions through upg__policy_env_t: may this frame
 * be evicted now (pinned and busy frames may not), and was it referenced
 * since the last question (asking clears the bit; in the runtime that also
 * protects the page again, so the next touch sets it). */
#ifndef UPAGER_POLICY_H
#define UPAGER_POLICY_H

#include <stddef.h>

typedef struct upg__policy_env {
  int (*evictable)(void *ctx, size_t frame);
  int (*test_clear_referenced)(void *ctx, size_t frame);
  void *ctx;
} upg__policy_env_t;

typedef struct upg__policy_ops {
  const char *name;
  /* Allocates state for nframes empty frames; 0 or a negative errno. */
  int (*create)(size_t nframes, void **state);
  void (*destroy)(void *state);
  /* A page was placed in (or returned to) `frame`. */
  void (*loaded)(void *state, size_t frame);
  /* `frame` was emptied by the caller, not through victim(). */
  void (*freed)(void *state, size_t frame);
  /* Chooses a frame to evict and forgets it, or returns -1 when no frame is
   * evictable. */
  long (*victim)(void *state, const upg__policy_env_t *env);
} upg__policy_ops_t;

extern const upg__policy_ops_t upg__policy_clock;
extern const upg__policy_ops_t upg__policy_fifo;

/* The policy called `name`, or NULL. */
const upg__policy_ops_t *upg__policy_find(const char *name);
/* "clock, fifo": for error messages. */
const char *upg__policy_names(void);

#endif
