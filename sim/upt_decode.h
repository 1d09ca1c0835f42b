/* upt_decode.h: decoding the runtime's binary fault trace (upt, see
 * lib/trace_format.h and docs/upt.md) byte by byte, so that a trace reads
 * the same on any host whatever its endianness and alignment. */
#ifndef UPAGER_SIM_UPT_DECODE_H
#define UPAGER_SIM_UPT_DECODE_H

#include "trace_format.h"

/* Checks a 16-byte header; 0 and its fields (the page size, the fault
 * source and its flags), or -1 with *why. */
int upg__upt_decode_header(const unsigned char *p, upg_trace_header_t *h, const char **why);
/* Decodes a 24-byte record; 0, or -1 with *why for a bad kind or nonzero padding. */
int upg__upt_decode_record(const unsigned char *p, upg_trace_record_t *rec, const char **why);

#endif
