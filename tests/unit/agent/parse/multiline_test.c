/* SPDX-License-Identifier: Apache-2.0 */
/* Multiline joining: Java stack traces, flush timeout, max lines, streams kept apart, the
 * offsets a joined entry covers, and pattern errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "agent/parse/parse.h"
#include "common/error.h"

#define MAXE 32

struct got {
  int n;
  char *line[MAXE];
  struct nn_parse_entry e[MAXE];
};

static void on_entry(void *ctx, const struct nn_parse_entry *e)
{
  struct got *g = ctx;
  assert_true(g->n < MAXE);
  g->e[g->n] = *e;
  g->line[g->n] = strndup(e->line, e->len);
  g->n++;
}

static void got_free(struct got *g)
{
  for (int i = 0; i < g->n; i++)
    free(g->line[i]);
  g->n = 0;
}

static void feed_text(struct nn_parser *p, const char *text, uint64_t *off)
{
  const char *s = text;
  while (*s) {
    const char *nl = strchr(s, '\n');
    size_t len = (size_t)(nl - s);
    nn_parse_feed(p, s, len, *off, *off + len + 1, false);
    *off += len + 1;
    s = nl + 1;
  }
}

static struct nn_parse_ml *rule(uint32_t max_lines, uint32_t timeout_ms)
{
  struct nn_parse_ml *ml;
  char err[256];
  struct nn_parse_ml_config c = {.start_pattern = "^\\d{4}-\\d{2}-\\d{2} ",
                                 .max_lines = max_lines,
                                 .flush_timeout_ms = timeout_ms};
  assert_int_equal(nn_parse_ml_create(&c, &ml, err, sizeof(err)), 0);
  return ml;
}

static void java_stack_trace_is_joined(void **state)
{
  struct got g = {0};
  struct nn_parse_ml *ml = rule(0, 0);
  struct nn_parse_config cfg = {.format = NN_PARSE_RAW, .ml = ml};
  struct nn_parser *p = nn_parse_create(&cfg, on_entry, &g);
  uint64_t off = 0;
  const char *first = "2024-01-02 03:04:05 INFO started\n";
  feed_text(p, first, &off);
  uint64_t trace_start = off;
  feed_text(p,
            "2024-01-02 03:04:06 ERROR request failed\n"
            "java.lang.IllegalStateException: boom\n"
            "\tat com.example.Foo.bar(Foo.java:42)\n"
            "\tat com.example.Main.main(Main.java:7)\n",
            &off);
  uint64_t trace_end = off;
  /* the INFO line is emitted once the next start arrives; the trace is still pending */
  assert_int_equal(g.n, 1);
  assert_string_equal(g.line[0], "2024-01-02 03:04:05 INFO started");
  assert_int_equal(g.e[0].commit_offset, trace_start);
  feed_text(p, "2024-01-02 03:04:07 INFO recovered\n", &off);
  assert_int_equal(g.n, 2);
  assert_string_equal(g.line[1], "2024-01-02 03:04:06 ERROR request failed\n"
                                 "java.lang.IllegalStateException: boom\n"
                                 "\tat com.example.Foo.bar(Foo.java:42)\n"
                                 "\tat com.example.Main.main(Main.java:7)");
  assert_true(g.e[1].flags & NN_PARSE_F_MULTILINE);
  assert_int_equal(g.e[1].start_offset, trace_start);
  assert_int_equal(g.e[1].end_offset, trace_end);
  assert_int_equal(g.e[1].commit_offset, trace_end);
  got_free(&g);
  nn_parse_destroy(p);
  nn_parse_ml_destroy(ml);
}

static void pending_entry_flushes_after_timeout_that_resets_on_each_line(void **state)
{
  struct got g = {0};
  struct nn_parse_ml *ml = rule(0, 300);
  struct nn_parse_config cfg = {.format = NN_PARSE_RAW, .ml = ml};
  struct nn_parser *p = nn_parse_create(&cfg, on_entry, &g);
  uint64_t off = 0;
  nn_parse_tick(p, 1000);
  feed_text(p, "2024-01-02 03:04:06 ERROR x\n", &off);
  nn_parse_tick(p, 1200);
  feed_text(p, "\tat a\n", &off);
  nn_parse_tick(p, 1400); /* 400 ms after the start, 200 after the last line */
  assert_int_equal(g.n, 0);
  nn_parse_tick(p, 1500);
  assert_int_equal(g.n, 1);
  assert_string_equal(g.line[0], "2024-01-02 03:04:06 ERROR x\n\tat a");
  assert_int_equal(g.e[0].commit_offset, off);
  assert_false(nn_parse_pending(p));
  got_free(&g);
  nn_parse_destroy(p);
  nn_parse_ml_destroy(ml);
}

static void max_lines_bounds_a_join(void **state)
{
  struct got g = {0};
  struct nn_parse_ml *ml = rule(3, 0);
  struct nn_parse_config cfg = {.format = NN_PARSE_RAW, .ml = ml};
  struct nn_parser *p = nn_parse_create(&cfg, on_entry, &g);
  uint64_t off = 0;
  feed_text(p, "2024-01-02 03:04:06 ERROR x\n a\n b\n c\n d\n", &off);
  assert_int_equal(g.n, 1);
  assert_string_equal(g.line[0], "2024-01-02 03:04:06 ERROR x\n a\n b");
  nn_parse_flush(p);
  assert_int_equal(g.n, 2);
  assert_string_equal(g.line[1], " c\n d");
  assert_int_equal(g.e[1].commit_offset, off);
  got_free(&g);
  nn_parse_destroy(p);
  nn_parse_ml_destroy(ml);
}

static void cri_streams_are_joined_separately(void **state)
{
  struct got g = {0};
  struct nn_parse_ml *ml = rule(0, 0);
  struct nn_parse_config cfg = {.format = NN_PARSE_CRI, .ml = ml};
  struct nn_parser *p = nn_parse_create(&cfg, on_entry, &g);
  uint64_t off = 0;
  feed_text(p,
            "2024-01-02T03:04:05Z stdout F 2024-01-02 03:04:06 out start\n"
            "2024-01-02T03:04:05Z stderr F 2024-01-02 03:04:06 err start\n"
            "2024-01-02T03:04:05Z stdout F \tout more\n"
            "2024-01-02T03:04:05Z stderr P \terr \n"
            "2024-01-02T03:04:05Z stderr F more\n",
            &off);
  assert_int_equal(g.n, 0);
  nn_parse_flush(p);
  assert_int_equal(g.n, 2);
  assert_string_equal(g.line[0], "2024-01-02 03:04:06 out start\n\tout more");
  assert_int_equal(g.e[0].stream, NN_PARSE_STREAM_STDOUT);
  assert_string_equal(g.line[1], "2024-01-02 03:04:06 err start\n\terr more");
  assert_true(g.e[1].flags & NN_PARSE_F_PARTIAL_JOINED);
  assert_int_equal(g.e[1].commit_offset, off);
  got_free(&g);
  nn_parse_destroy(p);
  nn_parse_ml_destroy(ml);
}

static void bad_pattern_is_a_config_error(void **state)
{
  struct nn_parse_ml *ml;
  char err[256];
  struct nn_parse_ml_config c = {.start_pattern = "^(unclosed"};
  assert_int_equal(nn_parse_ml_create(&c, &ml, err, sizeof(err)), NN_ECONFIG);
  assert_null(ml);
  assert_non_null(strstr(err, "(unclosed"));
  c.start_pattern = "";
  assert_int_equal(nn_parse_ml_create(&c, &ml, err, sizeof(err)), NN_ECONFIG);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(java_stack_trace_is_joined),
      cmocka_unit_test(pending_entry_flushes_after_timeout_that_resets_on_each_line),
      cmocka_unit_test(max_lines_bounds_a_join),
      cmocka_unit_test(cri_streams_are_joined_separately),
      cmocka_unit_test(bad_pattern_is_a_config_error),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
