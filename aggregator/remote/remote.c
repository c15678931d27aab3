/* SPDX-License-Identifier: Apache-2.0 */
/* Per-destination WAL tailers feeding agent/ship queues. A sample's place in the WAL is
 * its position (segment, record offset, index in the record); every sample handed to the
 * ship carries it as its ack token, and the destination's saved position moves only to
 * what the ship acknowledged (delivered, or fsynced in its spool). The saved position is
 * also the WAL retention floor, so nothing a destination still needs is deleted. */
#include "aggregator/remote/remote.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/ship/ship.h"
#include "aggregator/tsdb/tsdb.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/http_client.h"
#include "common/labels.h"
#include "common/log.h"
#include "common/metrics.h"

/* A position: the WAL segment, and in tok the record offset << 24 | samples of that
 * record done (0: the record at that offset is untouched). Records hold at most the
 * store's appender cap (4M) samples, below 2^24. */
#define IDX_BITS 24
#define IDX_MAX  ((1u << IDX_BITS) - 1)

struct pos {
  uint32_t seg;
  uint64_t tok;
};

static int pos_cmp(struct pos a, struct pos b)
{
  if (a.seg != b.seg)
    return a.seg < b.seg ? -1 : 1;
  return (a.tok > b.tok) - (a.tok < b.tok);
}

static struct pos pos_at(uint32_t seg, uint64_t off, uint32_t idx)
{
  return (struct pos){seg, off << IDX_BITS | (idx > IDX_MAX ? IDX_MAX : idx)};
}

/* What a series becomes for one destination: the encoded remote-write Label fields of
 * its relabeled label set, or dropped. last_seg (the newest WAL segment that named it)
 * lets a WAL checkpoint retire series the head no longer has. */
struct sentry {
  uint32_t last_seg;
  uint32_t len;
  bool dropped;
  uint8_t key[];
};

struct smap {
  uint64_t *refs; /* 0 = empty (refs start at 1) */
  struct sentry **vals;
  size_t mask, n;
};

struct remote_dest;

struct pos_write {
  uv_work_t req;
  struct remote_dest *d;
  struct pos p;
  int rc;
};

struct remote_dest {
  struct nn_remote *r;
  size_t index;
  const struct nn_remote_dest_config *cfg;
  char *dir;      /* <data_dir>/remote/<name> */
  char *pos_path; /* <dir>/position */
  struct nn_tsdb_wal_reader *rd;
  struct nn_ship *ship;
  struct nn_ship_http *http;
  char **headers;
  size_t nheaders;
  struct smap series;
  struct nn_relabel_scratch scratch;
  struct nn_label *lbuf;
  size_t lcap;
  struct nn_buf key, piece;
  uint32_t series_seg; /* segment of the series being recorded */
  int64_t gc_ckpt;     /* newest checkpoint whose series retired the others */
  bool gc_running;
  uint64_t series_retired;
  /* Progress. */
  struct pos start;     /* saved position at open: samples up to it were sent before */
  struct pos read;      /* every sample up to here is handed to the ship or dropped */
  struct pos added;     /* token of the last sample handed to the ship */
  struct pos acked;     /* last token the ship acknowledged */
  struct pos persisted; /* saved on disk */
  struct pos boot_end;  /* the WAL's end at open: all the previous run wrote */
  bool past_boot;
  bool writing; /* a position write is on the thread pool */
  bool paused;
  bool idle; /* the reader found nothing new last time */
  bool cut_loose;
  /* The samples record being sent. */
  bool in_samples, have;
  struct nn_tsdb_wal_samples it;
  uint32_t rec_seg;
  uint64_t rec_off, rec_end;
  uint32_t idx;
  uint64_t s_ref;
  int64_t s_t;
  double s_v;
  struct nn_remote_dest_stats st;
  struct nn_metric *m_read, *m_sent, *m_filtered, *m_unknown, *m_too_big, *m_cut_total;
};

struct nn_remote {
  uv_loop_t *loop;
  char *data_dir;
  struct nn_tsdb *db;
  struct nn_http_client *client;
  const struct nn_cfg_strmap *external_labels;
  struct remote_dest *dests;
  size_t ndests;
  int64_t poll_ms;
  uv_timer_t poll, tick;
  int handles;
  bool closing, finished;
  int ships_open, works;
  uint64_t ticks;
  void (*on_closed)(void *ud);
  void *closed_ud;
};

/* ---- series map ---- */

/* Refs are handed out one after another, and a samples record names the series of one
 * request, usually created together: the identity as the hash keeps neighbours in
 * neighbouring slots (this lookup is most of the per-sample cost), and sequential keys
 * never collide until the table wraps. */
static uint64_t mix(uint64_t x)
{
  return x;
}

static void smap_free(struct smap *m)
{
  for (size_t i = 0; m->refs && i <= m->mask; i++)
    if (m->refs[i])
      free(m->vals[i]);
  free(m->refs);
  free(m->vals);
  memset(m, 0, sizeof(*m));
}

static struct sentry **smap_slot(const struct smap *m, uint64_t ref, bool *found)
{
  size_t i = (size_t)mix(ref) & m->mask;
  while (m->refs[i] && m->refs[i] != ref)
    i = (i + 1) & m->mask;
  *found = m->refs[i] == ref;
  return &m->vals[i];
}

static struct sentry *smap_get(const struct smap *m, uint64_t ref)
{
  if (!m->refs)
    return NULL;
  bool found;
  struct sentry **v = smap_slot(m, ref, &found);
  return found ? *v : NULL;
}

static int smap_grow(struct smap *m)
{
  size_t ncap = m->refs ? (m->mask + 1) * 2 : 1024;
  struct smap nm = {calloc(ncap, sizeof(uint64_t)), calloc(ncap, sizeof(void *)), ncap - 1, 0};
  if (!nm.refs || !nm.vals) {
    free(nm.refs);
    free(nm.vals);
    return NN_ENOMEM;
  }
  for (size_t i = 0; m->refs && i <= m->mask; i++) {
    if (!m->refs[i])
      continue;
    bool found;
    struct sentry **v = smap_slot(&nm, m->refs[i], &found);
    nm.refs[v - nm.vals] = m->refs[i];
    *v = m->vals[i];
    nm.n++;
  }
  free(m->refs);
  free(m->vals);
  *m = nm;
  return 0;
}

/* Takes ownership of e (freed if it cannot be stored). */
static int smap_put(struct smap *m, uint64_t ref, struct sentry *e)
{
  if ((!m->refs || (m->n + 1) * 4 > (m->mask + 1) * 3) && smap_grow(m) < 0) {
    free(e);
    return NN_ENOMEM;
  }
  bool found;
  struct sentry **v = smap_slot(m, ref, &found);
  if (found) {
    free(*v);
  } else {
    m->refs[v - m->vals] = ref;
    m->n++;
  }
  *v = e;
  return 0;
}

/* ---- positions on disk ---- */

static int mkdir_p(const char *path)
{
  char tmp[4096];
  int w = snprintf(tmp, sizeof(tmp), "%s", path);
  if (w < 0 || (size_t)w >= sizeof(tmp))
    return NN_ETOOBIG;
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
      return NN_ERRNO(errno);
    *p = '/';
  }
  if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
    return NN_ERRNO(errno);
  return 0;
}

#define POS_MAGIC "nines-remote-position v1"

/* Reads a saved position: 0, NN_ENOTFOUND when there is none, NN_ECORRUPT. */
static int pos_load(const char *path, struct pos *out)
{
  FILE *f = fopen(path, "re");
  if (!f)
    return errno == ENOENT ? NN_ENOTFOUND : NN_ERRNO(errno);
  char line[128];
  int rc = NN_ECORRUPT;
  unsigned seg;
  unsigned long long tok, check;
  if (fgets(line, sizeof(line), f) &&
      sscanf(line, POS_MAGIC " %u %llu %llu", &seg, &tok, &check) == 3 &&
      check == (((unsigned long long)seg * 0x9E3779B97F4A7C15ULL) ^ tok)) {
    *out = (struct pos){seg, tok};
    rc = 0;
  }
  fclose(f);
  return rc;
}

/* Writes the position atomically and durably (temporary file, fsync, rename, directory
 * fsync); runs on the thread pool, or on the loop at open and close. */
static int pos_save(const char *path, struct pos p)
{
  char tmp[4200], text[128];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  int n =
      snprintf(text, sizeof(text), POS_MAGIC " %u %llu %llu\n", p.seg, (unsigned long long)p.tok,
               ((unsigned long long)p.seg * 0x9E3779B97F4A7C15ULL) ^ p.tok);
  int rc = 0;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0)
    return NN_ERRNO(errno);
  if (write(fd, text, (size_t)n) != n || fsync(fd) < 0)
    rc = errno ? NN_ERRNO(errno) : NN_EIO;
  close(fd);
  if (rc == 0 && rename(tmp, path) < 0)
    rc = NN_ERRNO(errno);
  if (rc < 0) {
    unlink(tmp);
    return rc;
  }
  char dir[4200];
  snprintf(dir, sizeof(dir), "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash)
    *slash = '\0';
  int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    if (fsync(dfd) < 0)
      rc = NN_ERRNO(errno);
    close(dfd);
  }
  return rc;
}

static char *dest_dir(const char *data_dir, const char *name)
{
  size_t l = strlen(data_dir) + strlen(name) + 16;
  char *p = malloc(l);
  if (p)
    snprintf(p, l, "%s/remote/%s", data_dir, name);
  return p;
}

void nn_remote_wal_floor(const char *data_dir, const struct nn_cfg_list *dests, bool *any,
                         uint32_t *floor)
{
  const struct nn_remote_dest_config *c = dests->items;
  *any = false;
  *floor = 0;
  for (size_t i = 0; i < dests->n; i++) {
    char path[4200];
    struct pos p = {0};
    snprintf(path, sizeof(path), "%s/remote/%s/position", data_dir, c[i].name);
    if (pos_load(path, &p) < 0)
      continue;
    if (!*any || p.seg < *floor)
      *floor = p.seg;
    *any = true;
  }
}

/* ---- the pump: WAL records into the ship ---- */

static struct pos committable(const struct remote_dest *d)
{
  /* With nothing unacknowledged, every sample read is done (the ones after the last
   * added were dropped or filtered); otherwise the ship's acks are the limit. */
  return pos_cmp(d->acked, d->added) == 0 ? d->read : d->acked;
}

static void advance_read(struct remote_dest *d, struct pos p)
{
  if (pos_cmp(p, d->read) > 0)
    d->read = p;
}

/* Records what ref becomes: key bytes, or dropped when key is NULL. */
static int put_series(struct remote_dest *d, uint64_t ref, const void *key, size_t len)
{
  struct sentry *e = malloc(sizeof(*e) + len);
  if (!e)
    return NN_ENOMEM;
  e->last_seg = d->series_seg;
  e->len = (uint32_t)len;
  e->dropped = key == NULL;
  if (len)
    memcpy(e->key, key, len);
  return smap_put(&d->series, ref, e);
}

/* Prometheus's order: external labels join first (a series' own label wins), then
 * write_relabel_configs. Out of memory stops the record; any other failure drops the
 * series for this destination (logged). */
static int on_series(void *ctx, uint64_t ref, const struct nn_label *ls, size_t n)
{
  struct remote_dest *d = ctx;
  const struct nn_relabel_config *rc = &d->cfg->write_relabel_configs;
  const struct nn_cfg_strmap *ext = d->r->external_labels;
  const struct nn_label *out = ls;
  size_t nout = n;
  size_t next = ext ? ext->n : 0;
  if (rc->n > 0 || next > 0) {
    size_t cap = n + next + 64;
    if (cap > d->lcap) {
      struct nn_label *nb = realloc(d->lbuf, cap * sizeof(*nb));
      if (!nb)
        return NN_ENOMEM;
      d->lbuf = nb;
      d->lcap = cap;
    }
    memcpy(d->lbuf, ls, n * sizeof(*ls));
    for (size_t i = 0; i < next; i++)
      if (!nn_labels_get(ls, n, ext->keys[i]) && *ext->values[i])
        d->lbuf[nout++] = (struct nn_label){ext->keys[i], ext->values[i]};
    if (nout > n)
      nn_labels_canonicalize(d->lbuf, nout);
    int k = 1;
    if (rc->n > 0) {
      nn_relabel_scratch_reset(&d->scratch);
      k = nn_relabel_process(rc, d->lbuf, &nout, d->lcap, &d->scratch);
      if (k == NN_ENOMEM)
        return k;
      if (k < 0)
        NN_LOG_RL(NN_LOG_WARN, "remote",
                  "%s: write_relabel_configs failed on a series (%s); it is not sent", d->cfg->name,
                  nn_strerror(k));
    }
    if (k <= 0 || nout == 0)
      return put_series(d, ref, NULL, 0);
    out = d->lbuf;
  }
  nn_buf_reset(&d->key);
  for (size_t i = 0; i < nout; i++) {
    int e = nn_ship_rw_label_encode(&d->key, out[i].name, out[i].value);
    if (e == NN_ENOMEM)
      return e;
    if (e < 0) {
      NN_LOG_RL(NN_LOG_WARN, "remote", "%s: series ref %llu cannot be encoded (%s); not sent",
                d->cfg->name, (unsigned long long)ref, nn_strerror(e));
      return put_series(d, ref, NULL, 0);
    }
  }
  return put_series(d, ref, d->key.data, d->key.len);
}

static void finish_record(struct remote_dest *d)
{
  d->in_samples = false;
  d->have = false;
  advance_read(d, pos_at(d->rec_seg, d->rec_end, 0));
}

/* Hands the current sample to the ship: 0 when done with it (sent or dropped),
 * NN_EAGAIN when the ship cannot take it now. */
static int send_sample(struct remote_dest *d)
{
  struct pos p = pos_at(d->rec_seg, d->rec_off, d->idx);
  struct sentry *e = smap_get(&d->series, d->s_ref);
  if (!e) {
    d->st.samples_unknown++;
    nn_metric_inc(d->m_unknown);
    NN_LOG_RL(NN_LOG_WARN, "remote",
              "%s: sample for unknown series ref %llu in WAL segment %u "
              "(its series record is gone); not sent",
              d->cfg->name, (unsigned long long)d->s_ref, d->rec_seg);
  } else if ((e->last_seg = d->rec_seg), e->dropped) {
    d->st.samples_filtered++;
    nn_metric_inc(d->m_filtered);
  } else {
    nn_buf_reset(&d->piece);
    int rc = nn_ship_rw_sample_encode(&d->piece, d->s_v, d->s_t);
    struct nn_ship_token tok = {p.seg, p.tok};
    if (rc == 0 && !d->past_boot && pos_cmp(p, d->boot_end) > 0) {
      /* The first sample the previous run never saw: after a crash, what came before may
       * partly be at the receiver already. Closing the batch here keeps new samples out
       * of a request that a receiver refusing out-of-order samples (Prometheus) rejects
       * whole for its duplicates. */
      d->past_boot = true;
      if (pos_cmp(d->added, d->start) > 0)
        nn_ship_flush(d->ship);
    }
    if (rc == 0)
      rc = nn_ship_add(d->ship, e->key, e->len, d->piece.data, d->piece.len, &tok);
    if (rc == NN_EAGAIN)
      return rc;
    if (rc < 0) {
      d->st.samples_too_big++;
      nn_metric_inc(d->m_too_big);
      NN_LOG_RL(NN_LOG_WARN, "remote", "%s: sample not sent: %s", d->cfg->name, nn_strerror(rc));
    } else {
      d->added = p;
      d->st.samples_sent++;
      nn_metric_inc(d->m_sent);
    }
  }
  advance_read(d, p);
  return 0;
}

/* Works through at most *budget samples or records; false when it must stop (paused,
 * caught up, error) rather than because the budget ran out. */
static void pump(struct remote_dest *d, long *budget)
{
  struct nn_tsdb_wal_record rec;
  while (*budget > 0 && !d->paused && !d->r->closing && d->ship) {
    if (d->in_samples) {
      if (!d->have) {
        int rc = nn_tsdb_wal_samples_next(&d->it, &d->s_ref, &d->s_t, &d->s_v);
        if (rc <= 0) {
          if (rc < 0)
            nn_warn("remote", "%s: undecodable samples in WAL segment %u at %llu; skipped",
                    d->cfg->name, d->rec_seg, (unsigned long long)d->rec_off);
          finish_record(d);
          continue;
        }
        d->idx++;
        if (pos_cmp(pos_at(d->rec_seg, d->rec_off, d->idx), d->start) <= 0)
          continue; /* sent before the restart */
        d->have = true;
        d->st.samples_read++;
        nn_metric_inc(d->m_read);
      }
      if (send_sample(d) == NN_EAGAIN)
        return;
      d->have = false;
      (*budget)--;
      continue;
    }
    int rc = nn_tsdb_wal_reader_next(d->rd, &rec);
    if (rc <= 0) {
      if (rc < 0)
        NN_LOG_RL(NN_LOG_ERROR, "remote", "%s: reading the WAL: %s", d->cfg->name, nn_strerror(rc));
      d->idle = true;
      return;
    }
    d->idle = false;
    (*budget)--;
    d->st.read_segment = rec.segment;
    if (rec.type == NN_TSDB_WAL_SERIES) {
      d->series_seg = rec.segment;
      rc = nn_tsdb_wal_series_decode(rec.data, rec.len, on_series, d);
      if (rc < 0)
        nn_warn("remote", "%s: series record in WAL segment %u at %llu: %s", d->cfg->name,
                rec.segment, (unsigned long long)rec.offset, nn_strerror(rc));
      advance_read(d, pos_at(rec.segment, rec.end, 0));
    } else if (rec.type == NN_TSDB_WAL_SAMPLES) {
      if (pos_cmp(pos_at(rec.segment, rec.end, 0), d->start) <= 0)
        continue; /* wholly before the saved position: only its series mattered */
      if (nn_tsdb_wal_samples_init(&d->it, rec.data, rec.len) < 0) {
        nn_warn("remote", "%s: undecodable samples record in WAL segment %u at %llu; skipped",
                d->cfg->name, rec.segment, (unsigned long long)rec.offset);
        continue;
      }
      d->in_samples = true;
      d->have = false;
      d->rec_seg = rec.segment;
      d->rec_off = rec.offset;
      d->rec_end = rec.end;
      d->idx = 0;
    }
  }
}

static void on_poll(uv_timer_t *t);

static void schedule(struct nn_remote *r, uint64_t ms)
{
  if (!r->closing && r->handles)
    uv_timer_start(&r->poll, on_poll, ms, 0);
}

static void on_poll(uv_timer_t *t)
{
  struct nn_remote *r = t->data;
  bool more = false;
  for (size_t i = 0; i < r->ndests; i++) {
    /* Bounded work per turn of the loop; a backlog continues on the next one. The ship
     * decides to pause between turns, so this also bounds how far past queue_max one
     * turn can fill it (a few hundred KiB). */
    long budget = 4096;
    pump(&r->dests[i], &budget);
    if (budget <= 0)
      more = true;
  }
  schedule(r, more ? 0 : (uint64_t)r->poll_ms);
}

/* ---- ship owner ---- */

static void on_ack(void *ud, const struct nn_ship_token *tokens, size_t n,
                   enum nn_ship_outcome outcome, bool recovered)
{
  struct remote_dest *d = ud;
  /* Batches recovered from the spool were acknowledged by the run that wrote them. */
  if (recovered || n == 0)
    return;
  struct pos p = {(uint32_t)tokens[n - 1].id, tokens[n - 1].off};
  if (pos_cmp(p, d->acked) > 0)
    d->acked = p;
}

static void on_pause(void *ud)
{
  struct remote_dest *d = ud;
  d->paused = true;
}

static void on_resume(void *ud)
{
  struct remote_dest *d = ud;
  d->paused = false;
  schedule(d->r, 0);
}

/* ---- retiring series that a WAL checkpoint no longer has ---- */

struct gc_job {
  uv_work_t req;
  struct remote_dest *d;
  uint32_t ckpt;
  uint64_t *refs;
  size_t n, cap;
  int rc;
};

static int gc_collect(void *ctx, uint64_t ref, const struct nn_label *ls, size_t n)
{
  struct gc_job *j = ctx;
  if (j->n == j->cap) {
    size_t nc = j->cap ? j->cap * 2 : 1024;
    uint64_t *nr = realloc(j->refs, nc * sizeof(*nr));
    if (!nr)
      return NN_ENOMEM;
    j->refs = nr;
    j->cap = nc;
  }
  j->refs[j->n++] = ref;
  return 0;
}

static int cmp_u64(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* On the thread pool: the refs of the checkpoint's series, sorted. Reads the whole
 * checkpoint file (its chunks too), hence off the loop. */
static void on_gc_work(uv_work_t *req)
{
  struct gc_job *j = req->data;
  j->rc = nn_tsdb_wal_checkpoint_series(j->d->r->data_dir, j->ckpt, gc_collect, j);
  if (j->rc == 0 && j->n)
    qsort(j->refs, j->n, sizeof(*j->refs), cmp_u64);
}

/* Every segment before the checkpoint has been read (and no record from one is half
 * sent), so a series it lacks and no later segment named is gone from the head for good:
 * refs are never reused. */
static bool gc_safe(const struct remote_dest *d, uint32_t ckpt)
{
  uint32_t seg;
  uint64_t off;
  nn_tsdb_wal_reader_position(d->rd, &seg, &off);
  return seg >= ckpt && (!d->in_samples || d->rec_seg >= ckpt);
}

static void maybe_finish(struct nn_remote *r);

static void on_gc_done(uv_work_t *req, int status)
{
  struct gc_job *j = req->data;
  struct remote_dest *d = j->d;
  struct nn_remote *r = d->r;
  d->gc_running = false;
  r->works--;
  if (status == 0 && j->rc == 0 && !r->closing && gc_safe(d, j->ckpt)) {
    struct smap *m = &d->series, keep = {0};
    size_t gone = 0;
    /* Sized for every entry up front, so moving entries over never allocates. */
    size_t cap = 1024;
    while (cap * 3 < (m->n + 1) * 4)
      cap *= 2;
    keep.refs = calloc(cap, sizeof(uint64_t));
    keep.vals = calloc(cap, sizeof(void *));
    keep.mask = cap - 1;
    if (!keep.refs || !keep.vals) {
      smap_free(&keep);
      goto out;
    }
    for (size_t i = 0; m->refs && i <= m->mask; i++) {
      if (!m->refs[i])
        continue;
      struct sentry *e = m->vals[i];
      if (e->last_seg >= j->ckpt ||
          (j->n && bsearch(&m->refs[i], j->refs, j->n, sizeof(uint64_t), cmp_u64))) {
        smap_put(&keep, m->refs[i], e); /* cannot fail: no growth needed */
        m->refs[i] = 0;
      } else {
        gone++;
      }
    }
    smap_free(m); /* frees the retired entries; the kept ones moved */
    *m = keep;
    d->series_retired += gone;
    d->gc_ckpt = j->ckpt;
  } else if (status == 0 && j->rc < 0) {
    NN_LOG_RL(NN_LOG_WARN, "remote", "%s: reading WAL checkpoint %u: %s", d->cfg->name, j->ckpt,
              nn_strerror(j->rc));
    d->gc_ckpt = j->ckpt;
  }
out:
  free(j->refs);
  free(j);
  if (r->closing)
    maybe_finish(r);
}

static void maybe_gc(struct remote_dest *d, int64_t ckpt)
{
  if (ckpt <= d->gc_ckpt || d->gc_running || !gc_safe(d, (uint32_t)ckpt))
    return;
  struct gc_job *j = calloc(1, sizeof(*j));
  if (!j)
    return;
  j->d = d;
  j->ckpt = (uint32_t)ckpt;
  j->req.data = j;
  if (uv_queue_work(d->r->loop, &j->req, on_gc_work, on_gc_done) < 0) {
    free(j);
    return;
  }
  d->gc_running = true;
  d->r->works++;
}

/* ---- positions (every 50 ms), floor and backlog (every second) ---- */

static void on_pos_work(uv_work_t *req)
{
  struct pos_write *w = req->data;
  w->rc = pos_save(w->d->pos_path, w->p);
}

static void update_floor(struct nn_remote *r)
{
  bool any = false;
  uint32_t floor = 0;
  for (size_t i = 0; i < r->ndests; i++) {
    struct remote_dest *d = &r->dests[i];
    if (d->cut_loose)
      continue;
    if (!any || d->persisted.seg < floor)
      floor = d->persisted.seg;
    any = true;
  }
  if (r->db)
    nn_tsdb_wal_retain(r->db, any, floor);
}

static void on_pos_done(uv_work_t *req, int status)
{
  struct pos_write *w = req->data;
  struct remote_dest *d = w->d;
  struct nn_remote *r = d->r;
  d->writing = false;
  r->works--;
  if (status == 0 && w->rc == 0) {
    d->persisted = w->p;
    d->st.position_writes++;
    update_floor(r);
  } else {
    NN_LOG_RL(NN_LOG_ERROR, "remote", "%s: cannot save position in %s: %s", d->cfg->name,
              d->pos_path, nn_strerror(status < 0 ? status : w->rc));
  }
  free(w);
  if (r->closing)
    maybe_finish(r);
}

static void save_async(struct remote_dest *d)
{
  struct pos p = committable(d);
  if (d->writing || pos_cmp(p, d->persisted) == 0)
    return;
  struct pos_write *w = calloc(1, sizeof(*w));
  if (!w)
    return;
  w->d = d;
  w->p = p;
  w->req.data = w;
  if (uv_queue_work(d->r->loop, &w->req, on_pos_work, on_pos_done) < 0) {
    free(w);
    return;
  }
  d->writing = true;
  d->r->works++;
}

static void check_backlog(struct remote_dest *d)
{
  uint64_t behind = nn_tsdb_wal_bytes_from(d->r->data_dir, d->persisted.seg);
  bool cut = behind > d->cfg->max_wal_backlog;
  if (cut && !d->cut_loose) {
    nn_metric_inc(d->m_cut_total);
    nn_warn("remote",
            "%s: %llu WAL bytes behind (max_wal_backlog %llu): cut loose, the store may now "
            "delete WAL segments this destination has not sent; they will be skipped and counted",
            d->cfg->name, (unsigned long long)behind, (unsigned long long)d->cfg->max_wal_backlog);
  } else if (!cut && d->cut_loose) {
    nn_info("remote", "%s: back within max_wal_backlog; the WAL is retained for it again",
            d->cfg->name);
  }
  d->cut_loose = cut;
}

/* Positions are saved every tick (50 ms) when they moved, one write at a time per
 * destination (at most 20 small fsyncs a second on the thread pool): after a SIGKILL,
 * what the receiver took since the last save is sent again, so the interval bounds the
 * duplicates. Directory scans (backlog, checkpoints) run once a second. */
#define TICK_MS        50
#define TICKS_PER_SCAN 20

static void on_tick(uv_timer_t *t)
{
  struct nn_remote *r = t->data;
  for (size_t i = 0; i < r->ndests; i++)
    save_async(&r->dests[i]);
  if (r->ticks++ % TICKS_PER_SCAN != 0)
    return;
  uint32_t first, last;
  size_t nseg;
  uint64_t last_size;
  int64_t ckpt = -1;
  if (nn_tsdb_wal_bounds(r->data_dir, &first, &last, &nseg, &last_size, &ckpt) < 0)
    ckpt = -1;
  for (size_t i = 0; i < r->ndests; i++) {
    check_backlog(&r->dests[i]);
    if (ckpt >= 0)
      maybe_gc(&r->dests[i], ckpt);
  }
  update_floor(r);
}

/* ---- lifecycle ---- */

static double stat_series(void *ud)
{
  return (double)((struct remote_dest *)ud)->series.n;
}

static double stat_saved_segment(void *ud)
{
  return (double)((struct remote_dest *)ud)->persisted.seg;
}

static double stat_read_segment(void *ud)
{
  struct remote_dest *d = ud;
  uint32_t seg;
  uint64_t off;
  nn_tsdb_wal_reader_position(d->rd, &seg, &off);
  return (double)seg;
}

static double stat_skipped(void *ud)
{
  struct nn_tsdb_wal_reader_stats st;
  nn_tsdb_wal_reader_stats(((struct remote_dest *)ud)->rd, &st);
  return (double)st.segments_skipped;
}

static double stat_cut(void *ud)
{
  return ((struct remote_dest *)ud)->cut_loose ? 1 : 0;
}

static double stat_backlog(void *ud)
{
  struct remote_dest *d = ud;
  return (double)nn_tsdb_wal_bytes_from(d->r->data_dir, d->persisted.seg);
}

static int register_metrics(struct remote_dest *d, struct nn_metrics *mx)
{
  char l[160];
  snprintf(l, sizeof(l), "destination=\"%s\"", d->cfg->name);
  char lr[200];
#define DROP(field, reason)                                                                        \
  (snprintf(lr, sizeof(lr), "%s,reason=\"%s\"", l, reason),                                        \
   d->field = nn_metrics_counter(mx, "nines_remote_write_samples_dropped_total",                   \
                                 "Samples read from the WAL and not sent, by reason.", lr))
  DROP(m_filtered, "write_relabel");
  DROP(m_unknown, "unknown_series");
  DROP(m_too_big, "too_big");
#undef DROP
  d->m_read = nn_metrics_counter(mx, "nines_remote_write_samples_read_total",
                                 "Samples read from the WAL past the saved position.", l);
  d->m_sent = nn_metrics_counter(mx, "nines_remote_write_samples_queued_total",
                                 "Samples handed to the destination's queue.", l);
  d->m_cut_total =
      nn_metrics_counter(mx, "nines_remote_write_cut_loose_total",
                         "Times the destination fell more than max_wal_backlog behind.", l);
  if (!d->m_filtered || !d->m_unknown || !d->m_too_big || !d->m_read || !d->m_sent ||
      !d->m_cut_total)
    return NN_ENOMEM;
  static const struct {
    enum nn_metric_type type;
    const char *name, *help;
    nn_metric_value_fn fn;
  } funcs[] = {
      {NN_METRIC_GAUGE, "nines_remote_write_series", "Series the destination knows.", stat_series},
      {NN_METRIC_GAUGE, "nines_remote_write_wal_segment", "WAL segment being read.",
       stat_read_segment},
      {NN_METRIC_GAUGE, "nines_remote_write_saved_segment",
       "WAL segment of the saved (acknowledged) position.", stat_saved_segment},
      {NN_METRIC_GAUGE, "nines_remote_write_wal_backlog_bytes",
       "WAL bytes from the saved position to the end.", stat_backlog},
      {NN_METRIC_GAUGE, "nines_remote_write_cut_loose",
       "1 while the destination is too far behind to hold back WAL deletion.", stat_cut},
      {NN_METRIC_COUNTER, "nines_remote_write_wal_segments_skipped_total",
       "WAL segments deleted before the destination read them (samples lost for it).",
       stat_skipped},
  };
  for (size_t i = 0; i < sizeof(funcs) / sizeof(funcs[0]); i++)
    if (!nn_metrics_func(mx, funcs[i].type, funcs[i].name, funcs[i].help, l, funcs[i].fn, d))
      return NN_ENOMEM;
  return 0;
}

static int load_checkpoint_series(void *ctx, uint64_t ref, const struct nn_label *ls, size_t n)
{
  return on_series(ctx, ref, ls, n);
}

static int open_dest(struct nn_remote *r, struct remote_dest *d, struct nn_metrics *mx)
{
  const struct nn_remote_dest_config *c = d->cfg;
  int rc;
  nn_relabel_scratch_init(&d->scratch);
  nn_buf_init(&d->key, 1 << 20);
  nn_buf_init(&d->piece, 64);
  if (!(d->dir = dest_dir(r->data_dir, c->name)) || !(d->pos_path = malloc(strlen(d->dir) + 16)))
    return NN_ENOMEM;
  snprintf(d->pos_path, strlen(d->dir) + 16, "%s/position", d->dir);
  if ((rc = mkdir_p(d->dir)) < 0) {
    nn_error("remote", "%s: cannot create %s: %s", c->name, d->dir, nn_strerror(rc));
    return rc;
  }
  uint32_t first, last;
  size_t nseg;
  uint64_t last_size;
  int64_t ckpt;
  if ((rc = nn_tsdb_wal_bounds(r->data_dir, &first, &last, &nseg, &last_size, &ckpt)) < 0) {
    nn_error("remote", "%s: cannot list the WAL in %s: %s", c->name, r->data_dir, nn_strerror(rc));
    return rc;
  }
  rc = pos_load(d->pos_path, &d->start);
  if (rc == NN_ENOTFOUND || rc == NN_ECORRUPT) {
    if (rc == NN_ECORRUPT) {
      /* Sending again beats losing: start where the WAL starts. */
      nn_warn("remote", "%s: position file %s is damaged; sending the whole WAL again", c->name,
              d->pos_path);
      d->start = (struct pos){nseg ? first : 0, 0};
    } else {
      /* A new destination gets what is written from now on, as in Prometheus. */
      d->start =
          nseg ? pos_at(last, last_size, 0) : (struct pos){ckpt >= 0 ? (uint32_t)ckpt : 0, 0};
      nn_info("remote", "%s: new destination; sending from WAL segment %u offset %llu", c->name,
              d->start.seg, (unsigned long long)(d->start.tok >> IDX_BITS));
    }
    if ((rc = pos_save(d->pos_path, d->start)) < 0) {
      nn_error("remote", "%s: cannot save position in %s: %s", c->name, d->pos_path,
               nn_strerror(rc));
      return rc;
    }
  } else if (rc < 0) {
    nn_error("remote", "%s: cannot read %s: %s", c->name, d->pos_path, nn_strerror(rc));
    return rc;
  }
  if (nseg && d->start.seg > last + 1) {
    /* The WAL went backwards (a new data directory under an old remote/): the saved
     * position can never be reached, so send what there is. */
    nn_warn("remote",
            "%s: saved position (WAL segment %u) is past the WAL's end (%u); "
            "starting at its first segment",
            c->name, d->start.seg, last);
    d->start = (struct pos){first, 0};
  }
  d->read = d->added = d->acked = d->persisted = d->start;
  d->boot_end = nseg ? pos_at(last, last_size, 0) : d->start;
  /* Series come from the newest checkpoint and the segments from there (or from the
   * saved position, if retained segments before the checkpoint are still needed). */
  uint32_t begin = ckpt >= 0 && (uint32_t)ckpt > first ? (uint32_t)ckpt : first;
  if (!nseg || d->start.seg < begin)
    begin = d->start.seg;
  if (ckpt >= 0 && (rc = nn_tsdb_wal_checkpoint_series(r->data_dir, (uint32_t)ckpt,
                                                       load_checkpoint_series, d)) < 0)
    nn_warn("remote", "%s: series from WAL checkpoint %lld: %s", c->name, (long long)ckpt,
            nn_strerror(rc));
  if ((rc = nn_tsdb_wal_reader_open(r->data_dir, begin, 0, &d->rd)) < 0)
    return rc;
  d->st.saved_segment = d->start.seg;
  nn_info("remote",
          "%s: %s, resuming at WAL segment %u record %llu (+%u samples), %zu series "
          "from the checkpoint",
          c->name, c->url, d->start.seg, (unsigned long long)(d->start.tok >> IDX_BITS),
          (unsigned)(d->start.tok & IDX_MAX), d->series.n);

  /* The ship: one destination each, so that relabeling and progress are per destination. */
  d->nheaders = c->headers.n;
  if (d->nheaders && !(d->headers = calloc(d->nheaders, sizeof(char *))))
    return NN_ENOMEM;
  for (size_t i = 0; i < d->nheaders; i++) {
    size_t l = strlen(c->headers.keys[i]) + strlen(c->headers.values[i]) + 3;
    if (!(d->headers[i] = malloc(l)))
      return NN_ENOMEM;
    snprintf(d->headers[i], l, "%s: %s", c->headers.keys[i], c->headers.values[i]);
  }
  struct nn_ship_dest_config dc;
  nn_ship_dest_config_defaults(&dc);
  dc.name = c->name;
  dc.url = c->url;
  dc.codec = c->codec;
  dc.bearer_token = c->bearer_token && *c->bearer_token ? c->bearer_token : NULL;
  dc.headers = (const char *const *)d->headers;
  dc.nheaders = d->nheaders;
  dc.timeout_ms = c->timeout_ms;
  dc.max_inflight = (uint32_t)c->max_inflight;
  dc.mem_queue_max = c->queue_max;
  dc.spool_max = c->spool_max;
  dc.full_policy = NN_SHIP_FULL_BLOCK;
  if (!(d->http = nn_ship_http_create(r->client, 0)))
    return NN_ENOMEM;
  struct nn_ship_config sc;
  nn_ship_config_defaults(&sc);
  char root[4200];
  snprintf(root, sizeof(root), "%s/remote", r->data_dir);
  /* A source per destination: its own spool and dead-letter directories, and its own
   * nines_agent_ship_paused series. */
  char source[80];
  snprintf(source, sizeof(source), "remote_write.%s", c->name);
  sc.name = source;
  sc.payload = &nn_ship_payload_remote_write;
  sc.data_dir = root;
  sc.batch_size = c->batch_size;
  sc.batch_wait_ms = c->batch_wait_ms;
  sc.backoff_min_ms = c->min_backoff_ms;
  sc.backoff_max_ms = c->max_backoff_ms;
  /* Acked once fsynced in the spool: the spool then owns delivery, so the position may
   * move past it and the WAL may go; a graceful close spools and acks the rest. */
  sc.ack_spooled = true;
  sc.dests = &dc;
  sc.ndests = 1;
  sc.owner = (struct nn_ship_owner){on_ack, on_pause, on_resume, d};
  nn_ship_http_transport(d->http, &sc.transport);
  sc.metrics = mx;
  if ((rc = nn_ship_create(r->loop, &sc, &d->ship)) < 0)
    return rc;
  if (mx && (rc = register_metrics(d, mx)) < 0)
    return rc;
  return 0;
}

static void free_dest(struct remote_dest *d)
{
  nn_tsdb_wal_reader_close(d->rd);
  nn_ship_http_destroy(d->http);
  for (size_t i = 0; d->headers && i < d->nheaders; i++)
    free(d->headers[i]);
  free(d->headers);
  smap_free(&d->series);
  nn_relabel_scratch_fini(&d->scratch);
  free(d->lbuf);
  nn_buf_fini(&d->key);
  nn_buf_fini(&d->piece);
  free(d->dir);
  free(d->pos_path);
}

static void free_remote(struct nn_remote *r)
{
  for (size_t i = 0; i < r->ndests; i++)
    free_dest(&r->dests[i]);
  free(r->dests);
  nn_http_client_destroy(r->client);
  free(r->data_dir);
  void (*cb)(void *) = r->on_closed;
  void *ud = r->closed_ud;
  free(r);
  if (cb)
    cb(ud);
}

static void on_handle_closed(uv_handle_t *h)
{
  struct nn_remote *r = h->data;
  if (--r->handles == 0)
    free_remote(r);
}

static void maybe_finish(struct nn_remote *r)
{
  if (r->finished || r->ships_open > 0 || r->works > 0)
    return;
  r->finished = true;
  for (size_t i = 0; i < r->ndests; i++) {
    struct remote_dest *d = &r->dests[i];
    if (!d->rd)
      continue; /* never opened */
    struct pos p = committable(d);
    int rc = pos_cmp(p, d->persisted) == 0 ? 0 : pos_save(d->pos_path, p);
    if (rc < 0)
      nn_error("remote", "%s: cannot save position in %s at shutdown: %s", d->cfg->name,
               d->pos_path, nn_strerror(rc));
    else
      nn_info("remote", "%s: stopped at WAL segment %u record %llu (+%u samples)", d->cfg->name,
              p.seg, (unsigned long long)(p.tok >> IDX_BITS), (unsigned)(p.tok & IDX_MAX));
  }
  if (r->handles == 0) {
    free_remote(r);
    return;
  }
  uv_close((uv_handle_t *)&r->poll, on_handle_closed);
  uv_close((uv_handle_t *)&r->tick, on_handle_closed);
}

static void on_ship_closed(void *ud)
{
  struct remote_dest *d = ud;
  d->ship = NULL;
  d->r->ships_open--;
  maybe_finish(d->r);
}

struct nn_remote *nn_remote_create(const struct nn_remote_opts *o)
{
  struct nn_remote *r = calloc(1, sizeof(*r));
  if (!r)
    return NULL;
  r->loop = o->loop;
  r->db = o->db;
  r->external_labels = o->external_labels;
  r->poll_ms = o->poll_ms > 0 ? o->poll_ms : 100;
  r->ndests = o->dests->n;
  if (!(r->data_dir = strdup(o->data_dir)) ||
      !(r->dests = calloc(r->ndests ? r->ndests : 1, sizeof(*r->dests))) ||
      !(r->client = nn_http_client_create(o->loop, &(struct nn_http_client_opts){0})))
    goto fail;
  const struct nn_remote_dest_config *cfgs = o->dests->items;
  for (size_t i = 0; i < r->ndests; i++) {
    r->dests[i].r = r;
    r->dests[i].index = i;
    r->dests[i].cfg = &cfgs[i];
    if (open_dest(r, &r->dests[i], o->metrics) < 0) {
      nn_error("remote", "remote_write %s: cannot start", cfgs[i].name);
      goto fail;
    }
  }
  update_floor(r);
  uv_timer_init(r->loop, &r->poll);
  uv_timer_init(r->loop, &r->tick);
  r->poll.data = r->tick.data = r;
  r->handles = 2;
  uv_timer_start(&r->poll, on_poll, 0, 0);
  uv_timer_start(&r->tick, on_tick, TICK_MS, TICK_MS);
  return r;
fail:
  nn_remote_close(r, NULL, NULL);
  return NULL;
}

void nn_remote_close(struct nn_remote *r, void (*on_closed)(void *ud), void *ud)
{
  if (!r) {
    if (on_closed)
      on_closed(ud);
    return;
  }
  r->on_closed = on_closed;
  r->closed_ud = ud;
  r->closing = true;
  if (r->handles) {
    uv_timer_stop(&r->poll);
    uv_timer_stop(&r->tick);
  }
  for (size_t i = 0; i < r->ndests; i++)
    if (r->dests[i].ship)
      r->ships_open++;
  /* Counted first: a ship may finish closing from inside nn_ship_close. */
  for (size_t i = 0; i < r->ndests; i++)
    if (r->dests[i].ship)
      nn_ship_close(r->dests[i].ship, on_ship_closed, &r->dests[i]);
  maybe_finish(r);
}

int nn_remote_dest_stats(const struct nn_remote *r, size_t i, struct nn_remote_dest_stats *out)
{
  if (!r || i >= r->ndests)
    return NN_EINVAL;
  const struct remote_dest *d = &r->dests[i];
  *out = d->st;
  out->series = d->series.n;
  out->series_retired = d->series_retired;
  out->saved_segment = d->persisted.seg;
  out->saved_offset = d->persisted.tok >> IDX_BITS;
  out->cut_loose = d->cut_loose;
  if (d->rd) {
    struct nn_tsdb_wal_reader_stats rs;
    nn_tsdb_wal_reader_stats(d->rd, &rs);
    out->segments_skipped = rs.segments_skipped;
  }
  out->caught_up = false;
  uint32_t first, last, seg;
  uint64_t last_size, off;
  size_t nseg;
  int64_t ckpt;
  if (d->rd && d->idle && !d->in_samples && pos_cmp(d->acked, d->added) == 0 &&
      nn_tsdb_wal_bounds(r->data_dir, &first, &last, &nseg, &last_size, &ckpt) == 0) {
    nn_tsdb_wal_reader_position(d->rd, &seg, &off);
    out->caught_up = nseg == 0 || (seg == last && off == last_size) || seg > last;
  }
  return 0;
}
