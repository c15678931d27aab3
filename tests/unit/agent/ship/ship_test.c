/* SPDX-License-Identifier: Apache-2.0 */
/* The ship end to end on a real libuv loop with a fake transport: batch closing, retries and
 * their delays, Retry-After, dead letters, spooling through an outage, back-pressure,
 * drop_oldest, restart with a spool, and acks gated on every destination. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "agent/ship/ship.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/log.h"
#include "common/metrics.h"

#define MAXCALLS 8192
#define MAXRECS  20000

struct fcall {
  struct nn_ship_call *call;
  nn_ship_complete_fn fn;
  int dest;
  bool pending;
  char id[200];
  unsigned *recs; /* record numbers in the body, in order */
  size_t nrecs;
  size_t body_len;
};

/* The fake transport: per destination either answers every request automatically
 * (status > 0 an HTTP status, < 0 a connection error code) or holds it (0). */
struct fake {
  uv_loop_t *loop;
  uv_timer_t timer;
  struct fcall *calls;
  size_t n;
  int status[2];
  int64_t retry_after;
  const char *reply;
  /* Record numbers accepted (2xx), per destination, in delivery order. */
  unsigned *delivered[2];
  size_t ndelivered[2];
};

struct owner {
  struct nn_ship_token toks[MAXRECS];
  bool dropped[MAXRECS];
  bool recovered[MAXRECS];
  size_t n;
  int pauses, resumes;
  bool paused;
};

static uv_loop_t loop;
static struct fake fk;
static struct owner ow;
static char tmpdir[256];

static void parse_recs(struct fcall *c, const char *body, size_t len)
{
  size_t cap = 64;
  c->recs = malloc(cap * sizeof(*c->recs));
  for (const char *p = body; (p = memmem(p, (size_t)(body + len - p), "rec-", 4)) != NULL; p += 4) {
    if (c->nrecs == cap)
      c->recs = realloc(c->recs, (cap *= 2) * sizeof(*c->recs));
    c->recs[c->nrecs++] = (unsigned)strtoul(p + 4, NULL, 10);
  }
}

static void complete(struct fcall *c, int status)
{
  struct nn_ship_response r = {.retry_after_ms = fk.retry_after};
  if (status < 0)
    r.rc = status;
  else
    r.status = status;
  if (fk.reply) {
    r.body = fk.reply;
    r.body_len = strlen(fk.reply);
  }
  c->pending = false;
  if (status >= 200 && status < 300) {
    for (size_t i = 0; i < c->nrecs; i++)
      fk.delivered[c->dest][fk.ndelivered[c->dest]++] = c->recs[i];
  }
  c->fn(c->call, &r);
}

static void on_fake_timer(uv_timer_t *t)
{
  for (size_t i = 0; i < fk.n; i++) {
    struct fcall *c = &fk.calls[i];
    if (c->pending && fk.status[c->dest] != 0)
      complete(c, fk.status[c->dest]);
  }
}

static int fake_send(void *ctx, const struct nn_ship_request *req, struct nn_ship_call *call,
                     nn_ship_complete_fn fn)
{
  assert_true(fk.n < MAXCALLS);
  struct fcall *c = &fk.calls[fk.n++];
  memset(c, 0, sizeof(*c));
  c->call = call;
  c->fn = fn;
  c->dest = strstr(req->url, "//b") ? 1 : 0;
  c->pending = true;
  c->body_len = req->body_len;
  for (size_t i = 0; i < req->nheaders; i++)
    if (strncmp(req->headers[i], "X-Nines-Batch-Id: ", 18) == 0)
      snprintf(c->id, sizeof(c->id), "%s", req->headers[i] + 18);
  parse_recs(c, req->body, req->body_len);
  if (fk.status[c->dest] != 0)
    uv_timer_start(&fk.timer, on_fake_timer, 1, 0);
  return 0;
}

static void fake_cancel(void *ctx, struct nn_ship_call *call)
{
  for (size_t i = 0; i < fk.n; i++)
    if (fk.calls[i].call == call)
      fk.calls[i].pending = false;
}

static size_t pending_for(int dest)
{
  size_t n = 0;
  for (size_t i = 0; i < fk.n; i++)
    n += fk.calls[i].pending && fk.calls[i].dest == dest;
  return n;
}

/* Answers every held request of dest. */
static void respond(int dest, int status)
{
  for (size_t i = 0; i < fk.n; i++)
    if (fk.calls[i].pending && fk.calls[i].dest == dest)
      complete(&fk.calls[i], status);
}

static void on_ack(void *ud, const struct nn_ship_token *t, size_t n, enum nn_ship_outcome o,
                   bool recovered)
{
  for (size_t i = 0; i < n; i++) {
    assert_true(ow.n < MAXRECS);
    ow.toks[ow.n] = t[i];
    ow.dropped[ow.n] = o == NN_SHIP_DROPPED;
    ow.recovered[ow.n] = recovered;
    ow.n++;
  }
}

static void on_pause(void *ud)
{
  ow.pauses++;
  ow.paused = true;
}

static void on_resume(void *ud)
{
  ow.resumes++;
  ow.paused = false;
}

static void rm_rf(const char *dir)
{
  DIR *d = opendir(dir);
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
    struct stat st;
    if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
      rm_rf(p);
    else
      unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

static int setup(void **state)
{
  assert_int_equal(uv_loop_init(&loop), 0);
  memset(&fk, 0, sizeof(fk));
  fk.loop = &loop;
  fk.calls = calloc(MAXCALLS, sizeof(*fk.calls));
  fk.delivered[0] = calloc(MAXRECS * 4, sizeof(unsigned));
  fk.delivered[1] = calloc(MAXRECS * 4, sizeof(unsigned));
  fk.retry_after = -1;
  fk.status[0] = fk.status[1] = 204;
  uv_timer_init(&loop, &fk.timer);
  memset(&ow, 0, sizeof(ow));
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/nn_ship_test_XXXXXX");
  assert_non_null(mkdtemp(tmpdir));
  return 0;
}

static int teardown(void **state)
{
  uv_close((uv_handle_t *)&fk.timer, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  for (size_t i = 0; i < fk.n; i++)
    free(fk.calls[i].recs);
  free(fk.calls);
  free(fk.delivered[0]);
  free(fk.delivered[1]);
  rm_rf(tmpdir);
  return 0;
}

typedef bool (*pred_fn)(void *ud);

/* Runs the loop until pred holds or ms pass; returns whether pred held. */
static bool run_until(pred_fn pred, void *ud, int64_t ms)
{
  uv_update_time(&loop);
  uint64_t end = uv_now(&loop) + (uint64_t)ms;
  while (!pred(ud)) {
    if (uv_now(&loop) > end)
      return false;
    uv_run(&loop, UV_RUN_ONCE);
    uv_update_time(&loop);
  }
  return true;
}

static bool never(void *ud)
{
  return false;
}

static void run_for(int64_t ms)
{
  run_until(never, NULL, ms);
}

static bool calls_at_least(void *ud)
{
  return fk.n >= *(size_t *)ud;
}

static bool acks_at_least(void *ud)
{
  return ow.n >= *(size_t *)ud;
}

static bool flag_set(void *ud)
{
  return *(bool *)ud;
}

static void set_flag(void *ud)
{
  *(bool *)ud = true;
}

static void close_ship(struct nn_ship *s)
{
  bool closed = false;
  nn_ship_close(s, set_flag, &closed);
  assert_true(run_until(flag_set, &closed, 5000));
}

static struct nn_ship_dest_config dcfg[2];
static struct nn_ship_config cfg;

static void base_config(size_t ndests)
{
  nn_ship_config_defaults(&cfg);
  cfg.name = "t";
  cfg.payload = &nn_ship_payload_loki;
  cfg.batch_size = 2048;
  cfg.batch_wait_ms = 60000;
  cfg.backoff_min_ms = 10;
  cfg.backoff_max_ms = 40;
  cfg.retry_after_max_ms = 70;
  cfg.fsync_interval_ms = 20;
  cfg.seed = 42;
  cfg.owner = (struct nn_ship_owner){on_ack, on_pause, on_resume, NULL};
  cfg.transport = (struct nn_ship_transport){fake_send, fake_cancel, NULL};
  for (size_t i = 0; i < 2; i++) {
    nn_ship_dest_config_defaults(&dcfg[i]);
    dcfg[i].name = i ? "b" : "a";
    dcfg[i].url = i ? "http://b/push" : "http://a/push";
    dcfg[i].codec = NN_CODEC_NONE; /* lets the fake read record numbers */
  }
  cfg.dests = dcfg;
  cfg.ndests = ndests;
}

/* Adds record i: one stream, so body order is add order; tokens alternate ids so that no
 * two adjacent tokens coalesce and every record comes back as its own token. */
static int add_rec(struct nn_ship *s, unsigned i, size_t pad)
{
  char piece[512];
  assert_true(pad < sizeof(piece) - 16);
  int n = snprintf(piece, sizeof(piece), "rec-%06u.", i);
  memset(piece + n, 'x', pad);
  struct nn_ship_token t = {i % 3, i};
  return nn_ship_add(s, "{job=\"t\"}", 9, piece, (size_t)n + pad, &t);
}

/* Every record 0..n-1 acked exactly once, in order. */
static void assert_acked_in_order(unsigned n)
{
  assert_int_equal(ow.n, n);
  for (unsigned i = 0; i < n; i++) {
    assert_int_equal(ow.toks[i].off, i);
    assert_int_equal(ow.toks[i].id, i % 3);
  }
}

static void assert_delivered_in_order(int dest, unsigned n)
{
  assert_int_equal(fk.ndelivered[dest], n);
  for (unsigned i = 0; i < n; i++)
    assert_int_equal(fk.delivered[dest][i], i);
}

static void batches_close_by_size(void **state)
{
  struct nn_ship *s;
  base_config(1);
  assert_int_equal(nn_ship_create(&loop, &cfg, &s), 0);
  for (unsigned i = 0; i < 100; i++)
    assert_int_equal(add_rec(s, i, 90), 0);
  size_t want = 4;
  assert_true(run_until(calls_at_least, &want, 2000));
  for (size_t i = 0; i < fk.n; i++) {
    assert_true(fk.calls[i].body_len <= 2048);
    assert_true(fk.calls[i].body_len > 2048 - 120); /* closed because the next did not fit */
  }
  size_t all = 100;
  assert_int_equal(nn_ship_flush(s), 0);
  assert_true(run_until(acks_at_least, &all, 2000));
  assert_acked_in_order(100);
  assert_delivered_in_order(0, 100);
  /* A record that can never fit a batch is refused, not truncated. */
  char big[4096];
  memset(big, 'y', sizeof(big));
  assert_int_equal(nn_ship_add(s, "k", 1, big, sizeof(big), NULL), NN_ETOOBIG);
  close_ship(s);
}

static void batches_close_by_age(void **state)
{
  struct nn_ship *s;
  base_config(1);
  cfg.batch_wait_ms = 40;
  assert_int_equal(nn_ship_create(&loop, &cfg, &s), 0);
  uv_update_time(&loop);
  uint64_t t0 = uv_now(&loop);
  for (unsigned i = 0; i < 3; i++)
    assert_int_equal(add_rec(s, i, 10), 0);
  run_for(10);
  assert_int_equal(fk.n, 0);
  size_t one = 1;
  assert_true(run_until(calls_at_least, &one, 2000));
  assert_true(uv_now(&loop) - t0 >= 39);
  assert_int_equal(fk.calls[0].nrecs, 3);
  size_t three = 3;
  assert_true(run_until(acks_at_least, &three, 2000));
  assert_acked_in_order(3);
  close_ship(s);
}

static struct nn_ship_dest_stats stats(struct nn_ship *s, size_t i)
{
  struct nn_ship_dest_stats st;
  assert_int_equal(nn_ship_dest_stats(s, i, &st), 0);
  return st;
}

static void retries_server_errors_rate_limits_and_connection_errors(void **state)
{
  struct nn_ship *s;
  base_config(1);
  fk.status[0] = 0; /* hold requests; the test answers them */
  assert_int_equal(nn_ship_create(&loop, &cfg, &s), 0);
  for (unsigned i = 0; i < 5; i++)
    assert_int_equal(add_rec(s, i, 10), 0);
  assert_int_equal(nn_ship_flush(s), 0);
  size_t want = 1;
  assert_true(run_until(calls_at_least, &want, 2000));
  /* attempt n waits uniform in [10, min(40, 10 * 2^(n-1))] ms */
  const int answers[] = {500, 429, NN_ETIMEDOUT, 503, -ECONNREFUSED};
  const int64_t hi[] = {10, 20, 40, 40, 40};
  for (size_t k = 0; k < 5; k++) {
    respond(0, answers[k]);
    struct nn_ship_dest_stats st = stats(s, 0);
    assert_int_equal(st.failures, k + 1);
    assert_true(st.last_delay_ms >= 10 && st.last_delay_ms <= hi[k]);
    assert_int_equal(ow.n, 0);
    want = k + 2;
    assert_true(run_until(calls_at_least, &want, 2000));
    assert_string_equal(fk.calls[k + 1].id, fk.calls[0].id); /* same batch, same id */
  }
  assert_non_null(strstr(fk.calls[0].id, "t:"));
  respond(0, 204);
  size_t five = 5;
  assert_true(run_until(acks_at_least, &five, 2000));
  assert_acked_in_order(5);
  struct nn_ship_dest_stats st = stats(s, 0);
  assert_int_equal(st.batches_sent, 1);
  assert_int_equal(st.batches_failed, 5);
  assert_int_equal(st.batches_retried, 5);
  assert_int_equal(st.records_sent, 5);
  assert_int_equal(st.failures, 0);
  assert_int_equal(ow.dropped[0], false);
  close_ship(s);
}

/* A destination's own backoff replaces the ship's: with min 2 ms and max 5 ms every delay
 * stays in [2, 5] ms, where the ship's 10..40 ms would have grown to 40 ms by attempt 3; a
 * second destination without an override keeps the ship's. */
static void destination_backoff_overrides_the_ships_and_caps_every_delay(void **state)
{
  struct nn_ship *s;
  base_config(2);
  dcfg[0].backoff_min_ms = 2;
  dcfg[0].backoff_max_ms = 5;
  fk.status[0] = fk.status[1] = 0;
  assert_int_equal(nn_ship_create(&loop, &cfg, &s), 0);
  assert_int_equal(add_rec(s, 0, 10), 0);
  assert_int_equal(nn_ship_flush(s), 0);
  size_t want = 2;
  assert_true(run_until(calls_at_least, &want, 2000));
  int64_t max0 = 0, max1 = 0;
  for (size_t k = 0; k < 8; k++) {
    respond(0, 503);
    respond(1, 503);
    struct nn_ship_dest_stats a = stats(s, 0), b = stats(s, 1);
    assert_int_equal(a.failures, k + 1);
    assert_true(a.last_delay_ms >= 2 && a.last_delay_ms <= 5);
    assert_true(b.last_delay_ms >= 10 && b.last_delay_ms <= 40);
    max0 = a.last_delay_ms > max0 ? a.last_delay_ms : max0;
    max1 = b.last_delay_ms > max1 ? b.last_delay_ms : max1;
    want = 2 * (k + 2);
    assert_true(run_until(calls_at_least, &want, 2000));
  }
  assert_true(max1 > 5); /* the ship's range really is wider (seeded, so deterministic) */
  respond(0, 204);
  respond(1, 204);
  size_t one = 1;
  assert_true(run_until(acks_at_least, &one, 2000));
  close_ship(s);
}

static void retry_after_is_honoured_and_capped(void **state)
{
  struct nn_ship *s;
  base_config(1);
  fk.status[0] = 0;
  assert_int_equal(nn_ship_create(&loop, &cfg, &s), 0);
  assert_int_equal(add_rec(s, 0, 10), 0);
  assert_int_equal(nn_ship_flush(s), 0);
  size_t want = 1;
  assert_true(run_until(calls_at_least, &want, 2000));
  fk.retry_after = 30;
  respond(0, 429);
  assert_int_equal(stats(s, 0).last_delay_ms, 30);
  want = 2;
  assert_true(run_until(calls_at_least, &want, 2000));
  fk.retry_after = 600000; /* ten minutes: capped at retry_after_max (70 ms) */
  respond(0, 503);
  assert_int_equal(stats(s, 0).last_delay_ms, 70);
  want = 3;
  assert_true(run_until(calls_at_least, &want, 2000));
  fk.retry_after = 5; /* only 429 and 503 carry a meaningful Retry-After */
  respond(0, 500);
  int64_t d = stats(s, 0).last_delay_ms;
  assert_true(d >= 10 && d <= 40);
  want = 4;
  assert_true(run_until(calls_at_least, &want, 2000));
  fk.retry_after = -1;
  respond(0, 200);
  size_t one = 1;
  assert_true(run_until(acks_at_least, &one, 2000));
  close_ship(s);
}

static void rejected_batch_is_dead_lettered_counted_and_acked(void **state)
{
  struct nn_ship *s;
  base_config(1);
  cfg.data_dir = tmpdir;
  fk.status[0] = 400;
  fk.reply = "entry out of order for stream";
  assert_int_equal(nn_ship_create(&loop, &cfg, &s), 0);
  for (unsigned i = 0; i < 4; i++)
    assert_int_equal(add_rec(s, i, 10), 0);
  assert_int_equal(nn_ship_flush(s), 0);
  size_t four = 4;
  assert_true(run_until(acks_at_least, &four, 2000));
  assert_acked_in_order(4);
  for (unsigned i = 0; i < 4; i++)
    assert_true(ow.dropped[i]);
  run_for(50);
  assert_int_equal(fk.n, 1); /* never retried */
  struct nn_ship_dest_stats st = stats(s, 0);
  assert_int_equal(st.dropped_rejected, 4);
  assert_int_equal(st.batches_deadlettered, 1);
  assert_int_equal(st.batches_sent, 0);
  assert_int_equal(st.failures, 0);
  /* The dead letter holds the reason and the body as sent. */
  char dir[512];
  snprintf(dir, sizeof(dir), "%s/deadletter/t", tmpdir);
  DIR *dh = opendir(dir);
  assert_non_null(dh);
  struct dirent *e;
  int files = 0;
  while ((e = readdir(dh)) != NULL) {
    if (!strstr(e->d_name, ".dl"))
      continue;
    files++;
    char p[1024], buf[4096];
    snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
    FILE *f = fopen(p, "rb");
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "status: 400"));
    assert_non_null(strstr(buf, "destination: a"));
    assert_non_null(strstr(buf, "entry out of order"));
    assert_non_null(memmem(buf, n, "rec-000003", 10));
  }
  closedir(dh);
  assert_int_equal(files, 1);
  /* The pipeline moves on. */
  fk.status[0] = 204;
  fk.reply = NULL;
  assert_int_equal(add_rec(s, 4, 10), 0);
  assert_int_equal(nn_ship_flush(s), 0);
  size_t five = 5;
  assert_true(run_until(acks_at_least, &five, 2000));
  assert_false(ow.dropped[4]);
  close_ship(s);
}

static void outage_spools_then_drains_in_order(void **state)
{
  struct nn_ship *s;
  base_config(1);
  cfg.data_dir = tmpdir;
  cfg.batch_size = 1024;
  cfg.backoff_min_ms = 5;
  cfg.backoff_max_ms = 20;
  dcfg[0].mem_queue_max = 4096;
  fk.status[0] = -ECONNREFUSED;
  assert_int_equal(nn_ship_create(&loop, &cfg, &s), 0);
  unsigned n = 600;
  for (unsigned i = 0; i < n; i++) {
    assert_int_equal(add_rec(s, i, 40), 0);
    if (i % 50 == 0)
      run_for(2);
  }
  assert_int_equal(nn_ship_flush(s), 0);
  run_for(60);
  struct nn_ship_dest_stats st = stats(s, 0);
  assert_true(st.spool_bytes > 8192);
  assert_true(st.mem_bytes <= 4096);
  assert_true(st.batches_failed >= 2);
  assert_int_equal(ow.n, 0);
  assert_false(ow.paused);
  fk.status[0] = 204;
  size_t all = n;
  assert_true(run_until(acks_at_least, &all, 5000));
  assert_acked_in_order(n);
  assert_delivered_in_order(0, n);
  st = stats(s, 0);
  assert_int_equal(st.records_sent, n);
  assert_int_equal(st.failures, 0);
  assert_true(st.spool_segments <= 1); /* acked segments were deleted */
  close_ship(s);
}

static void full_spool_pauses_producers_then_resumes(void **state)
{
  struct nn_ship *s;
  base_config(1);
  cfg.data_dir = tmpdir;
  cfg.batch_size = 1024;
  cfg.backoff_min_ms = 5;
  cfg.backoff_max_ms = 10;
  dcfg[0].mem_queue_max = 4096;
  dcfg[0].spool_max = 32768;
  fk.status[0] = -ECONNREFUSED;
  assert_int_equal(nn_ship_create(&loop, &cfg, &s), 0);
  unsigned added = 0;
  int rc = 0;
  while (added < 5000 && !ow.paused) {
    assert_int_equal(add_rec(s, added, 40), 0);
    added++;
    uv_run(&loop, UV_RUN_NOWAIT);
  }
  assert_true(ow.paused);
  assert_int_equal(ow.pauses, 1);
  assert_true(nn_ship_paused(s));
  struct nn_ship_dest_stats st = stats(s, 0);
  assert_true(st.spool_bytes <= 32768);
  /* Producers that keep going hit the hard limit, bounded: nothing is accepted past it. */
  while (added < 10000 && (rc = add_rec(s, added, 40)) == 0)
    added++;
  assert_int_equal(rc, NN_EAGAIN);
  assert_true(stats(s, 0).mem_bytes <= 2 * 4096 + 2 * 1024 + 512);
  assert_int_equal(ow.n, 0);
  assert_int_equal(st.dropped_full, 0);
  fk.status[0] = 204;
  size_t all = added;
  assert_int_equal(nn_ship_flush(s), 0);
  assert_true(run_until(acks_at_least, &all, 5000));
  assert_acked_in_order(added);
  assert_delivered_in_order(0, added);
  run_for(5);
  assert_int_equal(ow.resumes, 1);
  assert_false(ow.paused);
  close_ship(s);
}

/* Adds records until the ship pauses its producer (or max records); returns the count. */
static unsigned add_until_paused(struct nn_ship *s, unsigned from, unsigned max)
{
  unsigned i = from;
  while (i < max && !ow.paused) {
    assert_int_equal(add_rec(s, i, 40), 0);
    i++;
    uv_run(&loop, UV_RUN_NOWAIT);
  }
  return i;
}

/* A slow but healthy destination: by default the memory queue spills to the spool and the
 * producer never waits; with spool_failing_only the producer is paused instead and the spool
 * stays empty, until the destination fails, when the spool takes batches again. */
static void slow_healthy_destination_pauses_instead_of_spooling(void **state)
{
  struct nn_ship *s;
  base_config(1);
  cfg.data_dir = tmpdir;
  cfg.batch_size = 1024;
  cfg.backoff_min_ms = 5;
  cfg.backoff_max_ms = 10;
  dcfg[0].mem_queue_max = 4096;
  fk.status[0] = 0; /* requests are held: answered only by respond() */

  /* Default: spills, never pauses. */
  assert_int_equal(nn_ship_create(&loop, &cfg, &s), 0);
  unsigned n = add_until_paused(s, 0, 400);
  assert_int_equal(n, 400);
  assert_false(ow.paused);
  assert_true(stats(s, 0).spool_bytes > 0);
  respond(0, 204);
  close_ship(s);
  rm_rf(tmpdir);
  assert_int_equal(mkdir(tmpdir, 0700), 0);
  memset(&ow, 0, sizeof(ow));
  memset(fk.ndelivered, 0, sizeof(fk.ndelivered));

  cfg.spool_failing_only = true;
  assert_int_equal(nn_ship_create(&loop, &cfg, &s), 0);
  n = add_until_paused(s, 0, 400);
  assert_true(n < 400);
  assert_true(ow.paused);
  struct nn_ship_dest_stats st = stats(s, 0);
  assert_int_equal(st.spool_bytes, 0);
  assert_true(st.mem_bytes >= 4096);
  assert_true(st.mem_bytes <= 4096 + 2 * 1024 + 512);
  /* Answers drain memory: the producer resumes and is paused again, never spooling. */
  for (int round = 0; round < 200 && n < 400; round++) {
    respond(0, 204);
    run_for(2);
    n = add_until_paused(s, n, 400);
    assert_int_equal(stats(s, 0).spool_bytes, 0);
  }
  assert_int_equal(n, 400);
  assert_true(ow.resumes >= 1);
  /* The destination fails: the memory queue goes to the spool and the producer resumes. */
  respond(0, 503);
  run_for(20);
  st = stats(s, 0);
  assert_true(st.spool_bytes > 0);
  assert_true(st.failures > 0);
  assert_false(ow.paused);
  unsigned m = add_until_paused(s, n, 600);
  assert_int_equal(m, 600);
  /* Healthy again: everything arrives once, in order. */
  fk.status[0] = 204;
  respond(0, 204);
  assert_int_equal(nn_ship_flush(s), 0);
  size_t all = m;
  assert_true(run_until(acks_at_least, &all, 5000));
  assert_acked_in_order(m);
  assert_delivered_in_order(0, m);
  assert_int_equal(stats(s, 0).dropped_full, 0);
  close_ship(s);
}

static void drop_oldest_counts_every_dropped_record(void **state)
{
  struct nn_ship *s;
  base_config(1);
  cfg.data_dir = tmpdir;
  cfg.batch_size = 1024;
  cfg.backoff_min_ms = 5;
  cfg.backoff_max_ms = 10;
  dcfg[0].mem_queue_max = 4096;
  dcfg[0].spool_max = 32768;
  dcfg[0].full_policy = NN_SHIP_FULL_DROP_OLDEST;
  fk.status[0] = -ECONNREFUSED;
  assert_int_equal(nn_ship_create(&loop, &cfg, &s), 0);
  unsigned n = 3000;
  for (unsigned i = 0; i < n; i++) {
    assert_int_equal(add_rec(s, i, 40), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
  }
  assert_int_equal(nn_ship_flush(s), 0);
  run_for(20);
  assert_int_equal(ow.pauses, 0);
  struct nn_ship_dest_stats st = stats(s, 0);
  assert_true(st.dropped_full > 0);
  assert_true(st.spool_bytes <= 32768);
  fk.status[0] = 204;
  size_t all = n;
  assert_true(run_until(acks_at_least, &all, 5000));
  /* Every record comes back exactly once, in order; the dropped ones say so. */
  assert_acked_in_order(n);
  st = stats(s, 0);
  size_t dropped = 0;
  for (unsigned i = 0; i < n; i++)
    dropped += ow.dropped[i];
  assert_int_equal(dropped, st.dropped_full);
  assert_int_equal(st.records_sent + st.dropped_full, n);
  /* What was delivered is in order. */
  for (size_t i = 1; i < fk.ndelivered[0]; i++)
    assert_true(fk.delivered[0][i] > fk.delivered[0][i - 1]);
  close_ship(s);
}

static void restart_drains_the_existing_spool(void **state)
{
  struct nn_ship *s;
  base_config(1);
  cfg.data_dir = tmpdir;
  cfg.batch_size = 1024;
  cfg.backoff_min_ms = 5;
  cfg.backoff_max_ms = 10;
  fk.status[0] = -ECONNREFUSED;
  assert_int_equal(nn_ship_create(&loop, &cfg, &s), 0);
  unsigned n = 200;
  for (unsigned i = 0; i < n; i++) {
    assert_int_equal(add_rec(s, i, 40), 0);
    if (i % 20 == 0)
      run_for(1);
  }
  run_for(20);
  close_ship(s); /* the open batch and the memory queue go to the spool */
  assert_int_equal(ow.n, 0);

  fk.status[0] = 204;
  assert_int_equal(nn_ship_create(&loop, &cfg, &s), 0);
  size_t all = n;
  assert_true(run_until(acks_at_least, &all, 5000));
  assert_acked_in_order(n);
  for (unsigned i = 0; i < n; i++)
    assert_true(ow.recovered[i]);
  assert_delivered_in_order(0, n);
  close_ship(s);
  /* Reopening once more finds nothing left to send. */
  size_t calls = fk.n;
  assert_int_equal(nn_ship_create(&loop, &cfg, &s), 0);
  run_for(30);
  assert_int_equal(fk.n, calls);
  close_ship(s);
}

static void two_destinations_ack_only_after_both(void **state)
{
  struct nn_ship *s;
  base_config(2);
  fk.status[1] = 0; /* b holds */
  struct nn_metrics *mx = nn_metrics_create();
  cfg.metrics = mx;
  dcfg[1].codec = NN_CODEC_ZSTD;
  dcfg[1].tenant = "team-a";
  assert_int_equal(nn_ship_create(&loop, &cfg, &s), 0);
  for (unsigned i = 0; i < 10; i++)
    assert_int_equal(add_rec(s, i, 10), 0);
  assert_int_equal(nn_ship_flush(s), 0);
  size_t two = 2;
  assert_true(run_until(calls_at_least, &two, 2000));
  run_for(30);
  assert_int_equal(stats(s, 0).batches_sent, 1);
  assert_int_equal(pending_for(1), 1);
  assert_int_equal(ow.n, 0); /* a accepted, b has not answered */
  respond(1, 204);
  size_t ten = 10;
  assert_true(run_until(acks_at_least, &ten, 2000));
  assert_acked_in_order(10);
  assert_int_equal(stats(s, 1).batches_sent, 1);
  struct nn_buf out;
  nn_buf_init(&out, 1 << 20);
  assert_int_equal(nn_metrics_render(mx, &out), 0);
  assert_non_null(
      strstr(out.data, "nines_agent_ship_batches_sent_total{source=\"t\",destination=\"b\"} 1"));
  assert_non_null(strstr(out.data, "nines_agent_ship_records_sent_total{source=\"t\","
                                   "destination=\"a\"} 10"));
  assert_non_null(strstr(out.data, "reason=\"spool_full\"} 0"));
  nn_buf_fini(&out);
  close_ship(s);
  nn_metrics_destroy(mx);
}

static bool one_sent(void *ud)
{
  struct nn_ship_dest_stats st;
  nn_ship_dest_stats(ud, 0, &st);
  return st.batches_sent >= 1;
}

static void samples_without_tokens_ship_and_ack_nothing(void **state)
{
  struct nn_ship *s;
  base_config(1);
  cfg.payload = &nn_ship_payload_remote_write;
  assert_int_equal(nn_ship_create(&loop, &cfg, &s), 0);
  struct nn_buf key, piece;
  nn_buf_init(&key, 1024);
  nn_buf_init(&piece, 1024);
  assert_int_equal(nn_ship_rw_label_encode(&key, "__name__", "rec-000000"), 0);
  for (int i = 0; i < 5; i++) {
    nn_buf_reset(&piece);
    assert_int_equal(nn_ship_rw_sample_encode(&piece, i, 1000 + i), 0);
    assert_int_equal(nn_ship_add(s, key.data, key.len, piece.data, piece.len, NULL), 0);
  }
  assert_int_equal(nn_ship_flush(s), 0);
  assert_true(run_until(one_sent, s, 2000));
  assert_int_equal(stats(s, 0).records_sent, 5);
  assert_int_equal(fk.calls[0].nrecs, 1); /* one series: its labels are written once */
  run_for(5);
  assert_int_equal(ow.n, 0);
  nn_buf_fini(&key);
  nn_buf_fini(&piece);
  close_ship(s);
}

static bool all_tiny_sent(void *ud)
{
  struct nn_ship_dest_stats st;
  nn_ship_dest_stats(ud, 0, &st);
  return st.records_sent >= 400000;
}

/* Per-record bookkeeping must not make small records fail before the batch is full. */
static void tiny_records_fill_whole_batches(void **state)
{
  struct nn_ship *s;
  base_config(1);
  cfg.batch_size = 1 << 20;
  assert_int_equal(nn_ship_create(&loop, &cfg, &s), 0);
  for (unsigned i = 0; i < 400000; i++)
    assert_int_equal(nn_ship_add(s, "k", 1, "z", 1, NULL), 0);
  assert_int_equal(nn_ship_flush(s), 0);
  assert_true(run_until(all_tiny_sent, s, 5000));
  assert_true(fk.n <= 3); /* about 3 bytes each: 350k records per 1 MiB batch */
  close_ship(s);
}

static void bad_configs_are_refused(void **state)
{
  struct nn_ship *s = NULL;
  base_config(1);
  dcfg[0].name = "../etc";
  assert_int_equal(nn_ship_create(&loop, &cfg, &s), NN_ECONFIG);
  base_config(2);
  dcfg[1].name = "a";
  assert_int_equal(nn_ship_create(&loop, &cfg, &s), NN_ECONFIG);
  base_config(1);
  const char *hdrs[] = {"Content-Encoding: gzip"};
  dcfg[0].headers = hdrs;
  dcfg[0].nheaders = 1;
  assert_int_equal(nn_ship_create(&loop, &cfg, &s), NN_ECONFIG);
  base_config(1);
  dcfg[0].max_inflight = 0;
  assert_int_equal(nn_ship_create(&loop, &cfg, &s), NN_ECONFIG);
  base_config(1);
  dcfg[0].backoff_min_ms = 50;
  dcfg[0].backoff_max_ms = 20;
  assert_int_equal(nn_ship_create(&loop, &cfg, &s), NN_ECONFIG);
  base_config(1);
  dcfg[0].backoff_max_ms = 5; /* below the ship's min_backoff (10 ms) it inherits */
  assert_int_equal(nn_ship_create(&loop, &cfg, &s), NN_ECONFIG);
  base_config(1);
  dcfg[0].backoff_min_ms = -1;
  assert_int_equal(nn_ship_create(&loop, &cfg, &s), NN_ECONFIG);
  base_config(0);
  assert_int_equal(nn_ship_create(&loop, &cfg, &s), NN_ECONFIG);
  assert_null(s);
}

int main(void)
{
  nn_log_setup(NN_LOG_ERROR, NN_LOG_LOGFMT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(batches_close_by_size, setup, teardown),
      cmocka_unit_test_setup_teardown(batches_close_by_age, setup, teardown),
      cmocka_unit_test_setup_teardown(retries_server_errors_rate_limits_and_connection_errors,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(destination_backoff_overrides_the_ships_and_caps_every_delay,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(retry_after_is_honoured_and_capped, setup, teardown),
      cmocka_unit_test_setup_teardown(rejected_batch_is_dead_lettered_counted_and_acked, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(outage_spools_then_drains_in_order, setup, teardown),
      cmocka_unit_test_setup_teardown(full_spool_pauses_producers_then_resumes, setup, teardown),
      cmocka_unit_test_setup_teardown(slow_healthy_destination_pauses_instead_of_spooling, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(drop_oldest_counts_every_dropped_record, setup, teardown),
      cmocka_unit_test_setup_teardown(restart_drains_the_existing_spool, setup, teardown),
      cmocka_unit_test_setup_teardown(two_destinations_ack_only_after_both, setup, teardown),
      cmocka_unit_test_setup_teardown(samples_without_tokens_ship_and_ack_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(tiny_records_fill_whole_batches, setup, teardown),
      cmocka_unit_test_setup_teardown(bad_configs_are_refused, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
