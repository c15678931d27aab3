/* SPDX-License-Identifier: Apache-2.0 */
/* Gorilla XOR chunks, bit-compatible with Prometheus's XOR chunk encoding: delta-of-delta
 * timestamps in 0/14/17/20/64-bit buckets and XOR-compressed float bits, so every double,
 * NaN payloads and the stale marker included, round-trips exactly. docs/format/chunks.md
 * has the layout. A regular 15 s series costs about 1.4 bytes per sample. */
#include <stdlib.h>
#include <string.h>

#include "aggregator/tsdb/internal.h"
#include "common/error.h"

/* Worst case for one sample: a 10-byte varint or 4+64 bits of timestamp, plus 2+5+6+64
 * bits of value. */
#define MAX_SAMPLE_BITS (80 + 64 + 77)

static int ensure(struct nn__tsdb_xor_app *a, size_t more_bits)
{
  /* 8 bytes of slack: put_bits stores whole 64-bit words. */
  size_t need = (a->nbits + more_bits + 7) / 8 + 8;
  if (need <= a->cap)
    return 0;
  /* Growing by a quarter keeps the slack of a half-full chunk small; a closed chunk is
   * shrunk to fit anyway. */
  size_t nc = a->cap ? a->cap + a->cap / 4 : 32;
  if (nc < need)
    nc = need;
  uint8_t *nb = realloc(a->buf, nc);
  if (!nb)
    return NN_ENOMEM;
  memset(nb + a->cap, 0, nc - a->cap);
  a->buf = nb;
  a->cap = (uint32_t)nc;
  return 0;
}

/* Writes the low nb bits of v, most significant first, with one 64-bit big-endian
 * read-modify-write; the bytes ahead are zero, so OR-ing is enough. */
static void put_bits(struct nn__tsdb_xor_app *a, uint64_t v, unsigned nb)
{
  if (nb > 56) {
    put_bits(a, v >> 32, nb - 32);
    nb = 32;
  }
  v &= (1ULL << nb) - 1;
  uint8_t *p = a->buf + (a->nbits >> 3);
  unsigned off = a->nbits & 7;
  uint64_t w;
  memcpy(&w, p, 8);
  w = __builtin_bswap64(w) | v << (64 - off - nb);
  w = __builtin_bswap64(w);
  memcpy(p, &w, 8);
  a->nbits += nb;
}

static void put_uvarint(struct nn__tsdb_xor_app *a, uint64_t x)
{
  while (x >= 0x80) {
    put_bits(a, (x & 0x7f) | 0x80, 8);
    x >>= 7;
  }
  put_bits(a, x, 8);
}

static void put_xor(struct nn__tsdb_xor_app *a, uint64_t vb)
{
  uint64_t x = vb ^ a->v;
  if (x == 0) {
    put_bits(a, 0, 1);
    return;
  }
  unsigned lead = (unsigned)__builtin_clzll(x), trail = (unsigned)__builtin_ctzll(x);
  if (lead >= 32)
    lead = 31; /* the field has 5 bits */
  if (a->leading != 0xff && lead >= a->leading && trail >= a->trailing) {
    put_bits(a, 2, 2);
    put_bits(a, x >> a->trailing, 64u - a->leading - a->trailing);
    return;
  }
  a->leading = (uint8_t)lead;
  a->trailing = (uint8_t)trail;
  unsigned sig = 64 - lead - trail;
  put_bits(a, 3, 2);
  put_bits(a, lead, 5);
  put_bits(a, sig, 6); /* 64 wraps to 0 */
  put_bits(a, x >> trail, sig);
}

/* Prometheus's bucket test: -(2^(n-1) - 1) <= x <= 2^(n-1). */
static int fits(int64_t x, unsigned n)
{
  return -((1LL << (n - 1)) - 1) <= x && x <= (1LL << (n - 1));
}

int nn__tsdb_xor_append(struct nn__tsdb_xor_app *a, int64_t t, double v)
{
  uint64_t vb;
  memcpy(&vb, &v, sizeof(vb));
  if (a->n == NN__TSDB_CHUNK_MAX_SAMPLES)
    return NN_ETOOBIG;
  if (ensure(a, (a->n == 0 ? 16 : 0) + MAX_SAMPLE_BITS) < 0)
    return NN_ENOMEM;
  if (a->n == 0) {
    a->nbits = 16;
    put_uvarint(a, ((uint64_t)t << 1) ^ (uint64_t)(t >> 63));
    put_bits(a, vb, 64);
    a->leading = 0xff;
    a->trailing = 0;
    a->tdelta = 0;
  } else if (a->n == 1) {
    /* Unsigned wrap-around arithmetic: any int64 pair round-trips, however far apart. */
    uint64_t d = (uint64_t)t - (uint64_t)a->t;
    put_uvarint(a, d);
    put_xor(a, vb);
    a->tdelta = d;
  } else {
    uint64_t d = (uint64_t)t - (uint64_t)a->t;
    int64_t dod = (int64_t)(d - a->tdelta);
    if (dod == 0) {
      put_bits(a, 0, 1);
    } else if (fits(dod, 14)) {
      put_bits(a, 2, 2);
      put_bits(a, (uint64_t)dod, 14);
    } else if (fits(dod, 17)) {
      put_bits(a, 6, 3);
      put_bits(a, (uint64_t)dod, 17);
    } else if (fits(dod, 20)) {
      put_bits(a, 14, 4);
      put_bits(a, (uint64_t)dod, 20);
    } else {
      put_bits(a, 15, 4);
      put_bits(a, (uint64_t)dod, 64);
    }
    put_xor(a, vb);
    a->tdelta = d;
  }
  a->t = t;
  a->v = vb;
  a->n++;
  a->buf[0] = (uint8_t)(a->n >> 8);
  a->buf[1] = (uint8_t)a->n;
  return 0;
}

uint8_t *nn__tsdb_xor_finish(struct nn__tsdb_xor_app *a, size_t *len)
{
  uint8_t *p = a->buf;
  size_t n = nn__tsdb_xor_len(a);
  if (!p || a->n == 0) {
    nn__tsdb_xor_free(a);
    *len = 0;
    return NULL;
  }
  uint8_t *shrunk = realloc(p, n);
  if (shrunk)
    p = shrunk;
  memset(a, 0, sizeof(*a));
  *len = n;
  return p;
}

void nn__tsdb_xor_free(struct nn__tsdb_xor_app *a)
{
  free(a->buf);
  memset(a, 0, sizeof(*a));
}

void nn__tsdb_xor_it_init(struct nn__tsdb_xor_it *it, const uint8_t *p, size_t len)
{
  memset(it, 0, sizeof(*it));
  it->p = p;
  if (len < 2) {
    it->err = len ? NN_ECORRUPT : 0;
    return;
  }
  it->n = (uint16_t)(p[0] << 8 | p[1]);
  it->nbits = len * 8;
  it->pos = 16;
  it->leading = 0xff;
}

static bool get_bits(struct nn__tsdb_xor_it *it, unsigned nb, uint64_t *out)
{
  if (it->nbits - it->pos < nb)
    return false;
  if (nb == 0) {
    *out = 0;
    return true;
  }
  if (nb > 56) {
    uint64_t hi, lo;
    get_bits(it, nb - 32, &hi);
    get_bits(it, 32, &lo);
    *out = hi << 32 | lo;
    return true;
  }
  size_t byte = it->pos >> 3;
  unsigned off = it->pos & 7;
  uint64_t w = 0;
  if (it->nbits / 8 - byte >= 8) {
    memcpy(&w, it->p + byte, 8);
    w = __builtin_bswap64(w);
  } else {
    /* Near the end: gather the remaining bytes without reading past them. */
    for (size_t k = 0; k < 8; k++)
      w = w << 8 | (byte + k < it->nbits / 8 ? it->p[byte + k] : 0);
  }
  *out = (w << off) >> (64 - nb);
  it->pos += nb;
  return true;
}

static bool get_uvarint(struct nn__tsdb_xor_it *it, uint64_t *out)
{
  uint64_t x = 0, b;
  for (unsigned shift = 0; shift < 70; shift += 7) {
    if (!get_bits(it, 8, &b))
      return false;
    if (shift == 63 && b > 1)
      return false; /* overflows 64 bits */
    x |= (b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = x;
      return true;
    }
  }
  return false;
}

static bool get_xor(struct nn__tsdb_xor_it *it)
{
  uint64_t b, bits;
  if (!get_bits(it, 1, &b))
    return false;
  if (b == 0)
    return true;
  if (!get_bits(it, 1, &b))
    return false;
  if (b == 1) {
    uint64_t lead, sig;
    if (!get_bits(it, 5, &lead) || !get_bits(it, 6, &sig))
      return false;
    if (sig == 0)
      sig = 64;
    if (lead + sig > 64)
      return false;
    it->leading = (uint8_t)lead;
    it->trailing = (uint8_t)(64 - lead - sig);
  } else if (it->leading == 0xff) {
    return false; /* reuses a window that was never set */
  }
  unsigned sig = 64u - it->leading - it->trailing;
  if (!get_bits(it, sig, &bits))
    return false;
  it->v ^= bits << it->trailing;
  return true;
}

static bool fail(struct nn__tsdb_xor_it *it)
{
  it->err = NN_ECORRUPT;
  return false;
}

bool nn__tsdb_xor_it_next(struct nn__tsdb_xor_it *it)
{
  if (it->err || it->i >= it->n)
    return false;
  if (it->i == 0) {
    uint64_t z;
    if (!get_uvarint(it, &z) || !get_bits(it, 64, &it->v))
      return fail(it);
    it->t = (int64_t)((z >> 1) ^ (0 - (z & 1)));
  } else if (it->i == 1) {
    if (!get_uvarint(it, &it->tdelta) || !get_xor(it))
      return fail(it);
    it->t = (int64_t)((uint64_t)it->t + it->tdelta);
  } else {
    unsigned ones = 0;
    uint64_t b;
    while (ones < 4) {
      if (!get_bits(it, 1, &b))
        return fail(it);
      if (!b)
        break;
      ones++;
    }
    static const unsigned widths[] = {0, 14, 17, 20, 64};
    unsigned w = widths[ones];
    uint64_t dod = 0;
    if (w) {
      if (!get_bits(it, w, &dod))
        return fail(it);
      if (w < 64 && dod > (1ULL << (w - 1)))
        dod -= 1ULL << w; /* sign-extend, in wrap-around arithmetic */
    }
    it->tdelta += dod;
    it->t = (int64_t)((uint64_t)it->t + it->tdelta);
    if (!get_xor(it))
      return fail(it);
  }
  it->i++;
  return true;
}
