/* example_util.h: the few helpers every example shares: sizes on the
 * command line ("16M"), a monotonic clock, and dying loudly on a failed
 * upager call. Header-only so that each example stays one file to build. */
#ifndef UPAGER_EXAMPLE_UTIL_H
#define UPAGER_EXAMPLE_UTIL_H

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "upager.h"

/* "64M", "2G", "4096": a byte count with an optional K, M, G or T. Exits
 * with a usage message on anything else, naming the argument. */
static inline size_t example_parse_size(const char *text, const char *what) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  unsigned shift = 0;
  switch (toupper((unsigned char)*end)) {
    case 'K':
      shift = 10;
      end++;
      break;
    case 'M':
      shift = 20;
      end++;
      break;
    case 'G':
      shift = 30;
      end++;
      break;
    case 'T':
      shift = 40;
      end++;
      break;
  }
  if (errno != 0 || !isdigit((unsigned char)text[0]) || *end != '\0' || v == 0 ||
      v > (SIZE_MAX >> shift)) {
    fprintf(stderr, "%s: '%s' is not a size (a number with an optional K, M, G or T)\n", what,
            text);
    exit(2);
  }
  return (size_t)(v << shift);
}

static inline double example_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* For calls returning 0 or a negative upager code. */
static inline void example_check(int rc, const char *call) {
  if (rc == 0) return;
  fprintf(stderr, "%s failed: %s (%s) %s\n", call, upg_strerror(rc), upg_err_name(rc),
          upg_last_error());
  exit(1);
}

/* upg_map, dying with the runtime's reason if the reservation fails. */
static inline void *example_map(size_t len) {
  void *p = upg_map(len, 0);
  if (p == NULL) {
    fprintf(stderr, "upg_map(%zu) failed: %s %s\n", len, upg_strerror(-errno), upg_last_error());
    exit(1);
  }
  return p;
}

static inline double example_mib(uint64_t bytes) { return (double)bytes / (1 << 20); }

#endif
