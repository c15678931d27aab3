/* SPDX-License-Identifier: Apache-2.0 */
/* Discovery: glob patterns, exclusions, ignore_older, Kubernetes metadata from file names,
 * and one inotify watch per directory (the glob's directory and each file's resolved
 * directory, since /var/log/containers entries are symlinks into /var/log/pods). inotify
 * only says where to look; the scan itself decides, so a missed or overflowed event costs
 * latency (until the periodic rescan), never data. */
#include <errno.h>
#include <fnmatch.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/tail/internal.h"
#include "common/error.h"
#include "common/log.h"

#define DIR_MASK                                                                                   \
  (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE |              \
   IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

static const char *put(char **s, const char *p, size_t n)
{
  const char *r = *s;
  memcpy(*s, p, n);
  (*s)[n] = '\0';
  *s += n + 1;
  return r;
}

size_t nn_tail_path_labels(const char *path, struct nn_label *labels, char *store, size_t storelen)
{
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  size_t blen = strlen(base);
  const char *pod = NULL, *ns = NULL, *ctr = NULL, *cid = NULL;
  size_t podn = 0, nsn = 0, ctrn = 0, cidn = 0;
  char *s = store;
  /* The filename label holds the whole path; the other labels are pieces of it (at most the
   * path again), each with a NUL. */
  if (storelen < 2 * strlen(path) + 8)
    return 0;
  const char *u1 = memchr(base, '_', blen);
  const char *u2 = u1 ? memchr(u1 + 1, '_', blen - (size_t)(u1 + 1 - base)) : NULL;
  if (blen > 4 && memcmp(base + blen - 4, ".log", 4) == 0 && u2 &&
      !memchr(u2 + 1, '_', blen - (size_t)(u2 + 1 - base))) {
    /* <pod>_<namespace>_<container>-<containerid>.log */
    const char *rest = u2 + 1, *rend = base + blen - 4;
    const char *dash = NULL;
    for (const char *q = rest; q < rend; q++)
      if (*q == '-')
        dash = q;
    if (dash && dash > rest && dash + 1 < rend && u1 > base && u2 > u1 + 1) {
      pod = base, podn = (size_t)(u1 - base);
      ns = u1 + 1, nsn = (size_t)(u2 - u1 - 1);
      ctr = rest, ctrn = (size_t)(dash - rest);
      cid = dash + 1, cidn = (size_t)(rend - dash - 1);
    }
  } else if (base > path + 1) {
    /* /var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log */
    size_t digits = 0;
    while (digits < blen && base[digits] >= '0' && base[digits] <= '9')
      digits++;
    const char *cend = base - 1, *cbeg = cend;
    while (cbeg > path && cbeg[-1] != '/')
      cbeg--;
    const char *pend = cbeg > path ? cbeg - 1 : NULL, *pbeg = pend;
    while (pbeg && pbeg > path && pbeg[-1] != '/')
      pbeg--;
    if (digits > 0 && blen == digits + 4 && memcmp(base + digits, ".log", 4) == 0 && pend &&
        cend > cbeg) {
      const char *a = memchr(pbeg, '_', (size_t)(pend - pbeg));
      const char *b = a ? memchr(a + 1, '_', (size_t)(pend - a - 1)) : NULL;
      if (a && b && a > pbeg && b > a + 1 && b + 1 < pend) {
        ns = pbeg, nsn = (size_t)(a - pbeg);
        pod = a + 1, podn = (size_t)(b - a - 1);
        ctr = cbeg, ctrn = (size_t)(cend - cbeg);
      }
    }
  }
  size_t n = 0;
  if (ctr)
    labels[n++] = (struct nn_label){"container", put(&s, ctr, ctrn)};
  if (cid)
    labels[n++] = (struct nn_label){"container_id", put(&s, cid, cidn)};
  labels[n++] = (struct nn_label){"filename", put(&s, path, strlen(path))};
  if (ns)
    labels[n++] = (struct nn_label){"namespace", put(&s, ns, nsn)};
  if (pod)
    labels[n++] = (struct nn_label){"pod", put(&s, pod, podn)};
  return n;
}

int nn__tail_watch_dir(struct nn_tail *t, const char *dir, struct nn__tail_dir **out)
{
  *out = NULL;
  int wd = inotify_add_watch(t->ifd, dir, DIR_MASK);
  if (wd < 0) {
    /* ENOSPC: fs.inotify.max_user_watches is exhausted. The periodic rescan and stat
     * checks still find everything, only later. */
    NN_LOG_RL(NN_LOG_WARN, "tail", "inotify watch on %s: %s (falling back to the rescan)", dir,
              strerror(errno));
    return NN_ERRNO(errno);
  }
  struct nn__tail_dir *d = nn__tail_hget(&t->dirs, (uint64_t)wd, 0);
  if (!d) {
    d = calloc(1, sizeof(*d));
    if (!d || nn__tail_hput(&t->dirs, (uint64_t)wd, 0, d) < 0) {
      free(d);
      inotify_rm_watch(t->ifd, wd);
      return NN_ENOMEM;
    }
    d->wd = wd;
  }
  d->refs++;
  *out = d;
  return 0;
}

void nn__tail_unwatch_dir(struct nn_tail *t, struct nn__tail_dir *d)
{
  if (!d || --d->refs > 0)
    return;
  if (d->wd >= 0) {
    nn__tail_hdel(&t->dirs, (uint64_t)d->wd, 0);
    inotify_rm_watch(t->ifd, d->wd);
  }
  free(d);
}

static void on_soon(uv_timer_t *h)
{
  nn__tail_scan(h->data);
}

static void rescan_soon(struct nn_tail *t)
{
  /* Debounced: a burst of creates (a node starting many pods) costs one scan. */
  if (!uv_is_active((uv_handle_t *)&t->soon_timer))
    uv_timer_start(&t->soon_timer, on_soon, 5, 0);
}

void nn__tail_on_inotify(uv_poll_t *h, int status, int events)
{
  struct nn_tail *t = h->data;
  char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
  for (;;) {
    ssize_t n = read(t->ifd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (n < 0 && errno != EAGAIN)
        NN_LOG_RL(NN_LOG_ERROR, "tail", "reading inotify: %s", strerror(errno));
      return;
    }
    for (char *p = buf; p < buf + n;) {
      struct inotify_event *ev = (struct inotify_event *)p;
      p += sizeof(*ev) + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) {
        t->stats.inotify_overflows++;
        NN_LOG_RL(NN_LOG_WARN, "tail", "inotify queue overflow; rescanning every file");
        for (size_t i = 0; i < t->nfiles; i++)
          nn__tail_file_wake(t->files[i]);
        rescan_soon(t);
        continue;
      }
      struct nn__tail_dir *d = nn__tail_hget(&t->dirs, (uint64_t)ev->wd, 0);
      if (!d)
        continue;
      if (ev->mask & IN_IGNORED) {
        /* The directory is gone; files keep their reference until they close. */
        nn__tail_hdel(&t->dirs, (uint64_t)ev->wd, 0);
        d->wd = -1;
        continue;
      }
      if (ev->mask & (IN_MODIFY | IN_CLOSE_WRITE)) {
        for (struct nn__tail_file *f = d->files; f; f = f->dnext[f->dir[0] == d ? 0 : 1])
          nn__tail_file_wake(f);
      }
      if (ev->mask &
          (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF))
        rescan_soon(t);
    }
  }
}

static bool excluded(const struct nn_tail *t, const char *path)
{
  for (size_t i = 0; i < t->cfg.n_exclude; i++)
    if (fnmatch(t->exclude[i], path, 0) == 0)
      return true;
  return false;
}

/* Glob's fixed leading directory, watched so new files show up at once. Retried on every
 * scan while it does not exist yet. */
static void watch_pattern_dir(struct nn_tail *t, size_t i)
{
  char dir[4096];
  const char *pattern = t->include[i];
  const char *slash = strrchr(pattern, '/');
  if (!slash || (size_t)(slash - pattern) >= sizeof(dir))
    return;
  size_t n = slash == pattern ? 1 : (size_t)(slash - pattern);
  memcpy(dir, pattern, n);
  dir[n] = '\0';
  if (strpbrk(dir, "*?[\\"))
    return;
  (void)nn__tail_watch_dir(t, dir, &t->pattern_dirs[i]);
}

void nn__tail_scan(struct nn_tail *t)
{
  struct stat st, fst;
  t->stats.rescans++;
  /* Existing files first: a path that now names another inode was rotated by rename. */
  for (size_t i = 0; i < t->nfiles; i++) {
    struct nn__tail_file *f = t->files[i];
    if (f->state != NN__TAIL_ACTIVE)
      continue;
    if (stat(f->path, &st) == 0 && (uint64_t)st.st_dev == f->dev && (uint64_t)st.st_ino == f->ino)
      continue;
    if (fstat(f->fd, &fst) == 0 && fst.st_nlink == 0) {
      f->state = NN__TAIL_DELETED;
      nn_debug("tail", "%s deleted; draining", f->path);
    } else {
      f->state = NN__TAIL_ROTATED;
      t->stats.rotations_rename++;
      nn_debug("tail", "%s rotated by rename; draining the old file", f->path);
    }
    nn__tail_file_wake(f);
  }
  time_t now = time(NULL);
  for (size_t i = 0; i < t->cfg.n_include; i++) {
    glob_t g;
    if (!t->pattern_dirs[i])
      watch_pattern_dir(t, i);
    int rc = glob(t->include[i], 0, NULL, &g);
    if (rc != 0) {
      if (rc != GLOB_NOMATCH)
        NN_LOG_RL(NN_LOG_WARN, "tail", "glob %s failed (%d)", t->include[i], rc);
      globfree(&g);
      continue;
    }
    for (size_t k = 0; k < g.gl_pathc; k++) {
      const char *path = g.gl_pathv[k];
      if (excluded(t, path) || stat(path, &st) < 0 || !S_ISREG(st.st_mode))
        continue;
      if (nn__tail_hget(&t->by_inode, (uint64_t)st.st_dev, (uint64_t)st.st_ino))
        continue;
      if (t->cfg.ignore_older_ms && (uint64_t)(now - st.st_mtime) * 1000 > t->cfg.ignore_older_ms)
        continue;
      (void)nn__tail_file_open(t, path, &st, !t->first_scan_done);
    }
    globfree(&g);
  }
  if (!t->first_scan_done) {
    /* Positions for files that no longer exist are dropped with the next write. */
    t->first_scan_done = true;
    for (size_t i = 0; i < t->restored.nb; i++)
      for (struct nn__tail_hent *e = t->restored.b[i]; e; e = e->next)
        free(e->val);
    nn__tail_hfree(&t->restored);
  }
}
