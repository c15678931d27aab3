/* SPDX-License-Identifier: Apache-2.0 */
/* file_sd_configs: target groups from JSON or YAML files ([{targets: [...], labels: {...}}]),
 * as Prometheus's discovery/file. Files are re-read when their mtime, size or inode change,
 * checked every refresh_interval and, sooner, when inotify reports a change in one of their
 * directories. A file that fails to parse keeps its previous targets, as in Prometheus.
 * Target files are small local files, read synchronously with a size cap. */
#include <glob.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/scrape/internal.h"
#include "common/error.h"
#include "common/log.h"
#include "common/yaml.h"

#define FILE_SD_MAX_BYTES (4u << 20)
#define FILE_SD_MAX_FILES 1024

struct sd_file {
  char *path;
  struct stat st;
  struct nn__scrape_dtarget *targets;
  size_t n;
  bool seen;
};

struct fsd {
  struct nn__scrape_provider *p; /* not valid once stopped: the job frees it */
  struct nn_scrape *s;
  const struct nn_scrape_file_sd_config *cfg;
  uv_timer_t timer;
  uv_fs_event_t *events;
  size_t nevents;
  size_t open;
  struct sd_file *files;
  size_t nfiles;
};

static int add_group(const char *path, const char *const *targets, size_t nt,
                     const struct nn_cfg_strmap *labels, struct nn__scrape_dtarget **v, size_t *n,
                     size_t *cap)
{
  for (size_t i = 0; i < nt; i++) {
    if (*n == *cap) {
      size_t c = *cap ? *cap * 2 : 16;
      struct nn__scrape_dtarget *x = realloc(*v, c * sizeof(*x));
      if (!x)
        return NN_ENOMEM;
      *v = x;
      *cap = c;
    }
    const char *pairs[4] = {"__address__", targets[i], "__meta_filepath", path};
    if (nn__scrape_dtarget_make(&(*v)[*n], pairs, 2, labels) < 0)
      return NN_ENOMEM;
    (*n)++;
  }
  return 0;
}

static bool has_ext(const char *p, const char *ext)
{
  size_t a = strlen(p), b = strlen(ext);
  return a >= b && strcmp(p + a - b, ext) == 0;
}

static int parse_json(const char *path, const char *text, size_t len, struct nn__scrape_dtarget **v,
                      size_t *n, size_t *cap, char *err, size_t errlen)
{
  json_error_t je;
  int rc = 0;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (!root) {
    snprintf(err, errlen, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    return NN_EINVAL;
  }
  if (!json_is_array(root)) {
    snprintf(err, errlen, "%s: expected a list of target groups", path);
    rc = NN_EINVAL;
    goto out;
  }
  size_t gi;
  json_t *g;
  json_array_foreach(root, gi, g)
  {
    json_t *tg = json_object_get(g, "targets"), *lb = json_object_get(g, "labels");
    if (!json_is_object(g) || !json_is_array(tg) ||
        (lb && !json_is_object(lb) && !json_is_null(lb))) {
      snprintf(err, errlen, "%s: group %zu: expected {\"targets\": [...], \"labels\": {...}}", path,
               gi);
      rc = NN_EINVAL;
      goto out;
    }
    size_t nt = json_array_size(tg), nl = json_is_object(lb) ? json_object_size(lb) : 0;
    const char **ts = calloc(nt + 1, sizeof(char *));
    char **keys = calloc(nl + 1, sizeof(char *)), **vals = calloc(nl + 1, sizeof(char *));
    if (!ts || !keys || !vals) {
      free(ts);
      free(keys);
      free(vals);
      rc = NN_ENOMEM;
      goto out;
    }
    for (size_t i = 0; i < nt && rc == 0; i++) {
      ts[i] = json_string_value(json_array_get(tg, i));
      if (!ts[i]) {
        snprintf(err, errlen, "%s: group %zu: targets must be strings", path, gi);
        rc = NN_EINVAL;
      }
    }
    size_t k = 0;
    const char *key;
    json_t *val;
    if (json_is_object(lb)) {
      json_object_foreach(lb, key, val)
      {
        if (rc == 0 && (!json_is_string(val) || !nn_label_name_valid(key, strlen(key)))) {
          snprintf(err, errlen, "%s: group %zu: invalid label \"%s\"", path, gi, key);
          rc = NN_EINVAL;
        }
        keys[k] = (char *)key;
        vals[k] = (char *)(json_string_value(val) ? json_string_value(val) : "");
        k++;
      }
    }
    struct nn_cfg_strmap m = {keys, vals, k};
    if (rc == 0)
      rc = add_group(path, ts, nt, &m, v, n, cap);
    free(ts);
    free(keys);
    free(vals);
    if (rc < 0)
      goto out;
  }
out:
  json_decref(root);
  return rc;
}

static int parse_yaml(const char *path, const char *text, size_t len, struct nn__scrape_dtarget **v,
                      size_t *n, size_t *cap, char *err, size_t errlen)
{
  struct nn_yaml_doc *doc = NULL;
  struct nn_yaml_error ye;
  int rc = nn_yaml_load_string(path, text, len, &doc, &ye);
  if (rc < 0) {
    nn_yaml_error_format(&ye, err, errlen);
    return NN_EINVAL;
  }
  const struct nn_yaml_node *root = doc->root;
  if (root->kind == NN_YAML_NULL)
    goto out;
  if (root->kind != NN_YAML_SEQ) {
    snprintf(err, errlen, "%s:%d:%d: expected a list of target groups", path, root->line,
             root->col);
    rc = NN_EINVAL;
    goto out;
  }
  for (size_t gi = 0; gi < root->len && rc == 0; gi++) {
    const struct nn_yaml_node *g = root->items[gi];
    const struct nn_yaml_node *tg = nn_yaml_map_get(g, "targets"),
                              *lb = nn_yaml_map_get(g, "labels");
    if (g->kind != NN_YAML_MAP || !tg || tg->kind != NN_YAML_SEQ ||
        (lb && lb->kind != NN_YAML_MAP && lb->kind != NN_YAML_NULL)) {
      snprintf(err, errlen, "%s:%d:%d: expected {targets: [...], labels: {...}}", path, g->line,
               g->col);
      rc = NN_EINVAL;
      break;
    }
    size_t nl = lb ? lb->len : 0;
    const char **ts = calloc(tg->len + 1, sizeof(char *));
    char **keys = calloc(nl + 1, sizeof(char *)), **vals = calloc(nl + 1, sizeof(char *));
    if (!ts || !keys || !vals)
      rc = NN_ENOMEM;
    for (size_t i = 0; rc == 0 && i < tg->len; i++) {
      if (tg->items[i]->kind != NN_YAML_SCALAR) {
        snprintf(err, errlen, "%s:%d:%d: targets must be strings", path, tg->items[i]->line,
                 tg->items[i]->col);
        rc = NN_EINVAL;
      } else {
        ts[i] = tg->items[i]->scalar;
      }
    }
    for (size_t i = 0; rc == 0 && i < nl; i++) {
      const struct nn_yaml_node *k = lb->keys[i], *x = lb->items[i];
      if (k->kind != NN_YAML_SCALAR || !nn_label_name_valid(k->scalar, k->scalar_len) ||
          (x->kind != NN_YAML_SCALAR && x->kind != NN_YAML_NULL)) {
        snprintf(err, errlen, "%s:%d:%d: invalid label", path, k->line, k->col);
        rc = NN_EINVAL;
        break;
      }
      keys[i] = k->scalar;
      vals[i] = x->scalar ? x->scalar : (char *)"";
    }
    struct nn_cfg_strmap m = {keys, vals, nl};
    if (rc == 0)
      rc = add_group(path, ts, tg->len, &m, v, n, cap);
    free(ts);
    free(keys);
    free(vals);
  }
out:
  nn_yaml_doc_destroy(doc);
  return rc;
}

int nn__scrape_file_sd_parse(const char *path, const char *text, size_t len,
                             struct nn__scrape_dtarget **out, size_t *n, char *err, size_t errlen)
{
  struct nn__scrape_dtarget *v = NULL;
  size_t cnt = 0, cap = 0;
  int rc;
  if (has_ext(path, ".json"))
    rc = parse_json(path, text, len, &v, &cnt, &cap, err, errlen);
  else if (has_ext(path, ".yml") || has_ext(path, ".yaml"))
    rc = parse_yaml(path, text, len, &v, &cnt, &cap, err, errlen);
  else {
    snprintf(err, errlen, "%s: file_sd files must end in .json, .yml or .yaml", path);
    rc = NN_EINVAL;
  }
  if (rc < 0) {
    nn__scrape_dtargets_free(v, cnt);
    return rc;
  }
  *out = v;
  *n = cnt;
  return 0;
}

static int read_file(const char *path, char **text, size_t *len)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return NN_EIO;
  char *b = malloc(FILE_SD_MAX_BYTES + 1);
  if (!b) {
    fclose(f);
    return NN_ENOMEM;
  }
  size_t n = fread(b, 1, FILE_SD_MAX_BYTES + 1, f);
  fclose(f);
  if (n > FILE_SD_MAX_BYTES) {
    free(b);
    return NN_ETOOBIG;
  }
  b[n] = '\0';
  *text = b;
  *len = n;
  return 0;
}

static void refresh(struct fsd *d)
{
  bool changed = false;
  for (size_t i = 0; i < d->nfiles; i++)
    d->files[i].seen = false;
  for (size_t pi = 0; pi < d->cfg->files.n; pi++) {
    glob_t g;
    if (glob(d->cfg->files.v[pi], 0, NULL, &g) != 0)
      continue;
    for (size_t gi = 0; gi < g.gl_pathc; gi++) {
      const char *path = g.gl_pathv[gi];
      struct stat st;
      if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        continue;
      struct sd_file *f = NULL;
      for (size_t i = 0; i < d->nfiles && !f; i++)
        if (strcmp(d->files[i].path, path) == 0)
          f = &d->files[i];
      if (!f) {
        if (d->nfiles >= FILE_SD_MAX_FILES)
          continue;
        struct sd_file *nf = realloc(d->files, (d->nfiles + 1) * sizeof(*nf));
        if (!nf)
          continue;
        d->files = nf;
        f = &d->files[d->nfiles];
        memset(f, 0, sizeof(*f));
        if (!(f->path = strdup(path)))
          continue;
        d->nfiles++;
      }
      f->seen = true;
      if (f->st.st_mtim.tv_sec == st.st_mtim.tv_sec &&
          f->st.st_mtim.tv_nsec == st.st_mtim.tv_nsec && f->st.st_size == st.st_size &&
          f->st.st_ino == st.st_ino)
        continue;
      char *text = NULL, err[512] = "";
      size_t len = 0;
      struct nn__scrape_dtarget *v = NULL;
      size_t n = 0;
      int rc = read_file(path, &text, &len);
      if (rc == 0)
        rc = nn__scrape_file_sd_parse(path, text, len, &v, &n, err, sizeof(err));
      free(text);
      if (rc < 0) {
        d->s->stats.discovery_errors++;
        NN_LOG_RL(NN_LOG_WARN, "scrape", "file_sd: %s (keeping its previous targets)",
                  err[0] ? err : nn_strerror(rc));
        continue; /* retried when the file changes again */
      }
      f->st = st;
      nn__scrape_dtargets_free(f->targets, f->n);
      f->targets = v;
      f->n = n;
      changed = true;
    }
    globfree(&g);
  }
  size_t o = 0, total = 0;
  for (size_t i = 0; i < d->nfiles; i++) {
    if (!d->files[i].seen) {
      nn__scrape_dtargets_free(d->files[i].targets, d->files[i].n);
      free(d->files[i].path);
      changed = true;
      continue;
    }
    total += d->files[i].n;
    d->files[o++] = d->files[i];
  }
  d->nfiles = o;
  if (!changed)
    return;
  struct nn__scrape_dtarget *all = calloc(total ? total : 1, sizeof(*all));
  if (!all)
    return;
  size_t k = 0;
  for (size_t i = 0; i < d->nfiles; i++) {
    for (size_t j = 0; j < d->files[i].n; j++) {
      const struct nn__scrape_dtarget *t = &d->files[i].targets[j];
      const char **pairs = malloc(2 * t->n * sizeof(char *) + 1);
      if (!pairs)
        continue;
      for (size_t x = 0; x < t->n; x++) {
        pairs[2 * x] = t->labels[x].name;
        pairs[2 * x + 1] = t->labels[x].value;
      }
      if (nn__scrape_dtarget_make(&all[k], pairs, t->n, NULL) == 0)
        k++;
      free(pairs);
    }
  }
  nn__scrape_provider_update(d->p, all, k);
}

static uint64_t every(const struct fsd *d)
{
  return d->cfg->refresh_interval_ms > 0 ? (uint64_t)d->cfg->refresh_interval_ms : 300000;
}

static void on_timer(uv_timer_t *t)
{
  refresh(t->data);
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
  struct fsd *d = h->data;
  /* Editors write in several steps: wait a moment, then re-read, then resume polling. */
  uv_timer_start(&d->timer, on_timer, 200, every(d));
}

static void on_closed(uv_handle_t *h)
{
  struct fsd *d = h->data;
  struct nn_scrape *s = d->s;
  if (--d->open == 0) {
    for (size_t i = 0; i < d->nfiles; i++) {
      nn__scrape_dtargets_free(d->files[i].targets, d->files[i].n);
      free(d->files[i].path);
    }
    free(d->files);
    free(d->events);
    free(d);
  }
  nn__scrape_handle_closed(s);
}

static void fsd_stop(void *impl)
{
  struct fsd *d = impl;
  struct nn_scrape *s = d->s;
  uv_timer_stop(&d->timer);
  s->closing++;
  uv_close((uv_handle_t *)&d->timer, on_closed);
  for (size_t i = 0; i < d->nevents; i++) {
    uv_fs_event_stop(&d->events[i]);
    s->closing++;
    uv_close((uv_handle_t *)&d->events[i], on_closed);
  }
}

int nn__scrape_file_sd_start(struct nn__scrape_provider *p,
                             const struct nn_scrape_file_sd_config *cfg)
{
  struct fsd *d = calloc(1, sizeof(*d));
  uv_loop_t *loop = p->job->s->loop;
  if (!d || !(d->events = calloc(cfg->files.n + 1, sizeof(*d->events)))) {
    free(d);
    return NN_ENOMEM;
  }
  d->p = p;
  d->s = p->job->s;
  d->cfg = cfg;
  uv_timer_init(loop, &d->timer);
  d->timer.data = d;
  d->open = 1;
  for (size_t i = 0; i < cfg->files.n; i++) {
    char *copy = strdup(cfg->files.v[i]);
    if (!copy)
      continue;
    const char *dir = dirname(copy);
    bool dup = false;
    for (size_t k = 0; k < i && !dup; k++) {
      char *c2 = strdup(cfg->files.v[k]);
      dup = c2 && strcmp(dirname(c2), dir) == 0;
      free(c2);
    }
    if (!dup && !strpbrk(dir, "*?[")) {
      uv_fs_event_t *ev = &d->events[d->nevents];
      uv_fs_event_init(loop, ev);
      ev->data = d;
      d->open++;
      d->nevents++;
      if (uv_fs_event_start(ev, on_fs_event, dir, 0) < 0)
        nn_warn("scrape", "file_sd: cannot watch %s; relying on refresh_interval", dir);
    }
    free(copy);
  }
  p->impl = d;
  p->stop = fsd_stop;
  uv_timer_start(&d->timer, on_timer, 0, every(d));
  return 0;
}
