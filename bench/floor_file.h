/* floor_file.h: the file the benchmarks' pread floors read, made as the
 * runtime makes its swap file: in the swap directory (UPAGER_SWAP_DIR, else
 * $TMPDIR, else /tmp), unlinked at once, O_DIRECT when the swap file is. */
#ifndef UPAGER_BENCH_FLOOR_FILE_H
#define UPAGER_BENCH_FLOOR_FILE_H

#include <stddef.h>

/* A file of `pages` written 4 KiB pages, synced; its fd, or -1 and errno. */
int bench_floor_file(size_t pages, int direct);

#endif
