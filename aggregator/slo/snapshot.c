/* SPDX-License-Identifier: Apache-2.0 */
/* The ledger snapshot file, <data_dir>/slo/ledger.snap: every SLO's ledger keyed by id and
 * SLI fingerprint, written to a temporary file, fsynced and renamed so a crash leaves the
 * old or the new snapshot, never a torn one. Format: docs/format/slo-ledger.md. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "aggregator/slo/internal.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/log.h"

#define MOD      "slo"
#define MAGIC    "NNSLOLG1"
#define MAX_SNAP ((size_t)1 << 30)

static int put_u64(struct nn_buf *b, uint64_t v)
{
  unsigned char x[8];
  for (int i = 0; i < 8; i++)
    x[i] = (unsigned char)(v >> (8 * i));
  return nn_buf_append(b, x, 8);
}

static uint64_t get_u64(const unsigned char *p)
{
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

static int path_of(const struct nn_slo_engine *e, const char *name, char *buf, size_t len)
{
  int n = snprintf(buf, len, "%s/slo%s%s", e->data_dir, name ? "/" : "", name ? name : "");
  return n < 0 || (size_t)n >= len ? NN_ETOOBIG : 0;
}

static int write_all(int fd, const char *p, size_t n)
{
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return NN_ERRNO(errno);
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int nn__slo_snapshot_write(struct nn_slo_engine *e)
{
  char dir[4096], tmp[4200], fin[4200];
  struct nn_buf b;
  int rc, fd = -1;
  if (!e->data_dir)
    return 0;
  if ((rc = path_of(e, NULL, dir, sizeof(dir))) < 0 ||
      (rc = path_of(e, "ledger.snap.tmp", tmp, sizeof(tmp))) < 0 ||
      (rc = path_of(e, "ledger.snap", fin, sizeof(fin))) < 0)
    goto done;
  if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
    rc = NN_ERRNO(errno);
    goto done;
  }
  nn_buf_init(&b, MAX_SNAP);
  rc = nn_buf_append(&b, MAGIC, 8);
  rc = rc ? rc : put_u64(&b, e->nrt);
  for (size_t i = 0; i < e->nrt && !rc; i++) {
    const struct nn_slo_rt *r = &e->rt[i];
    size_t idlen = strlen(r->spec->id);
    rc = put_u64(&b, idlen);
    rc = rc ? rc : nn_buf_append(&b, r->spec->id, idlen);
    rc = rc ? rc : put_u64(&b, r->spec->fingerprint);
    size_t at = b.len;
    rc = rc ? rc : put_u64(&b, 0);
    rc = rc ? rc : nn__slo_ledger_encode(&r->ledger, &b);
    if (!rc) {
      uint64_t body = b.len - at - 8;
      for (int k = 0; k < 8; k++)
        b.data[at + (size_t)k] = (char)(body >> (8 * k));
    }
  }
  rc = rc ? rc : put_u64(&b, XXH64(b.data, b.len, 0));
  if (rc < 0)
    goto out;
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    rc = NN_ERRNO(errno);
    goto out;
  }
  if ((rc = write_all(fd, b.data, b.len)) < 0)
    goto out;
  if (fsync(fd) < 0) {
    rc = NN_ERRNO(errno);
    goto out;
  }
  close(fd);
  fd = -1;
  if (rename(tmp, fin) < 0) {
    rc = NN_ERRNO(errno);
    goto out;
  }
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
out:
  if (fd >= 0) {
    close(fd);
    unlink(tmp);
  }
  nn_buf_fini(&b);
done:
  if (rc < 0) {
    e->stats.snapshot_failures_total++;
    NN_LOG_RL(NN_LOG_WARN, MOD, "writing the ledger snapshot: %s", nn_strerror(rc));
  } else {
    e->stats.snapshots_total++;
  }
  return rc;
}

int nn__slo_snapshot_read(struct nn_slo_engine *e)
{
  char fin[4200];
  int rc = path_of(e, "ledger.snap", fin, sizeof(fin));
  if (rc < 0)
    return rc;
  FILE *f = fopen(fin, "rb");
  if (!f)
    return errno == ENOENT ? 0 : NN_ERRNO(errno);
  struct nn_buf b;
  nn_buf_init(&b, MAX_SNAP);
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && rc == 0)
    rc = nn_buf_append(&b, chunk, n);
  fclose(f);
  if (rc == 0 &&
      (b.len < 24 || memcmp(b.data, MAGIC, 8) != 0 ||
       get_u64((const unsigned char *)b.data + b.len - 8) != XXH64(b.data, b.len - 8, 0)))
    rc = NN_ECORRUPT;
  if (rc < 0) {
    nn_warn(MOD, "%s: %s; the ledgers are rebuilt from stored series", fin, nn_strerror(rc));
    nn_buf_fini(&b);
    return rc;
  }
  e->snap = (unsigned char *)nn_buf_steal(&b, &e->snap_len);
  return 0;
}

const unsigned char *nn__slo_snapshot_find(struct nn_slo_engine *e, const char *id, uint64_t fp,
                                           size_t *len)
{
  const unsigned char *p = e->snap, *end;
  if (!p || e->snap_len < 24)
    return NULL;
  end = p + e->snap_len - 8;
  uint64_t count = get_u64(p + 8);
  p += 16;
  size_t want = strlen(id);
  for (uint64_t i = 0; i < count; i++) {
    if ((size_t)(end - p) < 8)
      return NULL;
    uint64_t idlen = get_u64(p);
    p += 8;
    if ((uint64_t)(end - p) < idlen + 16)
      return NULL;
    const unsigned char *idp = p;
    p += idlen;
    uint64_t f = get_u64(p), body = get_u64(p + 8);
    p += 16;
    if ((uint64_t)(end - p) < body)
      return NULL;
    if (idlen == want && !memcmp(idp, id, want) && f == fp) {
      *len = (size_t)body;
      return p;
    }
    p += body;
  }
  return NULL;
}
