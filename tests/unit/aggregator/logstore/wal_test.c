/* SPDX-License-Identifier: Apache-2.0 */
/* The log WAL's group commit with a loop: a push's done callback is not kept waiting for
 * the sync interval, and pushes handled in one loop iteration share one fsync. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "aggregator/logstore/logstore.h"
#include "common/error.h"

#define SEC INT64_C(1000000000)
#define T0  (INT64_C(1700000000) * SEC)

static char tmpdir[256];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
  return remove(p);
}

static int setup(void **state)
{
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/nn-logstore-wal-test-XXXXXX");
  assert_non_null(mkdtemp(tmpdir));
  return 0;
}

static int teardown(void **state)
{
  nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  return 0;
}

/* A loop and a store whose interval alone would hold an fsync back for ten minutes. */
static struct nn_logstore *open_store(uv_loop_t *loop)
{
  assert_int_equal(uv_loop_init(loop), 0);
  struct nn_logstore_config c;
  nn_logstore_config_defaults(&c);
  c.data_dir = tmpdir;
  c.retention_ns = 0; /* test timestamps are from 2023 */
  c.loop = loop;
  c.sync_interval_ns = 600 * SEC;
  struct nn_logstore *s = NULL;
  char err[256] = "";
  int rc = nn_logstore_open(&c, &s, err, sizeof(err));
  if (rc < 0)
    fail_msg("open: %s (%s)", nn_strerror(rc), err);
  return s;
}

static void close_store(struct nn_logstore *s, uv_loop_t *loop)
{
  nn_logstore_close(s);
  uv_run(loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(loop), 0);
}

struct waiter {
  int calls;
  int status;
};

static void on_done(void *ud, int status)
{
  struct waiter *w = ud;
  w->calls++;
  w->status = status;
}

static void append(struct nn_logstore *s, int64_t ts, struct waiter *w)
{
  struct nn_logstore_entry e = {ts, "line", 4, NULL, 0};
  struct nn_logstore_stream_in in = {"{a=\"b\"}", 7, NULL, 0, &e, 1};
  struct nn_logstore_batch b = {NULL, NULL, &in, 1};
  struct nn_logstore_append_result res;
  assert_int_equal(nn_logstore_append_batch(s, &b, &res, on_done, w), 0);
  assert_int_equal(res.accepted, 1);
}

/* Runs the loop until *calls reaches want (5 s at most). */
static void run_until(uv_loop_t *loop, const int *calls, int want)
{
  for (int i = 0; i < 5000 && *calls < want; i++) {
    uv_run(loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
}

/* A push is fsynced once the loop has nothing else to run, not at the end of the
 * (ten-minute) interval; each round is one fsync. */
static void wait_is_synced_once_the_loop_is_idle(void **state)
{
  uv_loop_t loop;
  struct nn_logstore *s = open_store(&loop);
  struct nn_logstore_stats st;
  nn_logstore_get_stats(s, &st);
  uint64_t fsyncs0 = st.wal_fsyncs;
  for (int round = 0; round < 3; round++) {
    struct waiter w = {0, 1};
    append(s, T0 + round, &w);
    assert_int_equal(w.calls, 0); /* never synchronously with a loop */
    run_until(&loop, &w.calls, 1);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.status, 0);
    nn_logstore_get_stats(s, &st);
    assert_int_equal(st.wal_fsyncs - fsyncs0, round + 1);
  }
  close_store(s, &loop);
}

struct burst {
  struct nn_logstore *s;
  struct waiter w[20];
};

/* Twenty pushes handled in one loop iteration, each waiting for durability. */
static void on_burst(uv_timer_t *t)
{
  struct burst *b = t->data;
  for (int i = 0; i < 20; i++)
    append(b->s, T0 + 100 + i, &b->w[i]);
}

/* Pushes made in one loop iteration share one fsync. */
static void pushes_of_one_iteration_share_an_fsync(void **state)
{
  uv_loop_t loop;
  struct burst b = {0};
  b.s = open_store(&loop);
  struct nn_logstore_stats st;
  nn_logstore_get_stats(b.s, &st);
  uint64_t fsyncs0 = st.wal_fsyncs;
  uv_timer_t timer;
  uv_timer_init(&loop, &timer);
  timer.data = &b;
  uv_timer_start(&timer, on_burst, 0, 0);
  run_until(&loop, &b.w[19].calls, 1);
  for (int i = 0; i < 20; i++) {
    assert_int_equal(b.w[i].calls, 1);
    assert_int_equal(b.w[i].status, 0);
  }
  nn_logstore_get_stats(b.s, &st);
  assert_int_equal(st.wal_fsyncs - fsyncs0, 1);
  uv_close((uv_handle_t *)&timer, NULL);
  close_store(b.s, &loop);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(wait_is_synced_once_the_loop_is_idle, setup, teardown),
      cmocka_unit_test_setup_teardown(pushes_of_one_iteration_share_an_fsync, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
