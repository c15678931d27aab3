/* SPDX-License-Identifier: Apache-2.0 */
/* Logging. One record is built in a stack buffer and written with a single write(2), so
 * records from several threads never interleave. */
#include "common/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/error.h"

static enum nn_log_level min_level = NN_LOG_INFO;
static enum nn_log_format format = NN_LOG_LOGFMT;
static atomic_uint_fast64_t suppressed_total;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void nn_log_setup(enum nn_log_level min, enum nn_log_format fmt)
{
  min_level = min;
  format = fmt;
}

enum nn_log_level nn_log_min_level(void)
{
  return min_level;
}

int nn_log_level_parse(const char *s, enum nn_log_level *out)
{
  for (int i = 0; i < 4; i++) {
    if (strcmp(s, level_names[i]) == 0) {
      *out = (enum nn_log_level)i;
      return 0;
    }
  }
  return NN_EINVAL;
}

int nn_log_format_parse(const char *s, enum nn_log_format *out)
{
  if (strcmp(s, "logfmt") == 0)
    *out = NN_LOG_LOGFMT;
  else if (strcmp(s, "json") == 0)
    *out = NN_LOG_JSON;
  else
    return NN_EINVAL;
  return 0;
}

uint64_t nn_log_suppressed_total(void)
{
  return atomic_load(&suppressed_total);
}

static void logfmt_quote(struct nn_buf *b, const char *s, size_t n)
{
  nn_buf_appendc(b, '"');
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '"' || c == '\\')
      nn_buf_appendc(b, '\\');
    if (c == '\n') {
      nn_buf_append(b, "\\n", 2);
      continue;
    }
    nn_buf_appendc(b, c);
  }
  nn_buf_appendc(b, '"');
}

__attribute__((format(printf, 4, 0))) static void
vemit(enum nn_log_level lvl, const char *module, uint32_t suppressed, const char *fmt, va_list ap)
{
  char msg[2048];
  int n = vsnprintf(msg, sizeof(msg), fmt, ap);
  if (n < 0)
    return;
  size_t mlen = (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;

  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char tbuf[96];
  snprintf(tbuf, sizeof(tbuf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           (long)(ts.tv_nsec / 1000000) % 1000);

  struct nn_buf b;
  nn_buf_init(&b, 8192);
  if (format == NN_LOG_JSON) {
    nn_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":", tbuf, level_names[lvl]);
    nn_buf_append_json_str(&b, module, strlen(module));
    nn_buf_appends(&b, ",\"msg\":");
    nn_buf_append_json_str(&b, msg, mlen);
    if (suppressed)
      nn_buf_printf(&b, ",\"suppressed\":%u", suppressed);
    nn_buf_appends(&b, "}\n");
  } else {
    nn_buf_printf(&b, "ts=%s level=%s module=%s msg=", tbuf, level_names[lvl], module);
    logfmt_quote(&b, msg, mlen);
    if (suppressed)
      nn_buf_printf(&b, " suppressed=%u", suppressed);
    nn_buf_appendc(&b, '\n');
  }
  if (b.data) {
    ssize_t w = write(STDERR_FILENO, b.data, b.len);
    (void)w;
  }
  nn_buf_fini(&b);
}

void nn_log(enum nn_log_level lvl, const char *module, const char *fmt, ...)
{
  if (lvl < min_level)
    return;
  va_list ap;
  va_start(ap, fmt);
  vemit(lvl, module, 0, fmt, ap);
  va_end(ap);
}

void nn_log_rl(struct nn_log_rl *rl, uint32_t burst, enum nn_log_level lvl, const char *module,
               const char *fmt, ...)
{
  if (lvl < min_level)
    return;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  if (now - rl->window_start_ms >= 1000) {
    rl->window_start_ms = now;
    rl->emitted = 0;
  }
  if (rl->emitted >= burst) {
    rl->suppressed++;
    atomic_fetch_add(&suppressed_total, 1);
    return;
  }
  rl->emitted++;
  uint32_t sup = rl->suppressed;
  rl->suppressed = 0;
  va_list ap;
  va_start(ap, fmt);
  vemit(lvl, module, sup, fmt, ap);
  va_end(ap);
}
