/* SPDX-License-Identifier: Apache-2.0 */
/* The querier's checkpoint in a series' open chunk (querier.c decode_head): a query leaves
 * the decoder's state at the last sample before its range, and a later query starting after
 * it resumes there. Every answer is checked against a model of the committed samples while
 * the checkpoint is set, moved back, outgrown by a new chunk, kept across rejected
 * (out-of-order, duplicate, rolled back) appends, and lost with a series removed by head GC
 * and created again; the decoder resumed from every position of chunks with irregular
 * timestamps and values equals one that decoded from the start; and series addresses for
 * appends follow the head's series epoch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/tsdb/internal.h"
#include "aggregator/tsdb/tsdb.h"
#include "common/error.h"

#define MAXS 4096

/* The committed samples of one series, oldest first. */
struct model {
  const char *name;
  uint64_t ref;
  int64_t t[MAXS];
  double v[MAXS];
  size_t n;
};

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next_rand(void)
{
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static struct nn_tsdb *open_db(uint16_t chunk_samples)
{
  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  o.chunk_samples = chunk_samples;
  o.out_of_bounds_window_ms = INT64_MAX / 4;
  struct nn_tsdb *db = NULL;
  assert_int_equal(nn_tsdb_open(&o, &db), 0);
  return db;
}

static void append(struct nn_tsdb *db, struct model *m, int64_t t, double v)
{
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  struct nn_label ls[] = {{"__name__", m->name}, {"job", "ck"}};
  assert_int_equal(nn_tsdb_appender_append(a, ls, 2, t, v, &m->ref), 0);
  assert_int_equal(nn_tsdb_appender_commit(a), 0);
  nn_tsdb_appender_destroy(a);
  assert_true(m->n < MAXS);
  m->t[m->n] = t;
  m->v[m->n++] = v;
}

static struct nn__tsdb_series *series_of(struct nn_tsdb *db, const struct model *m)
{
  struct nn__tsdb_series *s = nn__tsdb_series_by_ref(db, m->ref);
  assert_non_null(s);
  return s;
}

static struct nn__tsdb_xor_ck ck_of(struct nn_tsdb *db, const struct model *m)
{
  return *nn__tsdb_series_ck(series_of(db, m));
}

struct got {
  int64_t t[MAXS];
  double v[MAXS];
  size_t n, nseries;
};

static int on_series(void *ud, const struct nn_series *s)
{
  struct got *g = ud;
  g->nseries++;
  for (size_t i = 0; i < s->n && g->n < MAXS; i++) {
    g->t[g->n] = s->t[i];
    g->v[g->n++] = s->v[i];
  }
  return 0;
}

static bool same_bits(double a, double b)
{
  return memcmp(&a, &b, sizeof(a)) == 0;
}

/* Selects m's series over [mint, maxt] (streamed or not) and compares with the model. */
static void check(struct nn_tsdb *db, const struct model *m, int64_t mint, int64_t maxt,
                  bool stream)
{
  struct nn_querier q;
  nn_tsdb_querier(db, &q);
  struct nn_matcher ms[1];
  char err[128];
  assert_int_equal(nn_matcher_init(&ms[0], NN_MATCH_EQ, "__name__", m->name, err, sizeof(err)), 0);
  struct nn_select_hints h = {mint, maxt, 0};
  static struct got g;
  memset(&g, 0, sizeof(g));
  if (stream) {
    assert_int_equal(q.select_stream(q.ctx, ms, 1, &h, on_series, &g), 0);
  } else {
    struct nn_series_set set;
    assert_int_equal(q.select(q.ctx, ms, 1, &h, &set), 0);
    for (size_t i = 0; i < set.n; i++)
      on_series(&g, &set.series[i]);
    set.release(&set);
  }
  nn_matcher_fini(&ms[0]);
  size_t want = 0;
  for (size_t i = 0; i < m->n; i++) {
    if (m->t[i] < mint || m->t[i] > maxt)
      continue;
    assert_true(want < g.n);
    if (g.t[want] != m->t[i] || !same_bits(g.v[want], m->v[i]))
      fail_msg("[%lld, %lld] sample %zu: got (%lld, %g), want (%lld, %g)", (long long)mint,
               (long long)maxt, want, (long long)g.t[want], g.v[want], (long long)m->t[i], m->v[i]);
    want++;
  }
  assert_int_equal(g.n, want);
  assert_int_equal(g.nseries, want ? 1 : 0);
}

/* The SLO engine's pattern: two samples, then a query over the newest 10 s. */
static void advancing_windows_resume_from_checkpoint(void **state)
{
  struct nn_tsdb *db = open_db(120);
  static struct model m = {.name = "slide_total"};
  m.n = 0;
  int64_t t = 1700000000000LL;
  for (int i = 0; i < 60; i++, t += 5000)
    append(db, &m, t, 1000 + i * 7.5);
  uint16_t last_i = 0;
  for (int cycle = 0; cycle < 25; cycle++) {
    append(db, &m, t, 1000 + (double)m.n * 7.5);
    t += 5000;
    append(db, &m, t, 1000 + (double)m.n * 7.5);
    check(db, &m, t - 9999, t, cycle % 2 == 0);
    struct nn__tsdb_series *s = series_of(db, &m);
    /* The checkpoint sits at the sample before the range, and moves on every cycle. */
    assert_true(nn__tsdb_series_ck(s)->i > last_i);
    assert_int_equal(nn__tsdb_series_ck(s)->t, t - 10000);
    last_i = nn__tsdb_series_ck(s)->i;
    t += 5000;
  }
  nn_tsdb_close(db);
}

/* A range starting before the checkpoint decodes from the chunk's start; a range starting
 * on the checkpoint's own sample must still yield that sample. */
static void earlier_ranges_decode_from_the_start(void **state)
{
  struct nn_tsdb *db = open_db(500);
  static struct model m = {.name = "back_total"};
  m.n = 0;
  int64_t t0 = 1000000;
  for (int i = 0; i < 200; i++)
    append(db, &m, t0 + i * 1000, i * 0.5);
  check(db, &m, t0 + 150 * 1000, t0 + 199 * 1000, true);
  assert_int_equal(ck_of(db, &m).t, t0 + 149 * 1000);
  check(db, &m, t0 + 20 * 1000, t0 + 30 * 1000, true);
  check(db, &m, t0 + 20 * 1000, t0 + 30 * 1000, false);
  /* Moved back by the earlier range: the later one resumes from there. */
  assert_int_equal(ck_of(db, &m).t, t0 + 19 * 1000);
  check(db, &m, t0 + 150 * 1000, t0 + 199 * 1000, false);
  check(db, &m, t0 + 149 * 1000, t0 + 199 * 1000, true);
  check(db, &m, t0 + 148 * 1000, INT64_MAX, true);
  check(db, &m, INT64_MIN, INT64_MAX, false);
  /* A range past every sample does not touch the series; one starting on the newest
   * leaves the checkpoint on the sample before it. */
  check(db, &m, t0 + 500 * 1000, INT64_MAX, true);
  check(db, &m, t0 + 199 * 1000, INT64_MAX, true);
  assert_int_equal(ck_of(db, &m).i, 199);
  append(db, &m, t0 + 200 * 1000, 7);
  check(db, &m, t0 + 199 * 1000 + 1, INT64_MAX, false);
  check(db, &m, t0 + 199 * 1000, INT64_MAX, true);
  nn_tsdb_close(db);
}

/* Cutting the open chunk starts a new one: its checkpoint is reset, and ranges over the
 * closed chunk and the new one read both right. */
static void new_chunk_resets_the_checkpoint(void **state)
{
  struct nn_tsdb *db = open_db(10);
  static struct model m = {.name = "cut_total"};
  m.n = 0;
  int64_t t = 5000;
  for (int i = 0; i < 10; i++, t += 1000)
    append(db, &m, t, i);
  check(db, &m, t - 3000, t, true);
  assert_true(ck_of(db, &m).i > 0);
  append(db, &m, t, 10); /* the eleventh sample opens a new chunk */
  assert_int_equal(series_of(db, &m)->nchunks, 1);
  assert_int_equal(ck_of(db, &m).i, 0);
  check(db, &m, t - 3000, t, false);
  check(db, &m, t, t, true);
  for (int i = 0; i < 35; i++) {
    t += 1000;
    append(db, &m, t, 11 + i);
    check(db, &m, t - 2500, t, i % 2 == 0);
    check(db, &m, t - 12500, t, i % 3 == 0); /* spans a closed chunk now and then */
  }
  assert_true(series_of(db, &m)->nchunks >= 4);
  check(db, &m, INT64_MIN, INT64_MAX, true);
  nn_tsdb_close(db);
}

/* Appends the head rejects, and samples rolled back, change no chunk bits: the checkpoint
 * stays valid and the answers stay right. */
static void rejected_appends_keep_it_valid(void **state)
{
  struct nn_tsdb *db = open_db(120);
  static struct model m = {.name = "ooo_total"};
  m.n = 0;
  for (int i = 0; i < 30; i++)
    append(db, &m, 100000 + i * 1000, i * 3.0);
  check(db, &m, 100000 + 25 * 1000, INT64_MAX, true);
  struct nn__tsdb_xor_ck ck = ck_of(db, &m);
  assert_int_equal(ck.t, 100000 + 24 * 1000);
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  struct nn_label ls[] = {{"__name__", m.name}, {"job", "ck"}};
  assert_int_equal(nn_tsdb_appender_append(a, ls, 2, 100000 + 10 * 1000, 1, NULL), NN_EOUTOFORDER);
  assert_int_equal(nn_tsdb_appender_append(a, ls, 2, 100000 + 29 * 1000, 1, NULL), NN_EDUPLICATE);
  assert_int_equal(nn_tsdb_appender_append(a, ls, 2, 100000 + 40 * 1000, 1, NULL), 0);
  nn_tsdb_appender_rollback(a);
  assert_int_equal(nn_tsdb_appender_commit(a), 0);
  nn_tsdb_appender_destroy(a);
  struct nn__tsdb_xor_ck kept = ck_of(db, &m);
  assert_int_equal(memcmp(&kept, &ck, sizeof(ck)), 0);
  check(db, &m, 100000 + 26 * 1000, INT64_MAX, false);
  check(db, &m, 100000 + 29 * 1000, INT64_MAX, true);
  append(db, &m, 100000 + 30 * 1000, -1);
  check(db, &m, 100000 + 27 * 1000, INT64_MAX, true);
  check(db, &m, INT64_MIN, INT64_MAX, false);
  nn_tsdb_close(db);
}

/* Head GC removes the series; the same labels make a new series whose samples are all
 * that is read, from its own chunk's start. */
static void series_removed_and_created_again(void **state)
{
  struct nn_tsdb *db = open_db(120);
  static struct model m = {.name = "gc_total"};
  m.n = 0;
  for (int i = 0; i < 50; i++)
    append(db, &m, 10000 + i * 1000, i);
  check(db, &m, 10000 + 45 * 1000, INT64_MAX, true);
  assert_true(ck_of(db, &m).i > 0);
  assert_int_equal(nn_tsdb_head_truncate(db, 10000 + 100 * 1000), 1);
  assert_null(nn__tsdb_series_by_ref(db, m.ref));
  m.n = 0;
  for (int i = 0; i < 8; i++)
    append(db, &m, 200000 + i * 700, 1e6 - i);
  assert_int_equal(ck_of(db, &m).i, 0);
  check(db, &m, 200000 + 5 * 700, INT64_MAX, true);
  check(db, &m, 10000 + 45 * 1000, INT64_MAX, false);
  check(db, &m, 200000 + 6 * 700, INT64_MAX, true);
  nn_tsdb_close(db);
}

/* Random appends (irregular gaps, changing XOR windows, NaN, repeats) and random ranges,
 * over small chunks: every answer equals the model. */
static void random_ranges_match_the_model(void **state)
{
  struct nn_tsdb *db = open_db(37);
  static struct model m = {.name = "rand_total"};
  m.n = 0;
  int64_t t = -50000;
  double v = 0;
  for (int round = 0; round < 300; round++) {
    int k = (int)(next_rand() % 5);
    for (int i = 0; i < k; i++) {
      static const int64_t gaps[] = {1000, 1000, 1000, 1001, 7000, 900000, 90000000, 1};
      t += gaps[next_rand() % 8];
      switch (next_rand() % 5) {
      case 0: break; /* the same value */
      case 1: v += 1; break;
      case 2: v = (double)(next_rand() % 1000000) / 7.0; break;
      case 3: v = next_rand() % 2 ? NAN : -0.0; break;
      default: v *= 1.0000001;
      }
      append(db, &m, t, v);
    }
    if (!m.n)
      continue;
    size_t a = (size_t)(next_rand() % m.n), b = a + (size_t)(next_rand() % (m.n - a));
    int64_t mint = m.t[a] - (int64_t)(next_rand() % 3), maxt = m.t[b];
    if (next_rand() % 4 == 0)
      maxt = INT64_MAX;
    check(db, &m, mint, maxt, round % 2 == 0);
    /* The SLO pattern too: the newest few samples. */
    size_t c = m.n > 3 ? m.n - 3 : 0;
    check(db, &m, m.t[c], INT64_MAX, round % 3 == 0);
  }
  nn_tsdb_close(db);
}

/* The decoder resumed from the state after any sample yields what one decoding from the
 * start yields next; a state that cannot belong to the chunk is refused. */
static void resume_equals_decoding_from_the_start(void **state)
{
  struct nn__tsdb_xor_app app;
  memset(&app, 0, sizeof(app));
  int64_t t = 123456789;
  double v = 3.5;
  enum { N = 400 };
  static int64_t ts[N];
  static double vs[N];
  for (int i = 0; i < N; i++) {
    static const int64_t gaps[] = {15000, 15000, 15001, 14000, 30000, 1 << 20, 1LL << 40, 1};
    t += gaps[next_rand() % 8];
    if (next_rand() % 3 == 0)
      v = (double)(next_rand() % 100000) / 3.0;
    else if (next_rand() % 5 == 0)
      v = -v;
    ts[i] = t;
    vs[i] = v;
    assert_int_equal(nn__tsdb_xor_append(&app, t, v), 0);
  }
  size_t len = nn__tsdb_xor_len(&app);
  struct nn__tsdb_xor_it it, r;
  nn__tsdb_xor_it_init(&it, app.buf, len);
  for (int i = 0; i < N; i++) {
    assert_true(nn__tsdb_xor_it_next(&it));
    struct nn__tsdb_xor_ck ck;
    nn__tsdb_xor_it_save(&it, &ck);
    nn__tsdb_xor_it_init(&r, app.buf, len);
    assert_true(nn__tsdb_xor_it_resume(&r, &ck));
    for (int j = i + 1; j < N; j++) {
      assert_true(nn__tsdb_xor_it_next(&r));
      assert_int_equal(r.t, ts[j]);
      assert_true(same_bits(nn__tsdb_xor_it_value(&r), vs[j]));
    }
    assert_false(nn__tsdb_xor_it_next(&r));
    assert_int_equal(r.err, 0);
  }
  nn__tsdb_xor_it_init(&it, app.buf, len);
  assert_true(nn__tsdb_xor_it_next(&it));
  struct nn__tsdb_xor_ck ck;
  nn__tsdb_xor_it_save(&it, &ck);
  struct nn__tsdb_xor_ck bad = ck;
  bad.i = N + 1;
  nn__tsdb_xor_it_init(&r, app.buf, len);
  assert_false(nn__tsdb_xor_it_resume(&r, &bad));
  assert_int_equal(r.i, 0);
  bad = ck;
  bad.pos = (uint32_t)(len * 8 + 1);
  assert_false(nn__tsdb_xor_it_resume(&r, &bad));
  bad = ck;
  bad.i = 0;
  assert_false(nn__tsdb_xor_it_resume(&r, &bad));
  nn__tsdb_xor_it_init(&r, app.buf, 1); /* too short to be a chunk: err set */
  assert_false(nn__tsdb_xor_it_resume(&r, &ck));
  nn__tsdb_xor_free(&app);
}

/* Series addresses for appends (nn_tsdb_series_find) stay valid while the epoch does:
 * creating series and a head GC that removes none leave it; one that removes any moves it. */
static void series_epoch_moves_when_series_leave(void **state)
{
  struct nn_tsdb *db = open_db(120);
  static struct model m = {.name = "epoch_total"}, keep = {.name = "keep_total"};
  m.n = keep.n = 0;
  append(db, &m, 1000, 1);
  append(db, &keep, 1000, 1);
  uint64_t ep = nn_tsdb_series_epoch(db);
  struct nn__tsdb_series *s = nn_tsdb_series_find(db, m.ref);
  assert_ptr_equal(s, series_of(db, &m));
  assert_null(nn_tsdb_series_find(db, m.ref + 1000));
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  assert_int_equal(nn_tsdb_appender_append_series(a, s, 2000, 2), 0);
  assert_int_equal(nn_tsdb_appender_append_series(a, s, 1500, 2), NN_EOUTOFORDER);
  assert_int_equal(nn_tsdb_appender_commit(a), 0);
  m.t[m.n] = 2000;
  m.v[m.n++] = 2;
  check(db, &m, INT64_MIN, INT64_MAX, true);
  static struct model other = {.name = "other_total"};
  other.n = 0;
  append(db, &other, 3000, 1);
  assert_int_equal(nn_tsdb_head_truncate(db, 500), 0);
  assert_int_equal(nn_tsdb_series_epoch(db), ep);
  append(db, &keep, 5000, 2);
  assert_int_equal(nn_tsdb_head_truncate(db, 2500), 1); /* m goes */
  assert_true(nn_tsdb_series_epoch(db) != ep);
  assert_null(nn_tsdb_series_find(db, m.ref));
  assert_int_equal(nn_tsdb_appender_append_ref(a, m.ref, 6000, 1), NN_ENOTFOUND);
  nn_tsdb_appender_destroy(a);
  nn_tsdb_close(db);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(advancing_windows_resume_from_checkpoint),
      cmocka_unit_test(earlier_ranges_decode_from_the_start),
      cmocka_unit_test(new_chunk_resets_the_checkpoint),
      cmocka_unit_test(rejected_appends_keep_it_valid),
      cmocka_unit_test(series_removed_and_created_again),
      cmocka_unit_test(random_ranges_match_the_model),
      cmocka_unit_test(resume_equals_decoding_from_the_start),
      cmocka_unit_test(series_epoch_moves_when_series_leave),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
