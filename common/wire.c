/* SPDX-License-Identifier: Apache-2.0 */
/* Remote-write and Loki-push codecs. protobuf-c does the decoding through an allocator
 * backed by the request pool, after a small descriptor-driven walker has checked the wire
 * format as strictly as Go does and named the field and offset of any fault. The JSON push
 * form is parsed with jansson and rebuilt as protobuf-c structs. */
#include "common/wire.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/labels.h"
#include "common/pool.h"

#define NS_PER_S 1000000000LL

struct pool_alloc {
  struct nn_pool *pool;
  int failed; /* 0, NN_ETOOBIG or NN_ENOMEM */
};

static void *on_pool_alloc(void *data, size_t n)
{
  struct pool_alloc *a = data;
  void *p = nn_pool_alloc(a->pool, n);
  if (!p && !a->failed)
    a->failed = n > a->pool->max || a->pool->used > a->pool->max - n ? NN_ETOOBIG : NN_ENOMEM;
  return p;
}

static void on_pool_free(void *data, void *p)
{
  /* Pool memory is released all at once by nn_pool_clear. */
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
  if (!err || !errlen)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* Reads a varint of at most 10 bytes. Returns its length, 0 if truncated or too long. */
static size_t read_varint(const uint8_t *p, size_t n, uint64_t *v)
{
  uint64_t r = 0;
  for (size_t i = 0; i < n && i < 10; i++) {
    r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
    if (p[i] < 0x80) {
      *v = r;
      return i + 1;
    }
  }
  return 0;
}

static int expected_wire_type(ProtobufCType t)
{
  switch (t) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_BOOL:
  case PROTOBUF_C_TYPE_ENUM: return 0;
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_DOUBLE: return 1;
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_FLOAT: return 5;
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_BYTES:
  case PROTOBUF_C_TYPE_MESSAGE: return 2;
  }
  return -1;
}

/* Writes "<message>.<field> (field N) at byte B: <detail>" into err. */
static void field_err(char *err, size_t errlen, const ProtobufCMessageDescriptor *d,
                      const ProtobufCFieldDescriptor *f, uint64_t tag, size_t at, const char *fmt,
                      ...) __attribute__((format(printf, 7, 8)));

static void field_err(char *err, size_t errlen, const ProtobufCMessageDescriptor *d,
                      const ProtobufCFieldDescriptor *f, uint64_t tag, size_t at, const char *fmt,
                      ...)
{
  char detail[128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof(detail), fmt, ap);
  va_end(ap);
  set_err(err, errlen, "%s.%s (field %" PRIu64 ") at byte %zu: %s", d->name,
          f ? f->name : "<unknown>", tag, at, detail);
}

/* Finds the first wire-format violation in p[0..n) read as message d and describes it;
 * false if there is none. It runs before protobuf-c because protobuf-c is lenient where Go
 * is not (an over-long key for field number 0 is accepted, then re-encoded as garbage),
 * and because protobuf-c gives no reason when it fails. It allocates nothing and costs a
 * small fraction of the unpack. Recursion depth is bounded by the (non-recursive) schema. */
static bool check_wire(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n, size_t base,
                       char *err, size_t errlen)
{
  size_t i = 0;
  while (i < n) {
    size_t at = base + i;
    uint64_t key, v;
    size_t k = read_varint(p + i, n - i, &key);
    if (!k) {
      set_err(err, errlen, "%s: truncated field key at byte %zu", d->name, at);
      return true;
    }
    i += k;
    uint64_t tag = key >> 3;
    int wt = (int)(key & 7);
    if (tag == 0 || tag > 0x1fffffff) {
      set_err(err, errlen, "%s: invalid field number %" PRIu64 " at byte %zu", d->name, tag, at);
      return true;
    }
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, (unsigned)tag);
    if (f) {
      int want = expected_wire_type(f->type);
      bool packed = f->label == PROTOBUF_C_LABEL_REPEATED && want != 2 && wt == 2;
      if (wt != want && !packed) {
        field_err(err, errlen, d, f, tag, at, "wire type %d, expected %d", wt, want);
        return true;
      }
    }
    switch (wt) {
    case 0:
      if (!(k = read_varint(p + i, n - i, &v))) {
        field_err(err, errlen, d, f, tag, at, "truncated varint");
        return true;
      }
      i += k;
      break;
    case 1:
    case 5:
      if (n - i < (wt == 1 ? 8u : 4u)) {
        field_err(err, errlen, d, f, tag, at, "truncated %d-byte value", wt == 1 ? 8 : 4);
        return true;
      }
      i += wt == 1 ? 8 : 4;
      break;
    case 2:
      if (!(k = read_varint(p + i, n - i, &v))) {
        field_err(err, errlen, d, f, tag, at, "truncated length");
        return true;
      }
      i += k;
      if (v > n - i) {
        field_err(err, errlen, d, f, tag, at, "length %" PRIu64 " exceeds the %zu bytes left", v,
                  n - i);
        return true;
      }
      if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
          check_wire(f->descriptor, p + i, (size_t)v, base + i, err, errlen))
        return true;
      i += (size_t)v;
      break;
    default: field_err(err, errlen, d, f, tag, at, "unsupported wire type %d", wt); return true;
    }
  }
  return false;
}

static int decode(const ProtobufCMessageDescriptor *d, const void *buf, size_t n,
                  struct nn_pool *pool, ProtobufCMessage **out, char *err, size_t errlen)
{
  if (check_wire(d, buf, n, 0, err, errlen))
    return NN_ECORRUPT;
  struct pool_alloc pa = {pool, 0};
  ProtobufCAllocator alloc = {on_pool_alloc, on_pool_free, &pa};
  ProtobufCMessage *m = protobuf_c_message_unpack(d, &alloc, n, buf);
  if (m) {
    *out = m;
    return 0;
  }
  if (pa.failed == NN_ETOOBIG) {
    set_err(err, errlen, "%s: decoding the %zu-byte body needs more than the %zu-byte limit",
            d->name, n, pool->max);
    return NN_ETOOBIG;
  }
  if (pa.failed) {
    set_err(err, errlen, "%s: out of memory", d->name);
    return NN_ENOMEM;
  }
  set_err(err, errlen, "%s: malformed protobuf message", d->name);
  return NN_ECORRUPT;
}

int nn_wire_rw_decode(const void *buf, size_t n, struct nn_pool *pool,
                      Prometheus__WriteRequest **out, char *err, size_t errlen)
{
  return decode(&prometheus__write_request__descriptor, buf, n, pool, (ProtobufCMessage **)out, err,
                errlen);
}

int nn_wire_push_decode(const void *buf, size_t n, struct nn_pool *pool,
                        Logproto__PushRequest **out, char *err, size_t errlen)
{
  return decode(&logproto__push_request__descriptor, buf, n, pool, (ProtobufCMessage **)out, err,
                errlen);
}

/* ---- remote write, decoded in place ---- */

/* The WriteRequest schema (prompb remote.proto and types.proto) as the walker needs it.
 * Field and message names match protobuf-c's descriptors, so errors read the same as
 * check_wire's. */
enum { M_WRITE, M_SERIES, M_LABEL, M_SAMPLE, M_EXEMPLAR, M_META };
enum { C_NONE, C_SERIES, C_LABELS, C_SAMPLES, C_META, C_COUNT };

struct rw_field {
  uint8_t num, wt;
  int8_t sub;    /* nested message, or -1 */
  uint8_t count; /* C_*: what an occurrence counts towards */
  const char *name;
};

struct rw_msg {
  const char *name;
  const struct rw_field *f;
  uint8_t nf;
};

static const struct rw_field f_write[] = {{1, 2, M_SERIES, C_SERIES, "timeseries"},
                                          {3, 2, M_META, C_META, "metadata"}};
static const struct rw_field f_series[] = {{1, 2, M_LABEL, C_LABELS, "labels"},
                                           {2, 2, M_SAMPLE, C_SAMPLES, "samples"},
                                           {3, 2, M_EXEMPLAR, C_NONE, "exemplars"}};
static const struct rw_field f_label[] = {{1, 2, -1, C_NONE, "name"}, {2, 2, -1, C_NONE, "value"}};
static const struct rw_field f_sample[] = {{1, 1, -1, C_NONE, "value"},
                                           {2, 0, -1, C_NONE, "timestamp"}};
static const struct rw_field f_exemplar[] = {{1, 2, M_LABEL, C_NONE, "labels"},
                                             {2, 1, -1, C_NONE, "value"},
                                             {3, 0, -1, C_NONE, "timestamp"}};
static const struct rw_field f_meta[] = {{1, 0, -1, C_NONE, "type"},
                                         {2, 2, -1, C_NONE, "metric_family_name"},
                                         {4, 2, -1, C_NONE, "help"},
                                         {5, 2, -1, C_NONE, "unit"}};
static const struct rw_msg rw_msgs[] = {
    [M_WRITE] = {"prometheus.WriteRequest", f_write, 2},
    [M_SERIES] = {"prometheus.TimeSeries", f_series, 3},
    [M_LABEL] = {"prometheus.Label", f_label, 2},
    [M_SAMPLE] = {"prometheus.Sample", f_sample, 2},
    [M_EXEMPLAR] = {"prometheus.Exemplar", f_exemplar, 3},
    [M_META] = {"prometheus.MetricMetadata", f_meta, 4},
};

static void rw_field_err(char *err, size_t errlen, const struct rw_msg *d, const struct rw_field *f,
                         uint64_t tag, size_t at, const char *detail)
{
  set_err(err, errlen, "%s.%s (field %" PRIu64 ") at byte %zu: %s", d->name,
          f ? f->name : "<unknown>", tag, at, detail);
}

/* Recognises the encoding every real sender uses for the two messages of which a request
 * holds millions, Sample {value, timestamp} and Label {name, value} with short strings,
 * so that the first pass steps over them without the general walk. Anything else (other
 * order, long strings, unknown fields) is left to rw_check. */
static bool rw_canonical(int m, const uint8_t *p, size_t n)
{
  if (m == M_SAMPLE) {
    /* 09 <8 bytes> 10 <varint to the end> */
    if (n < 11 || n > 20 || p[0] != 0x09 || p[9] != 0x10 || p[n - 1] >= 0x80)
      return false;
    for (size_t i = 10; i + 1 < n; i++)
      if (p[i] < 0x80)
        return false;
    return true;
  }
  if (m == M_LABEL) {
    /* 0a <len < 128> name 12 <len < 128> value, nothing after */
    if (n < 4 || p[0] != 0x0a || p[1] >= 0x80 || (size_t)p[1] + 4 > n)
      return false;
    size_t k = 2 + (size_t)p[1];
    return p[k] == 0x12 && p[k + 1] < 0x80 && k + 2 + p[k + 1] == n;
  }
  return false;
}

/* First pass: the checks of check_wire, plus protobuf-c's own limits (keys and length
 * prefixes of at most 5 bytes), so that both decoders accept exactly the same bodies;
 * and counts of series, labels and samples for the second pass. */
static bool rw_check(int m, const uint8_t *p, size_t n, size_t base, size_t *count, char *err,
                     size_t errlen)
{
  const struct rw_msg *d = &rw_msgs[m];
  char detail[96];
  size_t i = 0;
  while (i < n) {
    size_t at = base + i;
    uint64_t key, v;
    size_t k = read_varint(p + i, n - i, &key);
    if (!k) {
      set_err(err, errlen, "%s: truncated field key at byte %zu", d->name, at);
      return true;
    }
    uint64_t tag = key >> 3;
    int wt = (int)(key & 7);
    if (tag == 0 || tag > 0x1fffffff) {
      set_err(err, errlen, "%s: invalid field number %" PRIu64 " at byte %zu", d->name, tag, at);
      return true;
    }
    if (k > 5) {
      set_err(err, errlen, "%s: field key longer than 5 bytes at byte %zu", d->name, at);
      return true;
    }
    i += k;
    const struct rw_field *f = NULL;
    for (unsigned j = 0; j < d->nf; j++)
      if (d->f[j].num == tag)
        f = &d->f[j];
    if (f && wt != f->wt) {
      snprintf(detail, sizeof(detail), "wire type %d, expected %d", wt, f->wt);
      rw_field_err(err, errlen, d, f, tag, at, detail);
      return true;
    }
    switch (wt) {
    case 0:
      if (!(k = read_varint(p + i, n - i, &v))) {
        rw_field_err(err, errlen, d, f, tag, at, "truncated varint");
        return true;
      }
      i += k;
      break;
    case 1:
    case 5:
      if (n - i < (wt == 1 ? 8u : 4u)) {
        snprintf(detail, sizeof(detail), "truncated %d-byte value", wt == 1 ? 8 : 4);
        rw_field_err(err, errlen, d, f, tag, at, detail);
        return true;
      }
      i += wt == 1 ? 8 : 4;
      break;
    case 2:
      if (!(k = read_varint(p + i, n - i, &v))) {
        rw_field_err(err, errlen, d, f, tag, at, "truncated length");
        return true;
      }
      i += k;
      if (v > n - i) {
        snprintf(detail, sizeof(detail), "length %" PRIu64 " exceeds the %zu bytes left", v, n - i);
        rw_field_err(err, errlen, d, f, tag, at, detail);
        return true;
      }
      if (k > 5) {
        rw_field_err(err, errlen, d, f, tag, at, "length prefix longer than 5 bytes");
        return true;
      }
      if (f && f->sub >= 0 && !rw_canonical(f->sub, p + i, (size_t)v) &&
          rw_check(f->sub, p + i, (size_t)v, base + i, count, err, errlen))
        return true;
      if (f)
        count[f->count]++;
      i += (size_t)v;
      break;
    default:
      snprintf(detail, sizeof(detail), "unsupported wire type %d", wt);
      rw_field_err(err, errlen, d, f, tag, at, detail);
      return true;
    }
  }
  return false;
}

/* Second pass helpers: the bytes passed rw_check, so nothing here can run past the end. */
static inline uint64_t rw_varint(const uint8_t **p)
{
  const uint8_t *q = *p;
  uint64_t r = q[0] & 0x7f;
  if (q[0] < 0x80) {
    *p = q + 1;
    return r;
  }
  for (unsigned i = 1; i < 10; i++) {
    r |= (uint64_t)(q[i] & 0x7f) << (7 * i);
    if (q[i] < 0x80) {
      *p = q + i + 1;
      return r;
    }
  }
  *p = q + 10;
  return r;
}

/* Steps over a field's value; a length-delimited one is returned in [*sub, *p). */
static inline void rw_skip(const uint8_t **p, unsigned wt, const uint8_t **sub)
{
  switch (wt) {
  case 0: rw_varint(p); break;
  case 1: *p += 8; break;
  case 5: *p += 4; break;
  default: {
    uint64_t len = rw_varint(p);
    *sub = *p;
    *p += len;
  }
  }
}

struct rw_fill {
  struct nn_wire_rw_series *series;
  struct nn_label *labels;
  uint32_t *lens;
  struct nn_wire_rw_sample *samples;
  struct nn_wire_rw_metadata *meta;
  uint32_t *meta_lens; /* 3 per metadata entry */
  size_t nseries, nlabels, nsamples, nmeta;
};

static void rw_fill_label(struct rw_fill *fs, const uint8_t *p, const uint8_t *end)
{
  struct nn_label *l = &fs->labels[fs->nlabels];
  uint32_t *len = &fs->lens[2 * fs->nlabels];
  *l = (struct nn_label){"", ""};
  len[0] = len[1] = 0;
  while (p < end) {
    uint64_t key = rw_varint(&p);
    const uint8_t *s = NULL;
    rw_skip(&p, key & 7, &s);
    if (key == (1 << 3 | 2) || key == (2 << 3 | 2)) {
      int which = key == (2 << 3 | 2);
      uint32_t n = (uint32_t)(p - s);
      len[which] = n;
      if (which)
        l->value = n ? (const char *)s : "";
      else
        l->name = n ? (const char *)s : "";
    }
  }
  fs->nlabels++;
}

static void rw_fill_sample(struct rw_fill *fs, const uint8_t *p, const uint8_t *end)
{
  struct nn_wire_rw_sample *sm = &fs->samples[fs->nsamples++];
  sm->t = 0;
  sm->v = 0;
  while (p < end) {
    uint64_t key = rw_varint(&p);
    if (key == (1 << 3 | 1)) {
      uint64_t bits = 0;
      for (int k = 7; k >= 0; k--)
        bits = bits << 8 | p[k];
      memcpy(&sm->v, &bits, sizeof(bits));
      p += 8;
    } else if (key == (2 << 3 | 0)) {
      sm->t = (int64_t)rw_varint(&p);
    } else {
      const uint8_t *s;
      rw_skip(&p, key & 7, &s);
    }
  }
}

static void rw_fill_meta(struct rw_fill *fs, const uint8_t *p, const uint8_t *end)
{
  struct nn_wire_rw_metadata *md = &fs->meta[fs->nmeta];
  uint32_t *len = &fs->meta_lens[3 * fs->nmeta++];
  *md = (struct nn_wire_rw_metadata){0, "", "", ""};
  len[0] = len[1] = len[2] = 0;
  while (p < end) {
    uint64_t key = rw_varint(&p);
    if (key == (1 << 3 | 0)) {
      md->type = (int32_t)rw_varint(&p);
      continue;
    }
    const uint8_t *s = NULL;
    rw_skip(&p, key & 7, &s);
    const char **str = key == (2 << 3 | 2)   ? &md->metric_family_name
                       : key == (4 << 3 | 2) ? &md->help
                       : key == (5 << 3 | 2) ? &md->unit
                                             : NULL;
    if (str) {
      uint32_t n = (uint32_t)(p - s);
      len[str == &md->metric_family_name ? 0 : str == &md->help ? 1 : 2] = n;
      *str = n ? (const char *)s : "";
    }
  }
}

static void rw_fill_series(struct rw_fill *fs, const uint8_t *p, const uint8_t *end)
{
  struct nn_wire_rw_series *ts = &fs->series[fs->nseries++];
  ts->labels = fs->labels + fs->nlabels;
  ts->lens = fs->lens + 2 * fs->nlabels;
  ts->samples = fs->samples + fs->nsamples;
  size_t l0 = fs->nlabels, s0 = fs->nsamples;
  while (p < end) {
    uint64_t key = rw_varint(&p);
    const uint8_t *s = NULL;
    rw_skip(&p, key & 7, &s);
    if (key == (1 << 3 | 2))
      rw_fill_label(fs, s, p);
    else if (key == (2 << 3 | 2))
      rw_fill_sample(fs, s, p);
  }
  ts->n_labels = (uint32_t)(fs->nlabels - l0);
  ts->n_samples = (uint32_t)(fs->nsamples - s0);
}

static void terminate_labels(const struct rw_fill *fs, char *base, size_t from)
{
  for (size_t i = from; i < fs->nlabels; i++) {
    if (fs->lens[2 * i])
      base[fs->labels[i].name - base + fs->lens[2 * i]] = '\0';
    if (fs->lens[2 * i + 1])
      base[fs->labels[i].value - base + fs->lens[2 * i + 1]] = '\0';
  }
}

int nn_wire_rw_parse(void *buf, size_t n, struct nn_pool *pool, struct nn_wire_rw_request *out,
                     char *err, size_t errlen)
{
  const uint8_t *p = buf, *end = p + n;
  size_t count[C_COUNT] = {0};
  memset(out, 0, sizeof(*out));
  if (rw_check(M_WRITE, p, n, 0, count, err, errlen))
    return NN_ECORRUPT;
  /* Every counted item took at least two bytes of input, so none of this overflows. */
  size_t ns = count[C_SERIES], nl = count[C_LABELS], nsm = count[C_SAMPLES], nm = count[C_META];
  size_t need = ns * sizeof(struct nn_wire_rw_series) + nl * (sizeof(struct nn_label) + 8) +
                nsm * sizeof(struct nn_wire_rw_sample) +
                nm * (sizeof(struct nn_wire_rw_metadata) + 12) + 96;
  struct rw_fill fs = {0};
  if (need > pool->max || pool->used > pool->max - need) {
    set_err(err, errlen, "%s: decoding the %zu-byte body needs more than the %zu-byte limit",
            rw_msgs[M_WRITE].name, n, pool->max);
    return NN_ETOOBIG;
  }
  fs.series = nn_pool_alloc(pool, ns * sizeof(*fs.series) + 1);
  fs.labels = nn_pool_alloc(pool, nl * sizeof(*fs.labels) + 1);
  fs.lens = nn_pool_alloc(pool, nl * 2 * sizeof(*fs.lens) + 1);
  fs.samples = nn_pool_alloc(pool, nsm * sizeof(*fs.samples) + 1);
  fs.meta = nn_pool_alloc(pool, nm * sizeof(*fs.meta) + 1);
  fs.meta_lens = nn_pool_alloc(pool, nm * 3 * sizeof(*fs.meta_lens) + 1);
  if (!fs.series || !fs.labels || !fs.lens || !fs.samples || !fs.meta || !fs.meta_lens) {
    set_err(err, errlen, "%s: out of memory", rw_msgs[M_WRITE].name);
    return NN_ENOMEM;
  }
  /* A string is NUL-terminated only once the byte after it, the next field's key (or
   * a key after the enclosing message), has been read: the labels of one series right
   * after the next top-level field's key, while they are still in the cache. */
  size_t done = 0;
  while (p < end) {
    uint64_t key = rw_varint(&p);
    const uint8_t *s = NULL;
    rw_skip(&p, key & 7, &s);
    terminate_labels(&fs, buf, done);
    done = fs.nlabels;
    if (key == (1 << 3 | 2))
      rw_fill_series(&fs, s, p);
    else if (key == (3 << 3 | 2))
      rw_fill_meta(&fs, s, p);
  }
  terminate_labels(&fs, buf, done);
  char *base = buf;
  for (size_t i = 0; i < fs.nmeta; i++) {
    const char *strs[3] = {fs.meta[i].metric_family_name, fs.meta[i].help, fs.meta[i].unit};
    for (int k = 0; k < 3; k++)
      if (fs.meta_lens[3 * i + k])
        base[strs[k] - base + fs.meta_lens[3 * i + k]] = '\0';
  }
  out->series = fs.series;
  out->n_series = fs.nseries;
  out->metadata = fs.meta;
  out->n_metadata = fs.nmeta;
  return 0;
}

static int encode(const ProtobufCMessage *msg, struct nn_buf *out)
{
  size_t n = protobuf_c_message_get_packed_size(msg);
  int rc = nn_buf_reserve(out, n);
  if (rc < 0)
    return rc;
  size_t w = protobuf_c_message_pack(msg, (uint8_t *)out->data + out->len);
  out->len += w;
  out->data[out->len] = '\0';
  return 0;
}

int nn_wire_rw_encode(const Prometheus__WriteRequest *req, struct nn_buf *out)
{
  return encode(&req->base, out);
}

int nn_wire_push_encode(const Logproto__PushRequest *req, struct nn_buf *out)
{
  return encode(&req->base, out);
}

static size_t varint_len(uint64_t v)
{
  size_t n = 1;
  for (; v >= 0x80; v >>= 7)
    n++;
  return n;
}

static uint8_t *put_varint(uint8_t *o, uint64_t v)
{
  for (; v >= 0x80; v >>= 7)
    *o++ = (uint8_t)(v | 0x80);
  *o++ = (uint8_t)v;
  return o;
}

static size_t label_body(size_t nl, size_t vl)
{
  return 2 + varint_len(nl) + nl + varint_len(vl) + vl;
}

size_t nn_wire_rw_label_size(size_t name_len, size_t value_len)
{
  size_t b = label_body(name_len, value_len);
  return 1 + varint_len(b) + b;
}

size_t nn_wire_rw_label_put(void *out, const char *name, size_t name_len, const char *value,
                            size_t value_len)
{
  uint8_t *o = out;
  *o++ = 0x0a; /* TimeSeries.labels */
  o = put_varint(o, label_body(name_len, value_len));
  *o++ = 0x0a; /* Label.name */
  o = put_varint(o, name_len);
  memcpy(o, name, name_len);
  o += name_len;
  *o++ = 0x12; /* Label.value */
  o = put_varint(o, value_len);
  memcpy(o, value, value_len);
  return (size_t)(o + value_len - (uint8_t *)out);
}

size_t nn_wire_rw_sample_put(void *out, double value, int64_t ts_ms)
{
  uint8_t *o = out;
  uint64_t bits;
  memcpy(&bits, &value, sizeof(bits));
  *o++ = 0x09; /* Sample.value, fixed64 little-endian */
  for (int i = 0; i < 8; i++)
    *o++ = (uint8_t)(bits >> (8 * i));
  if (ts_ms != 0) {
    *o++ = 0x10; /* Sample.timestamp */
    o = put_varint(o, (uint64_t)ts_ms);
  }
  return (size_t)(o - (uint8_t *)out);
}

int nn_wire_pack(const ProtobufCMessage *msg, enum nn_codec codec, struct nn_buf *out)
{
  if (codec == NN_CODEC_NONE)
    return encode(msg, out);
  size_t n = protobuf_c_message_get_packed_size(msg);
  /* The encoded form must exist whole before compressing: one heap temporary. */
  uint8_t *tmp = malloc(n ? n : 1);
  if (!tmp)
    return NN_ENOMEM;
  protobuf_c_message_pack(msg, tmp);
  int rc = nn_compress(codec, tmp, n, out);
  free(tmp);
  return rc;
}

static int unpack(const ProtobufCMessageDescriptor *d, enum nn_codec codec, const void *body,
                  size_t n, size_t max_raw, struct nn_pool *pool, ProtobufCMessage **out, char *err,
                  size_t errlen)
{
  if (codec == NN_CODEC_NONE) {
    if (n > max_raw) {
      set_err(err, errlen, "body of %zu bytes exceeds the %zu-byte limit", n, max_raw);
      return NN_ETOOBIG;
    }
    return decode(d, body, n, pool, out, err, errlen);
  }
  struct nn_buf raw;
  nn_buf_init(&raw, max_raw);
  int rc = nn_decompress(codec, body, n, max_raw, &raw);
  if (rc == NN_ETOOBIG)
    set_err(err, errlen, "%s body decompresses to more than the %zu-byte limit",
            nn_codec_name(codec), max_raw);
  else if (rc < 0)
    set_err(err, errlen, "%s body: %s", nn_codec_name(codec), nn_strerror(rc));
  else
    rc = decode(d, raw.data, raw.len, pool, out, err, errlen);
  nn_buf_fini(&raw);
  return rc;
}

int nn_wire_rw_unpack(enum nn_codec codec, const void *body, size_t n, size_t max_raw,
                      struct nn_pool *pool, Prometheus__WriteRequest **out, char *err,
                      size_t errlen)
{
  return unpack(&prometheus__write_request__descriptor, codec, body, n, max_raw, pool,
                (ProtobufCMessage **)out, err, errlen);
}

int nn_wire_push_unpack(enum nn_codec codec, const void *body, size_t n, size_t max_raw,
                        struct nn_pool *pool, Logproto__PushRequest **out, char *err, size_t errlen)
{
  return unpack(&logproto__push_request__descriptor, codec, body, n, max_raw, pool,
                (ProtobufCMessage **)out, err, errlen);
}

/* ---- Loki JSON push ---- */

struct json_ctx {
  struct nn_pool *pool;
  struct nn_buf tmp; /* label text before it is copied into the pool */
  char *err;
  size_t errlen;
};

/* Allocates from the pool; on failure reports the cap. */
static void *jalloc(struct json_ctx *c, size_t n, int *rc)
{
  void *p = nn_pool_alloc(c->pool, n);
  if (!p) {
    *rc = NN_ETOOBIG;
    set_err(c->err, c->errlen, "push request needs more than the %zu-byte decode limit",
            c->pool->max);
  }
  return p;
}

static void *jalloc_array(struct json_ctx *c, size_t count, size_t size, int *rc)
{
  if (count && size > SIZE_MAX / count) {
    *rc = NN_ETOOBIG;
    return NULL;
  }
  return jalloc(c, count * size, rc);
}

static char *jstrdup(struct json_ctx *c, const char *s, size_t n, int *rc)
{
  char *p = jalloc(c, n + 1, rc);
  if (p) {
    memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

/* Parses Go's strconv.ParseInt(s, 10, 64) subset Loki accepts: optional '-', digits. */
static bool parse_ns(const char *s, size_t n, int64_t *out)
{
  size_t i = 0;
  bool neg = n > 0 && s[0] == '-';
  if (neg)
    i++;
  if (i == n)
    return false;
  uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  for (; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    unsigned d = (unsigned)(s[i] - '0');
    if (v > (lim - d) / 10)
      return false;
    v = v * 10 + d;
  }
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return true;
}

static const char *json_kind(const json_t *v)
{
  switch (json_typeof(v)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER:
  case JSON_REAL: return "a number";
  case JSON_TRUE:
  case JSON_FALSE: return "a boolean";
  case JSON_NULL: return "null";
  }
  return "unknown";
}

/* A flat {"name": "value"} object as LabelPairAdapters (structured metadata). */
static int json_pairs(struct json_ctx *c, json_t *obj, const char *where,
                      Logproto__LabelPairAdapter ***out, size_t *nout)
{
  int rc = 0;
  if (!json_is_object(obj)) {
    set_err(c->err, c->errlen, "%s: structured metadata must be an object, got %s", where,
            json_kind(obj));
    return NN_EINVAL;
  }
  size_t n = json_object_size(obj), i = 0;
  Logproto__LabelPairAdapter **v = jalloc_array(c, n ? n : 1, sizeof(*v), &rc);
  if (!v)
    return rc;
  const char *k;
  json_t *val;
  json_object_foreach(obj, k, val)
  {
    if (!json_is_string(val)) {
      set_err(c->err, c->errlen, "%s.%s: structured metadata value must be a string, got %s", where,
              k, json_kind(val));
      return NN_EINVAL;
    }
    Logproto__LabelPairAdapter *p = jalloc(c, sizeof(*p), &rc);
    if (!p)
      return rc;
    logproto__label_pair_adapter__init(p);
    if (!(p->name = jstrdup(c, k, strlen(k), &rc)) ||
        !(p->value = jstrdup(c, json_string_value(val), json_string_length(val), &rc)))
      return rc;
    v[i++] = p;
  }
  *out = v;
  *nout = i;
  return 0;
}

/* {"k":"v",...} to the canonical selector text. */
static int json_stream_labels(struct json_ctx *c, json_t *obj, size_t si, char **out)
{
  int rc = 0;
  if (!json_is_object(obj)) {
    set_err(c->err, c->errlen, "streams[%zu].stream: must be an object of label names to values",
            si);
    return NN_EINVAL;
  }
  size_t n = json_object_size(obj), i = 0;
  struct nn_label *v = jalloc_array(c, n ? n : 1, sizeof(*v), &rc);
  if (!v)
    return rc;
  const char *k;
  json_t *val;
  json_object_foreach(obj, k, val)
  {
    if (!json_is_string(val)) {
      set_err(c->err, c->errlen, "streams[%zu].stream.%s: label value must be a string, got %s", si,
              k, json_kind(val));
      return NN_EINVAL;
    }
    v[i].name = k;
    v[i].value = json_string_value(val);
    i++;
  }
  n = nn_labels_canonicalize(v, i);
  nn_buf_reset(&c->tmp);
  if ((rc = nn_labels_format(v, n, &c->tmp)) < 0) {
    set_err(c->err, c->errlen, "streams[%zu].stream: labels too large", si);
    return rc;
  }
  *out = jstrdup(c, c->tmp.data, c->tmp.len, &rc);
  return *out ? 0 : rc;
}

static int json_entry(struct json_ctx *c, json_t *e, size_t si, size_t ei,
                      Logproto__EntryAdapter **out)
{
  int rc = 0;
  char where[64];
  snprintf(where, sizeof(where), "streams[%zu].values[%zu]", si, ei);
  size_t n = json_is_array(e) ? json_array_size(e) : 0;
  if (n != 2 && n != 3) {
    set_err(c->err, c->errlen,
            "%s: must be an array [\"<ns timestamp>\", \"<line>\"] with optional structured "
            "metadata object, got %s%s",
            where, json_kind(e), json_is_array(e) ? " of the wrong length" : "");
    return NN_EINVAL;
  }
  json_t *ts = json_array_get(e, 0), *line = json_array_get(e, 1);
  int64_t ns;
  if (!json_is_string(ts)) {
    set_err(c->err, c->errlen,
            "%s[0]: timestamp must be a string of nanoseconds since the epoch, got %s", where,
            json_kind(ts));
    return NN_EINVAL;
  }
  if (!parse_ns(json_string_value(ts), json_string_length(ts), &ns)) {
    set_err(c->err, c->errlen,
            "%s[0]: timestamp \"%.40s\" is not an integer count of nanoseconds since the epoch",
            where, json_string_value(ts));
    return NN_EINVAL;
  }
  if (!json_is_string(line)) {
    set_err(c->err, c->errlen, "%s[1]: log line must be a string, got %s", where, json_kind(line));
    return NN_EINVAL;
  }
  Logproto__EntryAdapter *en = jalloc(c, sizeof(*en), &rc);
  Logproto__Timestamp *t = en ? jalloc(c, sizeof(*t), &rc) : NULL;
  if (!t)
    return rc;
  logproto__entry_adapter__init(en);
  logproto__timestamp__init(t);
  /* Floor division, so nanos is always in [0, 1e9) as in google.protobuf.Timestamp. */
  t->seconds = ns / NS_PER_S;
  t->nanos = (int32_t)(ns % NS_PER_S);
  if (t->nanos < 0) {
    t->seconds -= 1;
    t->nanos += (int32_t)NS_PER_S;
  }
  en->timestamp = t;
  if (!(en->line = jstrdup(c, json_string_value(line), json_string_length(line), &rc)))
    return rc;
  if (n == 3) {
    char w3[72];
    snprintf(w3, sizeof(w3), "%s[2]", where);
    if ((rc = json_pairs(c, json_array_get(e, 2), w3, &en->structuredmetadata,
                         &en->n_structuredmetadata)) < 0)
      return rc;
  }
  *out = en;
  return 0;
}

static int json_stream(struct json_ctx *c, json_t *s, size_t si, Logproto__StreamAdapter **out)
{
  int rc = 0;
  if (!json_is_object(s)) {
    set_err(c->err, c->errlen, "streams[%zu]: must be an object, got %s", si, json_kind(s));
    return NN_EINVAL;
  }
  json_t *labels = json_object_get(s, "stream"), *values = json_object_get(s, "values");
  if (!labels) {
    set_err(c->err, c->errlen, "streams[%zu]: missing \"stream\" (the label set)", si);
    return NN_EINVAL;
  }
  if (!json_is_array(values)) {
    set_err(c->err, c->errlen, "streams[%zu].values: must be an array of [ts, line] entries%s", si,
            values ? "" : " (missing)");
    return NN_EINVAL;
  }
  Logproto__StreamAdapter *st = jalloc(c, sizeof(*st), &rc);
  if (!st)
    return rc;
  logproto__stream_adapter__init(st);
  if ((rc = json_stream_labels(c, labels, si, &st->labels)) < 0)
    return rc;
  size_t n = json_array_size(values);
  if (!(st->entries = jalloc_array(c, n ? n : 1, sizeof(*st->entries), &rc)))
    return rc;
  for (size_t i = 0; i < n; i++) {
    if ((rc = json_entry(c, json_array_get(values, i), si, i, &st->entries[i])) < 0)
      return rc;
    st->n_entries++;
  }
  *out = st;
  return 0;
}

int nn_wire_push_decode_json(const char *buf, size_t n, struct nn_pool *pool,
                             Logproto__PushRequest **out, char *err, size_t errlen)
{
  if (n > NN_WIRE_JSON_MAX) {
    set_err(err, errlen, "JSON push body of %zu bytes exceeds the %zu-byte limit", n,
            NN_WIRE_JSON_MAX);
    return NN_ETOOBIG;
  }
  json_error_t jerr;
  json_t *root = json_loadb(buf, n, 0, &jerr);
  if (!root) {
    set_err(err, errlen, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
            jerr.text);
    return NN_EINVAL;
  }
  struct json_ctx c = {.pool = pool, .err = err, .errlen = errlen};
  nn_buf_init(&c.tmp, n + 64); /* a label text is never longer than the body that held it */
  int rc = 0;
  json_t *streams = json_is_object(root) ? json_object_get(root, "streams") : NULL;
  if (!json_is_array(streams)) {
    set_err(err, errlen, "push body must be an object with a \"streams\" array");
    rc = NN_EINVAL;
    goto out;
  }
  Logproto__PushRequest *req = jalloc(&c, sizeof(*req), &rc);
  if (!req)
    goto out;
  logproto__push_request__init(req);
  size_t ns = json_array_size(streams);
  if (!(req->streams = jalloc_array(&c, ns ? ns : 1, sizeof(*req->streams), &rc)))
    goto out;
  for (size_t i = 0; i < ns; i++) {
    if ((rc = json_stream(&c, json_array_get(streams, i), i, &req->streams[i])) < 0)
      goto out;
    req->n_streams++;
  }
  *out = req;
out:
  nn_buf_fini(&c.tmp);
  json_decref(root);
  return rc;
}
