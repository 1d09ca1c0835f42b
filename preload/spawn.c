/* spawn.c: posix_spawn, posix_spawnp, system and popen. Their child shares
 * the parent's memory (glibc clones it with CLONE_VM | CLONE_VFORK) and,
 * with every signal blocked, reads heap memory: the argument and
 * environment strings, the environ array that setenv() reallocated, the
 * file actions. A fault there is fatal to the child, and the kernel cannot
 * read protected pages for execve either. So the parent, which waits for
 * the child to exec, keeps all of it resident: argument and environment
 * vectors are copied out of the heap into plain memory, the rest is pinned
 * for the call. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "preload_api.h"
#include "preload.h"

extern char **environ;

/* A copy of a NULL-terminated string vector in memory that is never paged. */
typedef struct plain_vector {
  char **v;
  size_t bytes;
} plain_vector_t;

static int copy_vector(char *const *src, plain_vector_t *out) {
  size_t n = 0, chars = 0;
  out->v = NULL, out->bytes = 0;
  if (src == NULL) return 0;
  for (; src[n] != NULL; n++) chars += strlen(src[n]) + 1;
  out->bytes = (n + 1) * sizeof(char *) + chars;
  void *area = mmap(NULL, out->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (area == MAP_FAILED) return -1;
  out->v = area;
  char *text = (char *)(out->v + n + 1);
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(src[i]) + 1;
    out->v[i] = memcpy(text, src[i], len);
    text += len;
  }
  out->v[n] = NULL;
  return 0;
}

static void drop_vector(plain_vector_t *v) {
  if (v->v != NULL) munmap(v->v, v->bytes);
}

/* The file actions' array is one malloc'd block inside the opaque struct. */
static void pin_actions(upg__pin_t *pin, const posix_spawn_file_actions_t *actions) {
  pin->len = 0;
  if (actions != NULL && upg__heap_contains(actions->__actions))
    upg__pin_whole(pin, actions->__actions, malloc_usable_size(actions->__actions));
}

typedef int (*spawn_fn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                        const posix_spawnattr_t *, char *const[], char *const[]);

static int spawn(spawn_fn real, pid_t *pid, const char *path,
                 const posix_spawn_file_actions_t *actions, const posix_spawnattr_t *attr,
                 char *const argv[], char *const envp[]) {
  plain_vector_t args, env;
  upg__pin_t pin_path, pin_actions_block;
  if (copy_vector(argv, &args) != 0) return ENOMEM;
  if (copy_vector(envp, &env) != 0) {
    drop_vector(&args);
    return ENOMEM;
  }
  upg__pin_string(&pin_path, path);
  pin_actions(&pin_actions_block, actions);
  int rc = real(pid, path, actions, attr, args.v, env.v);
  upg__pin_end(&pin_actions_block);
  upg__pin_end(&pin_path);
  drop_vector(&env);
  drop_vector(&args);
  return rc;
}

UPG__EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions,
                            const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
  return spawn(UPG__REAL(posix_spawn), pid, path, actions, attr, argv, envp);
}

UPG__EXPORT int posix_spawnp(pid_t *pid, const char *file,
                             const posix_spawn_file_actions_t *actions,
                             const posix_spawnattr_t *attr, char *const argv[],
                             char *const envp[]) {
  return spawn(UPG__REAL(posix_spawnp), pid, file, actions, attr, argv, envp);
}

/* system() and popen() spawn "sh -c COMMAND" with the current environ,
 * which they read directly: those are pinned, string by string, as far as
 * the pin limit allows (a program rarely setenv()s more than a few). */
typedef struct environ_pins {
  upg__pin_t array, strings[32];
  int count;
} environ_pins_t;

static void pin_environ(environ_pins_t *p) {
  size_t n = 0;
  p->count = 0;
  while (environ != NULL && environ[n] != NULL) n++;
  upg__pin_whole(&p->array, environ, upg__heap_contains(environ) ? (n + 1) * sizeof(char *) : 0);
  size_t share = upg__frame_budget() / 8;
  int most = (int)(share < 32 ? share : 32);
  for (size_t i = 0; i < n && p->count < most; i++)
    if (upg__heap_contains(environ[i])) upg__pin_string(&p->strings[p->count++], environ[i]);
}

static void unpin_environ(environ_pins_t *p) {
  while (p->count > 0) upg__pin_end(&p->strings[--p->count]);
  upg__pin_end(&p->array);
}

UPG__EXPORT int system(const char *command) {
  environ_pins_t env;
  upg__pin_t pin;
  upg__pin_string(&pin, command);
  pin_environ(&env);
  int rc = UPG__REAL(system)(command);
  unpin_environ(&env);
  upg__pin_end(&pin);
  return rc;
}

UPG__EXPORT FILE *popen(const char *command, const char *mode) {
  environ_pins_t env;
  upg__pin_t pin;
  upg__pin_string(&pin, command);
  pin_environ(&env);
  upg__glibc_keeps++; /* the FILE stays outside the heap (streams.c) */
  FILE *fp = UPG__REAL(popen)(command, mode);
  upg__glibc_keeps--;
  unpin_environ(&env);
  upg__pin_end(&pin);
  return fp;
}
