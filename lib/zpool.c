/* zpool.c: the compressed tier's pool: objects packed densely in size
 * classes, as zsmalloc does. A class holds objects up to its size (a
 * multiple of CLASS_STEP) in zspages: runs of 1 to MAX_ZSPAGE contiguous
 * pool pages, as many as waste the least of their bytes, in which objects
 * lie back to back and may cross page boundaries. So a class of 1,600-byte
 * objects packs 5 into 2 pages rather than 2 into 1. Waste is then the
 * rounding up to a class (CLASS_STEP/2 an object on average) and the
 * zspages partly full, at most one a class while objects are only added;
 * what frees leave behind the tier bounds by writing the oldest objects
 * back, which empties the oldest zspages (store_compress.c).
 *
 * The pool is one reservation of address space, twice its page bound (runs
 * of several pages need room to be found); a page holds memory only while
 * a zspage uses it, and the caller decides how many it may use (the frames
 * lent to it), handing them over as `spare`. Not thread-safe: the tier's
 * lock guards it. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#define CLASS_STEP 64
#define MAX_ZSPAGE 4
#define NONE UINT32_MAX
#define NO_SLOT 0xffffu

typedef struct zspage {
  uint32_t prev, next; /* the class's list of zspages with a free slot */
  uint16_t used;       /* objects in it */
  uint16_t bump;       /* slots from here on were never handed out */
  uint16_t free_head;  /* a freed slot, whose first bytes name the next */
  uint16_t cls;
  uint8_t in_list;
} zspage_t;

typedef struct zclass {
  uint32_t size;    /* object bytes */
  uint16_t pages;   /* a zspage's pages */
  uint16_t objects; /* a zspage's objects */
  uint32_t partial; /* first zspage with a free slot, or NONE */
} zclass_t;

struct upg__zpool {
  size_t page;
  size_t npages; /* the reservation, in pages */
  size_t max_pages;
  size_t used_pages;
  size_t cursor; /* next-fit: where the search for free pages resumes */
  char *base;
  uint8_t *taken; /* a byte a page: in a zspage */
  zspage_t *zs;   /* indexed by a zspage's first page */
  size_t nclasses;
  zclass_t cls[];
};

static size_t class_of(const upg__zpool_t *p, size_t bytes) {
  (void)p;
  return bytes == 0 ? 0 : (bytes - 1) / CLASS_STEP;
}

/* The zspage length (1..MAX_ZSPAGE pages) that wastes the smallest share. */
static void shape_class(zclass_t *c, size_t page) {
  size_t best_waste = SIZE_MAX;
  for (size_t k = 1; k <= MAX_ZSPAGE; k++) {
    size_t bytes = k * page, objects = bytes / c->size;
    size_t waste = (bytes - objects * c->size) * MAX_ZSPAGE / k; /* per MAX_ZSPAGE pages */
    if (objects == 0 || objects >= NO_SLOT || waste >= best_waste) continue;
    best_waste = waste;
    c->pages = (uint16_t)k;
    c->objects = (uint16_t)objects;
  }
}

int upg__zpool_create(size_t page, size_t largest, size_t max_pages, upg__zpool_t **out) {
  size_t nclasses = class_of(NULL, largest) + 1;
  upg__zpool_t *p = upg__os_alloc(sizeof *p + nclasses * sizeof(zclass_t));
  if (p == NULL) return -ENOMEM;
  memset(p, 0, sizeof *p);
  p->page = page;
  p->max_pages = max_pages;
  p->npages = 2 * max_pages + 2 * MAX_ZSPAGE;
  p->nclasses = nclasses;
  for (size_t i = 0; i < nclasses; i++) {
    p->cls[i] = (zclass_t){.size = (uint32_t)((i + 1) * CLASS_STEP), .partial = NONE};
    shape_class(&p->cls[i], page);
  }
  p->taken = upg__os_alloc(p->npages);
  p->zs = upg__os_alloc(p->npages * sizeof(zspage_t));
  int rc = p->taken && p->zs
               ? upg__os_map(NULL, p->npages * page, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, (void **)&p->base)
               : -ENOMEM;
  if (rc != 0) {
    p->base = NULL;
    upg__zpool_destroy(p);
    return rc;
  }
  *out = p;
  return 0;
}

void upg__zpool_destroy(upg__zpool_t *p) {
  if (p->base != NULL) upg__os_unmap(p->base, p->npages * p->page);
  upg__os_free(p->taken, p->npages);
  upg__os_free(p->zs, p->npages * sizeof(zspage_t));
  upg__os_free(p, sizeof *p + p->nclasses * sizeof(zclass_t));
}

size_t upg__zpool_pages(const upg__zpool_t *p) { return p->used_pages; }

size_t upg__zpool_pages_needed(const upg__zpool_t *p, size_t bytes) {
  const zclass_t *c = &p->cls[class_of(p, bytes)];
  return c->partial != NONE ? 0 : c->pages;
}

/* ---- the class lists -----------------------------------------------------*/
static void list_add(upg__zpool_t *p, uint32_t z) {
  zspage_t *s = &p->zs[z];
  zclass_t *c = &p->cls[s->cls];
  s->prev = NONE;
  s->next = c->partial;
  if (c->partial != NONE) p->zs[c->partial].prev = z;
  c->partial = z;
  s->in_list = 1;
}

static void list_remove(upg__zpool_t *p, uint32_t z) {
  zspage_t *s = &p->zs[z];
  if (s->prev != NONE) p->zs[s->prev].next = s->next;
  else p->cls[s->cls].partial = s->next;
  if (s->next != NONE) p->zs[s->next].prev = s->prev;
  s->in_list = 0;
}

/* ---- zspages -------------------------------------------------------------*/
/* k free pages in a row, next-fit; NONE when the reservation has none. */
static uint32_t find_pages(upg__zpool_t *p, size_t k) {
  for (size_t scanned = 0, run = 0; scanned < p->npages + k; scanned++) {
    size_t i = (p->cursor + scanned) % p->npages;
    if (i == 0) run = 0; /* a run does not wrap around */
    run = p->taken[i] ? 0 : run + 1;
    if (run == k) {
      p->cursor = (i + 1) % p->npages;
      return (uint32_t)(i + 1 - k);
    }
  }
  return NONE;
}

static int new_zspage(upg__zpool_t *p, size_t cls, size_t *spare) {
  zclass_t *c = &p->cls[cls];
  if (*spare < c->pages || p->used_pages + c->pages > p->max_pages) return -ENOSPC;
  uint32_t z = find_pages(p, c->pages);
  if (z == NONE) return -ENOSPC;
  memset(p->taken + z, 1, c->pages);
  p->zs[z] = (zspage_t){.free_head = NO_SLOT, .cls = (uint16_t)cls};
  list_add(p, z);
  p->used_pages += c->pages;
  *spare -= c->pages;
  return 0;
}

static char *slot_address(const upg__zpool_t *p, uint32_t z, uint16_t slot) {
  return p->base + (size_t)z * p->page + (size_t)slot * p->cls[p->zs[z].cls].size;
}

int upg__zpool_store(upg__zpool_t *p, const void *src, size_t bytes, size_t *spare,
                     upg__zloc_t *at) {
  size_t cls = class_of(p, bytes);
  zclass_t *c = &p->cls[cls];
  if (cls >= p->nclasses) return -EINVAL;
  if (c->partial == NONE) {
    int rc = new_zspage(p, cls, spare);
    if (rc != 0) return rc;
  }
  uint32_t z = c->partial;
  zspage_t *s = &p->zs[z];
  uint16_t slot = s->free_head;
  if (slot != NO_SLOT) memcpy(&s->free_head, slot_address(p, z, slot), sizeof s->free_head);
  else slot = s->bump++;
  if (++s->used == c->objects) list_remove(p, z);
  memcpy(slot_address(p, z, slot), src, bytes);
  *at = (upg__zloc_t){z, slot, (uint16_t)cls};
  return 0;
}

void *upg__zpool_object(const upg__zpool_t *p, upg__zloc_t at) {
  return slot_address(p, at.zspage, at.slot);
}

/* An empty zspage's memory goes back to the kernel at once: the frames
 * lent for it count against the budget only while it holds memory. */
size_t upg__zpool_free(upg__zpool_t *p, upg__zloc_t at) {
  zspage_t *s = &p->zs[at.zspage];
  const zclass_t *c = &p->cls[s->cls];
  if (--s->used > 0) {
    memcpy(slot_address(p, at.zspage, at.slot), &s->free_head, sizeof s->free_head);
    s->free_head = at.slot;
    if (!s->in_list) list_add(p, at.zspage);
    return 0;
  }
  if (s->in_list) list_remove(p, at.zspage);
  char *mem = p->base + (size_t)at.zspage * p->page;
  int rc = upg__os_advise(mem, c->pages * p->page, MADV_DONTNEED);
  if (rc != 0) upg__fatal("cannot give back the memory of the compressed pool", rc);
  memset(p->taken + at.zspage, 0, c->pages);
  p->used_pages -= c->pages;
  return c->pages;
}
