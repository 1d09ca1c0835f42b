/* preload_api.h: the runtime as the preload library (preload/) sees it,
 * and all it sees beyond upager.h. The preload pins system calls' buffers
 * in the paged heap, takes over the stats report and completes the fault
 * trace at exit, ends the process on a lost buffer, and hands the
 * program's signal actions and libsigsegv handler calls to the fault
 * source. Everything else in the runtime
 * (internal.h) stays out of its reach, so the runtime's tables can change
 * without the preload following them. Implemented in lib/, each function
 * in the file that owns what it reads. */
#ifndef UPAGER_PRELOAD_API_H
#define UPAGER_PRELOAD_API_H

#include <signal.h>
#include <stddef.h>

#include "heap.h" /* the paged heap: its span, state, start, calloc and free */
#include "os.h"   /* the preload's own system calls, as the runtime's */
#include "upager.h"

/* ---- error.c (also in internal.h) --------------------------------------*/
/* Prints "upager: fatal: <msg>" with write(2) and aborts. */
_Noreturn void upg__fatal(const char *msg, int err);

/* ---- runtime.c ---------------------------------------------------------*/
/* 1 while the runtime runs. */
int upg__running(void);
/* The paging unit in bytes and the frame budget in pages, which size the
 * preload's pins; 0 before the runtime starts. */
size_t upg__paging_unit(void);
size_t upg__frame_budget(void);
/* The report asked for with UPAGER_STATS becomes the caller's to print:
 * returns whether one was asked for, and the runtime will not print its
 * own (at its exit hook it would come before the program's last output). */
int upg__report_take_over(void);

/* ---- trace.c -----------------------------------------------------------*/
/* Takes the lock and writes out and closes the fault trace, for a process
 * whose runtime is never shut down. */
void upg__trace_finish(void);

/* ---- fault_source.c ----------------------------------------------------*/
/* The program's sigaction(signo, act, old) for a signal the installed fault
 * source drives (SIGSEGV, for the SIGSEGV source): `act` becomes the
 * disposition for faults outside paged memory and the source's handler
 * stays; 0 then, with the previous one in *old. -1 when no installed
 * source drives signo, and the call is the kernel's. */
int upg__fault_program_action(int signo, const struct sigaction *act, struct sigaction *old);
/* 1 when the kernel's own accesses to a closed page fail (EFAULT) instead
 * of faulting, so that system calls' buffers must be pinned first; 0 when
 * the installed source resolves them as it does the program's. */
int upg__fault_kernel_needs_pins(void);

/* ---- fault_sigsegv.c ---------------------------------------------------*/
/* A handler the program gives libsigsegv itself (gawk does), which would
 * replace the runtime's there: it gets the faults outside paged memory
 * first; NULL takes it away. Kept whether or not the runtime is installed
 * yet; -1 when it is not, and libsigsegv must take the call. */
int upg__fault_sigsegv_program_handler(int (*handler)(void *addr, int serious));

#endif
