/* input.h: a trace's bytes, from a file, standard input ("-") or memory,
 * decompressed on the fly with libzstd when the name ends in .zst (or the
 * caller says so for memory). Calls return 0 or a negative errno; a
 * corrupt zstd frame is -EBADMSG. */
#ifndef UPAGER_SIM_INPUT_H
#define UPAGER_SIM_INPUT_H

#include <stddef.h>
#include <sys/types.h>

typedef struct upg__input upg__input_t;

int upg__input_open_file(const char *path, upg__input_t **out);
int upg__input_open_memory(const void *data, size_t len, int zstd, upg__input_t **out);
/* Up to cap bytes; 0 at the end; negative errno. */
ssize_t upg__input_read(upg__input_t *in, void *buf, size_t cap);
void upg__input_close(upg__input_t *in);

#endif
