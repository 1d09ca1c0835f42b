/* scan.h: the number scanning that the text trace formats share. */
#ifndef UPAGER_SIM_SCAN_H
#define UPAGER_SIM_SCAN_H

#include <stdint.h>

/* Skips spaces, tabs and a carriage return. */
const char *upg__scan_blank(const char *p, const char *end);
/* An unsigned integer in base 10 or 16 (no prefix) at *p, advancing *p;
 * 0, or -1 when there is no digit or it overflows 64 bits. */
int upg__scan_u64(const char **p, const char *end, unsigned base, uint64_t *out);

#endif
