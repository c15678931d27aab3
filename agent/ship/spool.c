/* SPDX-License-Identifier: Apache-2.0 */
/* The per-destination disk spool: append-only segment files of CRC32C-framed, lz4-compressed
 * batches, read in order and released through a persisted cursor (format:
 * docs/format/spool.md). Writes are plain write(2) calls of one batch; fsync runs on a libuv
 * worker every fsync interval, so the loop never waits for the disk to flush. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/ship/internal.h"
#include "common/error.h"
#include "common/log.h"

#define MAGIC           "NNSPOOL\x01"
#define CURSOR_SLOT     32u
#define MAX_SEGMENTS    (1u << 20)
#define MAX_CLOSING_FDS 8
#define CODEC_STORED    0
#define CODEC_LZ4       1

/* Tests and the fuzzer turn fsync off: it dominates their run time and proves nothing there. */
static bool sync_enabled = true;

static void do_fsync(int fd)
{
  if (sync_enabled)
    fsync(fd);
}

void nn__ship_spool_set_sync(bool on)
{
  sync_enabled = on;
}

struct seg {
  uint64_t id;
  uint64_t size;
  uint64_t first_seq, last_seq; /* this run's batches in the segment, when live */
  bool live;
};

struct sync_work {
  uv_work_t req;
  struct nn__ship_spool *sp; /* NULL once the spool closed */
  uint64_t appends;          /* appends this fsync makes durable */
  int fds[MAX_CLOSING_FDS + 3];
  int nfds;
};

struct nn__ship_spool {
  char *dir;
  uint64_t max_bytes, segment_size;
  struct seg *segs;
  size_t nsegs, segs_cap;
  uint64_t bytes;
  uint64_t recovered_last; /* segments up to this id were written by an earlier run */
  uint64_t next_id;
  int wfd; /* append fd of segs[nsegs-1], or -1 */
  int rfd;
  uint64_t rfd_seg;
  int cfd;
  uint64_t cursor_gen;
  struct nn__ship_pos cursor, readp;
  uint64_t last_live_read; /* seq of the last batch of this run read */
  bool have_live_read;
  bool dirty_data, dirty_cursor, dirty_dir;
  int closing[MAX_CLOSING_FDS]; /* rotated segments awaiting fsync */
  int nclosing;
  struct sync_work *sync;
  uint64_t appends, durable; /* appends made, appends known to be on disk (fsynced) */
  void (*on_durable)(void *ud);
  void *durable_ud;
  struct nn_buf body, payload, wbuf;
  struct nn_ship_token *toks;
  size_t toks_cap;
};

static int pos_cmp(struct nn__ship_pos a, struct nn__ship_pos b)
{
  if (a.seg != b.seg)
    return a.seg < b.seg ? -1 : 1;
  return a.off < b.off ? -1 : a.off > b.off;
}

static int seg_path(const struct nn__ship_spool *sp, uint64_t id, char *out, size_t n)
{
  int w = snprintf(out, n, "%s/%016" PRIx64 ".seg", sp->dir, id);
  return (w < 0 || (size_t)w >= n) ? NN_ETOOBIG : 0;
}

int nn__ship_mkdir_p(const char *dir)
{
  char tmp[4096];
  size_t n = strlen(dir);
  if (n == 0 || n >= sizeof(tmp))
    return NN_EINVAL;
  memcpy(tmp, dir, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (tmp[i] != '/' && tmp[i] != '\0')
      continue;
    char c = tmp[i];
    tmp[i] = '\0';
    if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
      return NN_ERRNO(errno);
    tmp[i] = c;
  }
  return 0;
}

static int write_all(int fd, const void *p, size_t n)
{
  const char *c = p;
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return NN_ERRNO(errno);
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

static int pread_all(int fd, void *p, size_t n, uint64_t off)
{
  char *c = p;
  while (n > 0) {
    ssize_t r = pread(fd, c, n, (off_t)off);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return NN_ERRNO(errno);
    }
    if (r == 0)
      return NN_ECORRUPT;
    c += r;
    n -= (size_t)r;
    off += (uint64_t)r;
  }
  return 0;
}

static struct seg *seg_find(struct nn__ship_spool *sp, uint64_t id, size_t *idx)
{
  for (size_t i = 0; i < sp->nsegs; i++) {
    if (sp->segs[i].id == id) {
      if (idx)
        *idx = i;
      return &sp->segs[i];
    }
  }
  return NULL;
}

/* Parses a record body; decompresses the payload only when want_payload. */
static int parse_body(struct nn__ship_spool *sp, const uint8_t *b, size_t len, bool want_payload,
                      struct nn__ship_rec *out)
{
  if (len < NN_SHIP_SPOOL_BODY_HEAD || b[0] != 1 || b[1] > CODEC_LZ4)
    return NN_ECORRUPT;
  uint32_t id_len = (uint32_t)b[2] | (uint32_t)b[3] << 8;
  uint32_t ntok = nn__get32(b + 16);
  uint32_t raw = nn__get32(b + 20);
  if (id_len > NN_SHIP_SPOOL_MAX_ID || raw > NN_SHIP_SPOOL_MAX_RAW ||
      ntok > (len - NN_SHIP_SPOOL_BODY_HEAD) / 16)
    return NN_ECORRUPT;
  size_t fixed = NN_SHIP_SPOOL_BODY_HEAD + (size_t)ntok * 16;
  if (len - fixed < id_len)
    return NN_ECORRUPT;
  const uint8_t *comp = b + fixed + id_len;
  size_t comp_len = len - fixed - id_len;
  if (ntok > sp->toks_cap) {
    size_t cap = ntok < 64 ? 64 : ntok;
    struct nn_ship_token *t = realloc(sp->toks, cap * sizeof(*t));
    if (!t)
      return NN_ENOMEM;
    sp->toks = t;
    sp->toks_cap = cap;
  }
  for (uint32_t i = 0; i < ntok; i++) {
    sp->toks[i].id = nn__get64(b + NN_SHIP_SPOOL_BODY_HEAD + 16 * (size_t)i);
    sp->toks[i].off = nn__get64(b + NN_SHIP_SPOOL_BODY_HEAD + 16 * (size_t)i + 8);
  }
  out->nrecords = nn__get32(b + 4);
  out->seq = nn__get64(b + 8);
  out->ntokens = ntok;
  out->tokens = sp->toks;
  out->id = (const char *)(b + fixed);
  out->id_len = id_len;
  out->payload = NULL;
  out->payload_len = raw;
  if (b[1] == CODEC_STORED && comp_len != raw)
    return NN_ECORRUPT;
  /* lz4 expands at most 255:1, so a claimed size beyond that is a lie: refuse it before
   * allocating for it. */
  if (b[1] == CODEC_LZ4 &&
      (comp_len == 0 || comp_len > (size_t)INT32_MAX || raw > (uint64_t)comp_len * 255 + 64))
    return NN_ECORRUPT;
  if (!want_payload)
    return 0;
  nn_buf_reset(&sp->payload);
  int rc = nn_buf_reserve(&sp->payload, (size_t)raw + 1);
  if (rc < 0)
    return rc;
  if (b[1] == CODEC_STORED) {
    memcpy(sp->payload.data, comp, raw);
  } else {
    int got = LZ4_decompress_safe((const char *)comp, sp->payload.data, (int)comp_len, (int)raw);
    if (got < 0 || (uint32_t)got != raw)
      return NN_ECORRUPT;
  }
  sp->payload.len = raw;
  sp->payload.data[raw] = '\0';
  out->payload = sp->payload.data;
  return 0;
}

/* Reads and checks the record at off of segment s (fd open for reading). Returns the body
 * length, NN_ECORRUPT for a bad frame, or an I/O error. */
static int read_record(struct nn__ship_spool *sp, int fd, const struct seg *s, uint64_t off,
                       uint32_t *body_len)
{
  uint8_t head[NN_SHIP_SPOOL_REC_HEAD];
  if (s->size < off || s->size - off < NN_SHIP_SPOOL_REC_HEAD)
    return NN_ECORRUPT;
  int rc = pread_all(fd, head, sizeof(head), off);
  if (rc < 0)
    return rc;
  uint32_t len = nn__get32(head), crc = nn__get32(head + 4);
  if (len < NN_SHIP_SPOOL_BODY_HEAD || len > NN_SHIP_SPOOL_MAX_BODY ||
      s->size - off - NN_SHIP_SPOOL_REC_HEAD < len)
    return NN_ECORRUPT;
  nn_buf_reset(&sp->body);
  if ((rc = nn_buf_reserve(&sp->body, len + 1)) < 0)
    return rc;
  if ((rc = pread_all(fd, sp->body.data, len, off + NN_SHIP_SPOOL_REC_HEAD)) < 0)
    return rc;
  sp->body.len = len;
  if (nn__ship_crc32c(0, sp->body.data, len) != crc)
    return NN_ECORRUPT;
  *body_len = len;
  return 0;
}

static int write_cursor(struct nn__ship_spool *sp)
{
  uint8_t slot[CURSOR_SLOT] = {0};
  sp->cursor_gen++;
  nn__put64(slot, sp->cursor_gen);
  nn__put64(slot + 8, sp->cursor.seg);
  nn__put64(slot + 16, sp->cursor.off);
  nn__put32(slot + 24, nn__ship_crc32c(0, slot, 24));
  /* Two alternating slots: a torn write can only damage the slot being written. */
  off_t at = (off_t)((sp->cursor_gen & 1) * CURSOR_SLOT);
  for (;;) {
    ssize_t w = pwrite(sp->cfd, slot, sizeof(slot), at);
    if (w == (ssize_t)sizeof(slot))
      break;
    if (w < 0 && errno == EINTR)
      continue;
    int rc = w < 0 ? NN_ERRNO(errno) : NN_EIO;
    NN_LOG_RL(NN_LOG_WARN, "ship", "spool %s: writing cursor: %s", sp->dir, nn_strerror(rc));
    return rc;
  }
  sp->dirty_cursor = true;
  return 0;
}

static void read_cursor(struct nn__ship_spool *sp)
{
  uint8_t b[2 * CURSOR_SLOT];
  ssize_t n = pread(sp->cfd, b, sizeof(b), 0);
  for (int i = 0; i < 2 && n > 0; i++) {
    const uint8_t *s = b + i * CURSOR_SLOT;
    if ((size_t)n < (size_t)(i + 1) * CURSOR_SLOT)
      break;
    if (nn__ship_crc32c(0, s, 24) != nn__get32(s + 24))
      continue;
    uint64_t gen = nn__get64(s);
    if (gen >= sp->cursor_gen) {
      sp->cursor_gen = gen;
      sp->cursor.seg = nn__get64(s + 8);
      sp->cursor.off = nn__get64(s + 16);
    }
  }
}

static void seg_remove_front(struct nn__ship_spool *sp)
{
  char path[4200];
  struct seg *s = &sp->segs[0];
  if (sp->rfd >= 0 && sp->rfd_seg == s->id) {
    close(sp->rfd);
    sp->rfd = -1;
  }
  if (seg_path(sp, s->id, path, sizeof(path)) == 0 && unlink(path) < 0 && errno != ENOENT)
    NN_LOG_RL(NN_LOG_WARN, "ship", "spool: removing %s: %s", path, strerror(errno));
  sp->bytes -= s->size;
  memmove(sp->segs, sp->segs + 1, (sp->nsegs - 1) * sizeof(*sp->segs));
  sp->nsegs--;
  sp->dirty_dir = true;
}

static bool seg_is_active(const struct nn__ship_spool *sp, size_t i)
{
  return sp->wfd >= 0 && i + 1 == sp->nsegs;
}

static struct nn__ship_pos next_seg_start(const struct nn__ship_spool *sp, size_t after_idx)
{
  struct nn__ship_pos p = {sp->next_id, NN_SHIP_SPOOL_HEADER};
  if (after_idx + 1 < sp->nsegs)
    p.seg = sp->segs[after_idx + 1].id;
  return p;
}

/* Deletes segments the cursor has passed and keeps readp at or after the cursor. */
static void normalize(struct nn__ship_spool *sp)
{
  while (sp->nsegs > 0) {
    struct seg *s = &sp->segs[0];
    if (s->id > sp->cursor.seg)
      break;
    if (s->id == sp->cursor.seg && (sp->cursor.off < s->size || seg_is_active(sp, 0)))
      break;
    if (sp->cursor.seg <= s->id)
      sp->cursor = next_seg_start(sp, 0);
    seg_remove_front(sp);
  }
  if (sp->nsegs == 0 && pos_cmp(sp->cursor, (struct nn__ship_pos){sp->next_id, 0}) < 0)
    sp->cursor = (struct nn__ship_pos){sp->next_id, NN_SHIP_SPOOL_HEADER};
  if (pos_cmp(sp->readp, sp->cursor) < 0)
    sp->readp = sp->cursor;
}

static int cmp_u64(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static bool parse_seg_name(const char *name, uint64_t *id)
{
  if (strlen(name) != 20 || strcmp(name + 16, ".seg") != 0)
    return false;
  uint64_t v = 0;
  for (int i = 0; i < 16; i++) {
    char c = name[i];
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0)
      return false;
    v = v << 4 | (uint64_t)d;
  }
  *id = v;
  return v != 0;
}

static int list_segments(const char *dir, uint64_t **ids, size_t *n)
{
  DIR *d = opendir(dir);
  if (!d)
    return NN_ERRNO(errno);
  size_t cap = 0;
  int rc = 0;
  struct dirent *e;
  *ids = NULL;
  *n = 0;
  while ((e = readdir(d)) != NULL) {
    uint64_t id;
    if (!parse_seg_name(e->d_name, &id))
      continue;
    if (*n == MAX_SEGMENTS) {
      rc = NN_ELIMIT;
      break;
    }
    if (*n == cap) {
      size_t nc = cap ? cap * 2 : 64;
      uint64_t *p = realloc(*ids, nc * sizeof(*p));
      if (!p) {
        rc = NN_ENOMEM;
        break;
      }
      *ids = p;
      cap = nc;
    }
    (*ids)[(*n)++] = id;
  }
  closedir(d);
  if (rc == 0 && *n > 1)
    qsort(*ids, *n, sizeof(**ids), cmp_u64);
  return rc;
}

static int segs_push(struct nn__ship_spool *sp, uint64_t id, uint64_t size)
{
  if (sp->nsegs == sp->segs_cap) {
    size_t nc = sp->segs_cap ? sp->segs_cap * 2 : 16;
    struct seg *s = realloc(sp->segs, nc * sizeof(*s));
    if (!s)
      return NN_ENOMEM;
    sp->segs = s;
    sp->segs_cap = nc;
  }
  sp->segs[sp->nsegs++] = (struct seg){.id = id, .size = size};
  sp->bytes += size;
  return 0;
}

static bool header_ok(const uint8_t *h)
{
  return memcmp(h, MAGIC, 8) == 0 && nn__ship_crc32c(0, h, 12) == nn__get32(h + 12);
}

/* Validates one recovered segment: drops it when its header is bad, and for the newest one
 * truncates a torn tail (a crash mid-append). */
static int recover_segment(struct nn__ship_spool *sp, uint64_t id, bool last)
{
  char path[4200];
  int rc = seg_path(sp, id, path, sizeof(path));
  if (rc < 0)
    return rc;
  int fd = open(path, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0)
    return NN_ERRNO(errno);
  struct stat st;
  uint8_t h[NN_SHIP_SPOOL_HEADER];
  if (fstat(fd, &st) < 0) {
    rc = NN_ERRNO(errno);
    goto out;
  }
  if ((uint64_t)st.st_size < NN_SHIP_SPOOL_HEADER || pread_all(fd, h, sizeof(h), 0) < 0 ||
      !header_ok(h)) {
    nn_warn("ship", "spool: %s has no valid header; removing it", path);
    unlink(path);
    sp->dirty_dir = true;
    rc = 0;
    goto out;
  }
  struct seg s = {.id = id, .size = (uint64_t)st.st_size};
  if (last) {
    uint64_t off = NN_SHIP_SPOOL_HEADER;
    uint32_t len;
    while (off < s.size && read_record(sp, fd, &s, off, &len) == 0)
      off += NN_SHIP_SPOOL_REC_HEAD + len;
    if (off < s.size) {
      nn_warn("ship",
              "spool: %s: torn or corrupt tail at byte %" PRIu64 " of %" PRIu64
              "; truncating (an unfinished write from a crash)",
              path, off, s.size);
      if (ftruncate(fd, (off_t)off) < 0) {
        rc = NN_ERRNO(errno);
        goto out;
      }
      s.size = off;
      sp->dirty_data = true;
      /* fsync the truncation now: later appends must not land after stale bytes. */
      do_fsync(fd);
    }
  }
  rc = segs_push(sp, s.id, s.size);
out:
  close(fd);
  return rc;
}

int nn__ship_spool_open(const char *dir, uint64_t max_bytes, uint64_t segment_size,
                        struct nn__ship_spool **out)
{
  int rc;
  uint64_t *ids = NULL;
  size_t nids = 0;
  struct nn__ship_spool *sp = calloc(1, sizeof(*sp));
  *out = NULL;
  if (!sp)
    return NN_ENOMEM;
  sp->wfd = sp->rfd = sp->cfd = -1;
  sp->max_bytes = max_bytes;
  sp->segment_size = segment_size < 4096 ? 4096 : segment_size;
  nn_buf_init(&sp->body, NN_SHIP_SPOOL_MAX_BODY + 1);
  nn_buf_init(&sp->payload, NN_SHIP_SPOOL_MAX_RAW + 1);
  nn_buf_init(&sp->wbuf, NN_SHIP_SPOOL_MAX_BODY + NN_SHIP_SPOOL_REC_HEAD + 1);
  if (!(sp->dir = strdup(dir))) {
    rc = NN_ENOMEM;
    goto fail;
  }
  if ((rc = nn__ship_mkdir_p(dir)) < 0) {
    nn_error("ship", "spool: cannot create %s: %s", dir, nn_strerror(rc));
    goto fail;
  }
  char path[4200];
  int w = snprintf(path, sizeof(path), "%s/cursor", dir);
  if (w < 0 || (size_t)w >= sizeof(path)) {
    rc = NN_ETOOBIG;
    goto fail;
  }
  if ((sp->cfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640)) < 0) {
    rc = NN_ERRNO(errno);
    nn_error("ship", "spool: cannot open %s: %s", path, nn_strerror(rc));
    goto fail;
  }
  read_cursor(sp);
  if ((rc = list_segments(dir, &ids, &nids)) < 0)
    goto fail;
  for (size_t i = 0; i < nids; i++) {
    if (ids[i] < sp->cursor.seg) {
      char p[4200];
      if (seg_path(sp, ids[i], p, sizeof(p)) == 0)
        unlink(p);
      sp->dirty_dir = true;
      continue;
    }
    if ((rc = recover_segment(sp, ids[i], i + 1 == nids)) < 0)
      goto fail;
  }
  sp->next_id = nids ? ids[nids - 1] + 1 : (sp->cursor.seg ? sp->cursor.seg : 1);
  sp->recovered_last = nids ? ids[nids - 1] : 0;
  if (sp->nsegs == 0 || sp->cursor.seg < sp->segs[0].id)
    sp->cursor =
        (struct nn__ship_pos){sp->nsegs ? sp->segs[0].id : sp->next_id, NN_SHIP_SPOOL_HEADER};
  else if (!seg_find(sp, sp->cursor.seg, NULL))
    sp->cursor = (struct nn__ship_pos){sp->next_id, NN_SHIP_SPOOL_HEADER};
  if (sp->cursor.off < NN_SHIP_SPOOL_HEADER)
    sp->cursor.off = NN_SHIP_SPOOL_HEADER;
  struct seg *cs = seg_find(sp, sp->cursor.seg, NULL);
  if (cs && sp->cursor.off > cs->size)
    sp->cursor.off = cs->size;
  sp->readp = sp->cursor;
  normalize(sp);
  free(ids);
  *out = sp;
  return 0;
fail:
  free(ids);
  nn__ship_spool_close(sp);
  return rc;
}

static void do_sync(uv_work_t *req)
{
  struct sync_work *w = req->data;
  for (int i = 0; i < w->nfds; i++) {
    do_fsync(w->fds[i]);
    close(w->fds[i]);
  }
}

static int open_dir_fd(const struct nn__ship_spool *sp);

static void after_sync(uv_work_t *req, int status)
{
  struct sync_work *w = req->data;
  struct nn__ship_spool *sp = w->sp;
  uint64_t appends = w->appends;
  (void)status;
  free(w);
  if (!sp)
    return;
  sp->sync = NULL;
  if (appends > sp->durable) {
    sp->durable = appends;
    if (sp->on_durable)
      sp->on_durable(sp->durable_ud);
  }
}

uint64_t nn__ship_spool_appends(const struct nn__ship_spool *sp)
{
  return sp->appends;
}

uint64_t nn__ship_spool_durable(const struct nn__ship_spool *sp)
{
  return sp->durable;
}

void nn__ship_spool_on_durable(struct nn__ship_spool *sp, void (*fn)(void *ud), void *ud)
{
  sp->on_durable = fn;
  sp->durable_ud = ud;
}

void nn__ship_spool_sync_now(struct nn__ship_spool *sp)
{
  if (!sp)
    return;
  if (sp->wfd >= 0)
    do_fsync(sp->wfd);
  for (int i = 0; i < sp->nclosing; i++) {
    do_fsync(sp->closing[i]);
    close(sp->closing[i]);
  }
  sp->nclosing = 0;
  if (sp->cfd >= 0)
    do_fsync(sp->cfd);
  if (sp->dirty_dir) {
    int dfd = open_dir_fd(sp);
    if (dfd >= 0) {
      do_fsync(dfd);
      close(dfd);
    }
  }
  sp->dirty_data = sp->dirty_cursor = sp->dirty_dir = false;
  sp->durable = sp->appends;
}

static int open_dir_fd(const struct nn__ship_spool *sp)
{
  return open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

void nn__ship_spool_sync(struct nn__ship_spool *sp, uv_loop_t *loop)
{
  if (!sp || sp->sync || !(sp->dirty_data || sp->dirty_cursor || sp->dirty_dir || sp->nclosing > 0))
    return;
  struct sync_work *w = calloc(1, sizeof(*w));
  if (!w)
    return;
  if (sp->dirty_data && sp->wfd >= 0 && (w->fds[w->nfds] = dup(sp->wfd)) >= 0)
    w->nfds++;
  for (int i = 0; i < sp->nclosing; i++)
    w->fds[w->nfds++] = sp->closing[i];
  sp->nclosing = 0;
  if (sp->dirty_cursor && (w->fds[w->nfds] = dup(sp->cfd)) >= 0)
    w->nfds++;
  if (sp->dirty_dir && (w->fds[w->nfds] = open_dir_fd(sp)) >= 0)
    w->nfds++;
  sp->dirty_data = sp->dirty_cursor = sp->dirty_dir = false;
  w->sp = sp;
  w->appends = sp->appends;
  w->req.data = w;
  if (uv_queue_work(loop, &w->req, do_sync, after_sync) < 0) {
    do_sync(&w->req); /* the loop refused work: pay the fsync here rather than skip it */
    free(w);
    sp->durable = sp->appends;
    return;
  }
  sp->sync = w;
}

void nn__ship_spool_close(struct nn__ship_spool *sp)
{
  if (!sp)
    return;
  if (sp->sync)
    sp->sync->sp = NULL;
  if (sp->wfd >= 0) {
    do_fsync(sp->wfd);
    close(sp->wfd);
  }
  for (int i = 0; i < sp->nclosing; i++) {
    do_fsync(sp->closing[i]);
    close(sp->closing[i]);
  }
  if (sp->rfd >= 0)
    close(sp->rfd);
  if (sp->cfd >= 0) {
    do_fsync(sp->cfd);
    close(sp->cfd);
  }
  if (sp->dirty_dir && sp->dir) {
    int dfd = open_dir_fd(sp);
    if (dfd >= 0) {
      do_fsync(dfd);
      close(dfd);
    }
  }
  nn_buf_fini(&sp->body);
  nn_buf_fini(&sp->payload);
  nn_buf_fini(&sp->wbuf);
  free(sp->toks);
  free(sp->segs);
  free(sp->dir);
  free(sp);
}

uint64_t nn__ship_spool_record_bound(size_t payload_len, uint32_t ntokens, size_t id_len)
{
  return NN_SHIP_SPOOL_REC_HEAD + NN_SHIP_SPOOL_BODY_HEAD + (uint64_t)ntokens * 16 + id_len +
         (uint64_t)LZ4_COMPRESSBOUND(payload_len);
}

bool nn__ship_spool_has_room(const struct nn__ship_spool *sp, uint64_t bytes)
{
  return sp->bytes + bytes + NN_SHIP_SPOOL_HEADER <= sp->max_bytes;
}

/* Moves the active segment's fd to the fsync list; the next append starts a new segment. */
static void rotate(struct nn__ship_spool *sp)
{
  if (sp->wfd < 0)
    return;
  if (sp->nclosing == MAX_CLOSING_FDS) {
    do_fsync(sp->wfd); /* rare: rotations outpace the fsync worker */
    close(sp->wfd);
  } else {
    sp->closing[sp->nclosing++] = sp->wfd;
  }
  sp->wfd = -1;
}

static int new_segment(struct nn__ship_spool *sp)
{
  char path[4200];
  uint8_t h[NN_SHIP_SPOOL_HEADER];
  int rc = seg_path(sp, sp->next_id, path, sizeof(path));
  if (rc < 0)
    return rc;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0)
    return NN_ERRNO(errno);
  memcpy(h, MAGIC, 8);
  nn__put32(h + 8, 0);
  nn__put32(h + 12, nn__ship_crc32c(0, h, 12));
  if ((rc = write_all(fd, h, sizeof(h))) < 0 || (rc = segs_push(sp, sp->next_id, sizeof(h))) < 0) {
    close(fd);
    unlink(path);
    return rc;
  }
  sp->wfd = fd;
  sp->next_id++;
  sp->dirty_dir = true;
  return 0;
}

int nn__ship_spool_append(struct nn__ship_spool *sp, const struct nn__ship_rec *r)
{
  if (r->payload_len > NN_SHIP_SPOOL_MAX_RAW || r->id_len > NN_SHIP_SPOOL_MAX_ID ||
      r->ntokens > (NN_SHIP_SPOOL_MAX_BODY - NN_SHIP_SPOOL_MAX_RAW) / 32)
    return NN_ETOOBIG;
  uint64_t bound = nn__ship_spool_record_bound(r->payload_len, r->ntokens, r->id_len);
  if (!nn__ship_spool_has_room(sp, bound))
    return NN_ELIMIT;
  int rc;
  struct nn_buf *b = &sp->wbuf;
  nn_buf_reset(b);
  if ((rc = nn_buf_reserve(b, (size_t)bound)) < 0)
    return rc;
  uint8_t *p = (uint8_t *)b->data;
  size_t fixed = NN_SHIP_SPOOL_BODY_HEAD + (size_t)r->ntokens * 16;
  uint8_t *body = p + NN_SHIP_SPOOL_REC_HEAD;
  body[0] = 1;
  body[1] = CODEC_LZ4;
  body[2] = (uint8_t)r->id_len;
  body[3] = (uint8_t)(r->id_len >> 8);
  nn__put32(body + 4, r->nrecords);
  nn__put64(body + 8, r->seq);
  nn__put32(body + 16, r->ntokens);
  nn__put32(body + 20, (uint32_t)r->payload_len);
  for (uint32_t i = 0; i < r->ntokens; i++) {
    nn__put64(body + NN_SHIP_SPOOL_BODY_HEAD + 16 * (size_t)i, r->tokens[i].id);
    nn__put64(body + NN_SHIP_SPOOL_BODY_HEAD + 16 * (size_t)i + 8, r->tokens[i].off);
  }
  memcpy(body + fixed, r->id, r->id_len);
  uint8_t *dst = body + fixed + r->id_len;
  int cap = LZ4_COMPRESSBOUND((int)r->payload_len);
  int clen =
      r->payload_len ? LZ4_compress_default(r->payload, (char *)dst, (int)r->payload_len, cap) : 0;
  if (clen <= 0 || (size_t)clen >= r->payload_len) {
    body[1] = CODEC_STORED;
    if (r->payload_len)
      memcpy(dst, r->payload, r->payload_len);
    clen = (int)r->payload_len;
  }
  uint32_t body_len = (uint32_t)(fixed + r->id_len + (size_t)clen);
  nn__put32(p, body_len);
  nn__put32(p + 4, nn__ship_crc32c(0, body, body_len));
  size_t total = NN_SHIP_SPOOL_REC_HEAD + body_len;

  if (sp->wfd >= 0 && sp->segs[sp->nsegs - 1].size + total > sp->segment_size &&
      sp->segs[sp->nsegs - 1].size > NN_SHIP_SPOOL_HEADER)
    rotate(sp);
  if (sp->wfd < 0 && (rc = new_segment(sp)) < 0) {
    NN_LOG_RL(NN_LOG_WARN, "ship", "spool %s: new segment: %s", sp->dir, nn_strerror(rc));
    return rc;
  }
  struct seg *s = &sp->segs[sp->nsegs - 1];
  if ((rc = write_all(sp->wfd, p, total)) < 0) {
    /* Cut a partial record off so later appends stay readable. */
    if (ftruncate(sp->wfd, (off_t)s->size) < 0)
      rotate(sp);
    NN_LOG_RL(NN_LOG_WARN, "ship", "spool %s: write: %s", sp->dir, nn_strerror(rc));
    return rc;
  }
  if (!r->orphan) {
    if (!s->live)
      s->first_seq = r->seq;
    s->live = true;
    s->last_seq = r->seq;
  }
  s->size += total;
  sp->bytes += total;
  sp->dirty_data = true;
  sp->appends++;
  return 0;
}

int nn__ship_spool_append_read(struct nn__ship_spool *sp, const struct nn__ship_rec *r,
                               struct nn__ship_pos *start, struct nn__ship_pos *end)
{
  if (!nn__ship_spool_drained(sp))
    return NN_EINVAL;
  int rc = nn__ship_spool_append(sp, r);
  if (rc < 0)
    return rc;
  struct seg *s = &sp->segs[sp->nsegs - 1];
  uint32_t len = nn__get32((const uint8_t *)sp->wbuf.data);
  *end = (struct nn__ship_pos){s->id, s->size};
  *start = (struct nn__ship_pos){s->id, s->size - NN_SHIP_SPOOL_REC_HEAD - len};
  sp->readp = *end;
  if (!r->orphan) {
    sp->last_live_read = r->seq;
    sp->have_live_read = true;
  }
  return 0;
}

static int open_reader(struct nn__ship_spool *sp, uint64_t id)
{
  char path[4200];
  if (sp->rfd >= 0 && sp->rfd_seg == id)
    return 0;
  if (sp->rfd >= 0)
    close(sp->rfd);
  sp->rfd = -1;
  int rc = seg_path(sp, id, path, sizeof(path));
  if (rc < 0)
    return rc;
  if ((sp->rfd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
    return NN_ERRNO(errno);
  sp->rfd_seg = id;
  return 0;
}

int nn__ship_spool_read(struct nn__ship_spool *sp, struct nn__ship_rec *out,
                        struct nn__ship_pos *start, struct nn__ship_pos *end,
                        uint64_t lost_live_seqs[2])
{
  for (;;) {
    size_t i = 0;
    struct seg *s = NULL;
    for (i = 0; i < sp->nsegs; i++) {
      if (sp->segs[i].id >= sp->readp.seg) {
        s = &sp->segs[i];
        break;
      }
    }
    if (!s)
      return NN_ENOTFOUND;
    if (s->id != sp->readp.seg)
      sp->readp = (struct nn__ship_pos){s->id, NN_SHIP_SPOOL_HEADER};
    if (sp->readp.off >= s->size) {
      if (i + 1 == sp->nsegs)
        return NN_ENOTFOUND;
      sp->readp = next_seg_start(sp, i);
      continue;
    }
    uint32_t len = 0;
    int rc = open_reader(sp, s->id);
    if (rc == 0)
      rc = read_record(sp, sp->rfd, s, sp->readp.off, &len);
    if (rc == 0)
      rc = parse_body(sp, (const uint8_t *)sp->body.data, len, true, out);
    if (rc == NN_ENOMEM)
      return rc;
    if (rc < 0) {
      /* The rest of this segment cannot be framed any more; report what was lost. */
      nn_warn("ship",
              "spool %s: segment %016" PRIx64 " unreadable at byte %" PRIu64
              " (%s); skipping the rest of it",
              sp->dir, s->id, sp->readp.off, nn_strerror(rc));
      lost_live_seqs[0] = 1;
      lost_live_seqs[1] = 0;
      if (s->live) {
        uint64_t first = s->first_seq;
        if (sp->have_live_read && sp->last_live_read + 1 > first)
          first = sp->last_live_read + 1;
        lost_live_seqs[0] = first;
        lost_live_seqs[1] = s->last_seq;
        if (first <= s->last_seq) {
          sp->last_live_read = s->last_seq;
          sp->have_live_read = true;
        }
      }
      *start = sp->readp;
      sp->readp.off = s->size;
      if (i + 1 < sp->nsegs)
        sp->readp = next_seg_start(sp, i);
      *end = sp->readp;
      return NN_ECORRUPT;
    }
    out->orphan = s->id <= sp->recovered_last;
    if (!out->orphan) {
      sp->last_live_read = out->seq;
      sp->have_live_read = true;
    }
    *start = sp->readp;
    sp->readp.off += NN_SHIP_SPOOL_REC_HEAD + len;
    *end = sp->readp;
    return 0;
  }
}

int nn__ship_spool_ack(struct nn__ship_spool *sp, struct nn__ship_pos end)
{
  if (pos_cmp(end, sp->cursor) <= 0)
    return 0;
  sp->cursor = end;
  normalize(sp);
  /* Everything written was read and acknowledged: retire the active segment too, so an
   * idle spool holds no bytes on disk (and its gauge reads 0). The next append opens a new
   * segment; the cursor then points at its start, which is crash-safe. */
  if (sp->nsegs == 1 && seg_is_active(sp, 0) && nn__ship_spool_drained(sp) &&
      pos_cmp(sp->cursor, sp->readp) == 0) {
    rotate(sp);
    normalize(sp);
  }
  return write_cursor(sp);
}

int nn__ship_spool_drop_oldest(struct nn__ship_spool *sp,
                               void (*on_drop)(void *ud, const struct nn__ship_rec *r), void *ud)
{
  if (sp->nsegs == 0)
    return NN_ENOTFOUND;
  if (seg_is_active(sp, 0))
    rotate(sp);
  struct seg *s = &sp->segs[0];
  uint64_t off = NN_SHIP_SPOOL_HEADER;
  if (sp->readp.seg == s->id)
    off = sp->readp.off;
  else if (sp->readp.seg > s->id)
    off = s->size; /* everything in it was read already; in-flight requests own it */
  if (off < s->size && open_reader(sp, s->id) == 0) {
    uint32_t len;
    while (off < s->size && read_record(sp, sp->rfd, s, off, &len) == 0) {
      struct nn__ship_rec r;
      if (parse_body(sp, (const uint8_t *)sp->body.data, len, false, &r) < 0)
        break;
      r.orphan = s->id <= sp->recovered_last;
      if (!r.orphan) {
        sp->last_live_read = r.seq;
        sp->have_live_read = true;
      }
      on_drop(ud, &r);
      off += NN_SHIP_SPOOL_REC_HEAD + len;
    }
  }
  struct nn__ship_pos next = next_seg_start(sp, 0);
  if (sp->cursor.seg <= s->id)
    sp->cursor = next;
  if (sp->readp.seg <= s->id)
    sp->readp = next;
  seg_remove_front(sp);
  return write_cursor(sp);
}

bool nn__ship_spool_drained(const struct nn__ship_spool *sp)
{
  if (sp->nsegs == 0)
    return true;
  const struct seg *last = &sp->segs[sp->nsegs - 1];
  return sp->readp.seg > last->id || (sp->readp.seg == last->id && sp->readp.off >= last->size);
}

uint64_t nn__ship_spool_bytes(const struct nn__ship_spool *sp)
{
  return sp->bytes;
}

uint64_t nn__ship_spool_segments(const struct nn__ship_spool *sp)
{
  return sp->nsegs;
}
