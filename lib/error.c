/* error.c: error codes and messages: upg_strerror and upg_err_name expand
 * the table in upager.h; upg__fail keeps the detailed message of the last
 * failed call for upg_last_error. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static char last_error[512];

const char *upg_strerror(int err) {
  switch (err) {
#define UPG_STRERROR_(name, code, text) \
  case UPG_##name: return text;
    UPG_ERRNO_MAP(UPG_STRERROR_)
#undef UPG_STRERROR_
  }
  return "unknown error";
}

const char *upg_err_name(int err) {
  switch (err) {
#define UPG_ERR_NAME_(name, code, text) \
  case UPG_##name: return "UPG_" #name;
    UPG_ERRNO_MAP(UPG_ERR_NAME_)
#undef UPG_ERR_NAME_
  }
  return "UPG_UNKNOWN";
}

const char *upg_last_error(void) { return last_error; }

int upg__fail(int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  fprintf(stderr, "upager: %s\n", last_error);
  return err;
}

_Noreturn void upg__fatal(const char *msg, int err) {
  upg__os_write_stderr("upager: fatal: ");
  upg__os_write_stderr(msg);
  if (err != 0) {
    upg__os_write_stderr(": ");
    upg__os_write_stderr(err > -4000 ? strerrordesc_np(-err) : upg_strerror(err));
  }
  upg__os_write_stderr("\n");
  abort();
}
