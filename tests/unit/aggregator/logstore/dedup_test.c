/* SPDX-License-Identifier: Apache-2.0 */
/* Duplicates older than the head: an entry already cut into a chunk is dropped when it is
 * pushed again (same stream, timestamp and line), re-batched or not, before and after a
 * restart; near misses are kept; the decoded-chunk cache stays under its byte cap. */
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
#include "common/log.h"
#include "common/metrics.h"

#define SEC    INT64_C(1000000000)
#define T0     (INT64_C(1700000000) * SEC)
#define STREAM "{app=\"crash\"}"
#define NLINES 600

static char tmpdir[256];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
  return remove(p);
}

static int setup(void **state)
{
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/nn-logdedup-test-XXXXXX");
  assert_non_null(mkdtemp(tmpdir));
  return 0;
}

static int teardown(void **state)
{
  nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  return 0;
}

static void config(struct nn_logstore_config *c)
{
  nn_logstore_config_defaults(c);
  c->data_dir = tmpdir;
  c->retention_ns = 0; /* test timestamps are from 2023 */
  c->chunk_target_bytes = 2048;
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

/* Line i of the test stream, at T0 + i us: what an agent's tailer would read. */
static char lines[NLINES][128];

static void make_lines(void)
{
  for (int i = 0; i < NLINES; i++)
    snprintf(lines[i], sizeof(lines[i]),
             "{\"seq\":%06d,\"msg\":\"GET /api/v1/items HTTP/1.1 200\",\"pad\":\"%0*d\"}", i,
             i % 40, 0);
}

static int64_t ts_of(int i)
{
  return T0 + (int64_t)i * 1000;
}

/* Pushes lines [from, to) in batches of `per` and returns the summed result. */
static struct nn_logstore_append_result push_range(struct nn_logstore *s, int from, int to, int per)
{
  struct nn_logstore_append_result sum = {0};
  struct nn_logstore_entry e[NLINES];
  for (int i = from; i < to; i += per) {
    int n = to - i < per ? to - i : per;
    for (int k = 0; k < n; k++)
      e[k] = (struct nn_logstore_entry){ts_of(i + k), lines[i + k], strlen(lines[i + k]), NULL, 0};
    struct nn_logstore_stream_in in = {STREAM, strlen(STREAM), NULL, 0, e, (size_t)n};
    struct nn_logstore_batch b = {NULL, NULL, &in, 1};
    struct nn_logstore_append_result res;
    assert_int_equal(nn_logstore_append_batch(s, &b, &res, NULL, NULL), 0);
    assert_int_equal(res.rejected, 0);
    sum.accepted += res.accepted;
    sum.duplicates += res.duplicates;
  }
  return sum;
}

static struct nn_logstore_append_result push1(struct nn_logstore *s, int64_t ts, const char *line)
{
  struct nn_logstore_entry e = {ts, line, strlen(line), NULL, 0};
  struct nn_logstore_stream_in in = {STREAM, strlen(STREAM), NULL, 0, &e, 1};
  struct nn_logstore_batch b = {NULL, NULL, &in, 1};
  struct nn_logstore_append_result res;
  assert_int_equal(nn_logstore_append_batch(s, &b, &res, NULL, NULL), 0);
  assert_int_equal(res.rejected, 0);
  return res;
}

static size_t count(struct nn_logstore *s)
{
  struct nn_logstore_result r;
  char err[256];
  int rc = nn_logstore_query(s, NULL, STREAM, INT64_MIN, INT64_MAX, NN_LOGSTORE_FORWARD, 0, &r, err,
                             sizeof(err));
  if (rc < 0)
    fail_msg("query: %s (%s)", nn_strerror(rc), err);
  size_t n = 0;
  for (size_t i = 0; i < r.n; i++)
    n += r.streams[i].n;
  nn_logstore_result_fini(&r);
  return n;
}

static struct nn_logstore_stats stats(struct nn_logstore *s)
{
  struct nn_logstore_stats st;
  nn_logstore_get_stats(s, &st);
  return st;
}

static void rebatched_resend_after_the_head_was_cut_is_dropped(void **state)
{
  struct nn_logstore_config c;
  config(&c);
  make_lines();
  struct nn_logstore *s = open_store(&c);
  struct nn_logstore_append_result r = push_range(s, 0, NLINES, 50);
  assert_int_equal(r.accepted, NLINES);
  assert_int_equal(r.duplicates, 0);
  struct nn_logstore_stats st = stats(s);
  assert_true(st.chunks_cut >= 10);
  /* In-order pushes never look into a chunk. */
  assert_int_equal(st.dedup_chunk_decodes, 0);
  assert_int_equal(st.dedup_cache_bytes, 0);

  /* An agent restarted from an older checkpoint re-reads and re-batches differently. */
  r = push_range(s, 100, NLINES, 37);
  assert_int_equal(r.accepted, 0);
  assert_int_equal(r.duplicates, NLINES - 100);
  /* And then goes on with new lines, in the same batches as the tail of the resend. */
  r = push_range(s, 0, 3, 3);
  assert_int_equal(r.duplicates, 3);
  assert_int_equal(count(s), NLINES);
  st = stats(s);
  assert_int_equal(st.duplicates_dropped, NLINES - 100 + 3);
  assert_true(st.dedup_chunk_decodes > 0);
  /* Each chunk is decoded once: later checks hit the cache. */
  assert_true(st.dedup_chunk_decodes <= st.chunks);
  nn_logstore_close(s);
}

static void near_misses_are_kept(void **state)
{
  struct nn_logstore_config c;
  config(&c);
  make_lines();
  struct nn_logstore *s = open_store(&c);
  push_range(s, 0, NLINES, 60);
  assert_int_equal(nn_logstore_flush(s), 0);
  /* Same timestamp, different line. */
  assert_int_equal(push1(s, ts_of(10), "another line at the same time").accepted, 1);
  /* Same line, different timestamp (inside the chunk's range, not on another entry). */
  assert_int_equal(push1(s, ts_of(10) + 1, lines[10]).accepted, 1);
  /* A line that is a prefix of the stored one. */
  char prefix[128];
  memcpy(prefix, lines[20], 30);
  prefix[30] = '\0';
  assert_int_equal(push1(s, ts_of(20), prefix).accepted, 1);
  /* But an exact resend still goes. */
  assert_int_equal(push1(s, ts_of(30), lines[30]).duplicates, 1);
  assert_int_equal(count(s), NLINES + 3);
  nn_logstore_close(s);
}

static void equal_timestamps_split_across_chunks_are_all_found(void **state)
{
  struct nn_logstore_config c;
  config(&c);
  struct nn_logstore *s = open_store(&c);
  /* Three lines with one timestamp, each cut into its own chunk. */
  const char *v[3] = {"first", "second", "third"};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(push1(s, T0, v[i]).accepted, 1);
    assert_int_equal(nn_logstore_flush(s), 0);
  }
  assert_int_equal(stats(s).chunks, 3);
  for (int i = 0; i < 3; i++)
    assert_int_equal(push1(s, T0, v[i]).duplicates, 1);
  assert_int_equal(push1(s, T0, "fourth").accepted, 1);
  assert_int_equal(count(s), 4);
  nn_logstore_close(s);
}

static void decisions_survive_wal_replay_and_restart(void **state)
{
  struct nn_logstore_config c;
  config(&c);
  make_lines();
  struct nn_logstore *s = open_store(&c);
  push_range(s, 0, 300, 50);
  assert_int_equal(nn_logstore_flush(s), 0);
  /* One batch: a resend of a cut line (dropped), an out-of-order line that is new (kept, in
   * the head, checked against the chunk covering it), and a newer line (kept). */
  char fresh[64];
  snprintf(fresh, sizeof(fresh), "new line between %d and %d", 150, 151);
  struct nn_logstore_entry e[3] = {{ts_of(150), lines[150], strlen(lines[150]), NULL, 0},
                                   {ts_of(150) + 1, fresh, strlen(fresh), NULL, 0},
                                   {ts_of(300), lines[300], strlen(lines[300]), NULL, 0}};
  struct nn_logstore_stream_in in = {STREAM, strlen(STREAM), NULL, 0, e, 3};
  struct nn_logstore_batch b = {NULL, NULL, &in, 1};
  struct nn_logstore_append_result res;
  assert_int_equal(nn_logstore_append_batch(s, &b, &res, NULL, NULL), 0);
  assert_int_equal(res.accepted, 2);
  assert_int_equal(res.duplicates, 1);
  /* More batches, some cut into chunks only after the first run (by the replay). */
  push_range(s, 301, 400, 33);
  assert_int_equal(count(s), 302 + 99);
  nn_logstore_close(s); /* heads are not flushed: the WAL brings them back */

  s = open_store(&c);
  struct nn_logstore_stats st = stats(s);
  /* Replayed entries are not taken for duplicates of themselves, and the dropped resend
   * does not come back. */
  assert_int_equal(count(s), 302 + 99);
  assert_int_equal(st.duplicates_dropped, 0);
  /* The same pushes get the same answers after the restart. */
  assert_int_equal(nn_logstore_append_batch(s, &b, &res, NULL, NULL), 0);
  assert_int_equal(res.accepted, 0);
  assert_int_equal(res.duplicates, 3);
  struct nn_logstore_append_result r = push_range(s, 0, 400, 41);
  assert_int_equal(r.accepted, 0);
  assert_int_equal(r.duplicates, 400);
  assert_int_equal(count(s), 401);
  assert_int_equal(nn_logstore_flush(s), 0);
  nn_logstore_close(s);

  /* Everything in chunks now, none of it in the cache of a fresh process. */
  s = open_store(&c);
  assert_int_equal(stats(s).dedup_cache_bytes, 0);
  r = push_range(s, 0, 400, 64);
  assert_int_equal(r.accepted, 0);
  assert_int_equal(r.duplicates, 400);
  assert_int_equal(count(s), 401);
  nn_logstore_close(s);
}

static void decoded_chunk_cache_stays_under_its_cap(void **state)
{
  struct nn_logstore_config c;
  config(&c);
  c.chunk_target_bytes = 1024;
  c.dedup_cache_bytes = 8192;
  make_lines();
  struct nn_logstore *s = open_store(&c);
  push_range(s, 0, NLINES, 20);
  assert_int_equal(nn_logstore_flush(s), 0);
  struct nn_logstore_stats st = stats(s);
  assert_true(st.chunks >= 20);
  /* Resend one line at a time, hopping between chunks: the cap holds after every push, yet
   * every duplicate is found. */
  uint64_t peak = 0;
  for (int j = 0; j < 300; j++) {
    int i = (j * 97) % NLINES;
    assert_int_equal(push1(s, ts_of(i), lines[i]).duplicates, 1);
    st = stats(s);
    assert_true(st.dedup_cache_bytes <= c.dedup_cache_bytes);
    if (st.dedup_cache_bytes > peak)
      peak = st.dedup_cache_bytes;
  }
  assert_true(peak > 0);
  assert_true(st.dedup_chunk_decodes > st.chunks); /* evicted chunks were decoded again */

  /* The gauge is on /metrics. */
  struct nn_metrics *m = nn_metrics_create();
  struct nn_buf out;
  char want[128];
  assert_non_null(m);
  assert_int_equal(nn_logstore_register_metrics(s, m), 0);
  nn_buf_init(&out, 1 << 20);
  assert_int_equal(nn_metrics_render(m, &out), 0);
  snprintf(want, sizeof(want), "nines_logstore_dedup_cache_bytes %llu\n",
           (unsigned long long)stats(s).dedup_cache_bytes);
  assert_non_null(strstr(out.data, want));
  assert_non_null(strstr(out.data, "nines_logstore_dedup_chunk_decodes_total "));
  nn_buf_fini(&out);
  nn_metrics_destroy(m);
  nn_logstore_close(s);

  /* A cap of zero keeps only the chunk used last, and still finds every duplicate. */
  c.dedup_cache_bytes = 0;
  s = open_store(&c);
  struct nn_logstore_append_result r = push_range(s, 0, NLINES, 50);
  assert_int_equal(r.duplicates, NLINES);
  st = stats(s);
  assert_true(st.dedup_cache_bytes > 0 && st.dedup_cache_bytes < 4096);
  assert_int_equal(st.dedup_checks_skipped, 0);
  assert_int_equal(count(s), NLINES);
  nn_logstore_close(s);
}

static void one_push_decodes_a_bounded_amount(void **state)
{
  /* A stream written far out of order: every chunk spans the same hour, so an old entry
   * falls inside all of them. A push may decode 32 MiB of chunks, no more. */
  enum { PER = 64, BATCHES = 320 };
  static char big[4096];
  memset(big, 'x', sizeof(big) - 1);
  struct nn_logstore_config c;
  config(&c);
  c.chunk_target_bytes = 256 * 1024;
  struct nn_logstore *s = open_store(&c);
  struct nn_logstore_entry e[PER];
  for (int b = 0; b < BATCHES; b++) {
    for (int k = 0; k < PER; k++) {
      int64_t ts = k == 0 ? T0 - b : T0 + 1800 * SEC + b * PER + k;
      e[k] = (struct nn_logstore_entry){ts, big, sizeof(big) - 1, NULL, 0};
    }
    struct nn_logstore_stream_in in = {STREAM, strlen(STREAM), NULL, 0, e, PER};
    struct nn_logstore_batch bt = {NULL, NULL, &in, 1};
    struct nn_logstore_append_result res;
    assert_int_equal(nn_logstore_append_batch(s, &bt, &res, NULL, NULL), 0);
    assert_int_equal(res.accepted, PER);
  }
  assert_int_equal(nn_logstore_flush(s), 0);
  struct nn_logstore_stats st = stats(s);
  assert_true(st.chunks >= 100); /* over 80 MiB in all */
  /* T0 is inside every chunk; the line there is in the first chunk, out of reach. */
  assert_int_equal(push1(s, T0, big).accepted, 1);
  st = stats(s);
  assert_int_equal(st.dedup_checks_skipped, 1);
  assert_true(st.dedup_chunk_decodes >= 50 && st.dedup_chunk_decodes < st.chunks);
  assert_true(st.dedup_cache_bytes <= c.dedup_cache_bytes);
  /* The budget is per push: the newest chunk is in reach again. */
  assert_int_equal(push1(s, T0 - (BATCHES - 1), big).duplicates, 1);
  nn_logstore_close(s);
}

static void dropped_chunks_leave_the_cache(void **state)
{
  struct nn_logstore_config c;
  config(&c);
  make_lines();
  struct nn_logstore *s = open_store(&c);
  push_range(s, 0, NLINES, 50);
  assert_int_equal(nn_logstore_flush(s), 0);
  assert_int_equal(push1(s, ts_of(5), lines[5]).duplicates, 1);
  assert_true(stats(s).dedup_cache_bytes > 0);
  nn_logstore_close(s);

  /* Time retention deletes every chunk: their decodings go with them. */
  c.retention_ns = SEC;
  s = open_store(&c);
  assert_int_equal(push1(s, ts_of(5), lines[5]).duplicates, 1);
  assert_true(stats(s).dedup_cache_bytes > 0);
  assert_int_equal(nn_logstore_tick(s, T0 + 3600 * SEC), 0);
  struct nn_logstore_stats st = stats(s);
  assert_int_equal(st.chunks, 0);
  assert_int_equal(st.dedup_cache_bytes, 0);
  /* With the chunk gone, the line is new again. */
  assert_int_equal(push1(s, ts_of(5), lines[5]).accepted, 1);
  nn_logstore_close(s);
}

int main(void)
{
  nn_log_setup(NN_LOG_ERROR, NN_LOG_LOGFMT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(rebatched_resend_after_the_head_was_cut_is_dropped, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(near_misses_are_kept, setup, teardown),
      cmocka_unit_test_setup_teardown(equal_timestamps_split_across_chunks_are_all_found, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(decisions_survive_wal_replay_and_restart, setup, teardown),
      cmocka_unit_test_setup_teardown(decoded_chunk_cache_stays_under_its_cap, setup, teardown),
      cmocka_unit_test_setup_teardown(dropped_chunks_leave_the_cache, setup, teardown),
      cmocka_unit_test_setup_teardown(one_push_decodes_a_bounded_amount, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
