/* SPDX-License-Identifier: Apache-2.0 */
/* The metric metadata store: remote-write decoding, latest entry wins, tenants, the
 * /api/v1/metadata shape with limit, limit_per_metric and metric, bounds, and the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aggregator/storage/metadata.h"
#include "common/buf.h"
#include "common/error.h"

/* Appends a protobuf varint. */
static void put_varint(struct nn_buf *b, uint64_t v)
{
  while (v >= 0x80) {
    nn_buf_appendc(b, (char)(v | 0x80));
    v >>= 7;
  }
  nn_buf_appendc(b, (char)v);
}

static void put_str(struct nn_buf *b, int field, const char *s)
{
  put_varint(b, (uint64_t)field << 3 | 2);
  put_varint(b, strlen(s));
  nn_buf_appends(b, s);
}

/* Appends WriteRequest.metadata (field 3) = MetricMetadata{type, family, help, unit}. */
static void put_metadata(struct nn_buf *b, int type, const char *fam, const char *help,
                         const char *unit)
{
  struct nn_buf m;
  nn_buf_init(&m, 1 << 20);
  put_varint(&m, 1 << 3 | 0);
  put_varint(&m, (uint64_t)type);
  put_str(&m, 2, fam);
  put_str(&m, 4, help);
  put_str(&m, 5, unit);
  put_varint(b, 3 << 3 | 2);
  put_varint(b, m.len);
  nn_buf_append(b, m.data, m.len);
  nn_buf_fini(&m);
}

static char *json(const struct nn_metadata *md, const char *tenant, const char *metric, long limit,
                  long per_metric)
{
  static char out[4096];
  struct nn_buf b;
  nn_buf_init(&b, 1 << 20);
  assert_int_equal(nn_metadata_json(md, tenant, metric, limit, per_metric, &b), 0);
  snprintf(out, sizeof(out), "%s", b.data);
  nn_buf_fini(&b);
  return out;
}

static void write_request_metadata_is_stored_and_latest_wins(void **state)
{
  (void)state;
  struct nn_metadata *md = nn_metadata_create(NULL, 100);
  struct nn_buf b;
  nn_buf_init(&b, 1 << 20);
  /* a TimeSeries (field 1) first, which is skipped */
  put_str(&b, 1, "\x0a\x08__name__");
  put_metadata(&b, 1, "http_requests_total", "Requests.", "");
  put_metadata(&b, 3, "http_request_duration_seconds", "Latency \"quoted\".", "seconds");
  assert_int_equal(nn_metadata_add_write_request(md, NULL, b.data, b.len), 2);
  assert_string_equal(json(md, NULL, NULL, -1, -1),
                      "{\"http_request_duration_seconds\":[{\"type\":\"histogram\",\"help\":"
                      "\"Latency \\\"quoted\\\".\",\"unit\":\"seconds\"}],"
                      "\"http_requests_total\":[{\"type\":\"counter\",\"help\":\"Requests.\","
                      "\"unit\":\"\"}]}");
  /* the same again changes nothing; a new help replaces the old one */
  struct nn_metadata_stats st;
  nn_metadata_stats(md, &st);
  uint64_t updates = st.updates_total;
  assert_int_equal(nn_metadata_add_write_request(md, NULL, b.data, b.len), 2);
  nn_metadata_stats(md, &st);
  assert_int_equal(st.updates_total, updates);
  assert_int_equal(
      nn_metadata_set(md, NULL, "http_requests_total", 19, 1, "All requests.", 13, "", 0), 1);
  assert_string_equal(json(md, NULL, "http_requests_total", -1, -1),
                      "{\"http_requests_total\":[{\"type\":\"counter\",\"help\":\"All "
                      "requests.\",\"unit\":\"\"}]}");
  /* truncated message: NN_ECORRUPT, entries before it kept */
  assert_int_equal(nn_metadata_add_write_request(md, NULL, b.data, b.len - 3), NN_ECORRUPT);
  nn_buf_fini(&b);
  nn_metadata_destroy(md);
}

static void limits_and_tenants_follow_prometheus(void **state)
{
  (void)state;
  struct nn_metadata *md = nn_metadata_create(NULL, 3);
  assert_int_equal(nn_metadata_set(md, "a", "up", 2, 2, "Up.", 3, "", 0), 1);
  assert_int_equal(nn_metadata_set(md, "b", "up", 2, 2, "Target up.", 10, "", 0), 1);
  assert_int_equal(nn_metadata_set(md, "b", "x", 1, 9, "X.", 2, "", 0), 1);
  /* the store is full: a fourth entry is dropped and counted */
  assert_int_equal(nn_metadata_set(md, "a", "y", 1, 1, "", 0, "", 0), NN_ELIMIT);
  /* no name, and not UTF-8 */
  assert_int_equal(nn_metadata_set(md, "a", "", 0, 1, "", 0, "", 0), NN_EINVAL);
  assert_int_equal(nn_metadata_set(md, "a", "up", 2, 1, "\xff", 1, "", 0), NN_ELIMIT);
  struct nn_metadata_stats st;
  nn_metadata_stats(md, &st);
  assert_int_equal(st.entries, 3);
  assert_int_equal(st.dropped_total, 2);
  /* tenant a sees its own entry; no tenant merges distinct entries of every tenant */
  assert_string_equal(json(md, "a", NULL, -1, -1),
                      "{\"up\":[{\"type\":\"gauge\",\"help\":\"Up.\",\"unit\":\"\"}]}");
  assert_string_equal(json(md, NULL, "up", -1, -1),
                      "{\"up\":[{\"type\":\"gauge\",\"help\":\"Up.\",\"unit\":\"\"},"
                      "{\"type\":\"gauge\",\"help\":\"Target up.\",\"unit\":\"\"}]}");
  /* an unknown type number reads as unknown */
  assert_string_equal(json(md, NULL, "x", -1, -1),
                      "{\"x\":[{\"type\":\"unknown\",\"help\":\"X.\",\"unit\":\"\"}]}");
  assert_string_equal(json(md, NULL, "up", -1, 1),
                      "{\"up\":[{\"type\":\"gauge\",\"help\":\"Up.\",\"unit\":\"\"}]}");
  assert_string_equal(json(md, NULL, NULL, 1, -1),
                      "{\"up\":[{\"type\":\"gauge\",\"help\":\"Up.\",\"unit\":\"\"},"
                      "{\"type\":\"gauge\",\"help\":\"Target up.\",\"unit\":\"\"}]}");
  assert_string_equal(json(md, NULL, NULL, 0, -1), "{}");
  assert_string_equal(json(md, "c", NULL, -1, -1), "{}");
  assert_string_equal(json(md, NULL, "nope", -1, -1), "{}");
  nn_metadata_destroy(md);
}

static void the_file_survives_a_restart(void **state)
{
  (void)state;
  char dir[] = "/tmp/nn-metadata-test.XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof(path), "%s/metadata", dir);
  struct nn_metadata *md = nn_metadata_create(path, 100);
  assert_int_equal(nn_metadata_load(md), 0); /* no file yet: empty */
  const char *help = "Tabs\tnewlines\nand \\backslashes.";
  assert_int_equal(nn_metadata_set(md, "t1", "odd_total", 9, 1, help, strlen(help), "bytes", 5), 1);
  assert_int_equal(nn_metadata_set(md, NULL, "up", 2, 2, "Up.", 3, "", 0), 1);
  assert_int_equal(nn_metadata_save(md), 0);
  char before[4096];
  snprintf(before, sizeof(before), "%s", json(md, NULL, NULL, -1, -1));
  nn_metadata_destroy(md);

  md = nn_metadata_create(path, 100);
  assert_int_equal(nn_metadata_load(md), 0);
  assert_string_equal(json(md, NULL, NULL, -1, -1), before);
  assert_string_equal(json(md, "t1", NULL, -1, -1),
                      "{\"odd_total\":[{\"type\":\"counter\",\"help\":\"Tabs\\tnewlines\\nand "
                      "\\\\backslashes.\",\"unit\":\"bytes\"}]}");
  nn_metadata_destroy(md);

  /* a torn last line: what precedes it is kept, the load says corrupt */
  FILE *f = fopen(path, "ab");
  assert_non_null(f);
  fputs("torn\t", f);
  fclose(f);
  md = nn_metadata_create(path, 100);
  assert_int_equal(nn_metadata_load(md), NN_ECORRUPT);
  assert_string_equal(json(md, NULL, NULL, -1, -1), before);
  nn_metadata_destroy(md);
  unlink(path);
  rmdir(dir);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(write_request_metadata_is_stored_and_latest_wins),
      cmocka_unit_test(limits_and_tenants_follow_prometheus),
      cmocka_unit_test(the_file_survives_a_restart),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
