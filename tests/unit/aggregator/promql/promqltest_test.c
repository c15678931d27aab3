/* SPDX-License-Identifier: Apache-2.0 */
/* Runs Prometheus's own PromQL test corpus (.test files, see
 * shared/conformance/promqltest/FORMAT.md) against the engine over an in-memory store.
 * Native-histogram and experimental-feature evals are skipped as FORMAT.md allows; the
 * test fails when the pass rate of the remaining evals drops below PASS_RATE_MIN. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "aggregator/promql/internal.h"
#include "aggregator/promql/promql.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/pool.h"
#include "memstore.h"

/* Minimum share of non-skipped evals that must pass. Raise it as the engine improves. */
#define PASS_RATE_MIN 0.95

#define CORPUS_DIR NN_SOURCE_DIR "/../shared/conformance/promqltest"

static const char *const skip_files[] = {
    "native_histograms.test",
    "limit.test",
    "info.test",
    "fill-modifier.test",
    "duration_expression.test",
    "extended_vectors.test",
    "start_timestamps.test",
    "type_and_unit.test",
};

struct counts {
  int pass, fail, skip, annot;
};

struct exp_series {
  char *labels; /* canonical text form */
  int64_t *t;
  double *v;
  size_t n;
};

struct eval_cmd {
  int line;
  bool range, fail, ordered, has_fail_msg, fail_regex, has_string, has_scalar, range_vector;
  bool annotations; /* positive expect warn/info lines (not checked: no annotations) */
  char *fail_msg;
  char *string;
  double scalar;
  int64_t t, start, end, step;
  int64_t rv_start, rv_step;
  char *expr;
  struct exp_series *series;
  size_t nseries;
  bool needs_nh;
};

static struct nn_pool P; /* per-file scratch */
static char *nh_names[512];
static size_t n_nh;
static int verbose;

static char *trim(char *s)
{
  while (*s == ' ' || *s == '\t' || *s == '\r')
    s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
    s[--n] = 0;
  return s;
}

static bool parse_dur(const char *s, int64_t *ms)
{
  return nn__promql_parse_duration(s, strlen(s), ms);
}

/* Series notation: name{a="b"} / {__name__="x"} / name. Returns the end offset or -1. */
static int parse_series(const char *s, struct nn_label *ls, size_t *nls, size_t max)
{
  size_t i = 0, n = 0;
  const char *msg;
  while (s[i] && (isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
    i++;
  if (i > 0) {
    ls[n++] = (struct nn_label){"__name__", nn_pool_strndup(&P, s, i)};
  }
  if (s[i] == '{') {
    i++;
    for (;;) {
      while (s[i] == ' ' || s[i] == '\t')
        i++;
      if (s[i] == '}') {
        i++;
        break;
      }
      char *name;
      if (s[i] == '"' || s[i] == '\'' || s[i] == '`') {
        size_t j = i + 1;
        while (s[j] && s[j] != s[i]) {
          if (s[j] == '\\' && s[i] != '`')
            j++;
          j++;
        }
        if (!s[j])
          return -1;
        name = nn__promql_unquote(&P, s + i, j + 1 - i, &msg);
        i = j + 1;
      } else {
        size_t j = i;
        while (s[j] && (isalnum((unsigned char)s[j]) || s[j] == '_'))
          j++;
        if (j == i)
          return -1;
        name = nn_pool_strndup(&P, s + i, j - i);
        i = j;
      }
      while (s[i] == ' ' || s[i] == '\t')
        i++;
      if (s[i] == '=') {
        i++;
        while (s[i] == ' ' || s[i] == '\t')
          i++;
        char q = s[i];
        if (q != '"' && q != '\'' && q != '`')
          return -1;
        size_t j = i + 1;
        while (s[j] && s[j] != q) {
          if (s[j] == '\\' && q != '`')
            j++;
          j++;
        }
        if (!s[j])
          return -1;
        char *val = nn__promql_unquote(&P, s + i, j + 1 - i, &msg);
        if (!val || !name || n >= max)
          return -1;
        ls[n++] = (struct nn_label){name, val};
        i = j + 1;
      } else {
        if (!name || n >= max)
          return -1;
        ls[n++] = (struct nn_label){"__name__", name};
      }
      while (s[i] == ' ' || s[i] == '\t')
        i++;
      if (s[i] == ',')
        i++;
    }
  }
  *nls = nn_labels_canonicalize(ls, n);
  return (int)i;
}

static char *labels_text(const struct nn_label *ls, size_t n)
{
  struct nn_label tmp[64];
  if (n > 64)
    n = 64;
  memcpy(tmp, ls, n * sizeof(*tmp));
  n = nn_labels_canonicalize(tmp, n);
  struct nn_buf b;
  nn_buf_init(&b, 1 << 16);
  nn_labels_format(tmp, n, &b);
  char *r = nn_pool_strndup(&P, b.data ? b.data : "{}", b.data ? b.len : 2);
  nn_buf_fini(&b);
  return r;
}

/* One number at s (Go-ish: sign, digits, underscores, '.', exponent, Inf, NaN). */
static bool scan_num(const char **sp, double *v)
{
  const char *s = *sp, *st = s;
  char buf[64];
  size_t o = 0;
  if (*s == '+' || *s == '-')
    buf[o++] = *s++;
  if (strncasecmp(s, "inf", 3) == 0) {
    *v = (st[0] == '-') ? -INFINITY : INFINITY;
    *sp = s + 3;
    return true;
  }
  if (strncasecmp(s, "nan", 3) == 0) {
    *v = NAN;
    *sp = s + 3;
    return true;
  }
  bool digits = false;
  while ((isdigit((unsigned char)*s) || *s == '_' || *s == '.') && o < 60) {
    if (*s != '_')
      buf[o++] = *s;
    digits |= isdigit((unsigned char)*s) != 0;
    s++;
  }
  if (!digits)
    return false;
  if ((*s == 'e' || *s == 'E') &&
      (isdigit((unsigned char)s[1]) ||
       ((s[1] == '+' || s[1] == '-') && isdigit((unsigned char)s[2])))) {
    buf[o++] = *s++;
    if (*s == '+' || *s == '-')
      buf[o++] = *s++;
    while (isdigit((unsigned char)*s) && o < 62)
      buf[o++] = *s++;
  }
  buf[o] = 0;
  *v = strtod(buf, NULL);
  *sp = s;
  return true;
}

struct vals {
  double *v;
  bool *omit;
  size_t n, cap;
};

static void vals_push(struct vals *vs, double v, bool omit)
{
  if (vs->n == vs->cap) {
    vs->cap = vs->cap ? vs->cap * 2 : 64;
    vs->v = realloc(vs->v, vs->cap * sizeof(*vs->v));
    vs->omit = realloc(vs->omit, vs->cap * sizeof(*vs->omit));
  }
  vs->v[vs->n] = v;
  vs->omit[vs->n++] = omit;
}

/* Expands the value notation; returns false on histograms or bad syntax. */
static bool parse_values(const char *s, struct vals *vs, bool *nh)
{
  while (*s) {
    while (*s == ' ' || *s == '\t')
      s++;
    if (!*s)
      break;
    if (s[0] == '{' && s[1] == '{') {
      *nh = true;
      return false;
    }
    if (s[0] == '_') {
      s++;
      long rep = 1;
      if (*s == 'x') {
        rep = strtol(s + 1, (char **)&s, 10);
      }
      for (long k = 0; k < rep; k++)
        vals_push(vs, 0, true);
      continue;
    }
    if (strncmp(s, "stale", 5) == 0) {
      vals_push(vs, nn_stale_nan_value(), false);
      s += 5;
      continue;
    }
    double v, d = 0;
    if (!scan_num(&s, &v))
      return false;
    if (*s == '+' || *s == '-') {
      if (!scan_num(&s, &d))
        return false;
      if (*s != 'x')
        return false;
    }
    if (*s == 'x') {
      long rep = strtol(s + 1, (char **)&s, 10);
      for (long k = 0; k <= rep; k++) {
        vals_push(vs, v, false);
        v += d;
      }
    } else {
      vals_push(vs, v, false);
    }
    if (*s && *s != ' ' && *s != '\t')
      return false;
  }
  return true;
}

static bool almost_equal(double a, double b)
{
  if (nn_stale_nan(a) || nn_stale_nan(b))
    return nn_stale_nan(a) && nn_stale_nan(b);
  if (isnan(a) && isnan(b))
    return true;
  if (a == b)
    return true;
  double diff = fabs(a - b);
  if (a == 0 || b == 0 || fabs(a) + fabs(b) < 2.2250738585072014e-308)
    return diff < 1e-6 * 2.2250738585072014e-308;
  double sum = fabs(a) + fabs(b);
  if (sum > 1.7976931348623157e308)
    sum = 1.7976931348623157e308;
  return diff / sum < 1e-6;
}

static bool regex_search(const char *re, const char *s)
{
  int ec;
  PCRE2_SIZE eo;
  pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
  if (!c)
    return false;
  pcre2_match_data *md = pcre2_match_data_create_from_pattern(c, NULL);
  int r = pcre2_match(c, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL);
  pcre2_match_data_free(md);
  pcre2_code_free(c);
  return r >= 0;
}

static bool word_in(const char *expr, const char *name)
{
  size_t n = strlen(name);
  for (const char *p = strstr(expr, name); p; p = strstr(p + 1, name)) {
    bool lb = p == expr || !(isalnum((unsigned char)p[-1]) || p[-1] == '_' || p[-1] == ':');
    bool rb = !(isalnum((unsigned char)p[n]) || p[n] == '_' || p[n] == ':');
    if (lb && rb)
      return true;
  }
  return false;
}

static bool experimental(const char *e)
{
  static const char *const pats[] = {
      "\\b(info|histogram_quantiles|max_of|min_of|start_timestamp)\\s*\\(",
      "(?<!@ )\\b(start|end|range|step)\\(\\)",
      "\\b(limitk|limit_ratio)\\b",
      "\\b(anchored|smoothed)\\b",
      "\\bfill(_left|_right)?\\s*\\(",
      "\\[[^\\]]*[-+*/^%][^\\]]*\\]",
      "offset\\s*-?\\s*\\(",
      "__type__|__unit__",
  };
  for (size_t i = 0; i < sizeof(pats) / sizeof(pats[0]); i++)
    if (regex_search(pats[i], e))
      return true;
  return false;
}

static char last_fail[1024];

static bool check_series_result(const struct eval_cmd *ev, const struct nn_promql_result *r,
                                bool instant_at, int64_t at)
{
  /* collect actual (labels, points) */
  size_t na = r->nseries;
  char **al = calloc(na + 1, sizeof(*al));
  bool *used = calloc(na + 1, sizeof(*used));
  bool ok = true;
  size_t actual_count = 0;
  for (size_t i = 0; i < na; i++) {
    al[i] = labels_text(r->series[i].labels, r->series[i].nlabels);
    if (instant_at) {
      bool has = false;
      for (size_t k = 0; k < r->series[i].n; k++)
        has |= r->series[i].t[k] == at;
      if (!has)
        used[i] = true; /* not part of the instant result */
      else
        actual_count++;
    } else {
      actual_count++;
    }
  }
  if (actual_count != ev->nseries) {
    snprintf(last_fail, sizeof(last_fail), "expected %zu series, got %zu (first: %s)", ev->nseries,
             actual_count, na ? al[0] : "-");
    ok = false;
    goto out;
  }
  for (size_t e = 0; e < ev->nseries && ok; e++) {
    const struct exp_series *es = &ev->series[e];
    size_t found = SIZE_MAX;
    if (ev->ordered && !instant_at) {
      if (strcmp(al[e], es->labels) == 0)
        found = e;
    } else {
      for (size_t i = 0; i < na; i++)
        if (!used[i] && strcmp(al[i], es->labels) == 0) {
          found = i;
          break;
        }
    }
    if (found == SIZE_MAX) {
      snprintf(last_fail, sizeof(last_fail), "missing series %s%s", es->labels,
               ev->ordered ? " (ordered)" : "");
      ok = false;
      break;
    }
    used[found] = true;
    const struct nn_promql_series *as = &r->series[found];
    if (instant_at) {
      for (size_t k = 0; k < as->n; k++)
        if (as->t[k] == at && !almost_equal(as->v[k], es->v[0])) {
          snprintf(last_fail, sizeof(last_fail), "%s: expected %g got %g (range check)", es->labels,
                   es->v[0], as->v[k]);
          ok = false;
        }
      continue;
    }
    if (as->n != es->n) {
      snprintf(last_fail, sizeof(last_fail), "%s: expected %zu points, got %zu", es->labels, es->n,
               as->n);
      ok = false;
      break;
    }
    for (size_t k = 0; k < es->n; k++) {
      if (as->t[k] != es->t[k] || !almost_equal(as->v[k], es->v[k])) {
        snprintf(last_fail, sizeof(last_fail), "%s: point %zu expected %g@%lld got %g@%lld",
                 es->labels, k, es->v[k], (long long)es->t[k], as->v[k], (long long)as->t[k]);
        ok = false;
        break;
      }
    }
  }
out:
  free(al);
  free(used);
  return ok;
}

static bool run_eval(struct memstore *ms, const struct eval_cmd *ev)
{
  struct nn_promql_expr *e = NULL;
  struct nn_promql_error err;
  struct nn_promql_result r;
  struct nn_querier q = memstore_querier(ms);
  struct nn_promql_opts opts = {0};
  bool ok = false;
  memset(&r, 0, sizeof(r));
  last_fail[0] = 0;
  int rc = nn_promql_parse(ev->expr, strlen(ev->expr), &e, &err);
  if (rc == 0) {
    if (ev->range)
      rc = nn_promql_eval_range(&q, e, ev->start, ev->end, ev->step, &opts, &r, &err);
    else
      rc = nn_promql_eval_instant(&q, e, ev->t, &opts, &r, &err);
  }
  if (rc < 0) {
    if (!ev->fail) {
      snprintf(last_fail, sizeof(last_fail), "unexpected error: %s", err.msg);
      goto out;
    }
    if (ev->has_fail_msg) {
      ok =
          ev->fail_regex ? regex_search(ev->fail_msg, err.msg) : strcmp(ev->fail_msg, err.msg) == 0;
      if (!ok)
        snprintf(last_fail, sizeof(last_fail), "error %s, expected %s", err.msg, ev->fail_msg);
    } else {
      ok = true;
    }
    goto out;
  }
  if (ev->fail) {
    snprintf(last_fail, sizeof(last_fail), "expected failure, got success");
    goto out;
  }
  if (ev->has_string) {
    ok = r.type == NN_PROMQL_STRING && strcmp(r.str, ev->string) == 0;
    if (!ok)
      snprintf(last_fail, sizeof(last_fail), "expected string");
    goto out;
  }
  if (ev->has_scalar) {
    ok = r.type == NN_PROMQL_SCALAR && almost_equal(r.scalar, ev->scalar);
    if (!ok)
      snprintf(last_fail, sizeof(last_fail), "expected scalar %g, got type %d value %g", ev->scalar,
               r.type, r.scalar);
    goto out;
  }
  if (!ev->range && !ev->range_vector && r.type != NN_PROMQL_VECTOR) {
    snprintf(last_fail, sizeof(last_fail), "expected vector, got type %d", r.type);
    goto out;
  }
  ok = check_series_result(ev, &r, false, 0);
  /* range-mode cross-check of instant queries */
  if (ok && !ev->range && !ev->ordered && !ev->range_vector &&
      !regex_search("(start|end|range|step)\\(\\)", ev->expr)) {
    nn_promql_result_fini(&r);
    rc = nn_promql_eval_range(&q, e, ev->t - 60000, ev->t + 60000, 60000, &opts, &r, &err);
    if (rc < 0) {
      snprintf(last_fail, sizeof(last_fail), "range check error: %s", err.msg);
      ok = false;
    } else {
      ok = check_series_result(ev, &r, true, ev->t);
    }
  }
out:
  nn_promql_result_fini(&r);
  nn_promql_expr_free(e);
  return ok;
}

static void run_file(const char *path, const char *fname, struct counts *tot)
{
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = malloc((size_t)len + 1);
  assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
  text[len] = 0;
  fclose(f);
  /* split lines */
  size_t nl = 1;
  for (char *p = text; *p; p++)
    nl += *p == '\n';
  char **lines = calloc(nl + 1, sizeof(*lines));
  size_t n = 0;
  for (char *p = text, *s = text;; p++) {
    if (*p == '\n' || *p == 0) {
      bool end = *p == 0;
      *p = 0;
      char *t = trim(s);
      lines[n++] = t[0] == '#' ? (char *)"" : t;
      s = p + 1;
      if (end)
        break;
    }
  }
  struct memstore ms;
  memset(&ms, 0, sizeof(ms));
  struct counts fc = {0, 0, 0, 0};
  nn_pool_init(&P, (size_t)1 << 30);
  n_nh = 0;
  for (size_t i = 0; i < n;) {
    char *l = lines[i];
    if (!l[0]) {
      i++;
      continue;
    }
    if (strcmp(l, "clear") == 0) {
      memstore_clear(&ms);
      n_nh = 0;
      i++;
      continue;
    }
    if (strncmp(l, "load", 4) == 0) {
      bool nhcb = strncmp(l, "load_with_nhcb", 14) == 0;
      char *d = trim(l + (nhcb ? 14 : 4));
      int64_t interval;
      assert_true(parse_dur(d, &interval));
      i++;
      for (; i < n && lines[i][0]; i++) {
        struct nn_label ls[64];
        size_t nls;
        int end = parse_series(lines[i], ls, &nls, 64);
        assert_true(end > 0);
        struct vals vs = {0};
        bool nh = false;
        bool okv = parse_values(lines[i] + end, &vs, &nh);
        const char *name = nn_labels_get(ls, nls, "__name__");
        if ((nh || nhcb) && name && n_nh < 512) {
          if (nh)
            nh_names[n_nh++] = nn_pool_strndup(&P, name, strlen(name));
          if (nhcb) {
            /* the NHCB series is stored under the base name */
            size_t bl = strlen(name);
            const char *sfx[] = {"_bucket", "_count", "_sum"};
            for (int k = 0; k < 3 && n_nh < 512; k++) {
              size_t sl = strlen(sfx[k]);
              if (bl > sl && strcmp(name + bl - sl, sfx[k]) == 0)
                nh_names[n_nh++] = nn_pool_strndup(&P, name, bl - sl);
            }
          }
        }
        if (okv) {
          struct memseries *s = memstore_series(&ms, ls, nls);
          for (size_t k = 0; k < vs.n; k++)
            if (!vs.omit[k])
              memstore_append(s, (int64_t)k * interval, vs.v[k]);
        }
        free(vs.v);
        free(vs.omit);
      }
      continue;
    }
    if (strncmp(l, "eval", 4) != 0) {
      fail_msg("%s:%zu: invalid command %s", fname, i + 1, l);
    }
    struct eval_cmd ev;
    memset(&ev, 0, sizeof(ev));
    ev.line = (int)i + 1;
    char *h = l + 4;
    if (strncmp(h, "_fail", 5) == 0) {
      ev.fail = true;
      h += 5;
    } else if (strncmp(h, "_warn", 5) == 0 || strncmp(h, "_info", 5) == 0) {
      h += 5;
    } else if (strncmp(h, "_ordered", 8) == 0) {
      ev.ordered = true;
      h += 8;
    }
    h = trim(h);
    char tbuf[64];
    if (strncmp(h, "instant", 7) == 0) {
      h = trim(h + 7);
      assert_true(strncmp(h, "at ", 3) == 0);
      h = trim(h + 3);
      size_t k = 0;
      while (h[k] && h[k] != ' ' && k < 63) {
        tbuf[k] = h[k];
        k++;
      }
      tbuf[k] = 0;
      assert_true(parse_dur(tbuf, &ev.t));
      ev.expr = trim(h + k);
    } else {
      assert_true(strncmp(h, "range from ", 11) == 0);
      h += 11;
      char a[64], b[64], c[64];
      int consumed = 0;
      assert_int_equal(sscanf(h, "%63s to %63s step %63s %n", a, b, c, &consumed), 3);
      ev.range = true;
      assert_true(parse_dur(a, &ev.start) && parse_dur(b, &ev.end) && parse_dur(c, &ev.step));
      ev.expr = trim(h + consumed);
    }
    i++;
    size_t cap = 0;
    bool stop = false;
    for (; i < n && lines[i][0]; i++) {
      char *b = lines[i];
      if (stop)
        continue;
      if (strncmp(b, "expect ", 7) == 0) {
        char *x = trim(b + 7);
        if (strncmp(x, "fail", 4) == 0) {
          ev.fail = true;
          char *m = trim(x + 4);
          if (strncmp(m, "msg:", 4) == 0) {
            ev.has_fail_msg = true;
            ev.fail_msg = trim(m + 4);
          } else if (strncmp(m, "regex:", 6) == 0) {
            ev.has_fail_msg = ev.fail_regex = true;
            ev.fail_msg = trim(m + 6);
          }
        } else if (strncmp(x, "ordered", 7) == 0) {
          ev.ordered = true;
        } else if (strncmp(x, "warn", 4) == 0 || strncmp(x, "info", 4) == 0) {
          ev.annotations = true;
        } else if (strncmp(x, "string", 6) == 0) {
          char *sv = trim(x + 6);
          const char *msg;
          ev.has_string = true;
          ev.string = nn__promql_unquote(&P, sv, strlen(sv), &msg);
          if (!ev.string)
            ev.string = "";
        } else if (strncmp(x, "range vector from ", 18) == 0) {
          char a[64], bb[64], c[64];
          assert_int_equal(sscanf(x + 18, "%63s to %63s step %63s", a, bb, c), 3);
          ev.range_vector = true;
          assert_true(parse_dur(a, &ev.rv_start) && parse_dur(c, &ev.rv_step));
        }
        continue;
      }
      if (strncmp(b, "expected_fail_message", 21) == 0) {
        ev.has_fail_msg = true;
        ev.fail_msg = trim(b + 21);
        stop = true;
        continue;
      }
      if (strncmp(b, "expected_fail_regexp", 20) == 0) {
        ev.has_fail_msg = ev.fail_regex = true;
        ev.fail_msg = trim(b + 20);
        stop = true;
        continue;
      }
      if (strstr(b, "{{"))
        ev.needs_nh = true;
      /* scalar line? */
      const char *sp = b;
      double sv;
      char *endp;
      long long iv = strtoll(b, &endp, 0);
      if (*endp == 0 && endp != b) {
        ev.has_scalar = true;
        ev.scalar = (double)iv;
        stop = true;
        continue;
      }
      if (scan_num(&sp, &sv) && *sp == 0) {
        ev.has_scalar = true;
        ev.scalar = sv;
        stop = true;
        continue;
      }
      struct nn_label ls[64];
      size_t nls;
      int end = parse_series(b, ls, &nls, 64);
      assert_true(end > 0);
      struct vals vs = {0};
      bool nh = false;
      if (!parse_values(b + end, &vs, &nh))
        ev.needs_nh = true;
      if (ev.nseries == cap) {
        cap = cap ? cap * 2 : 8;
        ev.series = realloc(ev.series, cap * sizeof(*ev.series));
      }
      struct exp_series *es = &ev.series[ev.nseries++];
      es->labels = labels_text(ls, nls);
      es->t = nn_pool_alloc(&P, (vs.n + 1) * sizeof(*es->t));
      es->v = nn_pool_alloc(&P, (vs.n + 1) * sizeof(*es->v));
      es->n = 0;
      int64_t st = ev.range ? ev.start : ev.range_vector ? ev.rv_start : ev.t;
      int64_t step = ev.range ? ev.step : ev.range_vector ? ev.rv_step : 0;
      for (size_t k = 0; k < vs.n; k++) {
        if (vs.omit[k])
          continue;
        es->t[es->n] = st + (int64_t)k * step;
        es->v[es->n++] = vs.v[k];
      }
      free(vs.v);
      free(vs.omit);
    }
    for (size_t k = 0; k < n_nh && !ev.needs_nh; k++)
      if (word_in(ev.expr, nh_names[k]))
        ev.needs_nh = true;
    if (regex_search("\\bhistogram_(count|sum|avg|stddev|stdvar)\\s*\\(", ev.expr))
      ev.needs_nh = true;
    if (ev.needs_nh || experimental(ev.expr)) {
      fc.skip++;
    } else {
      bool ok = run_eval(&ms, &ev);
      if (ok) {
        fc.pass++;
      } else {
        fc.fail++;
        if (verbose)
          printf("FAIL %s:%d: %s\n    %s\n", fname, ev.line, ev.expr, last_fail);
      }
      fc.annot += ev.annotations;
    }
    free(ev.series);
  }
  memstore_clear(&ms);
  nn_pool_clear(&P);
  free(lines);
  free(text);
  printf("  %-26s %4d passed, %3d failed, %4d skipped (%d with unchecked warn/info)\n", fname,
         fc.pass, fc.fail, fc.skip, fc.annot);
  tot->pass += fc.pass;
  tot->fail += fc.fail;
  tot->skip += fc.skip;
  tot->annot += fc.annot;
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void corpus_pass_rate_meets_threshold(void **state)
{
  (void)state;
  verbose = getenv("NN_PROMQLTEST_VERBOSE") != NULL;
  DIR *d = opendir(CORPUS_DIR);
  if (!d) {
    printf("promqltest: corpus not found at %s\n", CORPUS_DIR);
    fail();
  }
  char *names[64];
  size_t nn = 0;
  struct dirent *de;
  while ((de = readdir(d)) && nn < 64) {
    size_t l = strlen(de->d_name);
    if (l > 5 && strcmp(de->d_name + l - 5, ".test") == 0)
      names[nn++] = strdup(de->d_name);
  }
  closedir(d);
  qsort(names, nn, sizeof(*names), cmp_str);
  struct counts tot = {0, 0, 0, 0};
  const char *only = getenv("NN_PROMQLTEST_FILE");
  for (size_t i = 0; i < nn; i++) {
    bool skip = false;
    for (size_t k = 0; k < sizeof(skip_files) / sizeof(skip_files[0]); k++)
      skip |= strcmp(names[i], skip_files[k]) == 0;
    if (only && strcmp(only, names[i]) != 0)
      skip = true;
    if (skip) {
      printf("  %-26s skipped (whole file)\n", names[i]);
    } else {
      char path[4096];
      snprintf(path, sizeof(path), "%s/%s", CORPUS_DIR, names[i]);
      run_file(path, names[i], &tot);
    }
    free(names[i]);
  }
  printf("promqltest: %d passed, %d failed, %d skipped\n", tot.pass, tot.fail, tot.skip);
  double rate = tot.pass + tot.fail ? (double)tot.pass / (tot.pass + tot.fail) : 0;
  printf("promqltest: pass rate %.2f%% (minimum %.0f%%)\n", rate * 100, PASS_RATE_MIN * 100);
  assert_true(tot.pass + tot.fail > 500 || only);
  assert_true(rate >= PASS_RATE_MIN);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(corpus_pass_rate_meets_threshold),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
