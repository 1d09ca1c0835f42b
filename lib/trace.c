/* trace.c: the fault trace. With UPAGER_TRACE=FILE every fault becomes a
 * upt record (trace_format.h). Records collect in one of two buffers; a
 * full one is written with one write(2) by the faulting thread once it
 * has let go of the runtime lock, while the other fills, so the fault path
 * pays a store, not a system call, and a trace whose reader stalls (a
 * pipe) stalls only the thread writing it, never the lock. Records that
 * find both buffers full are dropped and counted (trace_dropped). Its
 * state is upg__rt.trace: a trace is open while its buffers are. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "preload_api.h"

#define TRACE_BUFFER_RECORDS 8192
#define TRACE_BUFFER_BYTES (2 * TRACE_BUFFER_RECORDS * sizeof(upg_trace_record_t))

/* This file's part of the runtime. */
#define T (&upg__rt.trace)

static void write_all(const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    long n = upg__os_write(T->fd, p, len);
    if (n <= 0) return; /* a lost trace must not stop the program */
    p += n, len -= (size_t)n;
  }
}

static void free_buffers(void) {
  upg__os_free(T->buffers[0], TRACE_BUFFER_BYTES);
  *T = (upg__trace_part_t){0};
}

int upg__trace_open(const char *path) {
  if (*path == '\0') return 0;
  upg_trace_record_t *buffers = upg__os_alloc(TRACE_BUFFER_BYTES);
  if (buffers == NULL) return -ENOMEM;
  int fd = upg__os_open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    upg__os_free(buffers, TRACE_BUFFER_BYTES);
    return fd;
  }
  *T = (upg__trace_part_t){.fd = fd, .buffers = {buffers, buffers + TRACE_BUFFER_RECORDS}};
  const upg__fault_source_t *src = upg__rt.source;
  upg_trace_header_t header = {.version = UPG_TRACE_VERSION,
                               .page_size = (uint32_t)upg__rt.page_size,
                               .source = src->trace_id,
                               .source_flags = src->caps & UPG__SOURCE_KNOWS_ACCESS
                                                   ? UPG_TRACE_SOURCE_KNOWS_ACCESS
                                                   : 0};
  memcpy(header.magic, UPG_TRACE_MAGIC, 4);
  write_all(&header, sizeof header);
  T->start_ns = upg__os_now_ns();
  return 0;
}

void upg__trace_fault(const upg__region_t *r, size_t page, int kind) {
  if (T->buffers[0] == NULL) return;
  if (T->buffered == TRACE_BUFFER_RECORDS) {
    if (atomic_load(&T->full) != 0) { /* the other one is still being written */
      UPG__COUNT(trace_dropped, 1);
      return;
    }
    atomic_store(&T->full, T->filling + 1);
    T->filling = 1 - T->filling;
    T->buffered = 0;
  }
  uint64_t address_page = r != NULL ? ((uintptr_t)r->base >> upg__rt.page_shift) + page : page;
  T->buffers[T->filling][T->buffered++] = (upg_trace_record_t){.time_ns = upg__os_now_ns() -
                                                                          T->start_ns,
                                                               .page = address_page,
                                                               .kind = (uint8_t)kind,
                                                               .region = r != NULL ? r->id
                                                                                   : UINT16_MAX};
}

/* The buffer stays `full` while it is written, so records go on into the
 * other one and the two never change roles under a write. */
void upg__trace_flush(void) {
  int which = atomic_load(&T->full);
  if (which == 0 || atomic_exchange(&T->writing, 1)) return;
  if ((which = atomic_load(&T->full)) != 0) {
    write_all(T->buffers[which - 1], TRACE_BUFFER_RECORDS * sizeof(upg_trace_record_t));
    atomic_store(&T->full, 0);
  }
  atomic_store(&T->writing, 0);
}

void upg__trace_close(void) {
  if (T->buffers[0] == NULL) return;
  while (atomic_load(&T->writing)) upg__os_yield();
  upg__trace_flush();
  write_all(T->buffers[T->filling], T->buffered * sizeof(upg_trace_record_t));
  upg__os_close(T->fd);
  free_buffers();
}

/* The records buffered are the parent's to write: the child's copy of the
 * descriptor shares the parent's file offset. */
void upg__trace_forget(void) {
  if (T->buffers[0] == NULL) return;
  upg__os_close(T->fd);
  free_buffers();
}

void upg__trace_finish(void) {
  upg__lock();
  upg__trace_close();
  upg__unlock();
}
