/* SPDX-License-Identifier: Apache-2.0 */
/* Relabeling as Prometheus's model/relabel does it, on a plain label array standing in for
 * labels.Builder. Regexes are PCRE2 (JIT when available) wrapped as ^(?:re)\z with
 * DOLLAR_ENDONLY, which is Go's anchoring; a match limit stands in for RE2's linear-time
 * guarantee, and constructs RE2 rejects are rejected here too, so a config that works here
 * works in Prometheus and the other way round. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "agent/relabel/relabel.h"

#include <ctype.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/error.h"
#include "common/yaml.h"

#define MATCH_LIMIT 1000000u

struct nn_relabel_regex {
  pcre2_code *code;
  pcre2_match_data *md;
  pcre2_match_context *mctx;
  uint32_t ncap; /* capture groups + 1 */
};

/* Scans for Perl features RE2 lacks. Returns a description or NULL. */
static const char *non_re2_construct(const char *p)
{
  bool in_class = false;
  for (size_t i = 0; p[i]; i++) {
    char c = p[i];
    if (c == '\\') {
      char d = p[i + 1];
      if (!in_class && ((d >= '1' && d <= '9') || d == 'g' || d == 'k'))
        return "backreferences are not supported (RE2 syntax)";
      if (d)
        i++;
      continue;
    }
    if (in_class) {
      if (c == ']')
        in_class = false;
      continue;
    }
    if (c == '[') {
      in_class = true;
      if (p[i + 1] == '^')
        i++;
      if (p[i + 1] == ']')
        i++;
      continue;
    }
    if (c == '(' && p[i + 1] == '?') {
      const char *q = p + i + 2;
      if (*q == '=' || *q == '!' || (*q == '<' && (q[1] == '=' || q[1] == '!')))
        return "lookaround is not supported (RE2 syntax)";
      if (*q == '>' || *q == '|' || *q == 'R' || (*q >= '0' && *q <= '9') || *q == '+' ||
          *q == '&' || *q == '(' || *q == '#')
        return "this group construct is not supported (RE2 syntax)";
    }
    if ((c == '+' || c == '*' || c == '?' || c == '}') && p[i + 1] == '+')
      return "possessive quantifiers are not supported (RE2 syntax)";
  }
  return NULL;
}

struct nn_relabel_regex *nn_relabel_regex_compile(const char *pattern, char *err, size_t errlen)
{
  struct nn_relabel_regex *re = NULL;
  char *full = NULL;
  int ec;
  PCRE2_SIZE eo;
  const char *why = non_re2_construct(pattern);
  if (why) {
    snprintf(err, errlen, "invalid regex \"%s\": %s", pattern, why);
    return NULL;
  }
  size_t n = strlen(pattern);
  if (!(full = malloc(n + 8)) || !(re = calloc(1, sizeof(*re))))
    goto oom;
  memcpy(full, "^(?:", 4);
  memcpy(full + 4, pattern, n);
  memcpy(full + 4 + n, ")\\z", 4);
  re->code =
      pcre2_compile((PCRE2_SPTR)full, PCRE2_ZERO_TERMINATED,
                    PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY, &ec, &eo, NULL);
  if (!re->code) {
    PCRE2_UCHAR msg[160];
    pcre2_get_error_message(ec, msg, sizeof(msg));
    size_t off = eo >= 4 ? eo - 4 : 0;
    snprintf(err, errlen, "invalid regex \"%s\" at offset %zu: %s", pattern, off, (char *)msg);
    free(full);
    nn_relabel_regex_destroy(re);
    return NULL;
  }
  free(full);
  full = NULL;
  (void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE); /* interpreter if JIT is missing */
  uint32_t caps = 0;
  pcre2_pattern_info(re->code, PCRE2_INFO_CAPTURECOUNT, &caps);
  re->ncap = caps + 1;
  if (!(re->md = pcre2_match_data_create(re->ncap, NULL)) ||
      !(re->mctx = pcre2_match_context_create(NULL)))
    goto oom;
  pcre2_set_match_limit(re->mctx, MATCH_LIMIT);
  pcre2_set_depth_limit(re->mctx, 10000);
  return re;
oom:
  snprintf(err, errlen, "out of memory compiling regex");
  free(full);
  nn_relabel_regex_destroy(re);
  return NULL;
}

void nn_relabel_regex_destroy(struct nn_relabel_regex *re)
{
  if (!re)
    return;
  pcre2_match_context_free(re->mctx);
  pcre2_match_data_free(re->md);
  pcre2_code_free(re->code);
  free(re);
}

bool nn_relabel_regex_match(struct nn_relabel_regex *re, const char *s, size_t n)
{
  /* A match limit hit counts as no match: RE2 would have answered, but an exponential
   * pattern must not stall the loop. */
  return pcre2_match(re->code, (PCRE2_SPTR)s, n, 0, 0, re->md, re->mctx) > 0;
}

static bool is_word_byte(unsigned char c)
{
  return isalnum(c) || c == '_' || c >= 0x80;
}

static void put(char *out, size_t outcap, size_t *len, const char *s, size_t n)
{
  if (*len < outcap) {
    size_t k = outcap - 1 - *len < n ? outcap - 1 - *len : n;
    if (outcap)
      memcpy(out + *len, s, k);
  }
  *len += n;
}

size_t nn_relabel_expand(struct nn_relabel_regex *re, const char *t, const char *s, char *out,
                         size_t outcap)
{
  size_t len = 0;
  PCRE2_SIZE *ov = pcre2_get_ovector_pointer(re->md);
  while (*t) {
    const char *d = strchr(t, '$');
    if (!d) {
      put(out, outcap, &len, t, strlen(t));
      break;
    }
    put(out, outcap, &len, t, (size_t)(d - t));
    t = d + 1;
    if (*t == '$') {
      put(out, outcap, &len, "$", 1);
      t++;
      continue;
    }
    /* Go's extract(): a name of letters, digits and '_', optionally in braces. */
    bool brace = *t == '{';
    const char *ns = brace ? t + 1 : t, *ne = ns;
    while (*ne && is_word_byte((unsigned char)*ne))
      ne++;
    if (ne == ns || (brace && *ne != '}')) {
      put(out, outcap, &len, "$", 1); /* malformed: the $ is literal text */
      continue;
    }
    t = brace ? ne + 1 : ne;
    size_t nl = (size_t)(ne - ns);
    long num = 0;
    for (size_t i = 0; i < nl; i++) {
      if (ns[i] < '0' || ns[i] > '9' || num >= 100000000) {
        num = -1;
        break;
      }
      num = num * 10 + (ns[i] - '0');
    }
    if (ns[0] == '0' && nl > 1)
      num = -1;
    if (num < 0) {
      char name[128];
      if (nl >= sizeof(name))
        continue;
      memcpy(name, ns, nl);
      name[nl] = '\0';
      int k = pcre2_substring_number_from_name(re->code, (PCRE2_SPTR)name);
      if (k < 0)
        continue;
      num = k;
    }
    if ((uint32_t)num < re->ncap && ov[2 * num] != PCRE2_UNSET)
      put(out, outcap, &len, s + ov[2 * num], ov[2 * num + 1] - ov[2 * num]);
  }
  if (outcap)
    out[len < outcap ? len : outcap - 1] = '\0';
  return len;
}

/* ---- scratch ---- */

struct nn_relabel_block {
  struct nn_relabel_block *next;
  size_t cap, used;
  char data[];
};

void nn_relabel_scratch_init(struct nn_relabel_scratch *s)
{
  s->blocks = s->cur = NULL;
}

void nn_relabel_scratch_reset(struct nn_relabel_scratch *s)
{
  for (struct nn_relabel_block *b = s->blocks; b; b = b->next)
    b->used = 0;
  s->cur = s->blocks;
}

void nn_relabel_scratch_fini(struct nn_relabel_scratch *s)
{
  struct nn_relabel_block *b = s->blocks;
  while (b) {
    struct nn_relabel_block *next = b->next;
    free(b);
    b = next;
  }
  s->blocks = s->cur = NULL;
}

static char *scratch_alloc(struct nn_relabel_scratch *s, size_t n)
{
  while (s->cur && s->cur->cap - s->cur->used < n) {
    if (!s->cur->next)
      break;
    s->cur = s->cur->next;
  }
  if (!s->cur || s->cur->cap - s->cur->used < n) {
    size_t cap = n > 16384 ? n : 16384;
    struct nn_relabel_block *b = malloc(sizeof(*b) + cap);
    if (!b)
      return NULL;
    b->cap = cap;
    b->used = 0;
    b->next = NULL;
    if (s->cur) {
      b->next = s->cur->next;
      s->cur->next = b;
    } else {
      b->next = s->blocks;
      s->blocks = b;
    }
    s->cur = b;
  }
  char *p = s->cur->data + s->cur->used;
  s->cur->used += n;
  return p;
}

char *nn_relabel_scratch_strndup(struct nn_relabel_scratch *s, const char *p, size_t n)
{
  char *d = scratch_alloc(s, n + 1);
  if (d) {
    memcpy(d, p, n);
    d[n] = '\0';
  }
  return d;
}

/* ---- the label builder ---- */

struct builder {
  struct nn_label *v;
  size_t n, cap;
};

static const char *lb_get(const struct builder *b, const char *name)
{
  for (size_t i = 0; i < b->n; i++)
    if (strcmp(b->v[i].name, name) == 0)
      return b->v[i].value;
  return "";
}

static void lb_del(struct builder *b, const char *name)
{
  for (size_t i = 0; i < b->n; i++) {
    if (strcmp(b->v[i].name, name) == 0) {
      memmove(b->v + i, b->v + i + 1, (b->n - i - 1) * sizeof(b->v[0]));
      b->n--;
      return;
    }
  }
}

/* An empty value deletes, as labels.Builder.Set does. */
static int lb_set(struct builder *b, const char *name, const char *value)
{
  if (!*value) {
    lb_del(b, name);
    return 0;
  }
  for (size_t i = 0; i < b->n; i++) {
    if (strcmp(b->v[i].name, name) == 0) {
      b->v[i].value = value;
      return 0;
    }
  }
  if (b->n >= b->cap)
    return NN_ETOOBIG;
  b->v[b->n].name = name;
  b->v[b->n].value = value;
  b->n++;
  return 0;
}

static bool label_name_ok(const char *s)
{
  return nn_label_name_valid(s, strlen(s));
}

static char *expand_dup(struct nn_relabel_regex *re, const char *tmpl, const char *s,
                        struct nn_relabel_scratch *sc)
{
  char small[256];
  size_t need = nn_relabel_expand(re, tmpl, s, small, sizeof(small));
  if (need < sizeof(small))
    return nn_relabel_scratch_strndup(sc, small, need);
  char *d = scratch_alloc(sc, need + 1);
  if (d)
    nn_relabel_expand(re, tmpl, s, d, need + 1);
  return d;
}

static void hashmod(const char *val, uint64_t mod, char *out, size_t outlen)
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  uint64_t v = 0;
  EVP_Digest(val, strlen(val), md, &mdlen, EVP_md5(), NULL);
  /* The last 8 bytes of the MD5, big-endian: what Prometheus has always used. */
  for (int i = 8; i < 16; i++)
    v = (v << 8) | md[i];
  snprintf(out, outlen, "%" PRIu64, v % mod);
}

static int apply_rule(const struct nn_relabel_rule *r, struct builder *b,
                      struct nn_relabel_scratch *sc)
{
  const char *val = "";
  size_t vlen = 0;
  int rc;

  if (r->nsource == 1) {
    val = lb_get(b, r->source_labels[0]);
    vlen = strlen(val);
  } else if (r->nsource > 1) {
    size_t seplen = strlen(r->separator), total = 0;
    for (size_t i = 0; i < r->nsource; i++)
      total += strlen(lb_get(b, r->source_labels[i])) + (i ? seplen : 0);
    char *j = scratch_alloc(sc, total + 1);
    if (!j)
      return NN_ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < r->nsource; i++) {
      const char *x = lb_get(b, r->source_labels[i]);
      size_t xl = strlen(x);
      if (i) {
        memcpy(j + o, r->separator, seplen);
        o += seplen;
      }
      memcpy(j + o, x, xl);
      o += xl;
    }
    j[o] = '\0';
    val = j;
    vlen = o;
  }

  switch (r->action) {
  case NN_RELABEL_DROP: return nn_relabel_regex_match(r->regex, val, vlen) ? 0 : 1;
  case NN_RELABEL_KEEP: return nn_relabel_regex_match(r->regex, val, vlen) ? 1 : 0;
  case NN_RELABEL_DROPEQUAL: return strcmp(lb_get(b, r->target_label), val) == 0 ? 0 : 1;
  case NN_RELABEL_KEEPEQUAL: return strcmp(lb_get(b, r->target_label), val) != 0 ? 0 : 1;
  case NN_RELABEL_REPLACE: {
    if (vlen == 0 && r->regex_is_default && !strchr(r->target_label, '$') &&
        !strchr(r->replacement, '$')) {
      rc = lb_set(b, r->target_label, r->replacement);
      return rc < 0 ? rc : 1;
    }
    if (!nn_relabel_regex_match(r->regex, val, vlen))
      return 1;
    char *target = expand_dup(r->regex, r->target_label, val, sc);
    if (!target)
      return NN_ENOMEM;
    if (!label_name_ok(target))
      return 1;
    char *res = expand_dup(r->regex, r->replacement, val, sc);
    if (!res)
      return NN_ENOMEM;
    rc = lb_set(b, target, res);
    return rc < 0 ? rc : 1;
  }
  case NN_RELABEL_LOWERCASE:
  case NN_RELABEL_UPPERCASE: {
    /* ASCII only; Go's ToLower also maps non-ASCII letters. */
    char *d = nn_relabel_scratch_strndup(sc, val, vlen);
    if (!d)
      return NN_ENOMEM;
    for (size_t i = 0; i < vlen; i++)
      d[i] = (char)(r->action == NN_RELABEL_LOWERCASE ? tolower((unsigned char)d[i])
                                                      : toupper((unsigned char)d[i]));
    rc = lb_set(b, r->target_label, d);
    return rc < 0 ? rc : 1;
  }
  case NN_RELABEL_HASHMOD: {
    char num[24];
    hashmod(val, r->modulus, num, sizeof(num));
    char *d = nn_relabel_scratch_strndup(sc, num, strlen(num));
    if (!d)
      return NN_ENOMEM;
    rc = lb_set(b, r->target_label, d);
    return rc < 0 ? rc : 1;
  }
  case NN_RELABEL_LABELMAP: {
    /* Range over the labels as they were before this rule (Builder.Range semantics). */
    size_t n0 = b->n;
    struct nn_label snap[64], *sv = snap;
    if (n0 > 64 && !(sv = (struct nn_label *)scratch_alloc(sc, n0 * sizeof(*sv))))
      return NN_ENOMEM;
    memcpy(sv, b->v, n0 * sizeof(*sv));
    for (size_t i = 0; i < n0; i++) {
      if (!nn_relabel_regex_match(r->regex, sv[i].name, strlen(sv[i].name)))
        continue;
      char *nm = expand_dup(r->regex, r->replacement, sv[i].name, sc);
      if (!nm)
        return NN_ENOMEM;
      if ((rc = lb_set(b, nm, sv[i].value)) < 0)
        return rc;
    }
    return 1;
  }
  case NN_RELABEL_LABELDROP:
  case NN_RELABEL_LABELKEEP: {
    bool drop_on_match = r->action == NN_RELABEL_LABELDROP;
    size_t o = 0;
    for (size_t i = 0; i < b->n; i++) {
      bool m = nn_relabel_regex_match(r->regex, b->v[i].name, strlen(b->v[i].name));
      if (m != drop_on_match)
        b->v[o++] = b->v[i];
    }
    b->n = o;
    return 1;
  }
  }
  return 1;
}

int nn_relabel_process(const struct nn_relabel_config *cfg, struct nn_label *labels, size_t *n,
                       size_t cap, struct nn_relabel_scratch *scratch)
{
  struct builder b = {labels, *n, cap};
  for (size_t i = 0; cfg && i < cfg->n; i++) {
    int rc = apply_rule(&cfg->rules[i], &b, scratch);
    if (rc <= 0) {
      *n = b.n;
      return rc;
    }
  }
  *n = nn_labels_canonicalize(labels, b.n);
  return 1;
}

/* ---- configuration ---- */

static const char *const action_names[] = {
    "replace",  "keep",      "drop",      "keepequal", "dropequal", "hashmod",
    "labelmap", "labeldrop", "labelkeep", "lowercase", "uppercase",
};

const char *nn_relabel_action_name(enum nn_relabel_action a)
{
  return (unsigned)a < sizeof(action_names) / sizeof(action_names[0]) ? action_names[a] : "?";
}

static void rule_free(struct nn_relabel_rule *r)
{
  for (size_t i = 0; i < r->nsource; i++)
    free(r->source_labels[i]);
  free(r->source_labels);
  free(r->separator);
  free(r->regex_src);
  free(r->target_label);
  free(r->replacement);
  nn_relabel_regex_destroy(r->regex);
  memset(r, 0, sizeof(*r));
}

void nn_relabel_config_free(struct nn_relabel_config *cfg)
{
  if (!cfg)
    return;
  for (size_t i = 0; i < cfg->n; i++)
    rule_free(&cfg->rules[i]);
  free(cfg->rules);
  cfg->rules = NULL;
  cfg->n = 0;
}

static int dup_scalar(const struct nn_yaml_node *v, const char *key, char **dst,
                      struct nn_cfg_error *err)
{
  if (v->kind != NN_YAML_SCALAR && v->kind != NN_YAML_NULL)
    return nn_cfg_error_set(err, v, "%s must be a string, not a %s", key,
                            nn_yaml_kind_name(v->kind));
  if (v->kind == NN_YAML_SCALAR && memchr(v->scalar, '\0', v->scalar_len))
    return nn_cfg_error_set(err, v, "%s must not contain NUL bytes", key);
  char *s = strdup(v->kind == NN_YAML_SCALAR ? v->scalar : "");
  if (!s)
    return NN_ENOMEM;
  free(*dst);
  *dst = s;
  return 0;
}

/* Prometheus's relabelTarget: ^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$, i.e. a sequence
 * of name characters and $ references, not starting with a digit. */
static bool template_target_ok(const char *s)
{
  if (!*s || (*s >= '0' && *s <= '9'))
    return false;
  while (*s) {
    if (*s == '$') {
      s++;
      if (*s == '{') {
        const char *e = ++s;
        while (isalnum((unsigned char)*e) || *e == '_')
          e++;
        if (e == s || *e != '}')
          return false;
        s = e + 1;
      } else {
        const char *e = s;
        while (isalnum((unsigned char)*e) || *e == '_')
          e++;
        if (e == s)
          return false;
        s = e;
      }
    } else if (isalnum((unsigned char)*s) || *s == '_') {
      s++;
    } else {
      return false;
    }
  }
  return true;
}

static int bind_rule(const struct nn_yaml_node *m, struct nn_relabel_rule *r,
                     struct nn_cfg_error *err)
{
  const struct nn_yaml_node *action_node = m, *target_node = m;
  char action[32] = "";
  bool has_action = false, has_sources = false;
  int rc = 0;

  if (m->kind != NN_YAML_MAP)
    return nn_cfg_error_set(err, m, "a relabel config must be a map, not a %s",
                            nn_yaml_kind_name(m->kind));
  if (!(r->separator = strdup(";")) || !(r->regex_src = strdup("(.*)")) ||
      !(r->target_label = strdup("")) || !(r->replacement = strdup("$1")))
    return NN_ENOMEM;
  r->regex_is_default = true;
  for (size_t i = 0; i < m->len; i++) {
    const struct nn_yaml_node *k = m->keys[i], *v = m->items[i];
    const char *key = k->scalar ? k->scalar : "";
    if (strcmp(key, "source_labels") == 0) {
      if (v->kind == NN_YAML_NULL)
        continue;
      if (v->kind != NN_YAML_SEQ)
        return nn_cfg_error_set(err, v, "source_labels must be a list of label names");
      has_sources = true;
      if (!(r->source_labels = calloc(v->len ? v->len : 1, sizeof(char *))))
        return NN_ENOMEM;
      for (size_t j = 0; j < v->len; j++) {
        const struct nn_yaml_node *it = v->items[j];
        if (it->kind != NN_YAML_SCALAR || !nn_label_name_valid(it->scalar, it->scalar_len))
          return nn_cfg_error_set(err, it, "\"%s\" is not a valid label name",
                                  it->scalar ? it->scalar : "");
        if (!(r->source_labels[j] = strdup(it->scalar)))
          return NN_ENOMEM;
        r->nsource = j + 1;
      }
    } else if (strcmp(key, "separator") == 0) {
      rc = dup_scalar(v, key, &r->separator, err);
    } else if (strcmp(key, "regex") == 0) {
      rc = dup_scalar(v, key, &r->regex_src, err);
      r->regex_is_default = false;
      if (rc == 0) {
        char msg[400];
        if (!(r->regex = nn_relabel_regex_compile(r->regex_src, msg, sizeof(msg))))
          return nn_cfg_error_set(err, v, "%s", msg);
      }
    } else if (strcmp(key, "target_label") == 0) {
      rc = dup_scalar(v, key, &r->target_label, err);
      target_node = v;
    } else if (strcmp(key, "replacement") == 0) {
      rc = dup_scalar(v, key, &r->replacement, err);
    } else if (strcmp(key, "action") == 0) {
      if (v->kind != NN_YAML_SCALAR)
        return nn_cfg_error_set(err, v, "action must be a string");
      /* Longer than any action: keep a prefix, which then fails as unknown. */
      snprintf(action, sizeof(action), "%s", v->scalar);
      has_action = true;
      action_node = v;
    } else if (strcmp(key, "modulus") == 0) {
      char *end;
      if (v->kind != NN_YAML_SCALAR || v->scalar[0] == '-' || v->scalar[0] == '\0')
        return nn_cfg_error_set(err, v, "modulus must be a non-negative integer");
      unsigned long long x = strtoull(v->scalar, &end, 10);
      if (*end)
        return nn_cfg_error_set(err, v, "modulus must be a non-negative integer");
      r->modulus = x;
    } else {
      return nn_cfg_error_set(err, k,
                              "unknown field \"%s\" in relabel config (known: source_labels, "
                              "separator, regex, modulus, target_label, replacement, action)",
                              key);
    }
    if (rc < 0)
      goto out;
  }
  if (has_action) {
    size_t i;
    for (char *c = action; *c; c++)
      *c = (char)tolower((unsigned char)*c);
    for (i = 0; i < sizeof(action_names) / sizeof(action_names[0]); i++)
      if (strcmp(action, action_names[i]) == 0)
        break;
    if (i == sizeof(action_names) / sizeof(action_names[0])) {
      rc = nn_cfg_error_set(err, action_node,
                            "unknown relabel action \"%s\" (known: replace, keep, drop, keepequal, "
                            "dropequal, hashmod, labelmap, labeldrop, labelkeep, lowercase, "
                            "uppercase)",
                            action);
      goto out;
    }
    r->action = (enum nn_relabel_action)i;
  }
  if (!r->regex) {
    char msg[400];
    if (!(r->regex = nn_relabel_regex_compile(r->regex_src, msg, sizeof(msg)))) {
      rc = nn_cfg_error_set(err, m, "%s", msg);
      goto out;
    }
  }

  /* Validation in Prometheus's order and words. */
  enum nn_relabel_action a = r->action;
  const char *an = nn_relabel_action_name(a);
  bool def_regex = strcmp(r->regex_src, "(.*)") == 0 && r->regex_is_default;
  bool def_sep = strcmp(r->separator, ";") == 0, def_rep = strcmp(r->replacement, "$1") == 0;
  if (r->modulus == 0 && a == NN_RELABEL_HASHMOD) {
    rc = nn_cfg_error_set(err, m, "relabel configuration for hashmod requires non-zero modulus");
  } else if ((a == NN_RELABEL_REPLACE || a == NN_RELABEL_HASHMOD || a == NN_RELABEL_LOWERCASE ||
              a == NN_RELABEL_UPPERCASE || a == NN_RELABEL_KEEPEQUAL ||
              a == NN_RELABEL_DROPEQUAL) &&
             !*r->target_label) {
    rc = nn_cfg_error_set(err, m,
                          "relabel configuration for %s action requires 'target_label' value", an);
  } else if (a == NN_RELABEL_REPLACE && !strchr(r->target_label, '$') &&
             !label_name_ok(r->target_label)) {
    rc = nn_cfg_error_set(err, target_node, "\"%s\" is invalid 'target_label' for %s action",
                          r->target_label, an);
  } else if (a == NN_RELABEL_REPLACE && strchr(r->target_label, '$') &&
             !template_target_ok(r->target_label)) {
    rc = nn_cfg_error_set(err, target_node, "\"%s\" is invalid 'target_label' for %s action",
                          r->target_label, an);
  } else if ((a == NN_RELABEL_LOWERCASE || a == NN_RELABEL_UPPERCASE || a == NN_RELABEL_KEEPEQUAL ||
              a == NN_RELABEL_DROPEQUAL || a == NN_RELABEL_HASHMOD) &&
             !label_name_ok(r->target_label)) {
    rc = nn_cfg_error_set(err, target_node, "\"%s\" is invalid 'target_label' for %s action",
                          r->target_label, an);
  } else if ((a == NN_RELABEL_LOWERCASE || a == NN_RELABEL_UPPERCASE || a == NN_RELABEL_KEEPEQUAL ||
              a == NN_RELABEL_DROPEQUAL) &&
             !def_rep) {
    rc = nn_cfg_error_set(err, m, "'replacement' can not be set for %s action", an);
  } else if (a == NN_RELABEL_LABELMAP && !template_target_ok(r->replacement)) {
    rc = nn_cfg_error_set(err, m, "\"%s\" is invalid 'replacement' for %s action", r->replacement,
                          an);
  } else if ((a == NN_RELABEL_DROPEQUAL || a == NN_RELABEL_KEEPEQUAL) &&
             (!def_regex || r->modulus || !def_sep || !def_rep)) {
    rc = nn_cfg_error_set(err, m,
                          "%s action requires only 'source_labels' and `target_label`, and no "
                          "other fields",
                          an);
  } else if ((a == NN_RELABEL_LABELDROP || a == NN_RELABEL_LABELKEEP) &&
             (has_sources || *r->target_label || r->modulus || !def_sep || !def_rep)) {
    rc = nn_cfg_error_set(err, m, "%s action requires only 'regex', and no other fields", an);
  }
out:
  return rc;
}

int nn_relabel_config_bind(const struct nn_yaml_node *seq, struct nn_relabel_config *cfg,
                           struct nn_cfg_error *err)
{
  int rc = 0;
  memset(cfg, 0, sizeof(*cfg));
  if (!seq || seq->kind == NN_YAML_NULL)
    return 0;
  if (seq->kind != NN_YAML_SEQ)
    return nn_cfg_error_set(err, seq, "relabel configs must be a list of maps, not a %s",
                            nn_yaml_kind_name(seq->kind));
  if (seq->len == 0)
    return 0;
  if (!(cfg->rules = calloc(seq->len, sizeof(*cfg->rules))))
    return NN_ENOMEM;
  cfg->n = seq->len;
  for (size_t i = 0; i < seq->len; i++) {
    if ((rc = bind_rule(seq->items[i], &cfg->rules[i], err)) < 0) {
      if (rc == NN_ENOMEM)
        nn_cfg_error_set(err, seq->items[i], "out of memory");
      nn_relabel_config_free(cfg);
      return NN_ECONFIG;
    }
  }
  return 0;
}

int nn_relabel_cfg_parse(const struct nn_yaml_node *node, void *dst, struct nn_cfg_error *err)
{
  nn_relabel_config_free(dst);
  return nn_relabel_config_bind(node, dst, err);
}

void nn_relabel_cfg_free(void *dst)
{
  nn_relabel_config_free(dst);
}
