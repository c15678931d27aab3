/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's shipping machinery: one implementation for log entries (Loki push) and
 * samples (remote write). Producers add records with an ack token; the ship groups them into
 * batches closed by size and age, sends every batch to each destination (own queue, codec,
 * retries with full-jitter backoff, disk spool for outages) and hands the tokens back in
 * order once every destination acknowledged the batch or a policy dropped it. Runs on the
 * caller's libuv loop; nothing here is thread-safe. */
#ifndef NN_AGENT_SHIP_SHIP_H
#define NN_AGENT_SHIP_SHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/compress.h"

struct nn_buf;
struct nn_metrics;
struct nn_ship;

/* What the producer gets back when a record is done: for logs {file id, end offset}, so the
 * tailer checkpoints only acknowledged bytes. Opaque to the ship. */
struct nn_ship_token {
  uint64_t id;
  uint64_t off;
};

/* How a batch's records ended. */
enum nn_ship_outcome {
  NN_SHIP_DELIVERED = 0, /* every destination answered 2xx */
  NN_SHIP_DROPPED = 1,   /* at least one destination dropped it (4xx, drop_oldest, corrupt) */
};

/* Owner callbacks. A batch is done for a destination when it answered 2xx, when a policy
 * dropped it, or (with ack_spooled) when it is durably (fsynced) in that destination's spool,
 * which from then on guarantees its delivery. on_ack gets the tokens of one batch in the order they
 * were added, with adjacent tokens of the same id coalesced into the last one (offsets only grow),
 * so a tailer checkpoints token.off for token.id. recovered is true for batches read back from a
 * spool written by an earlier run. on_pause/on_resume: stop/start producing (back-pressure). */
struct nn_ship_owner {
  void (*on_ack)(void *ud, const struct nn_ship_token *tokens, size_t n,
                 enum nn_ship_outcome outcome, bool recovered);
  void (*on_pause)(void *ud);
  void (*on_resume)(void *ud);
  void *ud;
};

/* A payload type: records are (key, piece) pairs, grouped per key into one protobuf message
 * each, the way Loki push groups entries per stream and remote write samples per series:
 *   body := { outer_field: { [key_field:] key, piece_field: piece, piece_field: piece... } }
 * key_field 0 inserts the key bytes as they are (remote write: pre-encoded Label fields). */
struct nn_ship_payload {
  const char *name;         /* "loki", "remote_write" */
  const char *content_type; /* Content-Type header value */
  const char *extra_header; /* one fixed "Name: value" header or NULL */
  uint32_t outer_field;
  uint32_t key_field;
  uint32_t piece_field;
};

/* Loki push: key = stream selector text ({a="b"}), piece = an encoded EntryAdapter. */
extern const struct nn_ship_payload nn_ship_payload_loki;
/* Remote write 1.0: key = encoded Label fields (field 1 of TimeSeries, sorted), piece = an
 * encoded Sample. */
extern const struct nn_ship_payload nn_ship_payload_remote_write;

/* Piece encoders for callers that have no wire encoder at hand. Append to out. */
int nn_ship_loki_entry_encode(struct nn_buf *out, int64_t ts_ns, const char *line, size_t len);
int nn_ship_rw_sample_encode(struct nn_buf *out, double value, int64_t ts_ms);
/* Appends one remote-write Label field (TimeSeries.labels); call in label-name order. */
int nn_ship_rw_label_encode(struct nn_buf *out, const char *name, const char *value);

/* The transport: sends one request and reports the outcome once through complete. After
 * cancel(call) returns, complete is never called for that call. */
struct nn_ship_request {
  const char *url;
  const void *body;
  size_t body_len;
  const char *const *headers; /* "Name: value", NUL-terminated strings */
  size_t nheaders;
  int64_t timeout_ms;
};

struct nn_ship_response {
  int rc;                 /* 0 if an HTTP status arrived, else NN_ETIMEDOUT, -ECONNREFUSED... */
  int status;             /* HTTP status when rc == 0 */
  int64_t retry_after_ms; /* parsed Retry-After, -1 when absent */
  const char *body;       /* response body (may be NULL), logged on rejection */
  size_t body_len;
};

/* One request as the transport sees it; embedded in ship state, stable until completion or
 * cancel. transport_data is the transport's to use between send and completion. */
struct nn_ship_call {
  void *transport_data;
};
typedef void (*nn_ship_complete_fn)(struct nn_ship_call *call, const struct nn_ship_response *r);

struct nn_ship_transport {
  /* Starts sending req (copy what must outlive the call); complete(call, r) later, from the
   * loop, never from inside send. Returns 0 or a negative code (treated as a connection
   * error). */
  int (*send)(void *ctx, const struct nn_ship_request *req, struct nn_ship_call *call,
              nn_ship_complete_fn complete);
  void (*cancel)(void *ctx, struct nn_ship_call *call);
  void *ctx;
};

enum nn_ship_full_policy {
  NN_SHIP_FULL_BLOCK = 0,       /* pause producers; never drop */
  NN_SHIP_FULL_DROP_OLDEST = 1, /* delete the oldest spooled batches; count every record */
};

struct nn_ship_dest_config {
  const char *name; /* [A-Za-z0-9_.-]{1,64}: metrics label and spool directory */
  const char *url;
  enum nn_codec codec;        /* snappy for Loki/Prometheus; zstd/lz4 toward nines */
  const char *tenant;         /* X-Scope-OrgID, or NULL */
  const char *bearer_token;   /* Authorization: Bearer ..., or NULL */
  const char *const *headers; /* extra "Name: value" headers */
  size_t nheaders;
  int64_t timeout_ms;     /* per request; default 30 s */
  uint32_t max_inflight;  /* concurrent requests, 1..16; default 2 */
  uint64_t mem_queue_max; /* bytes of queued batches before they spill to disk; 8 MiB */
  uint64_t spool_max;     /* bytes of spool segments; 1 GiB; 0 disables the spool */
  enum nn_ship_full_policy full_policy;
  int64_t backoff_min_ms; /* first retry delay; 0 = the ship's backoff_min_ms */
  int64_t backoff_max_ms; /* cap on the exponential delay (how long a destination that came
                             back may wait for the next try); 0 = the ship's backoff_max_ms */
};

struct nn_ship_config {
  const char *name; /* source name for batch ids, logs and metrics ("logs", "metrics") */
  const struct nn_ship_payload *payload;
  const char *data_dir;          /* spool and dead-letter root; NULL disables both */
  size_t batch_size;             /* uncompressed payload bytes that close a batch; 1 MiB */
  int64_t batch_wait_ms;         /* age that closes a non-empty batch; 1 s */
  int64_t backoff_min_ms;        /* first retry delay; 1 s (a destination may override it) */
  int64_t backoff_max_ms;        /* cap on the exponential delay; 60 s (likewise) */
  int64_t retry_after_max_ms;    /* cap on an honoured Retry-After; 5 min */
  uint32_t max_retries;          /* 0 = retry forever (default) */
  uint64_t segment_size;         /* spool segment rotation size; 16 MiB */
  int64_t fsync_interval_ms;     /* spool fsync period (on a worker); 1 s */
  uint32_t max_unacked_batches;  /* batches awaiting acks before producers pause; 65536 */
  uint32_t deadletter_max_files; /* 100 */
  uint64_t deadletter_max_bytes; /* 64 MiB */
  uint64_t seed;                 /* jitter seed; 0 picks one from the clock */
  bool ack_spooled;        /* also ack a batch once it is fsynced in every pending destination's
                              spool, and let close wait for requests in flight (see nn_ship_close) */
  bool spool_failing_only; /* a healthy destination whose memory queue is full pauses the
                              producers instead of spilling batches to its spool: the spool
                              only takes batches while a destination is failing (and at
                              close). For producers whose source is itself durable (a tailer
                              re-reads its file), so a slow but healthy receiver costs no disk
                              round trip. Default false: spill whenever memory is full. */
  const struct nn_ship_dest_config *dests;
  size_t ndests;
  struct nn_ship_owner owner;
  struct nn_ship_transport transport;
  struct nn_metrics *metrics; /* may be NULL; must outlive the ship */
};

/* Fill a config with the defaults documented above (pointers NULL, no destinations). */
void nn_ship_config_defaults(struct nn_ship_config *c);
void nn_ship_dest_config_defaults(struct nn_ship_dest_config *d);

/* Creates a ship on loop: validates cfg (NN_ECONFIG with a logged reason), opens each
 * destination's spool under <data_dir>/spool/<source>/<name>/ (sources never share a spool)
 * (recovering a torn tail) and starts draining recovered batches. Strings in cfg are copied. */
int nn_ship_create(uv_loop_t *loop, const struct nn_ship_config *cfg, struct nn_ship **out);

/* Adds one record to the open batch: key/piece as the payload type defines, token handed
 * back through on_ack (NULL: nothing to hand back, e.g. scraped samples). NN_ETOOBIG if key+piece
 * cannot fit a batch; NN_EAGAIN when the ship is paused past its hard memory limit (keep the record
 * and retry after on_resume); NN_ECANCELED after close. */
int nn_ship_add(struct nn_ship *s, const void *key, size_t key_len, const void *piece,
                size_t piece_len, const struct nn_ship_token *token);
/* Closes the open batch now (e.g. before shutdown). */
int nn_ship_flush(struct nn_ship *s);
/* True while producers are asked to pause. */
bool nn_ship_paused(const struct nn_ship *s);

/* Stops the ship: closes the open batch, then cancels requests in flight, writes the queued
 * and unfinished batches to the spool (when there is one and it has room) and fsyncs it.
 * With ack_spooled it first waits (at most 5 s) for requests in flight to answer, and after
 * the fsync acknowledges every batch the spool now holds through on_ack (possibly from
 * inside this call), so the producer's last checkpoint covers them and a restart sends them
 * from the spool instead of producing them again; without it no owner callback runs after
 * close starts. No nn_ship_add is accepted after close starts and no on_pause/on_resume
 * runs. on_closed runs from the loop once libuv released every handle; the ship is freed
 * after it returns. */
void nn_ship_close(struct nn_ship *s, void (*on_closed)(void *ud), void *ud);

/* Per destination state and counters (also exported on /metrics). */
struct nn_ship_dest_stats {
  uint64_t batches_sent;    /* 2xx answers */
  uint64_t batches_failed;  /* non-2xx answers and connection errors */
  uint64_t batches_retried; /* resends */
  uint64_t batches_deadlettered;
  uint64_t records_sent;
  uint64_t bytes_sent;       /* wire bytes of accepted requests */
  uint64_t dropped_rejected; /* records dropped after a non-retryable 4xx */
  uint64_t dropped_full;     /* records dropped by drop_oldest */
  uint64_t dropped_corrupt;  /* records lost to spool corruption */
  uint64_t dropped_retries;  /* records dropped after max_retries */
  uint64_t spool_bytes;
  uint64_t spool_segments;
  uint64_t mem_bytes; /* queued in memory */
  uint32_t inflight;
  uint32_t failures;     /* consecutive failures; 0 = healthy */
  int64_t last_delay_ms; /* last backoff delay chosen, -1 never */
};
int nn_ship_dest_stats(const struct nn_ship *s, size_t i, struct nn_ship_dest_stats *out);

/* The HTTP transport over common/http_client.h. Bodies are copied per request, so a
 * cancelled call never reads freed memory; the client must outlive the transport's
 * outstanding requests (nn_http_client_destroy completes them). */
struct nn_http_client;
struct nn_ship_http;
/* max_response_bytes caps the error text read from a receiver (0 = 64 KiB). NULL on OOM. */
struct nn_ship_http *nn_ship_http_create(struct nn_http_client *client, size_t max_response_bytes);
/* Fills t with the transport's functions, for nn_ship_config.transport. */
void nn_ship_http_transport(struct nn_ship_http *h, struct nn_ship_transport *t);
/* Frees the transport; requests still outstanding free themselves when they complete. */
void nn_ship_http_destroy(struct nn_ship_http *h);

/* Backoff with full jitter: a delay uniform in [min, min(max, min * 2^(attempt-1))]
 * milliseconds for attempt >= 1; *rng is a xorshift state (never 0). */
int64_t nn_ship_backoff_delay(int64_t min_ms, int64_t max_ms, uint32_t attempt, uint64_t *rng);
/* Parses a Retry-After value: delta-seconds or an HTTP-date relative to now_unix_ms.
 * Returns milliseconds (0 for a date in the past) or -1 when unparsable. */
int64_t nn_ship_retry_after_parse(const char *v, size_t len, int64_t now_unix_ms);

#endif
