/* SPDX-License-Identifier: Apache-2.0 */
/* The positions file (docs/format/checkpoint.md): acknowledged offsets per file with the
 * fingerprints that tell a resumed file from a new file on a reused inode. Written whole,
 * atomically (tmp, fsync, rename, fsync dir), periodically on the thread pool and
 * synchronously at shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "agent/tail/internal.h"
#include "common/error.h"
#include "common/log.h"

#define FP_BYTES 256
#define HEADER   "# nines positions v1\n"

uint64_t nn__tail_hash(const void *p, size_t n)
{
  return XXH3_64bits(p, n);
}

uint64_t nn__tail_file_id(uint64_t dev, uint64_t ino, uint64_t head_fp, uint32_t head_len)
{
  uint64_t k[4] = {dev, ino, head_fp, head_len};
  return XXH3_64bits(k, sizeof(k));
}

static ssize_t pread_full(int fd, void *buf, size_t n, uint64_t off)
{
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return -1;
    if (r == 0)
      break;
    got += (size_t)r;
  }
  return (ssize_t)got;
}

int nn__tail_tail_fp(int fd, uint64_t off, uint64_t *fp, uint32_t *len)
{
  char b[FP_BYTES];
  size_t n = off < FP_BYTES ? (size_t)off : FP_BYTES;
  ssize_t r = pread_full(fd, b, n, off - n);
  if (r != (ssize_t)n)
    return -1;
  *fp = XXH3_64bits(b, n);
  *len = (uint32_t)n;
  return 0;
}

int nn__tail_head_fp(int fd, bool final, uint64_t *fp, uint32_t *len)
{
  char b[FP_BYTES];
  ssize_t r = pread_full(fd, b, sizeof(b), 0);
  if (r <= 0)
    return -1;
  const char *nl = memchr(b, '\n', (size_t)r);
  size_t n;
  if (nl)
    n = (size_t)(nl - b) + 1;
  else if (r == FP_BYTES || final)
    n = (size_t)r;
  else
    return -1;
  *fp = XXH3_64bits(b, n);
  *len = (uint32_t)n;
  return 0;
}

static bool fp_matches(int fd, uint64_t off, uint32_t len, uint64_t want)
{
  char b[FP_BYTES];
  if (len > FP_BYTES)
    return false;
  ssize_t r = pread_full(fd, b, len, off);
  return r == (ssize_t)len && XXH3_64bits(b, len) == want;
}

uint64_t nn__tail_ckpt_resume(struct nn_tail *t, struct nn__tail_file *f)
{
  struct nn__tail_pos *p = nn__tail_hget(&t->restored, f->dev, f->ino);
  if (!p)
    return 0;
  nn__tail_hdel(&t->restored, f->dev, f->ino);
  struct stat st;
  bool ok = fstat(f->fd, &st) == 0 && (uint64_t)st.st_size >= p->offset && p->head_len > 0 &&
            p->tail_len <= p->offset && fp_matches(f->fd, 0, p->head_len, p->head_fp) &&
            fp_matches(f->fd, p->offset - p->tail_len, p->tail_len, p->tail_fp);
  uint64_t off = 0;
  if (ok) {
    off = p->offset;
    f->head_fp = p->head_fp;
    f->head_len = p->head_len;
    f->file_id = nn__tail_file_id(f->dev, f->ino, f->head_fp, f->head_len);
    f->id_known = true;
  } else {
    /* Same dev+inode, other content: the inode was reused (or the file truncated while we
     * were down). Reading from 0 is right; the old offset would skip a new file's lines. */
    t->stats.checkpoint_mismatches++;
    nn_warn("tail",
            "checkpoint for %s (dev %" PRIu64 " inode %" PRIu64
            ") does not match its content; reading from the start",
            f->path, f->dev, f->ino);
  }
  free(p);
  return off;
}

static void put_path(struct nn_buf *b, const char *s)
{
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c <= 0x20 || c == 0x7f || c == '%')
      nn_buf_printf(b, "%%%02X", c);
    else
      nn_buf_appendc(b, (char)c);
  }
}

/* Serialises the acknowledged position of every file whose id is known. */
static int serialize(struct nn_tail *t, struct nn_buf *b)
{
  size_t count = 0;
  int rc = nn_buf_appends(b, HEADER);
  for (size_t i = 0; i < t->nfiles && rc == 0; i++) {
    struct nn__tail_file *f = t->files[i];
    uint64_t tfp = 0;
    uint32_t tlen = 0;
    if (!f->id_known || f->acked == 0)
      continue;
    if (nn__tail_tail_fp(f->fd, f->acked, &tfp, &tlen) < 0)
      continue; /* the file shrank under us: the truncation path will handle it */
    rc = nn_buf_printf(b,
                       "%016" PRIx64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu32 " %016" PRIx64
                       " %" PRIu32 " %016" PRIx64 " ",
                       f->file_id, f->dev, f->ino, f->acked, f->head_len, f->head_fp, tlen, tfp);
    put_path(b, f->path);
    if (rc == 0)
      rc = nn_buf_appendc(b, '\n');
    count++;
  }
  if (rc == 0)
    rc = nn_buf_printf(b, "# end %zu %016" PRIx64 "\n", count, XXH3_64bits(b->data, b->len));
  return rc;
}

/* The thread-pool write and a shutdown write may overlap, so each has its own tmp name;
 * whichever rename lands last leaves a complete file. */
static int write_file(const char *path, const char *suffix, const char *data, size_t len)
{
  char tmp[4096];
  int rc = 0, fd = -1;
  if (snprintf(tmp, sizeof(tmp), "%s%s", path, suffix) >= (int)sizeof(tmp))
    return NN_EINVAL;
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return NN_ERRNO(errno);
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(fd, data + off, len - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0) {
      rc = NN_ERRNO(errno);
      goto out;
    }
    off += (size_t)w;
  }
  if (fsync(fd) < 0) {
    rc = NN_ERRNO(errno);
    goto out;
  }
  if (close(fd) < 0) {
    fd = -1;
    rc = NN_ERRNO(errno);
    goto out;
  }
  fd = -1;
  if (rename(tmp, path) < 0) {
    rc = NN_ERRNO(errno);
    goto out;
  }
  /* The rename is durable only once the directory is synced. */
  char dir[4096];
  snprintf(dir, sizeof(dir), "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir)
    *slash = '\0';
  else
    snprintf(dir, sizeof(dir), "%s", slash ? "/" : ".");
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)fsync(dfd);
    close(dfd);
  }
out:
  if (fd >= 0)
    close(fd);
  return rc;
}

int nn__tail_ckpt_write_sync(struct nn_tail *t)
{
  struct nn_buf b;
  int rc;
  if (!t->positions_path)
    return 0;
  nn_buf_init(&b, (size_t)64 << 20);
  if ((rc = serialize(t, &b)) < 0)
    goto out;
  rc = write_file(t->positions_path, ".tmp-sync", b.data, b.len);
out:
  if (rc < 0) {
    t->stats.checkpoint_errors++;
    NN_LOG_RL(NN_LOG_ERROR, "tail", "writing %s: %s", t->positions_path, nn_strerror(rc));
  } else {
    t->stats.checkpoint_writes++;
    t->ckpt_dirty = false;
  }
  nn_buf_fini(&b);
  return rc;
}

void nn__tail_ckpt_write_final(struct nn_tail *t)
{
  if (!t->ckpt_busy) {
    (void)nn__tail_ckpt_write_sync(t);
    return;
  }
  struct nn_buf b;
  nn_buf_init(&b, (size_t)64 << 20);
  if (serialize(t, &b) < 0) {
    nn_buf_fini(&b);
    t->stats.checkpoint_errors++;
    NN_LOG_RL(NN_LOG_ERROR, "tail", "serializing the last checkpoint failed");
    return;
  }
  free(t->final_ckpt);
  t->final_ckpt = nn_buf_steal(&b, &t->final_ckpt_len);
}

/* Writes the held-back final checkpoint (see nn__tail_ckpt_write_final). */
static void write_final(struct nn_tail *t)
{
  if (!t->final_ckpt)
    return;
  int rc = write_file(t->positions_path, ".tmp-sync", t->final_ckpt, t->final_ckpt_len);
  if (rc < 0) {
    t->stats.checkpoint_errors++;
    NN_LOG_RL(NN_LOG_ERROR, "tail", "writing %s: %s", t->positions_path, nn_strerror(rc));
  } else {
    t->stats.checkpoint_writes++;
  }
  free(t->final_ckpt);
  t->final_ckpt = NULL;
}

struct ckpt_work {
  uv_work_t req;
  struct nn_tail *t;
  char *data;
  size_t len;
  int rc;
};

static void on_ckpt_work(uv_work_t *req)
{
  struct ckpt_work *w = req->data;
  w->rc = write_file(w->t->positions_path, ".tmp", w->data, w->len);
}

static void on_ckpt_done(uv_work_t *req, int status)
{
  struct ckpt_work *w = req->data;
  struct nn_tail *t = w->t;
  bool w_ok = w->rc >= 0 && status >= 0;
  t->ckpt_busy = false;
  if (!w_ok) {
    t->stats.checkpoint_errors++;
    t->ckpt_dirty = true;
    NN_LOG_RL(NN_LOG_ERROR, "tail", "writing %s: %s", t->positions_path,
              nn_strerror(w->rc < 0 ? w->rc : status));
  } else {
    t->stats.checkpoint_writes++;
  }
  free(w->data);
  free(w);
  t->open_handles--;
  if (t->destroying)
    write_final(t); /* after the older snapshot's rename, never before it */
  if (t->destroying && t->open_handles == 0) {
    nn__tail_free(t); /* the last close callback already ran; see nn_tail_destroy */
    return;
  }
  if (t->ckpt_follow && !t->destroying && w_ok) {
    t->ckpt_follow = false;
    nn__tail_flush_follow(t); /* acks that arrived during this write */
  }
}

void nn__tail_ckpt_write_async(struct nn_tail *t)
{
  if (!t->positions_path || t->ckpt_busy || !t->ckpt_dirty)
    return;
  struct ckpt_work *w = calloc(1, sizeof(*w));
  struct nn_buf b;
  nn_buf_init(&b, (size_t)64 << 20);
  if (!w || serialize(t, &b) < 0) {
    free(w);
    nn_buf_fini(&b);
    t->stats.checkpoint_errors++;
    return;
  }
  w->t = t;
  w->req.data = w;
  w->data = nn_buf_steal(&b, &w->len);
  if (uv_queue_work(t->loop, &w->req, on_ckpt_work, on_ckpt_done) < 0) {
    free(w->data);
    free(w);
    t->stats.checkpoint_errors++;
    return;
  }
  t->ckpt_dirty = false; /* acks arriving during the write set it again */
  t->ckpt_busy = true;
  t->ckpt_started_ms = uv_now(t->loop);
  t->open_handles++;
}

static bool parse_u64(const char *s, int base, uint64_t *out)
{
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, base);
  if (errno || end == s || *end)
    return false;
  *out = v;
  return true;
}

int nn__tail_ckpt_load(struct nn_tail *t)
{
  FILE *fp = fopen(t->positions_path, "re");
  if (!fp)
    return errno == ENOENT ? 0 : NN_ERRNO(errno);
  struct nn_buf all;
  char line[8192];
  size_t count = 0, lineno = 0;
  int rc = 0;
  bool ended = false;
  nn_buf_init(&all, (size_t)64 << 20);
  while (fgets(line, sizeof(line), fp)) {
    lineno++;
    size_t n = strlen(line);
    if (n == 0 || line[n - 1] != '\n') {
      rc = NN_ECORRUPT;
      break;
    }
    if (strncmp(line, "# end ", 6) == 0) {
      char *f[3];
      uint64_t c, h;
      f[0] = line + 6;
      line[n - 1] = '\0';
      f[1] = strchr(f[0], ' ');
      if (!f[1] || (*f[1]++ = '\0', !parse_u64(f[0], 10, &c)) || !parse_u64(f[1], 16, &h) ||
          c != count || h != XXH3_64bits(all.data, all.len)) {
        rc = NN_ECORRUPT;
        break;
      }
      ended = true;
      break;
    }
    if (nn_buf_append(&all, line, n) < 0) {
      rc = NN_ETOOBIG;
      break;
    }
    if (lineno == 1) {
      if (strcmp(line, HEADER) != 0) {
        rc = NN_ECORRUPT;
        break;
      }
      continue;
    }
    char *fields[9], *s = line;
    line[n - 1] = '\0';
    int nf = 0;
    for (; nf < 9 && s; nf++) {
      fields[nf] = s;
      s = strchr(s, ' ');
      if (s)
        *s++ = '\0';
    }
    struct nn__tail_pos *p = calloc(1, sizeof(*p));
    uint64_t hl, tl;
    if (!p) {
      rc = NN_ENOMEM;
      break;
    }
    if (nf != 9 || !parse_u64(fields[0], 16, &p->file_id) || !parse_u64(fields[1], 10, &p->dev) ||
        !parse_u64(fields[2], 10, &p->ino) || !parse_u64(fields[3], 10, &p->offset) ||
        !parse_u64(fields[4], 10, &hl) || !parse_u64(fields[5], 16, &p->head_fp) ||
        !parse_u64(fields[6], 10, &tl) || !parse_u64(fields[7], 16, &p->tail_fp) || hl > FP_BYTES ||
        tl > FP_BYTES) {
      free(p);
      rc = NN_ECORRUPT;
      break;
    }
    p->head_len = (uint32_t)hl;
    p->tail_len = (uint32_t)tl;
    free(nn__tail_hget(&t->restored, p->dev, p->ino));
    nn__tail_hdel(&t->restored, p->dev, p->ino);
    if (nn__tail_hput(&t->restored, p->dev, p->ino, p) < 0) {
      free(p);
      rc = NN_ENOMEM;
      break;
    }
    count++;
  }
  fclose(fp);
  nn_buf_fini(&all);
  if (rc == 0 && !ended)
    rc = NN_ECORRUPT;
  if (rc < 0) {
    nn_error("tail",
             "positions file %s is unusable at line %zu (%s); ignoring it, files will be "
             "read from the start",
             t->positions_path, lineno, nn_strerror(rc));
    for (size_t i = 0; i < t->restored.nb; i++)
      for (struct nn__tail_hent *e = t->restored.b[i]; e; e = e->next)
        free(e->val);
    nn__tail_hfree(&t->restored);
    return rc == NN_ENOMEM ? rc : 0;
  }
  nn_info("tail", "loaded %zu positions from %s", count, t->positions_path);
  return 0;
}
