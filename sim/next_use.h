/* next_use.h: the future of a trace, as offline algorithms need it. */
#ifndef UPAGER_SIM_NEXT_USE_H
#define UPAGER_SIM_NEXT_USE_H

#include <stddef.h>
#include <stdint.h>

#define UPG__NEVER UINT32_MAX /* a next use after every real one */

/* next[i] = the smallest j > i with refs[j] == refs[i], or UPG__NEVER.
 * nrefs must be below UPG__NEVER. 0 or -ENOMEM. */
int upg__next_use(const uint64_t *refs, size_t nrefs, uint32_t *next);

#endif
