/* SPDX-License-Identifier: Apache-2.0 */
/* CRI and Docker json-file parsing: timestamps, P/F and 16 KiB split joins per stream, caps,
 * invalid UTF-8 pass-through, bad framing, and the commit offsets a reader checkpoints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/parse/parse.h"
#include "common/buf.h"
#include "common/error.h"

#define MAXE 64

struct got {
  int n;
  struct {
    char *line;
    size_t len;
    struct nn_parse_entry e;
  } v[MAXE];
};

static void on_entry(void *ctx, const struct nn_parse_entry *e)
{
  struct got *g = ctx;
  assert_true(g->n < MAXE);
  g->v[g->n].e = *e;
  g->v[g->n].line = malloc(e->len + 1);
  memcpy(g->v[g->n].line, e->line, e->len);
  g->v[g->n].line[e->len] = '\0';
  g->v[g->n].len = e->len;
  g->n++;
}

static void got_free(struct got *g)
{
  for (int i = 0; i < g->n; i++)
    free(g->v[i].line);
  g->n = 0;
}

/* Feeds text split at newlines, tracking offsets as a reader would. */
static void feed_text(struct nn_parser *p, const char *text, uint64_t *off)
{
  const char *s = text;
  while (*s) {
    const char *nl = strchr(s, '\n');
    assert_non_null(nl);
    size_t len = (size_t)(nl - s);
    nn_parse_feed(p, s, len, *off, *off + len + 1, false);
    *off += len + 1;
    s = nl + 1;
  }
}

static void rfc3339_parses_offsets_fractions_and_rejects_garbage(void **state)
{
  int64_t ns;
  assert_int_equal(nn_parse_rfc3339("1970-01-01T00:00:00Z", 20, &ns), 0);
  assert_int_equal(ns, 0);
  const char *t = "2024-02-29T12:34:56.123456789Z";
  assert_int_equal(nn_parse_rfc3339(t, strlen(t), &ns), 0);
  assert_int_equal(ns, INT64_C(1709210096123456789));
  t = "2024-02-29T14:34:56.123456789+02:00";
  assert_int_equal(nn_parse_rfc3339(t, strlen(t), &ns), 0);
  assert_int_equal(ns, INT64_C(1709210096123456789));
  t = "2024-02-29T07:04:56.5-0530";
  assert_int_equal(nn_parse_rfc3339(t, strlen(t), &ns), 0);
  assert_int_equal(ns, INT64_C(1709210096500000000));
  /* more than 9 fraction digits: the rest is ignored */
  t = "2024-02-29T12:34:56.1234567891234Z";
  assert_int_equal(nn_parse_rfc3339(t, strlen(t), &ns), 0);
  assert_int_equal(ns, INT64_C(1709210096123456789));
  const char *bad[] = {"2023-02-29T00:00:00Z",  "2024-13-01T00:00:00Z",
                       "2024-01-01T00:00:00",   "2024-01-01T00:00:00.Z",
                       "2024-01-01X00:00:00Z",  "2024-01-01T00:00:00+1",
                       "2024-01-01T00:00:00Zx", "garbage"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(nn_parse_rfc3339(bad[i], strlen(bad[i]), &ns), NN_EINVAL);
}

/* The parser reuses the seconds of the previous line's timestamp when the date and time
 * text is the same: every line must still get exactly what a fresh parse gives, and a line
 * whose zone or fraction is broken must not borrow the previous line's value. */
static void cri_timestamps_of_consecutive_lines_match_fresh_parses(void **state)
{
  static const char *const ts[] = {
      "2024-02-29T12:34:56.000000001Z", "2024-02-29T12:34:56.5Z",     "2024-02-29T12:34:56Z",
      "2024-02-29T12:34:56.25+02:00",   "2024-02-29T12:34:57.1Z",     "2024-02-29T12:34:56.9Z",
      "2024-03-01T00:00:00.0Z",         "2024-02-29T12:34:56.1-0130",
  };
  struct got g = {0};
  struct nn_parse_config cfg = {.format = NN_PARSE_CRI};
  struct nn_parser *p = nn_parse_create(&cfg, on_entry, &g);
  assert_non_null(p);
  char line[128];
  uint64_t off = 0;
  for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
    int n = snprintf(line, sizeof(line), "%s stdout F line %zu", ts[i], i);
    nn_parse_feed(p, line, (size_t)n, off, off + (size_t)n + 1, false);
    off += (size_t)n + 1;
    assert_int_equal(g.n, (int)i + 1);
    int64_t want;
    assert_int_equal(nn_parse_rfc3339(ts[i], strlen(ts[i]), &want), 0);
    assert_int_equal(g.v[i].e.ts_ns, want);
    assert_int_equal(g.v[i].e.flags & NN_PARSE_F_BAD_FORMAT, 0);
  }
  /* Same date and time text as the line before, broken after it: bad framing, raw line. */
  static const char *const bad[] = {"2024-02-29T12:34:56.1-01 stdout F x",
                                    "2024-02-29T12:34:56. stdout F x",
                                    "2024-02-29T12:34:56.1Zq stdout F x"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    size_t n = strlen(bad[i]);
    int before = g.n;
    nn_parse_feed(p, bad[i], n, off, off + n + 1, false);
    off += n + 1;
    assert_int_equal(g.n, before + 1);
    assert_true(g.v[before].e.flags & NN_PARSE_F_BAD_FORMAT);
    assert_int_equal(g.v[before].e.ts_ns, 0);
  }
  /* And a date that does not exist after a valid line with the same time text. */
  const char *l = "2023-02-29T12:34:56.1Z stdout F x";
  nn_parse_feed(p, l, strlen(l), off, off + strlen(l) + 1, false);
  assert_true(g.v[g.n - 1].e.flags & NN_PARSE_F_BAD_FORMAT);
  nn_parse_destroy(p);
  got_free(&g);
}

static void cri_line_fields_and_detection(void **state)
{
  struct nn_parse_cri_line c;
  const char *l = "2024-01-02T03:04:05.000000001Z stderr F hello world";
  assert_int_equal(nn_parse_cri_line(l, strlen(l), &c), 0);
  assert_int_equal(c.stream, NN_PARSE_STREAM_STDERR);
  assert_false(c.partial);
  assert_int_equal(c.msg_len, 11);
  assert_memory_equal(c.msg, "hello world", 11);
  assert_int_equal(c.ts_ns % 1000000000, 1);
  l = "2024-01-02T03:04:05Z stdout P";
  assert_int_equal(nn_parse_cri_line(l, strlen(l), &c), 0);
  assert_true(c.partial);
  assert_int_equal(c.msg_len, 0);
  l = "2024-01-02T03:04:05Z stdin F x";
  assert_int_equal(nn_parse_cri_line(l, strlen(l), &c), NN_EINVAL);
  l = "2024-01-02T03:04:05Z stdout X x";
  assert_int_equal(nn_parse_cri_line(l, strlen(l), &c), NN_EINVAL);
  l = "2024-01-02T03:04:05Z stdout F";
  assert_int_equal(nn_parse_detect(l, strlen(l)), NN_PARSE_CRI);
  l = "{\"log\":\"x\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-02T03:04:05Z\"}";
  assert_int_equal(nn_parse_detect(l, strlen(l)), NN_PARSE_DOCKER);
  l = "plain text";
  assert_int_equal(nn_parse_detect(l, strlen(l)), NN_PARSE_RAW);
}

static void cri_partial_fragments_join_per_stream(void **state)
{
  struct got g = {0};
  struct nn_parse_config cfg = {.format = NN_PARSE_AUTO};
  struct nn_parser *p = nn_parse_create(&cfg, on_entry, &g);
  uint64_t off = 0;
  feed_text(p,
            "2024-01-02T03:04:05Z stdout P hel\n"   /* 0..34 */
            "2024-01-02T03:04:05Z stderr F err1\n"  /* 34..69 */
            "2024-01-02T03:04:06Z stdout P lo \n"   /* 69..103 */
            "2024-01-02T03:04:07Z stdout F world\n" /* 103..139 */
            "2024-01-02T03:04:08Z stdout F next\n",
            &off);
  assert_int_equal(nn_parse_format_of(p), NN_PARSE_CRI);
  assert_int_equal(g.n, 3);
  /* stderr completes first; the pending stdout fragment holds the commit at offset 0 */
  assert_string_equal(g.v[0].line, "err1");
  assert_int_equal(g.v[0].e.stream, NN_PARSE_STREAM_STDERR);
  assert_int_equal(g.v[0].e.start_offset, 34);
  assert_int_equal(g.v[0].e.end_offset, 69);
  assert_int_equal(g.v[0].e.commit_offset, 0);
  assert_string_equal(g.v[1].line, "hello world");
  assert_int_equal(g.v[1].e.stream, NN_PARSE_STREAM_STDOUT);
  assert_true(g.v[1].e.flags & NN_PARSE_F_PARTIAL_JOINED);
  assert_int_equal(g.v[1].e.start_offset, 0);
  assert_int_equal(g.v[1].e.end_offset, 139);
  assert_int_equal(g.v[1].e.commit_offset, 139);
  assert_int_equal(g.v[1].e.ts_ns, INT64_C(1704164645) * 1000000000); /* first fragment */
  assert_string_equal(g.v[2].line, "next");
  assert_false(g.v[2].e.flags & NN_PARSE_F_PARTIAL_JOINED);
  assert_int_equal(g.v[2].e.commit_offset, off);
  assert_int_equal(nn_parse_stats(p)->partial_joined, 1);
  assert_false(nn_parse_pending(p));
  got_free(&g);
  nn_parse_destroy(p);
}

static void cri_join_is_capped_and_flagged(void **state)
{
  struct got g = {0};
  struct nn_parse_config cfg = {.format = NN_PARSE_CRI, .max_line_size = 10};
  struct nn_parser *p = nn_parse_create(&cfg, on_entry, &g);
  uint64_t off = 0;
  feed_text(p,
            "2024-01-02T03:04:05Z stdout P 0123456\n"
            "2024-01-02T03:04:05Z stdout P 789abcdef\n"
            "2024-01-02T03:04:05Z stdout F ghij\n"
            "2024-01-02T03:04:05Z stdout F short\n",
            &off);
  assert_int_equal(g.n, 2);
  assert_string_equal(g.v[0].line, "0123456789");
  assert_true(g.v[0].e.flags & NN_PARSE_F_TRUNCATED);
  assert_string_equal(g.v[1].line, "short");
  assert_false(g.v[1].e.flags & NN_PARSE_F_TRUNCATED);
  assert_int_equal(nn_parse_stats(p)->truncated, 1);
  got_free(&g);
  nn_parse_destroy(p);
}

static void cri_partial_flushes_on_timeout_and_on_flush(void **state)
{
  struct got g = {0};
  struct nn_parse_config cfg = {.format = NN_PARSE_CRI, .partial_timeout_ms = 500};
  struct nn_parser *p = nn_parse_create(&cfg, on_entry, &g);
  uint64_t off = 0;
  nn_parse_tick(p, 1000);
  feed_text(p, "2024-01-02T03:04:05Z stdout P abc\n", &off);
  nn_parse_tick(p, 1400);
  assert_int_equal(g.n, 0);
  assert_true(nn_parse_pending(p));
  nn_parse_tick(p, 1500);
  assert_int_equal(g.n, 1);
  assert_string_equal(g.v[0].line, "abc");
  assert_true(g.v[0].e.flags & NN_PARSE_F_FLUSHED);
  assert_int_equal(g.v[0].e.commit_offset, off);
  feed_text(p, "2024-01-02T03:04:05Z stderr P def\n", &off);
  nn_parse_flush(p);
  assert_int_equal(g.n, 2);
  assert_string_equal(g.v[1].line, "def");
  assert_int_equal(g.v[1].e.stream, NN_PARSE_STREAM_STDERR);
  got_free(&g);
  nn_parse_destroy(p);
}

static void docker_split_lines_join_and_unescape(void **state)
{
  struct got g = {0};
  struct nn_parse_config cfg = {.format = NN_PARSE_AUTO};
  struct nn_parser *p = nn_parse_create(&cfg, on_entry, &g);
  uint64_t off = 0;
  feed_text(p,
            "{\"log\":\"first half \",\"stream\":\"stdout\",\"time\":\"2024-01-02T03:04:05.5Z\"}\n"
            "{\"log\":\"err \\\"q\\\" \\u00e9\\ud83d\\ude00\\n\",\"stream\":\"stderr\","
            "\"time\":\"2024-01-02T03:04:06Z\"}\n"
            "{\"log\":\"second half\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-02T03:04:07Z\"}\n"
            "{\"log\":\"tab\\there\\n\",\"stream\":\"stdout\",\"attrs\":{\"a\":[1,{\"b\":null}]},"
            "\"time\":\"2024-01-02T03:04:08Z\"}\n",
            &off);
  assert_int_equal(nn_parse_format_of(p), NN_PARSE_DOCKER);
  assert_int_equal(g.n, 3);
  assert_string_equal(g.v[0].line, "err \"q\" \xc3\xa9\xf0\x9f\x98\x80");
  assert_int_equal(g.v[0].e.stream, NN_PARSE_STREAM_STDERR);
  assert_int_equal(g.v[0].e.commit_offset, 0);
  assert_string_equal(g.v[1].line, "first half second half");
  assert_true(g.v[1].e.flags & NN_PARSE_F_PARTIAL_JOINED);
  assert_int_equal(g.v[1].e.ts_ns, INT64_C(1704164645500000000));
  assert_string_equal(g.v[2].line, "tab\there");
  assert_int_equal(g.v[2].e.commit_offset, off);
  assert_int_equal(nn_parse_stats(p)->bad_format, 0);
  got_free(&g);
  nn_parse_destroy(p);
}

static void docker_line_rejects_malformed_records(void **state)
{
  struct nn_buf scratch;
  struct nn_parse_docker_line d;
  nn_buf_init(&scratch, 1024);
  const char *bad[] = {"",
                       "{}",
                       "{\"log\":",
                       "{\"log\":\"x\\n\"",
                       "{\"log\":\"x\\q\"}",
                       "{\"stream\":\"stdout\"}",
                       "{\"log\":\"x\"} trailing",
                       "[1]",
                       "{\"log\":\"x\",}",
                       "{\"log\":\"\\u12\"}"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(nn_parse_docker_line(bad[i], strlen(bad[i]), false, &scratch, &d), NN_EINVAL);
  /* lenient mode accepts a value cut by the reader, even mid-escape */
  const char *cut = "{\"log\":\"abc\\u00";
  assert_int_equal(nn_parse_docker_line(cut, strlen(cut), true, &scratch, &d), 0);
  assert_int_equal(d.msg_len, 3);
  assert_memory_equal(d.msg, "abc", 3);
  nn_buf_fini(&scratch);
}

static void bad_framing_and_invalid_utf8_pass_through(void **state)
{
  struct got g = {0};
  struct nn_parse_config cfg = {.format = NN_PARSE_CRI};
  struct nn_parser *p = nn_parse_create(&cfg, on_entry, &g);
  uint64_t off = 0;
  feed_text(p,
            "not a cri line\n"
            "2024-01-02T03:04:05Z stdout F bad \xff\xfe bytes\n"
            "2024-01-02T03:04:05Z stdout F \n",
            &off);
  assert_int_equal(g.n, 3);
  assert_string_equal(g.v[0].line, "not a cri line");
  assert_true(g.v[0].e.flags & NN_PARSE_F_BAD_FORMAT);
  assert_int_equal(g.v[0].e.stream, NN_PARSE_STREAM_NONE);
  assert_string_equal(g.v[1].line, "bad \xff\xfe bytes");
  assert_true(g.v[1].e.flags & NN_PARSE_F_INVALID_UTF8);
  assert_int_equal(g.v[2].len, 0);
  assert_int_equal(nn_parse_stats(p)->invalid_utf8, 1);
  assert_int_equal(nn_parse_stats(p)->bad_format, 1);
  got_free(&g);
  nn_parse_destroy(p);
}

static void huge_line_truncated_on_a_utf8_boundary(void **state)
{
  struct got g = {0};
  struct nn_parse_config cfg = {.format = NN_PARSE_RAW, .max_line_size = 1024};
  struct nn_parser *p = nn_parse_create(&cfg, on_entry, &g);
  size_t n = 10u << 20;
  char *big = malloc(n);
  /* 3-byte characters so that the 1024-byte cut falls inside one */
  for (size_t i = 0; i + 3 <= n; i += 3)
    memcpy(big + i, "\xe2\x82\xac", 3);
  size_t len = n - n % 3;
  nn_parse_feed(p, big, len, 0, len + 1, false);
  nn_parse_feed(p, "after", 5, len + 1, len + 7, false);
  assert_int_equal(g.n, 2);
  assert_int_equal(g.v[0].len, 1023);
  assert_true(g.v[0].e.flags & NN_PARSE_F_TRUNCATED);
  assert_false(g.v[0].e.flags & NN_PARSE_F_INVALID_UTF8);
  assert_string_equal(g.v[1].line, "after");
  assert_int_equal(g.v[1].e.commit_offset, len + 7);
  free(big);
  got_free(&g);
  nn_parse_destroy(p);
}

static void reset_restarts_offsets_and_format(void **state)
{
  struct got g = {0};
  struct nn_parse_config cfg = {0};
  struct nn_parser *p = nn_parse_create(&cfg, on_entry, &g);
  uint64_t off = 0;
  feed_text(p, "2024-01-02T03:04:05Z stdout P abc\n", &off);
  assert_true(nn_parse_pending(p));
  nn_parse_reset(p);
  assert_false(nn_parse_pending(p));
  assert_int_equal(nn_parse_format_of(p), NN_PARSE_AUTO);
  off = 0;
  feed_text(p, "plain\n", &off);
  assert_int_equal(g.n, 1);
  assert_int_equal(g.v[0].e.commit_offset, 6);
  assert_int_equal(nn_parse_format_of(p), NN_PARSE_RAW);
  got_free(&g);
  nn_parse_destroy(p);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(rfc3339_parses_offsets_fractions_and_rejects_garbage),
      cmocka_unit_test(cri_line_fields_and_detection),
      cmocka_unit_test(cri_timestamps_of_consecutive_lines_match_fresh_parses),
      cmocka_unit_test(cri_partial_fragments_join_per_stream),
      cmocka_unit_test(cri_join_is_capped_and_flagged),
      cmocka_unit_test(cri_partial_flushes_on_timeout_and_on_flush),
      cmocka_unit_test(docker_split_lines_join_and_unescape),
      cmocka_unit_test(docker_line_rejects_malformed_records),
      cmocka_unit_test(bad_framing_and_invalid_utf8_pass_through),
      cmocka_unit_test(huge_line_truncated_on_a_utf8_boundary),
      cmocka_unit_test(reset_restarts_offsets_and_format),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
