/* SPDX-License-Identifier: Apache-2.0 */
/* Agent destination settings: the retry block (defaults, overrides, positioned errors for
 * bad values) and its translation into ship destinations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/app/dests.h"
#include "agent/app/internal.h"
#include "agent/ship/ship.h"
#include "common/config.h"
#include "common/error.h"

/* Binds one destination from YAML; on failure returns the formatted error in msg. */
static int load(const char *yaml, struct nn_agent_dest_config *d, char *msg, size_t len)
{
  struct nn_cfg_error err;
  memset(d, 0, sizeof(*d));
  memset(&err, 0, sizeof(err));
  int rc = nn_cfg_load_string("agent.yml", yaml, strlen(yaml), nn_agent_dest_options, d, &err);
  msg[0] = '\0';
  if (rc < 0)
    nn_cfg_error_format(&err, msg, len);
  return rc;
}

#define HEAD "name: a\nurl: http://127.0.0.1:9595/loki/api/v1/push\n"

static void retry_defaults_are_one_second_and_a_minute(void **state)
{
  (void)state;
  struct nn_agent_dest_config d;
  char msg[1024];
  assert_int_equal(load(HEAD, &d, msg, sizeof(msg)), 0);
  assert_int_equal(d.retry.min_backoff_ms, 1000);
  assert_int_equal(d.retry.max_backoff_ms, 60000);
  nn_cfg_free(nn_agent_dest_options, &d);
  /* An empty block, and a block naming one key, keep the other default. */
  assert_int_equal(load(HEAD "retry:\n", &d, msg, sizeof(msg)), 0);
  assert_int_equal(d.retry.max_backoff_ms, 60000);
  nn_cfg_free(nn_agent_dest_options, &d);
  assert_int_equal(load(HEAD "retry: {max_backoff: 5s}\n", &d, msg, sizeof(msg)), 0);
  assert_int_equal(d.retry.min_backoff_ms, 1000);
  assert_int_equal(d.retry.max_backoff_ms, 5000);
  nn_cfg_free(nn_agent_dest_options, &d);
}

static void retry_values_reach_the_ship_destination(void **state)
{
  (void)state;
  struct nn_agent_dest_config d;
  char msg[1024];
  assert_int_equal(
      load(HEAD "retry:\n  min_backoff: 100ms\n  max_backoff: 2s\n", &d, msg, sizeof(msg)), 0);
  assert_int_equal(d.retry.min_backoff_ms, 100);
  assert_int_equal(d.retry.max_backoff_ms, 2000);
  struct nn_cfg_list list = {&d, 1};
  struct nn_ship_dest_config *sd;
  size_t n;
  assert_int_equal(nn__agent_dests(&list, "/loki/api/v1/push", &sd, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(sd[0].backoff_min_ms, 100);
  assert_int_equal(sd[0].backoff_max_ms, 2000);
  free(sd);
  nn_cfg_free(nn_agent_dest_options, &d);
  /* No destination configured: the local aggregator inherits the ship's backoff (0). */
  struct nn_cfg_list none = {NULL, 0};
  assert_int_equal(nn__agent_dests(&none, "/loki/api/v1/push", &sd, &n), 0);
  assert_int_equal(sd[0].backoff_min_ms, 0);
  assert_int_equal(sd[0].backoff_max_ms, 0);
  free(sd);
}

static void bad_retry_values_are_rejected_where_they_are(void **state)
{
  (void)state;
  static const struct {
    const char *yaml, *want;
  } cases[] = {
      {HEAD "retry: {min_backoff: 2s, max_backoff: 1s}\n",
       "agent.yml:3:39: field \"retry\": max_backoff (1000ms) is shorter than min_backoff "
       "(2000ms): raise max_backoff or lower min_backoff"},
      /* max_backoff left at its 60s default: the error points at min_backoff. */
      {HEAD "retry: {min_backoff: 90s}\n",
       "agent.yml:3:22: field \"retry\": max_backoff (60000ms)"},
      {HEAD "retry: {min_backoff: 0s}\n",
       "agent.yml:3:22: field \"retry\": min_backoff must be at least 1ms"},
      {HEAD "retry: {max_backoff: 60}\n",
       "agent.yml:3:22: field \"retry\": max_backoff: expected a duration"},
      {HEAD "retry: {max_backof: 5s}\n", "did you mean 'max_backoff'?"},
      {HEAD "retry: 5s\n", "agent.yml:3:8: field \"retry\": expected a map"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct nn_agent_dest_config d;
    char msg[1024];
    assert_int_equal(load(cases[i].yaml, &d, msg, sizeof(msg)), NN_ECONFIG);
    if (!strstr(msg, cases[i].want))
      fail_msg("case %zu: got \"%s\", want \"%s\"", i, msg, cases[i].want);
    nn_cfg_free(nn_agent_dest_options, &d);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(retry_defaults_are_one_second_and_a_minute),
      cmocka_unit_test(retry_values_reach_the_ship_destination),
      cmocka_unit_test(bad_retry_values_are_rejected_where_they_are),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
