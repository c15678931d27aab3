/* SPDX-License-Identifier: Apache-2.0 */
/* Log pipeline wiring. The only state here is a small overflow queue: after the ship asks
 * the tailer to pause, up to one read chunk of entries still arrives, and those are held
 * (bounded) rather than dropped, then replayed before the tailer resumes. */
#include "agent/app/logs.h"

#include "agent/app/internal.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/parse/parse.h"
#include "agent/ship/ship.h"
#include "agent/tail/tail.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/labels.h"
#include "common/log.h"
#include "common/metrics.h"

#define LOFF(f)           offsetof(struct nn_agent_logs_config, f)
#define OVERFLOW_MAX      (32u << 20)
#define MAX_STATIC_LABELS 32
#define PUSH_RETRY_MS     10 /* while the agent's scrape of itself is in flight; doubles */
#define PUSH_TEXT_MAX     (64u << 20)

const struct nn_cfg_option nn_agent_logs_options[] = {
    {.name = "enabled", .type = NN_CFG_BOOL, .offset = LOFF(enabled), .def = "true"},
    {.name = "include",
     .type = NN_CFG_STRLIST,
     .offset = LOFF(include),
     .def = "[/var/log/containers/*.log]",
     .help = "globs of files to tail (kubelet symlinks are followed)"},
    {.name = "exclude", .type = NN_CFG_STRLIST, .offset = LOFF(exclude), .help = "globs to skip"},
    {.name = "ignore_older",
     .type = NN_CFG_DURATION,
     .offset = LOFF(ignore_older_ms),
     .def = "0s",
     .help = "skip files not written for this long (0: never)"},
    {.name = "max_line_size",
     .type = NN_CFG_SIZE,
     .offset = LOFF(max_line_size),
     .def = "256KiB",
     .help = "longer entries are truncated, flagged and counted"},
    {.name = "start_at_end",
     .type = NN_CFG_BOOL,
     .offset = LOFF(start_at_end),
     .def = "false",
     .help = "files found at the first start are read from their end"},
    {.name = "multiline_start",
     .type = NN_CFG_STR,
     .offset = LOFF(multiline_start),
     .help = "regex (PCRE2) of a line that starts an entry; other lines join the previous"},
    {.name = "multiline_max_lines",
     .type = NN_CFG_INT,
     .offset = LOFF(multiline_max_lines),
     .def = "500"},
    {.name = "multiline_timeout",
     .type = NN_CFG_DURATION,
     .offset = LOFF(multiline_timeout_ms),
     .def = "3s"},
    {.name = "labels",
     .type = NN_CFG_STRMAP,
     .offset = LOFF(labels),
     .help = "static stream labels"},
    {.name = "batch_size",
     .type = NN_CFG_SIZE,
     .offset = LOFF(batch_size),
     .def = "1MiB",
     .help = "uncompressed bytes that close a batch"},
    {.name = "batch_wait",
     .type = NN_CFG_DURATION,
     .offset = LOFF(batch_wait_ms),
     .def = "1s",
     .help = "age that closes a batch"},
    {.name = "destinations",
     .type = NN_CFG_LIST,
     .offset = LOFF(destinations),
     .sub = nn_agent_dest_options,
     .elem_size = sizeof(struct nn_agent_dest_config),
     .help = "where batches go; each has its own queue, retries and spool"},
    {.name = "metrics",
     .type = NN_CFG_SECTION,
     .offset = LOFF(metrics),
     .sub = nn_logmetrics_config_options,
     .help = "request counters and latency histograms from access logs, on /metrics"},
    {0},
};

/* Stream keys cached per (file, stdout/stderr): a file's labels never change, so the key is
 * built once per file and stream, not once per line. Direct-mapped; a collision rebuilds. */
#define KEY_CACHE_SLOTS 64
struct key_cache {
  uint64_t labels_id; /* 0: empty */
  int stream;
  struct nn_buf key;
};

struct held {
  struct held *next;
  struct nn_ship_token token;
  size_t key_len, piece_len;
  char data[]; /* key then piece */
};

struct nn_agent_logs {
  const struct nn_agent_logs_config *cfg;
  uv_loop_t *loop;
  struct nn_tail *tail;
  struct nn_ship *ship;
  struct nn_ship_http *http;
  struct nn_parse_ml *ml;
  struct nn_logmetrics *lm;
  struct nn_metrics *metrics;
  struct nn_buf key, piece;
  struct key_cache keys[KEY_CACHE_SLOTS];
  struct held *held_head, *held_tail;
  size_t held_bytes;
  bool ship_paused, closing;
  struct nn_label static_labels[MAX_STATIC_LABELS];
  size_t nstatic;
  struct nn_metric *acked, *dropped_acked, *held_total, *pushes;
  /* Log-derived series pushed as lines change them: at most one push per push_interval,
   * the first one as soon as the read that changed a series is processed. */
  int (*push)(void *ud, const char *text, size_t len);
  void *push_ud;
  uv_timer_t *push_timer; /* armed while changed series wait for their push */
  bool push_armed;
  uint64_t pushed_at;  /* loop time of the last push */
  uint64_t push_retry; /* next retry delay while the scrape of itself is in flight, 0 none */
  struct nn_buf push_text;
  char **include;
  size_t ninclude;
  void (*on_closed)(void *ud);
  void *closed_ud;
};

/* Stream key: the entry's Kubernetes labels (minus container_id and filename, which change
 * on every restart and would multiply streams), its stdout/stderr stream, and static labels,
 * in Loki's selector text. */
static int build_stream_key(struct nn_agent_logs *l, const struct nn_tail_entry *e,
                            struct nn_buf *out)
{
  struct nn_label v[MAX_STATIC_LABELS + 8];
  size_t n = 0;
  for (size_t i = 0; i < e->nlabels; i++) {
    if (strcmp(e->labels[i].name, "container_id") == 0)
      continue;
    if (strcmp(e->labels[i].name, "filename") == 0 && nn_labels_get(e->labels, e->nlabels, "pod"))
      continue;
    v[n++] = e->labels[i];
  }
  const char *stream = e->entry->stream == NN_PARSE_STREAM_STDERR   ? "stderr"
                       : e->entry->stream == NN_PARSE_STREAM_STDOUT ? "stdout"
                                                                    : NULL;
  if (stream)
    v[n++] = (struct nn_label){"stream", stream};
  for (size_t i = 0; i < l->nstatic; i++)
    if (!nn_labels_get(v, n, l->static_labels[i].name))
      v[n++] = l->static_labels[i];
  n = nn_labels_canonicalize(v, n);
  nn_buf_reset(out);
  return nn_labels_format(v, n, out);
}

/* The entry's stream key, from the cache when its file and stream were seen before. */
static const struct nn_buf *stream_key(struct nn_agent_logs *l, const struct nn_tail_entry *e)
{
  if (e->labels_id == 0) {
    if (build_stream_key(l, e, &l->key) < 0)
      return NULL;
    return &l->key;
  }
  int stream = (int)e->entry->stream;
  struct key_cache *c =
      &l->keys[(e->labels_id * NN_PARSE_NSTREAMS + (uint64_t)stream) % KEY_CACHE_SLOTS];
  if (c->labels_id == e->labels_id && c->stream == stream)
    return &c->key;
  c->labels_id = 0;
  if (build_stream_key(l, e, &c->key) < 0)
    return NULL;
  c->labels_id = e->labels_id;
  c->stream = stream;
  return &c->key;
}

static void hold(struct nn_agent_logs *l, const struct nn_buf *key, const struct nn_ship_token *tok)
{
  size_t need = sizeof(struct held) + key->len + l->piece.len;
  struct held *h = l->held_bytes + need <= OVERFLOW_MAX ? malloc(need) : NULL;
  if (!h) {
    /* Cannot happen while the tailer honours pause (one read chunk arrives at most); if it
     * does, stop the process from acknowledging past this entry by logging loudly. */
    NN_LOG_RL(NN_LOG_ERROR, "logs", "overflow queue full; entry of file %llx offset %llu lost",
              (unsigned long long)tok->id, (unsigned long long)tok->off);
    return;
  }
  h->next = NULL;
  h->token = *tok;
  h->key_len = key->len;
  h->piece_len = l->piece.len;
  memcpy(h->data, key->data, key->len);
  memcpy(h->data + key->len, l->piece.data, l->piece.len);
  if (l->held_tail)
    l->held_tail->next = h;
  else
    l->held_head = h;
  l->held_tail = h;
  l->held_bytes += need;
  nn_metric_inc(l->held_total);
}

/* Replays held entries in order; stops at the first one the ship still refuses. */
static bool replay_held(struct nn_agent_logs *l)
{
  while (l->held_head) {
    struct held *h = l->held_head;
    int rc =
        nn_ship_add(l->ship, h->data, h->key_len, h->data + h->key_len, h->piece_len, &h->token);
    if (rc == NN_EAGAIN)
      return false;
    l->held_head = h->next;
    if (!l->held_head)
      l->held_tail = NULL;
    l->held_bytes -= sizeof(*h) + h->key_len + h->piece_len;
    free(h);
  }
  return true;
}

static void on_push(uv_timer_t *t);

static void arm_push(struct nn_agent_logs *l)
{
  uint64_t now = uv_now(l->loop), due = l->pushed_at + (uint64_t)l->cfg->metrics.push_interval_ms;
  uv_timer_start(l->push_timer, on_push, due > now ? due - now : 0, 0);
  l->push_armed = true;
}

/* Sends the series lines changed since the last push, ahead of the agent's scrape of its
 * own /metrics; kept for the next try while that scrape is in flight. */
static void on_push(uv_timer_t *t)
{
  struct nn_agent_logs *l = t->data;
  l->push_armed = false;
  if (l->closing || !l->push || !nn_logmetrics_changed(l->lm))
    return;
  nn_buf_reset(&l->push_text);
  int rc = nn_logmetrics_render_changed(l->lm, &l->push_text);
  if (rc == 0)
    rc = l->push(l->push_ud, l->push_text.data, l->push_text.len);
  else
    NN_LOG_RL(NN_LOG_WARN, "logs", "changed log metrics not pushed: %s", nn_strerror(rc));
  if (rc == NN_EAGAIN) {
    /* A scrape of the agent takes milliseconds; one that hangs to its timeout is not
     * asked about every 10 ms. */
    uint64_t max = (uint64_t)l->cfg->metrics.push_interval_ms;
    l->push_retry = l->push_retry ? l->push_retry * 2 : PUSH_RETRY_MS;
    if (l->push_retry > max)
      l->push_retry = max;
    uv_timer_start(t, on_push, l->push_retry, 0);
    l->push_armed = true;
    return;
  }
  l->push_retry = 0;
  /* Also after a failure: the scrape of /metrics still carries every series. */
  nn_logmetrics_clear_changed(l->lm);
  l->pushed_at = uv_now(l->loop);
  if (rc > 0)
    nn_metric_inc(l->pushes);
}

static void free_handle(uv_handle_t *h)
{
  free(h);
}

void nn_agent_logs_set_push(struct nn_agent_logs *l,
                            int (*push)(void *ud, const char *text, size_t len), void *ud)
{
  if (!l || !l->lm || l->cfg->metrics.push_interval_ms <= 0)
    return;
  if (!l->push_timer) {
    if (!(l->push_timer = malloc(sizeof(*l->push_timer))))
      return; /* the scrape of /metrics still carries the series */
    uv_timer_init(l->loop, l->push_timer);
    l->push_timer->data = l;
  }
  l->push = push;
  l->push_ud = ud;
  if (nn_logmetrics_changed(l->lm) && !l->push_armed)
    arm_push(l);
}

static void on_entry(void *ctx, const struct nn_tail_entry *e)
{
  struct nn_agent_logs *l = ctx;
  if (l->closing)
    return; /* not batched, so not acknowledged: read again after the restart */
  struct nn_ship_token tok = {.id = e->file_id, .off = e->entry->commit_offset};
  if (l->lm && nn_logmetrics_observe(l->lm, e->labels, e->nlabels, e->entry->line, e->entry->len) &&
      l->push && !l->push_armed)
    arm_push(l);
  nn_buf_reset(&l->piece);
  const struct nn_buf *key = stream_key(l, e);
  if (!key ||
      nn_ship_loki_entry_encode(&l->piece, e->entry->ts_ns, e->entry->line, e->entry->len) < 0) {
    NN_LOG_RL(NN_LOG_WARN, "logs", "entry of %s too large to encode; skipped", e->path);
    return;
  }
  if (l->held_head) {
    hold(l, key, &tok);
    return;
  }
  int rc = nn_ship_add(l->ship, key->data, key->len, l->piece.data, l->piece.len, &tok);
  if (rc == NN_EAGAIN)
    hold(l, key, &tok);
  else if (rc < 0)
    NN_LOG_RL(NN_LOG_WARN, "logs", "cannot batch an entry of %s: %s", e->path, nn_strerror(rc));
}

static void on_ack(void *ud, const struct nn_ship_token *tokens, size_t n,
                   enum nn_ship_outcome outcome, bool recovered)
{
  struct nn_agent_logs *l = ud;
  if (!l->tail)
    return;
  for (size_t i = 0; i < n; i++) {
    /* A file closed after rotation no longer takes acks; its bytes were all delivered. */
    nn_tail_ack(l->tail, tokens[i].id, tokens[i].off);
  }
  /* The checkpoint follows acknowledged batches at once (at most one write per checkpoint
   * interval, none while one is in flight) instead of waiting for the next 200 ms tick: what
   * a crash sends again is then mostly the batches in flight. */
  nn_tail_flush_acks(l->tail);
  nn_metric_add(outcome == NN_SHIP_DELIVERED ? l->acked : l->dropped_acked, (double)n);
}

static void on_pause(void *ud)
{
  struct nn_agent_logs *l = ud;
  l->ship_paused = true;
  nn_tail_pause(l->tail);
}

static void on_resume(void *ud)
{
  struct nn_agent_logs *l = ud;
  if (l->closing)
    return;
  l->ship_paused = false;
  if (replay_held(l))
    nn_tail_resume(l->tail);
}

#define TAIL_STAT(fn, field)                                                                       \
  static double fn(void *ud)                                                                       \
  {                                                                                                \
    struct nn_tail_stats st;                                                                       \
    nn_tail_get_stats(((struct nn_agent_logs *)ud)->tail, &st);                                    \
    return (double)st.field;                                                                       \
  }
TAIL_STAT(st_files, files_watched)
TAIL_STAT(st_deleted_open, files_deleted_open)
TAIL_STAT(st_deleted_held, deleted_bytes_held)
TAIL_STAT(st_unread, unread_bytes)
TAIL_STAT(st_bytes, bytes_read)
TAIL_STAT(st_lines, lines_read)
TAIL_STAT(st_entries, entries)
TAIL_STAT(st_truncated, lines_truncated)
TAIL_STAT(st_utf8, invalid_utf8)
TAIL_STAT(st_rot_rename, rotations_rename)
TAIL_STAT(st_rot_trunc, rotations_truncate)
TAIL_STAT(st_missed, truncate_bytes_missed)
TAIL_STAT(st_deleted_dropped, deleted_bytes_dropped)

static double held_bytes(void *ud)
{
  return (double)((struct nn_agent_logs *)ud)->held_bytes;
}

static int register_metrics(struct nn_agent_logs *l, struct nn_metrics *m)
{
  static const struct {
    enum nn_metric_type type;
    const char *name, *help, *labels;
    nn_metric_value_fn fn;
  } defs[] = {
      {NN_METRIC_GAUGE, "nines_agent_files_watched", "Log files open for reading.", NULL, st_files},
      {NN_METRIC_GAUGE, "nines_agent_deleted_files_open", "Deleted files still being read.", NULL,
       st_deleted_open},
      {NN_METRIC_GAUGE, "nines_agent_deleted_bytes_held", "Unread bytes held in deleted files.",
       NULL, st_deleted_held},
      {NN_METRIC_GAUGE, "nines_agent_unread_bytes",
       "Bytes written to the open log files and not read yet (the tailing lag).", NULL, st_unread},
      {NN_METRIC_COUNTER, "nines_agent_read_bytes_total", "Bytes read from log files.", NULL,
       st_bytes},
      {NN_METRIC_COUNTER, "nines_agent_read_lines_total", "Lines read from log files.", NULL,
       st_lines},
      {NN_METRIC_COUNTER, "nines_agent_entries_total", "Log entries parsed.", NULL, st_entries},
      {NN_METRIC_COUNTER, "nines_agent_lines_truncated_total", "Entries cut at max_line_size.",
       NULL, st_truncated},
      {NN_METRIC_COUNTER, "nines_agent_invalid_utf8_total", "Entries with invalid UTF-8 (kept).",
       NULL, st_utf8},
      {NN_METRIC_COUNTER, "nines_agent_rotations_total", "Rotations seen.", "kind=\"rename\"",
       st_rot_rename},
      {NN_METRIC_COUNTER, "nines_agent_rotations_total", "Rotations seen.", "kind=\"truncate\"",
       st_rot_trunc},
      {NN_METRIC_COUNTER, "nines_agent_dropped_bytes_total", "Bytes lost, by reason.",
       "reason=\"truncated_before_read\"", st_missed},
      {NN_METRIC_COUNTER, "nines_agent_dropped_bytes_total", "Bytes lost, by reason.",
       "reason=\"deleted_file_cap\"", st_deleted_dropped},
      {NN_METRIC_GAUGE, "nines_agent_overflow_bytes", "Entries held while the shipper is paused.",
       NULL, held_bytes},
  };
  for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++)
    if (!nn_metrics_func(m, defs[i].type, defs[i].name, defs[i].help, defs[i].labels, defs[i].fn,
                         l))
      return NN_ENOMEM;
  l->acked =
      nn_metrics_counter(m, "nines_agent_offset_acks_total",
                         "Acknowledged file offsets applied (one per file per batch).", NULL);
  l->dropped_acked = nn_metrics_counter(
      m, "nines_agent_offset_acks_dropped_total",
      "Acknowledgements of batches dropped by policy (rejected, drop_oldest).", NULL);
  l->held_total = nn_metrics_counter(m, "nines_agent_overflow_entries_total",
                                     "Entries held while the shipper was paused.", NULL);
  if (l->lm)
    l->pushes = nn_metrics_counter(
        m, "nines_agent_log_metrics_pushes_total",
        "Pushes of log-derived series changed by lines, ahead of the scrape of /metrics.", NULL);
  return 0;
}

static int render_logmetrics(void *ud, struct nn_buf *out)
{
  return nn_logmetrics_render(ud, out);
}

struct nn_agent_logs *nn_agent_logs_create(uv_loop_t *loop, const struct nn_agent_logs_config *cfg,
                                           const char *data_dir, struct nn_http_client *client,
                                           struct nn_metrics *metrics)
{
  char err[256];
  struct nn_ship_dest_config *dests = NULL;
  struct nn_agent_logs *l = calloc(1, sizeof(*l));
  if (!l)
    return NULL;
  l->cfg = cfg;
  l->loop = loop;
  l->metrics = metrics;
  nn_buf_init(&l->key, 64 << 10);
  nn_buf_init(&l->push_text, PUSH_TEXT_MAX);
  for (size_t i = 0; i < KEY_CACHE_SLOTS; i++)
    nn_buf_init(&l->keys[i].key, 64 << 10);
  nn_buf_init(&l->piece, cfg->max_line_size + 1024);
  for (size_t i = 0; i < cfg->labels.n && l->nstatic < MAX_STATIC_LABELS; i++)
    l->static_labels[l->nstatic++] = (struct nn_label){cfg->labels.keys[i], cfg->labels.values[i]};
  size_t ndests;
  if (nn__agent_dests(&cfg->destinations, "/loki/api/v1/push", &dests, &ndests) < 0)
    goto fail;
  if (cfg->metrics.enabled) {
    l->lm = nn_logmetrics_create(&cfg->metrics, err, sizeof(err));
    if (!l->lm) {
      nn_error("logs", "logs.metrics: %s", err);
      goto fail;
    }
    if (nn_metrics_add_collector(metrics, render_logmetrics, l->lm) < 0)
      goto fail;
  }
  l->http = nn_ship_http_create(client, 0);
  if (!l->http || register_metrics(l, metrics) < 0)
    goto fail;
  struct nn_ship_config sc;
  nn_ship_config_defaults(&sc);
  sc.name = "logs";
  sc.payload = &nn_ship_payload_loki;
  sc.data_dir = data_dir;
  sc.batch_size = cfg->batch_size;
  /* A batch must hold the largest entry the tailer can emit (a max_line_size line plus its
   * stream key and framing); otherwise such an entry is refused by the ship and, since later
   * entries are acknowledged past it, lost. */
  size_t need = cfg->max_line_size + (64u << 10) + 1024;
  if (sc.batch_size < need) {
    nn_warn("logs", "logs.batch_size %zu is below max_line_size plus overhead; using %zu",
            sc.batch_size, need);
    sc.batch_size = need;
  }
  sc.batch_wait_ms = cfg->batch_wait_ms;
  sc.dests = dests;
  sc.ndests = ndests;
  sc.owner = (struct nn_ship_owner){on_ack, on_pause, on_resume, l};
  /* The spool, once fsynced, is what guarantees a batch: the checkpoint may pass it. Without
   * this, a batch spooled during an outage or at shutdown would also be read again from the
   * file after a restart and delivered twice (docs/format/spool.md, Durability). */
  sc.ack_spooled = true;
  /* The files are the buffer while the destinations keep up: a full memory queue pauses the
   * tailer rather than sending every batch through the disk spool and back (lz4, write,
   * read, decode). The spool takes batches during outages, as before. */
  sc.spool_failing_only = true;
  nn_ship_http_transport(l->http, &sc.transport);
  sc.metrics = metrics;
  if (nn_ship_create(loop, &sc, &l->ship) < 0)
    goto fail;

  /* Relative globs are taken from the working directory, as a shell would. */
  char cwd[1024];
  if (!getcwd(cwd, sizeof(cwd)))
    cwd[0] = '\0';
  l->include = calloc(cfg->include.n + 1, sizeof(char *));
  if (!l->include)
    goto fail;
  for (size_t i = 0; i < cfg->include.n; i++) {
    const char *g = cfg->include.v[i];
    size_t n = strlen(cwd) + strlen(g) + 2;
    l->include[i] = malloc(n);
    if (!l->include[i])
      goto fail;
    snprintf(l->include[i], n, g[0] == '/' ? "%s" : "%s/%s", g[0] == '/' ? g : cwd,
             g[0] == '/' ? "" : g);
    l->ninclude = i + 1;
  }
  struct nn_tail_config tc = {
      .include = (const char *const *)l->include,
      .n_include = l->ninclude,
      .exclude = (const char *const *)cfg->exclude.v,
      .n_exclude = cfg->exclude.n,
      .data_dir = data_dir,
      .ignore_older_ms = (uint64_t)cfg->ignore_older_ms,
      .start_at_end = cfg->start_at_end,
      /* Acknowledged offsets reach disk within this; after a crash what was delivered since
       * the last write is sent again, so it bounds duplicates (1 s would allow several
       * batches' worth under load). Only written when acks moved an offset. */
      .checkpoint_interval_ms = 200,
  };
  tc.parse.max_line_size = cfg->max_line_size;
  if (cfg->multiline_start && cfg->multiline_start[0]) {
    struct nn_parse_ml_config mc = {
        .start_pattern = cfg->multiline_start,
        .max_lines = (uint32_t)cfg->multiline_max_lines,
        .flush_timeout_ms = (uint32_t)cfg->multiline_timeout_ms,
    };
    if (nn_parse_ml_create(&mc, &l->ml, err, sizeof(err)) < 0) {
      nn_error("logs", "logs.multiline_start: %s", err);
      goto fail;
    }
    tc.parse.ml = l->ml;
  }
  if (nn_tail_create(loop, &tc, on_entry, l, &l->tail, err, sizeof(err)) < 0) {
    nn_error("logs", "cannot start tailing: %s", err);
    goto fail;
  }
  if (nn_tail_start(l->tail) < 0)
    goto fail;
  free(dests);
  return l;
fail:
  free(dests);
  nn_agent_logs_close(l, NULL, NULL);
  return NULL;
}

static void on_ship_closed(void *ud)
{
  struct nn_agent_logs *l = ud;
  /* The tailer saves acknowledged offsets; whatever is unacknowledged is re-read next time. */
  nn_tail_destroy(l->tail);
  l->tail = NULL;
  nn_ship_http_destroy(l->http);
  nn_parse_ml_destroy(l->ml);
  nn_logmetrics_destroy(l->lm);
  while (l->held_head) {
    struct held *h = l->held_head;
    l->held_head = h->next;
    free(h);
  }
  nn_buf_fini(&l->key);
  for (size_t i = 0; i < KEY_CACHE_SLOTS; i++)
    nn_buf_fini(&l->keys[i].key);
  nn_buf_fini(&l->piece);
  nn_buf_fini(&l->push_text);
  for (size_t i = 0; i < l->ninclude; i++)
    free(l->include[i]);
  free(l->include);
  void (*cb)(void *) = l->on_closed;
  void *cud = l->closed_ud;
  free(l);
  if (cb)
    cb(cud);
}

void nn_agent_logs_close(struct nn_agent_logs *l, void (*on_closed)(void *ud), void *ud)
{
  if (!l)
    return;
  l->on_closed = on_closed;
  l->closed_ud = ud;
  l->closing = true;
  l->push = NULL;
  if (l->push_timer) {
    uv_timer_stop(l->push_timer);
    uv_close((uv_handle_t *)l->push_timer, free_handle);
    l->push_timer = NULL;
  }
  /* Reading stops first; the ship then finishes or spools (fsynced) every batch and
   * acknowledges them, and only after that does the tailer write its last checkpoint, so
   * nothing the spool holds is read again after a restart (docs/format/spool.md). */
  if (l->tail)
    nn_tail_pause(l->tail);
  if (l->ship)
    nn_ship_close(l->ship, on_ship_closed, l);
  else
    on_ship_closed(l);
}
