/* SPDX-License-Identifier: Apache-2.0 */
/* Names for the project's error codes and for negated errno values. */
#include "common/error.h"

#include <string.h>

static const char *const names[] = {
    [-(NN_ENOMEM - NN_EFIRST)] = "out of memory",
    [-(NN_EINVAL - NN_EFIRST)] = "invalid argument",
    [-(NN_ETOOBIG - NN_EFIRST)] = "size limit exceeded",
    [-(NN_ECORRUPT - NN_EFIRST)] = "corrupt or truncated data",
    [-(NN_EPROTO - NN_EFIRST)] = "protocol error",
    [-(NN_ETIMEDOUT - NN_EFIRST)] = "timed out",
    [-(NN_ECANCELED - NN_EFIRST)] = "canceled",
    [-(NN_EUNSUPPORTED - NN_EFIRST)] = "unsupported",
    [-(NN_ECONFIG - NN_EFIRST)] = "configuration error",
    [-(NN_ELIMIT - NN_EFIRST)] = "limit exceeded",
    [-(NN_EAGAIN - NN_EFIRST)] = "resource temporarily unavailable",
    [-(NN_ENOTFOUND - NN_EFIRST)] = "not found",
    [-(NN_EEXIST - NN_EFIRST)] = "already exists",
    [-(NN_EOUTOFORDER - NN_EFIRST)] = "out of order sample",
    [-(NN_EDUPLICATE - NN_EFIRST)] = "duplicate sample for timestamp",
    [-(NN_EIO - NN_EFIRST)] = "I/O error",
};

const char *nn_strerror(int rc)
{
  if (rc == 0)
    return "success";
  if (rc < NN_EFIRST && rc > NN_ELAST) {
    const char *s = names[-(rc - NN_EFIRST)];
    return s ? s : "unknown error";
  }
  if (rc < 0 && rc > NN_EFIRST)
    return strerror(-rc);
  return "unknown error";
}
