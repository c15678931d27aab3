/* SPDX-License-Identifier: Apache-2.0 */
/* Error codes shared by every module. A fallible function returns 0 or a negative code:
 * either a negated errno value (system errors, as libuv does) or one of NN_E* below. */
#ifndef NN_COMMON_ERROR_H
#define NN_COMMON_ERROR_H

#define NN_ERRNO(e) (-(e))

enum {
  NN_EFIRST = -10000,
  NN_ENOMEM = -10001,       /* out of memory */
  NN_EINVAL = -10002,       /* invalid argument or input */
  NN_ETOOBIG = -10003,      /* a hard size cap was reached */
  NN_ECORRUPT = -10004,     /* corrupt or truncated data */
  NN_EPROTO = -10005,       /* protocol violation by a peer */
  NN_ETIMEDOUT = -10006,    /* operation timed out */
  NN_ECANCELED = -10007,    /* operation canceled */
  NN_EUNSUPPORTED = -10008, /* unsupported encoding, type or feature */
  NN_ECONFIG = -10009,      /* configuration error */
  NN_ELIMIT = -10010,       /* a configured limit was exceeded */
  NN_EAGAIN = -10011,       /* try again later (back-pressure) */
  NN_ENOTFOUND = -10012,    /* no such item */
  NN_EEXIST = -10013,       /* item already exists */
  NN_EOUTOFORDER = -10014,  /* sample older than the newest for its series */
  NN_EDUPLICATE = -10015,   /* same timestamp, different value */
  NN_EIO = -10016,          /* I/O error without a more precise errno */
  NN_ELAST = -10017,
};

/* Returns a static, human-readable description of rc (never NULL). */
const char *nn_strerror(int rc);

#endif
