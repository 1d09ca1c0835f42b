/* test_fuzz_corpus.c: every file of a fuzz target's corpus through the
 * target in an ordinary build (tests/CMakeLists.txt builds this file once
 * per target, with FUZZ_CORPUS_DIR): inputs that once crashed stay fixed,
 * and the seeds keep working. The targets abort on a broken invariant,
 * which fails the test. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

Test(fuzz_corpus, every_input_runs_without_a_crash, .timeout = 60) {
  DIR *d = opendir(FUZZ_CORPUS_DIR);
  cr_assert_not_null(d, "%s", FUZZ_CORPUS_DIR);
  size_t files = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (e->d_name[0] == '.') continue;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", FUZZ_CORPUS_DIR, e->d_name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    cr_assert_eq(LLVMFuzzerTestOneInput(buf, n), 0, "%s", path);
    files++;
  }
  closedir(d);
  cr_assert_geq(files, 8, "the seed corpus is there");
}
