/* SPDX-License-Identifier: Apache-2.0 */
/* Wire codecs for the two ingest protocols: Prometheus remote write 1.0 (WriteRequest)
 * and Loki push (PushRequest, protobuf or JSON). Decoding lands in a caller's nn_pool, so
 * a hostile body can never allocate past the pool's cap, and frees in one nn_pool_clear.
 * Both forms of a Loki push decode to the same Logproto__PushRequest, so one ingest path
 * serves both. */
#ifndef NN_COMMON_WIRE_H
#define NN_COMMON_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "common/compress.h"
#include "common/labels.h"
#include "push.pb-c.h"
#include "remote.pb-c.h"

struct nn_buf;
struct nn_pool;

/* JSON push bodies larger than this are refused before parsing: jansson's temporary tree
 * lives on the heap (several times the input size), outside the pool's cap. */
#define NN_WIRE_JSON_MAX ((size_t)64 << 20)

/* Decodes a (decompressed) protobuf body into pool memory; the result lives until the pool
 * is cleared. Memory use is a few times n for real requests (more for pathological ones),
 * so size the pool cap at ~8x the body cap. Errors, each with a message in err naming the
 * field and byte offset: NN_ECORRUPT for malformed protobuf (truncated, bad wire type,
 * length past the end), NN_ETOOBIG when the pool cap is hit, NN_ENOMEM. Both mean HTTP 400
 * except NN_ENOMEM. */
int nn_wire_rw_decode(const void *buf, size_t n, struct nn_pool *pool,
                      Prometheus__WriteRequest **out, char *err, size_t errlen);
/* A remote-write request decoded in place by nn_wire_rw_parse: what ingest needs (series
 * labels and samples) with no per-field allocation. Label strings point into the body and
 * are NUL-terminated there. Exemplars and histograms are checked and skipped. */
struct nn_wire_rw_sample {
  int64_t t; /* milliseconds since the epoch */
  double v;
};
struct nn_wire_rw_series {
  struct nn_label *labels; /* in wire order */
  uint32_t *lens;          /* 2 per label: name length, value length */
  struct nn_wire_rw_sample *samples;
  uint32_t n_labels, n_samples;
};
struct nn_wire_rw_metadata {
  int32_t type;                                 /* PROMETHEUS__METRIC_METADATA__METRIC_TYPE__* */
  const char *metric_family_name, *help, *unit; /* "" when absent */
};
struct nn_wire_rw_request {
  struct nn_wire_rw_series *series;
  size_t n_series;
  struct nn_wire_rw_metadata *metadata;
  size_t n_metadata;
};

/* Decodes a (decompressed) WriteRequest in place, with the same strictness and error
 * messages as nn_wire_rw_decode, but walking the bytes twice (check and count, then fill)
 * instead of allocating a struct per label and sample. buf[n] must be writable (an nn_buf
 * has it): strings are NUL-terminated in place, so buf must outlive the result. Arrays
 * come from pool: NN_ETOOBIG past its cap, NN_ECORRUPT for malformed protobuf. */
int nn_wire_rw_parse(void *buf, size_t n, struct nn_pool *pool, struct nn_wire_rw_request *out,
                     char *err, size_t errlen);

int nn_wire_push_decode(const void *buf, size_t n, struct nn_pool *pool,
                        Logproto__PushRequest **out, char *err, size_t errlen);

/* Decodes Loki's JSON push form
 *   {"streams":[{"stream":{"k":"v"},"values":[["<ns>","<line>"{,{"k":"v"}}]]}]}
 * into the same struct as nn_wire_push_decode, in pool memory. Each stream's labels become
 * the canonical text form ({a="b", c="d"}: sorted, empty values dropped). Timestamps must be
 * strings of nanoseconds since the epoch (a JSON number is an error, as in Loki); the
 * optional third element is structured metadata, a flat object of strings. NN_EINVAL with a
 * message naming the element (e.g. streams[0].values[3][0]) on bad JSON or shape,
 * NN_ETOOBIG past NN_WIRE_JSON_MAX or the pool cap, NN_ENOMEM. */
int nn_wire_push_decode_json(const char *buf, size_t n, struct nn_pool *pool,
                             Logproto__PushRequest **out, char *err, size_t errlen);

/* Appends the protobuf encoding of req to out. NN_ETOOBIG past out->max. */
int nn_wire_rw_encode(const Prometheus__WriteRequest *req, struct nn_buf *out);
int nn_wire_push_encode(const Logproto__PushRequest *req, struct nn_buf *out);

/* Remote-write pieces written straight into caller memory, for senders that build bodies
 * without a message tree (the agent caches each series' encoded labels). */
/* Bytes of one TimeSeries.labels field (tag, length, Label{name, value}). */
size_t nn_wire_rw_label_size(size_t name_len, size_t value_len);
/* Writes that field to out (nn_wire_rw_label_size bytes) and returns its size. */
size_t nn_wire_rw_label_put(void *out, const char *name, size_t name_len, const char *value,
                            size_t value_len);
/* The most nn_wire_rw_sample_put writes. */
#define NN_WIRE_RW_SAMPLE_MAX 20
/* Writes a Sample message's fields (value, and timestamp unless 0) and returns their size. */
size_t nn_wire_rw_sample_put(void *out, double value, int64_t ts_ms);

/* Encodes any message and compresses it with codec in one go, appending to out (the
 * body of a remote-write or push request). NN_ETOOBIG past out->max, NN_ENOMEM. */
int nn_wire_pack(const ProtobufCMessage *msg, enum nn_codec codec, struct nn_buf *out);

/* Decompresses body (at most max_raw bytes) and decodes it as a WriteRequest or a
 * protobuf PushRequest: the usual ingest step. The decompressed copy is a heap temporary
 * freed before returning; the message is in pool memory. Errors as nn_decompress and the
 * decoders above, with a message in err. */
int nn_wire_rw_unpack(enum nn_codec codec, const void *body, size_t n, size_t max_raw,
                      struct nn_pool *pool, Prometheus__WriteRequest **out, char *err,
                      size_t errlen);
int nn_wire_push_unpack(enum nn_codec codec, const void *body, size_t n, size_t max_raw,
                        struct nn_pool *pool, Logproto__PushRequest **out, char *err,
                        size_t errlen);

#endif
