/* store_faulty.c: UPAGER_STORE=faulty, the file store with failures, for
 * tests: puts that fail, gets that fail or come back corrupt, and answers
 * of EINTR, as upg__faulty says at each call. It shows a store wrapping a
 * lower one, which does the work. */
#include <errno.h>

#include "internal.h"

typedef struct faulty_store {
  upg__store_t base;
  upg__store_t *lower;
  _Atomic int puts, interrupts; /* calls so far, to fail every nth */
  const struct iovec *reading;  /* the lower store's background read */
  int reading_n;
} faulty_store_t;

upg__faulty_plan_t upg__faulty;

static upg__store_t *lower(upg__store_t *s) { return ((faulty_store_t *)s)->lower; }

/* Whether call number `count` (from 1) is one of every nth. */
static int nth(_Atomic int *count, int every) {
  return every > 0 && atomic_fetch_add(count, 1) % every == every - 1;
}

static int fail_put(int n, upg__handle_t *handles, int err) {
  for (int i = 0; i < n; i++) handles[i] = UPG__NO_HANDLE;
  return err;
}

static int faulty_put(upg__store_t *s, const struct iovec *iov, int n, upg__handle_t *handles) {
  faulty_store_t *fs = (faulty_store_t *)s;
  if (nth(&fs->puts, atomic_load(&upg__faulty.fail_puts))) return fail_put(n, handles, -ENOSPC);
  if (nth(&fs->interrupts, atomic_load(&upg__faulty.eintr_every)))
    return fail_put(n, handles, -EINTR);
  return fs->lower->methods->put(fs->lower, iov, n, handles);
}

/* A get fails, or comes back corrupt, once the lower one has read. */
static int faulty_result(int rc, const struct iovec *iov, int n) {
  if (atomic_load(&upg__faulty.fail_gets)) return -EIO;
  if (rc == 0 && atomic_load(&upg__faulty.corrupt_gets))
    for (int i = 0; i < n; i++) *(unsigned char *)iov[i].iov_base ^= 0xff;
  return rc;
}

static int faulty_get(upg__store_t *s, const upg__handle_t *handles, const struct iovec *iov,
                      int n) {
  faulty_store_t *fs = (faulty_store_t *)s;
  if (nth(&fs->interrupts, atomic_load(&upg__faulty.eintr_every))) return -EINTR;
  return faulty_result(fs->lower->methods->get(fs->lower, handles, iov, n), iov, n);
}

static void faulty_release(upg__store_t *s, const upg__handle_t *handles, int n) {
  lower(s)->methods->release(lower(s), handles, n);
}

static int faulty_flush(upg__store_t *s) { return lower(s)->methods->flush(lower(s)); }

static void faulty_close(upg__store_t *s) {
  lower(s)->methods->close(lower(s));
  upg__os_free(s, sizeof(faulty_store_t));
}

/* The lower store's background read; its result fails as a get's does. */
static int faulty_read_begin(upg__store_t *s, const upg__handle_t *handles, const struct iovec *iov,
                             int n) {
  const upg__store_methods_t *m = lower(s)->methods;
  if (m->read_begin == NULL) return -ENOTSUP;
  int rc = m->read_begin(lower(s), handles, iov, n);
  if (rc == 0) ((faulty_store_t *)s)->reading = iov, ((faulty_store_t *)s)->reading_n = n;
  return rc;
}

static int faulty_read_done(upg__store_t *s) { return lower(s)->methods->read_done(lower(s)); }

static int faulty_read_end(upg__store_t *s) {
  faulty_store_t *fs = (faulty_store_t *)s;
  return faulty_result(fs->lower->methods->read_end(fs->lower), fs->reading, fs->reading_n);
}

static void faulty_give_back(upg__store_t *s) {
  atomic_fetch_add(&upg__faulty.give_backs, 1);
  if (lower(s)->methods->give_back != NULL) lower(s)->methods->give_back(lower(s));
}

static const upg__store_methods_t faulty_methods = {
    .version = UPG__STORE_VERSION,
    .caps = UPG__STORE_SIGNAL_SAFE,
    .put = faulty_put,
    .get = faulty_get,
    .release = faulty_release,
    .flush = faulty_flush,
    .close = faulty_close,
    .read_begin = faulty_read_begin,
    .read_done = faulty_read_done,
    .read_end = faulty_read_end,
    .give_back = faulty_give_back,
};

static int faulty_open(const upg__config_t *cfg, upg__store_t *below, upg__store_t **out) {
  (void)cfg;
  faulty_store_t *fs = upg__os_alloc(sizeof *fs);
  if (fs == NULL) {
    below->methods->close(below);
    return -ENOMEM;
  }
  *fs = (faulty_store_t){.base = {&faulty_methods}, .lower = below};
  *out = &fs->base;
  return 0;
}

const upg__store_class_t upg__store_faulty = {"faulty", "file", faulty_open};
