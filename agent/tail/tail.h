/* SPDX-License-Identifier: Apache-2.0 */
/* Log file discovery and tailing on a libuv loop: glob discovery with inotify on directories
 * plus a periodic rescan, bounded reads, rename/copytruncate rotation, inode-reuse detection,
 * deleted-file release with a cap on held bytes, pause/resume for back-pressure, and
 * checkpoints that only advance when the consumer acknowledges delivery. Each parsed entry
 * goes to one callback with its stream labels and a stable file id. Everything here runs on
 * the loop thread. */
#ifndef NN_AGENT_TAIL_TAIL_H
#define NN_AGENT_TAIL_TAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "agent/parse/parse.h"
#include "common/labels.h"

struct nn_tail_config {
  const char *const *include; /* glob patterns; none means the kubelet directory (see tail.c) */
  size_t n_include;
  const char *const *exclude; /* fnmatch patterns on the matched path */
  size_t n_exclude;
  const char *data_dir;            /* holds <data_dir>/positions; NULL: no checkpoints */
  uint64_t ignore_older_ms;        /* skip files not modified for this long; 0: off */
  uint64_t rescan_interval_ms;     /* safety-net rescan and stat check; 0 means 1000 */
  uint64_t checkpoint_interval_ms; /* positions write period; 0 means 1000 */
  uint64_t flush_gap_ms;           /* nn_tail_flush_acks writes at most once per this; 0 means
                                      checkpoint_interval_ms */
  uint64_t rotate_settle_ms;       /* a rotated file is closed after EOF with no growth this long;
                                      0 means 2000 */
  size_t read_chunk;               /* bytes per read(2); 0 means 64 KiB */
  size_t loop_budget;              /* bytes read per loop iteration over all files; 0 means 1 MiB */
  uint64_t max_deleted_bytes;      /* unread bytes kept open in deleted files; 0 means 1 GiB */
  bool start_at_end;            /* files found at startup without a checkpoint start at their end */
  struct nn_parse_config parse; /* per-file parser settings (format, caps, multiline) */
};

/* Label indexes in nn_tail_entry.labels (canonical order; empty values are omitted, so use
 * nn_labels_get to look one up). */
struct nn_tail_entry {
  uint64_t file_id;              /* dev + inode + head fingerprint; changes after a truncation */
  const struct nn_label *labels; /* container, container_id, filename, namespace, pod */
  size_t nlabels;
  const char *path; /* the path the file was discovered under */
  const struct nn_parse_entry *entry;
  /* Identifies labels and path: the same for every entry of one opened file, never reused by
   * another within the process (so a consumer may cache what it derives from them). */
  uint64_t labels_id;
};

/* Called for every entry. The entry and its strings are valid only during the call. */
typedef void (*nn_tail_entry_cb)(void *ctx, const struct nn_tail_entry *e);

struct nn_tail_stats {
  uint64_t files_watched;      /* open files (gauge) */
  uint64_t files_deleted_open; /* deleted files still open for reading (gauge) */
  uint64_t deleted_bytes_held; /* unread bytes in those files (gauge) */
  uint64_t unread_bytes;       /* bytes written to open files and not read yet: the lag (gauge,
                                  computed by nn_tail_get_stats) */
  uint64_t bytes_read;
  uint64_t lines_read;
  uint64_t entries;
  uint64_t lines_truncated; /* entries cut at max_line_size */
  uint64_t invalid_utf8;
  uint64_t bad_format;
  uint64_t rotations_rename;
  uint64_t rotations_truncate;    /* copytruncate or truncation (size went below offset) */
  uint64_t truncate_bytes_missed; /* bytes known to exist but unread when a truncation hit */
  uint64_t deleted_bytes_dropped; /* unread bytes given up to the max_deleted_bytes cap */
  uint64_t checkpoint_mismatches; /* checkpoint for dev+inode whose fingerprints differ */
  uint64_t checkpoint_writes;
  uint64_t checkpoint_errors;
  uint64_t inotify_overflows;
  uint64_t rescans;
  uint64_t read_errors;
};

struct nn_tail;

/* Validates the config and loads <data_dir>/positions (a corrupt file is logged and
 * ignored: files are then read from the start, duplicating rather than losing).
 * NN_ECONFIG with a message in err, NN_ENOMEM, or a negative errno from inotify. */
int nn_tail_create(uv_loop_t *loop, const struct nn_tail_config *cfg, nn_tail_entry_cb cb,
                   void *ctx, struct nn_tail **out, char *err, size_t errlen);
/* Runs the first scan and starts inotify and the timers. */
int nn_tail_start(struct nn_tail *t);
/* Writes a final checkpoint, closes every file and handle. The memory is freed from a close
 * callback, so the caller runs the loop afterwards. Pending partial lines are not emitted:
 * their bytes are re-read after a restart. NULL is a no-op. */
void nn_tail_destroy(struct nn_tail *t);

/* Stop and restart all reading (the shipper's spool is full / has room). Discovery,
 * rotation detection and the deleted-bytes cap keep working while paused. */
void nn_tail_pause(struct nn_tail *t);
void nn_tail_resume(struct nn_tail *t);
bool nn_tail_paused(const struct nn_tail *t);

/* Marks the bytes of file_id before offset (an entry's commit_offset) as delivered; they
 * are checkpointed at the next write. NN_ENOTFOUND when the file is no longer tracked
 * (closed after rotation, or truncated since), NN_EINVAL for an offset past what was read. */
int nn_tail_ack(struct nn_tail *t, uint64_t file_id, uint64_t offset);
/* Starts writing the positions file (on a worker) if acks moved an offset since the last
 * write: now, or once flush_gap_ms have passed since the last write started (each write
 * creates, fsyncs and renames a file, which costs the kernel more than a few batches of
 * lines), instead of at the next checkpoint_interval tick. One write is in flight at a time;
 * offsets acknowledged during it are written after it. Call after a batch of acks: the
 * sooner the checkpoint follows delivery, the less a crash sends twice. */
void nn_tail_flush_acks(struct nn_tail *t);
/* Writes the positions file now, synchronously (tests, shutdown). */
int nn_tail_checkpoint(struct nn_tail *t);
/* Forces a discovery pass now (also run on inotify events and every rescan interval). */
void nn_tail_rescan(struct nn_tail *t);
void nn_tail_get_stats(const struct nn_tail *t, struct nn_tail_stats *out);

/* Kubernetes metadata from a log path: /var/log/containers/<pod>_<ns>_<container>-<id>.log
 * or /var/log/pods/<ns>_<pod>_<uid>/<container>/<n>.log. Fills up to 5 labels (pointing
 * into store, which must hold 2 * strlen(path) + 8 bytes) in canonical order and returns the
 * count; filename is always set. */
size_t nn_tail_path_labels(const char *path, struct nn_label *labels, char *store, size_t storelen);

#endif
