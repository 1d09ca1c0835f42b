/* resp.c: RESP2, the Redis protocol, spoken over a raw socket with the
 * runtime's own system calls and buffers: the Redis store runs in the
 * fault handler, where hiredis cannot (it allocates, and under `upager run`
 * the heap it would allocate from is paged memory served by this very
 * store). A connection owns a read buffer and an output list; a command's
 * large arguments (pages) are sent from where they lie, not copied. */
#include <errno.h>
#include <string.h>

#include "internal.h"

int upg__resp_connect(upg__resp_t *c, uint32_t ip, uint16_t port, int timeout_ms) {
  upg__resp_close(c);
  int fd = upg__os_tcp_connect(ip, port, timeout_ms);
  if (fd < 0) return fd;
  c->fd = fd;
  c->timeout_ms = timeout_ms;
  c->start = c->end = 0;
  c->nout = 0, c->used = 0, c->seg = 0;
  return 0;
}

void upg__resp_close(upg__resp_t *c) {
  if (c->fd > 0) upg__os_close(c->fd);
  c->fd = -1;
  c->start = c->end = 0;
}

/* ---- output ------------------------------------------------------------*/
/* Ends the run of small text begun at seg as one iovec. */
static void close_segment(upg__resp_t *c) {
  if (c->used > c->seg) c->out[c->nout++] = (struct iovec){c->text + c->seg, c->used - c->seg};
  c->seg = c->used;
}

static int append(upg__resp_t *c, const void *p, size_t len) {
  if (c->used + len > sizeof c->text || c->nout + 2 >= UPG__RESP_IOV) return -ENOBUFS;
  memcpy(c->text + c->used, p, len);
  c->used += len;
  return 0;
}

static int append_number(upg__resp_t *c, char kind, uint64_t v) {
  char digits[24], line[28];
  int n = 0, at = 0;
  do digits[n++] = (char)('0' + v % 10), v /= 10;
  while (v > 0);
  line[at++] = kind;
  while (n > 0) line[at++] = digits[--n];
  line[at++] = '\r', line[at++] = '\n';
  return append(c, line, (size_t)at);
}

/* Arguments this long go from where they lie. */
#define BY_REFERENCE 512

int upg__resp_command(upg__resp_t *c, int nargs) { return append_number(c, '*', (uint64_t)nargs); }

int upg__resp_arg(upg__resp_t *c, const void *p, size_t len) {
  int rc = append_number(c, '$', len);
  if (rc != 0) return rc;
  if (len < BY_REFERENCE) {
    rc = append(c, p, len);
  } else {
    close_segment(c);
    c->out[c->nout++] = (struct iovec){(void *)p, len};
  }
  return rc != 0 ? rc : append(c, "\r\n", 2);
}

int upg__resp_arg_text(upg__resp_t *c, const char *text) {
  return upg__resp_arg(c, text, strlen(text));
}

int upg__resp_arg_number(upg__resp_t *c, uint64_t v) {
  char digits[24], text[24];
  int n = 0, at = 0;
  do digits[n++] = (char)('0' + v % 10), v /= 10;
  while (v > 0);
  while (n > 0) text[at++] = digits[--n];
  return upg__resp_arg(c, text, (size_t)at);
}

int upg__resp_room(const upg__resp_t *c, size_t text) {
  return c->used + text <= sizeof c->text && c->nout + 8 < UPG__RESP_IOV;
}

int upg__resp_send(upg__resp_t *c) {
  close_segment(c);
  size_t bytes = 0;
  for (int i = 0; i < c->nout; i++) bytes += c->out[i].iov_len;
  int rc = upg__os_sendv_all(c->fd, c->out, c->nout, c->timeout_ms);
  c->nout = 0, c->used = 0, c->seg = 0;
  if (rc == 0) UPG__COUNT(store_bytes_sent, bytes);
  return rc;
}

/* ---- input -------------------------------------------------------------*/
/* How long a read polls for the server's answer before it sleeps in the
 * kernel. On a VM, the sleep and the wake-up cost an exit each way: on
 * loopback a page's GET took 1.3-1.9x a plain hiredis GET when it slept,
 * 0.8-0.9x when it polled (bench/redis_store). A server farther away
 * answers after the poll, and the read then sleeps. */
#define ANSWER_SPIN_NS 40000

/* Each turn yields the CPU to any thread ready to run. */
static long receive(upg__resp_t *c, void *buf, size_t len) {
  uint64_t end = upg__os_now_ns() + ANSWER_SPIN_NS;
  long got;
  while ((got = upg__os_recv_now(c->fd, buf, len)) == -EAGAIN && upg__os_now_ns() < end)
    upg__os_yield();
  return got != -EAGAIN ? got : upg__os_recv(c->fd, buf, len, c->timeout_ms);
}

/* Reads more into the buffer, moving what is left to its front. */
static int fill(upg__resp_t *c) {
  if (c->start > 0) {
    memmove(c->in, c->in + c->start, c->end - c->start);
    c->end -= c->start, c->start = 0;
  }
  if (c->end == sizeof c->in) return -ENOBUFS;
  long got = receive(c, c->in + c->end, sizeof c->in - c->end);
  if (got == 0) return -ECONNRESET;
  if (got < 0) return (int)got;
  c->end += (size_t)got;
  UPG__COUNT(store_bytes_received, (uint64_t)got);
  return 0;
}

/* The next line, without its CRLF, valid until the next read. */
static int read_line(upg__resp_t *c, const char **line, size_t *len) {
  for (;;) {
    char *at = memchr(c->in + c->start, '\n', c->end - c->start);
    if (at != NULL && at > c->in + c->start && at[-1] == '\r') {
      *line = c->in + c->start;
      *len = (size_t)(at - 1 - *line);
      c->start = (size_t)(at + 1 - c->in);
      return 0;
    }
    int rc = fill(c);
    if (rc != 0) return rc;
  }
}

static int64_t parse_number(const char *p, size_t len) {
  int neg = len > 0 && p[0] == '-';
  int64_t v = 0;
  for (size_t i = (size_t)neg; i < len; i++) v = v * 10 + (p[i] - '0');
  return neg ? -v : v;
}

int upg__resp_read(upg__resp_t *c, upg__resp_reply_t *r) {
  const char *line;
  size_t len;
  int rc = read_line(c, &line, &len);
  if (rc != 0) return rc;
  if (len == 0) return -EPROTO;
  r->type = line[0];
  r->text = line + 1;
  r->len = len - 1;
  r->number = 0;
  switch (r->type) {
    case '+':
    case '-': return 0;
    case ':':
    case '$':
    case '*': r->number = parse_number(line + 1, len - 1); return 0;
  }
  return -EPROTO;
}

int upg__resp_read_bulk(upg__resp_t *c, void *dst, size_t len) {
  char *to = dst;
  size_t want = len + 2; /* and its CRLF */
  while (want > 0) {
    if (c->start == c->end) {
      int rc = fill(c);
      if (rc != 0) return rc;
    }
    size_t k = c->end - c->start;
    if (k > want) k = want;
    size_t data = want > 2 ? (k < want - 2 ? k : want - 2) : 0;
    if (to != NULL) memcpy(to, c->in + c->start, data);
    if (to != NULL) to += data;
    c->start += k, want -= k;
  }
  return 0;
}

/* Replies nested deeper than this are taken for a broken stream. */
#define MAX_DEPTH 8

static int skip_value(upg__resp_t *c, const upg__resp_reply_t *r, int depth) {
  if (depth > MAX_DEPTH) return -EPROTO;
  if (r->type == '$' && r->number >= 0) return upg__resp_read_bulk(c, NULL, (size_t)r->number);
  for (int64_t i = 0; r->type == '*' && i < r->number; i++) {
    upg__resp_reply_t inner;
    int rc = upg__resp_read(c, &inner);
    if (rc == 0) rc = skip_value(c, &inner, depth + 1);
    if (rc != 0) return rc;
  }
  return 0;
}

int upg__resp_skip(upg__resp_t *c, const upg__resp_reply_t *r) { return skip_value(c, r, 0); }

int upg__resp_read_text(upg__resp_t *c, const upg__resp_reply_t *r, char *dst, size_t size) {
  if (r->type != '$' || r->number < 0 || (size_t)r->number >= size) {
    dst[0] = '\0';
    return upg__resp_skip(c, r);
  }
  dst[r->number] = '\0';
  return upg__resp_read_bulk(c, dst, (size_t)r->number);
}
