/* tlb.h: the address-translation model: a TLB of N entries with LRU
 * replacement in front of a radix page table of `levels` levels, 9 bits a
 * level over 4 KiB pages (4 levels: 48-bit addresses, as x86-64 and
 * AArch64 with 4 KiB granules). A large page (2 MiB) ends the walk one
 * level early. Page-table pages are allocated on demand by walks; there are
 * no page-walk caches, so a walk reads one entry per level it crosses. */
#ifndef UPAGER_SIM_TLB_H
#define UPAGER_SIM_TLB_H

#include <stddef.h>
#include <stdint.h>

#define UPG__TLB_MAX_LEVELS 5

typedef struct upg__tlb_stats {
  uint64_t references, hits;
  uint64_t walks, walk_reads;
  uint64_t table_pages; /* page-table pages allocated, the root included */
} upg__tlb_stats_t;

typedef struct upg__tlb upg__tlb_t;

/* page_shift 12 (4 KiB) or 21 (2 MiB, needs levels >= 2). 0 or negative errno. */
int upg__tlb_create(size_t entries, unsigned levels, unsigned page_shift, upg__tlb_t **out);
/* One access to a virtual address, taken modulo 2^(12 + 9 levels). */
int upg__tlb_access(upg__tlb_t *t, uint64_t address);
const upg__tlb_stats_t *upg__tlb_stats(const upg__tlb_t *t);
void upg__tlb_destroy(upg__tlb_t *t);

#endif
