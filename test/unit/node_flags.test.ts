/**
 * Every launcher of the daemon passes DAEMON_NODE_FLAGS (src/daemon/memory.ts): the packaged
 * wrapper, the shebang of dist/daemon_main.js, run-dev.sh. A launcher that drifts runs a daemon
 * without its forced GC or with V8's large young generation (~30 MB more at 100 000 routes).
 * The built entry is one bundle (package.json `bundle-daemon`); reads dist/, which the suite
 * builds first (scripts/test.sh).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DAEMON_NODE_FLAGS } from "../../src/daemon/memory.js";

const ROOT = join(import.meta.dirname, "../..");
const read = (f: string): string => readFileSync(join(ROOT, f), "utf8");
const flags = DAEMON_NODE_FLAGS.join(" ");

void test("the shebang, the package's wrapper and run-dev.sh start the daemon with DAEMON_NODE_FLAGS", () => {
  assert.equal(read("src/daemon_main.ts").split("\n")[0], `#!/usr/bin/env -S node ${flags}`);
  // The built entry (esbuild keeps the entry's shebang): what `npm run build` made, as run.
  assert.equal(read("dist/daemon_main.js").split("\n")[0], `#!/usr/bin/env -S node ${flags}`);
  assert.match(read("scripts/package.sh"), new RegExp(`flags="${flags} "`));
  const dev = read("scripts/run-dev.sh").split("\n").filter((l) => l.includes("dist/daemon_main.js") && l.includes("exec"));
  assert.equal(dev.length, 2);
  for (const l of dev) assert.ok(l.includes(`node ${flags} dist/daemon_main.js`), l);
});

void test("dist/daemon_main.js is one module: it imports only Node's own modules, and requires koffi (a native addon)", () => {
  // Loading the ~70 compiled files one by one took ~110-145 ms of every start (docs/performance.md).
  const built = read("dist/daemon_main.js");
  const imports = [...built.matchAll(/^import\b[^"']*["']([^"']+)["']/gm)].map((m) => m[1] as string);
  assert.deepEqual(imports.filter((spec) => !spec.startsWith("node:")), []);
  // Through its CommonJS build (src/kernel/koffi.ts): its ES module graph loaded ~10 ms slower.
  const required = [...built.matchAll(/\(import\.meta\.url\)\("([^"]+)"\)/g)].map((m) => m[1] as string);
  assert.deepEqual(required.filter((spec) => !spec.startsWith("../")), ["koffi"]);
});
