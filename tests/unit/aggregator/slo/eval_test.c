/* SPDX-License-Identifier: Apache-2.0 */
/* The evaluation cycle's order (eval.c): every SLO's queries run before any output of the
 * cycle is written, so an SLO whose SLI reads another SLO's slo:* series never sees that
 * cycle's samples, wherever the two sit among many SLOs; and the outputs of more SLOs than
 * one commit batch holds are all written, once per cycle, by labels first and by cached
 * series id after. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/slo/internal.h"
#include "aggregator/tsdb/tsdb.h"
#include "common/buf.h"

#define T0    1700002800000LL /* an hour boundary */
#define MIN   60000LL
#define NFILL 70 /* SLOs between the two: more than one commit batch */

static struct nn_tsdb *open_db(void)
{
  struct nn_tsdb_options o;
  struct nn_tsdb *db;
  nn_tsdb_options_default(&o);
  o.out_of_bounds_window_ms = 24 * 60 * MIN;
  assert_int_equal(nn_tsdb_open(&o, &db), 0);
  return db;
}

/* req_total{job="a"} at 10 requests/s, 1 of them an error, every 15 s over [from, to]. */
static void write_counters(struct nn_tsdb *db, int64_t from, int64_t to)
{
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  struct nn_label ok[] = {{"__name__", "req_total"}, {"code", "200"}, {"job", "a"}};
  struct nn_label er[] = {{"__name__", "req_total"}, {"code", "500"}, {"job", "a"}};
  for (int64_t t = from; t <= to; t += 15000) {
    double s = (double)(t - T0) / 1000.0;
    assert_int_equal(nn_tsdb_appender_append(a, ok, 3, t, 9 * s, NULL), 0);
    assert_int_equal(nn_tsdb_appender_append(a, er, 3, t, s, NULL), 0);
  }
  assert_int_equal(nn_tsdb_appender_commit(a), 0);
  nn_tsdb_appender_destroy(a);
}

static void add_slo(struct nn_buf *b, const char *name, const char *error_query)
{
  nn_buf_printf(b,
                "  - name: %s\n    objective: 99\n    sli:\n      events:\n"
                "        error_query: '%s'\n"
                "        total_query: 'sum(rate(req_total{job=\"a\"}[{{.window}}]))'\n",
                name, error_query);
}

static struct nn_slo_engine *engine(struct nn_tsdb *db, bool reader_first)
{
  struct nn_buf b;
  nn_buf_init(&b, 1 << 20);
  nn_buf_appends(&b, "version: prometheus/v1\nservice: t\nslos:\n");
  /* "reader" counts the samples of "writer"'s slo:objective:ratio in the window: 0 unless
   * it saw the current cycle's, since the window (ts - 30s, ts] leaves the previous out. */
  const char *reads =
      "sum(count_over_time(slo:objective:ratio{sloth_slo=\"writer\"}[{{.window}}]))";
  const char *errs = "sum(rate(req_total{job=\"a\",code=\"500\"}[{{.window}}]))";
  if (reader_first)
    add_slo(&b, "reader", reads);
  add_slo(&b, "writer", errs);
  char name[16];
  for (int i = 0; i < NFILL; i++) {
    snprintf(name, sizeof(name), "fill%d", i);
    add_slo(&b, name, errs);
  }
  if (!reader_first)
    add_slo(&b, "reader", reads);
  struct nn_slo_config cfg;
  struct nn_cfg_error cerr;
  memset(&cfg, 0, sizeof(cfg));
  assert_int_equal(nn_cfg_apply_defaults(nn_slo_config_options, &cfg, &cerr), 0);
  cfg.evaluation_interval_ms = 30000;
  cfg.persist = false;
  struct nn_slo_opts o = {.db = db, .cfg = &cfg};
  struct nn_slo_engine *e = nn_slo_create(&o);
  nn_cfg_free(nn_slo_config_options, &cfg);
  assert_non_null(e);
  struct nn_slo_set *set;
  char err[512];
  int rc = nn_slo_set_load_string("t.yml", b.data, b.len, &set, err, sizeof(err));
  if (rc == 0)
    rc = nn_slo_reload_set(e, set, err, sizeof(err));
  if (rc < 0)
    fail_msg("%s", err);
  nn_buf_fini(&b);
  return e;
}

static double instant_value(struct nn_tsdb *db, const char *qs, int64_t t)
{
  struct nn_querier q;
  nn_tsdb_querier(db, &q);
  struct nn_promql_expr *x;
  struct nn_promql_error perr;
  struct nn_promql_result res;
  assert_int_equal(nn_promql_parse(qs, strlen(qs), &x, &perr), 0);
  assert_int_equal(nn_promql_eval_instant(&q, x, t, NULL, &res, &perr), 0);
  double v = res.type == NN_PROMQL_SCALAR ? res.scalar : res.nseries ? res.series[0].v[0] : NAN;
  nn_promql_result_fini(&res);
  nn_promql_expr_free(x);
  return v;
}

static void check_order(bool reader_first)
{
  struct nn_tsdb *db = open_db();
  write_counters(db, T0, T0 + 60 * MIN);
  struct nn_slo_engine *e = engine(db, reader_first);
  int cycles = 0;
  for (int64_t t = T0 + 30 * MIN; t <= T0 + 60 * MIN; t += 30000, cycles++)
    assert_int_equal(nn_slo_eval_at(e, t), 0);
  int64_t end = T0 + 60 * MIN;
  struct nn_slo_status st;
  assert_int_equal(nn_slo_get_status(e, "t-writer", &st), 0);
  assert_float_equal(st.error_ratio[0], 0.1, 1e-9);
  assert_int_equal(nn_slo_get_status(e, "t-reader", &st), 0);
  /* Had it seen the writer's samples of its own cycle: one error per 30 s, over 300. */
  assert_float_equal(st.error_ratio[0], 0, 0);
  /* Every SLO's outputs, one sample a cycle. */
  assert_float_equal(instant_value(db, "count(slo:objective:ratio)", end), NFILL + 2, 0);
  assert_float_equal(instant_value(db, "count(slo:sli_error:ratio_rate5m)", end), NFILL + 2, 0);
  char qs[160];
  const char *who[] = {"writer", "fill0", "fill31", "fill32", "fill69", "reader"};
  for (size_t i = 0; i < sizeof(who) / sizeof(who[0]); i++) {
    snprintf(qs, sizeof(qs), "count_over_time(slo:objective:ratio{sloth_slo=\"%s\"}[1h])", who[i]);
    assert_float_equal(instant_value(db, qs, end), cycles, 0);
    snprintf(qs, sizeof(qs), "slo:sli_error:ratio_rate5m{sloth_slo=\"%s\"}", who[i]);
    assert_float_equal(instant_value(db, qs, end), i + 1 < sizeof(who) / sizeof(who[0]) ? 0.1 : 0,
                       1e-9);
  }
  nn_slo_destroy(e);
  nn_tsdb_close(db);
}

static void reader_after_writer_sees_no_current_samples(void **state)
{
  check_order(false);
}

static void reader_before_writer_sees_no_current_samples(void **state)
{
  check_order(true);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(reader_after_writer_sees_no_current_samples),
      cmocka_unit_test(reader_before_writer_sees_no_current_samples),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
