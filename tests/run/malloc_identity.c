/* malloc_identity.c: linking libupager.so must not change which allocator
 * serves the program's malloc, even once upg_malloc has loaded mimalloc.
 * Exits 0 if malloc and free still resolve to glibc's and malloc's memory
 * is not paged; upg_malloc's is. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "upager.h"

int main(void) {
  void *paged = upg_malloc(4096);
  void *plain = malloc(4096);
  void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  upg_page_info_t info;
  int ok = paged != NULL && plain != NULL && libc != NULL &&
           dlsym(RTLD_DEFAULT, "malloc") == dlsym(libc, "malloc") &&
           dlsym(RTLD_DEFAULT, "free") == dlsym(libc, "free") && upg_page_info(paged, &info) == 0 &&
           upg_page_info(plain, &info) == UPG_ENOTREGION;
  printf("malloc_identity: %s\n", ok ? "malloc is glibc's, upg_malloc is paged" : "FAILED");
  free(plain);
  upg_free(paged);
  return ok ? 0 : 1;
}
