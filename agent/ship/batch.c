/* SPDX-License-Identifier: Apache-2.0 */
/* The batch builder: one implementation for both payload types. Records are grouped per key
 * (Loki stream, remote-write series) in first-seen order and framed as the outer protobuf
 * message, so a batch of many entries of one stream carries its labels once. The encoded size
 * is tracked exactly as records arrive, which is what closes a batch by size. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "agent/ship/internal.h"
#include "common/error.h"

#define NONE UINT32_MAX

struct group {
  uint64_t hash;
  uint32_t key_off, key_len;
  uint32_t first, last; /* arena offsets of the first and last piece item */
  uint64_t body_len;    /* the group message without its outer tag and length */
};

const struct nn_ship_payload nn_ship_payload_loki = {
    .name = "loki",
    .content_type = "application/x-protobuf",
    .extra_header = NULL,
    .outer_field = 1, /* PushRequest.streams */
    .key_field = 1,   /* StreamAdapter.labels */
    .piece_field = 2, /* StreamAdapter.entries */
};

const struct nn_ship_payload nn_ship_payload_remote_write = {
    .name = "remote_write",
    .content_type = "application/x-protobuf",
    .extra_header = "X-Prometheus-Remote-Write-Version: 0.1.0",
    .outer_field = 1, /* WriteRequest.timeseries */
    .key_field = 0,   /* TimeSeries.labels, already framed by the caller */
    .piece_field = 2, /* TimeSeries.samples */
};

size_t nn__ship_varint_len(uint64_t v)
{
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

/* Writes v at p (room for 10 bytes assumed); returns the byte count. */
static inline size_t varint_raw(uint8_t *p, uint64_t v)
{
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

int nn__ship_put_varint(struct nn_buf *b, uint64_t v)
{
  uint8_t tmp[10];
  size_t n = 0;
  while (v >= 0x80) {
    tmp[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  tmp[n++] = (uint8_t)v;
  return nn_buf_append(b, tmp, n);
}

static size_t tag_len(uint32_t field)
{
  return nn__ship_varint_len((uint64_t)field << 3 | 2);
}

static size_t framed(uint32_t field, size_t len)
{
  return tag_len(field) + nn__ship_varint_len(len) + len;
}

static size_t key_part(const struct nn_ship_payload *p, size_t key_len)
{
  return p->key_field ? framed(p->key_field, key_len) : key_len;
}

void nn__ship_builder_init(struct nn__ship_builder *b, const struct nn_ship_payload *p,
                           size_t max_bytes)
{
  memset(b, 0, sizeof(*b));
  b->payload = p;
  b->last_group = SIZE_MAX;
  /* Item headers (8 bytes) against framing (at least 2): at most 3x the encoded size. */
  nn_buf_init(&b->arena, max_bytes * 4 + (1u << 20));
}

void nn__ship_builder_fini(struct nn__ship_builder *b)
{
  nn_buf_fini(&b->arena);
  free(b->groups);
  free(b->slots);
  memset(b, 0, sizeof(*b));
}

size_t nn__ship_builder_cost(const struct nn__ship_builder *b, size_t key_len, size_t piece_len)
{
  const struct nn_ship_payload *p = b->payload;
  /* As if the key were new: the outer tag, a worst-case length varint and the key. */
  return tag_len(p->outer_field) + 10 + key_part(p, key_len) + framed(p->piece_field, piece_len);
}

static int rehash(struct nn__ship_builder *b, size_t nslots)
{
  uint32_t *s = calloc(nslots, sizeof(*s));
  if (!s)
    return NN_ENOMEM;
  for (size_t g = 0; g < b->ngroups; g++) {
    size_t i = b->groups[g].hash & (nslots - 1);
    while (s[i])
      i = (i + 1) & (nslots - 1);
    s[i] = (uint32_t)g + 1;
  }
  free(b->slots);
  b->slots = s;
  b->nslots = nslots;
  return 0;
}

static int arena_put(struct nn_buf *a, const void *p, size_t n, uint32_t *off)
{
  if (a->len > UINT32_MAX - n - 16)
    return NN_ETOOBIG;
  *off = (uint32_t)a->len;
  return nn_buf_append(a, p, n);
}

int nn__ship_builder_add(struct nn__ship_builder *b, const void *key, size_t key_len,
                         const void *piece, size_t piece_len)
{
  const struct nn_ship_payload *p = b->payload;
  int rc;
  if (key_len > UINT32_MAX / 2 || piece_len > UINT32_MAX / 2)
    return NN_ETOOBIG;
  struct group *g = NULL;
  /* Consecutive records mostly share a key (one file's stream): try the last group first. */
  if (b->last_group < b->ngroups) {
    struct group *c = &b->groups[b->last_group];
    if (c->key_len == key_len && memcmp(b->arena.data + c->key_off, key, key_len) == 0)
      g = c;
  }
  if (!g && (b->ngroups + 1) * 2 > b->nslots &&
      (rc = rehash(b, b->nslots ? b->nslots * 2 : 64)) < 0)
    return rc;
  uint64_t h = g ? 0 : XXH3_64bits(key, key_len);
  size_t i = h & (b->nslots - 1);
  while (!g && b->slots[i]) {
    struct group *c = &b->groups[b->slots[i] - 1];
    if (c->hash == h && c->key_len == key_len &&
        memcmp(b->arena.data + c->key_off, key, key_len) == 0) {
      g = c;
      break;
    }
    i = (i + 1) & (b->nslots - 1);
  }
  if (!g) {
    if (b->ngroups == b->groups_cap) {
      size_t nc = b->groups_cap ? b->groups_cap * 2 : 32;
      struct group *ng = realloc(b->groups, nc * sizeof(*ng));
      if (!ng)
        return NN_ENOMEM;
      b->groups = ng;
      b->groups_cap = nc;
    }
    struct group ngp = {.hash = h, .key_len = (uint32_t)key_len, .first = NONE, .last = NONE};
    if ((rc = arena_put(&b->arena, key, key_len, &ngp.key_off)) < 0)
      return rc;
    ngp.body_len = key_part(p, key_len);
    b->groups[b->ngroups] = ngp;
    g = &b->groups[b->ngroups];
    b->slots[i] = (uint32_t)++b->ngroups;
    b->est += framed(p->outer_field, (size_t)g->body_len);
  }
  b->last_group = (size_t)(g - b->groups);
  /* A new group may stay empty on failure: finish skips it, and est only over-counts. */
  if (b->arena.len > UINT32_MAX - piece_len - 24)
    return NN_ETOOBIG;
  if ((rc = nn_buf_reserve(&b->arena, 8 + piece_len)) < 0)
    return rc;
  uint32_t off = (uint32_t)b->arena.len;
  uint8_t *w = (uint8_t *)b->arena.data + off;
  nn__put32(w, NONE);
  nn__put32(w + 4, (uint32_t)piece_len);
  memcpy(w + 8, piece, piece_len);
  b->arena.len += 8 + piece_len;
  if (g->last != NONE)
    nn__put32((uint8_t *)b->arena.data + g->last, off);
  else
    g->first = off;
  g->last = off;
  b->est -= framed(p->outer_field, (size_t)g->body_len);
  g->body_len += framed(p->piece_field, piece_len);
  b->est += framed(p->outer_field, (size_t)g->body_len);
  b->nrecords++;
  return 0;
}

int nn__ship_builder_finish(struct nn__ship_builder *b, struct nn_buf *out)
{
  const struct nn_ship_payload *p = b->payload;
  /* est is an upper bound of the encoded size, so one reservation covers every write. */
  int rc = nn_buf_reserve(out, b->est + 1);
  uint8_t *w = rc == 0 ? (uint8_t *)out->data + out->len : NULL;
  for (size_t gi = 0; rc == 0 && gi < b->ngroups; gi++) {
    const struct group *g = &b->groups[gi];
    if (g->first == NONE)
      continue;
    w += varint_raw(w, (uint64_t)p->outer_field << 3 | 2);
    w += varint_raw(w, g->body_len);
    if (p->key_field) {
      w += varint_raw(w, (uint64_t)p->key_field << 3 | 2);
      w += varint_raw(w, g->key_len);
    }
    memcpy(w, b->arena.data + g->key_off, g->key_len);
    w += g->key_len;
    uint8_t ptag[10];
    size_t ptag_len = varint_raw(ptag, (uint64_t)p->piece_field << 3 | 2);
    for (uint32_t it = g->first; it != NONE;) {
      const uint8_t *h = (const uint8_t *)b->arena.data + it;
      uint32_t len = nn__get32(h + 4);
      memcpy(w, ptag, ptag_len);
      w += ptag_len;
      w += varint_raw(w, len);
      memcpy(w, h + 8, len);
      w += len;
      it = nn__get32(h);
    }
  }
  if (rc == 0) {
    out->len = (size_t)((char *)w - out->data);
    out->data[out->len] = '\0';
  }
  nn_buf_reset(&b->arena);
  b->last_group = SIZE_MAX;
  b->ngroups = 0;
  b->nrecords = 0;
  b->est = 0;
  if (b->slots)
    memset(b->slots, 0, b->nslots * sizeof(*b->slots));
  return rc;
}

static int put_tag(struct nn_buf *b, uint32_t field, uint32_t wire)
{
  return nn__ship_put_varint(b, (uint64_t)field << 3 | wire);
}

int nn_ship_loki_entry_encode(struct nn_buf *out, int64_t ts_ns, const char *line, size_t len)
{
  int64_t sec = ts_ns / 1000000000, nsec = ts_ns % 1000000000;
  if (nsec < 0) {
    nsec += 1000000000;
    sec--;
  }
  size_t ts_len = (sec ? 1 + nn__ship_varint_len((uint64_t)sec) : 0) +
                  (nsec ? 1 + nn__ship_varint_len((uint64_t)nsec) : 0);
  /* One reservation for the whole entry: 2 tags, 2 length varints (<= 10 each), the
   * timestamp and the line. */
  if (len > SIZE_MAX - 32 - ts_len)
    return NN_ETOOBIG;
  int rc = nn_buf_reserve(out, 2 + 10 + ts_len + 10 + len);
  if (rc < 0)
    return rc;
  uint8_t *w = (uint8_t *)out->data + out->len;
  *w++ = 1 << 3 | 2; /* EntryAdapter.timestamp */
  w += varint_raw(w, ts_len);
  if (sec) {
    *w++ = 1 << 3 | 0;
    w += varint_raw(w, (uint64_t)sec);
  }
  if (nsec) {
    *w++ = 2 << 3 | 0;
    w += varint_raw(w, (uint64_t)nsec);
  }
  *w++ = 2 << 3 | 2; /* EntryAdapter.line */
  w += varint_raw(w, len);
  memcpy(w, line, len);
  w += len;
  out->len = (size_t)((char *)w - out->data);
  out->data[out->len] = '\0';
  return 0;
}

int nn_ship_rw_sample_encode(struct nn_buf *out, double value, int64_t ts_ms)
{
  uint8_t v[8];
  uint64_t bits;
  memcpy(&bits, &value, sizeof(bits));
  nn__put64(v, bits);
  size_t olen = out->len;
  int rc = put_tag(out, 1, 1);
  if (rc == 0)
    rc = nn_buf_append(out, v, sizeof(v));
  if (rc == 0 && ts_ms != 0 && (rc = put_tag(out, 2, 0)) == 0)
    rc = nn__ship_put_varint(out, (uint64_t)ts_ms);
  if (rc < 0)
    out->len = olen;
  return rc;
}

int nn_ship_rw_label_encode(struct nn_buf *out, const char *name, const char *value)
{
  size_t nl = strlen(name), vl = strlen(value);
  size_t body = framed(1, nl) + framed(2, vl);
  size_t olen = out->len;
  int rc = put_tag(out, 1, 2);
  if (rc == 0)
    rc = nn__ship_put_varint(out, body);
  if (rc == 0 && (rc = put_tag(out, 1, 2)) == 0 && (rc = nn__ship_put_varint(out, nl)) == 0)
    rc = nn_buf_append(out, name, nl);
  if (rc == 0 && (rc = put_tag(out, 2, 2)) == 0 && (rc = nn__ship_put_varint(out, vl)) == 0)
    rc = nn_buf_append(out, value, vl);
  if (rc < 0)
    out->len = olen;
  return rc;
}
