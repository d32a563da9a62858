/**
 * SysctlFiles (src/daemon/sysctl_files.ts) on the real kernel: the fds it keeps open must always
 * give the value of this moment (the warnings of an `add` read rp_filter through them), follow an
 * interface that is deleted and made again under the same name, and stay bounded in number.
 * Runs in a child in a namespace of its own.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import type { SysctlReport } from "./fixtures/sysctl_child.js";
import { createNetns, runChildIn, type Netns } from "./fixtures/netns.js";

const CHILD = fileURLToPath(new URL("./fixtures/sysctl_child.ts", import.meta.url));
let ns: Netns | undefined;
let r: SysctlReport;

before(() => {
  ns = createNetns("sysctl");
  ns.ip("link", "add", "vx0", "type", "veth", "peer", "name", "vx1");
  r = runChildIn<SysctlReport>(ns.name, CHILD);
});

after(() => ns?.remove());

void test("a kept fd reads the value of this moment; a deleted interface reads as none; one made again under its name is read afresh, also when the kept fd is the first to notice", () => {
  assert.deepEqual(r.values, [1, 2, null, 1, 2]);
});

void test("at most 64 fds stay open, however many files are read; a missing file leaves none", () => {
  assert.ok(r.files > 64, `premise: more files than the bound (${r.files})`);
  assert.ok(r.fdsAfterMany - r.fdsBefore <= 64, `${r.fdsAfterMany - r.fdsBefore} more fds`);
  assert.equal(r.missing, null);
  assert.equal(r.fdsAfterMissing, r.fdsAfterMany);
});
