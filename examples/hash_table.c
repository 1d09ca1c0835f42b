/* hash_table.c: an open-addressing hash table (linear probing) larger than
 * the runtime's budget. Random keys have no locality, so almost every
 * operation lands on a page that is not resident: this is paging's worst
 * case, and the report shows what each operation costs in faults and time.
 * The region starts zero-filled, so key 0 marks an empty slot and the table
 * needs no initialisation pass: untouched pages cost nothing.
 *
 *   hash_table [budget [table_bytes [keys]]]      defaults: 8M 128M 200000
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "example_util.h"
#include "upager.h"

typedef struct entry {
  uint64_t key; /* 0: empty */
  uint64_t value;
} entry_t;

typedef struct table {
  entry_t *slots;
  uint64_t mask; /* capacity - 1; capacity is a power of two */
} table_t;

/* splitmix64's finaliser: consecutive keys land on unrelated pages. */
static uint64_t hash(uint64_t key) {
  key ^= key >> 30;
  key *= 0xbf58476d1ce4e5b9ull;
  key ^= key >> 27;
  key *= 0x94d049bb133111ebull;
  return key ^ (key >> 31);
}

static uint64_t value_of(uint64_t key) { return key * 0x9e3779b97f4a7c15ull; }

/* The slot holding key, or the empty slot where it would go. */
static entry_t *probe(const table_t *t, uint64_t key) {
  for (uint64_t i = hash(key) & t->mask;; i = (i + 1) & t->mask) {
    entry_t *e = &t->slots[i];
    if (e->key == key || e->key == 0) return e;
  }
}

static void insert(table_t *t, uint64_t key, uint64_t value) {
  entry_t *e = probe(t, key);
  e->key = key;
  e->value = value;
}

/* 1 if key is present with its value, 0 if absent, -1 if the value is wrong. */
static int lookup(const table_t *t, uint64_t key) {
  const entry_t *e = probe(t, key);
  if (e->key == 0) return 0;
  return e->value == value_of(key) ? 1 : -1;
}

static void report_phase(const char *name, double seconds, uint64_t ops,
                         const upg_stats_t *before) {
  upg_stats_t now = UPG_STATS_INIT;
  example_check(upg_stats(&now), "upg_stats");
  uint64_t faults = (now.fault_zero - before->fault_zero) +
                    (now.fault_write - before->fault_write) +
                    (now.fault_minor - before->fault_minor) +
                    (now.fault_major - before->fault_major);
  printf("  %-16s %6.2f s  %6.2f us/op  %4.2f faults/op (%" PRIu64 " zero-fill, %" PRIu64
         " write, %" PRIu64 " minor, %" PRIu64 " major), swap %.1f MiB written %.1f MiB read\n",
         name, seconds, seconds * 1e6 / (double)ops, (double)faults / (double)ops,
         now.fault_zero - before->fault_zero, now.fault_write - before->fault_write,
         now.fault_minor - before->fault_minor, now.fault_major - before->fault_major,
         example_mib(now.swap_bytes_written - before->swap_bytes_written),
         example_mib(now.swap_bytes_read - before->swap_bytes_read));
}

/* Looks up keys [first, first+count) and counts those whose answer is not
 * `expect` (1: present with the right value, 0: absent). */
static uint64_t lookup_phase(const char *name, const table_t *t, uint64_t first, uint64_t count,
                             int expect) {
  upg_stats_t before = UPG_STATS_INIT;
  example_check(upg_stats(&before), "upg_stats");
  double t0 = example_now_s();
  uint64_t wrong = 0;
  for (uint64_t k = first; k < first + count; k++) wrong += lookup(t, k) != expect;
  report_phase(name, example_now_s() - t0, count, &before);
  return wrong;
}

/* The largest power of two of slots that fits in `bytes`. */
static uint64_t capacity_for(size_t bytes) {
  uint64_t cap = 1;
  while (cap * 2 * sizeof(entry_t) <= bytes) cap *= 2;
  return cap;
}

int main(int argc, char **argv) {
  if (argc > 4 || (argc > 1 && strcmp(argv[1], "-h") == 0)) {
    fprintf(stderr, "usage: %s [budget [table_bytes [keys]]]   (sizes like 8M, 1G)\n", argv[0]);
    return 2;
  }
  size_t budget = argc > 1 ? example_parse_size(argv[1], "budget") : (size_t)8 << 20;
  size_t bytes = argc > 2 ? example_parse_size(argv[2], "table_bytes") : (size_t)128 << 20;
  uint64_t keys = argc > 3 ? example_parse_size(argv[3], "keys") : 200000;
  table_t t = {.mask = capacity_for(bytes) - 1};
  if (keys > (t.mask + 1) / 2) {
    fprintf(stderr, "%" PRIu64 " keys would fill more than half of %" PRIu64 " slots\n", keys,
            t.mask + 1);
    return 2;
  }

  upg_options_t opt = {.budget = budget};
  example_check(upg_init(&opt), "upg_init");
  size_t table_bytes = (t.mask + 1) * sizeof(entry_t);
  t.slots = example_map(table_bytes);
  printf("hash_table: %.0f MiB table (%" PRIu64 " slots of %zu bytes, linear probing) under a\n"
         "            %.0f MiB budget; %" PRIu64 " keys, load factor %.3f. Each random key\n"
         "            lands on a page resident with probability ~%.2f, so nearly every\n"
         "            operation faults: an insert is a zero-fill or major fault, then a\n"
         "            write fault; a lookup is a major fault.\n\n",
         example_mib(table_bytes), t.mask + 1, sizeof(entry_t), example_mib(budget), keys,
         (double)keys / (double)(t.mask + 1), (double)budget / (double)table_bytes);

  upg_stats_t before = UPG_STATS_INIT;
  example_check(upg_stats(&before), "upg_stats");
  double t0 = example_now_s();
  for (uint64_t k = 1; k <= keys; k++) insert(&t, k, value_of(k));
  report_phase("insert", example_now_s() - t0, keys, &before);
  uint64_t missing = lookup_phase("lookup present", &t, 1, keys, 1);
  uint64_t phantom = lookup_phase("lookup absent", &t, keys + 1, keys / 8 + 1, 0);

  int ok = missing == 0 && phantom == 0;
  printf("\n%" PRIu64 " keys missing or wrong, %" PRIu64 " absent keys found: %s; the"
         " runtime's report follows on stderr.\n",
         missing, phantom, ok ? "OK" : "FAILED");
  fflush(stdout);
  upg_stats_print(stderr);
  example_check(upg_unmap(t.slots, table_bytes), "upg_unmap");
  upg_shutdown();
  return ok ? 0 : 1;
}
