/* SPDX-License-Identifier: Apache-2.0 */
/* The tail object: configuration, lifecycle, timers (rescan, parser ticks, checkpoints),
 * back-pressure, acknowledgements and stats, plus the small hash table the module uses. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "agent/tail/internal.h"
#include "common/error.h"
#include "common/log.h"

#define TICK_MS 100

static size_t hslot(const struct nn__tail_htab *h, uint64_t k1, uint64_t k2)
{
  uint64_t k[2] = {k1, k2};
  return (size_t)(XXH3_64bits(k, sizeof(k)) & (h->nb - 1));
}

int nn__tail_hput(struct nn__tail_htab *h, uint64_t k1, uint64_t k2, void *val)
{
  if (h->n >= h->nb) {
    size_t nb = h->nb ? h->nb * 2 : 64;
    struct nn__tail_hent **b = calloc(nb, sizeof(*b));
    if (!b)
      return NN_ENOMEM;
    struct nn__tail_htab nh = {b, nb, h->n};
    for (size_t i = 0; i < h->nb; i++) {
      for (struct nn__tail_hent *e = h->b[i], *next; e; e = next) {
        next = e->next;
        size_t s = hslot(&nh, e->k1, e->k2);
        e->next = b[s];
        b[s] = e;
      }
    }
    free(h->b);
    *h = nh;
  }
  struct nn__tail_hent *e = malloc(sizeof(*e));
  if (!e)
    return NN_ENOMEM;
  size_t s = hslot(h, k1, k2);
  *e = (struct nn__tail_hent){k1, k2, val, h->b[s]};
  h->b[s] = e;
  h->n++;
  return 0;
}

void *nn__tail_hget(const struct nn__tail_htab *h, uint64_t k1, uint64_t k2)
{
  if (!h->nb)
    return NULL;
  for (struct nn__tail_hent *e = h->b[hslot(h, k1, k2)]; e; e = e->next)
    if (e->k1 == k1 && e->k2 == k2)
      return e->val;
  return NULL;
}

void nn__tail_hdel(struct nn__tail_htab *h, uint64_t k1, uint64_t k2)
{
  if (!h->nb)
    return;
  for (struct nn__tail_hent **pp = &h->b[hslot(h, k1, k2)]; *pp; pp = &(*pp)->next) {
    if ((*pp)->k1 == k1 && (*pp)->k2 == k2) {
      struct nn__tail_hent *e = *pp;
      *pp = e->next;
      free(e);
      h->n--;
      return;
    }
  }
}

void nn__tail_hfree(struct nn__tail_htab *h)
{
  for (size_t i = 0; i < h->nb; i++) {
    for (struct nn__tail_hent *e = h->b[i], *next; e; e = next) {
      next = e->next;
      free(e);
    }
  }
  free(h->b);
  *h = (struct nn__tail_htab){0};
}

static void free_strv(char **v, size_t n)
{
  if (!v)
    return;
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

static char **dup_strv(const char *const *v, size_t n)
{
  char **r = calloc(n ? n : 1, sizeof(*r));
  if (!r)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    if (!(r[i] = strdup(v[i]))) {
      free_strv(r, i);
      return NULL;
    }
  }
  return r;
}

void nn__tail_free(struct nn_tail *t)
{
  if (!t)
    return;
  while (t->nfiles)
    nn__tail_file_close(t->files[t->nfiles - 1], false);
  for (size_t i = 0; t->pattern_dirs && i < t->cfg.n_include; i++)
    nn__tail_unwatch_dir(t, t->pattern_dirs[i]);
  for (size_t i = 0; i < t->restored.nb; i++)
    for (struct nn__tail_hent *e = t->restored.b[i]; e; e = e->next)
      free(e->val);
  nn__tail_hfree(&t->restored);
  nn__tail_hfree(&t->by_inode);
  nn__tail_hfree(&t->by_id);
  /* Directories still listed belong to nothing now (their watches die with the fd). */
  for (size_t i = 0; i < t->dirs.nb; i++)
    for (struct nn__tail_hent *e = t->dirs.b[i]; e; e = e->next)
      free(e->val);
  nn__tail_hfree(&t->dirs);
  if (t->ifd >= 0)
    close(t->ifd);
  free_strv(t->include, t->cfg.n_include);
  free_strv(t->exclude, t->cfg.n_exclude);
  free(t->pattern_dirs);
  free(t->files);
  free(t->positions_path);
  free(t->final_ckpt);
  free(t->rbuf);
  free(t);
}

static void on_rescan(uv_timer_t *h)
{
  struct nn_tail *t = h->data;
  nn__tail_scan(t);
  nn__tail_check_files(t);
}

static void on_tick(uv_timer_t *h)
{
  struct nn_tail *t = h->data;
  if (t->paused)
    return;
  uint64_t now = uv_now(t->loop);
  for (size_t i = 0; i < t->nfiles; i++) {
    struct nn__tail_file *f = t->files[i];
    if (nn_parse_pending(f->parser))
      nn_parse_tick(f->parser, now);
  }
}

static void on_ckpt(uv_timer_t *h)
{
  nn__tail_ckpt_write_async(h->data);
}

int nn_tail_create(uv_loop_t *loop, const struct nn_tail_config *cfg, nn_tail_entry_cb cb,
                   void *ctx, struct nn_tail **out, char *err, size_t errlen)
{
  static const char *const def_include[] = {"/var/log/containers/*.log"};
  int rc = 0;
  *out = NULL;
  struct nn_tail *t = calloc(1, sizeof(*t));
  if (!t)
    return NN_ENOMEM;
  t->ifd = -1;
  t->loop = loop;
  t->cb = cb;
  t->ctx = ctx;
  t->cfg = *cfg;
  if (!cfg->n_include) {
    t->cfg.include = def_include;
    t->cfg.n_include = 1;
  }
  struct nn_tail_config *c = &t->cfg;
  if (!c->rescan_interval_ms)
    c->rescan_interval_ms = 1000;
  if (!c->checkpoint_interval_ms)
    c->checkpoint_interval_ms = 1000;
  if (!c->flush_gap_ms)
    c->flush_gap_ms = c->checkpoint_interval_ms;
  if (!c->rotate_settle_ms)
    c->rotate_settle_ms = 2000;
  if (!c->read_chunk)
    c->read_chunk = 65536;
  if (!c->loop_budget)
    c->loop_budget = (size_t)1 << 20;
  if (!c->max_deleted_bytes)
    c->max_deleted_bytes = (uint64_t)1 << 30;
  if (!c->parse.max_line_size)
    c->parse.max_line_size = 256 * 1024;
  if (c->read_chunk < 4096 || c->read_chunk > ((size_t)16 << 20)) {
    snprintf(err, errlen, "tail read_chunk %zu is outside [4KiB, 16MiB]", c->read_chunk);
    rc = NN_ECONFIG;
    goto fail;
  }
  if (c->loop_budget < c->read_chunk)
    c->loop_budget = c->read_chunk;
  for (size_t i = 0; i < c->n_include; i++) {
    if (!c->include[i] || c->include[i][0] != '/') {
      snprintf(err, errlen, "tail include pattern %zu (%s) must be an absolute path", i,
               c->include[i] ? c->include[i] : "null");
      rc = NN_ECONFIG;
      goto fail;
    }
  }
  /* Raw lines may exceed the message cap by their framing (CRI prefix, JSON escapes). */
  t->raw_max = c->parse.max_line_size + 65536;
  t->include = dup_strv(c->include, c->n_include);
  t->exclude = dup_strv(c->exclude, c->n_exclude);
  t->pattern_dirs = calloc(c->n_include, sizeof(*t->pattern_dirs));
  t->rbuf = malloc(c->read_chunk);
  if (!t->include || !t->exclude || !t->pattern_dirs || !t->rbuf) {
    rc = NN_ENOMEM;
    goto fail;
  }
  if (c->data_dir) {
    size_t n = strlen(c->data_dir) + sizeof("/positions");
    struct stat st;
    if (stat(c->data_dir, &st) < 0 && mkdir(c->data_dir, 0755) < 0) {
      snprintf(err, errlen, "tail data_dir %s: %s", c->data_dir, strerror(errno));
      rc = NN_ECONFIG;
      goto fail;
    }
    if (!(t->positions_path = malloc(n))) {
      rc = NN_ENOMEM;
      goto fail;
    }
    snprintf(t->positions_path, n, "%s/positions", c->data_dir);
    if ((rc = nn__tail_ckpt_load(t)) < 0) {
      snprintf(err, errlen, "tail positions %s: %s", t->positions_path, nn_strerror(rc));
      goto fail;
    }
  }
  c->data_dir = NULL; /* not owned; positions_path holds what we need */
  c->include = (const char *const *)t->include;
  c->exclude = (const char *const *)t->exclude;
  t->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (t->ifd < 0) {
    rc = NN_ERRNO(errno);
    snprintf(err, errlen, "inotify_init1: %s", strerror(errno));
    goto fail;
  }
  /* Handles last: from here on the object can only be freed through the loop. */
  if ((rc = uv_poll_init(loop, &t->ipoll, t->ifd)) < 0) {
    snprintf(err, errlen, "uv_poll_init: %s", uv_strerror(rc));
    goto fail;
  }
  uv_idle_init(loop, &t->reader);
  uv_timer_init(loop, &t->rescan_timer);
  uv_timer_init(loop, &t->soon_timer);
  uv_timer_init(loop, &t->tick_timer);
  uv_timer_init(loop, &t->ckpt_timer);
  uv_timer_init(loop, &t->flush_timer);
  t->ipoll.data = t->reader.data = t->rescan_timer.data = t->soon_timer.data = t;
  t->tick_timer.data = t->ckpt_timer.data = t->flush_timer.data = t;
  t->open_handles = 7;
  *out = t;
  return 0;
fail:
  nn__tail_free(t);
  return rc;
}

int nn_tail_start(struct nn_tail *t)
{
  int rc;
  if (t->started)
    return 0;
  t->started = true;
  if ((rc = uv_poll_start(&t->ipoll, UV_READABLE, nn__tail_on_inotify)) < 0)
    return rc;
  nn__tail_scan(t);
  nn__tail_check_files(t);
  uv_timer_start(&t->rescan_timer, on_rescan, t->cfg.rescan_interval_ms, t->cfg.rescan_interval_ms);
  uv_timer_start(&t->tick_timer, on_tick, TICK_MS, TICK_MS);
  if (t->positions_path)
    uv_timer_start(&t->ckpt_timer, on_ckpt, t->cfg.checkpoint_interval_ms,
                   t->cfg.checkpoint_interval_ms);
  nn__tail_wake_reader(t);
  return 0;
}

static void on_close(uv_handle_t *h)
{
  struct nn_tail *t = h->data;
  if (--t->open_handles == 0)
    nn__tail_free(t);
}

void nn_tail_destroy(struct nn_tail *t)
{
  if (!t || t->destroying)
    return;
  if (t->positions_path && t->first_scan_done)
    nn__tail_ckpt_write_final(t);
  t->destroying = true;
  while (t->nfiles)
    nn__tail_file_close(t->files[t->nfiles - 1], false);
  uv_close((uv_handle_t *)&t->ipoll, on_close);
  uv_close((uv_handle_t *)&t->reader, on_close);
  uv_close((uv_handle_t *)&t->rescan_timer, on_close);
  uv_close((uv_handle_t *)&t->soon_timer, on_close);
  uv_close((uv_handle_t *)&t->tick_timer, on_close);
  uv_close((uv_handle_t *)&t->ckpt_timer, on_close);
  uv_close((uv_handle_t *)&t->flush_timer, on_close);
}

void nn_tail_pause(struct nn_tail *t)
{
  if (t->paused)
    return;
  t->paused = true;
  uv_idle_stop(&t->reader);
}

void nn_tail_resume(struct nn_tail *t)
{
  if (!t->paused)
    return;
  t->paused = false;
  nn__tail_wake_reader(t);
}

bool nn_tail_paused(const struct nn_tail *t)
{
  return t->paused;
}

int nn_tail_ack(struct nn_tail *t, uint64_t file_id, uint64_t offset)
{
  struct nn__tail_file *f = nn__tail_hget(&t->by_id, file_id, 0);
  if (!f)
    return NN_ENOTFOUND;
  if (offset > f->read_off)
    return NN_EINVAL;
  if (offset > f->acked) {
    f->acked = offset;
    t->ckpt_dirty = true;
  }
  return 0;
}

static void on_flush_timer(uv_timer_t *h)
{
  nn__tail_flush_follow(h->data);
}

void nn__tail_flush_follow(struct nn_tail *t)
{
  if (!t->positions_path || t->destroying || !t->ckpt_dirty)
    return;
  if (t->ckpt_busy) {
    t->ckpt_follow = true; /* on_ckpt_done comes back here */
    return;
  }
  uint64_t now = uv_now(t->loop);
  uint64_t due = t->ckpt_started_ms + t->cfg.flush_gap_ms;
  if (t->ckpt_started_ms != 0 && now < due) {
    if (!uv_is_active((uv_handle_t *)&t->flush_timer))
      uv_timer_start(&t->flush_timer, on_flush_timer, due - now, 0);
    return;
  }
  uv_timer_stop(&t->flush_timer);
  nn__tail_ckpt_write_async(t);
}

void nn_tail_flush_acks(struct nn_tail *t)
{
  nn__tail_flush_follow(t);
}

int nn_tail_checkpoint(struct nn_tail *t)
{
  return nn__tail_ckpt_write_sync(t);
}

void nn_tail_rescan(struct nn_tail *t)
{
  nn__tail_scan(t);
  nn__tail_check_files(t);
}

void nn_tail_get_stats(const struct nn_tail *t, struct nn_tail_stats *out)
{
  *out = t->stats;
  out->files_watched = t->nfiles;
  out->unread_bytes = 0;
  for (size_t i = 0; i < t->nfiles; i++) {
    struct stat st;
    const struct nn__tail_file *f = t->files[i];
    if (f->fd >= 0 && fstat(f->fd, &st) == 0 && (uint64_t)st.st_size > f->read_off)
      out->unread_bytes += (uint64_t)st.st_size - f->read_off;
  }
}
