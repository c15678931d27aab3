/* SPDX-License-Identifier: Apache-2.0 */
/* Private to agent/tail: the tail object, per-file state, watched directories and the small
 * hash table that maps inotify watch descriptors, dev+inode and file ids in O(1). */
#ifndef NN_AGENT_TAIL_INTERNAL_H
#define NN_AGENT_TAIL_INTERNAL_H

#include <sys/types.h>

#include "agent/tail/tail.h"
#include "common/buf.h"

/* A chained hash on a two-word key. */
struct nn__tail_hent {
  uint64_t k1, k2;
  void *val;
  struct nn__tail_hent *next;
};
struct nn__tail_htab {
  struct nn__tail_hent **b;
  size_t nb, n;
};
int nn__tail_hput(struct nn__tail_htab *h, uint64_t k1, uint64_t k2, void *val);
void *nn__tail_hget(const struct nn__tail_htab *h, uint64_t k1, uint64_t k2);
void nn__tail_hdel(struct nn__tail_htab *h, uint64_t k1, uint64_t k2);
void nn__tail_hfree(struct nn__tail_htab *h);

struct nn__tail_file;

/* A watched directory. Files list themselves here so that an IN_MODIFY wakes only them. */
struct nn__tail_dir {
  int wd;
  int refs;
  struct nn__tail_file *files; /* linked through nn__tail_file.dnext[slot] */
};

enum nn__tail_state {
  NN__TAIL_ACTIVE,  /* the path still points at this inode */
  NN__TAIL_ROTATED, /* renamed away: read to EOF, then closed after a settle time */
  NN__TAIL_DELETED, /* unlinked: read to EOF, then released */
};

struct nn__tail_file {
  struct nn_tail *tail;
  char *path;
  int fd;
  uint64_t dev, ino;
  enum nn__tail_state state;
  uint64_t read_off;   /* next byte to read */
  uint64_t line_start; /* file offset of carry[0] */
  uint64_t size_seen;  /* last fstat size */
  struct nn_buf carry; /* the unfinished last line; capped, then skipped to its newline */
  bool skipping;
  bool drop_to_nl; /* starting mid-line (start_at_end): discard up to the first newline */
  bool at_eof;
  bool check_trunc;       /* verify size/last bytes before the next read */
  uint64_t eof_since;     /* loop time when EOF was first seen without growth */
  unsigned char last[32]; /* last bytes read, to notice a truncate+rewrite past our offset */
  uint32_t last_len;
  struct nn_parser *parser;
  bool id_known;
  uint64_t file_id, head_fp;
  uint32_t head_len;
  uint64_t acked;
  struct nn__tail_dir *dir[2]; /* link directory, resolved directory (NULL if the same) */
  struct nn__tail_file *dnext[2];
  struct nn_label labels[5];
  size_t nlabels;
  char *label_store;
  uint64_t labels_id; /* nn_tail_entry.labels_id */
};

/* A checkpoint record, as loaded from or written to the positions file. */
struct nn__tail_pos {
  uint64_t file_id, dev, ino, offset, head_fp, tail_fp;
  uint32_t head_len, tail_len;
};

struct nn_tail {
  uv_loop_t *loop;
  struct nn_tail_config cfg;
  char **include, **exclude;
  struct nn__tail_dir **pattern_dirs; /* per include pattern; NULL until watched */
  char *positions_path;
  nn_tail_entry_cb cb;
  void *ctx;
  struct nn__tail_file **files;
  size_t nfiles, capfiles, rr;
  struct nn__tail_htab by_inode; /* (dev, ino) -> file */
  struct nn__tail_htab by_id;    /* (file_id, 0) -> file */
  struct nn__tail_htab dirs;     /* (wd, 0) -> dir */
  struct nn__tail_htab restored; /* (dev, ino) -> nn__tail_pos, until the first scan ends */
  char *rbuf;
  size_t raw_max;
  int ifd;
  uv_poll_t ipoll;
  uv_idle_t reader;
  uv_timer_t rescan_timer, soon_timer, tick_timer, ckpt_timer, flush_timer;
  uint64_t ckpt_started_ms; /* loop time of the last asynchronous write */
  int open_handles;
  uint64_t next_labels_id;
  bool started, paused, destroying, ckpt_dirty, ckpt_busy, first_scan_done;
  bool ckpt_follow; /* nn_tail_flush_acks asked during a write: write again when it ends */
  /* The final checkpoint of nn_tail_destroy, serialized while the files were still open,
   * held back while an asynchronous write is in flight so that the older snapshot cannot
   * be renamed over it afterwards; on_ckpt_done writes it. */
  char *final_ckpt;
  size_t final_ckpt_len;
  struct nn_tail_stats stats;
};

/* tail.c */
void nn__tail_free(struct nn_tail *t);
/* checkpoint.c: the last checkpoint at destroy, ordered after any write in flight. */
void nn__tail_ckpt_write_final(struct nn_tail *t);
/* Writes acknowledged offsets now, or arms flush_timer for the end of flush_gap_ms. */
void nn__tail_flush_follow(struct nn_tail *t);

/* discover.c */
void nn__tail_scan(struct nn_tail *t);
void nn__tail_on_inotify(uv_poll_t *h, int status, int events);
int nn__tail_watch_dir(struct nn_tail *t, const char *dir, struct nn__tail_dir **out);
void nn__tail_unwatch_dir(struct nn_tail *t, struct nn__tail_dir *d);

/* file.c */
int nn__tail_file_open(struct nn_tail *t, const char *path, const struct stat *st, bool initial);
void nn__tail_file_close(struct nn__tail_file *f, bool flush);
void nn__tail_file_wake(struct nn__tail_file *f);
void nn__tail_check_files(struct nn_tail *t);
bool nn__tail_file_ensure_id(struct nn__tail_file *f);
void nn__tail_wake_reader(struct nn_tail *t);

/* checkpoint.c */
int nn__tail_ckpt_load(struct nn_tail *t);
/* Verifies a restored record against an open file; returns the resume offset or 0. */
uint64_t nn__tail_ckpt_resume(struct nn_tail *t, struct nn__tail_file *f);
int nn__tail_ckpt_write_sync(struct nn_tail *t);
void nn__tail_ckpt_write_async(struct nn_tail *t);
uint64_t nn__tail_hash(const void *p, size_t n);
uint64_t nn__tail_file_id(uint64_t dev, uint64_t ino, uint64_t head_fp, uint32_t head_len);
/* Hash of up to 256 bytes before off (pread); *len gets the count. -1 on read error. */
int nn__tail_tail_fp(int fd, uint64_t off, uint64_t *fp, uint32_t *len);
/* The head rule: bytes up to and including the first newline, at most 256. 0 if none yet. */
int nn__tail_head_fp(int fd, bool final, uint64_t *fp, uint32_t *len);

#endif
