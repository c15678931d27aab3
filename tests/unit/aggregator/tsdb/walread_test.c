/* SPDX-License-Identifier: Apache-2.0 */
/* Reading the WAL from outside the store: every committed sample in order across
 * segments, tailing a live segment, waiting on a torn tail until a later segment seals
 * it (then skipping the damage, counted), skipping deleted segments (counted), checkpoint
 * series, and the retention floor that keeps segments a reader still needs. */
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
#include <unistd.h>

#include "aggregator/tsdb/tsdb.h"

static char dir[64];

static int setup(void **state)
{
  snprintf(dir, sizeof(dir), "/tmp/nn-walread-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static struct nn_tsdb *open_db(bool retain, uint32_t from)
{
  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  o.dir = dir;
  o.wal_fsync = false;
  o.wal_segment_bytes = 2048;
  o.wal_retain = retain;
  o.wal_retain_from = from;
  struct nn_tsdb *db = NULL;
  assert_int_equal(nn_tsdb_open(&o, &db), 0);
  return db;
}

/* Commits `commits` commits of 4 series, sample value = t + series. */
static void write_data(struct nn_tsdb *db, int first, int commits)
{
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  for (int c = first; c < first + commits; c++) {
    for (int s = 0; s < 4; s++) {
      char id[8];
      snprintf(id, sizeof(id), "s%d", s);
      struct nn_label ls[] = {{"__name__", "m"}, {"id", id}};
      assert_int_equal(nn_tsdb_appender_append(a, ls, 2, (int64_t)c * 1000, c * 1000.0 + s, NULL),
                       0);
    }
    assert_int_equal(nn_tsdb_appender_commit(a), 0);
    assert_int_equal(nn_tsdb_sync(db), 0); /* small writes, so segments rotate */
  }
  nn_tsdb_appender_destroy(a);
}

struct tally {
  size_t series, samples;
  int64_t last_t[16]; /* by ref */
  bool order_ok;
};

static int on_series(void *ctx, uint64_t ref, const struct nn_label *ls, size_t n)
{
  struct tally *t = ctx;
  assert_int_equal(n, 2);
  assert_string_equal(ls[0].name, "__name__");
  t->series++;
  return 0;
}

/* Reads everything there is now; returns the number of records. */
static size_t drain(struct nn_tsdb_wal_reader *r, struct tally *t)
{
  struct nn_tsdb_wal_record rec;
  size_t n = 0;
  int rc;
  uint32_t last_seg = 0;
  uint64_t last_end = 0;
  while ((rc = nn_tsdb_wal_reader_next(r, &rec)) == 1) {
    n++;
    /* Positions only move forward. */
    assert_true(rec.segment > last_seg || (rec.segment == last_seg && rec.offset >= last_end));
    last_seg = rec.segment;
    last_end = rec.end;
    if (rec.type == NN_TSDB_WAL_SERIES) {
      assert_int_equal(nn_tsdb_wal_series_decode(rec.data, rec.len, on_series, t), 0);
    } else if (rec.type == NN_TSDB_WAL_SAMPLES) {
      struct nn_tsdb_wal_samples it;
      assert_int_equal(nn_tsdb_wal_samples_init(&it, rec.data, rec.len), 0);
      uint64_t ref;
      int64_t ts;
      double v;
      while (nn_tsdb_wal_samples_next(&it, &ref, &ts, &v) == 1) {
        assert_true(ref < 16);
        if (ts <= t->last_t[ref])
          t->order_ok = false;
        t->last_t[ref] = ts;
        assert_true(v >= (double)ts && v < (double)ts + 4);
        t->samples++;
      }
    }
  }
  assert_int_equal(rc, 0);
  return n;
}

static int count_segments(void)
{
  char wal[128];
  snprintf(wal, sizeof(wal), "%s/wal", dir);
  DIR *d = opendir(wal);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    n += strspn(e->d_name, "0123456789") == strlen(e->d_name) && e->d_name[0];
  closedir(d);
  return n;
}

static void test_reads_everything_in_order_and_tails(void **state)
{
  struct nn_tsdb *db = open_db(false, 0);
  write_data(db, 1, 200);
  uint32_t first, last;
  size_t nseg;
  uint64_t last_size;
  int64_t ckpt;
  assert_int_equal(nn_tsdb_wal_bounds(dir, &first, &last, &nseg, &last_size, &ckpt), 0);
  assert_true(nseg > 2);
  assert_int_equal(first, 0);
  assert_int_equal(ckpt, -1);
  struct nn_tsdb_wal_reader *r;
  assert_int_equal(nn_tsdb_wal_reader_open(dir, 0, 0, &r), 0);
  struct tally t = {.order_ok = true};
  drain(r, &t);
  assert_int_equal(t.series, 4);
  assert_int_equal(t.samples, 200 * 4);
  /* Live: more commits show up on the next read. */
  write_data(db, 201, 10);
  drain(r, &t);
  assert_int_equal(t.samples, 210 * 4);
  assert_true(t.order_ok);
  uint32_t seg;
  uint64_t off;
  nn_tsdb_wal_reader_position(r, &seg, &off);
  assert_int_equal(nn_tsdb_wal_bounds(dir, &first, &last, &nseg, &last_size, &ckpt), 0);
  assert_int_equal(seg, last);
  assert_int_equal(off, last_size);
  /* A reader opened at that position sees nothing until the next commit. */
  struct nn_tsdb_wal_reader *r2;
  assert_int_equal(nn_tsdb_wal_reader_open(dir, seg, off, &r2), 0);
  struct tally t2 = {.order_ok = true};
  assert_int_equal(drain(r2, &t2), 0);
  write_data(db, 211, 1);
  drain(r2, &t2);
  assert_int_equal(t2.samples, 4);
  struct nn_tsdb_wal_reader_stats st;
  nn_tsdb_wal_reader_stats(r, &st);
  assert_int_equal(st.segments_skipped, 0);
  assert_int_equal(st.damaged, 0);
  nn_tsdb_wal_reader_close(r);
  nn_tsdb_wal_reader_close(r2);
  nn_tsdb_close(db);
}

static void test_torn_tail_and_deleted_segment(void **state)
{
  struct nn_tsdb *db = open_db(false, 0);
  write_data(db, 1, 3);
  nn_tsdb_close(db);
  /* Cut the last record short: while the segment is the last one, the reader waits. */
  char seg0[128], seg1[128];
  snprintf(seg0, sizeof(seg0), "%s/wal/00000000", dir);
  snprintf(seg1, sizeof(seg1), "%s/wal/00000001", dir);
  struct stat sb;
  assert_int_equal(stat(seg0, &sb), 0);
  assert_int_equal(truncate(seg0, sb.st_size - 5), 0);
  struct nn_tsdb_wal_reader *r;
  assert_int_equal(nn_tsdb_wal_reader_open(dir, 0, 0, &r), 0);
  struct tally t = {.order_ok = true};
  drain(r, &t);
  assert_int_equal(t.samples, 2 * 4);
  uint32_t seg;
  uint64_t off;
  nn_tsdb_wal_reader_position(r, &seg, &off);
  assert_int_equal(seg, 0);
  /* A later segment seals it: the torn record is skipped and counted. */
  int fd = open(seg1, O_WRONLY | O_CREAT, 0644);
  assert_true(fd >= 0);
  close(fd);
  drain(r, &t);
  struct nn_tsdb_wal_reader_stats st;
  nn_tsdb_wal_reader_stats(r, &st);
  assert_int_equal(st.damaged, 1);
  assert_int_equal(st.damaged_bytes, (uint64_t)sb.st_size - 5 - off);
  nn_tsdb_wal_reader_position(r, &seg, &off);
  assert_int_equal(seg, 1);
  nn_tsdb_wal_reader_close(r);

  /* A reader whose segment was deleted goes on with the next one, counting the gap. */
  assert_int_equal(unlink(seg0), 0);
  assert_int_equal(nn_tsdb_wal_reader_open(dir, 0, 100, &r), 0);
  drain(r, &t);
  nn_tsdb_wal_reader_stats(r, &st);
  assert_int_equal(st.segments_skipped, 1);
  nn_tsdb_wal_reader_close(r);
}

static void test_retention_floor_and_checkpoint_series(void **state)
{
  struct nn_tsdb *db = open_db(true, 0);
  write_data(db, 1, 200);
  int before = count_segments();
  assert_true(before > 2);
  /* With the floor at 0, a checkpoint removes nothing. */
  assert_int_equal(nn_tsdb_checkpoint(db), 0);
  write_data(db, 201, 1);
  struct nn_tsdb_stats st;
  for (int i = 0; i < 1000; i++) {
    nn_tsdb_stats(db, &st);
    if (st.wal_checkpoints_total == 1)
      break;
    usleep(1000);
  }
  assert_int_equal(st.wal_checkpoints_total, 1);
  assert_int_equal(count_segments(), before + 1);
  uint32_t first, last;
  size_t nseg;
  uint64_t last_size;
  int64_t ckpt;
  assert_int_equal(nn_tsdb_wal_bounds(dir, &first, &last, &nseg, &last_size, &ckpt), 0);
  assert_int_equal(first, 0);
  assert_true(ckpt > 0);
  struct tally t = {.order_ok = true};
  assert_int_equal(nn_tsdb_wal_checkpoint_series(dir, (uint32_t)ckpt, on_series, &t), 0);
  assert_int_equal(t.series, 4);
  /* A restart with the floor keeps them too (replay skips what the checkpoint covers). */
  nn_tsdb_close(db);
  db = open_db(true, 0);
  assert_int_equal(count_segments(), before + 1);
  assert_true(nn_tsdb_wal_bytes_from(dir, 0) > nn_tsdb_wal_bytes_from(dir, (uint32_t)ckpt));
  /* Raising the floor lets the next checkpoint delete up to it. */
  nn_tsdb_wal_retain(db, true, 2);
  assert_int_equal(nn_tsdb_checkpoint(db), 0);
  write_data(db, 202, 1);
  for (int i = 0; i < 1000; i++) {
    nn_tsdb_stats(db, &st);
    if (st.wal_checkpoints_total == 1)
      break;
    usleep(1000);
  }
  nn_tsdb_close(db);
  assert_int_equal(nn_tsdb_wal_bounds(dir, &first, &last, &nseg, &last_size, &ckpt), 0);
  assert_int_equal(first, 2);
  /* Without a floor, a restart removes what the checkpoint covers. */
  db = open_db(false, 0);
  nn_tsdb_close(db);
  assert_int_equal(nn_tsdb_wal_bounds(dir, &first, &last, &nseg, &last_size, &ckpt), 0);
  assert_int_equal(first, (uint32_t)ckpt);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_reads_everything_in_order_and_tails, setup, teardown),
      cmocka_unit_test_setup_teardown(test_torn_tail_and_deleted_segment, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retention_floor_and_checkpoint_series, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
