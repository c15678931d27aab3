/* SPDX-License-Identifier: Apache-2.0 */
/* Bytes per sample of a persisted block, on the data bench/ingest.sh remote-writes: the
 * series and values of nines-benchgen (two thirds counters growing by 0-15 per scrape, a
 * third gauges with two decimals, 7 labels), scraped every 5 s by 10 targets whose
 * timestamps wander by a few milliseconds as vmagent's do. 3.5 h of it go through the
 * store's public API, then one 2 h block is cut; block bytes (chunks, index, meta.json)
 * divided by the samples in it is the figure. Built by bench/ingest.sh against the build's
 * static libraries. Usage: ingest_block SERIES DIR; prints one JSON object. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator/tsdb/tsdb.h"
#include "common/log.h"

#define TARGETS 10
#define STEP_MS 5000
#define HOUR_MS 3600000LL
#define T0      1700000000000LL /* an exact multiple of 2 h */

static uint64_t rnd_state = 0x2545f4914f6cdd1dULL;

static uint64_t rnd(void)
{
  rnd_state ^= rnd_state >> 12;
  rnd_state ^= rnd_state << 25;
  rnd_state ^= rnd_state >> 27;
  return rnd_state * 0x2545f4914f6cdd1dULL;
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
  if (argc != 3) {
    fprintf(stderr, "usage: ingest_block SERIES DIR\n");
    return 2;
  }
  uint32_t n = (uint32_t)strtoul(argv[1], NULL, 10);
  nn_log_setup(NN_LOG_ERROR, NN_LOG_LOGFMT);
  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  o.dir = argv[2];
  o.wal_fsync = false;
  struct nn_tsdb *db;
  if (n == 0 || nn_tsdb_open(&o, &db) < 0) {
    fprintf(stderr, "ingest_block: cannot open a store in %s\n", argv[2]);
    return 1;
  }
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  uint64_t *refs = calloc(n, sizeof(*refs));
  double *val = calloc(n, sizeof(*val));
  if (!a || !refs || !val)
    return 1;
  static const char *const paths[] = {"/", "/items", "/items/{id}", "/cart", "/login", "/search"};
  static const char *const codes[] = {"200", "201", "404", "500"};
  /* A block is cut once the head spans 1.5 block ranges (3 h). */
  const int steps = (int)(7 * HOUR_MS / 2 / STEP_MS) + 1;
  double t_start = now_s();
  for (int k = 0; k < steps; k++) {
    int64_t jitter[TARGETS];
    for (int g = 0; g < TARGETS; g++)
      jitter[g] = 137 * g + (int64_t)(rnd() % 5);
    for (uint32_t i = 0; i < n; i++) {
      if (i % 3 != 2)
        val[i] += (double)(rnd() % 16);
      else
        val[i] = (double)(int64_t)(rnd() % 100000) / 100.0;
      int64_t t = T0 + (int64_t)k * STEP_MS + jitter[i % TARGETS];
      int rc;
      if (k == 0) {
        char name[32], pod[16], id[16];
        snprintf(name, sizeof(name), "bench_metric_%02u_total", i % 50);
        snprintf(pod, sizeof(pod), "app-%05u", (i / 50) % 2000);
        snprintf(id, sizeof(id), "%u", i);
        struct nn_label ls[] = {
            {"__name__", name}, {"code", codes[(i / 7) % 4]}, {"instance", "10.0.0.1:9100"},
            {"job", "bench"},   {"path", paths[i % 6]},       {"pod", pod},
            {"series", id}};
        rc = nn_tsdb_appender_append(a, ls, 7, t, val[i], &refs[i]);
      } else {
        rc = nn_tsdb_appender_append_ref(a, refs[i], t, val[i]);
      }
      if (rc < 0) {
        fprintf(stderr, "ingest_block: append: %s\n", nn_strerror(rc));
        return 1;
      }
      if (nn_tsdb_appender_pending(a) >= 100000 && nn_tsdb_appender_commit(a) < 0)
        return 1;
    }
    if (nn_tsdb_appender_commit(a) < 0)
      return 1;
  }
  double t_load = now_s();
  if (nn_tsdb_maintain(db, T0 + 7 * HOUR_MS / 2) < 0) {
    fprintf(stderr, "ingest_block: block cut failed\n");
    return 1;
  }
  struct nn_tsdb_stats st;
  nn_tsdb_stats(db, &st);
  if (st.blocks != 1 || st.block_samples == 0) {
    fprintf(stderr, "ingest_block: expected one block, have %llu\n", (unsigned long long)st.blocks);
    return 1;
  }
  printf("{\"series\": %u, \"block_samples\": %llu, \"block_bytes\": %llu, "
         "\"bytes_per_sample\": %.4f, \"load_seconds\": %.2f, \"cut_seconds\": %.3f}\n",
         n, (unsigned long long)st.block_samples, (unsigned long long)st.block_bytes,
         (double)st.block_bytes / (double)st.block_samples, t_load - t_start,
         st.block_cut_seconds_last);
  nn_tsdb_appender_destroy(a);
  nn_tsdb_close(db);
  free(refs);
  free(val);
  return 0;
}
