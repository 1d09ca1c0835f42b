/* codec.c: the compressed tier's compressors, one table each, chosen by
 * UPAGER_COMPRESS: lz4 (liblz4) and zstd at level 1 (libzstd). Both work in
 * contexts the tier makes once, in memory that is never paged, so that
 * neither allocates on the fault path: LZ4's hash table (its extState) and
 * zstd's static contexts. A compression is bounded by the tier's threshold:
 * LZ4 gives up as soon as its output passes it, so an incompressible page
 * costs a fraction of a full compression. */
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_initStatic*: contexts in our memory */
#include <errno.h>
#include <lz4.h>
#include <string.h>
#include <zstd.h>

#include "internal.h"

/* zstd's fastest level: 18 us a heap-like page here against lz4's 6 us
 * (BRIEF.md), already three times the cost; higher levels pay more for
 * little. */
#define ZSTD_LEVEL 1

/* ---- lz4 ---------------------------------------------------------------*/
static size_t lz4_ctx_size(size_t page) {
  (void)page;
  return (size_t)LZ4_sizeofState();
}

static int lz4_ctx_init(void *mem, size_t bytes, upg__codec_ctx_t **out) {
  (void)bytes;
  *out = mem;
  return 0;
}

static size_t lz4_compress(upg__codec_ctx_t *c, const void *src, size_t n, void *dst, size_t cap) {
  int size = LZ4_compress_fast_extState(c, src, dst, (int)n, (int)cap, 1);
  return size > 0 ? (size_t)size : 0;
}

/* LZ4_decompress_safe never reads or writes out of its bounds, whatever
 * the input: a corrupt object ends in a short or failed result. */
static int lz4_decompress(upg__codec_ctx_t *c, const void *src, size_t n, void *dst, size_t page) {
  (void)c;
  int got = LZ4_decompress_safe(src, dst, (int)n, (int)page);
  return got >= 0 && (size_t)got == page ? 0 : -EBADMSG;
}

static const upg__codec_t codec_lz4 = {"lz4", lz4_ctx_size, lz4_ctx_init, lz4_compress,
                                       lz4_decompress};

/* ---- zstd --------------------------------------------------------------*/
/* One context holds both directions: its compression half, then its
 * decompression half. */
typedef struct zstd_pair {
  ZSTD_CCtx *cctx;
  ZSTD_DCtx *dctx;
} zstd_pair_t;

static size_t zstd_cctx_bytes(size_t page) {
  return ZSTD_estimateCCtxSize_usingCParams(ZSTD_getCParams(ZSTD_LEVEL, page, 0));
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

static size_t zstd_ctx_size(size_t page) {
  return align64(sizeof(zstd_pair_t)) + align64(zstd_cctx_bytes(page)) +
         align64(ZSTD_estimateDCtxSize());
}

static int zstd_ctx_init(void *mem, size_t bytes, upg__codec_ctx_t **out) {
  (void)bytes;
  zstd_pair_t *z = mem;
  char *at = (char *)mem + align64(sizeof *z);
  /* The page size is not known here: the context was sized for it, and the
   * compression half takes what estimateCCtxSize gave for it. */
  size_t dctx_bytes = align64(ZSTD_estimateDCtxSize());
  size_t cctx_bytes = bytes - align64(sizeof *z) - dctx_bytes;
  z->cctx = ZSTD_initStaticCCtx(at, cctx_bytes);
  z->dctx = ZSTD_initStaticDCtx(at + cctx_bytes, dctx_bytes);
  if (z->cctx == NULL || z->dctx == NULL) return -ENOMEM;
  if (ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, ZSTD_LEVEL)) ||
      ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_contentSizeFlag, 0)))
    return -EINVAL;
  *out = (upg__codec_ctx_t *)z;
  return 0;
}

static size_t zstd_compress(upg__codec_ctx_t *c, const void *src, size_t n, void *dst, size_t cap) {
  size_t size = ZSTD_compress2(((zstd_pair_t *)c)->cctx, dst, cap, src, n);
  return ZSTD_isError(size) ? 0 : size;
}

static int zstd_decompress(upg__codec_ctx_t *c, const void *src, size_t n, void *dst, size_t page) {
  size_t got = ZSTD_decompressDCtx(((zstd_pair_t *)c)->dctx, dst, page, src, n);
  return !ZSTD_isError(got) && got == page ? 0 : -EBADMSG;
}

static const upg__codec_t codec_zstd = {"zstd", zstd_ctx_size, zstd_ctx_init, zstd_compress,
                                        zstd_decompress};

/* Every compressor, the default first. */
static const upg__codec_t *const codecs[] = {&codec_lz4, &codec_zstd};

const upg__codec_t *upg__codec_find(const char *name) {
  for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++)
    if (strcmp(codecs[i]->name, name) == 0) return codecs[i];
  return NULL;
}

const char *upg__codec_names(void) { return "lz4, zstd"; }
