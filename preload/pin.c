/* pin.c: making the buffers of a system call resident and pinned for the
 * call's duration, and the EFAULT safety net.
 *
 * The kernel raises no SIGSEGV for its own accesses: read(2) into a
 * protected page fails with EFAULT. So a wrapper pins the buffer first,
 * unless the fault source resolves the kernel's accesses too.
 * Pins count against the budget, so a buffer larger than the pin limit is
 * handled in pieces, and a pin that does not fit right now (other threads
 * hold pins) is retried smaller, then waited for. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <time.h>

#include "preload_api.h"
#include "preload.h"

/* The share of the budget one pinned piece may take: a call pins at most
 * two ranges (a FILE buffer and the caller's), and other threads pin too. */
#define PIECE_SHARE 8

static size_t piece_limit(void) {
  size_t pages = upg__frame_budget() / PIECE_SHARE;
  return (pages > 0 ? pages : 1) * upg__paging_unit();
}

static void pause_briefly(void) {
  static const struct timespec pause = {0, 100 * 1000};
  nanosleep(&pause, NULL);
}

/* Pins [addr, addr+*len), shrinking *len (never below the first page) when
 * the pins of other threads leave too little room. */
static void pin_shrinking(const char *addr, size_t *len, int may_shrink) {
  size_t unit = upg__paging_unit();
  size_t first_page = unit - ((uintptr_t)addr & (unit - 1));
  for (;;) {
    int rc = upg_pin(addr, *len);
    if (rc == 0) return;
    if (rc != UPG_EPINLIMIT) upg__fatal("cannot pin a system call's buffer in paged memory", rc);
    if (may_shrink && *len > first_page) *len = *len / 2 > first_page ? *len / 2 : first_page;
    else pause_briefly();
  }
}

size_t upg__pin_begin(upg__pin_t *pin, const void *addr, size_t len) {
  *pin = (upg__pin_t){NULL, 0};
  if (len == 0 || !upg__heap_contains(addr) || !upg__fault_kernel_needs_pins()) return len;
  const char *p = addr;
  size_t room = upg__heap.len - (size_t)(p - upg__heap.base);
  if (len > room) len = room;
  size_t limit = piece_limit() - ((uintptr_t)p & (upg__paging_unit() - 1));
  size_t piece = len < limit ? len : limit;
  pin_shrinking(p, &piece, 1);
  pin->addr = p;
  pin->len = piece;
  return piece;
}

void upg__pin_whole(upg__pin_t *pin, const void *addr, size_t len) {
  *pin = (upg__pin_t){NULL, 0};
  if (len == 0 || !upg__heap_contains(addr) || !upg__fault_kernel_needs_pins()) return;
  size_t unit = upg__paging_unit();
  size_t pages = (((uintptr_t)addr & (unit - 1)) + len + unit - 1) / unit;
  if (pages * PIECE_SHARE > upg__frame_budget() * 2)
    upg__fatal("a buffer the kernel needs whole is larger than the pin limit; "
               "raise UPAGER_BUDGET",
               UPG_EPINLIMIT);
  pin_shrinking(addr, &len, 0);
  pin->addr = addr;
  pin->len = len;
}

void upg__pin_string(upg__pin_t *pin, const char *s) {
  *pin = (upg__pin_t){NULL, 0};
  if (s != NULL && upg__heap_contains(s)) upg__pin_whole(pin, s, strlen(s) + 1);
}

void upg__pin_end(upg__pin_t *pin) {
  if (pin->len == 0) return;
  int saved = errno;
  int rc = upg_unpin(pin->addr, pin->len);
  if (rc != 0) upg__fatal("cannot unpin a system call's buffer", rc);
  pin->len = 0;
  errno = saved;
}

_Noreturn void upg__efault_fatal(const char *call, const void *addr) {
  char msg[160];
  snprintf(msg, sizeof msg,
           "%s() failed with EFAULT on paged memory at %p: the kernel touched a page "
           "that was not pinned; stopping rather than losing data",
           call, addr);
  upg__fatal(msg, 0);
}

void upg__efault_check(long rc, const char *call, const void *addr) {
  if (rc < 0 && errno == EFAULT && (addr == NULL || upg__heap_contains(addr)) &&
      atomic_load(&upg__heap_state) == UPG__HEAP_READY)
    upg__efault_fatal(call, addr);
}
