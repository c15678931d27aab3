/* SPDX-License-Identifier: Apache-2.0 */
/* nines-benchgen: the benchmarks' load generators. `targets` serves many series in the
 * Prometheus text format for vmagent to scrape, `sink` answers 204 to every request (a null
 * Loki/remote-write receiver), `rw` pushes remote-write requests as fast as a receiver takes
 * them, and `cri` writes a kubelet-style CRI file of JSON access-log lines. Everything
 * listens on or connects to 127.0.0.1 only, and every loop is bounded in count or time. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <snappy-c.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/buf.h"
#include "common/http_server.h"
#include "common/log.h"

#define MAX_SERIES  (10u * 1000 * 1000)
#define MAX_TARGETS 10000
#define MAX_CONNS   64

static _Thread_local uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
  /* xorshift64*: cheap, deterministic, good enough for synthetic values. */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ULL;
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Labels of series i, shared by `targets` and `rw` so both workloads look alike: 50 metric
 * names, a pod, an endpoint path, a status code and a unique series id. */
static const char *const paths[] = {"/", "/items", "/items/{id}", "/cart", "/login", "/search"};
static const char *const codes[] = {"200", "201", "404", "500"};

static void series_name(uint32_t i, char *name, size_t nn)
{
  snprintf(name, nn, "bench_metric_%02u_total", i % 50);
}

/* ---------------------------------------------------------------- targets */

struct targets {
  uint32_t series, ntargets;
  double *values;
};

static void on_target(struct nn_http_req *req, void *ud)
{
  struct targets *t = ud;
  const char *p = req->path + strlen("/metrics/");
  char *end;
  unsigned long k = strtoul(p, &end, 10);
  if (end == p || *end || k >= t->ntargets) {
    nn_http_respond_error(req, 404, "no such target");
    return;
  }
  uint32_t per = t->series / t->ntargets;
  uint32_t lo = (uint32_t)k * per, hi = k + 1 == t->ntargets ? t->series : lo + per;
  struct nn_buf b;
  nn_buf_init(&b, 256u << 20);
  char name[64];
  for (uint32_t i = lo; i < hi; i++) {
    /* Two thirds are counters that grow by a small random step, a third are gauges that
     * wander: the mix a real exporter serves, so compression is not flattered. */
    if (i % 3 != 2)
      t->values[i] += (double)(rnd() % 16);
    else
      t->values[i] = (double)(int64_t)(rnd() % 100000) / 100.0;
    series_name(i, name, sizeof(name));
    if (nn_buf_printf(&b, "%s{pod=\"app-%05u\",path=\"%s\",code=\"%s\",series=\"%u\"} %.15g\n",
                      name, (i / 50) % 2000, paths[i % 6], codes[(i / 7) % 4], i,
                      t->values[i]) < 0) {
      nn_buf_fini(&b);
      nn_http_respond_error(req, 500, "exposition too large");
      return;
    }
  }
  nn_http_respond_buf(req, 200, "text/plain; version=0.0.4", &b);
}

static int run_targets(const char *addr, uint32_t series, uint32_t ntargets)
{
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct targets t = {.series = series, .ntargets = ntargets};
  t.values = calloc(series, sizeof(double));
  struct nn_http_server_opts o = {.max_body_bytes = 4096};
  struct nn_http_server *srv = nn_http_server_create(&loop, &o);
  if (!t.values || !srv ||
      nn_http_server_route(srv, "/metrics/", NN_HTTP_ROUTE_PREFIX, on_target, &t) < 0 ||
      nn_http_server_listen(srv, addr) < 0) {
    nn_error("benchgen", "cannot serve targets on %s", addr);
    return 1;
  }
  nn_info("benchgen", "%u series in %u targets on http://%s/metrics/0..%u", series, ntargets, addr,
          ntargets - 1);
  uv_run(&loop, UV_RUN_DEFAULT);
  return 0;
}

/* ---------------------------------------------------------------- sink */

static uint64_t sink_requests, sink_bytes;

static void on_sink(struct nn_http_req *req, void *ud)
{
  (void)ud;
  if (strcmp(req->path, "/metrics") == 0) {
    char body[128];
    int n = snprintf(body, sizeof(body), "sink_requests_total %llu\nsink_bytes_total %llu\n",
                     (unsigned long long)sink_requests, (unsigned long long)sink_bytes);
    nn_http_respond(req, 200, "text/plain", body, (size_t)n);
    return;
  }
  sink_requests++;
  sink_bytes += req->body_len;
  nn_http_respond(req, 204, NULL, NULL, 0);
}

static int run_sink(const char *addr)
{
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct nn_http_server_opts o = {.max_body_bytes = 64u << 20};
  struct nn_http_server *srv = nn_http_server_create(&loop, &o);
  if (!srv || nn_http_server_route(srv, "/", NN_HTTP_ROUTE_PREFIX, on_sink, NULL) < 0 ||
      nn_http_server_listen(srv, addr) < 0) {
    nn_error("benchgen", "cannot serve the sink on %s", addr);
    return 1;
  }
  nn_info("benchgen", "null sink on http://%s/ (204 to everything)", addr);
  uv_run(&loop, UV_RUN_DEFAULT);
  return 0;
}

/* ---------------------------------------------------------------- rw */

struct rw_shared {
  struct sockaddr_in sa;
  char path[256], host[64];
  uint32_t series, batch;
  double deadline;
  /* Pre-encoded Label messages of every series (WriteRequest.timeseries[].labels). */
  char *labels;
  uint32_t *off; /* series i's labels are labels[off[i]..off[i+1]) */
};

struct rw_thread {
  pthread_t tid;
  struct rw_shared *sh;
  uint32_t lo, hi; /* series slice */
  uint64_t samples, requests, errors;
};

static size_t put_varint(char *p, uint64_t v)
{
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (char)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (char)v;
  return n;
}

static size_t varint_len(uint64_t v)
{
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

static int append_label(struct nn_buf *b, const char *name, const char *value)
{
  char tmp[512];
  size_t nl = strlen(name), vl = strlen(value);
  if (nl + vl + 16 > sizeof(tmp))
    return -1;
  size_t body = 1 + varint_len(nl) + nl + 1 + varint_len(vl) + vl, n = 0;
  tmp[n++] = 0x0a; /* TimeSeries.labels */
  n += put_varint(tmp + n, body);
  tmp[n++] = 0x0a; /* Label.name */
  n += put_varint(tmp + n, nl);
  memcpy(tmp + n, name, nl);
  n += nl;
  tmp[n++] = 0x12; /* Label.value */
  n += put_varint(tmp + n, vl);
  memcpy(tmp + n, value, vl);
  n += vl;
  return nn_buf_append(b, tmp, n);
}

static int rw_encode_labels(struct rw_shared *sh)
{
  struct nn_buf b;
  nn_buf_init(&b, (size_t)sh->series * 256);
  sh->off = malloc(((size_t)sh->series + 1) * sizeof(uint32_t));
  if (!sh->off)
    return -1;
  char name[64], pod[32], id[16];
  for (uint32_t i = 0; i < sh->series; i++) {
    sh->off[i] = (uint32_t)b.len;
    series_name(i, name, sizeof(name));
    snprintf(pod, sizeof(pod), "app-%05u", (i / 50) % 2000);
    snprintf(id, sizeof(id), "%u", i);
    /* Sorted by name, as remote write requires. */
    if (append_label(&b, "__name__", name) < 0 ||
        append_label(&b, "code", codes[(i / 7) % 4]) < 0 ||
        append_label(&b, "instance", "10.0.0.1:9100") < 0 || append_label(&b, "job", "bench") < 0 ||
        append_label(&b, "path", paths[i % 6]) < 0 || append_label(&b, "pod", pod) < 0 ||
        append_label(&b, "series", id) < 0)
      return -1;
  }
  sh->off[sh->series] = (uint32_t)b.len;
  sh->labels = nn_buf_steal(&b, NULL);
  return sh->labels ? 0 : -1;
}

static int rw_connect(const struct rw_shared *sh)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  struct timeval tv = {.tv_sec = 30};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (connect(fd, (const struct sockaddr *)&sh->sa, sizeof(sh->sa)) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads one response; returns its status, or -1 when the connection failed. Bodies are
 * small (204, or a short error), bounded by the 64 KiB buffer. */
static int read_response(int fd, char *buf, size_t cap)
{
  size_t n = 0;
  char *eoh = NULL;
  while (!eoh) {
    if (n + 1 >= cap)
      return -1;
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    n += (size_t)r;
    buf[n] = '\0';
    eoh = strstr(buf, "\r\n\r\n");
  }
  int status = (int)strtol(buf + 9, NULL, 10);
  size_t head = (size_t)(eoh + 4 - buf), clen = 0;
  const char *cl = strcasestr(buf, "\r\ncontent-length:");
  if (cl && cl < eoh)
    clen = strtoul(cl + 17, NULL, 10);
  const char *te = strcasestr(buf, "\r\ntransfer-encoding: chunked");
  if (te && te < eoh) {
    /* Only short error bodies come chunked; read to the terminating chunk. */
    while (!strstr(eoh + 2, "0\r\n\r\n")) {
      if (n + 1 >= cap)
        return -1;
      ssize_t r = read(fd, buf + n, cap - 1 - n);
      if (r <= 0)
        return -1;
      n += (size_t)r;
      buf[n] = '\0';
    }
    return status;
  }
  if (clen > cap)
    return -1;
  while (n - head < clen) {
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r <= 0)
      return -1;
    n += (size_t)r;
  }
  return status;
}

static void *rw_thread_main(void *arg)
{
  struct rw_thread *t = arg;
  const struct rw_shared *sh = t->sh;
  uint32_t n = t->hi - t->lo;
  int64_t *last_ts = calloc(n, sizeof(int64_t));
  double *vals = calloc(n, sizeof(double));
  size_t raw_cap = (size_t)(sh->off[t->hi] - sh->off[t->lo]) + (size_t)n * 40 + 64;
  char *raw = malloc(raw_cap), *comp = malloc(snappy_max_compressed_length(raw_cap));
  char head[512], resp[65536];
  int fd = -1;
  uint32_t next = 0;
  if (!last_ts || !vals || !raw || !comp)
    goto out;
  while (now_s() < sh->deadline) {
    uint32_t cnt = sh->batch < n ? sh->batch : n;
    size_t len = 0;
    int64_t now = wall_ms();
    for (uint32_t j = 0; j < cnt; j++) {
      uint32_t k = next;
      next = next + 1 == n ? 0 : next + 1;
      int64_t ts = now > last_ts[k] ? now : last_ts[k] + 1;
      last_ts[k] = ts;
      vals[k] += (double)(rnd() % 16);
      const char *lab = sh->labels + sh->off[t->lo + k];
      size_t labn = sh->off[t->lo + k + 1] - sh->off[t->lo + k];
      size_t sample = 1 + 8 + 1 + varint_len((uint64_t)ts);
      size_t ts_body = labn + 1 + varint_len(sample) + sample;
      raw[len++] = 0x0a; /* WriteRequest.timeseries */
      len += put_varint(raw + len, ts_body);
      memcpy(raw + len, lab, labn);
      len += labn;
      raw[len++] = 0x12; /* TimeSeries.samples */
      len += put_varint(raw + len, sample);
      raw[len++] = 0x09; /* Sample.value, fixed64 */
      memcpy(raw + len, &vals[k], 8);
      len += 8;
      raw[len++] = 0x10; /* Sample.timestamp */
      len += put_varint(raw + len, (uint64_t)ts);
    }
    size_t clen = snappy_max_compressed_length(len);
    if (snappy_compress(raw, len, comp, &clen) != SNAPPY_OK)
      break;
    int hn = snprintf(head, sizeof(head),
                      "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-protobuf\r\n"
                      "Content-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\n"
                      "User-Agent: nines-benchgen\r\nContent-Length: %zu\r\n\r\n",
                      sh->path, sh->host, clen);
    if (fd < 0 && (fd = rw_connect(sh)) < 0) {
      t->errors++;
      usleep(10000);
      continue;
    }
    int status = -1;
    if (write_all(fd, head, (size_t)hn) == 0 && write_all(fd, comp, clen) == 0)
      status = read_response(fd, resp, sizeof(resp));
    t->requests++;
    if (status >= 200 && status < 300) {
      t->samples += cnt;
    } else {
      t->errors++;
      if (status < 0) {
        close(fd);
        fd = -1;
      }
    }
  }
out:
  if (fd >= 0)
    close(fd);
  free(last_ts);
  free(vals);
  free(raw);
  free(comp);
  return NULL;
}

static int run_rw(const char *addr, const char *path, uint32_t series, double seconds,
                  uint32_t conns, uint32_t batch)
{
  struct rw_shared sh = {.series = series, .batch = batch};
  unsigned port = 0;
  const char *colon = strrchr(addr, ':');
  if (!colon || strncmp(addr, "127.0.0.1:", 10) != 0 || sscanf(colon + 1, "%u", &port) != 1) {
    fprintf(stderr, "nines-benchgen rw: address must be 127.0.0.1:PORT, not %s\n", addr);
    return 2;
  }
  sh.sa.sin_family = AF_INET;
  sh.sa.sin_port = htons((uint16_t)port);
  sh.sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  snprintf(sh.path, sizeof(sh.path), "%s", path);
  snprintf(sh.host, sizeof(sh.host), "%s", addr);
  if (rw_encode_labels(&sh) < 0) {
    fprintf(stderr, "nines-benchgen rw: out of memory encoding %u series\n", series);
    return 1;
  }
  struct rw_thread th[MAX_CONNS];
  double start = now_s();
  sh.deadline = start + seconds;
  uint32_t per = series / conns;
  for (uint32_t i = 0; i < conns; i++) {
    th[i] =
        (struct rw_thread){.sh = &sh, .lo = i * per, .hi = i + 1 == conns ? series : (i + 1) * per};
    if (pthread_create(&th[i].tid, NULL, rw_thread_main, &th[i]) != 0) {
      fprintf(stderr, "nines-benchgen rw: cannot start thread\n");
      return 1;
    }
  }
  uint64_t samples = 0, requests = 0, errors = 0;
  for (uint32_t i = 0; i < conns; i++) {
    pthread_join(th[i].tid, NULL);
    samples += th[i].samples;
    requests += th[i].requests;
    errors += th[i].errors;
  }
  double el = now_s() - start;
  printf("{\"samples\":%llu,\"requests\":%llu,\"errors\":%llu,\"seconds\":%.3f,"
         "\"samples_per_second\":%.0f}\n",
         (unsigned long long)samples, (unsigned long long)requests, (unsigned long long)errors, el,
         (double)samples / el);
  free(sh.labels);
  free(sh.off);
  return 0;
}

/* ---------------------------------------------------------------- cri */

static int run_cri(const char *path, uint64_t bytes)
{
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "nines-benchgen cri: cannot create %s: %s\n", path, strerror(errno));
    return 1;
  }
  static const char *const methods[] = {"GET", "GET", "GET", "POST", "DELETE"};
  static const char *const ua[] = {"Mozilla/5.0 (X11; Linux x86_64)", "curl/7.88.1", "okhttp/4.9.3",
                                   "python-requests/2.28.1"};
  time_t base = time(NULL) - 3600;
  uint64_t written = 0, lines = 0;
  char line[1024];
  while (written < bytes) {
    uint64_t us = lines * 7; /* ~140k lines per second of log time */
    time_t sec = base + (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    uint64_t r = rnd();
    int status = (r & 31) == 0 ? 500 : (r & 15) == 1 ? 404 : 200;
    int n = snprintf(
        line, sizeof(line),
        "%04d-%02d-%02dT%02d:%02d:%02d.%06lu000Z stdout F {\"ts\":\"%04d-%02d-%02dT%02d:%02d:"
        "%02d.%06luZ\",\"level\":\"%s\",\"remote_addr\":\"10.%u.%u.%u\",\"method\":\"%s\","
        "\"path\":\"/api/v1/items/%u\",\"status\":%d,\"bytes\":%u,\"duration_ms\":%.3f,"
        "\"user_agent\":\"%s\",\"trace_id\":\"%016llx\"}\n",
        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
        (unsigned long)(us % 1000000), tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
        tm.tm_min, tm.tm_sec, (unsigned long)(us % 1000000), status == 500 ? "error" : "info",
        (unsigned)(r >> 8) & 255, (unsigned)(r >> 16) & 255, (unsigned)(r >> 24) & 255,
        methods[(r >> 32) % 5], (unsigned)(r >> 36) % 100000, status, (unsigned)(r >> 40) % 50000,
        (double)((r >> 20) % 250000) / 1000.0, ua[(r >> 50) % 4],
        (unsigned long long)(r & 0xffffffffffffULL));
    if (n <= 0 || (size_t)n >= sizeof(line) || fwrite(line, 1, (size_t)n, f) != (size_t)n) {
      fprintf(stderr, "nines-benchgen cri: write to %s failed\n", path);
      fclose(f);
      return 1;
    }
    written += (uint64_t)n;
    lines++;
  }
  if (fclose(f) != 0) {
    fprintf(stderr, "nines-benchgen cri: closing %s failed: %s\n", path, strerror(errno));
    return 1;
  }
  printf("{\"lines\":%llu,\"bytes\":%llu}\n", (unsigned long long)lines,
         (unsigned long long)written);
  return 0;
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
  fprintf(stderr,
          "usage: nines-benchgen targets ADDR SERIES NTARGETS   serve /metrics/0..NTARGETS-1\n"
          "       nines-benchgen sink ADDR                      answer 204 to every request\n"
          "       nines-benchgen rw 127.0.0.1:PORT PATH SERIES SECONDS CONNS BATCH\n"
          "                                                      push remote write flat out\n"
          "       nines-benchgen cri FILE BYTES                 write CRI JSON access logs\n");
}

static int parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) {
    fprintf(stderr, "nines-benchgen: \"%s\" is not a number in %u..%u\n", s, lo, hi);
    return -1;
  }
  *out = (uint32_t)v;
  return 0;
}

int main(int argc, char **argv)
{
  uint32_t a, b, c, d;
  if (argc == 5 && strcmp(argv[1], "targets") == 0) {
    if (parse_u32(argv[3], 1, MAX_SERIES, &a) < 0 || parse_u32(argv[4], 1, MAX_TARGETS, &b) < 0 ||
        b > a)
      return 2;
    return run_targets(argv[2], a, b);
  }
  if (argc == 3 && strcmp(argv[1], "sink") == 0)
    return run_sink(argv[2]);
  if (argc == 8 && strcmp(argv[1], "rw") == 0) {
    if (parse_u32(argv[4], 1, MAX_SERIES, &a) < 0 || parse_u32(argv[5], 1, 3600, &b) < 0 ||
        parse_u32(argv[6], 1, MAX_CONNS, &c) < 0 || parse_u32(argv[7], 1, 100000, &d) < 0 || c > a)
      return 2;
    return run_rw(argv[2], argv[3], a, b, c, d);
  }
  if (argc == 4 && strcmp(argv[1], "cri") == 0) {
    char *end;
    unsigned long long n = strtoull(argv[3], &end, 10);
    if (end == argv[3] || *end || n == 0 || n > (1ULL << 40)) {
      fprintf(stderr, "nines-benchgen cri: BYTES must be 1..2^40\n");
      return 2;
    }
    return run_cri(argv[2], n);
  }
  usage();
  return argc == 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
}
