/* SPDX-License-Identifier: Apache-2.0 */
/* Loki's series and index/stats answers from the log store: the union of several selectors
 * without duplicates, the time range judged per head entry and per chunk, tenants, bad
 * selectors, and the JSON shape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aggregator/logstore/logstore.h"
#include "common/buf.h"
#include "common/error.h"

#define SEC INT64_C(1000000000)
#define T0  (INT64_C(1700000000) * SEC)

static char tmpdir[256];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(p);
}

static int setup(void **state)
{
  (void)state;
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/nn-series-test-XXXXXX");
  assert_non_null(mkdtemp(tmpdir));
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  return 0;
}

static struct nn_logstore *open_store(void)
{
  struct nn_logstore_config c;
  nn_logstore_config_defaults(&c);
  c.data_dir = tmpdir;
  c.retention_ns = 0; /* test timestamps are from 2023 */
  struct nn_logstore *s = NULL;
  char err[256] = "";
  int rc = nn_logstore_open(&c, &s, err, sizeof(err));
  if (rc < 0)
    fail_msg("open: %s (%s)", nn_strerror(rc), err);
  return s;
}

static void push(struct nn_logstore *s, const char *tenant, const char *labels, int64_t ts,
                 const char *line)
{
  struct nn_logstore_entry e = {ts, line, strlen(line), NULL, 0};
  struct nn_logstore_stream_in in = {labels, strlen(labels), NULL, 0, &e, 1};
  struct nn_logstore_batch b = {tenant, NULL, &in, 1};
  struct nn_logstore_append_result res;
  assert_int_equal(nn_logstore_append_batch(s, &b, &res, NULL, NULL), 0);
  assert_int_equal(res.accepted, 1);
}

/* The series JSON for selectors over [start, end), or "error: <msg>". */
static char *series(struct nn_logstore *s, const char *tenant, const char *const *sels, size_t n,
                    int64_t start, int64_t end)
{
  struct nn_logstore_result r;
  char err[512];
  struct nn_buf b;
  nn_buf_init(&b, 1 << 20);
  int rc = nn_logstore_series(s, tenant, sels, n, start, end, &r, err, sizeof(err));
  if (rc < 0)
    nn_buf_printf(&b, "error %s: %s", nn_strerror(rc), err);
  else
    assert_int_equal(nn_logstore_series_write_json(&r, &b), 0);
  nn_logstore_result_fini(&r);
  char *out = strdup(b.data);
  nn_buf_fini(&b);
  return out;
}

static void fill(struct nn_logstore *s)
{
  push(s, NULL, "{app=\"api\",env=\"prod\"}", T0 + 10 * SEC, "a1");
  push(s, NULL, "{app=\"api\",env=\"prod\"}", T0 + 50 * SEC, "a2");
  push(s, NULL, "{app=\"web\",env=\"prod\"}", T0 + 20 * SEC, "w1");
  push(s, NULL, "{app=\"web\",env=\"dev\"}", T0 + 30 * SEC, "d1");
  push(s, "team-b", "{app=\"api\",env=\"prod\"}", T0 + 10 * SEC, "b1");
}

static void series_is_the_sorted_union_of_selectors_without_duplicates(void **state)
{
  (void)state;
  struct nn_logstore *s = open_store();
  fill(s);
  const char *one[] = {"{env=\"prod\"}"};
  char *j = series(s, NULL, one, 1, T0, T0 + 100 * SEC);
  assert_string_equal(j, "{\"status\":\"success\",\"data\":[{\"app\":\"api\",\"env\":\"prod\"},"
                         "{\"app\":\"web\",\"env\":\"prod\"}]}");
  free(j);
  /* Overlapping selectors: web/prod matches both and is listed once. */
  const char *two[] = {"{app=\"web\"}", "{env=~\"pr.*\"}"};
  j = series(s, NULL, two, 2, T0, T0 + 100 * SEC);
  assert_string_equal(j, "{\"status\":\"success\",\"data\":[{\"app\":\"api\",\"env\":\"prod\"},"
                         "{\"app\":\"web\",\"env\":\"dev\"},{\"app\":\"web\",\"env\":\"prod\"}]}");
  free(j);
  const char *none[] = {"{app=\"nothing\"}"};
  j = series(s, NULL, none, 1, T0, T0 + 100 * SEC);
  assert_string_equal(j, "{\"status\":\"success\",\"data\":[]}");
  free(j);
  /* Another tenant sees only its own stream. */
  const char *all[] = {"{app=~\".+\"}"};
  j = series(s, "team-b", all, 1, T0, T0 + 100 * SEC);
  assert_string_equal(j, "{\"status\":\"success\",\"data\":[{\"app\":\"api\",\"env\":\"prod\"}]}");
  free(j);
  j = series(s, "nobody", all, 1, T0, T0 + 100 * SEC);
  assert_string_equal(j, "{\"status\":\"success\",\"data\":[]}");
  free(j);
  nn_logstore_close(s);
}

static void series_time_range_is_exact_in_the_head_and_per_chunk_once_cut(void **state)
{
  (void)state;
  struct nn_logstore *s = open_store();
  fill(s);
  const char *all[] = {"{app=~\".+\"}"};
  /* [T0+25s, T0+45s): only dev (30 s). api has entries at 10 s and 50 s around the range,
   * which its first/last times alone would not tell apart. */
  char *j = series(s, NULL, all, 1, T0 + 25 * SEC, T0 + 45 * SEC);
  assert_string_equal(j, "{\"status\":\"success\",\"data\":[{\"app\":\"web\",\"env\":\"dev\"}]}");
  free(j);
  /* end is exclusive, start inclusive. */
  j = series(s, NULL, all, 1, T0 + 20 * SEC, T0 + 30 * SEC);
  assert_string_equal(j, "{\"status\":\"success\",\"data\":[{\"app\":\"web\",\"env\":\"prod\"}]}");
  free(j);
  j = series(s, NULL, all, 1, T0 + 60 * SEC, T0 + 100 * SEC);
  assert_string_equal(j, "{\"status\":\"success\",\"data\":[]}");
  free(j);
  /* Cut into chunks: api's one chunk spans 10..50 s, so the range now finds it (Loki's
   * index is chunk-granular as well); web/prod's chunk (20 s) still does not overlap. */
  assert_int_equal(nn_logstore_flush(s), 0);
  j = series(s, NULL, all, 1, T0 + 25 * SEC, T0 + 45 * SEC);
  assert_string_equal(j, "{\"status\":\"success\",\"data\":[{\"app\":\"api\",\"env\":\"prod\"},"
                         "{\"app\":\"web\",\"env\":\"dev\"}]}");
  free(j);
  j = series(s, NULL, all, 1, T0 + 60 * SEC, T0 + 100 * SEC);
  assert_string_equal(j, "{\"status\":\"success\",\"data\":[]}");
  free(j);
  nn_logstore_close(s);
}

static void series_rejects_bad_missing_and_filtered_selectors(void **state)
{
  (void)state;
  struct nn_logstore *s = open_store();
  fill(s);
  char *j = series(s, NULL, NULL, 0, T0, T0 + 100 * SEC);
  assert_non_null(strstr(j, "error"));
  assert_non_null(strstr(j, "at least one stream selector"));
  free(j);
  const char *bad[] = {"{env=\"prod\"}", "{env=prod}"};
  j = series(s, NULL, bad, 2, T0, T0 + 100 * SEC);
  assert_non_null(strstr(j, "invalid match[] {env=prod}: parse error at line 1, col"));
  free(j);
  const char *filt[] = {"{env=\"prod\"} |= \"x\""};
  j = series(s, NULL, filt, 1, T0, T0 + 100 * SEC);
  assert_non_null(strstr(j, "only label matchers are supported"));
  free(j);
  const char *empty[] = {"{app=~\".*\"}"};
  j = series(s, NULL, empty, 1, T0, T0 + 100 * SEC);
  assert_non_null(strstr(j, "empty-compatible value"));
  free(j);
  /* A bad selector is reported for a tenant that has no streams too. */
  j = series(s, "nobody", bad, 2, T0, T0 + 100 * SEC);
  assert_non_null(strstr(j, "invalid match[]"));
  free(j);
  nn_logstore_close(s);
}

static void index_stats_count_streams_chunks_entries_and_bytes(void **state)
{
  (void)state;
  struct nn_logstore *s = open_store();
  fill(s);
  struct nn_logstore_index_stats st;
  char err[256];
  assert_int_equal(nn_logstore_index_stats(s, NULL, "{env=\"prod\"} |= \"a\"", T0, T0 + 100 * SEC,
                                           &st, err, sizeof(err)),
                   0);
  assert_int_equal(st.streams, 2);
  assert_int_equal(st.chunks, 2); /* two heads */
  assert_int_equal(st.entries, 3);
  assert_int_equal(st.bytes, 6);
  assert_int_equal(nn_logstore_index_stats(s, NULL, "{app=\"api\"}", T0 + 40 * SEC, T0 + 100 * SEC,
                                           &st, err, sizeof(err)),
                   0);
  assert_int_equal(st.streams, 1);
  assert_int_equal(st.entries, 1);
  assert_int_equal(nn_logstore_flush(s), 0);
  assert_int_equal(nn_logstore_index_stats(s, NULL, "{app=\"api\"}", T0 + 40 * SEC, T0 + 100 * SEC,
                                           &st, err, sizeof(err)),
                   0);
  assert_int_equal(st.streams, 1);
  assert_int_equal(st.chunks, 1);
  assert_int_equal(st.entries, 2); /* the whole chunk counts */
  assert_true(st.bytes >= 4);
  assert_int_equal(
      nn_logstore_index_stats(s, NULL, "{app=\"none\"}", T0, T0 + 100 * SEC, &st, err, sizeof(err)),
      0);
  assert_int_equal(st.streams + st.chunks + st.entries + st.bytes, 0);
  assert_int_equal(
      nn_logstore_index_stats(s, NULL, "{app=}", T0, T0 + 100 * SEC, &st, err, sizeof(err)),
      NN_EINVAL);
  assert_non_null(strstr(err, "parse error"));
  nn_logstore_close(s);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(series_is_the_sorted_union_of_selectors_without_duplicates,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(series_time_range_is_exact_in_the_head_and_per_chunk_once_cut,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(series_rejects_bad_missing_and_filtered_selectors, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(index_stats_count_streams_chunks_entries_and_bytes, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
