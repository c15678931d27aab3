/* SPDX-License-Identifier: Apache-2.0 */
/* Leveled, rate-limited logging to stderr as logfmt or JSON lines. */
#ifndef NN_COMMON_LOG_H
#define NN_COMMON_LOG_H

#include <stdint.h>

enum nn_log_level { NN_LOG_DEBUG, NN_LOG_INFO, NN_LOG_WARN, NN_LOG_ERROR };
enum nn_log_format { NN_LOG_LOGFMT, NN_LOG_JSON };

/* Per call-site state for NN_LOG_RL; zero-initialised. */
struct nn_log_rl {
  int64_t window_start_ms;
  uint32_t emitted;
  uint32_t suppressed;
};

void nn_log_setup(enum nn_log_level min, enum nn_log_format fmt);
/* Parses "debug|info|warn|error" and "logfmt|json". Returns NN_EINVAL if unknown. */
int nn_log_level_parse(const char *s, enum nn_log_level *out);
int nn_log_format_parse(const char *s, enum nn_log_format *out);
enum nn_log_level nn_log_min_level(void);

/* Writes one record: level, module, message. */
void nn_log(enum nn_log_level lvl, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* As nn_log, but at most `burst` records per second from this call site; the count of
 * suppressed records is reported with the next record that gets through. */
void nn_log_rl(struct nn_log_rl *rl, uint32_t burst, enum nn_log_level lvl, const char *module,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Number of records suppressed by rate limiting since start (for /metrics). */
uint64_t nn_log_suppressed_total(void);

#define NN_LOG_RL(lvl, module, ...)                                                                \
  do {                                                                                             \
    static struct nn_log_rl nn__rl_;                                                               \
    nn_log_rl(&nn__rl_, 10, (lvl), (module), __VA_ARGS__);                                         \
  } while (0)

#define nn_debug(mod, ...)                                                                         \
  do {                                                                                             \
    if (nn_log_min_level() <= NN_LOG_DEBUG)                                                        \
      nn_log(NN_LOG_DEBUG, (mod), __VA_ARGS__);                                                    \
  } while (0)
#define nn_info(mod, ...)  nn_log(NN_LOG_INFO, (mod), __VA_ARGS__)
#define nn_warn(mod, ...)  nn_log(NN_LOG_WARN, (mod), __VA_ARGS__)
#define nn_error(mod, ...) nn_log(NN_LOG_ERROR, (mod), __VA_ARGS__)

#endif
