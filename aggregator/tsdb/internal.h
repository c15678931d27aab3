/* SPDX-License-Identifier: Apache-2.0 */
/* Private to aggregator/tsdb: the head's data structures (symbols, series, postings,
 * XOR chunks), the WAL writer and record codec, shared between the module's files. */
#ifndef NN_AGGREGATOR_TSDB_INTERNAL_H
#define NN_AGGREGATOR_TSDB_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aggregator/tsdb/tsdb.h"
#include "common/buf.h"

#define NN__TSDB_NO_T INT64_MIN

/* ---- crc32c.c ---- */
/* CRC-32C (Castagnoli), continuing from crc (0 to start). */
uint32_t nn__tsdb_crc32c(uint32_t crc, const void *p, size_t n);
/* The table path whatever the CPU has (tests compare the two). */
uint32_t nn__tsdb_crc32c_sw(uint32_t crc, const void *p, size_t n);

/* ---- chunk.c: Gorilla XOR chunks (docs/format/chunks.md) ---- */
#define NN__TSDB_CHUNK_MAX_SAMPLES 65535

/* Encoder of one open chunk. buf holds the 2-byte sample count, then the bit stream. */
struct nn__tsdb_xor_app {
  uint8_t *buf;
  uint32_t cap;   /* bytes allocated */
  uint32_t nbits; /* bits used, the count header included */
  uint16_t n;     /* samples */
  uint8_t leading, trailing;
  int64_t t;       /* newest timestamp */
  uint64_t tdelta; /* newest timestamp delta */
  uint64_t v;      /* newest value bits */
};

/* Appends one sample; t must be newer than the last (the head checks). NN_ENOMEM, or
 * NN_ETOOBIG when the chunk holds NN__TSDB_CHUNK_MAX_SAMPLES. */
int nn__tsdb_xor_append(struct nn__tsdb_xor_app *a, int64_t t, double v);
static inline size_t nn__tsdb_xor_len(const struct nn__tsdb_xor_app *a)
{
  return (a->nbits + 7) / 8;
}
/* Hands the encoded bytes (shrunk to fit) to the caller and resets a. NULL if empty. */
uint8_t *nn__tsdb_xor_finish(struct nn__tsdb_xor_app *a, size_t *len);
void nn__tsdb_xor_free(struct nn__tsdb_xor_app *a);

/* A packed chunk's stream of codes as the decoder walks it: escape-coded in a width, or
 * digits of a radix packed into groups. */
struct nn__tsdb_code_stream {
  uint64_t r, g;       /* radix, rest of the current group */
  uint16_t k, left;    /* digits per group, left in the current group */
  uint16_t pos, total; /* codes read, codes in the stream */
  uint8_t d;           /* width descriptor */
};

/* Decoder over an encoded chunk; never reads past len whatever the bytes say. */
struct nn__tsdb_xor_it {
  const uint8_t *p;
  size_t nbits; /* bits available */
  size_t pos;   /* bit position */
  uint16_t n, i;
  uint8_t leading, trailing;
  int err; /* NN_ECORRUPT once the stream turned out bad */
  int64_t t;
  uint64_t tdelta;
  uint64_t v;
  /* Packed chunks only: modes and code streams of the timestamps and values. */
  bool packed, dec;
  uint8_t tmode, vmode, e;
  struct nn__tsdb_code_stream ts, vs;
  int64_t t0;
  uint64_t tgrid, rbase; /* grid timestamps: step, offset base */
  uint64_t m, dmin;      /* decimal values: current scaled integer, base */
};
void nn__tsdb_xor_it_init(struct nn__tsdb_xor_it *it, const uint8_t *p, size_t len);
/* Advances to the next sample; false at the end or on corruption (it->err). */
bool nn__tsdb_xor_it_next(struct nn__tsdb_xor_it *it);
static inline double nn__tsdb_xor_it_value(const struct nn__tsdb_xor_it *it)
{
  double d;
  memcpy(&d, &it->v, sizeof(d));
  return d;
}

/* Where an XOR decoder stood after a sample, to resume from later: the bits before it in
 * an open chunk never change as samples are appended. i == 0: none. */
struct nn__tsdb_xor_ck {
  int64_t t;
  uint64_t tdelta, v;
  uint32_t pos; /* bit position */
  uint16_t i;   /* samples decoded */
  uint8_t leading, trailing;
};
static inline void nn__tsdb_xor_it_save(const struct nn__tsdb_xor_it *it,
                                        struct nn__tsdb_xor_ck *ck)
{
  *ck = (struct nn__tsdb_xor_ck){it->t, it->tdelta,  it->v,       (uint32_t)it->pos,
                                 it->i, it->leading, it->trailing};
}
/* Moves a freshly initialised XOR decoder (not a packed one) to ck, which must come from
 * the same chunk's bytes; false (it unchanged) when ck cannot belong to them. */
bool nn__tsdb_xor_it_resume(struct nn__tsdb_xor_it *it, const struct nn__tsdb_xor_ck *ck);

/* Packed chunks (docs/format/chunks.md), written into blocks only: timestamps as
 * delta-of-delta and values as decimal-scaled integer steps when every value of the chunk
 * is one (else XOR), each in a fixed bit width chosen per chunk, with an escape for
 * outliers. Regular scrapes of counters cost well under a byte per sample. */
#define NN__TSDB_ENC_XOR    1
#define NN__TSDB_ENC_PACKED 2
/* Appends the packed encoding of n samples (1..65535) to out: NN_EINVAL, NN_ENOMEM,
 * NN_ETOOBIG (out's cap). */
int nn__tsdb_packed_encode(const int64_t *t, const double *v, size_t n, struct nn_buf *out);
/* Starts an iterator over a packed chunk; nn__tsdb_xor_it_next then walks it. */
void nn__tsdb_packed_it_init(struct nn__tsdb_xor_it *it, const uint8_t *p, size_t len);
/* Starts an iterator over the bytes of a block chunk record: in a chunks file of
 * version 1 an XOR chunk, from version 2 an encoding byte (NN__TSDB_ENC_*) first. An
 * unknown encoding leaves it->err set. */
void nn__tsdb_bchunk_it_init(struct nn__tsdb_xor_it *it, uint32_t version, const uint8_t *p,
                             size_t len);

/* ---- symbols (head.c): interned label strings, reference counted ---- */
struct nn__tsdb_symtab {
  char **str;      /* by id; id 0 is never used; NULL when free */
  uint32_t *refs;  /* by id; for a free id, the next free id */
  uint32_t *h32;   /* by id: low bits of the string's hash */
  uint32_t n, cap; /* ids handed out (id < n), allocated */
  uint32_t free_head;
  uint32_t live;
  uint32_t *table; /* open addressing over ids; 0 = empty */
  uint32_t mask;
  /* Changes whenever an id is handed out or freed, and differs between stores (it starts
   * at a per-store value): ids looked up earlier are valid while it is unchanged. */
  uint64_t gen;
};

/* Returns the id of s, adding it with one reference (or adding a reference); 0 on OOM. */
uint32_t nn__tsdb_sym_intern(struct nn__tsdb_symtab *st, const char *s);
/* The id of s or 0, without taking a reference. */
uint32_t nn__tsdb_sym_find(const struct nn__tsdb_symtab *st, const char *s);
static inline const char *nn__tsdb_sym_str(const struct nn__tsdb_symtab *st, uint32_t id)
{
  return st->str[id];
}

/* ---- series (head.c) ---- */
struct nn__tsdb_chunk {
  int64_t mint, maxt;
  uint8_t *data;
  uint32_t len;
  uint16_t n;
};

#define NN__TSDB_SERIES_LOGGED    0x1 /* its series record is in the WAL */
#define NN__TSDB_SERIES_IN_RECORD 0x2 /* being written into the current commit's record */

struct nn__tsdb_series {
  uint64_t ref;
  uint64_t hash;
  int64_t head_mint; /* oldest sample of the open chunk */
  struct nn__tsdb_xor_app head;
  struct nn__tsdb_chunk *chunks; /* closed, oldest first */
  uint32_t nchunks, capchunks;
  /* What a lookup and an append read sits together, next to the labels. */
  int64_t last_t; /* newest sample, uncommitted ones included; NN__TSDB_NO_T when none */
  double last_v;
  uint16_t nlabels;
  uint8_t flags;
  uint32_t syms[]; /* name id, value id, per label, sorted by name */
};

/* Bytes of a series with n labels: the struct, its label ids, then its checkpoint. */
static inline size_t nn__tsdb_series_size(size_t n)
{
  size_t off = offsetof(struct nn__tsdb_series, syms) + 2 * n * sizeof(uint32_t);
  return ((off + 7) & ~(size_t)7) + sizeof(struct nn__tsdb_xor_ck);
}
/* The querier's decoder state after the last sample before the range of the latest query
 * that skipped samples of the series' open chunk: a later query starting after it (a rule's
 * or SLO's next evaluation) decodes only the newer samples. Reset when a new open chunk
 * starts; the loop thread alone reads and writes it, as the rest of the head. It sits
 * behind the labels, which a query reads anyway, off the lines appends and lookups read. */
static inline struct nn__tsdb_xor_ck *nn__tsdb_series_ck(struct nn__tsdb_series *s)
{
  return (struct nn__tsdb_xor_ck *)((char *)s + nn__tsdb_series_size(s->nlabels) -
                                    sizeof(struct nn__tsdb_xor_ck));
}

static inline bool nn__tsdb_series_empty(const struct nn__tsdb_series *s)
{
  return s->nchunks == 0 && s->head.n == 0;
}
static inline int64_t nn__tsdb_series_mint(const struct nn__tsdb_series *s)
{
  return s->nchunks ? s->chunks[0].mint : s->head_mint;
}

/* ---- postings.c: label name -> value -> sorted series refs ---- */
struct nn__tsdb_plist {
  union {
    uint64_t *v;
    uint64_t one; /* when cap == 0 and n == 1: saves an allocation for unique values */
  } u;
  uint32_t n, cap;
};
static inline const uint64_t *nn__tsdb_plist_refs(const struct nn__tsdb_plist *p)
{
  return p->cap ? p->u.v : &p->u.one;
}

struct nn__tsdb_lvalue {
  uint32_t value;
  struct nn__tsdb_plist pl;
};

struct nn__tsdb_lname {
  uint32_t name;
  uint32_t n, cap;
  struct nn__tsdb_lvalue *vals;
};

struct nn__tsdb_pair_slot {
  uint64_t key; /* name id << 32 | value id (0 for the name entry); 0 = empty */
  uint32_t li, vi;
};

struct nn__tsdb_index {
  struct nn__tsdb_lname *names;
  uint32_t nnames, capnames;
  struct nn__tsdb_pair_slot *pairs;
  size_t mask, npairs;
  struct nn__tsdb_plist all;
};

int nn__tsdb_index_add(struct nn__tsdb_index *idx, uint64_t ref, const uint32_t *syms, size_t n);
void nn__tsdb_index_fini(struct nn__tsdb_index *idx);
const struct nn__tsdb_lname *nn__tsdb_index_name(const struct nn__tsdb_index *idx, uint32_t name);
const struct nn__tsdb_plist *nn__tsdb_index_get(const struct nn__tsdb_index *idx, uint32_t name,
                                                uint32_t value);
/* A growable array of series refs. */
struct nn__tsdb_refs {
  uint64_t *v;
  size_t n, cap;
};
int nn__tsdb_refs_reserve(struct nn__tsdb_refs *r, size_t n);
int nn__tsdb_refs_append(struct nn__tsdb_refs *r, const uint64_t *p, size_t n);
void nn__tsdb_refs_sort_unique(struct nn__tsdb_refs *r);

/* An index that matchers can be evaluated over: the head's or a block's. */
struct nn__tsdb_postings_src {
  void *ctx;
  /* Appends (sorted, unique) the refs of series having m's label with a value for which
   * the matcher's result equals want. */
  int (*collect)(void *ctx, const struct nn_matcher *m, bool want, struct nn__tsdb_refs *out);
  /* Appends the refs of all series, sorted. */
  int (*all)(void *ctx, struct nn__tsdb_refs *out);
  /* Optional (NULL: collect only): calls fn(ud, refs, n) with the postings list of every
   * value for which the matcher's result equals want, in place (each list sorted); a
   * negative fn result stops and is returned. Lets a select narrow a small candidate set
   * against long lists without copying them. */
  int (*each)(void *ctx, const struct nn_matcher *m, bool want,
              int (*fn)(void *ud, const uint64_t *refs, size_t n), void *ud);
  /* Optional (with each): whether series ref's value of m's label ("" when it has none)
   * matches m; false when ref names no series (readers of a select skip those anyway).
   * Lets a select with a few candidates test them instead of searching long lists. */
  bool (*check)(void *ctx, uint64_t ref, const struct nn_matcher *m);
};
/* Refs of series matching every matcher, sorted (Prometheus semantics); *out is malloc'd. */
int nn__tsdb_postings_select(const struct nn__tsdb_postings_src *src, const struct nn_matcher *ms,
                             size_t nms, uint64_t **out, size_t *n);
/* nn__tsdb_postings_select over the head's index. */
int nn__tsdb_index_select(struct nn_tsdb *db, const struct nn_matcher *ms, size_t nms,
                          uint64_t **out, size_t *n);
/* Drops refs for which dead(ctx, ref) is true, and values and names left empty. */
int nn__tsdb_index_prune(struct nn__tsdb_index *idx, bool (*dead)(void *ctx, uint64_t ref),
                         void *ctx);

/* ---- wal.c ---- */
enum {
  NN__TSDB_REC_SERIES = 1,
  NN__TSDB_REC_SAMPLES = 2,
  NN__TSDB_REC_CHUNKS = 3, /* checkpoints: a series' samples as XOR chunks */
};
#define NN__TSDB_REC_HDR     9 /* type u8, length u32le, crc32c u32le */
#define NN__TSDB_REC_MAX     (64u << 20)
#define NN__TSDB_MAX_LABELS  1024
#define NN__TSDB_WAL_SEG_FMT "%08u"

struct nn__tsdb_wal_visitor {
  void *ctx;
  void (*series)(void *ctx, uint64_t ref, const struct nn_label *ls, size_t n);
  void (*sample)(void *ctx, uint64_t ref, int64_t t, double v);
  void (*bad_record)(void *ctx); /* checksummed but undecodable */
};

/* Starts a record in b; returns its offset for nn__tsdb_rec_end. */
int nn__tsdb_rec_begin(struct nn_buf *b, uint8_t type, size_t *off);
/* Fills in the length and checksum of the record started at off. */
void nn__tsdb_rec_end(struct nn_buf *b, size_t off);
int nn__tsdb_put_uvarint(struct nn_buf *b, uint64_t x);
int nn__tsdb_put_varint(struct nn_buf *b, int64_t x);
/* Decodes a uvarint at *p (< end); false when truncated or overlong. */
bool nn__tsdb_get_uvarint(const uint8_t **p, const uint8_t *end, uint64_t *x);
bool nn__tsdb_get_varint(const uint8_t **p, const uint8_t *end, int64_t *x);

/* Walks framed records in p[0..len), handing decoded contents to v. Returns the length
 * of the clean prefix; *damaged says whether it stopped on damage rather than the end. */
size_t nn__tsdb_wal_scan(const uint8_t *p, size_t len, const struct nn__tsdb_wal_visitor *v,
                         bool *damaged);
/* Decodes one record payload; NN_ECORRUPT when it does not parse. */
int nn__tsdb_wal_decode(uint8_t type, const uint8_t *p, size_t len,
                        const struct nn__tsdb_wal_visitor *v);

struct nn__tsdb_wal;
/* Opens <dir>/wal, replaying every segment through v, and starts the writer thread. */
int nn__tsdb_wal_open(struct nn_tsdb *db, const char *dir, const struct nn__tsdb_wal_visitor *v,
                      struct nn__tsdb_wal **out);
void nn__tsdb_wal_close(struct nn__tsdb_wal *w);
/* Sets the retention floor (nn_tsdb_wal_retain). */
void nn__tsdb_wal_retain(struct nn__tsdb_wal *w, bool on, uint32_t from);
/* Queues encoded records for the writer. NN_EAGAIN past the pending cap, NN_EIO when
 * the writer has stopped. */
int nn__tsdb_wal_log(struct nn__tsdb_wal *w, const void *p, size_t n);
/* Bytes logged so far (a position in the logical log), and bytes known written. */
uint64_t nn__tsdb_wal_appended(struct nn__tsdb_wal *w);
/* Asks the writer to flush what is pending now, without waiting for it. */
void nn__tsdb_wal_kick(struct nn__tsdb_wal *w);
/* Blocks until everything logged is written and synced; returns the writer's status. */
int nn__tsdb_wal_sync(struct nn__tsdb_wal *w);
/* Durable position and failure window since the last call (failure window reset). */
void nn__tsdb_wal_progress(struct nn__tsdb_wal *w, uint64_t *durable, uint64_t *fail_lo,
                           uint64_t *fail_hi, int *fail_status);
void nn__tsdb_wal_stats(struct nn__tsdb_wal *w, struct nn_tsdb_stats *out);
/* Flushes, and makes later writes start a new segment. Returns the number of the first
 * segment not covered by a checkpoint taken now. */
int nn__tsdb_wal_seal(struct nn__tsdb_wal *w, uint32_t *first_uncovered);
/* Hands a snapshot (records) to the writer, which writes it as checkpoint.<seg> and
 * then removes the segments and checkpoints it covers. Takes the buffer's storage. */
int nn__tsdb_wal_checkpoint(struct nn__tsdb_wal *w, struct nn_buf *snap, uint32_t seg);
/* Encodes the head (series and chunk records) into b. */
int nn__tsdb_head_snapshot(struct nn_tsdb *db, struct nn_buf *b);

/* ---- block.c: persisted blocks (docs/format/block.md, docs/format/index.md) ---- */
#define NN__TSDB_BLOCK_CHUNK_SAMPLES 480 /* re-encoded chunks in blocks hold up to this */

/* A validated index file: views into its bytes (a mapping, or a fuzzer's input). Only
 * symbols and the postings table are checked structurally at init; series entries and
 * postings lists are decoded with bounds checks when used. */
struct nn__tsdb_bindex {
  const uint8_t *sym_offs; /* nsym x u32le, into sym_data */
  const uint8_t *sym_data;
  size_t sym_data_len;
  uint32_t nsym;
  const uint8_t *series;
  size_t series_len;
  const uint8_t *postings; /* the list of all series first */
  size_t postings_len;
  const uint8_t *ptable; /* npairs x (u32le name, u32le value, u32le list offset) */
  uint32_t npairs;
  uint64_t chunks_len; /* size of the block's chunks file */
};

/* Checks header, TOC, section CRCs, symbols and the postings table: NN_ECORRUPT. */
int nn__tsdb_bindex_init(struct nn__tsdb_bindex *ix, const uint8_t *p, size_t len);
/* The symbol with this id, or NULL when out of range. */
const char *nn__tsdb_bindex_sym(const struct nn__tsdb_bindex *ix, uint32_t id);
/* Postings table entry i (< npairs). */
void nn__tsdb_bindex_pair(const struct nn__tsdb_bindex *ix, uint32_t i, uint32_t *name,
                          uint32_t *value, uint32_t *off);
/* Entries [*lo, *hi) of the postings table whose label name is s; false if none. */
bool nn__tsdb_bindex_name_range(const struct nn__tsdb_bindex *ix, const char *s, uint32_t *lo,
                                uint32_t *hi);
/* Refs (series entry offsets) matching every matcher, sorted; *out is malloc'd. */
int nn__tsdb_bindex_select(const struct nn__tsdb_bindex *ix, const struct nn_matcher *ms,
                           size_t nms, uint64_t **out, size_t *n);

struct nn__tsdb_bchunk {
  int64_t mint, maxt;
  uint64_t ref; /* offset of the chunk's record in the chunks file */
};
struct nn__tsdb_bseries {
  uint32_t nlabels;
  uint32_t syms[2 * NN__TSDB_MAX_LABELS];
  struct nn__tsdb_bchunk *chunks; /* grown as needed; free() when done */
  uint32_t nchunks, cap;
};
/* Decodes the series entry at ref; NN_ECORRUPT when it does not parse. */
int nn__tsdb_bindex_series(const struct nn__tsdb_bindex *ix, uint64_t ref,
                           struct nn__tsdb_bseries *out);
/* Finds the XOR chunk at ref in a chunks file of len bytes and checks its CRC. */
int nn__tsdb_bchunk_read(const uint8_t *p, size_t len, uint64_t ref, const uint8_t **data,
                         size_t *n);

struct nn__tsdb_block {
  char *path, *name;
  int64_t mint, maxt; /* samples in [mint, maxt) */
  uint64_t nseries, nsamples, nchunks, bytes;
  uint8_t *imap, *cmap;
  size_t ilen, clen;
  struct nn__tsdb_bindex ix;
  uint32_t cversion; /* of the chunks file (nn__tsdb_bchunk_it_init) */
  bool bad;          /* a chunk failed its CRC: skipped from then on */
};
/* Maps and validates the block in directory path (named name). Logs what is wrong. */
int nn__tsdb_block_open(const char *path, const char *name, struct nn__tsdb_block **out);
void nn__tsdb_block_close(struct nn__tsdb_block *b);

/* What a block is cut from: copies of the head's series overlapping [mint, maxt). */
struct nn__tsdb_snap_series {
  size_t lab_off;   /* into data: nlabels x "name\0value\0" */
  size_t chunk_off; /* into data: nchunks x (u32 native length, XOR chunk bytes) */
  uint32_t nlabels, nchunks;
};
struct nn__tsdb_snap {
  int64_t mint, maxt;
  struct nn_buf data;
  struct nn__tsdb_snap_series *s;
  size_t n, cap;
};
/* Copies what the head holds for [mint, maxt) (on the loop thread). */
int nn__tsdb_snap_take(struct nn_tsdb *db, int64_t mint, int64_t maxt, struct nn__tsdb_snap *out);
void nn__tsdb_snap_fini(struct nn__tsdb_snap *snap);
/* Version of the chunks files the writer produces: 2 (packed chunks). Tests set 1 to
 * write blocks as before packed chunks (XOR records without an encoding byte). */
extern uint32_t nn__tsdb_block_chunks_version;
/* Writes snap as the block <blocks_dir>/<name> (temp dir, fsync, rename) and opens it.
 * NN_ENOTFOUND when the range holds no samples (nothing written). Any thread. */
int nn__tsdb_block_write(const char *blocks_dir, const struct nn__tsdb_snap *snap,
                         struct nn__tsdb_block **out);
/* Removes a block directory (renamed to *.deleted first, so a crash leaves no half). */
int nn__tsdb_block_remove_dir(const char *blocks_dir, const char *name);

/* ---- the store ---- */
struct nn__tsdb_stats_loop {
  uint64_t series_created, series_removed, samples_appended;
  uint64_t out_of_order, duplicate, out_of_bounds, duplicate_identical;
  uint64_t commit_rejected, records;
  uint64_t corruptions, truncated_bytes, replay_samples, replay_dropped;
  double replay_seconds;
  uint64_t chunks;
};

struct nn__tsdb_notifier; /* the uv_async handle, freed in its close callback */
struct nn__tsdb_cut_job;  /* a block being written on a worker */

struct nn__tsdb_block_stats {
  uint64_t cut, cut_failures, deleted, corrupt, chunk_corruptions;
  double cut_seconds_total, cut_seconds_last;
};

/* The hash sits in the slot so that probing past other series touches no series. */
struct nn__tsdb_hslot {
  uint64_t hash;
  struct nn__tsdb_series *s;
};

struct nn_tsdb {
  struct nn_tsdb_options opt;
  char *dir;
  struct nn__tsdb_symtab syms;
  struct nn__tsdb_index idx;
  struct nn__tsdb_hslot *by_hash;  /* open addressing, key: labels hash */
  struct nn__tsdb_series **by_ref; /* open addressing, key: mixed ref */
  size_t mask, nseries;            /* both tables have the same size */
  uint64_t next_ref;
  int64_t min_t, max_t;
  struct nn_tsdb_appender *active; /* holds uncommitted samples */
  struct nn__tsdb_wal *wal;
  struct nn__tsdb_notifier *notifier;
  struct nn_tsdb_durable_req *wait_head, *wait_tail;
  uint64_t mem_seq; /* without a WAL: commits so far */
  bool relog;       /* a WAL write failed: see nn__tsdb_head_wal_failed */
  struct nn__tsdb_stats_loop st;
  /* Blocks, oldest first (by mint). */
  struct nn__tsdb_block **blocks;
  size_t nblocks, capblocks;
  char *blocks_dir;
  int64_t blocks_maxt; /* newest block's maxt: the head answers only from here on */
  int64_t oob_floor;   /* appends older than this are out of bounds (a range being cut) */
  struct nn__tsdb_cut_job *cut;
  struct nn__tsdb_block_stats bst;
  /* Replay only: refs that name a series already known under another ref. */
  uint64_t *alias_keys;
  struct nn__tsdb_series **alias_vals;
  size_t alias_mask, nalias;
};

struct nn__tsdb_series *nn__tsdb_series_by_ref(const struct nn_tsdb *db, uint64_t ref);
/* Finds the series with labels ls (hash h), or NULL. */
struct nn__tsdb_series *nn__tsdb_series_get(const struct nn_tsdb *db, uint64_t h,
                                            const struct nn_label *ls, size_t n);
/* Creates a series; ref 0 assigns the next. NULL on OOM. */
struct nn__tsdb_series *nn__tsdb_series_create(struct nn_tsdb *db, uint64_t h,
                                               const struct nn_label *ls, size_t n, uint64_t ref);
/* Appends a committed sample to a series' chunks and the head's time range. */
int nn__tsdb_series_commit(struct nn_tsdb *db, struct nn__tsdb_series *s, int64_t t, double v);
void nn__tsdb_head_fini(struct nn_tsdb *db);
/* The WAL replay visitor for this store. */
void nn__tsdb_replay_visitor(struct nn_tsdb *db, struct nn__tsdb_wal_visitor *v);
void nn__tsdb_replay_done(struct nn_tsdb *db);
/* Adds a block to db->blocks in mint order. */
int nn__tsdb_blocks_add(struct nn_tsdb *db, struct nn__tsdb_block *b);
/* Loads <dir>/blocks at open (corrupt blocks skipped and counted). */
int nn__tsdb_blocks_load(struct nn_tsdb *db);
/* Waits for a cut in flight and frees the blocks (at close). */
void nn__tsdb_blocks_fini(struct nn_tsdb *db);
/* Marks a block found damaged while reading it (what says where) as bad: logged,
 * counted, skipped from then on. */
void nn__tsdb_block_bad(struct nn_tsdb *db, struct nn__tsdb_block *b, const char *what);
/* Runs the durability callbacks that are due. */
void nn__tsdb_dispatch(struct nn_tsdb *db);
/* After a failed WAL write, whose records may have held series records and samples now
 * in memory only: every series logs its record again, and an identical resend of a
 * series' newest sample (a client's retry after its 5xx) is logged again instead of being
 * acknowledged as a no-op. */
void nn__tsdb_head_wal_failed(struct nn_tsdb *db);
/* Wakes the loop to run nn__tsdb_dispatch; callable from any thread. */
void nn__tsdb_wake(struct nn_tsdb *db);

#endif
