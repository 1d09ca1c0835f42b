/* alloc_stress.c: a multi-threaded allocation stress program, meant to run
 * under `upager run`: every thread allocates blocks of mixed sizes, fills
 * each with a pattern derived from its identity, and hands it to the next
 * thread through a shared mailbox; the receiver verifies every byte, then
 * frees it (or reallocs and re-verifies first). Any lost or misplaced page
 * shows as a mismatch; the exit status is 0 only if none was found.
 *
 *   alloc_stress [threads [blocks-per-thread [max-block-bytes]]]
 *   defaults: 4 threads, 20000 blocks, 262144 bytes */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAILBOX_SLOTS 64

typedef struct block {
  uint64_t seed;
  size_t len;
  unsigned char *data;
} block_t;

typedef struct mailbox {
  pthread_mutex_t lock;
  pthread_cond_t changed;
  block_t slots[MAILBOX_SLOTS];
  size_t head, count;
  int senders_done;
} mailbox_t;

static int nthreads;
static long nblocks;
static size_t max_block;
static mailbox_t *boxes; /* thread i receives in boxes[i], itself malloc'd */
static _Atomic long mismatches, verified;

static uint64_t next_random(uint64_t *state) {
  *state ^= *state << 13, *state ^= *state >> 7, *state ^= *state << 17;
  return *state;
}

static unsigned char byte_at(uint64_t seed, size_t i) {
  uint64_t x = (seed + i / 8) * 0x9E3779B97F4A7C15ull;
  return (unsigned char)(x >> (8 * (i % 8)));
}

static void fill(block_t *b) {
  for (size_t i = 0; i < b->len; i++) b->data[i] = byte_at(b->seed, i);
}

static long count_wrong(const block_t *b, size_t len) {
  long wrong = 0;
  for (size_t i = 0; i < len; i++) wrong += b->data[i] != byte_at(b->seed, i);
  return wrong;
}

static void post(mailbox_t *box, block_t b) {
  pthread_mutex_lock(&box->lock);
  while (box->count == MAILBOX_SLOTS) pthread_cond_wait(&box->changed, &box->lock);
  box->slots[(box->head + box->count++) % MAILBOX_SLOTS] = b;
  pthread_cond_broadcast(&box->changed);
  pthread_mutex_unlock(&box->lock);
}

/* Takes one block; 0 when every sender has finished and the box is empty. */
static int take(mailbox_t *box, block_t *out) {
  pthread_mutex_lock(&box->lock);
  while (box->count == 0 && box->senders_done < 1) pthread_cond_wait(&box->changed, &box->lock);
  int got = box->count > 0;
  if (got) {
    *out = box->slots[box->head];
    box->head = (box->head + 1) % MAILBOX_SLOTS;
    box->count--;
    pthread_cond_broadcast(&box->changed);
  }
  pthread_mutex_unlock(&box->lock);
  return got;
}

static void receive(block_t *b, uint64_t *rng) {
  long wrong = count_wrong(b, b->len);
  if (next_random(rng) % 4 == 0) { /* realloc keeps the prefix */
    size_t keep = b->len / 2 + 1;
    b->data = realloc(b->data, keep);
    wrong += b->data == NULL ? 1 : count_wrong(b, keep);
  }
  free(b->data);
  mismatches += wrong;
  verified++;
}

static void *worker(void *arg) {
  int self = (int)(intptr_t)arg;
  mailbox_t *mine = &boxes[self], *next = &boxes[(self + 1) % nthreads];
  uint64_t rng = 0x1234567ull + (uint64_t)self * 7919;
  block_t b;
  for (long i = 0; i < nblocks; i++) {
    /* Mostly small blocks, some large ones that span many pages. */
    size_t len = next_random(&rng) % 8 == 0 ? next_random(&rng) % max_block + 1
                                            : next_random(&rng) % 512 + 1;
    b = (block_t){.seed = ((uint64_t)self << 40) | (uint64_t)i, .len = len, .data = malloc(len)};
    if (b.data == NULL) {
      mismatches++;
      break;
    }
    fill(&b);
    post(next, b);
    while (mine->count > MAILBOX_SLOTS / 2 && take(mine, &b)) receive(&b, &rng);
  }
  pthread_mutex_lock(&next->lock);
  next->senders_done = 1;
  pthread_cond_broadcast(&next->changed);
  pthread_mutex_unlock(&next->lock);
  while (take(mine, &b)) receive(&b, &rng);
  return NULL;
}

int main(int argc, char **argv) {
  nthreads = argc > 1 ? atoi(argv[1]) : 4;
  nblocks = argc > 2 ? atol(argv[2]) : 20000;
  max_block = argc > 3 ? (size_t)atol(argv[3]) : 262144;
  if (nthreads < 1 || nblocks < 1 || max_block < 1) {
    fprintf(stderr, "usage: alloc_stress [threads [blocks [max-block-bytes]]]\n");
    return 2;
  }
  boxes = calloc((size_t)nthreads, sizeof *boxes);
  pthread_t *threads = malloc((size_t)nthreads * sizeof *threads);
  for (int i = 0; i < nthreads; i++) {
    pthread_mutex_init(&boxes[i].lock, NULL);
    pthread_cond_init(&boxes[i].changed, NULL);
  }
  for (int i = 0; i < nthreads; i++) pthread_create(&threads[i], NULL, worker, (void *)(intptr_t)i);
  for (int i = 0; i < nthreads; i++) pthread_join(threads[i], NULL);
  printf("alloc_stress: %d threads, %ld blocks verified, %ld bytes wrong\n", nthreads,
         (long)verified, (long)mismatches);
  return mismatches == 0 && verified == (long)nthreads * nblocks ? 0 : 1;
}
