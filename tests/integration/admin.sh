#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Both programs: flags, --check-config errors with file:line:col, embedded defaults, the
# admin endpoints, /metrics accepted by promtool, and graceful shutdown on SIGTERM.
source "$(dirname "$0")/lib.inc"
AGG=$NN_BINARY_DIR/aggregator/nines-aggregator
AGENT=$NN_BINARY_DIR/agent/nines-agent

for bin in "$AGG" "$AGENT"; do
  name=$(basename "$bin")
  nn_check "$name --version names the program" bash -c "'$bin' --version | grep -q '^$name version '"
  nn_check "$name --help documents the config" bash -c "'$bin' --help | grep -q listen_address"
  nn_check "$name rejects an unknown flag with exit 2" bash -c "'$bin' --bogus; [ \$? -eq 2 ]"
  printf 'listen_address: 127.0.0.1:1\ndata_dirr: /tmp/x\n' >"$NN_TMP/typo.yml"
  out=$("$bin" --config "$NN_TMP/typo.yml" --check-config 2>&1) && rc=0 || rc=$?
  nn_check "$name --check-config exits 1 on a typo" [ "$rc" -eq 1 ]
  nn_check "$name names file:line:col and suggests the key" \
    grep -q "typo.yml:2:1: field \"data_dirr\".*did you mean 'data_dir'" <<<"$out"
  printf 'listen_address: 127.0.0.1:1\n' >"$NN_TMP/good.yml"
  nn_check "$name --check-config accepts a valid file" "$bin" --config "$NN_TMP/good.yml" --check-config
  printf 'listen_address: [1, 2]\n' >"$NN_TMP/type.yml"
  nn_check "$name reports a type error with its position" \
    bash -c "'$bin' --config '$NN_TMP/type.yml' --check-config 2>&1 | grep -q 'type.yml:1:17'"
done

port=$(nn_free_port)
nn_start agg "$AGG" --listen-address "127.0.0.1:$port" --data-dir "$NN_TMP/agg"
nn_check "aggregator starts with no config file" nn_wait_http "http://127.0.0.1:$port/-/healthy"
nn_check "aggregator /-/ready answers 200" curl -fsS -o /dev/null "http://127.0.0.1:$port/-/ready"
curl -fsS "http://127.0.0.1:$port/metrics" >"$NN_TMP/agg.metrics"
nn_check "aggregator /metrics passes promtool check metrics" promtool check metrics <"$NN_TMP/agg.metrics"
nn_check "aggregator /metrics has process metrics" grep -q '^process_resident_memory_bytes ' "$NN_TMP/agg.metrics"
nn_check "unknown path is 404 as Prometheus says it" \
  bash -c "[ \"\$(curl -s -w '%{http_code}' http://127.0.0.1:$port/nope)\" = \$'404 page not found\n404' ]"

aport=$(nn_free_port)
nn_start agent "$AGENT" --listen-address "127.0.0.1:$aport" --data-dir "$NN_TMP/agent"
nn_check "agent serves /-/healthy" nn_wait_http "http://127.0.0.1:$aport/-/healthy"
curl -fsS "http://127.0.0.1:$aport/metrics" >"$NN_TMP/agent.metrics"
nn_check "agent /metrics passes promtool check metrics" promtool check metrics <"$NN_TMP/agent.metrics"

kill -TERM "$PID_agg" "$PID_agent"
stopped() { for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; return 1; }
nn_check "aggregator exits within 5 s of SIGTERM" stopped "$PID_agg"
nn_check "agent exits within 5 s of SIGTERM" stopped "$PID_agent"
wait "$PID_agg" && arc=0 || arc=$?
nn_check "aggregator exit status is 0 after SIGTERM" [ "$arc" -eq 0 ]
nn_finish
