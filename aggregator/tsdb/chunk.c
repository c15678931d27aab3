/* SPDX-License-Identifier: Apache-2.0 */
/* Gorilla XOR chunks, bit-compatible with Prometheus's XOR chunk encoding: delta-of-delta
 * timestamps in 0/14/17/20/64-bit buckets and XOR-compressed float bits, so every double,
 * NaN payloads and the stale marker included, round-trips exactly. docs/format/chunks.md
 * has the layout. A regular 15 s series costs about 1.4 bytes per sample. */
#include <math.h>
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

bool nn__tsdb_xor_it_resume(struct nn__tsdb_xor_it *it, const struct nn__tsdb_xor_ck *ck)
{
  if (it->err || it->packed || ck->i == 0 || ck->i > it->n || ck->pos > it->nbits || ck->pos < 16)
    return false;
  it->pos = ck->pos;
  it->i = ck->i;
  it->t = ck->t;
  it->tdelta = ck->tdelta;
  it->v = ck->v;
  it->leading = ck->leading;
  it->trailing = ck->trailing;
  return true;
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
    /* The room for all nb bits was checked above, so both halves succeed. */
    uint64_t hi = 0, lo = 0;
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

static bool packed_next(struct nn__tsdb_xor_it *it);

bool nn__tsdb_xor_it_next(struct nn__tsdb_xor_it *it)
{
  if (it->err || it->i >= it->n)
    return false;
  if (it->packed)
    return packed_next(it);
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

/* ---- packed chunks ---- */

#define MAX_SCALE 15 /* decimal exponents 0..15: 10^e is an exact double */
#define ESC_BITS  7  /* an escaped code's length field: 0..64 */
#define RADIX     64 /* the width descriptor of radix-packed codes */

static const double pow10_tab[MAX_SCALE + 1] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                                1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};

static uint64_t zz(int64_t x)
{
  return ((uint64_t)x << 1) ^ (uint64_t)(x >> 63);
}

static int64_t unzz(uint64_t z)
{
  return (int64_t)((z >> 1) ^ (0 - (z & 1)));
}

static unsigned bitlen(uint64_t x)
{
  return x ? 64u - (unsigned)__builtin_clzll(x) : 0u;
}

/* Digits of radix r that fit in 64 bits, and r to that power (r = 1: no bits at all). */
static unsigned radix_digits(uint64_t r, uint64_t *pk)
{
  uint64_t p = 1;
  unsigned k = 0;
  if (r <= 1) {
    *pk = 1;
    return 64;
  }
  while (k < 64 && p <= UINT64_MAX / r) {
    p *= r;
    k++;
  }
  *pk = p;
  return k;
}

/* Bits of a group of cnt digits of radix r (cnt at most radix_digits(r)). */
static unsigned group_bits(uint64_t r, unsigned cnt)
{
  uint64_t p = 1;
  for (unsigned i = 0; i < cnt; i++)
    p *= r;
  return bitlen(p - 1);
}

/* How a stream of codes is written: a width descriptor d, and the radix when d == RADIX. */
struct code_fmt {
  unsigned d, k;
  uint64_t r;
};

/* The format that minimises the bits of codes x[0..n), with their total in *bits: an
 * escape width w (0..63): w bits each, or the all-ones code, 7 bits of length and the
 * value for those that do not fit below it; or radix packing, max + 1 being the radix,
 * as many digits as fit in 64 bits to a group (5 values of 0..4 take 2.33 bits each, not
 * 3). A histogram of bit lengths makes it O(n + 64). */
static uint64_t best_fmt(const uint64_t *x, size_t n, struct code_fmt *f)
{
  size_t cnt[65] = {0}, ones[65] = {0};
  uint64_t max = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned b = bitlen(x[i]);
    cnt[b]++;
    if (b && b < 64 && x[i] == (1ULL << b) - 1)
      ones[b]++;
    if (x[i] > max)
      max = x[i];
  }
  *f = (struct code_fmt){0, 0, 0};
  if (cnt[0] == n)
    return 0;
  uint64_t above = 0, best = UINT64_MAX, suffix[65];
  for (int b = 64; b >= 0; b--) {
    suffix[b] = above;
    above += (uint64_t)cnt[b] * (ESC_BITS + (unsigned)b);
  }
  for (unsigned w = 1; w < 64; w++) {
    uint64_t cost = (uint64_t)n * w + suffix[w] + (uint64_t)ones[w] * (ESC_BITS + w);
    if (cost < best) {
      best = cost;
      f->d = w;
    }
  }
  if (max < (1ULL << 62)) {
    uint64_t r = max + 1, pk;
    unsigned k = radix_digits(r, &pk);
    uint64_t cost = (uint64_t)(n / k) * bitlen(pk - 1) + (n % k ? group_bits(r, n % k) : 0);
    cost += 8 * ((bitlen(r) + 6) / 7); /* the radix in the header */
    if (cost < best) {
      best = cost;
      *f = (struct code_fmt){RADIX, k, r};
    }
  }
  return best;
}

static void put_fmt(struct nn__tsdb_xor_app *a, const struct code_fmt *f)
{
  put_bits(a, f->d, 7);
  if (f->d == RADIX)
    put_uvarint(a, f->r);
}

/* Writes code j of a stream of total codes: escape-coded, or for radix packing the
 * group starting at j when j is the first digit of one. */
static void put_code(struct nn__tsdb_xor_app *a, const struct code_fmt *f, const uint64_t *codes,
                     size_t j, size_t total)
{
  uint64_t x = codes[j];
  unsigned w = f->d;
  if (w == RADIX) {
    if (j % f->k)
      return;
    size_t cnt = total - j < f->k ? total - j : f->k;
    uint64_t g = 0;
    for (size_t q = cnt; q-- > 0;)
      g = g * f->r + codes[j + q];
    unsigned nb = group_bits(f->r, (unsigned)cnt);
    if (nb)
      put_bits(a, g, nb);
    return;
  }
  if (w == 0)
    return;
  uint64_t esc = (1ULL << w) - 1;
  if (x < esc) {
    put_bits(a, x, w);
    return;
  }
  unsigned l = bitlen(x);
  put_bits(a, esc, w);
  put_bits(a, l, ESC_BITS);
  if (l)
    put_bits(a, x, l);
}

/* v as k / 10^e exactly (the decoder computes (double)k / 10^e, correctly rounded), with
 * |k| < 2^53 so that k converts to a double exactly. */
static bool scaled(double v, unsigned e, int64_t *k)
{
  double x = v * pow10_tab[e];
  if (!(fabs(x) < 9007199254740992.0))
    return false;
  int64_t r = (int64_t)x;
  for (int64_t c = r - 1; c <= r + 1; c++) {
    double back = (double)c / pow10_tab[e];
    if (memcmp(&back, &v, sizeof(v)) == 0) {
      *k = c;
      return true;
    }
  }
  return false;
}

/* Finds the smallest exponent that writes every value as an integer; false when some
 * value is not a short decimal (NaN, infinities, -0.0, 0.1 + 0.2, ...). */
static bool decimal_scale(const double *v, size_t n, int64_t *m, unsigned *e_out)
{
  unsigned e = 0;
  int64_t k;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(v[i]))
      return false;
    while (!scaled(v[i], e, &k))
      if (++e > MAX_SCALE)
        return false;
  }
  /* The same real number at a larger exponent rounds to the same double, so this holds
   * for all; checked anyway, since the decoder's arithmetic is the contract. */
  for (size_t i = 0; i < n; i++)
    if (!scaled(v[i], e, &m[i]))
      return false;
  *e_out = e;
  return true;
}

static int cmp_i64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* A decimal value's code in value mode `mode` (docs/format/chunks.md). */
static uint64_t value_code(unsigned mode, uint64_t base, int64_t m, int64_t prev)
{
  uint64_t step = (uint64_t)m - (uint64_t)prev;
  switch (mode) {
  case 0: return step - base;
  case 1: return zz((int64_t)(step - base));
  default: return (uint64_t)m - base;
  }
}

int nn__tsdb_packed_encode(const int64_t *t, const double *v, size_t n, struct nn_buf *out)
{
  if (n == 0 || n > NN__TSDB_CHUNK_MAX_SAMPLES)
    return NN_EINVAL;
  struct nn__tsdb_xor_app a = {0};
  uint64_t *codes = malloc(2 * n * sizeof(*codes)); /* timestamps, then values */
  int64_t *m = malloc(n * sizeof(*m)), *tmp = malloc(n * sizeof(*tmp));
  int rc = NN_ENOMEM;
  /* Worst case: header varints and widths, then per sample an escaped timestamp code
   * and an escaped value code or an XOR value. */
  if (!codes || !m || !tmp || ensure(&a, 16 + 8 * 80 + 32 + n * (2 * (64 + ESC_BITS + 64))) < 0)
    goto out;
  a.nbits = 16;
  put_uvarint(&a, zz(t[0]));
  /* Timestamps: delta of delta (codes from i = 2), or the offset from a regular grid
   * t0 + i * step (codes from i = 1), whichever is cheaper. Jitter of j ms costs a
   * delta of delta up to 2j either way, an offset only j; a missed scrape shifts every
   * later offset, so then delta of delta wins. */
  struct code_fmt tf = {0, 0, 0}, vf = {0, 0, 0};
  size_t tfrom = n >= 3 ? 2 : n;
  if (n == 2)
    put_uvarint(&a, (uint64_t)t[1] - (uint64_t)t[0]);
  if (n >= 3) {
    uint64_t *grid = codes + n;
    struct code_fmt gf;
    for (size_t i = 2; i < n; i++) {
      uint64_t d = (uint64_t)t[i] - (uint64_t)t[i - 1],
               pd = (uint64_t)t[i - 1] - (uint64_t)t[i - 2];
      codes[i] = zz((int64_t)(d - pd));
    }
    uint64_t dod_bits = best_fmt(codes + 2, n - 2, &tf);
    for (size_t i = 1; i < n; i++)
      tmp[i - 1] = (int64_t)((uint64_t)t[i] - (uint64_t)t[i - 1]);
    qsort(tmp, n - 1, sizeof(*tmp), cmp_i64);
    uint64_t step = (uint64_t)tmp[(n - 1) / 2], rbase = 0;
    for (size_t i = 1; i < n; i++) {
      grid[i] = (uint64_t)t[i] - (uint64_t)t[0] - (uint64_t)i * step;
      if (i == 1 || (int64_t)grid[i] < (int64_t)rbase)
        rbase = grid[i];
    }
    for (size_t i = 1; i < n; i++)
      grid[i] -= rbase;
    uint64_t grid_bits = best_fmt(grid + 1, n - 1, &gf);
    if (grid_bits + 80 < dod_bits) {
      tf = gf;
      tfrom = 1;
      memmove(codes + 1, grid + 1, (n - 1) * sizeof(*codes));
      put_bits(&a, 1, 1);
      put_uvarint(&a, step);
      put_uvarint(&a, zz((int64_t)rbase));
    } else {
      put_bits(&a, 0, 1);
      put_uvarint(&a, (uint64_t)t[1] - (uint64_t)t[0]);
    }
    put_fmt(&a, &tf);
  }
  unsigned e = 0, vmode = 0;
  bool dec = decimal_scale(v, n, m, &e);
  put_bits(&a, dec, 1);
  if (dec) {
    put_bits(&a, e, 4);
    put_uvarint(&a, zz(m[0]));
    if (n >= 2) {
      /* Values as steps from the smallest step (counters: 0..max increase), as steps
       * zig-zagged around the median step (a reset or a spike would widen every offset),
       * or as offsets from the smallest value (gauges that jump around): the cheapest. */
      uint64_t *vc = codes + n, *cand = (uint64_t *)tmp, cost[3], base[3];
      struct code_fmt w[3];
      for (size_t i = 1; i < n; i++)
        tmp[i - 1] = (int64_t)((uint64_t)m[i] - (uint64_t)m[i - 1]);
      qsort(tmp, n - 1, sizeof(*tmp), cmp_i64);
      base[0] = (uint64_t)tmp[0];
      base[1] = (uint64_t)tmp[(n - 1) / 2];
      base[2] = (uint64_t)m[1];
      for (size_t i = 1; i < n; i++)
        if (m[i] < (int64_t)base[2])
          base[2] = (uint64_t)m[i];
      for (unsigned k = 0; k < 3; k++) {
        for (size_t i = 1; i < n; i++)
          cand[i - 1] = value_code(k, base[k], m[i], m[i - 1]);
        cost[k] = best_fmt(cand, n - 1, &w[k]);
        if (cost[k] < cost[vmode])
          vmode = k;
      }
      vf = w[vmode];
      for (size_t i = 1; i < n; i++)
        vc[i] = value_code(vmode, base[vmode], m[i], m[i - 1]);
      put_bits(&a, vmode, 2);
      put_uvarint(&a, zz((int64_t)base[vmode]));
      put_fmt(&a, &vf);
    }
  } else {
    uint64_t vb;
    memcpy(&vb, &v[0], sizeof(vb));
    put_bits(&a, vb, 64);
    a.leading = 0xff;
    a.v = vb;
  }
  for (size_t i = 1; i < n; i++) {
    if (i >= tfrom)
      put_code(&a, &tf, codes + tfrom, i - tfrom, n - tfrom);
    if (dec) {
      put_code(&a, &vf, codes + n + 1, i - 1, n - 1);
    } else {
      uint64_t vb;
      memcpy(&vb, &v[i], sizeof(vb));
      put_xor(&a, vb);
      a.v = vb;
    }
  }
  a.buf[0] = (uint8_t)(n >> 8);
  a.buf[1] = (uint8_t)n;
  rc = nn_buf_append(out, a.buf, nn__tsdb_xor_len(&a));
out:
  free(codes);
  free(m);
  free(tmp);
  nn__tsdb_xor_free(&a);
  return rc;
}

void nn__tsdb_packed_it_init(struct nn__tsdb_xor_it *it, const uint8_t *p, size_t len)
{
  nn__tsdb_xor_it_init(it, p, len);
  it->packed = true;
  if (len < 2 || it->n == 0)
    it->err = NN_ECORRUPT;
}

void nn__tsdb_bchunk_it_init(struct nn__tsdb_xor_it *it, uint32_t version, const uint8_t *p,
                             size_t len)
{
  if (version < 2) {
    nn__tsdb_xor_it_init(it, p, len);
    return;
  }
  if (len >= 1 && p[0] == NN__TSDB_ENC_XOR) {
    nn__tsdb_xor_it_init(it, p + 1, len - 1);
  } else if (len >= 1 && p[0] == NN__TSDB_ENC_PACKED) {
    nn__tsdb_packed_it_init(it, p + 1, len - 1);
  } else {
    nn__tsdb_xor_it_init(it, NULL, 0);
    it->err = NN_ECORRUPT;
  }
}

/* Reads a stream's format (put_fmt) for a stream of total codes. */
static bool get_fmt(struct nn__tsdb_xor_it *it, struct nn__tsdb_code_stream *cs, size_t total)
{
  uint64_t d, pk;
  memset(cs, 0, sizeof(*cs));
  if (!get_bits(it, 7, &d) || d > RADIX)
    return false;
  cs->d = (uint8_t)d;
  cs->total = (uint16_t)total;
  if (d == RADIX) {
    if (!get_uvarint(it, &cs->r) || cs->r == 0 || cs->r > (1ULL << 62))
      return false;
    cs->k = (uint16_t)radix_digits(cs->r, &pk);
  }
  return true;
}

static bool get_code(struct nn__tsdb_xor_it *it, struct nn__tsdb_code_stream *cs, uint64_t *x)
{
  unsigned w = cs->d;
  if (cs->pos >= cs->total)
    return false;
  cs->pos++;
  if (w == RADIX) {
    if (cs->left == 0) {
      unsigned cnt = cs->total - (cs->pos - 1u);
      if (cnt > cs->k)
        cnt = cs->k;
      if (!get_bits(it, group_bits(cs->r, cnt), &cs->g))
        return false;
      cs->left = (uint16_t)cnt;
    }
    *x = cs->g % cs->r;
    cs->g /= cs->r;
    cs->left--;
    return true;
  }
  if (w == 0) {
    *x = 0;
    return true;
  }
  uint64_t l;
  if (!get_bits(it, w, x))
    return false;
  if (*x != (1ULL << w) - 1)
    return true;
  if (!get_bits(it, ESC_BITS, &l) || l > 64)
    return false;
  return get_bits(it, (unsigned)l, x);
}

static void set_dec_value(struct nn__tsdb_xor_it *it)
{
  double d = (double)(int64_t)it->m / pow10_tab[it->e];
  memcpy(&it->v, &d, sizeof(d));
}

static bool packed_next(struct nn__tsdb_xor_it *it)
{
  uint64_t x;
  if (it->i == 0) {
    uint64_t z, b;
    if (!get_uvarint(it, &z))
      return fail(it);
    it->t = unzz(z);
    it->t0 = it->t;
    if (it->n == 2 && !get_uvarint(it, &it->tdelta))
      return fail(it);
    if (it->n >= 3) {
      if (!get_bits(it, 1, &b))
        return fail(it);
      it->tmode = (uint8_t)b;
      if (it->tmode == 1) {
        if (!get_uvarint(it, &it->tgrid) || !get_uvarint(it, &z))
          return fail(it);
        it->rbase = (uint64_t)unzz(z);
      } else if (!get_uvarint(it, &it->tdelta)) {
        return fail(it);
      }
      if (!get_fmt(it, &it->ts, it->tmode == 1 ? it->n - 1u : it->n - 2u))
        return fail(it);
    }
    if (!get_bits(it, 1, &b))
      return fail(it);
    it->dec = b;
    if (it->dec) {
      if (!get_bits(it, 4, &b) || !get_uvarint(it, &z))
        return fail(it);
      it->e = (uint8_t)b;
      it->m = (uint64_t)unzz(z);
      if (it->n >= 2) {
        uint64_t mode;
        if (!get_bits(it, 2, &mode) || mode > 2 || !get_uvarint(it, &z) ||
            !get_fmt(it, &it->vs, it->n - 1u))
          return fail(it);
        it->vmode = (uint8_t)mode;
        it->dmin = (uint64_t)unzz(z);
      }
      set_dec_value(it);
    } else {
      if (!get_bits(it, 64, &it->v))
        return fail(it);
      it->leading = 0xff;
    }
    it->i++;
    return true;
  }
  if (it->tmode == 1) {
    if (!get_code(it, &it->ts, &x))
      return fail(it);
    it->t = (int64_t)((uint64_t)it->t0 + (uint64_t)it->i * it->tgrid + it->rbase + x);
  } else {
    if (it->i >= 2) {
      if (!get_code(it, &it->ts, &x))
        return fail(it);
      it->tdelta += (uint64_t)unzz(x);
    }
    it->t = (int64_t)((uint64_t)it->t + it->tdelta);
  }
  if (it->dec) {
    if (!get_code(it, &it->vs, &x))
      return fail(it);
    if (it->vmode == 2)
      it->m = it->dmin + x;
    else
      it->m += it->dmin + (it->vmode == 1 ? (uint64_t)unzz(x) : x);
    set_dec_value(it);
  } else if (!get_xor(it)) {
    return fail(it);
  }
  it->i++;
  return true;
}
