/* swap.c: swap slots, each one paging unit of the store. Released slots
 * are reused before the file grows, so churn does not grow it; the space of
 * a released slot is given back to the filesystem. All store calls from the
 * core go through the wrappers here. */
#include <errno.h>

#include "internal.h"

/* The free-slot stack is reserved for every possible slot; only the part
 * in use is ever backed by memory. */
#define MAX_SLOTS ((size_t)UINT32_MAX)

static uint64_t slot_offset(const upg__swap_t *sw, uint32_t slot) {
  return (uint64_t)(slot - 1) * sw->slot_bytes;
}

int upg__swap_open(upg__swap_t *sw, const char *dir, size_t slot_bytes) {
  sw->slot_bytes = slot_bytes;
  sw->free_count = 0;
  sw->high = 0;
  sw->free_slots = upg__os_alloc(MAX_SLOTS * sizeof(uint32_t));
  if (sw->free_slots == NULL) return -ENOMEM;
  int rc = upg__store_class->open(dir, &sw->store);
  if (rc != 0) upg__os_free(sw->free_slots, MAX_SLOTS * sizeof(uint32_t));
  return rc;
}

void upg__swap_close(upg__swap_t *sw) {
  if (sw->store != NULL) sw->store->methods->close(sw->store);
  upg__os_free(sw->free_slots, MAX_SLOTS * sizeof(uint32_t));
  sw->store = NULL;
  sw->free_slots = NULL;
}

int upg__swap_alloc(upg__swap_t *sw, uint32_t *slot) {
  if (sw->free_count > 0) {
    *slot = sw->free_slots[--sw->free_count];
  } else {
    if (sw->high == UINT32_MAX) return -ENOSPC;
    *slot = ++sw->high;
    UPG__SET(swap_slots_high, sw->high);
  }
  UPG__COUNT(swap_slots_in_use, 1);
  return 0;
}

void upg__swap_unalloc(upg__swap_t *sw, uint32_t slot) {
  sw->free_slots[sw->free_count++] = slot;
  UPG__COUNT(swap_slots_in_use, -1);
}

void upg__swap_release(upg__swap_t *sw, uint32_t slot) {
  upg__swap_unalloc(sw, slot);
  /* Only the disk space is at stake: a failure costs space, not data. */
  (void)sw->store->methods->discard(sw->store, slot_offset(sw, slot), sw->slot_bytes);
}

int upg__swap_read(upg__swap_t *sw, uint32_t slot, void *buf) {
  int rc = sw->store->methods->read(sw->store, slot_offset(sw, slot), buf,
                                    sw->slot_bytes);
  if (rc == 0) UPG__COUNT(swap_bytes_read, sw->slot_bytes);
  return rc;
}

int upg__swap_write(upg__swap_t *sw, uint32_t slot, const void *buf) {
  int rc = sw->store->methods->write(sw->store, slot_offset(sw, slot), buf,
                                     sw->slot_bytes);
  if (rc == 0) UPG__COUNT(swap_bytes_written, sw->slot_bytes);
  else UPG__COUNT(swap_write_errors, 1);
  return rc;
}
