/* SPDX-License-Identifier: Apache-2.0 */
/* The JSON scanner of logs -> metrics against the jansson tree it replaced: on hand-written
 * hostile lines (truncation, deep nesting, huge numbers, \u escapes, bad UTF-8, duplicate
 * keys) and on many generated and damaged lines, both must accept the same lines and give the
 * same fields, byte for byte. A few cases also state the expected fields outright. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/logmetrics/internal.h"
#include "common/metrics.h"

static struct nn_logmetrics_config default_cfg(void)
{
  return (struct nn_logmetrics_config){.service_field = "service",
                                       .endpoint_field = "path",
                                       .method_field = "method",
                                       .status_field = "status",
                                       .duration_field = "duration_ms",
                                       .duration_unit_seconds = 0.001};
}

static void blank(struct nn__logmetrics_fields *f)
{
  memset(f, 0, sizeof(*f));
  f->seconds = NAN;
}

static void show(const char *line, size_t len)
{
  fprintf(stderr, "line (%zu bytes): ", len);
  for (size_t i = 0; i < len && i < 400; i++) {
    unsigned char c = (unsigned char)line[i];
    if (c >= 0x20 && c < 0x7f)
      fputc(c, stderr);
    else
      fprintf(stderr, "\\x%02x", c);
  }
  fputc('\n', stderr);
}

/* Both parsers on one line: same verdict, same fields. Returns the verdict. */
static bool same_n(const struct nn_logmetrics_config *cfg, const char *line, size_t len)
{
  struct nn__logmetrics_fields a, b;
  blank(&a);
  blank(&b);
  bool ra = nn__logmetrics_json_scan(cfg, line, len, &a);
  bool rb = nn__logmetrics_json_jansson(cfg, line, len, &b);
  if (ra != rb) {
    show(line, len);
    fail_msg("scanner %s, jansson %s", ra ? "accepts" : "refuses", rb ? "accepts" : "refuses");
  }
  if (!ra)
    return false;
  if (memcmp(a.key, b.key, sizeof(a.key)) != 0 || strcmp(a.status, b.status) != 0 ||
      !((isnan(a.seconds) && isnan(b.seconds)) || memcmp(&a.seconds, &b.seconds, 8) == 0)) {
    show(line, len);
    fail_msg("fields differ: service '%s'/'%s' endpoint '%s'/'%s' method '%s'/'%s' status "
             "'%s'/'%s' seconds %.17g/%.17g",
             a.key[0], b.key[0], a.key[1], b.key[1], a.key[2], b.key[2], a.status, b.status,
             a.seconds, b.seconds);
  }
  return true;
}

static bool same(const struct nn_logmetrics_config *cfg, const char *line)
{
  return same_n(cfg, line, strlen(line));
}

static void fields_of_an_access_log_line(void **state)
{
  struct nn_logmetrics_config cfg = default_cfg();
  struct nn__logmetrics_fields f;
  blank(&f);
  const char *line =
      "{\"ts\":\"2026-12-07T10:00:00.000001Z\",\"level\":\"info\",\"remote_addr\":\"10.1.2.3\","
      "\"method\":\"GET\",\"path\":\"/api/v1/items/42\",\"status\":200,\"bytes\":512,"
      "\"duration_ms\":12.345,\"user_agent\":\"curl/7.88.1\",\"trace_id\":\"00ab\"}";
  assert_true(nn__logmetrics_json_scan(&cfg, line, strlen(line), &f));
  assert_string_equal(f.key[NN__LM_SERVICE], "");
  assert_string_equal(f.key[NN__LM_ENDPOINT], "/api/v1/items/42");
  assert_string_equal(f.key[NN__LM_METHOD], "GET");
  assert_string_equal(f.status, "200");
  assert_true(f.seconds == 12.345 * 0.001);
  assert_true(same(&cfg, line));
  (void)state;
}

static void duplicate_keys_count_by_the_last(void **state)
{
  struct nn_logmetrics_config cfg = default_cfg();
  struct nn__logmetrics_fields f;
  blank(&f);
  /* The last "status" is an array: the line has no status at all, as in jansson's tree. */
  const char *line = "{\"path\":\"/a\",\"path\":\"/b\",\"status\":200,\"status\":[1],"
                     "\"pa\\u0074h\":\"/c\",\"duration_ms\":1,\"duration_ms\":\"2\"}";
  assert_true(nn__logmetrics_json_scan(&cfg, line, strlen(line), &f));
  assert_string_equal(f.key[NN__LM_ENDPOINT], "/c");
  assert_string_equal(f.status, "");
  assert_true(isnan(f.seconds));
  assert_true(same(&cfg, line));
  /* Keys of nested objects are not fields. */
  blank(&f);
  line = "{\"req\":{\"path\":\"/nested\",\"status\":500},\"status\":\"-0\",\"path\":\"/top\"}";
  assert_true(nn__logmetrics_json_scan(&cfg, line, strlen(line), &f));
  assert_string_equal(f.key[NN__LM_ENDPOINT], "/top");
  assert_string_equal(f.status, "-0");
  assert_true(same(&cfg, line));
  (void)state;
}

static char *nest(int arrays, const char *inner)
{
  size_t n = strlen(inner);
  char *s = malloc(2 * (size_t)arrays + n + 16);
  size_t k = 0;
  k += (size_t)snprintf(s, 16, "{\"a\":");
  for (int i = 0; i < arrays; i++)
    s[k++] = '[';
  memcpy(s + k, inner, n);
  k += n;
  for (int i = 0; i < arrays; i++)
    s[k++] = ']';
  s[k++] = '}';
  s[k] = '\0';
  return s;
}

static void hostile_lines_agree(void **state)
{
  struct nn_logmetrics_config cfg = default_cfg();
  static const char *const lines[] = {
      "{}",
      "{ }",
      " {}",
      "{}\n",
      "{} x",
      "{}{}",
      "{\"path\":\"/a\",\"status\":200",
      "{\"path\":\"/a\",\"status\":200,}",
      "{\"path\":\"/a\",\"status\":2",
      "{\"path\":\"/a\",\"status\":\"2",
      "{\"path\":\"/a\\",
      "{\"path\":\"/a\\u00",
      "{\"path\":\"/a\\u00e9\\ud83d\\ude00\",\"status\":\"\\u0032\\u00300\"}",
      "{\"path\":\"\\ud800\",\"status\":200}",
      "{\"path\":\"\\udc00\",\"status\":200}",
      "{\"path\":\"\\ud83d\\u0041\",\"status\":200}",
      "{\"path\":\"\\ud83dx\",\"status\":200}",
      "{\"path\":\"a\\u0000b\",\"status\":200}",
      "{\"pa\\u0000th\":\"a\",\"status\":200}",
      "{\"path\":\"\\uD83D\\uDE00\\uFFFF\",\"status\":200}",
      "{\"path\":\"\\x\",\"status\":200}",
      "{\"path\":\"\\/\\\"\\\\\\b\\f\\n\\r\\t\",\"status\":200}",
      "{\"path\":\"tab\there\",\"status\":200}",
      "{\"path\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",\"status\":200}",
      "{\"path\":\"\xc3\",\"status\":200}",
      "{\"path\":\"\xc0\xaf\",\"status\":200}",
      "{\"path\":\"\xe0\x80\xaf\",\"status\":200}",
      "{\"path\":\"\xed\xa0\x80\",\"status\":200}",
      "{\"path\":\"\xf4\x90\x80\x80\",\"status\":200}",
      "{\"path\":\"\xf5\x80\x80\x80\",\"status\":200}",
      "{\"path\":\"\x80\",\"status\":200}",
      "{\"path\":\"/a\",\"status\":200,\"x\":\xc3\xa9}",
      "{\"path\":\"/a\",\"status\":9223372036854775807}",
      "{\"path\":\"/a\",\"status\":9223372036854775808}",
      "{\"path\":\"/a\",\"status\":-9223372036854775808}",
      "{\"path\":\"/a\",\"status\":-9223372036854775809}",
      "{\"path\":\"/a\",\"status\":99999999999999999999999}",
      "{\"path\":\"/a\",\"status\":-0}",
      "{\"path\":\"/a\",\"status\":0}",
      "{\"path\":\"/a\",\"status\":01}",
      "{\"path\":\"/a\",\"status\":-}",
      "{\"path\":\"/a\",\"status\":+1}",
      "{\"path\":\"/a\",\"status\":200.0}",
      "{\"path\":\"/a\",\"status\":2e2}",
      "{\"path\":\"/a\",\"status\":1.}",
      "{\"path\":\"/a\",\"status\":.5}",
      "{\"path\":\"/a\",\"status\":1e}",
      "{\"path\":\"/a\",\"status\":1e+}",
      "{\"path\":\"/a\",\"status\":200,\"duration_ms\":1e308}",
      "{\"path\":\"/a\",\"status\":200,\"duration_ms\":1e309}",
      "{\"path\":\"/a\",\"status\":200,\"duration_ms\":-1e309}",
      "{\"path\":\"/a\",\"status\":200,\"duration_ms\":1.7976931348623157e308}",
      "{\"path\":\"/a\",\"status\":200,\"duration_ms\":1.7976931348623159e308}",
      "{\"path\":\"/a\",\"status\":200,\"duration_ms\":17976931348623158e292}",
      "{\"path\":\"/a\",\"status\":200,\"duration_ms\":0.0000000000000000000000000000001e-300}",
      "{\"path\":\"/a\",\"status\":200,\"duration_ms\":1e-400}",
      "{\"path\":\"/a\",\"status\":200,\"duration_ms\":1e99999999999999999999}",
      "{\"path\":\"/a\",\"status\":200,\"duration_ms\":1e-99999999999999999999}",
      "{\"path\":\"/a\",\"status\":200,\"duration_ms\":-0.0}",
      "{\"path\":\"/a\",\"status\":200,\"duration_ms\":-0}",
      "{\"path\":\"/a\",\"status\":200,\"duration_ms\":0.1}",
      "{\"path\":\"/a\",\"status\":200,\"duration_ms\":123456789012345678}",
      "{\"path\":\"/a\",\"status\":200,\"duration_ms\":-9223372036854775808}",
      "{\"path\":\"/a\",\"status\":200,\"duration_ms\":9007199254740993}",
      "{\"path\":\"/a\",\"status\":200,\"duration_ms\":9007199254740993.0}",
      "{\"path\":\"/a\",\"status\":200,\"duration_ms\":900719925474099.3}",
      "{\"path\":\"/a\",\"status\":200,\"duration_ms\":1.23456789012345678901234567890}",
      "{\"path\":\"/a\",\"status\":200,\"duration_ms\":12345e-25}",
      "{\"path\":\"/a\",\"status\":200,\"duration_ms\":12345e22}",
      "{\"path\":\"/a\",\"status\":200,\"duration_ms\":12345E+23}",
      "{\"path\":\"/a\",\"status\":200,\"duration_ms\":\"5\"}",
      "{\"path\":\"/a\",\"status\":200,\"duration_ms\":true}",
      "{\"path\":\"/a\",\"status\":200,\"duration_ms\":null}",
      "{\"path\":\"/a\",\"status\":200,\"x\":tru}",
      "{\"path\":\"/a\",\"status\":200,\"x\":truex}",
      "{\"path\":\"/a\",\"status\":200,\"x\":True}",
      "{\"path\":\"/a\",\"status\":200,\"x\":nul}",
      "{\"path\":\"/a\",\"status\":200,\"x\":[1,2,]}",
      "{\"path\":\"/a\",\"status\":200,\"x\":[,]}",
      "{\"path\":\"/a\",\"status\":200,\"x\":{\"y\":}}",
      "{\"path\":\"/a\",\"status\":200,\"x\":{\"y\"}}",
      "{\"path\":\"/a\",\"status\":200,\"x\":{1:2}}",
      "{\"path\":\"/a\",\"status\":200,\"x\":[}",
      "{\"path\":\"/a\",\"status\":200,\"x\":{]}",
      "{\"path\":\"/a\"\"status\":200}",
      "{\"path\" : \"/a\" ,\r\n\t\"status\" : 200 }\r\n",
      "{\"path\":\"/a\",\"status\":200}\v",
      "{'path':'/a'}",
      "{\"path\":\"/a\",\"status\":200}\0",
      "{\"service\":\"\",\"path\":\"/a\",\"status\":200}",
      "{\"service\":12,\"path\":34,\"method\":-56,\"status\":\"200\"}",
      "{\"path\":\"/a\\\"b\\\\c\",\"status\":\"2\\u00000\"}",
      "{\"path\":\"/a\",\"status\":\"1234567890123456789\"}",
      "{\"path\":\"0123456789012345678901234567890123456789012345678901234567890123456789012345"
      "6789012345678901234567890123456789012345678901234567890123456789\",\"status\":1}",
      "{\"path\":\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
      "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
      "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
      "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
      "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
      "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
      "\\u20ac\\u20ac\\ud83d\\ude00\",\"status\":1}",
  };
  size_t accepted = 0;
  for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
    accepted += same(&cfg, lines[i]);
  assert_true(accepted > 20 && accepted < sizeof(lines) / sizeof(lines[0]));
  /* A NUL inside the line, and lines cut at every byte. */
  static const char nul[] = "{\"path\":\"/a\0b\",\"status\":200}";
  assert_false(same_n(&cfg, nul, sizeof(nul) - 1));
  /* jansson drops one NUL byte it read ahead after a number or keyword (a quirk of its
   * stream_unget); the scanner does the same, and only there. */
  static const char nul_after_number[] = "{\"status\":200\0,\"path\":\"/a\"}";
  assert_true(same_n(&cfg, nul_after_number, sizeof(nul_after_number) - 1));
  static const char two_nuls[] = "{\"status\":200\0\0,\"path\":\"/a\"}";
  assert_false(same_n(&cfg, two_nuls, sizeof(two_nuls) - 1));
  static const char nul_after_keyword[] = "{\"x\":[true\0,null\0],\"path\":\"/a\"}";
  assert_true(same_n(&cfg, nul_after_keyword, sizeof(nul_after_keyword) - 1));
  static const char nul_after_object[] = "{\"x\":{}\0,\"path\":\"/a\"}";
  assert_false(same_n(&cfg, nul_after_object, sizeof(nul_after_object) - 1));
  static const char nul_after_string[] = "{\"x\":\"s\"\0,\"path\":\"/a\"}";
  assert_false(same_n(&cfg, nul_after_string, sizeof(nul_after_string) - 1));
  const char *full = lines[12];
  for (size_t n = 0; n <= strlen(full); n++)
    same_n(&cfg, full, n);
  /* jansson counts every value towards its 2,048 levels, scalars too. */
  char *s = nest(2046, "1");
  assert_true(same(&cfg, s));
  free(s);
  s = nest(2047, "");
  assert_true(same(&cfg, s));
  free(s);
  s = nest(2047, "1");
  assert_false(same(&cfg, s));
  free(s);
  s = nest(2047, "{}");
  assert_false(same(&cfg, s));
  free(s);
  s = nest(100000, "");
  assert_false(same(&cfg, s));
  free(s);
  /* A real number of hostile length: strtod decides on the heap copy. */
  size_t big = 100000;
  s = malloc(big + 64);
  size_t k = (size_t)snprintf(s, 64, "{\"path\":\"/a\",\"status\":1,\"duration_ms\":");
  for (size_t i = 0; i < big; i++)
    s[k++] = i == 1 ? '.' : '9';
  memcpy(s + k, "e0}", 4);
  assert_true(same(&cfg, s));
  memcpy(s + k, "e9}", 4);
  assert_true(same(&cfg, s));
  memcpy(s + k - big + 1, "9999", 4); /* 10^(~100,000) : overflow */
  assert_false(same(&cfg, s));
  free(s);
  (void)state;
}

static void other_field_settings_agree(void **state)
{
  static const char *const lines[] = {
      "{\"\":\"empty key\",\"path\":\"/a\",\"status\":200,\"duration_ms\":3}",
      "{\"\":7,\"path\":\"/a\",\"status\":200}",
      "{\"status\":\"/s\",\"path\":\"/a\",\"st\\u0061tus\":2.5}",
      "{\"log\":\"x\",\"stream\":\"stdout\",\"time\":\"2024\"}",
  };
  struct nn_logmetrics_config cfgs[4];
  for (int i = 0; i < 4; i++)
    cfgs[i] = default_cfg();
  cfgs[1].duration_field = "";       /* json_object_get(o, "") finds the key "" */
  cfgs[1].service_field = "";        /* json_field skips an empty name */
  cfgs[2].endpoint_field = "status"; /* one key, two roles */
  cfgs[2].duration_field = "status";
  cfgs[3].duration_field = NULL;
  cfgs[3].method_field = NULL;
  for (int c = 0; c < 4; c++)
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
      same(&cfgs[c], lines[i]);
  struct nn__logmetrics_fields f;
  blank(&f);
  assert_true(nn__logmetrics_json_scan(&cfgs[1], lines[0], strlen(lines[0]), &f));
  assert_true(isnan(f.seconds)); /* the key "" holds a string */
  blank(&f);
  assert_true(nn__logmetrics_json_scan(&cfgs[2], lines[2], strlen(lines[2]), &f));
  assert_string_equal(f.key[NN__LM_ENDPOINT], "");
  assert_true(f.seconds == 2.5 * 0.001);
  (void)state;
}

/* ---------------------------------------------------------------- generated lines */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

struct out {
  char *b;
  size_t n, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
  if (o->n + n + 1 > o->cap)
    return; /* generated lines are cut at the buffer: also a truncated line */
  memcpy(o->b + o->n, s, n);
  o->n += n;
}

static void puts_(struct out *o, const char *s)
{
  put(o, s, strlen(s));
}

static void ws(struct out *o)
{
  static const char *const w[] = {"", "", "", "", " ", "\n", " \t ", "\r\n"};
  puts_(o, w[rnd() % 8]);
}

static void gen_string(struct out *o)
{
  static const char *const piece[] = {
      "a",
      "/api/v1/items/",
      "GET",
      "200",
      "\\\"",
      "\\\\",
      "\\/",
      "\\n",
      "\\t",
      "\\b",
      "\\f",
      "\\r",
      "\\u0041",
      "\\u00e9",
      "\\u20AC",
      "\\ud83d\\ude00",
      "\\ud800",
      "\\udc00",
      "\\u0000",
      "\\x",
      "\xc3\xa9",
      "\xe2\x82\xac",
      "\xf0\x9f\x98\x80",
      "\xc3",
      "\xed\xa0\x80",
      "\xff",
      "\x01",
      " ",
      "status",
      "path",
      "\\u0070ath",
      "0123456789abcdef0123456789abcdef",
  };
  size_t np = sizeof(piece) / sizeof(piece[0]);
  puts_(o, "\"");
  int n = (int)(rnd() % 8);
  if (rnd() % 16 == 0)
    n = 60; /* past the 127 bytes a field keeps */
  for (int i = 0; i < n; i++) {
    /* Mostly harmless pieces, so that most lines stay valid. */
    size_t r = rnd() % 100;
    puts_(o, piece[r < 70 ? r % 4 : r < 90 ? 4 + r % 12 : rnd() % np]);
  }
  puts_(o, "\"");
}

static void gen_number(struct out *o)
{
  static const char *const num[] = {
      "0",
      "-0",
      "200",
      "404",
      "12.345",
      "0.5",
      "-1",
      "1e3",
      "2E-2",
      "1.5e+2",
      "-0.0",
      "9223372036854775807",
      "9223372036854775808",
      "-9223372036854775808",
      "-9223372036854775809",
      "1e308",
      "1e309",
      "1.7976931348623157e308",
      "4.9e-324",
      "1e-400",
      "01",
      "1.",
      ".5",
      "1e",
      "-",
      "123456789012345678901",
      "0.1",
      "3.14159265358979323846",
      "9007199254740993",
      "250.000",
      "1e22",
      "1e23",
  };
  size_t nn = sizeof(num) / sizeof(num[0]);
  size_t r = rnd() % 100;
  if (r < 60) {
    char b[40];
    int n = r < 30 ? snprintf(b, sizeof(b), "%u", (unsigned)(rnd() % 250000))
                   : snprintf(b, sizeof(b), "%.3f", (double)(rnd() % 250000) / 1000.0);
    put(o, b, (size_t)n);
  } else {
    puts_(o, num[rnd() % nn]);
  }
}

static void gen_value(struct out *o, int depth);

static void gen_key(struct out *o)
{
  static const char *const keys[] = {
      "\"path\"",        "\"status\"",       "\"method\"",     "\"service\"",
      "\"duration_ms\"", "\"ts\"",           "\"pa\\u0074h\"", "\"\"",
      "\"x\"",           "\"stat\\u0075s\"", "\"level\"",      "\"user_agent\"",
  };
  if (rnd() % 10 == 0)
    gen_string(o);
  else
    puts_(o, keys[rnd() % (sizeof(keys) / sizeof(keys[0]))]);
}

static void gen_value(struct out *o, int depth)
{
  size_t r = rnd() % 100;
  if (depth < 4 && r < 8) {
    puts_(o, "{");
    int n = (int)(rnd() % 4);
    for (int i = 0; i < n; i++) {
      if (i)
        puts_(o, ",");
      ws(o);
      gen_key(o);
      ws(o);
      puts_(o, ":");
      ws(o);
      gen_value(o, depth + 1);
      ws(o);
    }
    puts_(o, "}");
  } else if (depth < 4 && r < 14) {
    puts_(o, "[");
    int n = (int)(rnd() % 4);
    for (int i = 0; i < n; i++) {
      if (i)
        puts_(o, ",");
      ws(o);
      gen_value(o, depth + 1);
    }
    puts_(o, "]");
  } else if (r < 50) {
    gen_string(o);
  } else if (r < 90) {
    gen_number(o);
  } else {
    static const char *const kw[] = {"true", "false", "null", "tru", "nulll", "True"};
    puts_(o, kw[rnd() % 6]);
  }
}

static size_t gen_line(char *buf, size_t cap)
{
  struct out o = {buf, 0, cap};
  puts_(&o, "{");
  int n = 1 + (int)(rnd() % 12);
  for (int i = 0; i < n; i++) {
    if (i)
      puts_(&o, ",");
    ws(&o);
    gen_key(&o);
    puts_(&o, ":");
    ws(&o);
    gen_value(&o, 1);
  }
  puts_(&o, "}");
  ws(&o);
  /* Damage some: cut, flip a byte, insert a byte. */
  size_t r = rnd() % 100;
  if (o.n && r < 5)
    o.n = (size_t)(rnd() % o.n);
  else if (o.n && r < 10)
    buf[rnd() % o.n] = (char)rnd();
  else if (o.n && r < 15 && o.n + 1 < cap) {
    size_t at = rnd() % o.n;
    memmove(buf + at + 1, buf + at, o.n - at);
    buf[at] = "{}[]\",:\\ 0-e.\x80"[rnd() % 15];
    o.n++;
  }
  return o.n;
}

static void generated_lines_agree(void **state)
{
  struct nn_logmetrics_config cfgs[2] = {default_cfg(), default_cfg()};
  cfgs[1].endpoint_field = "ts";
  cfgs[1].status_field = "level";
  cfgs[1].duration_field = "x";
  static char buf[4096];
  /* NN_LM_JSON_LINES=N and NN_LM_JSON_SEED=S for a longer soak than the suite's. */
  size_t accepted = 0, total = 60000;
  if (getenv("NN_LM_JSON_LINES"))
    total = strtoul(getenv("NN_LM_JSON_LINES"), NULL, 10);
  if (getenv("NN_LM_JSON_SEED"))
    rng = strtoull(getenv("NN_LM_JSON_SEED"), NULL, 10) | 1;
  for (size_t i = 0; i < total; i++) {
    size_t n = gen_line(buf, sizeof(buf));
    accepted += same_n(&cfgs[i & 1], buf, n);
  }
  /* Both kinds are exercised. */
  assert_true(accepted > total / 10);
  assert_true(accepted < total - total / 10);
  (void)state;
}

static void sums_format_as_nn_metrics_format_value(void **state)
{
  /* Sums of millisecond durations (the case it speeds up), random doubles of every
   * magnitude, and values just off short decimals. */
  double sum = 0;
  for (int i = 0; i < 300000; i++) {
    double v;
    uint64_t bits = rnd();
    switch (i % 4) {
    case 0: v = sum += (double)(rnd() % 250000) / 1000.0 * 0.001; break;
    case 1: memcpy(&v, &bits, sizeof(v)); break;
    case 2: v = nextafter((double)(rnd() % 100000) / 1000.0, i & 8 ? INFINITY : 0); break;
    default: v = (double)(rnd() % 1000000) / pow(10, (double)(rnd() % 30)); break;
    }
    char a[64], b[64];
    nn__logmetrics_format_sum(v, a, sizeof(a));
    nn_metrics_format_value(v, b, sizeof(b));
    if (strcmp(a, b) != 0)
      fail_msg("%.17g: %s, want %s", v, a, b);
  }
  (void)state;
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(fields_of_an_access_log_line),
      cmocka_unit_test(duplicate_keys_count_by_the_last),
      cmocka_unit_test(hostile_lines_agree),
      cmocka_unit_test(other_field_settings_agree),
      cmocka_unit_test(generated_lines_agree),
      cmocka_unit_test(sums_format_as_nn_metrics_format_value),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
