/**
 * Every launcher of the daemon passes DAEMON_NODE_FLAGS (src/daemon/memory.ts): the packaged
 * wrapper, the shebang of dist/daemon_main.js, run-dev.sh. A launcher that drifts runs a daemon
 * without its forced GC or with V8's large young generation (~30 MB more at 100 000 routes).
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
  assert.match(read("scripts/package.sh"), new RegExp(`flags="${flags} "`));
  const dev = read("scripts/run-dev.sh").split("\n").filter((l) => l.includes("dist/daemon_main.js") && l.includes("exec"));
  assert.equal(dev.length, 2);
  for (const l of dev) assert.ok(l.includes(`node ${flags} dist/daemon_main.js`), l);
});
