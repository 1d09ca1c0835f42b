/* lifecycle.c: what the preload does when it is loaded, when the heap has
 * started, and when the program ends. Nothing here allocates before the
 * heap exists.
 *
 * The stats report is printed here rather than by the runtime's atexit
 * hook: many programs close stderr in their own atexit handler (coreutils'
 * close_stdout does), so the report goes to a duplicate of the original
 * stderr, after every atexit handler has run. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "preload_api.h"
#include "preload.h"

static int report_fd = -1;
static int report_stats;

/* Before other libraries' constructors, which may already do I/O. */
__attribute__((constructor(101))) static void at_load(void) {
  upg__real_resolve();
  report_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 10);
}

void upg__preload_heap_started(void) {
  report_stats = upg__report_take_over(); /* the runtime's own would come too early */
}

static void print_report(void) {
  if (!report_stats || report_fd < 0) return;
  FILE *out = fdopen(report_fd, "w");
  if (out == NULL) return;
  upg_stats_print(out);
  fclose(out);
}

/* Destructors run after every atexit handler, so this is the last chance
 * to write out the streams with their buffers pinned: glibc's own final
 * flush would hand unpinned heap pages to write(2). The fault trace is
 * completed too, since the runtime is never shut down under the preload
 * (the heap must outlive every destructor). */
__attribute__((destructor)) static void at_exit(void) {
  upg__stdio_flush_all();
  if (!upg__running()) return;
  print_report();
  upg__trace_finish();
}
