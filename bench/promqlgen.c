/* SPDX-License-Identifier: Apache-2.0 */
/* Load generator for bench/promql.sh: remote-writes a dashboard-shaped history (request
 * counters by code, latency histograms) of SERVICES x INSTANCES x 40 series over
 * [START, END] at one scrape interval, in time order across all series (a chunk of time for
 * every series before the next chunk), so a store with a bounded out-of-order window takes
 * it all. The values depend only on the arguments, so two stores get identical data. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <snappy-c.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NCODES   5
#define NMETHODS 2
#define NLE      12
#define PER_INST 40 /* 10 counters + 24 buckets + 2 sums + 2 counts + 2 process series */

static const char *const codes[NCODES] = {"200", "404", "429", "500", "503"};
static const double code_share[NCODES] = {0.95, 0.03, 0.01, 0.007, 0.003};
static const char *const methods[NMETHODS] = {"GET", "POST"};
static const char *const les[NLE] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                     "0.5",   "1",    "2.5",   "5",    "10",  "+Inf"};
static const double le_cdf[NLE] = {0.05, 0.12, 0.3,  0.5,   0.7,   0.86,
                                   0.93, 0.97, 0.99, 0.996, 0.999, 1};

struct wbuf {
  uint8_t *p;
  size_t n, cap;
};

static void need(struct wbuf *b, size_t k)
{
  if (b->n + k <= b->cap)
    return;
  size_t nc = b->cap ? b->cap * 2 : 1 << 20;
  while (nc < b->n + k)
    nc *= 2;
  b->p = realloc(b->p, nc);
  if (!b->p) {
    fprintf(stderr, "promqlgen: out of memory\n");
    exit(1);
  }
  b->cap = nc;
}

static void put_varint(struct wbuf *b, uint64_t v)
{
  need(b, 10);
  while (v >= 0x80) {
    b->p[b->n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  b->p[b->n++] = (uint8_t)v;
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

static void put_bytes(struct wbuf *b, const void *p, size_t n)
{
  need(b, n);
  memcpy(b->p + b->n, p, n);
  b->n += n;
}

static size_t label_len(const char *k, const char *v)
{
  size_t a = strlen(k), c = strlen(v);
  return 1 + varint_len(a) + a + 1 + varint_len(c) + c;
}

static void put_label(struct wbuf *b, const char *k, const char *v)
{
  size_t a = strlen(k), c = strlen(v);
  put_varint(b, (1 << 3) | 2);
  put_varint(b, label_len(k, v));
  put_varint(b, (1 << 3) | 2);
  put_varint(b, a);
  put_bytes(b, k, a);
  put_varint(b, (2 << 3) | 2);
  put_varint(b, c);
  put_bytes(b, v, c);
}

/* Sample message: double value = 1 (fixed64), int64 timestamp = 2 (varint). */
static size_t sample_len(int64_t t)
{
  return 1 + 8 + 1 + varint_len((uint64_t)t);
}

struct lbl {
  const char *k, *v;
};

/* One TimeSeries with labels (sorted by name) and n samples. */
static void put_series(struct wbuf *b, const struct lbl *ls, size_t nl, const int64_t *t,
                       const double *v, size_t n)
{
  size_t len = 0;
  for (size_t i = 0; i < nl; i++) {
    size_t l = label_len(ls[i].k, ls[i].v);
    len += 1 + varint_len(l) + l;
  }
  for (size_t i = 0; i < n; i++) {
    size_t l = sample_len(t[i]);
    len += 1 + varint_len(l) + l;
  }
  put_varint(b, (1 << 3) | 2);
  put_varint(b, len);
  for (size_t i = 0; i < nl; i++)
    put_label(b, ls[i].k, ls[i].v);
  for (size_t i = 0; i < n; i++) {
    put_varint(b, (2 << 3) | 2);
    put_varint(b, sample_len(t[i]));
    need(b, 9);
    b->p[b->n++] = (1 << 3) | 1;
    memcpy(b->p + b->n, &v[i], 8);
    b->n += 8;
    put_varint(b, 2 << 3);
    put_varint(b, (uint64_t)t[i]);
  }
}

/* ---- HTTP/1.1 over one keep-alive connection ---- */

static const char *host;
static int port, fd = -1;

static int connect_once(void)
{
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
    return -1;
  fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    close(fd);
    fd = -1;
    return -1;
  }
  return 0;
}

static int write_all(const void *p, size_t n)
{
  const char *c = p;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Returns the HTTP status, or -1 when the connection failed. */
static int post_once(const char *path, const char *body, size_t n)
{
  char hdr[512];
  int hl = snprintf(hdr, sizeof(hdr),
                    "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/x-protobuf\r\n"
                    "Content-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\n"
                    "Content-Length: %zu\r\n\r\n",
                    path, host, port, n);
  if (fd < 0 && connect_once() < 0)
    return -1;
  if (write_all(hdr, (size_t)hl) < 0 || write_all(body, n) < 0)
    return -1;
  char buf[8192];
  size_t got = 0;
  char *end = NULL;
  while (!end) {
    if (got == sizeof(buf) - 1)
      return -1;
    ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
    if (r <= 0)
      return -1;
    got += (size_t)r;
    buf[got] = 0;
    end = strstr(buf, "\r\n\r\n");
  }
  int status = 0;
  if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
    return -1;
  size_t clen = 0;
  const char *cl = strcasestr(buf, "\r\ncontent-length:");
  if (cl && cl < end)
    clen = strtoul(cl + 17, NULL, 10);
  size_t have = got - (size_t)(end + 4 - buf);
  if (status >= 300 && have)
    fprintf(stderr, "promqlgen: HTTP %d: %.*s\n", status, (int)(have < 300 ? have : 300), end + 4);
  while (have < clen) {
    ssize_t r = read(fd, buf, sizeof(buf) < clen - have ? sizeof(buf) : clen - have);
    if (r <= 0)
      return -1;
    have += (size_t)r;
  }
  return status;
}

static void post(const char *path, const char *body, size_t n)
{
  for (int attempt = 0; attempt < 5; attempt++) {
    int st = post_once(path, body, n);
    if (st >= 200 && st < 300)
      return;
    if (fd >= 0) {
      close(fd);
      fd = -1;
    }
    if (st > 0) {
      fprintf(stderr, "promqlgen: server answered HTTP %d\n", st);
      exit(1);
    }
    usleep(200000);
  }
  fprintf(stderr, "promqlgen: cannot reach %s:%d\n", host, port);
  exit(1);
}

/* Deterministic per-(series, step) noise in [0, 1). */
static double noise(uint64_t a, uint64_t b)
{
  uint64_t x = a * 0x9e3779b97f4a7c15ULL ^ (b + 0x632be59bd9b4e019ULL);
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return (double)(x >> 11) / 9007199254740992.0;
}

int main(int argc, char **argv)
{
  if (argc != 10) {
    fprintf(stderr, "usage: promqlgen HOST PORT PATH SERVICES INSTANCES START_MS END_MS "
                    "INTERVAL_MS CHUNK_SAMPLES\n");
    return 2;
  }
  host = argv[1];
  port = (int)strtol(argv[2], NULL, 10);
  const char *path = argv[3];
  long nsvc = strtol(argv[4], NULL, 10), ninst = strtol(argv[5], NULL, 10);
  int64_t start = strtoll(argv[6], NULL, 10), end = strtoll(argv[7], NULL, 10);
  int64_t iv = strtoll(argv[8], NULL, 10);
  long chunk = strtol(argv[9], NULL, 10);
  if (port <= 0 || port > 65535 || nsvc < 1 || ninst < 1 || end < start || iv < 1 || chunk < 1 ||
      chunk > 10000) {
    fprintf(stderr, "promqlgen: bad arguments\n");
    return 2;
  }
  size_t ntgt = (size_t)nsvc * (size_t)ninst, nser = ntgt * PER_INST;
  size_t nsteps = (size_t)((end - start) / iv) + 1;
  /* Cumulative state per target and method: requests per code, latency sum. */
  double *req = calloc(ntgt * NMETHODS * NCODES, sizeof(double));
  double *lsum = calloc(ntgt * NMETHODS, sizeof(double));
  double *cpu = calloc(ntgt, sizeof(double));
  /* Values of one target over one chunk: [series][sample]. */
  double *vals = malloc((size_t)PER_INST * (size_t)chunk * sizeof(double));
  int64_t *ts = malloc((size_t)chunk * sizeof(int64_t));
  struct wbuf pb = {0};
  size_t cmax = 0;
  char *cbuf = NULL;
  if (!req || !lsum || !cpu || !vals || !ts)
    return 1;
  char svc[32], inst[64];
  size_t batch_targets = 20000 / PER_INST; /* ~20k series per request */
  size_t sent = 0;
  for (size_t s0 = 0; s0 < nsteps; s0 += (size_t)chunk) {
    size_t ns = nsteps - s0 < (size_t)chunk ? nsteps - s0 : (size_t)chunk;
    for (size_t i = 0; i < ns; i++)
      ts[i] = start + (int64_t)(s0 + i) * iv;
    for (size_t t0 = 0; t0 < ntgt; t0 += batch_targets) {
      pb.n = 0;
      size_t t1 = t0 + batch_targets < ntgt ? t0 + batch_targets : ntgt;
      for (size_t tg = t0; tg < t1; tg++) {
        size_t si = tg / (size_t)ninst, ii = tg % (size_t)ninst;
        snprintf(svc, sizeof(svc), "svc%zu", si);
        snprintf(inst, sizeof(inst), "10.%zu.%zu.%zu:8080", si, ii / 250, ii % 250);
        double base = 2 + 20 * noise(tg, 7); /* requests/s of this target */
        double *vp = vals;
        for (size_t m = 0; m < NMETHODS; m++) {
          size_t k = tg * NMETHODS + m;
          double *counts = vp, *buckets = vp + NCODES * chunk, *sumv = buckets + NLE * chunk,
                 *cntv = sumv + chunk;
          for (size_t i = 0; i < ns; i++) {
            uint64_t step = s0 + i;
            double total = 0;
            for (int c = 0; c < NCODES; c++) {
              double inc = floor(base * (m ? 0.3 : 1) * code_share[c] * (double)iv / 1000.0 *
                                 (0.5 + noise(k * 8 + (uint64_t)c, step)));
              /* an error burst in the second hour for svc1 */
              if (c >= 3 && si == 1 && step * (uint64_t)iv >= 3600000 &&
                  step * (uint64_t)iv < 4800000)
                inc *= 20;
              req[k * NCODES + c] += inc;
              counts[(size_t)c * (size_t)chunk + i] = req[k * NCODES + c];
              total += req[k * NCODES + c];
            }
            for (int l = 0; l < NLE; l++)
              buckets[(size_t)l * (size_t)chunk + i] = floor(total * le_cdf[l]);
            lsum[k] = total * (0.08 + 0.001 * noise(k, step));
            sumv[i] = lsum[k];
            cntv[i] = total;
          }
          vp += (NCODES + NLE + 2) * chunk;
        }
        double *cpuv = vp, *upv = vp + chunk;
        for (size_t i = 0; i < ns; i++) {
          cpu[tg] += 0.05 * (double)iv / 1000.0 * (0.5 + noise(tg, s0 + i));
          cpuv[i] = cpu[tg];
          upv[i] = 1;
        }
        /* Emit: labels sorted by name. */
        vp = vals;
        for (size_t m = 0; m < NMETHODS; m++) {
          for (int c = 0; c < NCODES; c++) {
            struct lbl ls[] = {{"__name__", "http_requests_total"},
                               {"code", codes[c]},
                               {"instance", inst},
                               {"job", "api"},
                               {"method", methods[m]},
                               {"service", svc}};
            put_series(&pb, ls, 6, ts, vp + (size_t)c * (size_t)chunk, ns);
          }
          for (int l = 0; l < NLE; l++) {
            struct lbl ls[] = {{"__name__", "http_request_duration_seconds_bucket"},
                               {"instance", inst},
                               {"job", "api"},
                               {"le", les[l]},
                               {"method", methods[m]},
                               {"service", svc}};
            put_series(&pb, ls, 6, ts, vp + (size_t)(NCODES + l) * (size_t)chunk, ns);
          }
          struct lbl lsum_[] = {{"__name__", "http_request_duration_seconds_sum"},
                                {"instance", inst},
                                {"job", "api"},
                                {"method", methods[m]},
                                {"service", svc}};
          put_series(&pb, lsum_, 5, ts, vp + (size_t)(NCODES + NLE) * (size_t)chunk, ns);
          struct lbl lcnt[] = {{"__name__", "http_request_duration_seconds_count"},
                               {"instance", inst},
                               {"job", "api"},
                               {"method", methods[m]},
                               {"service", svc}};
          put_series(&pb, lcnt, 5, ts, vp + (size_t)(NCODES + NLE + 1) * (size_t)chunk, ns);
          vp += (NCODES + NLE + 2) * chunk;
        }
        struct lbl lc[] = {{"__name__", "process_cpu_seconds_total"},
                           {"instance", inst},
                           {"job", "api"},
                           {"service", svc}};
        put_series(&pb, lc, 4, ts, vp, ns);
        struct lbl lu[] = {
            {"__name__", "up"}, {"instance", inst}, {"job", "api"}, {"service", svc}};
        put_series(&pb, lu, 4, ts, vp + chunk, ns);
        sent += PER_INST * ns;
      }
      size_t need_c = snappy_max_compressed_length(pb.n);
      if (need_c > cmax) {
        free(cbuf);
        cmax = need_c;
        cbuf = malloc(cmax);
        if (!cbuf)
          return 1;
      }
      size_t clen = cmax;
      if (snappy_compress((const char *)pb.p, pb.n, cbuf, &clen) != SNAPPY_OK)
        return 1;
      post(path, cbuf, clen);
    }
  }
  printf("{\"series\": %zu, \"samples\": %zu}\n", nser, sent);
  return 0;
}
