/* SPDX-License-Identifier: Apache-2.0 */
/* The ship's building blocks: CRC32C, spool segments (append, read, ack, restart, torn tails,
 * corruption, drop-oldest), the per-key batch builder, backoff and Retry-After. */
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

#include "agent/ship/internal.h"
#include "common/error.h"
#include "common/log.h"
#include "common/pool.h"
#include "common/wire.h"

static char tmpdir[256];

static int setup(void **state)
{
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/nn_spool_test_XXXXXX");
  assert_non_null(mkdtemp(tmpdir));
  return 0;
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

static int teardown(void **state)
{
  rm_rf(tmpdir);
  return 0;
}

/* Incompressible enough that segments rotate at the sizes the tests use. */
static void make_payload(char *buf, size_t n, unsigned i)
{
  uint64_t x = 0x9E3779B97F4A7C15ull * (i + 1);
  for (size_t k = 0; k < n; k++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    buf[k] = (char)('a' + x % 26);
  }
  snprintf(buf, n, "payload-%06u-", i);
}

static int append_n(struct nn__ship_spool *sp, unsigned from, unsigned n, size_t len)
{
  char payload[8192], id[32];
  for (unsigned i = from; i < from + n; i++) {
    make_payload(payload, len, i);
    snprintf(id, sizeof(id), "t:%u", i);
    struct nn_ship_token tok[2] = {{1, i}, {2, i * 10}};
    struct nn__ship_rec r = {.seq = i,
                             .nrecords = i + 1,
                             .ntokens = 2,
                             .tokens = tok,
                             .id = id,
                             .id_len = strlen(id),
                             .payload = payload,
                             .payload_len = len};
    int rc = nn__ship_spool_append(sp, &r);
    if (rc < 0)
      return rc;
  }
  return 0;
}

/* Reads records and checks they are from, from+1, ...; returns how many. */
static unsigned read_all(struct nn__ship_spool *sp, unsigned from, size_t len, bool orphan,
                         struct nn__ship_pos *last_end)
{
  unsigned n = 0;
  char expect[8192];
  for (;;) {
    struct nn__ship_rec r;
    struct nn__ship_pos a, b;
    uint64_t lost[2];
    int rc = nn__ship_spool_read(sp, &r, &a, &b, lost);
    if (rc == NN_ENOTFOUND)
      break;
    assert_int_equal(rc, 0);
    unsigned i = from + n;
    make_payload(expect, len, i);
    assert_int_equal(r.payload_len, len);
    assert_memory_equal(r.payload, expect, len);
    assert_int_equal(r.seq, i);
    assert_int_equal(r.nrecords, i + 1);
    assert_int_equal(r.ntokens, 2);
    assert_int_equal(r.tokens[1].off, i * 10);
    assert_int_equal(r.orphan, orphan);
    char id[32];
    snprintf(id, sizeof(id), "t:%u", i);
    assert_int_equal(r.id_len, strlen(id));
    assert_memory_equal(r.id, id, r.id_len);
    if (last_end)
      *last_end = b;
    n++;
  }
  return n;
}

static void crc32c_matches_the_check_value(void **state)
{
  assert_int_equal(nn__ship_crc32c(0, "123456789", 9), 0xE3069283u);
  /* Incremental use gives the same result as one call. */
  uint32_t c = nn__ship_crc32c(0, "1234", 4);
  assert_int_equal(nn__ship_crc32c(c, "56789", 5), 0xE3069283u);
  assert_int_equal(nn__ship_crc32c(0, "", 0), 0);
}

static void spool_reads_back_in_order_and_survives_reopen(void **state)
{
  struct nn__ship_spool *sp;
  assert_int_equal(nn__ship_spool_open(tmpdir, 1 << 20, 4096, &sp), 0);
  assert_true(nn__ship_spool_drained(sp));
  assert_int_equal(append_n(sp, 0, 20, 1000), 0);
  assert_true(nn__ship_spool_segments(sp) > 1); /* 4 KiB segments rotate */
  assert_false(nn__ship_spool_drained(sp));
  /* Read and ack the first 8. */
  struct nn__ship_pos end = {0, 0};
  for (unsigned i = 0; i < 8; i++) {
    struct nn__ship_rec r;
    struct nn__ship_pos a;
    uint64_t lost[2];
    assert_int_equal(nn__ship_spool_read(sp, &r, &a, &end, lost), 0);
    assert_int_equal(r.seq, i);
    assert_false(r.orphan);
  }
  uint64_t segs_before = nn__ship_spool_segments(sp);
  assert_int_equal(nn__ship_spool_ack(sp, end), 0);
  assert_true(nn__ship_spool_segments(sp) < segs_before); /* passed segments deleted */
  nn__ship_spool_close(sp);

  /* A restart resumes at the cursor; everything left is from an earlier run. */
  assert_int_equal(nn__ship_spool_open(tmpdir, 1 << 20, 4096, &sp), 0);
  struct nn__ship_pos last;
  assert_int_equal(read_all(sp, 8, 1000, true, &last), 12);
  /* New appends go to a new segment and are not orphans. */
  assert_int_equal(append_n(sp, 100, 3, 500), 0);
  assert_int_equal(read_all(sp, 100, 500, false, NULL), 3);
  assert_int_equal(nn__ship_spool_ack(sp, last), 0);
  nn__ship_spool_close(sp);
  assert_int_equal(nn__ship_spool_open(tmpdir, 1 << 20, 4096, &sp), 0);
  assert_int_equal(read_all(sp, 100, 500, true, NULL), 3);
  nn__ship_spool_close(sp);
}

static void drained_spool_holds_no_bytes_and_restarts_cleanly(void **state)
{
  struct nn__ship_spool *sp;
  assert_int_equal(nn__ship_spool_open(tmpdir, 1 << 20, 1 << 16, &sp), 0);
  assert_int_equal(append_n(sp, 0, 3, 1000), 0);
  assert_int_equal(nn__ship_spool_segments(sp), 1);
  struct nn__ship_pos last;
  assert_int_equal(read_all(sp, 0, 1000, false, &last), 3);
  assert_true(nn__ship_spool_drained(sp));
  /* Everything acknowledged: the active segment goes too, and the gauge reads 0. */
  assert_int_equal(nn__ship_spool_ack(sp, last), 0);
  assert_int_equal(nn__ship_spool_segments(sp), 0);
  assert_int_equal(nn__ship_spool_bytes(sp), 0);
  /* A later append opens a new segment that a restart still delivers. */
  assert_int_equal(append_n(sp, 10, 2, 800), 0);
  assert_true(nn__ship_spool_bytes(sp) > 0);
  nn__ship_spool_close(sp);
  assert_int_equal(nn__ship_spool_open(tmpdir, 1 << 20, 1 << 16, &sp), 0);
  assert_int_equal(read_all(sp, 10, 800, true, &last), 2);
  assert_int_equal(nn__ship_spool_ack(sp, last), 0);
  assert_int_equal(nn__ship_spool_bytes(sp), 0);
  nn__ship_spool_close(sp);
  /* And after that restart, nothing is left to read. */
  assert_int_equal(nn__ship_spool_open(tmpdir, 1 << 20, 1 << 16, &sp), 0);
  assert_int_equal(read_all(sp, 0, 800, true, NULL), 0);
  nn__ship_spool_close(sp);
}

static void spool_refuses_past_its_cap(void **state)
{
  struct nn__ship_spool *sp;
  assert_int_equal(nn__ship_spool_open(tmpdir, 16384, 4096, &sp), 0);
  int rc = 0;
  unsigned n = 0;
  while ((rc = append_n(sp, n, 1, 2000)) == 0)
    n++;
  assert_int_equal(rc, NN_ELIMIT);
  assert_true(n >= 4);
  assert_true(nn__ship_spool_bytes(sp) <= 16384);
  assert_int_equal(read_all(sp, 0, 2000, false, NULL), n);
  nn__ship_spool_close(sp);
}

/* Path of the newest segment file in dir. */
static char *seg_file(const char *dir, char *out, size_t n)
{
  char best[256] = "";
  DIR *d = opendir(dir);
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strstr(e->d_name, ".seg") && strcmp(e->d_name, best) > 0)
      snprintf(best, sizeof(best), "%s", e->d_name);
  closedir(d);
  snprintf(out, n, "%s/%s", dir, best);
  return out;
}

static void read_file(const char *path, char **data, size_t *len)
{
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  *len = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  *data = malloc(*len + 1);
  assert_int_equal(fread(*data, 1, *len, f), *len);
  fclose(f);
}

static void write_file(const char *path, const void *data, size_t len)
{
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  fclose(f);
}

static void torn_tail_is_truncated_at_every_byte(void **state)
{
  struct nn__ship_spool *sp;
  assert_int_equal(nn__ship_spool_open(tmpdir, 1 << 20, 1 << 20, &sp), 0);
  assert_int_equal(append_n(sp, 0, 5, 60), 0);
  nn__ship_spool_close(sp);
  char path[512];
  seg_file(tmpdir, path, sizeof(path));
  char *orig;
  size_t len;
  read_file(path, &orig, &len);
  /* Find where the last record starts by walking the frames. */
  size_t off = NN_SHIP_SPOOL_HEADER, last = 0;
  while (off < len) {
    last = off;
    off += NN_SHIP_SPOOL_REC_HEAD + nn__get32((const uint8_t *)orig + off);
  }
  assert_int_equal(off, len);
  for (size_t cut = last; cut < len; cut++) {
    write_file(path, orig, cut);
    assert_int_equal(nn__ship_spool_open(tmpdir, 1 << 20, 1 << 20, &sp), 0);
    assert_int_equal(read_all(sp, 0, 60, true, NULL), 4);
    nn__ship_spool_close(sp);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal((size_t)st.st_size, last);
  }
  /* A flipped byte inside the last record (not a truncation) is caught by the CRC. */
  orig[len - 3] ^= 0x40;
  write_file(path, orig, len);
  assert_int_equal(nn__ship_spool_open(tmpdir, 1 << 20, 1 << 20, &sp), 0);
  assert_int_equal(read_all(sp, 0, 60, true, NULL), 4);
  /* Appending after recovery works and reads back. */
  assert_int_equal(append_n(sp, 50, 2, 100), 0);
  assert_int_equal(read_all(sp, 50, 100, false, NULL), 2);
  nn__ship_spool_close(sp);
  free(orig);
}

static void corrupt_segment_is_skipped_and_reported(void **state)
{
  struct nn__ship_spool *sp;
  assert_int_equal(nn__ship_spool_open(tmpdir, 1 << 20, 4096, &sp), 0);
  assert_int_equal(append_n(sp, 0, 12, 1000), 0);
  /* Damage the second record of the first segment on disk. */
  char first[512];
  DIR *d = opendir(tmpdir);
  struct dirent *e;
  first[0] = '\0';
  while ((e = readdir(d)) != NULL)
    if (strstr(e->d_name, ".seg") && (first[0] == '\0' || strcmp(e->d_name, first) < 0))
      snprintf(first, sizeof(first), "%s", e->d_name);
  closedir(d);
  char path[1024];
  snprintf(path, sizeof(path), "%s/%s", tmpdir, first);
  char *data;
  size_t len;
  read_file(path, &data, &len);
  size_t second = NN_SHIP_SPOOL_HEADER + NN_SHIP_SPOOL_REC_HEAD +
                  nn__get32((const uint8_t *)data + NN_SHIP_SPOOL_HEADER);
  int fd = open(path, O_WRONLY);
  char bad = (char)(data[second + 20] ^ 0xff);
  assert_int_equal(pwrite(fd, &bad, 1, (off_t)(second + 20)), 1);
  close(fd);
  free(data);

  struct nn__ship_rec r;
  struct nn__ship_pos a, b;
  uint64_t lost[2];
  assert_int_equal(nn__ship_spool_read(sp, &r, &a, &b, lost), 0);
  assert_int_equal(r.seq, 0);
  assert_int_equal(nn__ship_spool_read(sp, &r, &a, &b, lost), NN_ECORRUPT);
  assert_int_equal(lost[0], 1);
  assert_true(lost[1] >= 1 && lost[1] < 11);
  uint64_t next = lost[1] + 1;
  unsigned n = 0;
  int rc;
  while ((rc = nn__ship_spool_read(sp, &r, &a, &b, lost)) == 0) {
    assert_int_equal(r.seq, next + n);
    n++;
  }
  assert_int_equal(rc, NN_ENOTFOUND);
  assert_int_equal(next + n, 12);
  nn__ship_spool_close(sp);
}

struct drops {
  uint64_t seqs[64];
  unsigned n;
};

static void on_drop(void *ud, const struct nn__ship_rec *r)
{
  struct drops *d = ud;
  assert_true(d->n < 64);
  assert_int_equal(r->ntokens, 2);
  d->seqs[d->n++] = r->seq;
}

static void drop_oldest_reports_every_unread_batch(void **state)
{
  struct nn__ship_spool *sp;
  assert_int_equal(nn__ship_spool_open(tmpdir, 1 << 20, 4096, &sp), 0);
  assert_int_equal(append_n(sp, 0, 10, 1000), 0);
  struct nn__ship_rec r;
  struct nn__ship_pos a, b;
  uint64_t lost[2];
  assert_int_equal(nn__ship_spool_read(sp, &r, &a, &b, lost), 0); /* seq 0 is "in flight" */
  struct drops dr = {0};
  uint64_t bytes = nn__ship_spool_bytes(sp);
  assert_int_equal(nn__ship_spool_drop_oldest(sp, on_drop, &dr), 0);
  assert_true(nn__ship_spool_bytes(sp) < bytes);
  assert_true(dr.n >= 1);
  for (unsigned i = 0; i < dr.n; i++)
    assert_int_equal(dr.seqs[i], i + 1); /* the read one is not reported */
  /* Reading continues after the dropped segment. */
  assert_int_equal(nn__ship_spool_read(sp, &r, &a, &b, lost), 0);
  assert_int_equal(r.seq, dr.n + 1);
  /* Drop everything: every remaining batch is reported exactly once. */
  struct drops all = {0};
  while (nn__ship_spool_drop_oldest(sp, on_drop, &all) == 0)
    ;
  assert_int_equal(all.n, 10 - (dr.n + 2));
  assert_int_equal(nn__ship_spool_bytes(sp), 0);
  assert_true(nn__ship_spool_drained(sp));
  assert_int_equal(append_n(sp, 20, 1, 100), 0);
  assert_int_equal(read_all(sp, 20, 100, false, NULL), 1);
  nn__ship_spool_close(sp);
}

static void builder_groups_records_per_key(void **state)
{
  struct nn__ship_builder b;
  struct nn_buf out;
  nn_buf_init(&out, 1 << 20);
  nn__ship_builder_init(&b, &nn_ship_payload_loki, 1 << 20);
  assert_int_equal(nn__ship_builder_add(&b, "{a=\"1\"}", 7, "E1", 2), 0);
  assert_int_equal(nn__ship_builder_add(&b, "{b=\"2\"}", 7, "E2", 2), 0);
  assert_int_equal(nn__ship_builder_add(&b, "{a=\"1\"}", 7, "E3", 2), 0);
  size_t est = b.est;
  assert_int_equal(nn__ship_builder_finish(&b, &out), 0);
  assert_int_equal(out.len, est); /* the running estimate is exact */
  static const uint8_t want[] = {0x0a, 0x11, 0x0a, 0x07, '{',  'a', '=',  '"',  '1',
                                 '"',  '}',  0x12, 0x02, 'E',  '1', 0x12, 0x02, 'E',
                                 '3',  0x0a, 0x0d, 0x0a, 0x07, '{', 'b',  '=',  '"',
                                 '2',  '"',  '}',  0x12, 0x02, 'E', '2'};
  assert_int_equal(out.len, sizeof(want));
  assert_memory_equal(out.data, want, sizeof(want));
  /* The builder is reusable after finish. */
  assert_int_equal(b.nrecords, 0);
  nn_buf_reset(&out);
  assert_int_equal(nn__ship_builder_add(&b, "K", 1, "x", 1), 0);
  assert_int_equal(nn__ship_builder_finish(&b, &out), 0);
  assert_int_equal(out.len, 8);
  nn__ship_builder_fini(&b);

  /* Remote write: the key is the pre-encoded labels, inserted as is. */
  nn__ship_builder_init(&b, &nn_ship_payload_remote_write, 1 << 20);
  struct nn_buf key, piece;
  nn_buf_init(&key, 1024);
  nn_buf_init(&piece, 1024);
  assert_int_equal(nn_ship_rw_label_encode(&key, "__name__", "up"), 0);
  assert_int_equal(nn_ship_rw_sample_encode(&piece, 1.0, 1000), 0);
  assert_int_equal(piece.len, 1 + 8 + 1 + 2);
  nn_buf_reset(&out);
  assert_int_equal(nn__ship_builder_add(&b, key.data, key.len, piece.data, piece.len), 0);
  assert_int_equal(nn__ship_builder_finish(&b, &out), 0);
  static const uint8_t rw[] = {0x0a, 0x1e, 0x0a, 0x0e, 0x0a, 0x08, '_',  '_',  'n',  'a',  'm',
                               'e',  '_',  '_',  0x12, 0x02, 'u',  'p',  0x12, 0x0c, 0x09, 0,
                               0,    0,    0,    0,    0,    0xf0, 0x3f, 0x10, 0xe8, 0x07};
  assert_int_equal(out.len, sizeof(rw));
  assert_memory_equal(out.data, rw, sizeof(rw));
  nn_buf_reset(&piece);
  assert_int_equal(nn_ship_loki_entry_encode(&piece, 1500000000LL, "hi", 2), 0);
  /* seconds 1, nanos 500000000 */
  assert_int_equal(piece.data[0], 0x0a);
  assert_int_equal(piece.data[2], 0x08);
  assert_int_equal(piece.data[3], 0x01);
  assert_int_equal(piece.data[4], 0x10);
  assert_memory_equal(piece.data + piece.len - 4, "\x12\x02hi", 4);
  nn_buf_fini(&key);
  nn_buf_fini(&piece);
  nn_buf_fini(&out);
  nn__ship_builder_fini(&b);
}

/* What the builder writes is what the protocol decoders (protobuf-c) read. */
static void builder_output_decodes_as_push_and_write_requests(void **state)
{
  struct nn__ship_builder b;
  struct nn_buf out, piece, key;
  struct nn_pool pool;
  char err[256];
  nn_buf_init(&out, 1 << 20);
  nn_buf_init(&piece, 4096);
  nn_buf_init(&key, 4096);
  nn_pool_init(&pool, 8 << 20);
  nn__ship_builder_init(&b, &nn_ship_payload_loki, 1 << 20);
  const char *streams[] = {"{app=\"a\"}", "{app=\"b\"}"};
  for (int i = 0; i < 300; i++) {
    char line[64];
    int n = snprintf(line, sizeof(line), "line %d", i);
    nn_buf_reset(&piece);
    assert_int_equal(nn_ship_loki_entry_encode(&piece, 1700000000123456789LL + i, line, (size_t)n),
                     0);
    const char *st = streams[i % 3 == 0];
    assert_int_equal(nn__ship_builder_add(&b, st, strlen(st), piece.data, piece.len), 0);
  }
  assert_int_equal(nn__ship_builder_finish(&b, &out), 0);
  Logproto__PushRequest *pr = NULL;
  assert_int_equal(nn_wire_push_decode(out.data, out.len, &pool, &pr, err, sizeof(err)), 0);
  assert_int_equal(pr->n_streams, 2);
  assert_string_equal(pr->streams[0]->labels, "{app=\"b\"}"); /* i = 0 went to b first */
  assert_int_equal(pr->streams[0]->n_entries, 100);
  assert_int_equal(pr->streams[1]->n_entries, 200);
  assert_string_equal(pr->streams[1]->entries[0]->line, "line 1");
  assert_int_equal(pr->streams[0]->entries[1]->timestamp->seconds, 1700000000);
  assert_int_equal(pr->streams[0]->entries[1]->timestamp->nanos, 123456789 + 3);
  nn__ship_builder_fini(&b);

  nn_buf_reset(&out);
  nn__ship_builder_init(&b, &nn_ship_payload_remote_write, 1 << 20);
  for (int i = 0; i < 10; i++) {
    nn_buf_reset(&key);
    char inst[16];
    snprintf(inst, sizeof(inst), "h%d", i % 2);
    assert_int_equal(nn_ship_rw_label_encode(&key, "__name__", "up"), 0);
    assert_int_equal(nn_ship_rw_label_encode(&key, "instance", inst), 0);
    nn_buf_reset(&piece);
    assert_int_equal(nn_ship_rw_sample_encode(&piece, i * 0.5, 1700000000000LL + i), 0);
    assert_int_equal(nn__ship_builder_add(&b, key.data, key.len, piece.data, piece.len), 0);
  }
  assert_int_equal(nn__ship_builder_finish(&b, &out), 0);
  Prometheus__WriteRequest *wr = NULL;
  assert_int_equal(nn_wire_rw_decode(out.data, out.len, &pool, &wr, err, sizeof(err)), 0);
  assert_int_equal(wr->n_timeseries, 2);
  assert_int_equal(wr->timeseries[1]->n_labels, 2);
  assert_string_equal(wr->timeseries[1]->labels[1]->value, "h1");
  assert_int_equal(wr->timeseries[1]->n_samples, 5);
  assert_true(wr->timeseries[1]->samples[2]->value == 2.5);
  assert_int_equal(wr->timeseries[1]->samples[2]->timestamp, 1700000000005LL);
  nn__ship_builder_fini(&b);
  nn_pool_clear(&pool);
  nn_buf_fini(&out);
  nn_buf_fini(&piece);
  nn_buf_fini(&key);
}

static void backoff_delays_stay_in_their_ranges(void **state)
{
  uint64_t rng = 12345;
  for (uint32_t attempt = 1; attempt <= 12; attempt++) {
    int64_t hi = 1000;
    for (uint32_t i = 1; i < attempt; i++)
      hi = hi * 2 > 60000 ? 60000 : hi * 2;
    int64_t lo_seen = INT64_MAX, hi_seen = 0;
    for (int k = 0; k < 2000; k++) {
      int64_t d = nn_ship_backoff_delay(1000, 60000, attempt, &rng);
      assert_true(d >= 1000 && d <= hi);
      lo_seen = d < lo_seen ? d : lo_seen;
      hi_seen = d > hi_seen ? d : hi_seen;
    }
    if (attempt > 1) {
      /* Full jitter: the whole range is used, not just its top. */
      assert_true(lo_seen < 1000 + (hi - 1000) / 10 + 1);
      assert_true(hi_seen > hi - (hi - 1000) / 10 - 1);
    }
  }
  assert_int_equal(nn_ship_backoff_delay(1000, 60000, 1000000, &rng) <= 60000, 1);
}

static void retry_after_parses_seconds_and_dates(void **state)
{
  assert_int_equal(nn_ship_retry_after_parse("120", 3, 0), 120000);
  assert_int_equal(nn_ship_retry_after_parse(" 5 ", 3, 0), 5000);
  assert_int_equal(nn_ship_retry_after_parse("abc", 3, 0), -1);
  assert_int_equal(nn_ship_retry_after_parse("12x", 3, 0), -1);
  assert_int_equal(nn_ship_retry_after_parse("", 0, 0), -1);
  const char *date = "Wed, 21 Oct 2015 07:28:00 GMT";
  int64_t at = 1445412480000LL;
  assert_int_equal(nn_ship_retry_after_parse(date, strlen(date), at - 30000), 30000);
  assert_int_equal(nn_ship_retry_after_parse(date, strlen(date), at + 30000), 0);
  assert_true(nn_ship_retry_after_parse("99999999999999999999", 20, 0) > 0);
}

int main(void)
{
  nn_log_setup(NN_LOG_ERROR, NN_LOG_LOGFMT); /* torn-tail warnings are expected here */
  nn__ship_spool_set_sync(false);            /* fsync proves nothing here and costs seconds */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(crc32c_matches_the_check_value),
      cmocka_unit_test_setup_teardown(spool_reads_back_in_order_and_survives_reopen, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(drained_spool_holds_no_bytes_and_restarts_cleanly, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(spool_refuses_past_its_cap, setup, teardown),
      cmocka_unit_test_setup_teardown(torn_tail_is_truncated_at_every_byte, setup, teardown),
      cmocka_unit_test_setup_teardown(corrupt_segment_is_skipped_and_reported, setup, teardown),
      cmocka_unit_test_setup_teardown(drop_oldest_reports_every_unread_batch, setup, teardown),
      cmocka_unit_test(builder_groups_records_per_key),
      cmocka_unit_test(builder_output_decodes_as_push_and_write_requests),
      cmocka_unit_test(backoff_delays_stay_in_their_ranges),
      cmocka_unit_test(retry_after_parses_seconds_and_dates),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
