/* sim_policy.h: a replacement policy as the simulator runs it. Unlike the
 * runtime's upg__policy_ops_t (lib/policy.h), which sees only frames, a
 * simulator policy owns the page identities: LRU needs its recency list,
 * OPT the future, ARC its ghost lists. The runtime's own modules run here
 * through an adapter (sim_runtime.c), so the Clock simulated is the Clock
 * the runtime runs.
 *
 * Adding a policy: one file defining an upg__sim_policy_t, one line in the
 * table of sim_policies.c. */
#ifndef UPAGER_SIM_POLICY_H
#define UPAGER_SIM_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"

typedef struct upg__sim_policy upg__sim_policy_t;

typedef struct upg__sim_setup {
  const upg__sim_policy_t *policy;
  size_t frames;        /* at least 1 */
  const uint64_t *refs; /* the whole trace, for offline policies; else NULL */
  size_t nrefs;
} upg__sim_setup_t;

struct upg__sim_policy {
  const char *name;
  const char *summary;
  int offline; /* needs setup.refs, and every access in that order */
  /* 0 or a negative errno. */
  int (*create)(const upg__sim_setup_t *setup, void **state);
  void (*destroy)(void *state);
  /* One reference: 1 on a hit, 0 on a miss (the page is resident after
   * either), or a negative errno. */
  int (*access)(void *state, uint64_t page);
  /* Optional: access over pages[0, n) in order, returning the hits or a
   * negative errno; the replay loop uses it when present (see
   * access_batch.h for why it is faster). */
  long (*access_batch)(void *state, const uint64_t *pages, size_t n);
  /* For policies adapted from the runtime: the module they drive. */
  const upg__policy_ops_t *runtime;
};

extern const upg__sim_policy_t upg__sim_fifo, upg__sim_lru, upg__sim_clock, upg__sim_opt,
    upg__sim_arc, upg__sim_sieve;

/* The policy called `name`, or NULL. */
const upg__sim_policy_t *upg__sim_policy_find(const char *name);
/* All policies in the table's order: the default set and the output order. */
const upg__sim_policy_t *upg__sim_policy_at(size_t i);
size_t upg__sim_policy_count(void);

#endif
