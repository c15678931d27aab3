/* SPDX-License-Identifier: Apache-2.0 */
/* Persisted blocks: cutting the head into blocks keeps every query's answer exact,
 * queries span blocks and head, restarts load blocks without duplicating WAL data,
 * damaged blocks are skipped and counted, retention by time and size, and the bytes
 * per sample on disk for a realistic counter workload. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "aggregator/tsdb/internal.h"
#include "aggregator/tsdb/tsdb.h"
#include "common/log.h"

#define HOUR   (3600 * 1000LL)
#define T0     (1700000000000LL - 1700000000000LL % (2 * HOUR)) /* block-aligned */
#define STEP   15000
#define NSER   300
#define NSTEPS (7 * HOUR / STEP) /* 7 h: two blocks cut, the rest in the head */

static char *tmpdir(void)
{
  char tmpl[] = "/tmp/nn-tsdb-block-XXXXXX";
  char *d = mkdtemp(tmpl);
  assert_non_null(d);
  return strdup(d);
}

static void rm_rf(const char *dir)
{
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

static struct nn_tsdb *open_at(const char *dir, uv_loop_t *loop, uint64_t retention_bytes)
{
  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  o.dir = dir;
  o.loop = loop;
  o.wal_fsync = false;
  o.retention_bytes = retention_bytes;
  struct nn_tsdb *db = NULL;
  assert_int_equal(nn_tsdb_open(&o, &db), 0);
  return db;
}

/* Values exercise the encoder: counters, a gauge with fractions, NaN and stale markers. */
static double value_at(int series, int step)
{
  if (series % 50 == 7 && step % 97 == 0)
    return nn_stale_nan_value();
  if (series % 3 == 0)
    return (double)(step * (series % 11 + 1)) + (double)(step / 40);
  if (series % 3 == 1)
    return sin(step * 0.01 + series) * 100.0;
  return (double)(series % 5);
}

static void append_range(struct nn_tsdb *db, int first, int last, int nser)
{
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  char inst[32], job[16];
  for (int k = first; k < last; k++) {
    for (int i = 0; i < nser; i++) {
      /* Some series stop early or start late, so blocks hold different series sets. */
      if ((i % 17 == 3 && k > NSTEPS / 3) || (i % 19 == 5 && k < NSTEPS / 2))
        continue;
      snprintf(inst, sizeof(inst), "host-%04d", i);
      snprintf(job, sizeof(job), "job%d", i % 4);
      struct nn_label ls[] = {
          {"__name__", i % 2 ? "req_total" : "cpu_seconds"}, {"instance", inst}, {"job", job}};
      assert_int_equal(
          nn_tsdb_appender_append(a, ls, 3, T0 + (int64_t)k * STEP + i % 7, value_at(i, k), NULL),
          0);
    }
    assert_int_equal(nn_tsdb_appender_commit(a), 0);
  }
  nn_tsdb_appender_destroy(a);
}

static void matcher(struct nn_matcher *m, enum nn_match_type t, const char *n, const char *v)
{
  char err[128];
  assert_int_equal(nn_matcher_init(m, t, n, v, err, sizeof(err)), 0);
}

/* Asserts two result sets are equal: labels, timestamps and value bits. */
static void assert_sets_equal(const struct nn_series_set *a, const struct nn_series_set *b)
{
  assert_int_equal(a->n, b->n);
  for (size_t i = 0; i < a->n; i++) {
    const struct nn_series *x = &a->series[i], *y = &b->series[i];
    assert_int_equal(nn_labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels), 0);
    assert_int_equal(x->n, y->n);
    assert_memory_equal(x->t, y->t, x->n * sizeof(*x->t));
    assert_memory_equal(x->v, y->v, x->n * sizeof(*x->v));
  }
}

static void assert_lists_equal(const struct nn_strlist *a, const struct nn_strlist *b)
{
  assert_int_equal(a->n, b->n);
  for (size_t i = 0; i < a->n; i++)
    assert_string_equal(a->v[i], b->v[i]);
}

struct query_case {
  int64_t mint, maxt;
  int nms;
  struct nn_matcher ms[2];
};

#define NCASES 6

static void make_cases(struct query_case *qc)
{
  memset(qc, 0, NCASES * sizeof(*qc));
  qc[0] = (struct query_case){INT64_MIN, INT64_MAX, 0, {{0}}};
  qc[1] = (struct query_case){T0 + HOUR, T0 + 5 * HOUR, 1, {{0}}}; /* spans both blocks + head */
  matcher(&qc[1].ms[0], NN_MATCH_EQ, "__name__", "req_total");
  qc[2] = (struct query_case){T0 + 2 * HOUR - 60000, T0 + 2 * HOUR + 60000, 2, {{0}}};
  matcher(&qc[2].ms[0], NN_MATCH_RE, "instance", "host-00[0-4].");
  matcher(&qc[2].ms[1], NN_MATCH_NE, "job", "job1");
  qc[3] = (struct query_case){T0 + 4 * HOUR - 1, T0 + 6 * HOUR, 1, {{0}}};
  matcher(&qc[3].ms[0], NN_MATCH_NRE, "job", "job[02]");
  qc[4] = (struct query_case){T0, T0 + 30 * 60000, 1, {{0}}};
  matcher(&qc[4].ms[0], NN_MATCH_EQ, "nonexistent", "");
  qc[5] = (struct query_case){T0 + 3 * HOUR, T0 + 3 * HOUR, 0, {{0}}};
}

static void free_cases(struct query_case *qc)
{
  for (int i = 0; i < NCASES; i++)
    for (int k = 0; k < qc[i].nms; k++)
      nn_matcher_fini(&qc[i].ms[k]);
}

/* Answers of every case: selects, label names, values of "instance". */
struct answers {
  struct nn_series_set sets[NCASES];
  struct nn_strlist names[NCASES], values[NCASES];
};

struct stream_check {
  const struct nn_series_set *want;
  size_t i;
};

static int on_streamed(void *ud, const struct nn_series *s)
{
  struct stream_check *sc = ud;
  assert_true(sc->i < sc->want->n);
  const struct nn_series *w = &sc->want->series[sc->i++];
  assert_int_equal(nn_labels_cmp(s->labels, s->nlabels, w->labels, w->nlabels), 0);
  assert_int_equal(s->n, w->n);
  assert_memory_equal(s->t, w->t, s->n * sizeof(*s->t));
  assert_memory_equal(s->v, w->v, s->n * sizeof(*s->v));
  return 0;
}

static void ask(struct nn_tsdb *db, struct query_case *qc, struct answers *an)
{
  struct nn_querier q;
  nn_tsdb_querier(db, &q);
  for (int i = 0; i < NCASES; i++) {
    struct nn_select_hints h = {qc[i].mint, qc[i].maxt, 0};
    assert_int_equal(q.select(q.ctx, qc[i].ms, (size_t)qc[i].nms, &h, &an->sets[i]), 0);
    /* The streamed select hands out the same series, in the same order. */
    struct stream_check sc = {&an->sets[i], 0};
    assert_int_equal(q.select_stream(q.ctx, qc[i].ms, (size_t)qc[i].nms, &h, on_streamed, &sc), 0);
    assert_int_equal(sc.i, an->sets[i].n);
    assert_int_equal(
        q.label_names(q.ctx, qc[i].ms, (size_t)qc[i].nms, qc[i].mint, qc[i].maxt, &an->names[i]),
        0);
    assert_int_equal(q.label_values(q.ctx, "instance", qc[i].ms, (size_t)qc[i].nms, qc[i].mint,
                                    qc[i].maxt, &an->values[i]),
                     0);
  }
}

static void answers_equal(const struct answers *a, const struct answers *b)
{
  for (int i = 0; i < NCASES; i++) {
    assert_sets_equal(&a->sets[i], &b->sets[i]);
    assert_lists_equal(&a->names[i], &b->names[i]);
    /* Label values over a whole block may include series outside the exact range (as
     * in Prometheus); they must at least cover the head's answer. */
    assert_true(b->values[i].n >= a->values[i].n);
  }
}

static void answers_free(struct answers *an)
{
  for (int i = 0; i < NCASES; i++) {
    an->sets[i].release(&an->sets[i]);
    nn_strlist_free(&an->names[i]);
    nn_strlist_free(&an->values[i]);
  }
}

static void cut_blocks_answer_exactly_as_the_head_did(void **state)
{
  (void)state;
  char *dir = tmpdir();
  struct nn_tsdb *db = open_at(dir, NULL, 0);
  append_range(db, 0, NSTEPS, NSER);
  struct query_case qc[NCASES];
  make_cases(qc);
  struct answers before, after, restarted;
  ask(db, qc, &before);
  assert_true(before.sets[0].n > 250);
  assert_true(before.sets[1].n > 0 && before.sets[2].n > 0 && before.sets[3].n > 0);

  struct nn_tsdb_stats st0, st;
  nn_tsdb_stats(db, &st0);
  assert_int_equal(nn_tsdb_maintain(db, T0 + NSTEPS * STEP), 0);
  nn_tsdb_stats(db, &st);
  /* 7 h of data: [0,2h) and [2h,4h) are cut; the head keeps 3 h (< 1.5 ranges after). */
  assert_int_equal(st.blocks, 2);
  assert_int_equal(st.blocks_cut_total, 2);
  assert_true(st.block_bytes > 0);
  assert_true(st.chunks < st0.chunks);
  assert_true(st.min_time >= T0 + 4 * HOUR - 2 * 120 * STEP);
  assert_true(st.wal_checkpoints_total >= 1);
  assert_int_equal(st.blocks_min_time, T0);

  ask(db, qc, &after);
  answers_equal(&before, &after);

  /* The sample limit counts across blocks and head. */
  size_t total = 0;
  for (size_t i = 0; i < after.sets[0].n; i++)
    total += after.sets[0].series[i].n;
  struct nn_querier q;
  nn_tsdb_querier(db, &q);
  struct nn_series_set lim;
  struct nn_select_hints h = {INT64_MIN, INT64_MAX, total - 1};
  assert_int_equal(q.select(q.ctx, NULL, 0, &h, &lim), NN_ELIMIT);
  h.max_samples = total;
  assert_int_equal(q.select(q.ctx, NULL, 0, &h, &lim), 0);
  assert_int_equal(lim.n, after.sets[0].n);
  lim.release(&lim);

  /* The cut range is closed: a late sample for it is out of bounds. */
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  struct nn_label ls[] = {{"__name__", "late"}};
  assert_int_equal(nn_tsdb_appender_append(a, ls, 1, T0 + HOUR, 1, NULL), NN_TSDB_EOUTOFBOUNDS);
  nn_tsdb_appender_destroy(a);

  nn_tsdb_close(db);
  db = open_at(dir, NULL, 0);
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.blocks, 2);
  assert_int_equal(st.blocks_corrupt_total, 0);
  ask(db, qc, &restarted);
  answers_equal(&before, &restarted);
  answers_free(&restarted);
  answers_free(&after);
  answers_free(&before);
  free_cases(qc);
  nn_tsdb_close(db);
  rm_rf(dir);
  free(dir);
}

/* A crash after the block was written but before the checkpoint leaves the whole WAL:
 * replay must not show the block's samples twice, nor cut the range again. */
static void replaying_a_wal_the_blocks_cover_duplicates_nothing(void **state)
{
  (void)state;
  char *dir = tmpdir();
  char cmd[1200];
  struct nn_tsdb *db = open_at(dir, NULL, 0);
  append_range(db, 0, NSTEPS, 100);
  struct query_case qc[NCASES];
  make_cases(qc);
  struct answers before, restarted;
  ask(db, qc, &before);
  assert_int_equal(nn_tsdb_sync(db), 0);
  snprintf(cmd, sizeof(cmd), "cp -r '%s/wal' '%s/wal.saved'", dir, dir);
  assert_int_equal(system(cmd), 0);
  assert_int_equal(nn_tsdb_maintain(db, T0 + NSTEPS * STEP), 0);
  nn_tsdb_close(db);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s/wal' && mv '%s/wal.saved' '%s/wal'", dir, dir, dir);
  assert_int_equal(system(cmd), 0);

  db = open_at(dir, NULL, 0);
  struct nn_tsdb_stats st;
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.blocks, 2);
  assert_true(st.min_time >= T0 + 4 * HOUR - 2 * 120 * STEP); /* replayed head truncated */
  ask(db, qc, &restarted);
  answers_equal(&before, &restarted);
  assert_int_equal(nn_tsdb_maintain(db, T0 + NSTEPS * STEP), 0);
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.blocks, 2);
  assert_int_equal(st.blocks_cut_total, 0);
  answers_free(&restarted);
  answers_free(&before);
  free_cases(qc);
  nn_tsdb_close(db);
  rm_rf(dir);
  free(dir);
}

static void block_path(const char *dir, const char *file, int which, char *out, size_t n)
{
  snprintf(out, n, "%s/blocks/%lld_%lld/%s", dir, (long long)(T0 + which * 2 * HOUR),
           (long long)(T0 + (which + 1) * 2 * HOUR), file);
}

static void flip_byte(const char *path, off_t off)
{
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  uint8_t c;
  assert_int_equal(pread(fd, &c, 1, off), 1);
  c ^= 0x5a;
  assert_int_equal(pwrite(fd, &c, 1, off), 1);
  close(fd);
}

static void damaged_blocks_are_skipped_and_counted(void **state)
{
  (void)state;
  char *dir = tmpdir();
  char p[1200];
  struct nn_tsdb *db = open_at(dir, NULL, 0);
  append_range(db, 0, NSTEPS, 60);
  assert_int_equal(nn_tsdb_maintain(db, T0 + NSTEPS * STEP), 0);
  nn_tsdb_close(db);

  /* Truncated chunks file in block 0, flipped index byte in block 1. */
  block_path(dir, "chunks", 0, p, sizeof(p));
  struct stat st0;
  assert_int_equal(stat(p, &st0), 0);
  assert_int_equal(truncate(p, st0.st_size / 2), 0);
  block_path(dir, "index", 1, p, sizeof(p));
  assert_int_equal(stat(p, &st0), 0);
  flip_byte(p, st0.st_size / 3);

  db = open_at(dir, NULL, 0);
  struct nn_tsdb_stats st;
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.blocks, 0);
  assert_int_equal(st.blocks_corrupt_total, 2);
  struct nn_querier q;
  nn_tsdb_querier(db, &q);
  struct nn_series_set set;
  assert_int_equal(q.select(q.ctx, NULL, 0, NULL, &set), 0);
  assert_true(set.n > 0); /* the head still answers */
  for (size_t i = 0; i < set.n; i++)
    assert_true(set.series[i].t[0] >= T0 + 4 * HOUR - 2 * 120 * STEP);
  set.release(&set);
  nn_tsdb_close(db);
  rm_rf(dir);
  free(dir);
}

static int count_streamed(void *ud, const struct nn_series *s)
{
  assert_true(s->n > 0);
  ++*(size_t *)ud;
  return 0;
}

static void a_bad_chunk_checksum_takes_out_the_block_not_the_query(void **state)
{
  (void)state;
  char *dir = tmpdir();
  char p[1200];
  struct nn_tsdb *db = open_at(dir, NULL, 0);
  append_range(db, 0, NSTEPS, 60);
  assert_int_equal(nn_tsdb_maintain(db, T0 + NSTEPS * STEP), 0);
  nn_tsdb_close(db);
  block_path(dir, "chunks", 0, p, sizeof(p));
  flip_byte(p, 200);

  db = open_at(dir, NULL, 0);
  struct nn_tsdb_stats st;
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.blocks, 2); /* chunk CRCs are checked on read, not at open */
  struct nn_querier q;
  nn_tsdb_querier(db, &q);
  struct nn_series_set set;
  struct nn_select_hints h = {T0, T0 + 3 * HOUR, 0};
  assert_int_equal(q.select(q.ctx, NULL, 0, &h, &set), 0);
  assert_true(set.n > 0);
  for (size_t i = 0; i < set.n; i++)
    assert_true(set.series[i].t[0] >= T0 + 2 * HOUR); /* block 0 is out */
  size_t nsel = set.n;
  set.release(&set);
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.blocks_corrupt_total, 1);
  nn_tsdb_close(db);

  /* A streamed select meets the bad chunk mid-way: the block goes out from there on, the
   * query goes on, every series still comes (from the other block). */
  db = open_at(dir, NULL, 0);
  nn_tsdb_querier(db, &q);
  size_t nstream = 0;
  assert_int_equal(q.select_stream(q.ctx, NULL, 0, &h, count_streamed, &nstream), 0);
  assert_int_equal(nstream, nsel);
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.blocks_corrupt_total, 1);
  nn_tsdb_close(db);
  rm_rf(dir);
  free(dir);
}

static void retention_deletes_old_blocks_by_time_and_by_size(void **state)
{
  (void)state;
  char *dir = tmpdir();
  struct nn_tsdb *db = open_at(dir, NULL, 0);
  append_range(db, 0, NSTEPS, 40);
  int64_t now = T0 + NSTEPS * STEP;
  assert_int_equal(nn_tsdb_maintain(db, now), 0);
  struct nn_tsdb_stats st;
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.blocks, 2);
  uint64_t one = st.block_bytes / 2;

  /* 15 d after the first block's end, only it is past retention. */
  assert_int_equal(nn_tsdb_maintain(db, T0 + 2 * HOUR + 15 * 24 * HOUR), 0);
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.blocks, 1);
  assert_int_equal(st.blocks_deleted_total, 1);
  assert_int_equal(st.blocks_min_time, T0 + 2 * HOUR);
  char p[1200];
  struct stat sb;
  block_path(dir, "", 0, p, sizeof(p));
  assert_int_equal(stat(p, &sb), -1);
  nn_tsdb_close(db);

  /* By size: a cap below two blocks keeps only the newest. */
  rm_rf(dir);
  mkdir(dir, 0755);
  db = open_at(dir, NULL, one + one / 2);
  append_range(db, 0, NSTEPS, 40);
  assert_int_equal(nn_tsdb_maintain(db, now), 0);
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.blocks, 1);
  assert_int_equal(st.blocks_deleted_total, 1);
  assert_int_equal(st.blocks_min_time, T0 + 2 * HOUR);
  nn_tsdb_close(db);
  rm_rf(dir);
  free(dir);
}

static void cuts_run_on_the_thread_pool_with_a_loop(void **state)
{
  (void)state;
  char *dir = tmpdir();
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  struct nn_tsdb *db = open_at(dir, &loop, 0);
  append_range(db, 0, NSTEPS, 50);
  struct query_case qc[NCASES];
  make_cases(qc);
  struct answers before, after;
  ask(db, qc, &before);
  assert_int_equal(nn_tsdb_maintain(db, T0 + NSTEPS * STEP), 0);
  struct nn_tsdb_stats st;
  /* The first cut completes on the loop and starts the next one by itself. */
  for (int i = 0; i < 2000; i++) {
    nn_tsdb_stats(db, &st);
    if (st.blocks == 2)
      break;
    uv_run(&loop, UV_RUN_ONCE);
  }
  assert_int_equal(st.blocks, 2);
  ask(db, qc, &after);
  answers_equal(&before, &after);
  answers_free(&after);
  answers_free(&before);
  free_cases(qc);
  nn_tsdb_close(db);

  /* Closing with a cut in flight waits for it; the next open loads its block. */
  rm_rf(dir);
  mkdir(dir, 0755);
  db = open_at(dir, &loop, 0);
  append_range(db, 0, NSTEPS, 50);
  assert_int_equal(nn_tsdb_maintain(db, T0 + NSTEPS * STEP), 0);
  nn_tsdb_close(db);
  uv_run(&loop, UV_RUN_DEFAULT);
  db = open_at(dir, NULL, 0);
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.blocks, 1);
  nn_tsdb_close(db);
  assert_int_equal(uv_loop_close(&loop), 0);
  rm_rf(dir);
  free(dir);
}

/* Blocks written before packed chunks (chunks file version 1, XOR records) still load and
 * answer as the head did, next to new ones. */
static void version_1_blocks_still_read(void **state)
{
  (void)state;
  char *dir = tmpdir();
  struct nn_tsdb *db = open_at(dir, NULL, 0);
  append_range(db, 0, NSTEPS, NSER);
  struct query_case qc[NCASES];
  make_cases(qc);
  struct answers before, after;
  ask(db, qc, &before);
  nn__tsdb_block_chunks_version = 1;
  int rc = nn_tsdb_maintain(db, T0 + NSTEPS * STEP);
  nn__tsdb_block_chunks_version = 2;
  assert_int_equal(rc, 0);
  struct nn_tsdb_stats st;
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.blocks, 2);
  nn_tsdb_close(db);
  /* Reopened: the old blocks load from disk; the answers are the same. */
  db = open_at(dir, NULL, 0);
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.blocks, 2);
  assert_int_equal(st.blocks_corrupt_total, 0);
  ask(db, qc, &after);
  answers_equal(&before, &after);
  answers_free(&after);
  answers_free(&before);
  free_cases(qc);
  nn_tsdb_close(db);
  rm_rf(dir);
  free(dir);
}

/* 10k counters scraped every 15 s for 4 h: one 2 h block is cut. */
static void bytes_per_sample_for_scraped_counters(void **state)
{
  (void)state;
  enum { N = 10000 };
  const int steps = (int)(4 * HOUR / STEP);
  char *dir = tmpdir();
  struct nn_tsdb *db = open_at(dir, NULL, 0);
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  uint64_t *refs = calloc(N, sizeof(*refs));
  double *val = calloc(N, sizeof(*val));
  assert_non_null(refs);
  assert_non_null(val);
  char inst[32], path[16], code[8];
  uint32_t rnd = 12345;
  for (int k = 0; k < steps; k++) {
    for (int i = 0; i < N; i++) {
      /* Request counters growing by 0-15 per scrape (as bench/gen's); a tenth never
       * move (error counters). */
      rnd = rnd * 1103515245u + 12345u;
      if (i % 10)
        val[i] += (double)((rnd >> 16) % 16);
      int64_t t = T0 + (int64_t)k * STEP;
      if (k == 0) {
        snprintf(inst, sizeof(inst), "10.0.%d.%d:9100", i / 250, i % 250);
        snprintf(path, sizeof(path), "/api/v%d", i % 13);
        snprintf(code, sizeof(code), "%d", 200 + i % 5);
        struct nn_label ls[] = {{"__name__", "http_requests_total"},
                                {"code", code},
                                {"instance", inst},
                                {"job", "api"},
                                {"path", path}};
        assert_int_equal(nn_tsdb_appender_append(a, ls, 5, t, val[i], &refs[i]), 0);
      } else {
        assert_int_equal(nn_tsdb_appender_append_ref(a, refs[i], t, val[i]), 0);
      }
    }
    assert_int_equal(nn_tsdb_appender_commit(a), 0);
  }
  nn_tsdb_appender_destroy(a);
  assert_int_equal(nn_tsdb_maintain(db, T0 + 4 * HOUR), 0);
  struct nn_tsdb_stats st;
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.blocks, 1);
  assert_int_equal(st.block_samples, (uint64_t)N * (uint64_t)(2 * HOUR / STEP));
  double bps = (double)st.block_bytes / (double)st.block_samples;
  printf("block: %llu samples, %llu bytes, %.3f bytes/sample, cut in %.3f s\n",
         (unsigned long long)st.block_samples, (unsigned long long)st.block_bytes, bps,
         st.block_cut_seconds_last);
  assert_true(bps < 3.0);
  free(refs);
  free(val);
  nn_tsdb_close(db);
  rm_rf(dir);
  free(dir);
}

int main(void)
{
  nn_log_setup(NN_LOG_ERROR, NN_LOG_LOGFMT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(cut_blocks_answer_exactly_as_the_head_did),
      cmocka_unit_test(replaying_a_wal_the_blocks_cover_duplicates_nothing),
      cmocka_unit_test(damaged_blocks_are_skipped_and_counted),
      cmocka_unit_test(a_bad_chunk_checksum_takes_out_the_block_not_the_query),
      cmocka_unit_test(retention_deletes_old_blocks_by_time_and_by_size),
      cmocka_unit_test(cuts_run_on_the_thread_pool_with_a_loop),
      cmocka_unit_test(version_1_blocks_still_read),
      cmocka_unit_test(bytes_per_sample_for_scraped_counters),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
