/* scan.h: the number scanning that the text trace formats share. Inline,
 * so that each caller's constant base folds the overflow limits: parsing
 * is most of a replay's time on traces of one reference a line, and
 * strtoull would need a NUL-terminated copy and a locale. */
#ifndef UPAGER_SIM_SCAN_H
#define UPAGER_SIM_SCAN_H

#include <stdint.h>
#include <string.h>

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

/* The decimal digits at p, up to 8, as a number; returns how many. SWAR
 * (a register as eight byte lanes): the first non-digit is found without a
 * branch a byte, where a loop mispredicts its exit on a field whose length
 * varies from line to line. Reads p[0, 8). */
static inline unsigned upg__scan_digits8(const char *p, uint64_t *value) {
  const uint64_t ones = 0x0101010101010101ull, high = 0xF0 * ones, three = 0x30 * ones;
  uint64_t w;
  memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  w = __builtin_bswap64(w); /* p[0] in the low lane */
#endif
  /* A digit, 0x30-0x39, has high nibble 3 before and after adding 6. A
   * lane of 0xFA or more carries into the next, but is a non-digit itself. */
  uint64_t nondigit = ((w & high) ^ three) | (((w + 6 * ones) & high) ^ three);
  unsigned n = nondigit == 0 ? 8 : (unsigned)__builtin_ctzll(nondigit) / 8;
  /* The n digits moved to the top lanes (the lanes below read as leading
   * zeros), then combined in pairs, fours and eights. */
  uint64_t d = n == 0 ? 0 : (w & 0x0F * ones) << (8 * (8 - n));
  d = ((d * (10 * 0x100 + 1)) >> 8) & 0x00FF00FF00FF00FFull;
  d = ((d * (100 * 0x10000 + 1)) >> 16) & 0x0000FFFF0000FFFFull;
  *value = (d * (10000 * 0x100000000ull + 1)) >> 32;
  return n;
}

#endif
