/* SPDX-License-Identifier: Apache-2.0 */
/* The log store end to end: append and query (limits, directions, matchers, line
 * filters), duplicates, idempotency keys, WAL replay and torn tails, chunk cutting,
 * retention, compression, limits, group commit on a libuv loop and the JSON output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "aggregator/logstore/logstore.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/log.h"
#include "common/metrics.h"

#define SEC INT64_C(1000000000)
#define T0  (INT64_C(1700000000) * SEC)

static char tmpdir[256];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
  return remove(p);
}

static void rm_rf(const char *p)
{
  nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state)
{
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/nn-logstore-test-XXXXXX");
  assert_non_null(mkdtemp(tmpdir));
  return 0;
}

static int teardown(void **state)
{
  rm_rf(tmpdir);
  return 0;
}

static void config(struct nn_logstore_config *c)
{
  nn_logstore_config_defaults(c);
  c->data_dir = tmpdir;
  c->retention_ns = 0; /* test timestamps are from 2023 */
}

static struct nn_logstore *open_store(const struct nn_logstore_config *c)
{
  struct nn_logstore *s = NULL;
  char err[256] = "";
  int rc = nn_logstore_open(c, &s, err, sizeof(err));
  if (rc < 0)
    fail_msg("open: %s (%s)", nn_strerror(rc), err);
  return s;
}

static int push_key(struct nn_logstore *s, const char *tenant, const char *key, const char *labels,
                    int64_t ts, const char *line, struct nn_logstore_append_result *res)
{
  struct nn_logstore_entry e = {ts, line, strlen(line), NULL, 0};
  struct nn_logstore_stream_in in = {labels, strlen(labels), NULL, 0, &e, 1};
  struct nn_logstore_batch b = {tenant, key, &in, 1};
  struct nn_logstore_append_result tmp;
  return nn_logstore_append_batch(s, &b, res ? res : &tmp, NULL, NULL);
}

static void push(struct nn_logstore *s, const char *labels, int64_t ts, const char *line)
{
  struct nn_logstore_append_result res;
  assert_int_equal(push_key(s, NULL, NULL, labels, ts, line, &res), 0);
  assert_int_equal(res.rejected, 0);
}

static size_t count_q(struct nn_logstore *s, const char *tenant, const char *q, int64_t start,
                      int64_t end, enum nn_logstore_direction d, size_t limit)
{
  struct nn_logstore_result r;
  char err[512];
  int rc = nn_logstore_query(s, tenant, q, start, end, d, limit, &r, err, sizeof(err));
  if (rc < 0)
    fail_msg("query %s: %s (%s)", q, nn_strerror(rc), err);
  size_t n = 0;
  for (size_t i = 0; i < r.n; i++)
    n += r.streams[i].n;
  nn_logstore_result_fini(&r);
  return n;
}

static size_t count_all(struct nn_logstore *s, const char *q)
{
  return count_q(s, NULL, q, INT64_MIN, INT64_MAX, NN_LOGSTORE_FORWARD, 0);
}

static void two_streams(struct nn_logstore *s)
{
  char line[64];
  for (int i = 1; i <= 10; i++) {
    snprintf(line, sizeof(line), "a%d", i);
    push(s, "{app=\"api\", env=\"prod\"}", T0 + i * SEC, line);
    snprintf(line, sizeof(line), "b%d", i);
    push(s, "{env=\"prod\",app=\"web\"}", T0 + i * SEC + SEC / 2, line);
  }
}

static const struct nn_logstore_qstream *find_stream(const struct nn_logstore_result *r,
                                                     const char *app)
{
  for (size_t i = 0; i < r->n; i++)
    if (strcmp(nn_labels_get(r->streams[i].labels, r->streams[i].nlabels, "app"), app) == 0)
      return &r->streams[i];
  return NULL;
}

static void query_forward_and_backward_honour_limit_across_streams(void **state)
{
  struct nn_logstore_config c;
  config(&c);
  struct nn_logstore *s = open_store(&c);
  two_streams(s);
  struct nn_logstore_result r;
  char err[256];
  assert_int_equal(nn_logstore_query(s, NULL, "{env=\"prod\"}", INT64_MIN, INT64_MAX,
                                     NN_LOGSTORE_FORWARD, 5, &r, err, sizeof(err)),
                   0);
  assert_int_equal(r.n, 2);
  const struct nn_logstore_qstream *a = find_stream(&r, "api"), *b = find_stream(&r, "web");
  assert_non_null(a);
  assert_non_null(b);
  /* The five oldest: a1 b1 a2 b2 a3. */
  assert_int_equal(a->n, 3);
  assert_int_equal(b->n, 2);
  assert_string_equal(a->entries[0].line, "a1");
  assert_string_equal(a->entries[2].line, "a3");
  assert_true(a->entries[0].ts_ns < a->entries[1].ts_ns);
  assert_int_equal(r.stats.entries_returned, 5);
  nn_logstore_result_fini(&r);

  assert_int_equal(nn_logstore_query(s, NULL, "{env=\"prod\"}", INT64_MIN, INT64_MAX,
                                     NN_LOGSTORE_BACKWARD, 3, &r, err, sizeof(err)),
                   0);
  a = find_stream(&r, "api");
  b = find_stream(&r, "web");
  /* The three newest: b10 a10 b9. */
  assert_int_equal(a->n, 1);
  assert_int_equal(b->n, 2);
  assert_string_equal(a->entries[0].line, "a10");
  assert_string_equal(b->entries[0].line, "b10");
  assert_string_equal(b->entries[1].line, "b9");
  nn_logstore_result_fini(&r);

  /* start is inclusive, end exclusive. */
  assert_int_equal(
      count_q(s, NULL, "{app=\"api\"}", T0 + SEC, T0 + 3 * SEC, NN_LOGSTORE_FORWARD, 0), 2);
  assert_int_equal(count_all(s, "{env=\"prod\"}"), 20);
  nn_logstore_close(s);
}

static void matchers_select_streams_by_equality_regex_and_negation(void **state)
{
  struct nn_logstore_config c;
  config(&c);
  struct nn_logstore *s = open_store(&c);
  two_streams(s);
  push(s, "{app=\"db\", env=\"dev\"}", T0, "x");
  assert_int_equal(count_all(s, "{app=~\"a.*\"}"), 10);
  assert_int_equal(count_all(s, "{env=\"prod\", app!=\"api\"}"), 10);
  assert_int_equal(count_all(s, "{env=\"prod\", app!~\"w.*\"}"), 10);
  assert_int_equal(count_all(s, "{app=~\"api|web\"}"), 20);
  assert_int_equal(count_all(s, "{app=~\"api|web|db\", env!=\"prod\"}"), 1);
  assert_int_equal(count_all(s, "{app=\"nope\"}"), 0);
  assert_int_equal(count_all(s, "{app=~\".+\", missing=\"\"}"), 21);
  assert_int_equal(count_all(s, "{env=~\"prod|dev\", app=~`d.`}"), 1);
  struct nn_logstore_result r;
  char err[512];
  assert_int_equal(nn_logstore_query(s, NULL, "{app=~\".*\"}", INT64_MIN, INT64_MAX,
                                     NN_LOGSTORE_FORWARD, 0, &r, err, sizeof(err)),
                   NN_EINVAL);
  assert_non_null(strstr(err, "empty-compatible"));
  nn_logstore_result_fini(&r);
  assert_int_equal(nn_logstore_query(s, NULL, "{app=\"api\" |= \"x\"", INT64_MIN, INT64_MAX,
                                     NN_LOGSTORE_FORWARD, 0, &r, err, sizeof(err)),
                   NN_EINVAL);
  assert_non_null(strstr(err, "col 12"));
  nn_logstore_result_fini(&r);
  nn_logstore_close(s);
}

static void line_filters_contain_exclude_and_match_regexes(void **state)
{
  struct nn_logstore_config c;
  config(&c);
  struct nn_logstore *s = open_store(&c);
  push(s, "{app=\"api\"}", T0 + 1, "GET /health 200");
  push(s, "{app=\"api\"}", T0 + 2, "POST /login 500 error");
  push(s, "{app=\"api\"}", T0 + 3, "GET /api 404");
  assert_int_equal(count_all(s, "{app=\"api\"} |= \"GET\""), 2);
  assert_int_equal(count_all(s, "{app=\"api\"} |= \"GET\" != \"health\""), 1);
  assert_int_equal(count_all(s, "{app=\"api\"} |~ \"5\\\\d\\\\d\""), 1);
  assert_int_equal(count_all(s, "{app=\"api\"} |~ `5\\d\\d`"), 1);
  assert_int_equal(count_all(s, "{app=\"api\"} !~ \"^GET\""), 1);
  assert_int_equal(count_all(s, "{app=\"api\"} |= \"\""), 3);
  assert_int_equal(count_all(s, "{app=\"api\"} |~ \"(?i)get\" != \"404\""), 1);
  nn_logstore_close(s);
}

static void exact_duplicates_are_dropped_but_same_time_lines_kept(void **state)
{
  struct nn_logstore_config c;
  config(&c);
  struct nn_logstore *s = open_store(&c);
  struct nn_logstore_entry e[3] = {
      {T0, "one", 3, NULL, 0}, {T0, "one", 3, NULL, 0}, {T0, "two", 3, NULL, 0}};
  struct nn_logstore_stream_in in = {"{a=\"b\"}", 7, NULL, 0, e, 3};
  struct nn_logstore_batch b = {NULL, NULL, &in, 1};
  struct nn_logstore_append_result res;
  assert_int_equal(nn_logstore_append_batch(s, &b, &res, NULL, NULL), 0);
  assert_int_equal(res.accepted, 2);
  assert_int_equal(res.duplicates, 1);
  assert_int_equal(nn_logstore_append_batch(s, &b, &res, NULL, NULL), 0);
  assert_int_equal(res.accepted, 0);
  assert_int_equal(res.duplicates, 3);
  assert_int_equal(count_all(s, "{a=\"b\"}"), 2);
  struct nn_logstore_stats st;
  nn_logstore_get_stats(s, &st);
  assert_int_equal(st.duplicates_dropped, 4);
  assert_int_equal(st.entries_appended, 2);
  nn_logstore_close(s);
}

static void idempotency_key_resend_is_acknowledged_once_even_after_restart(void **state)
{
  struct nn_logstore_config c;
  config(&c);
  c.wal_segment_bytes = 4096;
  c.chunk_target_bytes = 2048;
  struct nn_logstore *s = open_store(&c);
  struct nn_logstore_append_result res;
  assert_int_equal(push_key(s, NULL, "batch-1", "{a=\"b\"}", T0, "hello", &res), 0);
  assert_int_equal(res.accepted, 1);
  assert_false(res.known_key);
  assert_int_equal(push_key(s, NULL, "batch-1", "{a=\"b\"}", T0 + 5, "other", &res), 0);
  assert_true(res.known_key);
  assert_int_equal(res.accepted, 0);
  /* Keys are per tenant. */
  assert_int_equal(push_key(s, "t2", "batch-1", "{a=\"b\"}", T0, "hello", &res), 0);
  assert_false(res.known_key);
  assert_int_equal(count_all(s, "{a=\"b\"}"), 1);
  nn_logstore_close(s);

  s = open_store(&c);
  assert_int_equal(push_key(s, NULL, "batch-1", "{a=\"b\"}", T0, "hello", &res), 0);
  assert_true(res.known_key);
  /* Roll many segments and let old ones be deleted: the key lives on in the snapshot
   * each new segment starts with. */
  char line[300];
  memset(line, 'x', sizeof(line) - 1);
  line[sizeof(line) - 1] = '\0';
  for (int i = 0; i < 200; i++)
    push(s, "{a=\"c\"}", T0 + i, line);
  assert_int_equal(nn_logstore_flush(s), 0);
  assert_int_equal(nn_logstore_tick(s, T0), 0);
  assert_int_equal(nn_logstore_sync(s), 0);
  struct nn_logstore_stats st;
  nn_logstore_get_stats(s, &st);
  assert_true(st.wal_segments_deleted > 5);
  nn_logstore_close(s);

  s = open_store(&c);
  assert_int_equal(push_key(s, NULL, "batch-1", "{a=\"b\"}", T0, "hello", &res), 0);
  assert_true(res.known_key);
  assert_int_equal(count_all(s, "{a=\"b\"}"), 1);
  assert_int_equal(count_all(s, "{a=\"c\"}"), 200);
  nn_logstore_close(s);
}

static void wal_replay_restores_heads_without_duplicating_cut_chunks(void **state)
{
  struct nn_logstore_config c;
  config(&c);
  c.chunk_target_bytes = 1024;
  struct nn_logstore *s = open_store(&c);
  char line[100];
  for (int i = 0; i < 500; i++) {
    snprintf(line, sizeof(line), "line %d of a stream that is cut into several chunks", i);
    push(s, "{job=\"x\"}", T0 + i * SEC, line);
    push(s, i % 2 ? "{job=\"y\"}" : "{job=\"z\"}", T0 + i * SEC, line);
  }
  struct nn_logstore_stats st;
  nn_logstore_get_stats(s, &st);
  assert_true(st.chunks_cut > 10);
  assert_true(st.head_bytes > 0);
  assert_int_equal(count_all(s, "{job=~\".+\"}"), 1000);
  nn_logstore_close(s);

  s = open_store(&c);
  assert_int_equal(count_all(s, "{job=\"x\"}"), 500);
  assert_int_equal(count_all(s, "{job=~\".+\"}"), 1000);
  /* Forward order survives chunk boundaries. */
  struct nn_logstore_result r;
  char err[256];
  assert_int_equal(nn_logstore_query(s, NULL, "{job=\"x\"}", INT64_MIN, INT64_MAX,
                                     NN_LOGSTORE_FORWARD, 0, &r, err, sizeof(err)),
                   0);
  for (size_t i = 1; i < r.streams[0].n; i++)
    assert_true(r.streams[0].entries[i - 1].ts_ns < r.streams[0].entries[i].ts_ns);
  nn_logstore_result_fini(&r);
  nn_logstore_close(s);
}

static long file_size(const char *p)
{
  struct stat sb;
  return stat(p, &sb) == 0 ? (long)sb.st_size : -1;
}

static void torn_wal_tail_is_truncated_at_every_offset(void **state)
{
  struct nn_logstore_config c;
  config(&c);
  struct nn_logstore *s = open_store(&c);
  for (int i = 0; i < 5; i++)
    push(s, "{a=\"b\"}", T0 + i, "base entry");
  assert_int_equal(nn_logstore_sync(s), 0);
  char seg[512];
  snprintf(seg, sizeof(seg), "%s/logs/wal/00000000", tmpdir);
  long start = file_size(seg);
  assert_true(start > 0);
  push(s, "{a=\"b\"}", T0 + 100, "the last record, which gets torn");
  nn_logstore_close(s);
  long end = file_size(seg);
  assert_true(end > start);
  FILE *f = fopen(seg, "rb");
  assert_non_null(f);
  char *bytes = malloc((size_t)end);
  assert_int_equal(fread(bytes, 1, (size_t)end, f), (size_t)end);
  fclose(f);

  char base[256];
  snprintf(base, sizeof(base), "%s", tmpdir);
  for (long cut = start; cut < end; cut++) {
    assert_true(snprintf(tmpdir, sizeof(tmpdir), "%s/torn%ld", base, cut) < (int)sizeof(tmpdir));
    char wal[512];
    assert_true(snprintf(wal, sizeof(wal), "%s/logs/wal", tmpdir) < (int)sizeof(wal));
    assert_int_equal(mkdir(tmpdir, 0755), 0);
    assert_true(snprintf(seg, sizeof(seg), "%s/logs", tmpdir) < (int)sizeof(seg));
    assert_int_equal(mkdir(seg, 0755), 0);
    assert_int_equal(mkdir(wal, 0755), 0);
    assert_true(snprintf(seg, sizeof(seg), "%s/00000000", wal) < (int)sizeof(seg));
    f = fopen(seg, "wb");
    assert_int_equal(fwrite(bytes, 1, (size_t)cut, f), (size_t)cut);
    fclose(f);
    s = open_store(&c);
    struct nn_logstore_stats st;
    nn_logstore_get_stats(s, &st);
    assert_int_equal(st.wal_corruptions, cut > start ? 1 : 0);
    assert_int_equal(count_all(s, "{a=\"b\"}"), 5);
    assert_int_equal(file_size(seg), start);
    nn_logstore_close(s);
    rm_rf(tmpdir);
  }
  snprintf(tmpdir, sizeof(tmpdir), "%s", base);
  free(bytes);
}

static void retention_by_time_deletes_old_chunks_and_files(void **state)
{
  struct nn_logstore_config c;
  config(&c);
  c.retention_ns = 7 * 24 * 3600 * SEC;
  struct nn_logstore *s = open_store(&c);
  int64_t now = T0 + 30 * 24 * 3600 * SEC;
  push(s, "{age=\"old\"}", now - 10 * 24 * 3600 * SEC, "old");
  push(s, "{age=\"new\"}", now - 3600 * SEC, "new");
  assert_int_equal(nn_logstore_flush(s), 0);
  struct nn_logstore_stats st;
  nn_logstore_get_stats(s, &st);
  assert_int_equal(st.chunks, 2);
  assert_int_equal(nn_logstore_tick(s, now), 0);
  nn_logstore_get_stats(s, &st);
  assert_int_equal(st.chunks, 1);
  assert_int_equal(st.retention_deleted_chunks, 1);
  assert_int_equal(count_all(s, "{age=\"old\"}"), 0);
  assert_int_equal(count_all(s, "{age=\"new\"}"), 1);
  nn_logstore_close(s);
  /* The old period's chunk file is gone, so a restart does not bring it back. */
  s = open_store(&c);
  nn_logstore_get_stats(s, &st);
  assert_int_equal(st.chunks, 1);
  nn_logstore_close(s);
}

static void retention_by_size_deletes_oldest_chunks_first(void **state)
{
  struct nn_logstore_config c;
  config(&c);
  struct nn_logstore *s = open_store(&c);
  char line[2048], lbl[64];
  unsigned seed = 7;
  for (int i = 0; i < 10; i++) {
    for (size_t k = 0; k < sizeof(line) - 1; k++) /* incompressible-ish */
      line[k] = (char)('a' + (seed = seed * 1103515245 + 12345) % 26);
    line[sizeof(line) - 1] = '\0';
    snprintf(lbl, sizeof(lbl), "{n=\"%d\"}", i);
    push(s, lbl, T0 + i * 3600 * SEC, line);
  }
  assert_int_equal(nn_logstore_flush(s), 0);
  struct nn_logstore_stats st;
  nn_logstore_get_stats(s, &st);
  assert_int_equal(st.chunks, 10);
  nn_logstore_close(s);
  c.retention_bytes = st.chunk_bytes * 45 / 100; /* room for 4 of 10 similar chunks */
  s = open_store(&c);
  assert_int_equal(nn_logstore_tick(s, T0), 0);
  nn_logstore_get_stats(s, &st);
  assert_int_equal(st.chunks, 4);
  assert_true(st.chunk_bytes <= c.retention_bytes);
  assert_int_equal(count_all(s, "{n=~\"[0-5]\"}"), 0);
  assert_int_equal(count_all(s, "{n=~\"[6-9]\"}"), 4);
  nn_logstore_close(s);
}

static void repetitive_json_access_logs_compress_below_thirty_percent(void **state)
{
  struct nn_logstore_config c;
  config(&c);
  struct nn_logstore *s = open_store(&c);
  const char *paths[] = {"/api/v1/users", "/api/v1/orders", "/healthz", "/api/v1/cart"};
  const char *methods[] = {"GET", "POST", "GET", "PUT"};
  char line[512];
  unsigned seed = 42;
  for (int i = 0; i < 5000; i++) {
    seed = seed * 1103515245 + 12345;
    snprintf(line, sizeof(line),
             "{\"ts\":\"2023-11-14T22:13:%02d.%03dZ\",\"level\":\"info\",\"method\":\"%s\","
             "\"path\":\"%s/%u\",\"status\":%d,\"duration_ms\":%u,\"bytes\":%u,"
             "\"remote\":\"10.0.%u.%u\",\"user_agent\":\"Mozilla/5.0 (X11; Linux x86_64) "
             "AppleWebKit/537.36\",\"trace_id\":\"%08x%08x\"}",
             i % 60, i % 1000, methods[seed % 4], paths[(seed >> 4) % 4], (seed >> 8) % 1000,
             (seed >> 12) % 10 ? 200 : 500, (seed >> 16) % 300, (seed >> 3) % 5000, (seed >> 5) % 4,
             (seed >> 7) % 250, seed, seed * 2654435761u);
    push(s, "{app=\"shop\", stream=\"stdout\"}", T0 + i * (SEC / 10), line);
  }
  assert_int_equal(nn_logstore_flush(s), 0);
  struct nn_logstore_stats st;
  nn_logstore_get_stats(s, &st);
  double ratio = (double)st.chunk_bytes / (double)st.chunk_raw_bytes;
  print_message("compression: %llu raw -> %llu bytes in %llu chunks, ratio %.3f\n",
                (unsigned long long)st.chunk_raw_bytes, (unsigned long long)st.chunk_bytes,
                (unsigned long long)st.chunks, ratio);
  assert_true(st.chunks >= 3);
  assert_true(ratio < 0.3);
  assert_int_equal(count_all(s, "{app=\"shop\"} |= \"\\\"status\\\":500\""),
                   count_all(s, "{app=\"shop\"} |~ \"status.:500\""));
  nn_logstore_close(s);
}

static void json_output_has_loki_query_range_shape(void **state)
{
  struct nn_logstore_config c;
  config(&c);
  struct nn_logstore *s = open_store(&c);
  struct nn_label meta[] = {{"trace_id", "abc"}};
  struct nn_logstore_entry e[2] = {{T0, "first \"quoted\"\n", 15, meta, 1},
                                   {T0 + 1, "second", 6, NULL, 0}};
  struct nn_logstore_stream_in in = {"{app=\"api\",env=\"prod\"}", 22, NULL, 0, e, 2};
  struct nn_logstore_batch b = {NULL, NULL, &in, 1};
  struct nn_logstore_append_result res;
  assert_int_equal(nn_logstore_append_batch(s, &b, &res, NULL, NULL), 0);
  assert_int_equal(res.accepted, 2);
  struct nn_logstore_result r;
  char err[256];
  assert_int_equal(nn_logstore_query(s, NULL, "{app=\"api\"}", T0, T0 + SEC, NN_LOGSTORE_BACKWARD,
                                     100, &r, err, sizeof(err)),
                   0);
  for (unsigned flags = 0; flags <= NN_LOGSTORE_JSON_METADATA; flags++) {
    struct nn_buf out;
    nn_buf_init(&out, 1 << 20);
    assert_int_equal(nn_logstore_result_write_json(&r, flags, &out), 0);
    json_error_t je;
    json_t *root = json_loadb(out.data, out.len, 0, &je);
    if (!root)
      fail_msg("bad JSON (%s): %s", je.text, out.data);
    assert_string_equal(json_string_value(json_object_get(root, "status")), "success");
    json_t *data = json_object_get(root, "data");
    assert_string_equal(json_string_value(json_object_get(data, "resultType")), "streams");
    json_t *result = json_object_get(data, "result");
    assert_int_equal(json_array_size(result), 1);
    json_t *stream = json_object_get(json_array_get(result, 0), "stream");
    assert_int_equal(json_object_size(stream), 2);
    assert_string_equal(json_string_value(json_object_get(stream, "env")), "prod");
    json_t *values = json_object_get(json_array_get(result, 0), "values");
    assert_int_equal(json_array_size(values), 2);
    json_t *v0 = json_array_get(values, 0), *v1 = json_array_get(values, 1);
    assert_string_equal(json_string_value(json_array_get(v0, 0)), "1700000000000000001");
    assert_string_equal(json_string_value(json_array_get(v0, 1)), "second");
    assert_string_equal(json_string_value(json_array_get(v1, 0)), "1700000000000000000");
    assert_string_equal(json_string_value(json_array_get(v1, 1)), "first \"quoted\"\n");
    assert_int_equal(json_array_size(v0), 2);
    assert_int_equal(json_array_size(v1), flags ? 3 : 2);
    if (flags)
      assert_string_equal(
          json_string_value(json_object_get(
              json_object_get(json_array_get(v1, 2), "structuredMetadata"), "trace_id")),
          "abc");
    json_t *summary = json_object_get(json_object_get(data, "stats"), "summary");
    assert_true(json_is_object(summary));
    assert_int_equal(json_integer_value(json_object_get(summary, "totalEntriesReturned")), 2);
    json_decref(root);
    nn_buf_fini(&out);
  }
  nn_logstore_result_fini(&r);
  nn_logstore_close(s);
}

static void label_names_and_values_respect_tenant_range_and_selector(void **state)
{
  struct nn_logstore_config c;
  config(&c);
  struct nn_logstore *s = open_store(&c);
  two_streams(s);
  struct nn_logstore_append_result res;
  assert_int_equal(push_key(s, "team-b", NULL, "{secret=\"x\"}", T0, "hidden", &res), 0);
  struct nn_strlist l;
  char err[256];
  assert_int_equal(
      nn_logstore_label_names(s, NULL, NULL, INT64_MIN, INT64_MAX, &l, err, sizeof(err)), 0);
  assert_int_equal(l.n, 2);
  assert_string_equal(l.v[0], "app");
  assert_string_equal(l.v[1], "env");
  struct nn_buf out;
  nn_buf_init(&out, 4096);
  assert_int_equal(nn_logstore_strlist_write_json(&l, &out), 0);
  assert_string_equal(out.data, "{\"status\":\"success\",\"data\":[\"app\",\"env\"]}");
  nn_buf_fini(&out);
  nn_strlist_free(&l);
  assert_int_equal(
      nn_logstore_label_values(s, NULL, "app", NULL, INT64_MIN, INT64_MAX, &l, err, sizeof(err)),
      0);
  assert_int_equal(l.n, 2);
  assert_string_equal(l.v[0], "api");
  assert_string_equal(l.v[1], "web");
  nn_strlist_free(&l);
  assert_int_equal(nn_logstore_label_values(s, NULL, "app", "{app=~\"w.+\"}", INT64_MIN, INT64_MAX,
                                            &l, err, sizeof(err)),
                   0);
  assert_int_equal(l.n, 1);
  nn_strlist_free(&l);
  assert_int_equal(
      nn_logstore_label_names(s, NULL, NULL, T0 + 100 * SEC, T0 + 200 * SEC, &l, err, sizeof(err)),
      0);
  assert_int_equal(l.n, 0);
  nn_strlist_free(&l);
  assert_int_equal(
      nn_logstore_label_names(s, "team-b", NULL, INT64_MIN, INT64_MAX, &l, err, sizeof(err)), 0);
  assert_int_equal(l.n, 1);
  assert_string_equal(l.v[0], "secret");
  nn_strlist_free(&l);
  assert_int_equal(count_all(s, "{secret=\"x\"}"), 0);
  assert_int_equal(
      count_q(s, "team-b", "{secret=\"x\"}", INT64_MIN, INT64_MAX, NN_LOGSTORE_FORWARD, 0), 1);
  nn_logstore_close(s);
}

static void limits_reject_long_lines_excess_streams_and_entries_too_far_behind(void **state)
{
  struct nn_logstore_config c;
  config(&c);
  c.max_line_bytes = 16;
  c.max_streams_per_tenant = 2;
  struct nn_logstore *s = open_store(&c);
  struct nn_logstore_append_result res;
  assert_int_equal(push_key(s, NULL, NULL, "{a=\"1\"}", T0, "this line is far too long", &res), 0);
  assert_int_equal(res.rejected, 1);
  assert_int_equal(res.first_error, NN_ETOOBIG);
  assert_non_null(strstr(res.error, "{a=\"1\"}"));
  push(s, "{a=\"1\"}", T0, "ok");
  push(s, "{a=\"2\"}", T0, "ok");
  assert_int_equal(push_key(s, NULL, NULL, "{a=\"3\"}", T0, "ok", &res), 0);
  assert_int_equal(res.first_error, NN_ELIMIT);
  assert_non_null(strstr(res.error, "{a=\"3\"}"));
  /* Another tenant has its own stream budget. */
  assert_int_equal(push_key(s, "other", NULL, "{a=\"3\"}", T0, "ok", &res), 0);
  assert_int_equal(res.accepted, 1);
  /* Out of order within max_chunk_age/2 (1h) is fine; older is "too far behind". */
  push(s, "{a=\"1\"}", T0 - 30 * 60 * SEC, "earlier");
  assert_int_equal(push_key(s, NULL, NULL, "{a=\"1\"}", T0 - 2 * 3600 * SEC, "ancient", &res), 0);
  assert_int_equal(res.first_error, NN_EOUTOFORDER);
  assert_non_null(strstr(res.error, "too far behind"));
  assert_int_equal(count_all(s, "{a=\"1\"}"), 2);
  /* Bad labels are rejected with the stream named. */
  assert_int_equal(push_key(s, NULL, NULL, "{a=}", T0, "x", &res), 0);
  assert_int_equal(res.first_error, NN_EINVAL);
  assert_non_null(strstr(res.error, "{a=}"));
  assert_int_equal(push_key(s, "bad/tenant", NULL, "{a=\"1\"}", T0, "x", &res), NN_EINVAL);
  nn_logstore_close(s);
}

struct cb_state {
  int calls;
  int status;
};

static void on_done(void *ud, int status)
{
  struct cb_state *st = ud;
  st->calls++;
  if (status < 0)
    st->status = status;
}

static void group_commit_fires_callbacks_on_the_loop_after_fsync(void **state)
{
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  struct nn_logstore_config c;
  config(&c);
  c.loop = &loop;
  c.sync_interval_ns = 20 * INT64_C(1000000);
  struct nn_logstore *s = open_store(&c);
  struct cb_state cs = {0, 0};
  for (int i = 0; i < 10; i++) {
    struct nn_logstore_entry e = {T0 + i, "x", 1, NULL, 0};
    struct nn_logstore_stream_in in = {"{a=\"b\"}", 7, NULL, 0, &e, 1};
    struct nn_logstore_batch b = {NULL, i < 5 ? NULL : "key", &in, 1};
    struct nn_logstore_append_result res;
    assert_int_equal(nn_logstore_append_batch(s, &b, &res, on_done, &cs), 0);
  }
  assert_int_equal(cs.calls, 0); /* never synchronously with a loop */
  for (int i = 0; i < 500 && cs.calls < 10; i++) {
    uv_run(&loop, UV_RUN_NOWAIT);
    usleep(10000);
  }
  assert_int_equal(cs.calls, 10);
  assert_int_equal(cs.status, 0);
  assert_int_equal(count_all(s, "{a=\"b\"}"), 6);
  nn_logstore_close(s);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void aged_heads_are_cut_and_wal_segments_released(void **state)
{
  struct nn_logstore_config c;
  config(&c);
  c.wal_segment_bytes = 4096;
  struct nn_logstore *s = open_store(&c);
  char line[200];
  memset(line, 'y', sizeof(line) - 1);
  line[sizeof(line) - 1] = '\0';
  for (int i = 0; i < 100; i++)
    push(s, "{a=\"b\"}", T0 + i, line);
  struct nn_logstore_stats st;
  nn_logstore_get_stats(s, &st);
  assert_int_equal(st.chunks_cut, 0);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t now = (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
  assert_int_equal(nn_logstore_tick(s, now), 0);
  nn_logstore_get_stats(s, &st);
  assert_int_equal(st.chunks_cut, 0); /* young and active */
  assert_int_equal(nn_logstore_tick(s, now + 3 * 3600 * SEC), 0);
  assert_int_equal(nn_logstore_sync(s), 0);
  nn_logstore_get_stats(s, &st);
  assert_int_equal(st.chunks_cut, 1);
  assert_int_equal(st.head_bytes, 0);
  assert_true(st.wal_segments_deleted >= 3);
  nn_logstore_close(s);
  s = open_store(&c);
  assert_int_equal(count_all(s, "{a=\"b\"}"), 100);
  nn_logstore_close(s);
}

static void key_of_a_partly_rejected_batch_is_not_remembered(void **state)
{
  struct nn_logstore_config c;
  config(&c);
  c.max_line_bytes = 8;
  struct nn_logstore *s = open_store(&c);
  struct nn_logstore_entry e[2] = {{T0, "short", 5, NULL, 0},
                                   {T0 + 1, "much too long", 13, NULL, 0}};
  struct nn_logstore_stream_in in = {"{a=\"b\"}", 7, NULL, 0, e, 2};
  struct nn_logstore_batch b = {NULL, "k-partial", &in, 1};
  struct nn_logstore_append_result res;
  assert_int_equal(nn_logstore_append_batch(s, &b, &res, NULL, NULL), 0);
  assert_int_equal(res.accepted, 1);
  assert_int_equal(res.rejected, 1);
  assert_int_equal(nn_logstore_append_batch(s, &b, &res, NULL, NULL), 0);
  assert_false(res.known_key);
  assert_int_equal(res.duplicates, 1);
  nn_logstore_close(s);
  s = open_store(&c);
  assert_int_equal(nn_logstore_append_batch(s, &b, &res, NULL, NULL), 0);
  assert_false(res.known_key);
  assert_int_equal(count_all(s, "{a=\"b\"}"), 1);
  nn_logstore_close(s);
}

static void stats_are_exposed_as_metrics(void **state)
{
  struct nn_logstore_config c;
  config(&c);
  struct nn_logstore *s = open_store(&c);
  struct nn_metrics *m = nn_metrics_create();
  assert_non_null(m);
  assert_int_equal(nn_logstore_register_metrics(s, m), 0);
  push(s, "{a=\"b\"}", T0, "one");
  push(s, "{a=\"b\"}", T0 + 1, "two");
  struct nn_buf out;
  nn_buf_init(&out, 1 << 20);
  assert_int_equal(nn_metrics_render(m, &out), 0);
  assert_non_null(strstr(out.data, "nines_logstore_entries_appended_total 2\n"));
  assert_non_null(strstr(out.data, "nines_logstore_streams 1\n"));
  assert_non_null(strstr(out.data, "# TYPE nines_logstore_chunks gauge"));
  nn_buf_fini(&out);
  nn_metrics_destroy(m);
  nn_logstore_close(s);
}

static void one_push_cannot_give_a_stream_more_than_a_chunk_holds(void **state)
{
  enum { N = 80 };
  static char big[256 * 1024];
  memset(big, 'z', sizeof(big));
  struct nn_logstore_config c;
  config(&c);
  struct nn_logstore *s = open_store(&c);
  struct nn_logstore_entry *ents = calloc(N, sizeof(*ents));
  assert_non_null(ents);
  for (int i = 0; i < N; i++)
    ents[i] = (struct nn_logstore_entry){T0 + i, big, sizeof(big), NULL, 0};
  struct nn_logstore_stream_in in = {"{a=\"2\"}", 7, NULL, 0, ents, N};
  struct nn_logstore_batch b = {NULL, NULL, &in, 1};
  struct nn_logstore_append_result res;
  assert_int_equal(nn_logstore_append_batch(s, &b, &res, NULL, NULL), 0);
  assert_true(res.accepted > 50 && res.accepted < N);
  assert_int_equal(res.first_error, NN_ELIMIT);
  struct nn_logstore_stats st;
  nn_logstore_get_stats(s, &st);
  assert_int_equal(st.chunks_cut, 1);
  assert_int_equal(count_all(s, "{a=\"2\"}"), res.accepted);
  free(ents);
  nn_logstore_close(s);
}

int main(void)
{
  nn_log_setup(NN_LOG_ERROR, NN_LOG_LOGFMT); /* the torn-tail test warns hundreds of times */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(query_forward_and_backward_honour_limit_across_streams, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(matchers_select_streams_by_equality_regex_and_negation, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(line_filters_contain_exclude_and_match_regexes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(exact_duplicates_are_dropped_but_same_time_lines_kept, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          idempotency_key_resend_is_acknowledged_once_even_after_restart, setup, teardown),
      cmocka_unit_test_setup_teardown(wal_replay_restores_heads_without_duplicating_cut_chunks,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(torn_wal_tail_is_truncated_at_every_offset, setup, teardown),
      cmocka_unit_test_setup_teardown(retention_by_time_deletes_old_chunks_and_files, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(retention_by_size_deletes_oldest_chunks_first, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(repetitive_json_access_logs_compress_below_thirty_percent,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(json_output_has_loki_query_range_shape, setup, teardown),
      cmocka_unit_test_setup_teardown(label_names_and_values_respect_tenant_range_and_selector,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          limits_reject_long_lines_excess_streams_and_entries_too_far_behind, setup, teardown),
      cmocka_unit_test_setup_teardown(group_commit_fires_callbacks_on_the_loop_after_fsync, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(aged_heads_are_cut_and_wal_segments_released, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(key_of_a_partly_rejected_batch_is_not_remembered, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(stats_are_exposed_as_metrics, setup, teardown),
      cmocka_unit_test_setup_teardown(one_push_cannot_give_a_stream_more_than_a_chunk_holds, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
