/* trace_format.h: the `upt` binary fault trace that the runtime writes when
 * UPAGER_TRACE=FILE is set, and that `upager sim` and `upager trace` read.
 * Documented in docs/upt.md. All integers are little-endian.
 *
 *   header, 16 bytes:  "UPT1" | u32 version (1) | u32 page_size
 *                      u8 fault source (UPG_TRACE_SOURCE_*) | u8 its flags
 *                      | u16 zero
 *   records, 24 bytes: u64 time_ns since the trace began
 *                      u64 page: the faulting address / page_size
 *                      u8 kind (upg_trace_kind below) | u8 zero
 *                      u16 region number | u32 zero                      */
#ifndef UPAGER_TRACE_FORMAT_H
#define UPAGER_TRACE_FORMAT_H

#include <stdint.h>

#define UPG_TRACE_MAGIC "UPT1"
#define UPG_TRACE_VERSION 1u

enum upg_trace_kind {
  UPG_TRACE_ZERO = 0,    /* first touch, zero-filled */
  UPG_TRACE_MINOR = 1,   /* resident page re-mapped */
  UPG_TRACE_WRITE = 2,   /* write to a clean resident page */
  UPG_TRACE_MAJOR = 3,   /* read back from swap */
  UPG_TRACE_INVALID = 4, /* outside every region */
  UPG_TRACE_KINDS = 5
};

/* The fault source that recorded a trace; 0 in traces made before the
 * header named it. */
enum { UPG_TRACE_SOURCE_UNKNOWN = 0, UPG_TRACE_SOURCE_SIGSEGV = 1, UPG_TRACE_SOURCE_UFFD = 2 };
/* Source flag: it told reads from writes, so a `write` record may also be a
 * first write to a closed page; without it, a write to a page opened
 * read-only is a second fault, recorded as `write`. */
#define UPG_TRACE_SOURCE_KNOWS_ACCESS 1u

typedef struct upg_trace_header {
  char magic[4];
  uint32_t version;
  uint32_t page_size;
  uint8_t source;
  uint8_t source_flags;
  uint16_t zero;
} upg_trace_header_t;

typedef struct upg_trace_record {
  uint64_t time_ns;
  uint64_t page;
  uint8_t kind;
  uint8_t pad;
  uint16_t region;
  uint32_t zero;
} upg_trace_record_t;

_Static_assert(sizeof(upg_trace_header_t) == 16, "upt header is 16 bytes");
_Static_assert(sizeof(upg_trace_record_t) == 24, "upt record is 24 bytes");

#endif
