/* store.c: the list of stores and the wrappers the core calls them
 * through. UPAGER_STORE names a class of the list; a class that wraps
 * another is opened on it; and the compressed tier, when UPAGER_COMPRESS
 * turns it on, is opened on whatever that made. The wrappers retry a call
 * a signal interrupted and count what could not be stored. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

extern const upg__store_class_t upg__store_file;
extern const upg__store_class_t upg__store_faulty;
extern const upg__store_class_t upg__store_redis;
extern const upg__store_class_t upg__store_compress;

/* Every store named by a word, the default first; then those named by a
 * URL, whose scheme is their name ("redis://host:port"). */
static const upg__store_class_t *const stores[] = {&upg__store_file, &upg__store_faulty};
static const upg__store_class_t *const url_stores[] = {&upg__store_redis};

const upg__store_class_t *upg__store_find(const char *name) {
  for (size_t i = 0; i < sizeof stores / sizeof stores[0]; i++)
    if (strcmp(stores[i]->name, name) == 0) return stores[i];
  for (size_t i = 0; i < sizeof url_stores / sizeof url_stores[0]; i++) {
    size_t len = strlen(url_stores[i]->name);
    if (strncmp(url_stores[i]->name, name, len) == 0 && strncmp(name + len, "://", 3) == 0)
      return url_stores[i];
  }
  return NULL;
}

const char *upg__store_names(void) { return "file, faulty, redis://host:port"; }

char upg__store_why[512];

void upg__store_explain(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(upg__store_why, sizeof upg__store_why, fmt, ap);
  va_end(ap);
}

/* Stores wrapped deeper than this are taken for a loop in the list. */
#define MAX_DEPTH 8

static int open_on(const upg__store_class_t *c, const upg__config_t *cfg, upg__store_t *lower,
                   upg__store_t **out) {
  int rc = c->open(cfg, lower, out);
  if (rc != 0) return rc;
  const upg__store_methods_t *m = (*out)->methods;
  if (m->version != UPG__STORE_VERSION || !(m->caps & UPG__STORE_SIGNAL_SAFE)) {
    m->close(*out);
    return -ENOTSUP;
  }
  return 0;
}

/* A class is opened on the class it names, which a tier's "any" cannot be. */
static int open_class(const upg__store_class_t *c, const upg__config_t *cfg, int depth,
                      upg__store_t **out) {
  upg__store_t *lower = NULL;
  if (c == NULL || depth > MAX_DEPTH) return -EINVAL;
  if (c->lower != NULL && strcmp(c->lower, UPG__STORE_ANY_LOWER) == 0) return -EINVAL;
  if (c->lower != NULL) {
    int rc = open_class(upg__store_find(c->lower), cfg, depth + 1, &lower);
    if (rc != 0) return rc;
  }
  return open_on(c, cfg, lower, out);
}

/* UPAGER_ENCRYPT=1 seals what a store keeps, unless it seals already; the
 * tier goes over the seal, compressing pages before they are sealed. */
int upg__store_open(const upg__config_t *cfg, upg__store_t **out) {
  upg__store_t *store;
  upg__store_why[0] = '\0';
  int rc = open_class(cfg->store, cfg, 0, &store);
  if (rc == 0 && cfg->encrypt && !upg__store_is_sealed(store))
    rc = upg__sealed_open(cfg, store, &store);
  if (rc != 0 || cfg->codec == NULL) return rc == 0 ? (*out = store, 0) : rc;
  return open_on(&upg__store_compress, cfg, store, out);
}

int upg__store_in_memory(upg__store_t *s, upg__handle_t handle) {
  return s->methods->in_memory != NULL && s->methods->in_memory(s, handle);
}

void upg__store_stop(upg__store_t *s) {
  if (s != NULL && s->methods->stop != NULL) s->methods->stop(s);
}

void upg__store_close(upg__store_t *s) {
  if (s == NULL) return;
  (void)s->methods->flush(s); /* the copies die with the store: nothing to lose */
  s->methods->close(s);
}

/* Times a store call that a signal interrupted is made again: EINTR is
 * no failure of the store, and a page whose write failed would stay
 * resident for nothing. A store that answers nothing else fails. */
#define EINTR_TRIES 64

/* Puts again the pages an interrupted put left without a handle. */
static int put_again(upg__store_t *s, const struct iovec *iov, int n, upg__handle_t *handles) {
  struct iovec left[UPG__IOV_MAX];
  upg__handle_t got[UPG__IOV_MAX];
  int idx[UPG__IOV_MAX], k = 0;
  for (int i = 0; i < n; i++)
    if (handles[i] == UPG__NO_HANDLE) idx[k] = i, left[k++] = iov[i];
  if (k == 0) return 0;
  int rc = s->methods->put(s, left, k, got);
  for (int j = 0; j < k; j++) handles[idx[j]] = got[j];
  return rc;
}

int upg__store_put(upg__store_t *s, const struct iovec *iov, int n, upg__handle_t *handles) {
  int rc = s->methods->put(s, iov, n, handles);
  for (int tries = 1; rc == -EINTR && tries < EINTR_TRIES; tries++)
    rc = put_again(s, iov, n, handles);
  uint64_t failed = 0;
  for (int i = 0; i < n; i++) failed += handles[i] == UPG__NO_HANDLE;
  if (failed != 0) UPG__COUNT(swap_write_errors, failed);
  return rc;
}

int upg__store_get(upg__store_t *s, const upg__handle_t *handles, const struct iovec *iov, int n) {
  int rc = -EINTR;
  for (int tries = 0; rc == -EINTR && tries < EINTR_TRIES; tries++)
    rc = s->methods->get(s, handles, iov, n);
  return rc;
}

void upg__store_release(upg__store_t *s, const upg__handle_t *handles, int n) {
  s->methods->release(s, handles, n);
}

void upg__store_give_back(upg__store_t *s) {
  if (s->methods->give_back != NULL) s->methods->give_back(s);
}

int upg__store_read_begin(upg__store_t *s, const upg__handle_t *handles, const struct iovec *iov,
                          int n) {
  if (s->methods->read_begin == NULL) return -ENOTSUP;
  return s->methods->read_begin(s, handles, iov, n);
}

int upg__store_read_done(upg__store_t *s) { return s->methods->read_done(s); }

int upg__store_read_end(upg__store_t *s) { return s->methods->read_end(s); }
