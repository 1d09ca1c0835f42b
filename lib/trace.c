/* trace.c: the fault trace. With UPAGER_TRACE=FILE every fault becomes a
 * upt record (trace_format.h). Records collect in one of two buffers; a
 * full one is written with one write(2) by the faulting thread once it
 * has let go of the runtime lock, while the other fills, so the fault path
 * pays a store, not a system call, and a trace whose reader stalls (a
 * pipe) stalls only the thread writing it, never the lock. Records that
 * find both buffers full are dropped and counted (trace_dropped). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "preload_api.h"

#define TRACE_BUFFER_RECORDS 8192
#define TRACE_BUFFER_BYTES (2 * TRACE_BUFFER_RECORDS * sizeof(upg_trace_record_t))

static int trace_fd = -1;
static uint64_t trace_start_ns;
static upg_trace_record_t *buffers[2];
static int filling;          /* under the lock: the buffer records go to */
static size_t buffered;      /* under the lock: records in it */
static _Atomic int full = -1; /* the buffer waiting for its write, or -1 */
static _Atomic int writing;   /* a thread is writing `full` */

static void write_all(const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    long n = upg__os_write(trace_fd, p, len);
    if (n <= 0) return; /* a lost trace must not stop the program */
    p += n, len -= (size_t)n;
  }
}

int upg__trace_open(const char *path) {
  if (*path == '\0') return 0;
  buffers[0] = upg__os_alloc(TRACE_BUFFER_BYTES);
  if (buffers[0] == NULL) return -ENOMEM;
  buffers[1] = buffers[0] + TRACE_BUFFER_RECORDS;
  trace_fd = upg__os_open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (trace_fd < 0) {
    int err = trace_fd;
    upg__os_free(buffers[0], TRACE_BUFFER_BYTES);
    buffers[0] = buffers[1] = NULL;
    return err;
  }
  upg_trace_header_t header = {.version = UPG_TRACE_VERSION,
                               .page_size = (uint32_t)upg__rt.page_size};
  memcpy(header.magic, UPG_TRACE_MAGIC, 4);
  write_all(&header, sizeof header);
  trace_start_ns = upg__os_now_ns();
  filling = 0;
  buffered = 0;
  atomic_store(&full, -1);
  return 0;
}

void upg__trace_fault(const upg__region_t *r, size_t page, int kind) {
  if (trace_fd < 0) return;
  if (buffered == TRACE_BUFFER_RECORDS) {
    if (atomic_load(&full) >= 0) { /* the other one is still being written */
      UPG__COUNT(trace_dropped, 1);
      return;
    }
    atomic_store(&full, filling);
    filling = 1 - filling;
    buffered = 0;
  }
  uint64_t address_page = r != NULL ? ((uintptr_t)r->base >> upg__rt.page_shift) + page : page;
  buffers[filling][buffered++] = (upg_trace_record_t){.time_ns = upg__os_now_ns() - trace_start_ns,
                                                      .page = address_page,
                                                      .kind = (uint8_t)kind,
                                                      .region = r != NULL ? r->id : UINT16_MAX};
}

/* The buffer stays `full` while it is written, so records go on into the
 * other one and the two never change roles under a write. */
void upg__trace_flush(void) {
  int which = atomic_load(&full);
  if (which < 0 || atomic_exchange(&writing, 1)) return;
  if ((which = atomic_load(&full)) >= 0) {
    write_all(buffers[which], TRACE_BUFFER_RECORDS * sizeof(upg_trace_record_t));
    atomic_store(&full, -1);
  }
  atomic_store(&writing, 0);
}

void upg__trace_close(void) {
  if (trace_fd < 0) return;
  while (atomic_load(&writing)) upg__os_yield();
  upg__trace_flush();
  write_all(buffers[filling], buffered * sizeof(upg_trace_record_t));
  upg__os_close(trace_fd);
  trace_fd = -1;
  upg__os_free(buffers[0], TRACE_BUFFER_BYTES);
  buffers[0] = buffers[1] = NULL;
}

void upg__trace_finish(void) {
  upg__lock();
  upg__trace_close();
  upg__unlock();
}
