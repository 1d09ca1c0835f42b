/* upager.h: the whole public API of libupager, a user-space paging runtime.
 *
 * A region is reserved with upg_map(); its pages cost nothing until touched.
 * The runtime keeps at most `budget` bytes of all regions resident, paging
 * the rest to a private swap file, by memory protection alone: untouched and
 * evicted pages are PROT_NONE, a SIGSEGV handler maps them on demand, and a
 * replacement policy (Clock by default) chooses what to evict.
 *
 * Conventions (as in libuv): calls return 0 or a negative errno-style code
 * that upg_strerror() names; calls returning a pointer return NULL and set
 * errno to the positive code. */
#ifndef UPAGER_H
#define UPAGER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(UPG_BUILDING)
#define UPG_EXTERN __attribute__((visibility("default")))
#else
#define UPG_EXTERN
#endif

#define UPAGER_VERSION_MAJOR 0
#define UPAGER_VERSION_MINOR 1
#define UPAGER_VERSION_PATCH 0
#define UPAGER_VERSION_STRING "0.1.0"

/* ---- Errors ------------------------------------------------------------
 * One table: the enum, upg_strerror() and upg_err_name() all expand it.
 * Codes taken from errno keep errno's value (negated); the runtime's own
 * conditions use codes below -4000 so they never collide with errno. */
#define UPG_ERRNO_MAP(XX)                                                             \
  XX(EINVAL, -22, "invalid argument")                                                 \
  XX(ENOMEM, -12, "out of memory or address space")                                   \
  XX(EIO, -5, "input/output error")                                                   \
  XX(ENOSPC, -28, "no space left on device")                                          \
  XX(EBUSY, -16, "page is pinned or busy")                                            \
  XX(EEXIST, -17, "runtime already initialised")                                      \
  XX(EACCES, -13, "permission denied")                                                \
  XX(ENOENT, -2, "no such file or directory")                                         \
  XX(ENOTREGION, -4001, "address is not inside a paged region")                       \
  XX(EBUDGET, -4002, "budget is zero, unparsable or below one page")                  \
  XX(EPAGESIZE, -4003, "page size is not a power-of-two multiple of the system page") \
  XX(EPOLICY, -4004, "unknown replacement policy")                                    \
  XX(ESWAPDIR, -4005, "swap directory is missing or not writable")                    \
  XX(EOPTION, -4006, "unparsable option value")                                       \
  XX(EPINLIMIT, -4007, "pinning would exceed the frame budget")                       \
  XX(ENOTINIT, -4008, "runtime is not initialised")                                   \
  XX(EMAPLIMIT, -4009, "kernel mapping limit (vm.max_map_count) reached")             \
  XX(ESEALED, -4010, "a sealed page failed to open: altered, swapped or replayed")    \
  XX(ESTORE, -4011, "the backing store failed, refused, or lost a page's copy")       \
  XX(EUFFD, -4012, "userfaultfd refused or lacking (vm.unprivileged_userfaultfd, seccomp, kernel)")

typedef enum {
#define UPG_ERR_ENUM_(name, code, text) UPG_##name = (code),
  UPG_ERRNO_MAP(UPG_ERR_ENUM_)
#undef UPG_ERR_ENUM_
} upg_errno_t;

/* A static description of `err` (negative code); "unknown error" otherwise. */
UPG_EXTERN const char *upg_strerror(int err);
/* The code's symbolic name, such as "UPG_EBUDGET". */
UPG_EXTERN const char *upg_err_name(int err);
/* The message of the last failed upg_init or upg_map in this process, naming
 * the option or variable at fault ("" if none failed). */
UPG_EXTERN const char *upg_last_error(void);
/* A size as the UPAGER_* size variables take it: "4096", "64M", "2GiB" (a
 * number with an optional K, M, G or T, then B or iB). 0 with the bytes in
 * *out, or UPG_EINVAL. */
UPG_EXTERN int upg_parse_size(const char *text, size_t *out);

/* ---- Runtime -----------------------------------------------------------
 * Any field left 0 or NULL takes its UPAGER_* environment variable, else the
 * default. Fields set in code win over the environment. */
typedef struct upg_options {
  size_t budget;               /* UPAGER_BUDGET: resident bytes, all regions (64M) */
  size_t page_size;            /* UPAGER_PAGE_SIZE: paging unit (system page) */
  const char *swap_dir;        /* UPAGER_SWAP_DIR: where the swap file lives ($TMPDIR, else /tmp) */
  const char *policy;          /* UPAGER_POLICY: "clock" (default) or "fifo" */
  int stats;                   /* UPAGER_STATS: 1 prints the report to stderr at exit */
  size_t max_maps;             /* UPAGER_MAX_MAPS: kernel mappings the runtime may
                             create (half of vm.max_map_count) */
  size_t readahead;            /* UPAGER_READAHEAD: most bytes a sequential fault
                             loads (256K; a page or less turns it off) */
  const char *direct_io;       /* UPAGER_DIRECT_IO: "1" (default) opens the swap
                             file O_DIRECT where the filesystem allows, "0"
                             buffered */
  const char *trace;           /* UPAGER_TRACE: record every fault into this file
                             (the upt format, docs/upt.md) */
  size_t heap_size;            /* UPAGER_HEAP_SIZE: address space reserved for the
                             paged heap of upg_malloc and upager run (32G) */
  const char *store;           /* UPAGER_STORE: where evicted pages go: "file"
                             (default), the swap file, or
                             "redis://[user:password@]host:port[,...]" */
  const char *store_auth_file; /* UPAGER_STORE_AUTH_FILE: the Redis store's
                             credentials, "user:password" or a password */
  size_t store_timeout_ms;     /* UPAGER_STORE_TIMEOUT: milliseconds a store call
                             retries across a failover (5000) */
  int encrypt;                 /* UPAGER_ENCRYPT: 1 seals the swap file's pages
                             (a Redis store's always are) */
  const char *fault;           /* UPAGER_FAULT: where faults come from: "sigsegv"
                             (default), a SIGSEGV handler and mprotect;
                             "uffd", userfaultfd; "auto", uffd where it
                             can run, else sigsegv */
  const char *compress;        /* UPAGER_COMPRESS: the compressed tier in front of
                             the store: "lz4", "zstd" or "off" (default) */
  size_t compress_pool;        /* UPAGER_COMPRESS_POOL: most of the budget the
                             tier's pool may take, in percent (50) */
  size_t compress_threshold;   /* UPAGER_COMPRESS_THRESHOLD: most bytes a page
                             may compress to and stay in the pool (3/4 page) */
  const char *uffd_mode;       /* UPAGER_UFFD_MODE: how the uffd source takes a
                             fault: "sigbus" (default), in the faulting
                             thread, or "thread", in a handler thread */
} upg_options_t;

/* Starts the process's one runtime: reads the options, opens the swap file
 * and installs the fault handler. A region mapped first initialises the
 * runtime from the environment. UPG_EEXIST if already running. */
UPG_EXTERN int upg_init(const upg_options_t *opt);
/* Unmaps every region, closes the swap file and removes the handler. */
UPG_EXTERN void upg_shutdown(void);

/* ---- Regions -----------------------------------------------------------*/
/* Reserves `len` bytes (rounded up to the paging unit) of zero-filled paged
 * memory. Nothing is resident until touched. flags must be 0 for now. */
UPG_EXTERN void *upg_map(size_t len, int flags);
/* Releases [addr, addr+len) of a region, its frames and its swap slots. The
 * whole region, or a page-aligned part of it; later accesses to it are
 * invalid. */
UPG_EXTERN int upg_unmap(void *addr, size_t len);

enum {
  UPG_ADV_NORMAL = 0,
  UPG_ADV_WILLNEED = 1,   /* load the pages now (as far as the budget allows) */
  UPG_ADV_DONTNEED = 2,   /* discard: next access reads zeros, no write-back,
                            swap slots are freed */
  UPG_ADV_SEQUENTIAL = 3, /* the region is read in order: every fault loads
                             a full readahead window */
  UPG_ADV_RANDOM = 4      /* no order: every fault loads one page */
};
/* SEQUENTIAL, RANDOM and NORMAL (the runtime guesses from the faults) set
 * the access pattern of the whole region holding [addr, addr+len). */
UPG_EXTERN int upg_advise(void *addr, size_t len, int advice);

/* Makes the pages resident, writable and never evicted until unpinned, as a
 * buffer handed to the kernel needs. Pins nest. Pinned pages count against
 * the budget: a pin that would leave no frame for faults fails with
 * UPG_EPINLIMIT and pins nothing. */
UPG_EXTERN int upg_pin(const void *addr, size_t len);
UPG_EXTERN int upg_unpin(const void *addr, size_t len);

/* sigaction(SIGSEGV, act, old) for a program whose runtime runs: the
 * runtime's handler stays in place, and `act` becomes the disposition that
 * accesses outside paged memory are passed on to (with si_addr, without a
 * ucontext). A handler installed with sigaction() itself after upg_init
 * would replace the runtime's and take every paging fault for a crash.
 * UPG_ENOTINIT when the runtime is not running. Under `upager run` the
 * program's own sigaction() and signal() calls come here by themselves.
 * Under a fault source that takes no SIGSEGV (uffd) it is sigaction(). */
UPG_EXTERN int upg_sigaction(const struct sigaction *act, struct sigaction *old);

/* ---- Paged heap --------------------------------------------------------
 * malloc-style calls on one paged region that the runtime reserves at the
 * first call (UPAGER_HEAP_SIZE of address space), served by mimalloc. They
 * never change which allocator serves the program's own malloc. The heap
 * does not outlive upg_shutdown, which unmaps it with its blocks: for the
 * rest of the process upg_malloc, upg_calloc and upg_realloc return NULL
 * with errno ENOMEM (mimalloc cannot be given a second heap), and upg_free
 * ignores the old blocks. */
UPG_EXTERN void *upg_malloc(size_t size);
UPG_EXTERN void *upg_calloc(size_t count, size_t size);
UPG_EXTERN void *upg_realloc(void *p, size_t size);
UPG_EXTERN void upg_free(void *p);

/* ---- Introspection -----------------------------------------------------*/
/* Statistics, one list: X(field, description). The struct, the reset and the
 * printer all expand it. ABI rule: a new field goes at the end of this list
 * (so at the end of upg_stats_t), never in between, and no field is ever
 * removed or reordered; UPG_LATENCY_BUCKETS never changes. */
#define UPG_STATS_FIELDS(X)                                                               \
  X(fault_zero, "first touch, zero-filled page")                                          \
  X(fault_minor, "resident page re-mapped: reference bit set, no I/O")                    \
  X(fault_write, "write to a clean resident page: marked dirty, no I/O")                  \
  X(fault_major, "page read back from swap")                                              \
  X(fault_wait, "fault that waited for another thread's load or evict")                   \
  X(fault_invalid, "access outside every page passed to the program")                     \
  X(evict_clean, "evicted without I/O (clean or never written)")                          \
  X(evict_dirty, "evicted after writing to swap")                                         \
  X(readahead_pages, "pages loaded ahead of a sequential fault")                          \
  X(readahead_dirty, "pages opened writable at once: the run was written")                \
  X(fresh_populated, "fresh heap pages made memory in batches as the heap grew")          \
  X(load_dirty, "pages opened writable at load: the region writes what it loads")         \
  X(readahead_async, "pages loaded in the background ahead of the program")               \
  X(evict_batches, "eviction batches (each: one write a run of slots)")                   \
  X(swap_write_errors, "pages whose write failed; they stayed resident")                  \
  X(swap_reads, "store reads (one a run of consecutive slots)")                           \
  X(swap_writes, "store writes (one a run of consecutive slots)")                         \
  X(swap_bytes_written, "bytes written to the swap file")                                 \
  X(swap_bytes_read, "bytes read from the swap file")                                     \
  X(swap_slots_in_use, "swap slots holding a page")                                       \
  X(swap_slots_high, "swap file size in slots (high-water mark)")                         \
  X(swap_direct_io, "1: the swap file bypasses the page cache (O_DIRECT)")                \
  X(discards, "pages discarded by UPG_ADV_DONTNEED or unmap")                             \
  X(pages_resident, "pages resident now")                                                 \
  X(pages_resident_peak, "most pages resident at once")                                   \
  X(pages_pinned, "pages pinned now")                                                     \
  X(frames, "frame budget in pages")                                                      \
  X(maps_in_use, "kernel mappings (VMAs) of the program's views")                         \
  X(maps_peak, "most kernel mappings at once")                                            \
  X(maps_limit, "mapping limit the runtime keeps under")                                  \
  X(maps_demotions, "pages protected early to stay under the map limit")                  \
  X(handler_ns, "total time in the fault handler, nanoseconds")                           \
  X(thrash_windows, "windows of faults judged thrashing (lib/thrash.c)")                  \
  X(thrash_warnings, "thrashing warnings printed to stderr")                              \
  X(thrash_working_set, "median reuse distance of the last thrashing window, pages")      \
  X(trace_dropped, "trace records dropped while the trace's reader stalled")              \
  X(store_round_trips, "network store: pipelined rounds, one a node a call")              \
  X(store_bytes_sent, "network store: bytes sent to its servers")                         \
  X(store_bytes_received, "network store: bytes received from its servers")               \
  X(store_redirects, "network store: MOVED and ASK redirects followed")                   \
  X(store_retries, "network store: calls' rounds tried again")                            \
  X(store_failover_waits, "network store: calls that waited out a node's failure")        \
  X(store_seal_failures, "sealed pages that failed to open (altered, swapped, replayed)") \
  X(fault_access_known, "1: the fault source tells reads from writes")                    \
  X(tier_stored, "pages the compressed tier took in (pool or same-filled)")               \
  X(tier_same_filled, "of those, pages of one repeated word, kept as the word")           \
  X(tier_rejected, "pages compressing worse than the threshold, sent below")              \
  X(tier_overflow, "pages sent below because the pool had no room")                       \
  X(tier_pages, "pages in the pool now")                                                  \
  X(tier_payload_bytes, "compressed bytes in the pool now")                               \
  X(tier_pool_bytes, "memory the pool holds now (frames lent to it)")                     \
  X(tier_pool_peak, "most memory the pool held at once")                                  \
  X(tier_hits, "pages a load found in the tier (pool or same-filled)")                    \
  X(tier_misses, "pages a load read from the store below the tier")                       \
  X(tier_writebacks, "pages the pool wrote to the store below, coldest first")            \
  X(tier_writeback_errors, "pages whose write-back failed; they stayed in the pool")      \
  X(tier_fault_under_16us, "faults served from the tier: under 16 us")                    \
  X(tier_fault_under_32us, "faults served from the tier: 16-32 us")                       \
  X(tier_fault_under_64us, "faults served from the tier: 32-64 us")                       \
  X(tier_fault_under_128us, "faults served from the tier: 64-128 us")                     \
  X(tier_fault_under_256us, "faults served from the tier: 128-256 us")                    \
  X(tier_fault_over_256us, "faults served from the tier: 256 us or more")                 \
  X(disk_fault_under_16us, "faults that read the store below: under 16 us")               \
  X(disk_fault_under_32us, "faults that read the store below: 16-32 us")                  \
  X(disk_fault_under_64us, "faults that read the store below: 32-64 us")                  \
  X(disk_fault_under_128us, "faults that read the store below: 64-128 us")                \
  X(disk_fault_under_256us, "faults that read the store below: 128-256 us")               \
  X(disk_fault_over_256us, "faults that read the store below: 256 us or more")            \
  X(tier_bypassed, "pages sent below uncompressed while the pool did not pay")            \
  X(tier_bypassing, "1: the pool's admission is off, its hits too few to pay")

#define UPG_LATENCY_BUCKETS 32 /* bucket i: latency in [2^i, 2^(i+1)) ns */

/* The fixed fields come first and UPG_STATS_FIELDS last, so that the list
 * can grow at the end. `size` lets a program and a library built with
 * different versions of this header agree: the caller sets it (the
 * UPG_STATS_INIT initialiser does), the library fills no more than that and
 * sets it to the bytes it filled; fields past it are left as they were. */
typedef struct upg_stats {
  size_t size; /* in: sizeof(upg_stats_t) of the caller; out: bytes filled */
  uint64_t page_size;
  uint64_t latency_hist[UPG_LATENCY_BUCKETS];
#define UPG_STATS_FIELD_(name, text) uint64_t name;
  UPG_STATS_FIELDS(UPG_STATS_FIELD_)
#undef UPG_STATS_FIELD_
} upg_stats_t;
#define UPG_STATS_INIT \
  { .size = sizeof(upg_stats_t) }

/* Snapshot of the counters into *out, whose `size` the caller has set
 * (upg_stats_t s = UPG_STATS_INIT); UPG_EINVAL when it is smaller than the
 * fixed fields, UPG_ENOTINIT when the runtime is not running. */
UPG_EXTERN int upg_stats(upg_stats_t *out);
/* Prints the report, one line a field with its meaning, and the latency
 * histogram. Nothing if the runtime is not running. */
UPG_EXTERN void upg_stats_print(FILE *out);

/* The page-table entry of the page holding `addr`. */
enum { UPG_PROT_NONE = 0, UPG_PROT_READ = 1, UPG_PROT_RW = 2 };
typedef struct upg_page_info {
  int present;       /* resident in a frame */
  int modified;      /* dirty: differs from its swap copy, or has none */
  int referenced;    /* touched since the replacement hand last passed */
  int prot;          /* UPG_PROT_*: the program's current access */
  int pinned;        /* pin count */
  int busy;          /* being loaded or evicted right now */
  int64_t swap_slot; /* slot holding a copy, or -1 */
  size_t page_size;  /* paging unit */
  void *page;        /* start of the page */
} upg_page_info_t;
UPG_EXTERN int upg_page_info(const void *addr, upg_page_info_t *out);

UPG_EXTERN const char *upg_version(void);

#ifdef __cplusplus
}
#endif
#endif /* UPAGER_H */
