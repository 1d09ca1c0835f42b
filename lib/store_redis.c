/* store_redis.c: UPAGER_STORE=redis://[user:password@]host:port[,...], far
 * memory on a Redis Cluster or a single Redis server. Opened under the
 * sealing layer (store_sealed.c): every value it writes is a sealed page.
 *
 * Keys: "upg:<run>:{<group>}<index>", the run a random 64-bit id, the
 * group and index the store's own handle (slots.c) split, 64 handles a
 * group. A group's keys share a hash tag and so a node: a window's run of
 * handles is one pipelined batch to one master, with one WAIT, and
 * consecutive groups spread over the masters. The run's
 * heartbeat "upg:<run>" has a TTL the keeper thread refreshes; `upager
 * store clean` removes the pages of runs whose heartbeat is gone.
 *
 * Routing: the slot map comes from CLUSTER SLOTS (a single server answers
 * it with an error, and then owns every slot); MOVED updates a slot and ASK
 * redirects one command, as the cluster specification says. A call sends
 * its commands to every node it needs, pipelined, then reads the replies:
 * one round trip per node, in parallel.
 *
 * Durability: a put counts only when its master and, where the master has
 * one (by the map, else by its own ROLE), a replica have it (WAIT 1 after
 * the SETs); a page whose put did not count is not stored and stays
 * resident. The keeper rereads the map with each heartbeat, so a replica
 * that joins is waited for within seconds. Calls retry across
 * a failover (connection refused, CLUSTERDOWN, TRYAGAIN...) for
 * UPAGER_STORE_TIMEOUT, rereading the map; a get that still fails, or
 * finds no value, ends with a message naming the key, the node and the
 * cause.
 *
 * Everything here may run in the fault handler: the protocol is resp.c's,
 * memory comes from upg__os_alloc, locks are the store's own and held only
 * by store code, which never touches paged memory. Released handles are
 * deleted by the keeper thread in batches, off the fault path. */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include "internal.h"

#define MAX_NODES 64
/* Connections to a node: calls to it at once (faults, the writer, the
 * keeper); the next waits for one to be free. */
#define POOL 4
/* One connect, or one reply: a node silent this long is taken for down. */
#define IO_TIMEOUT_MS 2000
/* Between attempts while a failover goes on. */
#define RETRY_PAUSE_NS (50 * 1000 * 1000ull)
#define HEARTBEAT_TTL_S 10
#define HEARTBEAT_EVERY_NS (2 * 1000 * 1000 * 1000ull)
#define KEEPER_PAUSE_NS (20 * 1000 * 1000ull)
#define QUEUE_MAX 65536
#define KEY_MAX 48
/* Handles share a hash tag in groups of this many bits' worth: a window
 * (64 pages at the default readahead) is one node's batch. */
#define GROUP_BITS 6
#define PAGE_KEY_LEN 33 /* "upg:<run>:{<group>}<index>" */

typedef struct node {
  uint32_t ip;
  uint16_t port;
  char name[24]; /* "a.b.c.d:port", for messages */
  _Atomic int replicas;
  _Atomic int busy[POOL];
  upg__resp_t *conn[POOL];
} node_t;

typedef struct redis_store {
  upg__store_t base;
  size_t unit;
  uint64_t timeout_ns;
  pid_t owner; /* a child of fork() closes without touching the run's keys */
  char run[17];
  char user[128], pass[256];
  pthread_mutex_t lock; /* the handles and the node table's growth */
  upg__slots_t slots;
  node_t nodes[MAX_NODES];
  _Atomic int nnodes;
  _Atomic uint8_t slot_node[UPG__REDIS_SLOTS];
  _Atomic int refreshing;
  pthread_mutex_t queue_lock; /* handles released, awaiting their DEL */
  upg__handle_t *queue;
  size_t queued;
  pthread_t keeper;
  int keeper_running;
  _Atomic int stop;
  _Atomic int exiting; /* the exit hook deletes the run: see park() */
  pthread_t exiter;
} redis_store_t;

enum { OP_GET, OP_SET, OP_DEL, OP_BEAT };
static const char *const op_names[] = {"GET", "SET", "DEL", "SET"};

typedef struct op {
  void *page; /* GET's destination, SET's source */
  upg__handle_t h;
  signed char ask;       /* the node ASK sent it to, for its next try */
  unsigned char state;   /* PENDING, WRITTEN (awaits WAIT), DONE */
  signed char sent_to;   /* the node this round sent it to, or -1 */
  unsigned char tainted; /* sent on a connection that broke before its reply:
                            the node may still run it, late */
  uint16_t slot;         /* the key's, computed once a call */
  char key[KEY_MAX];
  size_t key_len;
} op_t;
enum { PENDING, WRITTEN, DONE };

/* What went wrong last, for the message: the node and the cause. */
typedef struct failure {
  int node;
  int hard; /* no retry helps: a missing key, a value of the wrong size */
  const op_t *op;
  char cause[128];
} failure_t;

/* ---- text without stdio (signal context) --------------------------------*/
static char *put_text(char *at, const char *end, const char *text, size_t len) {
  while (len-- > 0 && *text && at < end) *at++ = *text++;
  return at;
}

static void set_cause(failure_t *f, int node, const char *text, size_t len) {
  char *end = put_text(f->cause, f->cause + sizeof f->cause - 1, text, len);
  *end = '\0';
  f->node = node;
}

static void set_errno_cause(failure_t *f, int node, int err) {
  const char *text = err == -ECONNRESET  ? "connection closed by the node"
                     : err == -ETIMEDOUT ? "no answer within the I/O timeout"
                     : err == -EPROTO    ? "reply not in the Redis protocol"
                                         : strerrordesc_np(-err);
  set_cause(f, node, text, 127);
}

static void hex(char *at, uint64_t v, int digits) {
  for (int i = digits - 1; i >= 0; i--, v >>= 4) at[i] = "0123456789abcdef"[v & 15];
}

static void page_key(const redis_store_t *rs, upg__handle_t h, op_t *op) {
  memcpy(op->key, "upg:", 4);
  memcpy(op->key + 4, rs->run, 16);
  op->key[20] = ':', op->key[21] = '{';
  hex(op->key + 22, h >> GROUP_BITS, 8);
  op->key[30] = '}';
  hex(op->key + 31, h & ((1u << GROUP_BITS) - 1), 2);
  op->key_len = PAGE_KEY_LEN;
}

/* ---- nodes and the slot map ---------------------------------------------*/
static int parse_ipv4(const char *p, size_t len, uint32_t *ip) {
  uint32_t v = 0, part = 0;
  int dots = 0, digits = 0;
  for (size_t i = 0; i < len; i++) {
    if (p[i] == '.' && digits > 0 && dots < 3) {
      v = v << 8 | part, part = 0, digits = 0, dots++;
    } else if (p[i] >= '0' && p[i] <= '9' && digits < 3) {
      part = part * 10 + (uint32_t)(p[i] - '0'), digits++;
      if (part > 255) return -EINVAL;
    } else {
      return -EINVAL;
    }
  }
  if (dots != 3 || digits == 0) return -EINVAL;
  *ip = v << 8 | part;
  return 0;
}

static void node_name(node_t *n) {
  char *at = n->name, *end = n->name + sizeof n->name - 1, digits[8];
  for (int shift = 24; shift >= 0; shift -= 8) {
    unsigned v = (n->ip >> shift) & 255;
    int k = 0;
    do digits[k++] = (char)('0' + v % 10), v /= 10;
    while (v > 0);
    while (k > 0 && at < end) *at++ = digits[--k];
    if (shift > 0) *at++ = '.';
  }
  *at++ = ':';
  unsigned v = n->port;
  int k = 0;
  do digits[k++] = (char)('0' + v % 10), v /= 10;
  while (v > 0);
  while (k > 0 && at < end) *at++ = digits[--k];
  *at = '\0';
}

/* The node at ip:port, added if new; -1 when the table is full. */
static int node_index(redis_store_t *rs, uint32_t ip, uint16_t port) {
  int n = atomic_load(&rs->nnodes);
  for (int i = 0; i < n; i++)
    if (rs->nodes[i].ip == ip && rs->nodes[i].port == port) return i;
  pthread_mutex_lock(&rs->lock);
  int i;
  for (i = 0; i < atomic_load(&rs->nnodes); i++)
    if (rs->nodes[i].ip == ip && rs->nodes[i].port == port) break;
  if (i == atomic_load(&rs->nnodes) && i < MAX_NODES) {
    rs->nodes[i].ip = ip, rs->nodes[i].port = port;
    node_name(&rs->nodes[i]);
    atomic_store(&rs->nnodes, i + 1);
  }
  pthread_mutex_unlock(&rs->lock);
  return i < MAX_NODES ? i : -1;
}

/* "ip:port" as MOVED and ASK give it. */
static int node_of_address(redis_store_t *rs, const char *p, size_t len) {
  size_t colon = len;
  while (colon > 0 && p[colon - 1] != ':') colon--;
  if (colon == 0) return -1;
  uint32_t ip, port = 0;
  if (parse_ipv4(p, colon - 1, &ip) != 0) return -1;
  for (size_t i = colon; i < len; i++) port = port * 10 + (uint32_t)(p[i] - '0');
  return port > 0 && port < 65536 ? node_index(rs, ip, (uint16_t)port) : -1;
}

/* ---- connections ----------------------------------------------------------*/
static int authenticate(redis_store_t *rs, upg__resp_t *c, failure_t *f, int node) {
  if (rs->pass[0] == '\0') return 0;
  upg__resp_reply_t r;
  int rc = upg__resp_command(c, rs->user[0] ? 3 : 2);
  if (rc == 0) rc = upg__resp_arg_text(c, "AUTH");
  if (rc == 0 && rs->user[0]) rc = upg__resp_arg_text(c, rs->user);
  if (rc == 0) rc = upg__resp_arg_text(c, rs->pass);
  if (rc == 0) rc = upg__resp_send(c);
  if (rc == 0) rc = upg__resp_read(c, &r);
  if (rc != 0) return set_errno_cause(f, node, rc), rc;
  if (r.type == '+') return 0;
  set_cause(f, node, r.text, r.len);
  return UPG_EACCES;
}

/* A connection of the node's pool, connected, for this thread alone. */
static upg__resp_t *take_conn(redis_store_t *rs, int node, int *slot, failure_t *f, int *rc) {
  node_t *n = &rs->nodes[node];
  for (int i = 0;; i = (i + 1) % POOL) {
    if (atomic_exchange(&n->busy[i], 1)) {
      if (i == POOL - 1) upg__os_yield();
      continue;
    }
    *slot = i;
    break;
  }
  upg__resp_t *c = n->conn[*slot];
  if (c == NULL) {
    if ((c = upg__os_alloc(sizeof *c)) == NULL) {
      atomic_store(&n->busy[*slot], 0);
      *rc = -ENOMEM;
      return NULL;
    }
    c->fd = -1;
    n->conn[*slot] = c;
  }
  if (c->fd > 0) return c;
  *rc = upg__resp_connect(c, n->ip, n->port, IO_TIMEOUT_MS);
  if (*rc != 0) set_errno_cause(f, node, *rc);
  else if ((*rc = authenticate(rs, c, f, node)) != 0) upg__resp_close(c);
  if (*rc == 0) return c;
  atomic_store(&n->busy[*slot], 0);
  return NULL;
}

static void give_conn(redis_store_t *rs, int node, int slot) {
  atomic_store(&rs->nodes[node].busy[slot], 0);
}

/* ---- CLUSTER SLOTS ---------------------------------------------------------*/
static int read_node_entry(redis_store_t *rs, upg__resp_t *c, int *node) {
  upg__resp_reply_t r, part;
  char ip[64];
  int rc = upg__resp_read(c, &r);
  if (rc != 0 || r.type != '*' || r.number < 2) return rc ? rc : -EPROTO;
  if ((rc = upg__resp_read(c, &part)) != 0 || (rc = upg__resp_read_text(c, &part, ip, sizeof ip)))
    return rc;
  if ((rc = upg__resp_read(c, &part)) != 0 || part.type != ':') return rc ? rc : -EPROTO;
  uint32_t addr;
  *node = parse_ipv4(ip, strlen(ip), &addr) == 0 && part.number > 0 && part.number < 65536
              ? node_index(rs, addr, (uint16_t)part.number)
              : -1;
  for (int64_t i = 2; i < r.number; i++)
    if ((rc = upg__resp_read(c, &part)) != 0 || (rc = upg__resp_skip(c, &part)) != 0) return rc;
  return 0;
}

/* One range: start, end, the master, its replicas (their count into
 * listed[master]). */
static int read_range(redis_store_t *rs, upg__resp_t *c, int *listed) {
  upg__resp_reply_t r, lo, hi;
  int rc = upg__resp_read(c, &r);
  if (rc == 0 && (r.type != '*' || r.number < 3)) rc = -EPROTO;
  if (rc == 0) rc = upg__resp_read(c, &lo);
  if (rc == 0) rc = upg__resp_read(c, &hi);
  if (rc != 0) return rc;
  int master = -1, replica;
  if ((rc = read_node_entry(rs, c, &master)) != 0) return rc;
  for (int64_t i = 3; i < r.number; i++)
    if ((rc = read_node_entry(rs, c, &replica)) != 0) return rc;
  if (master < 0 || lo.number < 0 || hi.number >= UPG__REDIS_SLOTS) return 0;
  listed[master] = (int)(r.number - 3);
  for (int64_t s = lo.number; s <= hi.number; s++) atomic_store(&rs->slot_node[s], master);
  return 0;
}

/* The replicas a master has connected, by its own ROLE; -1 when it does
 * not answer as a master. */
static int role_replicas(redis_store_t *rs, int node) {
  failure_t ignored = {.node = -1};
  int slot, rc, n = -1;
  upg__resp_t *c = take_conn(rs, node, &slot, &ignored, &rc);
  if (c == NULL) return -1;
  upg__resp_reply_t r, part;
  char role[8] = "";
  rc = upg__resp_command(c, 1) ?: upg__resp_arg_text(c, "ROLE") ?: upg__resp_send(c);
  rc = rc ?: upg__resp_read(c, &r);
  UPG__COUNT(store_round_trips, 1);
  for (int64_t i = 0; rc == 0 && r.type == '*' && i < r.number; i++) {
    rc = upg__resp_read(c, &part);
    if (rc == 0 && i == 0) rc = upg__resp_read_text(c, &part, role, sizeof role);
    else if (rc == 0 && i == 2 && part.type == '*' && strcmp(role, "master") == 0)
      n = (int)part.number;
    if (rc == 0 && i > 0) rc = upg__resp_skip(c, &part);
  }
  if (rc == 0 && r.type != '*') rc = upg__resp_skip(c, &r);
  if (rc != 0) upg__resp_close(c), n = -1;
  give_conn(rs, node, slot);
  return n;
}

/* Each master's replicas: as the map lists them, and where it lists none,
 * as the master itself counts them (ROLE). The map misses some: CLUSTER
 * SLOTS lists a replica only once the node asked has heard, by gossip,
 * that the replica's replication offset is above 0, so on a cluster
 * nothing was written to yet it lists none, and the store's first puts
 * would count without a replica's copy. A single server is asked too: a
 * replica of it is waited for as well. */
static void settle_replicas(redis_store_t *rs, const int *listed) {
  int nodes = atomic_load(&rs->nnodes);
  unsigned char master[MAX_NODES] = {0};
  for (int s = 0; s < UPG__REDIS_SLOTS; s++) master[atomic_load(&rs->slot_node[s])] = 1;
  for (int i = 0; i < nodes; i++) {
    if (!master[i]) continue;
    int n = listed[i] > 0 ? listed[i] : role_replicas(rs, i);
    atomic_store(&rs->nodes[i].replicas, n > 0 ? n : 0);
  }
}

/* Reads the map from the node; 1 when it is no cluster (a single server),
 * which then owns every slot. */
static int read_map(redis_store_t *rs, int node, failure_t *f) {
  int slot, rc, listed[MAX_NODES];
  for (int i = 0; i < MAX_NODES; i++) listed[i] = -1;
  upg__resp_t *c = take_conn(rs, node, &slot, f, &rc);
  if (c == NULL) return rc;
  upg__resp_reply_t r;
  rc = upg__resp_command(c, 2);
  if (rc == 0) rc = upg__resp_arg_text(c, "CLUSTER");
  if (rc == 0) rc = upg__resp_arg_text(c, "SLOTS");
  if (rc == 0) rc = upg__resp_send(c);
  if (rc == 0) rc = upg__resp_read(c, &r);
  UPG__COUNT(store_round_trips, 1);
  if (rc == 0 && r.type == '-') {
    set_cause(f, node, r.text, r.len);
    rc = memmem(r.text, r.len, "cluster support disabled", 24) != NULL ? 1
         : r.len >= 6 && memcmp(r.text, "NOAUTH", 6) == 0              ? UPG_EACCES
                                                                       : UPG_ESTORE;
  } else if (rc == 0 && r.type != '*') {
    rc = -EPROTO;
  }
  for (int64_t i = 0; rc == 0 && i < r.number; i++) rc = read_range(rs, c, listed);
  if (rc < 0) {
    if (rc != UPG_ESTORE && rc != UPG_EACCES) set_errno_cause(f, node, rc);
    upg__resp_close(c);
  }
  give_conn(rs, node, slot);
  if (rc == 1)
    for (int s = 0; s < UPG__REDIS_SLOTS; s++) atomic_store(&rs->slot_node[s], node);
  if (rc == 0 || rc == 1) settle_replicas(rs, listed);
  return rc;
}

/* After a failure, and with each heartbeat: the map, and the masters'
 * replicas, from the first node that answers (a single server too). One
 * thread at a time; the others retry with the map they have. */
static void refresh_map(redis_store_t *rs) {
  if (atomic_exchange(&rs->refreshing, 1)) return;
  failure_t ignored;
  for (int i = 0; i < atomic_load(&rs->nnodes); i++) {
    int rc = read_map(rs, i, &ignored);
    if (rc == 0 || rc == 1) break;
  }
  atomic_store(&rs->refreshing, 0);
}

/* ---- a round: every pending op sent to its node, then every reply read ---*/
static int target(const redis_store_t *rs, const op_t *op) {
  if (op->ask >= 0) return op->ask;
  return atomic_load(&rs->slot_node[op->slot]);
}

static int queue_op(redis_store_t *rs, upg__resp_t *c, int kind, const op_t *op) {
  int rc = 0;
  if (op->ask >= 0) rc = upg__resp_command(c, 1) ?: upg__resp_arg_text(c, "ASKING");
  switch (kind) {
    case OP_GET:
    case OP_DEL:
      rc = rc ?: upg__resp_command(c, 2) ?: upg__resp_arg_text(c, op_names[kind]);
      return rc ?: upg__resp_arg(c, op->key, op->key_len);
    case OP_SET:
      rc = rc ?: upg__resp_command(c, 3) ?: upg__resp_arg_text(c, "SET");
      rc = rc ?: upg__resp_arg(c, op->key, op->key_len);
      return rc ?: upg__resp_arg(c, op->page, rs->unit);
    default: /* OP_BEAT: the heartbeat, this process's id with its TTL */
      rc = rc ?: upg__resp_command(c, 5) ?: upg__resp_arg_text(c, "SET");
      rc = rc ?: upg__resp_arg(c, op->key, op->key_len);
      rc = rc ?: upg__resp_arg_number(c, (uint64_t)upg__os_getpid());
      return rc ?: upg__resp_arg_text(c, "EX") ?: upg__resp_arg_number(c, HEARTBEAT_TTL_S);
  }
}

/* Queues the node's pending ops (as many as fit) and sends them. */
static int send_node(redis_store_t *rs, upg__resp_t *c, int node, int kind, op_t *ops, int n,
                     int *waits) {
  int any = 0, rc = 0;
  for (int i = 0; i < n && rc == 0; i++) {
    if (ops[i].state != PENDING || target(rs, &ops[i]) != node) continue;
    if (!upg__resp_room(c, 256)) break;
    if ((rc = queue_op(rs, c, kind, &ops[i])) == 0) ops[i].sent_to = (signed char)node, any = 1;
  }
  *waits = (kind == OP_SET || kind == OP_BEAT) && any && atomic_load(&rs->nodes[node].replicas) > 0;
  if (rc == 0 && *waits) {
    rc = upg__resp_command(c, 3) ?: upg__resp_arg_text(c, "WAIT");
    rc = rc ?: upg__resp_arg_number(c, 1) ?: upg__resp_arg_number(c, IO_TIMEOUT_MS);
  }
  return rc != 0 ? rc : upg__resp_send(c);
}

/* A '-' reply: a redirect is followed next round; anything else is the
 * node's failure, which a later round may outlive. */
static void read_error(redis_store_t *rs, const upg__resp_reply_t *r, int node, op_t *op,
                       failure_t *f) {
  int moved = r->len > 6 && memcmp(r->text, "MOVED ", 6) == 0;
  int ask = r->len > 4 && memcmp(r->text, "ASK ", 4) == 0;
  if (moved || ask) {
    const char *p = r->text + (moved ? 6 : 4), *end = r->text + r->len;
    unsigned slot = 0;
    while (p < end && *p >= '0' && *p <= '9') slot = slot * 10 + (unsigned)(*p++ - '0');
    int to = p < end ? node_of_address(rs, p + 1, (size_t)(end - p - 1)) : -1;
    if (to >= 0 && slot < UPG__REDIS_SLOTS) {
      UPG__COUNT(store_redirects, 1);
      if (moved) atomic_store(&rs->slot_node[slot], to);
      else op->ask = (signed char)to;
      return;
    }
  }
  set_cause(f, node, r->text, r->len);
  f->op = op;
}

static int read_value(redis_store_t *rs, upg__resp_t *c, const upg__resp_reply_t *r, int node,
                      op_t *op, failure_t *f) {
  if (r->number == (int64_t)rs->unit) {
    int rc = upg__resp_read_bulk(c, op->page, rs->unit);
    if (rc == 0) op->state = DONE;
    return rc;
  }
  f->hard = 1, f->op = op;
  set_cause(f, node,
            r->number < 0 ? "no such key: the page's copy is missing"
                          : "the value is not a page: wrong size",
            127);
  return r->number > 0 ? upg__resp_skip(c, r) : 0;
}

/* Reads one op's replies (ASKING's first when it was asked). */
static int read_op(redis_store_t *rs, upg__resp_t *c, int node, int kind, op_t *op, failure_t *f) {
  upg__resp_reply_t r;
  int rc;
  if (op->ask >= 0) {
    if ((rc = upg__resp_read(c, &r)) != 0) return rc;
    op->ask = -1;
  }
  if ((rc = upg__resp_read(c, &r)) != 0) return rc;
  if (r.type == '-') return read_error(rs, &r, node, op, f), 0;
  if (kind == OP_GET) return r.type == '$' ? read_value(rs, c, &r, node, op, f) : -EPROTO;
  if (r.type == ':' || r.type == '+') op->state = kind == OP_DEL ? DONE : WRITTEN;
  return upg__resp_skip(c, &r);
}

static int read_node(redis_store_t *rs, upg__resp_t *c, int node, int kind, op_t *ops, int n,
                     int waits, failure_t *f) {
  int rc = 0;
  for (int i = 0; i < n && rc == 0; i++)
    if (ops[i].sent_to == node) rc = read_op(rs, c, node, kind, &ops[i], f);
  for (int i = 0; rc != 0 && i < n; i++) /* their replies are lost: they may still run */
    if (ops[i].sent_to == node && ops[i].state != DONE) ops[i].tainted = 1;
  upg__resp_reply_t r;
  if (rc == 0 && waits) rc = upg__resp_read(c, &r);
  if (rc != 0 && waits) /* the WAIT's answer is lost: the SETs may be anywhere */
    for (int i = 0; i < n; i++)
      if (ops[i].sent_to == node && ops[i].state == WRITTEN) ops[i].tainted = 1;
  int durable = rc == 0 && (!waits || (r.type == ':' && r.number >= 1));
  if (rc == 0 && !durable) set_cause(f, node, "WAIT: no replica acknowledged the writes", 127);
  for (int i = 0; i < n; i++) {
    if (ops[i].sent_to != node) continue;
    ops[i].sent_to = -1;
    if (ops[i].state == WRITTEN) ops[i].state = durable ? DONE : PENDING;
  }
  return rc;
}

/* One round; returns how many ops are still pending. */
static int round_trip(redis_store_t *rs, int kind, op_t *ops, int n, failure_t *f) {
  int slot[MAX_NODES], waits[MAX_NODES];
  upg__resp_t *conn[MAX_NODES] = {0};
  int nodes = atomic_load(&rs->nnodes);
  for (int node = 0; node < nodes; node++) {
    int wanted = 0, rc;
    for (int i = 0; i < n && !wanted; i++)
      wanted = ops[i].state == PENDING && target(rs, &ops[i]) == node;
    if (!wanted || (conn[node] = take_conn(rs, node, &slot[node], f, &rc)) == NULL) continue;
    if ((rc = send_node(rs, conn[node], node, kind, ops, n, &waits[node])) != 0) {
      set_errno_cause(f, node, rc);
      upg__resp_close(conn[node]);
      give_conn(rs, node, slot[node]);
      conn[node] = NULL;
      for (int i = 0; i < n; i++)
        if (ops[i].sent_to == node) ops[i].sent_to = -1, ops[i].tainted = 1;
    }
  }
  for (int node = 0; node < nodes; node++) {
    if (conn[node] == NULL) continue;
    UPG__COUNT(store_round_trips, 1);
    int rc = read_node(rs, conn[node], node, kind, ops, n, waits[node], f);
    if (rc != 0) set_errno_cause(f, node, rc), upg__resp_close(conn[node]);
    give_conn(rs, node, slot[node]);
  }
  int pending = 0;
  for (int i = 0; i < n; i++) pending += ops[i].state != DONE;
  return pending;
}

/* The message that ends a failed get, or warns of a failed put. */
static void report(const redis_store_t *rs, int kind, const failure_t *f) {
  char msg[512], *at = msg, *end = msg + sizeof msg - 2;
  const char *name = f->node >= 0 ? rs->nodes[f->node].name : "no node";
  at = put_text(at, end, "upager: redis store: ", 64);
  at = put_text(at, end, op_names[kind], 8);
  if (f->op != NULL)
    at = put_text(at, end, " ", 1), at = put_text(at, end, f->op->key, f->op->key_len);
  at = put_text(at, end, " at ", 4);
  at = put_text(at, end, name, sizeof rs->nodes[0].name);
  at = put_text(at, end, ": ", 2);
  at = put_text(at, end, f->cause, sizeof f->cause);
  *at++ = '\n', *at = '\0';
  if (kind == OP_GET) upg__os_write_stderr(msg);
  else upg__os_warn(msg);
}

/* Rounds until every op is done, a failure no retry helps, or the
 * timeout: a failover's wait, the map reread between tries. */
static int run_ops(redis_store_t *rs, int kind, op_t *ops, int n) {
  uint64_t deadline = upg__os_now_ns() + rs->timeout_ns;
  int waited = 0;
  for (int i = 0; i < n; i++) {
    ops[i].state = PENDING, ops[i].ask = -1, ops[i].sent_to = -1, ops[i].tainted = 0;
    ops[i].slot = (uint16_t)upg__redis_slot(ops[i].key, ops[i].key_len);
  }
  for (;;) {
    failure_t f = {.node = -1};
    int pending = round_trip(rs, kind, ops, n, &f);
    if (pending == 0) return 0;
    if (f.hard || upg__os_now_ns() >= deadline) {
      report(rs, kind, &f);
      return UPG_ESTORE;
    }
    UPG__COUNT(store_retries, 1);
    if (f.node < 0) continue; /* redirected, or more than one send holds */
    if (!waited) UPG__COUNT(store_failover_waits, 1), waited = 1;
    upg__os_sleep_ns(RETRY_PAUSE_NS);
    refresh_map(rs);
  }
}

/* ---- the store's methods ----------------------------------------------*/
/* While the process exits and its run's keys are deleted, another thread's
 * fault cannot be served: it sleeps until the exit ends every thread,
 * rather than end the process with an abort. The exiting thread goes on. */
static void park_while_exiting(redis_store_t *rs) {
  if (!atomic_load(&rs->exiting) || pthread_equal(pthread_self(), rs->exiter)) return;
  for (;;) upg__os_sleep_ns(1000000000ull);
}

static int redis_get(upg__store_t *s, const upg__handle_t *handles, const struct iovec *iov,
                     int n) {
  redis_store_t *rs = (redis_store_t *)s;
  op_t ops[UPG__IOV_MAX];
  park_while_exiting(rs);
  for (int i = 0; i < n; i++) {
    page_key(rs, handles[i], &ops[i]);
    ops[i].page = iov[i].iov_base;
  }
  int rc = run_ops(rs, OP_GET, ops, n);
  if (rc != 0) park_while_exiting(rs);
  if (rc == 0) {
    UPG__COUNT(swap_reads, 1);
    UPG__COUNT(swap_bytes_read, (uint64_t)n * rs->unit);
  }
  return rc;
}

static void free_handles(redis_store_t *rs, const upg__handle_t *handles, int n, int written) {
  pthread_mutex_lock(&rs->lock);
  for (int i = 0; i < n; i++) {
    if (handles[i] == UPG__NO_HANDLE) continue;
    if (written) upg__slots_release(&rs->slots, handles[i]);
    else upg__slots_unalloc(&rs->slots, handles[i]);
  }
  pthread_mutex_unlock(&rs->lock);
}

static int redis_put(upg__store_t *s, const struct iovec *iov, int n, upg__handle_t *handles) {
  redis_store_t *rs = (redis_store_t *)s;
  op_t ops[UPG__IOV_MAX];
  int got = 0;
  park_while_exiting(rs);
  pthread_mutex_lock(&rs->lock);
  while (got < n) {
    uint32_t first;
    long k = upg__slots_alloc_run(&rs->slots, (uint32_t)(n - got), &first);
    if (k < 0) break;
    for (long i = 0; i < k; i++) handles[got++] = first + (uint32_t)i;
  }
  pthread_mutex_unlock(&rs->lock);
  for (int i = got; i < n; i++) handles[i] = UPG__NO_HANDLE;
  for (int i = 0; i < got; i++) {
    page_key(rs, handles[i], &ops[i]);
    ops[i].page = iov[i].iov_base;
  }
  int rc = got > 0 ? run_ops(rs, OP_SET, ops, got) : -ENOSPC;
  /* A page not written everywhere it must be is not stored: its handle
   * goes back unwritten (a copy on the master alone is overwritten or
   * deleted with the run), unless a SET of it may still run late on a node
   * whose connection broke: that handle is never used again in the run. */
  for (int i = 0; i < got; i++) {
    if (ops[i].state == DONE) continue;
    if (!ops[i].tainted) free_handles(rs, &handles[i], 1, 0);
    handles[i] = UPG__NO_HANDLE;
  }
  if (rc == 0 && got > 0) {
    UPG__COUNT(swap_writes, 1);
    UPG__COUNT(swap_bytes_written, (uint64_t)got * rs->unit);
  }
  return rc != 0 ? rc : got < n ? -ENOSPC : 0;
}

/* Deletes the keys of n handles, then frees the handles: never before,
 * or a late DEL could remove the next put's copy. A handle whose DEL
 * failed, or was sent on a connection that broke (the node may run it
 * still, late), is never used again in this run. */
static void delete_handles(redis_store_t *rs, const upg__handle_t *handles, int n) {
  op_t ops[UPG__IOV_MAX];
  for (int i = 0; i < n; i++) page_key(rs, handles[i], &ops[i]);
  (void)run_ops(rs, OP_DEL, ops, n);
  upg__handle_t done[UPG__IOV_MAX];
  int k = 0;
  for (int i = 0; i < n; i++)
    if (ops[i].state == DONE && !ops[i].tainted) done[k++] = handles[i];
  free_handles(rs, done, k, 1);
}

/* Under the runtime lock, often in a fault: queued for the keeper. A full
 * queue is deleted here and now. */
static void redis_release(upg__store_t *s, const upg__handle_t *handles, int n) {
  redis_store_t *rs = (redis_store_t *)s;
  pthread_mutex_lock(&rs->queue_lock);
  int fits = rs->queued + (size_t)n <= QUEUE_MAX;
  if (fits) {
    memcpy(rs->queue + rs->queued, handles, (size_t)n * sizeof *handles);
    rs->queued += (size_t)n;
  }
  pthread_mutex_unlock(&rs->queue_lock);
  if (!fits) delete_handles(rs, handles, n);
}

/* The keeper's share: one batch of queued releases; 0 when none. */
static int drain_one_batch(redis_store_t *rs) {
  upg__handle_t batch[UPG__IOV_MAX];
  pthread_mutex_lock(&rs->queue_lock);
  size_t k = rs->queued < UPG__IOV_MAX ? rs->queued : UPG__IOV_MAX;
  rs->queued -= k;
  memcpy(batch, rs->queue + rs->queued, k * sizeof *batch);
  pthread_mutex_unlock(&rs->queue_lock);
  if (k > 0) delete_handles(rs, batch, (int)k);
  return k > 0;
}

static int heartbeat(redis_store_t *rs, int kind) {
  op_t op = {0};
  memcpy(op.key, "upg:", 4);
  memcpy(op.key + 4, rs->run, 16);
  op.key_len = 20;
  return run_ops(rs, kind, &op, 1);
}

static void *keeper(void *arg) {
  redis_store_t *rs = arg;
  upg__os_block_signals(NULL);
  uint64_t next_beat = upg__os_now_ns() + HEARTBEAT_EVERY_NS;
  while (!atomic_load(&rs->stop)) {
    while (drain_one_batch(rs) && !atomic_load(&rs->stop)) continue;
    if (upg__os_now_ns() >= next_beat) {
      (void)heartbeat(rs, OP_BEAT);
      refresh_map(rs);
      next_beat = upg__os_now_ns() + HEARTBEAT_EVERY_NS;
    }
    upg__os_sleep_ns(KEEPER_PAUSE_NS);
  }
  return NULL;
}

static int redis_flush(upg__store_t *s) {
  (void)s; /* each put is on its master and a replica when it returns */
  return 0;
}

/* Deletes every key the run wrote, and its heartbeat. */
static void delete_run(redis_store_t *rs) {
  while (drain_one_batch(rs)) continue;
  upg__handle_t batch[UPG__IOV_MAX];
  int k = 0;
  for (uint64_t h = 1; h <= rs->slots.high; h++) {
    if (!((rs->slots.used[h / 64] >> (h % 64)) & 1)) continue;
    batch[k++] = (upg__handle_t)h;
    if (k == UPG__IOV_MAX) delete_handles(rs, batch, k), k = 0;
  }
  if (k > 0) delete_handles(rs, batch, k);
  (void)heartbeat(rs, OP_DEL);
}

static void stop_keeper(redis_store_t *rs) {
  if (!rs->keeper_running) return;
  atomic_store(&rs->stop, 1);
  pthread_join(rs->keeper, NULL);
  rs->keeper_running = 0;
}

static redis_store_t *open_store; /* for the exit hook */

static void free_store(redis_store_t *rs) {
  for (int i = 0; i < MAX_NODES; i++)
    for (int k = 0; k < POOL; k++)
      if (rs->nodes[i].conn[k] != NULL) {
        upg__resp_close(rs->nodes[i].conn[k]);
        upg__os_free(rs->nodes[i].conn[k], sizeof(upg__resp_t));
      }
  upg__os_free(rs->queue, QUEUE_MAX * sizeof(upg__handle_t));
  upg__slots_fini(&rs->slots);
  upg__os_free(rs, sizeof *rs);
}

static void redis_close(upg__store_t *s) {
  redis_store_t *rs = (redis_store_t *)s;
  if (open_store == rs) open_store = NULL;
  if (rs->owner == upg__os_getpid()) { /* a child's copy: the parent's run */
    stop_keeper(rs);
    delete_run(rs);
  }
  free_store(rs);
}

/* A normal exit without upg_shutdown deletes the run's keys too. */
static void delete_at_exit(void) {
  redis_store_t *rs = open_store;
  if (rs == NULL || rs->owner != upg__os_getpid()) return;
  rs->exiter = pthread_self();
  atomic_store(&rs->exiting, 1);
  stop_keeper(rs);
  delete_run(rs);
}

static const upg__store_methods_t redis_methods = {
    .version = UPG__STORE_VERSION,
    .caps = UPG__STORE_SIGNAL_SAFE,
    .put = redis_put,
    .get = redis_get,
    .release = redis_release,
    .flush = redis_flush,
    .close = redis_close,
};

/* ---- opening: the URL, the credentials, the first map --------------------*/
static int add_seed(redis_store_t *rs, const char *host, size_t len) {
  char name[256], *colon;
  if (len == 0 || len >= sizeof name) return -EINVAL;
  memcpy(name, host, len), name[len] = '\0';
  if ((colon = strrchr(name, ':')) == NULL) return -EINVAL;
  *colon = '\0';
  long port = strtol(colon + 1, NULL, 10);
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *found;
  if (port <= 0 || port > 65535 || getaddrinfo(name, NULL, &hints, &found) != 0) return -EINVAL;
  uint32_t ip = ntohl(((struct sockaddr_in *)found->ai_addr)->sin_addr.s_addr);
  freeaddrinfo(found);
  return node_index(rs, ip, (uint16_t)port) < 0 ? -ENOSPC : 0;
}

static int copy_credentials(redis_store_t *rs, const char *text, size_t len) {
  const char *colon = memchr(text, ':', len);
  size_t user = colon ? (size_t)(colon - text) : 0, pass = colon ? len - user - 1 : len;
  if (user >= sizeof rs->user || pass >= sizeof rs->pass) return -EINVAL;
  memcpy(rs->user, text, user), rs->user[user] = '\0';
  memcpy(rs->pass, colon ? colon + 1 : text, pass), rs->pass[pass] = '\0';
  return 0;
}

/* The file's first line: "user:password", or a password alone. */
static int read_auth_file(redis_store_t *rs, const char *path) {
  FILE *f = fopen(path, "re");
  char line[512];
  if (f == NULL) {
    upg__store_explain("UPAGER_STORE_AUTH_FILE='%s' cannot be read: %s", path, strerror(errno));
    return UPG_EACCES;
  }
  int got = fgets(line, sizeof line, f) != NULL;
  fclose(f);
  line[got ? strcspn(line, "\r\n") : 0] = '\0';
  return copy_credentials(rs, line, strlen(line));
}

static int parse_url(redis_store_t *rs, const upg__config_t *cfg) {
  const char *p = cfg->store_url + strlen("redis://"), *at = strrchr(p, '@');
  if (at != NULL && copy_credentials(rs, p, (size_t)(at - p)) != 0) return -EINVAL;
  if (at != NULL) p = at + 1;
  while (*p) {
    size_t len = strcspn(p, ",");
    if (add_seed(rs, p, len) != 0) {
      upg__store_explain("UPAGER_STORE names '%.*s', not a host:port this machine resolves",
                         (int)len, p);
      return -EINVAL;
    }
    p += len + (p[len] == ',');
  }
  if (*cfg->store_auth_file) return read_auth_file(rs, cfg->store_auth_file);
  return 0;
}

/* The first seed that answers gives the map. */
static int first_map(redis_store_t *rs) {
  failure_t f = {.node = -1};
  int seeds = atomic_load(&rs->nnodes), rc = UPG_ESTORE;
  for (int i = 0; i < seeds; i++) {
    rc = read_map(rs, i, &f);
    if (rc == UPG_EACCES) {
      upg__store_explain("the Redis server at %s refused the credentials of %s: %s",
                         rs->nodes[i].name,
                         *rs->pass ? "the URL or UPAGER_STORE_AUTH_FILE"
                                   : "no password (it wants one)",
                         f.cause);
      return rc;
    }
    if (rc == 0 || rc == 1) return 0;
  }
  upg__store_explain("no Redis server of UPAGER_STORE answers: %s at %s",
                     f.cause[0] ? f.cause : "unknown cause",
                     f.node >= 0 ? rs->nodes[f.node].name : "every node");
  return rc == UPG_EACCES ? rc : UPG_ESTORE;
}

static int start(redis_store_t *rs, const upg__config_t *cfg) {
  uint64_t run;
  int rc = upg__os_random(&run, sizeof run);
  if (rc != 0) return rc;
  hex(rs->run, run, 16);
  rs->unit = cfg->page_size;
  rs->timeout_ns = cfg->store_timeout_ms * 1000000ull;
  rs->owner = upg__os_getpid();
  pthread_mutex_init(&rs->lock, NULL);
  pthread_mutex_init(&rs->queue_lock, NULL);
  if ((rs->queue = upg__os_alloc(QUEUE_MAX * sizeof(upg__handle_t))) == NULL) return -ENOMEM;
  if ((rc = upg__slots_init(&rs->slots)) != 0) return rc;
  if ((rc = parse_url(rs, cfg)) != 0 || (rc = first_map(rs)) != 0) return rc;
  if ((rc = heartbeat(rs, OP_BEAT)) != 0) {
    upg__store_explain("the Redis store cannot write the run's heartbeat (see above)");
    return rc;
  }
  if ((rc = -pthread_create(&rs->keeper, NULL, keeper, rs)) != 0) return rc;
  rs->keeper_running = 1;
  return 0;
}

static int redis_open(const upg__config_t *cfg, upg__store_t *below, upg__store_t **out) {
  static int hooked;
  (void)below;
  redis_store_t *rs = upg__os_alloc(sizeof *rs);
  if (rs == NULL) return -ENOMEM;
  rs->base.methods = &redis_methods;
  int rc = start(rs, cfg);
  if (rc != 0) {
    stop_keeper(rs);
    free_store(rs);
    return rc;
  }
  if (!hooked) hooked = 1, atexit(delete_at_exit);
  open_store = rs;
  return upg__sealed_open(cfg, &rs->base, out);
}

const upg__store_class_t upg__store_redis = {"redis", NULL, redis_open};
