/* format_arc.c: the traces of the ARC paper (Megiddo and Modha, "ARC: A
 * Self-Tuning, Low Overhead Replacement Cache", USENIX FAST 2003). A line
 * is four integers: start block, block count, an ignored field, request
 * number; it stands for count references to start, start+1, ... The unit
 * is a 512-byte block. Blank lines are ignored. */
#include "expand_lines.h"
#include "pagemap.h"
#include "scan.h"
#include "trace_read.h"

#define ARC_BLOCK_BYTES 512
/* The traces' authors allow their use on the condition that the paper is
 * cited by any document or output that uses them. */
#define ARC_CITATION                                                                     \
  "N. Megiddo and D. S. Modha, \"ARC: A Self-Tuning, Low Overhead Replacement Cache\", " \
  "USENIX FAST 2003"

static int arc_parse(const char *p, size_t len, size_t page_size, upg__run_t *run,
                     const char **why) {
  (void)page_size;
  const char *end = p + len;
  uint64_t field[4];
  p = upg__scan_blank(p, end);
  if (p == end) return 0;
  for (int i = 0; i < 4; i++) {
    p = upg__scan_blank(p, end);
    if (upg__scan_u64(&p, end, 10, &field[i]) != 0) {
      *why = "expected four decimal integers: start, count, ignored, request";
      return -1;
    }
  }
  if (upg__scan_blank(p, end) != end) {
    *why = "unexpected text after the fourth field";
    return -1;
  }
  if (field[1] == 0) {
    *why = "block count is 0";
    return -1;
  }
  if (field[0] > UPG__PAGE_MAX - (field[1] - 1)) {
    *why = "block number too large";
    return -1;
  }
  *run = (upg__run_t){field[0], field[1]};
  return 1;
}

/* The shape of nearly every line: four fields of at most 19 digits (so
 * none overflows) separated by single spaces, then a newline. Anything
 * else, and a count of 0 or a run past the largest page, goes to
 * arc_parse, which accepts the same lines and explains the others. The
 * NUL after the buffer's bytes stops a field like any non-digit, and the
 * zeros after it let upg__scan_digits8 read 8 bytes anywhere before it. */
static const char *arc_parse_line(const char *p, upg__run_t *run) {
  uint64_t field[4];
  for (int i = 0; i < 4; i++) {
    const char *digits = p;
    uint64_t v = 0;
    /* The start block's length changes from line to line, which a loop a
     * digit mispredicts: up to 8 digits of it in one step. */
    if (i == 0) p += upg__scan_digits8(p, &v);
    while ((unsigned)(*p - '0') <= 9) v = v * 10 + (unsigned)(*p++ - '0');
    if (p == digits || p - digits > 19 || *p != (i < 3 ? ' ' : '\n')) return NULL;
    field[i] = v;
    p++;
  }
  if (field[1] == 0 || field[0] > UPG__PAGE_MAX - (field[1] - 1)) return NULL;
  *run = (upg__run_t){field[0], field[1]};
  return p;
}

static size_t arc_expand_fast(upg__lines_t *l, uint64_t *out, size_t cap) {
  return upg__expand_lines(l, out, cap, arc_parse_line);
}

static int arc_header(const unsigned char *p, size_t *unit, const char **why) {
  (void)p, (void)why;
  *unit = ARC_BLOCK_BYTES;
  return 0;
}

const upg__trace_format_t upg__format_arc = {"arc",     ARC_CITATION,   0, 0, arc_header,
                                             arc_parse, arc_expand_fast};
