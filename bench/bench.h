/* bench.h: what the benchmark programs share: a monotonic clock, dying
 * with the cause, heap-like page contents, userfaultfd regions, and the
 * file their pread floors read, made as the runtime makes its swap file:
 * in the swap directory (UPAGER_SWAP_DIR, else $TMPDIR, else /tmp),
 * unlinked at once, O_DIRECT when the swap file is. */
#ifndef UPAGER_BENCH_H
#define UPAGER_BENCH_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_PAGE_WORDS (4096 / sizeof(uint64_t))

/* Microseconds on the monotonic clock. */
double bench_now_us(void);
/* perror(what), then exit(1). */
_Noreturn void bench_die(const char *what);
/* n 4 KiB preads of fd at random page offsets below `pages`, into a
 * buffer of the calling thread's; 0, or -1 on a failed or short read. */
int bench_pread_random(int fd, size_t pages, size_t n, unsigned *seed);
/* A file of `pages` written 4 KiB pages, synced; its fd, or -1 and errno. */
int bench_floor_file(size_t pages, int direct);

/* A userfaultfd, nonblocking, with `features` (UFFD_FEATURE_* bits)
 * agreed; -1, and errno, where it cannot be. */
int bench_uffd_open(unsigned long long features);
/* Anonymous memory of `bytes`, without huge pages, registered with the
 * userfaultfd `uffd` in `mode` (UFFDIO_REGISTER_MODE_* bits): a bare uffd
 * pager's view. NULL, and errno, where it cannot be. */
void *bench_uffd_region(int uffd, size_t bytes, unsigned long long mode);

/* The next of a splitmix64 sequence. */
uint64_t bench_next_random(uint64_t *state);
/* A 4 KiB page of heap-like 64-byte records (an id, pointers that share
 * their high bytes, small counters, a word of a vocabulary, a timestamp,
 * flags mostly clear), about 2:1 under LZ4; the same for the same index. */
void bench_fill_records(uint64_t *page, size_t index);

/* mechanism's second table: the userfaultfd steps over n scattered pages. */
void mechanism_uffd(size_t n);

#endif
