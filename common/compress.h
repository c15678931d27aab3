/* SPDX-License-Identifier: Apache-2.0 */
/* One façade over the body codecs nines speaks: snappy block format (remote write, Loki
 * push), zstd frames and lz4 frames (what the `zstd` and `lz4` CLIs write). Decompression
 * has a hard output cap so a decompression bomb costs at most the cap. */
#ifndef NN_COMMON_COMPRESS_H
#define NN_COMMON_COMPRESS_H

#include <stddef.h>

struct nn_buf;

enum nn_codec {
  NN_CODEC_NONE,
  NN_CODEC_SNAPPY,
  NN_CODEC_ZSTD,
  NN_CODEC_LZ4,
};

/* Level meaning "the codec's fast default": zstd 1, lz4 fast mode. snappy has no levels. */
#define NN_COMPRESS_LEVEL_DEFAULT 0

/* Maps a Content-Encoding header value to a codec: NULL, "" and "identity" are
 * NN_CODEC_NONE; "snappy", "zstd", "lz4" match case-insensitively, surrounding whitespace
 * ignored. Anything else (gzip, lists, ...) is NN_EUNSUPPORTED and *out is untouched. */
int nn_codec_parse(const char *content_encoding, enum nn_codec *out);
/* The Content-Encoding token for c ("identity" for NN_CODEC_NONE); "unknown" if invalid. */
const char *nn_codec_name(enum nn_codec c);

/* Largest output nn_compress can append for n input bytes (0 if c is invalid). */
size_t nn_compress_bound(enum nn_codec c, size_t n);

/* Compresses in[0..n) with c and appends the result to out (a snappy block, a zstd frame
 * with content size and checksum, or an lz4 frame with content size and checksum). NN_ETOOBIG if
 * the result does not fit under out->max (snappy and lz4 need room for nn_compress_bound
 * there, zstd only for its actual output), NN_EINVAL for an invalid codec, NN_ENOMEM. */
int nn_compress(enum nn_codec c, const void *in, size_t n, struct nn_buf *out);
/* Like nn_compress with an explicit level: zstd 1..19 (negative = faster), lz4 >= 3 is
 * HC; NN_COMPRESS_LEVEL_DEFAULT picks the fast default. Ignored by snappy and none. */
int nn_compress_level(enum nn_codec c, int level, const void *in, size_t n, struct nn_buf *out);

/* Decompresses in[0..n) and appends the output to out. At most max_out bytes are produced
 * and never more than that is allocated for output: more data is NN_ETOOBIG (so is
 * exceeding out->max). Bad or truncated input is NN_ECORRUPT, an invalid codec NN_EINVAL.
 * On error out->len is restored (its storage may have grown). zstd and lz4 accept
 * concatenated frames. Decoder state besides the output is bounded: zstd windows are
 * limited to max(max_out, 8 MiB), lz4 to its 4 MiB maximum block size.
 * Thread safety: every function here may be called from any number of threads at once;
 * the zstd/lz4 contexts are cached per thread and freed when the thread exits (or by
 * nn_compress_thread_fini). */
int nn_decompress(enum nn_codec c, const void *in, size_t n, size_t max_out, struct nn_buf *out);

/* Frees the calling thread's cached codec contexts now (optional; thread exit does it). */
void nn_compress_thread_fini(void);

#endif
