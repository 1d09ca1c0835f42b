/* test_options.c: every option from code, environment and default, and
 * every bad value failing init with its own code and a message naming the
 * variable. */
#include <stdlib.h>

#include "helpers.h"
#include "internal.h"

static void expect_env_failure(const char *var, const char *value, int code) {
  setenv(var, value, 1);
  int rc = upg_init(NULL);
  cr_assert_eq(rc, code, "%s=%s gave %s", var, value, upg_err_name(rc));
  cr_assert_not_null(strstr(upg_last_error(), var), "message '%s' names %s", upg_last_error(), var);
  unsetenv(var);
}

Test(options, budget_zero_tiny_or_unparsable_fails_naming_the_variable, .timeout = 10) {
  expect_env_failure("UPAGER_BUDGET", "0", UPG_EBUDGET);
  expect_env_failure("UPAGER_BUDGET", "1K", UPG_EBUDGET);
  expect_env_failure("UPAGER_BUDGET", "12X", UPG_EBUDGET);
  expect_env_failure("UPAGER_BUDGET", "", UPG_EBUDGET);
  expect_env_failure("UPAGER_BUDGET", "99999999999T", UPG_EBUDGET);
}

Test(options, page_size_must_be_a_power_of_two_multiple_of_the_system_page, .timeout = 10) {
  expect_env_failure("UPAGER_PAGE_SIZE", "12288", UPG_EPAGESIZE);
  expect_env_failure("UPAGER_PAGE_SIZE", "3000", UPG_EPAGESIZE);
  expect_env_failure("UPAGER_PAGE_SIZE", "2048", UPG_EPAGESIZE);
  expect_env_failure("UPAGER_PAGE_SIZE", "big", UPG_EPAGESIZE);
}

Test(options, unknown_policy_fails_and_lists_the_known_ones, .timeout = 10) {
  expect_env_failure("UPAGER_POLICY", "lru", UPG_EPOLICY);
  cr_assert_not_null(strstr(upg_last_error(), "clock"));
}

Test(options, unknown_store_fails_naming_the_variable_and_the_stores, .timeout = 10) {
  expect_env_failure("UPAGER_STORE", "redis", UPG_EOPTION);
  cr_assert_not_null(strstr(upg_last_error(), "UPAGER_STORE"));
  cr_assert_not_null(strstr(upg_last_error(), "file"));
}

Test(options, unknown_fault_source_fails_naming_the_variable_and_the_sources, .timeout = 10) {
  expect_env_failure("UPAGER_FAULT", "mprotect", UPG_EOPTION);
  cr_assert_not_null(strstr(upg_last_error(), "sigsegv"));
}

Test(options, swap_dir_missing_or_unusable_fails, .timeout = 10) {
  expect_env_failure("UPAGER_SWAP_DIR", "/nonexistent/upager", UPG_ESWAPDIR);
  expect_env_failure("UPAGER_SWAP_DIR", "/etc/hostname", UPG_ESWAPDIR);
  expect_env_failure("UPAGER_SWAP_DIR", "/proc", UPG_ESWAPDIR);
}

Test(options, stats_and_max_maps_reject_bad_values, .timeout = 10) {
  expect_env_failure("UPAGER_STATS", "maybe", UPG_EOPTION);
  expect_env_failure("UPAGER_MAX_MAPS", "10", UPG_EOPTION);
  expect_env_failure("UPAGER_MAX_MAPS", "100000000", UPG_EOPTION);
}

Test(options, a_bad_value_set_in_code_is_named_as_such, .timeout = 10) {
  upg_options_t opt = {0};
  opt.budget = 100;
  cr_assert_eq(upg_init(&opt), UPG_EBUDGET);
  cr_assert_not_null(strstr(upg_last_error(), "upg_options_t.budget"), "%s", upg_last_error());
  opt.budget = 1 << 20;
  opt.page_size = 5000;
  cr_assert_eq(upg_init(&opt), UPG_EPAGESIZE);
}

Test(options, code_wins_over_the_environment, .timeout = 10) {
  setenv("UPAGER_BUDGET", "0", 1);
  setenv("UPAGER_POLICY", "nonsense", 1);
  upg_options_t opt = {0};
  opt.budget = 2 << 20;
  opt.policy = "fifo";
  cr_assert_eq(upg_init(&opt), 0, "%s", upg_last_error());
  upg_stats_t s = stats_now();
  cr_assert_eq(s.frames, 512);
}

Test(options, environment_sets_budget_page_size_and_is_read_once, .timeout = 10) {
  setenv("UPAGER_BUDGET", "2M", 1);
  setenv("UPAGER_PAGE_SIZE", "16K", 1);
  setenv("UPAGER_MAX_MAPS", "1000", 1);
  cr_assert_eq(upg_init(NULL), 0, "%s", upg_last_error());
  setenv("UPAGER_BUDGET", "0", 1); /* too late to matter */
  char *p = upg_map(1, 0);
  cr_assert_not_null(p);
  p[0] = 1;
  upg_stats_t s = stats_now();
  cr_assert_eq(s.frames, 128);
  cr_assert_eq(s.page_size, 16384);
  cr_assert_eq(s.maps_limit, 1000);
}

Test(options, defaults_are_64m_and_the_system_page, .timeout = 10) {
  cr_assert_eq(upg_init(NULL), 0, "%s", upg_last_error());
  upg_stats_t s = stats_now();
  cr_assert_eq(s.frames * s.page_size, 64 << 20);
  cr_assert_eq(s.page_size, (uint64_t)sysconf(_SC_PAGESIZE));
}

Test(options, a_region_mapped_first_starts_the_runtime_from_the_environment, .timeout = 10) {
  setenv("UPAGER_BUDGET", "1M", 1);
  char *p = upg_map(4096, 0);
  cr_assert_not_null(p);
  cr_assert_eq(stats_now().frames, 256);
}

Test(options, a_region_mapped_first_with_a_bad_environment_fails_with_errno, .timeout = 10) {
  setenv("UPAGER_BUDGET", "lots", 1);
  cr_assert_null(upg_map(4096, 0));
  cr_assert_eq(errno, -UPG_EBUDGET);
}

Test(options, sizes_parse_with_suffixes, .timeout = 10) {
  size_t v;
  cr_assert_eq(upg_parse_size("64M", &v), 0);
  cr_assert_eq(v, (size_t)64 << 20);
  cr_assert_eq(upg_parse_size("2g", &v), 0);
  cr_assert_eq(v, (size_t)2 << 30);
  cr_assert_eq(upg_parse_size("1TiB", &v), 0);
  cr_assert_eq(v, (size_t)1 << 40);
  cr_assert_eq(upg_parse_size("4096", &v), 0);
  cr_assert_eq(v, 4096);
  cr_assert_neq(upg_parse_size("-1", &v), 0);
  cr_assert_neq(upg_parse_size("1Q", &v), 0);
}

Test(options, every_error_code_has_a_name_and_a_message, .timeout = 10) {
#define CHECK_(name, code, text)              \
  cr_assert_str_eq(upg_strerror(code), text); \
  cr_assert_str_eq(upg_err_name(code), "UPG_" #name);
  UPG_ERRNO_MAP(CHECK_)
#undef CHECK_
  cr_assert_str_eq(upg_strerror(-999999), "unknown error");
}
