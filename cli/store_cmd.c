/* store_cmd.c: `upager store clean URL`: removes from a Redis store (a
 * cluster or one server) the pages of runs that died without cleaning up:
 * those whose heartbeat key "upg:<run>" has expired. A live run refreshes
 * its heartbeat every few seconds, so its pages stay. Ordinary code, so
 * it speaks to Redis through hiredis; the credentials come from the URL
 * or UPAGER_STORE_AUTH_FILE and are never printed. */
#include <ctype.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "internal.h"

#define MAX_MASTERS 64
#define MAX_RUNS 4096

typedef struct master {
  char host[64];
  int port;
  redisContext *c;
} master_t;

typedef struct cleaner {
  char user[128], pass[256];
  master_t masters[MAX_MASTERS];
  int nmasters;
  unsigned short slot_master[UPG__REDIS_SLOTS];
  struct {
    char run[17];
    int alive;
  } runs[MAX_RUNS];
  int nruns;
  unsigned long removed, kept;
} cleaner_t;

static int split_credentials(cleaner_t *cl, const char *text, size_t len) {
  const char *colon = memchr(text, ':', len);
  size_t user = colon ? (size_t)(colon - text) : 0, pass = colon ? len - user - 1 : len;
  if (user >= sizeof cl->user || pass >= sizeof cl->pass) return -1;
  memcpy(cl->user, text, user), cl->user[user] = '\0';
  memcpy(cl->pass, colon ? colon + 1 : text, pass), cl->pass[pass] = '\0';
  return 0;
}

static redisContext *connect_node(cleaner_t *cl, const char *host, int port) {
  struct timeval tv = {2, 0};
  redisContext *c = redisConnectWithTimeout(host, port, tv);
  if (c == NULL || c->err) {
    fprintf(stderr, "upager store: cannot connect to %s:%d: %s\n", host, port,
            c ? c->errstr : "out of memory");
    if (c) redisFree(c);
    return NULL;
  }
  if (*cl->pass) {
    redisReply *r = *cl->user ? redisCommand(c, "AUTH %s %s", cl->user, cl->pass)
                              : redisCommand(c, "AUTH %s", cl->pass);
    int ok = r != NULL && r->type != REDIS_REPLY_ERROR;
    if (!ok)
      fprintf(stderr, "upager store: %s:%d refused the credentials: %s\n", host, port,
              r ? r->str : c->errstr);
    freeReplyObject(r);
    if (!ok) return redisFree(c), NULL;
  }
  return c;
}

static int add_master(cleaner_t *cl, const char *host, int port) {
  for (int i = 0; i < cl->nmasters; i++)
    if (cl->masters[i].port == port && strcmp(cl->masters[i].host, host) == 0) return i;
  if (cl->nmasters == MAX_MASTERS) return -1;
  master_t *m = &cl->masters[cl->nmasters];
  snprintf(m->host, sizeof m->host, "%s", host);
  m->port = port;
  if ((m->c = connect_node(cl, host, port)) == NULL) return -1;
  return cl->nmasters++;
}

/* The masters and who owns which slot; a single server owns them all. */
static int read_map(cleaner_t *cl, redisContext *seed, const char *host, int port) {
  redisReply *r = redisCommand(seed, "CLUSTER SLOTS");
  if (r == NULL) return fprintf(stderr, "upager store: %s\n", seed->errstr), -1;
  int rc = 0;
  if (r->type == REDIS_REPLY_ERROR) {
    int m = add_master(cl, host, port);
    for (int s = 0; s < UPG__REDIS_SLOTS; s++) cl->slot_master[s] = (unsigned short)m;
    rc = m < 0 ? -1 : 0;
  }
  for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && rc == 0; i++) {
    redisReply *range = r->element[i];
    if (range->elements < 3 || range->element[2]->elements < 2) continue;
    int m = add_master(cl, range->element[2]->element[0]->str,
                       (int)range->element[2]->element[1]->integer);
    if (m < 0) rc = -1;
    for (long long s = range->element[0]->integer; m >= 0 && s <= range->element[1]->integer; s++)
      cl->slot_master[s] = (unsigned short)m;
  }
  freeReplyObject(r);
  return rc;
}

/* Whether the run's heartbeat is there, asked of the master of its slot. */
static int run_alive(cleaner_t *cl, const char *run) {
  for (int i = 0; i < cl->nruns; i++)
    if (strcmp(cl->runs[i].run, run) == 0) return cl->runs[i].alive;
  char key[24];
  snprintf(key, sizeof key, "upg:%s", run);
  master_t *m = &cl->masters[cl->slot_master[upg__redis_slot(key, strlen(key))]];
  redisReply *r = redisCommand(m->c, "EXISTS %s", key);
  int alive = r == NULL || r->type != REDIS_REPLY_INTEGER || r->integer != 0; /* unsure: keep */
  freeReplyObject(r);
  if (cl->nruns < MAX_RUNS) {
    snprintf(cl->runs[cl->nruns].run, sizeof cl->runs[0].run, "%s", run);
    cl->runs[cl->nruns++].alive = alive;
  }
  return alive;
}

/* "upg:<run>:..." with a run of 16 hex digits: a page key of any version
 * of the store, which has changed what follows the run. */
static int is_page_key(const char *key) {
  if (strlen(key) <= 21 || key[20] != ':') return 0;
  for (int i = 4; i < 20; i++)
    if (!isxdigit((unsigned char)key[i])) return 0;
  return 1;
}

/* Every page key of the master, of runs whose heartbeat is gone, deleted. */
static int clean_master(cleaner_t *cl, master_t *m) {
  char cursor[32] = "0";
  do {
    redisReply *r = redisCommand(m->c, "SCAN %s MATCH upg:*:* COUNT 1000", cursor);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      fprintf(stderr, "upager store: SCAN at %s:%d failed: %s\n", m->host, m->port,
              r ? (r->str ? r->str : "unexpected reply") : m->c->errstr);
      freeReplyObject(r);
      return -1;
    }
    snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
    for (size_t i = 0; i < r->element[1]->elements; i++) {
      const char *key = r->element[1]->element[i]->str;
      char run[17];
      if (!is_page_key(key)) continue;
      memcpy(run, key + 4, 16), run[16] = '\0';
      if (run_alive(cl, run)) {
        cl->kept++;
        continue;
      }
      freeReplyObject(redisCommand(m->c, "UNLINK %s", key));
      cl->removed++;
    }
    freeReplyObject(r);
  } while (strcmp(cursor, "0") != 0);
  return 0;
}

static int clean(const char *url) {
  static cleaner_t cl;
  const char *p = url + strlen("redis://"), *at = strrchr(p, '@'),
             *file = getenv("UPAGER_STORE_AUTH_FILE");
  if (at != NULL && split_credentials(&cl, p, (size_t)(at - p)) != 0) return 2;
  if (at != NULL) p = at + 1;
  if (file != NULL && *file) {
    char line[512] = "";
    FILE *f = fopen(file, "re");
    if (f == NULL || fgets(line, sizeof line, f) == NULL) {
      fprintf(stderr, "upager store: UPAGER_STORE_AUTH_FILE='%s' cannot be read\n", file);
      if (f) fclose(f);
      return 1;
    }
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    split_credentials(&cl, line, strlen(line));
  }
  char host[64];
  int port;
  if (sscanf(p, "%63[^:,]:%d", host, &port) != 2) {
    fprintf(stderr, "upager store: the URL is not redis://[user:password@]host:port[,...]\n");
    return 2;
  }
  redisContext *seed = connect_node(&cl, host, port);
  if (seed == NULL || read_map(&cl, seed, host, port) != 0) return 1;
  redisFree(seed);
  int rc = 0;
  for (int i = 0; i < cl.nmasters; i++) rc |= clean_master(&cl, &cl.masters[i]);
  int dead = 0;
  for (int i = 0; i < cl.nruns; i++) dead += !cl.runs[i].alive;
  printf("removed %lu pages of %d dead runs; kept %lu pages of %d live runs\n", cl.removed, dead,
         cl.kept, cl.nruns - dead);
  for (int i = 0; i < cl.nmasters; i++) redisFree(cl.masters[i].c);
  return rc ? 1 : 0;
}

int upg_cli_store(int argc, char **argv) {
  if (argc != 3 || strcmp(argv[1], "clean") != 0 || strncmp(argv[2], "redis://", 8) != 0) {
    fprintf(stderr, "usage: upager store clean redis://[user:password@]host:port[,...]\n");
    return 2;
  }
  return clean(argv[2]);
}
