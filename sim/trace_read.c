/* trace_read.c: the reference reader: buffering, line and record
 * splitting, format detection, run expansion and error messages. */
#include "trace_read.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUFFER_BYTES (1u << 20) /* also the longest line accepted */
/* A read fills at most this much, so that the bytes being parsed stay in
 * the L2 cache next to zstd's window: a 1 MiB read went out to L3 twice,
 * once written by zstd and once parsed. */
#define READ_BYTES (64u << 10)

struct upg__refs {
  upg__input_t *in;
  const char *name;
  const upg__trace_format_t *format;
  size_t page_size, unit;
  char *buf;
  size_t start, end; /* unread bytes are buf[start, end); 8 zeros follow */
  int eof, started;
  uint64_t line;  /* lines or records consumed */
  upg__run_t run; /* what remains of the current run */
  char error[256];
};

const upg__trace_format_t *upg__trace_format_find(const char *name) {
  static const upg__trace_format_t *const formats[] = {&upg__format_text, &upg__format_arc,
                                                       &upg__format_upt};
  for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
    if (strcmp(formats[i]->name, name) == 0) return formats[i];
  return NULL;
}

int upg__refs_open(upg__input_t *in, const char *name, const upg__trace_format_t *format,
                   size_t page_size, upg__refs_t **out) {
  upg__refs_t *r = calloc(1, sizeof *r);
  char *buf = malloc(BUFFER_BYTES + 8); /* + the zeros after the unread bytes */
  if (r == NULL || buf == NULL) {
    free(r), free(buf);
    upg__input_close(in);
    return -ENOMEM;
  }
  r->in = in, r->name = name, r->format = format, r->buf = buf;
  buf[0] = '\0';
  r->page_size = page_size, r->unit = page_size;
  *out = r;
  return 0;
}

static long fail(upg__refs_t *r, int err, const char *why) {
  if (r->format != NULL && r->format->record_bytes != 0)
    snprintf(r->error, sizeof r->error, "%s: record %llu: %s", r->name, (unsigned long long)r->line,
             why);
  else
    snprintf(r->error, sizeof r->error, "%s:%llu: %s", r->name, (unsigned long long)r->line, why);
  return err;
}

/* Moves unread bytes to the front and reads more; 0, or negative errno. */
static int refill(upg__refs_t *r) {
  memmove(r->buf, r->buf + r->start, r->end - r->start);
  r->end -= r->start, r->start = 0;
  while (!r->eof && r->end < BUFFER_BYTES) {
    size_t room = BUFFER_BYTES - r->end;
    ssize_t n = upg__input_read(r->in, r->buf + r->end, room < READ_BYTES ? room : READ_BYTES);
    if (n < 0) return (int)n;
    if (n == 0) r->eof = 1;
    r->end += (size_t)n;
    if (n > 0) break;
  }
  memset(r->buf + r->end, 0, 8);
  return 0;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Detects the format if needed and checks a binary format's header. */
static long start(upg__refs_t *r) {
  r->started = 1;
  int rc;
  while (r->end < 4 && !r->eof)
    if ((rc = refill(r)) != 0) return fail(r, rc, "cannot read");
  if (r->format == NULL) {
    if (r->end >= 4 && memcmp(r->buf, "UPT1", 4) == 0) r->format = &upg__format_upt;
    else if (ends_with(r->name, ".lis") || ends_with(r->name, ".lis.zst"))
      r->format = &upg__format_arc;
    else r->format = &upg__format_text;
  }
  if (r->format->header == NULL) return 0;
  while (r->end - r->start < r->format->header_bytes && !r->eof)
    if ((rc = refill(r)) != 0) return fail(r, rc, "cannot read");
  const char *why = "truncated header";
  if (r->end - r->start < r->format->header_bytes ||
      r->format->header((const unsigned char *)r->buf + r->start, &r->unit, &why) != 0)
    return fail(r, -EINVAL, why);
  r->start += r->format->header_bytes;
  return 0;
}

/* The next record or line into *p, *len; 1, 0 at the end, negative errno. */
static long next_record(upg__refs_t *r, const char **p, size_t *len) {
  size_t want = r->format->record_bytes;
  for (;;) {
    size_t avail = r->end - r->start;
    const char *s = r->buf + r->start;
    if (want != 0 && avail >= want) {
      *p = s, *len = want;
      r->start += want;
      return 1;
    }
    const char *nl = want == 0 ? memchr(s, '\n', avail) : NULL;
    if (nl != NULL || (want == 0 && r->eof && avail > 0)) {
      *p = s, *len = nl != NULL ? (size_t)(nl - s) : avail;
      r->start += *len + (nl != NULL);
      return 1;
    }
    if (r->eof) {
      if (avail == 0) return 0;
      r->line++; /* name the partial record itself */
      return fail(r, -EINVAL, "truncated record");
    }
    if (r->start == 0 && r->end == BUFFER_BYTES) {
      r->line++;
      return fail(r, -EINVAL, "line longer than 1 MiB");
    }
    int rc = refill(r);
    if (rc != 0) return fail(r, rc, rc == -EBADMSG ? "corrupt zstd data" : "cannot read");
  }
}

/* The format's fast path over the buffer, its position and run kept in
 * the reader afterwards. */
static size_t expand_fast(upg__refs_t *r, uint64_t *out, size_t cap) {
  upg__lines_t l = {r->buf + r->start, {0, 0}, 0};
  size_t n = r->format->expand_fast(&l, out, cap);
  r->start = (size_t)(l.p - r->buf);
  r->run = l.run;
  r->line += l.lines;
  return n;
}

long upg__refs_next(upg__refs_t *r, uint64_t *out, size_t cap) {
  if (!r->started) {
    long rc = start(r);
    if (rc != 0) return rc;
  }
  size_t n = 0;
  while (n < cap) {
    if (r->run.count == 0 && r->format->expand_fast != NULL) {
      n += expand_fast(r, out + n, cap - n);
      if (n == cap || r->run.count != 0) continue;
    }
    if (r->run.count == 0) {
      const char *p = NULL, *why = NULL;
      size_t len = 0;
      long rc = next_record(r, &p, &len);
      if (rc <= 0) return rc < 0 ? rc : (long)n;
      r->line++;
      int got = r->format->parse(p, len, r->page_size, &r->run, &why);
      if (got < 0) return fail(r, -EINVAL, why);
      continue;
    }
    uint64_t take = r->run.count < cap - n ? r->run.count : cap - n;
    for (uint64_t i = 0; i < take; i++) out[n++] = r->run.first + i;
    r->run.first += take, r->run.count -= take;
  }
  return (long)n;
}

const char *upg__refs_error(const upg__refs_t *r) { return r->error; }
const upg__trace_format_t *upg__refs_format(const upg__refs_t *r) { return r->format; }
size_t upg__refs_unit(const upg__refs_t *r) { return r->unit; }

void upg__refs_close(upg__refs_t *r) {
  if (r == NULL) return;
  upg__input_close(r->in);
  free(r->buf);
  free(r);
}

int upg__refs_load(upg__refs_t *r, uint64_t **refs, size_t *n) {
  size_t cap = 1u << 16, count = 0;
  uint64_t *a = malloc(cap * sizeof *a);
  if (a == NULL) return -ENOMEM;
  for (;;) {
    if (count == cap) {
      uint64_t *b = realloc(a, 2 * cap * sizeof *a);
      if (b == NULL) {
        free(a);
        return -ENOMEM;
      }
      a = b, cap *= 2;
    }
    long got = upg__refs_next(r, a + count, cap - count);
    if (got < 0) {
      free(a);
      return (int)got;
    }
    if (got == 0) break;
    count += (size_t)got;
  }
  *refs = a, *n = count;
  return 0;
}
