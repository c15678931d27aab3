/* SPDX-License-Identifier: Apache-2.0 */
/* The ship's core: closing batches, one queue per destination (memory, then spool, then
 * in-flight slots), retries, dead letters, back-pressure and in-order acks. Every owner
 * callback runs from notify(), at the end of a loop callback, never from inside
 * nn_ship_add, so a producer never sees re-entrant calls. */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <xxhash.h>

#include "agent/ship/internal.h"
#include "common/compress.h"
#include "common/error.h"
#include "common/log.h"
#include "common/metrics.h"

#define MAX_DESTS      16
#define MAX_INFLIGHT   16
#define ID_MAX         160
#define BATCH_OVERHEAD 256  /* bookkeeping charged per queued batch */
#define DRAIN_MS       5000 /* longest a close waits for requests in flight */
#define BATCH_POOL     2    /* spare batches kept with their buffers: no allocation per batch */

enum slot_state { SLOT_FREE, SLOT_SENDING, SLOT_WAIT, SLOT_DONE };

enum drop_reason { DROP_REJECTED, DROP_FULL, DROP_CORRUPT, DROP_RETRIES, DROP_NREASONS };
static const char *const drop_reason_names[DROP_NREASONS] = {"rejected", "spool_full",
                                                             "spool_corrupt", "max_retries"};

/* A closed batch, shared by every destination that still holds it in memory. */
struct batch {
  struct nn_ship *s;
  struct batch *next_free; /* in the ship's pool of spare batches */
  uint32_t refs;
  uint64_t seq;
  uint32_t nrecords;
  struct nn_buf payload;
  char id[ID_MAX];
  size_t id_len;
};

/* Outcome bookkeeping of one live batch until every destination is done with it. */
struct ack_entry {
  uint64_t seq;
  uint32_t pending;
  uint32_t done_mask; /* destinations that finished (delivered, dropped or durably spooled) */
  uint32_t nrecords;
  bool dropped;
  struct nn_ship_token *tokens;
  uint32_t ntokens;
};

/* Acks of batches from an earlier run's spool, queued until notify(). */
struct orphan_ack {
  struct orphan_ack *next;
  bool dropped;
  uint32_t ntokens;
  struct nn_ship_token tokens[];
};

struct dest;

struct slot {
  struct nn_ship_call call; /* first: the transport's handle */
  struct dest *d;
  enum slot_state state;
  bool dropped;
  bool from_spool;
  bool orphan;
  struct nn__ship_pos start, end;
  uint64_t seq;
  uint32_t nrecords;
  struct batch *batch;         /* when it came from memory */
  struct nn_buf body;          /* compressed request body, kept for resends */
  struct nn_ship_token *otoks; /* orphan tokens */
  uint32_t notoks;
  uint32_t attempts;
  uint64_t sent_at;
  char idhdr[ID_MAX + 32];
};

struct dest_metrics {
  struct nn_metric *sent, *failed, *retried, *deadlettered, *records, *bytes;
  struct nn_metric *dropped[DROP_NREASONS];
  struct nn_metric *spool_bytes, *spool_segments, *queue_bytes, *inflight, *failures, *delay;
  struct nn_metric *latency, *spool_errors;
};

/* A live batch appended to the spool, acknowledged once an fsync covers append number gen. */
struct durable_wait {
  uint64_t seq, gen;
};

struct dest {
  struct nn_ship *s;
  uint32_t index;
  char *name, *url;
  enum nn_codec codec;
  int64_t timeout_ms;
  int64_t backoff_min_ms, backoff_max_ms; /* resolved: the destination's or the ship's */
  uint32_t max_inflight;
  uint64_t mem_max;
  enum nn_ship_full_policy policy;
  char **hdr_store;
  const char **hdrs; /* fixed headers, then the slot's batch id */
  size_t nhdrs;
  struct batch **mq; /* memory queue ring */
  size_t mq_head, mq_count, mq_cap;
  uint64_t mem_bytes;
  struct nn__ship_spool *spool;
  uint64_t spool_last_live; /* newest seq written to the spool this run */
  struct durable_wait *dw;  /* ring of spooled live batches awaiting fsync */
  size_t dw_head, dw_count, dw_cap;
  bool spool_has_live;
  bool spool_broken;  /* the last spool write failed (disk full, I/O error): pause at mem_max */
  struct slot *slots; /* ring in issue order */
  uint32_t slot_head, nslots;
  uint32_t failures;
  uv_timer_t timer;
  bool timer_armed;
  struct nn_ship_dest_stats st;
  struct dest_metrics m;
};

struct nn_ship {
  uv_loop_t *loop;
  char *name;
  const struct nn_ship_payload *payload;
  size_t batch_size;
  int64_t batch_wait_ms, backoff_min_ms, backoff_max_ms, retry_after_max_ms, fsync_ms;
  uint32_t max_retries;
  struct nn_ship_owner owner;
  struct nn_ship_transport tp;
  uint64_t rng;

  struct nn__ship_builder builder;
  struct nn_ship_token *toks;
  uint32_t ntoks, toks_cap;
  struct nn_ship_token first_tok;
  uint64_t next_seq;

  struct batch *pool; /* spare batches, payload storage kept */
  uint32_t npool;
  struct ack_entry *ring;
  size_t ring_head, ring_count, ring_cap, ring_max;
  uint64_t ring_head_seq;
  struct orphan_ack *orphans, **orphans_tail;

  struct dest *dests;
  size_t ndests;
  struct nn__ship_deadletter *dl;

  uv_timer_t age_timer, kick_timer, sync_timer;
  bool paused, closing, draining, ack_spooled, spool_failing_only, pause_logged;
  int open_handles;
  void (*on_closed)(void *ud);
  void *closed_ud;
  struct nn_metric *m_paused;
};

static void pump(struct dest *d);
static void notify(struct nn_ship *s);
static void on_kick(uv_timer_t *t);

/* Owner callbacks never run inside nn_ship_add: they wait for this zero-delay timer. */
static void kick(struct nn_ship *s)
{
  if (!s->closing)
    uv_timer_start(&s->kick_timer, on_kick, 0, 0);
}

static struct dest *dest_of_timer(uv_timer_t *t)
{
  return (struct dest *)((char *)t - offsetof(struct dest, timer));
}

/* ---- batches and the ack ring ---- */

static void batch_unref(struct batch *b)
{
  if (!b || --b->refs > 0)
    return;
  struct nn_ship *s = b->s;
  if (s && s->npool < BATCH_POOL && !s->closing) {
    /* Kept for the next batch: a 1 MiB payload buffer is not unmapped and mapped again
     * (and grown by doubling) for every batch. */
    nn_buf_reset(&b->payload);
    b->next_free = s->pool;
    s->pool = b;
    s->npool++;
    return;
  }
  nn_buf_fini(&b->payload);
  free(b);
}

static struct batch *batch_new(struct nn_ship *s)
{
  struct batch *b = s->pool;
  if (b) {
    s->pool = b->next_free;
    s->npool--;
  } else {
    if (!(b = malloc(sizeof(*b))))
      return NULL;
    nn_buf_init(&b->payload, NN_SHIP_SPOOL_MAX_RAW);
  }
  struct nn_buf payload = b->payload;
  memset(b, 0, sizeof(*b));
  b->payload = payload;
  b->s = s;
  b->refs = 1;
  return b;
}

static uint64_t batch_cost(const struct batch *b)
{
  return b->payload.len + BATCH_OVERHEAD;
}

static struct ack_entry *ring_at(struct nn_ship *s, uint64_t seq)
{
  if (seq < s->ring_head_seq || seq - s->ring_head_seq >= s->ring_count)
    return NULL;
  return &s->ring[(s->ring_head + (seq - s->ring_head_seq)) % s->ring_cap];
}

static int ring_grow(struct nn_ship *s)
{
  size_t nc = s->ring_cap ? s->ring_cap * 2 : 64;
  if (nc > s->ring_max)
    nc = s->ring_max;
  struct ack_entry *r = malloc(nc * sizeof(*r));
  if (!r)
    return NN_ENOMEM;
  for (size_t i = 0; i < s->ring_count; i++)
    r[i] = s->ring[(s->ring_head + i) % s->ring_cap];
  free(s->ring);
  s->ring = r;
  s->ring_cap = nc;
  s->ring_head = 0;
  return 0;
}

/* Destination d finished with live batch seq: delivered, dropped, or durably spooled. A
 * spooled batch finishes again when it is delivered later; only the first counts. */
static void ack_done(struct dest *d, uint64_t seq, bool dropped)
{
  struct ack_entry *e = ring_at(d->s, seq);
  if (!e || e->pending == 0 || (e->done_mask & (1u << d->index)))
    return;
  e->done_mask |= 1u << d->index;
  e->pending--;
  e->dropped |= dropped;
}

/* Remembers that live batch seq is in d's spool; it is acknowledged to the producer once an
 * fsync covers it (the spool then guarantees it, so the producer's checkpoint may pass it).
 * Without memory for the note the batch is simply acknowledged on delivery. */
static void durable_push(struct dest *d, uint64_t seq)
{
  if (!d->s->ack_spooled)
    return;
  if (d->dw_count == d->dw_cap) {
    size_t nc = d->dw_cap ? d->dw_cap * 2 : 64;
    struct durable_wait *n = malloc(nc * sizeof(*n));
    if (!n)
      return;
    for (size_t i = 0; i < d->dw_count; i++)
      n[i] = d->dw[(d->dw_head + i) % d->dw_cap];
    free(d->dw);
    d->dw = n;
    d->dw_cap = nc;
    d->dw_head = 0;
  }
  d->dw[(d->dw_head + d->dw_count) % d->dw_cap] =
      (struct durable_wait){seq, nn__ship_spool_appends(d->spool)};
  d->dw_count++;
}

/* Acknowledges the spooled batches an fsync has made durable. */
static void durable_apply(struct dest *d)
{
  uint64_t durable = nn__ship_spool_durable(d->spool);
  while (d->dw_count > 0 && d->dw[d->dw_head].gen <= durable) {
    ack_done(d, d->dw[d->dw_head].seq, false);
    d->dw_head = (d->dw_head + 1) % d->dw_cap;
    d->dw_count--;
  }
}

static void on_durable(void *ud)
{
  struct dest *d = ud;
  durable_apply(d);
  if (!d->s->closing)
    notify(d->s);
}

static void queue_orphan_ack(struct nn_ship *s, const struct nn_ship_token *t, uint32_t n,
                             bool dropped)
{
  struct orphan_ack *a = malloc(sizeof(*a) + (size_t)n * sizeof(*t));
  if (!a)
    return; /* the producer re-reads from its older checkpoint: a duplicate, not a loss */
  a->next = NULL;
  a->dropped = dropped;
  a->ntokens = n;
  if (n)
    memcpy(a->tokens, t, (size_t)n * sizeof(*t));
  *s->orphans_tail = a;
  s->orphans_tail = &a->next;
}

/* ---- metrics ---- */

static void dest_gauges(struct dest *d)
{
  if (d->spool) {
    d->st.spool_bytes = nn__ship_spool_bytes(d->spool);
    d->st.spool_segments = nn__ship_spool_segments(d->spool);
  }
  d->st.mem_bytes = d->mem_bytes;
  d->st.failures = d->failures;
  uint32_t inflight = 0;
  for (uint32_t i = 0; i < d->nslots; i++)
    inflight += d->slots[(d->slot_head + i) % d->max_inflight].state == SLOT_SENDING;
  d->st.inflight = inflight;
  if (!d->m.spool_bytes)
    return;
  nn_metric_set(d->m.spool_bytes, (double)d->st.spool_bytes);
  nn_metric_set(d->m.spool_segments, (double)d->st.spool_segments);
  nn_metric_set(d->m.queue_bytes, (double)d->mem_bytes);
  nn_metric_set(d->m.inflight, inflight);
  nn_metric_set(d->m.failures, d->failures);
  nn_metric_set(d->m.delay, d->st.last_delay_ms < 0 ? 0 : (double)d->st.last_delay_ms / 1000.0);
}

static void count_drop(struct dest *d, enum drop_reason r, uint32_t nrecords)
{
  uint64_t *f[DROP_NREASONS] = {&d->st.dropped_rejected, &d->st.dropped_full,
                                &d->st.dropped_corrupt, &d->st.dropped_retries};
  *f[r] += nrecords;
  if (d->m.dropped[r])
    nn_metric_add(d->m.dropped[r], nrecords);
}

static void inc(struct nn_metric *m, uint64_t *field, uint64_t by)
{
  *field += by;
  if (m)
    nn_metric_add(m, (double)by);
}

static int register_metrics(struct nn_ship *s, struct nn_metrics *mx, struct dest *d)
{
  char l[256], lr[320];
  int w = snprintf(l, sizeof(l), "source=\"%s\",destination=\"%s\"", s->name, d->name);
  if (w < 0 || (size_t)w >= sizeof(l))
    return NN_ETOOBIG;
  struct dest_metrics *m = &d->m;
#define C(f, n, h) (m->f = nn_metrics_counter(mx, "nines_agent_ship_" n, h, l))
#define G(f, n, h) (m->f = nn_metrics_gauge(mx, "nines_agent_ship_" n, h, l))
  C(sent, "batches_sent_total", "Batches a destination accepted (2xx).");
  C(failed, "batches_failed_total", "Requests that failed: non-2xx answers and connection errors.");
  C(retried, "batches_retried_total", "Batches sent again after a failure.");
  C(deadlettered, "batches_deadlettered_total",
    "Batches rejected for good and written to the dead-letter directory.");
  C(records, "records_sent_total", "Records in accepted batches.");
  C(bytes, "bytes_sent_total", "Request body bytes of accepted batches, as sent (compressed).");
  G(spool_bytes, "spool_bytes", "Bytes of spool segments on disk.");
  G(spool_segments, "spool_segments", "Spool segment files on disk.");
  G(queue_bytes, "queue_bytes", "Bytes of batches queued in memory.");
  G(inflight, "inflight_requests", "Requests in flight.");
  G(failures, "backoff_failures", "Consecutive failures; 0 when the destination is healthy.");
  G(delay, "backoff_delay_seconds", "Last backoff delay chosen.");
  C(spool_errors, "spool_write_errors_total",
    "Batches the spool could not write (disk full, I/O error); they stay in memory.");
#undef C
#undef G
  static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  m->latency = nn_metrics_histogram(mx, "nines_agent_ship_send_duration_seconds",
                                    "Time from sending a request to its answer.", l, bounds,
                                    sizeof(bounds) / sizeof(bounds[0]));
  for (int r = 0; r < DROP_NREASONS; r++) {
    w = snprintf(lr, sizeof(lr), "%s,reason=\"%s\"", l, drop_reason_names[r]);
    if (w < 0 || (size_t)w >= sizeof(lr))
      return NN_ETOOBIG;
    m->dropped[r] =
        nn_metrics_counter(mx, "nines_agent_ship_records_dropped_total",
                           "Records dropped, by reason; nothing is dropped silently.", lr);
  }
  if (!m->sent || !m->failed || !m->retried || !m->deadlettered || !m->records || !m->bytes ||
      !m->spool_bytes || !m->spool_segments || !m->queue_bytes || !m->inflight || !m->failures ||
      !m->delay || !m->latency || !m->spool_errors || !m->dropped[DROP_NREASONS - 1])
    return NN_ENOMEM;
  return 0;
}

/* ---- destination queue ---- */

static struct slot *slot_at(struct dest *d, uint32_t i)
{
  return &d->slots[(d->slot_head + i) % d->max_inflight];
}

static int mq_push(struct dest *d, struct batch *b)
{
  if (d->mq_count == d->mq_cap) {
    size_t nc = d->mq_cap ? d->mq_cap * 2 : 16;
    struct batch **q = malloc(nc * sizeof(*q));
    if (!q)
      return NN_ENOMEM;
    for (size_t i = 0; i < d->mq_count; i++)
      q[i] = d->mq[(d->mq_head + i) % d->mq_cap];
    free(d->mq);
    d->mq = q;
    d->mq_cap = nc;
    d->mq_head = 0;
  }
  d->mq[(d->mq_head + d->mq_count) % d->mq_cap] = b;
  d->mq_count++;
  d->mem_bytes += batch_cost(b);
  b->refs++;
  return 0;
}

static struct batch *mq_pop(struct dest *d)
{
  struct batch *b = d->mq[d->mq_head];
  d->mq_head = (d->mq_head + 1) % d->mq_cap;
  d->mq_count--;
  d->mem_bytes -= batch_cost(b);
  return b; /* the queue's reference moves to the caller */
}

static void on_spool_drop(void *ud, const struct nn__ship_rec *r)
{
  struct dest *d = ud;
  count_drop(d, DROP_FULL, r->nrecords);
  if (r->orphan)
    queue_orphan_ack(d->s, r->tokens, r->ntokens, true);
  else
    ack_done(d, r->seq, true);
  NN_LOG_RL(NN_LOG_WARN, "ship",
            "destination %s: spool full, dropped the oldest batch %.*s (%" PRIu32
            " records; full_policy drop_oldest)",
            d->name, (int)r->id_len, r->id, r->nrecords);
}

static int spool_batch_at(struct dest *d, struct batch *b, struct nn__ship_pos *start,
                          struct nn__ship_pos *end)
{
  struct nn_ship *s = d->s;
  struct ack_entry *e = ring_at(s, b->seq);
  struct nn__ship_rec r = {
      .seq = b->seq,
      .nrecords = b->nrecords,
      .ntokens = e ? e->ntokens : 0,
      .tokens = e ? e->tokens : NULL,
      .id = b->id,
      .id_len = b->id_len,
      .payload = b->payload.data,
      .payload_len = b->payload.len,
  };
  uint64_t need = nn__ship_spool_record_bound(r.payload_len, r.ntokens, r.id_len);
  while (d->policy == NN_SHIP_FULL_DROP_OLDEST && !nn__ship_spool_has_room(d->spool, need)) {
    if (nn__ship_spool_drop_oldest(d->spool, on_spool_drop, d) < 0)
      break;
  }
  int rc = start ? nn__ship_spool_append_read(d->spool, &r, start, end)
                 : nn__ship_spool_append(d->spool, &r);
  if (rc == 0) {
    d->spool_last_live = b->seq;
    d->spool_has_live = true;
    durable_push(d, b->seq);
    d->spool_broken = false;
  } else if (rc != NN_ELIMIT) {
    d->spool_broken = true;
    if (d->m.spool_errors)
      nn_metric_inc(d->m.spool_errors);
    NN_LOG_RL(NN_LOG_WARN, "ship", "destination %s: cannot spool batch %s: %s", d->name, b->id,
              nn_strerror(rc));
  }
  return rc;
}

static int spool_batch(struct dest *d, struct batch *b)
{
  return spool_batch_at(d, b, NULL, NULL);
}

/* A failed batch taken from memory becomes durable while it waits for its retry, when the
 * spool holds nothing newer; it then counts as read from the spool, so it is neither sent
 * twice nor lost on a restart. */
static void spool_failed_slot(struct dest *d, struct slot *sl)
{
  if (!d->spool || !sl->batch || sl->from_spool || !nn__ship_spool_drained(d->spool))
    return;
  if (spool_batch_at(d, sl->batch, &sl->start, &sl->end) < 0)
    return;
  sl->from_spool = true;
  batch_unref(sl->batch);
  sl->batch = NULL;
}

/* Moves the oldest memory batches to the spool while the memory queue is over its cap (unless
 * spool_failing_only) or the destination is failing. Memory batches are always newer than spooled
 * ones, so moving from the head of one to the tail of the other keeps the order. */
static void balance(struct dest *d)
{
  bool spill_full = !d->s->spool_failing_only;
  while (d->spool && d->mq_count > 0 &&
         ((spill_full && d->mem_bytes > d->mem_max) || d->failures > 0)) {
    if (spool_batch(d, d->mq[d->mq_head]) < 0)
      break;
    batch_unref(mq_pop(d));
  }
}

static bool dest_full(const struct dest *d)
{
  const struct nn_ship *s = d->s;
  if (d->mem_bytes < d->mem_max)
    return false;
  if (!d->spool || d->spool_broken)
    return true; /* a broken spool takes nothing: memory is all there is */
  if (s->spool_failing_only && d->failures == 0)
    return true; /* healthy but slower than the producer: wait, do not spill */
  if (d->policy == NN_SHIP_FULL_DROP_OLDEST)
    return false;
  return !nn__ship_spool_has_room(d->spool, 2 * nn__ship_spool_record_bound(s->batch_size, 0, 0));
}

static bool dest_relaxed(const struct dest *d)
{
  const struct nn_ship *s = d->s;
  if (d->mem_bytes <= d->mem_max / 2)
    return true;
  if (s->spool_failing_only && d->failures == 0)
    return false;
  return d->spool && !d->spool_broken &&
         (d->policy == NN_SHIP_FULL_DROP_OLDEST ||
          nn__ship_spool_has_room(d->spool, 4 * nn__ship_spool_record_bound(s->batch_size, 0, 0)));
}

static bool want_pause(const struct nn_ship *s)
{
  if (s->ring_count + 1 >= s->ring_max)
    return true;
  for (size_t i = 0; i < s->ndests; i++)
    if (dest_full(&s->dests[i]))
      return true;
  return false;
}

/* True when a pause is only a wait for healthy destinations to drain their memory queues. */
static bool healthy_wait(const struct nn_ship *s)
{
  if (!s->spool_failing_only || s->ring_count + 1 >= s->ring_max)
    return false;
  for (size_t i = 0; i < s->ndests; i++) {
    if (s->dests[i].failures > 0)
      return false;
  }
  return true;
}

static bool can_resume(const struct nn_ship *s)
{
  if (s->ring_count >= s->ring_max * 3 / 4)
    return false;
  for (size_t i = 0; i < s->ndests; i++)
    if (!dest_relaxed(&s->dests[i]))
      return false;
  return true;
}

/* ---- sending ---- */

static void on_complete(struct nn_ship_call *call, const struct nn_ship_response *r);
static void handle_result(struct dest *d, struct slot *sl, const struct nn_ship_response *r);
static void on_backoff(uv_timer_t *t);

static void send_slot(struct dest *d, struct slot *sl)
{
  struct nn_ship *s = d->s;
  if (sl->attempts > 0)
    inc(d->m.retried, &d->st.batches_retried, 1);
  sl->attempts++;
  sl->state = SLOT_SENDING;
  sl->sent_at = uv_now(s->loop);
  sl->call.transport_data = NULL;
  d->hdrs[d->nhdrs] = sl->idhdr;
  struct nn_ship_request req = {
      .url = d->url,
      .body = sl->body.data,
      .body_len = sl->body.len,
      .headers = d->hdrs,
      .nheaders = d->nhdrs + 1,
      .timeout_ms = d->timeout_ms,
  };
  int rc = s->tp.send(s->tp.ctx, &req, &sl->call, on_complete);
  if (rc < 0) {
    /* A connection error, handled without recursing into pump: the backoff timer (or a
     * zero-delay one when the batch was dropped) carries on from the loop. */
    struct nn_ship_response res = {.rc = rc, .retry_after_ms = -1};
    handle_result(d, sl, &res);
    if (!d->timer_armed) {
      d->timer_armed = true;
      uv_timer_start(&d->timer, on_backoff, 0, 0);
    }
  }
}

static int fill_slot(struct dest *d, struct slot *sl, const void *payload, size_t len,
                     const char *id, size_t id_len)
{
  nn_buf_reset(&sl->body);
  int rc = nn_compress(d->codec, payload, len, &sl->body);
  if (rc < 0) {
    NN_LOG_RL(NN_LOG_ERROR, "ship", "destination %s: compressing batch %.*s: %s", d->name,
              (int)id_len, id, nn_strerror(rc));
    return rc;
  }
  snprintf(sl->idhdr, sizeof(sl->idhdr), "X-Nines-Batch-Id: %.*s", (int)id_len, id);
  return 0;
}

static void slot_release(struct slot *sl)
{
  batch_unref(sl->batch);
  sl->batch = NULL;
  free(sl->otoks);
  sl->otoks = NULL;
  sl->notoks = 0;
  sl->state = SLOT_FREE;
  sl->attempts = 0;
  sl->dropped = sl->from_spool = sl->orphan = false;
  nn_buf_reset(&sl->body);
}

/* Takes the next batch in order (spool first, then memory) into a new slot. Returns false
 * when there is nothing to send. */
static bool next_slot(struct dest *d)
{
  struct nn_ship *s = d->s;
  struct slot *sl = slot_at(d, d->nslots);
  while (d->spool && !nn__ship_spool_drained(d->spool)) {
    struct nn__ship_rec r;
    struct nn__ship_pos a, b;
    uint64_t lost[2] = {1, 0};
    int rc = nn__ship_spool_read(d->spool, &r, &a, &b, lost);
    if (rc == NN_ENOTFOUND)
      break;
    if (rc == NN_ECORRUPT) {
      for (uint64_t q = lost[0]; q <= lost[1] && lost[0] <= lost[1]; q++) {
        struct ack_entry *e = ring_at(s, q);
        count_drop(d, DROP_CORRUPT, e ? e->nrecords : 0);
        ack_done(d, q, true);
        if (q == UINT64_MAX)
          break;
      }
      if (d->nslots == 0)
        nn__ship_spool_ack(d->spool, b);
      continue;
    }
    if (rc < 0)
      return false; /* out of memory: try again on the next event */
    if (fill_slot(d, sl, r.payload, r.payload_len, r.id, r.id_len) < 0) {
      /* Cannot happen short of OOM; leave the record for a later attempt. */
      return false;
    }
    sl->from_spool = true;
    sl->start = a;
    sl->end = b;
    sl->orphan = r.orphan;
    sl->seq = r.seq;
    sl->nrecords = r.nrecords;
    if (r.orphan && r.ntokens) {
      sl->otoks = malloc((size_t)r.ntokens * sizeof(*sl->otoks));
      if (sl->otoks) {
        memcpy(sl->otoks, r.tokens, (size_t)r.ntokens * sizeof(*sl->otoks));
        sl->notoks = r.ntokens;
      }
    }
    d->nslots++;
    return true;
  }
  if (d->mq_count == 0)
    return false;
  struct batch *bt = d->mq[d->mq_head];
  if (fill_slot(d, sl, bt->payload.data, bt->payload.len, bt->id, bt->id_len) < 0)
    return false;
  sl->batch = mq_pop(d);
  sl->seq = bt->seq;
  sl->nrecords = bt->nrecords;
  d->nslots++;
  return true;
}

static void pump(struct dest *d)
{
  struct nn_ship *s = d->s;
  if (s->closing || s->draining || d->timer_armed)
    return;
  uint32_t limit = d->failures ? 1 : d->max_inflight;
  uint32_t active = 0;
  for (uint32_t i = 0; i < d->nslots; i++)
    active += slot_at(d, i)->state == SLOT_SENDING;
  for (uint32_t i = 0; i < d->nslots && active < limit; i++) {
    struct slot *sl = slot_at(d, i);
    if (sl->state == SLOT_WAIT) {
      send_slot(d, sl);
      active++;
      if (d->timer_armed)
        return;
    }
  }
  while (active < limit && d->nslots < d->max_inflight && next_slot(d)) {
    send_slot(d, slot_at(d, d->nslots - 1));
    active++;
    if (d->timer_armed)
      break;
  }
  dest_gauges(d);
}

/* Releases finished slots from the head, in issue order, so cursors and acks advance in
 * the order batches were produced. */
static void retire(struct dest *d)
{
  struct nn_ship *s = d->s;
  while (d->nslots > 0 && slot_at(d, 0)->state == SLOT_DONE) {
    struct slot *sl = slot_at(d, 0);
    if (sl->from_spool)
      nn__ship_spool_ack(d->spool, sl->end);
    if (sl->orphan)
      queue_orphan_ack(s, sl->otoks, sl->notoks, sl->dropped);
    else
      ack_done(d, sl->seq, sl->dropped);
    slot_release(sl);
    d->slot_head = (d->slot_head + 1) % d->max_inflight;
    d->nslots--;
  }
}

static bool any_sending(const struct nn_ship *s);
static void finish_close(struct nn_ship *s);

static void on_backoff(uv_timer_t *t)
{
  struct dest *d = dest_of_timer(t);
  d->timer_armed = false;
  retire(d);
  pump(d);
  dest_gauges(d);
  notify(d->s);
  if (d->s->draining && !any_sending(d->s))
    finish_close(d->s);
}

static const char *batch_id_of(const struct slot *sl)
{
  return sl->idhdr + strlen("X-Nines-Batch-Id: ");
}

static void dead_letter(struct dest *d, struct slot *sl, int status, const char *why,
                        size_t why_len)
{
  struct nn_ship *s = d->s;
  inc(d->m.deadlettered, &d->st.batches_deadlettered, 1);
  if (!s->dl)
    return;
  int rc =
      nn__ship_deadletter_write(s->dl, d->name, batch_id_of(sl), status, nn_codec_name(d->codec),
                                sl->body.data, sl->body.len, why, why_len);
  if (rc < 0)
    NN_LOG_RL(NN_LOG_WARN, "ship", "destination %s: writing dead letter: %s", d->name,
              nn_strerror(rc));
}

static void on_complete(struct nn_ship_call *call, const struct nn_ship_response *r)
{
  struct slot *sl = (struct slot *)call;
  struct dest *d = sl->d;
  if (sl->state != SLOT_SENDING || d->s->closing)
    return;
  handle_result(d, sl, r);
  retire(d);
  pump(d);
  dest_gauges(d);
  notify(d->s);
  if (d->s->draining && !any_sending(d->s))
    finish_close(d->s);
}

/* Classifies one answer: 2xx done, 429/5xx/connection errors wait for a retry, anything
 * else is rejected for good (dead letter, counted, acked as dropped). */
static void handle_result(struct dest *d, struct slot *sl, const struct nn_ship_response *r)
{
  struct nn_ship *s = d->s;
  uint64_t now = uv_now(s->loop);
  if (d->m.latency)
    nn_metric_observe(d->m.latency, (double)(now - sl->sent_at) / 1000.0);
  const char *body = r->body ? r->body : "";
  int blen = r->body_len > 300 ? 300 : (int)r->body_len;
  while (blen > 0 && (body[blen - 1] == '\n' || body[blen - 1] == '\r' || body[blen - 1] == ' '))
    blen--;
  bool ok = r->rc == 0 && r->status >= 200 && r->status < 300;
  bool retry = r->rc != 0 || r->status == 429 || (r->status >= 500 && r->status < 600);
  if (ok) {
    inc(d->m.sent, &d->st.batches_sent, 1);
    inc(d->m.records, &d->st.records_sent, sl->nrecords);
    inc(d->m.bytes, &d->st.bytes_sent, sl->body.len);
    if (d->failures)
      nn_info("ship", "destination %s: delivering again after %" PRIu32 " failures", d->name,
              d->failures);
    d->failures = 0;
    sl->state = SLOT_DONE;
  } else if (retry && (s->max_retries == 0 || sl->attempts <= s->max_retries)) {
    inc(d->m.failed, &d->st.batches_failed, 1);
    d->failures++;
    sl->state = SLOT_WAIT;
    spool_failed_slot(d, sl);
    if (!d->timer_armed) {
      int64_t delay;
      if (r->rc == 0 && (r->status == 429 || r->status == 503) && r->retry_after_ms >= 0)
        delay =
            r->retry_after_ms < s->retry_after_max_ms ? r->retry_after_ms : s->retry_after_max_ms;
      else
        delay = nn_ship_backoff_delay(d->backoff_min_ms, d->backoff_max_ms, d->failures, &s->rng);
      d->st.last_delay_ms = delay;
      d->timer_armed = true;
      uv_timer_start(&d->timer, on_backoff, (uint64_t)delay, 0);
      if (r->rc != 0)
        NN_LOG_RL(NN_LOG_WARN, "ship", "destination %s (%s): %s; retrying in %" PRId64 " ms",
                  d->name, d->url, nn_strerror(r->rc), delay);
      else
        NN_LOG_RL(NN_LOG_WARN, "ship",
                  "destination %s (%s): HTTP %d %.*s; retrying in %" PRId64 " ms", d->name, d->url,
                  r->status, blen, body, delay);
    }
    balance(d);
  } else {
    enum drop_reason why = retry ? DROP_RETRIES : DROP_REJECTED;
    inc(d->m.failed, &d->st.batches_failed, 1);
    if (!retry)
      d->failures = 0; /* the destination answered: it is up */
    dead_letter(d, sl, r->rc == 0 ? r->status : 0, body, (size_t)blen);
    count_drop(d, why, sl->nrecords);
    NN_LOG_RL(NN_LOG_ERROR, "ship",
              "destination %s (%s) rejected batch %s (%" PRIu32 " records): HTTP %d %.*s; "
              "dropped without retry and kept in the dead-letter directory",
              d->name, d->url, batch_id_of(sl), sl->nrecords, r->status, blen, body);
    sl->dropped = true;
    sl->state = SLOT_DONE;
  }
}

/* ---- closing batches ---- */

static void make_id(struct nn_ship *s, struct batch *b, const struct nn_ship_token *last)
{
  uint8_t meta[40];
  nn__put64(meta, s->first_tok.id);
  nn__put64(meta + 8, s->first_tok.off);
  nn__put64(meta + 16, last->id);
  nn__put64(meta + 24, last->off);
  nn__put64(meta + 32, b->nrecords);
  uint64_t h =
      XXH3_64bits_withSeed(b->payload.data, b->payload.len, XXH3_64bits(meta, sizeof(meta)));
  int w = snprintf(b->id, sizeof(b->id), "%s:%016" PRIx64, s->name, h);
  b->id_len = (w < 0 || (size_t)w >= sizeof(b->id)) ? sizeof(b->id) - 1 : (size_t)w;
}

static int close_batch(struct nn_ship *s)
{
  if (s->builder.nrecords == 0)
    return 0;
  if (s->ring_count == s->ring_cap) {
    if (s->ring_cap >= s->ring_max)
      return NN_EAGAIN;
    if (ring_grow(s) < 0)
      return NN_ENOMEM;
  }
  struct batch *b = batch_new(s);
  if (!b)
    return NN_ENOMEM;
  b->seq = s->next_seq;
  b->nrecords = (uint32_t)s->builder.nrecords;
  int rc = nn__ship_builder_finish(&s->builder, &b->payload);
  if (rc < 0) {
    /* Only out of memory: these records are lost to the ship; their tokens are never acked,
     * so the producer's checkpoint stays before them. */
    nn_error("ship", "%s: encoding a batch of %" PRIu32 " records: %s", s->name, b->nrecords,
             nn_strerror(rc));
    s->ntoks = 0;
    batch_unref(b);
    return rc;
  }
  struct nn_ship_token last = s->ntoks ? s->toks[s->ntoks - 1] : s->first_tok;
  make_id(s, b, &last);
  struct ack_entry *e = &s->ring[(s->ring_head + s->ring_count) % s->ring_cap];
  if (s->ring_count == 0)
    s->ring_head_seq = b->seq;
  *e = (struct ack_entry){.seq = b->seq, .pending = (uint32_t)s->ndests, .nrecords = b->nrecords};
  if (s->ntoks) {
    e->tokens = malloc((size_t)s->ntoks * sizeof(*e->tokens));
    if (e->tokens) {
      memcpy(e->tokens, s->toks, (size_t)s->ntoks * sizeof(*e->tokens));
      e->ntokens = s->ntoks;
    }
  }
  s->ring_count++;
  s->next_seq++;
  s->ntoks = 0;
  uv_timer_stop(&s->age_timer);
  for (size_t i = 0; i < s->ndests; i++) {
    struct dest *d = &s->dests[i];
    if (mq_push(d, b) < 0) {
      /* Out of memory: treat as a dropped batch for this destination so acks still flow. */
      count_drop(d, DROP_FULL, b->nrecords);
      ack_done(d, b->seq, true);
      continue;
    }
    balance(d);
    pump(d);
  }
  batch_unref(b);
  return 0;
}

static void on_age(uv_timer_t *t)
{
  struct nn_ship *s = t->data;
  close_batch(s);
  notify(s);
}

static void on_kick(uv_timer_t *t)
{
  notify(t->data);
}

static void on_sync(uv_timer_t *t)
{
  struct nn_ship *s = t->data;
  for (size_t i = 0; i < s->ndests; i++)
    nn__ship_spool_sync(s->dests[i].spool, s->loop);
}

/* Hands finished batches' tokens to the owner, in order. */
static void deliver_acks(struct nn_ship *s)
{
  while (!s->closing && s->orphans) {
    struct orphan_ack *a = s->orphans;
    s->orphans = a->next;
    if (!s->orphans)
      s->orphans_tail = &s->orphans;
    if (s->owner.on_ack)
      s->owner.on_ack(s->owner.ud, a->tokens, a->ntokens,
                      a->dropped ? NN_SHIP_DROPPED : NN_SHIP_DELIVERED, true);
    free(a);
  }
  while (!s->closing && s->ring_count > 0 && s->ring[s->ring_head].pending == 0) {
    struct ack_entry e = s->ring[s->ring_head];
    s->ring_head = (s->ring_head + 1) % s->ring_cap;
    s->ring_count--;
    s->ring_head_seq++;
    if (s->owner.on_ack && e.ntokens)
      s->owner.on_ack(s->owner.ud, e.tokens, e.ntokens,
                      e.dropped ? NN_SHIP_DROPPED : NN_SHIP_DELIVERED, false);
    free(e.tokens);
  }
}

/* Runs owner callbacks: acks in order, then pause/resume. Callbacks may call back into the
 * ship (nn_ship_add), so state is re-read after each one. */
static void notify(struct nn_ship *s)
{
  deliver_acks(s);
  if (s->closing || s->draining)
    return;
  /* A batch whose close failed on a full ack ring closes once acks made room. */
  if (s->builder.nrecords > 0 && !uv_is_active((uv_handle_t *)&s->age_timer) &&
      s->ring_count < s->ring_max)
    close_batch(s);
  if (!s->paused && want_pause(s)) {
    s->paused = true;
    if (s->m_paused)
      nn_metric_set(s->m_paused, 1);
    /* Waiting for healthy destinations that are merely slower than the producer is routine
     * (spool_failing_only): logged at debug, unlike a pause for failures or a full spool. */
    s->pause_logged = !healthy_wait(s);
    if (s->pause_logged)
      nn_info("ship", "%s: pausing producers (queues or spool full)", s->name);
    else
      nn_debug("ship", "%s: pausing producers until the destinations catch up", s->name);
    if (s->owner.on_pause)
      s->owner.on_pause(s->owner.ud);
  } else if (s->paused && can_resume(s)) {
    s->paused = false;
    if (s->m_paused)
      nn_metric_set(s->m_paused, 0);
    if (s->pause_logged)
      nn_info("ship", "%s: resuming producers", s->name);
    else
      nn_debug("ship", "%s: resuming producers", s->name);
    if (s->owner.on_resume)
      s->owner.on_resume(s->owner.ud);
  }
}

/* ---- public API ---- */

void nn_ship_config_defaults(struct nn_ship_config *c)
{
  memset(c, 0, sizeof(*c));
  c->name = "ship";
  c->batch_size = 1u << 20;
  c->batch_wait_ms = 1000;
  c->backoff_min_ms = 1000;
  c->backoff_max_ms = 60000;
  c->retry_after_max_ms = 300000;
  c->segment_size = 16u << 20;
  c->fsync_interval_ms = 1000;
  c->max_unacked_batches = 65536;
  c->deadletter_max_files = 100;
  c->deadletter_max_bytes = 64u << 20;
}

void nn_ship_dest_config_defaults(struct nn_ship_dest_config *d)
{
  memset(d, 0, sizeof(*d));
  d->codec = NN_CODEC_SNAPPY;
  d->timeout_ms = 30000;
  d->max_inflight = 2;
  d->mem_queue_max = 8u << 20;
  d->spool_max = 1ull << 30;
  d->full_policy = NN_SHIP_FULL_BLOCK;
}

static bool name_ok(const char *n)
{
  size_t len = n ? strlen(n) : 0;
  if (len == 0 || len > 64)
    return false;
  for (size_t i = 0; i < len; i++) {
    char c = n[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-' || c == '.'))
      return false;
  }
  return strcmp(n, ".") != 0 && strcmp(n, "..") != 0;
}

static bool header_reserved(const char *h)
{
  static const char *const reserved[] = {
      "content-type:", "content-encoding:", "x-prometheus-remote-write-version:",
      "x-nines-batch-id:", "content-length:"};
  for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
    if (strncasecmp(h, reserved[i], strlen(reserved[i])) == 0)
      return true;
  return false;
}

static int validate(const struct nn_ship_config *c)
{
#define BAD(...)                                                                                   \
  do {                                                                                             \
    nn_error("ship", __VA_ARGS__);                                                                 \
    return NN_ECONFIG;                                                                             \
  } while (0)
  if (!name_ok(c->name))
    BAD("ship name %s: use 1-64 characters of [A-Za-z0-9_.-]", c->name ? c->name : "(null)");
  if (!c->payload)
    BAD("%s: no payload type", c->name);
  if (!c->transport.send || !c->transport.cancel)
    BAD("%s: no transport", c->name);
  if (c->ndests == 0 || c->ndests > MAX_DESTS)
    BAD("%s: %zu destinations; configure 1 to %d", c->name, c->ndests, MAX_DESTS);
  if (c->batch_size < 1024 || c->batch_size > (32u << 20))
    BAD("%s: batch_size %zu out of range 1KiB..32MiB", c->name, c->batch_size);
  if (c->batch_wait_ms < 1 || c->backoff_min_ms < 1 || c->backoff_max_ms < c->backoff_min_ms ||
      c->retry_after_max_ms < 0 || c->fsync_interval_ms < 1)
    BAD("%s: batch_wait, backoff and fsync intervals must be positive (min_backoff <= "
        "max_backoff)",
        c->name);
  if (c->max_unacked_batches < 4)
    BAD("%s: max_unacked_batches must be at least 4", c->name);
  for (size_t i = 0; i < c->ndests; i++) {
    const struct nn_ship_dest_config *d = &c->dests[i];
    if (!name_ok(d->name))
      BAD("%s: destination %zu: name %s: use 1-64 characters of [A-Za-z0-9_.-]", c->name, i,
          d->name ? d->name : "(null)");
    for (size_t j = 0; j < i; j++)
      if (strcmp(c->dests[j].name, d->name) == 0)
        BAD("%s: destination name %s used twice", c->name, d->name);
    if (!d->url || !*d->url)
      BAD("%s: destination %s: url is empty", c->name, d->name);
    if (d->codec < NN_CODEC_NONE || d->codec > NN_CODEC_LZ4)
      BAD("%s: destination %s: unknown codec", c->name, d->name);
    if (d->max_inflight < 1 || d->max_inflight > MAX_INFLIGHT)
      BAD("%s: destination %s: max_inflight %" PRIu32 " out of range 1..%d", c->name, d->name,
          d->max_inflight, MAX_INFLIGHT);
    if (d->timeout_ms < 1)
      BAD("%s: destination %s: timeout must be positive", c->name, d->name);
    int64_t bmin = d->backoff_min_ms ? d->backoff_min_ms : c->backoff_min_ms;
    int64_t bmax = d->backoff_max_ms ? d->backoff_max_ms : c->backoff_max_ms;
    if (d->backoff_min_ms < 0 || d->backoff_max_ms < 0 || bmax < bmin)
      BAD("%s: destination %s: backoff %" PRId64 " ms .. %" PRId64
          " ms: both must be positive and min_backoff <= max_backoff",
          c->name, d->name, bmin, bmax);
    for (size_t h = 0; h < d->nheaders; h++) {
      const char *hv = d->headers[h];
      const char *colon = hv ? strchr(hv, ':') : NULL;
      if (!colon || colon == hv || strpbrk(hv, "\r\n"))
        BAD("%s: destination %s: header %zu is not \"Name: value\"", c->name, d->name, h);
      if (header_reserved(hv))
        BAD("%s: destination %s: header %.*s is set by the agent and cannot be overridden", c->name,
            d->name, (int)(colon - hv), hv);
    }
    if ((d->tenant && strpbrk(d->tenant, "\r\n")) ||
        (d->bearer_token && strpbrk(d->bearer_token, "\r\n")))
      BAD("%s: destination %s: tenant and bearer token must be one line", c->name, d->name);
  }
  return 0;
#undef BAD
}

static void free_ship(struct nn_ship *s)
{
  if (!s)
    return;
  for (size_t i = 0; s->dests && i < s->ndests; i++) {
    struct dest *d = &s->dests[i];
    for (uint32_t k = 0; d->slots && k < d->max_inflight; k++) {
      slot_release(&d->slots[k]);
      nn_buf_fini(&d->slots[k].body);
    }
    free(d->slots);
    while (d->mq_count)
      batch_unref(mq_pop(d));
    free(d->mq);
    free(d->dw);
    nn__ship_spool_close(d->spool);
    for (size_t h = 0; d->hdr_store && d->hdr_store[h]; h++)
      free(d->hdr_store[h]);
    free(d->hdr_store);
    free(d->hdrs);
    free(d->name);
    free(d->url);
  }
  free(s->dests);
  while (s->pool) {
    struct batch *b = s->pool;
    s->pool = b->next_free;
    nn_buf_fini(&b->payload);
    free(b);
  }
  for (size_t i = 0; i < s->ring_count; i++)
    free(s->ring[(s->ring_head + i) % s->ring_cap].tokens);
  free(s->ring);
  while (s->orphans) {
    struct orphan_ack *a = s->orphans;
    s->orphans = a->next;
    free(a);
  }
  nn__ship_deadletter_close(s->dl);
  nn__ship_builder_fini(&s->builder);
  free(s->toks);
  free(s->name);
  free(s);
}

static int add_header(struct dest *d, size_t *n, const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b);
  char *h = malloc(la + lb + 1);
  if (!h)
    return NN_ENOMEM;
  memcpy(h, a, la);
  memcpy(h + la, b, lb + 1);
  d->hdr_store[*n] = h;
  d->hdrs[*n] = h;
  (*n)++;
  return 0;
}

static int setup_dest(struct nn_ship *s, const struct nn_ship_config *c, size_t i,
                      const char *data_dir)
{
  const struct nn_ship_dest_config *dc = &c->dests[i];
  struct dest *d = &s->dests[i];
  d->s = s;
  d->index = (uint32_t)i;
  d->codec = dc->codec;
  d->timeout_ms = dc->timeout_ms;
  d->backoff_min_ms = dc->backoff_min_ms ? dc->backoff_min_ms : s->backoff_min_ms;
  d->backoff_max_ms = dc->backoff_max_ms ? dc->backoff_max_ms : s->backoff_max_ms;
  d->max_inflight = dc->max_inflight;
  d->mem_max = dc->mem_queue_max;
  d->policy = dc->full_policy;
  d->st.last_delay_ms = -1;
  if (!(d->name = strdup(dc->name)) || !(d->url = strdup(dc->url)))
    return NN_ENOMEM;
  size_t maxh = dc->nheaders + 8;
  d->hdr_store = calloc(maxh + 1, sizeof(*d->hdr_store));
  d->hdrs = calloc(maxh + 1, sizeof(*d->hdrs));
  d->slots = calloc(d->max_inflight, sizeof(*d->slots));
  if (!d->hdr_store || !d->hdrs || !d->slots)
    return NN_ENOMEM;
  for (uint32_t k = 0; k < d->max_inflight; k++) {
    d->slots[k].d = d;
    nn_buf_init(&d->slots[k].body, nn_compress_bound(d->codec, NN_SHIP_SPOOL_MAX_RAW) + 64);
  }
  size_t n = 0;
  int rc = add_header(d, &n, "Content-Type: ", s->payload->content_type);
  if (rc == 0 && d->codec != NN_CODEC_NONE)
    rc = add_header(d, &n, "Content-Encoding: ", nn_codec_name(d->codec));
  if (rc == 0)
    rc = add_header(d, &n, "User-Agent: nines-agent/", NN_VERSION);
  if (rc == 0 && s->payload->extra_header)
    rc = add_header(d, &n, s->payload->extra_header, "");
  if (rc == 0 && dc->tenant && *dc->tenant)
    rc = add_header(d, &n, "X-Scope-OrgID: ", dc->tenant);
  if (rc == 0 && dc->bearer_token && *dc->bearer_token)
    rc = add_header(d, &n, "Authorization: Bearer ", dc->bearer_token);
  for (size_t h = 0; rc == 0 && h < dc->nheaders; h++)
    rc = add_header(d, &n, dc->headers[h], "");
  if (rc < 0)
    return rc;
  d->nhdrs = n;
  if (data_dir && dc->spool_max > 0) {
    char dir[4096];
    int w = snprintf(dir, sizeof(dir), "%s/spool/%s/%s", data_dir, c->name, dc->name);
    if (w < 0 || (size_t)w >= sizeof(dir))
      return NN_ETOOBIG;
    uint64_t seg = c->segment_size;
    if (seg > dc->spool_max / 8)
      seg = dc->spool_max / 8;
    if ((rc = nn__ship_spool_open(dir, dc->spool_max, seg, &d->spool)) < 0) {
      nn_error("ship", "destination %s: cannot open spool %s: %s", dc->name, dir, nn_strerror(rc));
      return rc;
    }
    nn__ship_spool_on_durable(d->spool, on_durable, d);
  }
  if (c->metrics && (rc = register_metrics(s, c->metrics, d)) < 0)
    return rc;
  dest_gauges(d);
  return 0;
}

int nn_ship_create(uv_loop_t *loop, const struct nn_ship_config *c, struct nn_ship **out)
{
  int rc;
  *out = NULL;
  if ((rc = validate(c)) < 0)
    return rc;
  struct nn_ship *s = calloc(1, sizeof(*s));
  if (!s)
    return NN_ENOMEM;
  s->loop = loop;
  s->payload = c->payload;
  s->batch_size = c->batch_size;
  s->batch_wait_ms = c->batch_wait_ms;
  s->backoff_min_ms = c->backoff_min_ms;
  s->backoff_max_ms = c->backoff_max_ms;
  s->retry_after_max_ms = c->retry_after_max_ms;
  s->fsync_ms = c->fsync_interval_ms;
  s->max_retries = c->max_retries;
  s->ack_spooled = c->ack_spooled;
  s->spool_failing_only = c->spool_failing_only;
  s->owner = c->owner;
  s->tp = c->transport;
  s->ring_max = c->max_unacked_batches;
  s->orphans_tail = &s->orphans;
  s->rng = c->seed;
  if (!s->rng) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s->rng = ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)s;
    if (!s->rng)
      s->rng = 1;
  }
  nn__ship_builder_init(&s->builder, c->payload, c->batch_size);
  if (!(s->name = strdup(c->name)) || !(s->dests = calloc(c->ndests, sizeof(*s->dests)))) {
    rc = NN_ENOMEM;
    goto fail;
  }
  s->ndests = c->ndests;
  if (c->data_dir) {
    char dir[4096];
    int w = snprintf(dir, sizeof(dir), "%s/deadletter/%s", c->data_dir, c->name);
    if (w < 0 || (size_t)w >= sizeof(dir)) {
      rc = NN_ETOOBIG;
      goto fail;
    }
    if ((rc = nn__ship_deadletter_open(dir, c->deadletter_max_files, c->deadletter_max_bytes,
                                       &s->dl)) < 0)
      goto fail;
  }
  for (size_t i = 0; i < c->ndests; i++)
    if ((rc = setup_dest(s, c, i, c->data_dir)) < 0)
      goto fail;
  if (c->metrics) {
    char l[128];
    snprintf(l, sizeof(l), "source=\"%s\"", s->name);
    s->m_paused = nn_metrics_gauge(c->metrics, "nines_agent_ship_paused",
                                   "1 while producers are paused by back-pressure.", l);
  }
  /* Nothing below fails, so no handle needs closing on an error path. */
  uv_timer_init(loop, &s->age_timer);
  uv_timer_init(loop, &s->kick_timer);
  uv_timer_init(loop, &s->sync_timer);
  s->age_timer.data = s->kick_timer.data = s->sync_timer.data = s;
  s->open_handles = 3;
  for (size_t i = 0; i < s->ndests; i++) {
    uv_timer_init(loop, &s->dests[i].timer);
    s->dests[i].timer.data = s;
    s->open_handles++;
  }
  uv_timer_start(&s->sync_timer, on_sync, (uint64_t)s->fsync_ms, (uint64_t)s->fsync_ms);
  for (size_t i = 0; i < s->ndests; i++)
    pump(&s->dests[i]); /* batches recovered from an earlier run */
  *out = s;
  return 0;
fail:
  free_ship(s);
  return rc;
}

static void add_token(struct nn_ship *s, const struct nn_ship_token *t)
{
  if (s->ntoks > 0 && s->toks[s->ntoks - 1].id == t->id) {
    s->toks[s->ntoks - 1] = *t; /* a later offset of the same source supersedes */
    return;
  }
  if (s->ntoks == s->toks_cap) {
    uint32_t nc = s->toks_cap ? s->toks_cap * 2 : 64;
    struct nn_ship_token *n = realloc(s->toks, (size_t)nc * sizeof(*n));
    if (!n) {
      /* Coalesce into the last slot instead: acks then under-report, never over-report. */
      return;
    }
    s->toks = n;
    s->toks_cap = nc;
  }
  s->toks[s->ntoks++] = *t;
}

static bool over_hard_limit(const struct nn_ship *s)
{
  for (size_t i = 0; i < s->ndests; i++)
    if (s->dests[i].mem_bytes >= 2 * s->dests[i].mem_max + s->batch_size)
      return true;
  return false;
}

int nn_ship_add(struct nn_ship *s, const void *key, size_t key_len, const void *piece,
                size_t piece_len, const struct nn_ship_token *token)
{
  if (s->closing || s->draining)
    return NN_ECANCELED;
  size_t cost = nn__ship_builder_cost(&s->builder, key_len, piece_len);
  if (cost > s->batch_size)
    return NN_ETOOBIG;
  if (s->paused && over_hard_limit(s))
    return NN_EAGAIN;
  int rc;
  if (s->builder.nrecords > 0 && s->builder.est + cost > s->batch_size) {
    if ((rc = close_batch(s)) < 0) {
      kick(s);
      return rc == NN_ENOMEM ? rc : NN_EAGAIN;
    }
  }
  bool was_empty = s->builder.nrecords == 0;
  if ((rc = nn__ship_builder_add(&s->builder, key, key_len, piece, piece_len)) < 0)
    return rc;
  if (was_empty)
    s->first_tok = token ? *token : (struct nn_ship_token){0, 0};
  if (token)
    add_token(s, token);
  if (was_empty)
    uv_timer_start(&s->age_timer, on_age, (uint64_t)s->batch_wait_ms, 0);
  if (s->builder.est >= s->batch_size)
    close_batch(s);
  if (!s->paused && want_pause(s))
    kick(s);
  return 0;
}

int nn_ship_flush(struct nn_ship *s)
{
  if (s->closing || s->draining)
    return NN_ECANCELED;
  int rc = close_batch(s);
  kick(s);
  return rc;
}

bool nn_ship_paused(const struct nn_ship *s)
{
  return s->paused;
}

int nn_ship_dest_stats(const struct nn_ship *s, size_t i, struct nn_ship_dest_stats *out)
{
  if (i >= s->ndests)
    return NN_ENOTFOUND;
  dest_gauges((struct dest *)&s->dests[i]);
  *out = s->dests[i].st;
  return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
  struct nn_ship *s = h->data;
  if (--s->open_handles > 0)
    return;
  void (*cb)(void *) = s->on_closed;
  void *ud = s->closed_ud;
  free_ship(s);
  if (cb)
    cb(ud);
}

/* Persists what is still only in memory, in order, when the spool can take it without
 * putting an older batch after a newer one (remote write receivers reject out-of-order
 * samples). Returns how many batches had to be left to the producer's re-read. */
static uint32_t persist_on_close(struct dest *d)
{
  uint32_t skipped = 0;
  for (uint32_t i = 0; i < d->nslots; i++) {
    struct slot *sl = slot_at(d, i);
    if (sl->state == SLOT_SENDING)
      d->s->tp.cancel(d->s->tp.ctx, &sl->call);
  }
  if (!d->spool)
    return (uint32_t)d->mq_count;
  for (uint32_t i = 0; i < d->nslots; i++) {
    struct slot *sl = slot_at(d, i);
    if (sl->from_spool || !sl->batch || sl->state == SLOT_DONE)
      continue;
    if (d->spool_has_live && sl->seq <= d->spool_last_live) {
      skipped++;
      continue;
    }
    if (spool_batch(d, sl->batch) < 0)
      skipped++;
  }
  while (d->mq_count) {
    struct batch *b = mq_pop(d);
    if ((d->spool_has_live && b->seq <= d->spool_last_live) || spool_batch(d, b) < 0)
      skipped++;
    batch_unref(b);
  }
  return skipped;
}

static bool any_sending(const struct nn_ship *s)
{
  for (size_t i = 0; i < s->ndests; i++) {
    const struct dest *d = &s->dests[i];
    for (uint32_t k = 0; k < d->nslots; k++)
      if (d->slots[(d->slot_head + k) % d->max_inflight].state == SLOT_SENDING)
        return true;
  }
  return false;
}

/* Second half of close: spools what is left, fsyncs, acknowledges what the spool now holds
 * (so the producer's final checkpoint covers it and a restart does not read it again), then
 * releases the handles. */
static void finish_close(struct nn_ship *s)
{
  if (s->closing)
    return;
  s->draining = false;
  uv_timer_stop(&s->age_timer);
  for (size_t i = 0; i < s->ndests; i++) {
    struct dest *d = &s->dests[i];
    uint32_t skipped = persist_on_close(d);
    if (skipped)
      nn_warn("ship",
              "destination %s: %" PRIu32 " unsent batches not kept at shutdown; their "
              "records were not acknowledged and are read again after restart",
              d->name, skipped);
    if (d->spool) {
      nn__ship_spool_sync_now(d->spool);
      durable_apply(d);
    }
  }
  if (s->ack_spooled)
    deliver_acks(s);
  s->closing = true;
  for (size_t i = 0; i < s->ndests; i++) {
    struct dest *d = &s->dests[i];
    uv_timer_stop(&d->timer);
    uv_close((uv_handle_t *)&d->timer, on_handle_closed);
  }
  uv_close((uv_handle_t *)&s->age_timer, on_handle_closed);
  uv_close((uv_handle_t *)&s->kick_timer, on_handle_closed);
  uv_close((uv_handle_t *)&s->sync_timer, on_handle_closed);
}

static void on_drain_timeout(uv_timer_t *t)
{
  finish_close(t->data);
}

void nn_ship_close(struct nn_ship *s, void (*on_closed)(void *ud), void *ud)
{
  if (s->closing || s->draining)
    return;
  close_batch(s);
  s->on_closed = on_closed;
  s->closed_ud = ud;
  s->draining = true;
  /* Requests in flight usually answer within milliseconds; waiting for them (bounded) keeps
   * a batch the receiver already took from being spooled and sent again after a restart. */
  if (s->ack_spooled && any_sending(s)) {
    uv_timer_start(&s->age_timer, on_drain_timeout, DRAIN_MS, 0);
    return;
  }
  finish_close(s);
}
