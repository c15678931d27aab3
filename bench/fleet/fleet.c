/* SPDX-License-Identifier: Apache-2.0 */
/* nines-fleet simulates the seed scenario: 5 projects x 2 services x 5 endpoints. Each
 * service writes CRI-format JSON access logs into a kubelet-style directory and serves a
 * Prometheus /metrics endpoint; a schedule of incidents (an error spike that pages, a slow
 * latency regression that opens a ticket, a pod that goes down) plays out over time. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/buf.h"
#include "common/http_server.h"
#include "common/log.h"

#define NPROJ        5
#define NSVC         2
#define NEP          5
#define NBUCKETS     11
#define ROTATE_BYTES (20u << 20)

static const char *const projects[NPROJ] = {"checkout", "search", "payments", "identity",
                                            "catalog"};
static const char *const services[NSVC] = {"api", "worker"};
static const struct {
  const char *method, *path;
  double base_ms; /* median latency */
} endpoints[NEP] = {
    {"GET", "/", 8},
    {"GET", "/items", 25},
    {"POST", "/items", 60},
    {"GET", "/items/{id}", 15},
    {"DELETE", "/items/{id}", 40},
};
static const double buckets[NBUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1, 2.5, 5};
enum { C200, C404, C500, NCODES };
static const char *const codes[NCODES] = {"200", "404", "500"};

struct endpoint_stats {
  uint64_t count[NCODES];
  uint64_t bucket[NBUCKETS + 1];
  double sum;
  uint64_t n;
};

struct service {
  int proj, svc;
  char pod[64], container_id[65];
  char path[512];
  FILE *log;
  uint64_t log_bytes;
  struct endpoint_stats ep[NEP];
  struct nn_http_server *http;
  int port;
  int down; /* the pod-down incident: no logs, no metrics */
  double carry[NEP];
};

static struct {
  const char *log_dir;
  int base_port;
  double rps; /* per endpoint */
  double spike_at, spike_rate, latency_at, latency_growth_per_min, down_at;
  int spike_svc, latency_svc, down_svc;
  double start;
  uint64_t rng;
  struct service svc[NPROJ * NSVC];
  uv_loop_t *loop;
} fleet;

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double rnd(void)
{
  /* xorshift64*: fast, and reproducible from the seed. */
  fleet.rng ^= fleet.rng >> 12;
  fleet.rng ^= fleet.rng << 25;
  fleet.rng ^= fleet.rng >> 27;
  return (double)((fleet.rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

/* A log-normal latency around the endpoint's median. */
static double latency_s(const struct service *s, int e, double t)
{
  double u1 = rnd(), u2 = rnd();
  double z = sqrt(-2 * log(u1 > 1e-12 ? u1 : 1e-12)) * cos(2 * M_PI * u2);
  double ms = endpoints[e].base_ms * exp(0.5 * z);
  int idx = (int)(s - fleet.svc);
  if (idx == fleet.latency_svc && t >= fleet.latency_at)
    ms *= 1 + fleet.latency_growth_per_min * (t - fleet.latency_at) / 60;
  return ms / 1000;
}

static void open_log(struct service *s)
{
  s->log = fopen(s->path, "a");
  if (!s->log)
    nn_error("fleet", "cannot open %s: %s", s->path, strerror(errno));
  s->log_bytes = 0;
}

static void rotate_log(struct service *s)
{
  char old[600];
  snprintf(old, sizeof(old), "%s.1", s->path);
  fclose(s->log);
  rename(s->path, old);
  open_log(s);
}

/* One request at wall-clock time wall (epoch seconds, for the log line), t seconds after the
 * fleet started (the incident schedule). */
static void request(struct service *s, int e, double t, double wall)
{
  int idx = (int)(s - fleet.svc);
  double err_rate = 0.0002; /* well inside every objective: only incidents burn budget */
  if (idx == fleet.spike_svc && t >= fleet.spike_at)
    err_rate = fleet.spike_rate;
  double r = rnd();
  int code = r < err_rate ? C500 : r < err_rate + 0.01 ? C404 : C200;
  double lat = latency_s(s, e, t);
  struct endpoint_stats *st = &s->ep[e];
  st->count[code]++;
  st->sum += lat;
  st->n++;
  int b = 0;
  while (b < NBUCKETS && lat > buckets[b])
    b++;
  st->bucket[b]++;
  if (!s->log)
    return;
  time_t sec = (time_t)wall;
  struct tm tm;
  gmtime_r(&sec, &tm);
  long ns = (long)((wall - (double)sec) * 1e9);
  int n =
      fprintf(s->log,
              "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ stdout F {\"level\":\"%s\",\"project\":\"%s\","
              "\"service\":\"%s\",\"method\":\"%s\",\"path\":\"%s\",\"status\":%s,"
              "\"duration_ms\":%.3f,\"trace_id\":\"%016llx\"}\n",
              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ns,
              code == C500 ? "error" : "info", projects[s->proj], services[s->svc],
              endpoints[e].method, endpoints[e].path, codes[code], lat * 1000,
              (unsigned long long)(fleet.rng & 0xffffffffffffULL));
  if (n > 0)
    s->log_bytes += (uint64_t)n;
  if (s->log_bytes > ROTATE_BYTES)
    rotate_log(s);
}

static void on_tick(uv_timer_t *timer)
{
  double t = now_s() - fleet.start;
  for (size_t i = 0; i < NPROJ * NSVC; i++) {
    struct service *s = &fleet.svc[i];
    if ((int)i == fleet.down_svc && t >= fleet.down_at && !s->down) {
      s->down = 1;
      nn_warn("fleet", "incident: %s/%s is down", projects[s->proj], services[s->svc]);
      nn_http_server_stop(s->http, NULL, NULL);
    }
    if (s->down)
      continue;
    int k = 0;
    for (int e = 0; e < NEP; e++) {
      /* Workers get a third of the API's traffic. */
      s->carry[e] += fleet.rps * 0.1 * (s->svc == 0 ? 1.0 : 0.33);
      while (s->carry[e] >= 1) {
        double dt = 1e-4 * k++;
        request(s, e, t + dt, t + fleet.start + dt);
        s->carry[e] -= 1;
      }
    }
    if (s->log)
      fflush(s->log);
  }
}

static void on_metrics(struct nn_http_req *req, void *ud)
{
  struct service *s = ud;
  struct nn_buf b;
  nn_buf_init(&b, 1 << 20);
  nn_buf_appends(&b, "# HELP http_requests_total Requests handled, by endpoint and status code.\n"
                     "# TYPE http_requests_total counter\n");
  for (int e = 0; e < NEP; e++)
    for (int c = 0; c < NCODES; c++)
      nn_buf_printf(&b, "http_requests_total{method=\"%s\",endpoint=\"%s\",code=\"%s\"} %llu\n",
                    endpoints[e].method, endpoints[e].path, codes[c],
                    (unsigned long long)s->ep[e].count[c]);
  nn_buf_appends(&b, "# HELP http_request_duration_seconds Request latency.\n"
                     "# TYPE http_request_duration_seconds histogram\n");
  for (int e = 0; e < NEP; e++) {
    uint64_t cum = 0;
    for (int k = 0; k <= NBUCKETS; k++) {
      cum += s->ep[e].bucket[k];
      char le[32];
      if (k < NBUCKETS)
        snprintf(le, sizeof(le), "%g", buckets[k]);
      else
        snprintf(le, sizeof(le), "+Inf");
      nn_buf_printf(&b,
                    "http_request_duration_seconds_bucket{method=\"%s\",endpoint=\"%s\",le=\"%s\"} "
                    "%llu\n",
                    endpoints[e].method, endpoints[e].path, le, (unsigned long long)cum);
    }
    nn_buf_printf(&b, "http_request_duration_seconds_sum{method=\"%s\",endpoint=\"%s\"} %.6f\n",
                  endpoints[e].method, endpoints[e].path, s->ep[e].sum);
    nn_buf_printf(&b, "http_request_duration_seconds_count{method=\"%s\",endpoint=\"%s\"} %llu\n",
                  endpoints[e].method, endpoints[e].path, (unsigned long long)s->ep[e].n);
  }
  nn_buf_appends(&b, "# HELP http_requests_in_flight Requests being served.\n"
                     "# TYPE http_requests_in_flight gauge\n");
  nn_buf_printf(&b, "http_requests_in_flight %d\n", (int)(rnd() * 4));
  nn_http_respond_buf(req, 200, "text/plain; version=0.0.4", &b);
}

static int find_svc(const char *name)
{
  if (!name || !*name)
    return -1;
  for (int i = 0; i < NPROJ * NSVC; i++) {
    char full[64];
    snprintf(full, sizeof(full), "%s/%s", projects[i / NSVC], services[i % NSVC]);
    if (strcmp(full, name) == 0)
      return i;
  }
  fprintf(stderr, "nines-fleet: unknown service \"%s\" (use project/service)\n", name);
  exit(2);
}

static void usage(void)
{
  puts("Usage: nines-fleet --log-dir DIR [--base-port 9700] [--rps 5] [--seed N]\n"
       "  [--spike-at 60] [--spike-service payments/api] [--spike-rate 0.25]\n"
       "  [--latency-at 30] [--latency-service search/api] [--latency-growth 0.15]\n"
       "  [--down-at 90] [--down-service catalog/worker]\n"
       "Simulates 5 projects x 2 services x 5 endpoints: CRI JSON access logs under DIR\n"
       "(kubelet layout) and /metrics on 127.0.0.1:BASE_PORT+i for service i (the order\n"
       "of --list). Times are seconds from start; a negative time disables the incident.\n"
       "  --list   print the services and their ports, then exit");
}

int main(int argc, char **argv)
{
  fleet.base_port = 9700;
  fleet.rps = 5;
  fleet.spike_at = 60;
  fleet.spike_rate = 0.25;
  fleet.latency_at = 30;
  fleet.latency_growth_per_min = 0.15;
  fleet.down_at = 90;
  fleet.rng = 0x9e3779b97f4a7c15ULL;
  const char *spike = "payments/api", *lat = "search/api", *down = "catalog/worker";
  int list = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && ++i)
    if (ARG("--log-dir"))
      fleet.log_dir = v;
    else if (ARG("--base-port"))
      fleet.base_port = (int)strtol(v, NULL, 10);
    else if (ARG("--rps"))
      fleet.rps = strtod(v, NULL);
    else if (ARG("--seed"))
      fleet.rng = strtoull(v, NULL, 10) | 1;
    else if (ARG("--spike-at"))
      fleet.spike_at = strtod(v, NULL);
    else if (ARG("--spike-service"))
      spike = v;
    else if (ARG("--spike-rate"))
      fleet.spike_rate = strtod(v, NULL);
    else if (ARG("--latency-at"))
      fleet.latency_at = strtod(v, NULL);
    else if (ARG("--latency-service"))
      lat = v;
    else if (ARG("--latency-growth"))
      fleet.latency_growth_per_min = strtod(v, NULL);
    else if (ARG("--down-at"))
      fleet.down_at = strtod(v, NULL);
    else if (ARG("--down-service"))
      down = v;
    else if (strcmp(a, "--list") == 0)
      list = 1;
    else {
      usage();
      return strcmp(a, "--help") == 0 ? 0 : 2;
    }
#undef ARG
  }
  fleet.spike_svc = fleet.spike_at < 0 ? -1 : find_svc(spike);
  fleet.latency_svc = fleet.latency_at < 0 ? -1 : find_svc(lat);
  fleet.down_svc = fleet.down_at < 0 ? -1 : find_svc(down);
  if (list) {
    for (int i = 0; i < NPROJ * NSVC; i++)
      printf("%s %s 127.0.0.1:%d\n", projects[i / NSVC], services[i % NSVC], fleet.base_port + i);
    return 0;
  }
  if (!fleet.log_dir) {
    usage();
    return 2;
  }
  mkdir(fleet.log_dir, 0755);
  uv_loop_t loop;
  uv_loop_init(&loop);
  fleet.loop = &loop;
  fleet.start = now_s();
  for (int i = 0; i < NPROJ * NSVC; i++) {
    struct service *s = &fleet.svc[i];
    s->proj = i / NSVC;
    s->svc = i % NSVC;
    snprintf(s->pod, sizeof(s->pod), "%s-%s-7d9f%02d", projects[s->proj], services[s->svc], i);
    for (int k = 0; k < 64; k++)
      s->container_id[k] = "0123456789abcdef"[(int)(rnd() * 16)];
    /* kubelet's /var/log/containers name: <pod>_<namespace>_<container>-<container id>.log */
    snprintf(s->path, sizeof(s->path), "%s/%s_%s_%s-%s.log", fleet.log_dir, s->pod,
             projects[s->proj], services[s->svc], s->container_id);
    open_log(s);
    struct nn_http_server_opts o = {.max_body_bytes = 4096};
    s->http = nn_http_server_create(&loop, &o);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", fleet.base_port + i);
    if (!s->http || nn_http_server_route(s->http, "/metrics", 0, on_metrics, s) < 0 ||
        nn_http_server_listen(s->http, addr) < 0) {
      nn_error("fleet", "cannot serve %s/%s on %s", projects[s->proj], services[s->svc], addr);
      return 1;
    }
  }
  nn_info("fleet", "%d services, logs in %s, metrics on 127.0.0.1:%d-%d", NPROJ * NSVC,
          fleet.log_dir, fleet.base_port, fleet.base_port + NPROJ * NSVC - 1);
  uv_timer_t tick;
  uv_timer_init(&loop, &tick);
  uv_timer_start(&tick, on_tick, 100, 100);
  uv_run(&loop, UV_RUN_DEFAULT);
  return 0;
}
