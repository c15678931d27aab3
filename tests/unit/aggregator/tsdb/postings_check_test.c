/* SPDX-License-Identifier: Apache-2.0 */
/* Head selects whose shortest equality list holds a few series test those candidates
 * against the other matchers by their own labels (postings.c head_check) instead of
 * searching lists: for seeds of 1 to 6 series (both sides of the cut-over) and every kind of
 * matcher (=, !=, =~, !~; values and names the head never saw; matchers that match "";
 * labels some series lack; two matchers on one label), the refs equal a brute-force
 * evaluation of Prometheus's semantics over every series. */
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

#define EQ  NN_MATCH_EQ
#define NE  NN_MATCH_NE
#define RE  NN_MATCH_RE
#define NRE NN_MATCH_NRE

enum { N = 2100 };

struct m {
  enum nn_match_type type;
  const char *name, *value;
};

static struct nn_tsdb *db;

static int setup(void **state)
{
  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  if (nn_tsdb_open(&o, &db) < 0)
    return -1;
  static char grp[N][8], code[N][8], zone[N][8], id[N][8];
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  for (int i = 0; i < N; i++) {
    /* Group gK holds K series (K = 1..6): seeds on both sides of the cut-over. */
    int k = 1, start = 0;
    while (start + k <= i % 21)
      start += k++;
    snprintf(grp[i], sizeof(grp[i]), "g%d_%d", k, i / 21);
    snprintf(code[i], sizeof(code[i]), "%d", i % 3 ? 200 : 500);
    snprintf(zone[i], sizeof(zone[i]), "z%d", i % 4);
    snprintf(id[i], sizeof(id[i]), "%d", i);
    struct nn_label ls[] = {{"__name__", i % 5 ? "req" : "other"},
                            {"code", code[i]},
                            {"grp", grp[i]},
                            {"id", id[i]},
                            {"zone", zone[i]}};
    /* Every third series lacks the zone label. */
    if (nn_tsdb_appender_append(a, ls, i % 3 == 1 ? 4 : 5, 1000, i, NULL) < 0)
      return -1;
  }
  int rc = nn_tsdb_appender_commit(a);
  nn_tsdb_appender_destroy(a);
  return rc;
}

static int teardown(void **state)
{
  nn_tsdb_close(db);
  return 0;
}

static void check_case(const struct m *c, size_t nms, const char *grp, size_t r)
{
  struct nn_matcher ms[4];
  char err[128];
  for (size_t k = 0; k < nms; k++)
    assert_int_equal(nn_matcher_init(&ms[k], c[k].type, c[k].name, c[k].value ? c[k].value : grp,
                                     err, sizeof(err)),
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
      fail_msg("%s case %zu: series %llu missing or out of order", grp, r, (unsigned long long)ref);
    want++;
  }
  if (want != n)
    fail_msg("%s case %zu: %zu refs selected, %zu match", grp, r, n, want);
  free(refs);
  for (size_t k = 0; k < nms; k++)
    nn_matcher_fini(&ms[k]);
}

static void few_candidates_equal_brute_force(void **state)
{
  /* value NULL: the group's name (the seed). */
  static const struct m cases[][4] = {
      {{EQ, "grp", NULL}},
      {{EQ, "grp", NULL}, {EQ, "__name__", "req"}},
      {{EQ, "__name__", "req"}, {EQ, "grp", NULL}, {RE, "code", "5.."}},
      {{EQ, "grp", NULL}, {NE, "code", "500"}},
      {{EQ, "grp", NULL}, {NE, "code", "404"}},    /* a value never seen */
      {{EQ, "grp", NULL}, {EQ, "code", "404"}},    /* ditto */
      {{EQ, "grp", NULL}, {EQ, "zone", ""}},       /* lacks zone */
      {{EQ, "grp", NULL}, {NE, "zone", ""}},       /* has zone */
      {{EQ, "grp", NULL}, {RE, "zone", "z1|"}},    /* z1 or none */
      {{EQ, "grp", NULL}, {NRE, "zone", "z[12]"}}, /* matches "" */
      {{EQ, "grp", NULL}, {NRE, "zone", ".*"}},    /* nothing */
      {{EQ, "grp", NULL}, {EQ, "missing", ""}},    /* a name never seen */
      {{EQ, "grp", NULL}, {EQ, "missing", "x"}},   /* ditto */
      {{EQ, "grp", NULL}, {NE, "missing", "x"}},   /* ditto */
      {{EQ, "grp", NULL}, {RE, "missing", ".*"}},  /* ditto */
      {{EQ, "grp", NULL}, {RE, "zone", "z0"}, {NE, "zone", "z0"}},
      {{EQ, "grp", NULL}, {RE, "grp", "g.*"}, {NRE, "__name__", "oth.*"}, {RE, "code", "200|500"}},
      {{EQ, "grp", NULL}, {EQ, "grp", NULL}},
  };
  char grp[16];
  int groups = 0;
  for (int k = 1; k <= 6; k++) {
    for (int b = 0; b < N / 21; b += 7) {
      snprintf(grp, sizeof(grp), "g%d_%d", k, b);
      for (size_t r = 0; r < sizeof(cases) / sizeof(cases[0]); r++) {
        size_t nms = 0;
        while (nms < 4 && cases[r][nms].name)
          nms++;
        check_case(cases[r], nms, grp, r);
      }
      groups++;
    }
  }
  assert_true(groups >= 6 * 10);
  /* Each group's size is what its name says. */
  for (int k = 1; k <= 6; k++) {
    snprintf(grp, sizeof(grp), "g%d_0", k);
    struct nn_matcher m;
    char err[64];
    assert_int_equal(nn_matcher_init(&m, EQ, "grp", grp, err, sizeof(err)), 0);
    uint64_t *refs;
    size_t n;
    assert_int_equal(nn__tsdb_index_select(db, &m, 1, &refs, &n), 0);
    assert_int_equal(n, (size_t)k);
    free(refs);
    nn_matcher_fini(&m);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(few_candidates_equal_brute_force),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
