/* trace_cmd.c: `upager trace stats FILE`: a summary of a upt fault trace
 * (UPAGER_TRACE): faults by kind, distinct pages and regions, and the fault
 * rate over time. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "input.h"
#include "pagemap.h"
#include "sim_cli.h"
#include "upt_decode.h"

#define TIME_BUCKETS 32

typedef struct trace_summary {
  uint32_t page_size;
  uint8_t source, source_flags; /* the fault source that recorded it */
  uint64_t records, by_kind[UPG_TRACE_KINDS], last_ns;
  upg__pagemap_t pages, regions;
  /* Faults per interval of bucket_ns; the width doubles (merging pairs)
   * whenever a fault falls beyond the last bucket, so any duration fits. */
  uint64_t bucket_ns, buckets[TIME_BUCKETS];
} trace_summary_t;

static void count_time(trace_summary_t *s, uint64_t t) {
  while (t / s->bucket_ns >= TIME_BUCKETS) {
    for (int i = 0; i < TIME_BUCKETS / 2; i++)
      s->buckets[i] = s->buckets[2 * i] + s->buckets[2 * i + 1];
    memset(s->buckets + TIME_BUCKETS / 2, 0, sizeof s->buckets / 2);
    s->bucket_ns *= 2;
  }
  s->buckets[t / s->bucket_ns]++;
  if (t > s->last_ns) s->last_ns = t;
}

static int add_record(trace_summary_t *s, const upg_trace_record_t *r) {
  s->records++;
  s->by_kind[r->kind]++;
  count_time(s, r->time_ns);
  int rc = upg__pagemap_put(&s->pages, r->page < UPG__PAGE_MAX ? r->page : UPG__PAGE_MAX, 0);
  return rc != 0 ? rc : upg__pagemap_put(&s->regions, r->region, 0);
}

/* Reads the whole trace; 0, or an exit status after printing why not. */
static int summarise(const char *path, upg__input_t *in, trace_summary_t *s) {
  unsigned char buf[24 * 4096];
  size_t have = 0, header = 0;
  uint64_t record = 0;
  ssize_t n;
  const char *why = NULL;
  while ((n = upg__input_read(in, buf + have, sizeof buf - have)) > 0 || (n == 0 && have > 0)) {
    have += (size_t)n;
    size_t off = 0;
    if (!header) {
      if (have < 16 && n > 0) continue;
      upg_trace_header_t h;
      if (have < 16 || upg__upt_decode_header(buf, &h, &why) != 0) break;
      s->page_size = h.page_size, s->source = h.source, s->source_flags = h.source_flags;
      header = off = 16;
    }
    for (; have - off >= 24; off += 24) {
      upg_trace_record_t r;
      record++;
      if (upg__upt_decode_record(buf + off, &r, &why) != 0) break;
      int rc = add_record(s, &r);
      if (rc != 0) return fprintf(stderr, "upager trace: %s\n", strerror(-rc)), 1;
    }
    if (why != NULL) break;
    memmove(buf, buf + off, have - off);
    have -= off;
    if (n == 0) {
      why = "truncated record", record++;
      break;
    }
  }
  if (n < 0) why = n == -EBADMSG ? "corrupt zstd data" : strerror((int)-n);
  else if (!header && why == NULL) why = "truncated header: not a upt trace";
  if (why == NULL) return 0;
  if (record)
    fprintf(stderr, "upager trace: %s: record %llu: %s\n", path, (unsigned long long)record, why);
  else fprintf(stderr, "upager trace: %s: %s\n", path, why);
  return 2;
}

static void print_summary(const char *path, const trace_summary_t *s) {
  static const char *const kind_name[UPG_TRACE_KINDS] = {"zero-fill", "minor", "write", "major",
                                                         "invalid"};
  double seconds = (double)s->last_ns / 1e9;
  printf("%s: upt trace, page size %u, fault source %s%s\n", path, s->page_size,
         s->source == UPG_TRACE_SOURCE_SIGSEGV   ? "sigsegv"
         : s->source == UPG_TRACE_SOURCE_UFFD    ? "uffd"
         : s->source == UPG_TRACE_SOURCE_UNKNOWN ? "not recorded"
                                                 : "unknown",
         s->source_flags & UPG_TRACE_SOURCE_KNOWS_ACCESS ? " (reads and writes told apart)" : "");
  printf("faults          %llu over %.3f s\n", (unsigned long long)s->records, seconds);
  for (int k = 0; k < UPG_TRACE_KINDS; k++)
    printf("  %-13s %llu\n", kind_name[k], (unsigned long long)s->by_kind[k]);
  printf("distinct pages  %zu (%.1f MiB)\nregions         %zu\n", s->pages.count,
         (double)s->pages.count * s->page_size / (1 << 20), s->regions.count);
  if (s->records == 0) return;
  printf("fault rate over time:\n%10s %10s %10s %14s\n", "from (s)", "to (s)", "faults",
         "faults/s");
  for (uint64_t i = 0; i < TIME_BUCKETS && i * s->bucket_ns <= s->last_ns; i++)
    printf("%10.4f %10.4f %10llu %14.0f\n", (double)(i * s->bucket_ns) / 1e9,
           (double)((i + 1) * s->bucket_ns) / 1e9, (unsigned long long)s->buckets[i],
           (double)s->buckets[i] / ((double)s->bucket_ns / 1e9));
}

static int trace_stats(const char *path) {
  upg__input_t *in;
  int rc = upg__input_open_file(path, &in);
  if (rc != 0) return fprintf(stderr, "upager trace: cannot open %s: %s\n", path, strerror(-rc)), 2;
  trace_summary_t s = {.bucket_ns = 1000000};
  int status = 1;
  if (upg__pagemap_init(&s.pages, 1024) == 0 && upg__pagemap_init(&s.regions, 16) == 0)
    status = summarise(path, in, &s);
  if (status == 0) print_summary(path, &s);
  upg__pagemap_free(&s.pages), upg__pagemap_free(&s.regions);
  upg__input_close(in);
  return status;
}

int upg__cmd_trace(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "stats") == 0) return trace_stats(argv[2]);
  fprintf(argc == 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr,
          "usage: upager trace stats FILE\n\n"
          "Summarises a upt fault trace (written by the runtime with UPAGER_TRACE=FILE;\n"
          "FILE may end in .zst): faults by kind, distinct pages, fault rate over time.\n");
  return argc == 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
}
