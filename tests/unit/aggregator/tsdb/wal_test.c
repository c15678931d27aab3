/* SPDX-License-Identifier: Apache-2.0 */
/* The WAL: CRC32C, replay after a clean close, a torn tail cut at every byte of the last
 * record, a flipped byte in the middle of a segment, segment rotation, back-pressure,
 * and group-commit callbacks on a libuv loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "aggregator/tsdb/internal.h"
#include "aggregator/tsdb/tsdb.h"

static char *tmpdir(void)
{
  char tmpl[] = "/tmp/nn-tsdb-wal-XXXXXX";
  char *d = mkdtemp(tmpl);
  assert_non_null(d);
  return strdup(d);
}

static void rm_rf(const char *dir)
{
  char cmd[512];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

static struct nn_tsdb *open_at(const char *dir, uv_loop_t *loop)
{
  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  o.dir = dir;
  o.loop = loop;
  o.wal_fsync = false; /* the tests check ordering and content, not the disk */
  struct nn_tsdb *db = NULL;
  assert_int_equal(nn_tsdb_open(&o, &db), 0);
  return db;
}

/* Writes `commits` commits of `per` series each, one sample per series per commit. */
static void write_data(struct nn_tsdb *db, int first_commit, int commits, int per)
{
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  char name[32];
  for (int c = first_commit; c < first_commit + commits; c++) {
    for (int s = 0; s < per; s++) {
      snprintf(name, sizeof(name), "s%d", s);
      struct nn_label ls[] = {{"__name__", "m"}, {"id", name}};
      assert_int_equal(nn_tsdb_appender_append(a, ls, 2, (int64_t)c * 1000, c + s * 0.5, NULL), 0);
    }
    assert_int_equal(nn_tsdb_appender_commit(a), 0);
  }
  nn_tsdb_appender_destroy(a);
}

static size_t count_samples(struct nn_tsdb *db, size_t *nseries)
{
  struct nn_querier q;
  nn_tsdb_querier(db, &q);
  struct nn_series_set set;
  struct nn_matcher m;
  char err[64];
  assert_int_equal(nn_matcher_init(&m, NN_MATCH_EQ, "__name__", "m", err, sizeof(err)), 0);
  assert_int_equal(q.select(q.ctx, &m, 1, NULL, &set), 0);
  size_t n = 0;
  for (size_t i = 0; i < set.n; i++) {
    n += set.series[i].n;
    for (size_t k = 1; k < set.series[i].n; k++)
      assert_true(set.series[i].t[k] > set.series[i].t[k - 1]);
  }
  if (nseries)
    *nseries = set.n;
  set.release(&set);
  nn_matcher_fini(&m);
  return n;
}

static void crc32c_matches_known_vectors(void **state)
{
  assert_int_equal(nn__tsdb_crc32c(0, "123456789", 9), 0xe3069283);
  assert_int_equal(nn__tsdb_crc32c_sw(0, "123456789", 9), 0xe3069283);
  uint8_t zeros[32] = {0};
  assert_int_equal(nn__tsdb_crc32c(0, zeros, 32), 0x8a9136aa);
  uint8_t buf[1000];
  for (size_t i = 0; i < sizeof(buf); i++)
    buf[i] = (uint8_t)(i * 31 + 7);
  for (size_t n = 0; n < sizeof(buf); n += 37) {
    uint32_t a = nn__tsdb_crc32c(0, buf + 1, n);
    assert_int_equal(a, nn__tsdb_crc32c_sw(0, buf + 1, n));
    /* Continuing over pieces equals one pass. */
    uint32_t c = nn__tsdb_crc32c(nn__tsdb_crc32c(0, buf + 1, n / 3), buf + 1 + n / 3, n - n / 3);
    assert_int_equal(a, c);
  }
}

static void replay_after_close_restores_the_head(void **state)
{
  char *dir = tmpdir();
  struct nn_tsdb *db = open_at(dir, NULL);
  write_data(db, 1, 50, 200);
  struct nn_label extra[] = {{"__name__", "other"}};
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  uint64_t ref_before;
  assert_int_equal(nn_tsdb_appender_append(a, extra, 1, 50000, 1, &ref_before), 0);
  assert_int_equal(nn_tsdb_appender_commit(a), 0);
  nn_tsdb_appender_destroy(a);
  assert_int_equal(nn_tsdb_sync(db), 0);
  struct nn_tsdb_stats st;
  nn_tsdb_stats(db, &st);
  assert_true(st.wal_bytes_written_total > 0);
  nn_tsdb_close(db);

  db = open_at(dir, NULL);
  size_t ns;
  assert_int_equal(count_samples(db, &ns), 50 * 200);
  assert_int_equal(ns, 200);
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.series, 201);
  assert_int_equal(st.wal_replay_samples_total, 50 * 200 + 1);
  assert_int_equal(st.wal_corruptions_total, 0);
  assert_int_equal(st.max_time, 50000);
  /* Old refs stay attached, and new series get fresh refs. */
  a = nn_tsdb_appender_create(db);
  uint64_t ref_after;
  assert_int_equal(nn_tsdb_appender_append(a, extra, 1, 51000, 2, &ref_after), 0);
  assert_int_equal(ref_after, ref_before);
  struct nn_label fresh[] = {{"__name__", "fresh"}};
  assert_int_equal(nn_tsdb_appender_append(a, fresh, 1, 51000, 2, &ref_after), 0);
  assert_true(ref_after > ref_before);
  /* Out-of-order detection survives the restart. */
  struct nn_label s0[] = {{"__name__", "m"}, {"id", "s0"}};
  assert_int_equal(nn_tsdb_appender_append(a, s0, 2, 1000, 1, NULL), NN_EOUTOFORDER);
  assert_int_equal(nn_tsdb_appender_commit(a), 0);
  nn_tsdb_appender_destroy(a);
  nn_tsdb_close(db);

  /* A third open sees both generations. */
  db = open_at(dir, NULL);
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.series, 202);
  nn_tsdb_close(db);
  rm_rf(dir);
  free(dir);
}

static char *read_file(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *p = malloc((size_t)n + 1);
  assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return p;
}

static void write_file(const char *path, const char *p, size_t n)
{
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(p, 1, n, f), n);
  fclose(f);
}

/* Offsets at which records start in a segment image. */
static size_t record_starts(const char *p, size_t len, size_t *starts, size_t max)
{
  size_t off = 0, n = 0;
  while (off + NN__TSDB_REC_HDR <= len && n < max) {
    const uint8_t *h = (const uint8_t *)p + off;
    uint32_t rl =
        (uint32_t)h[1] | (uint32_t)h[2] << 8 | (uint32_t)h[3] << 16 | (uint32_t)h[4] << 24;
    starts[n++] = off;
    off += NN__TSDB_REC_HDR + rl;
  }
  assert_int_equal(off, len);
  return n;
}

static void torn_tail_is_truncated_at_every_offset(void **state)
{
  char *dir = tmpdir();
  struct nn_tsdb *db = open_at(dir, NULL);
  write_data(db, 1, 5, 3); /* commit 1: series + samples records; then samples only */
  nn_tsdb_close(db);
  char seg[512];
  snprintf(seg, sizeof(seg), "%s/wal/00000000", dir);
  size_t len;
  char *img = read_file(seg, &len);
  size_t starts[64];
  size_t nrec = record_starts(img, len, starts, 64);
  assert_int_equal(nrec, 6);
  size_t last = starts[nrec - 1];

  for (size_t cut = last; cut <= len; cut++) {
    char *d2 = tmpdir();
    char wal[256], seg2[512];
    snprintf(wal, sizeof(wal), "%s/wal", d2);
    assert_int_equal(mkdir(wal, 0755), 0);
    snprintf(seg2, sizeof(seg2), "%s/00000000", wal);
    write_file(seg2, img, cut);
    db = open_at(d2, NULL);
    struct nn_tsdb_stats st;
    nn_tsdb_stats(db, &st);
    bool whole = cut == len, torn = cut > last && !whole;
    assert_int_equal(st.wal_corruptions_total, torn ? 1 : 0);
    assert_int_equal(st.wal_truncated_bytes, torn ? cut - last : 0);
    assert_int_equal(count_samples(db, NULL), whole ? 15 : 12);
    /* Appending after the repair works and survives another restart. */
    write_data(db, 10, 1, 3);
    nn_tsdb_close(db);
    struct stat sb;
    assert_int_equal(stat(seg2, &sb), 0);
    assert_int_equal((size_t)sb.st_size, whole ? len : last);
    db = open_at(d2, NULL);
    nn_tsdb_stats(db, &st);
    assert_int_equal(st.wal_corruptions_total, 0);
    assert_int_equal(count_samples(db, NULL), (whole ? 15 : 12) + 3);
    nn_tsdb_close(db);
    rm_rf(d2);
    free(d2);
  }
  free(img);
  rm_rf(dir);
  free(dir);
}

static void flipped_byte_mid_segment_keeps_the_rest(void **state)
{
  char *dir = tmpdir();
  struct nn_tsdb *db = open_at(dir, NULL);
  write_data(db, 1, 4, 3); /* segment 0: series, samples x4 */
  nn_tsdb_close(db);
  db = open_at(dir, NULL);
  write_data(db, 5, 2, 3); /* segment 1: samples x2 */
  struct nn_label late[] = {{"__name__", "m"}, {"id", "late"}};
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  assert_int_equal(nn_tsdb_appender_append(a, late, 2, 7000, 7, NULL), 0);
  assert_int_equal(nn_tsdb_appender_commit(a), 0);
  nn_tsdb_appender_destroy(a);
  nn_tsdb_close(db);

  char seg[512];
  snprintf(seg, sizeof(seg), "%s/wal/00000000", dir);
  size_t len;
  char *img = read_file(seg, &len);
  size_t starts[16];
  assert_int_equal(record_starts(img, len, starts, 16), 5);
  /* Damage the third record (the second commit's samples): a byte inside its payload. */
  img[starts[2] + NN__TSDB_REC_HDR + 3] ^= 0x40;
  write_file(seg, img, len);

  db = open_at(dir, NULL);
  struct nn_tsdb_stats st;
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.wal_corruptions_total, 1);
  assert_int_equal(st.wal_truncated_bytes, len - starts[2]);
  /* Kept: commit 1 (3) from segment 0, commits 5-6 (6) and the late series from 1. */
  size_t ns;
  assert_int_equal(count_samples(db, &ns), 3 + 6 + 1);
  assert_int_equal(ns, 4);
  assert_int_equal(st.wal_replay_dropped_total, 0);
  nn_tsdb_close(db);
  /* The damaged segment was cut, so the next start is clean. */
  db = open_at(dir, NULL);
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.wal_corruptions_total, 0);
  assert_int_equal(count_samples(db, NULL), 10);
  nn_tsdb_close(db);

  /* Losing the series record itself: later samples for those refs are dropped and
   * counted, and the refs are not handed out again. */
  img[NN__TSDB_REC_HDR + 1] ^= 0x01;
  write_file(seg, img, len);
  db = open_at(dir, NULL);
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.wal_corruptions_total, 1);
  assert_int_equal(st.wal_replay_dropped_total, 6);
  assert_int_equal(count_samples(db, NULL), 1);
  a = nn_tsdb_appender_create(db);
  uint64_t ref;
  struct nn_label s0[] = {{"__name__", "m"}, {"id", "s0"}};
  assert_int_equal(nn_tsdb_appender_append(a, s0, 2, 9000, 9, &ref), 0);
  assert_true(ref > 4);
  assert_int_equal(nn_tsdb_appender_commit(a), 0);
  nn_tsdb_appender_destroy(a);
  nn_tsdb_close(db);
  free(img);
  rm_rf(dir);
  free(dir);
}

static int count_segments(const char *dir)
{
  char wal[512];
  snprintf(wal, sizeof(wal), "%s/wal", dir);
  DIR *d = opendir(wal);
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

static void segments_rotate_and_replay_in_order(void **state)
{
  char *dir = tmpdir();
  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  o.dir = dir;
  o.wal_fsync = false;
  o.wal_segment_bytes = 4096;
  struct nn_tsdb *db;
  assert_int_equal(nn_tsdb_open(&o, &db), 0);
  for (int i = 0; i < 40; i++) {
    write_data(db, 1 + i * 5, 5, 20);
    assert_int_equal(nn_tsdb_sync(db), 0); /* each sync is a batch: rotation point */
  }
  nn_tsdb_close(db);
  assert_true(count_segments(dir) > 5);
  assert_int_equal(nn_tsdb_open(&o, &db), 0);
  assert_int_equal(count_samples(db, NULL), 40 * 5 * 20);
  struct nn_tsdb_stats st;
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.wal_corruptions_total, 0);
  nn_tsdb_close(db);
  rm_rf(dir);
  free(dir);
}

static void backed_up_wal_rejects_commits(void **state)
{
  char *dir = tmpdir();
  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  o.dir = dir;
  o.wal_fsync = false;
  o.wal_flush_interval_ms = 60000;
  o.wal_flush_bytes = 1 << 30;
  o.wal_max_pending_bytes = 2048;
  struct nn_tsdb *db;
  assert_int_equal(nn_tsdb_open(&o, &db), 0);
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  int rc = 0, i;
  for (i = 0; i < 1000 && rc == 0; i++) {
    struct nn_label ls[] = {{"__name__", "m"}};
    assert_int_equal(nn_tsdb_appender_append(a, ls, 1, 1000 + i, i, NULL), 0);
    rc = nn_tsdb_appender_commit(a);
  }
  assert_int_equal(rc, NN_EAGAIN);
  assert_int_equal(nn_tsdb_appender_pending(a), 0);
  struct nn_tsdb_stats st;
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.wal_commit_rejected_total, 1);
  /* The rejected sample is not in the head, and it can be sent again after a flush. */
  assert_int_equal(count_samples(db, NULL), (size_t)i - 1);
  assert_int_equal(nn_tsdb_sync(db), 0);
  struct nn_label ls[] = {{"__name__", "m"}};
  assert_int_equal(nn_tsdb_appender_append(a, ls, 1, 1000 + i - 1, i - 1, NULL), 0);
  assert_int_equal(nn_tsdb_appender_commit(a), 0);
  nn_tsdb_appender_destroy(a);
  nn_tsdb_close(db);
  rm_rf(dir);
  free(dir);
}

struct waiter {
  struct nn_tsdb_durable_req req;
  int calls;
  int status;
};

static void on_durable(struct nn_tsdb_durable_req *req, int status)
{
  struct waiter *w = req->data;
  w->calls++;
  w->status = status;
}

static void on_timeout(uv_timer_t *t)
{
  uv_stop(t->loop);
}

static void group_commit_calls_back_on_the_loop(void **state)
{
  char *dir = tmpdir();
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  o.dir = dir;
  o.loop = &loop;
  o.wal_flush_interval_ms = 50;
  struct nn_tsdb *db;
  assert_int_equal(nn_tsdb_open(&o, &db), 0);
  enum { N = 20 };
  struct waiter w[N];
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  for (int i = 0; i < N; i++) {
    struct nn_label ls[] = {{"__name__", "m"}};
    assert_int_equal(nn_tsdb_appender_append(a, ls, 1, 1000 + i, i, NULL), 0);
    assert_int_equal(nn_tsdb_appender_commit(a), 0);
    w[i] = (struct waiter){.req.data = &w[i]};
    nn_tsdb_wal_wait(db, &w[i].req, on_durable);
    assert_int_equal(w[i].calls, 0); /* never called back from inside wal_wait */
  }
  uv_timer_t timer;
  uv_timer_init(&loop, &timer);
  uv_timer_start(&timer, on_timeout, 5000, 0);
  while (w[N - 1].calls == 0 && uv_loop_alive(&loop)) {
    uv_run(&loop, UV_RUN_ONCE);
    if (!uv_is_active((uv_handle_t *)&timer))
      break;
  }
  for (int i = 0; i < N; i++) {
    assert_int_equal(w[i].calls, 1);
    assert_int_equal(w[i].status, 0);
  }
  struct nn_tsdb_stats st;
  nn_tsdb_stats(db, &st);
  /* Twenty commits within one interval: one or two fsyncs, not twenty. */
  assert_true(st.wal_fsyncs_total >= 1 && st.wal_fsyncs_total <= 3);
  assert_true(st.wal_fsync_buckets[NN_TSDB_FSYNC_BUCKETS - 1] == st.wal_fsyncs_total);
  /* A wait with nothing new pending still completes, on the loop. */
  struct waiter idle = {.req.data = &idle};
  nn_tsdb_wal_wait(db, &idle.req, on_durable);
  assert_int_equal(idle.calls, 0);
  for (int i = 0; i < 100 && idle.calls == 0; i++)
    uv_run(&loop, UV_RUN_NOWAIT), usleep(1000);
  assert_int_equal(idle.calls, 1);
  nn_tsdb_appender_destroy(a);
  nn_tsdb_close(db);
  uv_close((uv_handle_t *)&timer, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  rm_rf(dir);
  free(dir);
}

static void flush_does_not_wait_for_the_interval(void **state)
{
  char *dir = tmpdir();
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  o.dir = dir;
  o.loop = &loop;
  o.wal_flush_interval_ms = 600000; /* ten minutes: only the flush can make it durable */
  struct nn_tsdb *db;
  assert_int_equal(nn_tsdb_open(&o, &db), 0);
  write_data(db, 1, 1, 5);
  struct waiter w = {.req.data = &w};
  nn_tsdb_wal_wait(db, &w.req, on_durable);
  nn_tsdb_wal_flush(db);
  for (int i = 0; i < 5000 && w.calls == 0; i++) {
    uv_run(&loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
  assert_int_equal(w.calls, 1);
  assert_int_equal(w.status, 0);
  struct nn_tsdb_stats st;
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.wal_fsyncs_total, 1);
  nn_tsdb_close(db);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  rm_rf(dir);
  free(dir);
}

/* Without an explicit flush, a wait is written once the loop has nothing else to run, not
 * at the end of the (here ten-minute) interval. */
static void wait_is_written_once_the_loop_is_idle(void **state)
{
  char *dir = tmpdir();
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  o.dir = dir;
  o.loop = &loop;
  o.wal_flush_interval_ms = 600000;
  struct nn_tsdb *db;
  assert_int_equal(nn_tsdb_open(&o, &db), 0);
  for (int round = 0; round < 3; round++) {
    write_data(db, 1 + round, 1, 5);
    struct waiter w = {.req.data = &w};
    nn_tsdb_wal_wait(db, &w.req, on_durable);
    for (int i = 0; i < 5000 && w.calls == 0; i++) {
      uv_run(&loop, UV_RUN_NOWAIT);
      usleep(1000);
    }
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.status, 0);
    struct nn_tsdb_stats st;
    nn_tsdb_stats(db, &st);
    assert_int_equal(st.wal_fsyncs_total, round + 1);
  }
  nn_tsdb_close(db);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  rm_rf(dir);
  free(dir);
}

struct burst {
  struct nn_tsdb *db;
  struct nn_tsdb_appender *a;
  struct waiter w[20];
};

/* Twenty requests handled in one loop iteration, each committing and waiting. */
static void on_burst(uv_timer_t *t)
{
  struct burst *b = t->data;
  for (int i = 0; i < 20; i++) {
    struct nn_label ls[] = {{"__name__", "burst"}};
    assert_int_equal(nn_tsdb_appender_append(b->a, ls, 1, 1000 + i, i, NULL), 0);
    assert_int_equal(nn_tsdb_appender_commit(b->a), 0);
    b->w[i] = (struct waiter){.req.data = &b->w[i]};
    nn_tsdb_wal_wait(b->db, &b->w[i].req, on_durable);
  }
}

/* Commits made in one loop iteration share one write and fsync. */
static void commits_of_one_iteration_share_an_fsync(void **state)
{
  char *dir = tmpdir();
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  o.dir = dir;
  o.loop = &loop;
  o.wal_flush_interval_ms = 600000;
  struct burst b = {0};
  assert_int_equal(nn_tsdb_open(&o, &b.db), 0);
  b.a = nn_tsdb_appender_create(b.db);
  uv_timer_t timer;
  uv_timer_init(&loop, &timer);
  timer.data = &b;
  uv_timer_start(&timer, on_burst, 0, 0);
  for (int i = 0; i < 5000 && b.w[19].calls == 0; i++) {
    uv_run(&loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
  for (int i = 0; i < 20; i++) {
    assert_int_equal(b.w[i].calls, 1);
    assert_int_equal(b.w[i].status, 0);
  }
  struct nn_tsdb_stats st;
  nn_tsdb_stats(b.db, &st);
  assert_int_equal(st.wal_fsyncs_total, 1);
  nn_tsdb_appender_destroy(b.a);
  nn_tsdb_close(b.db);
  uv_close((uv_handle_t *)&timer, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  rm_rf(dir);
  free(dir);
}

static void without_a_loop_callbacks_run_in_sync(void **state)
{
  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  struct nn_tsdb *db; /* in-memory: durable as soon as committed */
  assert_int_equal(nn_tsdb_open(&o, &db), 0);
  struct waiter w = {.req.data = &w};
  nn_tsdb_wal_wait(db, &w.req, on_durable);
  assert_int_equal(w.calls, 0);
  assert_int_equal(nn_tsdb_sync(db), 0);
  assert_int_equal(w.calls, 1);
  struct waiter w2 = {.req.data = &w2};
  nn_tsdb_wal_wait(db, &w2.req, on_durable);
  nn_tsdb_close(db); /* close completes outstanding waits */
  assert_int_equal(w2.calls, 1);
}

static bool file_exists(const char *dir, const char *name)
{
  char p[512];
  snprintf(p, sizeof(p), "%s/wal/%s", dir, name);
  return access(p, F_OK) == 0;
}

static void checkpoint_replaces_segments(void **state)
{
  char *dir = tmpdir();
  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  o.dir = dir;
  o.wal_fsync = false;
  o.wal_segment_bytes = 2048;
  struct nn_tsdb *db;
  assert_int_equal(nn_tsdb_open(&o, &db), 0);
  for (int i = 0; i < 10; i++) {
    write_data(db, 1 + i * 30, 30, 4); /* samples at 1000 .. 300000 */
    assert_int_equal(nn_tsdb_sync(db), 0);
  }
  struct nn_label gone[] = {{"__name__", "gone"}};
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  uint64_t gone_ref;
  assert_int_equal(nn_tsdb_appender_append(a, gone, 1, 500, 1, &gone_ref), 0);
  assert_int_equal(nn_tsdb_appender_commit(a), 0);
  nn_tsdb_appender_destroy(a);
  int before = count_segments(dir);
  assert_true(before > 3);
  /* Drop the first chunk (120 samples, up to 120 s), then checkpoint the rest. */
  assert_int_equal(nn_tsdb_head_truncate(db, 125000), 1);
  size_t kept = count_samples(db, NULL);
  assert_int_equal(kept, 4 * 180);
  assert_int_equal(nn_tsdb_checkpoint(db), 0);
  write_data(db, 301, 5, 4); /* after the checkpoint: a new segment */
  assert_int_equal(nn_tsdb_sync(db), 0);
  struct nn_tsdb_stats st;
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.wal_checkpoints_total, 1);
  assert_int_equal(st.wal_checkpoint_failures_total, 0);
  assert_true(st.wal_checkpoint_bytes > 0);
  assert_int_equal(st.wal_segments_removed_total, (uint64_t)before);
  assert_int_equal(count_segments(dir), 2); /* the checkpoint and one new segment */
  nn_tsdb_close(db);

  assert_int_equal(nn_tsdb_open(&o, &db), 0);
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.wal_corruptions_total, 0);
  assert_int_equal(st.series, 4);
  assert_int_equal(count_samples(db, NULL), kept + 20);
  a = nn_tsdb_appender_create(db);
  struct nn_label s1[] = {{"__name__", "m"}, {"id", "s1"}};
  assert_int_equal(nn_tsdb_appender_append(a, s1, 2, 1000, 1, NULL), NN_EOUTOFORDER);
  uint64_t ref;
  assert_int_equal(nn_tsdb_appender_append(a, gone, 1, 400000, 1, &ref), 0);
  assert_true(ref > 0 && gone_ref > 0);
  assert_int_equal(nn_tsdb_appender_commit(a), 0);
  nn_tsdb_appender_destroy(a);
  /* A second checkpoint replaces the first. */
  assert_int_equal(nn_tsdb_checkpoint(db), 0);
  assert_int_equal(nn_tsdb_sync(db), 0);
  nn_tsdb_close(db);
  assert_false(file_exists(dir, "checkpoint.00000000"));
  assert_int_equal(count_segments(dir), 1);

  /* A damaged checkpoint: what precedes the damage is kept, startup goes on. */
  char wal[256], ck[512] = "";
  snprintf(wal, sizeof(wal), "%s/wal", dir);
  DIR *d = opendir(wal);
  struct dirent *e;
  while ((e = readdir(d)))
    if (strncmp(e->d_name, "checkpoint.", 11) == 0)
      snprintf(ck, sizeof(ck), "%s/%s", wal, e->d_name);
  closedir(d);
  assert_true(ck[0]);
  size_t len;
  char *img = read_file(ck, &len);
  img[len - 10] ^= 0x10; /* inside the last chunks record */
  write_file(ck, img, len);
  free(img);
  assert_int_equal(nn_tsdb_open(&o, &db), 0);
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.wal_corruptions_total, 1);
  assert_int_equal(st.series, 5); /* series records precede the damage */
  assert_true(count_samples(db, NULL) < kept + 20);
  nn_tsdb_close(db);
  rm_rf(dir);
  free(dir);
}

static double cpu_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The whole write path with the WAL on: encode, log, write and fsync on the writer
 * thread (its CPU counts too), chunk append. Prints CPU time per sample. */
static void append_cost_with_the_wal(void **state)
{
  char *dir = tmpdir();
  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  o.dir = dir;
  struct nn_tsdb *db;
  assert_int_equal(nn_tsdb_open(&o, &db), 0);
  enum { SERIES = 10000, ROUNDS = 100 };
  char(*inst)[24] = malloc(SERIES * sizeof(*inst));
  for (int i = 0; i < SERIES; i++)
    snprintf(inst[i], sizeof(inst[i]), "10.1.%d.%d:9100", i / 256, i % 256);
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  double t0 = cpu_s();
  for (int r = 0; r < ROUNDS; r++) {
    for (int i = 0; i < SERIES; i++) {
      struct nn_label ls[] = {{"__name__", "node_cpu_seconds_total"},
                              {"cpu", "0"},
                              {"instance", inst[i]},
                              {"job", "node"},
                              {"mode", "idle"}};
      assert_int_equal(
          nn_tsdb_appender_append(a, ls, 5, 1700000000000 + r * 15000, r * 1.5 + i, NULL), 0);
      if (i % 2000 == 1999)
        assert_int_equal(nn_tsdb_appender_commit(a), 0);
    }
  }
  assert_int_equal(nn_tsdb_sync(db), 0);
  double per = (cpu_s() - t0) * 1e9 / ((double)SERIES * ROUNDS);
  struct nn_tsdb_stats st;
  nn_tsdb_stats(db, &st);
  print_message("%d samples with the WAL: %.0f CPU ns per sample, %.1f WAL bytes per sample, "
                "%llu fsyncs\n",
                SERIES * ROUNDS, per, (double)st.wal_bytes_written_total / (SERIES * ROUNDS),
                (unsigned long long)st.wal_fsyncs_total);
  assert_int_equal(st.samples_appended_total, (uint64_t)SERIES * ROUNDS);
  assert_true(per < 20000);
  nn_tsdb_appender_destroy(a);
  nn_tsdb_close(db);
  free(inst);
  rm_rf(dir);
  free(dir);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(crc32c_matches_known_vectors),
      cmocka_unit_test(replay_after_close_restores_the_head),
      cmocka_unit_test(torn_tail_is_truncated_at_every_offset),
      cmocka_unit_test(flipped_byte_mid_segment_keeps_the_rest),
      cmocka_unit_test(segments_rotate_and_replay_in_order),
      cmocka_unit_test(backed_up_wal_rejects_commits),
      cmocka_unit_test(group_commit_calls_back_on_the_loop),
      cmocka_unit_test(flush_does_not_wait_for_the_interval),
      cmocka_unit_test(wait_is_written_once_the_loop_is_idle),
      cmocka_unit_test(commits_of_one_iteration_share_an_fsync),
      cmocka_unit_test(without_a_loop_callbacks_run_in_sync),
      cmocka_unit_test(checkpoint_replaces_segments),
      cmocka_unit_test(append_cost_with_the_wal),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
