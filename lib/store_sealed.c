/* store_sealed.c: the sealing layer, a store that wraps a lower one and
 * seals every page before the lower store sees it (seal.c). The Redis
 * store is always opened under it; the swap file is with UPAGER_ENCRYPT=1.
 *
 * It hands out handles of its own, so that a page's handle is known before
 * it is sealed and goes into the seal's associated data with the seal's
 * version. Its table maps each handle to the lower store's handle, the
 * version and the tag (detached: the lower store keeps pages of exactly
 * the unit, as O_DIRECT needs). A copy that comes back from the lower
 * store altered, another handle's, or an older copy of this one fails to
 * open, and the get ends naming the handle and the cause, never handing a
 * page to the program. */
#include <errno.h>
#include <string.h>

#include "internal.h"

typedef struct seal_entry {
  uint64_t version; /* 0: no copy */
  upg__handle_t lower;
  unsigned char tag[UPG__SEAL_TAG];
} seal_entry_t;

/* The table is two levels, its chunks made as handles reach them: memory
 * in proportion to the handles in use, whatever the overcommit policy. */
#define CHUNK_BITS 16
#define CHUNK_ENTRIES (1u << CHUNK_BITS)
#define NCHUNKS (1u << (32 - CHUNK_BITS))
/* Buffers puts seal into: as many puts as this go on at once (the writer
 * thread and faults evicting for themselves), the next waits its turn. */
#define BOUNCES 4

typedef struct sealed_store {
  upg__store_t base;
  upg__store_t *lower;
  size_t unit;
  pthread_mutex_t lock; /* the handles: puts run beside releases */
  upg__slots_t slots;
  seal_entry_t *_Atomic chunks[NCHUNKS];
  _Atomic int bounce_busy[BOUNCES];
  unsigned char *bounce[BOUNCES];
  _Atomic int reading_busy; /* the one background read: its handles */
  upg__handle_t reading_handles[UPG__IOV_MAX], reading_lower[UPG__IOV_MAX];
  const struct iovec *reading_iov;
  int reading_n;
} sealed_store_t;

static upg__store_t *lower(upg__store_t *s) { return ((sealed_store_t *)s)->lower; }

/* The handle's entry, its chunk made if need be; NULL without memory. */
static seal_entry_t *entry(sealed_store_t *ss, upg__handle_t h) {
  seal_entry_t *_Atomic *slot = &ss->chunks[h >> CHUNK_BITS];
  seal_entry_t *chunk = atomic_load(slot);
  if (chunk == NULL) {
    seal_entry_t *fresh = upg__os_alloc(CHUNK_ENTRIES * sizeof *fresh);
    if (fresh == NULL) return NULL;
    if (atomic_compare_exchange_strong(slot, &chunk, fresh)) chunk = fresh;
    else upg__os_free(fresh, CHUNK_ENTRIES * sizeof *fresh);
  }
  return &chunk[h & (CHUNK_ENTRIES - 1)];
}

static int take_bounce(sealed_store_t *ss) {
  for (;;) {
    for (int b = 0; b < BOUNCES; b++)
      if (!atomic_exchange(&ss->bounce_busy[b], 1)) return b;
    upg__os_yield();
  }
}

/* n handles of this store, in runs; fewer when they run out. */
static int take_handles(sealed_store_t *ss, int n, upg__handle_t *handles) {
  int got = 0;
  pthread_mutex_lock(&ss->lock);
  while (got < n) {
    uint32_t first;
    long k = upg__slots_alloc_run(&ss->slots, (uint32_t)(n - got), &first);
    if (k < 0) break;
    for (long i = 0; i < k; i++) handles[got++] = first + (uint32_t)i;
  }
  pthread_mutex_unlock(&ss->lock);
  return got;
}

static void give_handles(sealed_store_t *ss, const upg__handle_t *handles, int n, int written) {
  pthread_mutex_lock(&ss->lock);
  for (int i = 0; i < n; i++) {
    if (handles[i] == UPG__NO_HANDLE) continue;
    if (written) upg__slots_release(&ss->slots, handles[i]);
    else upg__slots_unalloc(&ss->slots, handles[i]);
  }
  pthread_mutex_unlock(&ss->lock);
}

static int sealed_put(upg__store_t *s, const struct iovec *iov, int n, upg__handle_t *handles) {
  sealed_store_t *ss = (sealed_store_t *)s;
  upg__handle_t mine[UPG__IOV_MAX], theirs[UPG__IOV_MAX];
  struct iovec sealed[UPG__IOV_MAX];
  uint64_t version[UPG__IOV_MAX];
  unsigned char tags[UPG__IOV_MAX][UPG__SEAL_TAG];
  int got = take_handles(ss, n, mine);
  for (int i = 0; i < n; i++) handles[i] = UPG__NO_HANDLE;
  if (got == 0) return -ENOSPC;
  int b = take_bounce(ss);
  for (int i = 0; i < got; i++) {
    sealed[i] = (struct iovec){ss->bounce[b] + (size_t)i * ss->unit, ss->unit};
    version[i] = upg__seal_next_version();
    upg__seal(iov[i].iov_base, sealed[i].iov_base, ss->unit, mine[i], version[i], tags[i]);
  }
  int rc = lower(s)->methods->put(lower(s), sealed, got, theirs);
  atomic_store(&ss->bounce_busy[b], 0);
  for (int i = 0; i < got; i++) {
    seal_entry_t *e = theirs[i] != UPG__NO_HANDLE ? entry(ss, mine[i]) : NULL;
    if (e == NULL) {
      if (theirs[i] != UPG__NO_HANDLE) lower(s)->methods->release(lower(s), &theirs[i], 1);
      give_handles(ss, &mine[i], 1, 0);
      if (rc == 0) rc = -ENOMEM;
      continue;
    }
    e->lower = theirs[i];
    memcpy(e->tag, tags[i], sizeof e->tag);
    atomic_store_explicit((_Atomic uint64_t *)&e->version, version[i], memory_order_release);
    handles[i] = mine[i];
  }
  return got < n && rc == 0 ? -ENOSPC : rc;
}

/* Signal context: the message is built by hand, without stdio. */
static char *put_text(char *at, const char *text) {
  while (*text) *at++ = *text++;
  return at;
}

static char *put_number(char *at, uint64_t v) {
  char digits[24];
  int n = 0;
  do digits[n++] = (char)('0' + v % 10), v /= 10;
  while (v > 0);
  while (n > 0) *at++ = digits[--n];
  return at;
}

static int report_open_failure(upg__handle_t h, uint64_t version, const char *cause) {
  char msg[256], *at = msg;
  at = put_text(at, "upager: sealed store: the copy of handle ");
  at = put_number(at, h);
  at = put_text(at, " (version ");
  at = put_number(at, version);
  at = put_text(at, ") ");
  at = put_text(at, cause);
  at = put_text(at, "\n");
  *at = '\0';
  upg__os_write_stderr(msg);
  UPG__COUNT(store_seal_failures, 1);
  return UPG_ESEALED;
}

/* The lower handles of n of this store's handles. */
static int lower_handles(sealed_store_t *ss, const upg__handle_t *handles, int n,
                         upg__handle_t *out) {
  for (int i = 0; i < n; i++) {
    seal_entry_t *e = entry(ss, handles[i]);
    if (e == NULL) return -ENOMEM;
    if (e->version == 0) return report_open_failure(handles[i], 0, "is not held: no put made it");
    out[i] = e->lower;
  }
  return 0;
}

static int open_all(sealed_store_t *ss, const upg__handle_t *handles, const struct iovec *iov,
                    int n) {
  for (int i = 0; i < n; i++) {
    seal_entry_t *e = entry(ss, handles[i]);
    if (upg__seal_open(iov[i].iov_base, ss->unit, handles[i], e->version, e->tag) != 0)
      return report_open_failure(handles[i], e->version,
                                 "fails to open: altered, swapped or replayed in the store");
  }
  return 0;
}

static int sealed_get(upg__store_t *s, const upg__handle_t *handles, const struct iovec *iov,
                      int n) {
  sealed_store_t *ss = (sealed_store_t *)s;
  upg__handle_t theirs[UPG__IOV_MAX];
  int rc = lower_handles(ss, handles, n, theirs);
  if (rc == 0) rc = lower(s)->methods->get(lower(s), theirs, iov, n);
  return rc != 0 ? rc : open_all(ss, handles, iov, n);
}

static void sealed_release(upg__store_t *s, const upg__handle_t *handles, int n) {
  sealed_store_t *ss = (sealed_store_t *)s;
  upg__handle_t theirs[UPG__IOV_MAX];
  int k = 0;
  for (int i = 0; i < n; i++) {
    seal_entry_t *e = entry(ss, handles[i]);
    if (e == NULL || e->version == 0) continue;
    theirs[k++] = e->lower;
    e->version = 0;
  }
  if (k > 0) lower(s)->methods->release(lower(s), theirs, k);
  give_handles(ss, handles, n, 1);
}

static int sealed_flush(upg__store_t *s) { return lower(s)->methods->flush(lower(s)); }

static void sealed_give_back(upg__store_t *s) {
  if (lower(s)->methods->give_back != NULL) lower(s)->methods->give_back(lower(s));
}

/* The lower store's background read, opened at its end. */
static int sealed_read_begin(upg__store_t *s, const upg__handle_t *handles, const struct iovec *iov,
                             int n) {
  sealed_store_t *ss = (sealed_store_t *)s;
  const upg__store_methods_t *m = lower(s)->methods;
  if (m->read_begin == NULL) return -ENOTSUP;
  if (atomic_exchange(&ss->reading_busy, 1)) return -EBUSY;
  int rc = lower_handles(ss, handles, n, ss->reading_lower);
  if (rc == 0) rc = m->read_begin(lower(s), ss->reading_lower, iov, n);
  if (rc != 0) {
    atomic_store(&ss->reading_busy, 0);
    return rc;
  }
  memcpy(ss->reading_handles, handles, (size_t)n * sizeof *handles);
  ss->reading_iov = iov, ss->reading_n = n;
  return 0;
}

static int sealed_read_done(upg__store_t *s) { return lower(s)->methods->read_done(lower(s)); }

static int sealed_read_end(upg__store_t *s) {
  sealed_store_t *ss = (sealed_store_t *)s;
  int rc = lower(s)->methods->read_end(lower(s));
  if (rc == 0) rc = open_all(ss, ss->reading_handles, ss->reading_iov, ss->reading_n);
  atomic_store(&ss->reading_busy, 0);
  return rc;
}

static void sealed_close(upg__store_t *s) {
  sealed_store_t *ss = (sealed_store_t *)s;
  lower(s)->methods->close(lower(s));
  for (unsigned c = 0; c < NCHUNKS; c++)
    upg__os_free(ss->chunks[c], CHUNK_ENTRIES * sizeof(seal_entry_t));
  for (int b = 0; b < BOUNCES; b++) upg__os_free(ss->bounce[b], UPG__IOV_MAX * ss->unit);
  upg__slots_fini(&ss->slots);
  pthread_mutex_destroy(&ss->lock);
  upg__os_free(ss, sizeof *ss);
}

static const upg__store_methods_t sealed_methods = {
    .version = UPG__STORE_VERSION,
    .caps = UPG__STORE_SIGNAL_SAFE,
    .put = sealed_put,
    .get = sealed_get,
    .release = sealed_release,
    .flush = sealed_flush,
    .close = sealed_close,
    .read_begin = sealed_read_begin,
    .read_done = sealed_read_done,
    .read_end = sealed_read_end,
    .give_back = sealed_give_back,
};

int upg__store_is_sealed(const upg__store_t *s) { return s->methods == &sealed_methods; }

int upg__sealed_open(const upg__config_t *cfg, upg__store_t *below, upg__store_t **out) {
  sealed_store_t *ss = upg__os_alloc(sizeof *ss);
  int rc = ss == NULL ? -ENOMEM : upg__seal_init();
  if (rc == 0) rc = upg__slots_init(&ss->slots);
  if (rc == 0) ss->slots.uncounted = 1;
  if (rc != 0) {
    below->methods->close(below);
    upg__os_free(ss, sizeof *ss);
    return rc;
  }
  ss->base.methods = &sealed_methods;
  ss->lower = below;
  ss->unit = cfg->page_size;
  pthread_mutex_init(&ss->lock, NULL);
  for (int b = 0; b < BOUNCES; b++)
    if ((ss->bounce[b] = upg__os_alloc(UPG__IOV_MAX * ss->unit)) == NULL) {
      sealed_close(&ss->base);
      return -ENOMEM;
    }
  *out = &ss->base;
  return 0;
}
