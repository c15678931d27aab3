/* SPDX-License-Identifier: Apache-2.0 */
/* The YAML tree: positions, scalar typing, anchors and merges, and every cap and error the
 * loader promises (duplicate keys, extra documents, billion laughs, depth, size). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/yaml.h"

static struct nn_yaml_doc *load_ok(const char *text)
{
  struct nn_yaml_doc *doc = NULL;
  struct nn_yaml_error err;
  int rc = nn_yaml_load_string("t.yaml", text, strlen(text), &doc, &err);
  if (rc != 0)
    fail_msg("load failed: %d %s:%d:%d: %s", rc, err.file, err.line, err.col, err.msg);
  return doc;
}

static int load_err(const char *text, const struct nn_yaml_opts *opts, struct nn_yaml_error *err)
{
  struct nn_yaml_doc *doc = (struct nn_yaml_doc *)1;
  int rc = nn_yaml_load_string_opts("t.yaml", text, strlen(text), opts, &doc, err);
  assert_null(doc);
  return rc;
}

static void nodes_keep_positions_and_kinds(void **state)
{
  struct nn_yaml_doc *doc = load_ok("server:\n"
                                    "  listen: \"0.0.0.0:9090\"\n"
                                    "  debug: true\n"
                                    "  empty:\n"
                                    "  tilde: ~\n"
                                    "  word: 'null'\n"
                                    "  urls:\n"
                                    "    - http://a\n"
                                    "    - http://b\n"
                                    "  text: |\n"
                                    "    line one\n");
  const struct nn_yaml_node *root = doc->root;
  assert_int_equal(root->kind, NN_YAML_MAP);
  assert_string_equal(root->file, "t.yaml");
  const struct nn_yaml_node *server = nn_yaml_map_get(root, "server");
  assert_non_null(server);
  assert_int_equal(server->kind, NN_YAML_MAP);
  assert_int_equal(nn_yaml_len(server), 7);
  assert_int_equal(server->line, 2);
  assert_int_equal(server->col, 3);

  const struct nn_yaml_node *listen = nn_yaml_map_get(server, "listen");
  assert_int_equal(listen->kind, NN_YAML_SCALAR);
  assert_string_equal(listen->scalar, "0.0.0.0:9090");
  assert_true(listen->quoted);
  assert_int_equal(listen->line, 2);
  assert_int_equal(listen->col, 11);
  const struct nn_yaml_node *k = nn_yaml_map_key(server, 1);
  assert_true(nn_yaml_scalar_eq(k, "debug"));
  assert_int_equal(k->line, 3);
  assert_int_equal(k->col, 3);
  assert_false(nn_yaml_map_value(server, 1)->quoted);

  assert_int_equal(nn_yaml_map_get(server, "empty")->kind, NN_YAML_NULL);
  assert_int_equal(nn_yaml_map_get(server, "tilde")->kind, NN_YAML_NULL);
  const struct nn_yaml_node *word = nn_yaml_map_get(server, "word");
  assert_int_equal(word->kind, NN_YAML_SCALAR); /* quoted null is a string */
  assert_true(word->quoted);

  const struct nn_yaml_node *urls = nn_yaml_map_get(server, "urls");
  assert_int_equal(urls->kind, NN_YAML_SEQ);
  assert_int_equal(nn_yaml_len(urls), 2);
  assert_string_equal(nn_yaml_seq_item(urls, 1)->scalar, "http://b");
  assert_int_equal(nn_yaml_seq_item(urls, 1)->line, 9);
  assert_int_equal(nn_yaml_seq_item(urls, 1)->col, 7);
  assert_null(nn_yaml_seq_item(urls, 2));
  assert_null(nn_yaml_seq_item(server, 0));
  assert_null(nn_yaml_map_get(urls, "x"));
  assert_null(nn_yaml_map_get(server, "missing"));

  const struct nn_yaml_node *text = nn_yaml_map_get(server, "text");
  assert_string_equal(text->scalar, "line one\n");
  assert_true(text->quoted);
  nn_yaml_doc_destroy(doc);
}

static void scalars_keep_embedded_nul_and_tags(void **state)
{
  struct nn_yaml_doc *doc = load_ok("a: \"x\\0y\"\nb: !!str 123\nc: !!null ''\nd: 12\n");
  const struct nn_yaml_node *a = nn_yaml_map_get(doc->root, "a");
  assert_int_equal(a->scalar_len, 3);
  assert_memory_equal(a->scalar, "x\0y", 3);
  const struct nn_yaml_node *b = nn_yaml_map_get(doc->root, "b");
  assert_true(b->quoted);
  assert_string_equal(b->tag, "tag:yaml.org,2002:str");
  assert_int_equal(nn_yaml_map_get(doc->root, "c")->kind, NN_YAML_NULL);
  const struct nn_yaml_node *d = nn_yaml_map_get(doc->root, "d");
  assert_false(d->quoted);
  assert_null(d->tag);
  nn_yaml_doc_destroy(doc);
}

static void aliases_resolve_to_the_anchored_node(void **state)
{
  struct nn_yaml_doc *doc = load_ok("base: &b {timeout: 5s, retries: 3}\n"
                                    "one: *b\n"
                                    "two:\n"
                                    "  <<: *b\n"
                                    "  retries: 7\n"
                                    "  extra: x\n"
                                    "three:\n"
                                    "  <<: [{a: 1}, {a: 2, b: 2}]\n"
                                    "'<<': literal\n");
  const struct nn_yaml_node *base = nn_yaml_map_get(doc->root, "base");
  assert_ptr_equal(nn_yaml_map_get(doc->root, "one"), base);
  const struct nn_yaml_node *two = nn_yaml_map_get(doc->root, "two");
  assert_int_equal(nn_yaml_len(two), 3);
  assert_string_equal(nn_yaml_map_get(two, "retries")->scalar, "7"); /* explicit key wins */
  assert_string_equal(nn_yaml_map_get(two, "timeout")->scalar, "5s");
  assert_null(nn_yaml_map_get(two, "<<"));
  const struct nn_yaml_node *three = nn_yaml_map_get(doc->root, "three");
  assert_string_equal(nn_yaml_map_get(three, "a")->scalar, "1"); /* earlier source wins */
  assert_string_equal(nn_yaml_map_get(three, "b")->scalar, "2");
  /* A quoted "<<" is an ordinary key. */
  assert_string_equal(nn_yaml_map_get(doc->root, "<<")->scalar, "literal");
  nn_yaml_doc_destroy(doc);
}

static void alias_errors_are_reported(void **state)
{
  struct nn_yaml_error err;
  assert_int_equal(load_err("a: *nope\n", NULL, &err), NN_EINVAL);
  assert_int_equal(err.line, 1);
  assert_int_equal(err.col, 4);
  assert_non_null(strstr(err.msg, "*nope"));
  /* An alias inside its own anchor would make a cycle. */
  assert_int_equal(load_err("a: &x [1, *x]\n", NULL, &err), NN_EINVAL);
  assert_non_null(strstr(err.msg, "*x"));
  assert_int_equal(load_err("a: {<<: 3}\n", NULL, &err), NN_EINVAL);
  assert_non_null(strstr(err.msg, "merge"));
}

static void billion_laughs_hits_the_node_cap(void **state)
{
  const char *lol = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                    "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                    "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                    "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                    "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
  struct nn_yaml_error err;
  assert_int_equal(load_err(lol, NULL, &err), NN_ELIMIT);
  assert_non_null(strstr(err.msg, "nodes"));
  assert_true(err.line >= 5 && err.line <= 7);

  /* The same shape, small enough, loads, and its walk weight counts every use. */
  struct nn_yaml_doc *doc = load_ok("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n");
  assert_int_equal(nn_yaml_map_get(doc->root, "c")->weight, 1 + 2 * (1 + 2 * 3));
  nn_yaml_doc_destroy(doc);

  struct nn_yaml_opts o = {.max_nodes = 10};
  assert_int_equal(load_err("[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]", &o, &err), NN_ELIMIT);
  o.max_nodes = 11;
  doc = NULL;
  assert_int_equal(
      nn_yaml_load_string_opts("t", "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]", 31, &o, &doc, &err), 0);
  nn_yaml_doc_destroy(doc);
}

static void depth_past_the_cap_is_refused(void **state)
{
  char deep[256];
  size_t n = 0;
  for (int i = 0; i < 65; i++)
    deep[n++] = '[';
  for (int i = 0; i < 65; i++)
    deep[n++] = ']';
  deep[n] = '\0';
  struct nn_yaml_error err;
  assert_int_equal(load_err(deep, NULL, &err), NN_ELIMIT);
  assert_non_null(strstr(err.msg, "deeper"));
}

static void depth_at_the_cap_loads_and_aliases_count_their_height(void **state)
{
  char deep[256];
  size_t n = 0;
  for (int i = 0; i < 64; i++)
    deep[n++] = '[';
  for (int i = 0; i < 64; i++)
    deep[n++] = ']';
  deep[n] = '\0';
  struct nn_yaml_doc *doc = load_ok(deep);
  assert_int_equal(doc->root->height, 64);
  nn_yaml_doc_destroy(doc);

  struct nn_yaml_opts o = {.max_depth = 4};
  struct nn_yaml_error err;
  /* Height 3 anchored at depth 1, used at depth 2: 2 + 3 > 4. */
  assert_int_equal(load_err("a: &x [[[1]]]\nb: [*x]\n", &o, &err), NN_ELIMIT);
  assert_int_equal(err.line, 2);
  assert_non_null(strstr(err.msg, "alias"));
}

static void duplicate_keys_are_errors(void **state)
{
  struct nn_yaml_error err;
  assert_int_equal(load_err("a: 1\nb: 2\na: 3\n", NULL, &err), NN_EINVAL);
  assert_int_equal(err.line, 3);
  assert_int_equal(err.col, 1);
  assert_non_null(strstr(err.msg, "duplicate key \"a\""));
  assert_non_null(strstr(err.msg, "line 1"));
  assert_int_equal(load_err("x:\n  - {k: 1, k: 2}\n", NULL, &err), NN_EINVAL);
  assert_int_equal(err.line, 2);
}

static void multiple_documents_need_the_flag(void **state)
{
  const char *two = "a: 1\n---\nb: 2\n";
  struct nn_yaml_error err;
  assert_int_equal(load_err(two, NULL, &err), NN_EINVAL);
  assert_int_equal(err.line, 2);
  assert_non_null(strstr(err.msg, "second YAML document"));

  struct nn_yaml_opts o = {.flags = NN_YAML_MULTI_DOC};
  struct nn_yaml_doc *doc = NULL;
  assert_int_equal(nn_yaml_load_string_opts("t", two, strlen(two), &o, &doc, &err), 0);
  assert_int_equal(doc->nroots, 2);
  assert_ptr_equal(doc->root, doc->roots[0]);
  assert_true(nn_yaml_scalar_eq(nn_yaml_map_key(doc->roots[1], 0), "b"));
  nn_yaml_doc_destroy(doc);

  /* Anchors do not cross documents. */
  assert_int_equal(load_err("a: &x 1\n---\nb: *x\n", &o, &err), NN_EINVAL);
}

static void empty_input_is_a_null_root(void **state)
{
  struct nn_yaml_doc *doc = load_ok("");
  assert_int_equal(doc->root->kind, NN_YAML_NULL);
  assert_int_equal(doc->nroots, 0);
  nn_yaml_doc_destroy(doc);
  doc = load_ok("# only a comment\n");
  assert_int_equal(doc->root->kind, NN_YAML_NULL);
  nn_yaml_doc_destroy(doc);
}

static void syntax_errors_carry_positions(void **state)
{
  struct nn_yaml_error err;
  assert_int_equal(load_err("a: 1\nb: [1, 2\nc: 3\n", NULL, &err), NN_EINVAL);
  assert_true(err.line >= 2);
  assert_string_equal(err.file, "t.yaml");
  char buf[700];
  nn_yaml_error_format(&err, buf, sizeof(buf));
  assert_true(strncmp(buf, "t.yaml:", 7) == 0);

  assert_int_equal(load_err("a: \"\xff\"\n", NULL, &err), NN_EINVAL); /* invalid UTF-8 */
  assert_int_equal(load_err("a:\tb: c\n  d\n", NULL, &err), NN_EINVAL);
}

static void size_cap_and_files(void **state)
{
  struct nn_yaml_error err;
  struct nn_yaml_opts o = {.max_bytes = 8};
  assert_int_equal(load_err("a: 123456789\n", &o, &err), NN_ETOOBIG);

  char path[512];
  snprintf(path, sizeof(path), "%s/yaml_test_%d.yaml", NN_BINARY_DIR, (int)getpid());
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("key: value\nlist: [1, 2]\n", f);
  fclose(f);
  struct nn_yaml_doc *doc = NULL;
  assert_int_equal(nn_yaml_load_file(path, &doc, &err), 0);
  assert_string_equal(doc->root->file, path);
  assert_string_equal(nn_yaml_map_get(doc->root, "key")->scalar, "value");
  nn_yaml_doc_destroy(doc);

  o.max_bytes = 10;
  doc = (struct nn_yaml_doc *)1;
  assert_int_equal(nn_yaml_load_file_opts(path, &o, &doc, &err), NN_ETOOBIG);
  assert_null(doc);
  assert_string_equal(err.file, path);
  unlink(path);

  assert_int_equal(nn_yaml_load_file(path, &doc, &err), NN_ERRNO(ENOENT));
  assert_non_null(strstr(err.msg, "cannot read"));
  assert_int_equal(nn_yaml_load_file(NN_BINARY_DIR, &doc, &err), NN_ERRNO(EISDIR));
  nn_yaml_doc_destroy(NULL);
}

static void error_format_leaves_out_unknown_parts(void **state)
{
  struct nn_yaml_error e = {.file = "f.yaml", .line = 3, .col = 7, .msg = "bad"};
  char buf[64];
  nn_yaml_error_format(&e, buf, sizeof(buf));
  assert_string_equal(buf, "f.yaml:3:7: bad");
  e.line = 0;
  nn_yaml_error_format(&e, buf, sizeof(buf));
  assert_string_equal(buf, "f.yaml: bad");
  assert_string_equal(nn_yaml_kind_name(NN_YAML_SEQ), "sequence");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(nodes_keep_positions_and_kinds),
      cmocka_unit_test(scalars_keep_embedded_nul_and_tags),
      cmocka_unit_test(aliases_resolve_to_the_anchored_node),
      cmocka_unit_test(alias_errors_are_reported),
      cmocka_unit_test(billion_laughs_hits_the_node_cap),
      cmocka_unit_test(depth_past_the_cap_is_refused),
      cmocka_unit_test(depth_at_the_cap_loads_and_aliases_count_their_height),
      cmocka_unit_test(duplicate_keys_are_errors),
      cmocka_unit_test(multiple_documents_need_the_flag),
      cmocka_unit_test(empty_input_is_a_null_root),
      cmocka_unit_test(syntax_errors_carry_positions),
      cmocka_unit_test(size_cap_and_files),
      cmocka_unit_test(error_format_leaves_out_unknown_parts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
