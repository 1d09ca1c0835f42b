/* format_text.c: the text trace: one reference a line, a page number in
 * decimal or a byte address in 0x hex (divided by the page size); blank
 * lines and everything after '#' are ignored. */
#include "pagemap.h"
#include "scan.h"
#include "trace_read.h"

static int text_parse(const char *p, size_t len, size_t page_size, upg__run_t *run,
                      const char **why) {
  const char *end = p + len;
  p = upg__scan_blank(p, end);
  if (p == end || *p == '#') return 0;
  int hex = end - p > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
  uint64_t v;
  if (hex) p += 2;
  if ((hex ? upg__scan_u64(&p, end, 16, &v) : upg__scan_u64(&p, end, 10, &v)) != 0) {
    *why = "expected a page number or a 0x address (64 bits at most)";
    return -1;
  }
  p = upg__scan_blank(p, end);
  if (p != end && *p != '#') {
    *why = "unexpected text after the reference";
    return -1;
  }
  if (hex) v /= page_size;
  if (v > UPG__PAGE_MAX) {
    *why = "page number too large";
    return -1;
  }
  *run = (upg__run_t){v, 1};
  return 1;
}

const upg__trace_format_t upg__format_text = {"text", NULL, 0, 0, NULL, text_parse, NULL};
