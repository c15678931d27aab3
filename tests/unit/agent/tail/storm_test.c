/* SPDX-License-Identifier: Apache-2.0 */
/* Rotation mini-storm: a writer thread appends 100,000 numbered lines while rotating every
 * 0.2 s, alternating rename+create (with lines written to the renamed file before the writer
 * reopens, as a real process does) and copytruncate. Every line must arrive exactly once
 * and in order.
 *
 * copytruncate cannot be lossless in general: lines the tailer has not read when the
 * original is truncated exist only in the copy (the Promtail rotation docs and AGENTS.md
 * say so). logrotate's window is copy-then-truncate with the writer still running; here the
 * writer pauses for the copy+truncate and the truncate waits until the tailer has caught
 * up, which is the one case where copytruncate is lossless. That isolates what is ours to
 * get right: noticing the truncation (even when new data has already grown past the old
 * offset) and restarting at 0 without skipping or repeating a line. The counter for bytes
 * lost to a truncation must stay 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "agent/tail/tail.h"

#define NLINES 100000

struct storm {
  char dir[256];
  char path[300];
  atomic_long received; /* lines seen by the tailer, in order */
  atomic_long written;
  atomic_int done;
  long next;         /* loop thread only */
  long out_of_order; /* loop thread only */
  int renames, copytruncates;
};

static uint64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void write_line(int fd, struct storm *s, long i)
{
  char b[64];
  int n = snprintf(b, sizeof(b), "line %07ld padding-to-make-it-longer\n", i);
  if (write(fd, b, (size_t)n) != n)
    abort();
  atomic_store(&s->written, i + 1);
}

static int open_log(const char *path)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    abort();
  return fd;
}

static void copy_file(const char *from, const char *to)
{
  char b[65536];
  int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ssize_t n;
  if (in < 0 || out < 0)
    abort();
  while ((n = read(in, b, sizeof(b))) > 0)
    if (write(out, b, (size_t)n) != n)
      abort();
  close(in);
  close(out);
}

static void *writer(void *arg)
{
  struct storm *s = arg;
  int fd = open_log(s->path);
  uint64_t last_rot = now_ms();
  int k = 0;
  for (long i = 0; i < NLINES;) {
    write_line(fd, s, i++);
    if (i % 40 == 0)
      usleep(1000);
    if (now_ms() - last_rot < 200 || i >= NLINES - 10)
      continue;
    last_rot = now_ms();
    char rot[400];
    if (k++ % 2 == 0) {
      snprintf(rot, sizeof(rot), "%s.%d.rot", s->path, k);
      if (rename(s->path, rot) < 0)
        abort();
      /* still writing to the old inode until "reopen" */
      for (int j = 0; j < 5; j++)
        write_line(fd, s, i++);
      close(fd);
      fd = open_log(s->path);
      s->renames++;
    } else {
      snprintf(rot, sizeof(rot), "%s.%d.copy", s->path, k);
      copy_file(s->path, rot);
      uint64_t t0 = now_ms();
      while (atomic_load(&s->received) < atomic_load(&s->written) && now_ms() - t0 < 10000)
        usleep(1000);
      if (ftruncate(fd, 0) < 0)
        abort();
      s->copytruncates++;
    }
  }
  close(fd);
  atomic_store(&s->done, 1);
  return NULL;
}

static void on_entry(void *ctx, const struct nn_tail_entry *e)
{
  struct storm *s = ctx;
  long v = -1;
  if (e->entry->len > 12 && memcmp(e->entry->line, "line ", 5) == 0)
    v = strtol(e->entry->line + 5, NULL, 10);
  if (v != s->next)
    s->out_of_order++;
  s->next = v + 1;
  atomic_store(&s->received, s->next);
}

static void every_line_arrives_exactly_once_in_order_through_rotations(void **state)
{
  static struct storm s;
  uv_loop_t loop;
  struct nn_tail *t;
  char err[256], pattern[300];
  memset(&s, 0, sizeof(s));
  snprintf(s.dir, sizeof(s.dir), "/tmp/nn-storm-XXXXXX");
  assert_non_null(mkdtemp(s.dir));
  snprintf(s.path, sizeof(s.path), "%s/app.log", s.dir);
  snprintf(pattern, sizeof(pattern), "%s/*.log", s.dir);
  const char *inc[] = {pattern};
  struct nn_tail_config cfg = {
      .include = inc, .n_include = 1, .rotate_settle_ms = 500, .parse = {.format = NN_PARSE_RAW}};
  uv_loop_init(&loop);
  assert_int_equal(nn_tail_create(&loop, &cfg, on_entry, &s, &t, err, sizeof(err)), 0);
  assert_int_equal(nn_tail_start(t), 0);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, writer, &s), 0);
  uint64_t t0 = now_ms();
  while ((atomic_load(&s.received) < NLINES || !atomic_load(&s.done)) && now_ms() - t0 < 60000)
    uv_run(&loop, UV_RUN_ONCE);
  pthread_join(th, NULL);
  struct nn_tail_stats st;
  nn_tail_get_stats(t, &st);
  printf("storm: %ld lines, %d renames, %d copytruncates, %.1f s; rotations seen: rename %llu "
         "truncate %llu\n",
         (long)atomic_load(&s.received), s.renames, s.copytruncates, (now_ms() - t0) / 1000.0,
         (unsigned long long)st.rotations_rename, (unsigned long long)st.rotations_truncate);
  assert_int_equal(s.out_of_order, 0);
  assert_int_equal(atomic_load(&s.received), NLINES);
  assert_true(s.renames >= 3);
  assert_true(s.copytruncates >= 3);
  assert_int_equal(st.rotations_rename, s.renames);
  assert_int_equal(st.rotations_truncate, s.copytruncates);
  assert_int_equal(st.truncate_bytes_missed, 0);
  nn_tail_destroy(t);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s.dir);
  assert_int_equal(system(cmd), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_line_arrives_exactly_once_in_order_through_rotations),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
