/* SPDX-License-Identifier: Apache-2.0 */
/* Option-table binding: defaults, every type, nested sections and lists, secrets from files
 * and the environment, and the quality of the error messages (position, field path, typo
 * suggestions). Run under ASan, the frees double as leak checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/error.h"
#include "common/yaml.h"

struct url_cfg {
  char *url;
  int64_t timeout_ms;
  struct nn_cfg_strmap headers;
};

struct tls_cfg {
  char *cert_file;
  bool insecure;
};

struct shipper_cfg {
  struct nn_cfg_list urls; /* struct url_cfg */
  int64_t batch_wait_ms;
  uint64_t max_batch_bytes;
  struct tls_cfg tls;
  char *password;
};

struct test_cfg {
  char *name;
  char *listen_address;
  bool debug;
  int64_t workers;
  double ratio;
  int64_t scrape_interval_ms;
  uint64_t spool_size;
  struct nn_cfg_strlist globs;
  struct nn_cfg_strmap labels;
  struct shipper_cfg shipper;
  char *token;
  char *codecs; /* custom: a string or a list, joined with ',' */
};

/* Accepts "zstd" or [zstd, lz4]; stores them comma-joined. */
static int parse_codecs(const struct nn_yaml_node *node, void *dst, struct nn_cfg_error *err)
{
  struct nn_buf b;
  nn_buf_init(&b, 1024);
  if (node->kind == NN_YAML_SCALAR) {
    nn_buf_append(&b, node->scalar, node->scalar_len);
  } else if (node->kind == NN_YAML_SEQ) {
    for (size_t i = 0; i < node->len; i++) {
      const struct nn_yaml_node *it = node->items[i];
      if (it->kind != NN_YAML_SCALAR || strcmp(it->scalar, "snappy") == 0) {
        nn_buf_fini(&b);
        return nn_cfg_error_set(err, it, "unsupported codec");
      }
      if (i)
        nn_buf_appendc(&b, ',');
      nn_buf_append(&b, it->scalar, it->scalar_len);
    }
  } else {
    nn_buf_fini(&b);
    return nn_cfg_error_set(err, node, "expected a codec or a list of codecs");
  }
  char **p = dst;
  free(*p);
  *p = nn_buf_steal(&b, NULL);
  return 0;
}

static void free_codecs(void *dst)
{
  char **p = dst;
  free(*p);
  *p = NULL;
}

static const struct nn_cfg_option url_opts[] = {
    {.name = "url",
     .type = NN_CFG_STR,
     .offset = offsetof(struct url_cfg, url),
     .help = "Endpoint URL.",
     .flags = NN_CFG_REQUIRED},
    {.name = "timeout",
     .type = NN_CFG_DURATION,
     .offset = offsetof(struct url_cfg, timeout_ms),
     .def = "10s",
     .help = "Request timeout."},
    {.name = "headers", .type = NN_CFG_STRMAP, .offset = offsetof(struct url_cfg, headers)},
    {0},
};

static const struct nn_cfg_option tls_opts[] = {
    {.name = "cert_file", .type = NN_CFG_STR, .offset = offsetof(struct tls_cfg, cert_file)},
    {.name = "insecure_skip_verify",
     .type = NN_CFG_BOOL,
     .offset = offsetof(struct tls_cfg, insecure),
     .def = "false"},
    {0},
};

static const struct nn_cfg_option shipper_opts[] = {
    {.name = "urls",
     .type = NN_CFG_LIST,
     .offset = offsetof(struct shipper_cfg, urls),
     .sub = url_opts,
     .elem_size = sizeof(struct url_cfg),
     .help = "Where batches go."},
    {.name = "batch_wait",
     .type = NN_CFG_DURATION,
     .offset = offsetof(struct shipper_cfg, batch_wait_ms),
     .def = "1s"},
    {.name = "max_batch_size",
     .type = NN_CFG_SIZE,
     .offset = offsetof(struct shipper_cfg, max_batch_bytes),
     .def = "1MiB"},
    {.name = "tls",
     .type = NN_CFG_SECTION,
     .offset = offsetof(struct shipper_cfg, tls),
     .sub = tls_opts},
    {.name = "password",
     .type = NN_CFG_STR,
     .offset = offsetof(struct shipper_cfg, password),
     .flags = NN_CFG_SECRET},
    {0},
};

static const struct nn_cfg_option test_opts[] = {
    {.name = "name",
     .type = NN_CFG_STR,
     .offset = offsetof(struct test_cfg, name),
     .flags = NN_CFG_REQUIRED,
     .help = "Instance name."},
    {.name = "listen_address",
     .type = NN_CFG_STR,
     .offset = offsetof(struct test_cfg, listen_address),
     .def = "0.0.0.0:9090",
     .help = "Address of the HTTP server.\nHost and port."},
    {.name = "debug", .type = NN_CFG_BOOL, .offset = offsetof(struct test_cfg, debug)},
    {.name = "workers",
     .type = NN_CFG_INT,
     .offset = offsetof(struct test_cfg, workers),
     .def = "4"},
    {.name = "ratio",
     .type = NN_CFG_DOUBLE,
     .offset = offsetof(struct test_cfg, ratio),
     .def = "0.5"},
    {.name = "scrape_interval",
     .type = NN_CFG_DURATION,
     .offset = offsetof(struct test_cfg, scrape_interval_ms),
     .def = "1m"},
    {.name = "spool_size",
     .type = NN_CFG_SIZE,
     .offset = offsetof(struct test_cfg, spool_size),
     .def = "1GB"},
    {.name = "globs",
     .type = NN_CFG_STRLIST,
     .offset = offsetof(struct test_cfg, globs),
     .def = "[/var/log/containers/*.log]"},
    {.name = "labels",
     .type = NN_CFG_STRMAP,
     .offset = offsetof(struct test_cfg, labels),
     .def = "{env: prod}"},
    {.name = "shipper",
     .type = NN_CFG_SECTION,
     .offset = offsetof(struct test_cfg, shipper),
     .sub = shipper_opts},
    {.name = "token",
     .type = NN_CFG_STR,
     .offset = offsetof(struct test_cfg, token),
     .flags = NN_CFG_SECRET},
    {.name = "codecs",
     .type = NN_CFG_CUSTOM,
     .offset = offsetof(struct test_cfg, codecs),
     .def = "zstd",
     .custom = parse_codecs,
     .custom_free = free_codecs},
    {0},
};

static int load(const char *text, struct test_cfg *c, struct nn_cfg_error *err)
{
  memset(c, 0, sizeof(*c));
  return nn_cfg_load_string("t.yaml", text, strlen(text), test_opts, c, err);
}

static void expect_error(const char *text, const char *want_formatted)
{
  struct test_cfg c;
  struct nn_cfg_error err;
  int rc = load(text, &c, &err);
  char buf[1024];
  nn_cfg_error_format(&err, buf, sizeof(buf));
  nn_cfg_free(test_opts, &c);
  if (rc == 0)
    fail_msg("expected an error for:\n%s", text);
  if (strstr(buf, want_formatted) == NULL)
    fail_msg("error\n  %s\ndoes not contain\n  %s", buf, want_formatted);
}

static void defaults_fill_every_type(void **state)
{
  struct test_cfg c;
  memset(&c, 0, sizeof(c));
  struct nn_cfg_error err;
  assert_int_equal(nn_cfg_apply_defaults(test_opts, &c, &err), 0);
  assert_null(c.name);
  assert_string_equal(c.listen_address, "0.0.0.0:9090");
  assert_false(c.debug);
  assert_int_equal(c.workers, 4);
  assert_true(c.ratio == 0.5);
  assert_int_equal(c.scrape_interval_ms, 60000);
  assert_true(c.spool_size == 1ULL << 30);
  assert_int_equal(c.globs.n, 1);
  assert_string_equal(c.globs.v[0], "/var/log/containers/*.log");
  assert_string_equal(nn_cfg_strmap_get(&c.labels, "env"), "prod");
  assert_int_equal(c.shipper.batch_wait_ms, 1000);
  assert_true(c.shipper.max_batch_bytes == 1ULL << 20);
  assert_int_equal(c.shipper.urls.n, 0);
  assert_string_equal(c.codecs, "zstd");
  /* Applying twice releases the first set of values (ASan would see the leak). */
  assert_int_equal(nn_cfg_apply_defaults(test_opts, &c, &err), 0);
  nn_cfg_free(test_opts, &c);
  assert_null(c.listen_address);
  assert_null(c.globs.v);
  assert_null(c.codecs);
}

static void full_document_binds_nested_sections_and_lists(void **state)
{
  struct test_cfg c;
  struct nn_cfg_error err;
  const char *y = "name: edge-1\n"
                  "listen_address: \":8080\"\n"
                  "debug: True\n"
                  "workers: 0x10\n"
                  "ratio: 2.5e-1\n"
                  "scrape_interval: 1h30m\n"
                  "spool_size: 512MiB\n"
                  "globs: [/a/*.log, /b/*.log]\n"
                  "labels: {cluster: eu-1, team: ~}\n"
                  "codecs: [zstd, lz4]\n"
                  "shipper:\n"
                  "  batch_wait: 250ms\n"
                  "  tls: {insecure_skip_verify: true}\n"
                  "  urls:\n"
                  "    - url: http://a:3100\n"
                  "      headers: {X-Scope-OrgID: t1}\n"
                  "    - url: http://b:3100\n"
                  "      timeout: 2s\n";
  int rc = load(y, &c, &err);
  if (rc != 0)
    fail_msg("%s:%d:%d %s %s", err.file, err.line, err.col, err.field, err.msg);
  assert_string_equal(c.name, "edge-1");
  assert_string_equal(c.listen_address, ":8080");
  assert_true(c.debug);
  assert_int_equal(c.workers, 16);
  assert_true(c.ratio == 0.25);
  assert_int_equal(c.scrape_interval_ms, 5400000);
  assert_true(c.spool_size == 512ULL << 20);
  assert_int_equal(c.globs.n, 2);
  assert_string_equal(c.globs.v[1], "/b/*.log");
  assert_int_equal(c.labels.n, 2); /* replaces the default map, not merged into it */
  assert_null(nn_cfg_strmap_get(&c.labels, "env"));
  assert_string_equal(nn_cfg_strmap_get(&c.labels, "cluster"), "eu-1");
  assert_string_equal(nn_cfg_strmap_get(&c.labels, "team"), "");
  assert_string_equal(c.codecs, "zstd,lz4");
  assert_int_equal(c.shipper.batch_wait_ms, 250);
  assert_true(c.shipper.max_batch_bytes == 1ULL << 20);
  assert_true(c.shipper.tls.insecure);
  assert_int_equal(c.shipper.urls.n, 2);
  struct url_cfg *u = c.shipper.urls.items;
  assert_string_equal(u[0].url, "http://a:3100");
  assert_int_equal(u[0].timeout_ms, 10000); /* list items get their defaults */
  assert_string_equal(nn_cfg_strmap_get(&u[0].headers, "X-Scope-OrgID"), "t1");
  assert_string_equal(u[1].url, "http://b:3100");
  assert_int_equal(u[1].timeout_ms, 2000);
  assert_int_equal(u[1].headers.n, 0);
  nn_cfg_free(test_opts, &c);
  assert_null(c.shipper.urls.items);
  assert_int_equal(c.shipper.urls.n, 0);
}

static void typos_point_at_the_key_and_suggest(void **state)
{
  expect_error("name: x\nlisten_adress: \":1\"\n",
               "t.yaml:2:1: field \"listen_adress\": unknown field \"listen_adress\"; did you "
               "mean 'listen_address'?");
  expect_error("name: x\nlistenAddress: \":1\"\n", "did you mean 'listen_address'?");
  expect_error("name: x\nshipper:\n  urls:\n    - url: u\n    - url: v\n      timout: 3s\n",
               "t.yaml:6:7: field \"shipper.urls[1].timout\": unknown field \"timout\"; did you "
               "mean 'timeout'?");
  expect_error("name: x\nshipper:\n  pasword_file: /x\n", "did you mean 'password_file'?");
  /* Nothing close: list what exists instead. */
  expect_error("name: x\nshipper: {zzzzzzzz: 1}\n",
               "unknown field \"zzzzzzzz\" (known fields: urls, batch_wait, max_batch_size, tls, "
               "password)");
}

static void type_errors_name_the_expected_type(void **state)
{
  expect_error("name: x\ndebug: yes\n",
               "t.yaml:2:8: field \"debug\": expected a boolean (true or false), got \"yes\"");
  expect_error("name: x\nworkers: \"4\"\n", "expected an integer, got the quoted string \"4\"");
  expect_error("name: x\nworkers: 1.5\n", "field \"workers\": expected an integer, got \"1.5\"");
  expect_error("name: x\nworkers: 9223372036854775808\n", "out of range");
  expect_error("name: x\nratio: abc\n", "expected a number");
  expect_error("name: x\nratio: 0x1p3\n", "expected a number");
  expect_error("name: x\nscrape_interval: 1.5m\n",
               "t.yaml:2:18: field \"scrape_interval\": expected a duration");
  expect_error("name: x\nscrape_interval: 300y\n", "out of range");
  expect_error("name: x\nspool_size: 1kB\n", "field \"spool_size\": expected a size");
  expect_error("name: x\nglobs: /a\n", "field \"globs\": expected a list of strings, got a scalar");
  expect_error("name: x\nglobs: [a, [b]]\n",
               "t.yaml:2:12: field \"globs[1]\": expected a string, got a sequence");
  expect_error("name: x\nlabels: [a]\n", "expected a map of strings, got a sequence");
  expect_error("name: x\nlabels: {a: {b: c}}\n", "field \"labels.a\": expected a string");
  expect_error("name: x\nshipper: [1]\n", "field \"shipper\": expected a map of options");
  expect_error("name: x\nshipper: {urls: {url: a}}\n", "expected a list (of maps), got a map");
  expect_error("name: x\nshipper: {urls: [a]}\n",
               "field \"shipper.urls[0]\": expected a map of options, got a scalar");
  expect_error("name:\n", "field \"name\": expected a string, got an empty value");
  expect_error("name: \"a\\0b\"\n", "NUL");
  expect_error("[1, 2]\n", "t.yaml:1:1: expected a map of options, got a sequence");
  expect_error("name: x\n? [a]\n: b\n", "option names must be plain strings");
  expect_error("name: x\ncodecs: [zstd, snappy]\n",
               "t.yaml:2:16: field \"codecs\": unsupported codec");
  expect_error("name: x\ncodecs: {a: b}\n", "expected a codec or a list of codecs");
}

static void missing_required_fields_point_at_the_map(void **state)
{
  expect_error("debug: true\n", "t.yaml:1:1: field \"name\": missing required field \"name\"");
  expect_error("", "field \"name\": missing required field \"name\"");
  expect_error("name: x\nshipper:\n  urls:\n    - timeout: 1s\n",
               "t.yaml:4:7: field \"shipper.urls[0].url\": missing required field \"url\"");
}

static void yaml_errors_come_through(void **state)
{
  expect_error("name: x\nname: y\n", "t.yaml:2:1: duplicate key \"name\"");
  expect_error("name: [x\n", "t.yaml:");
  struct test_cfg c;
  struct nn_cfg_error err;
  memset(&c, 0, sizeof(c));
  assert_int_equal(nn_cfg_load_file("/nonexistent/nines.yaml", test_opts, &c, &err), -2);
  assert_string_equal(err.file, "/nonexistent/nines.yaml");
  nn_cfg_free(test_opts, &c);
}

static char *write_file(const char *name, const char *content)
{
  static char path[512];
  snprintf(path, sizeof(path), "%s/%s", NN_BINARY_DIR, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(content, f);
  fclose(f);
  return path;
}

static void secrets_come_from_files_and_the_environment(void **state)
{
  char secret_name[64], cfg_name[64];
  snprintf(secret_name, sizeof(secret_name), "cfg_secret_%d", (int)getpid());
  snprintf(cfg_name, sizeof(cfg_name), "cfg_main_%d.yaml", (int)getpid());
  char secret_path[512];
  snprintf(secret_path, sizeof(secret_path), "%s", write_file(secret_name, "  s3cret pw \n\n"));
  /* Relative *_file paths are resolved from the config file's directory. */
  char cfg[256];
  snprintf(
      cfg, sizeof(cfg),
      "name: x\nshipper:\n  password_file: %s\ntoken: \"Bearer ${NN_CFG_TEST_TOKEN}$${lit}\"\n",
      secret_name);
  char cfg_path[512];
  snprintf(cfg_path, sizeof(cfg_path), "%s", write_file(cfg_name, cfg));
  setenv("NN_CFG_TEST_TOKEN", "abc", 1);

  struct test_cfg c;
  struct nn_cfg_error err;
  memset(&c, 0, sizeof(c));
  int rc = nn_cfg_load_file(cfg_path, test_opts, &c, &err);
  if (rc != 0)
    fail_msg("%s:%d:%d %s %s", err.file, err.line, err.col, err.field, err.msg);
  assert_string_equal(c.shipper.password, "s3cret pw");
  assert_string_equal(c.token, "Bearer abc${lit}");
  nn_cfg_free(test_opts, &c);

  /* Only SECRET options expand variables. */
  memset(&c, 0, sizeof(c));
  assert_int_equal(load("name: ${NN_CFG_TEST_TOKEN}\n", &c, &err), 0);
  assert_string_equal(c.name, "${NN_CFG_TEST_TOKEN}");
  nn_cfg_free(test_opts, &c);

  /* A quoted reference in a secret integer is still an integer once expanded. */
  static const struct nn_cfg_option port_opts[] = {
      {.name = "port", .type = NN_CFG_INT, .offset = 0, .flags = NN_CFG_SECRET},
      {0},
  };
  int64_t port = 0;
  const char *port_yaml = "port: \"${NN_CFG_TEST_PORT}\"";
  setenv("NN_CFG_TEST_PORT", "9093", 1);
  assert_int_equal(
      nn_cfg_load_string("p.yaml", port_yaml, strlen(port_yaml), port_opts, &port, &err), 0);
  assert_int_equal(port, 9093);
  unsetenv("NN_CFG_TEST_PORT");

  unsetenv("NN_CFG_TEST_UNSET");
  expect_error("name: x\ntoken: ${NN_CFG_TEST_UNSET}\n",
               "t.yaml:2:8: field \"token\": environment variable NN_CFG_TEST_UNSET is not set");
  expect_error("name: x\ntoken: ${1BAD}\n", "bad environment variable reference");
  expect_error("name: x\ntoken: ${OPEN\n", "bad environment variable reference");
  expect_error("name: x\ntoken: a\ntoken_file: /x\n",
               "t.yaml:3:1: field \"token\": set twice: \"token\" and \"token_file\"");
  expect_error("name: x\ntoken_file: /nonexistent/secret\n",
               "t.yaml:2:13: field \"token\": cannot read secret file \"/nonexistent/secret\"");
  expect_error("name: x\ntoken_file: [a]\n", "expected the path of a file");
  expect_error("name_file: /x\n", "unknown field \"name_file\""); /* not a SECRET option */
  unlink(secret_path);
  unlink(cfg_path);
  unsetenv("NN_CFG_TEST_TOKEN");
}

static void bind_works_on_a_subtree_and_free_copes_with_half_filled(void **state)
{
  const char *y = "groups:\n"
                  "  - shipper:\n"
                  "      urls: [{url: a}, {url: b, timeout: 1d}, {url: c, timeout: bad}]\n";
  struct nn_yaml_doc *doc = NULL;
  struct nn_yaml_error yerr;
  assert_int_equal(nn_yaml_load_string("rules.yaml", y, strlen(y), &doc, &yerr), 0);
  const struct nn_yaml_node *sh =
      nn_yaml_map_get(nn_yaml_seq_item(nn_yaml_map_get(doc->root, "groups"), 0), "shipper");
  struct shipper_cfg s;
  memset(&s, 0, sizeof(s));
  struct nn_cfg_error err;
  assert_int_equal(nn_cfg_bind(sh, shipper_opts, &s, &err), NN_ECONFIG);
  assert_string_equal(err.file, "rules.yaml");
  assert_int_equal(err.line, 3);
  assert_string_equal(err.field, "urls[2].timeout");
  /* The first two items were bound and the third half-bound: all of it must be freed. */
  assert_int_equal(s.urls.n, 3);
  assert_int_equal(((struct url_cfg *)s.urls.items)[1].timeout_ms, 86400000);
  nn_cfg_free(shipper_opts, &s);
  assert_null(s.urls.items);
  nn_cfg_free(shipper_opts, &s); /* twice is harmless */
  nn_yaml_doc_destroy(doc);
}

static void bad_defaults_are_reported_as_table_bugs(void **state)
{
  struct tls_cfg t;
  memset(&t, 0, sizeof(t));
  static const struct nn_cfg_option bad[] = {
      {.name = "insecure",
       .type = NN_CFG_BOOL,
       .offset = offsetof(struct tls_cfg, insecure),
       .def = "maybe"},
      {0},
  };
  struct nn_cfg_error err;
  assert_int_equal(nn_cfg_apply_defaults(bad, &t, &err), NN_ECONFIG);
  assert_string_equal(err.field, "insecure");
  assert_non_null(strstr(err.msg, "invalid default \"maybe\""));
  static const struct nn_cfg_option badlist[] = {
      {.name = "l", .type = NN_CFG_STRLIST, .offset = 0, .def = "[a, [b]]"},
      {0},
  };
  struct nn_cfg_strlist l = {0};
  assert_int_equal(nn_cfg_apply_defaults(badlist, &l, &err), NN_ECONFIG);
  assert_non_null(strstr(err.msg, "invalid default"));
  assert_int_equal(err.line, 0);
  nn_cfg_free(badlist, &l);
}

static void help_documents_every_option(void **state)
{
  struct nn_buf b;
  nn_buf_init(&b, 1 << 16);
  assert_int_equal(nn_cfg_write_help(test_opts, &b), 0);
  assert_non_null(strstr(b.data, "name: string (required)\n    Instance name.\n"));
  assert_non_null(strstr(b.data, "listen_address: string (default \"0.0.0.0:9090\")\n"
                                 "    Address of the HTTP server.\n    Host and port.\n"));
  assert_non_null(strstr(b.data, "scrape_interval: duration (default 1m)\n"));
  assert_non_null(strstr(b.data, "shipper: section\n  urls: list of sections\n"
                                 "      Where batches go.\n    url: string (required)\n"));
  assert_non_null(strstr(b.data, "  password: string (secret: or password_file: <path>"));
  nn_buf_fini(&b);
}

static void error_format_leaves_out_missing_parts(void **state)
{
  struct nn_cfg_error e = {.file = "a.yaml", .line = 2, .col = 3, .field = "x.y", .msg = "bad"};
  char buf[128];
  int n = nn_cfg_error_format(&e, buf, sizeof(buf));
  assert_int_equal(n, (int)strlen(buf));
  assert_string_equal(buf, "a.yaml:2:3: field \"x.y\": bad");
  e.line = 0;
  e.field[0] = '\0';
  nn_cfg_error_format(&e, buf, sizeof(buf));
  assert_string_equal(buf, "a.yaml: bad");
  e.file[0] = '\0';
  nn_cfg_error_format(&e, buf, sizeof(buf));
  assert_string_equal(buf, "bad");
  char small[8];
  assert_true(nn_cfg_error_format(&e, small, sizeof(small)) == 3);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(defaults_fill_every_type),
      cmocka_unit_test(full_document_binds_nested_sections_and_lists),
      cmocka_unit_test(typos_point_at_the_key_and_suggest),
      cmocka_unit_test(type_errors_name_the_expected_type),
      cmocka_unit_test(missing_required_fields_point_at_the_map),
      cmocka_unit_test(yaml_errors_come_through),
      cmocka_unit_test(secrets_come_from_files_and_the_environment),
      cmocka_unit_test(bind_works_on_a_subtree_and_free_copes_with_half_filled),
      cmocka_unit_test(bad_defaults_are_reported_as_table_bugs),
      cmocka_unit_test(help_documents_every_option),
      cmocka_unit_test(error_format_leaves_out_missing_parts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
