/* options.c: the runtime's options, one table. Each option has a field in
 * upg_options_t, an UPAGER_* environment variable and a default; a value
 * set in code wins over the environment, which wins over the default. All
 * are read once, by upg_init, and a bad value fails init with a message
 * that names where the value came from. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* The smallest budget in pages: one instruction can touch two pages (an
 * unaligned access or a string move across a boundary), and both must be
 * resident at once or the program would fault forever. */
#define MIN_BUDGET_PAGES 4

typedef int (*apply_fn)(const char *text, const char *source, upg__config_t *cfg);

static int apply_budget(const char *, const char *, upg__config_t *);
static int apply_page_size(const char *, const char *, upg__config_t *);
static int apply_swap_dir(const char *, const char *, upg__config_t *);
static int apply_policy(const char *, const char *, upg__config_t *);
static int apply_stats(const char *, const char *, upg__config_t *);
static int apply_max_maps(const char *, const char *, upg__config_t *);
static int apply_trace(const char *, const char *, upg__config_t *);
static int apply_heap_size(const char *, const char *, upg__config_t *);
static int apply_readahead(const char *, const char *, upg__config_t *);
static int apply_direct_io(const char *, const char *, upg__config_t *);
static int apply_store(const char *, const char *, upg__config_t *);
static int apply_store_auth_file(const char *, const char *, upg__config_t *);
static int apply_store_timeout(const char *, const char *, upg__config_t *);
static int apply_encrypt(const char *, const char *, upg__config_t *);
static int apply_fault(const char *, const char *, upg__config_t *);
static int apply_compress(const char *, const char *, upg__config_t *);
static int apply_compress_pool(const char *, const char *, upg__config_t *);
static int apply_compress_threshold(const char *, const char *, upg__config_t *);
static int apply_uffd_mode(const char *, const char *, upg__config_t *);

/* X(field, kind, environment variable, default, what an empty default
 * means, what it is, more about it, apply). An empty default is worked out
 * at init. `what` is the line of `upager --help`; docs/options.md adds
 * `more` (`upager options --markdown` writes that file from this table). */
#define UPG__OPTIONS(X)                                                                          \
  X(page_size, size, "UPAGER_PAGE_SIZE", "", "system page", "paging unit",                       \
    "A power-of-two multiple of the system page, 4K to 2M and beyond, one for the whole "        \
    "runtime. A larger unit pages a sequential scan faster and random access slower "            \
    "([measurements.md](measurements.md)).",                                                     \
    apply_page_size)                                                                             \
  X(budget, size, "UPAGER_BUDGET", "64M", "", "resident bytes, all regions together",            \
    "At least 4 pages: one instruction can touch two pages, and both must fit.", apply_budget)   \
  X(swap_dir, string, "UPAGER_SWAP_DIR", "", "$TMPDIR, else /tmp", "swap file directory",        \
    "The swap file is made with O_TMPFILE where the filesystem allows, else mode 0600 and "      \
    "unlinked at once: nothing is left behind.",                                                 \
    apply_swap_dir)                                                                              \
  X(store, string, "UPAGER_STORE", "file", "", "where evicted pages go: file or redis://...",    \
    "`file` is the swap file of `UPAGER_SWAP_DIR` and `UPAGER_DIRECT_IO`; `faulty` wraps it "    \
    "with the failures tests ask for; `redis://[user:password@]host:port[,host:port...]` is a "  \
    "Redis Cluster (or one Redis server), every page sealed ([design.md](design.md))",           \
    apply_store)                                                                                 \
  X(store_auth_file, string, "UPAGER_STORE_AUTH_FILE", "", "none",                               \
    "the Redis store's credentials",                                                             \
    "A file whose first line is `user:password` or a password alone (AUTH); it wins over "       \
    "the URL's, and neither is ever printed.",                                                   \
    apply_store_auth_file)                                                                       \
  X(store_timeout_ms, size, "UPAGER_STORE_TIMEOUT", "5000", "",                                  \
    "milliseconds a store call retries across a failover",                                       \
    "A Redis node that fails is waited for this long (its replica's promotion) before a get "    \
    "ends the access naming the node, or a put leaves its pages resident.",                      \
    apply_store_timeout)                                                                         \
  X(encrypt, flag, "UPAGER_ENCRYPT", "0", "", "1: seal the swap file's pages",                   \
    "With a key drawn at init that never leaves the process (AES-256-GCM or "                    \
    "XChaCha20-Poly1305); a page altered on disk ends the access. The Redis store always "       \
    "seals.",                                                                                    \
    apply_encrypt)                                                                               \
  X(fault, string, "UPAGER_FAULT", "sigsegv", "", "where faults come from: sigsegv, uffd, auto", \
    "`sigsegv`: a SIGSEGV handler (GNU libsigsegv) and page protections, a memfd mapped "        \
    "twice for each region; a kernel access to a closed page fails with EFAULT, so buffers "     \
    "handed to system calls are pinned first. `uffd`: userfaultfd (Linux 5.7 or later, root "    \
    "or vm.unprivileged_userfaultfd=1), pages copied in and out whole, no protection changes; "  \
    "init fails with UPG_EUFFD where it cannot run. `auto`: uffd where it can run, else "        \
    "sigsegv.",                                                                                  \
    apply_fault)                                                                                 \
  X(uffd_mode, string, "UPAGER_UFFD_MODE", "sigbus", "", "uffd faults: sigbus or thread",        \
    "`sigbus`: each fault is a SIGBUS handled in the faulting thread, the faster; a kernel "     \
    "access to a missing page fails with EFAULT, so buffers are pinned as under sigsegv. "       \
    "`thread`: a handler thread serves faults, and a system call that touches a missing page "   \
    "waits for it, so nothing is pinned.",                                                       \
    apply_uffd_mode)                                                                             \
  X(policy, string, "UPAGER_POLICY", "clock", "", "replacement policy: clock or fifo", "",       \
    apply_policy)                                                                                \
  X(stats, flag, "UPAGER_STATS", "0", "", "1: print the report to stderr at exit",               \
    "[stats.md](stats.md) explains the report.", apply_stats)                                    \
  X(max_maps, size, "UPAGER_MAX_MAPS", "", "half vm.max_map_count",                              \
    "kernel mappings the runtime may make",                                                      \
    "From 64 to vm.max_map_count less 64. The runtime closes pages early to stay under, "        \
    "so that mprotect never fails.",                                                             \
    apply_max_maps)                                                                              \
  X(trace, string, "UPAGER_TRACE", "", "none", "record every fault into this file",              \
    "The upt format, [upt.md](upt.md), which `upager trace stats` and `upager sim` read.",       \
    apply_trace)                                                                                 \
  X(readahead, size, "UPAGER_READAHEAD", "256K", "", "most bytes a sequential fault loads",      \
    "At most 256 pages of the paging unit. A page or less turns readahead off, under 16 "        \
    "pages also the heap's fault-around.",                                                       \
    apply_readahead)                                                                             \
  X(direct_io, string, "UPAGER_DIRECT_IO", "1", "", "1: open the swap file O_DIRECT",            \
    "Where the filesystem allows it (tmpfs does not: buffered there), so evicted pages "         \
    "leave RAM instead of moving to the page cache. 0: always buffered.",                        \
    apply_direct_io)                                                                             \
  X(heap_size, size, "UPAGER_HEAP_SIZE", "32G", "", "address space of the paged heap",           \
    "The heap of upg_malloc and `upager run`; at least 64M.", apply_heap_size)                   \
  X(compress, string, "UPAGER_COMPRESS", "off", "",                                              \
    "compressed tier in front of the store: lz4, zstd or off",                                   \
    "Evicted pages are compressed into a pool of RAM inside the budget and written to "          \
    "`UPAGER_STORE` only when the pool is full; a page of one repeated word costs no pool. "     \
    "lz4 compresses and decompresses 3-5 times faster than zstd, which packs about a third "     \
    "more. Off by default: at 1.9:1 and a region 4 times the budget it measured slower than "    \
    "no tier ([design.md](design.md#the-compressed-tier)).",                                     \
    apply_compress)                                                                              \
  X(compress_pool, size, "UPAGER_COMPRESS_POOL", "50", "",                                       \
    "most of the budget the pool may take, percent",                                             \
    "1 to 90. The frames the pool takes are taken from the pages' share: frames and pool "       \
    "together never exceed `UPAGER_BUDGET`.",                                                    \
    apply_compress_pool)                                                                         \
  X(compress_threshold, size, "UPAGER_COMPRESS_THRESHOLD", "", "3/4 of a page",                  \
    "most bytes a page may compress to and stay in the pool",                                    \
    "A page that compresses worse goes to the store below at once, and its compression "         \
    "stops as soon as it passes this. From 64 bytes to a page.",                                 \
    apply_compress_threshold)

/* How a field set in code becomes text; NULL when it is unset. */
static const char *code_size(size_t v, char *buf, size_t len) {
  if (v == 0) return NULL;
  snprintf(buf, len, "%zu", v);
  return buf;
}
static const char *code_string(const char *v, char *buf, size_t len) {
  (void)buf, (void)len;
  return v;
}
static const char *code_flag(int v, char *buf, size_t len) {
  (void)buf, (void)len;
  return v ? "1" : NULL;
}

int upg_parse_size(const char *text, size_t *out) {
  char *end;
  errno = 0;
  if (!isdigit((unsigned char)text[0])) return -EINVAL;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno != 0) return -EINVAL;
  unsigned shift = 0;
  switch (toupper((unsigned char)*end)) {
    case 'K':
      shift = 10;
      end++;
      break;
    case 'M':
      shift = 20;
      end++;
      break;
    case 'G':
      shift = 30;
      end++;
      break;
    case 'T':
      shift = 40;
      end++;
      break;
  }
  if (shift && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0)) end += strlen(end);
  if (*end != '\0') return -EINVAL;
  if (shift && v > (SIZE_MAX >> shift)) return -EINVAL;
  *out = (size_t)(v << shift);
  return 0;
}

static int parse_size_or_fail(const char *text, const char *source, int err, size_t *out) {
  if (upg_parse_size(text, out) != 0)
    return upg__fail(err, "%s='%s' is not a size (a number with an optional K, M, G or T)", source,
                     text);
  return 0;
}

static int apply_page_size(const char *text, const char *source, upg__config_t *cfg) {
  size_t sys = upg__os_page_size(), v = sys;
  if (*text != '\0') {
    int rc = parse_size_or_fail(text, source, UPG_EPAGESIZE, &v);
    if (rc) return rc;
  }
  if (v < sys || v % sys != 0 || (v & (v - 1)) != 0)
    return upg__fail(UPG_EPAGESIZE,
                     "%s='%s' is not a power-of-two multiple of the %zu-byte system page", source,
                     text, sys);
  cfg->page_size = v;
  return 0;
}

static int apply_budget(const char *text, const char *source, upg__config_t *cfg) {
  size_t v;
  if (upg_parse_size(text, &v) != 0)
    return upg__fail(UPG_EBUDGET, "%s='%s' is not a size (a number with an optional K, M, G or T)",
                     source, text);
  if (v / cfg->page_size < MIN_BUDGET_PAGES)
    return upg__fail(UPG_EBUDGET,
                     "%s='%s' is below the minimum of %d pages of %zu bytes: one instruction "
                     "can touch two pages and both must fit",
                     source, text, MIN_BUDGET_PAGES, cfg->page_size);
  cfg->budget = v / cfg->page_size * cfg->page_size;
  return 0;
}

static int apply_swap_dir(const char *text, const char *source, upg__config_t *cfg) {
  const char *dir = text;
  if (*dir == '\0') dir = getenv("TMPDIR");
  if (dir == NULL || *dir == '\0') dir = "/tmp";
  if (strlen(dir) >= sizeof cfg->swap_dir)
    return upg__fail(UPG_ESWAPDIR, "%s='%s' is too long", source, dir);
  if (access(dir, W_OK | X_OK) != 0)
    return upg__fail(UPG_ESWAPDIR, "%s='%s' cannot hold the swap file: %s", source, dir,
                     strerror(errno));
  strcpy(cfg->swap_dir, dir);
  return 0;
}

/* A URL may hold a password: messages show its scheme alone. */
static int apply_store(const char *text, const char *source, upg__config_t *cfg) {
  cfg->store = upg__store_find(text);
  if (cfg->store == NULL && strstr(text, "://") != NULL)
    return upg__fail(UPG_EOPTION, "%s='%.*s://...' is not a store (one of: %s)", source,
                     (int)(strstr(text, "://") - text), text, upg__store_names());
  if (cfg->store == NULL)
    return upg__fail(UPG_EOPTION, "%s='%s' is not a store (one of: %s)", source, text,
                     upg__store_names());
  if (strstr(text, "://") == NULL) return 0;
  if (strlen(text) >= sizeof cfg->store_url ||
      strchr(text + strlen(cfg->store->name) + 3, ':') == NULL)
    return upg__fail(UPG_EOPTION, "%s='%s://...' is not [user:password@]host:port[,host:port...]",
                     source, cfg->store->name);
  strcpy(cfg->store_url, text);
  return 0;
}

static int apply_store_auth_file(const char *text, const char *source, upg__config_t *cfg) {
  if (strlen(text) >= sizeof cfg->store_auth_file)
    return upg__fail(UPG_EOPTION, "%s='%s' is too long", source, text);
  strcpy(cfg->store_auth_file, text);
  return 0;
}

static int apply_store_timeout(const char *text, const char *source, upg__config_t *cfg) {
  size_t v;
  int rc = parse_size_or_fail(text, source, UPG_EOPTION, &v);
  if (rc) return rc;
  if (v < 100 || v > 3600000)
    return upg__fail(UPG_EOPTION, "%s='%s' is outside 100..3600000 milliseconds", source, text);
  cfg->store_timeout_ms = v;
  return 0;
}

static int apply_fault(const char *text, const char *source, upg__config_t *cfg) {
  cfg->source = upg__fault_source_find(text);
  if (cfg->source == NULL)
    return upg__fail(UPG_EOPTION, "%s='%s' is not a fault source (one of: %s)", source, text,
                     upg__fault_source_names());
  return 0;
}

static int apply_compress(const char *text, const char *source, upg__config_t *cfg) {
  if (strcmp(text, "off") == 0) {
    cfg->codec = NULL;
    return 0;
  }
  cfg->codec = upg__codec_find(text);
  if (cfg->codec == NULL)
    return upg__fail(UPG_EOPTION, "%s='%s' is not a compressor (one of: %s, off)", source, text,
                     upg__codec_names());
  return 0;
}

static int apply_compress_pool(const char *text, const char *source, upg__config_t *cfg) {
  size_t v;
  if (upg_parse_size(text, &v) != 0 || v < 1 || v > 90)
    return upg__fail(UPG_EOPTION, "%s='%s' is not a percentage of the budget from 1 to 90", source,
                     text);
  cfg->compress_pool = v;
  return 0;
}

/* After page_size, which the table resolves first. */
static int apply_compress_threshold(const char *text, const char *source, upg__config_t *cfg) {
  size_t v = cfg->page_size / 4 * 3;
  if (*text != '\0') {
    int rc = parse_size_or_fail(text, source, UPG_EOPTION, &v);
    if (rc) return rc;
  }
  if (v < 64 || v > cfg->page_size)
    return upg__fail(UPG_EOPTION, "%s='%s' is outside 64 bytes..a page of %zu bytes", source, text,
                     cfg->page_size);
  cfg->compress_threshold = v;
  return 0;
}

static int apply_uffd_mode(const char *text, const char *source, upg__config_t *cfg) {
  if (strcmp(text, "sigbus") != 0 && strcmp(text, "thread") != 0)
    return upg__fail(UPG_EOPTION, "%s='%s' is not sigbus or thread", source, text);
  cfg->uffd_thread = strcmp(text, "thread") == 0;
  return 0;
}

static int apply_policy(const char *text, const char *source, upg__config_t *cfg) {
  cfg->policy = upg__policy_find(text);
  if (cfg->policy == NULL)
    return upg__fail(UPG_EPOLICY, "%s='%s' is not a policy (one of: %s)", source, text,
                     upg__policy_names());
  return 0;
}

static int parse_flag(const char *text, const char *source, int *out) {
  if (strcmp(text, "1") == 0 || strcasecmp(text, "yes") == 0 || strcasecmp(text, "true") == 0)
    *out = 1;
  else if (strcmp(text, "0") == 0 || strcasecmp(text, "no") == 0 || strcasecmp(text, "false") == 0)
    *out = 0;
  else return upg__fail(UPG_EOPTION, "%s='%s' is not 1 or 0", source, text);
  return 0;
}

static int apply_encrypt(const char *text, const char *source, upg__config_t *cfg) {
  return parse_flag(text, source, &cfg->encrypt);
}

static int apply_stats(const char *text, const char *source, upg__config_t *cfg) {
  return parse_flag(text, source, &cfg->stats);
}

static int apply_direct_io(const char *text, const char *source, upg__config_t *cfg) {
  return parse_flag(text, source, &cfg->direct_io);
}

/* Bytes, turned into pages of the paging unit: a 2M unit reads one page a
 * fault under the default. */
static int apply_readahead(const char *text, const char *source, upg__config_t *cfg) {
  size_t v;
  int rc = parse_size_or_fail(text, source, UPG_EOPTION, &v);
  if (rc) return rc;
  size_t pages = v / cfg->page_size;
  if (pages > UPG__IOV_MAX)
    return upg__fail(UPG_EOPTION, "%s='%s' is over %d pages of %zu bytes", source, text,
                     UPG__IOV_MAX, cfg->page_size);
  cfg->readahead = pages > 0 ? pages : 1;
  return 0;
}

static int apply_max_maps(const char *text, const char *source, upg__config_t *cfg) {
  size_t system_max = upg__os_max_map_count(), v = system_max / 2;
  if (*text != '\0') {
    int rc = parse_size_or_fail(text, source, UPG_EOPTION, &v);
    if (rc) return rc;
  }
  /* Each region needs a few mappings of its own, and the program others. */
  if (v < 64 || v > system_max - 64)
    return upg__fail(UPG_EOPTION, "%s='%s' is outside 64..%zu (vm.max_map_count less 64)", source,
                     text, system_max - 64);
  cfg->max_maps = v;
  return 0;
}

static int apply_trace(const char *text, const char *source, upg__config_t *cfg) {
  if (strlen(text) >= sizeof cfg->trace_path)
    return upg__fail(UPG_EOPTION, "%s='%s' is too long", source, text);
  strcpy(cfg->trace_path, text);
  return 0;
}

/* mimalloc needs at least one 64 MiB-aligned arena block to work in. */
static int apply_heap_size(const char *text, const char *source, upg__config_t *cfg) {
  size_t v;
  int rc = parse_size_or_fail(text, source, UPG_EOPTION, &v);
  if (rc) return rc;
  if (v < ((size_t)64 << 20))
    return upg__fail(UPG_EOPTION, "%s='%s' is below the heap's minimum of 64M", source, text);
  cfg->heap_size = v;
  return 0;
}

int upg__options_resolve(const upg_options_t *in, upg__config_t *out) {
  static const upg_options_t none;
  char buf[32], source[96];
  const char *text;
  int rc;
  if (in == NULL) in = &none;
  memset(out, 0, sizeof *out);
#define UPG__RESOLVE_(field, kind, env, fallback, empty, what, more, apply) \
  if ((text = code_##kind(in->field, buf, sizeof buf)) != NULL) {           \
    snprintf(source, sizeof source, "upg_options_t." #field);               \
  } else if ((text = getenv(env)) != NULL) {                                \
    snprintf(source, sizeof source, env);                                   \
  } else {                                                                  \
    text = fallback;                                                        \
    snprintf(source, sizeof source, "default " #field);                     \
  }                                                                         \
  if ((rc = apply(text, source, out)) != 0) return rc;
  UPG__OPTIONS(UPG__RESOLVE_)
#undef UPG__RESOLVE_
  out->source = upg__fault_source_for(out->source, out);
  return 0;
}

/* The default as a person reads it: the value, or what an empty one means. */
static const char *shown_default(const char *fallback, const char *empty) {
  return *fallback ? fallback : empty;
}

void upg__options_describe(FILE *out) {
#define UPG__DESCRIBE_(field, kind, env, fallback, empty, what, more, apply) \
  fprintf(out, "  %-18s %-21s %s\n", env, shown_default(fallback, empty), what);
  UPG__OPTIONS(UPG__DESCRIBE_)
#undef UPG__DESCRIBE_
}

/* docs/options.md, whole: ctest docs_options compares the file with this. */
void upg__options_markdown(FILE *out) {
  fputs("# Options\n\n"
        "<!-- Written by `upager options --markdown` from the table in lib/options.c;\n"
        "     edit the table, then: build/cli/upager options --markdown > docs/options.md\n"
        "     (ctest docs_options fails while this file differs). -->\n\n"
        "The runtime reads its options once, when it starts (`upg_init`, or the\n"
        "first `upg_map`). A field set in `upg_options_t` wins over the\n"
        "environment variable, which wins over the default; `upager run` sets the\n"
        "variables from its flags ([run.md](run.md)). Sizes are a number with an\n"
        "optional K, M, G or T. A bad value fails `upg_init` (or the first\n"
        "`upg_map`) with its own code and a message naming where the value came\n"
        "from, for example `upager: UPAGER_BUDGET='12Q' is not a size (a number\n"
        "with an optional K, M, G or T)`.\n\n"
        "| variable | `upg_options_t` field | default | meaning |\n"
        "|---|---|---|---|\n",
        out);
#define UPG__MARKDOWN_(field, kind, env, fallback, empty, what, more, apply)             \
  fprintf(out, "| `%s` | `%s` | %s%s%s | %s%s%s |\n", env, #field, *fallback ? "`" : "", \
          shown_default(fallback, empty), *fallback ? "`" : "", what, *more ? ". " : "", more);
  UPG__OPTIONS(UPG__MARKDOWN_)
#undef UPG__MARKDOWN_
}
