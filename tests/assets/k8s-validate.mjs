// SPDX-License-Identifier: Apache-2.0
// Validates rendered Kubernetes objects (JSON arrays written by render.py) against the
// Kubernetes OpenAPI schemas shipped in the kubernetes-models package: each object becomes
// the model class of its apiVersion and kind, and .validate() checks types, required fields
// and formats. An object whose kind has no model fails, so nothing goes unchecked.
// Usage: node k8s-validate.mjs FILE.json...
import { readFileSync } from "node:fs";

let failures = 0;
let checked = 0;

async function modelFor(apiVersion, kind) {
  // "v1" is the core group; "apps/v1" -> kubernetes-models/apps/v1/<Kind>.
  if (!/^([a-z0-9.-]+\/)?v[0-9]+((alpha|beta)[0-9]+)?$/.test(apiVersion) || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) {
    throw new Error(`not a Kubernetes apiVersion/kind: ${apiVersion} ${kind}`);
  }
  const mod = await import(`kubernetes-models/${apiVersion}/${kind}`);
  if (!mod[kind]) throw new Error(`kubernetes-models has no ${kind} in ${apiVersion}`);
  return mod[kind];
}

for (const file of process.argv.slice(2)) {
  const objects = JSON.parse(readFileSync(file, "utf8"));
  for (const obj of objects) {
    const name = `${file}: ${obj.kind}/${obj.metadata?.name}`;
    checked++;
    try {
      const Model = await modelFor(obj.apiVersion, obj.kind);
      new Model(obj).validate();
    } catch (e) {
      failures++;
      console.log(`${name}: ${e.message}`);
    }
  }
}
console.log(`k8s-validate: ${checked} objects, ${failures} invalid`);
process.exit(failures === 0 && checked > 0 ? 0 : 1);
