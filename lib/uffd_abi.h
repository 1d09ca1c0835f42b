/* uffd_abi.h: the userfaultfd interface, with what the build's kernel
 * headers may lack. Debian 12's are Linux 6.1's, older than UFFDIO_MOVE
 * (Linux 6.8); the definitions below follow the kernel's UAPI and are used
 * only when the header has none. Whether the running kernel has a feature
 * is asked at install (UFFDIO_API), never assumed from these. */
#ifndef UPAGER_UFFD_ABI_H
#define UPAGER_UFFD_ABI_H

#include <linux/types.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1ull << 16)
#endif

#ifndef UFFDIO_MOVE
#define _UFFDIO_MOVE 0x05
struct uffdio_move {
  __u64 dst;
  __u64 src;
  __u64 len;
  __u64 mode; /* UFFDIO_MOVE_MODE_* */
  __s64 move; /* out: bytes moved, or a negative errno */
};
#define UFFDIO_MOVE_MODE_DONTWAKE ((__u64)1 << 0)
#define UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES ((__u64)1 << 1)
#define UFFDIO_MOVE _IOWR(UFFDIO, _UFFDIO_MOVE, struct uffdio_move)
#endif

#endif
