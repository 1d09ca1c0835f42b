/* store_compress.c: the compressed tier, UPAGER_COMPRESS=lz4|zstd. A store
 * that wraps whatever store UPAGER_STORE opens (the lower store) and keeps
 * evicted pages in RAM, compressed, as zswap does for the kernel, inside
 * the runtime's budget:
 * - a page of one repeated word (zeros included) is kept as that word;
 * - a page that compresses to at most the threshold goes into the pool
 *   (zpool.c), whose memory is frames lent by frames.c, so that frames and
 *   pool together never exceed the budget; the pool may hold at most
 *   UPAGER_COMPRESS_POOL percent of it;
 * - any other page, and any page the pool has no room for or does not
 *   admit (the pool earns its admission: see below), goes to the lower
 *   store in the same put, one call for all of them.
 * A get decompresses straight into the frame it is given. The writer
 * thread of this file (a worker, lib/worker.c) keeps room in the pool by
 * writing its oldest objects to the lower store in batches, one put each,
 * off the fault path; a write that fails leaves them in the pool. Each
 * object carries a checksum of its bytes: a corrupt one ends the program
 * naming the cause, never hands it a wrong page.
 *
 * A handle names an entry of this file's table, which says where the page
 * is: its word, its object in the pool, or the lower store's handle. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <xxhash.h>

#include "internal.h"

/* Handles the table has room for: 2^26 pages, 256 GiB of 4 KiB pages. Its
 * address space is reserved at open and takes memory as it is used. */
#define MAX_HANDLES ((uint32_t)1 << 26)
#define NONE 0u /* no entry: handle 0 is never given out */
/* Compression contexts, for puts running at once (the writer thread and
 * faults that evict for themselves). */
#define NCTX 4
/* Most objects one write-back moves to the lower store. */
#define WRITEBACK_MAX 32
/* Spare frames the tier keeps for the next zspage instead of giving them
 * back at once. */
#define SPARE_KEEP 16
/* Pages of the largest zspage (zpool.c): a new object may need that many. */
#define MAX_OBJECT_PAGES 4
/* Frames the tier asks for at a time when it needs any. */
#define ASK_CHUNK 8
/* Admission. A page pays its compression (several microseconds) only if
 * it comes back from the pool before a full pool would have written it
 * out, that is within about as many puts as a full pool holds pages: such
 * a get is a paying hit. The pool starts with its admission off and earns
 * it: while off, pages go below uncompressed, the pool keeps a SAMPLE-th of
 * its share and lends the rest of its frames to the pages, and one put in
 * SAMPLE still enters, whose paying hits say whether a full pool would
 * pay. A window of stores with at least one paying hit in HITS_MIN turns
 * it on; one with fewer (a sequential pass over more than the budget,
 * whose pages come back long after) turns it off again. Whole puts, not
 * pages, so that a put's pages go below as one run of slots, which a
 * sequential read gets back in one. Starting off also keeps a program's
 * first pass over its data from going through the pool and out again. */
#define HITS_MIN 16
#define SAMPLE 8
/* The shortest window of stores; otherwise a pool a quarter full at 2:1. */
#define WINDOW_MIN 64

enum { E_FREE, E_SAME, E_POOL, E_LOWER };

typedef struct entry {
  uint8_t kind;
  uint8_t writing;     /* E_POOL being written back: it stays until that ends */
  uint8_t released;    /* released while writing: freed when the write ends */
  uint32_t born;       /* E_POOL: the tier's clock when it came in */
  uint32_t size;       /* E_POOL: compressed bytes */
  uint32_t check;      /* E_POOL: XXH32 of those bytes */
  uint32_t prev, next; /* E_POOL: the age list, oldest first; E_FREE: the free list */
  union {
    uint64_t word;       /* E_SAME */
    upg__zloc_t at;      /* E_POOL */
    upg__handle_t lower; /* E_LOWER */
  } u;
} entry_t;

typedef struct codec_slot {
  _Atomic int busy;
  upg__codec_ctx_t *ctx;
  unsigned char *out; /* a page: a compressed object, made or copied out */
} codec_slot_t;

typedef struct tier {
  upg__store_t base;
  upg__store_t *lower;
  const upg__codec_t *codec;
  size_t page, threshold;
  pid_t pid;            /* the process whose writer thread it is */
  pthread_mutex_t lock; /* the table, the pool, the frame counts */
  entry_t *e;
  uint32_t high, free_head; /* handles from high up were never used */
  uint32_t oldest, newest;  /* the age list of objects in the pool */
  upg__zpool_t *pool;
  size_t cap;        /* frames the tier may hold: objects and write-back buffers */
  size_t object_cap; /* of those, what objects may take */
  size_t share;      /* what they may take now: object_cap, or less when bypassed */
  size_t window;     /* stores a window of the admission's judgement counts */
  size_t window_stores, window_hits;
  _Atomic uint32_t clock;    /* pages put so far: the age of an object is in puts */
  _Atomic int bypass;        /* admission off: the pool does not pay */
  _Atomic unsigned sampling; /* counts puts while bypassed: one in SAMPLE enters */
  size_t writeback_max;      /* the buffers' pages: the most one write-back moves */
  size_t asked;              /* frames asked of frames.c and not given back: lent or owed */
  size_t buffered;           /* the write-back's pages in use */
  size_t payload;            /* bytes of the objects in the pool */
  size_t objects;            /* and how many there are */
  codec_slot_t slot[NCTX];
  void *ctx_mem;
  size_t ctx_bytes;
  unsigned char *buffers; /* the write-back's pages */
  size_t buffer_bytes;
  upg__worker_t writer;
} tier_t;


upg__tier_plan_t upg__tier_faults;

/* ---- the table -----------------------------------------------------------*/
static uint32_t entry_new(tier_t *t) {
  uint32_t h = t->free_head;
  if (h != NONE) t->free_head = t->e[h].next;
  else if (t->high + 1 < MAX_HANDLES) h = ++t->high;
  else return NONE;
  memset(&t->e[h], 0, sizeof t->e[h]);
  return h;
}

static void entry_free(tier_t *t, uint32_t h) {
  t->e[h].kind = E_FREE;
  t->e[h].next = t->free_head;
  t->free_head = h;
}

static void age_append(tier_t *t, uint32_t h) {
  t->e[h].prev = t->newest;
  t->e[h].next = NONE;
  if (t->newest != NONE) t->e[t->newest].next = h;
  else t->oldest = h;
  t->newest = h;
}

static void age_remove(tier_t *t, uint32_t h) {
  entry_t *x = &t->e[h];
  if (x->prev != NONE) t->e[x->prev].next = x->next;
  else t->oldest = x->next;
  if (x->next != NONE) t->e[x->next].prev = x->prev;
  else t->newest = x->prev;
}

/* ---- the pool's memory, in frames ---------------------------------------*/
/* Pages holding memory: the pool's and the write-back's. */
static size_t held(const tier_t *t) { return upg__zpool_pages(t->pool) + t->buffered; }

/* Frames lent and holding nothing yet: lent_count only grows while the
 * tier's lock is held without the runtime's, so this never overstates. */
static size_t spare(const tier_t *t) {
  size_t lent = atomic_load_explicit(&upg__rt.lent_count, memory_order_acquire);
  return lent > held(t) ? lent - held(t) : 0;
}

static void publish_pool(tier_t *t) {
  uint64_t bytes = (uint64_t)held(t) * t->page;
  UPG__SET(tier_pages, t->objects);
  UPG__SET(tier_payload_bytes, t->payload);
  UPG__SET(tier_pool_bytes, bytes);
  if (bytes > atomic_load(&upg__counters.tier_pool_peak)) UPG__SET(tier_pool_peak, bytes);
}

/* Frees an object; its zspage's frames, when it empties, become spare. */
static void object_free(tier_t *t, uint32_t h) {
  (void)upg__zpool_free(t->pool, t->e[h].u.at);
  t->payload -= t->e[h].size;
  t->objects--;
}

/* Under the runtime lock and the tier's: spare frames beyond a few go back
 * to the pages (owed ones first: the pool no longer waits for them). */
static void give_back_spare(tier_t *t) {
  t->asked -= upg__rt.lend_cancelled, upg__rt.lend_cancelled = 0;
  size_t now = spare(t);
  if (now <= SPARE_KEEP) return;
  t->asked -= now - SPARE_KEEP;
  upg__frames_give_back(now - SPARE_KEEP);
}

/* Under the runtime lock and the tier's: asks for `want` more frames, as
 * far as the pool's share allows. */
static void ask(tier_t *t, size_t want) {
  t->asked -= upg__rt.lend_cancelled, upg__rt.lend_cancelled = 0;
  if (t->asked + want > t->cap) want = t->cap - t->asked;
  t->asked += want;
  upg__frames_lend(want);
}

/* Under the tier's lock, which it drops to ask for frames under the
 * runtime's (in that order, as everywhere). Asks for a few at a time: the
 * frames the evictor frees next pay what is not free now, and the pages
 * meanwhile go to the lower store. */
static void borrow(tier_t *t, size_t want) {
  if (t->asked >= t->cap) return;
  pthread_mutex_unlock(&t->lock);
  upg__lock();
  pthread_mutex_lock(&t->lock);
  ask(t, want > ASK_CHUNK ? want : ASK_CHUNK);
  pthread_mutex_unlock(&t->lock);
  upg__unlock();
  pthread_mutex_lock(&t->lock);
}

/* Whether the pool should make room: its objects are within a sixteenth
 * (and a zspage) of their share. */
static int pool_full(const tier_t *t) {
  size_t used = upg__zpool_pages(t->pool), margin = t->share / 16 + 4;
  return used + margin > t->share;
}

/* ---- compression contexts ------------------------------------------------*/
static codec_slot_t *slot_take(tier_t *t) {
  for (;;) {
    for (int i = 0; i < NCTX; i++)
      if (!atomic_exchange(&t->slot[i].busy, 1)) return &t->slot[i];
    upg__os_yield(); /* NCTX threads compress at once: rare, and short */
  }
}

static void slot_put(codec_slot_t *s) { atomic_store(&s->busy, 0); }

/* ---- put -------------------------------------------------------------------*/
/* A page of one repeated word: zeros, or a pattern the program filled. */
static int same_filled(const void *page, size_t bytes, uint64_t *word) {
  const uint64_t *w = page;
  for (size_t i = 1; i < bytes / sizeof *w; i++)
    if (w[i] != w[0]) return 0;
  *word = w[0];
  return 1;
}

/* Under the tier's lock: how many pages a full pool holds, at the ratio
 * its objects show (2:1 before it holds any). */
static uint32_t pool_reach(const tier_t *t) {
  size_t per_page = t->objects > 0 ? t->payload / t->objects + 1 : t->page / 2;
  return (uint32_t)(t->object_cap * t->page / per_page);
}

/* The pool's share while its admission is off: room for the sampled puts,
 * and for a zspage of each size however small the budget. */
static size_t bypassed_share(const tier_t *t) {
  size_t share = t->object_cap / SAMPLE + 2 * MAX_OBJECT_PAGES;
  return share < t->object_cap ? share : t->object_cap;
}

/* Under the tier's lock, at each page the pool takes in: at the end of a
 * window, whether the pool paid in it decides its admission for the next. */
static void judge(tier_t *t) {
  size_t window = atomic_load(&t->bypass) ? t->window / SAMPLE : t->window;
  if (++t->window_stores < window) return;
  int bypass = t->window_hits * HITS_MIN < t->window_stores;
  atomic_store(&t->bypass, bypass);
  t->share = bypass ? bypassed_share(t) : t->object_cap;
  UPG__SET(tier_bypassing, (uint64_t)bypass);
  t->window_stores = t->window_hits = 0;
}

/* While bypassed, all but one put in SAMPLE go below uncompressed. */
static int bypassed(tier_t *t) {
  return atomic_load_explicit(&t->bypass, memory_order_relaxed) &&
         atomic_fetch_add_explicit(&t->sampling, 1, memory_order_relaxed) % SAMPLE != 0;
}

/* Places a compressed page in the pool; NONE when it has no room. Its
 * checksum is taken before the lock: faults wait on that lock. */
static uint32_t place(tier_t *t, const void *bytes, size_t size) {
  upg__zloc_t at;
  uint32_t check = XXH32(bytes, size, 0);
  pthread_mutex_lock(&t->lock);
  size_t need = upg__zpool_pages_needed(t->pool, size), have = spare(t);
  if (need > have && upg__zpool_pages(t->pool) + need <= t->share) {
    borrow(t, need - have);
    have = spare(t);
  }
  uint32_t h = entry_new(t);
  if (h != NONE && upg__zpool_store(t->pool, bytes, size, &have, &at) != 0) {
    entry_free(t, h);
    h = NONE;
  }
  if (h != NONE) {
    t->e[h].kind = E_POOL;
    t->e[h].size = (uint32_t)size;
    t->e[h].check = check;
    t->e[h].u.at = at;
    t->e[h].born = atomic_load_explicit(&t->clock, memory_order_relaxed);
    t->payload += size;
    t->objects++;
    age_append(t, h);
    publish_pool(t);
    judge(t);
  }
  int full = pool_full(t);
  pthread_mutex_unlock(&t->lock);
  if (full && t->writer.sleeping) { /* a hint: the wake itself is under the lock */
    upg__lock();
    upg__worker_wake(&t->writer);
    upg__unlock();
  }
  return h;
}

static uint32_t keep_word(tier_t *t, uint64_t word) {
  pthread_mutex_lock(&t->lock);
  uint32_t h = entry_new(t);
  if (h != NONE) t->e[h].kind = E_SAME, t->e[h].u.word = word;
  pthread_mutex_unlock(&t->lock);
  return h;
}

/* Whether the pool's objects have filled their share, read without the
 * lock: a page that finds it so goes below without being compressed for
 * nothing (a stale answer costs one compression, or one page below). */
static int no_room(const tier_t *t) {
  return upg__zpool_pages(t->pool) + MAX_OBJECT_PAGES > t->share;
}

/* The tier's handle for a page, or NONE when it goes to the lower store. */
static uint32_t store_page(tier_t *t, const void *page, int bypass) {
  uint64_t word;
  uint32_t h;
  if (same_filled(page, t->page, &word)) {
    if ((h = keep_word(t, word)) != NONE)
      UPG__COUNT(tier_stored, 1), UPG__COUNT(tier_same_filled, 1);
    return h;
  }
  if (bypass) {
    UPG__COUNT(tier_bypassed, 1);
    return NONE;
  }
  if (no_room(t)) {
    UPG__COUNT(tier_overflow, 1);
    return NONE;
  }
  codec_slot_t *s = slot_take(t);
  size_t size = t->codec->compress(s->ctx, page, t->page, s->out, t->threshold);
  h = size > 0 ? place(t, s->out, size) : NONE;
  slot_put(s);
  if (h != NONE) UPG__COUNT(tier_stored, 1);
  else UPG__COUNT(tier_overflow, size > 0), UPG__COUNT(tier_rejected, size == 0);
  return h;
}

/* Entries for the pages the lower store took; the others get none. */
static void keep_lower(tier_t *t, const upg__handle_t *lower, upg__handle_t *handles,
                       const int *who, int n) {
  upg__handle_t orphans[UPG__IOV_MAX];
  int norphans = 0;
  pthread_mutex_lock(&t->lock);
  for (int k = 0; k < n; k++) {
    if (lower[k] == UPG__NO_HANDLE) continue;
    uint32_t h = entry_new(t);
    if (h == NONE) {
      orphans[norphans++] = lower[k];
      continue;
    }
    t->e[h].kind = E_LOWER;
    t->e[h].u.lower = lower[k];
    handles[who[k]] = h;
  }
  pthread_mutex_unlock(&t->lock);
  if (norphans > 0) t->lower->methods->release(t->lower, orphans, norphans);
}

static int tier_put(upg__store_t *s, const struct iovec *iov, int n, upg__handle_t *handles) {
  tier_t *t = (tier_t *)s;
  struct iovec below[UPG__IOV_MAX];
  upg__handle_t lower[UPG__IOV_MAX];
  int who[UPG__IOV_MAX], k = 0, bypass = bypassed(t);
  atomic_fetch_add_explicit(&t->clock, (uint32_t)n, memory_order_relaxed);
  for (int i = 0; i < n; i++) {
    handles[i] = store_page(t, iov[i].iov_base, bypass);
    if (handles[i] == NONE) who[k] = i, below[k++] = iov[i];
  }
  if (k == 0) return 0;
  int rc = t->lower->methods->put(t->lower, below, k, lower);
  keep_lower(t, lower, handles, who, k);
  for (int j = 0; j < k; j++)
    if (handles[who[j]] == NONE && rc == 0) rc = -ENOSPC; /* the table is full */
  return rc;
}

/* ---- get -------------------------------------------------------------------*/
static void fill_word(void *page, size_t bytes, uint64_t word) {
  uint64_t *w = page;
  for (size_t i = 0; i < bytes / sizeof *w; i++) w[i] = word;
}

/* Checks an object against its checksum and decompresses it into dst,
 * with a context of a slot the caller holds. A corrupt object ends the
 * program: the page it held is lost, and handing the program anything
 * else would be worse. */
static void open_object(tier_t *t, codec_slot_t *s, unsigned char *obj, const entry_t *x,
                        void *dst) {
  if (atomic_load(&upg__tier_faults.corrupt_gets)) obj[x->size / 2] ^= 0x5a;
  if (XXH32(obj, x->size, 0) != x->check)
    upg__fatal("a page's compressed copy in the tier is corrupt (checksum mismatch)", 0);
  if (t->codec->decompress(s->ctx, obj, x->size, dst, t->page) != 0)
    upg__fatal("a page's compressed copy in the tier does not decompress to a page", 0);
}

/* Fills the page from the tier if it is there; else names the lower
 * store's copy in *lower and returns 0. An object is copied out under the
 * tier's lock (a write-back frees objects under it) and opened without
 * it: the writer thread and other faults wait on that lock. */
static int get_from_tier(tier_t *t, uint32_t h, void *dst, upg__handle_t *lower) {
  codec_slot_t *s = NULL;
  pthread_mutex_lock(&t->lock);
  entry_t x = t->e[h];
  if (x.kind == E_POOL) {
    t->window_hits += atomic_load_explicit(&t->clock, memory_order_relaxed) - x.born <
                      pool_reach(t);
    s = slot_take(t);
    memcpy(s->out, upg__zpool_object(t->pool, x.u.at), x.size);
  }
  pthread_mutex_unlock(&t->lock);
  if (s != NULL) open_object(t, s, s->out, &x, dst), slot_put(s);
  if (x.kind == E_SAME) fill_word(dst, t->page, x.u.word);
  if (x.kind == E_LOWER) *lower = x.u.lower;
  return x.kind == E_SAME || x.kind == E_POOL;
}

static int tier_get(upg__store_t *s, const upg__handle_t *handles, const struct iovec *iov, int n) {
  tier_t *t = (tier_t *)s;
  struct iovec below[UPG__IOV_MAX];
  upg__handle_t lower[UPG__IOV_MAX];
  int k = 0;
  for (int i = 0; i < n; i++)
    if (!get_from_tier(t, handles[i], iov[i].iov_base, &lower[k])) below[k++] = iov[i];
  UPG__COUNT(tier_hits, (uint64_t)(n - k));
  UPG__COUNT(tier_misses, (uint64_t)k);
  return k > 0 ? t->lower->methods->get(t->lower, lower, below, k) : 0;
}

/* A background read goes to the lower store when every page of it is
 * there (a fault on a page out of the pool then does its eviction work
 * while the device reads, as without the tier); a page in the pool, or
 * kept as its word, costs no I/O, and the caller gets the window at once. */
static int tier_read_begin(upg__store_t *s, const upg__handle_t *handles, const struct iovec *iov,
                           int n) {
  tier_t *t = (tier_t *)s;
  upg__handle_t lower[UPG__IOV_MAX];
  int below = t->lower->methods->read_begin != NULL;
  pthread_mutex_lock(&t->lock);
  for (int i = 0; i < n && below; i++) {
    below = t->e[handles[i]].kind == E_LOWER;
    lower[i] = t->e[handles[i]].u.lower;
  }
  pthread_mutex_unlock(&t->lock);
  int rc = below ? t->lower->methods->read_begin(t->lower, lower, iov, n) : -EAGAIN;
  if (rc == 0) UPG__COUNT(tier_misses, (uint64_t)n);
  return rc;
}

static int tier_read_done(upg__store_t *s) {
  tier_t *t = (tier_t *)s;
  return t->lower->methods->read_done(t->lower);
}

static int tier_read_end(upg__store_t *s) {
  tier_t *t = (tier_t *)s;
  return t->lower->methods->read_end(t->lower);
}

static int tier_in_memory(upg__store_t *s, upg__handle_t handle) {
  tier_t *t = (tier_t *)s;
  pthread_mutex_lock(&t->lock);
  int kind = t->e[handle].kind;
  pthread_mutex_unlock(&t->lock);
  return kind == E_SAME || kind == E_POOL;
}

/* ---- release ---------------------------------------------------------------*/
/* Under the runtime lock (the store contract): so the frames an emptied
 * zspage leaves go straight back to the pages. */
static void tier_release(upg__store_t *s, const upg__handle_t *handles, int n) {
  tier_t *t = (tier_t *)s;
  upg__handle_t lower[UPG__IOV_MAX];
  int k = 0;
  pthread_mutex_lock(&t->lock);
  for (int i = 0; i < n; i++) {
    entry_t *x = &t->e[handles[i]];
    if (x->kind == E_LOWER) lower[k++] = x->u.lower;
    if (x->kind == E_POOL && x->writing) {
      x->released = 1; /* the write-back frees it */
      continue;
    }
    if (x->kind == E_POOL) age_remove(t, handles[i]), object_free(t, handles[i]);
    entry_free(t, handles[i]);
  }
  give_back_spare(t);
  publish_pool(t);
  pthread_mutex_unlock(&t->lock);
  if (k > 0) t->lower->methods->release(t->lower, lower, k);
}

/* ---- write-back ------------------------------------------------------------*/
/* Under both locks: takes up to `max` of the oldest objects for a write,
 * and frames for their pages. Returns how many. */
static int take_oldest(tier_t *t, uint32_t *who, int max) {
  size_t have = spare(t);
  if (have < (size_t)max) ask(t, (size_t)max - have), have = spare(t);
  int n = 0;
  while (n < max && (size_t)n < have && t->oldest != NONE) {
    uint32_t h = t->oldest;
    age_remove(t, h);
    t->e[h].writing = 1;
    who[n++] = h;
  }
  t->buffered = (size_t)n; /* the buffers hold them now */
  return n;
}

/* Under the tier's lock, after the write: objects written become their
 * lower copies; those whose write failed stay, the newest now, so that the
 * next write tries others first. Lower copies of objects released meanwhile
 * are returned in *stale. */
static int settle_written(tier_t *t, const uint32_t *who, const upg__handle_t *lower, int n,
                          upg__handle_t *stale, int *written) {
  int nstale = 0, failed = 0;
  for (int j = 0; j < n; j++) {
    entry_t *x = &t->e[who[j]];
    x->writing = 0;
    if (lower[j] == UPG__NO_HANDLE && !x->released) {
      age_append(t, who[j]);
      failed++;
      continue;
    }
    object_free(t, who[j]);
    if (x->released) {
      if (lower[j] != UPG__NO_HANDLE) stale[nstale++] = lower[j];
      entry_free(t, who[j]);
      continue;
    }
    x->kind = E_LOWER;
    x->u.lower = lower[j];
  }
  t->buffered = 0; /* the buffers' frames are spare again */
  UPG__COUNT(tier_writebacks, (uint64_t)(n - failed));
  UPG__COUNT(tier_writeback_errors, (uint64_t)failed);
  *written = n - failed;
  return nstale;
}

/* Without the runtime lock: decompresses the objects into the buffers (no
 * lock: a writing object is neither freed nor moved) and puts them all to
 * the lower store in one call. */
static void write_objects(tier_t *t, const uint32_t *who, int n, upg__handle_t *lower) {
  struct iovec iov[WRITEBACK_MAX];
  for (int j = 0; j < n; j++) {
    iov[j] = (struct iovec){t->buffers + (size_t)j * t->page, t->page};
    const entry_t *x = &t->e[who[j]];
    codec_slot_t *s = slot_take(t);
    open_object(t, s, upg__zpool_object(t->pool, x->u.at), x, iov[j].iov_base);
    slot_put(s);
  }
  int rc = t->lower->methods->put(t->lower, iov, n, lower);
  (void)rc; /* each page's fate is in its handle */
  (void)upg__os_advise(t->buffers, (size_t)n * t->page, MADV_DONTNEED);
}

/* The writer's step, under the runtime lock: one batch of the oldest
 * objects to the lower store while the pool is nearly full. */
static int writer_step(void *ctx) {
  tier_t *t = ctx;
  uint32_t who[WRITEBACK_MAX];
  upg__handle_t lower[WRITEBACK_MAX], stale[WRITEBACK_MAX];
  int written;
  pthread_mutex_lock(&t->lock);
  int n = pool_full(t) ? take_oldest(t, who, (int)t->writeback_max) : 0;
  pthread_mutex_unlock(&t->lock);
  if (n == 0) return 0;
  upg__unlock();
  write_objects(t, who, n, lower);
  pthread_mutex_lock(&t->lock);
  int nstale = settle_written(t, who, lower, n, stale, &written);
  pthread_mutex_unlock(&t->lock);
  upg__lock();
  pthread_mutex_lock(&t->lock);
  give_back_spare(t);
  publish_pool(t);
  int again = written > 0 && pool_full(t); /* a failing store: wait for the next put */
  pthread_mutex_unlock(&t->lock);
  if (nstale > 0) t->lower->methods->release(t->lower, stale, nstale);
  return again;
}

/* ---- the rest of the store -------------------------------------------------*/
static int tier_flush(upg__store_t *s) {
  tier_t *t = (tier_t *)s;
  return t->lower->methods->flush(t->lower);
}

static void tier_give_back(upg__store_t *s) {
  tier_t *t = (tier_t *)s;
  if (t->lower->methods->give_back != NULL) t->lower->methods->give_back(t->lower);
}

/* Before the runtime's lock is taken for good at shutdown: the writer's
 * step takes it. */
static void tier_stop(upg__store_t *s) {
  tier_t *t = (tier_t *)s;
  if (upg__os_getpid() == t->pid) upg__worker_stop(&t->writer);
  else t->writer = (upg__worker_t){0}; /* a child of fork(): the thread stayed behind */
}

static void tier_free(tier_t *t) {
  if (t->pool != NULL) upg__zpool_destroy(t->pool);
  upg__os_free(t->e, (size_t)MAX_HANDLES * sizeof(entry_t));
  upg__os_free(t->ctx_mem, t->ctx_bytes);
  upg__os_free(t->buffers, t->buffer_bytes);
  pthread_mutex_destroy(&t->lock);
  upg__os_free(t, sizeof *t);
}

/* The frames still lent need no giving back: the frame table goes with the
 * runtime (shutdown destroys it first). */
static void tier_close(upg__store_t *s) {
  tier_t *t = (tier_t *)s;
  tier_stop(s);
  t->lower->methods->close(t->lower);
  tier_free(t);
}

static const upg__store_methods_t tier_methods = {
    .version = UPG__STORE_VERSION,
    .caps = UPG__STORE_SIGNAL_SAFE,
    .put = tier_put,
    .get = tier_get,
    .release = tier_release,
    .flush = tier_flush,
    .close = tier_close,
    .give_back = tier_give_back,
    .read_begin = tier_read_begin,
    .read_done = tier_read_done,
    .read_end = tier_read_end,
    .in_memory = tier_in_memory,
    .stop = tier_stop,
};

static int make_contexts(tier_t *t) {
  size_t one = (t->codec->ctx_size(t->page) + 63) & ~(size_t)63;
  size_t each = one + t->page;
  t->ctx_bytes = NCTX * each;
  t->ctx_mem = upg__os_alloc(t->ctx_bytes);
  if (t->ctx_mem == NULL) return -ENOMEM;
  for (int i = 0; i < NCTX; i++) {
    unsigned char *mem = (unsigned char *)t->ctx_mem + (size_t)i * each;
    int rc = t->codec->ctx_init(mem, one, &t->slot[i].ctx);
    if (rc != 0) return rc;
    t->slot[i].out = mem + one;
  }
  return 0;
}

/* The pool's share of the budget, less what the pages need at least: a
 * batch of the evictor's and the two pages of one instruction. */
#define PAGES_MIN 16

static void size_pool(tier_t *t, const upg__config_t *cfg) {
  size_t frames = cfg->budget / cfg->page_size;
  size_t cap = frames * cfg->compress_pool / 100;
  if (cap + PAGES_MIN > frames) cap = frames > PAGES_MIN ? frames - PAGES_MIN : 0;
  t->writeback_max = cap / 4 < WRITEBACK_MAX ? cap / 4 : WRITEBACK_MAX;
  t->cap = cap;
  t->object_cap = cap - t->writeback_max;
  t->share = bypassed_share(t);
  t->bypass = 1; /* the pool earns its admission */
  UPG__SET(tier_bypassing, 1);
  t->window = t->object_cap / 2 > WINDOW_MIN ? t->object_cap / 2 : WINDOW_MIN;
}

/* An adaptive mutex: its holders keep it for a copy or a list update,
 * shorter than a sleep and a wake-up, so a waiter first spins a little. */
static int init_lock(pthread_mutex_t *m) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
  int rc = pthread_mutex_init(m, &a);
  pthread_mutexattr_destroy(&a);
  return rc;
}

static int tier_start(tier_t *t, const upg__config_t *cfg) {
  int rc = init_lock(&t->lock);
  if (rc != 0) return -rc;
  size_pool(t, cfg);
  t->e = upg__os_alloc((size_t)MAX_HANDLES * sizeof(entry_t));
  t->buffer_bytes = (t->writeback_max > 0 ? t->writeback_max : 1) * t->page;
  t->buffers = upg__os_alloc(t->buffer_bytes);
  if (t->e == NULL || t->buffers == NULL) return -ENOMEM;
  if ((rc = make_contexts(t)) != 0) return rc;
  if ((rc = upg__zpool_create(t->page, t->threshold, t->object_cap, &t->pool)) != 0) return rc;
  return upg__worker_start(&t->writer, writer_step, t);
}

static int tier_open(const upg__config_t *cfg, upg__store_t *below, upg__store_t **out) {
  tier_t *t = upg__os_alloc(sizeof *t);
  if (t == NULL) {
    below->methods->close(below);
    return -ENOMEM;
  }
  *t = (tier_t){.base = {&tier_methods},
                .lower = below,
                .codec = cfg->codec,
                .page = cfg->page_size,
                .threshold = cfg->compress_threshold,
                .pid = upg__os_getpid()};
  int rc = tier_start(t, cfg);
  if (rc != 0) {
    below->methods->close(below);
    tier_free(t);
    return rc;
  }
  *out = &t->base;
  return 0;
}

const upg__store_class_t upg__store_compress = {"compress", UPG__STORE_ANY_LOWER, tier_open};
