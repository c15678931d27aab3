#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Edge cases of tailing (AGENTS.md §5 complaints 2, 5, 9), each checked at a receiver that
# keeps everything: a new file that reuses a deleted file's inode while the agent is down
# is read from 0, not from the old checkpoint; truncation to zero; a 10 MiB line (truncated
# to max_line_size, counted, tailing continues); invalid UTF-8 (delivered, counted); a file
# deleted before it was read (its lines still arrive).
source "$(dirname "$0")/lib.inc"
source "$NN_SOURCE_DIR/tests/e2e/agent.inc"
aport=$(nn_free_port)
sport=$(nn_free_port)
e2e_sink_start "$sport" "$NN_TMP/sink.rec"
e2e_agent_config "$NN_TMP/agent.yml" "$aport" "http://127.0.0.1:$sport/loki/api/v1/push" \
  "  max_line_size: 256KiB"
e2e_agent_start "$NN_TMP/agent.yml" "$aport"
TS=$(date -u +%Y-%m-%dT%H:%M:%S.000000000Z)

# cri_lines FILE PREFIX N: appends N CRI lines "<PREFIX>-<i>".
cri_lines() {
  python3 - "$@" <<'PY'
import sys
path, prefix, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ts = sys.argv[4] if len(sys.argv) > 4 else "2026-01-01T00:00:00.000000000Z"
with open(path, "ab") as f:
    f.write(b"".join(b"%s stdout F %s-%d pad pad pad\n" % (ts.encode(), prefix.encode(), i) for i in range(n)))
PY
}
# count PATTERN: records whose line starts with PATTERN (fixed string, the whole head field).
count() {
  curl -fsS "http://127.0.0.1:$sport/stats" >/dev/null
  awk -F'\t' -v p="$1" 'index($6, p) == 1 { n++ } END { print n + 0 }' "$NN_TMP/sink.rec"
}
wait_count() { # PATTERN N SECONDS
  local i c=0
  for ((i = 0; i < $3 * 10; i++)); do
    c=$(count "$1")
    [ "$c" -ge "$2" ] && break
    sleep 0.1
  done
  [ "$c" = "$2" ] || { echo "$1: $c records, want $2"; return 1; }
}

# -- invalid UTF-8
f=$(e2e_log_path utf8)
printf '%s stdout F bad-utf8 \xff\xfe\xc3( end\n%s stdout F good-utf8 after\n' "$TS" "$TS" >"$f"
nn_check "invalid UTF-8 line delivered" wait_count "bad-utf8" 1 20
nn_check "line after it delivered" wait_count "good-utf8" 1 10
nn_check "delivered bytes are the original ones (flagged invalid at the receiver)" \
  awk -F'\t' '$6 ~ /^bad-utf8/ && $5 == 0 { ok = 1 } END { exit !ok }' "$NN_TMP/sink.rec"
nn_check "invalid UTF-8 counted" e2e_wait_metric "$aport" '^nines_agent_invalid_utf8_total' 1 5

# -- a 10 MiB line
f=$(e2e_log_path long)
cri_lines "$f" before-long 1
python3 -c '
import sys
with open(sys.argv[1], "ab") as f:
    f.write(sys.argv[2].encode() + b" stdout F long-line " + b"y" * (10 << 20) + b"\n")' "$f" "$TS"
cri_lines "$f" after-long 3
nn_check "lines around a 10 MiB line delivered" wait_count "after-long" 3 30
nn_check "the 10 MiB line delivered once" wait_count "long-line" 1 5
len=$(awk -F'\t' '$6 ~ /^long-line/ { print $4 }' "$NN_TMP/sink.rec")
echo "10 MiB line arrived with ${len:-?} bytes"
nn_check "truncated to max_line_size (256 KiB)" test "${len:-0}" -le 262144 -a "${len:-0}" -ge 200000
nn_check "truncation counted" e2e_wait_metric "$aport" '^nines_agent_lines_truncated_total' 1 5

# -- truncate to zero
f=$(e2e_log_path trunc)
cri_lines "$f" trunc-a 100
nn_check "lines before truncation" wait_count "trunc-a-" 100 20
: >"$f"
cri_lines "$f" trunc-b 10
nn_check "lines after truncation to zero" wait_count "trunc-b-" 10 20
nn_check "no line read twice" test "$(count trunc-a-)" = 100

# -- deleted while unread
f=$(e2e_log_path deleted)
w0=$(e2e_metric "$aport" '^nines_agent_read_bytes_total')
tmp="$LOGDIR/deleted.tmp"
cri_lines "$tmp" del 100000
sz=$(stat -c %s "$tmp")
mv "$tmp" "$f"
for ((i = 0; i < 100; i++)); do # delete as soon as the agent has started reading it
  [ "$(e2e_metric "$aport" '^nines_agent_read_bytes_total')" -gt "$w0" ] && break
  sleep 0.02
done
rm "$f"
w1=$(e2e_metric "$aport" '^nines_agent_read_bytes_total')
e2e_note "deleted a $sz-byte file after the agent read $((w1 - w0)) bytes of it"
# The agent may outrun the poll above on a fast machine; the lines must arrive either way.
[ $((w1 - w0)) -lt "$sz" ] || echo "# note: the agent had read the whole file before it was deleted"
nn_check "its lines still arrive" wait_count "del-" 100000 60
nn_check "the deleted file is released" e2e_wait_metric_eq "$aport" '^nines_agent_deleted_files_open' 0 30

# -- inode reuse while the agent is down
f=$(e2e_log_path reuse)
cri_lines "$f" reuse-a 200
nn_check "first file delivered" wait_count "reuse-a-" 200 20
sleep 1.5 # the acknowledged offset reaches the positions file
ino=$(stat -c %i "$f")
e2e_stop "$AGENT_PID"
rm "$f"
got=""
for ((i = 0; i < 500; i++)); do # ext4 hands a freed inode out again soon; look for it
  : >"$LOGDIR/reuse.$i.tmp"
  if [ "$(stat -c %i "$LOGDIR/reuse.$i.tmp")" = "$ino" ]; then
    mv "$LOGDIR/reuse.$i.tmp" "$f"
    got=yes
    break
  fi
done
rm -f "$LOGDIR"/reuse.*.tmp
[ -n "$got" ] || echo "inode $ino was not reused; the new file has another inode"
cri_lines "$f" reuse-b 400
e2e_note "new file has inode $(stat -c %i "$f") (old $ino), after $i tries"
nn_check "the new file reuses the old inode" test -n "$got"
e2e_agent_start "$NN_TMP/agent.yml" "$aport"
nn_check "the new file is read from offset 0" wait_count "reuse-b-" 400 20
sleep 1
nn_check "the old file is not read again" test "$(count reuse-a-)" = 200
nn_check "nothing dropped" test "$(e2e_metric "$aport" '^nines_agent_ship_records_dropped_total')" = 0
e2e_stop "$AGENT_PID"
nn_finish
