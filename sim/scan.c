/* scan.c: number scanning for the text trace formats, by hand because
 * strtoull needs a NUL-terminated string and a locale, and parsing is most
 * of a replay's time. */
#include "scan.h"

const char *upg__scan_blank(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
  return p;
}

static int digit_value(char c, unsigned base) {
  unsigned v;
  if (c >= '0' && c <= '9') v = (unsigned)(c - '0');
  else if (c >= 'a' && c <= 'f') v = (unsigned)(c - 'a' + 10);
  else if (c >= 'A' && c <= 'F') v = (unsigned)(c - 'A' + 10);
  else return -1;
  return v < base ? (int)v : -1;
}

int upg__scan_u64(const char **p, const char *end, unsigned base, uint64_t *out) {
  const char *s = *p;
  uint64_t v = 0;
  int d;
  while (s < end && (d = digit_value(*s, base)) >= 0) {
    if (v > (UINT64_MAX - (unsigned)d) / base) return -1;
    v = v * base + (unsigned)d;
    s++;
  }
  if (s == *p) return -1;
  *p = s;
  *out = v;
  return 0;
}
