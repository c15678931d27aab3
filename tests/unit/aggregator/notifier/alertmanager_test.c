/* SPDX-License-Identifier: Apache-2.0 */
/* The notifier against a real Alertmanager (Debian's prometheus-alertmanager, 0.25) started
 * as a child process on 127.0.0.1 with clustering off: a firing alert arrives with its
 * labels (external labels added) and endsAt, and a resolved one disappears from the active
 * list. Runs when NN_ALERTMANAGER_IT=1 (tests/integration/alertmanager.sh sets it) and the
 * binary exists; skipped otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "aggregator/notifier/notifier.h"

#define AM_BIN "/usr/bin/prometheus-alertmanager"

static struct {
  pid_t pid;
  int port;
  char dir[64];
  uv_loop_t loop;
} f;

static int free_port(void)
{
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t l = sizeof(a);
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
      getsockname(s, (struct sockaddr *)&a, &l) < 0) {
    if (s >= 0)
      close(s);
    return -1;
  }
  close(s);
  return ntohs(a.sin_port);
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
  char cmd[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  return system(cmd);
}

static int setup(void **state)
{
  memset(&f, 0, sizeof(f));
  const char *it = getenv("NN_ALERTMANAGER_IT");
  if (!it || strcmp(it, "1") != 0 || access(AM_BIN, X_OK) != 0)
    return 0; /* tests skip */
  snprintf(f.dir, sizeof(f.dir), "/tmp/nn-am-it.XXXXXX");
  if (!mkdtemp(f.dir) || (f.port = free_port()) <= 0)
    return -1;
  char cfg[128], listen[64], storage[128], logf[128];
  snprintf(cfg, sizeof(cfg), "%s/am.yml", f.dir);
  snprintf(storage, sizeof(storage), "--storage.path=%s/data", f.dir);
  snprintf(listen, sizeof(listen), "--web.listen-address=127.0.0.1:%d", f.port);
  snprintf(logf, sizeof(logf), "%s/am.log", f.dir);
  FILE *c = fopen(cfg, "w");
  if (!c)
    return -1;
  fputs("route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n", c);
  fclose(c);
  f.pid = fork();
  if (f.pid == 0) {
    FILE *l = freopen(logf, "w", stderr);
    (void)l;
    char cfgarg[160];
    snprintf(cfgarg, sizeof(cfgarg), "--config.file=%s", cfg);
    execl(AM_BIN, AM_BIN, cfgarg, listen, storage, "--cluster.listen-address=", (char *)NULL);
    _exit(127);
  }
  if (f.pid < 0)
    return -1;
  for (int i = 0; i < 150; i++) {
    if (sh("curl -fsS -o /dev/null http://127.0.0.1:%d/-/ready 2>/dev/null", f.port) == 0)
      return uv_loop_init(&f.loop) == 0 ? 0 : -1;
    usleep(100000);
  }
  fprintf(stderr, "alertmanager did not become ready; log in %s\n", logf);
  return -1;
}

static int teardown(void **state)
{
  if (f.pid > 0) {
    kill(f.pid, SIGTERM);
    waitpid(f.pid, NULL, 0);
    for (int i = 0; i < 1000 && uv_loop_alive(&f.loop); i++)
      uv_run(&f.loop, UV_RUN_NOWAIT);
    uv_loop_close(&f.loop);
    sh("rm -rf %s", f.dir);
  }
  return 0;
}

static bool sent_one(struct nn_notifier *n, uint64_t want)
{
  struct nn_notifier_am_stats st;
  for (int i = 0; i < 500; i++) {
    nn_notifier_am_stats(n, 0, &st);
    if (st.batches >= want)
      return st.sent >= want;
    uv_run(&f.loop, UV_RUN_NOWAIT);
    usleep(10000);
  }
  return false;
}

/* Active alerts Alertmanager holds, as parsed JSON. */
static json_t *am_alerts(void)
{
  char out[160];
  snprintf(out, sizeof(out), "%s/alerts.json", f.dir);
  if (sh("curl -fsS -o %s http://127.0.0.1:%d/api/v2/alerts", out, f.port) != 0)
    return NULL;
  json_error_t je;
  return json_load_file(out, 0, &je);
}

static void test_firing_then_resolved_alert(void **state)
{
  if (f.pid <= 0)
    skip();
  struct nn_notifier_am_config am = {.url = NULL, .timeout_ms = 5000};
  char url[64];
  snprintf(url, sizeof(url), "http://127.0.0.1:%d", f.port);
  am.url = url;
  struct nn_notifier_config cfg = {.alertmanagers = {.items = &am, .n = 1}};
  static char *ek[] = {"replica"}, *ev[] = {"r1"};
  struct nn_cfg_strmap ext = {.keys = ek, .values = ev, .n = 1};
  struct nn_notifier_opts o = {.loop = &f.loop, .cfg = &cfg, .external_labels = &ext};
  struct nn_notifier *n = nn_notifier_create(&o);
  assert_non_null(n);
  int64_t now = (int64_t)time(NULL) * 1000;
  struct nn_label ls[] = {{"alertname", "NinesIT"}, {"severity", "page"}};
  struct nn_label ann[] = {{"summary", "integration"}};
  struct nn_notifier_alert a = {.labels = ls,
                                .nlabels = 2,
                                .annotations = ann,
                                .nannotations = 1,
                                .starts_at_ms = now - 60000,
                                .ends_at_ms = now + 240000,
                                .generator_url = "http://nines/graph?g0.expr=up&g0.tab=1"};
  nn_notifier_send(n, &a, 1);
  assert_true(sent_one(n, 1));
  json_t *j = am_alerts();
  assert_non_null(j);
  assert_int_equal(json_array_size(j), 1);
  json_t *x = json_array_get(j, 0);
  json_t *l = json_object_get(x, "labels");
  assert_string_equal(json_string_value(json_object_get(l, "alertname")), "NinesIT");
  assert_string_equal(json_string_value(json_object_get(l, "replica")), "r1");
  assert_string_equal(json_string_value(json_object_get(l, "severity")), "page");
  char want[48];
  nn_notifier_format_time(now + 240000, want, sizeof(want));
  const char *ends = json_string_value(json_object_get(x, "endsAt"));
  assert_non_null(ends);
  assert_memory_equal(ends, want, 19); /* Alertmanager prints milliseconds */
  assert_string_equal(json_string_value(json_object_get(x, "generatorURL")),
                      "http://nines/graph?g0.expr=up&g0.tab=1");
  json_decref(j);
  /* Resolve it: endsAt in the past. */
  a.ends_at_ms = now - 1000;
  nn_notifier_send(n, &a, 1);
  assert_true(sent_one(n, 2));
  j = am_alerts();
  assert_non_null(j);
  assert_int_equal(json_array_size(j), 0);
  json_decref(j);
  nn_notifier_destroy(n);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_firing_then_resolved_alert, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
