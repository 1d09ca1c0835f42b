/* trace_read.h: a trace as a stream of page references, whatever its
 * format. Every format yields runs (a first page and a count: one line of
 * an ARC trace, one reference otherwise) that the reader expands.
 *
 * Errors name the trace and the place: "NAME:LINE: why" for the text
 * formats, "NAME: record N: why" for upt. */
#ifndef UPAGER_SIM_TRACE_READ_H
#define UPAGER_SIM_TRACE_READ_H

#include <stddef.h>
#include <stdint.h>

#include "input.h"

typedef struct upg__run {
  uint64_t first;
  uint64_t count;
} upg__run_t;

/* The reader's buffer as a line format's fast path sees it (below): the
 * unread bytes from p, then 8 zero bytes (so that a parser may stop at the
 * first NUL, and read 8 bytes at once anywhere before it); the run a line
 * left unexpanded; the lines consumed. */
typedef struct upg__lines {
  const char *p;
  upg__run_t run;
  uint64_t lines;
} upg__lines_t;

/* One trace format. Line formats have record_bytes 0 and parse one line
 * (without its newline); binary formats parse fixed-size records after a
 * header. parse returns 1 for a run, 0 for a line with none (a comment),
 * or -1 with *why set. */
typedef struct upg__trace_format {
  const char *name;
  /* Whom output from such traces must cite, or NULL. */
  const char *citation;
  size_t header_bytes;
  size_t record_bytes;
  /* Checks the header and sets *unit, the bytes one reference stands for. */
  int (*header)(const unsigned char *p, size_t *unit, const char **why);
  int (*parse)(const char *p, size_t len, size_t page_size, upg__run_t *run, const char **why);
  /* Optional, for line formats: expands whole lines of the format's
   * common shape into out, up to cap references, and stops at the first
   * line it leaves to parse (which also names what is wrong); returns the
   * references written. See expand_lines.h. */
  size_t (*expand_fast)(upg__lines_t *l, uint64_t *out, size_t cap);
} upg__trace_format_t;

extern const upg__trace_format_t upg__format_text;
extern const upg__trace_format_t upg__format_arc;
extern const upg__trace_format_t upg__format_upt;

/* "text", "arc" or "upt"; NULL if unknown. */
const upg__trace_format_t *upg__trace_format_find(const char *name);

typedef struct upg__refs upg__refs_t;

/* Reads `in` (owned by the reader from now on) as `format`, or when format
 * is NULL as upt if it starts with the upt magic, arc if `name` ends in .lis
 * or .lis.zst, text otherwise. page_size divides text addresses. */
int upg__refs_open(upg__input_t *in, const char *name, const upg__trace_format_t *format,
                   size_t page_size, upg__refs_t **out);
/* Up to cap references into out: the count, 0 at the end, or a negative
 * errno (-EINVAL for malformed input) with upg__refs_error() set. */
long upg__refs_next(upg__refs_t *r, uint64_t *out, size_t cap);
const char *upg__refs_error(const upg__refs_t *r);
/* The format in use and the bytes one reference stands for (the page
 * size, 512 for ARC blocks, the upt header's page size). Valid after the
 * first upg__refs_next. */
const upg__trace_format_t *upg__refs_format(const upg__refs_t *r);
size_t upg__refs_unit(const upg__refs_t *r);
void upg__refs_close(upg__refs_t *r);

/* Reads every reference into a malloc'd array (for offline policies and
 * stack algorithms); 0 or a negative errno as upg__refs_next. */
int upg__refs_load(upg__refs_t *r, uint64_t **refs, size_t *n);

#endif
