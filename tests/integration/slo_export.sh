#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `nines-aggregator slo export` turns the demo's SLO specs (native and Sloth formats) into
# Prometheus rules that promtool accepts, with the burn-rate alerts in them.
source "$(dirname "$0")/lib.inc"
AGG=$NN_BINARY_DIR/aggregator/nines-aggregator
cd "$NN_SOURCE_DIR"
for dir in native sloth; do
  "$AGG" slo export --format prometheus alerts/slo/$dir/*.yml >"$NN_TMP/$dir.yml"
  nn_check "slo export of the $dir specs succeeds" test -s "$NN_TMP/$dir.yml"
  nn_check "promtool accepts the $dir export" promtool check rules "$NN_TMP/$dir.yml"
  nn_check "the $dir export records slo:sli_error:ratio_rate5m" grep -q 'record: "\?slo:sli_error:ratio_rate5m' "$NN_TMP/$dir.yml"
  nn_check "the $dir export has page and ticket alerts" \
    bash -c "grep -q 'severity.*page' '$NN_TMP/$dir.yml' && grep -q 'severity.*ticket' '$NN_TMP/$dir.yml'"
done
nn_check "native and Sloth specs export the same recording rules" \
  bash -c "diff <(grep -c 'record:' '$NN_TMP/native.yml') <(grep -c 'record:' '$NN_TMP/sloth.yml')"
"$AGG" slo export --format prometheus --config examples/aggregator.yml >"$NN_TMP/cfg.yml"
nn_check "export from the config's spec_files equals the native export" diff "$NN_TMP/cfg.yml" "$NN_TMP/native.yml"
printf 'version: "prometheus/v1"\nservice: x\nslos:\n  - name: a\n    objective: 99.9\n    sli: {events: {error_query: "sum(", total_query: "sum(up)"}}\n    alerting: {page_alert: {disable: true}, ticket_alert: {disable: true}}\n' >"$NN_TMP/bad.yml"
out=$("$AGG" slo export "$NN_TMP/bad.yml" 2>&1) && rc=0 || rc=$?
nn_check "a bad spec fails the export with exit 1" [ "$rc" -eq 1 ]
nn_check "the error names file:line:col" grep -q "bad.yml:[0-9]*:[0-9]*" <<<"$out"
nn_check "an unknown format is refused" bash -c "! '$AGG' slo export --format sloth alerts/slo/native/payments.yml 2>/dev/null"
nn_finish
