/* SPDX-License-Identifier: Apache-2.0 */
/* Private to agent/ship: the spool (disk queue of batches), the batch builder that groups
 * records per key, the dead-letter directory, and little-endian helpers. */
#ifndef NN_AGENT_SHIP_INTERNAL_H
#define NN_AGENT_SHIP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "agent/ship/ship.h"
#include "common/buf.h"

uint32_t nn__ship_crc32c(uint32_t crc, const void *data, size_t n);

static inline void nn__put32(uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static inline void nn__put64(uint8_t *p, uint64_t v)
{
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t nn__get32(const uint8_t *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t nn__get64(const uint8_t *p)
{
  return (uint64_t)nn__get32(p) | (uint64_t)nn__get32(p + 4) << 32;
}

/* Creates dir and its missing parents (mode 0750). */
int nn__ship_mkdir_p(const char *dir);

/* ---- spool ---- */

#define NN_SHIP_SPOOL_HEADER    16u
#define NN_SHIP_SPOOL_REC_HEAD  8u          /* u32 length, u32 crc32c */
#define NN_SHIP_SPOOL_BODY_HEAD 24u         /* fixed part of a record body */
#define NN_SHIP_SPOOL_MAX_RAW   (64u << 20) /* largest uncompressed batch in a record */
#define NN_SHIP_SPOOL_MAX_BODY  (NN_SHIP_SPOOL_MAX_RAW + (NN_SHIP_SPOOL_MAX_RAW / 255) + (8u << 20))
#define NN_SHIP_SPOOL_MAX_ID    512u

struct nn__ship_spool;

/* A spot in the spool: segment id and byte offset; ordered lexicographically. */
struct nn__ship_pos {
  uint64_t seg;
  uint64_t off;
};

/* One batch as stored: the uncompressed payload and what is needed to ack it. */
struct nn__ship_rec {
  uint64_t seq;
  uint32_t nrecords;
  uint32_t ntokens;
  const struct nn_ship_token *tokens; /* borrowed */
  const char *id;                     /* batch id, id_len bytes, not NUL-terminated */
  size_t id_len;
  const void *payload; /* uncompressed */
  size_t payload_len;
  bool orphan; /* written by an earlier run */
};

/* Opens (creating) the spool directory dir: recovers the cursor, deletes fully acked
 * segments and truncates a torn tail of the newest segment. max_bytes caps the sum of
 * segment sizes, segment_size is the rotation size. */
int nn__ship_spool_open(const char *dir, uint64_t max_bytes, uint64_t segment_size,
                        struct nn__ship_spool **out);
/* Persists the cursor, fsyncs and closes. NULL is a no-op. */
void nn__ship_spool_close(struct nn__ship_spool *sp);
/* Appends one batch (r->payload is compressed with lz4 here). NN_ELIMIT if it would pass
 * max_bytes; the spool is unchanged on any error. */
int nn__ship_spool_append(struct nn__ship_spool *sp, const struct nn__ship_rec *r);
/* Appends r to a drained spool and marks it read at once: for a batch already in flight
 * that must become durable. Its extent goes to start/end. NN_EINVAL if unread data exists
 * (r would be delivered after newer batches). */
int nn__ship_spool_append_read(struct nn__ship_spool *sp, const struct nn__ship_rec *r,
                               struct nn__ship_pos *start, struct nn__ship_pos *end);
/* Bytes a record for r would take at most (for room checks). */
uint64_t nn__ship_spool_record_bound(size_t payload_len, uint32_t ntokens, size_t id_len);
bool nn__ship_spool_has_room(const struct nn__ship_spool *sp, uint64_t bytes);
/* Reads the next unread batch into *out (pointers valid until the next read), its extent in
 * start and end. NN_ENOTFOUND when everything was read. A corrupt record skips the rest of its
 * segment: the call then returns NN_ECORRUPT with lost_live_seqs the [first, last] range of
 * this run's batches that were lost (first > last when none). */
int nn__ship_spool_read(struct nn__ship_spool *sp, struct nn__ship_rec *out,
                        struct nn__ship_pos *start, struct nn__ship_pos *end,
                        uint64_t lost_live_seqs[2]);
/* Marks everything before end as acknowledged: moves the persisted cursor, deletes passed
 * segments. Positions at or before the cursor are ignored. */
int nn__ship_spool_ack(struct nn__ship_spool *sp, struct nn__ship_pos end);
/* Deletes the oldest segment (rotating the active one if it is the only one), reporting each
 * unread batch it held to on_drop. Returns NN_ENOTFOUND when the spool is empty. */
int nn__ship_spool_drop_oldest(struct nn__ship_spool *sp,
                               void (*on_drop)(void *ud, const struct nn__ship_rec *r), void *ud);
/* True when nothing is left to read. */
bool nn__ship_spool_drained(const struct nn__ship_spool *sp);
uint64_t nn__ship_spool_bytes(const struct nn__ship_spool *sp);
uint64_t nn__ship_spool_segments(const struct nn__ship_spool *sp);
/* Turns every spool fsync on or off, process-wide (off only in tests and fuzzing). */
void nn__ship_spool_set_sync(bool on);
/* Durability of appends: appends() counts successful appends, durable() how many of them an
 * fsync has completed for; on_durable runs from the loop when durable() grows. sync_now
 * fsyncs everything inline (shutdown) and makes every append durable. */
uint64_t nn__ship_spool_appends(const struct nn__ship_spool *sp);
uint64_t nn__ship_spool_durable(const struct nn__ship_spool *sp);
void nn__ship_spool_on_durable(struct nn__ship_spool *sp, void (*fn)(void *ud), void *ud);
void nn__ship_spool_sync_now(struct nn__ship_spool *sp);
/* Starts an fsync of written data and the cursor on a libuv worker if anything is dirty
 * and no fsync is running. */
void nn__ship_spool_sync(struct nn__ship_spool *sp, uv_loop_t *loop);

/* ---- batch builder ---- */

/* Records grouped per key; memory bounded by the ship's batch size. */
struct nn__ship_builder {
  const struct nn_ship_payload *payload;
  struct nn_buf arena; /* keys and pieces */
  struct group *groups;
  size_t ngroups, groups_cap;
  uint32_t *slots; /* hash table of group index + 1 */
  size_t nslots;
  size_t nrecords;
  size_t est;        /* encoded size estimate (upper bound) */
  size_t last_group; /* group of the previous record (SIZE_MAX: none) */
};

void nn__ship_builder_init(struct nn__ship_builder *b, const struct nn_ship_payload *p,
                           size_t max_bytes);
void nn__ship_builder_fini(struct nn__ship_builder *b);
/* Size the body would grow by if key/piece were added (upper bound). */
size_t nn__ship_builder_cost(const struct nn__ship_builder *b, size_t key_len, size_t piece_len);
int nn__ship_builder_add(struct nn__ship_builder *b, const void *key, size_t key_len,
                         const void *piece, size_t piece_len);
/* Encodes the grouped body into out and empties the builder. */
int nn__ship_builder_finish(struct nn__ship_builder *b, struct nn_buf *out);

size_t nn__ship_varint_len(uint64_t v);
int nn__ship_put_varint(struct nn_buf *b, uint64_t v);

/* ---- dead letters ---- */

struct nn__ship_deadletter;
/* dir is created if needed; existing files count toward the caps. */
int nn__ship_deadletter_open(const char *dir, uint32_t max_files, uint64_t max_bytes,
                             struct nn__ship_deadletter **out);
void nn__ship_deadletter_close(struct nn__ship_deadletter *d);
/* Writes one rejected request body (as sent) with a small text header, removing the oldest
 * files past the caps. */
int nn__ship_deadletter_write(struct nn__ship_deadletter *d, const char *dest, const char *id,
                              int status, const char *codec, const void *body, size_t len,
                              const char *reason, size_t reason_len);
uint32_t nn__ship_deadletter_files(const struct nn__ship_deadletter *d);

#endif
