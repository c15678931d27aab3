/* SPDX-License-Identifier: Apache-2.0 */
/* The stateful per-file parser: format detection, P/F and 16 KiB split reassembly per stream,
 * multiline joining, caps, and the commit offset that lets the reader checkpoint exactly.
 * Complete single lines (the common case) are emitted straight from the caller's buffer;
 * buffers are only touched for fragments and multiline joins, and are reused, so the per-line
 * path does no allocation. */
#include "agent/parse/parse.h"

#include <stdlib.h>
#include <string.h>

#include "agent/parse/internal.h"
#include "common/buf.h"
#include "common/utf8.h"

#define NONE_OFF UINT64_MAX

struct join {
  struct nn_buf buf;
  bool active;
  uint64_t start, end;
  int64_t ts_ns;
  uint32_t flags;
  uint32_t lines;
  uint64_t last_ms; /* parser clock at the last appended piece */
};

struct stream_state {
  struct join part; /* CRI P fragments / Docker splits */
  struct join ml;   /* multiline entry */
};

struct nn_parser {
  enum nn_parse_format configured;
  enum nn_parse_format fmt;
  size_t max_line;
  uint32_t partial_timeout_ms;
  const struct nn_parse_ml *ml;
  size_t ml_max_bytes;
  pcre2_match_data *md;
  nn_parse_entry_cb cb;
  void *ctx;
  struct stream_state st[NN_PARSE_NSTREAMS];
  struct nn_buf scratch;
  struct nn__parse_ts_cache ts_cache;
  uint64_t now_ms;
  uint64_t inflight; /* start of the line being fed until a join or an entry owns it */
  uint64_t fed_end;
  uint64_t last_commit;
  struct nn_parse_stats stats;
};

struct nn_parser *nn_parse_create(const struct nn_parse_config *cfg, nn_parse_entry_cb cb,
                                  void *ctx)
{
  struct nn_parser *p = calloc(1, sizeof(*p));
  if (!p)
    return NULL;
  p->configured = p->fmt = cfg->format;
  p->max_line = cfg->max_line_size ? cfg->max_line_size : 256 * 1024;
  p->partial_timeout_ms = cfg->partial_timeout_ms ? cfg->partial_timeout_ms : 10000;
  p->ml = cfg->ml;
  p->ml_max_bytes = p->ml && p->ml->max_bytes ? p->ml->max_bytes : p->max_line;
  p->cb = cb;
  p->ctx = ctx;
  p->inflight = NONE_OFF;
  for (int i = 0; i < NN_PARSE_NSTREAMS; i++) {
    nn_buf_init(&p->st[i].part.buf, p->max_line);
    nn_buf_init(&p->st[i].ml.buf, p->ml_max_bytes);
  }
  /* Unescaping never grows text, so a scratch as large as the longest raw line the reader
   * hands us (max_line plus framing slack, see the tail module) always suffices; longer
   * input fails cleanly with NN_ETOOBIG and is emitted raw. */
  nn_buf_init(&p->scratch, p->max_line + 65536);
  if (p->ml) {
    p->md = nn__parse_ml_match_data(p->ml);
    if (!p->md) {
      nn_parse_destroy(p);
      return NULL;
    }
  }
  return p;
}

void nn_parse_destroy(struct nn_parser *p)
{
  if (!p)
    return;
  for (int i = 0; i < NN_PARSE_NSTREAMS; i++) {
    nn_buf_fini(&p->st[i].part.buf);
    nn_buf_fini(&p->st[i].ml.buf);
  }
  nn_buf_fini(&p->scratch);
  if (p->md)
    pcre2_match_data_free(p->md);
  free(p);
}

/* Largest n' <= n that does not split a UTF-8 sequence, so a cut message stays valid. */
static size_t utf8_cut(const char *s, size_t n, size_t max)
{
  if (n <= max)
    return n;
  size_t k = max;
  for (int i = 0; i < 3 && k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80; i++)
    k--;
  return k;
}

static void join_append(struct join *j, const char *s, size_t n)
{
  size_t room = j->buf.max - j->buf.len;
  if (n > room) {
    n = utf8_cut(s, n, room);
    j->flags |= NN_PARSE_F_TRUNCATED;
  }
  if (n && nn_buf_append(&j->buf, s, n) < 0)
    j->flags |= NN_PARSE_F_TRUNCATED; /* out of memory: keep what we have, flagged */
}

static void join_start(struct join *j, int64_t ts, uint64_t start, uint64_t end, uint32_t flags,
                       uint64_t now)
{
  nn_buf_reset(&j->buf);
  j->active = true;
  j->start = start;
  j->end = end;
  j->ts_ns = ts;
  j->flags = flags;
  j->lines = 0;
  j->last_ms = now;
}

static uint64_t commit_offset(struct nn_parser *p)
{
  uint64_t m = p->fed_end;
  if (p->inflight < m)
    m = p->inflight;
  for (int i = 0; i < NN_PARSE_NSTREAMS; i++) {
    if (p->st[i].part.active && p->st[i].part.start < m)
      m = p->st[i].part.start;
    if (p->st[i].ml.active && p->st[i].ml.start < m)
      m = p->st[i].ml.start;
  }
  if (m < p->last_commit)
    m = p->last_commit;
  p->last_commit = m;
  return m;
}

static void emit(struct nn_parser *p, enum nn_parse_stream stream, int64_t ts, const char *msg,
                 size_t n, uint32_t flags, uint64_t start, uint64_t end)
{
  if (!nn_utf8_valid(msg, n)) {
    flags |= NN_PARSE_F_INVALID_UTF8;
    p->stats.invalid_utf8++;
  }
  if (flags & NN_PARSE_F_TRUNCATED)
    p->stats.truncated++;
  if (flags & NN_PARSE_F_PARTIAL_JOINED)
    p->stats.partial_joined++;
  if (flags & NN_PARSE_F_FLUSHED)
    p->stats.flushed++;
  struct nn_parse_entry e = {
      .ts_ns = ts,
      .stream = stream,
      .line = msg ? msg : "",
      .len = n,
      .flags = flags,
      .start_offset = start,
      .end_offset = end,
      .commit_offset = commit_offset(p),
  };
  p->stats.entries++;
  p->cb(p->ctx, &e);
}

static void ml_flush(struct nn_parser *p, int s, uint32_t extra)
{
  struct join *j = &p->st[s].ml;
  if (!j->active)
    return;
  j->active = false;
  emit(p, (enum nn_parse_stream)s, j->ts_ns, j->buf.data, j->buf.len, j->flags | extra, j->start,
       j->end);
}

/* A complete message (one line, or reassembled fragments). */
static void message(struct nn_parser *p, int s, int64_t ts, const char *msg, size_t n,
                    uint32_t flags, uint64_t start, uint64_t end)
{
  if (n > p->max_line) {
    n = utf8_cut(msg, n, p->max_line);
    flags |= NN_PARSE_F_TRUNCATED;
  }
  if (!p->ml) {
    p->inflight = NONE_OFF;
    emit(p, (enum nn_parse_stream)s, ts, msg, n, flags, start, end);
    return;
  }
  struct join *j = &p->st[s].ml;
  if (!j->active || nn__parse_ml_is_start(p->ml, p->md, msg, n)) {
    ml_flush(p, s, 0);
    join_start(j, ts, start, end, flags, p->now_ms);
  } else {
    join_append(j, "\n", 1);
    j->flags |= flags | NN_PARSE_F_MULTILINE;
    j->end = end;
    j->last_ms = p->now_ms;
  }
  join_append(j, msg, n);
  j->lines++;
  p->inflight = NONE_OFF;
  if (j->lines >= p->ml->max_lines)
    ml_flush(p, s, 0);
}

static void part_flush(struct nn_parser *p, int s, uint32_t extra)
{
  struct join *j = &p->st[s].part;
  if (!j->active)
    return;
  j->active = false;
  message(p, s, j->ts_ns, j->buf.data, j->buf.len, j->flags | extra, j->start, j->end);
}

static void fragment(struct nn_parser *p, int s, int64_t ts, const char *msg, size_t n,
                     bool partial, uint32_t flags, uint64_t start, uint64_t end)
{
  struct join *j = &p->st[s].part;
  if (partial) {
    if (!j->active)
      join_start(j, ts, start, end, flags | NN_PARSE_F_PARTIAL_JOINED, p->now_ms);
    join_append(j, msg, n);
    j->flags |= flags;
    j->end = end;
    j->lines++;
    j->last_ms = p->now_ms;
    p->inflight = NONE_OFF;
    return;
  }
  if (!j->active) {
    message(p, s, ts, msg, n, flags, start, end);
    return;
  }
  join_append(j, msg, n);
  j->active = false;
  message(p, s, j->ts_ns, j->buf.data, j->buf.len, j->flags | flags, j->start, end);
}

void nn_parse_feed(struct nn_parser *p, const char *line, size_t len, uint64_t start, uint64_t end,
                   bool truncated)
{
  uint32_t flags = truncated ? NN_PARSE_F_TRUNCATED : 0;
  p->stats.lines++;
  p->inflight = start;
  if (end > p->fed_end)
    p->fed_end = end;
  if (p->fmt == NN_PARSE_AUTO)
    p->fmt = nn_parse_detect(line, len);
  switch (p->fmt) {
  case NN_PARSE_CRI: {
    struct nn_parse_cri_line c;
    if (nn__parse_cri_line_cached(&p->ts_cache, line, len, &c) == 0) {
      fragment(p, c.stream, c.ts_ns, c.msg, c.msg_len, c.partial, flags, start, end);
      return;
    }
    break;
  }
  case NN_PARSE_DOCKER: {
    struct nn_parse_docker_line d;
    if (nn_parse_docker_line(line, len, truncated, &p->scratch, &d) == 0) {
      fragment(p, d.stream, d.ts_ns, d.msg, d.msg_len, d.partial && !truncated, flags, start, end);
      return;
    }
    break;
  }
  default: message(p, NN_PARSE_STREAM_NONE, 0, line, len, flags, start, end); return;
  }
  /* Never drop a line: if the framing is broken, the raw bytes are the message. */
  p->stats.bad_format++;
  message(p, NN_PARSE_STREAM_NONE, 0, line, len, flags | NN_PARSE_F_BAD_FORMAT, start, end);
}

void nn_parse_tick(struct nn_parser *p, uint64_t now_ms)
{
  p->now_ms = now_ms;
  for (int s = 0; s < NN_PARSE_NSTREAMS; s++) {
    struct join *j = &p->st[s].part;
    if (j->active && now_ms - j->last_ms >= p->partial_timeout_ms)
      part_flush(p, s, NN_PARSE_F_FLUSHED);
    j = &p->st[s].ml;
    if (j->active && now_ms - j->last_ms >= p->ml->flush_timeout_ms)
      ml_flush(p, s, 0);
  }
}

void nn_parse_flush(struct nn_parser *p)
{
  for (int s = 0; s < NN_PARSE_NSTREAMS; s++) {
    part_flush(p, s, NN_PARSE_F_FLUSHED);
    ml_flush(p, s, 0);
  }
}

void nn_parse_reset(struct nn_parser *p)
{
  for (int s = 0; s < NN_PARSE_NSTREAMS; s++) {
    p->st[s].part.active = false;
    p->st[s].ml.active = false;
  }
  p->fmt = p->configured;
  p->inflight = NONE_OFF;
  p->fed_end = 0;
  p->last_commit = 0;
}

bool nn_parse_pending(const struct nn_parser *p)
{
  for (int s = 0; s < NN_PARSE_NSTREAMS; s++)
    if (p->st[s].part.active || p->st[s].ml.active)
      return true;
  return false;
}

enum nn_parse_format nn_parse_format_of(const struct nn_parser *p)
{
  return p->fmt;
}

const struct nn_parse_stats *nn_parse_stats(const struct nn_parser *p)
{
  return &p->stats;
}
