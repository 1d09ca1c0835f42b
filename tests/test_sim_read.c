/* test_sim_read.c: the trace readers: each format, compression, and the
 * messages that name the trace and the line of bad input. */
#include <errno.h>
#include <stdio.h>
#include <zstd.h>

#include "sim_helpers.h"
#include "upt_decode.h"

/* All references of `r` (at most 64), or the negative errno. */
static long read_all(upg__refs_t *r, uint64_t *out) {
  long n = 0, got;
  while ((got = upg__refs_next(r, out + n, 3)) > 0) n += got; /* small batches cross runs */
  return got < 0 ? got : n;
}

Test(read, text_pages_hex_addresses_comments_blank_lines, .timeout = 10) {
  static const char text[] = "# a comment\n7\n  0x2000  \n\n0x1fff # address in page 1\n\t42\r\n9";
  upg__refs_t *r = reader_over("t.txt", text, strlen(text), 0, NULL);
  uint64_t refs[64];
  cr_assert_eq(read_all(r, refs), 5);
  uint64_t want[] = {7, 2, 1, 42, 9};
  for (int i = 0; i < 5; i++) cr_assert_eq(refs[i], want[i], "reference %d", i);
  cr_assert_str_eq(upg__refs_format(r)->name, "text");
  cr_assert_eq(upg__refs_unit(r), 4096);
  upg__refs_close(r);
}

static void expect_error(const char *name, const char *text, const upg__trace_format_t *f,
                         const char *where) {
  upg__refs_t *r = reader_over(name, text, strlen(text), 0, f);
  uint64_t refs[64];
  cr_assert_eq(read_all(r, refs), -EINVAL, "%s", text);
  cr_assert(strstr(upg__refs_error(r), where) == upg__refs_error(r), "'%s' should start with '%s'",
            upg__refs_error(r), where);
  upg__refs_close(r);
}

Test(read, malformed_lines_are_named_by_file_and_line, .timeout = 10) {
  expect_error("bad.txt", "1\n2\nthree\n4\n", NULL, "bad.txt:3: ");
  expect_error("bad.txt", "1\n2 3\n", NULL, "bad.txt:2: ");
  expect_error("bad.txt", "99999999999999999999\n", NULL, "bad.txt:1: ");
  expect_error("bad.txt", "0x\n", NULL, "bad.txt:1: ");
  expect_error("bad.txt", "18446744073709551615\n", NULL, "bad.txt:1: page number too large");
  expect_error("x.lis", "1 8 0 0\n5 0 0 1\n", NULL, "x.lis:2: block count is 0");
  expect_error("x.lis", "1 8 0\n", NULL, "x.lis:1: ");
  expect_error("x.lis", "1 8 0 0 9\n", NULL, "x.lis:1: ");
}

Test(read, arc_lines_expand_into_single_block_references, .timeout = 10) {
  static const char text[] = "100 3 0 0\n7 1 0 1\n\n100 2 0 2\n";
  upg__refs_t *r = reader_over("OLTP.lis", text, strlen(text), 0, NULL);
  uint64_t refs[64];
  cr_assert_eq(read_all(r, refs), 6);
  uint64_t want[] = {100, 101, 102, 7, 100, 101};
  for (int i = 0; i < 6; i++) cr_assert_eq(refs[i], want[i]);
  cr_assert_str_eq(upg__refs_format(r)->name, "arc");
  cr_assert_eq(upg__refs_unit(r), 512);
  upg__refs_close(r);
}

Test(read, empty_input_has_no_references, .timeout = 10) {
  uint64_t refs[64];
  upg__refs_t *r = reader_over("e.txt", "", 0, 0, NULL);
  cr_assert_eq(read_all(r, refs), 0);
  upg__refs_close(r);
  r = reader_over("c.txt", "# only a comment\n\n", 18, 0, NULL);
  cr_assert_eq(read_all(r, refs), 0);
  upg__refs_close(r);
}

Test(read, zstd_compressed_text_reads_like_plain, .timeout = 10) {
  static const char text[] = "1\n2\n3\n0x4000\n";
  char z[256];
  size_t zn = ZSTD_compress(z, sizeof z, text, strlen(text), 3);
  cr_assert(!ZSTD_isError(zn));
  upg__refs_t *r = reader_over("t.txt.zst", z, zn, 1, NULL);
  uint64_t refs[64];
  cr_assert_eq(read_all(r, refs), 4);
  cr_assert_eq(refs[3], 4);
  upg__refs_close(r);
  /* Cut short, the frame is reported, not silently accepted. */
  r = reader_over("t.txt.zst", z, zn - 3, 1, NULL);
  cr_assert_lt(read_all(r, refs), 0);
  upg__refs_close(r);
}

static size_t put_le(unsigned char *p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) p[i] = (unsigned char)(v >> (8 * i));
  return (size_t)bytes;
}

/* A upt trace of `n` faults on the given pages, in the documented layout
 * written byte by byte (not through the runtime's structs). */
static size_t make_upt(unsigned char *buf, const uint64_t *pages, size_t n, uint32_t page_size) {
  size_t off = 0;
  memcpy(buf, "UPT1", 4), off = 4;
  off += put_le(buf + off, 1, 4);
  off += put_le(buf + off, page_size, 4);
  off += put_le(buf + off, 0, 4);
  for (size_t i = 0; i < n; i++) {
    off += put_le(buf + off, 1000 * i, 8);
    off += put_le(buf + off, pages[i], 8);
    off += put_le(buf + off, i % UPG_TRACE_KINDS, 1);
    off += put_le(buf + off, 0, 1);
    off += put_le(buf + off, 3, 2);
    off += put_le(buf + off, 0, 4);
  }
  return off;
}

Test(read, upt_is_detected_by_magic_and_read_record_by_record, .timeout = 10) {
  unsigned char buf[16 + 24 * 4];
  static const uint64_t pages[] = {0x7f0000001, 5, 0x7f0000001, 9};
  size_t len = make_upt(buf, pages, 4, 16384);
  upg__refs_t *r = reader_over("run.trace", buf, len, 0, NULL);
  uint64_t refs[64];
  cr_assert_eq(read_all(r, refs), 4);
  for (int i = 0; i < 4; i++) cr_assert_eq(refs[i], pages[i]);
  cr_assert_str_eq(upg__refs_format(r)->name, "upt");
  cr_assert_eq(upg__refs_unit(r), 16384);
  upg__refs_close(r);
  upg_trace_record_t rec;
  const char *why;
  cr_assert_eq(upg__upt_decode_record(buf + 16 + 24, &rec, &why), 0);
  cr_assert_eq(rec.time_ns, 1000);
  cr_assert_eq(rec.kind, 1);
  cr_assert_eq(rec.region, 3);
}

Test(read, upt_bad_header_and_truncated_record_are_errors, .timeout = 10) {
  unsigned char buf[16 + 24 * 2];
  static const uint64_t pages[] = {1, 2};
  size_t len = make_upt(buf, pages, 2, 4096);
  uint64_t refs[64];
  upg__refs_t *r = reader_over("cut.upt", buf, len - 5, 0, &upg__format_upt);
  cr_assert_eq(read_all(r, refs), -EINVAL);
  cr_assert_str_eq(upg__refs_error(r), "cut.upt: record 2: truncated record");
  upg__refs_close(r);
  buf[8] = 3; /* page size 4099: not a power of two */
  r = reader_over("hdr.upt", buf, len, 0, &upg__format_upt);
  cr_assert_eq(read_all(r, refs), -EINVAL);
  cr_assert(strstr(upg__refs_error(r), "power of two") != NULL);
  upg__refs_close(r);
  r = reader_over("short.upt", buf, 10, 0, &upg__format_upt);
  cr_assert_eq(read_all(r, refs), -EINVAL);
  upg__refs_close(r);
}

Test(read, a_line_over_the_buffer_is_an_error_not_a_hang, .timeout = 10) {
  size_t len = (2u << 20) + 10;
  char *text = malloc(len);
  memset(text, ' ', len);
  text[len - 2] = '7', text[len - 1] = '\n';
  upg__refs_t *r = reader_over("long.txt", text, len, 0, NULL);
  uint64_t refs[64];
  cr_assert_eq(read_all(r, refs), -EINVAL);
  cr_assert(strstr(upg__refs_error(r), "long.txt:1: line longer") != NULL, "%s",
            upg__refs_error(r));
  upg__refs_close(r);
  free(text);
}

/* The ARC reader's fast path (format_arc.c) takes lines of the common
 * shape and leaves the rest, and lines cut by a read's end, to the general
 * parser: over lines of every field length and of odd spacing, many reads
 * long, the references must be what each line says. */
Test(read, arc_lines_of_every_shape_expand_alike_across_reads, .timeout = 10) {
  enum { LINES = 30000 };
  static const char *const shapes[] = {"%llu %llu 0 %d\n", "%llu\t%llu 0 %d\n",
                                       "%llu %llu 0 %d\r\n", "  %llu %llu 0 %d \n",
                                       "000%llu %llu 12345678901 %d\n"};
  char *text = malloc((size_t)LINES * 64);
  uint64_t *want = malloc(LINES * 3 * sizeof *want), *got = malloc(LINES * 3 * sizeof *got);
  size_t len = 0, nwant = 0;
  uint64_t start = 1;
  for (int i = 0; i < LINES; i++) {
    start = start * 10 + (uint64_t)(i % 10); /* 1 to 19 digits, then again */
    if (start >= 1000000000000000000ull) start = (uint64_t)i % 7;
    uint64_t count = 1 + (uint64_t)i % 3;
    len += (size_t)sprintf(text + len, shapes[i % 13 == 0 ? i / 13 % 5 : 0],
                           (unsigned long long)start, (unsigned long long)count, i);
    for (uint64_t k = 0; k < count; k++) want[nwant++] = start + k;
  }
  upg__refs_t *r = reader_over("every.lis", text, len, 0, NULL);
  long n = 0, step;
  while ((step = upg__refs_next(r, got + n, 4096)) > 0) n += step;
  cr_assert_eq(step, 0, "%s", upg__refs_error(r));
  cr_assert_eq((size_t)n, nwant);
  for (size_t i = 0; i < nwant; i++) cr_assert_eq(got[i], want[i], "reference %zu", i);
  upg__refs_close(r);
  free(text), free(want), free(got);
}
