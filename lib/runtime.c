/* runtime.c: the runtime's life cycle and the public calls on regions:
 * upg_init and upg_shutdown, upg_map and upg_unmap, upg_advise, upg_pin and
 * upg_unpin, upg_page_info. Each call validates its arguments, takes the
 * lock with signals blocked, and leaves the page work to pager.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "heap.h"
#include "internal.h"
#include "preload_api.h"

/* Frames a pin must leave free, so a fault always finds one. */
#define UNPINNED_FRAMES_MIN 2

upg__runtime_t upg__rt = {.lock = PTHREAD_MUTEX_INITIALIZER};
static pthread_mutex_t life_lock = PTHREAD_MUTEX_INITIALIZER;
static int stats_printed;

void upg__lock(void) {
  if (pthread_mutex_trylock(&upg__rt.lock) == 0) return;
  atomic_fetch_add(&upg__rt.lock_waiters, 1);
  pthread_mutex_lock(&upg__rt.lock);
  atomic_fetch_sub(&upg__rt.lock_waiters, 1);
}

void upg__unlock(void) { pthread_mutex_unlock(&upg__rt.lock); }

/* The mutex lets the releasing thread take it straight back, so a long
 * holder hands it over explicitly: it waits (a few yields at most) until
 * the waiters have had their turn. */
void upg__lock_yield(void) {
  if (atomic_load(&upg__rt.lock_waiters) == 0) return;
  upg__unlock();
  for (int spins = 0; spins < 16 && atomic_load(&upg__rt.lock_waiters) > 0; spins++)
    upg__os_yield();
  upg__lock();
}

void upg__api_lock(sigset_t *saved) {
  upg__os_block_signals(saved);
  upg__lock();
}

void upg__api_unlock(const sigset_t *saved) {
  upg__unlock();
  upg__os_set_signal_mask(saved);
}

const char *upg_version(void) { return UPAGER_VERSION_STRING; }

int upg__running(void) { return upg__rt.running; }
size_t upg__paging_unit(void) { return upg__rt.page_size; }
size_t upg__frame_budget(void) { return upg__rt.nframes; }

int upg__report_take_over(void) {
  int asked = upg__rt.cfg.stats;
  upg__rt.cfg.stats = 0;
  return asked;
}

static void print_stats_once(void) {
  if (upg__rt.running && upg__rt.cfg.stats && !stats_printed) {
    stats_printed = 1;
    upg_stats_print(stderr);
  }
}

/* The child of fork() starts without paged memory: the views are
 * MADV_DONTFORK, so it drops the parent's tables (without touching the
 * parent's swap file or frames) and may start a runtime of its own. */
static void forget_after_fork(void) {
  if (!upg__rt.running) return;
  upg__rt.source->uninstall();
  upg__evictor_forget();
  upg__prefetch_forget();
  upg__trace_forget();
  for (size_t i = 0; i < upg__rt.nregions; i++) {
    upg__region_t *r = upg__rt.regions[i];
    upg__thrash_forget_region(r);
    upg__region_forget(r);
  }
  upg__rt.nregions = 0;
  upg__frames_destroy();
  upg__store_close(upg__rt.store);
  upg__rt.store = NULL;
  pthread_mutex_init(&upg__rt.lock, NULL);
  pthread_mutex_init(&life_lock, NULL);
  upg__stats_serve(0);
  upg__rt.running = 0;
}

/* Between fork() and the child's hook, glibc and earlier atfork handlers
 * run in the child, whose views are gone: a fault there is not the
 * runtime's (upg__fault), or the copied tables would take it for a page
 * another thread opened, and it would repeat forever. */
static void before_fork(void) { atomic_store(&upg__rt.forking, 1); }
static void after_fork_in_parent(void) { atomic_store(&upg__rt.forking, 0); }
static void after_fork_in_child(void) {
  forget_after_fork();
  atomic_store(&upg__rt.forking, 0);
}

static void register_process_hooks(void) {
  static int registered;
  if (registered) return;
  registered = 1;
  atexit(print_stats_once);
  pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
}

static void reset_runtime(const upg__config_t *cfg) {
  upg__stats_reset(cfg->page_size, cfg->policy->name, cfg->source->name);
  upg__thrash_reset();
  upg__rt.cfg = *cfg;
  upg__rt.page_size = cfg->page_size;
  upg__rt.page_shift = (unsigned)__builtin_ctzll(cfg->page_size);
  upg__rt.policy = cfg->policy;
  upg__rt.source = cfg->source;
  upg__rt.nregions = 0;
  upg__rt.pid = upg__os_getpid();
}

/* Each step that fails undoes the steps before it, in reverse order, by
 * entering the one cleanup path below at its own label. */
static int start(const upg_options_t *opt) {
  upg__config_t cfg;
  int rc = upg__options_resolve(opt, &cfg);
  if (rc != 0) return rc;
  reset_runtime(&cfg);
  size_t nframes = cfg.budget / cfg.page_size;
  if ((rc = upg__frames_create(nframes)) != 0)
    return upg__fail(rc, "cannot allocate the frame table for %zu frames", nframes);
  if ((rc = upg__store_open(&cfg, &upg__rt.store)) != 0) {
    if (*upg__store_why) /* the store said why, and its code says what */
      rc = upg__fail(rc < -4000 || rc == UPG_EACCES ? rc : UPG_ESTORE,
                     "cannot open the %s store (UPAGER_STORE): %s", cfg.store->name,
                     upg__store_why);
    else
      rc = upg__fail(UPG_ESWAPDIR,
                     "cannot open the %s store in '%s' (UPAGER_STORE, UPAGER_SWAP_DIR): %s",
                     cfg.store->name, cfg.swap_dir, strerror(-rc));
    goto no_swap;
  }
  if ((rc = upg__trace_open(cfg.trace_path)) != 0) {
    rc = upg__fail(rc, "cannot open UPAGER_TRACE: %s", strerror(-rc));
    goto no_handler;
  }
  /* A source that says why it cannot run (UPG_EUFFD) has said so already. */
  if ((rc = upg__fault_source_install(cfg.source, &cfg)) != 0) {
    if (rc != UPG_EUFFD)
      rc = upg__fail(rc, "cannot install the fault source (UPAGER_FAULT=%s): %s", cfg.source->name,
                     strerror(-rc));
    goto no_handler;
  }
  if ((rc = upg__evictor_start(nframes)) != 0 || (rc = upg__prefetch_start()) != 0) {
    rc = upg__fail(rc, "cannot start the evictor and prefetch threads: %s", strerror(-rc));
    goto no_threads;
  }
  upg__workers_await();
  UPG__SET(frames, nframes);
  UPG__SET(fault_access_known, (cfg.source->caps & UPG__SOURCE_KNOWS_ACCESS) != 0);
  stats_printed = 0;
  register_process_hooks();
  upg__stats_serve(1);
  upg__rt.running = 1;
  return 0;

no_threads:
  upg__evictor_stop();
  upg__rt.source->uninstall();
no_handler:
  upg__trace_close();
  upg__store_close(upg__rt.store);
  upg__rt.store = NULL;
no_swap:
  upg__frames_destroy();
  return rc;
}

int upg_init(const upg_options_t *opt) {
  pthread_mutex_lock(&life_lock);
  int rc = upg__rt.running ? UPG_EEXIST : start(opt);
  pthread_mutex_unlock(&life_lock);
  return rc;
}

int upg__ensure_running(void) {
  if (upg__rt.running) return 0;
  pthread_mutex_lock(&life_lock);
  int rc = upg__rt.running ? 0 : start(NULL);
  pthread_mutex_unlock(&life_lock);
  return rc;
}

static void unregister_region(upg__region_t *r) {
  size_t i = 0;
  while (upg__rt.regions[i] != r) i++;
  upg__rt.regions[i] = upg__rt.regions[--upg__rt.nregions];
  upg__prefetch_forget_region(r);
  upg__thrash_forget_region(r);
}

/* Drops every frame and slot of pages [first, end) of r, whose memory the
 * caller then unmaps. Under the lock. */
static int discard_for_unmap(upg__region_t *r, size_t first, size_t end) {
  for (size_t page = first; page < end; page++)
    (void)upg__page_discard(r, page, UPG__DISCARD_PINNED | UPG__DISCARD_UNMAPPING);
  return 0;
}

static void discard_all(upg__region_t *r, size_t first, size_t end) {
  (void)upg__region_each_touched(r, first, end, discard_for_unmap);
  upg__store_give_back(upg__rt.store);
}

void upg_shutdown(void) {
  sigset_t saved;
  pthread_mutex_lock(&life_lock);
  if (upg__rt.running) {
    print_stats_once();
    upg__evictor_stop();
    upg__prefetch_stop();
    upg__store_stop(upg__rt.store);
    upg__rt.source->uninstall();
    upg__api_lock(&saved);
    /* No page is discarded one by one: the views, the memfds and the swap
     * file go whole, and a slot released alone costs a hole in the file
     * (a synchronous discard on a mount with `discard`). */
    upg__heap_close();
    while (upg__rt.nregions > 0) {
      upg__region_t *r = upg__rt.regions[0];
      unregister_region(r);
      upg__region_destroy(r);
    }
    upg__trace_close();
    upg__frames_destroy();
    upg__store_close(upg__rt.store);
    upg__rt.store = NULL;
    upg__stats_serve(0);
    upg__rt.running = 0;
    upg__api_unlock(&saved);
  }
  pthread_mutex_unlock(&life_lock);
}

static void *fail_null(int err) {
  errno = -err;
  return NULL;
}

void *upg_map(size_t len, int flags) {
  sigset_t saved;
  upg__region_t *r;
  if (flags != 0 || len == 0) return fail_null(UPG_EINVAL);
  int rc = upg__ensure_running();
  if (rc != 0) return fail_null(rc);
  size_t unit = upg__rt.page_size;
  if (len > SIZE_MAX - unit) return fail_null(UPG_ENOMEM);
  len = (len + unit - 1) & ~(unit - 1);
  if ((rc = upg__region_create(len, &r)) != 0) return fail_null(rc);
  upg__api_lock(&saved);
  if (upg__rt.nregions == UPG__MAX_REGIONS) {
    upg__api_unlock(&saved);
    upg__region_destroy(r);
    return fail_null(UPG_ENOMEM);
  }
  r->id = upg__rt.next_region_id++;
  upg__rt.regions[upg__rt.nregions++] = r;
  upg__rt.source->view_added(r);
  upg__api_unlock(&saved);
  return r->base;
}

/* The region holding all of [addr, addr+len) and its pages [*first, *end).
 * Under the lock. */
static int find_range(const void *addr, size_t len, upg__region_t **out, size_t *first,
                      size_t *end) {
  upg__region_t *r = upg__rt.running ? upg__region_find(addr) : NULL;
  if (r == NULL) return UPG_ENOTREGION;
  size_t offset = (size_t)((const char *)addr - r->base);
  if (len > r->len - offset) return UPG_ENOTREGION;
  *out = r;
  *first = offset >> upg__rt.page_shift;
  *end = (offset + len + upg__rt.page_size - 1) >> upg__rt.page_shift;
  return 0;
}

static int unmap_locked(void *addr, size_t len) {
  upg__region_t *r;
  size_t first, end;
  int rc = find_range(addr, len, &r, &first, &end);
  if (rc != 0) return rc;
  if (((uintptr_t)addr & (upg__rt.page_size - 1)) != 0) return UPG_EINVAL;
  discard_all(r, first, end);
  if (first == 0 && end == r->npages) {
    unregister_region(r);
    upg__region_destroy(r);
    return 0;
  }
  upg__region_touch(r, first, end - first); /* the holes' entries are written */
  return upg__rt.source->view_unmap(r, first, end - first);
}

int upg_unmap(void *addr, size_t len) {
  sigset_t saved;
  if (len == 0) return UPG_EINVAL;
  upg__api_lock(&saved);
  int rc = unmap_locked(addr, len);
  upg__api_unlock(&saved);
  return rc;
}

static int will_need(upg__region_t *r, size_t first, size_t end) {
  size_t room = upg__rt.nframes - upg__rt.pinned_pages - UNPINNED_FRAMES_MIN;
  if (end - first > room) end = first + room;
  for (size_t page = first; page < end; page++) {
    int loaded, rc = upg__page_make_resident(r, page, &loaded);
    if (rc == 0) rc = upg__page_open(r, page);
    if (rc != 0) return rc;
  }
  return 0;
}

static int none_pinned(upg__region_t *r, size_t first, size_t end) {
  for (size_t page = first; page < end; page++)
    if (upg__pte_pins(atomic_load(&r->pte[page].word)) != 0) return UPG_EBUSY;
  return 0;
}

static int dont_need(upg__region_t *r, size_t first, size_t end) {
  int rc = upg__region_each_touched(r, first, end, none_pinned);
  if (rc == 0) rc = upg__region_each_touched(r, first, end, upg__page_discard_range);
  upg__store_give_back(upg__rt.store);
  return rc;
}

int upg_advise(void *addr, size_t len, int advice) {
  sigset_t saved;
  upg__region_t *r;
  size_t first, end;
  /* Before init page_size is 0 and the alignment test below would fail
   * every address with UPG_EINVAL. */
  if (!upg__rt.running) return UPG_ENOTINIT;
  if (((uintptr_t)addr & (upg__rt.page_size - 1)) != 0) return UPG_EINVAL;
  upg__api_lock(&saved);
  int rc = find_range(addr, len, &r, &first, &end);
  if (rc == 0) {
    switch (advice) {
      case UPG_ADV_NORMAL: upg__advice_access(r, advice); break;
      case UPG_ADV_WILLNEED: rc = will_need(r, first, end); break;
      case UPG_ADV_DONTNEED: rc = dont_need(r, first, end); break;
      case UPG_ADV_SEQUENTIAL:
      case UPG_ADV_RANDOM: upg__advice_access(r, advice); break;
      default: rc = UPG_EINVAL;
    }
  }
  upg__api_unlock(&saved);
  return rc;
}

static void unpin_pages(upg__region_t *r, size_t first, size_t end) {
  for (size_t page = first; page < end; page++) {
    uint32_t w = atomic_fetch_sub(&r->pte[page].word, UPG__PIN_ONE);
    if (upg__pte_pins(w) == 1) {
      upg__rt.pinned_pages--;
      UPG__COUNT(pages_pinned, -1);
      if (upg__rt.source->unpinned != NULL) upg__rt.source->unpinned(r, page);
    }
  }
}

/* A pinned page is open read-write and counted dirty: the kernel may write
 * into it, and such writes raise no fault to see. */
static int pin_page(upg__region_t *r, size_t page) {
  upg__pte_t *pte = &r->pte[page];
  int loaded, rc = upg__page_make_resident(r, page, &loaded);
  if (rc != 0) return rc;
  if (upg__pte_pins(atomic_load(&pte->word)) == 0) {
    if (upg__rt.pinned_pages + UNPINNED_FRAMES_MIN >= upg__rt.nframes) return UPG_EPINLIMIT;
    upg__rt.pinned_pages++;
    UPG__COUNT(pages_pinned, 1);
  }
  atomic_fetch_add(&pte->word, UPG__PIN_ONE);
  atomic_fetch_or(&pte->word, UPG__DIRTY);
  return upg__page_open(r, page);
}

static int pin_locked(const void *addr, size_t len) {
  upg__region_t *r;
  size_t first, end, needed = 0;
  int rc = find_range(addr, len, &r, &first, &end);
  if (rc != 0) return rc;
  for (size_t page = first; page < end; page++)
    needed += upg__pte_pins(atomic_load(&r->pte[page].word)) == 0;
  if (upg__rt.pinned_pages + needed + UNPINNED_FRAMES_MIN > upg__rt.nframes) return UPG_EPINLIMIT;
  for (size_t page = first; page < end; page++) {
    if ((rc = pin_page(r, page)) != 0) {
      unpin_pages(r, first, page);
      return rc;
    }
  }
  return 0;
}

int upg_pin(const void *addr, size_t len) {
  sigset_t saved;
  if (len == 0) return 0;
  upg__api_lock(&saved);
  int rc = pin_locked(addr, len);
  upg__api_unlock(&saved);
  return rc;
}

int upg_unpin(const void *addr, size_t len) {
  sigset_t saved;
  upg__region_t *r;
  size_t first, end;
  if (len == 0) return 0;
  upg__api_lock(&saved);
  int rc = find_range(addr, len, &r, &first, &end);
  for (size_t page = first; rc == 0 && page < end; page++)
    if (upg__pte_pins(atomic_load(&r->pte[page].word)) == 0) rc = UPG_EINVAL;
  if (rc == 0) unpin_pages(r, first, end);
  upg__api_unlock(&saved);
  return rc;
}

int upg_page_info(const void *addr, upg_page_info_t *out) {
  sigset_t saved;
  upg__region_t *r;
  size_t first, end;
  upg_page_info_t info;
  upg__api_lock(&saved);
  int rc = find_range(addr, 1, &r, &first, &end);
  if (rc == 0) {
    const upg__pte_t *pte = &r->pte[first];
    uint32_t w = atomic_load(&pte->word), state = upg__pte_state(w);
    info = (upg_page_info_t){
        .present = state == UPG__RESIDENT || state == UPG__EVICTING,
        .modified = (w & UPG__DIRTY) != 0,
        .referenced = (w & UPG__REFERENCED) != 0,
        .prot = (int)upg__pte_prot(w),
        .pinned = (int)upg__pte_pins(w),
        .busy = state == UPG__LOADING || state == UPG__EVICTING,
        .swap_slot = pte->slot == UPG__NO_SLOT ? -1 : (int64_t)pte->slot - 1,
        .page_size = upg__rt.page_size,
        .page = r->base + first * upg__rt.page_size,
    };
    if (state == UPG__UNMAPPED) rc = UPG_ENOTREGION;
  }
  upg__api_unlock(&saved);
  if (rc == 0) *out = info; /* out may be paged memory: written unlocked */
  return rc;
}

/* A source that does not take SIGSEGV (uffd) leaves it to the kernel. */
int upg_sigaction(const struct sigaction *act, struct sigaction *old) {
  if (!upg__rt.running) return UPG_ENOTINIT;
  if (upg__fault_program_action(SIGSEGV, act, old) == 0) return 0;
  return sigaction(SIGSEGV, act, old) == 0 ? 0 : -errno;
}
