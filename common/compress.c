/* SPDX-License-Identifier: Apache-2.0 */
/* Codec façade. Output goes straight into the caller's nn_buf (no staging copies). zstd and
 * lz4 contexts are cached per thread because creating them costs more than compressing a
 * typical 10-100 KiB batch. Every decoder enforces the caller's output cap itself: declared
 * sizes are only hints and are never trusted past the cap. */
#include "common/compress.h"

#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lz4frame.h>
#include <snappy-c.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "common/buf.h"
#include "common/error.h"

#define ZSTD_DEFAULT_LEVEL 1 /* ~2x faster than 3 for ~10% worse ratio: the agent's hot path */
#define GROW_MIN           (64 * 1024)
/* A snappy element never expands by more than 64 output bytes per 3 input bytes (a 2-byte
 * offset copy), so a declared length above 22x the input is a lie, not a bomb to allocate. */
#define SNAPPY_MAX_RATIO 22
#define ZSTD_WLOG_MIN    23 /* 8 MiB: the window of zstd levels up to 19 */
#define ZSTD_WLOG_MAX    27 /* zstd's own default limit */

struct codec_ctx {
  ZSTD_CCtx *zc;
  ZSTD_DCtx *zd;
  LZ4F_cctx *lc;
  LZ4F_dctx *ld;
  int ld_dirty; /* ld was left mid-frame */
};

static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static _Thread_local struct codec_ctx *tls_ctx;

static void ctx_free(void *p)
{
  struct codec_ctx *c = p;
  if (!c)
    return;
  ZSTD_freeCCtx(c->zc);
  ZSTD_freeDCtx(c->zd);
  if (c->lc)
    LZ4F_freeCompressionContext(c->lc);
  if (c->ld)
    LZ4F_freeDecompressionContext(c->ld);
  free(c);
  tls_ctx = NULL;
}

static void on_once(void)
{
  /* On failure no destructor is registered: contexts then live until process exit. */
  (void)pthread_key_create(&ctx_key, ctx_free);
}

static struct codec_ctx *ctx_get(void)
{
  if (tls_ctx)
    return tls_ctx;
  pthread_once(&ctx_once, on_once);
  struct codec_ctx *c = calloc(1, sizeof(*c));
  if (!c)
    return NULL;
  (void)pthread_setspecific(ctx_key, c);
  tls_ctx = c;
  return c;
}

void nn_compress_thread_fini(void)
{
  if (!tls_ctx)
    return;
  pthread_setspecific(ctx_key, NULL);
  ctx_free(tls_ctx);
}

int nn_codec_parse(const char *s, enum nn_codec *out)
{
  static const struct {
    const char *name;
    enum nn_codec codec;
  } names[] = {
      {"identity", NN_CODEC_NONE},
      {"snappy", NN_CODEC_SNAPPY},
      {"zstd", NN_CODEC_ZSTD},
      {"lz4", NN_CODEC_LZ4},
  };
  if (!s) {
    *out = NN_CODEC_NONE;
    return 0;
  }
  size_t n = strlen(s);
  while (n && isspace((unsigned char)*s)) {
    s++;
    n--;
  }
  while (n && isspace((unsigned char)s[n - 1]))
    n--;
  if (n == 0) {
    *out = NN_CODEC_NONE;
    return 0;
  }
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    if (strlen(names[i].name) == n && strncasecmp(s, names[i].name, n) == 0) {
      *out = names[i].codec;
      return 0;
    }
  }
  return NN_EUNSUPPORTED;
}

const char *nn_codec_name(enum nn_codec c)
{
  switch (c) {
  case NN_CODEC_NONE: return "identity";
  case NN_CODEC_SNAPPY: return "snappy";
  case NN_CODEC_ZSTD: return "zstd";
  case NN_CODEC_LZ4: return "lz4";
  }
  return "unknown";
}

static void lz4_prefs(LZ4F_preferences_t *p, int level, size_t n)
{
  memset(p, 0, sizeof(*p));
  p->frameInfo.blockSizeID = LZ4F_max64KB; /* keeps the decoder's scratch buffer small */
  p->frameInfo.blockMode = LZ4F_blockLinked;
  p->frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
  p->frameInfo.contentSize = n;
  p->compressionLevel = level;
  p->autoFlush = 1; /* compress straight into dst, no internal staging copy */
}

size_t nn_compress_bound(enum nn_codec c, size_t n)
{
  LZ4F_preferences_t p;
  switch (c) {
  case NN_CODEC_NONE: return n;
  case NN_CODEC_SNAPPY: return snappy_max_compressed_length(n);
  case NN_CODEC_ZSTD: return ZSTD_compressBound(n);
  case NN_CODEC_LZ4: lz4_prefs(&p, 0, n); return LZ4F_compressFrameBound(n, &p);
  }
  return 0;
}

/* Reserves the codec's worst case, or whatever room out->max still allows when that is
 * smaller (the compressor then reports if the result really does not fit). */
static int reserve_room(struct nn_buf *out, size_t bound, size_t *room)
{
  size_t avail = out->max > out->len ? out->max - out->len : 0;
  *room = bound < avail ? bound : avail;
  return nn_buf_reserve(out, *room);
}

static void commit(struct nn_buf *out, size_t n)
{
  out->len += n;
  if (out->data)
    out->data[out->len] = '\0';
}

static int snappy_enc(const void *in, size_t n, struct nn_buf *out)
{
  if (n > UINT32_MAX) /* the block format's length preamble is a varint32 */
    return NN_ETOOBIG;
  size_t bound = snappy_max_compressed_length(n);
  int rc = nn_buf_reserve(out, bound); /* snappy insists on the full bound */
  if (rc < 0)
    return rc;
  size_t len = bound;
  if (snappy_compress(in, n, out->data + out->len, &len) != SNAPPY_OK)
    return NN_EINVAL;
  commit(out, len);
  return 0;
}

static int zstd_enc(struct codec_ctx *ctx, int level, const void *in, size_t n, struct nn_buf *out)
{
  if (!ctx->zc && !(ctx->zc = ZSTD_createCCtx()))
    return NN_ENOMEM;
  size_t room;
  int rc = reserve_room(out, ZSTD_compressBound(n), &room);
  if (rc < 0)
    return rc;
  /* The checksum (xxh64, 4 bytes) costs little next to compression and catches spool
   * files damaged on disk. */
  ZSTD_CCtx_reset(ctx->zc, ZSTD_reset_session_and_parameters);
  ZSTD_CCtx_setParameter(ctx->zc, ZSTD_c_compressionLevel, level ? level : ZSTD_DEFAULT_LEVEL);
  ZSTD_CCtx_setParameter(ctx->zc, ZSTD_c_checksumFlag, 1);
  size_t r = ZSTD_compress2(ctx->zc, out->data + out->len, room, in, n);
  if (ZSTD_isError(r))
    return ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall ? NN_ETOOBIG : NN_EINVAL;
  commit(out, r);
  return 0;
}

static int lz4_enc(struct codec_ctx *ctx, int level, const void *in, size_t n, struct nn_buf *out)
{
  if (!ctx->lc && LZ4F_isError(LZ4F_createCompressionContext(&ctx->lc, LZ4F_VERSION))) {
    ctx->lc = NULL;
    return NN_ENOMEM;
  }
  LZ4F_preferences_t p;
  lz4_prefs(&p, level, n);
  size_t room = LZ4F_compressFrameBound(n, &p); /* LZ4F insists on the full bound */
  int rc = nn_buf_reserve(out, room);
  if (rc < 0)
    return rc;
  char *dst = out->data + out->len;
  size_t pos = 0;
  size_t r = LZ4F_compressBegin(ctx->lc, dst, room, &p);
  if (!LZ4F_isError(r)) {
    pos += r;
    r = LZ4F_compressUpdate(ctx->lc, dst + pos, room - pos, in, n, NULL);
  }
  if (!LZ4F_isError(r)) {
    pos += r;
    r = LZ4F_compressEnd(ctx->lc, dst + pos, room - pos, NULL);
  }
  if (LZ4F_isError(r)) {
    /* A failed frame leaves the context mid-frame; start over with a fresh one. */
    LZ4F_freeCompressionContext(ctx->lc);
    ctx->lc = NULL;
    return NN_EINVAL; /* not expected: dst holds the full bound */
  }
  commit(out, pos + r);
  return 0;
}

int nn_compress_level(enum nn_codec c, int level, const void *in, size_t n, struct nn_buf *out)
{
  struct codec_ctx *ctx;
  switch (c) {
  case NN_CODEC_NONE: return nn_buf_append(out, in, n);
  case NN_CODEC_SNAPPY: return snappy_enc(in, n, out);
  case NN_CODEC_ZSTD:
  case NN_CODEC_LZ4:
    if (!(ctx = ctx_get()))
      return NN_ENOMEM;
    return c == NN_CODEC_ZSTD ? zstd_enc(ctx, level, in, n, out) : lz4_enc(ctx, level, in, n, out);
  }
  return NN_EINVAL;
}

int nn_compress(enum nn_codec c, const void *in, size_t n, struct nn_buf *out)
{
  return nn_compress_level(c, NN_COMPRESS_LEVEL_DEFAULT, in, n, out);
}

static int snappy_dec(const void *in, size_t n, size_t limit, struct nn_buf *out)
{
  size_t len;
  if (n == 0 || snappy_uncompressed_length(in, n, &len) != SNAPPY_OK)
    return NN_ECORRUPT;
  if (len > limit)
    return NN_ETOOBIG;
  if (n < SIZE_MAX / SNAPPY_MAX_RATIO && len > n * SNAPPY_MAX_RATIO)
    return NN_ECORRUPT;
  int rc = nn_buf_reserve(out, len);
  if (rc < 0)
    return rc;
  size_t got = len;
  if (snappy_uncompress(in, n, out->data + out->len, &got) != SNAPPY_OK || got != len)
    return NN_ECORRUPT;
  commit(out, len);
  return 0;
}

/* Makes room for more output of a streaming decoder: at least what was produced so far
 * (doubling) but never past the cap. *room is 0 when the cap is reached. */
static int stream_room(struct nn_buf *out, size_t start, size_t limit, size_t hint, size_t *room)
{
  size_t produced = out->len - start;
  size_t left = limit - produced;
  size_t have = out->cap > out->len + 1 ? out->cap - out->len - 1 : 0;
  if (have == 0 && left > 0) {
    size_t want = hint ? hint : (produced > GROW_MIN ? produced : GROW_MIN);
    if (want > left)
      want = left;
    int rc = nn_buf_reserve(out, want);
    if (rc < 0)
      return rc;
    have = out->cap - out->len - 1;
  }
  *room = have < left ? have : left;
  return 0;
}

static unsigned ceil_log2(size_t v)
{
  unsigned l = 0;
  while (l < 63 && ((size_t)1 << l) < v)
    l++;
  return l;
}

static int zstd_dec(struct codec_ctx *ctx, const void *in, size_t n, size_t limit,
                    struct nn_buf *out)
{
  if (!ctx->zd && !(ctx->zd = ZSTD_createDCtx()))
    return NN_ENOMEM;
  ZSTD_DCtx *d = ctx->zd;
  ZSTD_DCtx_reset(d, ZSTD_reset_session_only);
  unsigned wlog = ceil_log2(limit);
  wlog = wlog < ZSTD_WLOG_MIN ? ZSTD_WLOG_MIN : wlog > ZSTD_WLOG_MAX ? ZSTD_WLOG_MAX : wlog;
  ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, (int)wlog);
  if (n == 0)
    return NN_ECORRUPT;
  unsigned long long fcs = ZSTD_getFrameContentSize(in, n);
  if (fcs == ZSTD_CONTENTSIZE_ERROR)
    return NN_ECORRUPT;
  size_t hint = 0;
  if (fcs != ZSTD_CONTENTSIZE_UNKNOWN) {
    if (fcs > limit)
      return NN_ETOOBIG;
    hint = (size_t)fcs;
    if (ZSTD_findFrameCompressedSize(in, n) == n) {
      /* One frame of declared size: decode in one shot into the final buffer, which
       * also spares zstd its window buffer. A lying size makes zstd fail, not overrun. */
      int rc = nn_buf_reserve(out, hint);
      if (rc < 0)
        return rc;
      size_t r = ZSTD_decompressDCtx(d, out->data + out->len, hint, in, n);
      if (ZSTD_isError(r) || r != hint)
        return NN_ECORRUPT;
      commit(out, r);
      return 0;
    }
  }

  size_t start = out->len;
  ZSTD_inBuffer ib = {in, n, 0};
  for (;;) {
    size_t room;
    int rc = stream_room(out, start, limit, hint, &room);
    if (rc < 0)
      return rc;
    hint = 0;
    char probe; /* at the cap: any further byte of output means "too big" */
    ZSTD_outBuffer ob = {room ? out->data + out->len : &probe, room ? room : 1, 0};
    size_t in0 = ib.pos;
    size_t r = ZSTD_decompressStream(d, &ob, &ib);
    if (ZSTD_isError(r))
      return ZSTD_getErrorCode(r) == ZSTD_error_frameParameter_windowTooLarge ? NN_ETOOBIG
                                                                              : NN_ECORRUPT;
    if (!room && ob.pos)
      return NN_ETOOBIG;
    if (room)
      out->len += ob.pos;
    if (r == 0 && ib.pos == ib.size)
      break;
    /* All input in, room left, frame not finished: the input was cut short. */
    if (ib.pos == ib.size && ob.pos < ob.size)
      return NN_ECORRUPT;
    if (ib.pos == in0 && ob.pos == 0)
      return NN_ECORRUPT;
  }
  commit(out, 0);
  return 0;
}

static int lz4_dec(struct codec_ctx *ctx, const void *in, size_t n, size_t limit,
                   struct nn_buf *out)
{
  /* LZ4F_resetDecompressionContext (1.9.4) keeps stale frame-size state after an aborted
   * frame, which then fails the next valid frame; a fresh context is cheap next to that. */
  if (ctx->ld && ctx->ld_dirty) {
    LZ4F_freeDecompressionContext(ctx->ld);
    ctx->ld = NULL;
  }
  if (!ctx->ld && LZ4F_isError(LZ4F_createDecompressionContext(&ctx->ld, LZ4F_VERSION))) {
    ctx->ld = NULL;
    return NN_ENOMEM;
  }
  LZ4F_dctx *d = ctx->ld;
  ctx->ld_dirty = 1;
  if (n == 0)
    return NN_ECORRUPT;
  LZ4F_frameInfo_t fi;
  size_t pos = n;
  if (LZ4F_isError(LZ4F_getFrameInfo(d, &fi, in, &pos)))
    return NN_ECORRUPT;
  size_t hint = 0;
  if (fi.frameType == LZ4F_frame && fi.contentSize) {
    if (fi.contentSize > limit)
      return NN_ETOOBIG;
    hint = (size_t)fi.contentSize;
  }
  size_t start = out->len;
  const char *src = in;
  for (;;) {
    size_t room;
    int rc = stream_room(out, start, limit, hint, &room);
    if (rc < 0)
      return rc;
    hint = 0;
    char probe;
    size_t dsz = room ? room : 1;
    size_t ssz = n - pos;
    size_t r =
        LZ4F_decompress(d, room ? out->data + out->len : &probe, &dsz, src + pos, &ssz, NULL);
    if (LZ4F_isError(r))
      return NN_ECORRUPT;
    pos += ssz;
    if (!room && dsz)
      return NN_ETOOBIG;
    if (room)
      out->len += dsz;
    if (r == 0 && pos == n)
      break;
    if (pos == n && dsz < (room ? room : 1))
      return NN_ECORRUPT;
    if (ssz == 0 && dsz == 0)
      return NN_ECORRUPT;
  }
  ctx->ld_dirty = 0;
  commit(out, 0);
  return 0;
}

int nn_decompress(enum nn_codec c, const void *in, size_t n, size_t max_out, struct nn_buf *out)
{
  size_t orig = out->len, orig_max = out->max;
  size_t avail = out->max > out->len ? out->max - out->len : 0;
  size_t limit = max_out < avail ? max_out : avail;
  struct codec_ctx *ctx = NULL;
  int rc;
  /* nn_buf rounds its growth up to a power of two; lowering max for the duration keeps even
   * the allocation (not just the length) within the cap. */
  out->max = orig + limit;
  switch (c) {
  case NN_CODEC_NONE: rc = n > limit ? NN_ETOOBIG : nn_buf_append(out, in, n); break;
  case NN_CODEC_SNAPPY: rc = snappy_dec(in, n, limit, out); break;
  case NN_CODEC_ZSTD:
  case NN_CODEC_LZ4:
    if (!(ctx = ctx_get())) {
      rc = NN_ENOMEM;
      break;
    }
    rc = c == NN_CODEC_ZSTD ? zstd_dec(ctx, in, n, limit, out) : lz4_dec(ctx, in, n, limit, out);
    break;
  default: rc = NN_EINVAL;
  }
  if (rc == 0 && !out->data && (rc = nn_buf_reserve(out, 0)) == 0)
    out->data[0] = '\0'; /* empty output still leaves a NUL-terminated buffer */
  out->max = orig_max;
  if (rc < 0) {
    out->len = orig;
    if (out->data)
      out->data[orig] = '\0';
  }
  return rc;
}
