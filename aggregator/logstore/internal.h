/* SPDX-License-Identifier: Apache-2.0 */
/* Private to aggregator/logstore: the store's structures and the functions its files share
 * (nn__logstore_*). Not for other modules. */
#ifndef NN_AGGREGATOR_LOGSTORE_INTERNAL_H
#define NN_AGGREGATOR_LOGSTORE_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aggregator/logstore/logstore.h"
#include "common/buf.h"

#define LS_MAX_KEY_BYTES    128
#define LS_MAX_TENANT_BYTES 128
#define LS_MAX_LABELS_BYTES 16384
#define LS_MAX_META_PAIRS   128
/* Cap on one WAL record and on one chunk's raw body: far above what a head holds
 * (target + one max line), small enough that a corrupt length cannot exhaust memory. */
#define LS_MAX_RECORD_BYTES (64u << 20)
#define LS_MAX_CHUNK_RAW    (16u << 20)

/* ---- crc32c.c ---- */
uint32_t nn__logstore_crc32c(uint32_t crc, const void *p, size_t n);

/* ---- map.c: open-addressing map from byte strings to pointers. Keys are not copied:
 * each value owns its key and must outlive its slot. ---- */
struct nn__ls_slot {
  const char *key;
  size_t klen;
  uint64_t hash;
  void *val;
};
struct nn__ls_map {
  struct nn__ls_slot *slots;
  size_t cap; /* power of two, or 0 */
  size_t n;
};
void *nn__logstore_map_get(const struct nn__ls_map *m, const char *key, size_t klen);
int nn__logstore_map_put(struct nn__ls_map *m, const char *key, size_t klen, void *val);
void *nn__logstore_map_del(struct nn__ls_map *m, const char *key, size_t klen);
void nn__logstore_map_fini(struct nn__ls_map *m);

/* ---- varints (LEB128, zigzag for signed) ---- */
static inline int ls_put_uvarint(struct nn_buf *b, uint64_t v)
{
  uint8_t tmp[10];
  size_t n = 0;
  while (v >= 0x80) {
    tmp[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  tmp[n++] = (uint8_t)v;
  return nn_buf_append(b, tmp, n);
}
static inline int ls_put_varint(struct nn_buf *b, int64_t v)
{
  return ls_put_uvarint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}
/* Reads a uvarint from p[*i..n); false on truncation or overlong encoding. */
static inline bool ls_get_uvarint(const uint8_t *p, size_t n, size_t *i, uint64_t *out)
{
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (*i >= n)
      return false;
    uint8_t c = p[(*i)++];
    if (shift == 63 && c > 1)
      return false;
    v |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) {
      *out = v;
      return true;
    }
  }
  return false;
}
static inline bool ls_get_varint(const uint8_t *p, size_t n, size_t *i, int64_t *out)
{
  uint64_t u;
  if (!ls_get_uvarint(p, n, i, &u))
    return false;
  *out = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
  return true;
}
/* Reads a uvarint length and checks that many bytes follow. */
static inline bool ls_get_bytes(const uint8_t *p, size_t n, size_t *i, const uint8_t **s,
                                size_t *len)
{
  uint64_t l;
  if (!ls_get_uvarint(p, n, i, &l) || l > n - *i)
    return false;
  *s = p + *i;
  *len = (size_t)l;
  *i += (size_t)l;
  return true;
}
static inline void ls_put_u32(uint8_t *p, uint32_t v)
{
  for (int k = 0; k < 4; k++)
    p[k] = (uint8_t)(v >> (8 * k));
}
static inline uint32_t ls_get_u32(const uint8_t *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void ls_put_u64(uint8_t *p, uint64_t v)
{
  for (int k = 0; k < 8; k++)
    p[k] = (uint8_t)(v >> (8 * k));
}
static inline uint64_t ls_get_u64(const uint8_t *p)
{
  return (uint64_t)ls_get_u32(p) | (uint64_t)ls_get_u32(p + 4) << 32;
}

/* ---- one entry in transit: line and its encoded metadata block ---- */
struct nn__ls_ent {
  int64_t ts;
  const char *line;
  size_t len;
  const uint8_t *meta; /* uvarint count, then (uvarint len, bytes) name/value pairs */
  size_t mlen;
};
/* Validates an encoded metadata block (bounded counts, lengths in range). */
bool nn__logstore_meta_valid(const uint8_t *p, size_t n);

/* ---- head block: entries sorted by ts, bytes in one buffer ---- */
struct nn__ls_hentry {
  int64_t ts;
  uint32_t off; /* line at buf+off, metadata block right after it */
  uint32_t len;
  uint32_t mlen;
};
struct nn__ls_head {
  struct nn__ls_hentry *e;
  size_t n, cap;
  uint8_t *buf;
  size_t blen, bcap;
  int64_t created_ns, last_ns; /* wall clock of first and last append */
  uint64_t first_seq;          /* WAL seq of the first record in this head */
};

/* ---- chunk: a compressed, immutable block of one stream ---- */
struct nn__ls_chunk {
  int64_t min_t, max_t;
  uint64_t max_seq; /* highest WAL seq whose entries it holds */
  uint32_t entries;
  uint32_t raw_len;
  uint8_t *data; /* zstd frame, owned */
  size_t len;
  int64_t period; /* chunk file it lives in (period start, ns) */
  int64_t pmax_t; /* largest max_t of this chunk and all before it in the stream's array */
};

/* A chunk record as read from a file or buffer; pointers into the input. */
struct nn__ls_chunk_rec {
  const char *tenant;
  size_t tenant_len;
  const char *labels;
  size_t labels_len;
  int64_t min_t, max_t;
  uint64_t max_seq;
  uint32_t entries, raw_len;
  const uint8_t *data;
  size_t len;
};
#define LS_CHUNK_MAGIC     0x434c4e4eu /* "NNLC" little-endian */
#define LS_CHUNK_FIXED_HDR 52          /* magic..labels_len, see docs/format/logstore.md */

/* Parses one chunk record at p[0..n). *consumed is its size. NN_ECORRUPT on any
 * inconsistency, NN_EAGAIN if more bytes are needed (a torn tail). */
int nn__logstore_chunk_rec_decode(const uint8_t *p, size_t n, struct nn__ls_chunk_rec *out,
                                  size_t *consumed);
/* Decompresses a chunk body into out (reset first), checking its length is raw_len. */
int nn__logstore_chunk_decompress(const uint8_t *data, size_t len, uint32_t raw_len,
                                  struct nn_buf *out);
/* Iterates a raw chunk body: returns 1 with *e filled, 0 at the end, NN_ECORRUPT. */
struct nn__ls_body_iter {
  const uint8_t *p;
  size_t n, i;
  int64_t prev;
  bool started; /* the first timestamp is relative to 0 and may be negative */
};
int nn__logstore_body_next(struct nn__ls_body_iter *it, struct nn__ls_ent *e);
/* Appends one entry to a raw chunk body. */
int nn__logstore_body_put(struct nn_buf *b, int64_t *prev, const struct nn__ls_ent *e);

/* ---- dedup.c: duplicate checks against cut chunks (decoded on demand, LRU cache) ---- */
struct nn__ls_dchunk;
struct nn__ls_dcache {
  struct nn__ls_dchunk *e;
  size_t n, cap;
  uint64_t clock;
  size_t budget; /* raw bytes the current batch may still decode */
};
struct nn__ls_stream;
/* 1 when a chunk of st holds an entry with e's timestamp and line bytes, else 0. A chunk
 * that cannot be decoded is logged and skipped, one past the batch's budget is counted and
 * skipped: the entry is then kept. */
int nn__logstore_dedup_find(struct nn_logstore *s, const struct nn__ls_stream *st,
                            const struct nn__ls_ent *e);
/* Starts a batch: resets the decode budget that bounds its duplicate checks. */
void nn__logstore_dedup_batch(struct nn_logstore *s);
/* Drops the cached decoding of the chunk whose data is about to be freed. */
void nn__logstore_dedup_forget(struct nn_logstore *s, const uint8_t *data);
void nn__logstore_dedup_fini(struct nn_logstore *s);

/* ---- streams and tenants ---- */
struct nn__ls_tenant;
struct nn__ls_stream {
  uint32_t id;
  struct nn__ls_tenant *tenant;
  char *key; /* canonical label text, map key */
  size_t keylen;
  struct nn_label *labels; /* point into one allocation after the array */
  size_t nlabels;
  struct nn__ls_head head;
  struct nn__ls_chunk *chunks;
  size_t nchunks, cchunks;
  int64_t min_t, max_t; /* over head and chunks; min_t > max_t when empty */
  uint64_t last_seq;    /* newest WAL seq that touched this stream */
  uint64_t flushed_seq; /* entries up to this seq are in chunks */
};

struct nn__ls_postings {
  char *value;
  uint32_t *ids; /* sorted */
  size_t n, cap;
};
struct nn__ls_lname {
  char *name;
  struct nn__ls_map values; /* value -> struct nn__ls_postings */
};
struct nn__ls_tenant {
  char *name;
  struct nn__ls_map streams; /* key text -> stream */
  struct nn__ls_map index;   /* label name -> struct nn__ls_lname */
  size_t nstreams;
};

/* ---- idempotency keys: LRU of tenant "\0" key ---- */
struct nn__ls_key {
  char *k;
  size_t klen;
  uint64_t seq;
  struct nn__ls_key *prev, *next; /* prev = older */
};

/* ---- chunk files, one per period ---- */
struct nn__ls_period {
  int64_t start;
  uint32_t live; /* chunks in memory that came from / went to this file */
  bool dirty;    /* written since the last fsync */
};

/* ---- WAL ---- */
struct nn__ls_seg {
  uint32_t id;
  uint64_t first_seq; /* batch records in it have seq >= first_seq */
  uint64_t last_seq;  /* highest batch seq written to it (first_seq - 1 if none) */
};
struct nn__ls_waiter {
  uint64_t pos; /* durable once synced_pos >= pos */
  nn_logstore_done_cb cb;
  void *ud;
  struct nn__ls_waiter *next;
};
/* Work for the fsync worker besides the WAL: chunk files to fsync, then WAL segments to
 * unlink (only after those chunks are durable). */
struct nn__ls_job {
  char **fsync_paths;
  size_t nfsync;
  char **unlink_paths;
  size_t nunlink;
  struct nn__ls_job *next;
};

struct nn__ls_wal {
  int fd;
  struct nn__ls_seg *segs; /* on disk, oldest first; the last is current */
  size_t nsegs, csegs;
  size_t seg_bytes, snapshot_bytes;
  uint64_t next_seq;
  bool relog; /* a WAL write failed: duplicates of what it held are logged again (stream.c) */

  /* Shared with the worker, under mu. Positions count bytes ever written. */
  pthread_mutex_t mu;
  pthread_cond_t wake, done;
  pthread_t thread;
  bool have_thread, stop, sync_now;
  uint64_t written_pos, synced_pos;
  int64_t first_unsynced_ms; /* monotonic, when written_pos first passed synced_pos */
  int *retired;              /* fds of rotated segments, fsynced and closed by the worker */
  size_t nretired, cretired;
  struct nn__ls_job *jobs, *jobs_tail;
  int error;       /* sticky fsync/write failure */
  uint64_t fsyncs; /* rounds that fsynced the current segment */

  struct nn__ls_waiter *waiters, *waiters_tail; /* loop thread only */
  void *async;                                  /* uv_async_t *, when a loop is given */
  void *idle; /* uv_idle_t *, armed while a wait has not been handed to the worker yet */
};

struct nn_logstore {
  struct nn_logstore_config cfg;
  char *dir, *wal_dir, *chunk_dir;
  struct nn__ls_map tenants;
  struct nn__ls_stream **by_id;
  size_t nids, cids;
  uint32_t *free_ids;
  size_t nfree, cfree;
  struct nn__ls_period *periods;
  size_t nperiods, cperiods;
  struct nn__ls_map keys;
  struct nn__ls_key *key_old, *key_new;
  size_t nkeys;
  struct nn__ls_wal wal;
  struct nn_logstore_stats st;
  bool replaying;
  struct nn_buf rec;  /* WAL record being built */
  struct nn_buf raw;  /* chunk body scratch */
  struct nn_buf meta; /* metadata encoding scratch */
  struct nn__ls_dcache dcache;
  void *metric_refs; /* see metrics.c */
};

/* stream.c */
struct nn__ls_tenant *nn__logstore_tenant(struct nn_logstore *s, const char *name, bool create);
int nn__logstore_stream_get(struct nn_logstore *s, struct nn__ls_tenant *t, const char *ltext,
                            size_t llen, const struct nn_label *lset, size_t nlset, bool create,
                            bool enforce_limit, struct nn__ls_stream **out, char *err,
                            size_t errlen);
void nn__logstore_stream_remove(struct nn_logstore *s, struct nn__ls_stream *st);
int nn__logstore_key_add(struct nn_logstore *s, const char *tenant, const char *key, size_t klen,
                         uint64_t seq);
/* Applies one stream's entries of a batch (append or replay). Accepted entries are
 * appended to the WAL record in s->rec when wal is true. */
int nn__logstore_apply(struct nn_logstore *s, struct nn__ls_stream *st, const struct nn__ls_ent *e,
                       uint64_t seq, bool replay, struct nn_logstore_append_result *res);
/* Applies a WAL batch record's payload (after the type byte). NN_ECORRUPT on bad content. */
int nn__logstore_replay_batch(struct nn_logstore *s, const uint8_t *p, size_t n);
void nn__logstore_fail(struct nn_logstore_append_result *res, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* chunk.c */
int nn__logstore_cut(struct nn_logstore *s, struct nn__ls_stream *st);
int nn__logstore_chunks_load(struct nn_logstore *s, char *err, size_t errlen);
void nn__logstore_chunk_drop(struct nn_logstore *s, struct nn__ls_stream *st, size_t idx);
int nn__logstore_retention(struct nn_logstore *s, int64_t now_ns);
int nn__logstore_period_path(const struct nn_logstore *s, int64_t start, struct nn_buf *out);

/* wal.c */
int nn__logstore_wal_open(struct nn_logstore *s, char *err, size_t errlen);
void nn__logstore_wal_close(struct nn_logstore *s);
/* Writes the record in s->rec (type byte first) and returns its end position. */
int nn__logstore_wal_write(struct nn_logstore *s, uint8_t type, uint64_t *pos);
int nn__logstore_wal_wait(struct nn_logstore *s, uint64_t pos, nn_logstore_done_cb cb, void *ud);
int nn__logstore_wal_sync(struct nn_logstore *s);
void nn__logstore_wal_submit(struct nn_logstore *s, struct nn__ls_job *job);
int nn__logstore_wal_truncate(struct nn_logstore *s);
uint64_t nn__logstore_wal_oldest_seq(const struct nn_logstore *s);
#define LS_REC_BATCH 1
#define LS_REC_KEYS  2

/* selector.c: a parsed LogQL log query */
enum nn__ls_filter_type { LS_FILTER_CONTAINS, LS_FILTER_NOT_CONTAINS, LS_FILTER_RE, LS_FILTER_NRE };
struct nn__ls_filter {
  enum nn__ls_filter_type type;
  char *s;
  size_t len;
  void *re; /* pcre2_code * */
  void *md; /* pcre2_match_data * */
};
struct nn__ls_pipeline;
struct nn__ls_query {
  struct nn_matcher *m;
  size_t nm;
  struct nn__ls_filter *f;
  size_t nf;
  struct nn__ls_pipeline *pl; /* parser, label filter, drop/keep and unwrap stages, or NULL */
  size_t nfirst; /* f[0, nfirst) run before the stages; the rest follow a line_format */
};
/* Parses query text; on failure returns NN_EINVAL with "parse error at line L, col C: ..."
 * in err. q is always safe to pass to nn__logstore_query_fini. */
int nn__logstore_query_parse(const char *text, size_t len, struct nn__ls_query *q, char *err,
                             size_t errlen);
/* The same for text[from, len): positions in err count from text[0], so a log query inside
 * a metric query is reported where it stands. */
/* The LogQL parsers' shared pieces: a "parse error at line L, col C: ..." message for
 * offset `at` of s[0, n) (returns NN_EINVAL), and the offset after whitespace and
 * # comments from i. */
int nn__logstore_vparse_fail(const char *s, size_t n, size_t at, char *err, size_t errlen,
                             const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));
size_t nn__logstore_skip_ws(const char *s, size_t n, size_t i);

/* "],\"stats\":{...}}}" closing a query_range answer, for log and metric results alike. */
int nn__logstore_write_stats_tail(struct nn_buf *out, const struct nn_logstore_query_stats *st);

int nn__logstore_query_parse_span(const char *text, size_t from, size_t len, struct nn__ls_query *q,
                                  char *err, size_t errlen);
void nn__logstore_query_fini(struct nn__ls_query *q);
bool nn__logstore_filters_match(const struct nn__ls_query *q, const char *line, size_t len);
/* One line filter. */
bool nn__logstore_filter_match(const struct nn__ls_filter *f, const char *line, size_t len);

/* selector.c: a "..." or `...` string at s[*i] into out (NUL-terminated), for the stage
 * parser; NN_EINVAL with a positioned message. */
int nn__logstore_parse_str(const char *s, size_t n, size_t *i, struct nn_buf *out, char *err,
                           size_t errlen);

/* ---- pipeline.c: LogQL stages after the line filters (the subset in docs/loki-api.md).
 * Line filters stay in nn__ls_query.f; those before any line_format run first (no other
 * stage changes the line), those after one are stages that see the formatted line. */
#define LS_MAX_STAGES 64
enum nn__ls_conv { LS_CONV_NONE, LS_CONV_FLOAT, LS_CONV_DURATION, LS_CONV_BYTES };
/* Parses one stage at s[*i] (the '|' that starts it) into q->pl, creating it. NN_EINVAL with
 * "parse error at line L, col C: ..." in err. */
int nn__logstore_stage_parse(const char *s, size_t n, size_t *i, struct nn__ls_query *q, char *err,
                             size_t errlen);
void nn__logstore_pipeline_free(struct nn__ls_pipeline *pl);
/* Whether a line_format stage was parsed: line filters after it become stages (the filter
 * stays owned by the query). */
bool nn__logstore_pipeline_formats(const struct nn__ls_pipeline *pl);
int nn__logstore_stage_add_filter(struct nn__ls_query *q, const struct nn__ls_filter *f, size_t at,
                                  const char *s, size_t n, char *err, size_t errlen);
/* The unwrap stage: its conversion (LS_CONV_NONE without one) and label. */
enum nn__ls_conv nn__logstore_pipeline_unwrap(const struct nn__ls_pipeline *pl, const char **label);

/* Per-query run state: the label set of the line being processed, in scratch buffers that
 * are reused from line to line. Growth is added to *mem and refused past max. */
struct nn__ls_xlabel {
  uint32_t name, value; /* offsets of NUL-terminated strings in the arena */
  uint32_t hash;        /* of the name, compared before the bytes */
};
struct nn__ls_prun {
  const struct nn__ls_pipeline *pl;
  const struct nn_label *base;
  size_t nbase;
  uint8_t *del; /* base label deleted (drop/keep) */
  size_t cdel;
  char *a; /* arena: extracted names and values, error details */
  size_t alen, acap;
  struct nn__ls_xlabel *x;
  size_t nx, cx;
  /* An index of x by name hash once a line has many labels (a hostile JSON line with 40,000
   * keys must not cost 40,000^2 comparisons): slots of this generation hold an x index. */
  struct nn__ls_xslot {
    uint32_t gen, idx;
  } * ht;
  size_t hcap, hn; /* slots; x entries indexed (SIZE_MAX: stale after a removal) */
  uint32_t gen;
  const char *err; /* __error__ value, or NULL */
  uint32_t det;    /* __error_details__ offset in the arena, or UINT32_MAX */
  char *pfx;       /* JSON key prefix */
  size_t plen, pcap;
  struct nn_label *out; /* the final label set */
  size_t cout;
  struct nn_buf key; /* name\0value\0... of the final label set */
  size_t *mem, max;
  char *lb[2]; /* line_format output, double-buffered */
  size_t lcap[2];
  int cur;
  const char *line; /* the line after the stages (line_format changes it) */
  size_t llen;
};
void nn__logstore_prun_init(struct nn__ls_prun *r, const struct nn__ls_pipeline *pl, size_t *mem,
                            size_t max);
void nn__logstore_prun_fini(struct nn__ls_prun *r);
/* Runs the stages up to the unwrap over one line of a stream with labels base: 1 when it
 * passes, 0 when a label filter drops it, NN_ELIMIT/NN_ENOMEM. */
int nn__logstore_prun_line(struct nn__ls_prun *r, const struct nn_label *base, size_t nbase,
                           const char *line, size_t len);
/* After nn__logstore_prun_line: converts the unwrapped label (SampleExtractionErr on
 * failure) and runs the filters after unwrap: 1 with *v, 0 when dropped, < 0 on error. */
int nn__logstore_prun_unwrap(struct nn__ls_prun *r, double *v);
/* The line's final label set, sorted, in r->out, and its key in r->key. With groups (by or
 * without a range aggregation's list) and no error, only the grouped labels. */
int nn__logstore_prun_labels(struct nn__ls_prun *r, char *const *groups, size_t ngroups,
                             bool grouped, bool without, size_t *n);
/* Loki's parsers of label values: Go's time.ParseDuration (ns) and go-humanize's ParseBytes. */
bool nn__logstore_parse_go_duration(const char *s, size_t n, int64_t *out);
bool nn__logstore_parse_bytes(const char *s, size_t n, uint64_t *out);

/* query.c: the tenant's streams matching every matcher with data in [start, end), sorted by
 * label set; *out is malloc'd. */
int nn__logstore_select_streams(struct nn_logstore *s, const struct nn__ls_tenant *t,
                                const struct nn_matcher *ms, size_t nm, int64_t start, int64_t end,
                                struct nn__ls_stream ***out, size_t *nout);

/* metric.c: a parsed LogQL metric query (the subset in docs/loki-api.md). */
enum nn__ls_mtype { LS_M_NUM, LS_M_RANGE, LS_M_AGG, LS_M_BIN };
enum nn__ls_rfn {
  LS_RF_COUNT,
  LS_RF_RATE, /* with unwrap: the sum of the values per second */
  LS_RF_BYTES,
  LS_RF_BYTES_RATE,
  LS_RF_ABSENT,
  /* over unwrapped values */
  LS_RF_SUM,
  LS_RF_AVG,
  LS_RF_MAX,
  LS_RF_MIN,
  LS_RF_FIRST,
  LS_RF_LAST,
  LS_RF_STDVAR,
  LS_RF_STDDEV,
  LS_RF_QUANTILE,
  LS_RF_RATE_COUNTER
};
enum nn__ls_agg {
  LS_AG_SUM,
  LS_AG_COUNT,
  LS_AG_MIN,
  LS_AG_MAX,
  LS_AG_AVG,
  LS_AG_TOPK,
  LS_AG_BOTTOMK
};
struct nn__ls_mexpr {
  enum nn__ls_mtype type;
  size_t pos;                  /* byte offset in the query text */
  double num;                  /* LS_M_NUM */
  enum nn__ls_rfn fn;          /* LS_M_RANGE */
  double phi;                  /* LS_M_RANGE: quantile_over_time's parameter */
  struct nn__ls_query q;       /* LS_M_RANGE: the log pipeline */
  int64_t range_ns, offset_ns; /* LS_M_RANGE */
  enum nn__ls_agg op;          /* LS_M_AGG */
  bool grouped, without;       /* LS_M_AGG, LS_M_RANGE (unwrap): by/without, which one */
  char **labels;               /* LS_M_AGG, LS_M_RANGE: its label names */
  size_t nlabels;
  int64_t k;                  /* LS_M_AGG: topk/bottomk parameter */
  char binop;                 /* LS_M_BIN: + - * / % ^ */
  struct nn__ls_mexpr *a, *b; /* LS_M_AGG: a; LS_M_BIN: a op b (one of them a number) */
};
/* Parses a metric query; NN_EINVAL with "parse error at line L, col C: ..." in err. On
 * success *out is a tree whose root is not a number. */
int nn__logstore_metric_parse(const char *text, size_t len, struct nn__ls_mexpr **out, char *err,
                              size_t errlen);
void nn__logstore_mexpr_free(struct nn__ls_mexpr *e);

#endif
