/* SPDX-License-Identifier: Apache-2.0 */
/* Opens a spool whose segment files hold arbitrary bytes and reads it to the end: recovery
 * (torn-tail truncation), record framing, CRC checks, lz4 payload decoding and drop-oldest
 * must reject bad input with an error, never crash or allocate past their caps. The first
 * input byte picks where the bytes are split into two segments, and a cursor file. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/ship/internal.h"
#include "common/error.h"
#include "common/log.h"

static char dir[64];

static void write_file(const char *name, const uint8_t *p, size_t n)
{
  char path[128];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f)
    abort();
  if (n && fwrite(p, 1, n, f) != n)
    abort();
  fclose(f);
}

static void clear_dir(void)
{
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    unlink(path);
  }
  if (d)
    closedir(d);
}

static void on_drop(void *ud, const struct nn__ship_rec *r)
{
  (*(size_t *)ud) += r->ntokens;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!dir[0]) {
    nn_log_setup(NN_LOG_ERROR, NN_LOG_LOGFMT);
    nn__ship_spool_set_sync(false);
    snprintf(dir, sizeof(dir), "/tmp/nn_spool_fuzz_XXXXXX");
    if (!mkdtemp(dir))
      abort();
  }
  clear_dir();
  if (size < 1)
    return 0;
  uint8_t mode = data[0];
  data++;
  size--;
  size_t split = size;
  if (mode & 1)
    split = size * (mode >> 1) / 128;
  if (split > size)
    split = size;
  write_file("0000000000000001.seg", data, split);
  if (split < size)
    write_file("0000000000000002.seg", data + split, size - split);
  if (mode & 0x80 && size >= 64)
    write_file("cursor", data, 64);

  struct nn__ship_spool *sp;
  if (nn__ship_spool_open(dir, 1 << 20, 4096, &sp) == 0) {
    struct nn__ship_rec r;
    struct nn__ship_pos a, b;
    uint64_t lost[2];
    for (int i = 0; i < 10000; i++) {
      int rc = nn__ship_spool_read(sp, &r, &a, &b, lost);
      if (rc == 0) {
        volatile uint8_t sink = 0;
        for (size_t k = 0; k < r.payload_len; k += 64)
          sink ^= ((const uint8_t *)r.payload)[k];
        (void)sink;
        if (i % 3 == 0)
          nn__ship_spool_ack(sp, b);
      } else if (rc != NN_ECORRUPT) {
        break;
      }
    }
    size_t dropped = 0;
    if (mode & 0x40)
      while (nn__ship_spool_drop_oldest(sp, on_drop, &dropped) == 0)
        ;
    nn__ship_spool_close(sp);
  }
  return 0;
}
