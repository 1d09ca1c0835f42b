/* scan.h: the number scanning that the text trace formats share. Inline,
 * so that each caller's constant base folds the overflow limits: parsing
 * is most of a replay's time on traces of one reference a line, and
 * strtoull would need a NUL-terminated copy and a locale. */
#ifndef UPAGER_SIM_SCAN_H
#define UPAGER_SIM_SCAN_H

#include <stdint.h>

/* Skips spaces, tabs and a carriage return. */
static inline const char *upg__scan_blank(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
  return p;
}

static inline int upg__scan_digit(char c, unsigned base) {
  unsigned v;
  if ((unsigned)(c - '0') <= 9) v = (unsigned)(c - '0');
  else if (c >= 'a' && c <= 'f') v = (unsigned)(c - 'a' + 10);
  else if (c >= 'A' && c <= 'F') v = (unsigned)(c - 'A' + 10);
  else return -1;
  return v < base ? (int)v : -1;
}

/* An unsigned integer in base 10 or 16 (no prefix) at *p, advancing *p;
 * 0, or -1 when there is no digit or it overflows 64 bits. */
static inline int upg__scan_u64(const char **p, const char *end, unsigned base, uint64_t *out) {
  /* v * base + d overflows exactly when v > limit, or v == limit and d > last. */
  const uint64_t limit = UINT64_MAX / base, last = UINT64_MAX % base;
  const char *s = *p;
  uint64_t v = 0;
  int d;
  while (s < end && (d = upg__scan_digit(*s, base)) >= 0) {
    if (v >= limit && (v > limit || (unsigned)d > last)) return -1;
    v = v * base + (unsigned)d;
    s++;
  }
  if (s == *p) return -1;
  *p = s;
  *out = v;
  return 0;
}

#endif
