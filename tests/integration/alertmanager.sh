#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The notifier against a real Alertmanager: runs the cmocka program that starts
# prometheus-alertmanager on a free 127.0.0.1 port (clustering off), posts a firing alert,
# checks it through the v2 API, resolves it, and stops Alertmanager by PID.
source "$(dirname "$0")/lib.inc"

if [ ! -x /usr/bin/prometheus-alertmanager ]; then
  echo "SKIP: /usr/bin/prometheus-alertmanager not installed (apt-get install prometheus-alertmanager)"
  exit 0
fi
bin="$NN_BINARY_DIR/tests/aggregator_notifier_alertmanager_test"
if [ ! -x "$bin" ]; then
  echo "SKIP: $bin not built"
  exit 0
fi
nn_check "firing and resolved alerts reach Alertmanager" env NN_ALERTMANAGER_IT=1 "$bin"
nn_finish
