/* input.c: the byte sources behind input.h: a file descriptor or a memory
 * block, optionally through a zstd decompression stream. */
#define _GNU_SOURCE
#include "input.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

struct upg__input {
  int fd; /* -1 for memory */
  const unsigned char *mem;
  size_t mem_len, mem_pos;
  ZSTD_DStream *zstd;  /* NULL when not compressed */
  unsigned char *zbuf; /* compressed bytes read ahead */
  ZSTD_inBuffer zin;
  int raw_eof;
  int frame_open; /* a zstd frame has started and not ended */
};

static ssize_t raw_read(upg__input_t *in, void *buf, size_t cap) {
  if (in->fd < 0) {
    size_t n = in->mem_len - in->mem_pos;
    if (n > cap) n = cap;
    memcpy(buf, in->mem + in->mem_pos, n);
    in->mem_pos += n;
    return (ssize_t)n;
  }
  for (;;) {
    ssize_t n = read(in->fd, buf, cap);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

static int open_common(upg__input_t *in, int zstd, upg__input_t **out) {
  if (zstd) {
    in->zstd = ZSTD_createDStream();
    in->zbuf = malloc(ZSTD_DStreamInSize());
    if (in->zstd == NULL || in->zbuf == NULL) {
      upg__input_close(in);
      return -ENOMEM;
    }
    ZSTD_initDStream(in->zstd);
    in->zin = (ZSTD_inBuffer){in->zbuf, 0, 0};
  }
  *out = in;
  return 0;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

int upg__input_open_file(const char *path, upg__input_t **out) {
  upg__input_t *in = calloc(1, sizeof *in);
  if (in == NULL) return -ENOMEM;
  if (strcmp(path, "-") == 0) {
    in->fd = STDIN_FILENO;
  } else if ((in->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
    int err = -errno;
    free(in);
    return err;
  }
  return open_common(in, ends_with(path, ".zst"), out);
}

int upg__input_open_memory(const void *data, size_t len, int zstd, upg__input_t **out) {
  upg__input_t *in = calloc(1, sizeof *in);
  if (in == NULL) return -ENOMEM;
  in->fd = -1;
  in->mem = data;
  in->mem_len = len;
  return open_common(in, zstd, out);
}

/* Decompresses into buf until it holds something or the input ends. */
static ssize_t zstd_read(upg__input_t *in, void *buf, size_t cap) {
  ZSTD_outBuffer zout = {buf, cap, 0};
  while (zout.pos == 0) {
    if (in->zin.pos == in->zin.size) {
      if (in->raw_eof) return in->frame_open ? -EBADMSG : 0; /* truncated frame */
      ssize_t n = raw_read(in, in->zbuf, ZSTD_DStreamInSize());
      if (n < 0) return n;
      if (n == 0) {
        in->raw_eof = 1;
        continue;
      }
      in->zin = (ZSTD_inBuffer){in->zbuf, (size_t)n, 0};
    }
    size_t rc = ZSTD_decompressStream(in->zstd, &zout, &in->zin);
    if (ZSTD_isError(rc)) return -EBADMSG;
    in->frame_open = rc != 0;
  }
  return (ssize_t)zout.pos;
}

ssize_t upg__input_read(upg__input_t *in, void *buf, size_t cap) {
  if (cap == 0) return 0;
  return in->zstd != NULL ? zstd_read(in, buf, cap) : raw_read(in, buf, cap);
}

void upg__input_close(upg__input_t *in) {
  if (in == NULL) return;
  if (in->fd > STDIN_FILENO) close(in->fd);
  ZSTD_freeDStream(in->zstd);
  free(in->zbuf);
  free(in);
}
