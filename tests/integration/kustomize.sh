#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The real kustomize (kubectl kustomize) renders deploy/base and both overlays to the same
# objects as tests/assets/render.py, whose deployment rules assets.sh checks (only the
# ConfigMap hash suffixes differ: kustomize's hash is its own), so those checks hold for what
# `kubectl apply -k` applies; its output also validates against the Kubernetes schemas.
source "$(dirname "$0")/lib.inc"
if ! command -v kubectl >/dev/null; then
  echo "SKIP: kubectl not installed"
  exit 77
fi
cd "$NN_SOURCE_DIR"
nn_check "render.py renders the three kustomizations" \
  python3 tests/assets/render.py "$NN_TMP/rendered" deploy/base deploy/overlays/demo deploy/overlays/production
for k in base overlays/demo overlays/production; do
  n=$(basename "$k")
  nn_check "kubectl kustomize deploy/$k" bash -c "kubectl kustomize 'deploy/$k' >'$NN_TMP/$n.yaml'"
  nn_check "kubectl's $n objects equal render.py's (ConfigMap hashes aside)" python3 - \
    "$NN_TMP/$n.yaml" "$NN_TMP/rendered/$n.json" "$NN_TMP/$n-kubectl.json" <<'PY'
import json, re, sys, yaml
kub = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
ren = json.load(open(sys.argv[2]))
json.dump(kub, open(sys.argv[3], "w"))
norm = lambda objs: json.loads(re.sub(r"(nines-(?:agent|aggregator)-config)-[a-z0-9]{10}\b",
                                      r"\1-HASH", json.dumps(objs)))
key = lambda o: (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])
a = {key(o): o for o in norm(kub)}
b = {key(o): o for o in norm(ren)}
bad = sorted(set(a) ^ set(b)) + sorted(k for k in set(a) & set(b) if a[k] != b[k])
for k in bad:
    print("differs:", k)
print("%d objects, %d differ" % (len(a), len(bad)))
sys.exit(1 if bad or not a else 0)
PY
done
k8s_schema() {
  if [ ! -d node_modules/kubernetes-models ]; then
    npm ci --no-audit --no-fund --loglevel=error >"$NN_TMP/npm.log" 2>&1 || {
      cat "$NN_TMP/npm.log"
      return 1
    }
  fi
  node tests/assets/k8s-validate.mjs "$NN_TMP"/base-kubectl.json "$NN_TMP"/demo-kubectl.json \
    "$NN_TMP"/production-kubectl.json
}
nn_check "kubectl's output validates against the Kubernetes schemas" k8s_schema
nn_finish
