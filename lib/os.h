/* os.h: the operating-system primitives the runtime is built on. Every one
 * is a plain system call underneath, safe inside a signal handler, and
 * returns 0 or a negative errno. Memory from upg__os_alloc is never paged by
 * the runtime, which is where all of the runtime's own tables live. */
#ifndef UPAGER_OS_H
#define UPAGER_OS_H

#include <stddef.h>
#include <stdint.h>

/* Zeroed, lazily backed memory: untouched pages cost no RAM. NULL on failure. */
void *upg__os_alloc(size_t bytes);
void upg__os_free(void *p, size_t bytes);

size_t upg__os_page_size(void);
uint64_t upg__os_now_ns(void);

/* Sleeps while *word == expected (or until woken); wakes all sleepers. */
void upg__os_wait(const uint32_t *word, uint32_t expected);
void upg__os_wake_all(const uint32_t *word);

/* Frees [offset, offset+len) of fd's file, which reads back as zeros. */
int upg__os_punch_hole(int fd, uint64_t offset, uint64_t len);

/* Writes all of [from, from+len) to fd at offset, by the system call
 * itself: from may be paged memory, which the preload's pwrite would pin,
 * under the runtime's lock. 0 or a negative errno. */
int upg__os_pwrite_all(int fd, const void *from, size_t len, uint64_t offset);

/* Maps [addr, addr+len) of a writable view, written, in one call;
 * fails before Linux 5.14, and the pages then fault in one by one. */
int upg__os_prefault_write(void *addr, uint64_t len);

/* vm.max_map_count, or 65530 when it cannot be read. */
size_t upg__os_max_map_count(void);

/* Writes a message to stderr with write(2) only. */
void upg__os_write_stderr(const char *msg);

#endif
