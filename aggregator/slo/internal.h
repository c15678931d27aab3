/* SPDX-License-Identifier: Apache-2.0 */
/* Private types of the SLO module: the parsed spec, the bucket ledger and the engine's
 * per-SLO runtime state. */
#ifndef NN_AGGREGATOR_SLO_INTERNAL_H
#define NN_AGGREGATOR_SLO_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/slo/slo.h"
#include "common/labels.h"

struct uv_loop_s;
struct uv_timer_s;

struct nn_buf;

/* Windows of the Sloth SLI recordings, then the period (index NN_SLO_W_PERIOD). */
enum {
  NN_SLO_W_5M,
  NN_SLO_W_30M,
  NN_SLO_W_1H,
  NN_SLO_W_2H,
  NN_SLO_W_6H,
  NN_SLO_W_1D,
  NN_SLO_W_3D,
  NN_SLO_W_PERIOD,
  NN_SLO_NWINDOWS
};
extern const int64_t nn__slo_window_min[NN_SLO_W_PERIOD]; /* minutes */
extern const char *const nn__slo_window_name[NN_SLO_W_PERIOD];

enum nn_slo_period_kind { NN_SLO_ROLLING, NN_SLO_MONTH, NN_SLO_QUARTER };
enum nn_slo_sli_kind { NN_SLO_SLI_EVENTS, NN_SLO_SLI_RAW };

/* A time zone: a fixed offset, or standard and daylight offsets with the yearly
 * transitions of a POSIX TZ rule "Mm.w.d/time" (see tz.c). NULL pointers mean UTC. */
struct nn_slo_tz_rule {
  int8_t mon, week, wday; /* month 1..12, week 1..5 (5 = last), weekday 0 = Sunday */
  int32_t time_s;         /* local wall time of the change, seconds after midnight */
};
struct nn_slo_tz {
  int32_t std_s, dst_s; /* seconds east of UTC */
  bool dst;
  struct nn_slo_tz_rule start, end;
};
/* "UTC", "+02:00" or an IANA name ("Europe/Berlin") from $TZDIR or /usr/share/zoneinfo. */
int nn__slo_tz_parse(const char *t, struct nn_slo_tz *tz);
/* The footer rule of a TZif (version 2+) file; NN_EINVAL when malformed. */
int nn__slo_tz_from_tzif(const unsigned char *p, size_t n, struct nn_slo_tz *tz);
int nn__slo_tz_parse_posix(const char *s, struct nn_slo_tz *tz);
bool nn__slo_tz_equal(const struct nn_slo_tz *a, const struct nn_slo_tz *b);
/* Seconds east of UTC in effect at utc_s. */
int nn__slo_tz_offset(const struct nn_slo_tz *tz, int64_t utc_s);
/* UTC minute to local wall-clock minute and back (a wall time in a DST gap maps past it). */
int64_t nn__slo_tz_local_min(const struct nn_slo_tz *tz, int64_t m);
int64_t nn__slo_tz_utc_min(const struct nn_slo_tz *tz, int64_t local);
/* Civil date of days since 1970-01-01 and back. */
void nn__slo_civil(int64_t z, int *y, int *m, int *d);
int64_t nn__slo_days_from_civil(int y, int m, int d);

/* A string map in document order (labels, annotations). */
struct nn_slo_kv {
  char **k, **v;
  size_t n;
};

struct nn_slo_alert_spec {
  bool disable;
  int64_t for_ms;
  struct nn_slo_kv labels, annotations;
};

/* One SLO after loading; both spec formats end up here. Queries keep "{{.window}}". */
struct nn_slo_spec {
  char *service, *name, *id, *description;
  char *file;       /* where it was defined, for messages */
  char *format;     /* "prometheus/v1" or "nines/v1" */
  double objective; /* ratio in (0, 1) */
  enum nn_slo_sli_kind sli;
  char *error_query, *total_query; /* events (per-second rates) */
  char *ratio_query;               /* raw */
  char *project, *team;
  struct nn_slo_kv labels; /* service + SLO labels merged, no sloth_* */
  enum nn_slo_period_kind period_kind;
  int64_t period_min;  /* rolling length, or nominal (30d / 90d) for calendar periods */
  struct nn_slo_tz tz; /* calendar periods and daily series */
  bool tz_set;         /* false: the engine's time_zone */
  int64_t min_events;  /* -1: engine default */
  char *alert_name;
  struct nn_slo_kv alert_labels, alert_annotations;
  struct nn_slo_alert_spec page, ticket;
  bool no_data_disable, budget_disable;
  double budget_pct[4];         /* % of budget for page quick/slow, ticket quick/slow */
  int64_t group_interval_ms[3]; /* Sloth's interval: SLI, meta, alert rule groups; 0: none */
  uint64_t fingerprint;         /* of the SLI queries and period: ledger compatibility */
};

struct nn_slo_set {
  struct nn_slo_spec *v;
  size_t n;
};

void nn__slo_spec_fini(struct nn_slo_spec *s);
/* Burn-rate factor of tier i (0..3) for the spec's period: pct * period_h / 100 / long_h. */
double nn__slo_factor(const struct nn_slo_spec *s, int tier);
/* Long and short window index of tier i. */
extern const int nn__slo_tier_long[4], nn__slo_tier_short[4];
/* Substitutes {{.window}} (and {{ .window }}) with win into out. */
int nn__slo_render_query(const char *tmpl, const char *win, struct nn_buf *out);

/* ---- Ledger ---------------------------------------------------------------------------- */

#define NN_SLO_FINE_SLOTS 2880 /* 1-minute buckets: the last 48 hours */
#define NN_SLO_MONTHS     6    /* calendar months kept for met/missed history */

struct nn_slo_month {
  int32_t ym; /* year * 12 + month0; 0 = unused */
  double bad, total;
};

/* Cumulative (prefix) sums of bad and total events. fine[m % NF] is the sum through
 * minute m for the last NF minutes; coarse[h % nc] the sum through hour h. */
struct nn_slo_ledger {
  int64_t first_min; /* first minute with data; INT64_MIN when empty */
  int64_t head_min;  /* newest minute written */
  double cum_bad, cum_total;
  double *fine_bad, *fine_total; /* NN_SLO_FINE_SLOTS each */
  double *coarse_bad, *coarse_total;
  size_t ncoarse; /* hours */
  struct nn_slo_tz tz;
  struct nn_slo_month months[NN_SLO_MONTHS];
  int64_t last_eval_ms; /* last evaluation folded in; 0 = none */
};

int nn__slo_ledger_init(struct nn_slo_ledger *l, int64_t period_min, const struct nn_slo_tz *tz);
void nn__slo_ledger_fini(struct nn_slo_ledger *l);
size_t nn__slo_ledger_bytes(const struct nn_slo_ledger *l);
/* Adds events of the interval ending in minute m (m older than the head counts at the head). */
void nn__slo_ledger_add(struct nn_slo_ledger *l, int64_t m, double bad, double total);
/* Cumulative sums through minute m (interpolated inside an hour past the fine ring). */
void nn__slo_ledger_cum(const struct nn_slo_ledger *l, int64_t m, double *bad, double *total);
/* Sums over the minutes (end - len, end]. O(1). */
void nn__slo_ledger_window(const struct nn_slo_ledger *l, int64_t end, int64_t len, double *bad,
                           double *total);
/* Start minute of the calendar month (quarter when quarter) holding minute m. */
int64_t nn__slo_calendar_start(int64_t m, const struct nn_slo_tz *tz, bool quarter);
int32_t nn__slo_month_of(int64_t m, const struct nn_slo_tz *tz);
/* Serialises / restores one ledger (snapshot body, see docs/format/slo-ledger.md). */
int nn__slo_ledger_encode(const struct nn_slo_ledger *l, struct nn_buf *out);
int nn__slo_ledger_decode(struct nn_slo_ledger *l, const unsigned char *p, size_t n, size_t *used);

/* ---- Engine runtime -------------------------------------------------------------------- */

enum nn_slo_alert_kind {
  NN_SLO_A_PAGE,
  NN_SLO_A_TICKET,
  NN_SLO_A_NODATA,
  NN_SLO_A_BUDGET,
  NN_SLO_NALERTS
};
enum nn_slo_astate { NN_SLO_INACTIVE, NN_SLO_PENDING, NN_SLO_FIRING };

struct nn_slo_alert_state {
  enum nn_slo_astate state;
  int64_t active_at, fired_at, resolved_at, last_sent;
  int budget_level; /* NN_SLO_A_BUDGET: 80 or 95 */
  int resolved_level;
  double value;
};

/* Values computed at one evaluation. */
struct nn_slo_values {
  int64_t ts;
  double bad[NN_SLO_NWINDOWS], total[NN_SLO_NWINDOWS], ratio[NN_SLO_NWINDOWS];
  double remaining, period_burn, current_burn, tte;
  bool page, ticket, nodata;
  int budget_level;
};

/* Output series of one SLO (write_series): the error ratio of each window, then the
 * meta series and sloth_slo_info. */
enum { NN_SLO_OUT_META = NN_SLO_NWINDOWS, NN_SLO_NOUT = NN_SLO_NWINDOWS + 8 };

struct nn_slo_rt {
  struct nn_slo_spec *spec; /* in the engine's set */
  /* Head series id of each output series once written (0: not yet): later evaluations
   * append by id instead of building and looking up the labels. An id the head dropped
   * (NN_ENOTFOUND) is looked up again by labels. */
  uint64_t out_ref[NN_SLO_NOUT];
  /* The same for the ALERTS series of each alert kind, valid while alert_key[k] (state and
   * budget level it was written with) is unchanged. */
  uint64_t alert_ref[NN_SLO_NALERTS];
  int alert_key[NN_SLO_NALERTS];
  /* The series of those ids found in the head (NULL: not yet), appended to without a
   * lookup and prefetched in one step while the head's series epoch is s_epoch. */
  struct nn__tsdb_series *out_s[NN_SLO_NOUT], *alert_s[NN_SLO_NALERTS];
  uint64_t s_epoch;
  struct nn_slo_ledger ledger;
  struct nn_promql_expr *err_expr, *total_expr; /* events: window = eval interval */
  struct nn_slo_alert_state alerts[NN_SLO_NALERTS];
  struct nn_slo_values last;
  bool have_last, loaded; /* loaded: ledger came from a snapshot or carried over */
  bool due;               /* evaluated this cycle, its series and alerts not yet written */
};

/* The ledger maths of one evaluation (windows, burn rates, alert conditions); no I/O. */
void nn__slo_compute(const struct nn_slo_spec *s, const struct nn_slo_ledger *l, int64_t ts,
                     int64_t min_events, int64_t no_data_min, struct nn_slo_values *v);

/* ---- Engine ---------------------------------------------------------------------------- */

struct nn_slo_engine {
  struct nn_slo_config cfg;
  struct uv_loop_s *loop;
  struct uv_timer_s *timer;
  struct nn_tsdb *db;
  char *data_dir;
  nn_slo_notify_fn notify;
  void *notify_ud;
  struct nn_promql_opts popts;
  char *external_url;
  struct nn_slo_tz tz;
  struct nn_slo_set *set;
  struct nn_slo_rt *rt;
  size_t nrt;
  unsigned char *snap; /* snapshot file read at start, until the first reload used it */
  size_t snap_len;
  uint64_t evals_since_snapshot;
  struct nn_slo_stats stats;
  struct nn_slo_notify_batch *batch; /* alerts queued by one SLO's evaluation, reused */
};

#define NN_SLO_MAX_LABELS 96
struct nn_slo_lset {
  struct nn_label v[NN_SLO_MAX_LABELS];
  size_t n;
};
/* Sets name=value, replacing an existing value. Strings are not copied. */
void nn__slo_lset_put(struct nn_slo_lset *l, const char *name, const char *value);
/* Labels of alert kind k (see docs/slo.md); lvlbuf holds the budget level text. */
void nn__slo_alert_labels(const struct nn_slo_spec *s, int k, int level, char *lvlbuf,
                          size_t lvllen, struct nn_slo_lset *l);
/* Annotations of alert kind k with {{$labels.x}} / {{$value}} expanded; strings live in
 * out. ann must hold 16 entries. */
int nn__slo_alert_annotations(const struct nn_slo_spec *s, int k, const struct nn_slo_lset *l,
                              const struct nn_slo_values *v, struct nn_buf *out,
                              struct nn_label *ann, size_t *nann);
/* ok | at_risk | breached | no_data (thresholds in docs/slo.md). */
const char *nn__slo_status(const struct nn_slo_rt *r);
/* Snapshot file <data_dir>/slo/ledger.snap (docs/format/slo-ledger.md). */
int nn__slo_snapshot_write(struct nn_slo_engine *e);
int nn__slo_snapshot_read(struct nn_slo_engine *e);
const unsigned char *nn__slo_snapshot_find(struct nn_slo_engine *e, const char *id, uint64_t fp,
                                           size_t *len);
/* RFC 3339 UTC time with milliseconds trimmed like Go's time.Time JSON. */
size_t nn__slo_format_time(int64_t ms, char *buf, size_t len);

#endif
