/* internal.h: the runtime's shared internal types. One global runtime
 * (upg__rt) holds the frame table, the regions, the store and a part for
 * each file with state of its own; the counters are stats.c's
 * (upg__counters). Every change to page or frame state happens under the
 * runtime's lock. */
#ifndef UPAGER_INTERNAL_H
#define UPAGER_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/uio.h>

#include "advisor.h"
#include "os.h"
#include "policy.h"
#include "trace_format.h"
#include "upager.h"

/* ---- options.c ---------------------------------------------------------*/
typedef struct upg__config {
  size_t budget;
  size_t page_size;
  size_t max_maps;
  size_t readahead; /* most pages one fault loads */
  size_t heap_size;
  int stats;
  int direct_io;
  int uffd_thread; /* the uffd source takes faults in a handler thread */
  const upg__policy_ops_t *policy;
  const struct upg__store_class *store;
  char store_url[1024]; /* UPAGER_STORE when it names a server: redis://... */
  char store_auth_file[PATH_MAX];
  uint64_t store_timeout_ms; /* how long a store call retries across a failover */
  int encrypt;               /* seal the swap file's pages too */
  const struct upg__fault_source *source;
  const struct upg__codec *codec; /* the compressed tier's, NULL when off */
  size_t compress_pool;           /* percent of the budget */
  size_t compress_threshold;      /* bytes */
  char swap_dir[PATH_MAX];
  char trace_path[PATH_MAX];
} upg__config_t;

/* Resolves code, environment and defaults into `out`, validating each. */
int upg__options_resolve(const upg_options_t *in, upg__config_t *out);
/* Lists every UPAGER_* variable with its default and meaning. */
void upg__options_describe(FILE *out);
/* The same as docs/options.md, a markdown table with the details. */
void upg__options_markdown(FILE *out);

/* ---- error.c -----------------------------------------------------------*/
/* Records the message for upg_last_error() and prints it to stderr. */
int upg__fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "upager: fatal: <msg>" with write(2) and aborts: for the fault
 * path, where returning would hand the program a wrong page. */
_Noreturn void upg__fatal(const char *msg, int err);

/* ---- stats.c: the counters, owned by stats.c --------------------------
 * Counting needs nothing else of the runtime: any file counts with
 * UPG__COUNT and UPG__SET, from any thread or the fault handler. runtime.c
 * starts the counters afresh at init and says when upg_stats answers. */
typedef struct upg__counters {
#define UPG__COUNTER_(name, text) _Atomic uint64_t name;
  UPG_STATS_FIELDS(UPG__COUNTER_)
#undef UPG__COUNTER_
  _Atomic uint64_t latency_hist[UPG_LATENCY_BUCKETS];
  /* What they count, for the report: set by upg__stats_reset. */
  size_t page_size;
  const char *policy;
  const char *source;  /* the fault source's name */
  _Atomic int serving; /* upg_stats answers: a runtime runs */
} upg__counters_t;
extern upg__counters_t upg__counters;

#define UPG__COUNT(field, n) \
  atomic_fetch_add_explicit(&upg__counters.field, (n), memory_order_relaxed)
#define UPG__SET(field, v) atomic_store_explicit(&upg__counters.field, (v), memory_order_relaxed)
#define UPG__GET(field) atomic_load_explicit(&upg__counters.field, memory_order_relaxed)
void upg__stats_fault_latency(uint64_t ns);
/* Files a major fault's latency under where its page came from: memory
 * (the compressed tier) or a store that does I/O. */
void upg__stats_source_latency(int in_memory, uint64_t ns);
void upg__stats_resident(long delta);
/* Every counter to zero, for a runtime of pages of page_size under the
 * named policy and fault source (the report's heading); upg_stats does not
 * answer yet. */
void upg__stats_reset(size_t page_size, const char *policy, const char *source);
/* Whether upg_stats answers (a runtime is running) or says UPG_ENOTINIT. */
void upg__stats_serve(int on);

/* ---- store: store.c (the list of stores and the wrappers) --------------
 * A backing store keeps the copies of evicted pages. Like SQLite's
 * sqlite3_file, it is an object whose first member points to a const table
 * of methods; the core calls it only through the upg__store_* wrappers,
 * which retry EINTR, count failures and NULL-check the optional methods.
 *
 * The contract a store keeps:
 * - A copy is named by a handle the store chose in put, never
 *   UPG__NO_HANDLE, valid until released. A page-table entry holds it.
 * - Buffers are whole pages of the unit the store was opened with,
 *   page-aligned (O_DIRECT needs both); a call moves at most UPG__IOV_MAX.
 * - Methods are called from several threads at once (the writer thread
 *   puts while faults get and release): a store guards its own state.
 *   release and give_back come under the runtime lock, the others without.
 * - Every method is async-signal-safe (UPG__STORE_SIGNAL_SAFE): faults call
 *   them from the SIGSEGV handler, with every signal blocked.
 * - A store that wraps a lower one (its class names the lower's class) is
 *   handed it open, owns it from then, closes it in its own close, and
 *   calls it through its methods, not the wrappers: counting and retries
 *   are the core's, once. */
typedef struct upg__store upg__store_t;
/* Most pages one store call moves: the largest batch. */
#define UPG__IOV_MAX 256
/* A handle fits the page-table entry's 32 bits; 0 means no copy. */
typedef uint32_t upg__handle_t;
#define UPG__NO_HANDLE 0u

#define UPG__STORE_VERSION 1      /* the table's layout below */
#define UPG__STORE_SIGNAL_SAFE 1u /* may serve a fault: upg_init refuses others */

typedef struct upg__store_methods {
  int version;   /* UPG__STORE_VERSION */
  unsigned caps; /* UPG__STORE_* */
  /* Stores the n pages of iov, choosing a handle for each: handles[i] gets
   * page i's, or UPG__NO_HANDLE if it was not stored (then nothing of it is
   * held). 0 when all were stored, else the last error. */
  int (*put)(upg__store_t *s, const struct iovec *iov, int n, upg__handle_t *handles);
  /* Reads the copies of n handles into iov, one page each: all, or an error. */
  int (*get)(upg__store_t *s, const upg__handle_t *handles, const struct iovec *iov, int n);
  /* The copies are no longer needed; their space is free for the next put. */
  void (*release)(upg__store_t *s, const upg__handle_t *handles, int n);
  /* Every put so far is as durable as the store makes it (at close). */
  int (*flush)(upg__store_t *s);
  void (*close)(upg__store_t *s);
  /* Optional, all three or none: a get that goes on while the caller works.
   * read_begin starts it and returns at once, or answers an error when it
   * cannot now (another in flight: one at a time), and the caller uses get;
   * read_done says whether it has ended; read_end waits for it and returns
   * its result. iov stays valid until read_end. */
  int (*read_begin)(upg__store_t *s, const upg__handle_t *handles, const struct iovec *iov, int n);
  int (*read_done)(upg__store_t *s);
  int (*read_end)(upg__store_t *s);
  /* Optional: gives the space of copies released since the last call back
   * to the system where it is worth it. Under the runtime lock. */
  void (*give_back)(upg__store_t *s);
  /* Optional: whether the copy is in memory, so that a get costs no I/O
   * (the compressed tier); NULL means never. Under the runtime lock. */
  int (*in_memory)(upg__store_t *s, upg__handle_t handle);
  /* Optional: stops the store's own threads, which may take the runtime
   * lock; shutdown calls it before it takes that lock to close the store.
   * The store still serves calls after it, without its threads. */
  void (*stop)(upg__store_t *s);
} upg__store_methods_t;
struct upg__store {
  const upg__store_methods_t *methods;
};

typedef struct upg__store_class {
  const char *name;
  /* The class of the store it wraps, or NULL; UPG__STORE_ANY_LOWER for a
   * tier, which wraps whatever store UPAGER_STORE opens. */
  const char *lower;
  /* Opens a store of pages of cfg->page_size bytes on `lower` (NULL
   * unless the class names one; the store owns it even when open fails). */
  int (*open)(const upg__config_t *cfg, upg__store_t *lower, upg__store_t **out);
} upg__store_class_t;

#define UPG__STORE_ANY_LOWER "*"

/* The class named `name` in the list of stores, or NULL. */
const upg__store_class_t *upg__store_find(const char *name);
/* The names of the list, for messages: "file, faulty". */
const char *upg__store_names(void);
/* Opens cfg->store with the stores below it, lowest first, and the
 * compressed tier over them when cfg->codec says. */
int upg__store_open(const upg__config_t *cfg, upg__store_t **out);
int upg__store_in_memory(upg__store_t *s, upg__handle_t handle);
/* Stops the store's threads, before shutdown takes the lock; NULL is ignored. */
void upg__store_stop(upg__store_t *s);
/* Flushes and closes; NULL is ignored. */
void upg__store_close(upg__store_t *s);
int upg__store_put(upg__store_t *s, const struct iovec *iov, int n, upg__handle_t *handles);
int upg__store_get(upg__store_t *s, const upg__handle_t *handles, const struct iovec *iov, int n);
void upg__store_release(upg__store_t *s, const upg__handle_t *handles, int n);
void upg__store_give_back(upg__store_t *s);
/* The background get, where the store has one: begin answers an error when
 * it cannot start it now (and nothing was started). */
int upg__store_read_begin(upg__store_t *s, const upg__handle_t *handles, const struct iovec *iov,
                          int n);
int upg__store_read_done(upg__store_t *s);
int upg__store_read_end(upg__store_t *s);

/* Why the last store open failed, for init's message (a store's open
 * writes it; runtime.c reads it). Never a password. */
extern char upg__store_why[512];
void upg__store_explain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- seal.c: the process's key and the AEAD of pages that leave it ------
 * Pure computation after upg__seal_init: safe in the fault handler. */
#define UPG__SEAL_TAG 16
int upg__seal_init(void);
const char *upg__seal_cipher(void);
/* A number never handed out before in this process: a seal's version. */
uint64_t upg__seal_next_version(void);
/* Seals len bytes of `in` into `out` (may be the same), bound to id and
 * version; the tag goes apart. */
void upg__seal(const void *in, void *out, size_t len, uint64_t id, uint64_t version,
               unsigned char tag[UPG__SEAL_TAG]);
/* Opens in place: 0, or UPG_ESEALED when anything differs. */
int upg__seal_open(void *buf, size_t len, uint64_t id, uint64_t version,
                   const unsigned char tag[UPG__SEAL_TAG]);

/* ---- store_sealed.c: the sealing layer over a store ---------------------*/
/* Opens the layer on `below`, which it owns from then (closed on failure). */
int upg__sealed_open(const upg__config_t *cfg, upg__store_t *below, upg__store_t **out);
int upg__store_is_sealed(const upg__store_t *s);

/* ---- redis_slot.c: Redis Cluster's key slots --------------------------*/
#define UPG__REDIS_SLOTS 16384
/* The slot of a key: CRC16 (XMODEM) of its hash tag, the text between the
 * first '{' and the next '}' when not empty, else of the whole key. */
unsigned upg__redis_slot(const char *key, size_t len);

/* ---- resp.c: the Redis protocol over a raw socket ------------------------
 * Signal-safe: system calls through os.c, buffers inside the connection
 * (from upg__os_alloc). One thread uses a connection at a time. */
#define UPG__RESP_IOV 1100
typedef struct upg__resp {
  int fd; /* -1 (or 0, as allocated): not connected */
  int timeout_ms;
  size_t start, end; /* unread input: in[start, end) */
  char in[64 << 10];
  size_t used, seg; /* text used; where the segment not yet in out[] begins */
  int nout;
  char text[64 << 10];
  struct iovec out[UPG__RESP_IOV];
} upg__resp_t;
typedef struct upg__resp_reply {
  char type;        /* '+', '-', ':', '$' or '*' */
  const char *text; /* '+' and '-': the line, valid until the next read */
  size_t len;
  int64_t number; /* ':', and the length of '$' (-1: nil) and '*' */
} upg__resp_reply_t;
int upg__resp_connect(upg__resp_t *c, uint32_t ip, uint16_t port, int timeout_ms);
void upg__resp_close(upg__resp_t *c);
/* A command: its argument count, then each argument; upg__resp_send sends
 * every command queued. -ENOBUFS when the queue is full. */
int upg__resp_command(upg__resp_t *c, int nargs);
int upg__resp_arg(upg__resp_t *c, const void *p, size_t len);
int upg__resp_arg_text(upg__resp_t *c, const char *text);
int upg__resp_arg_number(upg__resp_t *c, uint64_t v);
/* Whether another command with this much small text fits the queue. */
int upg__resp_room(const upg__resp_t *c, size_t text);
int upg__resp_send(upg__resp_t *c);
/* The next reply's first line; a '$' reply's data follows, to be read with
 * upg__resp_read_bulk (dst NULL skips it), an array's elements too. */
int upg__resp_read(upg__resp_t *c, upg__resp_reply_t *r);
int upg__resp_read_bulk(upg__resp_t *c, void *dst, size_t len);
/* Skips the rest of a reply whose first line was read. */
int upg__resp_skip(upg__resp_t *c, const upg__resp_reply_t *r);
/* A '$' reply's data as a string ("" for nil, or too long, skipped). */
int upg__resp_read_text(upg__resp_t *c, const upg__resp_reply_t *r, char *dst, size_t size);
/* ---- codec.c: the compressed tier's compressors, chosen by UPAGER_COMPRESS
 * Each works in contexts made once, at open, never paged: compress and
 * decompress run in the fault handler and the writer thread at once, and
 * may not allocate. */
typedef struct upg__codec_ctx upg__codec_ctx_t;
typedef struct upg__codec {
  const char *name;
  /* Bytes one context needs for pages of `page` bytes. */
  size_t (*ctx_size)(size_t page);
  /* Makes a context in `mem` of ctx_size bytes; 0 or a negative errno. */
  int (*ctx_init)(void *mem, size_t bytes, upg__codec_ctx_t **out);
  /* Compresses n bytes into at most `cap`; the size, or 0 when they do not
   * fit, found out early (the codec stops once past cap). */
  size_t (*compress)(upg__codec_ctx_t *c, const void *src, size_t n, void *dst, size_t cap);
  /* Decompresses exactly `page` bytes; 0, or -EBADMSG for anything else. */
  int (*decompress)(upg__codec_ctx_t *c, const void *src, size_t n, void *dst, size_t page);
} upg__codec_t;
const upg__codec_t *upg__codec_find(const char *name);
const char *upg__codec_names(void);

/* ---- zpool.c: the tier's pool, compressed objects in size classes -------*/
typedef struct upg__zpool upg__zpool_t;
/* Where an object lies: its zspage (the pool page it starts at) and slot. */
typedef struct upg__zloc {
  uint32_t zspage;
  uint16_t slot;
  uint16_t cls;
} upg__zloc_t;
/* A pool of at most max_pages pages of `page` bytes, objects of up to
 * `largest` bytes. The pool itself never takes memory: grow hands it the
 * pages it may use. */
int upg__zpool_create(size_t page, size_t largest, size_t max_pages, upg__zpool_t **out);
void upg__zpool_destroy(upg__zpool_t *p);
/* Pages a new zspage for an object of `bytes` needs: 0 when one in use has
 * room for it. */
size_t upg__zpool_pages_needed(const upg__zpool_t *p, size_t bytes);
/* Places `bytes` of src; -ENOSPC when it needs pages it was not given
 * (zpool_pages_needed) or the pool's address space is full. `spare`: pages
 * the caller lends the pool for it, of which it takes what it uses. */
int upg__zpool_store(upg__zpool_t *p, const void *src, size_t bytes, size_t *spare,
                     upg__zloc_t *at);
void *upg__zpool_object(const upg__zpool_t *p, upg__zloc_t at);
/* Frees an object; returns the pages its zspage gave back, when it was the
 * last object there. */
size_t upg__zpool_free(upg__zpool_t *p, upg__zloc_t at);
/* Pages the pool holds, and the bytes of its objects (their class sizes). */
size_t upg__zpool_pages(const upg__zpool_t *p);

/* ---- store_compress.c: the compressed tier -----------------------------*/
/* Test hooks: corrupt_gets flips a byte of each object a get reads from the
 * pool, as a bad memory or a stray write would. */
typedef struct upg__tier_plan {
  _Atomic int corrupt_gets;
} upg__tier_plan_t;
extern upg__tier_plan_t upg__tier_faults;

/* ---- slots.c: the file store's slots, page-sized, in runs --------------*/
typedef struct upg__slots {
  uint64_t *used;                    /* bitmap: bit s set while slot s holds (or awaits) a page */
  uint32_t high;                     /* highest slot handed out: the file's extent */
  uint32_t cursor;                   /* next-fit: where the search for free slots resumes */
  uint32_t released_lo, released_hi; /* slots released since the last give-back */
  int uncounted; /* a layer's handles over a store's own: not in the swap counters */
} upg__slots_t;

/* Slots count from 1: slot s is handle s, and 0 is no slot. */
int upg__slots_init(upg__slots_t *sl);
void upg__slots_fini(upg__slots_t *sl);
/* Takes up to `want` consecutive slots, at least one; returns how many, or
 * a negative errno. */
long upg__slots_alloc_run(upg__slots_t *sl, uint32_t want, uint32_t *first);
/* Frees a slot; its space goes back at the next upg__slots_give_back. */
void upg__slots_release(upg__slots_t *sl, uint32_t slot);
/* Frees a slot that was never written, keeping its space. */
void upg__slots_unalloc(upg__slots_t *sl, uint32_t slot);
/* Calls discard on each run of free slots, among those released since the
 * last call, long enough (min_slots) to be worth a hole. */
void upg__slots_give_back(upg__slots_t *sl, uint32_t min_slots,
                          void (*discard)(void *ctx, uint32_t first, uint32_t n), void *ctx);

/* ---- store_faulty.c: the file store with failures, for tests -----------
 * UPAGER_STORE=faulty: every put, get and give-back passes through here,
 * and fails as these say (set them before init; they are read at each
 * call). */
typedef struct upg__faulty_plan {
  _Atomic int fail_puts;    /* n: every nth put answers -ENOSPC, 1 every one */
  _Atomic int fail_gets;    /* every get answers -EIO */
  _Atomic int eintr_every;  /* n: every nth put and get answers -EINTR first */
  _Atomic int corrupt_gets; /* every get flips the first byte of each page */
  _Atomic int give_backs;   /* out: give-backs asked of the store */
} upg__faulty_plan_t;
extern upg__faulty_plan_t upg__faulty;

/* ---- pagetable.c: one entry a page -------------------------------------
 * `word` holds the state, the flags and the pin count, and is also the futex
 * that threads sleep on while a page is loading or evicting. */
/* A page-table entry without a copy in the store. */
#define UPG__NO_SLOT UPG__NO_HANDLE
enum {
  UPG__ABSENT = 0,   /* no frame: zeros, or the copy in `slot` */
  UPG__LOADING = 1,  /* frame assigned, being filled; program view closed */
  UPG__RESIDENT = 2, /* in frame `frame` */
  UPG__EVICTING = 3, /* being written out; program view closed */
  UPG__UNMAPPED = 4  /* released by upg_unmap: any access is invalid */
};
#define UPG__STATE_MASK 0x7u
#define UPG__DIRTY (1u << 3)
#define UPG__REFERENCED (1u << 4)
#define UPG__PROT_SHIFT 5 /* two bits: UPG_PROT_NONE, _READ, _RW */
#define UPG__PROT_MASK (3u << UPG__PROT_SHIFT)
#define UPG__WAITERS (1u << 7)
#define UPG__RA_MARK (1u << 8) /* closed on purpose: its touch starts a prefetch */
#define UPG__UNSEEN (1u << 9)  /* opened read-only by the prefetch thread, no fault since */
#define UPG__ANON (1u << 10)   /* pinned when its view was shared: still anonymous memory */
#define UPG__PIN_SHIFT 16
#define UPG__PIN_ONE (1u << UPG__PIN_SHIFT)

typedef struct upg__pte {
  _Atomic uint32_t word;
  upg__handle_t slot; /* the store's handle of its copy, or UPG__NO_SLOT */
  uint32_t frame;     /* valid while LOADING, RESIDENT or EVICTING */
} upg__pte_t;

static inline uint32_t upg__pte_state(uint32_t w) { return w & UPG__STATE_MASK; }
static inline uint32_t upg__pte_prot(uint32_t w) { return (w & UPG__PROT_MASK) >> UPG__PROT_SHIFT; }
static inline uint32_t upg__pte_pins(uint32_t w) { return w >> UPG__PIN_SHIFT; }

typedef struct upg__region upg__region_t;

/* Replaces the word (not its protection, see upg__pte_set_prot) and wakes
 * any thread that sleeps on it. */
void upg__pte_store(upg__pte_t *pte, uint32_t word);
/* Drops the lock and sleeps until the entry's word changes. */
void upg__pte_wait(upg__pte_t *pte);
/* Records in the entries of pages [first, first+n) the access the fault
 * source has just given the program (UPG_PROT_*). */
void upg__pte_set_prot(upg__region_t *r, size_t first, size_t n, uint32_t prot);
/* Whether every page of [first, first+n) has that access already. */
int upg__pte_run_has_prot(const upg__region_t *r, size_t first, size_t n, uint32_t prot);

/* ---- region.c ----------------------------------------------------------*/
struct upg__region {
  char *base; /* the program's view: its access follows page state */
  void *view; /* the fault source's own state for the region */
  size_t len;
  size_t npages;
  upg__pte_t *pte;
  uint64_t *touched;    /* a bit a chunk of pages any of which was ever given a
                        frame or unmapped: elsewhere every entry is zero */
  upg__advice_t advice; /* what the advisor learnt of it (advisor.h) */
  uint16_t id;
};

#define UPG__MAX_REGIONS 1024
/* Makes the region's tables and, through the fault source, its view. */
int upg__region_create(size_t len, upg__region_t **out);
void upg__region_destroy(upg__region_t *r);
/* In a child of fork(), whose views are gone: frees the tables alone. */
void upg__region_forget(upg__region_t *r);
/* The region containing addr, or NULL. Called under the lock. */
upg__region_t *upg__region_find(const void *addr);
/* Under the lock, before entries of pages [first, first+n) change. */
void upg__region_touch(upg__region_t *r, size_t first, size_t n);
/* The first page from `page` below `end` whose entry may have changed, or
 * end; *run_end then gets the end of the run of such pages. Walks that
 * follow it cost what the program touched, not what it reserved. */
size_t upg__region_touched(const upg__region_t *r, size_t page, size_t end, size_t *run_end);
/* Calls fn on each run of such pages in [first, end), until one returns
 * non-zero, which it returns. */
int upg__region_each_touched(upg__region_t *r, size_t first, size_t end,
                             int (*fn)(upg__region_t *r, size_t first, size_t end));

/* ---- frames.c: the frame budget ----------------------------------------*/
typedef struct upg__frame {
  upg__region_t *region; /* NULL when free */
  size_t page;
} upg__frame_t;

/* frames.c's part of the runtime: the eviction work in progress. Its
 * tables are frames.c's own types, made by upg__frames_create and freed by
 * upg__frames_destroy. */
typedef struct upg__frames_part {
  size_t in_flight;             /* victims of batches not yet settled */
  struct upg__flight *flight;   /* the batches in flight to the writer */
  struct upg__pending *pending; /* pages whose bit was cleared, to close */
} upg__frames_part_t;

int upg__frames_create(size_t nframes);
void upg__frames_destroy(void);
/* A free frame, evicting victims if none is: the lock may be dropped for
 * the write-back. Negative errno when nothing can be evicted. */
long upg__frames_obtain(void);
/* A free frame without evicting, or -1. */
long upg__frames_take_free(void);
/* Evicts up to `want` victims in one batch, dropping the lock for the I/O;
 * returns the frames freed. Victims that could not leave (a failed write)
 * stay resident and are counted in *failed, their error in *last_error. */
long upg__frames_evict(size_t want, size_t *failed, int *last_error);
/* The writer thread's step: writes one queued batch, dropping the lock;
 * 0 when none is queued. */
int upg__frames_write_queued(void);
/* Finishes the written batches (holes punched, frames freed), dropping the
 * lock; returns how many victims were settled. */
long upg__frames_reap(void);
/* On a faulting thread, which may drop the lock: finishes written batches
 * and, below the low watermark, starts new ones. Loads by the prefetch
 * thread take frames too, so every fault calls it, not only those that
 * need a frame. */
void upg__frames_refill(void);
/* One piece of the eviction work that refill does, for a fault to do while
 * its read is in flight: below the low watermark, a small batch started,
 * but only as the first step, when the read has most of its time ahead;
 * else the next run of a written batch punched. 0 when there is none. */
int upg__frames_step(int first);
/* With the writer stopped: writes and finishes every batch in flight. */
void upg__frames_drain(void);
void upg__frames_release(size_t frame);
/* Frees the frame of a resident page that is being discarded. */
void upg__frames_discard(upg__region_t *r, size_t page);
/* Wakes faults waiting for a frame (frames were freed or became evictable). */
void upg__frames_wake_waiters(void);
/* Lends n frames to the compressed tier's pool, which holds memory of
 * that size instead; no page gets them until given back. Free frames are
 * lent at once, the rest as frames free up (the evictor makes room): the
 * tier sees them in upg__rt.lent_count. Never evicts. Under the lock. */
void upg__frames_lend(size_t n);
/* Gives back n frames: owed ones first, then lent ones. Under the lock. */
void upg__frames_give_back(size_t n);

/* ---- worker.c: a background thread woken by the fault path --------------*/
typedef struct upg__worker {
  pthread_t thread;
  int running;
  int stop;
  int sleeping;           /* under the lock: a wake must kick the futex */
  _Atomic uint32_t kick;  /* the futex it sleeps on */
  int (*step)(void *ctx); /* under the lock: one piece of work, 0 if none */
  void *ctx;              /* what step works on */
} upg__worker_t;

/* worker.c's part of the runtime: the threads created, and those of them
 * past glibc's start (a futex). */
typedef struct upg__workers_part {
  uint32_t created;
  _Atomic uint32_t running;
} upg__workers_part_t;

/* Starts the thread; upg__workers_await waits until all started run. */
int upg__worker_start(upg__worker_t *w, int (*step)(void *ctx), void *ctx);
void upg__workers_await(void);
void upg__worker_stop(upg__worker_t *w);
/* Under the lock: makes a sleeping worker look for work again. */
void upg__worker_wake(upg__worker_t *w);

/* ---- prefetch.c: asynchronous readahead ---------------------------------*/
/* prefetch.c's part of the runtime: its thread and the requests queued
 * for it. */
#define UPG__PREFETCH_QUEUE 64
typedef struct upg__prefetch_request {
  upg__region_t *region;
  size_t page;
  size_t populate; /* 0: a readahead window at page; else pages from page */
  int downwards;
} upg__prefetch_request_t;
typedef struct upg__prefetch_part {
  upg__worker_t worker;
  upg__prefetch_request_t queue[UPG__PREFETCH_QUEUE];
  size_t head, count;
} upg__prefetch_part_t;

int upg__prefetch_start(void);
void upg__prefetch_stop(void);
/* In a child of fork(): the thread did not come along. */
void upg__prefetch_forget(void);
/* Under the lock: asks the thread to load the window at `page`; a page
 * past the region's end is ignored. */
void upg__prefetch_request(upg__region_t *r, size_t page);
/* Under the lock: asks the thread to make n fresh heap pages from `first`
 * real memory (upg__page_populate); 0 if it cannot take the request. */
int upg__prefetch_populate(upg__region_t *r, size_t first, size_t n, int downwards);
/* Under the lock, before the region goes: drops its queued requests. */
void upg__prefetch_forget_region(const upg__region_t *r);

/* ---- staging.c: the staging pages loads are read into -------------------*/
typedef struct upg__staging_part {
  char *pages;           /* UPG__IOV_MAX pages that keep their memory */
  _Atomic uint8_t *busy; /* per staging page: a load holds it */
  _Atomic uint32_t next; /* where the search for a free one starts */
  uint16_t *staged;      /* per frame: where its load is read */
  size_t nframes;
} upg__staging_part_t;

int upg__staging_create(size_t nframes);
void upg__staging_destroy(void);
/* Where frame's load is read: a staging page if one is free at the first
 * ask, else `unstaged`; the same answer until the frame is released. */
char *upg__staging_buffer(uint32_t frame, char *unstaged);
/* The staging page frame's load was read into, or NULL. */
char *upg__staging_page(uint32_t frame);
/* The frame's load was placed, or the frame is taken again (a load that
 * failed left it staged): its staging page is free. */
void upg__staging_release(uint32_t frame);

/* ---- evictor.c: the background writer of eviction batches ---------------*/
/* evictor.c's part of the runtime: its thread (none under a small budget)
 * and the watermarks, in free frames. */
typedef struct upg__evictor_part {
  upg__worker_t worker;
  size_t low, high;
} upg__evictor_part_t;

int upg__evictor_start(size_t nframes);
void upg__evictor_stop(void);
/* In a child of fork(): the thread did not come along. */
void upg__evictor_forget(void);
/* Under the lock: how many victims to start writing back, given the frames
 * free or soon free; 0 without the thread, above the low watermark, or
 * when pins leave too few frames to evict ahead of need. */
size_t upg__evictor_refill(size_t free_soon);
/* Under the lock: a batch was queued for the writer. */
void upg__evictor_kick(void);
/* Victims a fault evicts itself when no frame is free. */
size_t upg__evictor_sync_batch(void);

/* ---- pager.c: page transitions -----------------------------------------*/
typedef enum {
  UPG__FAULT_NOT_OURS = 0,
  UPG__FAULT_HANDLED = 1,
} upg__fault_result_t;

/* The fault source's entry: resolves an access to addr, of the kind given
 * (UPG__ACCESS_*) where the source knows it. */
upg__fault_result_t upg__fault(void *addr, int access);
/* Under the lock: brings the page into a frame (RESIDENT on return);
 * *loaded tells how: -1 already resident, else UPG_TRACE_ZERO or _MAJOR. */
int upg__page_make_resident(upg__region_t *r, size_t page, int *loaded);
/* Under the lock: drops the page's frame and slot; it reads as zeros.
 * UPG_EBUSY for a pinned page unless UPG__DISCARD_PINNED, which drops pins.
 * UPG__DISCARD_UNMAPPING: the caller unmaps the page's memory with its
 * range, so the page is neither closed nor punched one by one. */
#define UPG__DISCARD_PINNED 1
#define UPG__DISCARD_UNMAPPING 2
int upg__page_discard(upg__region_t *r, size_t page, int flags);
/* Under the lock: discards pages [first, end), each run of resident ones
 * with one close and one hole; UPG_EBUSY at a pinned page. */
int upg__page_discard_range(upg__region_t *r, size_t first, size_t end);
/* Under the lock: the store's copies of the dirty pages in [first,
 * first+n) are stale and go back, without I/O. */
void upg__page_drop_stale_copies(upg__region_t *r, size_t first, size_t n);
/* Under the lock: opens the program's view as an access needs it: a clean
 * page read-only (so a write faults and marks it dirty), a dirty one
 * read-write; sets the reference bit. */
int upg__page_open(upg__region_t *r, size_t page);
/* Under the lock, from the prefetch thread: loads the window at `page` if
 * it is still absent, with free frames only. */
void upg__page_prefetch(upg__region_t *r, size_t page);
/* Under the lock, which it drops meanwhile: maps n open pages of a heap
 * region from `first` writable, in chunks taken from the top down when
 * `downwards`; stops at the first page closed meanwhile. */
void upg__page_populate(const upg__region_t *r, size_t first, size_t n, int downwards);

/* ---- trace.c: the upt fault trace (UPAGER_TRACE) -----------------------*/
/* trace.c's part of the runtime: the open trace, if any (buffers[0] set),
 * and its two buffers. */
typedef struct upg__trace_part {
  int fd;
  uint64_t start_ns;
  upg_trace_record_t *buffers[2];
  int filling;         /* under the lock: the buffer records go to */
  size_t buffered;     /* under the lock: records in it */
  _Atomic int full;    /* the buffer waiting for its write, plus one; 0: none */
  _Atomic int writing; /* a thread is writing the full one */
} upg__trace_part_t;

int upg__trace_open(const char *path);
/* Appends one record; under the lock. `r` NULL for an invalid access, with
 * `page` then the address divided by the page size. */
void upg__trace_fault(const upg__region_t *r, size_t page, int kind);
/* Without the lock, after a fault: writes a full buffer, if there is one
 * and no other thread is writing it. */
void upg__trace_flush(void);
void upg__trace_close(void);
/* In a child of fork(): drops the parent's trace without writing to it. */
void upg__trace_forget(void);

/* ---- thrash.c: the thrashing detector ---------------------------------*/
/* thrash.c's part of the runtime: the load stamps of up to
 * UPG__THRASH_TABLES regions, each freed with its region, and the window
 * of refaults being judged. */
#define UPG__THRASH_TABLES 8
#define UPG__THRASH_BUCKETS 32 /* quarter budgets, 0 .. 8 budgets */
typedef struct upg__stamp_table {
  const upg__region_t *region;
  size_t npages;
  uint32_t *stamp; /* lazily backed: untouched pages cost nothing */
} upg__stamp_table_t;
typedef struct upg__thrash_part {
  upg__stamp_table_t tables[UPG__THRASH_TABLES];
  uint32_t loads;
  uint64_t window_start_ns, last_warning_ns;
  uint64_t window_majors, distance_hist[UPG__THRASH_BUCKETS + 1];
} upg__thrash_part_t;

/* Under the lock, after pages [first, first+n) were loaded (those with a
 * swap slot came back from swap). */
void upg__thrash_loaded(const upg__region_t *r, size_t first, size_t n);
/* Under the lock, before the region goes: frees its load stamps. */
void upg__thrash_forget_region(const upg__region_t *r);
/* At init: no window, no warning given yet. */
void upg__thrash_reset(void);

/* ---- fault sources: fault_source.c (the list) --------------------------
 * A fault source turns the program's accesses to paged memory into calls
 * of upg__fault and keeps the program's view of each region: which pages
 * the program may read or write, and their memory. UPAGER_FAULT names one
 * of the list. The core calls it through upg__rt.source only; every view
 * operation comes under the runtime lock unless it says otherwise.
 *
 * The contract a source keeps:
 * - A page the program may not access faults into upg__fault, from the
 *   faulting thread, which waits until it returns; an access it cannot
 *   resolve (UPG__FAULT_NOT_OURS) goes to the program's own disposition.
 * - A region's view starts closed: every page faults, and reads as zeros.
 * - Closed pages keep their contents, which the runtime reaches through
 *   frame_iov without the program seeing a page half written.
 * - Only the calls below change what the program may access. */
#define UPG__FAULT_SOURCE_VERSION 1 /* the table's layout below */
/* Faults say whether the access was a read or a write. */
#define UPG__SOURCE_KNOWS_ACCESS 1u
/* A kernel access to a closed page fails (EFAULT) instead of faulting:
 * buffers handed to system calls are pinned first. */
#define UPG__SOURCE_KERNEL_NEEDS_PINS 2u
/* Each run of pages of one access is a kernel mapping, counted against
 * UPAGER_MAX_MAPS (the maps_* statistics). */
#define UPG__SOURCE_COUNTS_MAPS 4u
/* free gives back any number of runs in one call, with one TLB flush for
 * all: an evicted batch is freed whole, not a run at a time. */
#define UPG__SOURCE_FREES_AT_ONCE 8u
/* publish makes the fresh pages of a populating window memory itself: the
 * pager has nothing left to populate. */
#define UPG__SOURCE_FILLS_GROWTH 16u

/* Pages [first, first+n) of one region. */
typedef struct upg__page_run {
  upg__region_t *region;
  size_t first, n;
} upg__page_run_t;

/* The access of a fault. */
enum { UPG__ACCESS_UNKNOWN = 0, UPG__ACCESS_READ = 1, UPG__ACCESS_WRITE = 2 };

typedef struct upg__fault_source {
  int version; /* UPG__FAULT_SOURCE_VERSION */
  const char *name;
  unsigned caps;    /* UPG__SOURCE_* */
  uint8_t trace_id; /* names it in upt trace headers (docs/upt.md) */
  /* Starts and stops delivering faults; without the lock. */
  int (*install)(const upg__config_t *cfg);
  void (*uninstall)(void);
  /* A region's view: reserves r->len bytes at r->base, closed, and what
   * the source keeps beside it (r->view). Without the lock. */
  int (*view_create)(upg__region_t *r);
  /* Once the region is registered. */
  void (*view_added)(upg__region_t *r);
  /* Unmaps the view and frees what the source kept; without the lock for
   * a region never registered. */
  void (*view_destroy)(upg__region_t *r);
  /* In a child of fork(), whose views are gone: frees what the source kept. */
  void (*view_forget)(upg__region_t *r);
  /* Pages [first, first+n), discarded already, leave the view: any access
   * is then invalid, and their entries are UPG__UNMAPPED. */
  int (*view_unmap)(upg__region_t *r, size_t first, size_t n);
  /* Gives the program access `prot` (UPG_PROT_READ or _RW) to resident
   * pages [first, first+n), recording it in their entries. */
  int (*open)(upg__region_t *r, size_t first, size_t n, uint32_t prot);
  /* Takes the program's access to pages [first, first+n) away: its next
   * touch of one faults. */
  int (*close)(upg__region_t *r, size_t first, size_t n);
  /* Where the contents of pages [first, first+n) are while the program's
   * view of them is closed, a buffer a page: loads fill them there, unseen
   * by the program, and evictions read them there. With or without the
   * lock, for pages marked loading or evicting. */
  void (*frame_iov)(const upg__region_t *r, size_t first, size_t n, struct iovec *iov);
  /* Pages [first, first+n), just filled through frame_iov, become the
   * program's with `prot`; UPG_PROT_NONE leaves them filled but closed.
   * `populating`: the window is a heap's growth, whose fresh pages the
   * program will all write, made memory at once (UPG__SOURCE_FILLS_GROWTH)
   * or by the pager's populate next. */
  int (*publish)(upg__region_t *r, size_t first, size_t n, uint32_t prot, int populating);
  /* Gives back the memory of the closed pages of n runs, which then read
   * as zeros. With or without the lock (an evicting batch frees outside
   * it), for pages no other thread changes. */
  int (*free)(const upg__page_run_t *runs, int n);
  /* Optional: before the first eviction batch is chosen. */
  void (*evicting)(void);
  /* Optional: `frame` is taken, and a load may read into its memory next:
   * whatever the source left there must go first. */
  void (*reusing)(uint32_t frame);
  /* Optional: at a page's last unpin. */
  void (*unpinned)(upg__region_t *r, size_t page);
  /* Optional: the program's own action for a signal the source drives:
   * it gets the faults the runtime does not own, and the source's handler
   * stays. 0 (*old: the program's previous action), or -1 when the source
   * is not installed or does not drive signo. Without the lock. */
  int (*program_action)(int signo, const struct sigaction *act, struct sigaction *old);
} upg__fault_source_t;

/* The program's action for a signal a source drives, in two slots: a
 * change fills the one not in use and then switches `current`, so a
 * handler, which cannot take a lock, always reads a whole action. */
typedef struct upg__program_action {
  struct sigaction slot[2];
  _Atomic int current;
  pthread_mutex_t lock; /* changes, one at a time */
} upg__program_action_t;
#define UPG__PROGRAM_ACTION_INIT \
  { .lock = PTHREAD_MUTEX_INITIALIZER }
/* The action now in force; signal-safe. */
struct sigaction *upg__program_action_now(upg__program_action_t *p);
/* *old gets the action in force (if old), then act takes its place (if act). */
void upg__program_action_change(upg__program_action_t *p, const struct sigaction *act,
                                struct sigaction *old);

/* The source named `name` in the list, or NULL. */
const upg__fault_source_t *upg__fault_source_find(const char *name);
/* The names of the list, for messages: "sigsegv, uffd, auto". */
const char *upg__fault_source_names(void);
/* The table to install for the source an option named, once every option
 * is read: `auto` decided, the uffd source's delivery mode applied. */
const upg__fault_source_t *upg__fault_source_for(const upg__fault_source_t *s,
                                                 const upg__config_t *cfg);
/* Checks the table's version; installs it. */
int upg__fault_source_install(const upg__fault_source_t *s, const upg__config_t *cfg);

/* ---- view_mprotect.c: the view by memory protection ---------------------
 * The SIGSEGV source's view of a region (fault_sigsegv.c's table holds
 * these): a memfd mapped twice, the program's view protected page by page
 * and an alias the runtime fills and drains, each run of pages of one
 * protection a kernel mapping, counted and kept under UPAGER_MAX_MAPS. */
/* view_mprotect.c's part of the runtime: the count of kernel mappings,
 * whether the views moved onto their memfds, and where demotion goes on.
 * Set up at install (upg__mview_reset); the count goes back to zero as the
 * regions go, which outlive the source's uninstall at shutdown. */
typedef struct upg__mview_part {
  long maps_in_use;   /* under the lock: all regions' mappings */
  int views_shared;   /* the views map their memfds: the runtime has evicted */
  size_t demote_hand; /* the frame demotion looks at next */
} upg__mview_part_t;

/* At install: no mappings counted, no view shared yet. */
void upg__mview_reset(void);
int upg__mview_create(upg__region_t *r);
void upg__mview_added(upg__region_t *r);
void upg__mview_destroy(upg__region_t *r);
void upg__mview_forget(upg__region_t *r);
int upg__mview_unmap(upg__region_t *r, size_t first, size_t n);
int upg__mview_open(upg__region_t *r, size_t first, size_t n, uint32_t prot);
int upg__mview_close(upg__region_t *r, size_t first, size_t n);
int upg__mview_publish(upg__region_t *r, size_t first, size_t n, uint32_t prot, int populating);
void upg__mview_frame_iov(const upg__region_t *r, size_t first, size_t n, struct iovec *iov);
int upg__mview_free(const upg__page_run_t *runs, int n);
void upg__mview_evicting(void);
void upg__mview_unpinned(upg__region_t *r, size_t page);
/* Mappings that giving pages [first, first+n) `prot` would add (may be
 * negative); an unmapped page is a hole that merges with nothing. */
long upg__pte_maps_delta(const upg__region_t *r, size_t first, size_t n, uint32_t prot);

/* ---- the userfaultfd source: fault_uffd.c, view_uffd.c ------------------
 * fault_uffd.c opens the userfaultfd and takes its faults, as SIGBUS in
 * the faulting thread or as messages to a handler thread; view_uffd.c
 * keeps the views: each region's view and its closet (view_uffd.c says
 * how), both registered with the one userfaultfd, and the frame area where
 * loads are read. */
/* Ranges gathered for one call. */
typedef struct upg__iov_list {
  int n;
  struct iovec iov[UPG__IOV_MAX];
} upg__iov_list_t;

typedef struct upg__uffd {
  int fd;       /* the userfaultfd */
  int pidfd;    /* this process, for process_madvise; -1 without */
  int pagemap;  /* /proc/self/pagemap, to find the view's holes; -1 without */
  char *frames; /* the frame area: frame f's load is read at f pages in */
  size_t frames_len;
  char *zeros; /* never written: a run of zero pages to copy from */
  size_t zeros_len;
  uint8_t *slot_waits;       /* per frame: its page of the frame area awaits its give-back */
  upg__iov_list_t stale;     /* copies left behind, their memory to give back (view_uffd.c) */
  size_t copies_waiting;     /* their pages, in the closets and the frame area */
  _Atomic int batch_refused; /* the kernel refused process_madvise here (before 6.13) */
} upg__uffd_t;
extern upg__uffd_t upg__uffd;

/* Whether the uffd source can run here as cfg asks, without a word. */
int upg__fault_uffd_usable(const upg__config_t *cfg);
/* The frame area and the zero run, for a budget; and back. */
int upg__uview_setup(const upg__config_t *cfg);
void upg__uview_teardown(void);
/* A fault on a missing page the entries say is open: the program gave its
 * memory back itself (madvise), and it reads as zeros again. 1 when addr
 * was such a page, made so; takes the lock. */
int upg__uview_refill_hole(void *addr);
int upg__uview_create(upg__region_t *r);
void upg__uview_added(upg__region_t *r);
void upg__uview_destroy(upg__region_t *r);
void upg__uview_forget(upg__region_t *r);
int upg__uview_unmap(upg__region_t *r, size_t first, size_t n);
int upg__uview_open(upg__region_t *r, size_t first, size_t n, uint32_t prot);
int upg__uview_close(upg__region_t *r, size_t first, size_t n);
int upg__uview_publish(upg__region_t *r, size_t first, size_t n, uint32_t prot, int populating);
void upg__uview_frame_iov(const upg__region_t *r, size_t first, size_t n, struct iovec *iov);
int upg__uview_free(const upg__page_run_t *runs, int n);
void upg__uview_reusing(uint32_t frame);

/* ---- runtime.c ---------------------------------------------------------*/
typedef struct upg__runtime {
  pthread_mutex_t lock;
  _Atomic uint32_t lock_waiters;
  _Atomic int running;
  _Atomic int forking; /* between fork()'s prepare and its parent or child hook */
  pid_t pid;           /* the process the views belong to */
  upg__config_t cfg;
  size_t page_size;
  unsigned page_shift;

  upg__frame_t *frames;
  size_t nframes;
  uint32_t *free_frames;           /* a stack of the free frames below next_unused */
  size_t free_count;               /* free frames: those stacked, and all from next_unused */
  size_t next_unused;              /* frames from here up were never handed out */
  _Atomic uint32_t frames_event;   /* futex: bumped when frames free up */
  _Atomic uint32_t frames_waiters; /* faults sleeping on frames_event */
  size_t busy_frames;              /* LOADING or EVICTING */
  uint32_t *lent_frames;           /* a stack of the frames lent to the tier's pool */
  _Atomic size_t lent_count;       /* read by the tier without the lock: it only grows meanwhile */
  size_t lend_owed;                /* frames the tier asked for that were not free */
  size_t lend_cancelled;           /* owed frames a fault took back, for the tier to forget */
  size_t pinned_pages;
  const upg__policy_ops_t *policy;
  void *policy_state;
  const upg__fault_source_t *source;

  upg__region_t *regions[UPG__MAX_REGIONS];
  size_t nregions;
  uint16_t next_region_id;

  upg__store_t *store;

  /* The parts: each is its file's alone (see there), zero before init,
   * and left zero again by its stop or its forget in a child of fork. */
  upg__frames_part_t frames_part;
  upg__workers_part_t workers;
  upg__evictor_part_t evictor;
  upg__prefetch_part_t prefetch;
  upg__thrash_part_t thrash;
  upg__trace_part_t trace;
  upg__mview_part_t mview;
  upg__staging_part_t staging;
} upg__runtime_t;

extern upg__runtime_t upg__rt;

static inline size_t upg__region_page(const upg__region_t *r, const void *addr) {
  return (size_t)((const char *)addr - r->base) >> upg__rt.page_shift;
}
void upg__lock(void);
void upg__unlock(void);
/* For a thread that holds the lock through many system calls (the
 * evictor): lets threads waiting for it go first. */
void upg__lock_yield(void);
/* For API calls from ordinary code: blocks signals while the lock is held,
 * so a signal handler that touches paged memory cannot deadlock on it. */
void upg__api_lock(sigset_t *saved);
void upg__api_unlock(const sigset_t *saved);
/* Lazily starts the runtime from the environment. */
int upg__ensure_running(void);

#endif
