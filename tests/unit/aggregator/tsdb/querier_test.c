/* SPDX-License-Identifier: Apache-2.0 */
/* The storage.h querier over many series: time-range selection across chunk
 * boundaries, ordering by labels, the sample limit, label names and values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/tsdb/tsdb.h"

enum { NSERIES = 2000, NSAMPLES = 300 };

static struct nn_tsdb *db;
static struct nn_querier q;

static int setup(void **state)
{
  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  if (nn_tsdb_open(&o, &db) < 0)
    return -1;
  nn_tsdb_querier(db, &q);
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  char inst[32], shard[8];
  /* Appended in reverse label order, so sorting is the querier's work. */
  for (int k = 0; k < NSAMPLES; k++) {
    for (int i = NSERIES - 1; i >= 0; i--) {
      snprintf(inst, sizeof(inst), "host-%05d", i);
      snprintf(shard, sizeof(shard), "%d", i % 10);
      struct nn_label ls[] = {
          {"__name__", i % 2 ? "odd_total" : "even_total"}, {"instance", inst}, {"shard", shard}};
      if (nn_tsdb_appender_append(a, ls, 3, (int64_t)k * 10000 + i, k * 1.0 + i, NULL) < 0)
        return -1;
    }
    if (nn_tsdb_appender_commit(a) < 0)
      return -1;
  }
  /* One series that only has old data. */
  struct nn_label old[] = {{"__name__", "old_metric"}, {"legacy", "yes"}};
  if (nn_tsdb_appender_append(a, old, 2, 0, 1, NULL) < 0 || nn_tsdb_appender_commit(a) < 0)
    return -1;
  nn_tsdb_appender_destroy(a);
  return 0;
}

static int teardown(void **state)
{
  nn_tsdb_close(db);
  return 0;
}

static void matcher(struct nn_matcher *m, enum nn_match_type t, const char *n, const char *v)
{
  char err[128];
  assert_int_equal(nn_matcher_init(m, t, n, v, err, sizeof(err)), 0);
}

static void select_returns_range_sorted_by_labels(void **state)
{
  struct nn_matcher ms[2];
  matcher(&ms[0], NN_MATCH_EQ, "__name__", "odd_total");
  matcher(&ms[1], NN_MATCH_RE, "shard", "1|3");
  /* Spans a chunk boundary (chunks hold 120 samples) and ends mid-chunk. */
  int64_t mint = 100 * 10000, maxt = 250 * 10000;
  struct nn_select_hints h = {mint, maxt, 0};
  struct nn_series_set set;
  assert_int_equal(q.select(q.ctx, ms, 2, &h, &set), 0);
  assert_int_equal(set.n, NSERIES / 5);
  for (size_t i = 0; i < set.n; i++) {
    const struct nn_series *s = &set.series[i];
    if (i)
      assert_true(nn_labels_cmp(set.series[i - 1].labels, set.series[i - 1].nlabels, s->labels,
                                s->nlabels) < 0);
  }
  for (size_t i = 0; i < set.n; i++) {
    const struct nn_series *s = &set.series[i];
    int id = (int)strtol(nn_labels_get(s->labels, s->nlabels, "instance") + 5, NULL, 10);
    assert_true(id % 10 == 1 || id % 10 == 3);
    /* k from 100 to 249: t = k*10000 + id lies in range; k = 250 lies past maxt. */
    assert_int_equal(s->n, 150);
    for (size_t k = 0; k < s->n; k++) {
      assert_int_equal(s->t[k], (int64_t)(100 + k) * 10000 + id);
      assert_true(s->v[k] == (double)(100 + k) + id);
    }
  }
  set.release(&set);
  nn_matcher_fini(&ms[0]);
  nn_matcher_fini(&ms[1]);
}

static void select_honours_the_sample_limit(void **state)
{
  struct nn_matcher m;
  matcher(&m, NN_MATCH_RE, "__name__", ".+_total");
  struct nn_select_hints h = {0, INT64_MAX, 1000};
  struct nn_series_set set;
  assert_int_equal(q.select(q.ctx, &m, 1, &h, &set), NN_ELIMIT);
  h.max_samples = (size_t)NSERIES * NSAMPLES;
  assert_int_equal(q.select(q.ctx, &m, 1, &h, &set), 0);
  assert_int_equal(set.n, NSERIES);
  set.release(&set);
  /* Outside every series' range: nothing. */
  struct nn_select_hints far = {INT64_MAX - 10, INT64_MAX, 0};
  assert_int_equal(q.select(q.ctx, &m, 1, &far, &set), 0);
  assert_int_equal(set.n, 0);
  set.release(&set);
  nn_matcher_fini(&m);
}

static int stop_after_two(void *ud, const struct nn_series *s)
{
  size_t *n = ud;
  assert_true(s->n > 0);
  return ++*n == 2 ? -1234 : 0;
}

static void select_stream_stops_when_told(void **state)
{
  (void)state;
  struct nn_matcher m;
  matcher(&m, NN_MATCH_EQ, "__name__", "odd_total");
  struct nn_select_hints h = {0, INT64_MAX, 1}; /* the limit is the caller's business */
  size_t n = 0;
  assert_int_equal(q.select_stream(q.ctx, &m, 1, &h, stop_after_two, &n), -1234);
  assert_int_equal(n, 2);
  nn_matcher_fini(&m);
}

/* A streamed select hands out what select returns, whether it fits the stream's inline
 * buffers (16 entries, 128 labels, 256 samples) or outgrows them. */
struct collected {
  struct nn_series_set *want;
  size_t i;
};

static int compare_streamed(void *ud, const struct nn_series *s)
{
  struct collected *c = ud;
  assert_true(c->i < c->want->n);
  const struct nn_series *w = &c->want->series[c->i++];
  assert_int_equal(s->nlabels, w->nlabels);
  for (size_t k = 0; k < s->nlabels; k++) {
    assert_string_equal(s->labels[k].name, w->labels[k].name);
    assert_string_equal(s->labels[k].value, w->labels[k].value);
  }
  assert_int_equal(s->n, w->n);
  for (size_t k = 0; k < s->n; k++) {
    assert_int_equal(s->t[k], w->t[k]);
    assert_true(s->v[k] == w->v[k]);
  }
  return 0;
}

static void select_stream_equals_select_past_its_inline_buffers(void **state)
{
  struct {
    const char *name, *shard, *inst;
    int64_t mint, maxt;
    size_t series, samples;
  } cases[] = {
      {"odd_total", "3", NULL, 100000, 200000, 200, 10},         /* many entries and labels */
      {"even_total", NULL, "host-00042", 0, INT64_MAX, 1, 300},  /* more samples than inline */
      {"even_total", "4", "host-00004", 2990000, 2999999, 1, 1}, /* the SLO's kind */
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct nn_matcher ms[3];
    size_t nms = 0;
    matcher(&ms[nms++], NN_MATCH_EQ, "__name__", cases[i].name);
    if (cases[i].shard)
      matcher(&ms[nms++], NN_MATCH_EQ, "shard", cases[i].shard);
    if (cases[i].inst)
      matcher(&ms[nms++], NN_MATCH_RE, "instance", cases[i].inst);
    struct nn_select_hints h = {cases[i].mint, cases[i].maxt, 0};
    struct nn_series_set set;
    assert_int_equal(q.select(q.ctx, ms, nms, &h, &set), 0);
    assert_int_equal(set.n, cases[i].series);
    assert_int_equal(set.series[0].n, cases[i].samples);
    struct collected c = {&set, 0};
    assert_int_equal(q.select_stream(q.ctx, ms, nms, &h, compare_streamed, &c), 0);
    assert_int_equal(c.i, set.n);
    set.release(&set);
    for (size_t k = 0; k < nms; k++)
      nn_matcher_fini(&ms[k]);
  }
}

static void label_names_and_values(void **state)
{
  struct nn_strlist l;
  assert_int_equal(q.label_names(q.ctx, NULL, 0, INT64_MIN, INT64_MAX, &l), 0);
  assert_int_equal(l.n, 4);
  assert_string_equal(l.v[0], "__name__");
  assert_string_equal(l.v[1], "instance");
  assert_string_equal(l.v[2], "legacy");
  assert_string_equal(l.v[3], "shard");
  nn_strlist_free(&l);
  /* A time range excluding the old series drops its label. */
  assert_int_equal(q.label_names(q.ctx, NULL, 0, 5000, INT64_MAX, &l), 0);
  assert_int_equal(l.n, 3);
  nn_strlist_free(&l);

  assert_int_equal(q.label_values(q.ctx, "__name__", NULL, 0, INT64_MIN, INT64_MAX, &l), 0);
  assert_int_equal(l.n, 3);
  assert_string_equal(l.v[0], "even_total");
  assert_string_equal(l.v[1], "odd_total");
  assert_string_equal(l.v[2], "old_metric");
  nn_strlist_free(&l);

  struct nn_matcher m;
  matcher(&m, NN_MATCH_EQ, "__name__", "even_total");
  assert_int_equal(q.label_values(q.ctx, "shard", &m, 1, INT64_MIN, INT64_MAX, &l), 0);
  assert_int_equal(l.n, 5);
  assert_string_equal(l.v[0], "0");
  assert_string_equal(l.v[4], "8");
  nn_strlist_free(&l);
  assert_int_equal(q.label_values(q.ctx, "instance", &m, 1, INT64_MIN, INT64_MAX, &l), 0);
  assert_int_equal(l.n, NSERIES / 2);
  for (size_t i = 1; i < l.n; i++)
    assert_true(strcmp(l.v[i - 1], l.v[i]) < 0);
  nn_strlist_free(&l);
  assert_int_equal(q.label_values(q.ctx, "nonexistent", NULL, 0, INT64_MIN, INT64_MAX, &l), 0);
  assert_int_equal(l.n, 0);
  nn_strlist_free(&l);
  nn_matcher_fini(&m);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(select_returns_range_sorted_by_labels),
      cmocka_unit_test(select_honours_the_sample_limit),
      cmocka_unit_test(select_stream_stops_when_told),
      cmocka_unit_test(select_stream_equals_select_past_its_inline_buffers),
      cmocka_unit_test(label_names_and_values),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
