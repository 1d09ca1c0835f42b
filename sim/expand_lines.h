/* expand_lines.h: the loop of a line format's fast path (expand_fast in
 * trace_read.h). Most lines of a trace have one simple shape; a format
 * parses those with a small function that finds the newline as it goes,
 * and this loop, inlined into the format's file with that function,
 * expands them without a call or a store to the reader a line. */
#ifndef UPAGER_SIM_EXPAND_LINES_H
#define UPAGER_SIM_EXPAND_LINES_H

#include <stddef.h>
#include <stdint.h>

#include "trace_read.h"

/* parse_line parses the line at p if it has the common shape, returning
 * the byte after its newline, or NULL to leave it to the format's parse.
 * It stops at the NUL after the unread bytes as at any unexpected byte, so
 * a line cut by the buffer's end is left to parse. */
static inline size_t upg__expand_lines(upg__lines_t *l, uint64_t *out, size_t cap,
                                       const char *(*parse_line)(const char *p, upg__run_t *run)) {
  const char *p = l->p, *next;
  size_t n = 0;
  uint64_t lines = 0;
  upg__run_t run = {0, 0};
  while (n < cap && (next = parse_line(p, &run)) != NULL) {
    p = next, lines++;
    uint64_t take = run.count < cap - n ? run.count : cap - n;
    for (uint64_t i = 0; i < take; i++) out[n++] = run.first + i;
    run.first += take, run.count -= take;
  }
  l->p = p, l->lines = lines;
  l->run = run;
  return n;
}

#endif
