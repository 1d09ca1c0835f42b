/* example_util.h: the few helpers every example shares: sizes on the
 * command line ("16M"), a monotonic clock, and dying loudly on a failed
 * upager call. Header-only so that each example stays one file to build. */
#ifndef UPAGER_EXAMPLE_UTIL_H
#define UPAGER_EXAMPLE_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "upager.h"

/* "64M", "2G", "4096": a byte count, as upg_parse_size reads it, not 0.
 * Exits with a usage message on anything else, naming the argument. */
static inline size_t example_parse_size(const char *text, const char *what) {
  size_t v;
  if (upg_parse_size(text, &v) != 0 || v == 0) {
    fprintf(stderr, "%s: '%s' is not a size (a number with an optional K, M, G or T)\n", what,
            text);
    exit(2);
  }
  return v;
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
