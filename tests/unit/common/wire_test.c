/* SPDX-License-Identifier: Apache-2.0 */
/* Wire codecs: a real Prometheus 2.42 remote-write capture (tests/fixtures/remote_write),
 * malformed protobuf with the messages it must produce, pool caps, Loki push in protobuf
 * and JSON form, and encode+compress round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/compress.h"
#include "common/error.h"
#include "common/labels.h"
#include "common/pool.h"
#include "common/wire.h"

#define FIXTURES NN_SOURCE_DIR "/tests/fixtures/remote_write/"
#define MIB      ((size_t)1 << 20)
#define TS_2020  1577836800000LL /* 2020-01-01 in ms */
#define TS_2100  4102444800000LL

static char *read_file(const char *name, size_t *len)
{
  char path[512];
  snprintf(path, sizeof(path), FIXTURES "%s", name);
  FILE *f = fopen(path, "rb");
  if (!f)
    fail_msg("cannot open %s (run tests/fixtures/capture-prometheus-remote-write.sh)", path);
  fseek(f, 0, SEEK_END);
  long sz = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *p = malloc((size_t)sz + 1);
  assert_non_null(p);
  assert_int_equal(fread(p, 1, (size_t)sz, f), (size_t)sz);
  p[sz] = '\0';
  fclose(f);
  *len = (size_t)sz;
  return p;
}

static const char *label_value(const Prometheus__TimeSeries *ts, const char *name)
{
  for (size_t i = 0; i < ts->n_labels; i++)
    if (strcmp(ts->labels[i]->name, name) == 0)
      return ts->labels[i]->value;
  return NULL;
}

/* Decompresses a captured body (snappy, as sent) into raw. */
static void load_capture(const char *name, struct nn_buf *raw)
{
  size_t zn;
  char *z = read_file(name, &zn);
  nn_buf_init(raw, 16 * MIB);
  assert_int_equal(nn_decompress(NN_CODEC_SNAPPY, z, zn, 16 * MIB, raw), 0);
  free(z);
}

static void captured_headers_name_snappy_and_protobuf(void **state)
{
  size_t n;
  char *h = read_file("prometheus-2.42.headers", &n);
  const char *ce = strstr(h, "Content-Encoding:");
  assert_non_null(ce);
  char val[32] = {0};
  assert_int_equal(sscanf(ce, "Content-Encoding: %31[^\n]", val), 1);
  enum nn_codec c;
  assert_int_equal(nn_codec_parse(val, &c), 0);
  assert_int_equal(c, NN_CODEC_SNAPPY);
  assert_non_null(strstr(h, "Content-Type: application/x-protobuf"));
  assert_non_null(strstr(h, "X-Prometheus-Remote-Write-Version: 0.1.0"));
  free(h);
}

static void decodes_real_prometheus_capture(void **state)
{
  struct nn_buf raw;
  load_capture("prometheus-2.42.bin", &raw);
  struct nn_pool pool;
  nn_pool_init(&pool, 8 * raw.len + MIB);
  Prometheus__WriteRequest *req = NULL;
  char err[256] = "";
  int rc = nn_wire_rw_decode(raw.data, raw.len, &pool, &req, err, sizeof(err));
  if (rc)
    fail_msg("decode: %s", err);
  assert_true(req->n_timeseries > 50);
  bool saw_up = false, saw_build_info = false;
  for (size_t i = 0; i < req->n_timeseries; i++) {
    const Prometheus__TimeSeries *ts = req->timeseries[i];
    assert_true(ts->n_labels >= 3);
    for (size_t l = 1; l < ts->n_labels; l++)
      assert_true(strcmp(ts->labels[l - 1]->name, ts->labels[l]->name) < 0);
    assert_string_equal(ts->labels[0]->name, "__name__");
    assert_string_equal(label_value(ts, "job"), "prometheus");
    assert_non_null(strstr(label_value(ts, "instance"), "127.0.0.1:"));
    assert_true(ts->n_samples >= 1);
    for (size_t s = 0; s < ts->n_samples; s++) {
      assert_true(ts->samples[s]->timestamp > TS_2020);
      assert_true(ts->samples[s]->timestamp < TS_2100);
    }
    const char *name = label_value(ts, "__name__");
    if (strcmp(name, "up") == 0) {
      saw_up = true;
      assert_true(ts->samples[0]->value == 1.0);
    }
    if (strcmp(name, "prometheus_build_info") == 0) {
      saw_build_info = true;
      assert_non_null(strstr(label_value(ts, "version"), "2.42"));
    }
  }
  assert_true(saw_up);
  assert_true(saw_build_info);

  /* Re-encoding gives Go's exact bytes (same field order, no unknown fields), and decodes
   * to the same number of series. */
  struct nn_buf re;
  nn_buf_init(&re, 16 * MIB);
  assert_int_equal(nn_wire_rw_encode(req, &re), 0);
  assert_int_equal(re.len, raw.len);
  assert_memory_equal(re.data, raw.data, raw.len);
  Prometheus__WriteRequest *again = NULL;
  assert_int_equal(nn_wire_rw_decode(re.data, re.len, &pool, &again, err, sizeof(err)), 0);
  assert_int_equal(again->n_timeseries, req->n_timeseries);
  nn_buf_fini(&re);
  nn_buf_fini(&raw);
  nn_pool_clear(&pool);
}

static void decodes_real_metadata_only_request(void **state)
{
  struct nn_buf raw;
  load_capture("prometheus-2.42-metadata.bin", &raw);
  struct nn_pool pool;
  nn_pool_init(&pool, 8 * raw.len + MIB);
  Prometheus__WriteRequest *req = NULL;
  char err[256] = "";
  assert_int_equal(nn_wire_rw_decode(raw.data, raw.len, &pool, &req, err, sizeof(err)), 0);
  assert_int_equal(req->n_timeseries, 0);
  assert_true(req->n_metadata > 20);
  bool found = false;
  for (size_t i = 0; i < req->n_metadata; i++) {
    const Prometheus__MetricMetadata *m = req->metadata[i];
    assert_true(m->metric_family_name[0] != '\0');
    if (strcmp(m->metric_family_name, "prometheus_build_info") == 0) {
      found = true;
      assert_int_equal(m->type, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE);
      assert_true(strlen(m->help) > 10);
    }
  }
  assert_true(found);
  nn_buf_fini(&raw);
  nn_pool_clear(&pool);
}

/* One case of malformed protobuf: the decoder must fail with rc and a message naming it. */
struct bad_case {
  const char *what;
  const char *bytes;
  size_t n;
  const char *needle;
};

#define BAD(w, b, needle)                                                                          \
  {                                                                                                \
    w, b, sizeof(b) - 1, needle                                                                    \
  }

static void malformed_protobuf_gives_clear_errors(void **state)
{
  static const struct bad_case cases[] = {
      BAD("length past end", "\x0a\x05\x0a\x03",
          "prometheus.WriteRequest.timeseries (field 1) "
          "at byte 0: length 5 exceeds the 2 bytes left"),
      BAD("huge length", "\x0a\xff\xff\xff\xff\x0f", "length 4294967295 exceeds the 0 bytes"),
      BAD("huge 64-bit length", "\x0a\xff\xff\xff\xff\xff\xff\xff\xff\x7f", "exceeds"),
      BAD("wrong wire type", "\x08\x01", "timeseries (field 1) at byte 0: wire type 0, expected 2"),
      BAD("nested wrong wire type", "\x0a\x04\x12\x02\x08\x01",
          "prometheus.Sample.value (field 1) at byte 4: wire type 0, expected 1"),
      BAD("truncated double", "\x0a\x05\x12\x03\x09\x00\x00",
          "prometheus.Sample.value (field 1) at byte 4: truncated 8-byte value"),
      BAD("truncated key", "\x80", "truncated field key at byte 0"),
      BAD("truncated length", "\x0a", "truncated length"),
      BAD("truncated varint", "\x0a\x03\x12\x01\x10", "truncated"),
      BAD("field zero", "\x00\x01", "invalid field number 0"),
      /* protobuf-c alone accepts this over-long key and re-encodes it as garbage. */
      BAD("over-long key for field zero", "\x81\x00\x00\x00\x00\x00\x00\x00\x00\x00",
          "invalid field number 0 at byte 0"),
      BAD("field number too large", "\xfa\xff\xff\xff\x7f\x00", "invalid field number"),
      BAD("group wire type", "\x2b\x2c", "unsupported wire type 3"),
      BAD("wire type 7", "\x37", "unsupported wire type 7"),
      BAD("label string as varint", "\x0a\x04\x0a\x02\x08\x05",
          "prometheus.Label.name (field 1) at byte 4: wire type 0"),
  };
  struct nn_pool pool;
  nn_pool_init(&pool, MIB);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    Prometheus__WriteRequest *req = NULL;
    char err[256] = "";
    int rc = nn_wire_rw_decode(cases[i].bytes, cases[i].n, &pool, &req, err, sizeof(err));
    if (rc != NN_ECORRUPT || !strstr(err, cases[i].needle))
      fail_msg("%s: rc %d, err \"%s\", wanted \"%s\"", cases[i].what, rc, err, cases[i].needle);
    assert_null(req);
  }
  nn_pool_clear(&pool);
}

static void every_truncation_of_real_capture_fails_cleanly(void **state)
{
  struct nn_buf raw;
  load_capture("prometheus-2.42.bin", &raw);
  struct nn_pool pool;
  nn_pool_init(&pool, 8 * raw.len + MIB);
  size_t ok = 0, bad = 0;
  for (size_t cut = 0; cut < raw.len; cut += 7) {
    Prometheus__WriteRequest *req = NULL;
    char err[256] = "";
    int rc = nn_wire_rw_decode(raw.data, cut, &pool, &req, err, sizeof(err));
    if (rc == 0) {
      ok++; /* a cut on a top-level field boundary is a shorter valid request */
    } else {
      assert_int_equal(rc, NN_ECORRUPT);
      assert_non_null(strstr(err, "prometheus.WriteRequest"));
      bad++;
    }
    nn_pool_clear(&pool);
  }
  assert_true(bad > ok);
  nn_buf_fini(&raw);
}

static void unknown_fields_are_skipped(void **state)
{
  /* TimeSeries{labels{a=b}, field 4 (a native histogram) as opaque bytes, sample}. */
  const char msg[] = "\x0a\x15"
                     "\x0a\x06\x0a\x01"
                     "a\x12\x01"
                     "b"
                     "\x22\x03xyz"
                     "\x12\x07\x10\xe8\x07\x09\x00\x00";
  struct nn_pool pool;
  nn_pool_init(&pool, MIB);
  Prometheus__WriteRequest *req = NULL;
  char err[256] = "";
  /* The sample above is cut short on purpose; first check the error names it... */
  assert_int_equal(nn_wire_rw_decode(msg, sizeof(msg) - 1, &pool, &req, err, sizeof(err)),
                   NN_ECORRUPT);
  assert_non_null(strstr(err, "prometheus.TimeSeries.samples (field 2)"));
  /* ...then a well-formed one with the unknown field decodes. */
  const char ok[] = "\x0a\x14"
                    "\x0a\x06\x0a\x01"
                    "a\x12\x01"
                    "b"
                    "\x22\x03xyz"
                    "\x12\x05\x10\xe8\x07\x18\x05";
  assert_int_equal(nn_wire_rw_decode(ok, sizeof(ok) - 1, &pool, &req, err, sizeof(err)), 0);
  assert_int_equal(req->n_timeseries, 1);
  assert_string_equal(req->timeseries[0]->labels[0]->value, "b");
  assert_int_equal(req->timeseries[0]->samples[0]->timestamp, 1000);
  nn_pool_clear(&pool);
}

static void pool_cap_stops_hostile_fanout(void **state)
{
  /* 100k empty TimeSeries: 200 KB of input, megabytes of structs. */
  struct nn_buf b;
  nn_buf_init(&b, 4 * MIB);
  for (int i = 0; i < 100000; i++)
    assert_int_equal(nn_buf_append(&b, "\x0a\x00", 2), 0);
  struct nn_pool pool;
  nn_pool_init(&pool, MIB);
  Prometheus__WriteRequest *req = NULL;
  char err[256] = "";
  assert_int_equal(nn_wire_rw_decode(b.data, b.len, &pool, &req, err, sizeof(err)), NN_ETOOBIG);
  assert_non_null(strstr(err, "1048576-byte limit"));
  assert_true(pool.used <= pool.max);
  nn_pool_clear(&pool);
  nn_pool_init(&pool, 64 * MIB);
  assert_int_equal(nn_wire_rw_decode(b.data, b.len, &pool, &req, err, sizeof(err)), 0);
  assert_int_equal(req->n_timeseries, 100000);
  nn_pool_clear(&pool);
  nn_buf_fini(&b);
}

static Logproto__PushRequest *sample_push(struct nn_pool *pool)
{
  Logproto__PushRequest *req = nn_pool_calloc(pool, sizeof(*req));
  logproto__push_request__init(req);
  req->n_streams = 1;
  req->streams = nn_pool_calloc(pool, sizeof(*req->streams));
  Logproto__StreamAdapter *s = nn_pool_calloc(pool, sizeof(*s));
  logproto__stream_adapter__init(s);
  s->labels = "{app=\"api\", job=\"x\"}";
  s->n_entries = 2;
  s->entries = nn_pool_calloc(pool, 2 * sizeof(*s->entries));
  for (int i = 0; i < 2; i++) {
    Logproto__EntryAdapter *e = nn_pool_calloc(pool, sizeof(*e));
    logproto__entry_adapter__init(e);
    Logproto__Timestamp *t = nn_pool_calloc(pool, sizeof(*t));
    logproto__timestamp__init(t);
    t->seconds = 1700000000 + i;
    t->nanos = 5;
    e->timestamp = t;
    e->line = i ? "second line" : "first line";
    s->entries[i] = e;
  }
  Logproto__LabelPairAdapter *md = nn_pool_calloc(pool, sizeof(*md));
  logproto__label_pair_adapter__init(md);
  md->name = "trace_id";
  md->value = "abc";
  s->entries[1]->n_structuredmetadata = 1;
  s->entries[1]->structuredmetadata = nn_pool_calloc(pool, sizeof(md));
  s->entries[1]->structuredmetadata[0] = md;
  req->streams[0] = s;
  return req;
}

static void push_protobuf_round_trips_through_every_codec(void **state)
{
  struct nn_pool pool;
  nn_pool_init(&pool, MIB);
  Logproto__PushRequest *req = sample_push(&pool);
  for (enum nn_codec c = NN_CODEC_NONE; c <= NN_CODEC_LZ4; c++) {
    struct nn_buf body;
    nn_buf_init(&body, MIB);
    assert_int_equal(nn_wire_pack(&req->base, c, &body), 0);
    Logproto__PushRequest *got = NULL;
    char err[256] = "";
    int rc = nn_wire_push_unpack(c, body.data, body.len, MIB, &pool, &got, err, sizeof(err));
    if (rc)
      fail_msg("%s: %s", nn_codec_name(c), err);
    assert_int_equal(got->n_streams, 1);
    assert_string_equal(got->streams[0]->labels, "{app=\"api\", job=\"x\"}");
    assert_int_equal(got->streams[0]->n_entries, 2);
    assert_string_equal(got->streams[0]->entries[1]->line, "second line");
    assert_int_equal(got->streams[0]->entries[1]->timestamp->seconds, 1700000001);
    assert_int_equal(got->streams[0]->entries[1]->timestamp->nanos, 5);
    assert_string_equal(got->streams[0]->entries[1]->structuredmetadata[0]->value, "abc");
    nn_buf_fini(&body);
  }
  /* The plain encoder gives the same bytes as pack with no codec. */
  struct nn_buf a, b;
  nn_buf_init(&a, MIB);
  nn_buf_init(&b, MIB);
  assert_int_equal(nn_wire_push_encode(req, &a), 0);
  assert_int_equal(nn_wire_pack(&req->base, NN_CODEC_NONE, &b), 0);
  assert_int_equal(a.len, b.len);
  assert_memory_equal(a.data, b.data, a.len);
  Logproto__PushRequest *got = NULL;
  char err[256];
  assert_int_equal(nn_wire_push_decode(a.data, a.len, &pool, &got, err, sizeof(err)), 0);
  assert_int_equal(got->streams[0]->n_entries, 2);
  nn_buf_fini(&a);
  nn_buf_fini(&b);
  nn_pool_clear(&pool);
}

static void unpack_reports_codec_errors_and_caps(void **state)
{
  struct nn_pool pool;
  nn_pool_init(&pool, MIB);
  Prometheus__WriteRequest *req = NULL;
  char err[256] = "";
  assert_int_equal(
      nn_wire_rw_unpack(NN_CODEC_SNAPPY, "\xff\xff\xff", 3, MIB, &pool, &req, err, sizeof(err)),
      NN_ECORRUPT);
  assert_non_null(strstr(err, "snappy body"));
  size_t zn;
  char *z = read_file("prometheus-2.42.bin", &zn);
  assert_int_equal(nn_wire_rw_unpack(NN_CODEC_SNAPPY, z, zn, 1000, &pool, &req, err, sizeof(err)),
                   NN_ETOOBIG);
  assert_non_null(strstr(err, "1000-byte limit"));
  assert_int_equal(nn_wire_rw_unpack(NN_CODEC_NONE, z, zn, 10, &pool, &req, err, sizeof(err)),
                   NN_ETOOBIG);
  assert_int_equal(nn_wire_rw_unpack(NN_CODEC_SNAPPY, z, zn, MIB, &pool, &req, err, sizeof(err)),
                   0);
  assert_true(req->n_timeseries > 50);
  free(z);
  nn_pool_clear(&pool);
}

static void json_push_decodes_to_the_protobuf_struct(void **state)
{
  const char *body = "{\"streams\":[{\"stream\":{\"job\":\"x\",\"app\":\"api\",\"empty\":\"\"},"
                     "\"values\":[[\"1700000000000000005\",\"first line\"],"
                     "[\"1700000001000000005\",\"second line\",{\"trace_id\":\"abc\"}]]}]}";
  struct nn_pool pool;
  nn_pool_init(&pool, MIB);
  Logproto__PushRequest *got = NULL;
  char err[256] = "";
  int rc = nn_wire_push_decode_json(body, strlen(body), &pool, &got, err, sizeof(err));
  if (rc)
    fail_msg("%s", err);
  /* Same bytes on the wire as the equivalent protobuf request built by hand. */
  struct nn_buf a, b;
  nn_buf_init(&a, MIB);
  nn_buf_init(&b, MIB);
  assert_int_equal(nn_wire_push_encode(got, &a), 0);
  assert_int_equal(nn_wire_push_encode(sample_push(&pool), &b), 0);
  assert_int_equal(a.len, b.len);
  assert_memory_equal(a.data, b.data, a.len);
  /* The label text parses back with the common parser. */
  struct nn_label *lv;
  size_t ln;
  assert_int_equal(nn_labels_parse(got->streams[0]->labels, strlen(got->streams[0]->labels), &pool,
                                   &lv, &ln, err, sizeof(err)),
                   0);
  assert_int_equal(ln, 2);
  nn_buf_fini(&a);
  nn_buf_fini(&b);
  nn_pool_clear(&pool);
}

static void json_push_handles_escapes_negative_and_empty(void **state)
{
  const char *body = "{\"streams\":[{\"stream\":{\"a\":\"q\\\"\\n\"},\"values\":[[\"-1\",\"\"]]},"
                     "{\"stream\":{},\"values\":[]}]}";
  struct nn_pool pool;
  nn_pool_init(&pool, MIB);
  Logproto__PushRequest *got = NULL;
  char err[256] = "";
  assert_int_equal(nn_wire_push_decode_json(body, strlen(body), &pool, &got, err, sizeof(err)), 0);
  assert_int_equal(got->n_streams, 2);
  assert_string_equal(got->streams[0]->labels, "{a=\"q\\\"\\n\"}");
  assert_int_equal(got->streams[0]->entries[0]->timestamp->seconds, -1);
  assert_int_equal(got->streams[0]->entries[0]->timestamp->nanos, 999999999);
  assert_string_equal(got->streams[1]->labels, "{}");
  assert_int_equal(got->streams[1]->n_entries, 0);
  const char *empty = "{\"streams\":[]}";
  assert_int_equal(nn_wire_push_decode_json(empty, strlen(empty), &pool, &got, err, sizeof(err)),
                   0);
  assert_int_equal(got->n_streams, 0);
  nn_pool_clear(&pool);
}

static void json_push_rejects_bad_shapes_with_clear_messages(void **state)
{
  static const struct {
    const char *body;
    const char *needle;
  } cases[] = {
      {"{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[1700000000000000000,\"l\"]]}]}",
       "streams[0].values[0][0]: timestamp must be a string of nanoseconds since the epoch, "
       "got a number"},
      {"{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"17e9\",\"l\"]]}]}",
       "timestamp \"17e9\" is not an integer"},
      {"{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"99999999999999999999\",\"l\"]]}]}",
       "is not an integer"},
      {"{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"1\"]]}]}",
       "streams[0].values[0]: must be an array"},
      {"{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"1\",\"l\",{},4]]}]}",
       "of the wrong length"},
      {"{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"1\",2]]}]}",
       "streams[0].values[0][1]: log line must be a string, got a number"},
      {"{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"1\",\"l\",[]]]}]}",
       "streams[0].values[0][2]: structured metadata must be an object, got an array"},
      {"{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":[[\"1\",\"l\",{\"k\":1}]]}]}",
       "streams[0].values[0][2].k: structured metadata value must be a string"},
      {"{\"streams\":[{\"stream\":{\"a\":1},\"values\":[]}]}",
       "streams[0].stream.a: label value must be a string, got a number"},
      {"{\"streams\":[{\"values\":[]}]}", "streams[0]: missing \"stream\""},
      {"{\"streams\":[{\"stream\":{}}]}", "streams[0].values: must be an array"},
      {"{\"streams\":[{\"stream\":[],\"values\":[]}]}", "streams[0].stream: must be an object"},
      {"{\"streams\":[7]}", "streams[0]: must be an object, got a number"},
      {"{\"stream\":[]}", "\"streams\" array"},
      {"[]", "\"streams\" array"},
      {"{\"streams\":[", "invalid JSON at line 1"},
      {"", "invalid JSON"},
  };
  struct nn_pool pool;
  nn_pool_init(&pool, MIB);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    Logproto__PushRequest *got = NULL;
    char err[256] = "";
    int rc = nn_wire_push_decode_json(cases[i].body, strlen(cases[i].body), &pool, &got, err,
                                      sizeof(err));
    if (rc != NN_EINVAL || !strstr(err, cases[i].needle))
      fail_msg("case %zu: rc %d err \"%s\", wanted \"%s\"", i, rc, err, cases[i].needle);
    assert_null(got);
  }
  nn_pool_clear(&pool);
}

static void json_push_respects_pool_cap(void **state)
{
  struct nn_buf b;
  nn_buf_init(&b, 4 * MIB);
  assert_int_equal(nn_buf_appends(&b, "{\"streams\":[{\"stream\":{\"a\":\"b\"},\"values\":["), 0);
  for (int i = 0; i < 20000; i++)
    assert_int_equal(nn_buf_printf(&b, "%s[\"%d\",\"line %d\"]", i ? "," : "", i, i), 0);
  assert_int_equal(nn_buf_appends(&b, "]}]}"), 0);
  struct nn_pool pool;
  nn_pool_init(&pool, 256 * 1024);
  Logproto__PushRequest *got = NULL;
  char err[256] = "";
  assert_int_equal(nn_wire_push_decode_json(b.data, b.len, &pool, &got, err, sizeof(err)),
                   NN_ETOOBIG);
  assert_non_null(strstr(err, "262144-byte decode limit"));
  nn_pool_clear(&pool);
  nn_pool_init(&pool, 64 * MIB);
  assert_int_equal(nn_wire_push_decode_json(b.data, b.len, &pool, &got, err, sizeof(err)), 0);
  assert_int_equal(got->streams[0]->n_entries, 20000);
  assert_string_equal(got->streams[0]->entries[19999]->line, "line 19999");
  assert_int_equal(got->streams[0]->entries[19999]->timestamp->nanos, 19999);
  nn_pool_clear(&pool);
  nn_buf_fini(&b);
}

static void rw_pack_round_trips_stale_markers_and_negative_timestamps(void **state)
{
  union {
    uint64_t u;
    double d;
  } stale = {.u = 0x7ff0000000000002ULL};
  Prometheus__Label l = PROMETHEUS__LABEL__INIT;
  l.name = "__name__";
  l.value = "m";
  Prometheus__Label *lp = &l;
  Prometheus__Sample s[2] = {PROMETHEUS__SAMPLE__INIT, PROMETHEUS__SAMPLE__INIT};
  s[0].value = stale.d;
  s[0].timestamp = -5;
  s[1].value = -0.0;
  s[1].timestamp = INT64_MAX;
  Prometheus__Sample *sp[2] = {&s[0], &s[1]};
  Prometheus__TimeSeries ts = PROMETHEUS__TIME_SERIES__INIT;
  ts.n_labels = 1;
  ts.labels = &lp;
  ts.n_samples = 2;
  ts.samples = sp;
  Prometheus__TimeSeries *tsp = &ts;
  Prometheus__WriteRequest req = PROMETHEUS__WRITE_REQUEST__INIT;
  req.n_timeseries = 1;
  req.timeseries = &tsp;
  struct nn_buf body;
  nn_buf_init(&body, MIB);
  assert_int_equal(nn_wire_pack(&req.base, NN_CODEC_ZSTD, &body), 0);
  struct nn_pool pool;
  nn_pool_init(&pool, MIB);
  Prometheus__WriteRequest *got = NULL;
  char err[128];
  assert_int_equal(
      nn_wire_rw_unpack(NN_CODEC_ZSTD, body.data, body.len, MIB, &pool, &got, err, sizeof(err)), 0);
  union {
    uint64_t u;
    double d;
  } back = {.d = got->timeseries[0]->samples[0]->value};
  assert_true(back.u == stale.u);
  assert_int_equal(got->timeseries[0]->samples[0]->timestamp, -5);
  /* proto3 omits zero values and -0.0 == 0, so -0.0 arrives as +0.0, exactly as Go sends it. */
  assert_true(got->timeseries[0]->samples[1]->value == 0.0);
  assert_false(signbit(got->timeseries[0]->samples[1]->value));
  assert_int_equal(got->timeseries[0]->samples[1]->timestamp, INT64_MAX);
  /* out->max too small for the encoding. */
  struct nn_buf tiny;
  nn_buf_init(&tiny, 4);
  assert_int_equal(nn_wire_rw_encode(&req, &tiny), NN_ETOOBIG);
  assert_int_equal(nn_wire_pack(&req.base, NN_CODEC_SNAPPY, &tiny), NN_ETOOBIG);
  nn_buf_fini(&tiny);
  nn_buf_fini(&body);
  nn_pool_clear(&pool);
}

/* ---- nn_wire_rw_parse against protobuf-c ---- */

/* Decodes buf with both decoders (each on its own copy: the in-place one writes NULs)
 * and checks they agree: both fail with the same code, or both give the same series,
 * labels and samples (value bits included). Returns the shared rc. */
static int cross_check(const void *buf, size_t n, const char *what)
{
  struct nn_pool pa, pb;
  nn_pool_init(&pa, 256 * MIB);
  nn_pool_init(&pb, 256 * MIB);
  char *ca = malloc(n + 1), *cb = malloc(n + 1);
  assert_non_null(ca);
  assert_non_null(cb);
  memcpy(ca, buf, n);
  memcpy(cb, buf, n);
  Prometheus__WriteRequest *ref = NULL;
  struct nn_wire_rw_request got;
  char ea[256] = "", eb[256] = "";
  int ra = nn_wire_rw_decode(ca, n, &pa, &ref, ea, sizeof(ea));
  int rb = nn_wire_rw_parse(cb, n, &pb, &got, eb, sizeof(eb));
  if (ra != rb)
    fail_msg("%s: protobuf-c rc %d (%s), in-place rc %d (%s)", what, ra, ea, rb, eb);
  if (ra == 0) {
    assert_int_equal(got.n_series, ref->n_timeseries);
    assert_int_equal(got.n_metadata, ref->n_metadata);
    for (size_t i = 0; i < got.n_metadata; i++) {
      const Prometheus__MetricMetadata *rm = ref->metadata[i];
      assert_int_equal(got.metadata[i].type, (int32_t)rm->type);
      assert_string_equal(got.metadata[i].metric_family_name, rm->metric_family_name);
      assert_string_equal(got.metadata[i].help, rm->help);
      assert_string_equal(got.metadata[i].unit, rm->unit);
    }
    for (size_t i = 0; i < got.n_series; i++) {
      const Prometheus__TimeSeries *rt = ref->timeseries[i];
      const struct nn_wire_rw_series *gt = &got.series[i];
      assert_int_equal(gt->n_labels, rt->n_labels);
      assert_int_equal(gt->n_samples, rt->n_samples);
      for (size_t l = 0; l < gt->n_labels; l++) {
        assert_string_equal(gt->labels[l].name, rt->labels[l]->name);
        assert_string_equal(gt->labels[l].value, rt->labels[l]->value);
        assert_true(gt->lens[2 * l] >= strlen(gt->labels[l].name));
        assert_true(gt->lens[2 * l + 1] >= strlen(gt->labels[l].value));
      }
      for (size_t k = 0; k < gt->n_samples; k++) {
        assert_int_equal(gt->samples[k].t, rt->samples[k]->timestamp);
        assert_memory_equal(&gt->samples[k].v, &rt->samples[k]->value, sizeof(double));
      }
    }
  } else if (strcmp(ea, eb) != 0 && ra == NN_ECORRUPT && !strstr(ea, "malformed protobuf") &&
             !strstr(eb, "longer than 5 bytes")) {
    /* check_wire goes on past what only protobuf-c refuses (over-long keys and length
     * prefixes), so it may name a later fault; otherwise the messages are the same. */
    fail_msg("%s: messages differ: \"%s\" vs \"%s\"", what, ea, eb);
  }
  free(ca);
  free(cb);
  nn_pool_clear(&pa);
  nn_pool_clear(&pb);
  return ra;
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
  rnd_state ^= rnd_state << 13;
  rnd_state ^= rnd_state >> 7;
  rnd_state ^= rnd_state << 17;
  return rnd_state;
}

/* A varint, sometimes padded with continuation bytes up to max bytes (still valid). */
static void put_var(struct nn_buf *b, uint64_t v, unsigned max)
{
  uint8_t tmp[10];
  unsigned k = 0;
  do {
    tmp[k++] = (uint8_t)((v & 0x7f) | 0x80);
    v >>= 7;
  } while (v);
  unsigned pad = rnd() % 8 == 0 ? (unsigned)(rnd() % (max - k + 1)) : 0;
  while (pad-- && k < max)
    tmp[k++] = 0x80;
  tmp[k - 1] &= 0x7f;
  assert_int_equal(nn_buf_append(b, tmp, k), 0);
}

static void put_key(struct nn_buf *b, unsigned field, unsigned wt)
{
  put_var(b, (uint64_t)field << 3 | wt, 5);
}

static void put_bytes(struct nn_buf *b, unsigned field, const void *p, size_t n)
{
  put_key(b, field, 2);
  put_var(b, n, 5);
  assert_int_equal(nn_buf_append(b, p, n), 0);
}

static void put_msg(struct nn_buf *b, unsigned field, const struct nn_buf *m)
{
  put_bytes(b, field, m->data ? m->data : "", m->len);
}

static void put_fixed64(struct nn_buf *b, unsigned field, uint64_t x)
{
  put_key(b, field, 1);
  uint8_t le[8];
  for (int i = 0; i < 8; i++)
    le[i] = (uint8_t)(x >> (8 * i));
  assert_int_equal(nn_buf_append(b, le, 8), 0);
}

/* An unknown field of a random wire type (numbers above the schema's). */
static void put_unknown(struct nn_buf *b)
{
  unsigned field = 6 + (unsigned)(rnd() % 3000);
  switch (rnd() % 4) {
  case 0:
    put_key(b, field, 0);
    put_var(b, rnd(), 10);
    break;
  case 1: put_fixed64(b, field, rnd()); break;
  case 2:
    put_key(b, field, 5);
    assert_int_equal(nn_buf_append(b, "abcd", 4), 0);
    break;
  default: put_bytes(b, field, "opaque", rnd() % 7); break;
  }
}

static void rand_string(char *s, size_t *n)
{
  static const char chars[] = "abcxyz_ABC019:/.-\xc3\xa9";
  size_t len = rnd() % 4 == 0 ? 0 : 1 + rnd() % 12;
  for (size_t i = 0; i < len; i++)
    s[i] = chars[rnd() % (sizeof(chars) - 1)];
  *n = len;
}

static void rand_label(struct nn_buf *b, unsigned field)
{
  struct nn_buf m;
  nn_buf_init(&m, MIB);
  char s[16];
  size_t n;
  int parts = (int)(rnd() % 4);
  for (int i = 0; i < parts + 1; i++) {
    unsigned what = (unsigned)(rnd() % 5);
    if (what < 2) {
      rand_string(s, &n);
      put_bytes(&m, 1 + what, s, n);
    } else if (what == 2 && rnd() % 3 == 0) {
      put_unknown(&m);
    } else {
      rand_string(s, &n);
      put_bytes(&m, 1 + (unsigned)(rnd() % 2), s, n);
    }
  }
  put_msg(b, field, &m);
  nn_buf_fini(&m);
}

static void rand_sample(struct nn_buf *b, unsigned field)
{
  struct nn_buf m;
  nn_buf_init(&m, MIB);
  int parts = (int)(rnd() % 4);
  for (int i = 0; i < parts; i++) {
    switch (rnd() % 5) {
    case 0:
    case 1: {
      double v = (double)(int64_t)(rnd() % 100000) / 7.0;
      uint64_t bits;
      memcpy(&bits, &v, 8);
      put_fixed64(&m, 1, rnd() % 5 == 0 ? 0x7ff0000000000002ULL : bits);
      break;
    }
    case 2:
    case 3:
      put_key(&m, 2, 0);
      put_var(&m, rnd() % 3 == 0 ? rnd() : 1700000000000ULL + rnd() % 100000, 10);
      break;
    default: put_unknown(&m);
    }
  }
  put_msg(b, field, &m);
  nn_buf_fini(&m);
}

static void rand_series(struct nn_buf *b)
{
  struct nn_buf m;
  nn_buf_init(&m, 16 * MIB);
  int parts = (int)(rnd() % 12);
  for (int i = 0; i < parts; i++) {
    switch (rnd() % 8) {
    case 0:
    case 1:
    case 2: rand_label(&m, 1); break;
    case 3:
    case 4:
    case 5: rand_sample(&m, 2); break;
    case 6: {
      struct nn_buf e;
      nn_buf_init(&e, MIB);
      rand_label(&e, 1);
      put_fixed64(&e, 2, rnd());
      put_key(&e, 3, 0);
      put_var(&e, rnd() % 1000, 10);
      put_msg(&m, 3, &e);
      nn_buf_fini(&e);
      break;
    }
    default: put_unknown(&m);
    }
  }
  put_msg(b, 1, &m);
  nn_buf_fini(&m);
}

static void rand_request(struct nn_buf *b)
{
  int parts = (int)(rnd() % 10);
  for (int i = 0; i < parts; i++) {
    switch (rnd() % 6) {
    case 0: {
      struct nn_buf m;
      nn_buf_init(&m, MIB);
      char str[16];
      size_t sn;
      for (int k = (int)(rnd() % 6); k > 0; k--) {
        switch (rnd() % 5) {
        case 0:
          put_key(&m, 1, 0);
          put_var(&m, rnd() % 3 ? rnd() % 8 : rnd(), 10);
          break;
        case 4: put_unknown(&m); break;
        default: {
          static const unsigned fields[] = {2, 4, 5};
          rand_string(str, &sn);
          put_bytes(&m, fields[rnd() % 3], str, sn);
        }
        }
      }
      put_msg(b, 3, &m);
      nn_buf_fini(&m);
      break;
    }
    case 1: put_unknown(b); break;
    default: rand_series(b);
    }
  }
}

static void in_place_decoder_matches_protobuf_c_on_real_captures(void **state)
{
  const char *files[] = {"prometheus-2.42.bin", "prometheus-2.42-metadata.bin"};
  for (size_t f = 0; f < 2; f++) {
    struct nn_buf raw;
    load_capture(files[f], &raw);
    assert_int_equal(cross_check(raw.data, raw.len, files[f]), 0);
    for (size_t cut = 0; cut < raw.len; cut += 13)
      cross_check(raw.data, cut, "truncated capture");
    nn_buf_fini(&raw);
  }
}

static void in_place_decoder_gives_the_same_errors(void **state)
{
  static const struct bad_case cases[] = {
      BAD("length past end", "\x0a\x05\x0a\x03",
          "prometheus.WriteRequest.timeseries (field 1) "
          "at byte 0: length 5 exceeds the 2 bytes left"),
      BAD("nested wrong wire type", "\x0a\x04\x12\x02\x08\x01",
          "prometheus.Sample.value (field 1) at byte 4: wire type 0, expected 1"),
      BAD("truncated key", "\x80", "truncated field key at byte 0"),
      BAD("over-long key for field zero", "\x81\x00\x00\x00\x00\x00\x00\x00\x00\x00",
          "invalid field number 0 at byte 0"),
      BAD("group wire type", "\x2b\x2c", "unsupported wire type 3"),
      BAD("label string as varint", "\x0a\x04\x0a\x02\x08\x05",
          "prometheus.Label.name (field 1) at byte 4: wire type 0"),
      /* protobuf-c refuses these two (Go would not); both decoders must agree. */
      BAD("six-byte key", "\x8a\x80\x80\x80\x80\x00\x00", "key longer than 5 bytes"),
      BAD("six-byte length", "\x0a\x80\x80\x80\x80\x80\x00", "longer than 5 bytes"),
  };
  struct nn_pool pool;
  nn_pool_init(&pool, MIB);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char buf[32], err[256] = "";
    memcpy(buf, cases[i].bytes, cases[i].n);
    struct nn_wire_rw_request req;
    int rc = nn_wire_rw_parse(buf, cases[i].n, &pool, &req, err, sizeof(err));
    if (rc != NN_ECORRUPT || !strstr(err, cases[i].needle))
      fail_msg("%s: rc %d, err \"%s\", wanted \"%s\"", cases[i].what, rc, err, cases[i].needle);
    if (i >= 6)
      assert_int_equal(cross_check(cases[i].bytes, cases[i].n, cases[i].what), NN_ECORRUPT);
  }
  /* The pool cap holds as for protobuf-c: 100k empty series in a 1 MiB pool. */
  struct nn_buf b;
  nn_buf_init(&b, 4 * MIB);
  for (int i = 0; i < 100000; i++)
    assert_int_equal(nn_buf_append(&b, "\x0a\x00", 2), 0);
  struct nn_wire_rw_request req;
  char err[256] = "";
  assert_int_equal(nn_wire_rw_parse(b.data, b.len, &pool, &req, err, sizeof(err)), NN_ETOOBIG);
  assert_non_null(strstr(err, "1048576-byte limit"));
  assert_true(pool.used <= pool.max);
  nn_buf_fini(&b);
  nn_pool_clear(&pool);
}

/* Random requests (field order, unknown fields of every wire type, padded varints,
 * repeated scalars, exemplars, metadata, empty and missing strings), then the same with
 * random damage: both decoders must agree on every one. */
static void in_place_decoder_matches_protobuf_c_on_random_requests(void **state)
{
  size_t ok = 0, bad = 0;
  for (int iter = 0; iter < 3000; iter++) {
    struct nn_buf b;
    nn_buf_init(&b, 64 * MIB);
    rand_request(&b);
    char what[64];
    snprintf(what, sizeof(what), "random request %d", iter);
    assert_int_equal(cross_check(b.data ? b.data : "", b.len, what), 0);
    for (int m = 0; m < 4 && b.len; m++) {
      struct nn_buf c;
      nn_buf_init(&c, 64 * MIB);
      assert_int_equal(nn_buf_append(&c, b.data, b.len), 0);
      size_t at = rnd() % c.len;
      switch (rnd() % 3) {
      case 0: c.len = at; break;
      case 1: c.data[at] = (char)rnd(); break;
      default: c.data[at] ^= (char)(1u << (rnd() % 8)); break;
      }
      snprintf(what, sizeof(what), "random request %d, damage %d", iter, m);
      if (cross_check(c.data, c.len, what) == 0)
        ok++;
      else
        bad++;
      nn_buf_fini(&c);
    }
    nn_buf_fini(&b);
  }
  /* Damage both passes and fails: both paths were exercised. */
  assert_true(ok > 100);
  assert_true(bad > 100);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(captured_headers_name_snappy_and_protobuf),
      cmocka_unit_test(decodes_real_prometheus_capture),
      cmocka_unit_test(decodes_real_metadata_only_request),
      cmocka_unit_test(malformed_protobuf_gives_clear_errors),
      cmocka_unit_test(every_truncation_of_real_capture_fails_cleanly),
      cmocka_unit_test(unknown_fields_are_skipped),
      cmocka_unit_test(pool_cap_stops_hostile_fanout),
      cmocka_unit_test(push_protobuf_round_trips_through_every_codec),
      cmocka_unit_test(unpack_reports_codec_errors_and_caps),
      cmocka_unit_test(json_push_decodes_to_the_protobuf_struct),
      cmocka_unit_test(json_push_handles_escapes_negative_and_empty),
      cmocka_unit_test(json_push_rejects_bad_shapes_with_clear_messages),
      cmocka_unit_test(json_push_respects_pool_cap),
      cmocka_unit_test(rw_pack_round_trips_stale_markers_and_negative_timestamps),
      cmocka_unit_test(in_place_decoder_matches_protobuf_c_on_real_captures),
      cmocka_unit_test(in_place_decoder_gives_the_same_errors),
      cmocka_unit_test(in_place_decoder_matches_protobuf_c_on_random_requests),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
