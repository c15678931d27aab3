/* SPDX-License-Identifier: Apache-2.0 */
/* Label matchers over the postings index, as a table of Prometheus semantics: a
 * matcher that matches "" also selects series lacking the label. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/tsdb/internal.h"
#include "aggregator/tsdb/tsdb.h"

struct m {
  enum nn_match_type type;
  const char *name, *value;
};

struct row {
  struct m ms[3];
  size_t nms;
  const char *want; /* ids of selected series, in label order */
};

#define EQ  NN_MATCH_EQ
#define NE  NN_MATCH_NE
#define RE  NN_MATCH_RE
#define NRE NN_MATCH_NRE

static const struct row table[] = {
    {{{EQ, "job", "x"}}, 1, "13"},
    {{{NE, "job", "x"}}, 1, "24"},
    {{{EQ, "job", ""}}, 1, "4"},
    {{{NE, "job", ""}}, 1, "123"},
    {{{RE, "env", "prod|dev"}}, 1, "13"},
    {{{RE, "env", ".*"}}, 1, "1234"},
    {{{RE, "env", ".+"}}, 1, "13"},
    {{{RE, "env", "pro"}}, 1, ""}, /* anchored */
    {{{NRE, "env", "prod"}}, 1, "234"},
    {{{NRE, "env", ".*"}}, 1, ""},
    {{{NRE, "env", ""}}, 1, "13"},
    {{{EQ, "__name__", "a"}, {EQ, "env", ""}}, 2, "2"},
    {{{RE, "__name__", "a|b"}, {NE, "job", "y"}}, 2, "134"},
    {{{EQ, "missing", ""}}, 1, "1234"},
    {{{EQ, "missing", "foo"}}, 1, ""},
    {{{NE, "missing", "foo"}}, 1, "1234"},
    {{{RE, "job", "x|nonexistent"}, {EQ, "__name__", "b"}}, 2, "3"},
    {{{EQ, "job", "x"}, {EQ, "job", "y"}}, 2, ""},
    {{{NE, "job", "x"}, {NE, "job", "y"}}, 2, "4"},
    {{{EQ, "env", "dev"}, {NRE, "job", "y|z"}, {RE, "__name__", "b"}}, 3, "3"},
    {{{0}}, 0, "1234"},
};

static struct nn_tsdb *make_db(void)
{
  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  struct nn_tsdb *db;
  assert_int_equal(nn_tsdb_open(&o, &db), 0);
  struct nn_label s1[] = {{"__name__", "a"}, {"env", "prod"}, {"id", "1"}, {"job", "x"}};
  struct nn_label s2[] = {{"__name__", "a"}, {"id", "2"}, {"job", "y"}};
  struct nn_label s3[] = {{"__name__", "b"}, {"env", "dev"}, {"id", "3"}, {"job", "x"}};
  struct nn_label s4[] = {{"__name__", "b"}, {"id", "4"}};
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  assert_int_equal(nn_tsdb_appender_append(a, s1, 4, 1000, 1, NULL), 0);
  assert_int_equal(nn_tsdb_appender_append(a, s2, 3, 1000, 2, NULL), 0);
  assert_int_equal(nn_tsdb_appender_append(a, s3, 4, 1000, 3, NULL), 0);
  assert_int_equal(nn_tsdb_appender_append(a, s4, 2, 1000, 4, NULL), 0);
  assert_int_equal(nn_tsdb_appender_commit(a), 0);
  nn_tsdb_appender_destroy(a);
  return db;
}

static void matchers_follow_prometheus_semantics(void **state)
{
  struct nn_tsdb *db = make_db();
  struct nn_querier q;
  nn_tsdb_querier(db, &q);
  for (size_t r = 0; r < sizeof(table) / sizeof(table[0]); r++) {
    struct nn_matcher ms[3];
    char err[128];
    for (size_t i = 0; i < table[r].nms; i++)
      assert_int_equal(nn_matcher_init(&ms[i], table[r].ms[i].type, table[r].ms[i].name,
                                       table[r].ms[i].value, err, sizeof(err)),
                       0);
    struct nn_series_set set;
    assert_int_equal(q.select(q.ctx, ms, table[r].nms, NULL, &set), 0);
    char got[8] = {0};
    for (size_t i = 0; i < set.n && i < 7; i++)
      got[i] = nn_labels_get(set.series[i].labels, set.series[i].nlabels, "id")[0];
    if (strcmp(got, table[r].want) != 0)
      fail_msg("row %zu: got {%s}, want {%s}", r, got, table[r].want);
    /* The raw postings answer the same, sorted by ref. */
    uint64_t *refs;
    size_t n;
    assert_int_equal(nn__tsdb_index_select(db, ms, table[r].nms, &refs, &n), 0);
    assert_int_equal(n, strlen(table[r].want));
    for (size_t i = 1; i < n; i++)
      assert_true(refs[i] > refs[i - 1]);
    free(refs);
    set.release(&set);
    for (size_t i = 0; i < table[r].nms; i++)
      nn_matcher_fini(&ms[i]);
  }
  nn_tsdb_close(db);
}

static void postings_stay_sorted_when_refs_arrive_out_of_order(void **state)
{
  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  struct nn_tsdb *db;
  assert_int_equal(nn_tsdb_open(&o, &db), 0);
  /* Replay can create series with descending refs. */
  uint64_t refs[] = {50, 10, 30, 20, 40, 5};
  char v[16];
  for (size_t i = 0; i < 6; i++) {
    snprintf(v, sizeof(v), "%zu", i);
    struct nn_label ls[] = {{"__name__", "m"}, {"i", v}};
    assert_non_null(nn__tsdb_series_create(db, nn_labels_hash(ls, 2), ls, 2, refs[i]));
  }
  uint32_t name = nn__tsdb_sym_find(&db->syms, "__name__");
  uint32_t value = nn__tsdb_sym_find(&db->syms, "m");
  const struct nn__tsdb_plist *pl = nn__tsdb_index_get(&db->idx, name, value);
  assert_non_null(pl);
  assert_int_equal(pl->n, 6);
  const uint64_t *r = nn__tsdb_plist_refs(pl);
  for (size_t i = 1; i < pl->n; i++)
    assert_true(r[i] > r[i - 1]);
  assert_int_equal(db->next_ref, 51);
  nn_tsdb_close(db);
}

/* Selections narrowed from the shortest equality list (binary searches into long lists)
 * equal a brute-force check of every series, for matcher mixes over lists of very
 * different lengths. */
static void narrowed_selects_equal_brute_force(void **state)
{
  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  struct nn_tsdb *db;
  assert_int_equal(nn_tsdb_open(&o, &db), 0);
  enum { N = 3000 };
  static char job[N][8], code[N][8], zone[N][8], id[N][8];
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  for (int i = 0; i < N; i++) {
    snprintf(job[i], sizeof(job[i]), "j%d", i % 700);
    snprintf(code[i], sizeof(code[i]), "%d", i % 3 ? 200 : 500);
    snprintf(zone[i], sizeof(zone[i]), "z%d", i % 5);
    snprintf(id[i], sizeof(id[i]), "%d", i);
    /* Every seventh series lacks the zone label. */
    struct nn_label ls[] = {{"__name__", i % 11 ? "req" : "other"},
                            {"code", code[i]},
                            {"id", id[i]},
                            {"job", job[i]},
                            {"zone", zone[i]}};
    assert_int_equal(nn_tsdb_appender_append(a, ls, i % 7 ? 5 : 4, 1000, i, NULL), 0);
  }
  assert_int_equal(nn_tsdb_appender_commit(a), 0);
  nn_tsdb_appender_destroy(a);
  const struct m cases[][3] = {
      {{EQ, "__name__", "req"}, {EQ, "job", "j5"}},
      {{EQ, "__name__", "req"}, {EQ, "job", "j5"}, {RE, "code", "5.."}},
      {{EQ, "job", "j6"}, {NE, "code", "500"}},
      {{EQ, "__name__", "req"}, {EQ, "zone", ""}},
      {{EQ, "__name__", "req"}, {NRE, "zone", "z1|z2"}, {EQ, "code", "500"}},
      {{EQ, "__name__", "other"}, {RE, "job", "j1.*"}},
      {{EQ, "job", "j9"}, {EQ, "job", "j9"}},
      {{EQ, "job", "j9"}, {EQ, "job", "nope"}},
      {{EQ, "zone", "z3"}, {NE, "zone", ""}, {RE, "job", ".*"}},
  };
  for (size_t r = 0; r < sizeof(cases) / sizeof(cases[0]); r++) {
    struct nn_matcher ms[3];
    size_t nms = 0;
    char err[128];
    for (; nms < 3 && cases[r][nms].name; nms++)
      assert_int_equal(nn_matcher_init(&ms[nms], cases[r][nms].type, cases[r][nms].name,
                                       cases[r][nms].value, err, sizeof(err)),
                       0);
    uint64_t *refs;
    size_t n, want = 0;
    assert_int_equal(nn__tsdb_index_select(db, ms, nms, &refs, &n), 0);
    for (uint64_t ref = 1; ref <= N; ref++) {
      const struct nn__tsdb_series *s = nn__tsdb_series_by_ref(db, ref);
      assert_non_null(s);
      bool all = true;
      for (size_t k = 0; k < nms && all; k++) {
        const char *v = "";
        for (size_t l = 0; l < s->nlabels; l++)
          if (!strcmp(nn__tsdb_sym_str(&db->syms, s->syms[2 * l]), ms[k].name))
            v = nn__tsdb_sym_str(&db->syms, s->syms[2 * l + 1]);
        all = nn_matcher_matches(&ms[k], v);
      }
      if (!all)
        continue;
      if (want >= n || refs[want] != ref)
        fail_msg("case %zu: series %llu missing or out of order", r, (unsigned long long)ref);
      want++;
    }
    if (want != n)
      fail_msg("case %zu: %zu refs selected, %zu match", r, n, want);
    assert_true(r == 7 || n > 0);
    free(refs);
    for (size_t k = 0; k < nms; k++)
      nn_matcher_fini(&ms[k]);
  }
  nn_tsdb_close(db);
}

static size_t count_selected(struct nn_tsdb *db, const struct nn_matcher *ms, size_t nms)
{
  uint64_t *refs;
  size_t n;
  assert_int_equal(nn__tsdb_index_select(db, ms, nms, &refs, &n), 0);
  free(refs);
  return n;
}

static void append_one(struct nn_tsdb *db, const char *job, int64_t t)
{
  struct nn_label ls[] = {{"__name__", "m"}, {"job", job}};
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  assert_int_equal(nn_tsdb_appender_append(a, ls, 2, t, 1, NULL), 0);
  assert_int_equal(nn_tsdb_appender_commit(a), 0);
  nn_tsdb_appender_destroy(a);
}

/* Matchers keep the head's symbol ids of their strings between selects (a rule's or an
 * SLO's query selects with the same matchers every evaluation). A series added after the
 * ids were cached is found by the next select; a series removed by head GC is not, even
 * once its symbol ids went to other strings; another store does not use them. */
static void cached_symbol_ids_follow_the_head(void **state)
{
  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  struct nn_tsdb *db, *other;
  assert_int_equal(nn_tsdb_open(&o, &db), 0);
  assert_int_equal(nn_tsdb_open(&o, &other), 0);
  struct nn_matcher ms[2];
  char err[64];
  assert_int_equal(nn_matcher_init(&ms[0], EQ, "__name__", "m", err, sizeof(err)), 0);
  assert_int_equal(nn_matcher_init(&ms[1], EQ, "job", "new", err, sizeof(err)), 0);
  append_one(db, "old", 1000);
  assert_int_equal(count_selected(db, ms, 2), 0); /* "new" is no symbol yet */
  append_one(db, "new", 2000);
  assert_int_equal(count_selected(db, ms, 2), 1);
  assert_int_equal(count_selected(db, ms, 2), 1); /* from the cached ids */
  /* GC drops both series and their symbols; new strings take the freed ids. */
  assert_int_equal(nn_tsdb_head_truncate(db, 5000), 2);
  append_one(db, "newer", 6000);
  append_one(db, "other", 6000);
  assert_int_equal(count_selected(db, ms, 2), 0);
  append_one(db, "new", 7000);
  assert_int_equal(count_selected(db, ms, 2), 1);
  /* The same matchers on another store: its own ids. */
  append_one(other, "x", 1000);
  assert_int_equal(count_selected(other, ms, 2), 0);
  append_one(other, "new", 1000);
  assert_int_equal(count_selected(other, ms, 2), 1);
  assert_int_equal(count_selected(db, ms, 2), 1);
  nn_matcher_fini(&ms[0]);
  nn_matcher_fini(&ms[1]);
  nn_tsdb_close(db);
  nn_tsdb_close(other);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(matchers_follow_prometheus_semantics),
      cmocka_unit_test(postings_stay_sorted_when_refs_arrive_out_of_order),
      cmocka_unit_test(narrowed_selects_equal_brute_force),
      cmocka_unit_test(cached_symbol_ids_follow_the_head),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
