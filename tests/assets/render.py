#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Renders deploy/ kustomizations without kubectl and checks nines' deployment rules on the
# result. It implements the subset of kustomize the overlays use (resources, namespace, labels,
# configMapGenerator with create/replace/merge, images, JSON 6902 patches) and refuses anything
# else, so an overlay cannot silently rely on a feature this check does not render.
#
# Usage: render.py OUT_DIR KUSTOMIZATION_DIR...
# Writes OUT_DIR/<overlay>.json (the rendered objects, for the schema check) and
# OUT_DIR/<overlay>/<configmap>/<key> (the embedded configs). Prints one line per problem and
# exits 1 if there is any.
import copy
import hashlib
import json
import os
import sys

import yaml

KNOWN_KEYS = {"apiVersion", "kind", "namespace", "labels", "resources", "configMapGenerator",
              "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume",
                  "StorageClass", "PriorityClass", "CustomResourceDefinition"}
WORKLOADS = {"DaemonSet", "StatefulSet", "Deployment"}

problems = []


def problem(where, msg):
    problems.append(f"{where}: {msg}")


def load_yaml_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def kustomization_file(d):
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        p = os.path.join(d, name)
        if os.path.isfile(p):
            return p
    raise SystemExit(f"{d}: no kustomization.yaml")


def within(root, path):
    root = os.path.realpath(root)
    return os.path.realpath(path).startswith(root + os.sep)


def generate_configmap(kdir, gen, namespace):
    data = {}
    for spec in gen.get("files", []):
        key, _, rel = spec.partition("=") if "=" in spec else (os.path.basename(spec), "", spec)
        path = os.path.join(kdir, rel)
        # kustomize's default load restrictor: no files from outside the kustomization root.
        if not within(kdir, path):
            problem(kdir, f"configMapGenerator file {rel} is outside the kustomization root")
            continue
        with open(path, encoding="utf-8") as f:
            data[key] = f.read()
    for lit in gen.get("literals", []):
        k, _, v = lit.partition("=")
        data[k] = v
    for k in gen:
        if k not in ("name", "files", "literals", "behavior", "options"):
            problem(kdir, f"configMapGenerator field {k} is not supported by this renderer")
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": gen["name"]}, "data": data}
    if namespace:
        cm["metadata"]["namespace"] = namespace
    return cm


def json_pointer_parts(path):
    if not path.startswith("/"):
        raise ValueError(f"bad JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def apply_json6902(obj, ops, where):
    for op in ops:
        kind, parts = op.get("op"), json_pointer_parts(op["path"])
        parent = obj
        try:
            for p in parts[:-1]:
                parent = parent[int(p)] if isinstance(parent, list) else parent[p]
            last = parts[-1]
            if kind in ("add", "replace"):
                value = copy.deepcopy(op["value"])
                if isinstance(parent, list):
                    if last == "-":
                        parent.append(value)
                    elif kind == "add":
                        parent.insert(int(last), value)
                    else:
                        parent[int(last)] = value
                else:
                    if kind == "replace" and last not in parent:
                        raise KeyError(last)
                    parent[last] = value
            elif kind == "remove":
                del parent[int(last) if isinstance(parent, list) else last]
            else:
                problem(where, f"patch op {kind} is not supported by this renderer")
        except (KeyError, IndexError, ValueError, TypeError) as e:
            problem(where, f"patch {op.get('op')} {op.get('path')} does not apply: {e!r}")


def render(kdir):
    kpath = kustomization_file(kdir)
    k = yaml.safe_load(open(kpath, encoding="utf-8"))
    for key in k:
        if key not in KNOWN_KEYS:
            problem(kpath, f"kustomization field {key} is not supported by this renderer")
    objs = []
    for res in k.get("resources", []):
        p = os.path.join(kdir, res)
        if os.path.isdir(p):
            objs.extend(render(p))
        elif os.path.isfile(p):
            for d in load_yaml_docs(p):
                d.setdefault("metadata", {})
                d["_source"] = os.path.relpath(p)
                objs.append(d)
        else:
            problem(kpath, f"resource {res} does not exist")
    ns = k.get("namespace")
    for gen in k.get("configMapGenerator", []):
        cm = generate_configmap(kdir, gen, ns)
        cm["_source"] = os.path.relpath(kpath)
        behavior = gen.get("behavior", "create")
        existing = [o for o in objs if o["kind"] == "ConfigMap"
                    and o["metadata"]["name"] == gen["name"] and o.get("_generated")]
        if behavior == "create":
            if existing:
                problem(kpath, f"configMapGenerator {gen['name']} already exists (use behavior)")
            cm["_generated"] = True
            objs.append(cm)
        elif behavior in ("replace", "merge"):
            if not existing:
                problem(kpath, f"configMapGenerator {gen['name']}: nothing to {behavior}")
                continue
            if behavior == "replace":
                existing[0]["data"] = cm["data"]
            else:
                existing[0]["data"].update(cm["data"])
            existing[0]["_source"] = cm["_source"]
        else:
            problem(kpath, f"configMapGenerator behavior {behavior} is unknown")
    if ns:
        for o in objs:
            if o["kind"] not in CLUSTER_SCOPED:
                o["metadata"]["namespace"] = ns
    for lab in k.get("labels", []):
        if lab.get("includeSelectors") or lab.get("includeTemplates"):
            problem(kpath, "labels with includeSelectors/includeTemplates are not supported")
        for o in objs:
            o["metadata"].setdefault("labels", {}).update(lab.get("pairs", {}))
    for img in k.get("images", []):
        for o in objs:
            for c in containers(o):
                name, tag = split_image(c.get("image", ""))
                if name == img["name"]:
                    c["image"] = f"{img.get('newName', name)}:{img.get('newTag', tag)}"
    for patch in k.get("patches", []):
        tgt = patch.get("target", {})
        if "patch" not in patch or not isinstance(yaml.safe_load(patch["patch"]), list):
            problem(kpath, "only inline JSON 6902 patches (a list of ops) are supported")
            continue
        hits = [o for o in objs if o["kind"] == tgt.get("kind")
                and o["metadata"]["name"] == tgt.get("name")]
        if not hits:
            problem(kpath, f"patch target {tgt} matches nothing")
        for o in hits:
            apply_json6902(o, yaml.safe_load(patch["patch"]), f"{kpath} ({tgt.get('name')})")
    return objs


def split_image(image):
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        return image.rsplit(":", 1)
    return image, "latest"


def pod_spec(o):
    if o.get("kind") in WORKLOADS:
        return o.get("spec", {}).get("template", {}).get("spec", {})
    return None


def containers(o, init=True):
    ps = pod_spec(o)
    if ps is None:
        return []
    return list(ps.get("containers", [])) + (list(ps.get("initContainers", [])) if init else [])


def hash_generated(objs):
    """Appends a content hash to generated ConfigMap names and rewrites references, as
    kustomize does, so a config change rolls the pods."""
    renames = {}
    for o in objs:
        if o.get("_generated"):
            body = json.dumps(o["data"], sort_keys=True).encode()
            new = f"{o['metadata']['name']}-{hashlib.sha256(body).hexdigest()[:10]}"
            renames[o["metadata"]["name"]] = new
            o["metadata"]["name"] = new
    for o in objs:
        ps = pod_spec(o)
        if ps is None:
            continue
        for v in ps.get("volumes", []):
            cm = v.get("configMap")
            if cm and cm.get("name") in renames:
                cm["name"] = renames[cm["name"]]


def check_security(o, where):
    ps = pod_spec(o)
    psc = ps.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True:
        problem(where, "pod securityContext.runAsNonRoot is not true")
    if psc.get("runAsUser") == 0:
        problem(where, "pod securityContext.runAsUser is 0")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problem(where, "pod seccompProfile is not RuntimeDefault")
    for c in ps.get("containers", []):
        cw = f"{where} container {c.get('name')}"
        sc = c.get("securityContext", {})
        if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
            problem(cw, "runAsNonRoot is not true")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            problem(cw, "runs as user 0")
        if sc.get("capabilities", {}).get("add"):
            problem(cw, "adds capabilities")
        check_container_common(c, sc, cw)
        for probe in ("readinessProbe", "livenessProbe"):
            if probe not in c:
                problem(cw, f"has no {probe}")
        check_resources(c, cw)
    # An init container may run as root only to hand a hostPath to the agent's user, with
    # CHOWN as its single capability.
    for c in ps.get("initContainers", []):
        cw = f"{where} initContainer {c.get('name')}"
        sc = c.get("securityContext", {})
        check_container_common(c, sc, cw)
        if set(sc.get("capabilities", {}).get("add", [])) - {"CHOWN"}:
            problem(cw, "adds capabilities other than CHOWN")
        check_resources(c, cw)


def check_container_common(c, sc, cw):
    if sc.get("readOnlyRootFilesystem") is not True:
        problem(cw, "readOnlyRootFilesystem is not true")
    if sc.get("allowPrivilegeEscalation") is not False:
        problem(cw, "allowPrivilegeEscalation is not false")
    if sc.get("privileged"):
        problem(cw, "is privileged")
    if "ALL" not in sc.get("capabilities", {}).get("drop", []):
        problem(cw, "does not drop ALL capabilities")
    prof = sc.get("seccompProfile", {}).get("type")
    if prof not in (None, "RuntimeDefault"):
        problem(cw, f"seccompProfile {prof}")


def check_resources(c, cw):
    res = c.get("resources", {})
    for k in ("requests", "limits"):
        for r in ("cpu", "memory"):
            if r not in res.get(k, {}):
                problem(cw, f"resources.{k}.{r} missing")


def check_references(objs, where):
    by_kind = {}
    for o in objs:
        by_kind.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
    for o in objs:
        ps = pod_spec(o)
        if ps is None:
            continue
        w = f"{where} {o['kind']}/{o['metadata']['name']}"
        sa = ps.get("serviceAccountName")
        if sa and sa not in by_kind.get("ServiceAccount", {}):
            problem(w, f"serviceAccountName {sa} is not defined")
        vols = {v["name"]: v for v in ps.get("volumes", [])}
        claims = {t["metadata"]["name"] for t in o.get("spec", {}).get("volumeClaimTemplates", [])}
        for v in vols.values():
            cm = v.get("configMap")
            if cm and cm["name"] not in by_kind.get("ConfigMap", {}):
                problem(w, f"volume {v['name']} uses ConfigMap {cm['name']}, which is not defined")
        for c in containers(o):
            ports = {p.get("name") for p in c.get("ports", [])} | {
                p.get("containerPort") for p in c.get("ports", [])}
            for m in c.get("volumeMounts", []):
                if m["name"] not in vols and m["name"] not in claims:
                    problem(w, f"container {c['name']} mounts unknown volume {m['name']}")
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                port = c.get(probe, {}).get("httpGet", {}).get("port")
                if port is not None and port not in ports:
                    problem(w, f"{probe} port {port} is not a container port")
        tmpl_labels = o["spec"]["template"]["metadata"].get("labels", {})
        sel = o["spec"].get("selector", {}).get("matchLabels", {})
        if not sel or any(tmpl_labels.get(k) != v for k, v in sel.items()):
            problem(w, "selector does not match the pod template labels")
        if o["kind"] == "StatefulSet":
            svc = o["spec"].get("serviceName")
            if svc not in by_kind.get("Service", {}):
                problem(w, f"serviceName {svc} is not defined")
            if not claims:
                problem(w, "has no volumeClaimTemplates")
    pods = [o for o in objs if pod_spec(o) is not None]
    for svc in by_kind.get("Service", {}).values():
        sel = svc.get("spec", {}).get("selector", {})
        hits = [o for o in pods if all(
            o["spec"]["template"]["metadata"].get("labels", {}).get(k) == v for k, v in sel.items())]
        if not hits:
            problem(f"{where} Service/{svc['metadata']['name']}", "selects no workload")
        for port in svc["spec"].get("ports", []):
            tp = port.get("targetPort", port.get("port"))
            if hits and not any(tp in {p.get("name") for p in c.get("ports", [])} | {
                    p.get("containerPort") for p in c.get("ports", [])}
                    for o in hits for c in containers(o, init=False)):
                problem(f"{where} Service/{svc['metadata']['name']}", f"targetPort {tp} is not a port of the selected pods")


def check_agent(objs, where):
    ds = [o for o in objs if o["kind"] == "DaemonSet" and o["metadata"]["name"] == "nines-agent"]
    if len(ds) != 1:
        problem(where, "no nines-agent DaemonSet")
        return
    ps = pod_spec(ds[0])
    w = f"{where} DaemonSet/nines-agent"
    if {"operator": "Exists"} not in ps.get("tolerations", []):
        problem(w, "does not tolerate every taint (operator: Exists)")
    c = ps["containers"][0]
    env = {e["name"]: e for e in c.get("env", [])}
    if env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "spec.nodeName":
        problem(w, "NODE_NAME is not taken from spec.nodeName")
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    vols = {v["name"]: v for v in ps.get("volumes", [])}
    for path, ro in (("/var/log", True), ("/var/lib/nines-agent", False)):
        m = mounts.get(path)
        if not m:
            problem(w, f"{path} is not mounted")
            continue
        if bool(m.get("readOnly")) != ro:
            problem(w, f"{path} readOnly should be {ro}")
        if vols.get(m["name"], {}).get("hostPath", {}).get("path") != path:
            problem(w, f"{path} is not the node's {path} (hostPath)")
    for probe, path in (("readinessProbe", "/-/ready"), ("livenessProbe", "/-/healthy")):
        if c.get(probe, {}).get("httpGet", {}).get("path") != path:
            problem(w, f"{probe} does not GET {path}")
    roles = [o for o in objs if o["kind"] == "ClusterRole" and o["metadata"]["name"] == "nines-agent"]
    if not roles:
        problem(where, "no nines-agent ClusterRole")
    for r in roles:
        for rule in r.get("rules", []):
            if rule.get("apiGroups") != [""] or rule.get("resources") != ["pods"] or \
                    sorted(rule.get("verbs", [])) != ["get", "list", "watch"]:
                problem(f"{where} ClusterRole/nines-agent", f"grants more than get/list/watch pods: {rule}")
    binds = [o for o in objs if o["kind"] == "ClusterRoleBinding"
             and o.get("roleRef", {}).get("name") == "nines-agent"]
    if not any(s.get("name") == ps.get("serviceAccountName") and s.get("namespace") == ds[0]["metadata"].get("namespace")
               for b in binds for s in b.get("subjects", [])):
        problem(where, "the agent's ServiceAccount is not bound to its ClusterRole")


def main():
    if len(sys.argv) < 3:
        raise SystemExit("usage: render.py OUT_DIR KUSTOMIZATION_DIR...")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for kdir in sys.argv[2:]:
        name = os.path.basename(os.path.normpath(kdir))
        objs = render(kdir)
        hash_generated(objs)
        for o in objs:
            if not o.get("apiVersion") or not o.get("kind") or not o["metadata"].get("name"):
                problem(f"{name} {o.get('_source')}", "object without apiVersion, kind or name")
        seen = set()
        for o in objs:
            key = (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
            if key in seen:
                problem(name, f"duplicate object {key}")
            seen.add(key)
        for o in objs:
            if o["kind"] in WORKLOADS:
                check_security(o, f"{name} {o['kind']}/{o['metadata']['name']}")
        check_references(objs, name)
        check_agent(objs, name)
        if not any(o["kind"] == "StatefulSet" and o["metadata"]["name"] == "nines-aggregator" for o in objs):
            problem(name, "no nines-aggregator StatefulSet")
        for o in objs:
            if o["kind"] == "ConfigMap":
                base = o["metadata"]["name"].rsplit("-", 1)[0] if o.get("_generated") else o["metadata"]["name"]
                d = os.path.join(out, name, base)
                os.makedirs(d, exist_ok=True)
                for k, v in o.get("data", {}).items():
                    with open(os.path.join(d, k), "w", encoding="utf-8") as f:
                        f.write(v)
        clean = [{k: v for k, v in o.items() if not k.startswith("_")} for o in objs]
        with open(os.path.join(out, f"{name}.json"), "w", encoding="utf-8") as f:
            json.dump(clean, f, indent=1)
        print(f"{name}: {len(clean)} objects")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
