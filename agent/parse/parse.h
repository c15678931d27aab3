/* SPDX-License-Identifier: Apache-2.0 */
/* Container log line parsing: CRI (`<time> <stream> <P|F> <msg>`) and Docker json-file
 * (`{"log":"..\n","stream":..,"time":..}`), with partial-line reassembly kept apart per
 * stream and optional multiline joining (a PCRE2 start pattern). A parser is a stateful
 * per-file object: feed it complete raw lines with their file offsets, get entries back
 * through a callback. Entries carry the offset up to which the file may be checkpointed once
 * the entry (and every entry before it) has been delivered. Not thread-safe: one parser
 * is used by one thread. */
#ifndef NN_AGENT_PARSE_PARSE_H
#define NN_AGENT_PARSE_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum nn_parse_format {
  NN_PARSE_AUTO = 0, /* decided from the first line of the file */
  NN_PARSE_CRI,
  NN_PARSE_DOCKER,
  NN_PARSE_RAW, /* each line is one message, no timestamp, stream NN_PARSE_STREAM_NONE */
};

enum nn_parse_stream {
  NN_PARSE_STREAM_STDOUT = 0,
  NN_PARSE_STREAM_STDERR = 1,
  NN_PARSE_STREAM_NONE = 2, /* raw lines, or lines whose framing could not be parsed */
};
#define NN_PARSE_NSTREAMS 3

/* Entry flags. */
#define NN_PARSE_F_TRUNCATED      0x01u /* message longer than max_line_size, cut there */
#define NN_PARSE_F_PARTIAL_JOINED 0x02u /* assembled from CRI P / Docker 16 KiB fragments */
#define NN_PARSE_F_INVALID_UTF8   0x04u /* message bytes are not valid UTF-8 (passed as is) */
#define NN_PARSE_F_BAD_FORMAT     0x08u /* framing did not parse; the raw line is the message */
#define NN_PARSE_F_MULTILINE      0x10u /* several lines joined by the multiline rule */
#define NN_PARSE_F_FLUSHED        0x20u /* emitted incomplete: timeout, flush or end of file */

struct nn_parse_entry {
  int64_t ts_ns; /* from the log framing; 0 when unknown (raw lines) */
  enum nn_parse_stream stream;
  const char *line; /* message without its trailing newline; valid only during the callback */
  size_t len;
  uint32_t flags;
  uint64_t start_offset; /* [start, end): file bytes of the first and last line of the entry */
  uint64_t end_offset;
  /* Every byte before commit_offset belongs to this entry or to one emitted earlier, so a
   * reader may checkpoint here once they are all delivered. Never decreases. */
  uint64_t commit_offset;
};

typedef void (*nn_parse_entry_cb)(void *ctx, const struct nn_parse_entry *e);

/* A compiled multiline rule, shared read-only by every parser that uses it. */
struct nn_parse_ml;

struct nn_parse_ml_config {
  const char *start_pattern; /* PCRE2; a line matching it starts a new entry */
  uint32_t max_lines;        /* flush after this many lines; 0 means 500 */
  size_t max_bytes;          /* cap on a joined entry (truncated past it); 0 means max_line_size */
  uint32_t flush_timeout_ms; /* flush a pending entry this long after its last line; 0 = 1000 */
};

/* Compiles the rule (with JIT when available). NN_ECONFIG with a message naming the
 * pattern and the error offset in err on a bad pattern; NN_ENOMEM. */
int nn_parse_ml_create(const struct nn_parse_ml_config *cfg, struct nn_parse_ml **out, char *err,
                       size_t errlen);
void nn_parse_ml_destroy(struct nn_parse_ml *ml);

struct nn_parse_config {
  enum nn_parse_format format;
  size_t max_line_size;         /* cap on one message after joining; 0 means 256 KiB */
  uint32_t partial_timeout_ms;  /* flush an unfinished P/16 KiB join this long after its last
                                   fragment; 0 means 10 s */
  const struct nn_parse_ml *ml; /* NULL: no multiline joining. Not owned; must outlive */
};

struct nn_parse_stats {
  uint64_t lines;          /* raw lines fed */
  uint64_t entries;        /* entries emitted */
  uint64_t truncated;      /* entries cut at max_line_size */
  uint64_t invalid_utf8;   /* entries with invalid UTF-8 */
  uint64_t bad_format;     /* lines whose CRI/Docker framing did not parse */
  uint64_t partial_joined; /* entries assembled from fragments */
  uint64_t flushed;        /* entries emitted incomplete (timeout, flush) */
};

struct nn_parser;

/* Creates a parser that calls cb(ctx, entry) for each entry. NULL on out of memory. */
struct nn_parser *nn_parse_create(const struct nn_parse_config *cfg, nn_parse_entry_cb cb,
                                  void *ctx);
void nn_parse_destroy(struct nn_parser *p);

/* Feeds one complete line (without its '\n') that occupies [start, end) in the file (end
 * includes the newline). truncated: the reader already cut the raw line. May call the
 * callback zero or more times. Never fails: unparseable lines become raw entries. */
void nn_parse_feed(struct nn_parser *p, const char *line, size_t len, uint64_t start, uint64_t end,
                   bool truncated);
/* Advances the parser's clock (milliseconds, any monotonic origin) and flushes joins whose
 * timeout has passed. Lines fed later are stamped with this time. */
void nn_parse_tick(struct nn_parser *p, uint64_t now_ms);
/* Emits everything pending (end of file, file closed, copytruncate). */
void nn_parse_flush(struct nn_parser *p);
/* Drops pending state without emitting it and restarts offsets (the reader will re-read
 * those bytes, e.g. after a shutdown). */
void nn_parse_reset(struct nn_parser *p);
/* True when the parser holds unfinished fragments or a multiline entry. */
bool nn_parse_pending(const struct nn_parser *p);
/* The detected (or configured) format; NN_PARSE_AUTO before the first line. */
enum nn_parse_format nn_parse_format_of(const struct nn_parser *p);
const struct nn_parse_stats *nn_parse_stats(const struct nn_parser *p);

/* Parses an RFC 3339 timestamp with optional fraction (up to 9 digits) and a "Z" or
 * "+hh:mm"/"+hhmm" offset into ns since the epoch. NN_EINVAL when malformed. */
int nn_parse_rfc3339(const char *s, size_t n, int64_t *out_ns);

/* Sniffs the format of a file from its first line. */
enum nn_parse_format nn_parse_detect(const char *line, size_t len);

/* One-line parsers used by the stateful parser; exposed for tests and fuzzers. */
struct nn_parse_cri_line {
  int64_t ts_ns;
  enum nn_parse_stream stream;
  bool partial; /* P */
  const char *msg;
  size_t msg_len;
};
/* NN_EINVAL when the line is not CRI framed. msg points into line. */
int nn_parse_cri_line(const char *line, size_t len, struct nn_parse_cri_line *out);

struct nn_buf;
struct nn_parse_docker_line {
  int64_t ts_ns; /* 0 when "time" is absent */
  enum nn_parse_stream stream;
  bool partial;    /* "log" does not end in a newline: a 16 KiB split */
  const char *msg; /* the unescaped "log" value minus its final newline */
  size_t msg_len;
};
/* Parses one json-file line. msg points into line when no unescaping was needed, else into
 * scratch (reset first; its cap bounds the work). lenient: accept an unterminated "log"
 * string (the reader truncated the line). NN_EINVAL when not a json-file record,
 * NN_ETOOBIG when the unescaped value does not fit scratch. */
int nn_parse_docker_line(const char *line, size_t len, bool lenient, struct nn_buf *scratch,
                         struct nn_parse_docker_line *out);

#endif
