/* sim_tlb.c: `upager sim --tlb N [--levels L] [--large-pages]`: the trace's
 * references as virtual addresses (reference x unit bytes) through the TLB
 * and page-table model of sim/tlb.h, with 4 KiB pages, and with
 * --large-pages 2 MiB pages beside them. */
#include <stdlib.h>
#include <string.h>

#include "sim_cli.h"
#include "tlb.h"

#define BATCH 4096

static int replay(upg__refs_t *reader, upg__tlb_t **models, int nmodels) {
  uint64_t batch[BATCH];
  long got;
  size_t unit = 0;
  while ((got = upg__refs_next(reader, batch, BATCH)) > 0) {
    if (unit == 0) unit = upg__refs_unit(reader);
    for (int m = 0; m < nmodels; m++)
      for (long i = 0; i < got; i++) {
        int rc = upg__tlb_access(models[m], batch[i] * unit);
        if (rc != 0) return rc;
      }
  }
  return (int)got;
}

static const char *const size_name[] = {"4KiB", "2MiB"};

static double hit_percent(const upg__tlb_stats_t *s) {
  return s->references ? 100.0 * (double)s->hits / (double)s->references : 0;
}

static void report_csv(const upg__sim_args_t *a, upg__tlb_t **models, int n) {
  printf(
      "page_size,tlb_entries,levels,references,tlb_hits,tlb_hit_ratio,page_walks,walk_reads,table_"
      "pages\n");
  for (int m = 0; m < n; m++) {
    const upg__tlb_stats_t *s = upg__tlb_stats(models[m]);
    printf("%s,%zu,%u,%llu,%llu,%.2f,%llu,%llu,%llu\n", size_name[m], a->tlb_entries, a->levels,
           (unsigned long long)s->references, (unsigned long long)s->hits, hit_percent(s),
           (unsigned long long)s->walks, (unsigned long long)s->walk_reads,
           (unsigned long long)s->table_pages);
  }
}

static void report_table(const upg__sim_args_t *a, upg__refs_t *reader, upg__tlb_t **models,
                         int n) {
  const upg__trace_format_t *format = upg__refs_format(reader);
  printf("%s: %s trace, references of %zu bytes; TLB of %zu entries (LRU), %u-level page table,\n"
         "9 bits a level, %u-bit addresses\n",
         a->trace, format->name, upg__refs_unit(reader), a->tlb_entries, a->levels,
         12 + 9 * a->levels);
  if (format->citation != NULL) printf("trace format and traces: %s\n", format->citation);
  printf("\n%-20s", "");
  for (int m = 0; m < n; m++) printf(" %15s pages", size_name[m]);
  static const char *const rows[] = {"references",    "TLB hits",          "TLB hit ratio",
                                     "page walks",    "walk memory reads", "page-table pages",
                                     "page-table KiB"};
  for (int row = 0; row < 7; row++) {
    printf("\n%-20s", rows[row]);
    for (int m = 0; m < n; m++) {
      const upg__tlb_stats_t *s = upg__tlb_stats(models[m]);
      unsigned long long v[] = {s->references,  s->hits,           0, s->walks, s->walk_reads,
                                s->table_pages, s->table_pages * 4};
      if (row == 2) printf(" %20.2f%%", hit_percent(s));
      else printf(" %21llu", v[row]);
    }
  }
  printf("\n");
}

int upg__cli_sim_tlb(const upg__sim_args_t *a, upg__refs_t *reader) {
  upg__tlb_t *models[2] = {NULL, NULL};
  int n = a->large_pages ? 2 : 1, rc = 0;
  for (int m = 0; m < n && rc == 0; m++)
    rc = upg__tlb_create(a->tlb_entries, a->levels, m ? 21 : 12, &models[m]);
  if (rc == 0) rc = replay(reader, models, n);
  int status = 0;
  if (rc != 0) {
    status = upg__cli_trace_failed("sim", reader, rc);
  } else if (upg__tlb_stats(models[0])->references == 0) {
    fprintf(stderr, "upager sim: %s: empty trace (no references)\n", a->trace);
    status = 2;
  } else {
    if (a->csv) report_csv(a, models, n);
    else report_table(a, reader, models, n);
  }
  for (int m = 0; m < n; m++) upg__tlb_destroy(models[m]);
  return status;
}
