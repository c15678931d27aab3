/* SPDX-License-Identifier: Apache-2.0 */
/* From discovered label sets to targets, as Prometheus's scrape/target.go PopulateLabels
 * and Target.URL do it: scrape defaults as __ labels, relabel_configs, the default port of
 * the scheme (Prometheus 2.x), __meta_* removal, instance defaulting, then the URL from
 * __scheme__, __address__, __metrics_path__ and __param_*. */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/scrape/internal.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/units.h"
#include "common/urlenc.h"
#include "common/utf8.h"

void nn__scrape_dtargets_free(struct nn__scrape_dtarget *v, size_t n)
{
  for (size_t i = 0; v && i < n; i++)
    free(v[i].labels);
  free(v);
}

int nn__scrape_dtarget_make(struct nn__scrape_dtarget *t, const char *const *pairs, size_t npairs,
                            const struct nn_cfg_strmap *extra)
{
  size_t nextra = extra ? extra->n : 0, bytes = 0, n = 0;
  for (size_t i = 0; i < 2 * npairs; i++)
    bytes += strlen(pairs[i]) + 1;
  for (size_t i = 0; i < nextra; i++)
    bytes += strlen(extra->keys[i]) + strlen(extra->values[i]) + 2;
  size_t total = npairs + nextra;
  struct nn_label *l = malloc(total * sizeof(*l) + bytes + 1);
  if (!l)
    return NN_ENOMEM;
  char *s = (char *)(l + total);
  for (size_t i = 0; i < npairs + nextra; i++) {
    const char *k = i < npairs ? pairs[2 * i] : extra->keys[i - npairs];
    const char *v = i < npairs ? pairs[2 * i + 1] : extra->values[i - npairs];
    bool dup = false;
    for (size_t j = 0; j < n && !dup; j++)
      dup = strcmp(l[j].name, k) == 0;
    if (dup)
      continue;
    size_t kl = strlen(k) + 1, vl = strlen(v) + 1;
    memcpy(s, k, kl);
    l[n].name = s;
    s += kl;
    memcpy(s, v, vl);
    l[n].value = s;
    s += vl;
    n++;
  }
  t->labels = l;
  t->n = n;
  return 0;
}

static const char *get(const struct nn_label *l, size_t n, const char *name)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(l[i].name, name) == 0)
      return l[i].value;
  return "";
}

static int set_default(struct nn_label *l, size_t *n, size_t cap, const char *name,
                       const char *value)
{
  if (*get(l, *n, name) || !*value)
    return 0;
  if (*n >= cap)
    return NN_ETOOBIG;
  l[*n].name = name;
  l[*n].value = value;
  (*n)++;
  return 0;
}

/* Address has a port when it parses as host:port (Go net.SplitHostPort). */
static bool has_port(const char *a)
{
  if (a[0] == '[') {
    const char *e = strchr(a, ']');
    return e && e[1] == ':';
  }
  const char *c = strchr(a, ':');
  return c && !strchr(c + 1, ':');
}

int nn_scrape_populate_labels(const struct nn_scrape_job_config *job, const struct nn_label *in,
                              size_t n, struct nn_label *out, size_t *nout, size_t cap,
                              struct nn_relabel_scratch *scratch, char *err, size_t errlen)
{
  char ival[40], tval[40];
  const char *iv_s, *tv_s;
  size_t m = 0;
  int rc;

  if (n > cap)
    return NN_ETOOBIG;
  memcpy(out, in, n * sizeof(*out));
  m = n;
  /* Strings made here live in scratch, like those the rules make. */
  nn_duration_format(job->scrape_interval_ms, ival, sizeof(ival));
  nn_duration_format(job->scrape_timeout_ms, tval, sizeof(tval));
  if (!(iv_s = nn_relabel_scratch_strndup(scratch, ival, strlen(ival))) ||
      !(tv_s = nn_relabel_scratch_strndup(scratch, tval, strlen(tval))))
    return NN_ENOMEM;
  if ((rc = set_default(out, &m, cap, "job", job->job_name)) < 0 ||
      (rc = set_default(out, &m, cap, "__scrape_interval__", iv_s)) < 0 ||
      (rc = set_default(out, &m, cap, "__scrape_timeout__", tv_s)) < 0 ||
      (rc = set_default(out, &m, cap, "__metrics_path__", job->metrics_path)) < 0 ||
      (rc = set_default(out, &m, cap, "__scheme__", job->scheme)) < 0)
    return rc;
  /* __param_<name> from params: only the first value, and only when absent. */
  for (size_t i = 0; i < job->params.n; i++) {
    bool first = true;
    for (size_t k = 0; k < i; k++)
      first = first && strcmp(job->params.keys[k], job->params.keys[i]) != 0;
    if (!first)
      continue;
    char tmp[256];
    int tl = snprintf(tmp, sizeof(tmp), "__param_%s", job->params.keys[i]);
    if (tl < 0 || (size_t)tl >= sizeof(tmp))
      continue; /* not a usable label name anyway */
    char *pn = nn_relabel_scratch_strndup(scratch, tmp, (size_t)tl);
    if (!pn)
      return NN_ENOMEM;
    if ((rc = set_default(out, &m, cap, pn, job->params.values[i])) < 0)
      return rc;
  }
  rc = nn_relabel_process(&job->relabel_configs, out, &m, cap, scratch);
  if (rc <= 0)
    return rc;

  const char *addr = get(out, m, "__address__");
  if (!*addr) {
    snprintf(err, errlen, "no address");
    return NN_EINVAL;
  }
  if (!has_port(addr)) {
    const char *scheme = get(out, m, "__scheme__");
    const char *port = strcmp(scheme, "http") == 0    ? "80"
                       : strcmp(scheme, "https") == 0 ? "443"
                                                      : NULL;
    if (!port) {
      snprintf(err, errlen, "invalid scheme: \"%s\"", scheme);
      return NN_EINVAL;
    }
    char tmp[1024];
    int tl = snprintf(tmp, sizeof(tmp), "%s:%s", addr, port);
    if (tl < 0 || (size_t)tl >= sizeof(tmp)) {
      snprintf(err, errlen, "address too long");
      return NN_EINVAL;
    }
    char *a = nn_relabel_scratch_strndup(scratch, tmp, (size_t)tl);
    if (!a)
      return NN_ENOMEM;
    for (size_t i = 0; i < m; i++)
      if (strcmp(out[i].name, "__address__") == 0)
        out[i].value = a;
    addr = a;
  }
  if (strchr(addr, '/')) {
    snprintf(err, errlen, "\"%s\" is not a valid hostname", addr);
    return NN_EINVAL;
  }
  int64_t iv = 0, tv = 0;
  const char *is = get(out, m, "__scrape_interval__"), *ts = get(out, m, "__scrape_timeout__");
  if (nn_duration_parse(is, strlen(is), &iv) < 0 || iv == 0) {
    snprintf(err, errlen, "error parsing scrape interval \"%s\"", is);
    return NN_EINVAL;
  }
  if (nn_duration_parse(ts, strlen(ts), &tv) < 0 || tv == 0) {
    snprintf(err, errlen, "error parsing scrape timeout \"%s\"", ts);
    return NN_EINVAL;
  }
  if (tv > iv) {
    snprintf(err, errlen, "scrape timeout cannot be greater than scrape interval (\"%s\" > \"%s\")",
             ts, is);
    return NN_EINVAL;
  }
  size_t o = 0;
  for (size_t i = 0; i < m; i++)
    if (strncmp(out[i].name, "__meta_", 7) != 0)
      out[o++] = out[i];
  m = o;
  if (!*get(out, m, "instance")) {
    if (m >= cap)
      return NN_ETOOBIG;
    out[m].name = "instance";
    out[m].value = addr;
    m++;
  }
  m = nn_labels_canonicalize(out, m);
  for (size_t i = 0; i < m; i++) {
    if (!nn_label_name_valid(out[i].name, strlen(out[i].name))) {
      snprintf(err, errlen, "invalid label name \"%s\"", out[i].name);
      return NN_EINVAL;
    }
    if (!nn_utf8_valid(out[i].value, strlen(out[i].value))) {
      snprintf(err, errlen, "invalid label value for \"%s\"", out[i].name);
      return NN_EINVAL;
    }
  }
  *nout = m;
  return 1;
}

/* scheme://address/path?params, params sorted by name as Go's url.Values.Encode. */
char *nn__scrape_target_url(const struct nn_scrape_job_config *job, const struct nn_label *l,
                            size_t n)
{
  struct nn_buf b;
  struct {
    const char *k, *v;
  } ps[64];
  size_t np = 0;
  nn_buf_init(&b, 64 * 1024);
  for (size_t i = 0; i < job->params.n && np < 64; i++) {
    ps[np].k = job->params.keys[i];
    ps[np].v = job->params.values[i];
    np++;
  }
  for (size_t i = 0; i < n; i++) {
    if (strncmp(l[i].name, "__param_", 8) != 0)
      continue;
    const char *k = l[i].name + 8;
    bool found = false;
    for (size_t j = 0; j < np && !found; j++) {
      if (strcmp(ps[j].k, k) == 0) {
        ps[j].v = l[i].value; /* replaces the first value only */
        found = true;
      }
    }
    if (!found && np < 64) {
      ps[np].k = k;
      ps[np].v = l[i].value;
      np++;
    }
  }
  /* Stable insertion sort by key keeps repeated keys in order. */
  for (size_t i = 1; i < np; i++) {
    __typeof__(ps[0]) x = ps[i];
    size_t j = i;
    while (j > 0 && strcmp(ps[j - 1].k, x.k) > 0) {
      ps[j] = ps[j - 1];
      j--;
    }
    ps[j] = x;
  }
  int rc = nn_buf_printf(&b, "%s://%s%s", get(l, n, "__scheme__"), get(l, n, "__address__"),
                         get(l, n, "__metrics_path__"));
  for (size_t i = 0; rc == 0 && i < np; i++) {
    rc = nn_buf_appendc(&b, i ? '&' : '?');
    if (rc == 0)
      rc = nn_urlenc_escape(ps[i].k, strlen(ps[i].k), &b);
    if (rc == 0)
      rc = nn_buf_appendc(&b, '=');
    if (rc == 0)
      rc = nn_urlenc_escape(ps[i].v, strlen(ps[i].v), &b);
  }
  if (rc < 0) {
    nn_buf_fini(&b);
    return NULL;
  }
  return nn_buf_steal(&b, NULL);
}

/* Splits HOST:PORT (HOST may be [v6] or empty) into host (brackets removed) and port. */
static bool split_hostport(const char *a, size_t len, char *host, size_t hostcap, char *port,
                           size_t portcap)
{
  const char *colon = NULL;
  for (size_t i = len; i-- > 0;)
    if (a[i] == ':') {
      colon = a + i;
      break;
    }
  if (!colon)
    return false;
  const char *h = a;
  size_t hl = (size_t)(colon - a), pl = len - hl - 1;
  if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
    h++;
    hl -= 2;
  }
  if (hl >= hostcap || pl == 0 || pl >= portcap)
    return false;
  memcpy(host, h, hl);
  host[hl] = '\0';
  memcpy(port, colon + 1, pl);
  port[pl] = '\0';
  return true;
}

static bool host_is_loopback(const char *h)
{
  return strcmp(h, "localhost") == 0 || strcmp(h, "127.0.0.1") == 0 || strcmp(h, "::1") == 0;
}

/* Whether h is the literal address of one of this host's interfaces. */
static bool host_is_local(const char *h)
{
  struct ifaddrs *ifs;
  bool found = false;
  if (getifaddrs(&ifs) < 0)
    return false;
  for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next) {
    char txt[INET6_ADDRSTRLEN];
    const void *a = NULL;
    if (!i->ifa_addr)
      continue;
    if (i->ifa_addr->sa_family == AF_INET)
      a = &((const struct sockaddr_in *)(const void *)i->ifa_addr)->sin_addr;
    else if (i->ifa_addr->sa_family == AF_INET6)
      a = &((const struct sockaddr_in6 *)(const void *)i->ifa_addr)->sin6_addr;
    if (a && inet_ntop(i->ifa_addr->sa_family, a, txt, sizeof(txt)))
      found = strcmp(txt, h) == 0;
  }
  freeifaddrs(ifs);
  return found;
}

bool nn__scrape_url_is_self(const char *url, const char *self_address)
{
  static const char scheme[] = "http://";
  if (!url || !self_address || strncmp(url, scheme, sizeof(scheme) - 1) != 0)
    return false;
  const char *auth = url + sizeof(scheme) - 1, *path = strchr(auth, '/');
  if (!path || strcmp(path, "/metrics") != 0)
    return false;
  char th[256], tp[16], sh[256], sp[16];
  if (!split_hostport(auth, (size_t)(path - auth), th, sizeof(th), tp, sizeof(tp)) ||
      !split_hostport(self_address, strlen(self_address), sh, sizeof(sh), sp, sizeof(sp)) ||
      strcmp(tp, sp) != 0)
    return false;
  if (strcmp(th, sh) == 0)
    return true;
  bool wildcard = !sh[0] || strcmp(sh, "0.0.0.0") == 0 || strcmp(sh, "::") == 0;
  if (strcmp(th, "localhost") == 0 && (strcmp(sh, "127.0.0.1") == 0 || strcmp(sh, "::1") == 0))
    return true;
  return wildcard && (host_is_loopback(th) || host_is_local(th));
}
