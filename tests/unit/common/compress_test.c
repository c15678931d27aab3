/* SPDX-License-Identifier: Apache-2.0 */
/* Codec façade: Content-Encoding parsing, round trips, decoding what the real zstd/lz4 CLIs
 * and python3-snappy wrote (tests/fixtures/compress), corrupt input and bombs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lz4frame.h>
#include <snappy-c.h>

#include "common/buf.h"
#include "common/compress.h"
#include "common/error.h"

#define FIXTURES NN_SOURCE_DIR "/tests/fixtures/compress/"
#define MIB      ((size_t)1 << 20)
#define GIB      ((size_t)1 << 30)

static const enum nn_codec all_codecs[] = {NN_CODEC_NONE, NN_CODEC_SNAPPY, NN_CODEC_ZSTD,
                                           NN_CODEC_LZ4};

static char *read_file(const char *name, size_t *len)
{
  char path[512];
  snprintf(path, sizeof(path), FIXTURES "%s", name);
  FILE *f = fopen(path, "rb");
  if (!f)
    fail_msg("cannot open fixture %s (run tests/fixtures/make-compress-fixtures.sh)", path);
  fseek(f, 0, SEEK_END);
  long sz = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *p = malloc((size_t)sz + 1);
  assert_non_null(p);
  assert_int_equal(fread(p, 1, (size_t)sz, f), (size_t)sz);
  fclose(f);
  *len = (size_t)sz;
  return p;
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Mildly compressible pseudo-random bytes: words from a small alphabet plus noise. */
static void fill_sample(char *p, size_t n, unsigned seed)
{
  static const char *words[] = {"up", "job=\"api\"", "instance", "1.5e3", "{le=\"0.1\"}", "\n"};
  size_t i = 0;
  while (i < n) {
    seed = seed * 1103515245u + 12345u;
    if ((seed >> 16) % 4 == 0) {
      p[i++] = (char)(seed >> 8);
      continue;
    }
    const char *w = words[(seed >> 16) % 6];
    for (size_t k = 0; w[k] && i < n; k++)
      p[i++] = w[k];
  }
}

static void codec_parse_accepts_known_tokens_and_trims(void **state)
{
  enum nn_codec c = NN_CODEC_LZ4;
  assert_int_equal(nn_codec_parse(NULL, &c), 0);
  assert_int_equal(c, NN_CODEC_NONE);
  c = NN_CODEC_LZ4;
  assert_int_equal(nn_codec_parse("", &c), 0);
  assert_int_equal(c, NN_CODEC_NONE);
  c = NN_CODEC_LZ4;
  assert_int_equal(nn_codec_parse(" Identity\t", &c), 0);
  assert_int_equal(c, NN_CODEC_NONE);
  assert_int_equal(nn_codec_parse("snappy", &c), 0);
  assert_int_equal(c, NN_CODEC_SNAPPY);
  assert_int_equal(nn_codec_parse("  ZSTD ", &c), 0);
  assert_int_equal(c, NN_CODEC_ZSTD);
  assert_int_equal(nn_codec_parse("Lz4", &c), 0);
  assert_int_equal(c, NN_CODEC_LZ4);
  assert_int_equal(nn_codec_parse("   ", &c), 0);
  assert_int_equal(c, NN_CODEC_NONE);
}

static void codec_parse_rejects_unknown_tokens(void **state)
{
  const char *bad[] = {"gzip", "deflate",         "br",          "snappy, zstd", "zstd1",
                       "lz",   "x-snappy-framed", "identity;q=1"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    enum nn_codec c = NN_CODEC_ZSTD;
    assert_int_equal(nn_codec_parse(bad[i], &c), NN_EUNSUPPORTED);
    assert_int_equal(c, NN_CODEC_ZSTD);
  }
}

static void codec_name_round_trips_through_parse(void **state)
{
  for (size_t i = 0; i < 4; i++) {
    enum nn_codec c;
    assert_int_equal(nn_codec_parse(nn_codec_name(all_codecs[i]), &c), 0);
    assert_int_equal(c, all_codecs[i]);
  }
  assert_string_equal(nn_codec_name((enum nn_codec)42), "unknown");
}

static void round_trip_every_codec_and_size(void **state)
{
  static const size_t sizes[] = {0, 1, 17, 4096, 65536 + 3, 3 * MIB + 11};
  char *src = malloc(3 * MIB + 11);
  assert_non_null(src);
  fill_sample(src, 3 * MIB + 11, 7);
  for (size_t ci = 0; ci < 4; ci++) {
    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
      size_t n = sizes[si];
      struct nn_buf z, d;
      nn_buf_init(&z, 8 * MIB);
      nn_buf_init(&d, 8 * MIB);
      assert_int_equal(nn_compress(all_codecs[ci], src, n, &z), 0);
      assert_true(z.len <= nn_compress_bound(all_codecs[ci], n));
      if (all_codecs[ci] != NN_CODEC_NONE && n > 4096)
        assert_true(z.len < n); /* it really compressed */
      assert_int_equal(nn_decompress(all_codecs[ci], z.data, z.len, n, &d), 0);
      assert_int_equal(d.len, n);
      assert_memory_equal(d.data, src, n);
      assert_int_equal(d.data[d.len], '\0');
      nn_buf_fini(&z);
      nn_buf_fini(&d);
    }
  }
  free(src);
}

static void compress_levels_round_trip(void **state)
{
  char src[20000];
  fill_sample(src, sizeof(src), 3);
  const int levels[] = {-5, 0, 1, 3, 9, 19};
  for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
    for (size_t ci = 2; ci < 4; ci++) {
      struct nn_buf z, d;
      nn_buf_init(&z, MIB);
      nn_buf_init(&d, MIB);
      assert_int_equal(nn_compress_level(all_codecs[ci], levels[i], src, sizeof(src), &z), 0);
      assert_int_equal(nn_decompress(all_codecs[ci], z.data, z.len, sizeof(src), &d), 0);
      assert_int_equal(d.len, sizeof(src));
      assert_memory_equal(d.data, src, sizeof(src));
      nn_buf_fini(&z);
      nn_buf_fini(&d);
    }
  }
}

static void compress_and_decompress_append_to_existing_content(void **state)
{
  const char msg[] = "hello hello hello hello hello";
  for (size_t ci = 0; ci < 4; ci++) {
    struct nn_buf z, d;
    nn_buf_init(&z, 4096);
    nn_buf_init(&d, 4096);
    assert_int_equal(nn_buf_appends(&z, "HDR"), 0);
    assert_int_equal(nn_compress(all_codecs[ci], msg, sizeof(msg) - 1, &z), 0);
    assert_memory_equal(z.data, "HDR", 3);
    assert_int_equal(nn_buf_appends(&d, "prefix:"), 0);
    assert_int_equal(nn_decompress(all_codecs[ci], z.data + 3, z.len - 3, 4096, &d), 0);
    assert_string_equal(d.data, "prefix:hello hello hello hello hello");
    nn_buf_fini(&z);
    nn_buf_fini(&d);
  }
}

static void compress_reports_too_big_when_out_max_is_small(void **state)
{
  char src[4096];
  fill_sample(src, sizeof(src), 11);
  for (size_t ci = 0; ci < 4; ci++) {
    struct nn_buf z;
    nn_buf_init(&z, 16);
    assert_int_equal(nn_compress(all_codecs[ci], src, sizeof(src), &z), NN_ETOOBIG);
    assert_int_equal(z.len, 0);
    nn_buf_fini(&z);
  }
  /* zstd still fits a compressible input when out->max is below its bound. */
  char zeros[8192] = {0};
  struct nn_buf zz;
  nn_buf_init(&zz, 200);
  assert_true(nn_compress_bound(NN_CODEC_ZSTD, sizeof(zeros)) > 200);
  assert_int_equal(nn_compress(NN_CODEC_ZSTD, zeros, sizeof(zeros), &zz), 0);
  nn_buf_fini(&zz);
  /* lz4's context must survive a failed frame. */
  struct nn_buf z, d;
  nn_buf_init(&z, 4096);
  nn_buf_init(&d, 4096);
  assert_int_equal(nn_compress(NN_CODEC_LZ4, "abcabcabc", 9, &z), 0);
  assert_int_equal(nn_decompress(NN_CODEC_LZ4, z.data, z.len, 100, &d), 0);
  assert_string_equal(d.data, "abcabcabc");
  nn_buf_fini(&z);
  nn_buf_fini(&d);
}

static void invalid_codec_is_einval(void **state)
{
  struct nn_buf b;
  nn_buf_init(&b, 100);
  assert_int_equal(nn_compress((enum nn_codec)9, "x", 1, &b), NN_EINVAL);
  assert_int_equal(nn_decompress((enum nn_codec)9, "x", 1, 10, &b), NN_EINVAL);
  assert_int_equal(nn_compress_bound((enum nn_codec)9, 10), 0);
  nn_buf_fini(&b);
}

static void decode_fixture(enum nn_codec c, const char *name, const char *plain_name)
{
  size_t zn, pn;
  char *z = read_file(name, &zn);
  char *p = read_file(plain_name, &pn);
  struct nn_buf d;
  nn_buf_init(&d, 4 * MIB);
  int rc = nn_decompress(c, z, zn, 4 * MIB, &d);
  if (rc != 0)
    fail_msg("%s: %s", name, nn_strerror(rc));
  assert_int_equal(d.len, pn);
  assert_memory_equal(d.data, p, pn);
  /* One byte under the real size must be refused, not truncated silently. */
  nn_buf_reset(&d);
  if (pn > 0)
    assert_int_equal(nn_decompress(c, z, zn, pn - 1, &d), NN_ETOOBIG);
  assert_int_equal(d.len, 0);
  nn_buf_fini(&d);
  free(z);
  free(p);
}

static void decodes_fixtures_from_real_tools(void **state)
{
  decode_fixture(NN_CODEC_SNAPPY, "plain.txt.snappy", "plain.txt");
  decode_fixture(NN_CODEC_ZSTD, "plain.txt.zst", "plain.txt");
  decode_fixture(NN_CODEC_ZSTD, "plain.stream.zst", "plain.txt");
  decode_fixture(NN_CODEC_LZ4, "plain.txt.lz4", "plain.txt");
  decode_fixture(NN_CODEC_LZ4, "plain.sized.lz4", "plain.txt");
  decode_fixture(NN_CODEC_SNAPPY, "empty.snappy", "empty.txt");
  decode_fixture(NN_CODEC_ZSTD, "empty.zst", "empty.txt");
  decode_fixture(NN_CODEC_LZ4, "empty.lz4", "empty.txt");
}

static void decodes_concatenated_zstd_frames(void **state)
{
  size_t zn, pn;
  char *z = read_file("plain.twice.zst", &zn);
  char *p = read_file("plain.txt", &pn);
  struct nn_buf d;
  nn_buf_init(&d, 4 * MIB);
  assert_int_equal(nn_decompress(NN_CODEC_ZSTD, z, zn, 4 * MIB, &d), 0);
  assert_int_equal(d.len, 2 * pn);
  assert_memory_equal(d.data, p, pn);
  assert_memory_equal(d.data + pn, p, pn);
  nn_buf_reset(&d);
  assert_int_equal(nn_decompress(NN_CODEC_ZSTD, z, zn, 2 * pn - 1, &d), NN_ETOOBIG);
  nn_buf_fini(&d);
  free(z);
  free(p);
}

/* Every truncation and a sample of bit flips of a valid body fail cleanly (checksummed
 * formats must fail; snappy has no checksum, so a flip may decode to other bytes). */
static void corrupt_and_truncated_input_is_ecorrupt(void **state)
{
  char src[30000];
  fill_sample(src, sizeof(src), 5);
  for (size_t ci = 1; ci < 4; ci++) {
    struct nn_buf z, d;
    nn_buf_init(&z, MIB);
    nn_buf_init(&d, MIB);
    assert_int_equal(nn_compress(all_codecs[ci], src, sizeof(src), &z), 0);
    for (size_t cut = 0; cut < z.len; cut += (cut < 64 ? 1 : 97)) {
      nn_buf_reset(&d);
      int rc = nn_decompress(all_codecs[ci], z.data, cut, MIB, &d);
      if (rc != NN_ECORRUPT)
        fail_msg("%s cut at %zu of %zu: %s", nn_codec_name(all_codecs[ci]), cut, z.len,
                 nn_strerror(rc));
      assert_int_equal(d.len, 0);
    }
    for (size_t pos = 0; pos < z.len; pos += 13) {
      z.data[pos] ^= 0x5a;
      nn_buf_reset(&d);
      int rc = nn_decompress(all_codecs[ci], z.data, z.len, MIB, &d);
      assert_true(rc == 0 || rc == NN_ECORRUPT || rc == NN_ETOOBIG);
      /* zstd and lz4 frames carry a checksum: success means the original came back. */
      if (rc == 0 && all_codecs[ci] != NN_CODEC_SNAPPY &&
          (d.len != sizeof(src) || memcmp(d.data, src, sizeof(src)) != 0))
        fail_msg("%s flip at %zu decoded to wrong data", nn_codec_name(all_codecs[ci]), pos);
      z.data[pos] ^= 0x5a;
    }
    nn_buf_fini(&z);
    nn_buf_fini(&d);
  }
  struct nn_buf d;
  nn_buf_init(&d, MIB);
  assert_int_equal(nn_decompress(NN_CODEC_ZSTD, "not zstd at all", 15, MIB, &d), NN_ECORRUPT);
  assert_int_equal(nn_decompress(NN_CODEC_LZ4, "not lz4 at all!", 15, MIB, &d), NN_ECORRUPT);
  assert_int_equal(nn_decompress(NN_CODEC_SNAPPY, "\xff\xff\xff\xff\xff\xff", 6, MIB, &d),
                   NN_ECORRUPT);
  nn_buf_fini(&d);
}

static void snappy_declared_length_beyond_any_ratio_is_corrupt_without_allocating(void **state)
{
  /* varint(1 MiB) then a 4-byte literal: 1 MiB can never come out of 9 bytes. */
  const char body[] = "\x80\x80\x40\x0c"
                      "abcd";
  struct nn_buf d;
  nn_buf_init(&d, 64 * MIB);
  assert_int_equal(nn_decompress(NN_CODEC_SNAPPY, body, sizeof(body) - 1, 2 * MIB, &d),
                   NN_ECORRUPT);
  assert_true(d.cap < 4096);
  nn_buf_fini(&d);
}

/* A valid snappy stream of 1 GiB of zeros built by hand (what snappy itself would emit:
 * one literal, then 2-byte-offset copies of 64 bytes), 48 MiB compressed. */
static void snappy_bomb_is_too_big_before_allocation(void **state)
{
  size_t total = GIB;
  size_t ncopies = (total - 1) / 64, tail = (total - 1) % 64;
  size_t zn = 5 + 2 + (ncopies + 1) * 3;
  unsigned char *z = malloc(zn), *p = z;
  assert_non_null(z);
  size_t v = total;
  for (; v >= 0x80; v >>= 7)
    *p++ = (unsigned char)(v | 0x80);
  *p++ = (unsigned char)v;
  *p++ = 0x00; /* literal of length 1 */
  *p++ = 0x00;
  for (size_t i = 0; i < ncopies; i++) {
    *p++ = (unsigned char)((63 << 2) | 2);
    *p++ = 1;
    *p++ = 0;
  }
  if (tail) {
    *p++ = (unsigned char)(((tail - 1) << 2) | 2);
    *p++ = 1;
    *p++ = 0;
  }
  zn = (size_t)(p - z);
  assert_true(snappy_validate_compressed_buffer((const char *)z, zn) == SNAPPY_OK);
  struct nn_buf d;
  nn_buf_init(&d, 2 * GIB);
  double t0 = now_s();
  assert_int_equal(nn_decompress(NN_CODEC_SNAPPY, z, zn, MIB, &d), NN_ETOOBIG);
  assert_true(now_s() - t0 < 10.0); /* bounded work, not a speed target */
  assert_null(d.data);              /* nothing allocated at all */
  nn_buf_fini(&d);
  free(z);
}

static void zstd_bomb_fixtures_are_too_big_quickly(void **state)
{
  const char *names[] = {"bomb-1g.stream.zst", "bomb-1g.sized.zst"};
  for (size_t i = 0; i < 2; i++) {
    size_t zn;
    char *z = read_file(names[i], &zn);
    assert_true(zn < 64 * 1024);
    struct nn_buf d;
    nn_buf_init(&d, 2 * GIB);
    double t0 = now_s();
    assert_int_equal(nn_decompress(NN_CODEC_ZSTD, z, zn, MIB, &d), NN_ETOOBIG);
    assert_true(now_s() - t0 < 10.0); /* bounded work, not a speed target */
    assert_true(d.cap <= MIB + 1);    /* never allocated past the cap */
    assert_int_equal(d.len, 0);
    nn_buf_fini(&d);
    free(z);
  }
}

/* 1 GiB of zeros through lz4 frame streaming (~4 MiB compressed, content size unknown). */
static void lz4_bomb_is_too_big_quickly(void **state)
{
  LZ4F_cctx *cctx;
  assert_false(LZ4F_isError(LZ4F_createCompressionContext(&cctx, LZ4F_VERSION)));
  LZ4F_preferences_t prefs;
  memset(&prefs, 0, sizeof(prefs));
  prefs.frameInfo.blockSizeID = LZ4F_max4MB;
  size_t chunk = 4 * MIB;
  char *zeros = calloc(1, chunk);
  size_t cap = LZ4F_compressBound(chunk, &prefs) + 64;
  size_t zcap = 16 * MIB, zn = 0;
  char *z = malloc(zcap);
  assert_non_null(zeros);
  assert_non_null(z);
  size_t r = LZ4F_compressBegin(cctx, z, zcap, &prefs);
  assert_false(LZ4F_isError(r));
  zn += r;
  for (size_t done = 0; done < GIB; done += chunk) {
    assert_true(zcap - zn >= cap);
    r = LZ4F_compressUpdate(cctx, z + zn, zcap - zn, zeros, chunk, NULL);
    assert_false(LZ4F_isError(r));
    zn += r;
  }
  r = LZ4F_compressEnd(cctx, z + zn, zcap - zn, NULL);
  assert_false(LZ4F_isError(r));
  zn += r;
  LZ4F_freeCompressionContext(cctx);
  free(zeros);

  struct nn_buf d;
  nn_buf_init(&d, 2 * GIB);
  double t0 = now_s();
  assert_int_equal(nn_decompress(NN_CODEC_LZ4, z, zn, MIB, &d), NN_ETOOBIG);
  assert_true(now_s() - t0 < 10.0); /* bounded work, not a speed target */
  assert_true(d.cap <= MIB + 1);
  nn_buf_fini(&d);
  free(z);
}

static void declared_sizes_over_the_cap_fail_before_decoding(void **state)
{
  char src[100000];
  fill_sample(src, sizeof(src), 9);
  for (size_t ci = 1; ci < 4; ci++) {
    struct nn_buf z, d;
    nn_buf_init(&z, MIB);
    nn_buf_init(&d, MIB);
    assert_int_equal(nn_compress(all_codecs[ci], src, sizeof(src), &z), 0);
    assert_int_equal(nn_decompress(all_codecs[ci], z.data, z.len, 1000, &d), NN_ETOOBIG);
    assert_true(d.cap <= 1001);
    /* out->max is a cap too. */
    struct nn_buf small;
    nn_buf_init(&small, 5000);
    assert_int_equal(nn_decompress(all_codecs[ci], z.data, z.len, MIB, &small), NN_ETOOBIG);
    nn_buf_fini(&small);
    nn_buf_fini(&z);
    nn_buf_fini(&d);
  }
  struct nn_buf d;
  nn_buf_init(&d, MIB);
  assert_int_equal(nn_decompress(NN_CODEC_NONE, src, 100, 99, &d), NN_ETOOBIG);
  assert_int_equal(nn_decompress(NN_CODEC_NONE, src, 100, 100, &d), 0);
  nn_buf_fini(&d);
}

static void zero_cap_decodes_empty_bodies_only(void **state)
{
  struct nn_buf z, d;
  nn_buf_init(&z, 1024);
  nn_buf_init(&d, 1024);
  for (size_t ci = 1; ci < 4; ci++) {
    nn_buf_reset(&z);
    assert_int_equal(nn_compress(all_codecs[ci], "", 0, &z), 0);
    assert_int_equal(nn_decompress(all_codecs[ci], z.data, z.len, 0, &d), 0);
    assert_int_equal(d.len, 0);
    nn_buf_reset(&z);
    assert_int_equal(nn_compress(all_codecs[ci], "x", 1, &z), 0);
    assert_int_equal(nn_decompress(all_codecs[ci], z.data, z.len, 0, &d), NN_ETOOBIG);
    assert_int_equal(nn_decompress(all_codecs[ci], z.data, 0, 0, &d), NN_ECORRUPT);
  }
  nn_buf_fini(&z);
  nn_buf_fini(&d);
  nn_compress_thread_fini();
  nn_compress_thread_fini(); /* twice is harmless */
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(codec_parse_accepts_known_tokens_and_trims),
      cmocka_unit_test(codec_parse_rejects_unknown_tokens),
      cmocka_unit_test(codec_name_round_trips_through_parse),
      cmocka_unit_test(round_trip_every_codec_and_size),
      cmocka_unit_test(compress_levels_round_trip),
      cmocka_unit_test(compress_and_decompress_append_to_existing_content),
      cmocka_unit_test(compress_reports_too_big_when_out_max_is_small),
      cmocka_unit_test(invalid_codec_is_einval),
      cmocka_unit_test(decodes_fixtures_from_real_tools),
      cmocka_unit_test(decodes_concatenated_zstd_frames),
      cmocka_unit_test(corrupt_and_truncated_input_is_ecorrupt),
      cmocka_unit_test(snappy_declared_length_beyond_any_ratio_is_corrupt_without_allocating),
      cmocka_unit_test(snappy_bomb_is_too_big_before_allocation),
      cmocka_unit_test(zstd_bomb_fixtures_are_too_big_quickly),
      cmocka_unit_test(lz4_bomb_is_too_big_quickly),
      cmocka_unit_test(declared_sizes_over_the_cap_fail_before_decoding),
      cmocka_unit_test(zero_cap_decodes_empty_bodies_only),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
