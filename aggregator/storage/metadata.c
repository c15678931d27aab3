/* SPDX-License-Identifier: Apache-2.0 */
/* The metric metadata store: a sorted array of (family, tenant) entries. Senders repeat
 * the same metadata every minute, so an update is a binary search and a compare; a new
 * family costs one memmove of the array, which the entry cap bounds. */
#include "aggregator/storage/metadata.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/log.h"
#include "common/utf8.h"

#define FILE_MAGIC    "nines-metadata 1\n"
#define MAX_FILE_SIZE (512u << 20)

/* One block: family, tenant, help and unit, each NUL-terminated. */
struct entry {
  const char *family, *tenant, *help, *unit;
  int type;
  char *block;
};

struct nn_metadata {
  char *path;
  size_t max_entries;
  struct entry *e;
  size_t n, cap;
  size_t bytes; /* string blocks held */
  bool dirty;
  uint64_t updates, dropped;
};

static const char *const type_names[] = {"unknown",        "counter", "gauge", "histogram",
                                         "gaugehistogram", "summary", "info",  "stateset"};

const char *nn_metadata_type_name(int type)
{
  return type >= 0 && type < (int)(sizeof(type_names) / sizeof(type_names[0])) ? type_names[type]
                                                                               : "unknown";
}

struct nn_metadata *nn_metadata_create(const char *path, size_t max_entries)
{
  struct nn_metadata *md = calloc(1, sizeof(*md));
  if (!md)
    return NULL;
  md->max_entries = max_entries;
  if (path && !(md->path = strdup(path))) {
    free(md);
    return NULL;
  }
  return md;
}

void nn_metadata_destroy(struct nn_metadata *md)
{
  if (!md)
    return;
  for (size_t i = 0; i < md->n; i++)
    free(md->e[i].block);
  free(md->e);
  free(md->path);
  free(md);
}

/* Index of (family, tenant), or where it would go with *found false. */
static size_t find(const struct nn_metadata *md, const char *family, const char *tenant,
                   bool *found)
{
  size_t lo = 0, hi = md->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(md->e[mid].family, family);
    if (c == 0)
      c = strcmp(md->e[mid].tenant, tenant);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = false;
  return lo;
}

static bool field_ok(const char *s, size_t n)
{
  return n <= NN_METADATA_MAX_FIELD && nn_utf8_valid(s, n) && !memchr(s, '\0', n);
}

static bool same_str(const char *have, const char *s, size_t n)
{
  return strlen(have) == n && memcmp(have, s, n) == 0;
}

int nn_metadata_set(struct nn_metadata *md, const char *tenant, const char *family,
                    size_t family_len, int type, const char *help, size_t help_len,
                    const char *unit, size_t unit_len)
{
  if (!tenant)
    tenant = "";
  if (family_len == 0)
    return NN_EINVAL;
  if (type < 0 || type > NN_METADATA_STATESET)
    type = NN_METADATA_UNKNOWN;
  size_t tenant_len = strlen(tenant);
  if (!field_ok(family, family_len) || !field_ok(help, help_len) || !field_ok(unit, unit_len) ||
      !field_ok(tenant, tenant_len)) {
    md->dropped++;
    return NN_ELIMIT;
  }
  size_t total = family_len + tenant_len + help_len + unit_len + 4;
  if (md->bytes + total > NN_METADATA_MAX_BYTES) {
    md->dropped++;
    return NN_ELIMIT;
  }
  char *block = malloc(total);
  if (!block)
    return NN_ENOMEM;
  char *p = block;
  struct entry ne = {.type = type, .block = block};
  const char *src[4] = {family, tenant, help, unit};
  size_t len[4] = {family_len, tenant_len, help_len, unit_len};
  const char **dst[4] = {&ne.family, &ne.tenant, &ne.help, &ne.unit};
  for (int i = 0; i < 4; i++) {
    memcpy(p, src[i], len[i]);
    p[len[i]] = '\0';
    *dst[i] = p;
    p += len[i] + 1;
  }
  bool found;
  size_t at = find(md, ne.family, ne.tenant, &found);
  if (found) {
    struct entry *e = &md->e[at];
    if (e->type == type && same_str(e->help, help, help_len) && same_str(e->unit, unit, unit_len)) {
      free(block);
      return 0;
    }
    md->bytes -= strlen(e->family) + strlen(e->tenant) + strlen(e->help) + strlen(e->unit) + 4;
    free(e->block);
    *e = ne;
  } else {
    if (md->n >= md->max_entries) {
      free(block);
      md->dropped++;
      return NN_ELIMIT;
    }
    if (md->n == md->cap) {
      size_t cap = md->cap ? md->cap * 2 : 64;
      struct entry *ne_arr = realloc(md->e, cap * sizeof(*ne_arr));
      if (!ne_arr) {
        free(block);
        return NN_ENOMEM;
      }
      md->e = ne_arr;
      md->cap = cap;
    }
    memmove(&md->e[at + 1], &md->e[at], (md->n - at) * sizeof(*md->e));
    md->e[at] = ne;
    md->n++;
  }
  md->bytes += total;
  md->updates++;
  md->dirty = true;
  return 1;
}

/* ---- remote write ---- */

static bool pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
  uint64_t r = 0;
  for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
    uint8_t b = *(*p)++;
    r |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = r;
      return true;
    }
  }
  return false;
}

/* Skips one field of wire type wt; for length-delimited ones returns the payload. */
static bool pb_field(const uint8_t **p, const uint8_t *end, unsigned wt, const uint8_t **sub,
                     size_t *sublen, uint64_t *varint)
{
  uint64_t v;
  switch (wt) {
  case 0: return pb_varint(p, end, varint);
  case 1:
    if (end - *p < 8)
      return false;
    *p += 8;
    return true;
  case 5:
    if (end - *p < 4)
      return false;
    *p += 4;
    return true;
  case 2:
    if (!pb_varint(p, end, &v) || v > (uint64_t)(end - *p))
      return false;
    *sub = *p;
    *sublen = (size_t)v;
    *p += v;
    return true;
  default: return false;
  }
}

int nn_metadata_add_write_request(struct nn_metadata *md, const char *tenant, const void *buf,
                                  size_t n)
{
  const uint8_t *p = buf, *end = p + n;
  int seen = 0;
  while (p < end) {
    uint64_t key, vi = 0;
    const uint8_t *sub = NULL;
    size_t sublen = 0;
    if (!pb_varint(&p, end, &key) || !pb_field(&p, end, (unsigned)(key & 7), &sub, &sublen, &vi))
      return NN_ECORRUPT;
    if (key != (3 << 3 | 2))
      continue;
    const uint8_t *q = sub, *qend = sub + sublen;
    const char *fam = "", *help = "", *unit = "";
    size_t fam_len = 0, help_len = 0, unit_len = 0;
    uint64_t type = 0;
    while (q < qend) {
      uint64_t k, v = 0;
      const uint8_t *s = NULL;
      size_t sl = 0;
      if (!pb_varint(&q, qend, &k) || !pb_field(&q, qend, (unsigned)(k & 7), &s, &sl, &v))
        return NN_ECORRUPT;
      switch (k) {
      case 1 << 3 | 0: type = v; break;
      case 2 << 3 | 2: fam = (const char *)s, fam_len = sl; break;
      case 4 << 3 | 2: help = (const char *)s, help_len = sl; break;
      case 5 << 3 | 2: unit = (const char *)s, unit_len = sl; break;
      default: break;
      }
    }
    seen++;
    int rc = nn_metadata_set(md, tenant, fam, fam_len, type > NN_METADATA_STATESET ? 0 : (int)type,
                             help, help_len, unit, unit_len);
    if (rc == NN_ENOMEM)
      return rc;
  }
  return seen;
}

/* ---- the file ---- */

static int put_escaped(struct nn_buf *b, const char *s)
{
  int rc = 0;
  for (; *s && rc == 0; s++) {
    switch (*s) {
    case '\\': rc = nn_buf_appends(b, "\\\\"); break;
    case '\t': rc = nn_buf_appends(b, "\\t"); break;
    case '\n': rc = nn_buf_appends(b, "\\n"); break;
    default: rc = nn_buf_appendc(b, *s); break;
    }
  }
  return rc;
}

int nn_metadata_save(struct nn_metadata *md)
{
  if (!md || !md->dirty || !md->path)
    return 0;
  struct nn_buf b;
  nn_buf_init(&b, MAX_FILE_SIZE);
  int rc = nn_buf_appends(&b, FILE_MAGIC);
  for (size_t i = 0; i < md->n && rc == 0; i++) {
    const struct entry *e = &md->e[i];
    if ((rc = put_escaped(&b, e->family)) == 0 && (rc = nn_buf_appendc(&b, '\t')) == 0 &&
        (rc = put_escaped(&b, e->tenant)) == 0 &&
        (rc = nn_buf_printf(&b, "\t%d\t", e->type)) == 0 && (rc = put_escaped(&b, e->unit)) == 0 &&
        (rc = nn_buf_appendc(&b, '\t')) == 0 && (rc = put_escaped(&b, e->help)) == 0)
      rc = nn_buf_appendc(&b, '\n');
  }
  char tmp[4096];
  FILE *f = NULL;
  if (rc == 0 && snprintf(tmp, sizeof(tmp), "%s.tmp", md->path) >= (int)sizeof(tmp))
    rc = NN_EINVAL;
  if (rc == 0 && !(f = fopen(tmp, "wb")))
    rc = NN_ERRNO(errno);
  if (rc == 0 && fwrite(b.data, 1, b.len, f) != b.len)
    rc = NN_ERRNO(errno ? errno : EIO);
  if (f && fclose(f) != 0 && rc == 0)
    rc = NN_ERRNO(errno);
  if (rc == 0 && rename(tmp, md->path) < 0)
    rc = NN_ERRNO(errno);
  if (rc < 0 && f)
    unlink(tmp);
  if (rc == 0)
    md->dirty = false;
  else
    nn_warn("metadata", "cannot write %s: %s", md->path, nn_strerror(rc));
  nn_buf_fini(&b);
  return rc;
}

/* Splits one line into 5 tab-separated fields, unescaping in place. */
static bool split_line(char *line, char *f[5])
{
  int k = 0;
  f[0] = line;
  char *w = line;
  for (char *r = line; *r; r++) {
    if (*r == '\t') {
      *w++ = '\0';
      if (++k >= 5)
        return false;
      f[k] = w;
    } else if (*r == '\\') {
      char c = *++r;
      if (c == '\\' || c == 't' || c == 'n')
        *w++ = c == 't' ? '\t' : c == 'n' ? '\n' : '\\';
      else
        return false;
    } else {
      *w++ = *r;
    }
  }
  *w = '\0';
  return k == 4;
}

int nn_metadata_parse(struct nn_metadata *md, char *data, size_t len)
{
  size_t ml = strlen(FILE_MAGIC);
  if (len < ml || memcmp(data, FILE_MAGIC, ml) != 0)
    return NN_ECORRUPT;
  char *p = data + ml, *end = data + len;
  while (p < end) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl)
      return NN_ECORRUPT; /* a torn last line */
    *nl = '\0';
    char *f[5];
    char *te;
    if (memchr(p, '\0', (size_t)(nl - p)) || !split_line(p, f))
      return NN_ECORRUPT;
    long type = strtol(f[2], &te, 10);
    if (*te || te == f[2])
      return NN_ECORRUPT;
    int rc = nn_metadata_set(md, f[1], f[0], strlen(f[0]), (int)type, f[4], strlen(f[4]), f[3],
                             strlen(f[3]));
    if (rc == NN_ENOMEM || rc == NN_EINVAL)
      return rc == NN_EINVAL ? NN_ECORRUPT : rc;
    p = nl + 1;
  }
  return 0;
}

int nn_metadata_load(struct nn_metadata *md)
{
  if (!md->path)
    return 0;
  FILE *f = fopen(md->path, "rb");
  if (!f)
    return errno == ENOENT ? 0 : NN_ERRNO(errno);
  struct nn_buf b;
  nn_buf_init(&b, MAX_FILE_SIZE);
  char chunk[65536];
  size_t got;
  int rc = 0;
  while (rc == 0 && (got = fread(chunk, 1, sizeof(chunk), f)) > 0)
    rc = nn_buf_append(&b, chunk, got);
  if (rc == 0 && ferror(f))
    rc = NN_EIO;
  fclose(f);
  if (rc == 0)
    rc = b.data ? nn_metadata_parse(md, b.data, b.len) : NN_ECORRUPT;
  nn_buf_fini(&b);
  md->dirty = false;
  return rc;
}

/* ---- the API ---- */

static bool same_entry(const struct entry *a, const struct entry *b)
{
  return a->type == b->type && strcmp(a->help, b->help) == 0 && strcmp(a->unit, b->unit) == 0;
}

int nn_metadata_json(const struct nn_metadata *md, const char *tenant, const char *metric,
                     long limit, long limit_per_metric, struct nn_buf *out)
{
  int rc = nn_buf_appendc(out, '{');
  long metrics = 0;
  for (size_t i = 0; i < md->n && rc == 0;) {
    size_t j = i;
    while (j < md->n && strcmp(md->e[j].family, md->e[i].family) == 0)
      j++;
    if (limit >= 0 && metrics >= limit)
      break;
    if (metric && strcmp(md->e[i].family, metric) != 0) {
      i = j;
      continue;
    }
    long listed = 0;
    for (size_t k = i; k < j && rc == 0; k++) {
      const struct entry *e = &md->e[k];
      if (tenant && strcmp(e->tenant, tenant) != 0)
        continue;
      if (limit_per_metric > 0 && listed >= limit_per_metric)
        break;
      bool dup = false;
      for (size_t m = i; m < k && !dup; m++)
        dup = (!tenant || strcmp(md->e[m].tenant, tenant) == 0) && same_entry(&md->e[m], e);
      if (dup)
        continue;
      if (listed == 0) {
        if ((metrics > 0 && (rc = nn_buf_appendc(out, ',')) < 0) ||
            (rc = nn_buf_append_json_str(out, e->family, strlen(e->family))) < 0 ||
            (rc = nn_buf_appends(out, ":[")) < 0)
          break;
      } else if ((rc = nn_buf_appendc(out, ',')) < 0) {
        break;
      }
      const char *ty = nn_metadata_type_name(e->type);
      if ((rc = nn_buf_appends(out, "{\"type\":")) < 0 ||
          (rc = nn_buf_append_json_str(out, ty, strlen(ty))) < 0 ||
          (rc = nn_buf_appends(out, ",\"help\":")) < 0 ||
          (rc = nn_buf_append_json_str(out, e->help, strlen(e->help))) < 0 ||
          (rc = nn_buf_appends(out, ",\"unit\":")) < 0 ||
          (rc = nn_buf_append_json_str(out, e->unit, strlen(e->unit))) < 0 ||
          (rc = nn_buf_appendc(out, '}')) < 0)
        break;
      listed++;
    }
    if (rc == 0 && listed > 0) {
      rc = nn_buf_appendc(out, ']');
      metrics++;
    }
    i = j;
  }
  return rc < 0 ? rc : nn_buf_appendc(out, '}');
}

void nn_metadata_stats(const struct nn_metadata *md, struct nn_metadata_stats *st)
{
  if (!md) {
    *st = (struct nn_metadata_stats){0};
    return;
  }
  st->entries = md->n;
  st->updates_total = md->updates;
  st->dropped_total = md->dropped;
}
