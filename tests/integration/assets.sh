#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Deployable assets: dashboards, alert rules, Alertmanager config, SLO specs, runbooks,
# Kubernetes manifests (rendered without kubectl, checked against the Kubernetes schemas with
# the kubernetes-models npm package), the configs they embed (--check-config) and the systemd
# units. Needs the npm registry only when node_modules is missing (npm ci from the lockfile).
. "$(dirname "$0")/lib.inc"
cd "$NN_SOURCE_DIR"
agent=$NN_BINARY_DIR/agent/nines-agent
aggregator=$NN_BINARY_DIR/aggregator/nines-aggregator
out=$NN_TMP/rendered

nn_check "promtool check rules alerts/nines-rules.yml" promtool check rules alerts/nines-rules.yml
nn_check "amtool check-config alerts/alertmanager.yml" amtool check-config alerts/alertmanager.yml
nn_check "dashboards, alert annotations, runbooks, SLO specs, provisioning" \
  python3 tests/assets/check_assets.py "$NN_SOURCE_DIR"

nn_check "kustomizations render and follow the deployment rules" \
  python3 tests/assets/render.py "$out" deploy/base deploy/overlays/demo deploy/overlays/production

# The rule checker must have teeth: a container that may escalate privileges is refused.
broken_deploy() {
  cp -r deploy "$NN_TMP/broken"
  sed -i 's/allowPrivilegeEscalation: false/allowPrivilegeEscalation: true/' \
    "$NN_TMP/broken/base/aggregator-statefulset.yaml"
  ! python3 tests/assets/render.py "$NN_TMP/broken-out" "$NN_TMP/broken/base" >"$NN_TMP/broken.log" &&
    grep -q 'allowPrivilegeEscalation is not false' "$NN_TMP/broken.log"
}
nn_check "render.py refuses a manifest that breaks a rule" broken_deploy

k8s_schema() {
  if [ ! -d node_modules/kubernetes-models ]; then
    npm ci --no-audit --no-fund --loglevel=error >"$NN_TMP/npm.log" 2>&1 || {
      cat "$NN_TMP/npm.log"
      return 1
    }
  fi
  node tests/assets/k8s-validate.mjs "$out"/base.json "$out"/demo.json "$out"/production.json
}
nn_check "rendered objects validate against the Kubernetes schemas" k8s_schema

# The ConfigMaps' configs are what the pods run: each must pass the program's own check.
check_configs() {
  local f n=0 bin
  for f in "$out"/*/nines-agent-config/agent.yml "$out"/*/nines-aggregator-config/aggregator.yml; do
    [ -f "$f" ] || continue
    case $f in */agent.yml) bin=$agent ;; *) bin=$aggregator ;; esac
    NINES_INGEST_TOKEN=test-token "$bin" --check-config --config "$f" || return 1
    n=$((n + 1))
  done
  [ "$n" -eq 6 ] || {
    echo "expected 6 embedded configs, checked $n"
    return 1
  }
}
nn_check "configs embedded in the ConfigMaps pass --check-config" check_configs
nn_check "example configs pass --check-config" \
  bash -c "'$agent' --check-config --config examples/agent.yml && '$aggregator' --check-config --config examples/aggregator.yml"

# systemd-analyze wants the ExecStart binaries to exist: point the units at the build tree.
check_units() {
  local u
  mkdir -p "$NN_TMP/units"
  for u in deploy/systemd/*.service; do
    sed -e "s|/usr/bin/nines-agent|$agent|g; s|/usr/bin/nines-aggregator|$aggregator|g" "$u" \
      >"$NN_TMP/units/$(basename "$u")"
  done
  systemd-analyze verify --man=no "$NN_TMP"/units/*.service >"$NN_TMP/units.log" 2>&1 || {
    cat "$NN_TMP/units.log"
    return 1
  }
  # verify only warns about unknown directives; a typo must fail here.
  ! grep -i 'unknown\|ignoring' "$NN_TMP/units.log"
}
if command -v systemd-analyze >/dev/null; then
  nn_check "systemd units verify" check_units
fi

check_dockerfiles() {
  local f x
  for x in agent aggregator; do
    f=deploy/docker/$x.Dockerfile
    [ "$(grep -c '^FROM ' "$f")" -ge 2 ] || return 1
    grep -q "^FROM debian:12 AS build" "$f" || return 1
    grep -q "cmake --build .* --target nines-$x" "$f" || return 1
    grep -q "^COPY --from=build /build/$x/nines-$x " "$f" || return 1
    grep -q '^USER 65532' "$f" || return 1
    # The runtime stage installs no -dev package and no compiler.
    ! sed -n '/^FROM debian:12-slim/,$p' "$f" | grep -v '^#' | grep -E -- '-dev\b|build-essential|cmake' || return 1
  done
}
nn_check "Dockerfiles: multi-stage, non-root, runtime libraries only" check_dockerfiles

nn_finish
