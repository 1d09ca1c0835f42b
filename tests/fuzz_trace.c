/* fuzz_trace.c: the libFuzzer target for the trace readers (build with
 * -DUPAGER_FUZZ=ON and clang). The first input byte picks the format and
 * compression, the rest is the trace. Besides crashes and sanitizer
 * reports it checks what the reader promises: every reference is a valid
 * page, an error names the trace and a place, and the end is sticky.
 * tests/test_fuzz_corpus.c replays tests/fuzz_trace_corpus/ through it in every
 * build, so the corpus is also a regression suite. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pagemap.h"
#include "trace_read.h"

#define MAX_REFERENCES (1u << 20) /* ARC counts may ask for 2^64 */

static void check(int ok) {
  if (!ok) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  static const char *const names[] = {"fuzz", "fuzz.txt", "fuzz.lis", "fuzz.upt"};
  const upg__trace_format_t *formats[] = {NULL, &upg__format_text, &upg__format_arc,
                                          &upg__format_upt};
  unsigned pick = data[0] & 3, zstd = (data[0] >> 7) & 1;
  upg__input_t *in;
  upg__refs_t *r;
  if (upg__input_open_memory(data + 1, size - 1, (int)zstd, &in) != 0) return 0;
  if (upg__refs_open(in, names[pick], formats[pick], 4096, &r) != 0) return 0;
  uint64_t batch[257];
  size_t total = 0;
  long got;
  while (total < MAX_REFERENCES && (got = upg__refs_next(r, batch, 1 + (size % 257))) > 0) {
    for (long i = 0; i < got; i++) check(batch[i] <= UPG__PAGE_MAX);
    total += (size_t)got;
  }
  if (total < MAX_REFERENCES) {
    if (got < 0) {
      const char *e = upg__refs_error(r);
      check(strncmp(e, names[pick], strlen(names[pick])) == 0 && e[strlen(names[pick])] == ':');
    } else {
      check(upg__refs_next(r, batch, 8) == 0);
    }
  }
  upg__refs_close(r);
  return 0;
}
