/* SPDX-License-Identifier: Apache-2.0 */
/* The dead-letter directory: request bodies a destination rejected for good (a 4xx other
 * than 429) are kept for inspection, one file each, with the oldest removed past a file and
 * byte cap so a misconfigured destination cannot fill the disk. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/ship/internal.h"
#include "common/error.h"
#include "common/log.h"

#define NAME_MAX_LEN 128

struct dl_file {
  char name[NAME_MAX_LEN];
  uint64_t size;
};

struct nn__ship_deadletter {
  char *dir;
  uint32_t max_files;
  uint64_t max_bytes;
  struct dl_file *files; /* oldest first; at most max_files + 1 */
  uint32_t nfiles;
  uint64_t bytes;
  uint64_t counter;
};

static int cmp_files(const void *a, const void *b)
{
  return strcmp(((const struct dl_file *)a)->name, ((const struct dl_file *)b)->name);
}

static void remove_oldest(struct nn__ship_deadletter *d)
{
  char path[4400];
  int w = snprintf(path, sizeof(path), "%s/%s", d->dir, d->files[0].name);
  if (w > 0 && (size_t)w < sizeof(path))
    unlink(path);
  d->bytes -= d->files[0].size;
  memmove(d->files, d->files + 1, (d->nfiles - 1) * sizeof(*d->files));
  d->nfiles--;
}

static void enforce_caps(struct nn__ship_deadletter *d, uint64_t incoming)
{
  while (d->nfiles > 0 && (d->nfiles + 1 > d->max_files || d->bytes + incoming > d->max_bytes))
    remove_oldest(d);
}

int nn__ship_deadletter_open(const char *dir, uint32_t max_files, uint64_t max_bytes,
                             struct nn__ship_deadletter **out)
{
  struct nn__ship_deadletter *d = calloc(1, sizeof(*d));
  int rc = 0;
  *out = NULL;
  if (!d)
    return NN_ENOMEM;
  d->max_files = max_files ? max_files : 1;
  d->max_bytes = max_bytes;
  if (!(d->dir = strdup(dir)) || !(d->files = calloc(d->max_files + 1, sizeof(*d->files)))) {
    rc = NN_ENOMEM;
    goto fail;
  }
  if ((rc = nn__ship_mkdir_p(dir)) < 0) {
    nn_error("ship", "dead letters: cannot create %s: %s", dir, nn_strerror(rc));
    goto fail;
  }
  DIR *dh = opendir(dir);
  if (!dh) {
    rc = NN_ERRNO(errno);
    goto fail;
  }
  struct dirent *e;
  while ((e = readdir(dh)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n < 4 || n >= NAME_MAX_LEN || strcmp(e->d_name + n - 3, ".dl") != 0)
      continue;
    struct stat st;
    char path[4400];
    int w = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    if (w < 0 || (size_t)w >= sizeof(path) || stat(path, &st) < 0)
      continue;
    if (d->nfiles == d->max_files + 1) {
      /* Keep the newest max_files + 1 names seen so far: sort and drop the oldest. */
      qsort(d->files, d->nfiles, sizeof(*d->files), cmp_files);
      if (strcmp(e->d_name, d->files[0].name) < 0) {
        unlink(path);
        continue;
      }
      remove_oldest(d);
    }
    memcpy(d->files[d->nfiles].name, e->d_name, n + 1);
    d->files[d->nfiles].size = (uint64_t)st.st_size;
    d->bytes += (uint64_t)st.st_size;
    d->nfiles++;
  }
  closedir(dh);
  qsort(d->files, d->nfiles, sizeof(*d->files), cmp_files);
  while (d->nfiles > d->max_files || (d->nfiles > 0 && d->bytes > d->max_bytes))
    remove_oldest(d);
  *out = d;
  return 0;
fail:
  nn__ship_deadletter_close(d);
  return rc;
}

void nn__ship_deadletter_close(struct nn__ship_deadletter *d)
{
  if (!d)
    return;
  free(d->files);
  free(d->dir);
  free(d);
}

int nn__ship_deadletter_write(struct nn__ship_deadletter *d, const char *dest, const char *id,
                              int status, const char *codec, const void *body, size_t len,
                              const char *reason, size_t reason_len)
{
  char head[1024], name[NAME_MAX_LEN], path[4400];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  if (reason_len > 512)
    reason_len = 512;
  /* The reason is the receiver's text: keep it on one header line. */
  char why[513];
  for (size_t i = 0; i < reason_len; i++)
    why[i] = (reason[i] == '\n' || reason[i] == '\r' || reason[i] == '\0') ? ' ' : reason[i];
  why[reason_len] = '\0';
  int hn = snprintf(head, sizeof(head),
                    "nines-deadletter 1\ndestination: %s\nbatch: %s\nstatus: %d\n"
                    "content-encoding: %s\nbody-bytes: %zu\nreason: %s\n\n",
                    dest, id, status, codec, len, why);
  if (hn < 0 || (size_t)hn >= sizeof(head))
    hn = (int)sizeof(head) - 1;
  int w = snprintf(name, sizeof(name), "%013" PRId64 "-%06" PRIu64 "-%.64s.dl", ms,
                   d->counter++ % 1000000, dest);
  if (w < 0 || (size_t)w >= sizeof(name))
    return NN_ETOOBIG;
  uint64_t total = (uint64_t)hn + len;
  if (total > d->max_bytes)
    return NN_ELIMIT;
  enforce_caps(d, total);
  w = snprintf(path, sizeof(path), "%s/%s", d->dir, name);
  if (w < 0 || (size_t)w >= sizeof(path))
    return NN_ETOOBIG;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0)
    return NN_ERRNO(errno);
  int rc = 0;
  const char *parts[2] = {head, body};
  size_t lens[2] = {(size_t)hn, len};
  for (int i = 0; i < 2 && rc == 0; i++) {
    const char *p = parts[i];
    size_t n = lens[i];
    while (n > 0) {
      ssize_t k = write(fd, p, n);
      if (k < 0 && errno == EINTR)
        continue;
      if (k < 0) {
        rc = NN_ERRNO(errno);
        break;
      }
      p += k;
      n -= (size_t)k;
    }
  }
  close(fd);
  if (rc < 0) {
    unlink(path);
    return rc;
  }
  memcpy(d->files[d->nfiles].name, name, strlen(name) + 1);
  d->files[d->nfiles].size = total;
  d->nfiles++;
  d->bytes += total;
  return 0;
}

uint32_t nn__ship_deadletter_files(const struct nn__ship_deadletter *d)
{
  return d ? d->nfiles : 0;
}
