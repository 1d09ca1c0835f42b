/* redis_store.c: what paging to Redis costs, beside what Redis itself
 * costs on the same server in the same run.
 *
 * - Floor: a bare SIGSEGV handler that mprotects the page back, in a
 *   scattered order (as fault_latency's), and one plain GET of a 4 KiB
 *   value through hiredis against the first server of the URL, in rounds
 *   that alternate with the random faults' rounds. A major fault of a
 *   random page from the store is compared with their sum.
 * - Hand-off: a request passed to another thread and its answer passed
 *   back, each with a futex wake, as a dedicated I/O thread would cost a
 *   fault on top of the GET (why the store speaks RESP in the handler).
 * - Sequential: a region eight times the budget written in order, each
 *   page filled with heap-like records (bench_fill_records; its pages
 *   leave as puts), and read back in order (gets with readahead), each
 *   page's first record checked, in bytes/s, beside redis-benchmark's
 *   pipelined 4 KiB SET and GET. No compressor is on this path: a sealed
 *   page costs the same whatever it holds.
 * - Both fault sources, one after the other, each with a fresh runtime:
 *   SIGSEGV, then userfaultfd where it can run.
 * - Sealed floor: the same pages sealed and SET, then GET and opened, by
 *   a bare client with no paging at all (a thread a CPU, then two),
 *   pipelined over the URL's masters: what no pager that seals can beat.
 * - What bounds the sequential rate: the CPU time a page costs this
 *   process (every thread) and the servers of the URL and their replicas
 *   (INFO cpu), and the rate the machine's CPUs would reach at that cost
 *   if both ran flat out, beside redis-benchmark's.
 *
 *   redis_store URL [budget_pages]      e.g. redis://127.0.0.1:6379 1024
 *
 * Targets (issue 21): major fault <= 1.2x (GET + SIGSEGV floor);
 * sequential >= half of redis-benchmark's 4 KiB SET/GET pipelined. */
#define _GNU_SOURCE
#include <hiredis/hiredis.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"
#include "upager.h"

#define PAGE 4096u

static size_t scattered(size_t i, size_t pages) { return (i * 0x9E3779B1u) & (pages - 1); }

static void open_page(int sig, siginfo_t *info, void *ctx) {
  (void)sig, (void)ctx;
  void *page = (void *)((uintptr_t)info->si_addr & ~(uintptr_t)(PAGE - 1));
  if (mprotect(page, PAGE, PROT_READ | PROT_WRITE) != 0) abort();
}

static double floor_fault_us(size_t pages) {
  struct sigaction sa = {0}, old;
  sa.sa_sigaction = open_page;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSEGV, &sa, &old);
  volatile char *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) bench_die("mmap");
  if (mprotect((void *)p, pages * PAGE, PROT_NONE) != 0) bench_die("mprotect");
  double t0 = bench_now_us();
  for (size_t i = 0; i < pages; i++) (void)p[scattered(i, pages) * PAGE];
  double us = (bench_now_us() - t0) / (double)pages;
  munmap((void *)p, pages * PAGE);
  sigaction(SIGSEGV, &old, NULL);
  return us;
}

/* The first server of a redis:// URL's list. */
static const char *url_servers(const char *url) { return url + strlen("redis://"); }

/* The server `at` points to, into host and port; the next one, or NULL. */
static const char *url_next(const char *at, char host[64], int *port) {
  if (sscanf(at, "%63[^:]:%d", host, port) != 2) bench_die("a server of the URL");
  at = strchr(at, ',');
  return at != NULL ? at + 1 : NULL;
}

/* A hash tag whose slot the node owns: its keys all go there (a cluster
 * answers MOVED for any other, a single server takes any). */
static int owned_tag(redisContext *c) {
  for (int tag = 0; tag < 100000; tag++) {
    redisReply *r = redisCommand(c, "SET upg-bench:{%d}:probe x", tag);
    int mine = r != NULL && r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    if (mine) return tag;
  }
  bench_die("no hash tag the first node owns");
}

/* Plain GETs of 4 KiB values, on keys the node owns: of `values` keys,
 * each GET a scattered one, as the pager's are (with one value, the same
 * key each time, hot in the server's caches). */
typedef struct gets {
  redisContext *c;
  int tag;
  size_t values, done;
} gets_t;

static gets_t gets_open(const char *host, int port, size_t values) {
  gets_t g = {.c = redisConnect(host, port), .values = values};
  if (g.c == NULL || g.c->err) bench_die("redisConnect");
  static char value[PAGE];
  memset(value, 'v', sizeof value);
  g.tag = owned_tag(g.c);
  for (size_t k = 0; k < values; k++)
    freeReplyObject(redisCommand(g.c, "SET upg-bench:{%d}:%lu %b", g.tag, (unsigned long)k, value,
                                 (size_t)PAGE));
  return g;
}

/* The microseconds n more GETs take. */
static double gets_run(gets_t *g, int n) {
  double t0 = bench_now_us();
  for (int i = 0; i < n; i++, g->done++) {
    redisReply *r = redisCommand(g->c, "GET upg-bench:{%d}:%lu", g->tag,
                                 (unsigned long)scattered(g->done, g->values));
    if (r == NULL || r->type != REDIS_REPLY_STRING || r->len != PAGE) bench_die("GET of a value");
    freeReplyObject(r);
  }
  return bench_now_us() - t0;
}

static void gets_close(gets_t *g) {
  for (size_t k = 0; k < g->values; k++)
    freeReplyObject(redisCommand(g->c, "DEL upg-bench:{%d}:%lu", g->tag, (unsigned long)k));
  freeReplyObject(redisCommand(g->c, "DEL upg-bench:{%d}:probe", g->tag));
  redisFree(g->c);
}

/* One GET, averaged over n. */
static double get_us(const char *host, int port, size_t values, int n) {
  gets_t g = gets_open(host, port, values);
  double us = gets_run(&g, n) / n;
  gets_close(&g);
  return us;
}

/* ---- the sealed floor: any client that seals its pages ---------------------*/
/* Pipelined SETs, then GETs, of sealed 4 KiB pages through the URL's
 * masters, over the bare sockets of hiredis connections: each thread has a
 * connection to every master and sends windows of FLOOR_WINDOW pages, one
 * window in flight, the windows taking turns among the masters (keys with
 * a hash tag each master owns). A SET window is followed by WAIT 1 where
 * the store would wait (a cluster's masters have replicas). Every value is
 * sealed, or opened straight from the receive buffer, with the AEAD the
 * store uses. No fault, no reply parsing beyond the sizes known in
 * advance: no pager moves sealed pages through these servers faster, so
 * this bounds what the sequential target can reach.
 *
 * Placed, the floor also does the memory work any pager does and a client
 * does not: a SET's page is first written (records) into fresh anonymous
 * memory, as the program writes it, and given back (MADV_DONTNEED) once
 * stored; a GET's window is placed into a userfaultfd region with one
 * UFFDIO_COPY, read, and given back. */
#define FLOOR_WINDOW 64
#define FLOOR_ROUNDS 4
#define FLOOR_MASTERS 8
#define GET_REPLY (sizeof "$4096\r\n" - 1 + PAGE + 2)

typedef struct sealed_floor {
  int masters, tags[FLOOR_MASTERS], ports[FLOOR_MASTERS];
  char hosts[FLOOR_MASTERS][64];
  int wait;     /* SETs wait for a replica */
  int placing;  /* pages made and given back, as a pager's */
  char *made;   /* where SETs' pages are written, placed */
  char *placed; /* GETs' windows, a userfaultfd region */
  int uffd;
  int aes;
  crypto_aead_aes256gcm_state aes_state;
  unsigned char key[32];
  size_t pages;
  uint64_t *plain;          /* the pages' contents, records */
  unsigned char (*tag)[16]; /* each page's tag, from its last seal */
  uint64_t *version;        /* and the version sealed under */
  _Atomic uint64_t versions;
  int threads, setting;
} sealed_floor_t;

/* A seal's nonce (its version) and associated data (page and version),
 * as the store binds them. */
static void floor_identity(size_t k, uint64_t v, unsigned char nonce[24], unsigned char ad[16]) {
  uint64_t id = k;
  memset(nonce, 0, 24);
  memcpy(nonce, &v, 8), memcpy(ad, &id, 8), memcpy(ad + 8, &v, 8);
}

/* Page k, from `in`, sealed into `out`. */
static void floor_seal(sealed_floor_t *f, size_t k, const unsigned char *in, unsigned char *out) {
  unsigned char nonce[24], ad[16];
  uint64_t v = atomic_fetch_add(&f->versions, 1) + 1;
  floor_identity(k, v, nonce, ad);
  if (f->aes)
    crypto_aead_aes256gcm_encrypt_detached_afternm(out, f->tag[k], NULL, in, PAGE, ad, 16, NULL,
                                                   nonce, &f->aes_state);
  else
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(out, f->tag[k], NULL, in, PAGE, ad, 16,
                                                        NULL, nonce, f->key);
  f->version[k] = v;
}

static void floor_open(sealed_floor_t *f, size_t k, const unsigned char *in, unsigned char *out) {
  unsigned char nonce[24], ad[16];
  floor_identity(k, f->version[k], nonce, ad);
  int rc = f->aes
               ? crypto_aead_aes256gcm_decrypt_detached_afternm(out, NULL, in, PAGE, f->tag[k], ad,
                                                                16, nonce, &f->aes_state)
               : crypto_aead_xchacha20poly1305_ietf_decrypt_detached(out, NULL, in, PAGE, f->tag[k],
                                                                     ad, 16, nonce, f->key);
  if (rc != 0) bench_die("the sealed floor: a value that does not open");
}

static void give_back(char *p, size_t bytes) {
  if (madvise(p, bytes, MADV_DONTNEED) != 0) bench_die("the sealed floor: MADV_DONTNEED");
}

/* The program's write of page k, placed: into fresh memory. */
static const unsigned char *floor_page_made(sealed_floor_t *f, size_t k) {
  if (!f->placing) return (const unsigned char *)(f->plain + k * BENCH_PAGE_WORDS);
  uint64_t *page = (uint64_t *)(f->made + k * PAGE);
  bench_fill_records(page, k);
  return (const unsigned char *)page;
}

/* The window opened into `staged` from `first`: placed, read, given back. */
static void floor_place(sealed_floor_t *f, size_t first, unsigned char *staged) {
  char *at = f->placed + first * PAGE;
  if (f->placing) {
    struct uffdio_copy copy = {(uintptr_t)at, (uintptr_t)staged, FLOOR_WINDOW * PAGE,
                               UFFDIO_COPY_MODE_DONTWAKE, 0};
    if (ioctl(f->uffd, UFFDIO_COPY, &copy) != 0) bench_die("the sealed floor: UFFDIO_COPY");
  }
  const char *read_from = f->placing ? at : (const char *)staged;
  for (size_t i = 0; i < FLOOR_WINDOW; i++)
    if (memcmp(read_from + i * PAGE, f->plain + (first + i) * BENCH_PAGE_WORDS, 8) != 0)
      bench_die("the sealed floor: a page read back");
  if (f->placing) give_back(at, FLOOR_WINDOW * PAGE);
}

static void send_all(int fd, const char *p, size_t n) {
  for (ssize_t k; n > 0; p += k, n -= (size_t)k)
    if ((k = write(fd, p, n)) <= 0) bench_die("the sealed floor: write");
}

static void receive_all(int fd, char *p, size_t n) {
  for (ssize_t k; n > 0; p += k, n -= (size_t)k)
    if ((k = read(fd, p, n)) <= 0) bench_die("the sealed floor: read");
}

static size_t floor_text(char *at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsprintf(at, fmt, ap);
  va_end(ap);
  return (size_t)n;
}

/* One window of pages from `first`, to or from master m's connection. */
static void floor_window(sealed_floor_t *f, int fd, int m, size_t first, char *out, char *in,
                         unsigned char *staged) {
  size_t n = 0;
  for (size_t k = first; k < first + FLOOR_WINDOW; k++) {
    char key[48];
    int len = snprintf(key, sizeof key, "upg-floor:{%d}:%zu", f->tags[m], k);
    if (!f->setting) {
      n += floor_text(out + n, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len, key);
      continue;
    }
    n += floor_text(out + n, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%u\r\n", len, key, PAGE);
    floor_seal(f, k, floor_page_made(f, k), (unsigned char *)out + n);
    n += PAGE;
    n += floor_text(out + n, "\r\n");
  }
  if (f->setting && f->wait)
    n += floor_text(out + n, "*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$4\r\n2000\r\n");
  send_all(fd, out, n);
  if (f->setting) {
    size_t want = FLOOR_WINDOW * 5 + (f->wait ? 4 : 0); /* +OK\r\n each, then :1\r\n */
    receive_all(fd, in, want);
    for (size_t i = 0; i < FLOOR_WINDOW; i++)
      if (memcmp(in + i * 5, "+OK\r\n", 5) != 0) bench_die("the sealed floor: a SET refused");
    if (f->wait && memcmp(in + want - 4, ":1\r\n", 4) != 0)
      bench_die("the sealed floor: WAIT found no replica");
    if (f->placing) give_back(f->made + first * PAGE, FLOOR_WINDOW * PAGE);
    return;
  }
  receive_all(fd, in, FLOOR_WINDOW * GET_REPLY);
  for (size_t i = 0; i < FLOOR_WINDOW; i++) {
    const char *reply = in + i * GET_REPLY;
    if (memcmp(reply, "$4096\r\n", 7) != 0) bench_die("the sealed floor: a GET with no value");
    floor_open(f, first + i, (const unsigned char *)reply + 7, staged + i * PAGE);
  }
  floor_place(f, first, staged);
}

typedef struct floor_worker {
  sealed_floor_t *f;
  int index;
} floor_worker_t;

/* Windows index, index + threads, ...; each to the master whose turn it is. */
static void *floor_thread(void *arg) {
  const floor_worker_t *w = arg;
  sealed_floor_t *f = w->f;
  redisContext *c[FLOOR_MASTERS];
  for (int m = 0; m < f->masters; m++)
    if ((c[m] = redisConnect(f->hosts[m], f->ports[m])) == NULL || c[m]->err)
      bench_die("the sealed floor: redisConnect");
  char *out = malloc(FLOOR_WINDOW * (PAGE + 128)), *in = malloc(FLOOR_WINDOW * GET_REPLY);
  unsigned char *staged = aligned_alloc(PAGE, FLOOR_WINDOW * PAGE);
  if (out == NULL || in == NULL || staged == NULL) bench_die("malloc");
  size_t windows = f->pages / FLOOR_WINDOW;
  for (int round = 0; round < FLOOR_ROUNDS; round++)
    for (size_t win = (size_t)w->index; win < windows; win += (size_t)f->threads) {
      int m = (int)(win % (size_t)f->masters);
      floor_window(f, c[m]->fd, m, win * FLOOR_WINDOW, out, in, staged);
    }
  for (int m = 0; m < f->masters; m++) redisFree(c[m]);
  free(out), free(in), free(staged);
  return NULL;
}

/* Bytes/s of `threads` threads paging all of f's pages FLOOR_ROUNDS times. */
static double floor_run(sealed_floor_t *f, int threads, int setting) {
  pthread_t t[64];
  floor_worker_t w[64];
  f->threads = threads, f->setting = setting;
  double t0 = bench_now_us();
  for (int i = 0; i < threads; i++) {
    w[i] = (floor_worker_t){f, i};
    if (pthread_create(&t[i], NULL, floor_thread, &w[i]) != 0) bench_die("pthread_create");
  }
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  return (double)f->pages * FLOOR_ROUNDS * PAGE / ((bench_now_us() - t0) / 1e6);
}

/* The URL's masters, each with a hash tag it owns. */
static void floor_masters(sealed_floor_t *f, const char *url) {
  for (const char *at = url_servers(url); at != NULL && f->masters < FLOOR_MASTERS;) {
    int m = f->masters++;
    at = url_next(at, f->hosts[m], &f->ports[m]);
    redisContext *c = redisConnect(f->hosts[m], f->ports[m]);
    if (c == NULL || c->err) bench_die("redisConnect");
    f->tags[m] = owned_tag(c);
    redisFree(c);
  }
}

/* Deletes the floor's keys and the masters' probes. */
static void floor_clean(sealed_floor_t *f) {
  size_t windows = f->pages / FLOOR_WINDOW;
  for (int m = 0; m < f->masters; m++) {
    redisContext *c = redisConnect(f->hosts[m], f->ports[m]);
    if (c == NULL || c->err) bench_die("redisConnect");
    size_t sent = 1;
    redisAppendCommand(c, "DEL upg-bench:{%d}:probe", f->tags[m]);
    for (size_t win = (size_t)m; win < windows; win += (size_t)f->masters)
      for (size_t k = win * FLOOR_WINDOW; k < (win + 1) * FLOOR_WINDOW; k++, sent++)
        redisAppendCommand(c, "DEL upg-floor:{%d}:%lu", f->tags[m], (unsigned long)k);
    for (size_t i = 0; i < sent; i++) {
      redisReply *r;
      if (redisGetReply(c, (void **)&r) != REDIS_OK) {
        fprintf(stderr, "redis_store: DEL of the floor's keys: %s\n", c->errstr);
        exit(1);
      }
      freeReplyObject(r);
    }
    redisFree(c);
  }
}

/* Indexed by placing: 0 bare, 1 placed. */
typedef struct floor_rates {
  double set[2], get[2];              /* bytes/s; a placed get of 0: no userfaultfd here */
  int set_threads[2], get_threads[2]; /* the thread counts that reached them */
  const char *cipher;
} floor_rates_t;

static void floor_regions(sealed_floor_t *f) {
  size_t bytes = f->pages * PAGE;
  f->made = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (f->made == MAP_FAILED) bench_die("mmap");
  madvise(f->made, bytes, MADV_NOHUGEPAGE);
  f->uffd = bench_uffd_open(0);
  f->placed = f->uffd < 0 ? NULL : bench_uffd_region(f->uffd, bytes, UFFDIO_REGISTER_MODE_MISSING);
}

/* The sealed floor's SET and GET rates, bare and placed, each the better
 * of one thread a CPU and two, bare and placed alternated. */
static floor_rates_t sealed_floor(const char *url, size_t pages, int cluster) {
  sealed_floor_t *f = calloc(1, sizeof *f);
  if (f == NULL || sodium_init() < 0) bench_die("the sealed floor: init");
  floor_masters(f, url);
  f->wait = cluster, f->pages = pages;
  f->aes = crypto_aead_aes256gcm_is_available();
  randombytes_buf(f->key, sizeof f->key);
  if (f->aes) crypto_aead_aes256gcm_beforenm(&f->aes_state, f->key);
  f->plain = malloc(pages * PAGE);
  f->tag = malloc(pages * sizeof *f->tag);
  f->version = malloc(pages * sizeof *f->version);
  if (f->plain == NULL || f->tag == NULL || f->version == NULL) bench_die("malloc");
  for (size_t k = 0; k < pages; k++) bench_fill_records(f->plain + k * BENCH_PAGE_WORDS, k);
  floor_regions(f);
  floor_rates_t r = {.cipher = f->aes ? "AES-256-GCM" : "XChaCha20-Poly1305"};
  int cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
  for (int threads = cpus; threads <= 2 * cpus; threads += cpus)
    for (int placing = 0; placing < 2; placing++) {
      f->placing = placing;
      double set = floor_run(f, threads, 1);
      double get = placing && f->placed == NULL ? 0 : floor_run(f, threads, 0);
      if (set > r.set[placing]) r.set[placing] = set, r.set_threads[placing] = threads;
      if (get > r.get[placing]) r.get[placing] = get, r.get_threads[placing] = threads;
    }
  floor_clean(f);
  munmap(f->made, pages * PAGE);
  if (f->placed != NULL) munmap(f->placed, pages * PAGE);
  if (f->uffd >= 0) close(f->uffd);
  free(f->plain), free(f->tag), free(f->version), free(f);
  return r;
}

/* ---- the hand-off a dedicated I/O thread would add -------------------------*/
static _Atomic uint32_t turn; /* odd: the I/O thread's turn; even: the caller's */
#define HANDOFFS 20000

static void futex_wait(_Atomic uint32_t *w, uint32_t v) {
  syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
}
static void futex_wake(_Atomic uint32_t *w) {
  syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *io_thread(void *arg) {
  (void)arg;
  for (uint32_t i = 0; i < HANDOFFS; i++) {
    uint32_t t;
    while (((t = atomic_load(&turn)) & 1) == 0) futex_wait(&turn, t);
    atomic_store(&turn, t + 1);
    futex_wake(&turn);
  }
  return NULL;
}

static double handoff_us(void) {
  pthread_t t;
  pthread_create(&t, NULL, io_thread, NULL);
  double t0 = bench_now_us();
  for (uint32_t i = 0; i < HANDOFFS; i++) {
    uint32_t v = atomic_fetch_add(&turn, 1) + 1;
    futex_wake(&turn);
    while (atomic_load(&turn) == v) futex_wait(&turn, v);
  }
  double us = (bench_now_us() - t0) / HANDOFFS;
  pthread_join(t, NULL);
  return us;
}

/* One run's requests per second; 0 when it printed none. */
static double benchmark_run(const char *cmd) {
  char line[512];
  FILE *f = popen(cmd, "r");
  double rps = 0;
  while (f && fgets(line, sizeof line, f)) {
    char *at = strrchr(line, '\r');
    at = at ? at + 1 : line;
    if (sscanf(at, "%*[A-Z]: %lf requests per second", &rps) == 1) break;
  }
  if (f) pclose(f);
  return rps;
}

/* A run of redis-benchmark now and then stalls: one GET run with 50
 * clients read half its usual rate. The best of these is the servers'. */
#define BENCHMARK_RUNS 3

/* redis-benchmark's requests per second for SET or GET, 4 KiB, pipelined
 * 16 deep, over `clients` connections (its default is 50; the pager pages
 * through one connection a node): the best of BENCHMARK_RUNS. */
static double benchmark_rps(const char *host, int port, int cluster, const char *test,
                            int clients) {
  char cmd[256];
  snprintf(cmd, sizeof cmd,
           "redis-benchmark -h %s -p %d %s -t %s -d 4096 -P 16 -c %d -n 200000 -q 2>/dev/null",
           host, port, cluster ? "--cluster" : "", test, clients);
  double best = 0;
  for (int i = 0; i < BENCHMARK_RUNS; i++) {
    double rps = benchmark_run(cmd);
    best = rps > best ? rps : best;
  }
  return best;
}

/* CPU seconds this process has used, every thread. */
static double own_cpu_s(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/* The reply to an INFO section, as text; dies without one. */
static redisReply *info(redisContext *c, const char *section) {
  redisReply *r = redisCommand(c, "INFO %s", section);
  if (r == NULL || r->type != REDIS_REPLY_STRING) bench_die("INFO");
  return r;
}

/* CPU seconds one server has used (INFO cpu), and, when `with_replicas`,
 * the replicas it names (INFO replication: "slaveN:ip=...,port=..."). */
static double server_cpu_s(const char *host, int port, int with_replicas) {
  redisContext *c = redisConnect(host, port);
  if (c == NULL || c->err) bench_die("redisConnect");
  redisReply *r = info(c, "cpu");
  const char *sys = strstr(r->str, "used_cpu_sys:"), *user = strstr(r->str, "used_cpu_user:");
  if (sys == NULL || user == NULL) bench_die("INFO cpu without used_cpu_*");
  double total = strtod(sys + strlen("used_cpu_sys:"), NULL) +
                 strtod(user + strlen("used_cpu_user:"), NULL);
  freeReplyObject(r);
  r = with_replicas ? info(c, "replication") : NULL;
  for (const char *at = r ? strstr(r->str, "\nslave") : NULL; at; at = strstr(at + 1, "\nslave")) {
    char ip[64];
    int replica_port;
    if (sscanf(at, "\nslave%*d:ip=%63[^,],port=%d", ip, &replica_port) == 2)
      total += server_cpu_s(ip, replica_port, 0);
  }
  freeReplyObject(r);
  redisFree(c);
  return total;
}

/* CPU seconds the servers the URL names and their replicas have used. */
static double servers_cpu_s(const char *url) {
  double total = 0;
  for (const char *at = url_servers(url); at != NULL;) {
    char host[64];
    int port;
    at = url_next(at, host, &port);
    total += server_cpu_s(host, port, 1);
  }
  return total;
}

static upg_stats_t stats(void) {
  upg_stats_t s = UPG_STATS_INIT;
  if (upg_stats(&s) != 0) bench_die("upg_stats");
  return s;
}

/* What paging through the store measured under one fault source. */
typedef struct paged {
  int ran;                         /* 0: the source cannot run here */
  double wrote, read;              /* bytes/s, in order */
  double own_us[2], servers_us[2]; /* CPU a page cost here and in the servers: written, read */
  double major_us;                 /* a random page's major fault */
  double get_us;                   /* a plain GET, in rounds between the faults' */
  unsigned long majors;
} paged_t;

/* The scattered faults go in rounds that alternate with rounds of plain
 * GETs, so that the floor is measured over the same stretch of time: the
 * machine drifts by tens of percent within a run. */
#define RANDOM_ROUNDS 8
#define GETS_A_ROUND 500

/* The region written in order, read back in order, then read in a
 * scattered order one page a fault, under `fault`; the floor's GETs
 * through `gets`. Without `gets`, the sequential passes alone. */
static paged_t page_through(const char *url, size_t budget, const char *fault, gets_t *gets) {
  size_t pages = 8 * budget, bytes = pages * PAGE;
  upg_options_t opt = {.budget = budget * PAGE, .store = url, .fault = fault};
  paged_t out = {0};
  if (upg_init(&opt) != 0) {
    fprintf(stderr, "redis_store: %s: %s\n", fault, upg_last_error());
    return out;
  }
  volatile char *p = upg_map(bytes, 0);
  if (p == NULL) bench_die("upg_map");
  double own0 = own_cpu_s(), servers0 = servers_cpu_s(url);
  double t0 = bench_now_us();
  for (size_t i = 0; i < pages; i++) /* out as puts, in order */
    bench_fill_records((uint64_t *)(uintptr_t)(p + i * PAGE), i);
  out.wrote = bytes / ((bench_now_us() - t0) / 1e6);
  double own1 = own_cpu_s(), servers1 = servers_cpu_s(url);
  t0 = bench_now_us();
  for (size_t i = 0; i < pages; i++) /* back as gets, readahead */
    if (*(volatile uint64_t *)(p + i * PAGE) != i * (BENCH_PAGE_WORDS / 8))
      bench_die("a page read back");
  out.read = bytes / ((bench_now_us() - t0) / 1e6);
  double own2 = own_cpu_s(), servers2 = servers_cpu_s(url);
  out.own_us[0] = (own1 - own0) * 1e6 / (double)pages;
  out.own_us[1] = (own2 - own1) * 1e6 / (double)pages;
  out.servers_us[0] = (servers1 - servers0) * 1e6 / (double)pages;
  out.servers_us[1] = (servers2 - servers1) * 1e6 / (double)pages;
  out.ran = 1;
  if (gets == NULL) {
    upg_shutdown();
    return out;
  }
  if (upg_advise((void *)p, bytes, UPG_ADV_RANDOM) != 0) bench_die("upg_advise");
  upg_stats_t before = stats();
  double us = 0, get_total = 0;
  for (size_t round = 0; round < RANDOM_ROUNDS; round++) {
    t0 = bench_now_us();
    for (size_t i = pages * round / RANDOM_ROUNDS; i < pages * (round + 1) / RANDOM_ROUNDS; i++)
      (void)p[scattered(i, pages) * PAGE];
    us += bench_now_us() - t0;
    get_total += gets_run(gets, GETS_A_ROUND);
  }
  out.get_us = get_total / (RANDOM_ROUNDS * GETS_A_ROUND);
  upg_stats_t after = stats();
  out.majors = (unsigned long)(after.fault_major - before.fault_major);
  out.major_us = us / (double)(out.majors ? out.majors : 1);
  upg_shutdown();
  return out;
}

static const char *const sources[] = {"sigsegv", "uffd"};
#define SOURCES 2

/* One row of the sequential table: each source's MB/s and its ratio to
 * redis-benchmark with 50 clients and with one. */
static void sequential_row(const char *what, const paged_t *by, int reading, double many_rps,
                           double one_rps) {
  double many = many_rps * PAGE, one = one_rps * PAGE;
  printf("sequential %-10s", what);
  for (int i = 0; i < SOURCES; i++) {
    double v = reading ? by[i].read : by[i].wrote;
    if (!by[i].ran) printf("   %-7s cannot run here", sources[i]);
    else printf("   %-7s %6.1f MB/s (%.2fx, %.2fx)", sources[i], v / 1e6, v / many, v / one);
  }
  printf("\n");
}

int main(int argc, char **argv) {
  size_t budget = argc > 2 ? strtoul(argv[2], NULL, 10) : 1024;
  char host[64];
  int port;
  if (argc < 2 || sscanf(argv[1], "redis://%63[^:]:%d", host, &port) != 2 || budget < 16 ||
      (budget & (budget - 1)) != 0) {
    fprintf(stderr, "usage: redis_store redis://host:port[,...] [budget_pages (power of two)]\n");
    return 2;
  }
  size_t pages = 8 * budget;
  double floor_us = floor_fault_us(4 * budget), get_hot = get_us(host, port, 1, 4000);
  double handoff = handoff_us();
  int cluster = strchr(argv[1], ',') != NULL;
  paged_t by[SOURCES];
  gets_t floor_gets = gets_open(host, port, pages);
  /* Unrecorded: the first pass through fresh servers costs them a third
   * more CPU a page written than any pass after (whichever source runs
   * first), which would be charged to the first source alone. */
  (void)page_through(argv[1], budget, sources[0], NULL);
  for (int i = 0; i < SOURCES; i++) by[i] = page_through(argv[1], budget, sources[i], &floor_gets);
  gets_close(&floor_gets);
  if (!by[0].ran) return 1;
  floor_rates_t sealed = sealed_floor(argv[1], pages, cluster);

  double set_rps = benchmark_rps(host, port, cluster, "set", 50);
  double get_rps = benchmark_rps(host, port, cluster, "get", 50);
  double set_one = benchmark_rps(host, port, cluster, "set", 1);
  double get_one = benchmark_rps(host, port, cluster, "get", 1);
  printf("redis store: %s, %zu-page budget, %zu-page region, 4 KiB pages\n",
         cluster ? "cluster" : "one server", budget, pages);
  printf("floor: GET 4 KiB (a scattered key of %zu, in rounds between the faults') + "
         "SIGSEGV/mprotect %.1f us\n",
         pages, floor_us);
  printf("  (the same key each GET, before: %.1f us)\n", get_hot);
  printf("  a hand-off to an I/O thread and back (futex wakes): %.1f us more a fault\n", handoff);
  for (int i = 0; i < SOURCES; i++) {
    if (!by[i].ran) {
      printf("major fault, random page, %-7s cannot run here\n", sources[i]);
      continue;
    }
    double floor_sum = by[i].get_us + floor_us;
    printf("major fault, random page, %-7s %6.1f us (%lu faults), floor %.1f + %.1f us: %.2fx "
           "(target <= 1.2x); %.2fx with the same key\n",
           sources[i], by[i].major_us, by[i].majors, by[i].get_us, floor_us,
           by[i].major_us / floor_sum, by[i].major_us / (get_hot + floor_us));
  }
  printf("redis-benchmark -P 16, 4 KiB: SET %.1f MB/s with 50 clients, %.1f with 1; GET %.1f "
         "and %.1f\n",
         set_rps * PAGE / 1e6, set_one * PAGE / 1e6, get_rps * PAGE / 1e6, get_one * PAGE / 1e6);
  sequential_row("write-out", by, 0, set_rps, set_one);
  sequential_row("read-back", by, 1, get_rps, get_one);
  printf("  (each against redis-benchmark with 50 clients, then with 1; target: >= 0.5x)\n");
  static const char *const floors[] = {"no paging", "pages made, placed, given back"};
  for (int placing = 0; placing < 2; placing++) {
    printf("sealed floor, %s, %s: SET%s %.1f MB/s (%.2fx) with %d threads", sealed.cipher,
           floors[placing], cluster ? " + WAIT 1" : "", sealed.set[placing] / 1e6,
           sealed.set[placing] / (set_rps * PAGE), sealed.set_threads[placing]);
    if (sealed.get[placing] == 0) printf(", GET cannot run here (no userfaultfd)\n");
    else
      printf(", GET %.1f (%.2fx) with %d\n", sealed.get[placing] / 1e6,
             sealed.get[placing] / (get_rps * PAGE), sealed.get_threads[placing]);
  }
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  static const char *const phases[] = {"write-out", "read-back"};
  for (int phase = 0; phase < 2; phase++)
    for (int i = 0; i < SOURCES; i++) {
      if (!by[i].ran) continue;
      double per_page = by[i].own_us[phase] + by[i].servers_us[phase];
      double most = cpus / per_page * 1e6 * PAGE, many = (phase ? get_rps : set_rps) * PAGE;
      printf("%s CPU a page, %-7s %.1f us here + %.1f us in the servers: %ld CPUs flat out "
             "would move %.1f MB/s, %.2fx redis-benchmark with 50 clients\n",
             phases[phase], sources[i], by[i].own_us[phase], by[i].servers_us[phase], cpus,
             most / 1e6, most / many);
    }
  return 0;
}
