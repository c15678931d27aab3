/* SPDX-License-Identifier: Apache-2.0 */
/* The budget ledger: per SLO, cumulative bad and total event counts in 1-minute buckets for
 * the last 48 hours and 1-hour buckets back past the period, plus per-calendar-month sums.
 * Any window's counts are a difference of two prefix sums, so a 30-day window costs the
 * same two lookups as a 5-minute one. Also the snapshot encoding of one ledger. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator/slo/internal.h"
#include "common/buf.h"
#include "common/error.h"

#define NF NN_SLO_FINE_SLOTS

static int64_t floordiv(int64_t a, int64_t b)
{
  return a / b - (a % b != 0 && (a < 0) != (b < 0));
}
static int64_t floormod(int64_t a, int64_t b)
{
  return a - floordiv(a, b) * b;
}

int nn__slo_ledger_init(struct nn_slo_ledger *l, int64_t period_min, const struct nn_slo_tz *tz)
{
  memset(l, 0, sizeof(*l));
  l->first_min = INT64_MIN;
  l->head_min = INT64_MIN;
  if (tz)
    l->tz = *tz;
  /* The period, the 3-day window's margin and a calendar quarter's extra days. */
  l->ncoarse = (size_t)(period_min / 60) + 72;
  l->fine_bad = calloc(NF, sizeof(double));
  l->fine_total = calloc(NF, sizeof(double));
  l->coarse_bad = calloc(l->ncoarse, sizeof(double));
  l->coarse_total = calloc(l->ncoarse, sizeof(double));
  if (!l->fine_bad || !l->fine_total || !l->coarse_bad || !l->coarse_total) {
    nn__slo_ledger_fini(l);
    return NN_ENOMEM;
  }
  return 0;
}

void nn__slo_ledger_fini(struct nn_slo_ledger *l)
{
  free(l->fine_bad);
  free(l->fine_total);
  free(l->coarse_bad);
  free(l->coarse_total);
  l->fine_bad = l->fine_total = l->coarse_bad = l->coarse_total = NULL;
}

size_t nn__slo_ledger_bytes(const struct nn_slo_ledger *l)
{
  return sizeof(*l) + (2 * NF + 2 * l->ncoarse) * sizeof(double);
}

/* Civil date from days since 1970-01-01 (Howard Hinnant's algorithm). */
void nn__slo_civil(int64_t z, int *y, int *m, int *d)
{
  z += 719468;
  int64_t era = floordiv(z, 146097);
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = (int)(yoe + era * 400 + (*m <= 2));
}

int64_t nn__slo_days_from_civil(int y, int m, int d)
{
  y -= m <= 2;
  int64_t era = floordiv(y, 400);
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int32_t nn__slo_month_of(int64_t m, const struct nn_slo_tz *tz)
{
  int y, mo, d;
  nn__slo_civil(floordiv(nn__slo_tz_local_min(tz, m), 1440), &y, &mo, &d);
  return y * 12 + (mo - 1);
}

int64_t nn__slo_calendar_start(int64_t m, const struct nn_slo_tz *tz, bool quarter)
{
  int y, mo, d;
  nn__slo_civil(floordiv(nn__slo_tz_local_min(tz, m), 1440), &y, &mo, &d);
  if (quarter)
    mo = (mo - 1) / 3 * 3 + 1;
  return nn__slo_tz_utc_min(tz, nn__slo_days_from_civil(y, mo, 1) * 1440);
}

static void month_add(struct nn_slo_ledger *l, int64_t m, double bad, double total)
{
  int32_t ym = nn__slo_month_of(m, &l->tz);
  size_t oldest = 0;
  for (size_t i = 0; i < NN_SLO_MONTHS; i++) {
    if (l->months[i].ym == ym) {
      l->months[i].bad += bad;
      l->months[i].total += total;
      return;
    }
    if (l->months[i].ym < l->months[oldest].ym)
      oldest = i;
  }
  if (l->months[oldest].ym > ym)
    return; /* older than everything kept */
  l->months[oldest].ym = ym;
  l->months[oldest].bad = bad;
  l->months[oldest].total = total;
}

/* Carries the running sums forward to minute m; each bucket is written at most once per
 * ring turn, so catching up after a gap costs at most NF + ncoarse stores. */
static void advance(struct nn_slo_ledger *l, int64_t m)
{
  if (l->head_min == INT64_MIN) {
    l->first_min = m;
    l->head_min = m;
    l->fine_bad[floormod(m, NF)] = l->cum_bad;
    l->fine_total[floormod(m, NF)] = l->cum_total;
    int64_t h = floordiv(m, 60), nc = (int64_t)l->ncoarse;
    l->coarse_bad[floormod(h, nc)] = l->cum_bad;
    l->coarse_total[floormod(h, nc)] = l->cum_total;
    return;
  }
  if (m <= l->head_min)
    return;
  int64_t from = l->head_min + 1;
  if (m - from >= NF)
    from = m - NF + 1;
  for (int64_t k = from; k <= m; k++) {
    l->fine_bad[floormod(k, NF)] = l->cum_bad;
    l->fine_total[floormod(k, NF)] = l->cum_total;
  }
  int64_t nc = (int64_t)l->ncoarse, h0 = floordiv(l->head_min, 60) + 1, h1 = floordiv(m, 60);
  if (h1 - h0 >= nc)
    h0 = h1 - nc + 1;
  for (int64_t h = h0; h <= h1; h++) {
    l->coarse_bad[floormod(h, nc)] = l->cum_bad;
    l->coarse_total[floormod(h, nc)] = l->cum_total;
  }
  l->head_min = m;
}

void nn__slo_ledger_add(struct nn_slo_ledger *l, int64_t m, double bad, double total)
{
  if (!isfinite(bad) || !isfinite(total) || bad < 0 || total < 0)
    return;
  if (bad > total)
    bad = total; /* a bad count above the total is a query artefact; cap the ratio at 1 */
  if (l->head_min != INT64_MIN && m < l->head_min)
    m = l->head_min; /* late data lands in the newest bucket */
  advance(l, m);
  l->cum_bad += bad;
  l->cum_total += total;
  l->fine_bad[floormod(m, NF)] = l->cum_bad;
  l->fine_total[floormod(m, NF)] = l->cum_total;
  int64_t nc = (int64_t)l->ncoarse, h = floordiv(m, 60);
  l->coarse_bad[floormod(h, nc)] = l->cum_bad;
  l->coarse_total[floormod(h, nc)] = l->cum_total;
  month_add(l, m, bad, total);
}

static void coarse_at(const struct nn_slo_ledger *l, int64_t h, double *bad, double *total)
{
  int64_t nc = (int64_t)l->ncoarse, head_h = floordiv(l->head_min, 60);
  int64_t first_h = floordiv(l->first_min, 60);
  if (h < first_h) {
    *bad = *total = 0;
    return;
  }
  if (h <= head_h - nc)
    h = head_h - nc + 1; /* beyond the ring: the window is truncated to what is kept */
  *bad = l->coarse_bad[floormod(h, nc)];
  *total = l->coarse_total[floormod(h, nc)];
}

void nn__slo_ledger_cum(const struct nn_slo_ledger *l, int64_t m, double *bad, double *total)
{
  if (l->head_min == INT64_MIN || m < l->first_min) {
    *bad = *total = 0;
    return;
  }
  if (m >= l->head_min) {
    *bad = l->cum_bad;
    *total = l->cum_total;
    return;
  }
  if (m > l->head_min - NF) {
    *bad = l->fine_bad[floormod(m, NF)];
    *total = l->fine_total[floormod(m, NF)];
    return;
  }
  /* Older than the fine ring: interpolate linearly inside hour h, between the sums at the
   * end of hour h-1 and of hour h. The error is bounded by one hour's events at the
   * window's old edge. */
  int64_t h = floordiv(m, 60);
  double b0, t0, b1, t1;
  coarse_at(l, h - 1, &b0, &t0);
  coarse_at(l, h, &b1, &t1);
  double f = (double)(floormod(m, 60) + 1) / 60.0;
  *bad = b0 + (b1 - b0) * f;
  *total = t0 + (t1 - t0) * f;
}

void nn__slo_ledger_window(const struct nn_slo_ledger *l, int64_t end, int64_t len, double *bad,
                           double *total)
{
  double b1, t1, b0, t0;
  nn__slo_ledger_cum(l, end, &b1, &t1);
  nn__slo_ledger_cum(l, end - len, &b0, &t0);
  *bad = b1 - b0;
  *total = t1 - t0;
  /* Float cancellation can leave -1e-12; a count is never negative. */
  if (*bad < 0)
    *bad = 0;
  if (*total < 0)
    *total = 0;
  if (*bad > *total)
    *bad = *total;
}

/* ---- Snapshot encoding (docs/format/slo-ledger.md) -------------------------------------- */

static int put64(struct nn_buf *b, uint64_t v)
{
  unsigned char x[8];
  for (int i = 0; i < 8; i++)
    x[i] = (unsigned char)(v >> (8 * i));
  return nn_buf_append(b, x, 8);
}

static int putd(struct nn_buf *b, double d)
{
  uint64_t v;
  memcpy(&v, &d, 8);
  return put64(b, v);
}

static uint64_t get64(const unsigned char *p)
{
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

static double getd(const unsigned char *p)
{
  uint64_t v = get64(p);
  double d;
  memcpy(&d, &v, 8);
  return d;
}

int nn__slo_ledger_encode(const struct nn_slo_ledger *l, struct nn_buf *out)
{
  int rc = 0;
  rc = rc ? rc : put64(out, (uint64_t)l->first_min);
  rc = rc ? rc : put64(out, (uint64_t)l->head_min);
  rc = rc ? rc : put64(out, (uint64_t)l->last_eval_ms);
  rc = rc ? rc : putd(out, l->cum_bad);
  rc = rc ? rc : putd(out, l->cum_total);
  rc = rc ? rc : put64(out, NF);
  rc = rc ? rc : put64(out, l->ncoarse);
  for (size_t i = 0; i < NF && !rc; i++)
    rc = putd(out, l->fine_bad[i]) ? NN_ENOMEM : putd(out, l->fine_total[i]);
  for (size_t i = 0; i < l->ncoarse && !rc; i++)
    rc = putd(out, l->coarse_bad[i]) ? NN_ENOMEM : putd(out, l->coarse_total[i]);
  for (size_t i = 0; i < NN_SLO_MONTHS && !rc; i++) {
    rc = put64(out, (uint64_t)(int64_t)l->months[i].ym);
    rc = rc ? rc : putd(out, l->months[i].bad);
    rc = rc ? rc : putd(out, l->months[i].total);
  }
  return rc;
}

int nn__slo_ledger_decode(struct nn_slo_ledger *l, const unsigned char *p, size_t n, size_t *used)
{
  size_t need = 7 * 8;
  if (n < need)
    return NN_ECORRUPT;
  int64_t first = (int64_t)get64(p), head = (int64_t)get64(p + 8);
  int64_t last_eval = (int64_t)get64(p + 16);
  double cb = getd(p + 24), ct = getd(p + 32);
  uint64_t nf = get64(p + 40), nc = get64(p + 48);
  if (nf != NF || nc != l->ncoarse)
    return NN_ECORRUPT; /* another period or build: the caller rebuilds from series */
  need += (2 * NF + 2 * nc) * 8 + NN_SLO_MONTHS * 24;
  if (n < need || !isfinite(cb) || !isfinite(ct) || (head == INT64_MIN) != (first == INT64_MIN) ||
      head < first)
    return NN_ECORRUPT;
  const unsigned char *q = p + 56;
  for (size_t i = 0; i < NF; i++, q += 16) {
    l->fine_bad[i] = getd(q);
    l->fine_total[i] = getd(q + 8);
  }
  for (size_t i = 0; i < nc; i++, q += 16) {
    l->coarse_bad[i] = getd(q);
    l->coarse_total[i] = getd(q + 8);
  }
  for (size_t i = 0; i < NN_SLO_MONTHS; i++, q += 24) {
    l->months[i].ym = (int32_t)(int64_t)get64(q);
    l->months[i].bad = getd(q + 8);
    l->months[i].total = getd(q + 16);
  }
  l->first_min = first;
  l->head_min = head;
  l->last_eval_ms = last_eval;
  l->cum_bad = cb;
  l->cum_total = ct;
  *used = need;
  return 0;
}
