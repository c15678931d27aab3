/* SPDX-License-Identifier: Apache-2.0 */
/* Durations and byte sizes as Prometheus spells them in its configuration files: durations as
 * prometheus/common model.ParseDuration ("1h30m", "500ms", "0"), sizes as alecthomas/units
 * Base2Bytes ("512MB", "1.5GiB", KB = KiB = 1024). */
#ifndef NN_COMMON_UNITS_H
#define NN_COMMON_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* Largest duration accepted, in milliseconds: Prometheus stores durations as int64
 * nanoseconds, so anything past about 292 years is out of range. */
#define NN_DURATION_MAX_MS (INT64_MAX / 1000000)

/* Parses s[0..n) as units y w d h m s ms, each at most once, largest first, integers only
 * ("1d2h", "90s"); y = 365d, w = 7d; "0" alone needs no unit. No sign, no fraction.
 * NN_EINVAL on bad syntax, NN_ETOOBIG past NN_DURATION_MAX_MS. */
int nn_duration_parse(const char *s, size_t n, int64_t *ms);
/* Writes ms as Prometheus prints it ("1h30m", "0s", "90d", "-5m"): y and w are used only
 * when they divide the value exactly. NUL-terminates; NN_ETOOBIG if buf is too small.
 * 40 bytes always suffice. */
int nn_duration_format(int64_t ms, char *buf, size_t len);

/* Largest size accepted, in bytes (Prometheus keeps sizes in an int64). */
#define NN_SIZE_MAX_BYTES ((uint64_t)INT64_MAX)

/* Parses s[0..n) as a base-2 byte size: a sequence of <number><unit> with units B, KB, MB,
 * GB, TB, PB, EB or B, KiB, MiB, GiB, TiB, PiB, EiB (one family per string, case-sensitive,
 * K = 1024), numbers may have a fraction ("1.5GB"); the result is truncated to whole bytes.
 * A plain integer ("4096") is a byte count. NN_EINVAL on bad syntax, NN_ETOOBIG past
 * NN_SIZE_MAX_BYTES. */
int nn_size_parse(const char *s, size_t n, uint64_t *bytes);
/* Writes bytes as Base2Bytes prints it ("1KiB1B", "512MiB", "0B"), which nn_size_parse reads
 * back exactly. NUL-terminates; NN_ETOOBIG if buf is too small; 64 bytes always suffice. */
int nn_size_format(uint64_t bytes, char *buf, size_t len);

#endif
