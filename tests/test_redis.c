/* test_redis.c: the Redis store against real servers, and the sealing of
 * pages. tests/redis/with_servers.sh starts the servers and names them in
 * the environment: the suite redis_single runs under `with_servers.sh
 * single` (one server), redis_cluster under `with_servers.sh cluster`
 * (three masters, a replica each); the suite sealed needs none. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

#define PAGE 4096u
#define WORDS (PAGE / 8)

static const char *need_env(const char *name) {
  const char *v = getenv(name);
  cr_assert_not_null(v, "%s is unset: run under tests/redis/with_servers.sh", name);
  return v;
}

static char url_text[512];
static const char *url_of(const char *servers) {
  snprintf(url_text, sizeof url_text, "redis://%s", servers);
  return url_text;
}

static int start_store(const char *url, size_t budget) {
  upg_options_t opt = {.budget = budget, .store = url, .store_timeout_ms = 20000};
  return upg_init(&opt);
}

static void must_start(const char *url, size_t budget) {
  int rc = start_store(url, budget);
  cr_assert_eq(rc, 0, "upg_init: %s (%s)", upg_strerror(rc), upg_last_error());
}

/* ---- threads writing and checking a pattern --------------------------------*/
typedef struct job {
  uint64_t *region;
  size_t pages, first, step;
  uint64_t round;
  size_t bad; /* pages whose words were not the round's */
} job_t;

static void *write_round(void *arg) {
  job_t *j = arg;
  for (size_t p = j->first; p < j->pages; p += j->step)
    for (size_t w = 0; w < WORDS; w++) j->region[p * WORDS + w] = pattern(p, w, j->round);
  return NULL;
}

static void *check_round(void *arg) {
  job_t *j = arg;
  for (size_t p = j->first; p < j->pages; p += j->step)
    for (size_t w = 0; w < WORDS; w++)
      if (j->region[p * WORDS + w] != pattern(p, w, j->round)) {
        j->bad++;
        break;
      }
  return NULL;
}

#define THREADS 4

static void start_threads(pthread_t *t, job_t *jobs, uint64_t *region, size_t pages, uint64_t round,
                          void *(*fn)(void *)) {
  for (int i = 0; i < THREADS; i++) {
    jobs[i] = (job_t){region, pages, (size_t)i, THREADS, round, 0};
    cr_assert_eq(pthread_create(&t[i], NULL, fn, &jobs[i]), 0);
  }
}

static size_t join_threads(pthread_t *t, job_t *jobs) {
  size_t bad = 0;
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL), bad += jobs[i].bad;
  return bad;
}

static size_t run_round(uint64_t *region, size_t pages, uint64_t round, void *(*fn)(void *)) {
  pthread_t t[THREADS];
  job_t jobs[THREADS];
  start_threads(t, jobs, region, pages, round, fn);
  return join_threads(t, jobs);
}

/* Two rounds written and each read back by four threads, under a budget of
 * an eighth of the region: most pages go through the store. */
static void pages_survive(const char *servers) {
  const size_t pages = 2048;
  must_start(url_of(servers), pages * PAGE / 8);
  uint64_t *region = upg_map(pages * PAGE, 0);
  cr_assert_not_null(region);
  for (uint64_t round = 1; round <= 2; round++) {
    run_round(region, pages, round, write_round);
    cr_assert_eq(run_round(region, pages, round, check_round), 0, "round %lu", round);
  }
  upg_stats_t s = stats_now();
  cr_assert_gt(s.fault_major, 100, "only %lu major faults: the store was hardly used",
               s.fault_major);
  cr_assert_gt(s.store_round_trips, 0);
  cr_assert_eq(s.store_seal_failures, 0);
  upg_shutdown();
}

/* ---- redis-cli, for what a test does to the store behind the run's back -----*/
static void split_host(const char *servers, char *host, size_t len, int *port) {
  cr_assert_eq(sscanf(servers, "%63[^:]:%d", host, port), 2, "servers '%s'", servers);
  (void)len;
}

static long cli_number(const char *servers, const char *fmt, ...) {
  char host[64], cmd[1024], args[768], out[64] = "";
  int port;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  split_host(servers, host, sizeof host, &port);
  snprintf(cmd, sizeof cmd, "redis-cli -h %s -p %d %s", host, port, args);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  if (fgets(out, sizeof out, p) == NULL) out[0] = '\0';
  pclose(p);
  return strtol(out, NULL, 10);
}

static int cli_run(const char *servers, const char *script) {
  char host[64], cmd[2048];
  int port;
  split_host(servers, host, sizeof host, &port);
  snprintf(cmd, sizeof cmd, "cli='redis-cli -h %s -p %d'; %s", host, port, script);
  return system(cmd);
}

/* 64 pages written under a 16-page budget, then every copy in the store
 * changed by `script` (redis-cli as $cli), then read back. */
static const char *change_script;
static void fill_change_read(void) {
  const char *servers = getenv("REDIS_SINGLE");
  if (start_store(url_of(servers), 16 * PAGE) != 0) _exit(3);
  char *p = upg_map(64 * PAGE, 0);
  for (size_t i = 0; i < 64; i++) memset(p + i * PAGE, (int)i + 1, PAGE);
  settle();
  if (cli_run(servers, change_script) != 0) _exit(4);
  volatile char sink = 0;
  for (size_t i = 0; i < 64; i++) sink += p[i * PAGE];
  _exit(5); /* the store handed back a page it should have refused */
}

static void assert_access_ends(const char *script, const char *cause) {
  change_script = script;
  assert_ends_naming(fill_change_read, cause);
}

/* ---- one server --------------------------------------------------------------*/
TestSuite(redis_single, .timeout = 120);

Test(redis_single, pages_survive_eviction_with_four_threads) {
  pages_survive(need_env("REDIS_SINGLE"));
}

Test(redis_single, a_wrong_password_fails_init_naming_the_cause_not_the_password) {
  const char *servers = need_env("REDIS_SINGLE");
  cr_assert_eq(cli_run(servers, "$cli ACL SETUSER upgtest on '>right-pw' '~*' '+@all' >/dev/null"),
               0);
  char url[256];
  snprintf(url, sizeof url, "redis://upgtest:wrong-pw@%s", servers);
  cr_assert_eq(start_store(url, 64 * PAGE), UPG_EACCES);
  cr_assert_not_null(strstr(upg_last_error(), "WRONGPASS"), "%s", upg_last_error());
  cr_assert_not_null(strstr(upg_last_error(), servers), "%s", upg_last_error());
  cr_assert_null(strstr(upg_last_error(), "wrong-pw"), "%s", upg_last_error());
  snprintf(url, sizeof url, "redis://upgtest:right-pw@%s", servers);
  must_start(url, 64 * PAGE);
  upg_shutdown();
}

Test(redis_single, the_password_may_come_from_a_file) {
  const char *servers = need_env("REDIS_SINGLE");
  cr_assert_eq(cli_run(servers, "$cli ACL SETUSER upgfile on '>file-pw' '~*' '+@all' >/dev/null"),
               0);
  char path[] = "/tmp/upager-auth-XXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  cr_assert_eq(write(fd, "upgfile:file-pw\n", 16), 16);
  close(fd);
  upg_options_t opt = {.budget = 64 * PAGE, .store = url_of(servers), .store_auth_file = path};
  int rc = upg_init(&opt);
  unlink(path);
  cr_assert_eq(rc, 0, "%s", upg_last_error());
  upg_shutdown();
}

/* A port nobody listens on now, from the kernel's ephemeral range. */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
  cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

/* A redis-server replicating servers' first, on loopback; it dies with
 * the test's process, whatever ends it. Returns once the master counts it
 * online (within 10 s). */
static pid_t start_replica(const char *servers) {
  char host[64], port[16], master_port[16];
  int mp;
  split_host(servers, host, sizeof host, &mp);
  snprintf(port, sizeof port, "%d", free_port());
  snprintf(master_port, sizeof master_port, "%d", mp);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1), dup2(null, 2);
    execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no", "--dir", "/tmp", "--replicaof", host, master_port, (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 100; i++) {
    if (cli_run(servers, "$cli info replication | grep -q 'state=online'") == 0) return pid;
    usleep(100 * 1000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  cr_assert_fail("the replica on port %s never came online", port);
  return -1;
}

static void stop_replica(pid_t pid) {
  kill(pid, SIGTERM);
  for (int i = 0; i < 50 && waitpid(pid, NULL, WNOHANG) == 0; i++) usleep(100 * 1000);
  if (kill(pid, SIGKILL) == 0) waitpid(pid, NULL, 0);
}

/* A master the map lists no replica for (here a single server, as a fresh
 * cluster's CLUSTER SLOTS lists none until gossip carries the replicas'
 * offsets) is asked for its own count: puts to a server with a replica
 * end with a WAIT, and every page comes back. */
/* 64 pages written to p under the 16-page budget and read back; whether
 * a WAIT has reached the master since its stats were reset. */
static int pages_go_out_with_a_wait(const char *servers, char *p) {
  for (size_t i = 0; i < 64; i++) memset(p + i * PAGE, (int)i + 1, PAGE);
  for (size_t i = 0; i < 64; i++) cr_assert_eq(p[i * PAGE + 7], (char)(i + 1), "page %zu", i);
  return cli_run(servers, "$cli info commandstats | grep -q '^cmdstat_wait:'") == 0;
}

Test(redis_single, puts_wait_for_the_replica_the_master_counts) {
  const char *servers = need_env("REDIS_SINGLE");
  pid_t replica = start_replica(servers);
  cr_assert_eq(cli_run(servers, "$cli config resetstat >/dev/null"), 0);
  must_start(url_of(servers), 16 * PAGE);
  char *p = upg_map(64 * PAGE, 0);
  cr_assert_not_null(p);
  int waited = pages_go_out_with_a_wait(servers, p);
  upg_shutdown();
  stop_replica(replica);
  cr_assert(waited, "no WAIT reached the master");
}

/* A replica that joins after init is counted by the keeper's next
 * reading, within a heartbeat (2 s), and the puts after it wait for it. */
Test(redis_single, a_replica_that_joins_later_is_waited_for) {
  const char *servers = need_env("REDIS_SINGLE");
  must_start(url_of(servers), 16 * PAGE);
  char *p = upg_map(64 * PAGE, 0);
  cr_assert_not_null(p);
  pid_t replica = start_replica(servers);
  usleep(2500 * 1000);
  cr_assert_eq(cli_run(servers, "$cli config resetstat >/dev/null"), 0);
  int waited = pages_go_out_with_a_wait(servers, p);
  upg_shutdown();
  stop_replica(replica);
  cr_assert(waited, "no WAIT reached the master");
}

Test(redis_single, a_server_down_at_init_fails_init_naming_it) {
  const char *down = need_env("REDIS_DOWN");
  cr_assert_eq(start_store(url_of(down), 64 * PAGE), UPG_ESTORE);
  cr_assert_not_null(strstr(upg_last_error(), down), "%s", upg_last_error());
  cr_assert_not_null(strstr(upg_last_error(), "refused"), "%s", upg_last_error());
}

Test(redis_single, a_value_altered_in_the_store_ends_the_access_naming_it) {
  need_env("REDIS_SINGLE");
  assert_access_ends("$cli --scan --pattern 'upg:*:*' | while read k; do "
                     "$cli setrange \"$k\" 100 X >/dev/null; done",
                     "fails to open: altered, swapped or replayed");
}

Test(redis_single, a_value_swapped_with_another_ends_the_access) {
  need_env("REDIS_SINGLE");
  assert_access_ends("keys=$($cli --scan --pattern 'upg:*:*'); first=$(echo \"$keys\" | head -1); "
                     "for k in $keys; do [ \"$k\" = \"$first\" ] || "
                     "$cli copy \"$first\" \"$k\" replace >/dev/null; done",
                     "fails to open");
}

Test(redis_single, a_missing_key_ends_the_access_naming_the_node) {
  const char *servers = need_env("REDIS_SINGLE");
  assert_access_ends("$cli --scan --pattern 'upg:*:*' | while read k; do "
                     "$cli del \"$k\" >/dev/null; done",
                     "no such key");
  char err[8192];
  change_script =
      "$cli --scan --pattern 'upg:*:*' | while read k; do $cli del \"$k\" >/dev/null; done";
  run_child(fill_change_read, err, sizeof err);
  cr_assert_not_null(strstr(err, servers), "stderr: %s", err);
}

static void exit_without_shutdown(void) {
  if (start_store(url_of(getenv("REDIS_SINGLE")), 16 * PAGE) != 0) _exit(3);
  char *p = upg_map(64 * PAGE, 0);
  for (size_t i = 0; i < 64; i++) memset(p + i * PAGE, 7, PAGE);
  settle();
  upg_stats_t s = UPG_STATS_INIT;
  upg_stats(&s);
  exit(s.swap_writes > 0 ? 0 : 4);
}

Test(redis_single, a_normal_exit_deletes_every_key_the_run_wrote) {
  const char *servers = need_env("REDIS_SINGLE");
  long before = cli_number(servers, "dbsize");
  char err[4096];
  int status = run_child(exit_without_shutdown, err, sizeof err);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x: %s", status, err);
  cr_assert_eq(cli_number(servers, "dbsize"), before);
}

static void crash_after_writing(void) {
  if (start_store(url_of(getenv("REDIS_SINGLE")), 16 * PAGE) != 0) _exit(3);
  char *p = upg_map(64 * PAGE, 0);
  for (size_t i = 0; i < 64; i++) memset(p + i * PAGE, 9, PAGE);
  settle();
  raise(SIGKILL);
}

/* Keys of the run whose heartbeat is "upg:<run>". */
static long run_keys(const char *servers, const char *run) {
  char script[256];
  snprintf(script, sizeof script, "--scan --pattern '%s:*' | wc -l", run);
  char host[64], cmd[512], out[32] = "";
  int port;
  split_host(servers, host, sizeof host, &port);
  snprintf(cmd, sizeof cmd, "redis-cli -h %s -p %d %s", host, port, script);
  FILE *f = popen(cmd, "r");
  if (fgets(out, sizeof out, f) == NULL) out[0] = '\0';
  pclose(f);
  return strtol(out, NULL, 10);
}

static void heartbeats(const char *servers, char runs[][32], int *n) {
  char host[64], cmd[512];
  int port;
  split_host(servers, host, sizeof host, &port);
  snprintf(cmd, sizeof cmd,
           "redis-cli -h %s -p %d --scan --pattern 'upg:*' | grep -E '^upg:[0-9a-f]{16}$'", host,
           port);
  FILE *f = popen(cmd, "r");
  *n = 0;
  while (*n < 8 && fgets(runs[*n], 32, f) != NULL) {
    runs[*n][strcspn(runs[*n], "\n")] = '\0';
    (*n)++;
  }
  pclose(f);
}

Test(redis_single, store_clean_removes_the_pages_of_dead_runs_only) {
  const char *servers = need_env("REDIS_SINGLE");
  cr_assert_eq(cli_run(servers, "$cli flushall >/dev/null"), 0);
  char err[4096], runs[8][32];
  int n;
  int status = run_child(crash_after_writing, err, sizeof err);
  cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %#x: %s", status, err);
  heartbeats(servers, runs, &n);
  cr_assert_eq(n, 1, "heartbeats of the crashed run: %d", n);
  char dead[32];
  strcpy(dead, runs[0]);
  long ttl = cli_number(servers, "ttl %s", dead);
  cr_assert(ttl > 0 && ttl <= 10, "the heartbeat's TTL is %ld", ttl);
  cr_assert_gt(run_keys(servers, dead), 0);
  /* and a page key as an earlier version of the store named it */
  cr_assert_eq(cli_run(servers, "$cli set upg:00000000deadbeef:0000002a x >/dev/null"), 0);
  cr_assert_eq(cli_number(servers, "del %s", dead), 1); /* as its TTL would */

  must_start(url_of(servers), 16 * PAGE); /* a live run beside it */
  char *p = upg_map(64 * PAGE, 0);
  for (size_t i = 0; i < 64; i++) memset(p + i * PAGE, 5, PAGE);
  settle();
  heartbeats(servers, runs, &n);
  cr_assert_eq(n, 1);
  long live_before = run_keys(servers, runs[0]);
  cr_assert_gt(live_before, 0);

  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s store clean %s >/dev/null", UPAGER_BIN, url_of(servers));
  cr_assert_eq(system(cmd), 0);
  cr_assert_eq(run_keys(servers, dead), 0);
  cr_assert_eq(run_keys(servers, "upg:00000000deadbeef"), 0);
  cr_assert_eq(run_keys(servers, runs[0]), live_before);
  for (size_t i = 0; i < 64; i++) cr_assert_eq(p[i * PAGE], 5);
  upg_shutdown();
}

/* ---- a cluster ------------------------------------------------------------*/
TestSuite(redis_cluster, .timeout = 180);

Test(redis_cluster, pages_survive_eviction_with_four_threads) {
  pages_survive(need_env("REDIS_CLUSTER"));
}

/* Pages written in order, then read back in order twice (the first pass
 * writes out what was left dirty): the second pass's pages took
 * consecutive handles, whose keys share a hash tag in groups of 64, so a
 * window of up to 64 pages is one master's batch, or two where it crosses
 * a group's end; keys hashed one by one would send each window to all
 * three masters. Round trips are counted per store read, retries aside. */
Test(redis_cluster, a_window_read_back_is_one_or_two_masters_batches) {
  const size_t pages = 4096;
  must_start(url_of(need_env("REDIS_CLUSTER")), pages * PAGE / 8);
  uint64_t *region = upg_map(pages * PAGE, 0);
  cr_assert_not_null(region);
  for (size_t p = 0; p < pages; p++) region[p * WORDS] = pattern(p, 0, 1);
  for (size_t p = 0; p < pages; p++) cr_assert_eq(region[p * WORDS], pattern(p, 0, 1));
  upg_stats_t before = stats_now();
  for (size_t p = 0; p < pages; p++)
    cr_assert_eq(region[p * WORDS], pattern(p, 0, 1), "page %zu", p);
  upg_stats_t after = stats_now();
  uint64_t reads = after.swap_reads - before.swap_reads;
  uint64_t trips = after.store_round_trips - before.store_round_trips;
  uint64_t retries = after.store_retries - before.store_retries;
  cr_assert_eq(after.swap_writes, before.swap_writes, "the second pass wrote pages out");
  cr_assert_gt(reads, 8, "only %lu store reads", (unsigned long)reads);
  cr_assert_leq(trips, 2 * reads + retries, "%lu round trips for %lu reads", (unsigned long)trips,
                (unsigned long)reads);
  upg_shutdown();
}

/* CLUSTER KEYSLOT from the first master of servers that answers (an
 * earlier test may have killed one). */
static long keyslot(const char *servers, const char *key) {
  for (const char *at = servers; at != NULL; at = strchr(at, ',') ? strchr(at, ',') + 1 : NULL) {
    char one[64];
    snprintf(one, sizeof one, "%.*s", (int)strcspn(at, ","), at);
    long slot = cli_number(one, "cluster keyslot \"%s\" 2>/dev/null || echo -1", key);
    if (slot >= 0) return slot;
  }
  cr_assert_fail("no server of %s answers", servers);
  return -1;
}

/* Keys go to the slot the cluster itself computes: plain keys, the
 * store's own, and hash tags (empty, unclosed, and a second one). */
Test(redis_cluster, key_slots_are_those_the_cluster_computes) {
  const char *servers = need_env("REDIS_CLUSTER");
  static const char *const keys[] = {"foo",
                                     "123456789",
                                     "upg:0123456789abcdef:{00000000}2a",
                                     "upg:fedcba9876543210:{00003fff}3f",
                                     "{user1000}.following",
                                     "{user1000}.followers",
                                     "foo{}{bar}",
                                     "foo{{bar}}zap",
                                     "foo{bar",
                                     "{}"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    cr_assert_eq(upg__redis_slot(keys[i], strlen(keys[i])), (unsigned)keyslot(servers, keys[i]),
                 "key %s", keys[i]);
}

/* The pid of the first master's server, from with_servers.sh's list. */
static pid_t first_master(const char *servers, int *port) {
  FILE *f = fopen(need_env("REDIS_PIDS"), "r");
  int pid = 0;
  cr_assert_not_null(f);
  cr_assert_eq(sscanf(servers, "%*[^:]:%d", port), 1);
  int p, q;
  while (fscanf(f, "%d %d", &p, &q) == 2)
    if (p == *port) pid = q;
  fclose(f);
  cr_assert_gt(pid, 0);
  return pid;
}

Test(redis_cluster, a_master_killed_mid_run_loses_no_page) {
  const char *servers = need_env("REDIS_CLUSTER");
  const size_t pages = 2048;
  int port;
  pid_t victim = first_master(servers, &port);
  must_start(url_of(servers), pages * PAGE / 8);
  uint64_t *region = upg_map(pages * PAGE, 0);
  run_round(region, pages, 1, write_round);
  pthread_t t[THREADS];
  job_t jobs[THREADS];
  start_threads(t, jobs, region, pages, 2, write_round);
  usleep(100 * 1000);
  cr_assert_eq(kill(victim, SIGKILL), 0);
  join_threads(t, jobs);
  size_t lost = run_round(region, pages, 2, check_round);
  fprintf(stderr, "pages lost: %zu of %zu (master on port %d killed)\n", lost, pages, port);
  cr_assert_eq(lost, 0);
  upg_stats_t s = stats_now();
  cr_assert_gt(s.store_failover_waits, 0, "the killed master was never waited for");
  upg_shutdown();
}

/* Moves 200 slots from the second master to the third with redis-cli
 * (the first may be the one another test killed), while four threads
 * page: the store follows MOVED and ASK. */
Test(redis_cluster, slots_moved_mid_run_are_followed_and_lose_no_page) {
  const char *servers = need_env("REDIS_CLUSTER");
  const size_t pages = 2048;
  char source[64], dest[64], script[1024];
  cr_assert_eq(sscanf(servers, "%*[^,],%63[^,],%63[^,]", source, dest), 2);
  must_start(url_of(servers), pages * PAGE / 8);
  uint64_t *region = upg_map(pages * PAGE, 0);
  run_round(region, pages, 1, write_round);
  pthread_t t[THREADS];
  job_t jobs[THREADS];
  start_threads(t, jobs, region, pages, 2, write_round);
  snprintf(
      script, sizeof script,
      "from=$(redis-cli -h %.*s -p %s cluster myid); to=$(redis-cli -h %.*s -p %s cluster myid); "
      "redis-cli --cluster reshard %s --cluster-from $from --cluster-to $to "
      "--cluster-slots 200 --cluster-yes >/dev/null 2>&1",
      (int)(strchr(source, ':') - source), source, strchr(source, ':') + 1,
      (int)(strchr(dest, ':') - dest), dest, strchr(dest, ':') + 1, source);
  cr_assert_eq(system(script), 0);
  join_threads(t, jobs);
  cr_assert_eq(run_round(region, pages, 2, check_round), 0);
  cr_assert_gt(stats_now().store_redirects, 0, "no redirect was followed");
  upg_shutdown();
}

/* ---- sealing the swap file -------------------------------------------------*/
TestSuite(sealed, .timeout = 60);

Test(sealed, an_encrypted_swap_file_returns_every_page) {
  upg_options_t opt = {.budget = 16 * PAGE, .encrypt = 1};
  cr_assert_eq(upg_init(&opt), 0, "%s", upg_last_error());
  uint64_t *region = upg_map(256 * PAGE, 0);
  cr_assert_eq(run_round(region, 256, 1, write_round), 0);
  cr_assert_eq(run_round(region, 256, 1, check_round), 0);
  cr_assert_gt(stats_now().fault_major, 0);
  upg_shutdown();
}

static void read_back_corrupted(void) {
  setenv("UPAGER_STORE", "faulty", 1);
  upg_options_t opt = {.budget = 16 * PAGE, .encrypt = 1};
  if (upg_init(&opt) != 0) _exit(3);
  char *p = upg_map(64 * PAGE, 0);
  for (size_t i = 0; i < 64; i++) memset(p + i * PAGE, 1, PAGE);
  upg__faulty.corrupt_gets = 1;
  volatile char sink = 0;
  for (size_t i = 0; i < 64; i++) sink += p[i * PAGE];
  _exit(5);
}

Test(sealed, a_page_altered_in_the_swap_file_ends_the_access_naming_it) {
  assert_ends_naming(read_back_corrupted, "fails to open: altered, swapped or replayed");
}
