/* sim_policies.c: the table of the simulator's policies. */
#include <string.h>

#include "sim_policy.h"

static const upg__sim_policy_t *const policies[] = {
    &upg__sim_fifo, &upg__sim_lru, &upg__sim_clock, &upg__sim_opt, &upg__sim_arc, &upg__sim_sieve,
};
#define NPOLICIES (sizeof policies / sizeof policies[0])

const upg__sim_policy_t *upg__sim_policy_find(const char *name) {
  for (size_t i = 0; i < NPOLICIES; i++)
    if (strcmp(policies[i]->name, name) == 0) return policies[i];
  return NULL;
}

const upg__sim_policy_t *upg__sim_policy_at(size_t i) { return i < NPOLICIES ? policies[i] : NULL; }
size_t upg__sim_policy_count(void) { return NPOLICIES; }
