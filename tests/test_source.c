/* test_source.c: the fault-source seam: the access type a fault comes
 * with and what the pager makes of it (upg__fault is called here as a
 * source that tells reads from writes would call it), the behaviour kept
 * when the access is unknown, and the source named in the stats report
 * and in the trace's header. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>

#include "helpers.h"
#include "internal.h"

#define PAGE 4096
#define BUDGET_PAGES 64

/* A region whose loads take one page each, so each fault is its own. */
static char *one_page_loads(size_t pages) {
  start_runtime(BUDGET_PAGES * PAGE, NULL);
  char *p = upg_map(pages * PAGE, 0);
  cr_assert_not_null(p);
  cr_assert_eq(upg_advise(p, pages * PAGE, UPG_ADV_RANDOM), 0);
  return p;
}

Test(source, a_write_fault_on_an_absent_page_opens_it_writable_and_dirty_at_once, .timeout = 20) {
  char *p = one_page_loads(16);
  cr_assert_eq(upg__fault(p + 3 * PAGE, UPG__ACCESS_WRITE), UPG__FAULT_HANDLED);
  upg_page_info_t info = info_of(p + 3 * PAGE);
  cr_assert(info.present && info.modified);
  cr_assert_eq(info.prot, UPG_PROT_RW);
  p[3 * PAGE] = 7; /* open: no second fault */
  upg_stats_t s = stats_now();
  cr_assert_eq(s.fault_zero, 1);
  cr_assert_eq(s.fault_write, 0);
  cr_assert_eq(info_of(p + 2 * PAGE).present, 0, "the neighbours stay absent");
}

Test(source, a_read_fault_opens_read_only_and_clean_and_never_counts_as_a_write, .timeout = 20) {
  char *p = one_page_loads(16);
  cr_assert_eq(upg__fault(p, UPG__ACCESS_READ), UPG__FAULT_HANDLED);
  upg_page_info_t info = info_of(p);
  cr_assert(info.present && !info.modified);
  cr_assert_eq(info.prot, UPG_PROT_READ);
  /* A read that reaches an open page (another thread opened it) is retried. */
  cr_assert_eq(upg__fault(p, UPG__ACCESS_READ), UPG__FAULT_HANDLED);
  info = info_of(p);
  cr_assert(!info.modified);
  cr_assert_eq(info.prot, UPG_PROT_READ);
  cr_assert_eq(stats_now().fault_write, 0);
}

Test(source, a_write_fault_on_a_read_only_page_makes_it_dirty, .timeout = 20) {
  char *p = one_page_loads(16);
  cr_assert_eq(p[PAGE], 0);
  cr_assert_eq(upg__fault(p + PAGE, UPG__ACCESS_WRITE), UPG__FAULT_HANDLED);
  upg_page_info_t info = info_of(p + PAGE);
  cr_assert(info.modified);
  cr_assert_eq(info.prot, UPG_PROT_RW);
  cr_assert_eq(stats_now().fault_write, 1);
}

Test(source, an_unknown_access_on_a_read_only_page_is_taken_for_a_write, .timeout = 20) {
  char *p = one_page_loads(16);
  cr_assert_eq(p[PAGE], 0);
  cr_assert_eq(upg__fault(p + PAGE, UPG__ACCESS_UNKNOWN), UPG__FAULT_HANDLED);
  cr_assert(info_of(p + PAGE).modified);
  cr_assert_eq(stats_now().fault_write, 1);
}

Test(source, an_unknown_access_on_an_absent_page_opens_it_read_only, .timeout = 20) {
  char *p = one_page_loads(16);
  cr_assert_eq(upg__fault(p, UPG__ACCESS_UNKNOWN), UPG__FAULT_HANDLED);
  upg_page_info_t info = info_of(p);
  cr_assert(info.present && !info.modified);
  cr_assert_eq(info.prot, UPG_PROT_READ);
}

Test(source, an_access_outside_every_region_is_not_the_runtimes, .timeout = 20) {
  static char elsewhere[PAGE];
  one_page_loads(1);
  cr_assert_eq(upg__fault(elsewhere, UPG__ACCESS_WRITE), UPG__FAULT_NOT_OURS);
}

Test(source, the_stats_report_names_the_source_and_what_it_tells_apart, .timeout = 20) {
  char *p = one_page_loads(1);
  p[0] = 1;
  char text[8192] = {0};
  FILE *f = fmemopen(text, sizeof text - 1, "w");
  upg_stats_print(f);
  fclose(f);
  char named[64];
  snprintf(named, sizeof named, "fault source %s,", upg__rt.source->name);
  cr_assert_not_null(strstr(text, named), "%s", text);
  cr_assert_not_null(strstr(text, "fault_access_known"));
  /* libsigsegv passes no access type; userfaultfd does. */
  cr_assert_eq(stats_now().fault_access_known, strcmp(upg__rt.source->name, "sigsegv") != 0);
}

Test(source, the_trace_header_names_the_source, .timeout = 20) {
  char path[] = "/tmp/upager-source-XXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  upg_options_t opt = {0};
  opt.budget = BUDGET_PAGES * PAGE;
  opt.trace = path;
  cr_assert_eq(upg_init(&opt), 0, "%s", upg_last_error());
  char *p = upg_map(PAGE, 0);
  p[0] = 1;
  int uffd = strcmp(upg__rt.source->name, "uffd") == 0;
  upg_shutdown();
  unsigned char header[16];
  cr_assert_eq(pread(fd, header, sizeof header, 0), (ssize_t)sizeof header);
  close(fd);
  unlink(path);
  cr_assert_eq(memcmp(header, UPG_TRACE_MAGIC, 4), 0);
  cr_assert_eq(header[12], uffd ? UPG_TRACE_SOURCE_UFFD : UPG_TRACE_SOURCE_SIGSEGV);
  cr_assert_eq(header[13], uffd ? UPG_TRACE_SOURCE_KNOWS_ACCESS : 0,
               "userfaultfd tells reads from writes, the SIGSEGV source does not");
  cr_assert_eq(header[14] | header[15], 0);
}

Test(source, the_option_chooses_from_the_list, .timeout = 20) {
  cr_assert_not_null(upg__fault_source_find("sigsegv"));
  cr_assert_null(upg__fault_source_find("nonsense"));
  setenv("UPAGER_FAULT", "sigsegv", 1);
  start_runtime(BUDGET_PAGES * PAGE, NULL);
  cr_assert_str_eq(upg__rt.source->name, "sigsegv");
  cr_assert_eq(upg__rt.source->version, UPG__FAULT_SOURCE_VERSION);
}
