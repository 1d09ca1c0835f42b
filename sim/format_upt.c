/* format_upt.c: the runtime's fault trace as references (each fault one
 * reference to its page), and the byte-level decoding of upt_decode.h. */
#include <string.h>

#include "pagemap.h"
#include "trace_read.h"
#include "upt_decode.h"

static uint64_t le(const unsigned char *p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

int upg__upt_decode_header(const unsigned char *p, upg_trace_header_t *h, const char **why) {
  uint64_t version = le(p + 4, 4), size = le(p + 8, 4);
  if (memcmp(p, UPG_TRACE_MAGIC, 4) != 0) *why = "not a upt trace (no UPT1 magic)";
  else if (version != UPG_TRACE_VERSION) *why = "unsupported upt version";
  else if (size == 0 || (size & (size - 1)) != 0) *why = "page size is not a power of two";
  else if ((p[13] & ~UPG_TRACE_SOURCE_KNOWS_ACCESS) != 0 || le(p + 14, 2) != 0)
    *why = "nonzero reserved header field";
  else {
    *h = (upg_trace_header_t){.version = (uint32_t)version,
                              .page_size = (uint32_t)size,
                              .source = p[12],
                              .source_flags = p[13]};
    memcpy(h->magic, p, 4);
    return 0;
  }
  return -1;
}

int upg__upt_decode_record(const unsigned char *p, upg_trace_record_t *rec, const char **why) {
  *rec = (upg_trace_record_t){.time_ns = le(p, 8),
                              .page = le(p + 8, 8),
                              .kind = p[16],
                              .pad = p[17],
                              .region = (uint16_t)le(p + 18, 2),
                              .zero = (uint32_t)le(p + 20, 4)};
  if (rec->kind >= UPG_TRACE_KINDS) *why = "unknown fault kind";
  else if (rec->pad != 0 || rec->zero != 0) *why = "nonzero reserved record field";
  else return 0;
  return -1;
}

static int upt_header(const unsigned char *p, size_t *unit, const char **why) {
  upg_trace_header_t h;
  if (upg__upt_decode_header(p, &h, why) != 0) return -1;
  *unit = h.page_size;
  return 0;
}

static int upt_parse(const char *p, size_t len, size_t page_size, upg__run_t *run,
                     const char **why) {
  (void)len, (void)page_size;
  upg_trace_record_t rec;
  if (upg__upt_decode_record((const unsigned char *)p, &rec, why) != 0) return -1;
  if (rec.page > UPG__PAGE_MAX) {
    *why = "page number too large";
    return -1;
  }
  *run = (upg__run_t){rec.page, 1};
  return 1;
}

const upg__trace_format_t upg__format_upt =
    {"upt",     NULL, sizeof(upg_trace_header_t), sizeof(upg_trace_record_t), upt_header,
     upt_parse, NULL};
