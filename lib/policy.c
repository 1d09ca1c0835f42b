/* policy.c: the table of replacement policies the runtime can run. */
#include <string.h>

#include "policy.h"

static const upg__policy_ops_t *const policies[] = {&upg__policy_clock, &upg__policy_fifo};

const upg__policy_ops_t *upg__policy_find(const char *name) {
  for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++)
    if (strcmp(policies[i]->name, name) == 0) return policies[i];
  return NULL;
}

const char *upg__policy_names(void) { return "clock, fifo"; }
