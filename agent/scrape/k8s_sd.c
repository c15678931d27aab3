/* SPDX-License-Identifier: Apache-2.0 */
/* kubernetes_sd_configs, role pod, for the pods of one node: a list of
 * /api/v1/pods?fieldSelector=spec.nodeName=<node>, then watches from its resourceVersion.
 * The HTTP client hands over whole bodies, so each watch asks the API server to end it
 * after watch_timeout (timeoutSeconds) and its events are applied when it ends; a full
 * re-list runs every resync_interval and after any error (410 Gone included). Targets and
 * __meta_kubernetes_pod_* labels are those of Prometheus's pod role; with annotations on,
 * the usual prometheus.io/scrape|port|path|scheme convention is applied on top. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/scrape/internal.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/log.h"
#include "common/urlenc.h"

#define RETRY_MS     5000
#define MAX_POD_META 512

struct pod {
  char *key; /* namespace/name */
  struct nn__scrape_dtarget *targets;
  size_t n;
};

struct k8s {
  struct nn__scrape_provider *p; /* not valid once stopped: the job frees it */
  struct nn_scrape *s;
  const struct nn_scrape_k8s_sd_config *cfg;
  struct nn_http_client *http;
  uv_timer_t timer;
  bool timer_open, inflight, stopping;
  char *base; /* https://host:port */
  char *node;
  char rv[128];
  int64_t last_list_ms;
  struct pod *pods;
  size_t npods, podcap;
};

/* ---- pod → targets ---- */

struct kv {
  const char *pairs[2 * MAX_POD_META];
  char *owned[MAX_POD_META];
  size_t n, nowned;
};

static void kv_add(struct kv *k, const char *name, const char *value)
{
  if (k->n < MAX_POD_META && name && value) {
    k->pairs[2 * k->n] = name;
    k->pairs[2 * k->n + 1] = value;
    k->n++;
  }
}

static const char *kv_own(struct kv *k, char *s)
{
  if (!s)
    return NULL;
  if (k->nowned >= MAX_POD_META) {
    free(s);
    return NULL;
  }
  k->owned[k->nowned++] = s;
  return s;
}

static void kv_free(struct kv *k)
{
  for (size_t i = 0; i < k->nowned; i++)
    free(k->owned[i]);
  k->nowned = 0;
}

static const char *jstr(const json_t *o, const char *key)
{
  return json_string_value(json_object_get(o, key));
}

/* prefix + name with every byte outside [a-zA-Z0-9_] replaced by '_' (SanitizeLabelName). */
static char *sanitized(const char *prefix, const char *name)
{
  size_t a = strlen(prefix), b = strlen(name);
  char *s = malloc(a + b + 1);
  if (!s)
    return NULL;
  memcpy(s, prefix, a);
  for (size_t i = 0; i < b; i++) {
    char c = name[i];
    s[a + i] = (char)(((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '_')
                          ? c
                          : '_');
  }
  s[a + b] = '\0';
  return s;
}

static void add_map(struct kv *k, const json_t *m, const char *prefix, const char *present)
{
  const char *key;
  json_t *val;
  if (!json_is_object(m))
    return;
  json_object_foreach((json_t *)m, key, val)
  {
    if (!json_is_string(val))
      continue;
    kv_add(k, kv_own(k, sanitized(prefix, key)), json_string_value(val));
    kv_add(k, kv_own(k, sanitized(present, key)), "true");
  }
}

static char *host_port(const char *ip, const char *port)
{
  size_t n = strlen(ip) + strlen(port) + 4;
  char *s = malloc(n);
  if (s)
    snprintf(s, n, strchr(ip, ':') ? "[%s]:%s" : "%s:%s", ip, port);
  return s;
}

static int push_target(struct kv *k, size_t base_n, struct nn__scrape_dtarget **v, size_t *n,
                       size_t *cap)
{
  if (*n == *cap) {
    size_t c = *cap ? *cap * 2 : 8;
    struct nn__scrape_dtarget *x = realloc(*v, c * sizeof(*x));
    if (!x)
      return NN_ENOMEM;
    *v = x;
    *cap = c;
  }
  int rc = nn__scrape_dtarget_make(&(*v)[*n], k->pairs, k->n, NULL);
  if (rc == 0)
    (*n)++;
  k->n = base_n; /* drop the container-level pairs */
  return rc;
}

int nn__scrape_k8s_pod_targets(const struct json_t *pod, bool annotations,
                               struct nn__scrape_dtarget **out, size_t *nout)
{
  const json_t *meta = json_object_get(pod, "metadata"), *spec = json_object_get(pod, "spec"),
               *status = json_object_get(pod, "status");
  const json_t *ann = json_object_get(meta, "annotations");
  const char *ip = jstr(status, "podIP"), *phase = jstr(status, "phase");
  struct nn__scrape_dtarget *v = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  struct kv *k;

  *out = NULL;
  *nout = 0;
  if (!ip || !*ip || (phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0)))
    return 0;
  const char *a_scrape = jstr(ann, "prometheus.io/scrape"),
             *a_port = jstr(ann, "prometheus.io/port");
  const char *a_path = jstr(ann, "prometheus.io/path"),
             *a_scheme = jstr(ann, "prometheus.io/scheme");
  if (annotations && !(a_scrape && strcmp(a_scrape, "true") == 0))
    return 0;
  if (!(k = calloc(1, sizeof(*k))))
    return NN_ENOMEM;

  kv_add(k, "__meta_kubernetes_namespace", jstr(meta, "namespace"));
  kv_add(k, "__meta_kubernetes_pod_name", jstr(meta, "name"));
  kv_add(k, "__meta_kubernetes_pod_ip", ip);
  kv_add(k, "__meta_kubernetes_pod_node_name", jstr(spec, "nodeName"));
  kv_add(k, "__meta_kubernetes_pod_host_ip", jstr(status, "hostIP"));
  kv_add(k, "__meta_kubernetes_pod_uid", jstr(meta, "uid"));
  kv_add(k, "__meta_kubernetes_pod_phase", phase);
  const char *ready = "unknown";
  size_t i;
  json_t *x;
  json_array_foreach(json_object_get(status, "conditions"), i, x)
  {
    const char *st = jstr(x, "status");
    if (jstr(x, "type") && strcmp(jstr(x, "type"), "Ready") == 0 && st)
      ready = strcmp(st, "True") == 0 ? "true" : strcmp(st, "False") == 0 ? "false" : "unknown";
  }
  kv_add(k, "__meta_kubernetes_pod_ready", ready);
  json_array_foreach(json_object_get(meta, "ownerReferences"), i, x)
  {
    if (json_is_true(json_object_get(x, "controller"))) {
      kv_add(k, "__meta_kubernetes_pod_controller_kind", jstr(x, "kind"));
      kv_add(k, "__meta_kubernetes_pod_controller_name", jstr(x, "name"));
    }
  }
  add_map(k, json_object_get(meta, "labels"), "__meta_kubernetes_pod_label_",
          "__meta_kubernetes_pod_labelpresent_");
  add_map(k, ann, "__meta_kubernetes_pod_annotation_", "__meta_kubernetes_pod_annotationpresent_");
  if (annotations && a_path && *a_path)
    kv_add(k, "__metrics_path__", a_path);
  if (annotations && a_scheme && (strcmp(a_scheme, "http") == 0 || strcmp(a_scheme, "https") == 0))
    kv_add(k, "__scheme__", a_scheme);
  const char *fixed = annotations && a_port && *a_port ? kv_own(k, host_port(ip, a_port)) : NULL;
  size_t base_n = k->n;

  json_array_foreach(json_object_get(spec, "containers"), i, x)
  {
    const char *cname = jstr(x, "name");
    const char *cid = NULL;
    size_t j;
    json_t *cs;
    json_array_foreach(json_object_get(status, "containerStatuses"), j, cs)
    {
      if (cname && jstr(cs, "name") && strcmp(jstr(cs, "name"), cname) == 0)
        cid = jstr(cs, "containerID");
    }
    kv_add(k, "__meta_kubernetes_pod_container_name", cname);
    kv_add(k, "__meta_kubernetes_pod_container_image", jstr(x, "image"));
    kv_add(k, "__meta_kubernetes_pod_container_id", cid);
    kv_add(k, "__meta_kubernetes_pod_container_init", "false");
    size_t cont_n = k->n;
    const json_t *ports = json_object_get(x, "ports");
    if (json_array_size(ports) == 0) {
      kv_add(k, "__address__", fixed ? fixed : ip);
      if ((rc = push_target(k, base_n, &v, &n, &cap)) < 0)
        goto out;
      continue;
    }
    json_t *pt;
    json_array_foreach(ports, j, pt)
    {
      json_int_t num = json_integer_value(json_object_get(pt, "containerPort"));
      char pnum[24];
      snprintf(pnum, sizeof(pnum), "%lld", (long long)num);
      const char *num_s = kv_own(k, strdup(pnum));
      k->n = cont_n;
      kv_add(k, "__meta_kubernetes_pod_container_port_name", jstr(pt, "name"));
      kv_add(k, "__meta_kubernetes_pod_container_port_number", num_s);
      kv_add(k, "__meta_kubernetes_pod_container_port_protocol", jstr(pt, "protocol"));
      kv_add(k, "__address__", fixed ? fixed : kv_own(k, host_port(ip, pnum)));
      size_t keep = cont_n;
      if ((rc = push_target(k, keep, &v, &n, &cap)) < 0)
        goto out;
    }
    k->n = base_n;
  }
out:
  kv_free(k);
  free(k);
  if (rc < 0) {
    nn__scrape_dtargets_free(v, n);
    return rc;
  }
  *out = v;
  *nout = n;
  return 0;
}

/* ---- state ---- */

static struct pod *pod_find(struct k8s *d, const char *key)
{
  for (size_t i = 0; i < d->npods; i++)
    if (strcmp(d->pods[i].key, key) == 0)
      return &d->pods[i];
  return NULL;
}

static void pod_remove(struct k8s *d, const char *key)
{
  struct pod *p = pod_find(d, key);
  if (!p)
    return;
  free(p->key);
  nn__scrape_dtargets_free(p->targets, p->n);
  *p = d->pods[--d->npods];
}

static void pods_clear(struct k8s *d)
{
  while (d->npods)
    pod_remove(d, d->pods[0].key);
}

static bool ns_wanted(const struct k8s *d, const char *ns)
{
  if (d->cfg->namespaces.n == 0)
    return true;
  for (size_t i = 0; ns && i < d->cfg->namespaces.n; i++)
    if (strcmp(d->cfg->namespaces.v[i], ns) == 0)
      return true;
  return false;
}

static void pod_set(struct k8s *d, const json_t *pod)
{
  const json_t *meta = json_object_get(pod, "metadata");
  const char *ns = jstr(meta, "namespace"), *name = jstr(meta, "name");
  char key[512];
  if (!ns || !name)
    return;
  snprintf(key, sizeof(key), "%s/%s", ns, name);
  pod_remove(d, key);
  if (!ns_wanted(d, ns))
    return;
  struct nn__scrape_dtarget *v;
  size_t n;
  if (nn__scrape_k8s_pod_targets(pod, d->cfg->annotations, &v, &n) < 0 || n == 0)
    return;
  if (d->npods == d->podcap) {
    size_t c = d->podcap ? d->podcap * 2 : 16;
    struct pod *x = realloc(d->pods, c * sizeof(*x));
    if (!x) {
      nn__scrape_dtargets_free(v, n);
      return;
    }
    d->pods = x;
    d->podcap = c;
  }
  if (!(d->pods[d->npods].key = strdup(key))) {
    nn__scrape_dtargets_free(v, n);
    return;
  }
  d->pods[d->npods].targets = v;
  d->pods[d->npods].n = n;
  d->npods++;
}

static void publish(struct k8s *d)
{
  size_t total = 0, k = 0;
  for (size_t i = 0; i < d->npods; i++)
    total += d->pods[i].n;
  struct nn__scrape_dtarget *all = calloc(total ? total : 1, sizeof(*all));
  if (!all)
    return;
  for (size_t i = 0; i < d->npods; i++) {
    for (size_t j = 0; j < d->pods[i].n; j++) {
      const struct nn__scrape_dtarget *t = &d->pods[i].targets[j];
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

/* ---- requests ---- */

static void do_list(struct k8s *d);
static void do_watch(struct k8s *d);

static void on_timer(uv_timer_t *t)
{
  do_list(t->data);
}

static void retry_later(struct k8s *d, const char *what, const char *why)
{
  d->s->stats.discovery_errors++;
  NN_LOG_RL(NN_LOG_WARN, "scrape", "kubernetes_sd: %s failed: %s (retrying in %d s)", what, why,
            RETRY_MS / 1000);
  if (!d->stopping)
    uv_timer_start(&d->timer, on_timer, RETRY_MS, 0);
}

static int send_req(struct k8s *d, const char *url, uint32_t timeout_ms, nn_http_done_fn cb)
{
  char auth[8192] = "";
  const char *headers[2] = {"Accept: application/json", auth};
  size_t nh = 1;
  FILE *f = d->cfg->token_file && *d->cfg->token_file ? fopen(d->cfg->token_file, "r") : NULL;
  if (f) {
    /* Re-read every time: projected service-account tokens rotate. */
    char tok[8000];
    size_t n = fread(tok, 1, sizeof(tok) - 1, f);
    fclose(f);
    while (n && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
      n--;
    tok[n] = '\0';
    if (n) {
      snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
      nh = 2;
    }
  }
  struct nn_http_request req = {.url = url,
                                .headers = headers,
                                .nheaders = nh,
                                .timeout_ms = timeout_ms,
                                .max_response_bytes = 256u << 20,
                                .decompress = true};
  int rc = nn_http_client_send(d->http, &req, cb, d);
  if (rc == 0)
    d->inflight = true;
  return rc;
}

static char *pods_url(struct k8s *d, bool watch)
{
  struct nn_buf b;
  nn_buf_init(&b, 64 * 1024);
  int rc = nn_buf_printf(&b, "%s/api/v1/pods", d->base);
  if (rc == 0 && d->node && *d->node) {
    char sel[600];
    snprintf(sel, sizeof(sel), "spec.nodeName=%s", d->node);
    rc = nn_buf_appends(&b, "?fieldSelector=");
    if (rc == 0)
      rc = nn_urlenc_escape(sel, strlen(sel), &b);
  }
  if (rc == 0 && watch) {
    rc = nn_buf_printf(
        &b, "%cwatch=1&allowWatchBookmarks=true&timeoutSeconds=%lld",
        d->node && *d->node ? '&' : '?',
        (long long)(d->cfg->watch_timeout_ms > 0 ? d->cfg->watch_timeout_ms / 1000 : 60));
    if (rc == 0 && d->rv[0]) {
      rc = nn_buf_appends(&b, "&resourceVersion=");
      if (rc == 0)
        rc = nn_urlenc_escape(d->rv, strlen(d->rv), &b);
    }
  }
  if (rc < 0) {
    nn_buf_fini(&b);
    return NULL;
  }
  return nn_buf_steal(&b, NULL);
}

static void on_list(const struct nn_http_response *r, void *ud)
{
  struct k8s *d = ud;
  char why[300];
  d->inflight = false;
  if (d->stopping || r->rc == NN_ECANCELED)
    return;
  if (r->rc != 0 || r->status != 200) {
    snprintf(why, sizeof(why), "%s", r->rc ? r->error : "");
    if (!r->rc)
      snprintf(why, sizeof(why), "HTTP status %d", r->status);
    retry_later(d, "listing pods", why);
    return;
  }
  json_error_t je;
  json_t *root = json_loadb(r->body, r->body_len, 0, &je);
  json_t *items = json_object_get(root, "items");
  if (!root || !json_is_array(items)) {
    json_decref(root);
    retry_later(d, "listing pods", "response is not a PodList");
    return;
  }
  pods_clear(d);
  size_t i;
  json_t *pod;
  json_array_foreach(items, i, pod) pod_set(d, pod);
  const char *rv = jstr(json_object_get(root, "metadata"), "resourceVersion");
  snprintf(d->rv, sizeof(d->rv), "%s", rv ? rv : "");
  json_decref(root);
  d->last_list_ms = nn__scrape_now_ms();
  publish(d);
  do_watch(d);
}

static void on_watch(const struct nn_http_response *r, void *ud)
{
  struct k8s *d = ud;
  bool relist = false;
  d->inflight = false;
  if (d->stopping || r->rc == NN_ECANCELED)
    return;
  if (r->rc != 0 || r->status != 200) {
    char why[300];
    snprintf(why, sizeof(why), "%s", r->rc ? r->error : "");
    if (!r->rc)
      snprintf(why, sizeof(why), "HTTP status %d", r->status);
    retry_later(d, "watching pods", why);
    return;
  }
  /* One JSON event per line. */
  const char *p = r->body, *end = r->body + r->body_len;
  bool changed = false;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    if (le > p) {
      json_error_t je;
      json_t *ev = json_loadb(p, (size_t)(le - p), 0, &je);
      const char *type = jstr(ev, "type");
      json_t *obj = json_object_get(ev, "object");
      const char *rv = jstr(json_object_get(obj, "metadata"), "resourceVersion");
      if (!type) {
        relist = true;
      } else if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0) {
        pod_set(d, obj);
        changed = true;
      } else if (strcmp(type, "DELETED") == 0) {
        const json_t *m = json_object_get(obj, "metadata");
        char key[512];
        if (jstr(m, "namespace") && jstr(m, "name")) {
          snprintf(key, sizeof(key), "%s/%s", jstr(m, "namespace"), jstr(m, "name"));
          pod_remove(d, key);
          changed = true;
        }
      } else if (strcmp(type, "ERROR") == 0) {
        relist = true; /* 410 Gone: our resourceVersion is too old */
        rv = NULL;
      }
      if (rv && !relist)
        snprintf(d->rv, sizeof(d->rv), "%s", rv);
      json_decref(ev);
    }
    p = nl ? nl + 1 : end;
  }
  if (changed)
    publish(d);
  if (relist || nn__scrape_now_ms() - d->last_list_ms >= d->cfg->resync_interval_ms)
    do_list(d);
  else
    do_watch(d);
}

static void do_list(struct k8s *d)
{
  if (d->stopping || d->inflight)
    return;
  char *url = pods_url(d, false);
  if (!url || send_req(d, url, 60000, on_list) < 0)
    retry_later(d, "listing pods", "cannot start the request");
  free(url);
}

static void do_watch(struct k8s *d)
{
  if (d->stopping || d->inflight)
    return;
  char *url = pods_url(d, true);
  uint32_t t = (uint32_t)(d->cfg->watch_timeout_ms > 0 ? d->cfg->watch_timeout_ms : 60000) + 15000;
  if (!url || send_req(d, url, t, on_watch) < 0)
    retry_later(d, "watching pods", "cannot start the request");
  free(url);
}

static void on_closed(uv_handle_t *h)
{
  struct k8s *d = h->data;
  struct nn_scrape *s = d->s;
  pods_clear(d);
  free(d->pods);
  free(d->base);
  free(d->node);
  free(d);
  nn__scrape_handle_closed(s);
}

static void k8s_stop(void *impl)
{
  struct k8s *d = impl;
  d->stopping = true;
  nn_http_client_destroy(d->http); /* cancels the request in flight */
  d->http = NULL;
  uv_timer_stop(&d->timer);
  d->s->closing++;
  uv_close((uv_handle_t *)&d->timer, on_closed);
}

int nn__scrape_k8s_sd_start(struct nn__scrape_provider *p,
                            const struct nn_scrape_k8s_sd_config *cfg)
{
  struct k8s *d = calloc(1, sizeof(*d));
  if (!d)
    return NN_ENOMEM;
  d->p = p;
  d->s = p->job->s;
  d->cfg = cfg;
  if (cfg->api_server && *cfg->api_server) {
    d->base = strdup(cfg->api_server);
    size_t n = d->base ? strlen(d->base) : 0;
    while (n && d->base[n - 1] == '/')
      d->base[--n] = '\0';
  } else {
    const char *h = getenv("KUBERNETES_SERVICE_HOST"), *pt = getenv("KUBERNETES_SERVICE_PORT");
    if (!h || !pt) {
      nn_error("scrape", "kubernetes_sd: api_server is not set and KUBERNETES_SERVICE_HOST/PORT "
                         "are not in the environment (not running in a pod?)");
      free(d);
      return NN_ECONFIG;
    }
    d->base = host_port(h, pt);
    if (d->base) {
      char *b = malloc(strlen(d->base) + 9);
      if (b)
        snprintf(b, strlen(d->base) + 9, "https://%s", d->base);
      free(d->base);
      d->base = b;
    }
  }
  const char *node = cfg->node_name && *cfg->node_name ? cfg->node_name : getenv("NODE_NAME");
  d->node = node ? strdup(node) : NULL;
  struct nn_http_client_opts ho = {
      .ca_file = cfg->ca_file && *cfg->ca_file && !cfg->insecure_skip_verify ? cfg->ca_file : NULL,
      .insecure_skip_verify = cfg->insecure_skip_verify,
      .max_conns_per_host = 1,
  };
  if (!d->base || !(d->http = nn_http_client_create(p->job->s->loop, &ho))) {
    free(d->base);
    free(d->node);
    free(d);
    return NN_ENOMEM;
  }
  uv_timer_init(p->job->s->loop, &d->timer);
  d->timer.data = d;
  p->impl = d;
  p->stop = k8s_stop;
  do_list(d);
  return 0;
}
