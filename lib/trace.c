/* trace.c: the fault trace. With UPAGER_TRACE=FILE every fault becomes a
 * upt record (trace_format.h). Records collect in a buffer that is written
 * with one write(2) when full and at shutdown, so the fault path pays a
 * store, not a system call. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define TRACE_BUFFER_RECORDS 8192

static int trace_fd = -1;
static uint64_t trace_start_ns;
static upg_trace_record_t *buffer;
static size_t buffered;

static void write_all(const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(trace_fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return; /* a lost trace must not stop the program */
    p += n, len -= (size_t)n;
  }
}

int upg__trace_open(const char *path) {
  if (*path == '\0') return 0;
  buffer = upg__os_alloc(TRACE_BUFFER_RECORDS * sizeof *buffer);
  if (buffer == NULL) return -ENOMEM;
  trace_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (trace_fd < 0) {
    int err = -errno;
    upg__os_free(buffer, TRACE_BUFFER_RECORDS * sizeof *buffer);
    buffer = NULL;
    return err;
  }
  upg_trace_header_t header = {.version = UPG_TRACE_VERSION,
                               .page_size = (uint32_t)upg__rt.page_size};
  memcpy(header.magic, UPG_TRACE_MAGIC, 4);
  write_all(&header, sizeof header);
  trace_start_ns = upg__os_now_ns();
  buffered = 0;
  return 0;
}

static void flush(void) {
  write_all(buffer, buffered * sizeof *buffer);
  buffered = 0;
}

void upg__trace_fault(const upg__region_t *r, size_t page, int kind) {
  if (trace_fd < 0) return;
  uint64_t address_page = r != NULL ? ((uintptr_t)r->base >> upg__rt.page_shift) + page : page;
  buffer[buffered++] = (upg_trace_record_t){.time_ns = upg__os_now_ns() - trace_start_ns,
                                            .page = address_page,
                                            .kind = (uint8_t)kind,
                                            .region = r != NULL ? r->id : UINT16_MAX};
  if (buffered == TRACE_BUFFER_RECORDS) flush();
}

void upg__trace_close(void) {
  if (trace_fd < 0) return;
  flush();
  close(trace_fd);
  trace_fd = -1;
  upg__os_free(buffer, TRACE_BUFFER_RECORDS * sizeof *buffer);
  buffer = NULL;
}
