/* SPDX-License-Identifier: Apache-2.0 */
/* Per-file reading: bounded pread steps into one shared buffer, memchr line splitting with
 * complete lines fed to the parser straight from that buffer, a capped carry for the
 * unfinished last line, truncation detection (size below our offset, or the bytes before
 * our offset changed), and draining of rotated and deleted files before they are closed.
 * A rotated file is closed only after EOF and a settle time without growth, never with
 * unread bytes (the fluent-bit rotate_wait loss). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/tail/internal.h"
#include "common/error.h"
#include "common/log.h"

static void on_reader(uv_idle_t *h);

static void on_parse_entry(void *ctx, const struct nn_parse_entry *e)
{
  struct nn__tail_file *f = ctx;
  struct nn_tail *t = f->tail;
  nn__tail_file_ensure_id(f);
  struct nn_tail_entry te = {
      .file_id = f->file_id,
      .labels = f->labels,
      .nlabels = f->nlabels,
      .path = f->path,
      .entry = e,
      .labels_id = f->labels_id,
  };
  t->stats.entries++;
  if (e->flags & NN_PARSE_F_TRUNCATED)
    t->stats.lines_truncated++;
  if (e->flags & NN_PARSE_F_INVALID_UTF8)
    t->stats.invalid_utf8++;
  if (e->flags & NN_PARSE_F_BAD_FORMAT)
    t->stats.bad_format++;
  t->cb(t->ctx, &te);
}

bool nn__tail_file_ensure_id(struct nn__tail_file *f)
{
  if (f->id_known)
    return true;
  if (nn__tail_head_fp(f->fd, true, &f->head_fp, &f->head_len) < 0) {
    f->file_id = nn__tail_file_id(f->dev, f->ino, 0, 0);
    return false;
  }
  f->file_id = nn__tail_file_id(f->dev, f->ino, f->head_fp, f->head_len);
  f->id_known = true;
  (void)nn__tail_hput(&f->tail->by_id, f->file_id, 0, f);
  return true;
}

void nn__tail_wake_reader(struct nn_tail *t)
{
  if (t->started && !t->paused && !t->destroying)
    (void)uv_idle_start(&t->reader, on_reader);
}

void nn__tail_file_wake(struct nn__tail_file *f)
{
  f->at_eof = false;
  f->check_trunc = true;
  nn__tail_wake_reader(f->tail);
}

static void dir_link(struct nn__tail_file *f, int slot, struct nn__tail_dir *d)
{
  f->dir[slot] = d;
  f->dnext[slot] = d->files;
  d->files = f;
}

static void dir_unlink(struct nn_tail *t, struct nn__tail_file *f, int slot)
{
  struct nn__tail_dir *d = f->dir[slot];
  if (!d)
    return;
  struct nn__tail_file **pp = &d->files;
  while (*pp && *pp != f) {
    struct nn__tail_file *c = *pp;
    pp = &c->dnext[c->dir[0] == d ? 0 : 1];
  }
  if (*pp)
    *pp = f->dnext[slot];
  f->dir[slot] = NULL;
  nn__tail_unwatch_dir(t, d);
}

static void watch_dirs(struct nn_tail *t, struct nn__tail_file *f)
{
  char tmp[PATH_MAX];
  struct nn__tail_dir *d0 = NULL, *d1 = NULL;
  snprintf(tmp, sizeof(tmp), "%s", f->path);
  if (nn__tail_watch_dir(t, dirname(tmp), &d0) == 0)
    dir_link(f, 0, d0);
  char *real = realpath(f->path, NULL);
  if (real) {
    if (nn__tail_watch_dir(t, dirname(real), &d1) == 0) {
      if (d1 == d0)
        nn__tail_unwatch_dir(t, d1);
      else
        dir_link(f, 1, d1);
    }
    free(real);
  }
}

static int files_push(struct nn_tail *t, struct nn__tail_file *f)
{
  if (t->nfiles == t->capfiles) {
    size_t ncap = t->capfiles ? t->capfiles * 2 : 64;
    struct nn__tail_file **v = realloc(t->files, ncap * sizeof(*v));
    if (!v)
      return NN_ENOMEM;
    t->files = v;
    t->capfiles = ncap;
  }
  t->files[t->nfiles++] = f;
  return 0;
}

static void remember_last(struct nn__tail_file *f, const char *p, size_t n)
{
  size_t cap = sizeof(f->last);
  if (n >= cap) {
    memcpy(f->last, p + n - cap, cap);
    f->last_len = (uint32_t)cap;
    return;
  }
  size_t keep = f->last_len + n > cap ? cap - n : f->last_len;
  memmove(f->last, f->last + f->last_len - keep, keep);
  memcpy(f->last + keep, p, n);
  f->last_len = (uint32_t)(keep + n);
}

static void file_free(struct nn__tail_file *f)
{
  if (!f)
    return;
  if (f->fd >= 0)
    close(f->fd);
  nn_parse_destroy(f->parser);
  nn_buf_fini(&f->carry);
  free(f->label_store);
  free(f->path);
  free(f);
}

int nn__tail_file_open(struct nn_tail *t, const char *path, const struct stat *st, bool initial)
{
  struct stat fst;
  int rc = 0;
  struct nn__tail_file *f = calloc(1, sizeof(*f));
  if (!f)
    return NN_ENOMEM;
  f->tail = t;
  f->fd = -1;
  nn_buf_init(&f->carry, t->raw_max);
  f->path = strdup(path);
  f->label_store = malloc(2 * strlen(path) + 8);
  f->parser = nn_parse_create(&t->cfg.parse, on_parse_entry, f);
  if (!f->path || !f->label_store || !f->parser) {
    rc = NN_ENOMEM;
    goto fail;
  }
  f->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (f->fd < 0 || fstat(f->fd, &fst) < 0) {
    rc = NN_ERRNO(errno);
    NN_LOG_RL(NN_LOG_WARN, "tail", "open %s: %s", path, strerror(errno));
    goto fail;
  }
  (void)st;
  f->dev = (uint64_t)fst.st_dev;
  f->ino = (uint64_t)fst.st_ino;
  if (nn__tail_hget(&t->by_inode, f->dev, f->ino)) {
    rc = NN_EEXIST; /* the path was swapped between stat and open to a file we track */
    goto fail;
  }
  f->nlabels = nn_tail_path_labels(path, f->labels, f->label_store, 2 * strlen(path) + 8);
  f->labels_id = ++t->next_labels_id;
  uint64_t off = t->restored.n ? nn__tail_ckpt_resume(t, f) : 0;
  if (!f->id_known && off == 0 && initial && t->cfg.start_at_end && fst.st_size > 0) {
    /* Start at the end, but on a line boundary: the rest of a line in progress is dropped,
     * not emitted as a fragment. */
    char c = 0;
    off = (uint64_t)fst.st_size;
    if (pread(f->fd, &c, 1, (off_t)off - 1) == 1 && c != '\n')
      f->skipping = f->drop_to_nl = true;
  }
  f->read_off = f->line_start = f->acked = off;
  f->size_seen = (uint64_t)fst.st_size;
  if (off > 0) {
    char b[sizeof(f->last)];
    size_t n = off < sizeof(b) ? (size_t)off : sizeof(b);
    if (pread(f->fd, b, n, (off_t)(off - n)) == (ssize_t)n)
      remember_last(f, b, n);
  }
  if ((rc = files_push(t, f)) < 0)
    goto fail;
  if ((rc = nn__tail_hput(&t->by_inode, f->dev, f->ino, f)) < 0) {
    t->nfiles--;
    goto fail;
  }
  if (f->id_known)
    (void)nn__tail_hput(&t->by_id, f->file_id, 0, f);
  watch_dirs(t, f);
  nn_debug("tail", "watching %s from offset %llu", path, (unsigned long long)off);
  nn__tail_file_wake(f);
  return 0;
fail:
  file_free(f);
  return rc;
}

/* Emits the unfinished last line and whatever the parser holds: the file ends here. */
static void drain_pending(struct nn__tail_file *f)
{
  if ((f->carry.len || f->skipping) && !f->drop_to_nl && f->read_off > f->line_start) {
    nn_parse_feed(f->parser, f->carry.data ? f->carry.data : "", f->carry.len, f->line_start,
                  f->read_off, f->skipping);
    f->tail->stats.lines_read++;
  }
  nn_buf_reset(&f->carry);
  f->skipping = f->drop_to_nl = false;
  f->line_start = f->read_off;
  nn_parse_flush(f->parser);
}

void nn__tail_file_close(struct nn__tail_file *f, bool flush)
{
  struct nn_tail *t = f->tail;
  if (flush)
    drain_pending(f);
  dir_unlink(t, f, 0);
  dir_unlink(t, f, 1);
  nn__tail_hdel(&t->by_inode, f->dev, f->ino);
  if (f->id_known && nn__tail_hget(&t->by_id, f->file_id, 0) == f)
    nn__tail_hdel(&t->by_id, f->file_id, 0);
  for (size_t i = 0; i < t->nfiles; i++) {
    if (t->files[i] == f) {
      t->files[i] = t->files[--t->nfiles];
      break;
    }
  }
  nn_debug("tail", "released %s at offset %llu", f->path, (unsigned long long)f->read_off);
  file_free(f);
}

static void carry_add(struct nn__tail_file *f, const char *p, size_t n)
{
  if (f->skipping)
    return;
  size_t room = f->carry.max - f->carry.len;
  if (n > room) {
    n = room;
    f->skipping = true; /* longer than any parser would keep: the rest is skipped */
  }
  if (n && nn_buf_append(&f->carry, p, n) < 0)
    f->skipping = true;
}

static void carry_done(struct nn__tail_file *f)
{
  /* A long line's buffer is given back so that idle files cost no memory. */
  if (f->carry.cap > 65536)
    nn_buf_fini(&f->carry);
  else
    nn_buf_reset(&f->carry);
  f->skipping = f->drop_to_nl = false;
}

static void consume(struct nn__tail_file *f, const char *buf, size_t n)
{
  struct nn_tail *t = f->tail;
  uint64_t base = f->read_off;
  const char *p = buf, *end = buf + n;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) {
      carry_add(f, p, (size_t)(end - p));
      break;
    }
    uint64_t eol = base + (uint64_t)(nl - buf) + 1;
    if (f->carry.len || f->skipping) {
      carry_add(f, p, (size_t)(nl - p));
      if (!f->drop_to_nl) {
        nn_parse_feed(f->parser, f->carry.data ? f->carry.data : "", f->carry.len, f->line_start,
                      eol, f->skipping);
        t->stats.lines_read++;
      }
      carry_done(f);
    } else {
      nn_parse_feed(f->parser, p, (size_t)(nl - p), f->line_start, eol, false);
      t->stats.lines_read++;
    }
    f->line_start = eol;
    p = nl + 1;
  }
}

static void truncated(struct nn__tail_file *f, uint64_t size)
{
  struct nn_tail *t = f->tail;
  uint64_t missed = f->size_seen > f->read_off ? f->size_seen - f->read_off : 0;
  t->stats.rotations_truncate++;
  t->stats.truncate_bytes_missed += missed;
  NN_LOG_RL(NN_LOG_INFO, "tail", "%s truncated (offset %llu, size now %llu); reading from 0",
            f->path, (unsigned long long)f->read_off, (unsigned long long)size);
  drain_pending(f);
  carry_done(f);
  nn_parse_reset(f->parser);
  /* Same inode, new content: a new generation with its own id, so late acks for the old
   * content cannot move the new content's checkpoint. */
  if (f->id_known && nn__tail_hget(&t->by_id, f->file_id, 0) == f)
    nn__tail_hdel(&t->by_id, f->file_id, 0);
  f->id_known = false;
  f->read_off = f->line_start = f->acked = 0;
  f->last_len = 0;
  f->size_seen = size;
  t->ckpt_dirty = true;
}

static void check_truncation(struct nn__tail_file *f)
{
  struct stat st;
  if (fstat(f->fd, &st) < 0)
    return;
  uint64_t size = (uint64_t)st.st_size;
  if (size < f->read_off) {
    truncated(f, size);
  } else if (f->last_len) {
    /* Truncated and rewritten past our offset before we looked: the bytes just before the
     * offset are no longer the ones we read. */
    unsigned char b[sizeof(f->last)];
    if (pread(f->fd, b, f->last_len, (off_t)(f->read_off - f->last_len)) != (ssize_t)f->last_len ||
        memcmp(b, f->last, f->last_len) != 0)
      truncated(f, size);
  }
  if (size > f->size_seen)
    f->size_seen = size;
}

/* Reads until EOF or until the budget is spent; returns false on a read error. */
static void read_file(struct nn__tail_file *f, size_t *budget)
{
  struct nn_tail *t = f->tail;
  if (f->check_trunc) {
    f->check_trunc = false;
    check_truncation(f);
  }
  nn_parse_tick(f->parser, uv_now(t->loop));
  while (*budget > 0 && !t->paused) {
    ssize_t n = pread(f->fd, t->rbuf, t->cfg.read_chunk, (off_t)f->read_off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      t->stats.read_errors++;
      NN_LOG_RL(NN_LOG_ERROR, "tail", "read %s: %s", f->path, strerror(errno));
      f->at_eof = true;
      f->eof_since = uv_now(t->loop);
      return;
    }
    if (n == 0) {
      if (!f->at_eof)
        f->eof_since = uv_now(t->loop);
      f->at_eof = true;
      return;
    }
    f->at_eof = false;
    consume(f, t->rbuf, (size_t)n);
    remember_last(f, t->rbuf, (size_t)n);
    f->read_off += (uint64_t)n;
    if (f->read_off > f->size_seen)
      f->size_seen = f->read_off;
    t->stats.bytes_read += (uint64_t)n;
    *budget = *budget > (size_t)n ? *budget - (size_t)n : 0;
  }
}

/* Closes rotated or deleted files that are fully read and settled. While paused, a file is
 * only released if that emits nothing (no pending partial line). */
static void maybe_release(struct nn_tail *t, struct nn__tail_file *f, uint64_t now)
{
  if (f->state == NN__TAIL_ACTIVE || !f->at_eof || f->check_trunc)
    return;
  uint64_t settle = f->state == NN__TAIL_DELETED ? 0 : t->cfg.rotate_settle_ms;
  if (now - f->eof_since < settle)
    return;
  struct stat st;
  if (fstat(f->fd, &st) == 0 && (uint64_t)st.st_size > f->read_off) {
    nn__tail_file_wake(f); /* grew since the last read */
    return;
  }
  if (t->paused && (nn_parse_pending(f->parser) || f->carry.len))
    return;
  nn__tail_file_close(f, !t->paused);
}

static void on_reader(uv_idle_t *h)
{
  struct nn_tail *t = h->data;
  size_t budget = t->cfg.loop_budget;
  bool more = false;
  if (t->paused || t->nfiles == 0) {
    uv_idle_stop(h);
    return;
  }
  /* Rotated and deleted files drain first: their bytes precede the new file's, and holding
   * them costs disk space. Then round-robin from where the last iteration stopped. */
  for (int pass = 0; pass < 2 && budget > 0 && !t->paused; pass++) {
    size_t n = t->nfiles;
    for (size_t k = 0; k < n && budget > 0 && !t->paused; k++) {
      size_t i = (t->rr + k) % n;
      struct nn__tail_file *f = t->files[i];
      if ((f->state == NN__TAIL_ACTIVE) != (pass == 1) || f->at_eof)
        continue;
      read_file(f, &budget);
      if (budget == 0)
        t->rr = i + 1;
    }
  }
  uint64_t now = uv_now(t->loop);
  for (size_t i = t->nfiles; i-- > 0;) {
    struct nn__tail_file *f = t->files[i];
    if (f->state == NN__TAIL_DELETED)
      maybe_release(t, f, now);
  }
  for (size_t i = 0; i < t->nfiles; i++)
    if (!t->files[i]->at_eof)
      more = true;
  if (!more || t->paused)
    uv_idle_stop(h);
}

void nn__tail_check_files(struct nn_tail *t)
{
  uint64_t now = uv_now(t->loop);
  uint64_t held = 0, ndeleted = 0;
  struct stat st;
  for (size_t i = t->nfiles; i-- > 0;) {
    struct nn__tail_file *f = t->files[i];
    if (fstat(f->fd, &st) < 0)
      continue;
    if (f->state == NN__TAIL_ROTATED && st.st_nlink == 0)
      f->state = NN__TAIL_DELETED;
    if ((uint64_t)st.st_size != f->read_off && f->at_eof)
      nn__tail_file_wake(f); /* a missed event, or a truncation */
    if (f->state != NN__TAIL_ACTIVE) {
      size_t before = t->nfiles;
      maybe_release(t, f, now);
      if (t->nfiles != before)
        continue;
    }
    if (f->state == NN__TAIL_DELETED) {
      ndeleted++;
      if ((uint64_t)st.st_size > f->read_off)
        held += (uint64_t)st.st_size - f->read_off;
    }
  }
  /* Over the cap, give up the deleted files with the most unread bytes first: the choice
   * between leaking disk and losing data is made by config, counted and logged. */
  while (held > t->cfg.max_deleted_bytes) {
    struct nn__tail_file *worst = NULL;
    uint64_t worst_left = 0;
    for (size_t i = 0; i < t->nfiles; i++) {
      struct nn__tail_file *f = t->files[i];
      if (f->state == NN__TAIL_DELETED && fstat(f->fd, &st) == 0 &&
          (uint64_t)st.st_size - f->read_off >= worst_left && (uint64_t)st.st_size > f->read_off) {
        worst = f;
        worst_left = (uint64_t)st.st_size - f->read_off;
      }
    }
    if (!worst)
      break;
    nn_warn("tail",
            "deleted file %s still has %llu unread bytes; over max_deleted_bytes, releasing it",
            worst->path, (unsigned long long)worst_left);
    t->stats.deleted_bytes_dropped += worst_left;
    held -= worst_left;
    ndeleted--;
    nn__tail_file_close(worst, !t->paused);
  }
  t->stats.files_watched = t->nfiles;
  t->stats.files_deleted_open = ndeleted;
  t->stats.deleted_bytes_held = held;
}
