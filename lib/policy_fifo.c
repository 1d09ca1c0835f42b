/* policy_fifo.c: FIFO. Frames sit in a doubly linked list in the order
 * their pages were loaded; the victim is the oldest evictable one. Reference
 * bits are never consulted, which is what lets FIFO show Belady's anomaly. */
#include <errno.h>
#include <stdint.h>

#include "os.h"
#include "policy.h"

#define NIL SIZE_MAX

typedef struct fifo_state {
  size_t nframes;
  size_t head, tail; /* oldest, newest */
  size_t *next, *prev;
  unsigned char *linked;
} fifo_state_t;

static size_t fifo_bytes(size_t nframes) {
  return sizeof(fifo_state_t) + nframes * (2 * sizeof(size_t) + 1);
}

static int fifo_create(size_t nframes, void **state) {
  fifo_state_t *f = upg__os_alloc(fifo_bytes(nframes));
  if (f == NULL) return -ENOMEM;
  f->nframes = nframes;
  f->head = f->tail = NIL;
  f->next = (size_t *)(f + 1);
  f->prev = f->next + nframes;
  f->linked = (unsigned char *)(f->prev + nframes);
  *state = f;
  return 0;
}

static void fifo_destroy(void *state) {
  fifo_state_t *f = state;
  upg__os_free(f, fifo_bytes(f->nframes));
}

static void fifo_unlink(fifo_state_t *f, size_t frame) {
  if (!f->linked[frame]) return;
  size_t p = f->prev[frame], n = f->next[frame];
  if (p == NIL) f->head = n;
  else f->next[p] = n;
  if (n == NIL) f->tail = p;
  else f->prev[n] = p;
  f->linked[frame] = 0;
}

static void fifo_loaded(void *state, size_t frame) {
  fifo_state_t *f = state;
  fifo_unlink(f, frame);
  f->prev[frame] = f->tail;
  f->next[frame] = NIL;
  if (f->tail == NIL) f->head = frame;
  else f->next[f->tail] = frame;
  f->tail = frame;
  f->linked[frame] = 1;
}

static void fifo_freed(void *state, size_t frame) { fifo_unlink(state, frame); }

static long fifo_victim(void *state, const upg__policy_env_t *env) {
  fifo_state_t *f = state;
  for (size_t frame = f->head; frame != NIL; frame = f->next[frame]) {
    if (!env->evictable(env->ctx, frame)) continue;
    fifo_unlink(f, frame);
    return (long)frame;
  }
  return -1;
}

const upg__policy_ops_t upg__policy_fifo = {
    "fifo", fifo_create, fifo_destroy, fifo_loaded, fifo_freed, fifo_victim,
};
