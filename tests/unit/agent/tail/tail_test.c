/* SPDX-License-Identifier: Apache-2.0 */
/* Tailing real files in a temp dir on a real libuv loop: discovery latency, Kubernetes
 * labels, append, rename and copytruncate rotation, truncation, inode reuse, deleted files,
 * restart from the acknowledged checkpoint, pause/resume and very long lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "agent/tail/internal.h"
#include "agent/tail/tail.h"
#include "common/error.h"

struct sink {
  size_t n;
  char *line[4096];
  uint64_t id[4096];
  uint64_t commit[4096];
  uint32_t flags[4096];
  size_t len[4096];
  char ns[64], pod[64], container[64], cid[80];
};

struct fx {
  char dir[256];
  char pattern[300];
  const char *inc[1];
  uv_loop_t loop;
  struct nn_tail *t;
  struct sink s;
  struct nn_tail_config cfg;
};

static void on_entry(void *ctx, const struct nn_tail_entry *e)
{
  struct sink *s = ctx;
  assert_true(s->n < 4096);
  size_t keep = e->entry->len < 200 ? e->entry->len : 200;
  s->line[s->n] = strndup(e->entry->line, keep);
  s->len[s->n] = e->entry->len;
  s->id[s->n] = e->file_id;
  s->commit[s->n] = e->entry->commit_offset;
  s->flags[s->n] = e->entry->flags;
  const char *v;
  if ((v = nn_labels_get(e->labels, e->nlabels, "namespace")))
    snprintf(s->ns, sizeof(s->ns), "%s", v);
  if ((v = nn_labels_get(e->labels, e->nlabels, "pod")))
    snprintf(s->pod, sizeof(s->pod), "%s", v);
  if ((v = nn_labels_get(e->labels, e->nlabels, "container")))
    snprintf(s->container, sizeof(s->container), "%s", v);
  if ((v = nn_labels_get(e->labels, e->nlabels, "container_id")))
    snprintf(s->cid, sizeof(s->cid), "%s", v);
  s->n++;
}

static void sink_clear(struct sink *s)
{
  for (size_t i = 0; i < s->n; i++)
    free(s->line[i]);
  s->n = 0;
}

static int setup(void **state)
{
  struct fx *f = calloc(1, sizeof(*f));
  snprintf(f->dir, sizeof(f->dir), "/tmp/nn-tail-test-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->pattern, sizeof(f->pattern), "%s/*.log", f->dir);
  f->inc[0] = f->pattern;
  uv_loop_init(&f->loop);
  f->cfg.include = f->inc;
  f->cfg.n_include = 1;
  f->cfg.rotate_settle_ms = 200;
  f->cfg.parse.format = NN_PARSE_RAW;
  *state = f;
  return 0;
}

static void stop_tail(struct fx *f)
{
  if (!f->t)
    return;
  nn_tail_destroy(f->t);
  f->t = NULL;
  uv_run(&f->loop, UV_RUN_DEFAULT);
}

static int teardown(void **state)
{
  struct fx *f = *state;
  char cmd[400];
  stop_tail(f);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  sink_clear(&f->s);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

static void start_tail(struct fx *f)
{
  char err[256] = "";
  int rc = nn_tail_create(&f->loop, &f->cfg, on_entry, &f->s, &f->t, err, sizeof(err));
  if (rc < 0)
    fail_msg("nn_tail_create: %s", err);
  assert_int_equal(nn_tail_start(f->t), 0);
}

/* Runs the loop until the sink holds n entries or ms pass; returns elapsed ms. */
static uint64_t run_until(struct fx *f, size_t n, uint64_t ms)
{
  uv_update_time(&f->loop);
  uint64_t start = uv_now(&f->loop);
  while (f->s.n < n && uv_now(&f->loop) - start < ms) {
    uv_run(&f->loop, UV_RUN_ONCE);
    uv_update_time(&f->loop);
  }
  return uv_now(&f->loop) - start;
}

static void run_for(struct fx *f, uint64_t ms)
{
  run_until(f, SIZE_MAX, ms);
}

static void path_of(struct fx *f, const char *name, char *out, size_t n)
{
  snprintf(out, n, "%s/%s", f->dir, name);
}

static void append(const char *path, const char *text)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
}

static void expect_lines(struct fx *f, size_t from, const char *const *want, size_t n)
{
  assert_true(f->s.n >= from + n);
  for (size_t i = 0; i < n; i++)
    assert_string_equal(f->s.line[from + i], want[i]);
}

static void new_file_is_picked_up_within_a_second_with_k8s_labels(void **state)
{
  struct fx *f = *state;
  char p[512];
  f->cfg.rescan_interval_ms = 60000; /* only inotify can make it in time */
  start_tail(f);
  run_for(f, 50);
  path_of(f, "web-7d9f_shop_nginx-0123456789abcdef.log", p, sizeof(p));
  append(p, "one\ntwo\n");
  uint64_t ms = run_until(f, 2, 3000);
  assert_int_equal(f->s.n, 2);
  assert_true(ms < 1000);
  assert_string_equal(f->s.line[0], "one");
  assert_string_equal(f->s.ns, "shop");
  assert_string_equal(f->s.pod, "web-7d9f");
  assert_string_equal(f->s.container, "nginx");
  assert_string_equal(f->s.cid, "0123456789abcdef");
  append(p, "three\npartial");
  run_until(f, 3, 2000);
  run_for(f, 100);
  assert_int_equal(f->s.n, 3);
  assert_string_equal(f->s.line[2], "three");
  assert_int_equal(f->s.commit[2], 14);
  append(p, " done\n");
  run_until(f, 4, 2000);
  assert_string_equal(f->s.line[3], "partial done");
}

static void path_labels_cover_both_kubelet_layouts(void **state)
{
  struct nn_label l[5];
  char store[512];
  const char *p = "/var/log/pods/shop_web-7d9f_0c1d-uid/nginx/0.log";
  size_t n = nn_tail_path_labels(p, l, store, sizeof(store));
  assert_int_equal(n, 4);
  assert_string_equal(nn_labels_get(l, n, "namespace"), "shop");
  assert_string_equal(nn_labels_get(l, n, "pod"), "web-7d9f");
  assert_string_equal(nn_labels_get(l, n, "container"), "nginx");
  assert_string_equal(nn_labels_get(l, n, "filename"), p);
  p = "/var/log/app/plain.log";
  n = nn_tail_path_labels(p, l, store, sizeof(store));
  assert_int_equal(n, 1);
  assert_string_equal(l[0].name, "filename");
  /* A real kubelet name: a 64-hex container id makes the labels about as long as the path. */
  p = "/var/log/containers/checkout-worker-7d9f01_checkout_worker-"
      "f128818c1db28c42d52ff64d20703ff6737028a06218590d127251b4ec937c2a.log";
  size_t need = 2 * strlen(p) + 8;
  char *exact = malloc(need);
  assert_int_equal(nn_tail_path_labels(p, l, exact, need - 1), 0);
  n = nn_tail_path_labels(p, l, exact, need);
  assert_int_equal(n, 5);
  assert_string_equal(nn_labels_get(l, n, "container_id"),
                      "f128818c1db28c42d52ff64d20703ff6737028a06218590d127251b4ec937c2a");
  assert_string_equal(nn_labels_get(l, n, "pod"), "checkout-worker-7d9f01");
  free(exact);
}

static void rename_rotation_reads_old_file_to_the_end_exactly_once(void **state)
{
  struct fx *f = *state;
  char p[512], rot[512];
  path_of(f, "app.log", p, sizeof(p));
  path_of(f, "app.log.1", rot, sizeof(rot));
  append(p, "1\n2\n3\n");
  start_tail(f);
  run_until(f, 3, 2000);
  int old = open(p, O_WRONLY | O_APPEND);
  assert_true(old >= 0);
  assert_int_equal(rename(p, rot), 0);
  /* the writer has not reopened yet: these land in the renamed file */
  assert_int_equal(write(old, "4\n5\n", 4), 4);
  close(old);
  append(p, "6\n7\n");
  run_until(f, 7, 3000);
  run_for(f, 100);
  const char *want[] = {"1", "2", "3", "4", "5", "6", "7"};
  assert_int_equal(f->s.n, 7);
  expect_lines(f, 0, want, 7);
  assert_true(f->s.id[3] == f->s.id[0]);
  assert_true(f->s.id[5] != f->s.id[0]);
  struct nn_tail_stats st;
  nn_tail_get_stats(f->t, &st);
  assert_int_equal(st.rotations_rename, 1);
  run_for(f, 1500); /* settle, then the old file is released */
  nn_tail_get_stats(f->t, &st);
  assert_int_equal(st.files_watched, 1);
  assert_int_equal(f->s.n, 7);
}

static void copytruncate_and_truncate_to_zero_restart_at_zero(void **state)
{
  struct fx *f = *state;
  char p[512];
  path_of(f, "app.log", p, sizeof(p));
  append(p, "1\n2\n3\n");
  start_tail(f);
  run_until(f, 3, 2000);
  assert_int_equal(truncate(p, 0), 0);
  run_for(f, 100);
  append(p, "4\n");
  run_until(f, 4, 2000);
  /* truncated and rewritten past the old offset before the tailer looks */
  nn_tail_pause(f->t);
  assert_int_equal(truncate(p, 0), 0);
  append(p, "5 is a longer line\n6\n");
  nn_tail_resume(f->t);
  run_until(f, 6, 3000);
  run_for(f, 100);
  const char *want[] = {"1", "2", "3", "4", "5 is a longer line", "6"};
  assert_int_equal(f->s.n, 6);
  expect_lines(f, 0, want, 6);
  struct nn_tail_stats st;
  nn_tail_get_stats(f->t, &st);
  assert_int_equal(st.rotations_truncate, 2);
  assert_true(f->s.id[3] != f->s.id[0]);
}

static void deleted_file_is_drained_then_released(void **state)
{
  struct fx *f = *state;
  char p[512];
  path_of(f, "gone.log", p, sizeof(p));
  append(p, "a\nb\nc\n");
  start_tail(f);
  nn_tail_pause(f->t); /* opened by the first scan, nothing read yet */
  assert_int_equal(unlink(p), 0);
  nn_tail_rescan(f->t);
  run_for(f, 200);
  assert_int_equal(f->s.n, 0);
  struct nn_tail_stats st;
  nn_tail_get_stats(f->t, &st);
  assert_int_equal(st.files_deleted_open, 1);
  assert_int_equal(st.deleted_bytes_held, 6);
  nn_tail_resume(f->t);
  run_until(f, 3, 2000);
  run_for(f, 100);
  const char *want[] = {"a", "b", "c"};
  expect_lines(f, 0, want, 3);
  nn_tail_get_stats(f->t, &st);
  assert_int_equal(st.files_watched, 0);
}

static void pause_stops_reading_and_resume_continues(void **state)
{
  struct fx *f = *state;
  char p[512];
  path_of(f, "app.log", p, sizeof(p));
  start_tail(f);
  append(p, "x\n");
  run_until(f, 1, 2000);
  nn_tail_pause(f->t);
  assert_true(nn_tail_paused(f->t));
  append(p, "y\nz\n");
  run_for(f, 400);
  assert_int_equal(f->s.n, 1);
  /* What is written and not read yet is the lag the agent reports. */
  struct nn_tail_stats st;
  nn_tail_get_stats(f->t, &st);
  assert_int_equal(st.unread_bytes, 4);
  nn_tail_resume(f->t);
  run_until(f, 3, 2000);
  assert_int_equal(f->s.n, 3);
  assert_string_equal(f->s.line[2], "z");
  nn_tail_get_stats(f->t, &st);
  assert_int_equal(st.unread_bytes, 0);
}

static void ten_mib_line_is_truncated_and_tailing_continues(void **state)
{
  struct fx *f = *state;
  char p[512];
  path_of(f, "big.log", p, sizeof(p));
  f->cfg.parse.max_line_size = 65536;
  start_tail(f);
  size_t n = 10u << 20;
  char *big = malloc(n + 1);
  memset(big, 'x', n);
  big[n] = '\0';
  append(p, big);
  append(p, "\nafter\n");
  free(big);
  run_until(f, 2, 5000);
  assert_int_equal(f->s.n, 2);
  assert_int_equal(f->s.len[0], 65536);
  assert_true(f->s.flags[0] & NN_PARSE_F_TRUNCATED);
  assert_string_equal(f->s.line[1], "after");
  assert_int_equal(f->s.commit[1], n + 7);
  struct nn_tail_stats st;
  nn_tail_get_stats(f->t, &st);
  assert_int_equal(st.lines_truncated, 1);
  assert_int_equal(st.bytes_read, n + 7);
}

static void restart_resumes_at_the_acknowledged_offset(void **state)
{
  struct fx *f = *state;
  char p[512], data[512];
  path_of(f, "app.log", p, sizeof(p));
  path_of(f, "data", data, sizeof(data));
  f->cfg.data_dir = data;
  f->cfg.parse.format = NN_PARSE_CRI;
  append(p, "2024-01-02T03:04:05Z stdout F l1\n"
            "2024-01-02T03:04:05Z stdout F l2\n"
            "2024-01-02T03:04:05Z stdout F l3\n"
            "2024-01-02T03:04:05Z stdout P l4-\n"); /* unfinished at shutdown */
  start_tail(f);
  run_until(f, 3, 2000);
  run_for(f, 100);
  assert_int_equal(f->s.n, 3);
  /* the shipper acknowledged the first two entries only */
  assert_int_equal(nn_tail_ack(f->t, f->s.id[1], f->s.commit[1]), 0);
  assert_int_equal(nn_tail_ack(f->t, f->s.id[1], f->s.commit[2] + 1000), NN_EINVAL);
  assert_int_equal(nn_tail_ack(f->t, 12345, 1), NN_ENOTFOUND);
  assert_int_equal(nn_tail_checkpoint(f->t), 0);
  uint64_t id = f->s.id[0];
  /* Stopping (or a crash after the periodic write above) must not move the checkpoint
   * past the ack: l3 and the unfinished l4 fragment are read again. */
  stop_tail(f);
  sink_clear(&f->s);
  append(p, "2024-01-02T03:04:05Z stdout F end\n");
  start_tail(f);
  run_until(f, 2, 2000);
  run_for(f, 100);
  assert_int_equal(f->s.n, 2);
  assert_string_equal(f->s.line[0], "l3");
  assert_string_equal(f->s.line[1], "l4-end");
  assert_int_equal(f->s.id[0], id);
  struct nn_tail_stats st;
  nn_tail_get_stats(f->t, &st);
  assert_int_equal(st.checkpoint_mismatches, 0);
}

static uint64_t ckpt_writes(struct fx *f)
{
  struct nn_tail_stats st;
  nn_tail_get_stats(f->t, &st);
  return st.checkpoint_writes;
}

/* nn_tail_flush_acks writes the acknowledged offsets at once, without waiting for the
 * checkpoint timer, then at most once per flush_gap_ms: acks within the gap are written when
 * it ends. A copy of the positions file taken then (what a crash would leave) resumes after
 * the acknowledged entries. */
static void flush_acks_writes_the_checkpoint_without_waiting_for_the_timer(void **state)
{
  struct fx *f = *state;
  char p[512], data[512], data2[512], cmd[1800];
  path_of(f, "app.log", p, sizeof(p));
  path_of(f, "data", data, sizeof(data));
  path_of(f, "data2", data2, sizeof(data2));
  f->cfg.data_dir = data;
  f->cfg.checkpoint_interval_ms = 3600 * 1000; /* the timer never fires in this test */
  f->cfg.flush_gap_ms = 400;
  f->cfg.parse.format = NN_PARSE_CRI;
  append(p, "2024-01-02T03:04:05Z stdout F l1\n"
            "2024-01-02T03:04:05Z stdout F l2\n"
            "2024-01-02T03:04:05Z stdout F l3\n"
            "2024-01-02T03:04:05Z stdout F l4\n");
  start_tail(f);
  run_until(f, 4, 2000);
  assert_int_equal(f->s.n, 4);
  uint64_t w0 = ckpt_writes(f);
  nn_tail_flush_acks(f->t); /* nothing acknowledged: nothing written */
  run_for(f, 50);
  assert_int_equal(ckpt_writes(f), w0);
  assert_int_equal(nn_tail_ack(f->t, f->s.id[0], f->s.commit[0]), 0);
  uv_update_time(&f->loop);
  uint64_t t0 = uv_now(&f->loop);
  nn_tail_flush_acks(f->t); /* the first write starts at once */
  for (int i = 0; i < 200 && ckpt_writes(f) < w0 + 1; i++)
    run_for(f, 5);
  assert_int_equal(ckpt_writes(f), w0 + 1);
  /* The next ack falls inside the gap: written when the gap ends, not before. */
  assert_int_equal(nn_tail_ack(f->t, f->s.id[1], f->s.commit[1]), 0);
  nn_tail_flush_acks(f->t);
  nn_tail_flush_acks(f->t);
  run_for(f, 20);
  uv_update_time(&f->loop);
  if (uv_now(&f->loop) - t0 < 350)
    assert_int_equal(ckpt_writes(f), w0 + 1);
  for (int i = 0; i < 400 && ckpt_writes(f) < w0 + 2; i++)
    run_for(f, 5);
  assert_int_equal(ckpt_writes(f), w0 + 2);
  uv_update_time(&f->loop);
  assert_true(uv_now(&f->loop) - t0 >= 390);
  run_for(f, 50);
  assert_int_equal(ckpt_writes(f), w0 + 2); /* nothing new: no further writes */
  snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp '%s/positions' '%s/positions'", data2, data,
           data2);
  assert_int_equal(system(cmd), 0);
  stop_tail(f);
  sink_clear(&f->s);
  f->cfg.data_dir = data2;
  start_tail(f);
  run_until(f, 2, 2000);
  run_for(f, 100);
  assert_int_equal(f->s.n, 2);
  assert_string_equal(f->s.line[0], "l3");
  assert_string_equal(f->s.line[1], "l4");
}

/* A work item that holds the (single) threadpool thread until released. */
static uv_sem_t pool_gate;
static void gate_work(uv_work_t *req)
{
  (void)req;
  uv_sem_wait(&pool_gate);
}
static void gate_done(uv_work_t *req, int status)
{
  (void)req;
  (void)status;
}

/* The last checkpoint at shutdown is written after an asynchronous write still in flight,
 * never before it: the older snapshot must not be renamed over the final one (a graceful
 * restart would then read acknowledged, spooled batches again). The threadpool (one thread,
 * see main) is held so that the asynchronous write is still queued when the tailer stops. */
static void final_checkpoint_is_not_overwritten_by_a_write_in_flight(void **state)
{
  struct fx *f = *state;
  char p[512], data[512];
  path_of(f, "app.log", p, sizeof(p));
  path_of(f, "data", data, sizeof(data));
  f->cfg.data_dir = data;
  f->cfg.checkpoint_interval_ms = 3600 * 1000;
  f->cfg.flush_gap_ms = 1;
  f->cfg.parse.format = NN_PARSE_CRI;
  append(p, "2024-01-02T03:04:05Z stdout F l1\n"
            "2024-01-02T03:04:05Z stdout F l2\n"
            "2024-01-02T03:04:05Z stdout F l3\n");
  start_tail(f);
  run_until(f, 3, 2000);
  assert_int_equal(f->s.n, 3);
  uv_work_t gate;
  assert_int_equal(uv_sem_init(&pool_gate, 0), 0);
  assert_int_equal(uv_queue_work(&f->loop, &gate, gate_work, gate_done), 0);
  assert_int_equal(nn_tail_ack(f->t, f->s.id[0], f->s.commit[0]), 0);
  nn_tail_flush_acks(f->t); /* queued behind the gate: a snapshot with l1 acknowledged */
  assert_int_equal(nn_tail_ack(f->t, f->s.id[1], f->s.commit[1]), 0);
  nn_tail_destroy(f->t); /* the final checkpoint has l2 acknowledged */
  f->t = NULL;
  uv_sem_post(&pool_gate);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  uv_sem_destroy(&pool_gate);
  sink_clear(&f->s);
  start_tail(f);
  run_until(f, 1, 2000);
  run_for(f, 100);
  assert_int_equal(f->s.n, 1);
  assert_string_equal(f->s.line[0], "l3");
}

static void checkpoint_with_mismatching_fingerprint_means_a_new_file(void **state)
{
  struct fx *f = *state;
  char p[512], data[512], pos[600];
  struct stat st;
  path_of(f, "app.log", p, sizeof(p));
  path_of(f, "data", data, sizeof(data));
  assert_int_equal(mkdir(data, 0755), 0);
  append(p, "new file line 1\nnew file line 2\n");
  assert_int_equal(stat(p, &st), 0);
  /* A position left by an earlier file that had the same inode (as ext4 reuses them). */
  char body[1024], text[1200];
  snprintf(body, sizeof(body),
           "# nines positions v1\n"
           "00000000000000aa %llu %llu 16 16 1111111111111111 16 2222222222222222 %s\n",
           (unsigned long long)st.st_dev, (unsigned long long)st.st_ino, p);
  uint64_t h = nn__tail_hash(body, strlen(body)); /* the trailer covers everything before it */
  snprintf(text, sizeof(text), "%s# end 1 %016llx\n", body, (unsigned long long)h);
  snprintf(pos, sizeof(pos), "%s/positions", data);
  append(pos, text);
  f->cfg.data_dir = data;
  start_tail(f);
  run_until(f, 2, 2000);
  assert_int_equal(f->s.n, 2);
  assert_string_equal(f->s.line[0], "new file line 1");
  struct nn_tail_stats s;
  nn_tail_get_stats(f->t, &s);
  assert_int_equal(s.checkpoint_mismatches, 1);
}

static void corrupt_positions_file_is_ignored(void **state)
{
  struct fx *f = *state;
  char p[512], data[512], pos[600];
  path_of(f, "app.log", p, sizeof(p));
  path_of(f, "data", data, sizeof(data));
  assert_int_equal(mkdir(data, 0755), 0);
  snprintf(pos, sizeof(pos), "%s/positions", data);
  append(pos, "# nines positions v1\ngarbage\n");
  append(p, "a\n");
  f->cfg.data_dir = data;
  start_tail(f);
  run_until(f, 1, 2000);
  assert_int_equal(f->s.n, 1);
}

static void bad_config_is_rejected_with_a_message(void **state)
{
  struct fx *f = *state;
  char err[256] = "";
  const char *rel[] = {"relative/*.log"};
  f->cfg.include = rel;
  assert_int_equal(nn_tail_create(&f->loop, &f->cfg, on_entry, &f->s, &f->t, err, sizeof(err)),
                   NN_ECONFIG);
  assert_non_null(strstr(err, "relative/*.log"));
  assert_null(f->t);
}

static void kubelet_symlink_layout_follows_rotation_in_the_pod_directory(void **state)
{
  struct fx *f = *state;
  char pods[512], real[600], link[600], rot[600], cmd[1400];
  f->cfg.rescan_interval_ms = 60000; /* inotify on the resolved directory must suffice */
  snprintf(pods, sizeof(pods), "%s/pods/shop_web-1_0c1d/nginx", f->dir);
  snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", pods);
  assert_int_equal(system(cmd), 0);
  snprintf(real, sizeof(real), "%s/0.log", pods);
  snprintf(rot, sizeof(rot), "%s/0.log.20240102-030405", pods);
  snprintf(link, sizeof(link), "%s/web-1_shop_nginx-abc123.log", f->dir);
  append(real, "2024-01-02T03:04:05Z stdout F one\n");
  assert_int_equal(symlink(real, link), 0);
  f->cfg.parse.format = NN_PARSE_AUTO;
  start_tail(f);
  run_until(f, 1, 2000);
  append(real, "2024-01-02T03:04:05Z stdout F two\n");
  assert_true(run_until(f, 2, 2000) < 1000);
  /* kubelet rotation: rename in the pod directory, new file at the old name */
  assert_int_equal(rename(real, rot), 0);
  append(real, "2024-01-02T03:04:06Z stderr F three\n");
  assert_true(run_until(f, 3, 3000) < 1000);
  const char *want[] = {"one", "two", "three"};
  expect_lines(f, 0, want, 3);
  assert_string_equal(f->s.ns, "shop");
  assert_string_equal(f->s.cid, "abc123");
  struct nn_tail_stats st;
  nn_tail_get_stats(f->t, &st);
  assert_int_equal(st.rotations_rename, 1);
}

static void deleted_bytes_over_the_cap_are_released_and_counted(void **state)
{
  struct fx *f = *state;
  char p[512];
  path_of(f, "big.log", p, sizeof(p));
  append(p, "0123456789\n0123456789\n");
  f->cfg.max_deleted_bytes = 10;
  start_tail(f);
  nn_tail_pause(f->t);
  assert_int_equal(unlink(p), 0);
  nn_tail_rescan(f->t);
  struct nn_tail_stats st;
  nn_tail_get_stats(f->t, &st);
  assert_int_equal(st.files_watched, 0);
  assert_int_equal(st.deleted_bytes_dropped, 22);
  nn_tail_resume(f->t);
  run_for(f, 100);
  assert_int_equal(f->s.n, 0);
}

static void start_at_end_skips_existing_lines_and_a_line_in_progress(void **state)
{
  struct fx *f = *state;
  char p[512];
  path_of(f, "app.log", p, sizeof(p));
  append(p, "old 1\nold 2\nhalf-writ");
  f->cfg.start_at_end = true;
  start_tail(f);
  run_for(f, 100);
  append(p, "ten\nnew\n");
  run_until(f, 1, 2000);
  run_for(f, 100);
  assert_int_equal(f->s.n, 1);
  assert_string_equal(f->s.line[0], "new");
}

int main(void)
{
  setenv("UV_THREADPOOL_SIZE", "1", 1); /* before libuv starts its pool: see the gate test */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(final_checkpoint_is_not_overwritten_by_a_write_in_flight,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(new_file_is_picked_up_within_a_second_with_k8s_labels, setup,
                                      teardown),
      cmocka_unit_test(path_labels_cover_both_kubelet_layouts),
      cmocka_unit_test_setup_teardown(rename_rotation_reads_old_file_to_the_end_exactly_once, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(copytruncate_and_truncate_to_zero_restart_at_zero, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(deleted_file_is_drained_then_released, setup, teardown),
      cmocka_unit_test_setup_teardown(pause_stops_reading_and_resume_continues, setup, teardown),
      cmocka_unit_test_setup_teardown(ten_mib_line_is_truncated_and_tailing_continues, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(restart_resumes_at_the_acknowledged_offset, setup, teardown),
      cmocka_unit_test_setup_teardown(
          flush_acks_writes_the_checkpoint_without_waiting_for_the_timer, setup, teardown),
      cmocka_unit_test_setup_teardown(checkpoint_with_mismatching_fingerprint_means_a_new_file,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(corrupt_positions_file_is_ignored, setup, teardown),
      cmocka_unit_test_setup_teardown(bad_config_is_rejected_with_a_message, setup, teardown),
      cmocka_unit_test_setup_teardown(start_at_end_skips_existing_lines_and_a_line_in_progress,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(kubelet_symlink_layout_follows_rotation_in_the_pod_directory,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(deleted_bytes_over_the_cap_are_released_and_counted, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
